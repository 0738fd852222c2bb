//! Narratives: versions and content hash on every edit, statistics and the consolidated view,
//! submission with its checklist and handoff, the lock afterwards, and resuming the wizard.

use sha2::{Digest, Sha256};

use super::*;

/// SHA-256 of the four phases, each preceded by its length in bytes (big-endian u64).
fn hash(phases: [&str; 4]) -> String {
    let mut h = Sha256::new();
    for p in phases {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

async fn narrative(app: &App, token: &str, id: &str) -> Json {
    app.ok(
        "query",
        "narratives:getByIncidentId",
        json!({"sessionToken": token, "incident_id": id}),
    )
    .await
}

#[tokio::test]
async fn every_edit_bumps_the_version_and_the_hash() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let id = create(&app, &worker.token, &abc.site).await;
        let by_id = json!({"sessionToken": worker.token, "incident_id": id});

        let early = failure(
            &app,
            "mutation",
            "narratives:update",
            json!({"sessionToken": worker.token, "incident_id": id, "before_event": "x"}),
        )
        .await;
        assert_eq!(early.1, "Narrative not found. Create narrative first.");
        assert_eq!(narrative(&app, &worker.token, &id).await, Json::Null);

        let created = app.ok("mutation", "narratives:create", by_id.clone()).await;
        let again = app.ok("mutation", "narratives:create", by_id.clone()).await;
        assert_eq!(created, again, "creating twice returns the same narrative");
        let first = narrative(&app, &worker.token, &id).await;
        assert_eq!(first["_id"], created);
        assert_eq!(first["version"], 1.0);
        assert_eq!(first["narrative_hash"], hash(["", "", "", ""]));
        assert_eq!(first["before_event"], "");

        let (code, message, _) =
            failure(&app, "mutation", "narratives:update", by_id.clone()).await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            (
                "VALIDATION",
                "At least one narrative phase must be provided"
            )
        );
        let before = "Sarah was calm at breakfast.";
        let during = "She slipped on the wet floor near the sink.";
        let mut edit = by_id.clone();
        edit["before_event"] = json!(before);
        let r = app.ok("mutation", "narratives:update", edit).await;
        assert_eq!(r, json!({"success": true, "version": 2.0}));
        let mut edit = by_id.clone();
        edit["during_event"] = json!(during);
        let r = app.ok("mutation", "narratives:update", edit).await;
        assert_eq!(r["version"], 3.0);
        let now = narrative(&app, &worker.token, &id).await;
        assert_eq!(now["before_event"], before, "phases not given are kept");
        assert_eq!(now["narrative_hash"], hash([before, during, "", ""]));
        let incident = app
            .ok(
                "query",
                "incidents:getById",
                json!({"sessionToken": worker.token, "id": id}),
            )
            .await;
        assert_eq!(incident["narrative_hash"], now["narrative_hash"]);
        assert_eq!(
            incident["capture_status"], "in_progress",
            "writing the narrative starts the capture"
        );
        let mut too_long = by_id.clone();
        too_long["end_event"] = json!("z".repeat(20_001));
        let (code, _, field) = failure(&app, "mutation", "narratives:update", too_long).await;
        assert_eq!((code.as_str(), field.as_str()), ("VALIDATION", "end_event"));

        let stats = app
            .ok("query", "narratives:getStatsByIncidentId", by_id.clone())
            .await;
        assert_eq!(stats["version"], 3.0);
        assert_eq!(
            stats["phases"]["before_event"],
            json!({"character_count": 28.0, "word_count": 5.0, "has_content": true,
                   "is_complete": true, "enhanced": false, "question_count": 0.0,
                   "answered_count": 0.0})
        );
        assert_eq!(stats["phases"]["end_event"]["has_content"], false);
        assert_eq!(stats["total_words"], 14.0);
        assert_eq!(stats["completed_phases"], 2.0);
        assert_eq!(stats["completion_percentage"], 50.0);
        assert_eq!(stats["is_complete"], false);

        let consolidated = app
            .ok("query", "narratives:getConsolidated", by_id.clone())
            .await;
        assert_eq!(
            consolidated["consolidated_narrative"],
            format!("**Before Event**: {before}\n\n**During Event**: {during}")
        );
        // A query never writes: the stored narrative did not change.
        let after = narrative(&app, &worker.token, &id).await;
        assert_eq!(after["version"], 3.0);
        assert!(after.get("consolidated_narrative").is_none(), "{after}");
        app.stop().await;
    }
}

