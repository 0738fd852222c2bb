//! The last steps of the capture with the offline provider: enhancement, the checklist,
//! submission and the lock after it, sample answers, and a frontline worker doing every step of
//! their own incident.

use super::*;

async fn generate_all(app: &App, worker: &Member, id: &str, texts: [&str; 4]) -> Json {
    app.ok(
        A,
        "aiClarification:generateAllClarificationQuestions",
        with(worker, id, json!({"narrative": narrative_arg(texts)})),
    )
    .await
}

async fn enhance(app: &App, worker: &Member, id: &str, phase: &str) -> Json {
    app.ok(
        A,
        "aiEnhancement:enhanceNarrativePhase",
        with(worker, id, json!({"phase": phase})),
    )
    .await
}

async fn checklist(app: &App, who: &Member, id: &str) -> Json {
    app.ok(
        Q,
        "aiEnhancement:validateWorkflowCompletion",
        by_incident(who, id),
    )
    .await
}

#[tokio::test]
async fn a_frontline_worker_completes_every_step_of_their_own_incident() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &worker, &abc.site).await;
        write_narrative(&app, &worker, &id, [BEFORE, DURING, END, POST]).await;

        // Step 3–6: questions for every phase at once, then answers.
        let all = generate_all(&app, &worker, &id, [BEFORE, DURING, END, POST]).await;
        assert_eq!(all["success"], true);
        assert_eq!(all["successful_phases"], json!(PHASES));
        assert_eq!(all["failed_phases"], json!([]));
        let results = all["phase_results"].as_array().unwrap();
        let mut total = 0;
        for (result, phase) in results.iter().zip(PHASES) {
            assert_eq!(result["phase"], phase);
            assert_eq!(result["success"], true);
            assert_eq!(result["cached"], false);
            assert!(result["processing_time_ms"].as_f64().unwrap() >= 0.0);
            let n = result["questions"].as_array().unwrap().len();
            assert!((3..=5).contains(&n));
            total += n;
        }
        assert_eq!(all["total_questions_generated"], total as f64);
        let incident_row = app
            .ok(
                Q,
                "incidents:getById",
                json!({"sessionToken": worker.token, "id": id}),
            )
            .await;
        assert_eq!(incident_row["questions_generated"], true);

        let answers = [
            (
                "before_event",
                "Tom Baker and two other residents were in the lounge.",
            ),
            ("during_event", "It went on for about two minutes."),
            ("end_event", "She drank the water and said sorry to Tom."),
            ("post_event", "Her mother said she would visit on Sunday."),
        ];
        for (phase, text) in answers {
            let listed = questions(&app, &worker, &id, phase).await;
            let done = answer(&app, &worker, &id, &listed[0], text).await;
            assert_eq!(done["metrics"]["is_complete"], true);
        }

        // Step 7: every phase enhanced; the original stays beside it.
        for (phase, text) in answers {
            let enhanced = enhance(&app, &worker, &id, phase).await;
            assert_eq!(enhanced["success"], true, "{enhanced}");
            assert_eq!(enhanced["phase"], phase);
            assert_eq!(enhanced["clarification_count"], 1.0);
            assert_eq!(enhanced["ai_model_used"], "offline");
            let content = enhanced["enhanced_content"].as_str().unwrap();
            assert!(content.contains(text.trim_end_matches('.')), "{content}");
        }
        let view = app
            .ok(
                Q,
                "aiEnhancement:getEnhancedNarrative",
                by_incident(&worker, &id),
            )
            .await;
        assert_eq!(view["original_content"]["during_event"], DURING);
        assert!(view["enhanced_content"]["during_event_extra"]
            .as_str()
            .unwrap()
            .contains("about two minutes"));
        assert_eq!(view["user_edited"], false);
        let narrative = app
            .ok(Q, "narratives:getByIncidentId", by_incident(&worker, &id))
            .await;
        assert_eq!(narrative["before_event"], BEFORE);
        assert_eq!(
            narrative["before_event_extra"],
            view["enhanced_content"]["before_event_extra"]
        );

        // Step 8: the summary, the checklist, submission.
        let stats = app
            .ok(
                Q,
                "narratives:getStatsByIncidentId",
                by_incident(&worker, &id),
            )
            .await;
        assert_eq!(stats["total_questions"], total as f64);
        assert_eq!(stats["total_answered"], 4.0);
        for (result, phase) in results.iter().zip(PHASES) {
            let n = result["questions"].as_array().unwrap().len() as f64;
            assert_eq!(stats["phases"][phase]["question_count"], n);
            assert_eq!(stats["phases"][phase]["answered_count"], 1.0);
        }
        let ready = checklist(&app, &worker, &id).await;
        assert_eq!(ready["all_complete"], true, "{ready}");
        assert_eq!(ready["missing_requirements"], json!([]));
        let submitted = app
            .ok(
                M,
                "aiEnhancement:submitIncidentForAnalysis",
                by_incident(&worker, &id),
            )
            .await;
        assert_eq!(submitted["success"], true);
        let incident_row = app
            .ok(
                Q,
                "incidents:getById",
                json!({"sessionToken": worker.token, "id": id}),
            )
            .await;
        assert_eq!(incident_row["capture_status"], "completed");
        assert_eq!(incident_row["overall_status"], "analysis_pending");
        assert_eq!(incident_row["handoff_status"], "ready_for_analysis");
        assert_eq!(incident_row["submitted_by"], worker.id.as_str());
        assert_eq!(incident_row["completion_checklist"], ready["checklist"]);
        let handoffs = rows(&app, "workflow_handoffs").await;
        assert_eq!(handoffs.len(), 1);
        assert_eq!(handoffs[0]["_id"], submitted["handoff_id"]);
        assert_eq!(checklist(&app, &worker, &id).await["submitted"], true);

        // Submitted: no second handoff, and the capture is locked.
        let again = failure(
            &app,
            M,
            "aiEnhancement:submitIncidentForAnalysis",
            by_incident(&worker, &id),
        )
        .await;
        assert_eq!(again.0, "CONFLICT");
        assert!(again.1.contains("already been submitted"), "{}", again.1);
        assert_eq!(rows(&app, "workflow_handoffs").await.len(), 1);
        let q1 = questions(&app, &worker, &id, "before_event").await[0].clone();
        let locked = [
            (
                M,
                "narratives:update",
                json!({"before_event": "Changed afterwards"}),
            ),
            (
                M,
                "aiClarification:submitClarificationAnswer",
                json!({"question_id": q1["question_id"], "phase": "before_event",
                       "answer_text": "Changed afterwards"}),
            ),
            (
                A,
                "aiEnhancement:enhanceNarrativePhase",
                json!({"phase": "end_event"}),
            ),
            (
                A,
                "aiClarification:generateClarificationQuestions",
                json!({"phase": "end_event", "narrative_content": END, "force_regenerate": true}),
            ),
        ];
        for (kind, path, extra) in locked {
            let (code, message) = failure(&app, kind, path, with(&worker, &id, extra)).await;
            assert_eq!(code, "CONFLICT", "{path}: {message}");
            assert!(message.starts_with("Cannot edit"), "{path}: {message}");
        }
        // Reading is still fine, and cached questions are still served.
        let cached = app
            .ok(
                A,
                "aiClarification:generateClarificationQuestions",
                with(
                    &worker,
                    &id,
                    json!({"phase": "end_event", "narrative_content": END}),
                ),
            )
            .await;
        assert_eq!(cached["cached"], true);
        let narrative_after = app
            .ok(Q, "narratives:getByIncidentId", by_incident(&worker, &id))
            .await;
        assert_eq!(narrative_after["before_event"], BEFORE);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_checklist_names_what_is_missing_and_blocks_submission() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let lead = member(&app, Some(&abc.id), "team_lead").await;
        let id = incident(&app, &worker, &abc.site).await;
        let submit = |who: &Member| {
            (
                M,
                "aiEnhancement:submitIncidentForAnalysis",
                by_incident(who, &id),
            )
        };

        let empty = checklist(&app, &worker, &id).await;
        assert_eq!(
            empty["checklist"],
            json!({"metadata_complete": true, "narratives_complete": false,
                   "clarifications_complete": false, "enhancement_complete": false,
                   "validation_passed": true})
        );
        assert_eq!(empty["all_complete"], false);
        assert_eq!(
            empty["missing_requirements"],
            json!([
                "narratives_complete",
                "clarifications_complete",
                "enhancement_complete"
            ])
        );
        let (kind, path, args) = submit(&worker);
        assert_eq!(
            failure(&app, kind, path, args).await,
            (
                "CONFLICT".to_string(),
                "Workflow incomplete. Missing: narratives_complete, clarifications_complete, enhancement_complete".to_string()
            )
        );

        // Three phases written: still incomplete; a phase without text cannot be enhanced.
        write_narrative(&app, &worker, &id, [BEFORE, DURING, END, ""]).await;
        let (code, message) = failure(
            &app,
            A,
            "aiEnhancement:enhanceNarrativePhase",
            with(&worker, &id, json!({"phase": "post_event"})),
        )
        .await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            (
                "VALIDATION",
                "No original narrative found for phase: post_event"
            )
        );
        let all = generate_all(&app, &worker, &id, [BEFORE, DURING, END, ""]).await;
        assert_eq!(all["skipped_phases"], json!(["post_event"]));
        let skipped = &all["phase_results"][3];
        assert_eq!(skipped["reason"], "no_content");
        assert_eq!(skipped["success"], false);
        assert_eq!(skipped["questions"], json!([]));

        // A blank answer does not count as an answer.
        let q1 = questions(&app, &worker, &id, "during_event").await[0].clone();
        answer(&app, &worker, &id, &q1, "   ").await;
        assert_eq!(
            checklist(&app, &worker, &id).await["missing_requirements"],
            json!([
                "narratives_complete",
                "clarifications_complete",
                "enhancement_complete"
            ])
        );
        answer(&app, &worker, &id, &q1, "About two minutes.").await;
        // Enhancing without answers works too: the answers are optional input.
        let plain = enhance(&app, &worker, &id, "end_event").await;
        assert_eq!(plain["clarification_count"], 0.0);
        assert_eq!(plain["success"], true);
        let partial = checklist(&app, &worker, &id).await;
        assert_eq!(
            partial["missing_requirements"],
            json!(["narratives_complete"])
        );
        // A team lead reads the checklist but cannot submit someone else's capture.
        assert_eq!(checklist(&app, &lead, &id).await, partial);
        let (kind, path, args) = submit(&lead);
        assert_eq!(failure(&app, kind, path, args).await.0, "FORBIDDEN");
        let (code, _) = failure(
            &app,
            A,
            "aiEnhancement:enhanceNarrativePhase",
            with(&lead, &id, json!({"phase": "before_event"})),
        )
        .await;
        assert_eq!(code, "FORBIDDEN");

        let mut last = by_incident(&worker, &id);
        last["post_event"] = json!(POST);
        app.ok(M, "narratives:update", last).await;
        let (kind, path, args) = submit(&worker);
        let done = app.ok(kind, path, args).await;
        assert_eq!(done["success"], true);
        assert_eq!(rows(&app, "workflow_handoffs").await.len(), 1);
        app.stop().await;
    }
}

