//! Users as the web app's /admin/users and /users pages use them (webapp-contract §2, §12.1, §13):
//! `adminUsers:*` for system administrators, and `users:listCompanyUsers` with the per-user
//! `protection` the user table reads.

use serde_json::{json, Value as Json};

use crate::seed;
use crate::{backends, Web};

/// The row of `email` in a `users` list.
fn row<'a>(users: &'a Json, email: &str) -> &'a Json {
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("{email} is not listed in {users}"))
}

fn disabled(user: &Json) -> Vec<&str> {
    user["protection"]["disableActions"]
        .as_array()
        .unwrap_or_else(|| panic!("disableActions must be an array: {user}"))
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_admin_users_page_lists_everyone_with_public_fields_counts_and_protection() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let app = &web.app;
        // A system administrator without a company and one inside company A.
        seed::member(app, None, "ops@platform.org", "system_admin").await;
        seed::member(app, Some(&p.company_a), "root2@harbour.org", "system_admin").await;
        let tok = &p.system_admin.token;
        let out = web
            .calls(&[
                (
                    "query",
                    "adminUsers:listAllUsers",
                    json!({"sessionToken": tok}),
                ),
                (
                    "query",
                    "adminUsers:getUserStats",
                    json!({"sessionToken": tok}),
                ),
                (
                    "query",
                    "adminUsers:getCompanyList",
                    json!({"sessionToken": tok}),
                ),
                (
                    "query",
                    "adminUsers:listAllUsers",
                    json!({"sessionToken": tok, "searchTerm": "HARBOUR"}),
                ),
                (
                    "query",
                    "adminUsers:listAllUsers",
                    json!({"sessionToken": tok, "roleFilter": "company_admin"}),
                ),
                (
                    "query",
                    "adminUsers:listAllUsers",
                    json!({"sessionToken": tok, "companyFilter": p.company_b, "roleFilter": "all"}),
                ),
                (
                    "query",
                    "adminUsers:listAllUsers",
                    json!({"sessionToken": tok, "limit": 2, "offset": 1}),
                ),
            ])
            .await;

        let all = out[0].value();
        assert_eq!(all["total"], 8.0, "{db:?}: {all}");
        assert_eq!(all["hasMore"], false, "{db:?}");
        assert!(all["correlationId"].is_string(), "{db:?}");
        let users = &all["users"];
        for user in users.as_array().unwrap() {
            for field in [
                "_id",
                "name",
                "email",
                "role",
                "companyName",
                "_creationTime",
            ] {
                assert!(!user[field].is_null(), "{db:?}: {field} missing in {user}");
            }
            for secret in ["password", "failed_logins", "locked_until"] {
                assert!(
                    user.get(secret).is_none(),
                    "{db:?}: {secret} leaked: {user}"
                );
            }
            assert_eq!(user["protection"]["isOwner"], false, "{db:?}");
            assert_eq!(user["protection"]["displayBadge"], false, "{db:?}");
            let protected = !disabled(user).is_empty();
            assert_eq!(
                user["protection"]["isProtected"], protected,
                "{db:?}: {user}"
            );
        }
        let me = row(users, "root@platform.org");
        assert_eq!(disabled(me), ["role_change", "delete"], "{db:?}: oneself");
        assert_eq!(me["companyName"], "No Company", "{db:?}");
        let admin_a = row(users, "admin@harbour.org");
        assert_eq!(admin_a["companyName"], "Harbour Care", "{db:?}");
        assert_eq!(
            disabled(admin_a),
            ["role_change", "delete"],
            "{db:?}: the only company admin of Harbour Care"
        );
        assert!(
            admin_a["protection"]["protectionReason"].is_string(),
            "{db:?}"
        );
        assert!(
            disabled(row(users, "worker@harbour.org")).is_empty(),
            "{db:?}"
        );
        assert!(
            disabled(row(users, "root2@harbour.org")).is_empty(),
            "{db:?}"
        );
        assert_eq!(
            disabled(row(users, "ops@platform.org")),
            ["role_change"],
            "{db:?}: a system admin without a company cannot take a company role"
        );

        let stats = out[1].value();
        assert_eq!(stats["totalUsers"], 8.0, "{db:?}: {stats}");
        assert_eq!(stats["totalCompanies"], 2.0, "{db:?}");
        assert_eq!(stats["usersWithoutCompany"], 2.0, "{db:?}");
        let roles = &stats["roleDistribution"];
        assert_eq!(roles["system_admin"], 3.0, "{db:?}: {roles}");
        assert_eq!(roles["company_admin"], 2.0, "{db:?}");
        assert_eq!(roles["team_lead"], 1.0, "{db:?}");
        assert_eq!(roles["frontline_worker"], 2.0, "{db:?}");
        assert_eq!(roles["demo_admin"], 0.0, "{db:?}");
        let harbour = stats["companyDistribution"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["companyId"] == p.company_a.as_str())
            .unwrap();
        assert_eq!(harbour["userCount"], 4.0, "{db:?}: {harbour}");
        assert_eq!(harbour["companyName"], "Harbour Care", "{db:?}");
        assert_eq!(harbour["status"], "active", "{db:?}");

        let companies = out[2].value()["companies"].as_array().unwrap().clone();
        let names: Vec<&str> = companies
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Harbour Care", "Ridge Support"], "{db:?}");
        assert_eq!(companies[1]["_id"], p.company_b.as_str(), "{db:?}");
        assert_eq!(companies[1]["status"], "active", "{db:?}");

        let search = out[3].value();
        assert_eq!(
            search["total"], 4.0,
            "{db:?}: case-insensitive substring: {search}"
        );
        let admins = out[4].value();
        assert_eq!(admins["total"], 2.0, "{db:?}: {admins}");
        let ridge = out[5].value();
        let emails: Vec<&str> = ridge["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        assert_eq!(emails, ["admin@ridge.org", "worker@ridge.org"], "{db:?}");
        let page = out[6].value();
        assert_eq!(page["total"], 8.0, "{db:?}: counted before paging");
        assert_eq!(page["hasMore"], true, "{db:?}");
        let emails: Vec<&str> = page["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap())
            .collect();
        assert_eq!(
            emails,
            ["admin@ridge.org", "worker@harbour.org"],
            "{db:?}: by name"
        );

        // Everyone else is refused, a company admin included.
        let admin = &p.admin_a.token;
        let refused = web
            .calls(&[
                (
                    "query",
                    "adminUsers:listAllUsers",
                    json!({"sessionToken": admin}),
                ),
                (
                    "query",
                    "adminUsers:getUserStats",
                    json!({"sessionToken": admin}),
                ),
                (
                    "query",
                    "adminUsers:getCompanyList",
                    json!({"sessionToken": admin}),
                ),
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    json!({"sessionToken": admin, "userId": p.system_admin.id,
                           "newRole": "frontline_worker"}),
                ),
                ("query", "adminUsers:listAllUsers", json!({})),
            ])
            .await;
        for out in &refused[..4] {
            assert_eq!(out.code(), "FORBIDDEN", "{db:?}: {out:?}");
            assert_eq!(
                out.message(),
                "System administrator access required",
                "{db:?}"
            );
        }
        assert_eq!(refused[4].code(), "UNAUTHENTICATED", "{db:?}");
        web.stop().await;
    }
}