#[tokio::test]
async fn submission_checks_the_checklist_creates_one_handoff_and_locks_the_capture() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let server = Server::new(&app);
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
        let id = create(&app, &worker.token, &abc.site).await;
        let by_id = json!({"sessionToken": worker.token, "incident_id": id});
        app.ok("mutation", "narratives:create", by_id.clone()).await;
        let mut edit = by_id.clone();
        edit["before_event"] = json!("Calm morning.");
        app.ok("mutation", "narratives:update", edit).await;
        let submit =
            |clarified: bool| json!({"incident_id": id, "clarifications_complete": clarified});
        let refused = server
            .call("incidents:markSubmitted", &worker.token, submit(true))
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "CONFLICT: Workflow incomplete. Missing: narratives_complete, enhancement_complete"
        );
        let mut edit = by_id.clone();
        for phase in ["during_event", "end_event", "post_event"] {
            edit[phase] = json!(format!("Text of {phase}."));
        }
        app.ok("mutation", "narratives:update", edit).await;
        server
            .call(
                "test:enhance",
                &worker.token,
                json!({"incident_id": id, "phase": "before_event",
                       "text": "A calm morning in the kitchen."}),
            )
            .await
            .unwrap();
        let refused = server
            .call("incidents:markSubmitted", &worker.token, submit(false))
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "CONFLICT: Workflow incomplete. Missing: clarifications_complete"
        );
        // Only the creator submits.
        let refused = server
            .call("incidents:markSubmitted", &lead.token, submit(true))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Some(functions::ErrorCode::Forbidden));

        let before = now_ms();
        let done = server
            .call("incidents:markSubmitted", &worker.token, submit(true))
            .await
            .unwrap();
        assert_eq!(done["already_submitted"], false);
        let incident = app
            .ok(
                "query",
                "incidents:getById",
                json!({"sessionToken": lead.token, "id": id}),
            )
            .await;
        assert_eq!(incident["overall_status"], "analysis_pending");
        assert_eq!(incident["capture_status"], "completed");
        assert_eq!(incident["handoff_status"], "ready_for_analysis");
        assert_eq!(incident["submitted_by"], worker.id.as_str());
        assert!(incident["submitted_at"].as_f64().unwrap() >= before);
        assert_eq!(incident["narrative_enhanced"], true);
        assert_eq!(
            incident["completion_checklist"],
            json!({"metadata_complete": true, "narratives_complete": true,
                   "clarifications_complete": true, "enhancement_complete": true,
                   "validation_passed": true})
        );
        // Both versions of the enhanced phase are kept.
        let stored = narrative(&app, &lead.token, &id).await;
        assert_eq!(stored["before_event"], "Calm morning.");
        assert_eq!(
            stored["before_event_extra"],
            "A calm morning in the kitchen."
        );

        // Submitting again changes nothing and makes no second handoff (defect 15).
        let again = server
            .call("incidents:markSubmitted", &worker.token, submit(true))
            .await
            .unwrap();
        assert_eq!(again["already_submitted"], true);
        assert_eq!(again["handoff_id"], done["handoff_id"]);
        let handoffs = seed::rows(&app, "workflow_handoffs").await;
        assert_eq!(handoffs.len(), 1);
        let handoff = &handoffs[0];
        assert_eq!(handoff.id.encode(), done["handoff_id"].as_str().unwrap());
        let text = |f: &str| handoff.get(f).and_then(Value::as_str).unwrap().to_string();
        assert_eq!(text("incident_id"), id);
        assert_eq!(
            (text("from_workflow"), text("to_workflow")),
            ("incident_capture".into(), "incident_analysis".into())
        );

        // The lock engages: the narrative and the details are read-only now.
        let mut edit = by_id.clone();
        edit["before_event"] = json!("rewritten");
        let (code, message, _) = failure(&app, "mutation", "narratives:update", edit).await;
        assert_eq!(code, "CONFLICT");
        assert!(
            message.starts_with("Cannot edit narrative: workflow has been completed"),
            "{message}"
        );
        let mut meta = details(&worker.token, &abc.site, 1.0);
        meta["incidentId"] = json!(id);
        let (code, _, _) = failure(&app, "mutation", "incidents:updateMetadata", meta).await;
        assert_eq!(code, "CONFLICT");
        let enhance = server
            .call(
                "test:enhance",
                &worker.token,
                json!({"incident_id": id, "phase": "end_event", "text": "late"}),
            )
            .await;
        assert_eq!(
            enhance.unwrap_err().code(),
            Some(functions::ErrorCode::Conflict)
        );
        let auto = app
            .ok(
                "mutation",
                "incidents:autoCompleteWorkflow",
                json!({"sessionToken": worker.token, "incident_id": id}),
            )
            .await;
        assert_eq!(auto["already_completed"], true);
        assert_eq!(auto["current_status"], "analysis_pending");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_worker_resumes_their_unfinished_captures() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let server = Server::new(&app);
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let colleague = member(&app, Some(&abc.id), "mate@abc.org", "frontline_worker").await;
        let done = super::status::submitted(&app, &server, &worker, &abc.site).await;
        let mut open = Vec::new();
        for _ in 0..6 {
            open.push(create(&app, &worker.token, &abc.site).await);
        }
        create(&app, &colleague.token, &abc.site).await;
        let auto = failure(
            &app,
            "mutation",
            "incidents:autoCompleteWorkflow",
            json!({"sessionToken": worker.token, "incident_id": open[0]}),
        )
        .await;
        assert_eq!(auto.0, "CONFLICT", "an unfinished capture is not completed");

        let preview = "p".repeat(150);
        let saved = app
            .ok(
                "mutation",
                "incidents:updateWorkflowProgress",
                json!({"sessionToken": worker.token, "incidentId": open[5],
                       "current_step": 3, "content_preview": preview}),
            )
            .await;
        assert_eq!(saved, json!({"success": true}));
        let mine = app
            .ok(
                "query",
                "incidents_listing:getMyIncompleteIncidents",
                json!({"sessionToken": worker.token}),
            )
            .await;
        let ids: Vec<&str> = mine["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["_id"].as_str().unwrap())
            .collect();
        let newest: Vec<&str> = open.iter().rev().take(5).map(String::as_str).collect();
        assert_eq!(ids, newest, "the five newest unfinished, newest first");
        assert!(!ids.contains(&done.as_str()), "submitted ones are finished");
        assert_eq!(mine["count"], 5.0);
        assert_eq!(mine["totalCount"], 6.0);
        let resumed = &mine["incidents"][0];
        assert_eq!(resumed["current_step"], 3.0);
        assert_eq!(resumed["step_description"], "During Event");
        assert_eq!(resumed["content_preview"], "p".repeat(100));
        assert_eq!(resumed["site_name"], "Primary");

        app.ok(
            "mutation",
            "incidents:updateWorkflowProgress",
            json!({"sessionToken": worker.token, "incidentId": open[5], "current_step": 9}),
        )
        .await;
        let got = app
            .ok(
                "query",
                "incidents:getDraftIncident",
                json!({"sessionToken": worker.token, "incidentId": open[5]}),
            )
            .await;
        assert_eq!(got["incident"]["step_description"], "Unknown Step");
        assert_eq!(got["narrative"], Json::Null);
        let bad = failure(
            &app,
            "mutation",
            "incidents:updateWorkflowProgress",
            json!({"sessionToken": worker.token, "incidentId": open[5], "current_step": 1.5}),
        )
        .await;
        assert_eq!(
            (bad.0.as_str(), bad.2.as_str()),
            ("VALIDATION", "current_step")
        );
        app.stop().await;
    }
}
