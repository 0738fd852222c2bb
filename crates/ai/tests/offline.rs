//! The offline provider: used when nothing is configured, deterministic, and useful from the input.

use std::collections::HashSet;

use ai::{ChatRequest, Llm};
use serde_json::{json, Map, Value};

const BEFORE: &str = "Jordan was watching TV in the lounge while Priya cleaned up after breakfast. \
The TV was loud and another resident, Alex, kept changing the channel. Jordan started pacing and said no several times.";
const DURING: &str = "Jordan threw a plastic cup at the kitchen window and yelled at Alex. \
He pushed a chair over. I asked Priya to take Alex to the garden.";
const END: &str =
    "After about ten minutes Jordan sat on the back step. I sat nearby and offered water.";
const POST: &str = "Jordan had lunch and went for a walk with me. I called his mum Carol at 1pm.";

fn context() -> Map<String, Value> {
    json!({
        "participantName": "Jordan Lee",
        "reporterName": "Sam Taylor",
        "location": "12 Banksia St",
        "eventDateTime": "2024-05-02 10:15",
        "beforeEvent": BEFORE,
        "duringEvent": DURING,
        "endEvent": END,
        "postEvent": POST,
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn request(operation: &str, variables: Map<String, Value>) -> ChatRequest {
    ChatRequest {
        variables,
        json: operation.starts_with("generate"),
        ..ChatRequest::new(operation, "the rendered prompt")
    }
}

async fn questions(phase: &str, vars: Map<String, Value>) -> Vec<(String, String)> {
    let llm = Llm::offline();
    let op = format!("generate_clarification_questions_{phase}");
    let reply = llm.complete(&request(&op, vars)).await.unwrap();
    assert_eq!(
        (reply.provider.as_str(), reply.model.as_str()),
        ("offline", "offline")
    );
    assert_eq!(reply.cost_usd, 0.0);
    let value: Value = serde_json::from_str(&reply.text).unwrap();
    let items = value.as_array().unwrap();
    assert!((3..=5).contains(&items.len()), "{phase}: {items:#?}");
    items
        .iter()
        .map(|q| {
            let question = q["question"].as_str().unwrap().to_string();
            let purpose = q["purpose"].as_str().unwrap().to_string();
            assert!(
                question.ends_with('?') || question.ends_with('.'),
                "{question}"
            );
            assert!(!purpose.is_empty());
            (question, purpose)
        })
        .collect()
}

fn all_text(qs: &[(String, String)]) -> String {
    qs.iter()
        .map(|(q, _)| q.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn clarification_questions_refer_to_the_narrative_of_each_phase() {
    let before = all_text(&questions("before_event", context()).await);
    assert!(before.contains("watching TV in the lounge"), "{before}");
    assert!(before.contains("started pacing"), "{before}");
    assert!(before.contains("Priya and Alex"), "{before}");
    assert!(before.contains("before"), "{before}");

    let during = all_text(&questions("during_event", context()).await);
    assert!(during.contains("threw a plastic cup"), "{during}");
    assert!(during.contains("step by step"), "{during}");
    assert!(during.contains("Alex"), "{during}");

    let end = all_text(&questions("end_event", context()).await);
    assert!(end.contains("offered water"), "{end}");
    assert!(end.contains("calm"), "{end}");

    let post = all_text(&questions("post_event", context()).await);
    assert!(post.contains("first 4 hours"), "{post}");
    assert!(post.contains("went for a walk"), "{post}");
    assert!(post.contains("Carol"), "{post}");

    // The participant is named; the reporter is not asked about as a third party.
    assert!(before.contains("Jordan") && !before.contains("Sam"));
    // Each phase asks its own questions.
    let sets: Vec<HashSet<&str>> = [&before, &during, &end, &post]
        .iter()
        .map(|t| t.lines().collect())
        .collect();
    for i in 0..sets.len() {
        for j in i + 1..sets.len() {
            assert!(
                sets[i].is_disjoint(&sets[j]),
                "phases {i} and {j} share questions"
            );
        }
    }
}

#[tokio::test]
async fn clarification_questions_are_deterministic_and_follow_the_input() {
    let a = questions("during_event", context()).await;
    let b = questions("during_event", context()).await;
    assert_eq!(a, b);

    let mut other = context();
    other.insert(
        "duringEvent".into(),
        json!("Mia screamed and ran out of the day program room towards the car park."),
    );
    other.insert("participantName".into(), json!("Mia Wong"));
    let c = all_text(&questions("during_event", other).await);
    assert!(c.contains("Mia screamed and ran out"), "{c}");
    assert!(!c.contains("Jordan"), "{c}");

    // An empty narrative still gets phase questions, without quoting anything.
    let mut empty = context();
    empty.insert("beforeEvent".into(), json!(""));
    let e = all_text(&questions("before_event", empty).await);
    assert!(!e.contains("You wrote"), "{e}");
}

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[tokio::test]
async fn enhancement_merges_the_answers_without_inventing_anything() {
    let qa = "Q: How long did the yelling last?\nA: About five minutes\n\
              Q: What did staff say and do in response?\nA: I used a calm voice and told Jordan he was safe and that I would turn the TV off.\n\
              Q: What injuries did you see?\nA:   ";
    let mut vars = context();
    vars.insert("duringEventQA".into(), json!(qa));
    let reply = Llm::offline()
        .complete(&request("enhance_narrative_during_event", vars))
        .await
        .unwrap();
    let text = reply.text;
    assert!(text.starts_with(DURING), "{text}");
    assert!(text.contains("About five minutes"), "{text}");
    assert!(
        text.contains("I used a calm voice and told Jordan he was safe"),
        "{text}"
    );
    // The unanswered question is left out, and no Q:/A: markers remain.
    assert!(!text.contains("injuries"), "{text}");
    assert!(!text.contains("Q:") && !text.contains("A:"), "{text}");
    // No invention: every word comes from the narrative or the answers.
    let source = words(&format!("{DURING} {qa}"));
    let invented: Vec<String> = words(&text).difference(&source).cloned().collect();
    assert!(invented.is_empty(), "invented words: {invented:?}\n{text}");
}

#[tokio::test]
async fn enhancement_without_answers_keeps_the_narrative() {
    let mut vars = context();
    vars.insert(
        "endEvent".into(),
        json!("  jordan sat  down. i stayed with him"),
    );
    let reply = Llm::offline()
        .complete(&request("enhance_narrative_end_event", vars))
        .await
        .unwrap();
    assert_eq!(reply.text, "Jordan sat down. I stayed with him.");
}

#[tokio::test]
async fn mock_answers_answer_each_question_by_id() {
    let questions = json!([
        {"question_id": "during_event_q1", "question_text": "What did staff say and do in response?"},
        {"question_id": "during_event_q2", "question_text": "Who else was there?"},
        {"question_id": "during_event_q3", "question_text": "Describe, step by step, what happened."},
    ]);
    let vars = json!({
        "participant_name": "Jordan Lee",
        "reporter_name": "Sam Taylor",
        "location": "12 Banksia St",
        "phase": "during_event",
        "phase_narrative": DURING,
        "questions": questions.to_string(),
    })
    .as_object()
    .cloned()
    .unwrap();
    let reply = Llm::offline()
        .complete(&request("generate_mock_answers", vars))
        .await
        .unwrap();
    let value: Value = serde_json::from_str(&reply.text).unwrap();
    let answers = value["answers"].as_array().unwrap();
    let ids: Vec<&str> = answers
        .iter()
        .map(|a| a["question_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["during_event_q1", "during_event_q2", "during_event_q3"]
    );
    let text = |i: usize| answers[i]["answer"].as_str().unwrap();
    assert!(text(0).contains("Jordan"), "{}", text(0));
    assert!(text(1).contains("Alex and Priya"), "{}", text(1));
    assert!(text(2).contains("threw a plastic cup"), "{}", text(2));
    assert!(answers
        .iter()
        .all(|a| a["answer"].as_str().unwrap().len() > 10));
}

#[tokio::test]
async fn contributing_conditions_cite_the_narratives() {
    let vars = json!({
        "participant_name": "Jordan Lee",
        "reporter_name": "Sam Taylor",
        "event_datetime": "2024-05-02 10:15",
        "location": "12 Banksia St",
        "before_event": BEFORE,
        "before_event_extra": "Jordan's usual outing was cancelled because the van was late.",
        "during_event": DURING,
        "end_of_event": END,
        "post_event_support": POST,
    })
    .as_object()
    .cloned()
    .unwrap();
    let reply = Llm::offline()
        .complete(&request("analyze_contributing_conditions", vars))
        .await
        .unwrap();
    let reply: Value = serde_json::from_str(&reply.text).unwrap();
    let conditions = reply["conditions"].as_array().unwrap();
    let titles: Vec<&str> = conditions
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"Noisy, crowded or busy environment"),
        "{reply}"
    );
    assert!(titles.contains(&"Change to routine or plans"), "{reply}");
    // Every quote is a sentence of the phase it names (original or enhanced).
    let texts = [
        (
            "before_event",
            format!("{BEFORE} Jordan's usual outing was cancelled because the van was late."),
        ),
        ("during_event", DURING.to_string()),
        ("end_event", END.to_string()),
        ("post_event", POST.to_string()),
    ];
    for condition in conditions {
        assert_eq!(condition["is_modifiable"], true);
        let evidence = condition["evidence"].as_array().unwrap();
        assert!(!evidence.is_empty(), "{condition}");
        for e in evidence {
            let (_, text) = texts.iter().find(|(p, _)| *p == e["phase"]).unwrap();
            assert!(text.contains(e["quote"].as_str().unwrap()), "{e}");
        }
    }

    // Nothing to go on: no condition is made up.
    let empty = Llm::offline()
        .complete(&request("analyze_contributing_conditions", Map::new()))
        .await
        .unwrap();
    let empty: Value = serde_json::from_str(&empty.text).unwrap();
    assert_eq!(empty["conditions"], json!([]));
}

fn analysis_vars(during: &str) -> Map<String, Value> {
    json!({"participant_name": "Jordan Lee", "before_event": BEFORE, "during_event": during,
           "end_of_event": END, "post_event_support": POST})
    .as_object()
    .cloned()
    .unwrap()
}

#[tokio::test]
async fn classification_and_screening_follow_the_narrative() {
    let fall = "Jordan slipped on the wet floor and fell. He broke his wrist and the ambulance took him to hospital.";
    let reply = Llm::offline()
        .complete(&request("classify_incident", analysis_vars(fall)))
        .await
        .unwrap();
    let reply: Value = serde_json::from_str(&reply.text).unwrap();
    let all = reply["classifications"].as_array().unwrap();
    let primary: Vec<&Value> = all.iter().filter(|c| c["rank"] == "primary").collect();
    assert_eq!(primary.len(), 1, "{reply}");
    assert_eq!(primary[0]["severity"], "high", "{reply}");

    let screen = |during: &'static str| async move {
        let reply = Llm::offline()
            .complete(&request(
                "screen_reportable_incident",
                analysis_vars(during),
            ))
            .await
            .unwrap();
        serde_json::from_str::<Value>(&reply.text).unwrap()
    };
    let serious = screen(fall).await;
    assert_eq!(
        serious["categories"],
        json!(["serious_injury"]),
        "{serious}"
    );
    assert_eq!(serious["harm_caused"], true);
    assert!(serious["evidence"][0]["quote"]
        .as_str()
        .unwrap()
        .contains("broke his wrist"));
    // The capture of the other tests: a cup thrown, no one hurt.
    let calm = screen(DURING).await;
    assert_eq!(calm["categories"], json!([]), "{calm}");
    assert_eq!(calm["harm_caused"], false);
}

#[tokio::test]
async fn an_unknown_operation_is_unsupported() {
    let err = Llm::offline()
        .complete(&request("summarise_everything", Map::new()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AI_UNSUPPORTED");
    assert!(
        err.message.contains("summarise_everything"),
        "{}",
        err.message
    );
    let err = Llm::offline()
        .complete(&request(
            "generate_clarification_questions_lunch",
            Map::new(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AI_UNSUPPORTED");
}

#[tokio::test]
async fn offline_json_goes_through_complete_json() {
    let out = Llm::offline()
        .complete_json(
            &request("generate_clarification_questions_before_event", context()),
            |v| {
                v.as_array()
                    .map(|_| ())
                    .ok_or_else(|| "not an array".to_string())
            },
        )
        .await
        .unwrap();
    assert_eq!(out.reply.provider, "offline");
    assert_eq!(out.adjustment, None);
    assert!(out.reply.tokens_out > 0);
}
