//! The AI service through the real HTTP API (`promptManager:testPrompt`), against a fake
//! OpenAI-compatible server started here: calls logged with tokens, cost and provider; usage
//! statistics; a truncated JSON reply that raises max tokens (saved, acknowledged, reset); provider
//! failures logged and returned; the rate limit and daily cost cap; the offline provider; who may
//! read the request log; pruning old rows.

mod fake;
#[path = "../harness/mod.rs"]
mod harness;
mod limits;
#[path = "../seed/mod.rs"]
mod seed;

use fake::{Fake, Reply};
use harness::{backends, App, Place};
pub use seed::{company, insert, now_ms};
use serde_json::{json, Value as Json};

pub const M: &str = "mutation";
pub const Q: &str = "query";
pub const A: &str = "action";
pub const DAY_MS: f64 = 86_400_000.0;

/// A signed-in user (written straight into the store): `(user id, session token)`.
pub async fn person(app: &App, company: Option<&str>, role: &str) -> (String, String) {
    let member = seed::anyone(app, company, role).await;
    (member.id, member.token)
}

/// Settings for an app that talks to `fake`: one attempt per model, priced at $1 per 1K input
/// and $2 per 1K output tokens.
pub fn env_for(fake: &Fake) -> Vec<(&'static str, String)> {
    vec![
        ("LLM_BASE_URL", fake.base_url.clone()),
        ("LLM_API_KEY", "sk-test-not-a-real-key".to_string()),
        ("LLM_MODEL", "test-model".to_string()),
        ("AI_PRICE_TABLE", "test-model=1/2".to_string()),
        ("AI_MAX_RETRIES", "0".to_string()),
        ("AI_RETRY_BASE_DELAY_MS", "1".to_string()),
    ]
}

pub async fn start(place: &Place, env: &[(&'static str, String)]) -> App {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    App::start_with(place, &env).await
}

pub fn narrative_vars(phase_var: &str, text: &str) -> Json {
    json!({"participantName": "Sarah Williams", "reporterName": "Jo Smith",
           "location": "Kitchen, Primary site", "eventDateTime": "2025-10-01 14:00", phase_var: text})
}

pub async fn test_prompt(app: &App, token: &str, name: &str, variables: Json) -> Json {
    app.call(
        A,
        "promptManager:testPrompt",
        json!({"sessionToken": token, "prompt_name": name, "variables": variables}),
    )
    .await
}

pub async fn logs(app: &App, token: &str, extra: Json) -> Vec<Json> {
    let mut args = json!({"sessionToken": token});
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    let page = app.ok(Q, "promptManager:listAiRequestLogs", args).await;
    page["page"].as_array().unwrap().clone()
}

pub async fn active(app: &App, name: &str) -> Json {
    app.ok(
        Q,
        "promptManager:getActivePrompt",
        json!({"prompt_name": name}),
    )
    .await
}

async fn a_call_is_logged_with_usage_and_cost(db_place: &Place) {
    let fake = Fake::start(Reply::text(
        "Sarah was calm and ate lunch with Jo.",
        1000,
        500,
    ))
    .await;
    let app = start(db_place, &env_for(&fake)).await;
    let (_, sys) = person(&app, None, "system_admin").await;
    let mut vars = narrative_vars("beforeEvent", "Sarah was calm at lunch");
    vars["beforeEventQA"] = json!("Q: Who was there?\nA: Jo and two residents.");
    // The prompts table is empty: the first call seeds the defaults, then uses them.
    let body = test_prompt(&app, &sys, "enhance_narrative_before_event", vars).await;
    assert_eq!(body["status"], "success", "{body}");
    let out = &body["value"];
    assert_eq!(out["provider"], "openai-compatible");
    assert_eq!(out["offline"], false);
    assert_eq!(out["model"], "test-model");
    assert_eq!(out["text"], "Sarah was calm and ate lunch with Jo.");
    assert_eq!(out["tokens_in"], 1000.0);
    assert_eq!(out["tokens_out"], 500.0);
    assert_eq!(out["cost_usd"], 2.0);
    assert_eq!(out["prompt_version"], "v1.0.0");

    // What the provider was sent: the rendered prompt, the prompt's model and limits, no JSON mode.
    let sent = fake.bodies();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["model"], "test-model");
    assert_eq!(sent[0]["max_tokens"], 4000);
    assert!(sent[0].get("response_format").is_none());
    let prompt_text = sent[0]["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        prompt_text.contains("Sarah was calm at lunch")
            && prompt_text.contains("Jo and two residents")
    );

    let rows = logs(&app, &sys, json!({})).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["operation"], "enhance_narrative_before_event");
    assert_eq!(row["prompt_version"], "v1.0.0");
    assert_eq!(row["provider"], "openai-compatible");
    assert_eq!(row["model"], "test-model");
    assert_eq!(row["tokens_in"], 1000.0);
    assert_eq!(row["tokens_out"], 500.0);
    assert_eq!(row["cost_usd"], 2.0);
    assert_eq!(row["success"], true);
    assert_eq!(row["resolved_prompt"], prompt_text.as_str());
    assert_eq!(row["variables"]["beforeEvent"], "Sarah was calm at lunch");
    assert_eq!(row["output"], "Sarah was calm and ate lunch with Jo.");
    assert_eq!(row["correlation_id"], out["correlation_id"]);
    // The API key never reaches the log.
    assert!(!row.to_string().contains("sk-test"));

    let prompt = active(&app, "enhance_narrative_before_event").await;
    assert_eq!(prompt["usage_count"], 1.0);
    assert_eq!(prompt["success_rate"], 1.0);
    let stats = app
        .ok(
            Q,
            "promptManager:getAiUsageStats",
            json!({"sessionToken": sys}),
        )
        .await;
    assert_eq!(stats["totals"]["requests"], 1.0);
    assert_eq!(stats["totals"]["cost_usd"], 2.0);
    assert_eq!(stats["todayCostUsd"], 2.0);
    assert_eq!(
        stats["byOperation"][0]["operation"],
        "enhance_narrative_before_event"
    );
    assert_eq!(stats["days"].as_array().unwrap().len(), 7);
    app.stop().await;
}

