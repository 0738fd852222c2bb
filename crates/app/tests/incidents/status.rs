//! The status machine over HTTP: one call per kind of refusal, the path an incident takes from
//! draft to completed analysis, and the status options clients filter by.

use super::*;

/// Writes all four phases of a narrative and an enhancement, then submits, as the AI layer's
/// submission will: the incident is then `ready_for_analysis`.
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
                json!("ready_for_analysis"),
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
            json!({"capture_pending": 0.0, "ready_for_analysis": 0.0, "analysis_pending": 0.0,
                   "completed": 1.0, "total": 1.0, "scope": "company"})
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
            {"value": "ready_for_analysis", "label": "Ready for Analysis"},
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
        "Unknown status 'draft'; expected all, capture_pending, ready_for_analysis, analysis_pending, completed"
    );
    app.stop().await;
}