#[tokio::test]
async fn sample_answers_need_sample_data_and_existing_questions() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let demo = member(&app, Some(&abc.id), "demo_admin").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &demo, &abc.site).await;
        write_narrative(&app, &demo, &id, [BEFORE, DURING, END, POST]).await;
        let path = "aiClarification:generateMockAnswers";

        let (code, message) = failure(
            &app,
            A,
            path,
            with(&demo, &id, json!({"phase": "end_event"})),
        )
        .await;
        assert_eq!(code, "VALIDATION");
        assert_eq!(
            message,
            "No questions found for end_event phase. Please generate questions first."
        );
        app.ok(
            A,
            "aiClarification:generateClarificationQuestions",
            with(
                &demo,
                &id,
                json!({"phase": "end_event", "narrative_content": END}),
            ),
        )
        .await;
        let filled = app
            .ok(A, path, with(&demo, &id, json!({"phase": "end_event"})))
            .await;
        let listed = questions(&app, &demo, &id, "end_event").await;
        assert_eq!(filled["success"], true);
        assert_eq!(filled["generated_count"], listed.len() as f64);
        assert_eq!(filled["phase"], "end_event");
        for (question, given) in listed.iter().zip(filled["answers"].as_array().unwrap()) {
            assert_eq!(question["answered"], true);
            assert_eq!(question["answer_text"], given["answer_text"]);
            assert_eq!(question["answer_id"], given["answer_id"]);
        }
        // Frontline workers do not hold sample_data, even for their own incidents.
        let own = incident(&app, &worker, &abc.site).await;
        let (code, _) = failure(
            &app,
            A,
            path,
            with(&worker, &own, json!({"phase": "end_event"})),
        )
        .await;
        assert_eq!(code, "FORBIDDEN");
        app.stop().await;
    }
}

