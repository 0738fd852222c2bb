//! Impersonation (scenario 14): a system admin acts as a worker with a reason, at most three at once,
//! for 30 minutes or until the admin ends it; admins cannot be impersonated; everything is audited.

mod harness;

use harness::{backends, App, Place};
use serde_json::{json, Value as Json};
use values::{DocumentId, Object, Value};

const PW: &str = "Str0ng!Pass";

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64
}

async fn admin(app: &App, email: &str) -> String {
    let secret = secrecy::SecretString::from(PW.to_string());
    app::users::create_system_admin(&app.store, email, "Root", &secret)
        .await
        .unwrap();
    app.token(email, PW).await
}

async fn company(app: &App, name: &str) -> String {
    let name = name.to_string();
    let (id, _, _) = app
        .store
        .mutate(move |txn| {
            let mut row = Object::new();
            row.insert("name".into(), Value::from(name.as_str()));
            row.insert(
                "slug".into(),
                Value::from(name.to_lowercase().replace(' ', "-")),
            );
            row.insert("contact_email".into(), Value::from("office@abc.org"));
            row.insert("status".into(), Value::from("active"));
            row.insert("created_at".into(), Value::from(txn.now_ms()));
            txn.insert("companies", row)
        })
        .await
        .unwrap();
    id.encode()
}

