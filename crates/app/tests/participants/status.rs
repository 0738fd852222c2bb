//! Status changes (discharging needs a reason) and deletion (administrators only, audited).

use super::*;

#[tokio::test]
async fn status_changes_and_discharging_needs_a_reason() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let primary = site(&app, &abc, "Primary").await;
        let worker = member(&app, "w@abc.org", "frontline_worker", Some(&abc)).await;
        let id = create(&app, sarah(&worker, &primary)).await;
        let path = "participants/updateStatus:updateParticipantStatus";
        let status = |status: &str, reason: Option<&str>| {
            let mut args = json!({"sessionToken": worker, "participantId": id, "status": status});
            if let Some(reason) = reason {
                args["reason"] = json!(reason);
            }
            args
        };
        let get = || async {
            app.ok(
                "query",
                "participants/getById:getParticipantById",
                json!({"sessionToken": worker, "participantId": id}),
            )
            .await["participant"]
                .clone()
        };

        for reason in [None, Some("   ")] {
            let body = app
                .call("mutation", path, status("discharged", reason))
                .await;
            assert_eq!(body["errorData"]["field"], "reason", "{body}");
            assert_eq!(
                body["errorMessage"],
                "Reason is required when discharging a participant"
            );
        }
        assert_eq!(get().await["status"], "active");
        // Discharging through a plain edit would skip the reason, so it is refused too.
        let sneaky = json!({"sessionToken": worker, "participantId": id, "status": "discharged"});
        assert_eq!(
            failure(
                &app,
                "mutation",
                "participants/update:updateParticipant",
                sneaky
            )
            .await,
            ("VALIDATION".into(), "status".into())
        );

        let done = app
            .ok(
                "mutation",
                path,
                status("discharged", Some("Moved interstate")),
            )
            .await;
        assert_eq!(done["success"], true);
        assert_eq!(done["previousStatus"], "active");
        assert_eq!(done["newStatus"], "discharged");
        assert_eq!(done["participantId"], id.as_str());
        assert!(done["message"].as_str().unwrap().contains("discharged"));
        let p = get().await;
        assert_eq!(p["status"], "discharged");
        assert_eq!(p["discharge_reason"], "Moved interstate");

        let by_status = |s: &str| json!({"sessionToken": worker, "status": s});
        let list = "participants/list:listParticipants";
        assert_eq!(
            app.ok("query", list, by_status("discharged")).await["totalCount"],
            1.0
        );
        assert_eq!(
            app.ok("query", list, by_status("active")).await["totalCount"],
            0.0
        );
        assert_eq!(
            app.ok("query", list, by_status("all")).await["totalCount"],
            1.0
        );

        let same = app.ok("mutation", path, status("discharged", None)).await;
        assert_eq!(same["previousStatus"], "discharged");
        assert!(same["message"].as_str().unwrap().contains("already"));

        let back = app.ok("mutation", path, status("active", None)).await;
        assert_eq!(back["previousStatus"], "discharged");
        let p = get().await;
        assert_eq!(p["status"], "active");
        assert!(p.get("discharge_reason").is_none(), "{p}");
        app.ok("mutation", path, status("inactive", None)).await;
        assert_eq!(get().await["status"], "inactive");

        // Editing other fields keeps the status and re-sorts by the new name.
        let edit = json!({"sessionToken": worker, "participantId": id, "last_name": "Abbott",
                          "contact_phone": ""});
        app.ok("mutation", "participants/update:updateParticipant", edit)
            .await;
        let p = get().await;
        assert_eq!(
            (&p["last_name"], &p["status"]),
            (&json!("Abbott"), &json!("inactive"))
        );
        assert!(
            p.get("contact_phone").is_none(),
            "emptied field removed: {p}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn deleting_needs_an_administrator() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let abc = company(&app, "ABC Care").await;
    let primary = site(&app, &abc, "Primary").await;
    let worker = member(&app, "w@abc.org", "frontline_worker", Some(&abc)).await;
    let lead = member(&app, "lead@abc.org", "team_lead", Some(&abc)).await;
    let admin = member(&app, "admin@abc.org", "company_admin", Some(&abc)).await;
    app::users::create_system_admin(
        &app.store,
        "root@x.org",
        "Root",
        &secrecy::SecretString::from(PW.to_string()),
    )
    .await
    .unwrap();
    let root = app.token("root@x.org", PW).await;
    let path = "participants/admin:deleteParticipant";
    let first = create(&app, sarah(&worker, &primary)).await;
    let mut tom = sarah(&worker, &primary);
    tom["ndis_number"] = json!("431234568");
    let second = create(&app, tom).await;

    for token in [&worker, &lead] {
        let args = json!({"sessionToken": token, "participantId": first});
        assert_eq!(app.code("mutation", path, args).await, "FORBIDDEN");
    }
    let deleted = app
        .ok(
            "mutation",
            path,
            json!({"sessionToken": admin, "participantId": first}),
        )
        .await;
    assert_eq!(deleted["success"], true);
    let gone = json!({"sessionToken": admin, "participantId": first});
    assert_eq!(
        app.code("query", "participants/getById:getParticipantById", gone)
            .await,
        "NOT_FOUND"
    );
    // Administrators of every company may delete in any company; the deletion is audited.
    app.ok(
        "mutation",
        path,
        json!({"sessionToken": root, "participantId": second}),
    )
    .await;
    let events = app
        .ok(
            "query",
            "audit:listEvents",
            json!({"sessionToken": root, "allCompanies": true, "event": "participant_deleted"}),
        )
        .await;
    let targets: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [second.as_str(), first.as_str()]);
    let listed = app
        .ok(
            "query",
            "participants/list:listParticipants",
            json!({"sessionToken": worker}),
        )
        .await;
    assert_eq!(listed["totalCount"], 0.0);
    app.stop().await;
}
