//! Acceptance scenarios 4–11 of the reference (§10) through the official npm client: every call
//! the capture wizard would make goes through `ConvexHttpClient` in `npm/capture.mjs`, one step
//! (several calls) per Node run. The Rust side starts the real server with a fake AI provider,
//! writes the accounts (sign-up and invitations have their own scenarios), and checks what a user
//! would notice.

use super::*;
use fake::{Fake, Reply};
use harness::Db;
use node_client::ensure_client_installed;

/// Runs one step of `npm/capture.mjs` against `app`; its printed JSON.
async fn step(app: &App, db: Db, name: &str, input: Json) -> Json {
    node_client::step("capture.mjs", &app.url, name, input, format!("{db:?}")).await
}

/// The failure of a call made with `attempt`: `(code, message)`.
fn refused(v: &Json) -> (String, String) {
    let error = &v["$error"];
    assert!(error.is_object(), "expected a failure, got {v}");
    assert_eq!(error["isConvexError"], true, "{v}");
    let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
    (text(&error["code"]), text(&error["message"]))
}

/// Two companies, a worker and a team lead in the first, a worker in the second, and a participant.
struct Cast {
    abc: Company,
    other: Company,
    lead: String,
    outsider: String,
    sarah: String,
}

async fn cast(app: &App) -> Cast {
    let abc = company(app, "ABC Care").await;
    let other = company(app, "Other Care").await;
    let mut users = Vec::new();
    for (company, email, role) in [
        (&abc.id, "jo@abc.org", "frontline_worker"),
        (&abc.id, "lee@abc.org", "team_lead"),
        (&other.id, "sam@other.org", "frontline_worker"),
    ] {
        users.push(seed::user(app, Some(company), email, role).await);
    }
    let lead = app.token("lee@abc.org", seed::PW).await;
    let outsider = app.token("sam@other.org", seed::PW).await;
    let sarah = insert(
        app,
        "participants",
        json!({"company_id": abc.id, "site_id": abc.site, "first_name": "Sarah",
               "last_name": "Williams", "date_of_birth": "1985-04-12",
               "ndis_number": "431234567", "support_level": "high", "status": "active",
               "name_key": "williams\u{1}sarah", "created_at": 1.0,
               "created_by": users[1], "updated_at": 1.0, "updated_by": users[1]}),
    )
    .await;
    Cast {
        abc,
        other,
        lead,
        outsider,
        sarah,
    }
}

/// The same capture with no AI provider configured: the offline provider answers, so a worker can
/// finish on a machine with no network, and everything it wrote says it came from `offline`.
#[tokio::test]
async fn the_capture_completes_through_the_official_client_with_the_offline_provider() {
    tokio::task::spawn_blocking(ensure_client_installed)
        .await
        .unwrap();
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let Cast {
            abc, other, sarah, ..
        } = cast(&app).await;
        let recorded = step(
            &app,
            db,
            "record",
            json!({"email": "jo@abc.org", "password": seed::PW, "site": abc.site,
                   "foreignSite": other.site, "participant": sarah}),
        )
        .await;
        let worker = recorded["sessionToken"].as_str().unwrap().to_string();
        let id = recorded["incidentId"].as_str().unwrap().to_string();
        let clarified = step(
            &app,
            db,
            "clarify",
            json!({"sessionToken": worker, "incidentId": id,
                   "narrative": narrative_arg([BEFORE, DURING, END, POST])}),
        )
        .await;
        let generated = &clarified["generated"];
        assert_eq!(generated["successful_phases"], json!(PHASES), "{generated}");
        for result in generated["phase_results"].as_array().unwrap() {
            let asked = result["questions"].as_array().unwrap().len();
            assert!((3..=5).contains(&asked), "{result}");
        }
        let incomplete = app
            .ok(
                M,
                "incidents:create",
                json!({"sessionToken": worker, "site_id": abc.site, "reporter_name": "Jo",
                       "participant_name": "Sarah Williams", "location": "Garden",
                       "event_date_time": two_hours_ago()}),
            )
            .await;
        let finished = step(
            &app,
            db,
            "finish",
            json!({"sessionToken": worker, "incidentId": id, "incomplete": incomplete}),
        )
        .await;
        for enhanced in finished["enhanced"].as_array().unwrap() {
            assert_eq!(enhanced["success"], true, "{enhanced}");
            assert_eq!(enhanced["ai_model_used"], "offline", "{enhanced}");
        }
        let before = finished["view"]["enhanced_content"]["before_event_extra"]
            .as_str()
            .unwrap();
        assert!(
            before.contains("Sarah"),
            "built from the worker's words: {before}"
        );
        assert_eq!(finished["submitted"]["success"], true);
        assert_eq!(finished["incident"]["overall_status"], "analysis_pending");
        let logs = rows(&app, "ai_request_logs").await;
        assert!(!logs.is_empty());
        assert!(logs.iter().all(|l| l["provider"] == "offline"), "{logs:?}");
        app.stop().await;
    }
}

