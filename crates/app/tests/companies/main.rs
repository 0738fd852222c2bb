//! Companies and sites through the real HTTP API: creating a company with its first admin, the
//! admin's first sign-in, suspension, site management (in `sites.rs`), and who may do what.

#[path = "../harness/mod.rs"]
mod harness;
mod sites;

use harness::{backends, App, Place};
use serde_json::{json, Value as Json};

const PW: &str = "Str0ng!Pass";
const SYS: &str = "root@platform.org";

async fn system_admin_token(app: &App) -> String {
    app::users::create_system_admin(
        &app.store,
        SYS,
        "Root",
        &secrecy::SecretString::from(PW.to_string()),
    )
    .await
    .unwrap();
    app.token(SYS, PW).await
}

async fn create_company(app: &App, token: &str, name: &str, contact: &str, admin: &str) -> Json {
    app.ok(
        "mutation",
        "companies:createCompany",
        json!({"sessionToken": token, "name": name, "contactEmail": contact,
               "adminEmail": admin, "adminName": "Casey Admin"}),
    )
    .await
}

/// The set-password links a user would find in their inbox (read from the outbox).
async fn links_for(app: &App, to: &str) -> Vec<String> {
    let to = to.to_string();
    let (texts, _, _) = app
        .store
        .query(move |txn| {
            let rows = txn.query("email_outbox")?.collect()?;
            Ok::<_, store::StoreError>(
                rows.iter()
                    .filter(|r| r.get("to").and_then(values::Value::as_str) == Some(to.as_str()))
                    .filter_map(|r| r.get("text").and_then(values::Value::as_str))
                    .map(str::to_string)
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

/// Follows the emailed link to set `PW`, then signs in.
async fn activate(app: &App, email: &str) -> String {
    let links = links_for(app, email).await;
    assert_eq!(links.len(), 1, "one set-password email: {links:?}");
    let token = links[0].split("token=").nth(1).unwrap();
    app.ok(
        "mutation",
        "auth:resetPassword",
        json!({"token": token, "newPassword": PW}),
    )
    .await;
    app.token(email, PW).await
}

/// A signed-in user of `company` with `role`, created directly in the store.
async fn member(app: &App, company: &str, role: &str, email: &str) -> String {
    let id = app.register("Member", email, PW).await;
    let id = values::DocumentId::decode(&id).unwrap();
    let (company, role) = (company.to_string(), role.to_string());
    app.store
        .mutate(move |txn| {
            let mut patch = store::Patch::new();
            patch.insert(
                "company_id".into(),
                Some(values::Value::from(company.as_str())),
            );
            patch.insert("role".into(), Some(values::Value::from(role.as_str())));
            txn.patch(&id, patch)
        })
        .await
        .unwrap();
    app.token(email, PW).await
}

fn sorted_names(sites: &Json) -> Vec<String> {
    let mut names: Vec<String> = sites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn scenario_1_abc_care_is_created_and_its_admin_signs_in() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let sys = system_admin_token(&app).await;
        let created =
            create_company(&app, &sys, "ABC Care", "Office@ABC.org", "Admin@ABC.org").await;
        assert_eq!(created["success"], true);
        assert_eq!(created["slug"], "abc-care");
        assert_eq!(created["adminEmail"], "admin@abc.org");
        assert!(
            created.get("resetToken").is_none(),
            "the set-password token goes only to the admin's inbox: {created}"
        );
        let company_id = created["companyId"].as_str().unwrap().to_string();

        // The admin exists, belongs to the company and has no password yet.
        let (admin, _, _) = app
            .store
            .query(|txn| {
                let user = txn
                    .query("users")?
                    .with_index("by_email", |q| q.eq("email", "admin@abc.org"))?
                    .first()?;
                Ok::<_, store::StoreError>(user.unwrap().to_value())
            })
            .await
            .unwrap();
        assert_eq!(admin.get("password").unwrap().as_str(), Some(""));
        assert_eq!(admin.get("role").unwrap().as_str(), Some("company_admin"));
        assert_eq!(
            admin.get("company_id").unwrap().as_str(),
            Some(company_id.as_str())
        );
        let no_password = app
            .call(
                "mutation",
                "auth:loginUser",
                json!({"email": "admin@abc.org", "password": ""}),
            )
            .await;
        assert_eq!(no_password["status"], "error", "{no_password}");

        let admin_token = activate(&app, "admin@abc.org").await;
        let sites = app
            .ok(
                "query",
                "sites/list:listCompanySites",
                json!({"sessionToken": admin_token}),
            )
            .await;
        assert_eq!(sorted_names(&sites), ["Primary"]);
        assert_eq!(sites[0]["company_id"], company_id.as_str());
        let mine = app
            .ok(
                "query",
                "companies/getCompany:getCurrentUserCompany",
                json!({"sessionToken": admin_token}),
            )
            .await;
        assert_eq!(mine["name"], "ABC Care");
        assert_eq!(mine["contact_email"], "office@abc.org");
        assert_eq!(mine["status"], "active");

        // Same name again: the next free slug. Taken contact or admin emails are refused.
        let again =
            create_company(&app, &sys, "ABC  care!", "other@abc.org", "second@abc.org").await;
        assert_eq!(again["slug"], "abc-care-2");
        let dup_contact = app
            .call(
                "mutation",
                "companies:createCompany",
                json!({"sessionToken": sys, "name": "X", "contactEmail": "OFFICE@abc.org",
                       "adminEmail": "new@abc.org", "adminName": "N"}),
            )
            .await;
        assert_eq!(dup_contact["errorData"]["code"], "CONFLICT");
        assert_eq!(dup_contact["errorData"]["field"], "contactEmail");
        let dup_admin = app
            .call(
                "mutation",
                "companies:createCompany",
                json!({"sessionToken": sys, "name": "X", "contactEmail": "x@x.org",
                       "adminEmail": "admin@abc.org", "adminName": "N"}),
            )
            .await;
        assert_eq!(dup_admin["errorData"]["code"], "CONFLICT");
        assert_eq!(dup_admin["errorData"]["field"], "adminEmail");
        let bad = app
            .call(
                "mutation",
                "companies:createCompany",
                json!({"sessionToken": sys, "name": " ", "contactEmail": "x@x.org",
                       "adminEmail": "y@x.org", "adminName": "N"}),
            )
            .await;
        assert_eq!(bad["errorData"]["field"], "name", "{bad}");

        let events = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": sys, "allCompanies": true, "event": "company_created"}),
            )
            .await;
        assert_eq!(events.as_array().unwrap().len(), 2, "{events}");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_suspended_company_cannot_sign_in() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let sys = system_admin_token(&app).await;
        let created =
            create_company(&app, &sys, "ABC Care", "office@abc.org", "admin@abc.org").await;
        let company = created["companyId"].as_str().unwrap().to_string();
        let open_session = activate(&app, "admin@abc.org").await;

        let updated = app
            .ok(
                "mutation",
                "companies/admin:updateCompany",
                json!({"sessionToken": sys, "companyId": company, "updates": {"status": "suspended"}}),
            )
            .await;
        assert_eq!(updated["status"], "suspended");
        assert_eq!(updated["slug"], "abc-care");
        let login = app
            .call(
                "mutation",
                "auth:loginUser",
                json!({"email": "admin@abc.org", "password": PW}),
            )
            .await;
        // Sign-in errors carry the message as their data (the web app searches it as text).
        assert_eq!(
            login["errorData"], "Your organisation's account is suspended",
            "{login}"
        );
        assert_eq!(
            app.ok(
                "query",
                "auth:getCurrentUser",
                json!({"sessionToken": open_session})
            )
            .await,
            json!(null),
            "sessions open at suspension end too"
        );
        let events = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": sys, "companyId": company, "event": "company_status_changed"}),
            )
            .await;
        assert_eq!(events[0]["details"]["from"], "active", "{events}");
        assert_eq!(events[0]["details"]["to"], "suspended");

        app.ok(
            "mutation",
            "companies/admin:updateCompany",
            json!({"sessionToken": sys, "companyId": company, "updates": {"status": "active"}}),
        )
        .await;
        app.login("admin@abc.org", PW).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn roles_without_the_permission_are_refused() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let sys = system_admin_token(&app).await;
    let a = create_company(&app, &sys, "A Care", "a@a.org", "admin@a.org").await;
    let a_id = a["companyId"].as_str().unwrap().to_string();
    let admin = activate(&app, "admin@a.org").await;
    let worker = member(&app, &a_id, "frontline_worker", "worker@a.org").await;
    let lead = member(&app, &a_id, "team_lead", "lead@a.org").await;
    let demo = member(&app, &a_id, "demo_admin", "demo@a.org").await;

    let new_company = |token: &str| {
        json!({"sessionToken": token, "name": "Z", "contactEmail": "z@z.org",
               "adminEmail": "zadmin@z.org", "adminName": "Z"})
    };
    for token in [&worker, &lead, &admin, &demo] {
        assert_eq!(
            app.code("mutation", "companies:createCompany", new_company(token))
                .await,
            "FORBIDDEN"
        );
    }
    assert_eq!(
        app.code("mutation", "companies:createCompany", new_company(""))
            .await,
        "UNAUTHENTICATED"
    );
    for token in [&worker, &lead, &admin] {
        assert_eq!(
            app.code(
                "query",
                "companies/admin:listAllCompanies",
                json!({"sessionToken": token})
            )
            .await,
            "FORBIDDEN"
        );
        assert_eq!(
            app.code(
                "mutation",
                "companies/admin:updateCompany",
                json!({"sessionToken": token, "companyId": a_id, "updates": {"status": "active"}})
            )
            .await,
            "FORBIDDEN"
        );
    }
    for token in [&worker, &lead] {
        assert_eq!(
            app.code(
                "mutation",
                "sites/admin:createSite",
                json!({"sessionToken": token, "companyId": a_id, "name": "Shed"})
            )
            .await,
            "FORBIDDEN"
        );
        assert_eq!(
            app.code(
                "query",
                "companies/getCompanyDetails",
                json!({"sessionToken": token, "companyId": a_id})
            )
            .await,
            "FORBIDDEN"
        );
        // Every role sees its own company's sites (the incident form needs them).
        let sites = app
            .ok(
                "query",
                "sites/list:listCompanySites",
                json!({"sessionToken": token}),
            )
            .await;
        assert_eq!(sorted_names(&sites), ["Primary"]);
    }
    // A demo admin manages companies without creating them.
    let all = app
        .ok(
            "query",
            "companies/admin:listAllCompanies",
            json!({"sessionToken": demo}),
        )
        .await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(
        app.code("query", "sites/list:listCompanySites", json!({}))
            .await,
        "UNAUTHENTICATED"
    );
    app.stop().await;
}

#[tokio::test]
async fn platform_admins_list_and_edit_companies() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let sys = system_admin_token(&app).await;
    let a = create_company(&app, &sys, "Alpha Care", "a@a.org", "admin@a.org").await;
    let a_id = a["companyId"].as_str().unwrap().to_string();
    let b = app
        .ok(
            "mutation",
            "companies:createCompany",
            json!({"sessionToken": sys, "name": "Beta Support", "contactEmail": "b@b.org",
                   "adminEmail": "admin@b.org", "adminName": "B", "status": "trial"}),
        )
        .await;
    let b_id = b["companyId"].as_str().unwrap().to_string();
    app.ok(
        "mutation",
        "sites/admin:createSite",
        json!({"sessionToken": sys, "companyId": b_id, "name": "Second"}),
    )
    .await;

    let all = app
        .ok(
            "query",
            "companies/admin:listAllCompanies",
            json!({"sessionToken": sys}),
        )
        .await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["name"], "Beta Support", "newest first");
    assert_eq!(all[0]["userCount"], 1.0);
    assert_eq!(all[0]["siteCount"], 2.0);
    assert_eq!(all[1]["siteCount"], 1.0);
    assert_eq!(all[1]["participantCount"], 0.0);
    let trial = app
        .ok(
            "query",
            "companies/admin:listAllCompanies",
            json!({"sessionToken": sys, "statusFilter": "trial"}),
        )
        .await;
    assert_eq!(trial.as_array().unwrap().len(), 1);
    assert_eq!(trial[0]["_id"], b_id.as_str());
    let found = app
        .ok(
            "query",
            "companies/admin:listAllCompanies",
            json!({"sessionToken": sys, "statusFilter": "all", "searchQuery": "ALPHA"}),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["_id"], a_id.as_str());
    let bad = app
        .call(
            "query",
            "companies/admin:listAllCompanies",
            json!({"sessionToken": sys, "statusFilter": "closed"}),
        )
        .await;
    assert_eq!(bad["errorData"]["field"], "statusFilter");

    let edited = app
        .ok(
            "mutation",
            "companies/admin:updateCompany",
            json!({"sessionToken": sys, "companyId": a_id,
                   "updates": {"name": "Alpha Care Group", "contact_email": "Hello@A.org"}}),
        )
        .await;
    assert_eq!(edited["name"], "Alpha Care Group");
    assert_eq!(edited["contact_email"], "hello@a.org");
    assert_eq!(
        edited["slug"], "alpha-care",
        "slugs do not change with the name"
    );
    let form = app
        .ok(
            "query",
            "companies/admin:getCompanyForEdit",
            json!({"sessionToken": sys, "companyId": a_id}),
        )
        .await;
    assert_eq!(form, edited);
    for (updates, field, code) in [
        (json!({"name": ""}), "updates.name", "VALIDATION"),
        (
            json!({"contact_email": "nope"}),
            "updates.contact_email",
            "VALIDATION",
        ),
        (
            json!({"contact_email": "b@b.org"}),
            "updates.contact_email",
            "CONFLICT",
        ),
    ] {
        let body = app
            .call(
                "mutation",
                "companies/admin:updateCompany",
                json!({"sessionToken": sys, "companyId": a_id, "updates": updates}),
            )
            .await;
        assert_eq!(body["errorData"]["code"], code, "{body}");
        assert_eq!(body["errorData"]["field"], field, "{body}");
    }
    let status = app
        .call(
            "mutation",
            "companies/admin:updateCompany",
            json!({"sessionToken": sys, "companyId": a_id, "updates": {"status": "closed"}}),
        )
        .await;
    // Refused by the argument validator: a plain error, as Convex sends it.
    assert!(status.get("errorData").is_none(), "{status}");
    assert!(
        status["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("ArgumentValidationError"),
        "{status}"
    );
    app.stop().await;
}
