//! The router against fake OpenAI-compatible and Anthropic servers speaking the real HTTP APIs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai::{AiConfig, ChatRequest, Finish, Llm, Outcome};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{json, Value};
use url::Url;

const OPENAI_KEY: &str = "sk-test-openai-secret";
const ANTHROPIC_KEY: &str = "sk-ant-test-secret";

/// A request the fake server received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake server answers.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
    delay: Duration,
}

impl Answer {
    fn new(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
        }
    }
    fn header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_string()));
        self
    }
    fn delay(mut self, d: Duration) -> Answer {
        self.delay = d;
        self
    }
}

type Responder = dyn Fn(&Seen, usize) -> Answer + Send + Sync;

struct Fake {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Starts a server on 127.0.0.1:0 that records every request and answers with `respond`
    /// (given the request and its index).
    async fn start(respond: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Fake {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let respond: Arc<Responder> = Arc::new(respond);
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            let respond = respond.clone();
            async move {
                let request = Seen {
                    path: uri.path().to_string(),
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                };
                let index = {
                    let mut log = log.lock();
                    log.push(request.clone());
                    log.len() - 1
                };
                let answer = respond(&request, index);
                tokio::time::sleep(answer.delay).await;
                let mut response: Response = (
                    StatusCode::from_u16(answer.status).unwrap(),
                    axum::Json(answer.body),
                )
                    .into_response();
                for (name, value) in answer.headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake {
            base: format!("http://{addr}"),
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }
}

fn openai_reply(model: &str, text: &str, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
    })
}

fn anthropic_reply(model: &str, text: &str, stop: &str) -> Value {
    json!({
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "usage": {"input_tokens": 100, "output_tokens": 50}
    })
}

fn model_of(seen: &Seen) -> String {
    seen.body["model"].as_str().unwrap_or_default().to_string()
}

/// Settings with small delays, pointing at the given fakes.
fn config(openai: Option<&Fake>, anthropic: Option<&Fake>) -> AiConfig {
    let mut c = AiConfig {
        llm_model: "main-model".into(),
        llm_fallback_model: Some("backup-model".into()),
        anthropic_model: "claude-test".into(),
        request_timeout: Duration::from_secs(5),
        max_retries: 2,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(300),
        breaker_threshold: 100,
        ..AiConfig::default()
    };
    if let Some(f) = openai {
        c.llm_base_url = Some(Url::parse(&format!("{}/v1", f.base)).unwrap());
        c.llm_api_key = Some(OPENAI_KEY.into());
    }
    if let Some(f) = anthropic {
        c.anthropic_base_url = Url::parse(&f.base).unwrap();
        c.anthropic_api_key = Some(ANTHROPIC_KEY.into());
    }
    c.prices = ai::PriceTable::parse("main-model=0.001/0.002,claude-test=0.01/0.02").unwrap();
    c
}

fn request(json: bool) -> ChatRequest {
    ChatRequest {
        system: Some("You help NDIS support workers.".into()),
        json,
        ..ChatRequest::new(
            "generate_clarification_questions_before_event",
            "Ask about the morning.",
        )
    }
}

fn outcomes(attempts: &[ai::Attempt]) -> Vec<(String, String, &'static str)> {
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.model.clone(), a.outcome.kind()))
        .collect()
}

fn o(provider: &str, model: &str, kind: &'static str) -> (String, String, &'static str) {
    (provider.to_string(), model.to_string(), kind)
}

