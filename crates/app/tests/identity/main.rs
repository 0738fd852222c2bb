//! Sign-in, sessions, lockout and passwords through the real HTTP API.

#[path = "../harness/mod.rs"]
mod harness;
mod reset;
mod security;

use harness::{backends, App, Place};
use serde_json::json;

const PW: &str = "Str0ng!Pass";

#[tokio::test]
async fn register_sign_in_use_the_session_and_sign_out() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let user_id = app.register("Jo Worker", "  Jo@Example.ORG ", PW).await;

        // Emails are normalised on every path, so mixed case signs in.
        let login = app.login("JO@example.org", PW).await;
        assert_eq!(login["user"]["id"], user_id.as_str());
        assert_eq!(login["user"]["role"], "frontline_worker");
        let token = login["sessionToken"].as_str().unwrap().to_string();
        assert_eq!(token.len(), 64, "32 random bytes in hex");
        let expires = login["expires"].as_f64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as f64;
        assert!((expires - now - 24.0 * 3600e3).abs() < 60e3, "24 h session");

        let me = app
            .ok("query", "users:getCurrent", json!({"sessionToken": token}))
            .await;
        assert_eq!(me["email"], "jo@example.org");
        assert!(me.get("password").is_none(), "never the hash: {me}");
        // The official clients' setAuth sends the token as a bearer token instead.
        let by_bearer = app
            .call_as("query", "auth:verifySession", json!({}), Some(&token))
            .await;
        assert_eq!(by_bearer["value"]["_id"], user_id.as_str(), "{by_bearer}");
        let perms = app
            .ok(
                "query",
                "permissions:getUserPermissions",
                json!({"sessionToken": token}),
            )
            .await;
        assert_eq!(
            perms["permissions"],
            json!([
                "create_incident",
                "view_my_incidents",
                "edit_own_incident_capture"
            ])
        );

        app.ok(
            "mutation",
            "auth:logoutUser",
            json!({"sessionToken": token}),
        )
        .await;
        assert_eq!(
            app.ok("query", "users:getCurrent", json!({"sessionToken": token}))
                .await,
            json!(null)
        );
        assert_eq!(
            app.ok(
                "mutation",
                "auth:logoutUser",
                json!({"sessionToken": token})
            )
            .await["success"],
            true
        );
        let perms = app
            .ok(
                "query",
                "permissions:getUserPermissions",
                json!({"sessionToken": token}),
            )
            .await;
        assert_eq!(perms["reason"], "Invalid or expired session");

        let remember = app
            .ok(
                "mutation",
                "auth:loginUser",
                json!({"email": "jo@example.org", "password": PW, "rememberMe": true}),
            )
            .await;
        assert!(
            remember["expires"].as_f64().unwrap() - now > 29.0 * 24.0 * 3600e3,
            "30 days with remember-me"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn registration_refuses_bad_input_and_tenant_hopping() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let weak = app
        .call(
            "mutation",
            "auth:registerUser",
            json!({"name": "A", "email": "a@x.org", "password": "password1"}),
        )
        .await;
    // Sign-in calls fail with the message as the data (the web app searches it as text).
    assert_eq!(weak["errorData"], weak["errorMessage"]);
    assert!(weak["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("Password does not meet requirements"));
    assert_eq!(
        app.message(
            "mutation",
            "auth:registerUser",
            json!({"name": "A", "email": "not-an-email", "password": PW})
        )
        .await,
        "Invalid email format"
    );
    app.register("A", "a@x.org", PW).await;
    assert_eq!(
        app.message(
            "mutation",
            "auth:registerUser",
            json!({"name": "B", "email": "A@X.org", "password": PW})
        )
        .await,
        "User with this email already exists"
    );
    let hop = json!({"name": "C", "email": "c@x.org", "password": PW, "company_id": "j570pc2nfafw9t8e6dc7v8p7xg8kdsw0"});
    assert_eq!(
        app.message("mutation", "auth:registerUser", hop).await,
        "Joining a company requires an invitation"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    app.register("A", "a@x.org", PW).await;
    let unknown = app
        .call(
            "mutation",
            "auth:loginUser",
            json!({"email": "nobody@x.org", "password": PW}),
        )
        .await;
    let wrong = app
        .call(
            "mutation",
            "auth:loginUser",
            json!({"email": "a@x.org", "password": "Wr0ng!Pass"}),
        )
        .await;
    assert_eq!(unknown["errorMessage"], wrong["errorMessage"]);
    assert_eq!(unknown["errorData"], wrong["errorData"]);
    assert_eq!(wrong["errorData"], "Invalid email or password");
    app.stop().await;
}

#[tokio::test]
async fn five_failures_lock_the_account_durably() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        app.register("A", "a@x.org", PW).await;
        for attempt in 1..=4 {
            let body = app
                .call(
                    "mutation",
                    "auth:loginUser",
                    json!({"email": "a@x.org", "password": "Wr0ng!Pass"}),
                )
                .await;
            assert_eq!(
                body["errorData"], "Invalid email or password",
                "attempt {attempt}"
            );
        }
        let fifth = app
            .call(
                "mutation",
                "auth:loginUser",
                json!({"email": "a@x.org", "password": "Wr0ng!Pass"}),
            )
            .await;
        assert_eq!(fifth["errorData"], fifth["errorMessage"], "{fifth}");
        assert!(fifth["errorMessage"].as_str().unwrap().contains("locked"));
        // Even the right password is refused now, and after a restart too.
        assert!(app
            .message(
                "mutation",
                "auth:loginUser",
                json!({"email": "a@x.org", "password": PW})
            )
            .await
            .contains("locked"));
        app.stop().await;
        let app = App::start(&place).await;
        let body = app
            .call(
                "mutation",
                "auth:loginUser",
                json!({"email": "a@x.org", "password": PW}),
            )
            .await;
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("Try again in 15 minutes"),
            "{db:?}: {body}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn at_most_five_sessions_the_oldest_evicted() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    app.register("A", "a@x.org", PW).await;
    let mut tokens = Vec::new();
    for _ in 0..6 {
        tokens.push(app.token("a@x.org", PW).await);
    }
    assert_eq!(
        app.ok(
            "query",
            "auth:getCurrentUser",
            json!({"sessionToken": tokens[0]})
        )
        .await,
        json!(null),
        "oldest evicted"
    );
    for t in &tokens[1..] {
        assert_eq!(
            app.ok("query", "auth:getCurrentUser", json!({"sessionToken": t}))
                .await["email"],
            "a@x.org"
        );
    }
    app.stop().await;
}

/// Many sign-ins of one account at once all contend for its session list; each must still succeed
/// (on PostgreSQL, through serialization retries) and the cap must still hold.
#[tokio::test]
async fn concurrent_sign_ins_of_one_account_all_succeed_and_keep_the_cap() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        app.register("A", "a@x.org", PW).await;
        let logins = (0..12).map(|_| app.login("a@x.org", PW));
        let results = futures::future::join_all(logins).await;
        let mut live = 0;
        for result in &results {
            let token = result["sessionToken"]
                .as_str()
                .unwrap_or_else(|| panic!("{db:?}: a sign-in failed: {result}"));
            let me = app
                .ok(
                    "query",
                    "auth:getCurrentUser",
                    json!({"sessionToken": token}),
                )
                .await;
            if me != json!(null) {
                live += 1;
            }
        }
        assert_eq!(live, 5, "{db:?}: exactly five sessions remain");
        app.stop().await;
    }
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    app.register("A", "a@x.org", PW).await;
    let token = app.token("a@x.org", PW).await;
    let db = std::fs::read(place.dir.path().join("data/supportsignal.db")).unwrap();
    let wal = std::fs::read(place.dir.path().join("data/supportsignal.db-wal")).unwrap_or_default();
    let contains = |hay: &[u8]| hay.windows(token.len()).any(|w| w == token.as_bytes());
    assert!(
        !contains(&db) && !contains(&wal),
        "the raw session token must not be stored"
    );
    app.stop().await;
}