#[tokio::test]
async fn sample_data_fills_a_narrative_and_suggests_incident_details() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let empty = company(&app, "Empty Care").await;
        let demo = member(&app, Some(&abc.id), "demo_admin").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let sarah = insert(
            &app,
            "participants",
            json!({"company_id": abc.id, "site_id": abc.site, "first_name": "Sarah",
                   "last_name": "Williams", "date_of_birth": "1985-04-12",
                   "ndis_number": "431234567", "support_level": "high", "status": "active",
                   "name_key": "williams\u{1}sarah", "created_at": 1.0, "created_by": demo.id,
                   "updated_at": 1.0, "updated_by": demo.id}),
        )
        .await;
        let random = "incidents/createSampleData:generateRandomIncidentMetadata";
        let fill = "incidents/createSampleData:fillIncidentWithSampleData";

        let details = app.ok(M, random, json!({"sessionToken": demo.token})).await;
        let data = &details["data"];
        assert_eq!(data["participant_id"], sarah.as_str());
        assert_eq!(data["participant_name"], "Sarah Williams");
        assert_eq!(data["site_id"], abc.site.as_str());
        assert_eq!(
            details["metadata"]["participant"]["ndis_number"],
            "431234567"
        );
        // The details are good enough for incidents:create as they are.
        let mut create = data.clone();
        create["sessionToken"] = json!(demo.token);
        create["reporter_name"] = json!("Demo Admin");
        let id = app.ok(M, "incidents:create", create).await;
        let id = id.as_str().unwrap().to_string();
        let trimmed = app
            .ok(
                M,
                random,
                json!({"sessionToken": demo.token, "excludeFields": ["location", "site_id"]}),
            )
            .await;
        assert!(trimmed["data"].get("location").is_none());
        assert!(trimmed["data"].get("site_id").is_none());
        assert!(trimmed["data"].get("event_date_time").is_some());

        let filled = app
            .ok(
                M,
                fill,
                json!({"sessionToken": demo.token, "incidentId": id, "scenarioType": "behavioral"}),
            )
            .await;
        assert_eq!(filled["success"], true);
        let narrative = app
            .ok(Q, "narratives:getByIncidentId", by_incident(&demo, &id))
            .await;
        for phase in PHASES {
            let text = narrative[phase].as_str().unwrap();
            assert!(!text.is_empty() && !text.contains("{{"), "{phase}: {text}");
        }
        assert!(narrative["during_event"]
            .as_str()
            .unwrap()
            .contains("Sarah"));
        assert_eq!(narrative["version"], filled["version"]);
        let incident_row = app
            .ok(
                Q,
                "incidents:getById",
                json!({"sessionToken": demo.token, "id": id}),
            )
            .await;
        assert_eq!(incident_row["capture_status"], "in_progress");

        // Without sample_data, or without participants, nothing is made.
        let own = incident(&app, &worker, &abc.site).await;
        let refused = failure(
            &app,
            M,
            fill,
            json!({"sessionToken": worker.token, "incidentId": own, "scenarioType": "injury"}),
        )
        .await;
        assert_eq!(refused.0, "FORBIDDEN");
        let (code, _) = failure(&app, M, random, json!({"sessionToken": worker.token})).await;
        assert_eq!(code, "FORBIDDEN");
        // Someone else's incident is their capture, not the demo admin's.
        let (code, _) = failure(
            &app,
            M,
            fill,
            json!({"sessionToken": demo.token, "incidentId": own, "scenarioType": "injury"}),
        )
        .await;
        assert_eq!(code, "FORBIDDEN");
        let lonely = member(&app, Some(&empty.id), "demo_admin").await;
        let (code, message) = failure(&app, M, random, json!({"sessionToken": lonely.token})).await;
        assert_eq!(code, "CONFLICT");
        assert!(message.contains("No participants"), "{message}");
        app.stop().await;
    }
}

