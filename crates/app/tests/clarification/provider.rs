//! With a fake OpenAI-compatible server: what the provider is sent and what is stored from its
//! reply, unusable replies and outages reported as errors with their code (never as "no
//! questions"), one failing phase among several, and the enhancement fallback.

use super::*;
use fake::{Fake, Reply};

fn env_for(fake: &Fake) -> Vec<(&'static str, String)> {
    vec![
        ("LLM_BASE_URL", fake.base_url.clone()),
        ("LLM_API_KEY", "sk-test-not-a-real-key".to_string()),
        ("LLM_MODEL", "test-model".to_string()),
        ("AI_MAX_RETRIES", "0".to_string()),
        ("AI_RETRY_BASE_DELAY_MS", "1".to_string()),
    ]
}

async fn start(place: &Place, fake: &Fake) -> App {
    let env = env_for(fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    App::start_with(place, &env).await
}

fn questions_reply(prefix: &str, n: usize) -> Reply {
    let list: Vec<Json> = (1..=n)
        .map(|i| json!({"question": format!("{prefix} question {i}?"), "purpose": format!("Purpose {i}.")}))
        .collect();
    Reply::text(&Json::Array(list).to_string(), 300, 120)
}

/// The prompt text of a request the fake received.
fn prompt_of(body: &Json) -> String {
    body["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn questions_come_from_the_provider_and_failures_are_errors_with_their_code() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = Fake::start(questions_reply("Provider", 4)).await;
        let app = start(&place, &fake).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &worker, &abc.site).await;
        write_narrative(&app, &worker, &id, [BEFORE, DURING, END, POST]).await;
        let path = "aiClarification:generateClarificationQuestions";
        let args = |force: bool| {
            with(
                &worker,
                &id,
                json!({"phase": "before_event", "narrative_content": BEFORE,
                       "force_regenerate": force}),
            )
        };

        let first = app.ok(A, path, args(false)).await;
        let got = first["questions"].as_array().unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[3]["question_text"], "Provider question 4?");
        assert_eq!(got[3]["purpose"], "Purpose 4.");
        assert_eq!(got[3]["question_id"], "before_event_q4");
        let sent = fake.bodies();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["response_format"]["type"], "json_object");
        let prompt = prompt_of(&sent[0]);
        assert!(prompt.contains(BEFORE), "the narrative is in the prompt");
        for detail in ["Sarah Williams", "Kim Lee", "Lounge, Primary house"] {
            assert!(prompt.contains(detail), "{detail} is in the prompt");
        }
        let stored = rows(&app, "clarification_questions").await;
        assert_eq!(stored[0]["ai_model"], "test-model");
        assert_eq!(stored[0]["provider"], "openai-compatible");
        assert_eq!(stored[0]["prompt_version"], "v1.0.0");
        assert_eq!(stored[0]["correlation_id"], first["correlation_id"]);
        let q1 = questions(&app, &worker, &id, "before_event").await[0].clone();
        answer(&app, &worker, &id, &q1, "Tom was on the couch.").await;

        // Two questions are not enough: an error naming the code; the old questions and their
        // answers stay.
        fake.then(questions_reply("Short", 2));
        let (code, message) = failure(&app, A, path, args(true)).await;
        assert_eq!(code, "UNAVAILABLE");
        assert!(message.contains("AI_BAD_REPLY"), "{message}");
        // The provider being down: an error with its code, not an empty list.
        fake.then(Reply::Status(500));
        let (code, message) = failure(&app, A, path, args(true)).await;
        assert_eq!(code, "UNAVAILABLE");
        assert!(message.contains("AI_UNAVAILABLE"), "{message}");
        let kept = questions(&app, &worker, &id, "before_event").await;
        assert_eq!(kept.len(), 4);
        assert_eq!(kept[0]["answer_text"], "Tom was on the couch.");

        // A phase without questions yet fails the same way and stores nothing.
        fake.then(Reply::Status(500));
        let (code, _) = failure(
            &app,
            A,
            path,
            with(
                &worker,
                &id,
                json!({"phase": "end_event", "narrative_content": END}),
            ),
        )
        .await;
        assert_eq!(code, "UNAVAILABLE");
        assert!(questions(&app, &worker, &id, "end_event").await.is_empty());

        let logs = rows(&app, "ai_request_logs").await;
        let failed: Vec<&Json> = logs.iter().filter(|l| l["success"] == false).collect();
        assert_eq!(failed.len(), 3, "every failed request is logged");
        assert!(failed.iter().all(|l| l["incident_id"] == id.as_str()));
        app.stop().await;
    }
}