/// Sets fields of a document directly, as an operator would.
async fn set(app: &App, id: &str, fields: Vec<(&'static str, Value)>) {
    let id = DocumentId::decode(id).unwrap();
    app.store
        .mutate(move |txn| {
            let mut patch = store::Patch::new();
            for (k, v) in &fields {
                patch.insert(k.to_string(), Some(v.clone()));
            }
            txn.patch(&id, patch)
        })
        .await
        .unwrap();
}

/// A user of `company` with `role`; returns their id.
async fn member(app: &App, email: &str, company: &str, role: &str) -> String {
    let id = app.register("Member", email, PW).await;
    let fields = vec![
        ("company_id", Value::from(company)),
        ("role", Value::from(role)),
    ];
    set(app, &id, fields).await;
    id
}

async fn start(app: &App, admin: &str, target: &str, reason: &str) -> Json {
    app.call(
        "mutation",
        "impersonation:startImpersonation",
        json!({"admin_session_token": admin, "target_user_email": target, "reason": reason}),
    )
    .await
}

async fn imp_token(app: &App, admin: &str, target: &str) -> String {
    let started = start(app, admin, target, "support ticket 42").await;
    assert_eq!(started["status"], "success", "{started}");
    started["value"]["impersonation_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn current_email(app: &App, token: &str) -> Json {
    app.ok("query", "users:getCurrent", json!({"sessionToken": token}))
        .await["email"]
        .clone()
}

async fn status(app: &App, token: &str) -> Json {
    app.ok(
        "query",
        "impersonation:getImpersonationStatus",
        json!({"session_token": token}),
    )
    .await
}

async fn rows(app: &App) -> Vec<store::Document> {
    let (rows, _, _) = app
        .store
        .query(|txn| txn.query("impersonation_sessions")?.collect())
        .await
        .unwrap();
    rows
}

#[tokio::test]
async fn scenario_14_an_admin_acts_as_a_worker_until_ending_it_and_it_is_audited() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let root = admin(&app, "root@x.org").await;
        let abc = company(&app, "ABC Care").await;
        let worker_id = member(&app, "jo@abc.org", &abc, "frontline_worker").await;
        let worker = app.token("jo@abc.org", PW).await;

        let started = start(&app, &root, "Jo@ABC.org", "  Ticket 42: cannot submit  ").await;
        let value = &started["value"];
        let token = value["impersonation_token"].as_str().unwrap().to_string();
        assert!(
            token.starts_with("imp_") && token.len() == 4 + 64,
            "{token}"
        );
        let expires = value["expires"].as_f64().unwrap();
        assert!(
            (expires - now_ms() - 30.0 * 60e3).abs() < 60e3,
            "30 minutes"
        );
        assert!(value["correlation_id"].is_string());

        // Every call acts as the worker: identity, permissions, and what the worker may not do.
        let me = app
            .ok("query", "users:getCurrent", json!({"sessionToken": token}))
            .await;
        assert_eq!(me["_id"], worker_id.as_str());
        assert_eq!(me["company_id"], abc.as_str());
        let perms = app
            .ok(
                "query",
                "permissions:getUserPermissions",
                json!({"sessionToken": token}),
            )
            .await;
        assert_eq!(perms["role"], "frontline_worker");
        let by_bearer = app
            .call_as("query", "auth:verifySession", json!({}), Some(&token))
            .await;
        assert_eq!(by_bearer["value"]["email"], "jo@abc.org", "{by_bearer}");
        assert_eq!(
            app.code("query", "audit:listEvents", json!({"sessionToken": token}))
                .await,
            "FORBIDDEN",
            "the admin's powers do not come along"
        );
        // Workflow state saved while impersonating stays with the impersonation.
        let state = json!({"step": 2.0});
        app.ok(
            "mutation",
            "sessionManagement:updateWorkflowState",
            json!({"sessionToken": token, "workflowState": state}),
        )
        .await;
        let recovered = app
            .ok(
                "query",
                "sessionManagement:recoverState",
                json!({"sessionToken": token}),
            )
            .await;
        assert_eq!(recovered["workflowState"], state);
        let own = app
            .ok(
                "query",
                "sessionManagement:recoverState",
                json!({"sessionToken": worker}),
            )
            .await;
        assert_eq!(own["workflowState"], Json::Null);

        let s = status(&app, &token).await;
        assert_eq!(s["isImpersonating"], true);
        assert_eq!(s["adminUser"]["email"], "root@x.org");
        assert_eq!(s["targetUser"]["email"], "jo@abc.org");
        assert_eq!(s["reason"], "Ticket 42: cannot submit");
        let left = s["timeRemaining"].as_f64().unwrap();
        assert!(left > 29.0 * 60e3 && left <= 30.0 * 60e3, "{left}");
        assert_eq!(status(&app, &root).await, json!({"isImpersonating": false}));
        assert_eq!(
            status(&app, "imp_nope").await,
            json!({"isImpersonating": false})
        );

        // The admin's own session keeps working throughout.
        assert_eq!(current_email(&app, &root).await, "root@x.org");
        assert_eq!(current_email(&app, &worker).await, "jo@abc.org");

        // Only the hash is stored.
        let stored = rows(&app).await;
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].to_value().to_string().contains(&token));

        let ended = app
            .ok(
                "mutation",
                "impersonation:endImpersonation",
                json!({"sessionToken": root, "impersonation_token": token}),
            )
            .await;
        assert_eq!(ended["success"], true);
        // A fresh admin session is handed back (the raw original was never stored).
        let handed = ended["original_session_token"].as_str().unwrap();
        assert_ne!(handed, root);
        assert_eq!(current_email(&app, handed).await, "root@x.org");
        assert_eq!(
            app.ok("query", "users:getCurrent", json!({"sessionToken": token}))
                .await,
            Json::Null
        );
        assert_eq!(status(&app, &token).await["isImpersonating"], false);
        assert_eq!(current_email(&app, &root).await, "root@x.org");
        // Ending again is harmless, and hands back nothing more.
        let again = app
            .ok(
                "mutation",
                "impersonation:endImpersonation",
                json!({"sessionToken": root, "impersonation_token": token}),
            )
            .await;
        assert_eq!(again, json!({"success": true}));

        let events = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": root, "allCompanies": true}),
            )
            .await;
        let of = |name: &str| {
            events
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["event"] == name)
                .cloned()
                .collect::<Vec<_>>()
        };
        let (began, finished) = (of("impersonation_started"), of("impersonation_ended"));
        assert_eq!((began.len(), finished.len()), (1, 1), "{events}");
        for e in [&began[0], &finished[0]] {
            assert_eq!(e["details"]["reason"], "Ticket 42: cannot submit");
            assert_eq!(e["target_id"], worker_id.as_str());
            assert_eq!(e["company_id"], abc.as_str());
            assert!(!e.to_string().contains(&token), "no token in the log");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn starting_refuses_wrong_roles_admin_targets_and_bad_input() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let root = admin(&app, "root@x.org").await;
        admin(&app, "other-root@x.org").await;
        let abc = company(&app, "ABC Care").await;
        member(&app, "jo@abc.org", &abc, "frontline_worker").await;
        member(&app, "demo@abc.org", &abc, "demo_admin").await;
        member(&app, "boss@abc.org", &abc, "company_admin").await;
        let boss = app.token("boss@abc.org", PW).await;

        let error = |body: Json| (body["errorData"].clone(), body["errorMessage"].clone());
        let (data, message) = error(start(&app, &boss, "jo@abc.org", "curious").await);
        assert_eq!(data["code"], "FORBIDDEN");
        assert!(message
            .as_str()
            .unwrap()
            .starts_with("Insufficient permissions"));
        let (data, _) = error(start(&app, "", "jo@abc.org", "why").await);
        assert_eq!(data["code"], "UNAUTHENTICATED");
        let (data, _) = error(start(&app, &root, "jo@abc.org", "   ").await);
        assert_eq!(
            (data["code"].as_str(), data["field"].as_str()),
            (Some("VALIDATION"), Some("reason"))
        );
        let (data, _) = error(start(&app, &root, "not-an-email", "why").await);
        assert_eq!(data["field"], "target_user_email");
        let (data, message) = error(start(&app, &root, "ghost@abc.org", "why").await);
        assert_eq!(
            (data["code"].as_str(), message.as_str()),
            (Some("NOT_FOUND"), Some("Target user not found"))
        );
        for admin_target in ["other-root@x.org", "demo@abc.org", "root@x.org"] {
            let (data, message) = error(start(&app, &root, admin_target, "why").await);
            assert_eq!(data["code"], "FORBIDDEN", "{admin_target}");
            assert_eq!(message, "Cannot impersonate other system administrators");
        }
        // A company admin is not an admin of the system, so support may act as one.
        let token = imp_token(&app, &root, "boss@abc.org").await;
        assert_eq!(current_email(&app, &token).await, "boss@abc.org");
        // Impersonations do not chain: an impersonation token is not an admin session.
        let (data, _) = error(start(&app, &token, "jo@abc.org", "why").await);
        assert_eq!(data["code"], "FORBIDDEN");
        assert_eq!(rows(&app).await.len(), 1, "nothing stored for refusals");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_fourth_concurrent_impersonation_is_refused() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let root = admin(&app, "root@x.org").await;
    let abc = company(&app, "ABC Care").await;
    member(&app, "jo@abc.org", &abc, "frontline_worker").await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(imp_token(&app, &root, "jo@abc.org").await);
    }
    let fourth = start(&app, &root, "jo@abc.org", "one more").await;
    assert_eq!(fourth["errorData"]["code"], "CONFLICT");
    assert_eq!(
        fourth["errorMessage"],
        "Maximum concurrent impersonation sessions reached (3)"
    );
    // Ending one frees a place; so does one expiring.
    app.ok(
        "mutation",
        "impersonation:endImpersonation",
        json!({"sessionToken": root, "impersonation_token": tokens[0]}),
    )
    .await;
    imp_token(&app, &root, "jo@abc.org").await;
    assert_eq!(
        start(&app, &root, "jo@abc.org", "again").await["errorData"]["code"],
        "CONFLICT"
    );
    let oldest_live = rows(&app)
        .await
        .into_iter()
        .find(|r| r.get("is_active") == Some(&Value::from(true)))
        .unwrap();
    set(
        &app,
        &oldest_live.id.encode(),
        vec![("expires_at", Value::from(0.0))],
    )
    .await;
    imp_token(&app, &root, "jo@abc.org").await;
    app.stop().await;
}

