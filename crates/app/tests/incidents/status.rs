//! The status machine over HTTP: one call per kind of refusal, the path an incident takes from
//! draft to completed analysis, and the status options clients filter by.

use super::*;

/// Writes all four phases of a narrative and an enhancement, then submits, as the AI layer's
/// submission will: the incident is then `analysis_pending`, its handoff `ready_for_analysis`.
pub async fn submitted(app: &App, server: &Server, worker: &Member, site: &str) -> String {
    let id = create(app, &worker.token, site).await;
    app.ok(
        "mutation",
        "narratives:create",
        json!({"sessionToken": worker.token, "incident_id": id}),
    )
    .await;
    app.ok(
        "mutation",
        "narratives:update",
        json!({"sessionToken": worker.token, "incident_id": id,
               "before_event": "Sarah was calm at breakfast.",
               "during_event": "She slipped on the wet floor.",
               "end_event": "Staff helped her up.", "post_event": "Ice pack; family told."}),
    )
    .await;
    server
        .call(
            "test:enhance",
            &worker.token,
            json!({"incident_id": id, "phase": "during_event",
                   "text": "Sarah slipped on water near the sink."}),
        )
        .await
        .unwrap();
    server
        .call(
            "incidents:markSubmitted",
            &worker.token,
            json!({"incident_id": id, "clarifications_complete": true}),
        )
        .await
        .unwrap();
    id
}

async fn statuses(app: &App, token: &str, id: &str) -> (Json, Json, Json, Json) {
    let got = app
        .ok(
            "query",
            "incidents:getById",
            json!({"sessionToken": token, "id": id}),
        )
        .await;
    (
        got["capture_status"].clone(),
        got["analysis_status"].clone(),
        got["overall_status"].clone(),
        got["handoff_status"].clone(),
    )
}

