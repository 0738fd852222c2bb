//! The impersonation page and banner (contract §6): searching for someone to impersonate, the live
//! sessions of every admin, the emergency stop, and leaving an impersonation with a working admin
//! session. The page's queries send no `sessionToken`, only `admin_session_token`; its mutations get
//! the injected one (the `imp_` token while impersonating).

use serde_json::{json, Value as Json};
use values::{DocumentId, Value};

use crate::seed::{self, Member};
use crate::{backends, Web};

const ADMIN_ONLY: &str = "Insufficient permissions: System administrator role required";

fn search(
    admin: &str,
    term: Option<&str>,
    limit: Option<f64>,
) -> (&'static str, &'static str, Json) {
    let mut args = json!({"admin_session_token": admin});
    if let Some(t) = term {
        args["search_term"] = json!(t);
    }
    if let Some(l) = limit {
        args["limit"] = json!(l);
    }
    ("query", "impersonation:searchUsersForImpersonation", args)
}

fn sessions(admin: &str) -> (&'static str, &'static str, Json) {
    (
        "query",
        "impersonation:getActiveImpersonationSessions",
        json!({"admin_session_token": admin}),
    )
}

fn start(admin: &str, target: &str) -> (&'static str, &'static str, Json) {
    (
        "mutation",
        "impersonation:startImpersonation",
        json!({"sessionToken": admin, "admin_session_token": admin,
               "target_user_email": target, "reason": "Ticket 7: wizard stuck"}),
    )
}

/// As the banner calls it: the injected session is the impersonation token itself.
fn end(session: &str, imp: &str) -> (&'static str, &'static str, Json) {
    (
        "mutation",
        "impersonation:endImpersonation",
        json!({"sessionToken": session, "impersonation_token": imp}),
    )
}

fn terminate(admin: &str) -> (&'static str, &'static str, Json) {
    (
        "mutation",
        "impersonation:emergencyTerminateAllSessions",
        json!({"sessionToken": admin, "admin_session_token": admin}),
    )
}

fn current(token: &str) -> (&'static str, &'static str, Json) {
    (
        "query",
        "users:getCurrentUser",
        json!({"sessionToken": token}),
    )
}

fn audit(admin: &str) -> (&'static str, &'static str, Json) {
    (
        "query",
        "audit:listEvents",
        json!({"sessionToken": admin, "allCompanies": true}),
    )
}

async fn imp_token(web: &Web, admin: &str, target: &str) -> String {
    let out = web.calls(&[start(admin, target)]).await;
    out[0].value()["impersonation_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {:?}", out[0]))
        .to_string()
}

/// The `sessions` row behind `token`.
async fn session_row(web: &Web, token: &str) -> Option<store::Document> {
    let hash = app::identity::sessions::hash_token(token);
    seed::rows(&web.app, "sessions")
        .await
        .into_iter()
        .find(|s| s.get("token_hash").and_then(Value::as_str) == Some(hash.as_str()))
}

/// Another live session for `user` (created `at`); its token.
async fn extra_session(web: &Web, user: &str, at: f64) -> String {
    let token = hex::encode(rand::random::<[u8; 32]>());
    seed::insert(
        &web.app,
        "sessions",
        json!({"user_id": user, "token_hash": app::identity::sessions::hash_token(&token),
               "created_at": at, "expires_at": seed::now_ms() + 86_400_000.0,
               "remember_me": false}),
    )
    .await;
    token
}

async fn set_number(web: &Web, id: &DocumentId, field: &'static str, value: f64) {
    let id = *id;
    web.app
        .store
        .mutate(move |txn| {
            let mut patch = store::Patch::new();
            patch.insert(field.to_string(), Some(Value::from(value)));
            txn.patch(&id, patch)
        })
        .await
        .unwrap();
}

fn events<'a>(log: &'a Json, name: &str) -> Vec<&'a Json> {
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == name)
        .collect()
}

