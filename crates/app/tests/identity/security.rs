//! The audit log and per-address limits.

use super::*;

#[tokio::test]
async fn security_events_are_audited_and_readable_only_with_permission() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        app::users::create_system_admin(
            &app.store,
            "root@x.org",
            "Root",
            &secrecy::SecretString::from(PW.to_string()),
        )
        .await
        .unwrap();
        app.register("A", "a@x.org", PW).await;
        let worker = app.token("a@x.org", PW).await;
        app.call(
            "mutation",
            "auth:loginUser",
            json!({"email": "a@x.org", "password": "Wr0ng!Pass"}),
        )
        .await;
        app.call(
            "mutation",
            "auth:loginUser",
            json!({"email": "ghost@x.org", "password": PW}),
        )
        .await;
        app.ok(
            "mutation",
            "auth:logoutUser",
            json!({"sessionToken": worker}),
        )
        .await;

        let worker = app.token("a@x.org", PW).await;
        assert_eq!(
            app.code("query", "audit:listEvents", json!({"sessionToken": worker}))
                .await,
            "FORBIDDEN"
        );
        let admin = app.token("root@x.org", PW).await;
        let events = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": admin, "allCompanies": true}),
            )
            .await;
        let names: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "sign_in",
                "sign_in",
                "sign_out",
                "sign_in_failed",
                "sign_in_failed",
                "sign_in",
                "user_registered",
                // The default prompts the server seeded when it started.
                "ai_prompt_changed"
            ],
            "{db:?}: newest first"
        );
        let unknown = &events[3];
        assert_eq!(unknown["details"]["email"], "ghost@x.org");
        assert!(
            !events.to_string().contains(PW) && !events.to_string().contains("Wr0ng"),
            "no secrets in the log"
        );
        let failed = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": admin, "allCompanies": true, "event": "sign_in_failed"}),
            )
            .await;
        assert_eq!(failed.as_array().unwrap().len(), 2);
        app.stop().await;
    }
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_client_address() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start_with(&place, &[("SUPPORTSIGNAL_TRUST_PROXY_HEADERS", "true")]).await;
    app.register("A", "a@x.org", PW).await;
    let attempt = |email: String, from: &'static str| {
        let request = app
            .http
            .post(format!("{}/api/mutation", app.url))
            .header("x-forwarded-for", from)
            .json(&json!({"path": "auth:loginUser", "args": [{"email": email, "password": PW}], "format": "json"}));
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // Twenty misses on different accounts from one address (no account reaches its own lockout).
    for i in 0..20 {
        let body = attempt(format!("nobody{i}@x.org"), "203.0.113.7").await;
        assert_eq!(
            body["errorData"], "Invalid email or password",
            "attempt {i}: {body}"
        );
    }
    let blocked = attempt("a@x.org".into(), "203.0.113.7").await;
    assert_eq!(
        blocked["errorData"],
        "Too many failed sign-in attempts from your network. Try again later.",
        "{blocked}"
    );
    let elsewhere = attempt("a@x.org".into(), "198.51.100.9").await;
    assert_eq!(
        elsewhere["status"], "success",
        "another address is unaffected: {elsewhere}"
    );
    app.stop().await;

    // Without trusting proxy headers, a client cannot choose its own address.
    let app = App::start(&place).await;
    let spoofed = app
        .http
        .post(format!("{}/api/mutation", app.url))
        .header("x-forwarded-for", "198.51.100.77")
        .json(&json!({"path": "auth:loginUser", "args": [{"email": "nobody@x.org", "password": PW}], "format": "json"}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 200);
    let (rows, _, _) = app
        .store
        .query(|txn| {
            let rows = txn.query("rate_limits")?.collect()?;
            Ok::<_, store::StoreError>(
                rows.iter()
                    .map(|r| r.get("key").cloned())
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    assert!(
        rows.contains(&Some(values::Value::from("sign_in_failures:127.0.0.1"))),
        "{rows:?}"
    );
    assert!(
        !rows.contains(&Some(values::Value::from("sign_in_failures:198.51.100.77"))),
        "{rows:?}"
    );
    app.stop().await;
}
