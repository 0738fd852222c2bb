//! Contract §1 (auth), §5 (email), §9 (permissions) and the error shapes the web app's sign-in code
//! and the official client rely on.

use app::identity::Permission;
use serde_json::{json, Value as Json};

use crate::seed::{self, PW};
use crate::{backends, Outcome, Web};

fn owner_access(out: &Outcome) -> (bool, String, Option<String>) {
    let v = out.value();
    (
        v["hasAccess"].as_bool().expect("hasAccess is a boolean"),
        v["reason"]
            .as_str()
            .expect("reason is a string")
            .to_string(),
        v.get("userEmail").map(|e| e.as_str().unwrap().to_string()),
    )
}

/// The app subscribes to it on every page (no token on public pages): it answers, never throws.
#[tokio::test]
async fn verify_owner_access_is_the_system_admin_role_and_never_throws() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let ask = |token: Option<&str>| {
            let args = match token {
                Some(t) => json!({"sessionToken": t}),
                None => json!({}),
            };
            ("query", "auth:verifyOwnerAccess", args)
        };
        // A system admin who impersonates a worker: the `imp_` token is the worker's.
        let started = web
            .mutation(
                "impersonation:startImpersonation",
                json!({"admin_session_token": p.system_admin.token,
                       "target_user_email": "worker@harbour.org", "reason": "support ticket 7",
                       "sessionToken": p.system_admin.token}),
            )
            .await;
        let imp = started.value()["impersonation_token"]
            .as_str()
            .unwrap()
            .to_string();
        // A live session whose user row is gone.
        let orphan = seed::anyone(&web.app, Some(&p.company_a), "team_lead").await;
        let orphan_id = values::DocumentId::decode(&orphan.id).unwrap();
        web.app
            .store
            .mutate(move |txn| txn.delete(&orphan_id))
            .await
            .unwrap();

        let out = web
            .calls(&[
                ask(None),
                ask(Some("nonsense")),
                ask(Some(&p.system_admin.token)),
                ask(Some(&p.admin_a.token)),
                ask(Some(&p.worker_b.token)),
                ask(Some(&imp)),
                ask(Some("imp_0000000000000000")),
                ask(Some(&orphan.token)),
            ])
            .await;
        let no = |reason: &str, email: Option<&str>| {
            (false, reason.to_string(), email.map(str::to_string))
        };
        assert_eq!(
            owner_access(&out[0]),
            no("No session token provided", None),
            "{db:?}"
        );
        assert_eq!(
            owner_access(&out[1]),
            no("Invalid or expired session", None),
            "{db:?}"
        );
        assert_eq!(
            owner_access(&out[2]),
            (
                true,
                "Access granted".to_string(),
                Some("root@platform.org".to_string())
            ),
            "{db:?}"
        );
        let restricted = "Access restricted to owner only";
        assert_eq!(
            owner_access(&out[3]),
            no(restricted, Some("admin@harbour.org")),
            "{db:?}: a company admin is no owner"
        );
        assert_eq!(
            owner_access(&out[4]),
            no(restricted, Some("worker@ridge.org")),
            "{db:?}"
        );
        assert_eq!(
            owner_access(&out[5]),
            no(restricted, Some("worker@harbour.org")),
            "{db:?}: never while impersonating"
        );
        assert_eq!(
            owner_access(&out[6]),
            no("Invalid or expired session", None),
            "{db:?}"
        );
        assert_eq!(owner_access(&out[7]), no("User not found", None), "{db:?}");
        web.stop().await;
    }
}

