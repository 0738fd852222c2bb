//! User management through the real HTTP API: listing without secrets, creating a user who sets
//! their own password, profile, role and delete rules, and isolation between companies.

mod harness;
mod seed;

use harness::{backends, App, Place};
use seed::{company, links, signed_in, token_of, user, PW};
use serde_json::{json, Value as Json};

async fn list(app: &App, token: &str, extra: Json) -> Json {
    let mut args = json!({"sessionToken": token});
    args.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.ok("query", "users:listCompanyUsers", args).await
}

fn emails(listing: &Json) -> Vec<&str> {
    listing["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_company_admin_manages_the_users_of_their_company() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let admin = signed_in(&app, Some(&abc), "admin@abc.org", "company_admin").await;
        let lead = signed_in(&app, Some(&abc), "lead@abc.org", "team_lead").await;

        // Created without a password: the new user sets one through the emailed link.
        let created = app
            .ok(
                "mutation",
                "users:createUser",
                json!({"sessionToken": admin, "name": "Fay Worker", "email": "Fay@ABC.org", "role": "frontline_worker"}),
            )
            .await;
        assert!(created.get("tempPassword").is_none(), "{created}");
        let fay = created["userId"].as_str().unwrap().to_string();
        let refused = app
            .call(
                "mutation",
                "auth:loginUser",
                json!({"email": "fay@abc.org", "password": ""}),
            )
            .await;
        assert_eq!(refused["status"], "error");
        let link = links(&app, "fay@abc.org", "/reset-password?token=").await;
        assert_eq!(link.len(), 1, "{link:?}");
        app.ok(
            "mutation",
            "auth:resetPassword",
            json!({"token": token_of(&link[0]), "newPassword": PW}),
        )
        .await;
        let fay_token = app.token("fay@abc.org", PW).await;
        let taken = app
            .call(
                "mutation",
                "users:createUser",
                json!({"sessionToken": admin, "name": "Again", "email": "fay@abc.org", "role": "team_lead"}),
            )
            .await;
        assert_eq!(taken["errorData"]["code"], "CONFLICT");
        assert_eq!(taken["errorData"]["field"], "email");

        // Listing: never a password hash or lockout counters; search and role filter.
        let all = list(&app, &lead, json!({})).await;
        assert_eq!(all["total"], 3.0, "{all}");
        for u in all["users"].as_array().unwrap() {
            for secret in ["password", "failed_logins", "locked_until"] {
                assert!(u.get(secret).is_none(), "{secret} leaked: {u}");
            }
            assert!(u["protection"]["isProtected"].is_boolean());
        }
        assert_eq!(
            emails(&list(&app, &admin, json!({"searchTerm": "FAY"})).await),
            ["fay@abc.org"]
        );
        assert_eq!(
            emails(&list(&app, &admin, json!({"roleFilter": "team_lead"})).await),
            ["lead@abc.org"]
        );
        assert_eq!(
            app.code(
                "query",
                "users:listCompanyUsers",
                json!({"sessionToken": fay_token})
            )
            .await,
            "FORBIDDEN"
        );

        // Edits, with the conflicting field named.
        app.ok(
            "mutation",
            "users:updateUser",
            json!({"sessionToken": admin, "userId": fay, "name": "Fay W", "email": "fay.w@abc.org"}),
        )
        .await;
        let clash = app
            .call(
                "mutation",
                "users:updateUser",
                json!({"sessionToken": admin, "userId": fay, "email": "LEAD@abc.org"}),
            )
            .await;
        assert_eq!(clash["errorData"]["field"], "email", "{clash}");
        assert_eq!(
            clash["errorMessage"],
            "Email already in use by another user"
        );
        let bad = app
            .call(
                "mutation",
                "users:updateUser",
                json!({"sessionToken": admin, "userId": fay, "name": "  "}),
            )
            .await;
        assert_eq!(bad["errorData"]["field"], "name");

        // Roles: company roles only, never above one's own, never by a team lead.
        app.ok(
            "mutation",
            "users:updateRole",
            json!({"sessionToken": admin, "userId": fay, "newRole": "team_lead"}),
        )
        .await;
        for role in ["demo_admin", "system_admin"] {
            let up = app
                .call(
                    "mutation",
                    "users:updateRole",
                    json!({"sessionToken": admin, "userId": fay, "newRole": role}),
                )
                .await;
            assert_eq!(up["errorData"]["code"], "FORBIDDEN", "{up}");
            assert_eq!(up["errorData"]["field"], "newRole");
            let create = app
                .call(
                    "mutation",
                    "users:createUser",
                    json!({"sessionToken": admin, "name": "X", "email": "x@abc.org", "role": role}),
                )
                .await;
            assert_eq!(create["errorData"]["code"], "FORBIDDEN", "{create}");
        }
        assert_eq!(
            app.code(
                "mutation",
                "users:updateRole",
                json!({"sessionToken": lead, "userId": fay, "newRole": "company_admin"})
            )
            .await,
            "FORBIDDEN"
        );

        // Deleting: not oneself, not the last company admin; the deleted user's sessions end.
        let me = app
            .ok("query", "users:getCurrent", json!({"sessionToken": admin}))
            .await;
        let own = json!({"sessionToken": admin, "userId": me["_id"]});
        assert_eq!(
            app.code("mutation", "users:deleteUser", own.clone()).await,
            "FORBIDDEN"
        );
        assert_eq!(
            app.code(
                "mutation",
                "users:updateRole",
                json!({"sessionToken": admin, "userId": me["_id"], "newRole": "team_lead"})
            )
            .await,
            "FORBIDDEN"
        );
        app.ok(
            "mutation",
            "users:deleteUser",
            json!({"sessionToken": admin, "userId": fay}),
        )
        .await;
        assert_eq!(
            app.ok(
                "query",
                "users:getCurrent",
                json!({"sessionToken": fay_token})
            )
            .await,
            json!(null)
        );
        app::users::create_system_admin(
            &app.store,
            "root@x.org",
            "Root",
            &secrecy::SecretString::from(PW.to_string()),
        )
        .await
        .unwrap();
        let root = app.token("root@x.org", PW).await;
        let last = app
            .call(
                "mutation",
                "users:deleteUser",
                json!({"sessionToken": root, "userId": me["_id"]}),
            )
            .await;
        assert_eq!(last["errorData"]["code"], "CONFLICT", "{last}");

        let events = app
            .ok("query", "audit:listEvents", json!({"sessionToken": admin}))
            .await;
        let names: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .collect();
        for event in ["user_created", "role_changed", "user_deleted"] {
            assert!(names.contains(&event), "{event} missing: {names:?}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn users_of_another_company_answer_like_missing_ones() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let a = company(&app, "A Care").await;
        let b = company(&app, "B Care").await;
        let admin_a = signed_in(&app, Some(&a), "admin@a.org", "company_admin").await;
        let in_b = user(&app, Some(&b), "worker@b.org", "frontline_worker").await;
        let root_id = user(&app, None, "root@x.org", "system_admin").await;
        let missing = "j570pc2nfafw9t8e6dc7v8p7xg8kdsw0";

        for target in [in_b.as_str(), root_id.as_str()] {
            for (path, extra) in [
                ("users:updateUser", json!({"name": "Hacked"})),
                ("users:updateRole", json!({"newRole": "frontline_worker"})),
                ("users:deleteUser", json!({})),
            ] {
                let mut args = json!({"sessionToken": admin_a, "userId": target});
                let mut as_missing = json!({"sessionToken": admin_a, "userId": missing});
                for (k, v) in extra.as_object().unwrap() {
                    args[k] = v.clone();
                    as_missing[k] = v.clone();
                }
                let foreign = app.call("mutation", path, args).await;
                let absent = app.call("mutation", path, as_missing).await;
                assert_eq!(foreign["errorData"], absent["errorData"], "{path}");
                assert_eq!(foreign["errorData"]["code"], "NOT_FOUND", "{path}");
            }
        }
        let listing = list(&app, &admin_a, json!({})).await;
        assert_eq!(emails(&listing), ["admin@a.org"]);
        let into_b = app
            .call(
                "mutation",
                "users:createUser",
                json!({"sessionToken": admin_a, "name": "X", "email": "x@b.org", "role": "team_lead", "companyId": b}),
            )
            .await;
        assert_eq!(into_b["errorData"]["code"], "FORBIDDEN", "{into_b}");

        // Any company's users, for system administrators only.
        let args = |token: &str| json!({"sessionToken": token, "companyId": b});
        assert_eq!(
            app.code("query", "users/listUsersForCompany", args(&admin_a))
                .await,
            "FORBIDDEN"
        );
        let root = app.token("root@x.org", PW).await;
        let in_company_b = app
            .ok("query", "users/listUsersForCompany", args(&root))
            .await;
        assert_eq!(in_company_b.as_array().unwrap().len(), 1);
        assert_eq!(in_company_b[0]["email"], "worker@b.org");
        assert!(in_company_b[0].get("password").is_none());
        app.stop().await;
    }
}

#[tokio::test]
async fn everyone_edits_their_own_profile() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let abc = company(&app, "ABC Care").await;
    let worker = signed_in(&app, Some(&abc), "w@abc.org", "frontline_worker").await;
    app.ok(
        "mutation",
        "users:updateUserProfile",
        json!({"sessionToken": worker, "name": "Wes", "profile_image_url": "https://img.example.org/w.png"}),
    )
    .await;
    let me = app
        .ok("query", "users:getCurrent", json!({"sessionToken": worker}))
        .await;
    assert_eq!(me["name"], "Wes");
    assert_eq!(me["profile_image_url"], "https://img.example.org/w.png");
    for (field, value) in [("name", ""), ("profile_image_url", "javascript:alert(1)")] {
        let bad = app
            .call(
                "mutation",
                "users:updateUserProfile",
                json!({"sessionToken": worker, field: value}),
            )
            .await;
        assert_eq!(bad["errorData"]["field"], field, "{bad}");
    }
    assert_eq!(
        app.code(
            "mutation",
            "users:updateUserProfile",
            json!({"name": "Nobody"})
        )
        .await,
        "UNAUTHENTICATED"
    );
    app.stop().await;
}
