//! Participants as the web app's system-admin pages, the sample-data button and the sites page use
//! them (webapp-contract §7, §12.1, §13): `participants/admin:*` with camelCase arguments and
//! `{message, code, field}` errors, `createSampleParticipants`, and `participant_count` per site.

use serde_json::{json, Value as Json};

use crate::seed;
use crate::{backends, Web};

async fn site(web: &Web, company: &str, name: &str, created_at: f64) -> String {
    seed::insert(
        &web.app,
        "sites",
        json!({"company_id": company, "name": name, "created_at": created_at}),
    )
    .await
}

fn names(list: &Json) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["first_name"].as_str().unwrap(),
                p["last_name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn system_admins_list_create_and_edit_any_companys_participants_with_the_create_rules() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let north = site(&web, &p.company_a, "North House", 1.0).await;
        let south = site(&web, &p.company_a, "South House", 2.0).await;
        let ridge = site(&web, &p.company_b, "Ridge House", 1.0).await;
        let tok = &p.system_admin.token;
        let person = |first: &str, last: &str, ndis: &str| {
            json!({"sessionToken": tok, "companyId": p.company_a, "siteId": north,
                   "firstName": first, "lastName": last, "ndisNumber": ndis,
                   "dateOfBirth": "1990-05-01", "supportLevel": "medium",
                   "contactPhone": "0400 123 456", "emergencyContact": "Kim (sister)",
                   "careNotes": "Prefers mornings"})
        };
        let created = web
            .calls(&[
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    person("Zara", "Young", "111222333"),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    person("Abe", "Young", "111222334"),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    person("Cleo", "Baker", "111222335"),
                ),
            ])
            .await;
        let zara = created[0].value()["participantId"]
            .as_str()
            .unwrap()
            .to_string();
        let bad = |field: &str, value: Json| {
            let mut args = person("Dana", "Moss", "111222336");
            args[field] = value;
            args
        };
        let mut foreign_site = person("Dana", "Moss", "111222336");
        foreign_site["siteId"] = json!(ridge);
        let mut no_site = person("Dana", "Moss", "111222336");
        no_site["siteId"] = json!(p.company_b);
        let out = web
            .calls(&[
                (
                    "query",
                    "participants/admin:listParticipants",
                    json!({"sessionToken": tok, "companyId": p.company_a}),
                ),
                (
                    "query",
                    "participants/admin:getParticipantById",
                    json!({"sessionToken": tok, "participantId": zara}),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    bad("ndisNumber", json!("12345")),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    person("Dana", "Moss", "111222333"),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    foreign_site,
                ),
                ("mutation", "participants/admin:createParticipant", no_site),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    bad("contactPhone", json!("call me")),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    bad("careNotes", json!("x".repeat(501))),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    bad("firstName", json!(" ")),
                ),
                (
                    "mutation",
                    "participants/admin:createParticipant",
                    bad("dateOfBirth", json!("2999-01-01")),
                ),
                (
                    "query",
                    "participants/admin:listParticipants",
                    json!({"sessionToken": tok, "companyId": p.company_b}),
                ),
            ])
            .await;
        let list = out[0].value();
        assert_eq!(
            names(list),
            ["Cleo Baker", "Abe Young", "Zara Young"],
            "{db:?}: by last then first name"
        );
        let first = &list[0];
        for field in [
            "_id",
            "ndis_number",
            "date_of_birth",
            "support_level",
            "status",
        ] {
            assert!(
                !first[field].is_null(),
                "{db:?}: {field} missing in {first}"
            );
        }
        assert_eq!(first["site"]["name"], "North House", "{db:?}");
        assert_eq!(first["site"]["_id"], north.as_str(), "{db:?}");
        assert_eq!(first["site"]["company_id"], p.company_a.as_str(), "{db:?}");
        assert!(
            first.get("name_key").is_none(),
            "{db:?}: internal fields stay in"
        );

        let got = out[1].value();
        assert_eq!(got["first_name"], "Zara", "{db:?}");
        assert_eq!(got["status"], "active", "{db:?}");
        assert_eq!(got["site_id"], north.as_str(), "{db:?}");
        assert_eq!(got["site"]["name"], "North House", "{db:?}");
        assert_eq!(got["contact_phone"], "0400 123 456", "{db:?}");
        let stored = seed::rows(&web.app, "participants").await;
        let row = stored.iter().find(|r| r.id.encode() == zara).unwrap();
        let by = |f: &str| {
            row.get(f)
                .and_then(values::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(by("created_by"), p.system_admin.id, "{db:?}");
        assert_eq!(by("updated_by"), p.system_admin.id, "{db:?}");

        let field = |i: usize| {
            out[i].error()["data"]["field"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(field(2), "ndis_number", "{db:?}: {:?}", out[2]);
        assert!(out[2].message().contains("9 digits"), "{db:?}");
        assert_eq!(
            (out[3].code(), field(3).as_str()),
            ("CONFLICT", "ndis_number"),
            "{db:?}"
        );
        assert_eq!(
            out[4].message(),
            "Site does not belong to this company",
            "{db:?}"
        );
        assert_eq!(out[5].message(), "Site not found", "{db:?}");
        assert_eq!(
            (out[6].code(), field(6).as_str()),
            ("VALIDATION", "contact_phone"),
            "{db:?}"
        );
        assert_eq!(
            (out[7].code(), field(7).as_str()),
            ("VALIDATION", "care_notes"),
            "{db:?}"
        );
        assert_eq!(
            (out[8].code(), field(8).as_str()),
            ("VALIDATION", "first_name"),
            "{db:?}"
        );
        assert_eq!(field(9), "date_of_birth", "{db:?}");
        assert_eq!(out[10].value(), &json!([]), "{db:?}: company B has none");

        // The edit page sends every field; an empty contact field clears it.
        let edit = |extra: Json| {
            let mut args = json!({"sessionToken": tok, "participantId": zara, "siteId": south,
                                  "status": "inactive", "firstName": "Zara", "lastName": "Young",
                                  "contactPhone": "", "emergencyContact": "", "careNotes": "Likes tea"});
            for (k, v) in extra.as_object().unwrap() {
                args[k] = v.clone();
            }
            args
        };
        let out = web
            .calls(&[
                (
                    "mutation",
                    "participants/admin:updateParticipant",
                    edit(json!({})),
                ),
                (
                    "query",
                    "participants/admin:getParticipantById",
                    json!({"sessionToken": tok, "participantId": zara}),
                ),
                (
                    "mutation",
                    "participants/admin:updateParticipant",
                    edit(json!({"lastName": ""})),
                ),
                (
                    "mutation",
                    "participants/admin:updateParticipant",
                    edit(json!({"ndisNumber": "111222334"})),
                ),
                (
                    "mutation",
                    "participants/admin:updateParticipant",
                    edit(json!({"siteId": ridge})),
                ),
                (
                    "mutation",
                    "participants/admin:updateParticipant",
                    edit(json!({"participantId": p.company_a})),
                ),
                (
                    "query",
                    "participants/admin:getParticipantById",
                    json!({"sessionToken": tok, "participantId": p.company_a}),
                ),
                (
                    "query",
                    "sites/admin:listSites",
                    json!({"sessionToken": tok, "companyId": p.company_a}),
                ),
            ])
            .await;
        assert_eq!(out[0].value()["success"], true, "{db:?}");
        let got = out[1].value();
        assert!(got.get("contact_phone").is_none(), "{db:?}: cleared: {got}");
        assert!(got.get("emergency_contact").is_none(), "{db:?}: cleared");
        assert_eq!(got["care_notes"], "Likes tea", "{db:?}");
        assert_eq!(got["status"], "inactive", "{db:?}");
        assert_eq!(got["site"]["name"], "South House", "{db:?}");
        assert_eq!(out[2].code(), "VALIDATION", "{db:?}: an empty name");
        assert_eq!(
            out[3].error()["data"]["field"],
            "ndis_number",
            "{db:?}: taken"
        );
        assert_eq!(
            out[4].message(),
            "Site does not belong to this company",
            "{db:?}"
        );
        assert_eq!(out[5].code(), "NOT_FOUND", "{db:?}");
        assert_eq!(out[6].message(), "Participant not found", "{db:?}");
        let sites = out[7].value().as_array().unwrap().clone();
        let count = |name: &str| {
            sites.iter().find(|s| s["name"] == name).unwrap()["participant_count"].clone()
        };
        assert_eq!(count("North House"), 2.0, "{db:?}: {sites:?}");
        assert_eq!(count("South House"), 1.0, "{db:?}");

        // Company administrators (and everyone below) are refused, for their own company too.
        let admin = &p.admin_a.token;
        let refused = web
            .calls(&[
                (
                    "query",
                    "participants/admin:listParticipants",
                    json!({"sessionToken": admin, "companyId": p.company_a}),
                ),
                (
                    "query",
                    "participants/admin:getParticipantById",
                    json!({"sessionToken": admin, "participantId": zara}),
                ),
                ("mutation", "participants/admin:createParticipant", {
                    let mut args = person("Dana", "Moss", "111222399");
                    args["sessionToken"] = json!(admin);
                    args
                }),
                (
                    "mutation",
                    "participants/admin:updateParticipant",
                    json!({"sessionToken": admin, "participantId": zara, "firstName": "Zed"}),
                ),
                (
                    "query",
                    "participants/admin:listParticipants",
                    json!({"sessionToken": p.worker_b.token, "companyId": p.company_a}),
                ),
            ])
            .await;
        for out in &refused {
            assert_eq!(out.code(), "FORBIDDEN", "{db:?}: {out:?}");
        }
        web.stop().await;
    }
}

#[tokio::test]
async fn sample_participants_are_made_once_at_the_first_site_and_company_less_lists_are_empty() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let app = &web.app;
        // Sample data is for demo and system administrators; this one works inside company A.
        let demo = seed::member(app, Some(&p.company_a), "demo@harbour.org", "demo_admin").await;
        let path = "participants/createSampleData:createSampleParticipants";
        let before = web
            .calls(&[
                ("mutation", path, json!({"sessionToken": demo.token})),
                (
                    "mutation",
                    path,
                    json!({"sessionToken": p.system_admin.token}),
                ),
                ("mutation", path, json!({"sessionToken": p.admin_a.token})),
                (
                    "query",
                    "participants/list:listParticipants",
                    json!({"sessionToken": p.system_admin.token}),
                ),
            ])
            .await;
        assert!(
            before[0]
                .message()
                .starts_with("No sites found in company. Please create a site first"),
            "{db:?}: {:?}",
            before[0]
        );
        assert_eq!(
            before[1].message(),
            "User must be associated with a company to create sample participants",
            "{db:?}"
        );
        assert_eq!(
            before[2].code(),
            "FORBIDDEN",
            "{db:?}: company admins lack sample_data"
        );
        let empty = before[3].value();
        assert_eq!(empty["participants"], json!([]), "{db:?}: {empty}");
        assert_eq!(empty["company"], Json::Null, "{db:?}");
        assert_eq!(empty["totalCount"], 0.0, "{db:?}");
        assert!(empty["correlationId"].is_string(), "{db:?}");

        let later = site(&web, &p.company_a, "Annex", 5.0).await;
        let first = site(&web, &p.company_a, "Zeta House", 1.0).await;
        let out = web
            .calls(&[
                ("mutation", path, json!({"sessionToken": demo.token})),
                ("mutation", path, json!({"sessionToken": demo.token})),
                (
                    "query",
                    "participants/list:listParticipants",
                    json!({"sessionToken": p.worker_a.token}),
                ),
                (
                    "query",
                    "participants/list:listParticipants",
                    json!({"sessionToken": p.worker_b.token}),
                ),
            ])
            .await;
        let made = out[0].value();
        assert_eq!(made["success"], true, "{db:?}: {made}");
        assert!(made["message"].is_string(), "{db:?}");
        assert_eq!(
            made["participantIds"].as_array().unwrap().len(),
            6,
            "{db:?}"
        );
        let again = out[1].value();
        assert_eq!(again["success"], false, "{db:?}: {again}");
        assert_eq!(
            again["message"], "Sample participants already exist",
            "{db:?}"
        );
        assert_eq!(again["existingCount"], 6.0, "{db:?}");
        assert!(again["correlationId"].is_string(), "{db:?}");

        let list = out[2].value();
        assert_eq!(list["totalCount"], 6.0, "{db:?}");
        let participants = list["participants"].as_array().unwrap();
        let count =
            |field: &str, value: &str| participants.iter().filter(|p| p[field] == value).count();
        assert_eq!(count("status", "active"), 4, "{db:?}");
        assert_eq!(count("status", "inactive"), 1, "{db:?}");
        assert_eq!(count("status", "discharged"), 1, "{db:?}");
        for level in ["high", "medium", "low"] {
            assert!(count("support_level", level) > 0, "{db:?}: {level}");
        }
        assert_eq!(
            count("site_id", &first),
            6,
            "{db:?}: the company's first site"
        );
        assert_eq!(count("site_id", &later), 0, "{db:?}");
        let discharged = participants
            .iter()
            .find(|p| p["status"] == "discharged")
            .unwrap();
        assert!(discharged["discharge_reason"].is_string(), "{db:?}");
        assert_eq!(
            out[3].value()["totalCount"],
            0.0,
            "{db:?}: company B is untouched"
        );
        web.stop().await;
    }
}
