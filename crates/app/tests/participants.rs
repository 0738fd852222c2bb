//! Participants through the real HTTP API: adding, validating, isolation between companies, status
//! changes, deletion, and paging through a sorted list.

mod harness;
#[path = "participants/paging.rs"]
mod paging;
#[path = "participants/status.rs"]
mod status;

use harness::{backends, App, Place};
use serde_json::{json, Value as Json};
use values::{DocumentId, Object, Value};

const PW: &str = "Str0ng!Pass";

async fn company(app: &App, name: &str) -> String {
    let name = name.to_string();
    let (id, _, _) = app
        .store
        .mutate(move |txn| {
            let mut row = Object::new();
            let slug = name.to_lowercase().replace(' ', "-");
            row.insert("name".into(), Value::from(name.as_str()));
            row.insert("slug".into(), Value::from(slug.as_str()));
            row.insert("contact_email".into(), Value::from(format!("{slug}@x.org")));
            row.insert("status".into(), Value::from("active"));
            row.insert("created_at".into(), Value::from(txn.now_ms()));
            txn.insert("companies", row)
        })
        .await
        .unwrap();
    id.encode()
}

async fn site(app: &App, company: &str, name: &str) -> String {
    let (company, name) = (company.to_string(), name.to_string());
    let (id, _, _) = app
        .store
        .mutate(move |txn| {
            let mut row = Object::new();
            row.insert("company_id".into(), Value::from(company.as_str()));
            row.insert("name".into(), Value::from(name.as_str()));
            row.insert("created_at".into(), Value::from(txn.now_ms()));
            txn.insert("sites", row)
        })
        .await
        .unwrap();
    id.encode()
}

/// A signed-in user with `role` in `company` (or none); returns the session token.
async fn member(app: &App, email: &str, role: &str, company: Option<&str>) -> String {
    let id = DocumentId::decode(&app.register("Some One", email, PW).await).unwrap();
    let (role, company) = (role.to_string(), company.map(str::to_string));
    app.store
        .mutate(move |txn| {
            let mut patch = store::Patch::new();
            patch.insert("role".into(), Some(Value::from(role.as_str())));
            patch.insert("company_id".into(), company.as_deref().map(Value::from));
            txn.patch(&id, patch)
        })
        .await
        .unwrap();
    app.token(email, PW).await
}

fn sarah(token: &str, site: &str) -> Json {
    json!({
        "sessionToken": token,
        "first_name": "Sarah",
        "last_name": "Williams",
        "date_of_birth": "1985-04-12",
        "ndis_number": "431234567",
        "site_id": site,
        "contact_phone": "+61 2 9876 5432",
        "support_level": "high",
        "care_notes": "Prefers morning visits",
        "status": "active",
    })
}

async fn create(app: &App, args: Json) -> String {
    let created = app
        .ok("mutation", "participants/create:createParticipant", args)
        .await;
    assert_eq!(created["success"], true);
    created["participantId"].as_str().unwrap().to_string()
}

/// The error a call fails with: `(code, field)`.
async fn failure(app: &App, kind: &str, path: &str, args: Json) -> (String, String) {
    let body = app.call(kind, path, args).await;
    assert_eq!(body["status"], "error", "{path} should fail: {body}");
    let data = &body["errorData"];
    let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
    (text(&data["code"]), text(&data["field"]))
}