#[tokio::test]
async fn an_admin_searches_impersonates_and_leaves_with_a_working_admin_session() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let root = &p.system_admin;
        seed::member(
            &web.app,
            Some(&p.company_a),
            "demo@harbour.org",
            "demo_admin",
        )
        .await;
        seed::member(&web.app, None, "second-root@platform.org", "system_admin").await;

        let out = web
            .calls(&[
                search("", None, None),
                sessions(""),
                search(&root.token, None, None),
                search(&root.token, Some(" HARBOUR "), Some(10.0)),
                search(&root.token, None, Some(2.0)),
            ])
            .await;
        assert_eq!(
            out[0].value(),
            &json!([]),
            "{db:?}: before the token arrives"
        );
        assert_eq!(out[1].value(), &json!([]), "{db:?}");
        let everyone = out[2].value().as_array().unwrap();
        let emails: Vec<&str> = everyone
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        // Sorted by name ("<role> <email>"); no admin role, not the caller.
        assert_eq!(
            emails,
            [
                "admin@harbour.org",
                "admin@ridge.org",
                "worker@harbour.org",
                "worker@ridge.org",
                "lead@harbour.org",
            ],
            "{db:?}"
        );
        let worker = everyone
            .iter()
            .find(|u| u["email"] == "worker@harbour.org")
            .unwrap();
        assert_eq!(worker["id"], p.worker_a.id.as_str());
        assert_eq!(worker["role"], "frontline_worker");
        assert_eq!(worker["company_name"], "Harbour Care");
        assert_eq!(worker["name"], "frontline_worker worker@harbour.org");
        let harbour: Vec<&str> = out[3]
            .value()
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        assert_eq!(
            harbour,
            [
                "admin@harbour.org",
                "worker@harbour.org",
                "lead@harbour.org"
            ],
            "{db:?}: the term matches names and emails, without case"
        );
        assert_eq!(out[4].value().as_array().unwrap().len(), 2, "{db:?}: limit");

        let imp = imp_token(&web, &root.token, "worker@harbour.org").await;
        let original = session_row(&web, &root.token).await.unwrap();
        let out = web
            .calls(&[
                current(&imp),
                sessions(&root.token),
                end(&imp, &imp),
                current(&imp),
                (
                    "query",
                    "impersonation:getImpersonationStatus",
                    json!({"session_token": imp}),
                ),
                sessions(&root.token),
            ])
            .await;
        assert_eq!(
            out[0].value()["email"],
            "worker@harbour.org",
            "{db:?}: acting as the worker"
        );
        let listed = out[1].value().as_array().unwrap();
        assert_eq!(listed.len(), 1, "{db:?}: {listed:?}");
        let live = &listed[0];
        assert_eq!(live["adminUser"]["id"], root.id.as_str());
        assert_eq!(live["adminUser"]["email"], "root@platform.org");
        assert_eq!(live["targetUser"]["id"], p.worker_a.id.as_str());
        assert_eq!(live["targetUser"]["role"], "frontline_worker");
        assert_eq!(live["reason"], "Ticket 7: wizard stuck");
        let left = live["timeRemaining"].as_f64().unwrap();
        assert!(left > 29.0 * 60e3 && left <= 30.0 * 60e3, "{left}");
        assert!(live["expires"].as_f64().unwrap() > live["created_at"].as_f64().unwrap());
        assert!(live["correlation_id"].is_string());
        assert!(
            !out[1].value().to_string().contains(&imp),
            "no token listed"
        );

        let ended = out[2].value();
        assert_eq!(ended["success"], true, "{db:?}");
        let handed = ended["original_session_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(handed.len(), 64, "a session token like any other");
        assert_ne!(handed, root.token);
        assert_eq!(
            out[3].value(),
            &Json::Null,
            "{db:?}: the imp_ token is dead"
        );
        assert_eq!(out[4].value(), &json!({"isImpersonating": false}));
        assert_eq!(out[5].value(), &json!([]), "{db:?}");

        // The handed-back token is the admin, and ends with the admin's original session.
        let out = web
            .calls(&[
                current(&handed),
                current(&root.token),
                end(&root.token, &imp),
                end(&imp, &imp),
                audit(&handed),
            ])
            .await;
        assert_eq!(out[0].value()["email"], "root@platform.org", "{db:?}");
        assert_eq!(out[0].value()["role"], "system_admin");
        assert_eq!(out[1].value()["email"], "root@platform.org", "still valid");
        let minted = session_row(&web, &handed).await.unwrap();
        assert_eq!(
            minted.get("expires_at").and_then(Value::as_f64),
            original.get("expires_at").and_then(Value::as_f64),
            "no later than the original"
        );
        // Ending again: success, and no second token.
        assert_eq!(out[2].value(), &json!({"success": true}), "{db:?}");
        assert_eq!(
            out[3].code(),
            "UNAUTHENTICATED",
            "the dead imp_ token is no session"
        );
        let log = out[4].value();
        let ends = events(log, "impersonation_ended");
        assert_eq!(ends.len(), 1, "{log}");
        assert_eq!(ends[0]["actor_id"], root.id.as_str());
        assert_eq!(ends[0]["target_id"], p.worker_a.id.as_str());
        assert_eq!(ends[0]["company_id"], p.company_a.as_str());
        assert_eq!(ends[0]["details"]["ended_with"], "impersonation_token");
        assert_eq!(ends[0]["details"]["admin_session_issued"], "true");
        let text = log.to_string();
        assert!(
            !text.contains(&handed) && !text.contains(&imp),
            "no token in the log"
        );
        web.stop().await;
    }
}