fn questions_reply() -> Reply {
    let list: Vec<Json> = (1..=4)
        .map(|i| json!({"question": format!("What happened at point {i}?"), "purpose": "Detail."}))
        .collect();
    Reply::text(&Json::Array(list).to_string(), 400, 100)
}

#[tokio::test]
async fn scenarios_4_to_11_capture_an_incident_through_the_official_client() {
    tokio::task::spawn_blocking(ensure_client_installed)
        .await
        .unwrap();
    for db in backends() {
        let place = Place::new(db).await;
        let fake = Fake::start(questions_reply()).await;
        let env = [
            ("LLM_BASE_URL", fake.base_url.as_str()),
            ("LLM_API_KEY", "sk-test-not-a-real-key"),
            ("LLM_MODEL", "test-model"),
            ("AI_MAX_RETRIES", "0"),
        ];
        let app = App::start_with(&place, &env).await;
        let Cast {
            abc,
            other,
            lead,
            outsider,
            sarah,
        } = cast(&app).await;

        // Scenario 4.
        let recorded = step(
            &app,
            db,
            "record",
            json!({"email": "jo@abc.org", "password": seed::PW, "site": abc.site,
                   "foreignSite": other.site, "participant": sarah}),
        )
        .await;
        let worker = recorded["sessionToken"].as_str().unwrap().to_string();
        let id = recorded["incidentId"].as_str().unwrap().to_string();
        let draft = &recorded["draft"]["incident"];
        assert_eq!(draft["capture_status"], "draft");
        assert_eq!(draft["analysis_status"], "not_started");
        assert_eq!(draft["overall_status"], "capture_pending");
        assert_eq!(draft["participant_id"], sarah.as_str());
        let (code, message) = refused(&recorded["tooOld"]);
        assert_eq!(code, "VALIDATION");
        assert_eq!(
            message,
            "Incident date cannot be more than 30 days in the past"
        );
        assert_eq!(refused(&recorded["foreign"]).0, "NOT_FOUND");

        // Scenarios 5, 6 and 9.
        let clarified = step(
            &app,
            db,
            "clarify",
            json!({"sessionToken": worker, "incidentId": id,
                   "narrative": narrative_arg([BEFORE, DURING, END, POST])}),
        )
        .await;
        assert_eq!(clarified["versions"], json!([2, 3, 4, 5]));
        assert_eq!(clarified["afterNarrative"]["capture_status"], "in_progress");
        let generated = &clarified["generated"];
        assert_eq!(generated["successful_phases"], json!(PHASES));
        assert_eq!(generated["total_questions_generated"].as_f64(), Some(16.0));
        for result in generated["phase_results"].as_array().unwrap() {
            let questions = result["questions"].as_array().unwrap();
            let phase = result["phase"].as_str().unwrap();
            let ids: Vec<&str> = questions
                .iter()
                .map(|q| q["question_id"].as_str().unwrap())
                .collect();
            let want: Vec<String> = (1..=4).map(|n| format!("{phase}_q{n}")).collect();
            assert_eq!(ids, want);
        }
        let repeated = &clarified["repeated"]["phase_results"];
        assert!(repeated
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["cached"] == true));
        assert_eq!(
            fake.bodies().len(),
            5,
            "4 phases, nothing for the repeat, 1 forced"
        );
        assert_eq!(
            clarified["first"]["answer_id"],
            clarified["second"]["answer_id"]
        );
        assert_eq!(clarified["first"]["metrics"]["is_complete"], false);
        assert_eq!(clarified["second"]["metrics"]["is_complete"], true);
        assert_eq!(
            clarified["second"]["metrics"]["word_count"].as_f64(),
            Some(8.0)
        );
        assert_eq!(clarified["forced"]["cached"], false);
        let answers = clarified["answers"].as_array().unwrap();
        assert_eq!(
            answers.len(),
            1,
            "the during_event answer went with its questions"
        );
        assert_eq!(answers[0]["question_id"], "before_event_q1");
        let resume = &clarified["resume"]["incidents"][0];
        assert_eq!(resume["_id"], id.as_str());
        assert_eq!(resume["current_step"].as_f64(), Some(5.0));
        assert!(BEFORE.starts_with(resume["content_preview"].as_str().unwrap()));

        // Scenarios 7 and 8: the AI fails for the during_event enhancement only.
        fake.then(Reply::text(
            "Sarah watched TV with Tom and two residents.",
            900,
            40,
        ));
        fake.then(Reply::Status(500));
        fake.then(Reply::text("Sarah sat down when the TV went off.", 900, 40));
        fake.then(Reply::text(
            "Sarah was checked and her mother was called.",
            900,
            40,
        ));
        let incomplete = app
            .ok(
                M,
                "incidents:create",
                json!({"sessionToken": worker, "site_id": abc.site, "reporter_name": "Jo",
                       "participant_name": "Sarah Williams", "location": "Garden",
                       "event_date_time": two_hours_ago()}),
            )
            .await;
        let finished = step(
            &app,
            db,
            "finish",
            json!({"sessionToken": worker, "incidentId": id, "incomplete": incomplete}),
        )
        .await;
        let enhanced = finished["enhanced"].as_array().unwrap();
        assert_eq!(
            enhanced
                .iter()
                .map(|e| e["success"].clone())
                .collect::<Vec<_>>(),
            [json!(true), json!(false), json!(true), json!(true)]
        );
        assert_eq!(enhanced[0]["clarification_count"].as_f64(), Some(1.0));
        assert_eq!(enhanced[1]["error_code"], "AI_UNAVAILABLE");
        assert_eq!(
            enhanced[1]["enhanced_content"], DURING,
            "no answers left to add"
        );
        let logs = rows(&app, "ai_request_logs").await;
        let failed: Vec<&Json> = logs.iter().filter(|l| l["success"] == false).collect();
        assert_eq!(failed.len(), 1, "the failure is logged");
        assert_eq!(failed[0]["operation"], "enhance_narrative_during_event");
        let view = &finished["view"];
        assert_eq!(view["original_content"]["before_event"], BEFORE);
        assert_eq!(
            view["enhanced_content"]["before_event_extra"],
            "Sarah watched TV with Tom and two residents."
        );
        assert_eq!(finished["checklist"]["all_complete"], true);
        let (code, message) = refused(&finished["blocked"]);
        assert_eq!(code, "CONFLICT");
        assert_eq!(
            message,
            "Workflow incomplete. Missing: narratives_complete, clarifications_complete, enhancement_complete"
        );
        assert_eq!(finished["submitted"]["success"], true);
        assert_eq!(refused(&finished["again"]).0, "CONFLICT");
        assert_eq!(refused(&finished["edit"]).0, "CONFLICT");
        let incident = &finished["incident"];
        assert_eq!(incident["capture_status"], "completed");
        assert_eq!(incident["overall_status"], "analysis_pending");
        assert_eq!(incident["handoff_status"], "ready_for_analysis");
        assert!(incident["submitted_at"].as_f64().is_some());
        assert_eq!(finished["stats"]["total_questions"].as_f64(), Some(16.0));
        assert_eq!(finished["stats"]["total_answered"].as_f64(), Some(1.0));
        let still_open: Vec<&Json> = finished["resume"]["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["_id"])
            .collect();
        assert!(
            !still_open.contains(&&json!(id)),
            "submitted: not offered to resume"
        );
        assert_eq!(rows(&app, "workflow_handoffs").await.len(), 1);

        // Scenarios 10 and 11.
        let checked = step(
            &app,
            db,
            "isolation",
            json!({"outsider": outsider, "worker": worker, "lead": lead, "incidentId": id,
                   "draftId": incomplete}),
        )
        .await;
        for call in ["read", "questions", "answer", "enhance"] {
            assert_eq!(refused(&checked["foreign"][call]).0, "NOT_FOUND", "{call}");
        }
        assert_eq!(checked["foreign"]["mine"]["incidents"], json!([]));
        let (code, message) = refused(&checked["jump"]);
        assert_eq!(code, "CONFLICT");
        assert_eq!(
            message,
            "Invalid capture status transition from draft to completed"
        );
        assert_eq!(
            refused(&checked["earlyAnalysis"]).1,
            "Cannot start analysis until capture phase is completed"
        );
        assert_eq!(refused(&checked["workerAnalysis"]).0, "FORBIDDEN");
        assert_eq!(checked["leadQuestions"].as_array().unwrap().len(), 16);
        assert_eq!(checked["analysis"]["success"], true);
        assert_eq!(checked["incident"]["overall_status"], "analysis_pending");
        app.stop().await;
    }
}