#[tokio::test]
async fn demoting_a_system_admin_needs_a_company_ends_their_impersonations_and_is_audited() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let app = &web.app;
        let ops = seed::member(app, None, "ops@platform.org", "system_admin").await;
        let root2 =
            seed::member(app, Some(&p.company_a), "root2@harbour.org", "system_admin").await;
        let started = web
            .mutation(
                "impersonation:startImpersonation",
                json!({"sessionToken": root2.token, "admin_session_token": root2.token,
                       "target_user_email": "worker@harbour.org", "reason": "Checking a report"}),
            )
            .await;
        let imp = started.value()["impersonation_token"]
            .as_str()
            .unwrap()
            .to_string();
        let as_target = web
            .query("users:getCurrentUser", json!({"sessionToken": imp}))
            .await;
        assert_eq!(as_target.value()["email"], "worker@harbour.org", "{db:?}");

        let tok = &p.system_admin.token;
        let demote = |user: &str, role: &str| {
            json!({"sessionToken": tok, "userId": user, "newRole": role,
                   "reason": "Moved to the care team"})
        };
        let out = web
            .calls(&[
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    demote(&p.system_admin.id, "team_lead"),
                ),
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    demote(&p.worker_a.id, "team_lead"),
                ),
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    demote(&p.company_a, "team_lead"),
                ),
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    demote(&root2.id, "system_admin"),
                ),
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    demote(&ops.id, "team_lead"),
                ),
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    demote(&root2.id, "team_lead"),
                ),
                (
                    "query",
                    "users:getCurrentUser",
                    json!({"sessionToken": imp}),
                ),
                (
                    "query",
                    "adminUsers:getUserStats",
                    json!({"sessionToken": root2.token}),
                ),
                (
                    "mutation",
                    "adminUsers:demoteSystemAdmin",
                    demote(&ops.id, "demo_admin"),
                ),
            ])
            .await;
        assert_eq!(out[0].message(), "Cannot demote yourself", "{db:?}");
        assert_eq!(
            out[1].message(),
            "User is not currently a system administrator",
            "{db:?}"
        );
        assert_eq!(out[2].message(), "User not found", "{db:?}");
        assert_eq!(out[3].code(), "VALIDATION", "{db:?}: {:?}", out[3]);
        assert_eq!(out[4].code(), "CONFLICT", "{db:?}: {:?}", out[4]);
        assert!(
            out[4].message().contains("no company"),
            "{db:?}: {}",
            out[4].message()
        );
        assert_eq!(out[5].value()["success"], true, "{db:?}");
        assert!(out[5].value()["correlationId"].is_string(), "{db:?}");
        assert_eq!(
            out[6].value(),
            &Json::Null,
            "{db:?}: the demoted admin's impersonation ended"
        );
        assert_eq!(
            out[7].message(),
            "System administrator access required",
            "{db:?}: now a team lead"
        );
        assert_eq!(
            out[8].value()["success"],
            true,
            "{db:?}: demo_admin needs no company"
        );

        let users = seed::rows(app, "users").await;
        let role_of = |id: &str| {
            users
                .iter()
                .find(|u| u.id.encode() == id)
                .and_then(|u| u.get("role").and_then(values::Value::as_str))
                .unwrap()
                .to_string()
        };
        assert_eq!(role_of(&root2.id), "team_lead", "{db:?}");
        assert_eq!(role_of(&ops.id), "demo_admin", "{db:?}");
        let imps = seed::rows(app, "impersonation_sessions").await;
        assert!(
            imps.iter()
                .all(|r| r.get("is_active").and_then(values::Value::as_bool) == Some(false)),
            "{db:?}: the impersonation row is ended"
        );
        let audit = seed::rows(app, "audit_log").await;
        let text = |r: &store::Document, f: &str| {
            r.get(f)
                .and_then(values::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let changed = audit
            .iter()
            .find(|r| text(r, "event") == "role_changed" && text(r, "target_id") == root2.id)
            .unwrap_or_else(|| panic!("{db:?}: no role_changed entry"));
        assert_eq!(text(changed, "actor_id"), p.system_admin.id, "{db:?}");
        assert_eq!(text(changed, "company_id"), p.company_a, "{db:?}");
        let details = format!("{:?}", changed.get("details"));
        assert!(
            details.contains("team_lead") && details.contains("Moved to the care team"),
            "{db:?}: {details}"
        );
        assert!(
            audit
                .iter()
                .any(|r| text(r, "event") == "impersonation_ended"
                    && text(r, "actor_id") == root2.id),
            "{db:?}: the ended impersonation is audited"
        );
        web.stop().await;
    }
}