#[tokio::test]
async fn all_phases_run_together_and_one_failing_phase_spares_the_others() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = Fake::start(questions_reply("Batch", 3)).await;
        let app = start(&place, &fake).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &worker, &abc.site).await;
        let texts = [BEFORE, DURING, END, ""];
        write_narrative(&app, &worker, &id, texts).await;

        // The first request to arrive gets a server error; the others the default reply.
        fake.then(Reply::Status(500));
        let all = app
            .ok(
                A,
                "aiClarification:generateAllClarificationQuestions",
                with(&worker, &id, json!({"narrative": narrative_arg(texts)})),
            )
            .await;
        let sent = fake.bodies();
        assert_eq!(sent.len(), 3, "one request per written phase");
        let first_prompt = prompt_of(&sent[0]);
        let failed_phase = PHASES[..3]
            .iter()
            .zip(texts)
            .find(|(_, text)| first_prompt.contains(*text))
            .map(|(phase, _)| *phase)
            .unwrap();
        let others: Vec<&str> = PHASES[..3]
            .iter()
            .copied()
            .filter(|p| *p != failed_phase)
            .collect();

        assert_eq!(all["success"], true);
        assert_eq!(all["failed_phases"], json!([failed_phase]));
        assert_eq!(all["successful_phases"], json!(others));
        assert_eq!(all["skipped_phases"], json!(["post_event"]));
        assert_eq!(all["total_questions_generated"], 6.0);
        let results = all["phase_results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        for (result, phase) in results.iter().zip(PHASES) {
            assert_eq!(result["phase"], phase);
            assert!(result["processing_time_ms"].as_f64().is_some(), "{result}");
            if phase == failed_phase {
                assert_eq!(result["success"], false);
                assert_eq!(result["error_code"], "AI_UNAVAILABLE");
                assert!(result["reason"]
                    .as_str()
                    .unwrap()
                    .contains("AI_UNAVAILABLE"));
                assert_eq!(result["questions"], json!([]));
                assert!(questions(&app, &worker, &id, phase).await.is_empty());
            } else if phase == "post_event" {
                assert_eq!(result["reason"], "no_content");
            } else {
                assert_eq!(result["success"], true);
                assert_eq!(result["questions"].as_array().unwrap().len(), 3);
                assert_eq!(questions(&app, &worker, &id, phase).await.len(), 3);
            }
        }

        // Running again fills in the failed phase and keeps the others.
        let again = app
            .ok(
                A,
                "aiClarification:generateAllClarificationQuestions",
                with(&worker, &id, json!({"narrative": narrative_arg(texts)})),
            )
            .await;
        assert_eq!(again["failed_phases"], json!([]));
        assert_eq!(fake.bodies().len(), 4, "only the missing phase asked again");
        for result in again["phase_results"].as_array().unwrap().iter().take(3) {
            assert_eq!(result["cached"], result["phase"] != failed_phase);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn enhancement_stores_a_fallback_when_the_provider_fails() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = Fake::start(questions_reply("Enhance", 3)).await;
        let app = start(&place, &fake).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "frontline_worker").await;
        let id = incident(&app, &worker, &abc.site).await;
        write_narrative(&app, &worker, &id, [BEFORE, DURING, END, POST]).await;
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
        answer(&app, &worker, &id, &listed[0], "Tom and two residents").await;
        answer(&app, &worker, &id, &listed[2], "The repair man.").await;
        let path = "aiEnhancement:enhanceNarrativePhase";
        let args = with(&worker, &id, json!({"phase": "before_event"}));

        fake.then(Reply::Status(503));
        let fallback = app.ok(A, path, args.clone()).await;
        assert_eq!(fallback["success"], false);
        assert_eq!(fallback["error_code"], "AI_UNAVAILABLE");
        assert_eq!(fallback["ai_model_used"], "fallback");
        assert_eq!(fallback["clarification_count"], 2.0);
        assert_eq!(fallback["original_content"], BEFORE);
        let expected = format!(
            "{BEFORE}\n\nAsked \"Enhance question 1?\", the reporter answered: Tom and two residents. Asked \"Enhance question 3?\", the reporter answered: The repair man."
        );
        assert_eq!(fallback["enhanced_content"], expected.as_str());
        let narrative = app
            .ok(Q, "narratives:getByIncidentId", by_incident(&worker, &id))
            .await;
        assert_eq!(narrative["before_event"], BEFORE, "the original is kept");
        assert_eq!(narrative["before_event_extra"], expected.as_str());
        let logs = rows(&app, "ai_request_logs").await;
        let failed: Vec<&Json> = logs
            .iter()
            .filter(|l| l["operation"] == "enhance_narrative_before_event")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["success"], false);
        assert_eq!(failed[0]["correlation_id"], fallback["correlation_id"]);

        // When the provider answers, its text replaces the fallback; it was given the answers.
        fake.then(Reply::text(
            "Sarah watched TV in the lounge with Tom and two residents.",
            900,
            60,
        ));
        let good = app.ok(A, path, args).await;
        assert_eq!(good["success"], true);
        assert_eq!(good["ai_model_used"], "test-model");
        assert!(good.get("error_code").is_none());
        assert_eq!(
            good["enhanced_content"],
            "Sarah watched TV in the lounge with Tom and two residents."
        );
        let prompt = prompt_of(fake.bodies().last().unwrap());
        assert!(prompt.contains("Q: Enhance question 1?\nA: Tom and two residents"));
        assert!(
            !prompt.contains("Enhance question 2?"),
            "unanswered questions are left out"
        );
        let view = app
            .ok(
                Q,
                "aiEnhancement:getEnhancedNarrative",
                by_incident(&worker, &id),
            )
            .await;
        assert_eq!(
            view["enhanced_content"]["before_event_extra"],
            good["enhanced_content"]
        );
        assert!(view["enhanced_content"].get("during_event_extra").is_none());
        app.stop().await;
    }
}

