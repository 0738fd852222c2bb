//! Clarification questions, answers, enhancement and submission through the real HTTP API, on
//! SQLite and (with TEST_DATABASE_URL) PostgreSQL: with the offline provider (here and in
//! `workflow.rs`) and with a fake OpenAI-compatible server (`provider.rs`).

#[path = "../ai_service/fake.rs"]
mod fake;
#[path = "../harness/mod.rs"]
mod harness;
#[path = "../node_client/mod.rs"]
mod node_client;
#[path = "../seed/mod.rs"]
mod seed;

mod npm;
mod provider;
mod workflow;

use harness::{backends, App, Place};
pub use seed::{insert, Member};
use serde_json::{json, Value as Json};

use seed::now_ms;

pub const Q: &str = "query";
pub const M: &str = "mutation";
pub const A: &str = "action";
pub const PHASES: [&str; 4] = ["before_event", "during_event", "end_event", "post_event"];

/// A narrative a worker might write: names, actions and times the questions can refer to.
pub const BEFORE: &str = "Sarah was watching TV in the lounge with Tom Baker. The kitchen was noisy because the dishwasher was being fixed.";
pub const DURING: &str =
    "Sarah threw the remote at the window and shouted at Tom. She pushed a chair over.";
pub const END: &str =
    "Sarah sat down on the couch after I turned the TV off and offered her a drink of water.";
pub const POST: &str =
    "I checked Sarah for injuries and found none. Her mother was called at 4 pm.";

pub struct Company {
    pub id: String,
    pub site: String,
}

pub async fn company(app: &App, name: &str) -> Company {
    let id = seed::company(app, name).await;
    let site = insert(
        app,
        "sites",
        json!({"company_id": id, "name": "Primary", "created_at": 1.0}),
    )
    .await;
    Company { id, site }
}

/// A user of `role` in `company` with a session, written straight into the store.
pub async fn member(app: &App, company: Option<&str>, role: &str) -> Member {
    seed::anyone(app, company, role).await
}