#[tokio::test]
async fn impersonations_stop_at_expiry_and_with_the_admins_session() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let root = admin(&app, "root@x.org").await;
        let abc = company(&app, "ABC Care").await;
        member(&app, "jo@abc.org", &abc, "frontline_worker").await;

        let token = imp_token(&app, &root, "jo@abc.org").await;
        assert_eq!(current_email(&app, &token).await, "jo@abc.org");
        let row = rows(&app).await.remove(0);
        set(
            &app,
            &row.id.encode(),
            vec![("expires_at", Value::from(now_ms() - 1.0))],
        )
        .await;
        assert_eq!(
            app.ok("query", "users:getCurrent", json!({"sessionToken": token}))
                .await,
            Json::Null
        );
        assert_eq!(
            app.code(
                "query",
                "sessionManagement:recoverState",
                json!({"sessionToken": token})
            )
            .await,
            "UNAUTHENTICATED"
        );
        assert_eq!(status(&app, &token).await["isImpersonating"], false);

        // Signing out of the admin session that started it ends it as well.
        let token = imp_token(&app, &root, "jo@abc.org").await;
        assert_eq!(current_email(&app, &token).await, "jo@abc.org");
        app.ok("mutation", "auth:logoutUser", json!({"sessionToken": root}))
            .await;
        assert_eq!(
            app.ok("query", "users:getCurrent", json!({"sessionToken": token}))
                .await,
            Json::Null
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn only_the_impersonating_admin_can_end_it() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let root = admin(&app, "root@x.org").await;
        let other_root = admin(&app, "other-root@x.org").await;
        let abc = company(&app, "ABC Care").await;
        member(&app, "jo@abc.org", &abc, "frontline_worker").await;
        let worker = app.token("jo@abc.org", PW).await;
        let token = imp_token(&app, &root, "jo@abc.org").await;

        let end = |session: Option<&str>, imp: &str| {
            let mut args = json!({"impersonation_token": imp});
            if let Some(s) = session {
                args["sessionToken"] = json!(s);
            }
            app.call("mutation", "impersonation:endImpersonation", args)
        };
        let missing = end(Some(&root), &format!("imp_{}", "0".repeat(64))).await;
        assert_eq!(missing["errorMessage"], "Impersonation session not found");
        for stranger in [&other_root, &worker] {
            let foreign = end(Some(stranger), &token).await;
            assert_eq!(
                foreign["errorData"], missing["errorData"],
                "same as missing"
            );
        }
        assert_eq!(
            end(None, &token).await["errorData"]["code"],
            "UNAUTHENTICATED"
        );
        assert_eq!(
            current_email(&app, &token).await,
            "jo@abc.org",
            "still live"
        );

        // While impersonating, the web client injects the impersonation token itself as the session.
        let ended = end(Some(&token), &token).await;
        assert_eq!(ended["value"]["success"], true, "{ended}");
        let handed = ended["value"]["original_session_token"].as_str().unwrap();
        assert_eq!(current_email(&app, handed).await, "root@x.org");
        assert_eq!(status(&app, &token).await["isImpersonating"], false);
        app.stop().await;
    }
}