#[tokio::test]
async fn questions_and_answers_travel_with_their_incident_on_export_and_delete() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let other = company(&app, "Other Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let admin = member(&app, Some(&abc.id), "company_admin").await;
        let platform = member(&app, None, "system_admin").await;
        let id = incident(&app, &worker, &abc.site).await;
        write_narrative(&app, &worker, &id, [BEFORE, DURING, "", ""]).await;
        let all = generate_all(&app, &worker, &id, [BEFORE, DURING, "", ""]).await;
        let asked = all["total_questions_generated"].as_f64().unwrap() as usize;
        let q1 = questions(&app, &worker, &id, "during_event").await[0].clone();
        answer(&app, &worker, &id, &q1, "About two minutes.").await;

        let exported = app
            .ok(
                A,
                "workflowData:exportWorkflowData",
                json!({"sessionToken": platform.token, "incident_id": id}),
            )
            .await;
        let data = exported["data"].clone();
        let children = &data["children"];
        assert_eq!(
            children["clarification_questions"]
                .as_array()
                .unwrap()
                .len(),
            asked
        );
        assert_eq!(
            children["clarification_answers"][0]["question_id"],
            q1["question_id"]
        );
        let imported = app
            .ok(
                A,
                "workflowData:importWorkflowData",
                json!({"sessionToken": platform.token, "workflow_data": data,
                       "company_id": other.id}),
            )
            .await;
        assert_eq!(
            imported["created_records"]["clarification_questions"],
            asked as f64
        );
        assert_eq!(imported["created_records"]["clarification_answers"], 1.0);
        let copy = imported["incident_id"].as_str().unwrap();
        let copied_answers: Vec<Json> = rows(&app, "clarification_answers")
            .await
            .into_iter()
            .filter(|a| a["incident_id"] == copy)
            .collect();
        assert_eq!(copied_answers.len(), 1);
        assert_eq!(copied_answers[0]["company_id"], other.id.as_str());
        assert_eq!(copied_answers[0]["answer_text"], "About two minutes.");
        // The worker of another company means nothing there: the importing admin stands in.
        assert_eq!(copied_answers[0]["answered_by"], platform.id.as_str());

        let left = |rows: Vec<Json>| {
            rows.iter()
                .filter(|r| r["incident_id"] == id.as_str())
                .count()
        };
        // The AI requests made about the incident quote its narrative, so they go with it.
        let requests = left(rows(&app, "ai_request_logs").await);
        assert!(requests > 0, "generating questions was logged");
        let deleted = app
            .ok(
                M,
                "incidents:deleteIncident",
                json!({"sessionToken": admin.token, "id": id, "reason": "entered twice"}),
            )
            .await;
        // The narrative, the questions, the answer and the AI requests.
        assert_eq!(
            deleted["deleted_child_records"],
            (2 + asked + requests) as f64
        );
        assert_eq!(left(rows(&app, "ai_request_logs").await), 0);
        assert_eq!(left(rows(&app, "clarification_questions").await), 0);
        assert_eq!(left(rows(&app, "clarification_answers").await), 0);
        app.stop().await;
    }
}