#[tokio::test]
async fn changing_the_password_checks_both_and_ends_other_sessions() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    app.register("A", "a@x.org", PW).await;
    let (mine, other) = (
        app.token("a@x.org", PW).await,
        app.token("a@x.org", PW).await,
    );
    let wrong = app.call("mutation", "auth:changePassword", json!({"sessionToken": mine, "currentPassword": "Wr0ng!Pass", "newPassword": "N3w!Secret"})).await;
    assert_eq!(wrong["errorData"], "Current password is incorrect");
    let weak = app
        .call(
            "mutation",
            "auth:changePassword",
            json!({"sessionToken": mine, "currentPassword": PW, "newPassword": "weak"}),
        )
        .await;
    assert!(weak["errorData"]
        .as_str()
        .unwrap()
        .starts_with("Password does not meet requirements"));
    let anon = app
        .call(
            "mutation",
            "auth:changePassword",
            json!({"currentPassword": PW, "newPassword": "N3w!Secret"}),
        )
        .await;
    assert_eq!(anon["errorData"], "Authentication required");
    app.ok(
        "mutation",
        "auth:changePassword",
        json!({"sessionToken": mine, "currentPassword": PW, "newPassword": "N3w!Secret"}),
    )
    .await;
    assert_eq!(
        app.ok(
            "query",
            "auth:getCurrentUser",
            json!({"sessionToken": other})
        )
        .await,
        json!(null)
    );
    assert_eq!(
        app.ok(
            "query",
            "auth:getCurrentUser",
            json!({"sessionToken": mine})
        )
        .await["email"],
        "a@x.org"
    );
    assert_eq!(
        app.message(
            "mutation",
            "auth:loginUser",
            json!({"email": "a@x.org", "password": PW})
        )
        .await,
        "Invalid email or password"
    );
    app.login("a@x.org", "N3w!Secret").await;
    app.stop().await;
}

#[tokio::test]
async fn workflow_state_is_kept_on_the_session() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    app.register("A", "a@x.org", PW).await;
    let token = app.token("a@x.org", PW).await;
    let state = json!({"step": 3.0, "incidentId": "abc", "draft": {"before_event": "text"}});
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
    assert_eq!(
        app.code("query", "sessionManagement:recoverState", json!({}))
            .await,
        "UNAUTHENTICATED"
    );
    app.stop().await;
}

#[tokio::test]
async fn imported_bcrypt_hashes_sign_in_and_are_upgraded() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let user_id = app.register("Legacy", "legacy@x.org", PW).await;
    let legacy = bcrypt::hash(PW, 4).unwrap();
    let id = values::DocumentId::decode(&user_id).unwrap();
    app.store
        .mutate(move |txn| {
            let mut patch = store::Patch::new();
            patch.insert(
                "password".into(),
                Some(values::Value::from(legacy.as_str())),
            );
            txn.patch(&id, patch)
        })
        .await
        .unwrap();
    app.login("legacy@x.org", PW).await;
    let (stored, _, _) = app
        .store
        .query(move |txn| {
            Ok::<_, store::StoreError>(txn.get(&id)?.unwrap().get("password").cloned())
        })
        .await
        .unwrap();
    assert!(
        stored.unwrap().as_str().unwrap().starts_with("$argon2id$"),
        "re-hashed with argon2id"
    );
    app.login("legacy@x.org", PW).await;
    app.stop().await;
}