#[tokio::test]
async fn an_admin_adds_a_participant_and_duplicates_are_refused() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let primary = site(&app, &abc, "Primary").await;
        let admin = member(&app, "admin@abc.org", "company_admin", Some(&abc)).await;

        let id = create(&app, sarah(&admin, &primary)).await;
        let got = app
            .ok(
                "query",
                "participants/getById:getParticipantById",
                json!({"sessionToken": admin, "participantId": id}),
            )
            .await;
        let p = &got["participant"];
        assert_eq!(p["_id"], id.as_str());
        assert_eq!(p["company_id"], abc.as_str());
        assert_eq!(p["site_id"], primary.as_str());
        assert_eq!(
            (&p["first_name"], &p["last_name"]),
            (&json!("Sarah"), &json!("Williams"))
        );
        assert_eq!(p["ndis_number"], "431234567");
        assert_eq!(p["support_level"], "high");
        assert_eq!(p["status"], "active");
        assert!(p["created_at"].as_f64().is_some() && p["updated_at"].as_f64().is_some());
        assert!(
            p.get("name_key").is_none(),
            "internal sort key stays inside: {p}"
        );
        assert_eq!(got["company"]["name"], "ABC Care");
        assert_eq!(got["company"]["slug"], "abc-care");

        // The same NDIS number again in the same company is refused, naming the field.
        let mut again = sarah(&admin, &primary);
        again["first_name"] = json!("Sally");
        let body = app
            .call("mutation", "participants/create:createParticipant", again)
            .await;
        assert_eq!(body["errorData"]["code"], "CONFLICT", "{body}");
        assert_eq!(body["errorData"]["field"], "ndis_number");
        assert!(body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("A participant with this NDIS number already exists"));
        let mut short = sarah(&admin, &primary);
        short["ndis_number"] = json!("43123456");
        let body = app
            .call("mutation", "participants/create:createParticipant", short)
            .await;
        assert_eq!(body["errorData"]["field"], "ndis_number", "{body}");
        assert_eq!(body["errorMessage"], "NDIS number must be exactly 9 digits");

        // Unique per company: another provider may have a participant with the same number.
        let other = company(&app, "Other Care").await;
        let other_site = site(&app, &other, "Main").await;
        let other_admin = member(&app, "admin@other.org", "company_admin", Some(&other)).await;
        create(&app, sarah(&other_admin, &other_site)).await;

        let listed = app
            .ok(
                "query",
                "participants/list:listParticipants",
                json!({"sessionToken": admin}),
            )
            .await;
        assert_eq!(listed["totalCount"], 1.0);
        assert_eq!(listed["participants"][0]["_id"], id.as_str());
        assert_eq!(listed["company"]["_id"], abc.as_str());

        // Changing the NDIS number to one the company already uses is refused too.
        let second = create(
            &app,
            json!({"sessionToken": admin, "first_name": "Tom", "last_name": "Nguyen",
                   "date_of_birth": "1990-01-01", "ndis_number": "431234568",
                   "support_level": "low"}),
        )
        .await;
        let clash =
            json!({"sessionToken": admin, "participantId": second, "ndis_number": "431234567"});
        assert_eq!(
            failure(
                &app,
                "mutation",
                "participants/update:updateParticipant",
                clash
            )
            .await,
            ("CONFLICT".into(), "ndis_number".into())
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let abc = company(&app, "ABC Care").await;
    let primary = site(&app, &abc, "Primary").await;
    let worker = member(&app, "w@abc.org", "frontline_worker", Some(&abc)).await;
    let other = company(&app, "Other Care").await;
    let foreign_site = site(&app, &other, "Theirs").await;
    let create_path = "participants/create:createParticipant";

    let cases: Vec<(&str, Json, &str, &str)> = vec![
        ("first_name", json!("A"), "VALIDATION", "first_name"),
        (
            "last_name",
            json!("W".repeat(51)),
            "VALIDATION",
            "last_name",
        ),
        (
            "date_of_birth",
            json!("2999-01-01"),
            "VALIDATION",
            "date_of_birth",
        ),
        (
            "date_of_birth",
            json!("1990-02-30"),
            "VALIDATION",
            "date_of_birth",
        ),
        (
            "date_of_birth",
            json!("12/04/1985"),
            "VALIDATION",
            "date_of_birth",
        ),
        (
            "ndis_number",
            json!("43123456a"),
            "VALIDATION",
            "ndis_number",
        ),
        (
            "contact_phone",
            json!("call me"),
            "VALIDATION",
            "contact_phone",
        ),
        (
            "care_notes",
            json!("x".repeat(501)),
            "VALIDATION",
            "care_notes",
        ),
        ("site_id", json!(foreign_site), "NOT_FOUND", "site_id"),
    ];
    for (field, value, code, named) in cases {
        let mut args = sarah(&worker, &primary);
        args[field] = value;
        let got = failure(&app, "mutation", create_path, args).await;
        assert_eq!(got, (code.to_string(), named.to_string()), "{field}");
    }
    let mut level = sarah(&worker, &primary);
    level["support_level"] = json!("extreme");
    let body = app.call("mutation", create_path, level).await;
    // Refused by the argument validator: a plain error, as Convex sends it.
    assert!(body.get("errorData").is_none(), "{body}");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .contains("support_level"));

    // Exactly 500 characters of notes are fine, and a frontline worker may add participants.
    let mut fine = sarah(&worker, &primary);
    fine["care_notes"] = json!("x".repeat(500));
    create(&app, fine).await;

    let mut anonymous = sarah("", &primary);
    anonymous.as_object_mut().unwrap().remove("sessionToken");
    assert_eq!(
        app.code("mutation", create_path, anonymous).await,
        "UNAUTHENTICATED"
    );
    let loner = member(&app, "loner@x.org", "frontline_worker", None).await;
    let body = app
        .call("mutation", create_path, sarah(&loner, &primary))
        .await;
    assert_eq!(body["errorData"]["code"], "FORBIDDEN");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("User must be associated with a company"));
    let bad_filter = json!({"sessionToken": worker, "status": "gone"});
    assert_eq!(
        failure(
            &app,
            "query",
            "participants/search:searchParticipants",
            bad_filter
        )
        .await,
        ("VALIDATION".into(), "status".into())
    );
    let bad_limit = json!({"sessionToken": worker, "limit": -1});
    assert_eq!(
        failure(
            &app,
            "query",
            "participants/list:listParticipants",
            bad_limit
        )
        .await,
        ("VALIDATION".into(), "limit".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn another_companys_participants_answer_like_missing_ones() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let a = company(&app, "Alpha Care").await;
        let a_site = site(&app, &a, "Primary").await;
        let a_admin = member(&app, "admin@alpha.org", "company_admin", Some(&a)).await;
        let theirs = create(&app, sarah(&a_admin, &a_site)).await;

        let b = company(&app, "Beta Care").await;
        let b_site = site(&app, &b, "Primary").await;
        let b_admin = member(&app, "admin@beta.org", "company_admin", Some(&b)).await;
        let mut gone = sarah(&b_admin, &b_site);
        gone["ndis_number"] = json!("999888777");
        let missing = create(&app, gone).await;
        app.ok(
            "mutation",
            "participants/admin:deleteParticipant",
            json!({"sessionToken": b_admin, "participantId": missing}),
        )
        .await;

        let calls = [
            (
                "query",
                "participants/getById:getParticipantById",
                json!({}),
            ),
            (
                "mutation",
                "participants/update:updateParticipant",
                json!({"first_name": "Changed"}),
            ),
            (
                "mutation",
                "participants/updateStatus:updateParticipantStatus",
                json!({"status": "inactive"}),
            ),
            (
                "mutation",
                "participants/admin:deleteParticipant",
                json!({}),
            ),
        ];
        for (kind, path, extra) in calls {
            let mut answers = Vec::new();
            for id in [&theirs, &missing] {
                let mut args = extra.clone();
                args["sessionToken"] = json!(b_admin);
                args["participantId"] = json!(id);
                let body = app.call(kind, path, args).await;
                assert_eq!(body["errorData"]["code"], "NOT_FOUND", "{path}: {body}");
                answers.push((body["errorMessage"].clone(), body["errorData"].clone()));
            }
            assert_eq!(answers[0], answers[1], "{path}: foreign == missing");
        }

        for (path, args) in [
            ("participants/list:listParticipants", json!({})),
            (
                "participants/search:searchParticipants",
                json!({"query": "sarah"}),
            ),
            (
                "participants/list:listParticipants",
                json!({"paginationOpts": {"numItems": 10, "cursor": null}}),
            ),
        ] {
            let mut args = args;
            args["sessionToken"] = json!(b_admin);
            let listed = app.ok("query", path, args).await;
            assert_eq!(listed["participants"], json!([]), "{path}: {listed}");
        }
        // A's participant is untouched and still visible to A.
        let got = app
            .ok(
                "query",
                "participants/getById:getParticipantById",
                json!({"sessionToken": a_admin, "participantId": theirs}),
            )
            .await;
        assert_eq!(got["participant"]["first_name"], "Sarah");
        assert_eq!(got["participant"]["status"], "active");
        app.stop().await;
    }
}
