//! Deleting incidents with everything that belongs to them, the references that keep participants
//! and sites from being deleted, the counts administrators see, and export → validate → import.

use super::*;

async fn count_rows(app: &App, table: &'static str, incident: &str) -> usize {
    seed::rows(app, table)
        .await
        .iter()
        .filter(|r| r.get("incident_id").and_then(Value::as_str) == Some(incident))
        .count()
}

#[tokio::test]
async fn deleting_an_incident_removes_its_children_and_frees_its_references() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let server = Server::new(&app);
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let admin = member(&app, Some(&abc.id), "admin@abc.org", "company_admin").await;
        let platform = member(&app, None, "ops@platform.org", "system_admin").await;
        let sarah = participant(&app, &abc, &worker.id, "431234567", "active").await;

        let id = super::status::submitted(&app, &server, &worker, &abc.east).await;
        let mut args = details(&worker.token, &abc.site, 2.0);
        args["participant_id"] = json!(sarah);
        let linked = app.ok("mutation", "incidents:create", args).await;
        let linked = linked.as_str().unwrap().to_string();
        assert_eq!(count_rows(&app, "incident_narratives", &id).await, 1);
        assert_eq!(count_rows(&app, "workflow_handoffs", &id).await, 1);

        // The participant and the sites are referred to, so they stay.
        let (code, message, _) = failure(
            &app,
            "mutation",
            "participants/admin:deleteParticipant",
            json!({"sessionToken": admin.token, "participantId": sarah}),
        )
        .await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            (
                "CONFLICT",
                "Cannot delete a participant with incidents; discharge the participant instead"
            )
        );
        let site_delete = |site: &str| json!({"sessionToken": platform.token, "siteId": site});
        let (code, message, field) = failure(
            &app,
            "mutation",
            "sites/admin:deleteSite",
            site_delete(&abc.east),
        )
        .await;
        assert_eq!((code.as_str(), field.as_str()), ("CONFLICT", "siteId"));
        assert_eq!(
            message,
            "This site cannot be deleted: incidents refer to it; move them to another site first"
        );
        let (_, message, _) = failure(
            &app,
            "mutation",
            "sites/admin:deleteSite",
            site_delete(&abc.site),
        )
        .await;
        assert!(
            message.contains("participants and incidents refer to it"),
            "{message}"
        );

        let companies = app
            .ok(
                "query",
                "companies/admin:listAllCompanies",
                json!({"sessionToken": platform.token}),
            )
            .await;
        let listed = &companies[0];
        assert_eq!(listed["participantCount"], 1.0);
        assert_eq!(listed["activeIncidentCount"], 2.0);

        // An AI request about the incident quotes its narrative, so it goes with the incident.
        seed::insert(
            &app,
            "ai_request_logs",
            json!({"correlation_id": "c1", "operation": "enhance_narrative_before_event",
                   "variables": {"beforeEvent": "Sarah was calm"}, "tokens_in": 1.0,
                   "tokens_out": 1.0, "cost_usd": 0.0, "latency_ms": 1.0, "success": true,
                   "attempts": [], "company_id": abc.id, "incident_id": id, "created_at": 1.0}),
        )
        .await;
        assert_eq!(count_rows(&app, "ai_request_logs", &id).await, 1);

        let deleted = app
            .ok(
                "mutation",
                "incidents:deleteIncident",
                json!({"sessionToken": admin.token, "id": id, "reason": "entered twice"}),
            )
            .await;
        assert_eq!(deleted["success"], true);
        assert_eq!(deleted["deleted_child_records"], 3.0);
        assert_eq!(count_rows(&app, "ai_request_logs", &id).await, 0);
        assert_eq!(count_rows(&app, "incident_narratives", &id).await, 0);
        assert_eq!(count_rows(&app, "workflow_handoffs", &id).await, 0);
        let gone = failure(
            &app,
            "query",
            "incidents:getById",
            json!({"sessionToken": admin.token, "id": id}),
        )
        .await;
        assert_eq!(gone.0, "NOT_FOUND");
        let audit = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": admin.token, "event": "incident_deleted"}),
            )
            .await;
        assert_eq!(audit[0]["target_id"], id.as_str());
        assert_eq!(audit[0]["details"]["reason"], "entered twice");
        assert_eq!(audit[0]["actor_id"], admin.id.as_str());

        // With the incident gone, its site may go; the counts follow the deletion.
        app.ok("mutation", "sites/admin:deleteSite", site_delete(&abc.east))
            .await;
        let counts = app
            .ok(
                "query",
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": admin.token}),
            )
            .await;
        assert_eq!(counts["total"], 1.0);
        assert_eq!(counts["analysis_pending"], 0.0);
        // A platform administrator deletes any company's incident; then the participant may go.
        app.ok(
            "mutation",
            "incidents:deleteIncident",
            json!({"sessionToken": platform.token, "id": linked}),
        )
        .await;
        app.ok(
            "mutation",
            "participants/admin:deleteParticipant",
            json!({"sessionToken": admin.token, "participantId": sarah}),
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn a_capture_record_exports_validates_and_imports_into_another_company() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let server = Server::new(&app);
        let abc = company(&app, "ABC Care").await;
        let demo = company(&app, "Demo Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
        let platform = member(&app, None, "ops@platform.org", "demo_admin").await;
        let demo_lead = member(&app, Some(&demo.id), "lead@demo.org", "team_lead").await;
        let id = super::status::submitted(&app, &server, &worker, &abc.east).await;

        let refused = failure(
            &app,
            "action",
            "workflowData:exportWorkflowData",
            json!({"sessionToken": lead.token, "incident_id": id}),
        )
        .await;
        assert_eq!(refused.0, "FORBIDDEN");
        let exported = app
            .ok(
                "action",
                "workflowData:exportWorkflowData",
                json!({"sessionToken": platform.token, "incident_id": id}),
            )
            .await;
        assert_eq!(exported["success"], true);
        assert!(exported["filename"]
            .as_str()
            .unwrap()
            .starts_with("workflow-sarah-williams-"));
        let data = exported["data"].clone();
        assert_eq!(data["format"], "supportsignal.incident");
        assert_eq!(data["version"], 1.0);
        assert_eq!(data["source"]["incident_id"], id.as_str());
        assert_eq!(data["incident"]["overall_status"], "analysis_pending");
        assert_eq!(data["incident"]["handoff_status"], "ready_for_analysis");
        assert!(data["incident"].get("company_id").is_none());
        assert_eq!(
            data["children"]["incident_narratives"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            data["children"]["workflow_handoffs"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        let checked = app
            .ok(
                "action",
                "workflowData:validateWorkflowData",
                json!({"sessionToken": platform.token, "workflow_data": data}),
            )
            .await;
        assert_eq!(checked["valid"], true, "{checked}");
        assert_eq!(checked["errors"], json!([]));

        // Broken documents are reported, each with what is wrong.
        let broken = |edit: fn(&mut Json)| {
            let mut copy = data.clone();
            edit(&mut copy);
            copy
        };
        let cases: [(Json, &str); 5] = [
            (broken(|d| d["format"] = json!("csv")), "Unknown format"),
            (broken(|d| d["version"] = json!(2)), "Unsupported version 2"),
            (
                broken(|d| d["children"]["notes"] = json!([])),
                "Unknown record type 'notes'",
            ),
            (
                broken(|d| d["incident"]["event_date_time"] = json!("soon")),
                "incident: Validation failed: Event date and time",
            ),
            (
                broken(|d| d["incident"]["capture_status"] = json!("draft")),
                "analysis cannot have started",
            ),
        ];
        for (doc, want) in cases {
            let mut doc = doc;
            if want == "analysis cannot have started" {
                doc["incident"]["analysis_status"] = json!("in_progress");
            }
            let report = app
                .ok(
                    "action",
                    "workflowData:validateWorkflowData",
                    json!({"sessionToken": platform.token, "workflow_data": doc}),
                )
                .await;
            assert_eq!(report["valid"], false);
            let errors = report["errors"].to_string();
            assert!(errors.contains(want), "{want}: {errors}");
            // The import answers the same errors (the web app shows them) and writes nothing.
            let refused = app
                .ok(
                    "action",
                    "workflowData:importWorkflowData",
                    json!({"sessionToken": platform.token, "workflow_data": doc,
                           "company_id": demo.id}),
                )
                .await;
            assert_eq!(refused["success"], false);
            assert!(refused.get("incident_id").is_none());
            let errors = refused["errors"].to_string();
            assert!(errors.contains(want), "{want}: {errors}");
        }

        let imported = app
            .ok(
                "action",
                "workflowData:importWorkflowData",
                json!({"sessionToken": platform.token, "workflow_data": data,
                       "company_id": demo.id}),
            )
            .await;
        assert_eq!(imported["success"], true);
        // A submitted capture opens at the consolidated report.
        assert_eq!(imported["created_step"], 8.0);
        assert_eq!(
            imported["created_records"],
            json!({"incident_narratives": 1.0, "workflow_handoffs": 1.0,
                   "clarification_questions": 0.0, "clarification_answers": 0.0,
                   // The analysis records travel with the capture (none yet here).
                   "incident_analysis": 0.0, "incident_analysis_revisions": 0.0,
                   "incident_classifications": 0.0, "reportable_screenings": 0.0})
        );
        let new_id = imported["incident_id"].as_str().unwrap().to_string();
        assert_ne!(new_id, id);
        let original = app
            .ok(
                "query",
                "incidents:getById",
                json!({"sessionToken": lead.token, "id": id}),
            )
            .await;
        let copy = app
            .ok(
                "query",
                "incidents:getById",
                json!({"sessionToken": demo_lead.token, "id": new_id}),
            )
            .await;
        assert_eq!(copy["company_id"], demo.id.as_str());
        // The exported site is another company's: the copy is filed under the first site by name.
        assert_eq!(copy["site_id"], demo.east.as_str());
        assert_eq!(copy["created_by"], platform.id.as_str());
        assert_eq!(copy["imported_from"], id.as_str());
        for field in [
            "reporter_name",
            "participant_name",
            "event_date_time",
            "location",
            "capture_status",
            "analysis_status",
            "overall_status",
            "handoff_status",
            "created_at",
            "submitted_at",
            "narrative_hash",
            "completion_checklist",
        ] {
            assert_eq!(copy[field], original[field], "{field}");
        }
        let narrative =
            |token: &str, incident: &str| json!({"sessionToken": token, "incident_id": incident});
        let a = app
            .ok(
                "query",
                "narratives:getByIncidentId",
                narrative(&lead.token, &id),
            )
            .await;
        let b = app
            .ok(
                "query",
                "narratives:getByIncidentId",
                narrative(&demo_lead.token, &new_id),
            )
            .await;
        for field in [
            "before_event",
            "during_event",
            "end_event",
            "post_event",
            "during_event_extra",
            "version",
            "narrative_hash",
        ] {
            assert_eq!(a[field], b[field], "{field}");
        }
        assert_ne!(a["_id"], b["_id"]);
        assert_eq!(b["created_by"], platform.id.as_str());
        // The import is counted and audited; the original company is unchanged.
        let counts = app
            .ok(
                "query",
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": demo_lead.token}),
            )
            .await;
        assert_eq!(counts["analysis_pending"], 1.0);
        assert!(counts.get("ready_for_analysis").is_none());
        let abc_counts = app
            .ok(
                "query",
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": lead.token}),
            )
            .await;
        assert_eq!(abc_counts["total"], 1.0);
        let audit = seed::rows(&app, "audit_log").await;
        let entry = audit
            .iter()
            .find(|e| e.get("event").and_then(Value::as_str) == Some("incident_imported"))
            .expect("an audit entry for the import");
        assert_eq!(
            entry.get("target_id").and_then(Value::as_str),
            Some(new_id.as_str())
        );
        app.stop().await;
    }
}

/// Many workers recording at once in one company: every create commits (on PostgreSQL too, where
/// they used to conflict on one counts row), and the counts, spread over several rows, add up
/// exactly, also after deletions counted in other rows than the creations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_in_one_company_are_all_counted() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
        let admin = member(&app, Some(&abc.id), "admin@abc.org", "company_admin").await;
        let mut workers = Vec::new();
        for n in 0..8 {
            let email = format!("worker{n}@abc.org");
            workers.push(member(&app, Some(&abc.id), &email, "frontline_worker").await);
        }
        let creates = workers.iter().flat_map(|w| {
            let (app, site) = (&app, abc.site.as_str());
            (0..5).map(move |_| create(app, &w.token, site))
        });
        let ids = futures::future::join_all(creates).await;
        assert_eq!(ids.len(), 40);
        let counts = |token: String| {
            let app = &app;
            async move {
                app.ok(
                    "query",
                    "incidents_listing:getIncidentCounts",
                    json!({"sessionToken": token}),
                )
                .await
            }
        };
        let all = counts(lead.token.clone()).await;
        assert_eq!(all["total"], 40.0, "{db:?}: {all}");
        assert_eq!(all["capture_pending"], 40.0, "{all}");
        let mine = counts(workers[3].token.clone()).await;
        assert_eq!(mine["scope"], "personal");
        assert_eq!(mine["total"], 5.0, "{mine}");

        let deletes = ids.iter().take(12).map(|id| {
            app.ok(
                "mutation",
                "incidents:deleteIncident",
                json!({"sessionToken": admin.token, "id": id, "reason": "test"}),
            )
        });
        futures::future::join_all(deletes).await;
        let all = counts(lead.token.clone()).await;
        assert_eq!(all["total"], 28.0, "{db:?}: {all}");
        assert_eq!(all["capture_pending"], 28.0, "{all}");
        app.stop().await;
    }
}