#[tokio::test]
async fn impossible_transitions_are_refused_with_stable_codes() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let colleague = member(&app, Some(&abc.id), "mate@abc.org", "frontline_worker").await;
        let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
        let id = create(&app, &worker.token, &abc.site).await;
        let update = |token: &str, body: Json| {
            let mut args = body;
            args["sessionToken"] = json!(token);
            args["id"] = json!(id);
            args
        };
        let refused = [
            (
                json!({"id": id}),
                ("UNAUTHENTICATED", "Authentication required"),
            ),
            (
                update(&worker.token, json!({})),
                (
                    "VALIDATION",
                    "Validation failed: At least one status field must be provided",
                ),
            ),
            (
                update(&worker.token, json!({"capture_status": "completed"})),
                (
                    "CONFLICT",
                    "Invalid capture status transition from draft to completed",
                ),
            ),
            (
                update(&worker.token, json!({"analysis_status": "in_progress"})),
                ("FORBIDDEN", "Insufficient permissions"),
            ),
            (
                update(&colleague.token, json!({"capture_status": "in_progress"})),
                (
                    "FORBIDDEN",
                    "Access denied: can only update your own incidents",
                ),
            ),
            (
                update(&lead.token, json!({"analysis_status": "in_progress"})),
                (
                    "CONFLICT",
                    "Cannot start analysis until capture phase is completed",
                ),
            ),
        ];
        for (args, (code, message)) in refused {
            let got = failure(&app, "mutation", "incidents:updateStatus", args.clone()).await;
            assert_eq!((got.0.as_str(), got.1.as_str()), (code, message), "{args}");
        }
        // Asking for the current status again changes nothing; draft moves to in progress.
        for status in ["draft", "in_progress", "in_progress"] {
            app.ok(
                "mutation",
                "incidents:updateStatus",
                update(&worker.token, json!({"capture_status": status})),
            )
            .await;
        }
        let back = update(&worker.token, json!({"capture_status": "draft"}));
        let got = failure(&app, "mutation", "incidents:updateStatus", back).await;
        assert_eq!(
            got.1,
            "Invalid capture status transition from in_progress to draft"
        );
        // Completing capture is submission's job, never a bare status update (defect 14).
        let done = update(&worker.token, json!({"capture_status": "completed"}));
        let got = failure(&app, "mutation", "incidents:updateStatus", done).await;
        assert_eq!(
            (got.0.as_str(), got.2.as_str()),
            ("CONFLICT", "capture_status")
        );
        assert!(
            got.1.contains("submitting the incident for analysis"),
            "{}",
            got.1
        );
        assert_eq!(
            statuses(&app, &worker.token, &id).await,
            (
                json!("in_progress"),
                json!("not_started"),
                json!("capture_pending"),
                json!("draft")
            )
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn an_incident_goes_from_draft_through_submission_to_completed_analysis() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let server = Server::new(&app);
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
        let id = submitted(&app, &server, &worker, &abc.site).await;
        assert_eq!(
            statuses(&app, &lead.token, &id).await,
            (
                json!("completed"),
                json!("not_started"),
                json!("analysis_pending"),
                json!("ready_for_analysis")
            )
        );
        let analysis =
            |status: &str| json!({"sessionToken": lead.token, "id": id, "analysis_status": status});
        // No skipping: not_started cannot jump to completed.
        let got = failure(
            &app,
            "mutation",
            "incidents:updateStatus",
            analysis("completed"),
        )
        .await;
        assert_eq!(
            got.1,
            "Invalid analysis status transition from not_started to completed"
        );
        app.ok(
            "mutation",
            "incidents:updateStatus",
            analysis("in_progress"),
        )
        .await;
        assert_eq!(
            statuses(&app, &lead.token, &id).await,
            (
                json!("completed"),
                json!("in_progress"),
                json!("analysis_pending"),
                json!("in_analysis")
            )
        );
        app.ok("mutation", "incidents:updateStatus", analysis("completed"))
            .await;
        assert_eq!(
            statuses(&app, &lead.token, &id).await,
            (
                json!("completed"),
                json!("completed"),
                json!("completed"),
                json!("analysis_complete")
            )
        );
        let got = failure(
            &app,
            "mutation",
            "incidents:updateStatus",
            analysis("in_progress"),
        )
        .await;
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (
                "CONFLICT",
                "Invalid analysis status transition from completed to in_progress"
            )
        );
        let counts = app
            .ok(
                "query",
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": lead.token}),
            )
            .await;
        assert_eq!(
            counts,
            json!({"capture_pending": 0.0, "analysis_pending": 0.0, "completed": 1.0,
                   "total": 1.0, "scope": "company"})
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn status_options_come_with_their_labels() {
    let place = Place::new(harness::Db::Sqlite).await;
    let app = App::start(&place).await;
    let options = app
        .ok("query", "incidents:getStatusOptions", json!({}))
        .await;
    assert_eq!(
        options["overall"],
        json!([
            {"value": "capture_pending", "label": "Capture Pending"},
            {"value": "analysis_pending", "label": "Analysis Pending"},
            {"value": "completed", "label": "Completed"},
        ])
    );
    assert_eq!(
        options["capture"][1],
        json!({"value": "in_progress", "label": "In Progress"})
    );
    assert_eq!(options["analysis"][0]["value"], "not_started");
    assert_eq!(options["handoff"].as_array().unwrap().len(), 4);
    // Every value a list filters by is accepted; anything else is refused, listing the values.
    let abc = company(&app, "ABC Care").await;
    let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
    for option in options["overall"].as_array().unwrap() {
        app.ok(
            "query",
            "incidents_listing:getAllCompanyIncidents",
            json!({"sessionToken": lead.token, "filters": {"status": option["value"]}}),
        )
        .await;
    }
    // An empty page keeps a usable cursor (Convex clients ask for zero items at times).
    let none = app
        .ok(
            "query",
            "incidents_listing:getAllCompanyIncidents",
            json!({"sessionToken": lead.token, "paginationOpts": {"numItems": 0, "cursor": null}}),
        )
        .await;
    assert_eq!(
        (&none["page"], &none["isDone"]),
        (&json!([]), &json!(false))
    );
    let rest = app
        .ok(
            "query",
            "incidents_listing:getAllCompanyIncidents",
            json!({"sessionToken": lead.token,
                   "paginationOpts": {"numItems": 5, "cursor": none["continueCursor"]}}),
        )
        .await;
    assert_eq!((&rest["page"], &rest["isDone"]), (&json!([]), &json!(true)));
    let (code, message, field) = failure(
        &app,
        "query",
        "incidents_listing:getAllCompanyIncidents",
        json!({"sessionToken": lead.token, "filters": {"status": "draft"}}),
    )
    .await;
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("VALIDATION", "filters.status")
    );
    assert_eq!(
        message,
        "Unknown status 'draft'; expected all, capture_pending, analysis_pending, completed"
    );
    app.stop().await;
}

