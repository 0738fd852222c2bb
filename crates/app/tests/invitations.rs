//! Invitations through the real HTTP API: acceptance scenario 2 end to end, lapsed, revoked and
//! unknown links, and isolation between companies.

mod harness;
mod seed;

use harness::{backends, App, Place};
use seed::{company, links, now_ms, rows, signed_in, token_of, PW};
use serde_json::{json, Value as Json};

const SEND: &str = "users/invite/sendUserInvitation";
const ACCEPT: &str = "users/invite/acceptInvitation";
const LIST: &str = "users/invite/listPendingInvitations";
const REVOKE: &str = "users/invite/revokeInvitation";
const LINK: &str = "/invite/accept?token=";
const DAY_MS: f64 = 24.0 * 3600e3;

async fn invite(app: &App, token: &str, company: &str, email: &str, role: &str) -> Json {
    app.call(
        "action",
        SEND,
        json!({"sessionToken": token, "companyId": company, "email": email, "role": role}),
    )
    .await
}

async fn accept(app: &App, token: &str, password: &str) -> Json {
    app.call(
        "action",
        ACCEPT,
        json!({"token": token, "name": "Wendy Worker", "password": password}),
    )
    .await
}

/// The outbox status of the one email to `to`, once its delivery job has finished with it.
async fn delivery_of(app: &App, to: &str) -> String {
    for _ in 0..1500 {
        let outbox = rows(app, "email_outbox").await;
        let status = outbox
            .iter()
            .find(|r| r.get("to").and_then(values::Value::as_str) == Some(to))
            .and_then(|r| r.get("status").and_then(values::Value::as_str))
            .unwrap_or_default()
            .to_string();
        if !matches!(status.as_str(), "pending" | "sending") {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the email to {to} was never delivered");
}

#[tokio::test]
async fn scenario_2_a_worker_is_invited_accepts_and_joins_the_company() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let admin = signed_in(&app, Some(&abc), "admin@abc.org", "company_admin").await;

        let sent = invite(&app, &admin, &abc, "Wendy@ABC.org", "frontline_worker").await;
        assert_eq!(sent["status"], "success", "{sent}");
        let sent = &sent["value"];
        assert_eq!(sent["success"], true);
        let expires = sent["expiresAt"].as_f64().unwrap();
        assert!((expires - now_ms() - 7.0 * DAY_MS).abs() < 60e3, "7 days");
        assert!(sent["emailId"].is_string() && sent["invitationId"].is_string());

        let again = invite(&app, &admin, &abc, "wendy@abc.org", "team_lead").await;
        assert_eq!(again["errorData"]["code"], "CONFLICT", "{again}");
        assert_eq!(again["errorData"]["field"], "email");

        let link = links(&app, "wendy@abc.org", LINK).await;
        assert_eq!(link.len(), 1, "one email for one invitation: {link:?}");
        assert!(link[0].starts_with("http://localhost:3200/invite/accept?token="));
        let token = token_of(&link[0]);
        let stored = rows(&app, "user_invitations").await;
        let stored = stored[0].to_value().to_string();
        assert!(!stored.contains(&token), "only the hash is stored");
        // The server built from `app::registry` delivers it: without SMTP_URL it is logged and
        // kept in the outbox.
        assert_eq!(delivery_of(&app, "wendy@abc.org").await, "logged", "{db:?}");

        let pending = app
            .ok(
                "query",
                LIST,
                json!({"sessionToken": admin, "companyId": abc}),
            )
            .await;
        assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
        assert_eq!(pending[0]["email"], "wendy@abc.org");
        assert_eq!(pending[0]["inviter_email"], "admin@abc.org");
        assert_eq!(pending[0]["is_expired"], false);
        assert!(pending[0].get("token_hash").is_none(), "{pending}");

        let weak = accept(&app, &token, "password").await;
        assert_eq!(weak["errorData"]["field"], "password", "{weak}");
        assert!(weak["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Password validation failed"));

        let joined = app
            .ok(
                "action",
                ACCEPT,
                json!({"token": token, "name": " Wendy Worker ", "password": PW}),
            )
            .await;
        assert_eq!(joined["success"], true);
        let session = joined["sessionToken"].as_str().unwrap().to_string();
        let me = app
            .ok(
                "query",
                "users:getCurrent",
                json!({"sessionToken": session}),
            )
            .await;
        assert_eq!(me["_id"], joined["userId"]);
        assert_eq!(me["company_id"], abc.as_str());
        assert_eq!(me["role"], "frontline_worker");
        assert_eq!(me["name"], "Wendy Worker");
        let sessions = rows(&app, "sessions").await;
        let theirs = sessions
            .iter()
            .find(|s| s.get("user_id").and_then(values::Value::as_str) == me["_id"].as_str())
            .unwrap();
        let expires_at = theirs.get("expires_at").unwrap().as_f64().unwrap();
        assert!(expires_at - now_ms() > 29.0 * DAY_MS, "30-day session");

        let reused = accept(&app, &token, PW).await;
        assert_eq!(
            reused["errorMessage"], "This invitation has already been accepted",
            "{reused}"
        );
        app.login("wendy@abc.org", PW).await;
        let pending = app
            .ok(
                "query",
                LIST,
                json!({"sessionToken": admin, "companyId": abc}),
            )
            .await;
        assert_eq!(pending, json!([]));
        let member = invite(&app, &admin, &abc, "wendy@abc.org", "team_lead").await;
        assert_eq!(member["errorData"]["code"], "CONFLICT");
        assert!(member["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("This email address is already registered"));

        let events = app
            .ok("query", "audit:listEvents", json!({"sessionToken": admin}))
            .await;
        let names: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .collect();
        assert!(names.contains(&"invitation_sent"), "{names:?}");
        assert!(names.contains(&"invitation_accepted"), "{names:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn lapsed_revoked_and_unknown_links_are_refused_clearly() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let admin = signed_in(&app, Some(&abc), "admin@abc.org", "company_admin").await;

        let revoked = invite(&app, &admin, &abc, "rita@abc.org", "team_lead").await;
        let revoked_id = revoked["value"]["invitationId"].clone();
        let args = json!({"sessionToken": admin, "invitationId": revoked_id});
        assert_eq!(
            app.ok("mutation", REVOKE, args.clone()).await["success"],
            true
        );
        assert_eq!(app.code("mutation", REVOKE, args).await, "CONFLICT");
        let token = token_of(&links(&app, "rita@abc.org", LINK).await[0]);
        let answer = accept(&app, &token, PW).await;
        assert_eq!(
            answer["errorMessage"], "This invitation has already been revoked",
            "{answer}"
        );

        invite(&app, &admin, &abc, "late@abc.org", "frontline_worker").await;
        let token = token_of(&links(&app, "late@abc.org", LINK).await[0]);
        app.store
            .mutate(|txn| {
                for row in txn.query("user_invitations")?.collect()? {
                    let mut patch = store::Patch::new();
                    patch.insert("expires_at".into(), Some(values::Value::from(1.0)));
                    txn.patch(&row.id, patch)?;
                }
                Ok::<_, store::StoreError>(())
            })
            .await
            .unwrap();
        let pending = app
            .ok(
                "query",
                LIST,
                json!({"sessionToken": admin, "companyId": abc}),
            )
            .await;
        assert_eq!(pending[0]["is_expired"], true, "{pending}");
        let answer = accept(&app, &token, PW).await;
        assert_eq!(answer["errorMessage"], "This invitation has expired");
        // A lapsed invitation is marked as such and does not block a fresh one.
        let statuses: Vec<String> = rows(&app, "user_invitations")
            .await
            .iter()
            .map(|r| r.get("status").unwrap().as_str().unwrap().to_string())
            .collect();
        assert!(statuses.contains(&"expired".to_string()), "{statuses:?}");
        let fresh = invite(&app, &admin, &abc, "late@abc.org", "frontline_worker").await;
        assert_eq!(fresh["status"], "success", "{fresh}");

        let unknown = accept(&app, &"ab".repeat(32), PW).await;
        assert_eq!(unknown["errorMessage"], "Invalid invitation token");
        assert_eq!(unknown["errorData"]["field"], "token");
        app.stop().await;
    }
}

#[tokio::test]
async fn invitations_stay_inside_the_company() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let a = company(&app, "A Care").await;
        let b = company(&app, "B Care").await;
        let admin_a = signed_in(&app, Some(&a), "admin@a.org", "company_admin").await;
        let admin_b = signed_in(&app, Some(&b), "admin@b.org", "company_admin").await;
        let lead_a = signed_in(&app, Some(&a), "lead@a.org", "team_lead").await;
        let missing = "j570pc2nfafw9t8e6dc7v8p7xg8kdsw0";

        // Another company and a made-up one get the same answer.
        let foreign = invite(&app, &admin_a, &b, "x@b.org", "frontline_worker").await;
        let made_up = invite(&app, &admin_a, missing, "x@b.org", "frontline_worker").await;
        assert_eq!(foreign["errorData"], made_up["errorData"]);
        assert_eq!(foreign["errorData"]["code"], "FORBIDDEN");
        assert_eq!(
            foreign["errorMessage"],
            "You can only invite users to your own company"
        );
        let list_b = app
            .call(
                "query",
                LIST,
                json!({"sessionToken": admin_a, "companyId": b}),
            )
            .await;
        let list_missing = app
            .call(
                "query",
                LIST,
                json!({"sessionToken": admin_a, "companyId": missing}),
            )
            .await;
        assert_eq!(list_b["errorData"], list_missing["errorData"]);

        let lead = invite(&app, &lead_a, &a, "y@a.org", "frontline_worker").await;
        assert_eq!(lead["errorData"]["code"], "FORBIDDEN");
        let too_high = invite(&app, &admin_a, &a, "y@a.org", "system_admin").await;
        // Refused by the argument validator: a plain error, as Convex sends it.
        assert!(too_high.get("errorData").is_none(), "{too_high}");
        assert!(
            too_high["errorMessage"]
                .as_str()
                .unwrap()
                .starts_with("ArgumentValidationError"),
            "{too_high}"
        );
        assert!(rows(&app, "user_invitations").await.is_empty());

        let sent = invite(&app, &admin_a, &a, "y@a.org", "company_admin").await;
        let id = sent["value"]["invitationId"].clone();
        let by_b = app
            .call(
                "mutation",
                REVOKE,
                json!({"sessionToken": admin_b, "invitationId": id}),
            )
            .await;
        let bogus = app
            .call(
                "mutation",
                REVOKE,
                json!({"sessionToken": admin_b, "invitationId": missing}),
            )
            .await;
        assert_eq!(by_b["errorData"], bogus["errorData"], "same as missing");
        assert_eq!(by_b["errorData"]["code"], "NOT_FOUND");

        // A system administrator invites into any company; the company's admin sees who did.
        app::users::create_system_admin(
            &app.store,
            "root@x.org",
            "Root",
            &secrecy::SecretString::from(PW.to_string()),
        )
        .await
        .unwrap();
        let root = app.token("root@x.org", PW).await;
        let by_root = invite(&app, &root, &b, "z@b.org", "team_lead").await;
        assert_eq!(by_root["status"], "success", "{by_root}");
        let pending = app
            .ok(
                "query",
                LIST,
                json!({"sessionToken": admin_b, "companyId": b}),
            )
            .await;
        assert_eq!(pending[0]["inviter_name"], "Root");
        app.stop().await;
    }
}