/// `lib/auth.ts` does `(error.data || error.message).includes(...)`: the data must be the message.
#[tokio::test]
async fn sign_in_calls_fail_with_the_message_as_error_data() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let token = seed::signed_in(
            &web.app,
            Some(&p.company_a),
            "nurse@harbour.org",
            "team_lead",
        )
        .await;
        let out = web
            .calls(&[
                (
                    "mutation",
                    "auth:loginUser",
                    json!({"email": "nurse@harbour.org", "password": "Wrong!Pass1"}),
                ),
                (
                    "mutation",
                    "auth:registerUser",
                    json!({"name": "Again", "email": "nurse@harbour.org", "password": PW}),
                ),
                (
                    "mutation",
                    "auth:changePassword",
                    json!({"currentPassword": "Wrong!Pass1", "newPassword": "N3w!Passw0rd",
                           "sessionToken": token}),
                ),
                (
                    "mutation",
                    "auth:resetPassword",
                    json!({"token": "no-such-token", "newPassword": "N3w!Passw0rd"}),
                ),
                (
                    "action",
                    "auth:githubOAuthLogin",
                    json!({"code": "c", "state": "s"}),
                ),
                (
                    "action",
                    "auth:googleOAuthLogin",
                    json!({"code": "c", "state": "s"}),
                ),
                // Not a sign-in call: still `{code, message, field?}`.
                (
                    "query",
                    "permissions:getRolePermissionLabels",
                    json!({"sessionToken": p.worker_a.token, "role": "owner"}),
                ),
            ])
            .await;
        let expected = [
            "Invalid email or password",
            "User with this email already exists",
            "Current password is incorrect",
            "Invalid or expired token",
            "GitHub OAuth",
            "Google OAuth",
        ];
        for (outcome, phrase) in out.iter().zip(expected) {
            let error = outcome.error();
            assert_eq!(error["isConvexError"], true, "{db:?}: {error}");
            let data = error["data"].as_str().unwrap_or_else(|| {
                panic!("{db:?}: the data must be a string, got {error}");
            });
            assert!(data.contains(phrase), "{db:?}: {data:?} lacks {phrase:?}");
            assert!(
                error["message"].as_str().unwrap().contains(phrase),
                "{db:?}: {error}"
            );
        }
        assert_eq!(out[6].error()["isConvexError"], true, "{db:?}");
        assert_eq!(
            out[6].error()["data"],
            json!({"code": "VALIDATION", "message": "Invalid role: owner", "field": "role"}),
            "{db:?}"
        );
        // The failed sign-in changed nothing the user would notice: the password still works.
        let again = web
            .mutation(
                "auth:loginUser",
                json!({"email": "nurse@harbour.org", "password": PW}),
            )
            .await;
        assert!(again.value()["sessionToken"].is_string(), "{db:?}");
        web.stop().await;
    }
}

/// What Convex itself refuses arrives as a plain `Error` (no data), with Convex's wording; the
/// functions' own refusals stay ConvexErrors.
#[tokio::test]
async fn platform_refusals_are_plain_errors() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let mut deep = json!("bottom");
        for _ in 0..80 {
            deep = json!({ "d": deep });
        }
        let out = web
            .calls(&[
                ("query", "nope:missing", json!({})),
                ("mutation", "nope:missing", json!({})),
                ("action", "nope:missing", json!({})),
                // Internal functions look exactly like missing ones.
                (
                    "mutation",
                    "auth:createPasswordResetByAdmin",
                    json!({"email": "worker@harbour.org"}),
                ),
                ("mutation", "auth:verifyOwnerAccess", json!({})),
                ("action", "auth:loginUser", json!({})),
                ("query", "auth:verifyOwnerAccess", json!({"surprise": 1})),
                // A sign-in call's argument errors are the platform's too.
                ("mutation", "auth:loginUser", json!({"email": "a@b.org"})),
                ("query", "auth:verifyOwnerAccess", json!({"deep": deep})),
                ("mutation", "auth:logoutUser", json!({"deep": deep})),
                // A function's own refusal: a ConvexError with its code.
                (
                    "query",
                    "permissions:getRolePermissionLabels",
                    json!({"sessionToken": "nonsense"}),
                ),
            ])
            .await;
        let plain = |i: usize, phrase: &str| {
            let error = out[i].error();
            assert_eq!(error["isConvexError"], false, "{db:?} #{i}: {error}");
            assert_eq!(error["data"], Json::Null, "{db:?} #{i}: {error}");
            let message = error["message"].as_str().unwrap();
            assert!(
                message.contains(phrase),
                "{db:?} #{i}: {message:?} lacks {phrase:?}"
            );
        };
        plain(0, "Could not find public function for 'nope:missing'.");
        plain(1, "Could not find public function for 'nope:missing'.");
        plain(2, "Could not find public function for 'nope:missing'.");
        plain(
            3,
            "Could not find public function for 'auth:createPasswordResetByAdmin'.",
        );
        plain(
            4,
            "Trying to execute auth:verifyOwnerAccess as Mutation, but it is defined as Query.",
        );
        plain(
            5,
            "Trying to execute auth:loginUser as Action, but it is defined as Mutation.",
        );
        plain(6, "ArgumentValidationError: ");
        plain(6, "surprise");
        plain(7, "ArgumentValidationError: ");
        plain(7, "password");
        plain(8, "too deeply nested");
        plain(9, "too deeply nested");
        assert_eq!(out[10].error()["isConvexError"], true, "{db:?}");
        assert_eq!(out[10].code(), "UNAUTHENTICATED", "{db:?}");
        // The connection is still usable after all that.
        let after = web
            .query(
                "auth:verifyOwnerAccess",
                json!({"sessionToken": p.system_admin.token}),
            )
            .await;
        assert_eq!(after.value()["hasAccess"], true, "{db:?}");
        web.stop().await;
    }
}