#[tokio::test]
async fn openai_compatible_success_sends_the_real_request() {
    let fake =
        Fake::start(|s, _| Answer::new(200, openai_reply(&model_of(s), "[1]", "stop"))).await;
    let llm = Llm::new(config(Some(&fake), None));
    let reply = llm.complete(&request(true)).await.unwrap();

    assert_eq!(reply.text, "[1]");
    assert_eq!(reply.provider, "openai-compatible");
    assert_eq!(reply.model, "main-model");
    assert_eq!((reply.tokens_in, reply.tokens_out), (1200, 300));
    assert_eq!(reply.finish, Finish::Stop);
    // 1.2K in at 0.001 + 0.3K out at 0.002.
    assert!((reply.cost_usd - 0.0018).abs() < 1e-9, "{}", reply.cost_usd);

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.path, "/v1/chat/completions");
    assert_eq!(
        s.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert_eq!(s.body["model"], "main-model");
    assert_eq!(
        s.body["messages"],
        json!([
            {"role": "system", "content": "You help NDIS support workers."},
            {"role": "user", "content": "Ask about the morning."}
        ])
    );
    assert_eq!(s.body["max_tokens"], 2000);
    assert!((s.body["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    assert_eq!(s.body["response_format"], json!({"type": "json_object"}));
}

#[tokio::test]
async fn a_local_server_without_a_key_gets_no_authorization_and_text_mode() {
    let fake =
        Fake::start(|s, _| Answer::new(200, openai_reply(&model_of(s), "hello", "stop"))).await;
    let mut c = config(Some(&fake), None);
    c.llm_api_key = None;
    let llm = Llm::new(c);
    let mut req = request(false);
    req.model = Some("llama-local".into());
    let reply = llm.complete(&req).await.unwrap();
    assert_eq!(reply.model, "llama-local");
    // No price for this model: it counts as free.
    assert_eq!(reply.cost_usd, 0.0);
    let s = &fake.seen()[0];
    assert_eq!(s.header("authorization"), None);
    assert_eq!(s.body.get("response_format"), None);
    assert_eq!(s.body["model"], "llama-local");
}

#[tokio::test]
async fn anthropic_success_sends_the_real_request() {
    let fake = Fake::start(|s, _| {
        Answer::new(
            200,
            anthropic_reply(&model_of(s), "{\"ok\":true}", "end_turn"),
        )
    })
    .await;
    let llm = Llm::new(config(None, Some(&fake)));
    assert_eq!(llm.providers(), vec!["anthropic"]);
    let reply = llm.complete(&request(true)).await.unwrap();
    assert_eq!(reply.text, "{\"ok\":true}");
    assert_eq!(reply.provider, "anthropic");
    assert_eq!(reply.model, "claude-test");
    assert_eq!((reply.tokens_in, reply.tokens_out), (100, 50));
    assert!((reply.cost_usd - 0.002).abs() < 1e-9);

    let s = &fake.seen()[0];
    assert_eq!(s.path, "/v1/messages");
    assert_eq!(s.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(s.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(s.header("authorization"), None);
    assert_eq!(s.body["model"], "claude-test");
    assert_eq!(s.body["max_tokens"], 2000);
    assert_eq!(
        s.body["messages"],
        json!([{"role": "user", "content": "Ask about the morning."}])
    );
    let system = s.body["system"].as_str().unwrap();
    assert!(system.starts_with("You help NDIS support workers."));
    assert!(system.contains("JSON"), "{system}");
}

#[tokio::test]
async fn rate_limited_waits_for_retry_after_then_succeeds() {
    let fake = Fake::start(|s, i| match i {
        0 => {
            Answer::new(429, json!({"error": {"message": "slow down"}})).header("retry-after", "1")
        }
        _ => Answer::new(200, openai_reply(&model_of(s), "ok", "stop")),
    })
    .await;
    let mut c = config(Some(&fake), None);
    c.retry_max_delay = Duration::from_secs(5);
    let llm = Llm::new(c);
    let started = Instant::now();
    let reply = llm.complete(&request(false)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(reply.text, "ok");
    assert_eq!(reply.model, "main-model");
    assert_eq!(
        outcomes(&reply.attempts),
        vec![
            o("openai-compatible", "main-model", "rate_limited"),
            o("openai-compatible", "main-model", "ok")
        ]
    );
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn an_excessive_retry_after_is_capped() {
    let fake = Fake::start(|s, i| match i {
        0 => Answer::new(429, json!({})).header("retry-after", "3600"),
        _ => Answer::new(200, openai_reply(&model_of(s), "ok", "stop")),
    })
    .await;
    let llm = Llm::new(config(Some(&fake), None)); // retry_max_delay 300 ms
    let started = Instant::now();
    let reply = llm.complete(&request(false)).await.unwrap();
    assert_eq!(reply.text, "ok");
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[tokio::test]
async fn server_errors_are_retried_then_the_fallback_model_answers() {
    let fake = Fake::start(|s, _| match model_of(s).as_str() {
        "main-model" => Answer::new(500, json!({"error": {"message": "overloaded"}})),
        m => Answer::new(200, openai_reply(m, "from backup", "stop")),
    })
    .await;
    let llm = Llm::new(config(Some(&fake), None));
    let reply = llm.complete(&request(false)).await.unwrap();
    assert_eq!(reply.text, "from backup");
    assert_eq!(reply.model, "backup-model");
    // 1 try + 2 retries on the main model, then the fallback.
    assert_eq!(
        outcomes(&reply.attempts),
        vec![
            o("openai-compatible", "main-model", "server_error"),
            o("openai-compatible", "main-model", "server_error"),
            o("openai-compatible", "main-model", "server_error"),
            o("openai-compatible", "backup-model", "ok"),
        ]
    );
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_moves_to_the_next_model() {
    let fake = Fake::start(|s, _| match model_of(s).as_str() {
        "main-model" => Answer::new(
            404,
            json!({"error": {"message": "model main-model does not exist"}}),
        ),
        m => Answer::new(200, openai_reply(m, "ok", "stop")),
    })
    .await;
    let llm = Llm::new(config(Some(&fake), None));
    let reply = llm.complete(&request(false)).await.unwrap();
    assert_eq!(reply.model, "backup-model");
    assert_eq!(reply.attempts.len(), 2);
    assert_eq!(
        reply.attempts[0].outcome,
        Outcome::Rejected {
            status: 404,
            detail: "model main-model does not exist".into()
        }
    );
}

#[tokio::test]
async fn every_provider_failing_gives_a_clear_error_listing_the_attempts() {
    let openai = Fake::start(|_, _| {
        Answer::new(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {OPENAI_KEY}")}}),
        )
    })
    .await;
    let anthropic = Fake::start(|_, _| {
        Answer::new(529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    })
    .await;
    let mut c = config(Some(&openai), Some(&anthropic));
    c.max_retries = 1;
    let llm = Llm::new(c);
    let err = llm.complete(&request(false)).await.unwrap_err();
    assert_eq!(err.code(), "AI_UNAVAILABLE");
    assert_eq!(
        outcomes(&err.attempts),
        vec![
            o("openai-compatible", "main-model", "rejected"),
            o("openai-compatible", "backup-model", "rejected"),
            o("anthropic", "claude-test", "server_error"),
            o("anthropic", "claude-test", "server_error"),
        ]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("AI_UNAVAILABLE: no AI provider could answer after 4 attempts"),
        "{text}"
    );
    assert!(
        text.contains("openai-compatible main-model: rejected (HTTP 401)"),
        "{text}"
    );
    assert!(
        text.contains("anthropic claude-test: server error (HTTP 529)"),
        "{text}"
    );
    // The provider echoed the key; it must not reach the error or its Debug form.
    assert!(!text.contains(OPENAI_KEY), "{text}");
    assert!(!format!("{err:?}").contains(OPENAI_KEY));
    assert!(!format!("{llm:?}").contains(OPENAI_KEY));
    assert_eq!(err.cost_usd(), 0.0);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connection_error() {
    // Bind then drop a listener so the port is (almost certainly) closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = AiConfig {
        llm_base_url: Some(Url::parse(&format!("http://127.0.0.1:{port}/v1")).unwrap()),
        llm_fallback_model: None,
        max_retries: 1,
        retry_base_delay: Duration::from_millis(1),
        ..AiConfig::default()
    };
    c.llm_model = "m".into();
    let err = Llm::new(c).complete(&request(false)).await.unwrap_err();
    assert_eq!(err.code(), "AI_UNAVAILABLE");
    assert_eq!(err.attempts.len(), 2, "a connection error is retried");
    assert!(err
        .attempts
        .iter()
        .all(|a| a.outcome.kind() == "connection_error"));
}

#[tokio::test]
async fn a_slow_provider_times_out() {
    let fake = Fake::start(|s, _| {
        Answer::new(200, openai_reply(&model_of(s), "late", "stop")).delay(Duration::from_secs(3))
    })
    .await;
    let mut c = config(Some(&fake), None);
    c.request_timeout = Duration::from_millis(200);
    let llm = Llm::new(c);
    let err = llm.complete(&request(false)).await.unwrap_err();
    assert_eq!(err.code(), "AI_TIMEOUT");
    // A timeout moves on to the fallback model rather than waiting again on the same one.
    assert_eq!(
        outcomes(&err.attempts),
        vec![
            o("openai-compatible", "main-model", "timeout"),
            o("openai-compatible", "backup-model", "timeout"),
        ]
    );
    assert!(err.message.contains("timed out"), "{}", err.message);
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_closes_after_a_good_trial() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let fake = Fake::start(move |s, _| {
        if flag.load(Ordering::SeqCst) {
            Answer::new(200, openai_reply(&model_of(s), "back", "stop"))
        } else {
            Answer::new(503, json!({"error": {"message": "down"}}))
        }
    })
    .await;
    let mut c = config(Some(&fake), None);
    c.llm_fallback_model = None;
    c.max_retries = 0;
    c.breaker_threshold = 2;
    c.breaker_cooldown = Duration::from_millis(300);
    let llm = Llm::new(c);

    for _ in 0..2 {
        let err = llm.complete(&request(false)).await.unwrap_err();
        assert_eq!(err.attempts[0].outcome, Outcome::ServerError(503));
    }
    assert_eq!(llm.open_breakers(), vec!["openai-compatible"]);

    // Open: the provider is not called at all.
    let err = llm.clone().complete(&request(false)).await.unwrap_err();
    assert_eq!(err.code(), "AI_UNAVAILABLE");
    assert_eq!(err.attempts[0].outcome, Outcome::BreakerOpen);
    assert!(
        err.message.contains("circuit breaker open"),
        "{}",
        err.message
    );
    assert_eq!(fake.seen().len(), 2);

    // After the cooldown one trial goes through; it succeeds, so the breaker closes.
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let reply = llm.complete(&request(false)).await.unwrap();
    assert_eq!(reply.text, "back");
    assert!(llm.open_breakers().is_empty());
    llm.complete(&request(false)).await.unwrap();
    assert_eq!(fake.seen().len(), 4);
}

#[tokio::test]
async fn an_open_breaker_skips_to_the_next_provider() {
    let openai = Fake::start(|_, _| Answer::new(500, json!({}))).await;
    let anthropic = Fake::start(|s, _| {
        Answer::new(
            200,
            anthropic_reply(&model_of(s), "claude says", "end_turn"),
        )
    })
    .await;
    let mut c = config(Some(&openai), Some(&anthropic));
    c.max_retries = 0;
    c.breaker_threshold = 1;
    c.breaker_cooldown = Duration::from_secs(60);
    let llm = Llm::new(c);
    let first = llm.complete(&request(false)).await.unwrap();
    assert_eq!(first.provider, "anthropic");
    let second = llm.complete(&request(false)).await.unwrap();
    assert_eq!(
        outcomes(&second.attempts),
        vec![
            o("openai-compatible", "main-model", "breaker_open"),
            o("openai-compatible", "backup-model", "breaker_open"),
            o("anthropic", "claude-test", "ok"),
        ]
    );
    assert_eq!(openai.seen().len(), 1);
}

fn questions_valid(v: &Value) -> Result<(), String> {
    let items = v.as_array().ok_or("expected an array")?;
    if (3..=5).contains(&items.len()) {
        Ok(())
    } else {
        Err(format!("expected 3 to 5 questions, got {}", items.len()))
    }
}

const FULL: &str = r#"```json
[{"question": "a", "purpose": "x"}, {"question": "b", "purpose": "y"}, {"question": "c", "purpose": "z"}]
```"#;

#[tokio::test]
async fn a_truncated_json_reply_raises_max_tokens_and_reports_the_adjustment() {
    let fake = Fake::start(|s, _| {
        let max = s.body["max_tokens"].as_u64().unwrap();
        if max < 2500 {
            Answer::new(
                200,
                openai_reply(&model_of(s), "[{\"question\": \"a\", \"purp", "length"),
            )
        } else {
            Answer::new(200, openai_reply(&model_of(s), FULL, "stop"))
        }
    })
    .await;
    let llm = Llm::new(config(Some(&fake), None));
    let out = llm
        .complete_json(&request(false), questions_valid)
        .await
        .unwrap();
    assert_eq!(out.value.as_array().unwrap().len(), 3);
    let adj = out.adjustment.expect("an adjustment");
    assert_eq!((adj.baseline, adj.new_max), (2000, 2500));
    assert!(
        adj.reason.contains("cut off at the 2000-token limit"),
        "{}",
        adj.reason
    );
    let sent: Vec<u64> = fake
        .seen()
        .iter()
        .map(|s| s.body["max_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(sent, vec![2000, 2500]);
    // JSON mode was asked for although the request did not set it.
    assert!(fake
        .seen()
        .iter()
        .all(|s| s.body["response_format"]["type"] == "json_object"));
    // Both calls are paid for.
    assert_eq!(out.reply.attempts.len(), 2);
    assert!((out.reply.cost_usd - 2.0 * 0.0018).abs() < 1e-9);
    assert_eq!(out.reply.tokens_in, 2400);
}

#[tokio::test]
async fn unparseable_json_escalates_three_times_then_fails() {
    let fake =
        Fake::start(|s, _| Answer::new(200, openai_reply(&model_of(s), "Sorry, I cannot", "stop")))
            .await;
    let llm = Llm::new(config(Some(&fake), None));
    let err = llm
        .complete_json(&request(true), questions_valid)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AI_BAD_REPLY");
    assert!(err.message.contains("not valid JSON"), "{}", err.message);
    assert!(err.message.contains("3 times from 2000"), "{}", err.message);
    let sent: Vec<u64> = fake
        .seen()
        .iter()
        .map(|s| s.body["max_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(sent, vec![2000, 2500, 3000, 3500]);
    assert_eq!(err.attempts.len(), 4);
    assert!(err.cost_usd() > 0.0, "failed replies still cost money");
}

#[tokio::test]
async fn escalation_stops_at_the_cap() {
    let fake = Fake::start(|s, _| {
        Answer::new(
            200,
            anthropic_reply(&model_of(s), "[{\"question\":", "max_tokens"),
        )
    })
    .await;
    let llm = Llm::new(config(None, Some(&fake)));
    let mut req = request(true);
    req.max_tokens = 9800;
    let err = llm.complete_json(&req, questions_valid).await.unwrap_err();
    assert_eq!(err.code(), "AI_BAD_REPLY");
    let sent: Vec<u64> = fake
        .seen()
        .iter()
        .map(|s| s.body["max_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(sent, vec![9800, 10000]);
}

#[tokio::test]
async fn a_reply_of_the_wrong_shape_is_a_bad_reply() {
    let fake = Fake::start(|s, _| {
        Answer::new(
            200,
            openai_reply(&model_of(s), "{\"questions\": []}", "stop"),
        )
    })
    .await;
    let llm = Llm::new(config(Some(&fake), None));
    let err = llm
        .complete_json(&request(true), questions_valid)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AI_BAD_REPLY");
    assert!(err.message.contains("expected an array"), "{}", err.message);
    assert_eq!(fake.seen().len(), 1, "a wrong shape is not a token problem");
}

#[tokio::test]
async fn a_complete_reply_needs_no_adjustment() {
    let fake = Fake::start(|s, _| Answer::new(200, openai_reply(&model_of(s), FULL, "stop"))).await;
    let llm = Llm::new(config(Some(&fake), None));
    let out = llm
        .complete_json(&request(true), questions_valid)
        .await
        .unwrap();
    assert_eq!(out.adjustment, None);
    assert_eq!(out.value[1]["question"], "b");
}
