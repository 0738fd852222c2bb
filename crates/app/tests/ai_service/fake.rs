//! A fake OpenAI-compatible chat-completions server: it answers `POST /v1/chat/completions` from a
//! script (then with a default), in the real API's shape, and keeps every request body.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub enum Reply {
    Chat {
        content: String,
        finish: &'static str,
        tokens_in: u32,
        tokens_out: u32,
    },
    Status(u16),
}

impl Reply {
    pub fn text(content: &str, tokens_in: u32, tokens_out: u32) -> Reply {
        Reply::Chat {
            content: content.to_string(),
            finish: "stop",
            tokens_in,
            tokens_out,
        }
    }
}

struct Script {
    queue: VecDeque<Reply>,
    default: Reply,
    bodies: Vec<Value>,
}

#[derive(Clone)]
pub struct Fake {
    pub base_url: String,
    script: Arc<Mutex<Script>>,
}

impl Fake {
    pub async fn start(default: Reply) -> Fake {
        let script = Arc::new(Mutex::new(Script {
            queue: VecDeque::new(),
            default,
            bodies: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake {
            base_url: format!("http://{addr}/v1"),
            script,
        }
    }

    /// Replies to give, in order, before the default.
    pub fn then(&self, reply: Reply) {
        self.script.lock().unwrap().queue.push_back(reply);
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.script.lock().unwrap().bodies.clone()
    }
}

async fn complete(State(script): State<Arc<Mutex<Script>>>, Json(body): Json<Value>) -> Response {
    let reply = {
        let mut script = script.lock().unwrap();
        script.bodies.push(body.clone());
        script
            .queue
            .pop_front()
            .unwrap_or_else(|| script.default.clone())
    };
    match reply {
        Reply::Status(status) => (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": {"message": "the fake is down", "type": "server_error"}})),
        )
            .into_response(),
        Reply::Chat {
            content,
            finish,
            tokens_in,
            tokens_out,
        } => Json(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body["model"],
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish
            }],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out
            }
        }))
        .into_response(),
    }
}