#[tokio::test]
async fn testable_permissions_list_every_permission_without_a_session() {
    for db in backends() {
        let web = Web::start(db).await;
        let out = web
            .query("permissions:getTestablePermissions", json!({}))
            .await;
        let v = out.value();
        assert!(v["correlationId"].is_string(), "{db:?}");
        let entries = v["permissions"].as_array().unwrap();
        let mut keys: Vec<&str> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
        keys.sort_unstable();
        let mut all: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        all.sort_unstable();
        assert_eq!(keys, all, "{db:?}: every permission, once");
        for e in entries {
            assert_eq!(e["testable"], true, "{e}");
            assert!(!e["description"].as_str().unwrap().is_empty(), "{e}");
        }
        let order: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e["category"].as_str().unwrap(),
                    e["label"].as_str().unwrap(),
                )
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted, "{db:?}: by category, then label");
        let find = |key: &str| entries.iter().find(|e| e["key"] == key).unwrap();
        for (key, label, category) in [
            ("create_incident", "Create Incidents", "Incident Management"),
            (
                "edit_own_incident_capture",
                "Edit Own Incidents",
                "Incident Management",
            ),
            (
                "view_all_company_incidents",
                "View Company Incidents",
                "Incident Management",
            ),
            (
                "view_user_profiles",
                "View User Profiles",
                "User Management",
            ),
            (
                "manage_all_companies",
                "Manage All Companies",
                "Configuration",
            ),
            (
                "view_security_logs",
                "View Security Logs",
                "Security & Audit",
            ),
            ("impersonate_users", "Impersonate Users", "Security & Audit"),
            ("sample_data", "Sample Data", "Testing & Development"),
        ] {
            assert_eq!(find(key)["label"], label, "{db:?}");
            assert_eq!(find(key)["category"], category, "{db:?}");
        }
        web.stop().await;
    }
}

#[tokio::test]
async fn role_permission_labels_name_a_roles_permissions() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let out = web
            .calls(&[
                (
                    "query",
                    "permissions:getRolePermissionLabels",
                    json!({"sessionToken": p.worker_a.token}),
                ),
                (
                    "query",
                    "permissions:getRolePermissionLabels",
                    json!({"sessionToken": p.worker_a.token, "role": "system_admin"}),
                ),
                (
                    "query",
                    "permissions:getRolePermissionLabels",
                    json!({"sessionToken": p.lead_a.token}),
                ),
                ("query", "permissions:getRolePermissionLabels", json!({})),
            ])
            .await;
        let worker = out[0].value();
        assert_eq!(worker["role"], "frontline_worker", "{db:?}");
        assert_eq!(
            worker["permissions"],
            json!([
                "Create Incidents",
                "Edit Own Incidents",
                "View My Incidents"
            ]),
            "{db:?}"
        );
        let details = worker["permissionDetails"].as_array().unwrap();
        let keys: Vec<&str> = details.iter().map(|d| d["key"].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "create_incident",
                "edit_own_incident_capture",
                "view_my_incidents"
            ],
            "{db:?}: the entries follow the labels"
        );
        assert_eq!(details[0]["category"], "Incident Management", "{db:?}");
        assert!(worker["correlationId"].is_string(), "{db:?}");

        let admin = out[1].value();
        assert_eq!(admin["role"], "system_admin", "{db:?}");
        let labels: Vec<&str> = admin["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(labels.len(), Permission::ALL.len(), "{db:?}");
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        assert_eq!(labels, sorted, "{db:?}: sorted");

        let lead = out[2].value();
        assert_eq!(lead["role"], "team_lead", "{db:?}");
        assert_eq!(lead["permissions"].as_array().unwrap().len(), 6, "{db:?}");

        assert_eq!(out[3].error()["isConvexError"], true, "{db:?}");
        assert_eq!(out[3].message(), "Authentication required", "{db:?}");
        web.stop().await;
    }
}