/// The schema of earlier versions, as far as the overall status goes: incidents could hold
/// `ready_for_analysis`, and the counts had a field for it.
fn legacy_schema() -> store::Schema {
    use values::validator::v;
    let mut schema = app::schema();
    for table in &mut schema.tables {
        match table.name.as_str() {
            "incidents" => *table = table.clone().field("overall_status", v::any()),
            "incident_counts" => *table = table.clone().optional("ready_for_analysis", v::number()),
            _ => {}
        }
    }
    schema
}

/// Rows an earlier version stored with the overall status `ready_for_analysis` (and counted under
/// it) are rewritten to `analysis_pending` with their counts, so the filter and the count cards
/// find them and later writes still validate; a second run finds nothing to do.
#[tokio::test]
async fn stored_ready_for_analysis_rows_are_upgraded_with_their_counts() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let server = Server::new(&app);
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
        let id = submitted(&app, &server, &worker, &abc.site).await;
        create(&app, &worker.token, &abc.site).await;
        app.stop().await;

        // What the earlier version left: the submitted incident and its counts under the old value.
        let overrides = config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(place.dir.path().join("data")),
            database_url: place.pg_url.clone(),
        };
        let config = config::Config::from_env(overrides, |k| {
            (k == "SUPPORTSIGNAL_ENV").then(|| "test".to_string())
        })
        .unwrap();
        let old = server::open_store(&config, legacy_schema()).await.unwrap();
        let incident = id.clone();
        old.mutate(move |txn| {
            let doc = txn.normalize_id("incidents", &incident).unwrap();
            let status = Some(Value::from("ready_for_analysis"));
            txn.patch(
                &doc,
                store::Patch::from([("overall_status".into(), status)]),
            )?;
            for row in txn.query("incident_counts")?.collect()? {
                let n = row.get("analysis_pending").and_then(Value::as_f64).unwrap();
                let patch = store::Patch::from([
                    ("analysis_pending".to_string(), Some(Value::from(0.0))),
                    ("ready_for_analysis".to_string(), Some(Value::from(n))),
                ]);
                txn.patch(&row.id, patch)?;
            }
            Ok::<_, store::StoreError>(())
        })
        .await
        .unwrap();
        old.close().await.unwrap();

        // Starting the application upgrades the stored values before it serves anything.
        let app = App::start(&place).await;
        assert_eq!(app::incidents::upgrade::run(&app.store).await.unwrap(), 0);
        let pending = app
            .ok(
                "query",
                "incidents_listing:getAllCompanyIncidents",
                json!({"sessionToken": lead.token, "filters": {"status": "analysis_pending"}}),
            )
            .await;
        assert_eq!(pending["totalCount"], 1.0, "{db:?}");
        assert_eq!(pending["incidents"][0]["_id"], id.as_str());
        assert_eq!(
            pending["incidents"][0]["overall_status"],
            "analysis_pending"
        );
        assert_eq!(
            pending["incidents"][0]["handoff_status"],
            "ready_for_analysis"
        );
        let expected = |scope: &str| {
            json!({"capture_pending": 1.0, "analysis_pending": 1.0, "completed": 0.0,
                   "total": 2.0, "scope": scope})
        };
        let counts = |token: &str| {
            app.ok(
                "query",
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": token}),
            )
        };
        assert_eq!(counts(&lead.token).await, expected("company"), "{db:?}");
        assert_eq!(counts(&worker.token).await, expected("personal"));
        // The count rows validate again: the next incident is counted.
        create(&app, &worker.token, &abc.site).await;
        assert_eq!(counts(&lead.token).await["capture_pending"], 2.0);
        app.stop().await;
    }
}