/// `YYYY-MM-DDTHH:mm` two hours ago, as the web form sends it.
fn two_hours_ago() -> String {
    chrono::DateTime::from_timestamp_millis((now_ms() - 7_200_000.0) as i64)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// A new incident about Sarah Williams recorded by `worker`, with an empty narrative.
pub async fn incident(app: &App, worker: &Member, site: &str) -> String {
    let id = app
        .ok(
            M,
            "incidents:create",
            json!({"sessionToken": worker.token, "site_id": site, "reporter_name": "Kim Lee",
                   "participant_name": "Sarah Williams", "location": "Lounge, Primary house",
                   "event_date_time": two_hours_ago()}),
        )
        .await;
    let id = id.as_str().unwrap().to_string();
    app.ok(M, "narratives:create", by_incident(worker, &id))
        .await;
    id
}

pub fn by_incident(who: &Member, incident: &str) -> Json {
    json!({"sessionToken": who.token, "incident_id": incident})
}

/// `by_incident` plus more arguments.
pub fn with(who: &Member, incident: &str, extra: Json) -> Json {
    let mut args = by_incident(who, incident);
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    args
}

/// Writes the four phases.
pub async fn write_narrative(app: &App, worker: &Member, incident: &str, texts: [&str; 4]) {
    let mut args = by_incident(worker, incident);
    for (phase, text) in PHASES.iter().zip(texts) {
        args[*phase] = json!(text);
    }
    app.ok(M, "narratives:update", args).await;
}

pub fn narrative_arg(texts: [&str; 4]) -> Json {
    let mut narrative = json!({});
    for (phase, text) in PHASES.iter().zip(texts) {
        narrative[*phase] = json!(text);
    }
    narrative
}

pub async fn questions(app: &App, who: &Member, incident: &str, phase: &str) -> Vec<Json> {
    app.ok(
        Q,
        "aiClarification:getClarificationQuestions",
        with(who, incident, json!({"phase": phase})),
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

pub async fn answer(app: &App, who: &Member, incident: &str, question: &Json, text: &str) -> Json {
    app.ok(
        M,
        "aiClarification:submitClarificationAnswer",
        with(
            who,
            incident,
            json!({"question_id": question["question_id"], "phase": question["phase"],
                   "answer_text": text}),
        ),
    )
    .await
}

/// A failed call: `(code, message)`.
pub async fn failure(app: &App, kind: &str, path: &str, args: Json) -> (String, String) {
    let body = app.call(kind, path, args).await;
    assert_eq!(body["status"], "error", "{path} should fail: {body}");
    let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
    (
        text(&body["errorData"]["code"]),
        text(&body["errorData"]["message"]),
    )
}

pub async fn rows(app: &App, table: &'static str) -> Vec<Json> {
    seed::rows(app, table)
        .await
        .into_iter()
        .map(|d| values::json::to_clean_json(&d.to_value()))
        .collect()
}

fn text_of(questions: &[Json]) -> Vec<String> {
    questions
        .iter()
        .map(|q| q["question_text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn questions_refer_to_the_narrative_and_are_kept_until_regenerated() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &worker, &abc.site).await;
        write_narrative(&app, &worker, &id, [BEFORE, DURING, END, POST]).await;

        let args = |force: bool| {
            with(
                &worker,
                &id,
                json!({"phase": "during_event", "narrative_content": DURING,
                       "force_regenerate": force}),
            )
        };
        let path = "aiClarification:generateClarificationQuestions";
        let first = app.ok(A, path, args(false)).await;
        assert_eq!(first["cached"], false);
        assert_eq!(first["phase"], "during_event");
        assert!(!first["correlation_id"].as_str().unwrap().is_empty());
        let generated = first["questions"].as_array().unwrap().clone();
        assert!((3..=5).contains(&generated.len()), "{first}");
        for (i, q) in generated.iter().enumerate() {
            assert_eq!(q["question_id"], format!("during_event_q{}", i + 1));
            assert_eq!(q["question_order"], (i + 1) as f64);
            assert_eq!(q["phase"], "during_event");
            assert_eq!(q["is_active"], true);
            assert_eq!(q["answered"], false);
            assert!(!q["purpose"].as_str().unwrap().is_empty());
        }
        // The offline provider builds its questions from what the worker wrote.
        let texts = text_of(&generated).join("\n");
        assert!(texts.contains("Sarah"), "{texts}");
        assert!(
            texts.contains("threw the remote") || texts.contains("pushed a chair"),
            "{texts}"
        );
        assert!(
            texts.contains("Tom Baker") || texts.contains("Tom"),
            "{texts}"
        );

        // The request went through the AI service and was logged against the incident.
        let logs = rows(&app, "ai_request_logs").await;
        assert_eq!(logs.len(), 1);
        assert_eq!(
            logs[0]["operation"],
            "generate_clarification_questions_during_event"
        );
        assert_eq!(logs[0]["incident_id"], id.as_str());
        assert_eq!(logs[0]["success"], true);

        let listed = questions(&app, &worker, &id, "during_event").await;
        assert_eq!(text_of(&listed), text_of(&generated));
        let answered = answer(&app, &worker, &id, &listed[0], "She threw it twice.").await;
        assert_eq!(answered["success"], true);

        // Asking again returns the same questions, their answers still attached.
        let again = app.ok(A, path, args(false)).await;
        assert_eq!(again["cached"], true);
        assert_eq!(
            text_of(again["questions"].as_array().unwrap()),
            text_of(&generated)
        );
        assert_eq!(again["questions"][0]["answered"], true);
        assert_eq!(again["questions"][0]["_id"], generated[0]["_id"]);
        assert_eq!(
            rows(&app, "ai_request_logs").await.len(),
            1,
            "no second AI call"
        );

        // Regenerating on purpose retires the old questions and removes their answers, so no old
        // answer attaches to the new during_event_q1.
        let forced = app.ok(A, path, args(true)).await;
        assert_eq!(forced["cached"], false);
        let fresh = forced["questions"].as_array().unwrap();
        assert_eq!(fresh[0]["question_id"], "during_event_q1");
        assert_ne!(fresh[0]["_id"], generated[0]["_id"]);
        assert!(fresh.iter().all(|q| q["answered"] == false));
        let listed = questions(&app, &worker, &id, "during_event").await;
        assert_eq!(listed.len(), fresh.len());
        assert!(listed
            .iter()
            .all(|q| q["answered"] == false && q["answer_text"] == ""));
        let answers = app
            .ok(
                Q,
                "aiClarification:getClarificationAnswers",
                by_incident(&worker, &id),
            )
            .await;
        assert_eq!(answers, json!([]));
        assert!(rows(&app, "clarification_answers").await.is_empty());
        let stored = rows(&app, "clarification_questions").await;
        let retired = stored.iter().filter(|q| q["is_active"] == false).count();
        assert_eq!(
            retired,
            generated.len(),
            "the old questions are kept, retired"
        );

        // A blank narrative is refused before any AI call.
        let (code, message) = failure(
            &app,
            A,
            path,
            with(
                &worker,
                &id,
                json!({"phase": "end_event", "narrative_content": "  "}),
            ),
        )
        .await;
        assert_eq!(code, "VALIDATION");
        assert!(message.contains("End Event"), "{message}");
        app.stop().await;
    }
}

#[tokio::test]
async fn answers_are_upserted_per_question_with_their_metrics() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &worker, &abc.site).await;
        write_narrative(&app, &worker, &id, [BEFORE, DURING, "", ""]).await;
        app.ok(
            A,
            "aiClarification:generateClarificationQuestions",
            with(
                &worker,
                &id,
                json!({"phase": "before_event", "narrative_content": BEFORE}),
            ),
        )
        .await;
        let listed = questions(&app, &worker, &id, "before_event").await;
        let (q1, q2) = (&listed[0], &listed[1]);

        let first = answer(&app, &worker, &id, q1, "Ten chars!").await;
        assert_eq!(
            first["metrics"],
            json!({"character_count": 10.0, "word_count": 2.0, "is_complete": false})
        );
        let second = answer(&app, &worker, &id, q1, "  Tom and two other residents.  ").await;
        assert_eq!(
            second["answer_id"], first["answer_id"],
            "one answer per question"
        );
        assert_eq!(
            second["metrics"],
            json!({"character_count": 28.0, "word_count": 5.0, "is_complete": true})
        );
        answer(&app, &worker, &id, q2, "The lounge.").await;

        let listed = questions(&app, &worker, &id, "before_event").await;
        assert_eq!(listed[0]["answered"], true);
        assert_eq!(listed[0]["answer_text"], "Tom and two other residents.");
        assert_eq!(listed[0]["answer_id"], first["answer_id"]);
        assert!(listed[0]["updated_at"].as_f64().is_some());
        assert_eq!(listed[2]["answered"], false);
        assert_eq!(listed[2]["answer_id"], Json::Null);

        let answers = app
            .ok(
                Q,
                "aiClarification:getClarificationAnswers",
                with(&worker, &id, json!({"phase": "before_event"})),
            )
            .await;
        let answers = answers.as_array().unwrap();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0]["question_id"], q1["question_id"]);
        assert_eq!(answers[0]["question_text"], q1["question_text"]);
        assert_eq!(answers[0]["answered_by"], worker.id.as_str());
        assert_eq!(answers[0]["is_complete"], true);
        assert_eq!(answers[1]["answer_text"], "The lounge.");
        let none = app
            .ok(
                Q,
                "aiClarification:getClarificationAnswers",
                with(&worker, &id, json!({"phase": "during_event"})),
            )
            .await;
        assert_eq!(none, json!([]));

        let submit = |question_id: &str, phase: &str, text: &str| {
            with(
                &worker,
                &id,
                json!({"question_id": question_id, "phase": phase, "answer_text": text}),
            )
        };
        let path = "aiClarification:submitClarificationAnswer";
        let cases = [
            (submit("before_event_q9", "before_event", "x"), "NOT_FOUND"),
            (submit("during_event_q1", "before_event", "x"), "VALIDATION"),
            (submit("before_event_q1", "during_event", "x"), "VALIDATION"),
            (
                submit("before_event_q1", "before_event", &"y".repeat(5001)),
                "VALIDATION",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(failure(&app, M, path, args).await.0, want);
        }
        // Only the creator answers; colleagues can read.
        let lead = member(&app, Some(&abc.id), "team_lead").await;
        let mut theirs = submit("before_event_q1", "before_event", "x");
        theirs["sessionToken"] = json!(lead.token);
        assert_eq!(failure(&app, M, path, theirs).await.0, "FORBIDDEN");
        assert_eq!(
            questions(&app, &lead, &id, "before_event").await.len(),
            listed.len()
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn another_companys_incident_is_not_found_by_any_clarification_function() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let other = company(&app, "Other Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &worker, &abc.site).await;
        write_narrative(&app, &worker, &id, [BEFORE, DURING, END, POST]).await;
        app.ok(
            A,
            "aiClarification:generateAllClarificationQuestions",
            with(
                &worker,
                &id,
                json!({"narrative": narrative_arg([BEFORE, DURING, END, POST])}),
            ),
        )
        .await;
        let q1 = questions(&app, &worker, &id, "before_event").await[0].clone();
        answer(&app, &worker, &id, &q1, "Tom was next to her.").await;

        let before = (
            rows(&app, "clarification_questions").await,
            rows(&app, "clarification_answers").await,
            rows(&app, "incident_narratives").await,
        );
        for role in ["frontline_worker", "team_lead", "company_admin"] {
            let outsider = member(&app, Some(&other.id), role).await;
            let calls = [
                (
                    A,
                    "aiClarification:generateClarificationQuestions",
                    json!({"phase": "before_event", "narrative_content": BEFORE,
                           "force_regenerate": true}),
                ),
                (
                    A,
                    "aiClarification:generateAllClarificationQuestions",
                    json!({"narrative": narrative_arg([BEFORE, DURING, END, POST]),
                           "force_regenerate": true}),
                ),
                (Q, "aiClarification:getClarificationQuestions", json!({})),
                (Q, "aiClarification:getClarificationAnswers", json!({})),
                (
                    M,
                    "aiClarification:submitClarificationAnswer",
                    json!({"question_id": "before_event_q1", "phase": "before_event",
                           "answer_text": "Overwritten by another company"}),
                ),
                (
                    A,
                    "aiEnhancement:enhanceNarrativePhase",
                    json!({"phase": "before_event"}),
                ),
                (Q, "aiEnhancement:getEnhancedNarrative", json!({})),
                (Q, "aiEnhancement:validateWorkflowCompletion", json!({})),
                (M, "aiEnhancement:submitIncidentForAnalysis", json!({})),
                (Q, "narratives:getStatsByIncidentId", json!({})),
            ];
            for (kind, path, extra) in calls {
                let (code, message) = failure(&app, kind, path, with(&outsider, &id, extra)).await;
                assert_eq!(
                    (code.as_str(), message.as_str()),
                    ("NOT_FOUND", "Incident not found"),
                    "{role} {path}"
                );
            }
        }
        // A sample-data holder of another company cannot fill in answers either.
        let demo = member(&app, Some(&other.id), "demo_admin").await;
        let (code, _) = failure(
            &app,
            A,
            "aiClarification:generateMockAnswers",
            with(&demo, &id, json!({"phase": "before_event"})),
        )
        .await;
        assert_eq!(code, "NOT_FOUND");
        let after = (
            rows(&app, "clarification_questions").await,
            rows(&app, "clarification_answers").await,
            rows(&app, "incident_narratives").await,
        );
        assert_eq!(before, after, "nothing changed");
        app.stop().await;
    }
}
