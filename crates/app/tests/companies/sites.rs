//! Site management: names, the last site, and other companies' sites.

use serde_json::json;

use super::harness::{self, App, Place};
use super::{activate, create_company, sorted_names, system_admin_token};

#[tokio::test]
async fn another_companys_sites_answer_like_missing_ones() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let sys = system_admin_token(&app).await;
    let a = create_company(&app, &sys, "A Care", "a@a.org", "admin@a.org").await;
    let b = create_company(&app, &sys, "B Care", "b@b.org", "admin@b.org").await;
    let (a_id, b_id) = (
        a["companyId"].as_str().unwrap(),
        b["companyId"].as_str().unwrap(),
    );
    let admin_a = activate(&app, "admin@a.org").await;

    let b_sites = app
        .ok(
            "query",
            "sites/admin:listSites",
            json!({"sessionToken": sys, "companyId": b_id}),
        )
        .await;
    let b_primary = b_sites[0]["_id"].as_str().unwrap().to_string();
    // A site id that no longer exists, to compare with.
    let gone = app
        .ok(
            "mutation",
            "sites/admin:createSite",
            json!({"sessionToken": admin_a, "companyId": a_id, "name": "Annex"}),
        )
        .await["siteId"]
        .as_str()
        .unwrap()
        .to_string();
    app.ok(
        "mutation",
        "sites/admin:deleteSite",
        json!({"sessionToken": admin_a, "siteId": gone}),
    )
    .await;

    for (kind, path, extra) in [
        (
            "mutation",
            "sites/admin:updateSite",
            json!({"name": "Taken Over"}),
        ),
        ("mutation", "sites/admin:deleteSite", json!({})),
    ] {
        let mut foreign = extra.clone();
        foreign["sessionToken"] = json!(admin_a);
        foreign["siteId"] = json!(b_primary);
        let mut missing = foreign.clone();
        missing["siteId"] = json!(gone);
        let foreign = app.call(kind, path, foreign).await;
        let missing = app.call(kind, path, missing).await;
        assert_eq!(
            foreign["errorData"]["code"], "NOT_FOUND",
            "{path}: {foreign}"
        );
        assert_eq!(foreign["errorData"], missing["errorData"], "{path}");
        assert_eq!(foreign["errorMessage"], missing["errorMessage"], "{path}");
    }
    for (kind, path, args) in [
        (
            "query",
            "sites/admin:listSites",
            json!({"sessionToken": admin_a, "companyId": b_id}),
        ),
        (
            "mutation",
            "sites/admin:createSite",
            json!({"sessionToken": admin_a, "companyId": b_id, "name": "Mine Now"}),
        ),
    ] {
        let body = app.call(kind, path, args).await;
        assert_eq!(body["errorData"]["code"], "NOT_FOUND", "{path}: {body}");
        assert_eq!(body["errorData"]["field"], "companyId");
    }
    assert_eq!(
        app.ok(
            "query",
            "companies/getCompanyDetails",
            json!({"sessionToken": admin_a, "companyId": b_id})
        )
        .await,
        json!(null)
    );
    assert_eq!(
        app.ok(
            "query",
            "companies/getCompanyDetails",
            json!({"sessionToken": admin_a, "companyId": a_id})
        )
        .await["name"],
        "A Care"
    );
    let own = app
        .ok(
            "query",
            "sites/list:listCompanySites",
            json!({"sessionToken": admin_a}),
        )
        .await;
    assert_eq!(sorted_names(&own), ["Primary"]);
    // B's site was untouched.
    let b_sites = app
        .ok(
            "query",
            "sites/admin:listSites",
            json!({"sessionToken": sys, "companyId": b_id}),
        )
        .await;
    assert_eq!(sorted_names(&b_sites), ["Primary"]);
    app.stop().await;
}

#[tokio::test]
async fn site_names_are_checked_and_the_last_site_stays() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let sys = system_admin_token(&app).await;
    let a = create_company(&app, &sys, "A Care", "a@a.org", "admin@a.org").await;
    let a_id = a["companyId"].as_str().unwrap();
    let admin = activate(&app, "admin@a.org").await;
    let create = |name: &str| json!({"sessionToken": admin, "companyId": a_id, "name": name});

    let short = app
        .call("mutation", "sites/admin:createSite", create(" x "))
        .await;
    assert_eq!(short["errorData"]["code"], "VALIDATION");
    assert_eq!(short["errorData"]["field"], "name");
    let dup = app
        .call("mutation", "sites/admin:createSite", create("primary"))
        .await;
    assert_eq!(dup["errorData"]["code"], "CONFLICT");
    assert_eq!(dup["errorData"]["field"], "name");

    let north = app
        .ok(
            "mutation",
            "sites/admin:createSite",
            create("  North House "),
        )
        .await;
    let north = north["siteId"].as_str().unwrap().to_string();
    let renamed = app
        .call(
            "mutation",
            "sites/admin:updateSite",
            json!({"sessionToken": admin, "siteId": north, "name": "PRIMARY"}),
        )
        .await;
    assert_eq!(renamed["errorData"]["code"], "CONFLICT", "{renamed}");
    // Renaming a site to itself in another case is not a clash.
    app.ok(
        "mutation",
        "sites/admin:updateSite",
        json!({"sessionToken": admin, "siteId": north, "name": "north house"}),
    )
    .await;
    let sites = app
        .ok(
            "query",
            "sites/admin:listSites",
            json!({"sessionToken": admin, "companyId": a_id}),
        )
        .await;
    assert_eq!(sorted_names(&sites), ["Primary", "north house"]);
    assert!(sites[0]["created_at"].is_number());

    let primary = sites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Primary")
        .unwrap()["_id"]
        .clone();
    app.ok(
        "mutation",
        "sites/admin:deleteSite",
        json!({"sessionToken": admin, "siteId": primary}),
    )
    .await;
    let last = app
        .call(
            "mutation",
            "sites/admin:deleteSite",
            json!({"sessionToken": sys, "siteId": north}),
        )
        .await;
    assert_eq!(last["errorData"]["code"], "CONFLICT", "{last}");
    assert_eq!(last["errorData"]["field"], "siteId");
    let sites = app
        .ok(
            "query",
            "sites/list:listCompanySites",
            json!({"sessionToken": admin}),
        )
        .await;
    assert_eq!(sorted_names(&sites), ["north house"]);
    app.stop().await;
}