#[tokio::test]
async fn the_admin_page_refuses_other_roles_and_bad_tokens() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let root = &p.system_admin;
        let imp = imp_token(&web, &root.token, "lead@harbour.org").await;
        let demo = seed::member(
            &web.app,
            Some(&p.company_a),
            "demo@harbour.org",
            "demo_admin",
        )
        .await;
        for (who, token, code, message) in [
            (
                "company admin",
                p.admin_a.token.as_str(),
                "FORBIDDEN",
                ADMIN_ONLY,
            ),
            ("demo admin", demo.token.as_str(), "FORBIDDEN", ADMIN_ONLY),
            ("impersonation token", imp.as_str(), "FORBIDDEN", ADMIN_ONLY),
            (
                "garbage",
                "not-a-token",
                "UNAUTHENTICATED",
                "Authentication required",
            ),
            (
                "unknown imp_",
                "imp_0000",
                "UNAUTHENTICATED",
                "Authentication required",
            ),
        ] {
            let out = web
                .calls(&[search(token, None, None), sessions(token), terminate(token)])
                .await;
            for o in &out {
                assert_eq!(
                    (o.code(), o.message().as_str()),
                    (code, message),
                    "{db:?} {who}: {o:?}"
                );
            }
        }
        // The emergency stop has no "before the token arrives": an empty token is refused.
        let out = web.calls(&[terminate(""), current(&imp)]).await;
        assert_eq!(out[0].code(), "UNAUTHENTICATED", "{db:?}");
        assert_eq!(
            out[1].value()["email"],
            "lead@harbour.org",
            "{db:?}: nothing was ended"
        );
        // A company admin's own session cannot end the impersonation either.
        let out = web
            .calls(&[end(&p.admin_a.token, &imp), current(&imp)])
            .await;
        assert_eq!(
            out[0].message(),
            "Impersonation session not found",
            "{db:?}"
        );
        assert_eq!(out[1].value()["email"], "lead@harbour.org");
        web.stop().await;
    }
}

#[tokio::test]
async fn one_admin_sees_anothers_sessions_but_never_their_tokens() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let root = &p.system_admin;
        let other: Member =
            seed::member(&web.app, None, "second-root@platform.org", "system_admin").await;
        let mine = imp_token(&web, &root.token, "worker@harbour.org").await;
        let theirs = imp_token(&web, &other.token, "worker@ridge.org").await;

        let out = web.calls(&[sessions(&other.token)]).await;
        let listed = out[0].value().as_array().unwrap().clone();
        assert_eq!(listed.len(), 2, "{db:?}: every admin's sessions");
        let text = out[0].value().to_string();
        for secret in [&mine, &theirs, &root.token, &other.token] {
            assert!(!text.contains(secret.as_str()), "{db:?}: no token leaks");
        }
        let of_root = listed
            .iter()
            .find(|s| s["adminUser"]["id"] == root.id.as_str())
            .unwrap();
        assert_eq!(of_root["targetUser"]["email"], "worker@harbour.org");
        let session_id = of_root["sessionId"].as_str().unwrap().to_string();
        assert!(session_id.len() > 8);

        // The row id is no credential: not as a session, and not to end the impersonation.
        let out = web
            .calls(&[
                current(&session_id),
                (
                    "query",
                    "impersonation:getImpersonationStatus",
                    json!({"session_token": session_id}),
                ),
                end(&other.token, &session_id),
                end(&other.token, &mine),
                current(&mine),
            ])
            .await;
        assert_eq!(out[0].value(), &Json::Null, "{db:?}");
        assert_eq!(out[1].value(), &json!({"isImpersonating": false}));
        assert_eq!(out[2].message(), "Impersonation session not found");
        assert_eq!(
            out[3].message(),
            "Impersonation session not found",
            "another admin's"
        );
        assert_eq!(
            out[4].value()["email"],
            "worker@harbour.org",
            "{db:?}: still live"
        );
        web.stop().await;
    }
}