async fn a_truncated_json_reply_raises_max_tokens(place: &Place) {
    let questions = json!([
        {"question": "What was Sarah doing just before she fell?", "purpose": "The lead-up"},
        {"question": "Where were staff standing?", "purpose": "Supervision"},
        {"question": "What did Sarah say afterwards?", "purpose": "Her account"}
    ]);
    let fake = Fake::start(Reply::text(&questions.to_string(), 300, 120)).await;
    fake.then(Reply::Chat {
        content: r#"[{"question": "What was Sarah doing"#.to_string(),
        finish: "length",
        tokens_in: 300,
        tokens_out: 2000,
    });
    let app = start(place, &env_for(&fake)).await;
    let (_, sys) = person(&app, None, "system_admin").await;
    let name = "generate_clarification_questions_during_event";
    let body = test_prompt(
        &app,
        &sys,
        name,
        narrative_vars("duringEvent", "Sarah slipped near the sink."),
    )
    .await;
    assert_eq!(body["status"], "success", "{body}");
    let out = &body["value"];
    assert_eq!(out["json"], questions);
    assert_eq!(out["token_adjustment"]["baseline"], 2000.0);
    assert_eq!(out["token_adjustment"]["new_max"], 2500.0);
    let sent = fake.bodies();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["response_format"]["type"], "json_object");
    assert_eq!(
        (sent[0]["max_tokens"].clone(), sent[1]["max_tokens"].clone()),
        (json!(2000), json!(2500))
    );

    // Saved on the template for an administrator.
    let prompt = active(&app, name).await;
    assert_eq!(prompt["max_tokens"], 2500.0);
    assert_eq!(prompt["baseline_max_tokens"], 2000.0);
    assert!(
        prompt["adjustment_reason"]
            .as_str()
            .unwrap()
            .contains("cut off"),
        "{prompt}"
    );
    assert_eq!(prompt["adjustment_pending"], true);
    let row = &logs(&app, &sys, json!({})).await[0];
    assert_eq!(row["token_adjustment"]["new_max"], 2500.0);
    assert_eq!(row["finish"], "stop");

    // The next call starts at the new limit.
    test_prompt(
        &app,
        &sys,
        name,
        narrative_vars("duringEvent", "Sarah slipped again."),
    )
    .await;
    assert_eq!(fake.bodies()[2]["max_tokens"], 2500);

    let id = prompt["_id"].clone();
    app.ok(
        M,
        "promptManager:acknowledgeTokenAdjustment",
        json!({"sessionToken": sys, "prompt_id": id}),
    )
    .await;
    let prompt = active(&app, name).await;
    assert_eq!(prompt["adjustment_pending"], false);
    assert_eq!(prompt["max_tokens"], 2500.0);
    assert!(
        prompt.get("acknowledged_by").is_none(),
        "no user ids without a session"
    );
    let seen_by_admin = app
        .ok(
            Q,
            "promptManager:getPrompt",
            json!({"sessionToken": sys, "prompt_id": id}),
        )
        .await;
    assert!(
        seen_by_admin["acknowledged_by"].is_string(),
        "{seen_by_admin}"
    );
    let reset = app
        .ok(
            M,
            "promptManager:resetTokenAdjustment",
            json!({"sessionToken": sys, "prompt_id": id}),
        )
        .await;
    assert_eq!(reset["max_tokens"], 2000.0);
    let prompt = active(&app, name).await;
    assert_eq!(prompt["max_tokens"], 2000.0);
    assert!(prompt.get("baseline_max_tokens").is_none());
    app.stop().await;
}

const END_EVENT_PROMPT: &str = "enhance_narrative_end_event";

/// `promptManager:testPrompt` of the end-of-event enhancement with a short narrative.
async fn enhance_end_event(app: &App, token: &str) -> Json {
    let vars = narrative_vars("endEvent", "Sarah settled after ten minutes.");
    test_prompt(app, token, END_EVENT_PROMPT, vars).await
}

