//! What callers send and get back, whichever provider answers.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Attempt;

/// One chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The prompt name, e.g. `generate_clarification_questions_before_event`; the offline
    /// provider answers by it.
    pub operation: String,
    /// The template variables the prompt was rendered from, so the offline provider can work
    /// from the input.
    pub variables: Map<String, Value>,
    pub system: Option<String>,
    pub prompt: String,
    /// The model to try first; `None` uses `LLM_MODEL`.
    pub model: Option<String>,
    pub temperature: f32,
    pub max_tokens: u32,
    /// The reply must be JSON (providers are asked for JSON output).
    pub json: bool,
}

impl ChatRequest {
    /// A request with the reference defaults (temperature 0.3, 2000 tokens, text output).
    pub fn new(operation: impl Into<String>, prompt: impl Into<String>) -> ChatRequest {
        ChatRequest {
            operation: operation.into(),
            variables: Map::new(),
            system: None,
            prompt: prompt.into(),
            model: None,
            temperature: 0.3,
            max_tokens: 2000,
            json: false,
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Finish {
    /// A natural end.
    Stop,
    /// The max-token limit cut the reply short.
    Length,
    /// Anything else the provider reported (content filter, tool call...).
    Other(String),
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    pub text: String,
    /// `openai-compatible`, `anthropic` or `offline`.
    pub provider: String,
    pub model: String,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub finish: Finish,
    /// Time of the whole request, retries and fallbacks included.
    pub latency_ms: u64,
    /// From the price table; 0 for the offline provider and for models with no price.
    pub cost_usd: f64,
    /// Every attempt made, failed ones first, the answering one last.
    pub attempts: Vec<Attempt>,
}

/// A new max-token limit found by [`crate::Llm::complete_json`], to be saved on the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenAdjustment {
    /// The limit the request started with.
    pub baseline: u32,
    /// The limit that produced a complete reply.
    pub new_max: u32,
    pub reason: String,
}

/// A reply parsed as JSON and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonReply {
    pub value: Value,
    pub reply: ChatReply,
    /// Set when the token limit had to grow to get a complete reply.
    pub adjustment: Option<TokenAdjustment>,
}