#[tokio::test]
async fn sample_answers_come_from_the_provider_for_known_questions_only() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = Fake::start(questions_reply("Mock", 3)).await;
        let app = start(&place, &fake).await;
        let abc = company(&app, "ABC Care").await;
        let demo = member(&app, Some(&abc.id), "demo_admin").await;
        let id = incident(&app, &demo, &abc.site).await;
        write_narrative(&app, &demo, &id, [BEFORE, DURING, END, POST]).await;
        app.ok(
            A,
            "aiClarification:generateClarificationQuestions",
            with(
                &demo,
                &id,
                json!({"phase": "during_event", "narrative_content": DURING}),
            ),
        )
        .await;
        let reply = json!({"answers": [
            {"question_id": "during_event_q2", "answer": "Staff spoke calmly to her."},
            {"question_id": "during_event_q7", "answer": "Not a question of this incident."},
            {"question_id": "before_event_q1", "answer": "Another phase."},
        ]});
        fake.then(Reply::text(&reply.to_string(), 500, 80));
        let filled = app
            .ok(
                A,
                "aiClarification:generateMockAnswers",
                with(&demo, &id, json!({"phase": "during_event"})),
            )
            .await;
        assert_eq!(filled["generated_count"], 1.0);
        assert_eq!(filled["answers"][0]["question_id"], "during_event_q2");
        assert_eq!(filled["ai_model"], "test-model");
        assert_eq!(filled["tokens_used"], 580.0);
        let prompt = prompt_of(fake.bodies().last().unwrap());
        assert!(prompt.contains("during_event_q3") && prompt.contains("Mock question 3?"));
        assert!(prompt.contains(DURING));
        let listed = questions(&app, &demo, &id, "during_event").await;
        assert_eq!(listed[1]["answer_text"], "Staff spoke calmly to her.");
        assert_eq!(listed[0]["answered"], false);
        assert_eq!(rows(&app, "clarification_answers").await.len(), 1);
        app.stop().await;
    }
}