async fn failures_are_logged_and_returned(place: &Place) {
    let fake = Fake::start(Reply::Status(500)).await;
    let app = start(place, &env_for(&fake)).await;
    let (_, sys) = person(&app, None, "system_admin").await;
    let name = END_EVENT_PROMPT;
    let body = enhance_end_event(&app, &sys).await;
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorData"]["code"], "UNAVAILABLE", "{body}");
    assert!(body["errorData"]["message"]
        .as_str()
        .unwrap()
        .contains("AI_UNAVAILABLE"));
    let row = &logs(&app, &sys, json!({})).await[0];
    assert_eq!(row["success"], false);
    assert_eq!(row["error_code"], "AI_UNAVAILABLE");
    assert!(
        row["attempts"][0].as_str().unwrap().contains("500"),
        "{row}"
    );
    let prompt = active(&app, name).await;
    assert_eq!(prompt["failure_count"], 1.0);
    assert_eq!(prompt["success_rate"], 0.0);

    // Bad variables: a clear error naming them, and no provider call.
    let calls = fake.bodies().len();
    let body = test_prompt(
        &app,
        &sys,
        name,
        json!({"participantName": "Sarah", "endEvent": 4}),
    )
    .await;
    assert_eq!(body["errorData"]["code"], "VALIDATION", "{body}");
    assert_eq!(body["errorData"]["field"], "variables");
    let message = body["errorData"]["message"].as_str().unwrap();
    assert!(
        message.contains("reporterName") && message.contains("endEvent"),
        "{message}"
    );
    assert_eq!(fake.bodies().len(), calls);
    let body = test_prompt(&app, &sys, "no_such_prompt", json!({})).await;
    assert_eq!(body["errorData"]["code"], "NOT_FOUND");
    let codes: Vec<Json> = logs(&app, &sys, json!({"success": false}))
        .await
        .iter()
        .map(|r| r["error_code"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            json!("PROMPT_NOT_FOUND"),
            json!("INVALID_VARIABLES"),
            json!("AI_UNAVAILABLE")
        ]
    );
    // Filtering by operation.
    assert_eq!(logs(&app, &sys, json!({"operation": name})).await.len(), 2);
    app.stop().await;
}

/// Retries that would outlast the action stop early enough for the request to be logged.
async fn slow_providers_stop_in_time_to_be_logged(place: &Place) {
    let fake = Fake::start(Reply::Status(503)).await;
    let mut env = env_for(&fake);
    env.retain(|(k, _)| !matches!(*k, "AI_MAX_RETRIES" | "AI_RETRY_BASE_DELAY_MS"));
    env.extend([
        ("AI_MAX_RETRIES", "5".to_string()),
        // The first backoff alone (5-10 s) is longer than the whole action may take.
        ("AI_RETRY_BASE_DELAY_MS", "10000".to_string()),
        ("SUPPORTSIGNAL_FUNCTION_TIMEOUT_SECS", "4".to_string()),
    ]);
    let app = start(place, &env).await;
    let (_, sys) = person(&app, None, "system_admin").await;
    let name = END_EVENT_PROMPT;
    let body = enhance_end_event(&app, &sys).await;
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorData"]["code"], "TIMEOUT", "{body}");
    assert!(
        body["errorData"]["message"]
            .as_str()
            .unwrap()
            .contains("AI_TIMEOUT"),
        "the AI service answered, not the runtime's cut-off: {body}"
    );
    let rows = logs(&app, &sys, json!({})).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["success"], false);
    assert_eq!(rows[0]["error_code"], "AI_TIMEOUT");
    assert_eq!(rows[0]["operation"], name);
    assert_eq!(
        fake.bodies().len(),
        1,
        "no retry started after the budget ran out"
    );
    app.stop().await;
}

async fn offline_answers_are_marked_offline(place: &Place) {
    let app = App::start(place).await;
    let (_, sys) = person(&app, None, "system_admin").await;
    let body = test_prompt(
        &app,
        &sys,
        "generate_clarification_questions_before_event",
        narrative_vars(
            "beforeEvent",
            "Sarah was watching television in the lounge when the fire alarm was tested.",
        ),
    )
    .await;
    assert_eq!(body["status"], "success", "{body}");
    let out = &body["value"];
    assert_eq!(out["provider"], "offline");
    assert_eq!(out["offline"], true);
    assert_eq!(out["cost_usd"], 0.0);
    let questions = out["json"].as_array().expect("questions as a JSON array");
    assert!((3..=5).contains(&questions.len()), "{out}");
    let row = &logs(&app, &sys, json!({})).await[0];
    assert_eq!(row["provider"], "offline");
    assert_eq!(row["success"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_service() {
    for db in backends() {
        a_call_is_logged_with_usage_and_cost(&Place::new(db).await).await;
        a_truncated_json_reply_raises_max_tokens(&Place::new(db).await).await;
        failures_are_logged_and_returned(&Place::new(db).await).await;
        slow_providers_stop_in_time_to_be_logged(&Place::new(db).await).await;
        offline_answers_are_marked_offline(&Place::new(db).await).await;
        limits::rate_limit_and_cost_cap(db).await;
        limits::who_reads_the_log_and_pruning(&Place::new(db).await).await;
    }
}