#[tokio::test]
async fn company_users_carry_the_protection_the_table_reads_and_company_less_callers_get_none() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let out = web
            .calls(&[
                (
                    "query",
                    "users:listCompanyUsers",
                    json!({"sessionToken": p.admin_a.token}),
                ),
                (
                    "query",
                    "users:listCompanyUsers",
                    json!({"sessionToken": p.lead_a.token}),
                ),
                (
                    "query",
                    "users:listCompanyUsers",
                    json!({"sessionToken": p.system_admin.token}),
                ),
                (
                    "query",
                    "users:listCompanyUsers",
                    json!({"sessionToken": p.worker_a.token}),
                ),
            ])
            .await;
        let by_admin = &out[0].value()["users"];
        assert_eq!(
            by_admin.as_array().unwrap().len(),
            3,
            "{db:?}: own company only"
        );
        let me = row(by_admin, "admin@harbour.org");
        assert_eq!(disabled(me), ["role_change", "delete"], "{db:?}: oneself");
        assert_eq!(me["protection"]["isProtected"], true, "{db:?}");
        assert_eq!(me["protection"]["isSelf"], true, "{db:?}");
        assert_eq!(me["protection"]["displayBadge"], false, "{db:?}");
        let worker = row(by_admin, "worker@harbour.org");
        assert!(disabled(worker).is_empty(), "{db:?}: {worker}");
        assert_eq!(worker["protection"]["isProtected"], false, "{db:?}");
        assert!(worker.get("password").is_none(), "{db:?}");

        // A team lead may look but not manage, so the table greys out both actions for everyone.
        let by_lead = &out[1].value()["users"];
        let worker = row(by_lead, "worker@harbour.org");
        assert_eq!(disabled(worker), ["role_change", "delete"], "{db:?}");
        assert!(
            worker["protection"]["protectionReason"].is_string(),
            "{db:?}"
        );

        let empty = out[2].value();
        assert_eq!(empty["users"], json!([]), "{db:?}: {empty}");
        assert_eq!(empty["total"], 0.0, "{db:?}");
        assert!(empty["correlationId"].is_string(), "{db:?}");
        assert_eq!(out[3].code(), "FORBIDDEN", "{db:?}: view_user_profiles");
        web.stop().await;
    }
}