#[tokio::test]
async fn the_emergency_stop_ends_every_admins_impersonations_and_is_audited() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let root = &p.system_admin;
        let other = seed::member(&web.app, None, "second-root@platform.org", "system_admin").await;
        let a = imp_token(&web, &root.token, "worker@harbour.org").await;
        let b = imp_token(&web, &root.token, "admin@ridge.org").await;
        let c = imp_token(&web, &other.token, "lead@harbour.org").await;
        let done = imp_token(&web, &other.token, "worker@ridge.org").await;
        let out = web.calls(&[end(&done, &done)]).await;
        assert_eq!(out[0].value()["success"], true, "{db:?}");

        let out = web.calls(&[terminate(&p.admin_a.token), current(&a)]).await;
        assert_eq!(out[0].code(), "FORBIDDEN", "{db:?}");
        assert_eq!(out[1].value()["email"], "worker@harbour.org", "untouched");

        let out = web
            .calls(&[
                terminate(&other.token),
                current(&a),
                current(&b),
                current(&c),
                sessions(&root.token),
                current(&root.token),
                current(&other.token),
                terminate(&root.token),
                audit(&root.token),
            ])
            .await;
        let stopped = out[0].value();
        assert_eq!(stopped["success"], true, "{db:?}");
        assert_eq!(
            stopped["sessions_terminated"], 3.0,
            "{db:?}: the ended one is not counted"
        );
        assert!(stopped["correlation_id"].is_string());
        for (i, o) in out[1..4].iter().enumerate() {
            assert_eq!(o.value(), &Json::Null, "{db:?}: impersonation {i} ended");
        }
        assert_eq!(out[4].value(), &json!([]), "{db:?}");
        assert_eq!(
            out[5].value()["email"],
            "root@platform.org",
            "admins stay signed in"
        );
        assert_eq!(out[6].value()["email"], "second-root@platform.org");
        assert_eq!(out[7].value()["sessions_terminated"], 0.0, "nothing left");

        let log = out[8].value();
        let stops = events(log, "impersonation_emergency_stop");
        assert_eq!(stops.len(), 2, "{log}");
        let by = |count: &str| {
            stops
                .iter()
                .find(|e| e["details"]["sessions_terminated"] == count)
                .map(|e| e["actor_id"].clone())
        };
        assert_eq!(by("3"), Some(json!(other.id)), "{log}");
        assert_eq!(by("0"), Some(json!(root.id)), "{log}");
        let ended: Vec<&Json> = events(log, "impersonation_ended")
            .into_iter()
            .filter(|e| e["details"]["ended_with"] == "emergency_termination")
            .collect();
        assert_eq!(ended.len(), 3, "{log}");
        for e in &ended {
            assert_eq!(e["actor_id"], other.id.as_str(), "who pressed the button");
        }
        let started_by_root = ended
            .iter()
            .filter(|e| e["details"]["started_by"] == root.id.as_str())
            .count();
        assert_eq!(started_by_root, 2);
        assert!(ended
            .iter()
            .any(|e| e["company_id"] == p.company_b.as_str()));
        web.stop().await;
    }
}

#[tokio::test]
async fn the_handed_back_session_never_outlives_the_admins_sign_in() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let root = &p.system_admin;
        // Four more sessions: minting one more must evict one, never the original (the oldest).
        let original = session_row(&web, &root.token).await.unwrap();
        let created = original.get("created_at").and_then(Value::as_f64).unwrap();
        let mut others = Vec::new();
        for i in 1..=4 {
            others.push(extra_session(&web, &root.id, created + f64::from(i)).await);
        }
        let soon = seed::now_ms() + 10.0 * 60e3;
        set_number(&web, &original.id, "expires_at", soon).await;

        let imp = imp_token(&web, &root.token, "worker@harbour.org").await;
        let out = web
            .calls(&[end(&imp, &imp), current(&root.token), current(&others[0])])
            .await;
        let handed = out[0].value()["original_session_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{db:?}: {:?}", out[0]))
            .to_string();
        assert_eq!(
            out[1].value()["email"],
            "root@platform.org",
            "{db:?}: original kept"
        );
        assert_eq!(
            out[2].value(),
            &Json::Null,
            "{db:?}: the oldest other one evicted"
        );
        let minted = session_row(&web, &handed).await.unwrap();
        assert_eq!(minted.get("expires_at").and_then(Value::as_f64), Some(soon));

        // Once the session that started it is gone, the impersonation is over: ending it from
        // another of the admin's sessions succeeds, and mints nothing.
        let imp = imp_token(&web, &root.token, "worker@harbour.org").await;
        let out = web
            .calls(&[
                (
                    "mutation",
                    "auth:logoutUser",
                    json!({"sessionToken": root.token}),
                ),
                current(&imp),
                end(&others[1], &imp),
            ])
            .await;
        assert_eq!(out[1].value(), &Json::Null, "{db:?}");
        assert_eq!(
            out[2].value(),
            &json!({"success": true}),
            "{db:?}: no token"
        );
        web.stop().await;
    }
}