/// How many sessions exist, of anyone.
async fn session_count(app: &App) -> usize {
    let (rows, _, _) = app
        .store
        .query(|txn| txn.query("sessions")?.collect())
        .await
        .unwrap();
    rows.len()
}

#[tokio::test]
async fn signing_out_of_an_impersonation_ends_it_and_keeps_the_admin_signed_in() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let root = admin(&app, "root@x.org").await;
    let abc = company(&app, "ABC Care").await;
    member(&app, "worker@x.org", &abc, "frontline_worker").await;
    let imp = imp_token(&app, &root, "worker@x.org").await;
    assert_eq!(current_email(&app, &imp).await, "worker@x.org");
    let sessions_before = session_count(&app).await;
    app.ok("mutation", "auth:logoutUser", json!({"sessionToken": imp}))
        .await;
    assert_eq!(
        session_count(&app).await,
        sessions_before,
        "signing out mints no admin session"
    );
    assert_eq!(status(&app, &imp).await["isImpersonating"], false);
    assert_eq!(
        app.ok("query", "users:getCurrent", json!({"sessionToken": imp}))
            .await,
        json!(null)
    );
    assert_eq!(current_email(&app, &root).await, "root@x.org");
    app.stop().await;
}

#[tokio::test]
async fn changes_made_while_impersonating_name_the_admin_in_the_audit_log() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let root = admin(&app, "root@x.org").await;
        let abc = company(&app, "ABC Care").await;
        let boss_id = member(&app, "boss@abc.org", &abc, "company_admin").await;
        let token = imp_token(&app, &root, "boss@abc.org").await;
        let root_id = app
            .ok("query", "users:getCurrent", json!({"sessionToken": root}))
            .await["_id"]
            .clone();

        let sent = app
            .call(
                "action",
                "users/invite/sendUserInvitation",
                json!({"sessionToken": token, "companyId": abc, "email": "new@abc.org", "role": "frontline_worker"}),
            )
            .await;
        assert_eq!(sent["status"], "success", "{sent}");

        let events = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": root, "allCompanies": true}),
            )
            .await;
        let invited: Vec<_> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "invitation_sent")
            .collect();
        assert_eq!(invited.len(), 1, "{events}");
        assert_eq!(
            invited[0]["actor_id"],
            boss_id.as_str(),
            "acting as the company admin"
        );
        assert_eq!(
            invited[0]["impersonated_by"], root_id,
            "and naming who really acted"
        );
        app.stop().await;
    }
}
