//! The AI layer's library half: the `{{name}}` prompt template engine and the LLM providers
//! (OpenAI-compatible chat completions, Anthropic Messages, and a deterministic offline provider)
//! behind one router with fallbacks, retries and circuit breakers.

mod breaker;
pub mod config;
mod error;
mod http;
mod llm;
pub mod offline;
mod request;
pub mod template;

pub use config::{AiConfig, Price, PriceTable};
pub use error::{AiError, AiErrorCode, Attempt, Outcome};
pub use llm::{
    parse_json, Llm, MAX_TOKEN_ESCALATIONS, MAX_TOKEN_ESCALATION_CAP, TOKEN_ESCALATION_STEP,
};
pub use request::{ChatReply, ChatRequest, Finish, JsonReply, TokenAdjustment};