async fn reset_links(web: &Web, to: &str) -> Vec<String> {
    seed::links(&web.app, to, "/reset-password?token=").await
}

/// Not a relay: only a system administrator, and the link is a fresh one from the normal flow.
#[tokio::test]
async fn send_password_reset_email_issues_a_fresh_reset_for_system_admins_only() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let send = |token: Option<&str>, email: &str| {
            let mut args = json!({"email": email, "token": "attacker-chosen-token"});
            if let Some(token) = token {
                args["sessionToken"] = json!(token);
            }
            ("action", "email:sendPasswordResetEmail", args)
        };
        let refused = web
            .calls(&[
                send(None, "worker@harbour.org"),
                send(Some(&p.admin_a.token), "worker@harbour.org"),
                send(Some(&p.worker_a.token), "worker@harbour.org"),
            ])
            .await;
        assert_eq!(refused[0].code(), "UNAUTHENTICATED", "{db:?}");
        assert_eq!(refused[1].code(), "FORBIDDEN", "{db:?}");
        assert_eq!(refused[2].code(), "FORBIDDEN", "{db:?}");
        assert!(reset_links(&web, "worker@harbour.org").await.is_empty());

        let out = web
            .calls(&[
                send(Some(&p.system_admin.token), "worker@harbour.org"),
                send(Some(&p.system_admin.token), "nobody@nowhere.org"),
            ])
            .await;
        let (known, unknown) = (out[0].value(), out[1].value());
        assert_eq!(known["success"], true, "{db:?}");
        assert!(known["emailId"].is_string(), "{db:?}");
        assert!(!known["message"].as_str().unwrap().is_empty(), "{db:?}");
        // No account enumeration: the same answer for an unknown address.
        assert_eq!(unknown["success"], true, "{db:?}");
        assert!(unknown["emailId"].is_string(), "{db:?}");
        assert_eq!(unknown["message"], known["message"], "{db:?}");
        assert!(reset_links(&web, "nobody@nowhere.org").await.is_empty());

        let links = reset_links(&web, "worker@harbour.org").await;
        assert_eq!(links.len(), 1, "{db:?}: {links:?}");
        let token = seed::token_of(&links[0]);
        assert_ne!(token, "attacker-chosen-token", "{db:?}");
        assert!(!links[0].contains("attacker"), "{db:?}");
        // The queued email carries the answer's emailId.
        let outbox = seed::rows(&web.app, "email_outbox").await;
        let mail = outbox
            .iter()
            .find(|r| r.get("to").and_then(values::Value::as_str) == Some("worker@harbour.org"))
            .unwrap();
        assert_eq!(
            mail.get("correlation_id").and_then(values::Value::as_str),
            known["emailId"].as_str(),
            "{db:?}"
        );
        // The audit log names the administrator who sent it.
        let audit = seed::rows(&web.app, "audit_log").await;
        let sent: Vec<_> = audit
            .iter()
            .filter(|r| {
                r.get("event").and_then(values::Value::as_str) == Some("password_reset_requested")
            })
            .collect();
        assert_eq!(sent.len(), 1, "{db:?}");
        assert_eq!(
            sent[0].get("actor_id").and_then(values::Value::as_str),
            Some(p.system_admin.id.as_str()),
            "{db:?}"
        );
        assert_eq!(
            sent[0].get("target_id").and_then(values::Value::as_str),
            Some(p.worker_a.id.as_str()),
            "{db:?}"
        );

        // The link works like any reset link: the worker sets a password and signs in.
        let out = web
            .calls(&[
                (
                    "mutation",
                    "auth:resetPassword",
                    json!({"token": token, "newPassword": "N3w!Passw0rd"}),
                ),
                (
                    "mutation",
                    "auth:loginUser",
                    json!({"email": "worker@harbour.org", "password": "N3w!Passw0rd"}),
                ),
            ])
            .await;
        assert_eq!(out[0].value()["success"], true, "{db:?}");
        assert!(out[1].value()["sessionToken"].is_string(), "{db:?}");
        web.stop().await;
    }
}
