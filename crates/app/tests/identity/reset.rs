//! Password reset by emailed link.

use super::*;

/// The reset link a user would find in their inbox (read from the outbox).
async fn reset_link_for(app: &App, to: &'static str) -> Vec<String> {
    let (texts, _, _) = app
        .store
        .query(move |txn| {
            let rows = txn.query("email_outbox")?.collect()?;
            Ok::<_, store::StoreError>(
                rows.iter()
                    .filter(|r| r.get("to").and_then(values::Value::as_str) == Some(to))
                    .map(|r| {
                        r.get("text")
                            .and_then(values::Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    texts
        .iter()
        .filter_map(|t| {
            t.split_whitespace()
                .find(|w| w.contains("/reset-password?token="))
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn password_reset_by_emailed_link() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        app.register("A", "a@x.org", PW).await;
        let old_session = app.token("a@x.org", PW).await;

        let known = app
            .ok(
                "action",
                "auth:requestPasswordReset",
                json!({"email": "A@x.org"}),
            )
            .await;
        let unknown = app
            .ok(
                "action",
                "auth:requestPasswordReset",
                json!({"email": "nobody@x.org"}),
            )
            .await;
        assert_eq!(
            known, unknown,
            "the answer does not reveal whether an account exists"
        );
        // A second request moments later sends no second link.
        app.ok(
            "action",
            "auth:requestPasswordReset",
            json!({"email": "a@x.org"}),
        )
        .await;
        let links = reset_link_for(&app, "a@x.org").await;
        assert_eq!(links.len(), 1, "{links:?}");
        assert!(
            links[0].starts_with("http://localhost:3200/reset-password?token="),
            "from the URL generator: {}",
            links[0]
        );
        let token = links[0].split("token=").nth(1).unwrap().to_string();

        let weak = app
            .call(
                "mutation",
                "auth:resetPassword",
                json!({"token": token, "newPassword": "weak"}),
            )
            .await;
        assert!(
            weak["errorData"]
                .as_str()
                .is_some_and(|m| m.starts_with("Password does not meet requirements")),
            "{weak}"
        );
        app.ok(
            "mutation",
            "auth:resetPassword",
            json!({"token": token, "newPassword": "N3w!Secret"}),
        )
        .await;
        assert_eq!(
            app.ok(
                "query",
                "auth:getCurrentUser",
                json!({"sessionToken": old_session})
            )
            .await,
            json!(null),
            "reset ends every session"
        );
        app.login("a@x.org", "N3w!Secret").await;
        let reused = app
            .call(
                "mutation",
                "auth:resetPassword",
                json!({"token": token, "newPassword": "Th1rd!Secret"}),
            )
            .await;
        assert_eq!(
            reused["errorData"], "Invalid or expired token",
            "single use: {reused}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn an_expired_reset_link_is_refused_and_spent() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    app.register("A", "a@x.org", PW).await;
    app.ok(
        "action",
        "auth:requestPasswordReset",
        json!({"email": "a@x.org"}),
    )
    .await;
    let link = reset_link_for(&app, "a@x.org").await.remove(0);
    let token = link.split("token=").nth(1).unwrap().to_string();
    app.store
        .mutate(|txn| {
            for row in txn.query("password_reset_tokens")?.collect()? {
                let mut patch = store::Patch::new();
                patch.insert("expires_at".into(), Some(values::Value::from(0.0)));
                txn.patch(&row.id, patch)?;
            }
            Ok::<_, store::StoreError>(())
        })
        .await
        .unwrap();
    let expired = app
        .call(
            "mutation",
            "auth:resetPassword",
            json!({"token": token, "newPassword": "N3w!Secret"}),
        )
        .await;
    assert_eq!(expired["errorMessage"], "Invalid or expired token");
    app.login("a@x.org", PW).await;
    app.stop().await;
}
