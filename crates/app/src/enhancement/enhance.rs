//! `aiEnhancement:enhanceNarrativePhase`: one phase's original text and its answered clarification
//! questions go to the prompt `enhance_narrative_<phase>`; the reply is stored in
//! `<phase>_extra`. When the AI cannot answer, a plain fallback (the original followed by the
//! answers as sentences) is stored instead and the result says `success: false`, so the worker
//! can go on and try again later.

use std::time::Instant;

use functions::{ActionCtx, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use serde_json::{Map, Value as Json};
use values::validator::v;
use values::{DocumentId, Object, Value};

use crate::ai_service::{AiCall, AiService};
use crate::args::{object, opt_text, text, with_session};
use crate::clarification::{
    answered_pairs, capture_editor, forward, phase_validator, phase_variable, prompt_context,
    qa_text,
};
use crate::incidents::record;
use crate::narratives::{self, Phase};

pub const PREPARE: &str = "aiEnhancement:prepareEnhancement";
pub const STORE: &str = "aiEnhancement:storeEnhancement";
/// What `ai_model_used` says when the fallback text was stored.
pub const FALLBACK_MODEL: &str = "fallback";

pub fn register(r: &mut Registry, ai: &AiService) {
    let service = ai.clone();
    let by_phase = || {
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phase", phase_validator().into()),
        ])
    };
    r.action(
        "aiEnhancement:enhanceNarrativePhase",
        by_phase(),
        move |ctx, args| {
            let ai = service.clone();
            async move { enhance(ctx, args, ai).await }
        },
    );
    r.internal_query(PREPARE, by_phase(), prepare);
    r.internal_mutation(
        STORE,
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phase", phase_validator().into()),
            ("enhanced_content", v::string().into()),
        ]),
        store,
    );
}

fn phase_of(args: &Object) -> FnResult<Phase> {
    opt_text(args, "phase")
        .and_then(Phase::parse)
        .ok_or_else(|| FunctionError::validation("phase", "Unknown phase"))
}

/// Ends a sentence with a full stop unless it already ends with punctuation.
fn sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.ends_with(['.', '!', '?', '"', '”', ')']) {
        text
    } else {
        format!("{text}.")
    }
}

/// The enhancement stored when the AI cannot answer: the original, then each answered question
/// as a plain sentence. Nothing is reworded or added.
pub fn fallback_text(original: &str, pairs: &[(String, String)]) -> String {
    let original = original.trim().to_string();
    let answers: Vec<String> = pairs
        .iter()
        .filter(|(_, a)| !a.trim().is_empty())
        .map(|(q, a)| {
            let question = q.split_whitespace().collect::<Vec<_>>().join(" ");
            format!(
                "Asked \"{question}\", the reporter answered: {}",
                sentence(a)
            )
        })
        .collect();
    match (original.is_empty(), answers.is_empty()) {
        (_, true) => original,
        (true, false) => answers.join(" "),
        (false, false) => format!("{original}\n\n{}", answers.join(" ")),
    }
}

/// `aiEnhancement:prepareEnhancement` (internal): for the incident's creator, the phase's original
/// text, its answered questions and the prompt's variables.
fn prepare(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args, now)?;
    record::require_unlocked(&incident, "narrative")?;
    let phase = phase_of(&args)?;
    let original = narratives::find(&mut ctx.db, &scope, &incident.id)?
        .map(|n| n.phase(phase).trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            FunctionError::validation(
                "phase",
                format!("No original narrative found for phase: {}", phase.as_str()),
            )
        })?;
    let pairs = answered_pairs(&mut ctx.db, &scope, &incident.id, phase)?;
    let mut variables = prompt_context(&incident);
    let var = phase_variable(phase);
    variables.insert(var.to_string(), Json::String(original.clone()));
    variables.insert(format!("{var}QA"), Json::String(qa_text(&pairs)));
    let pair_values = pairs
        .iter()
        .map(|(q, a)| Value::Array(vec![Value::from(q.as_str()), Value::from(a.as_str())]))
        .collect();
    Ok(object([
        ("user_id", Some(Value::from(viewer.user_id))),
        ("company_id", viewer.company_id.map(Value::from)),
        ("original", Some(Value::from(original))),
        ("pairs", Some(Value::Array(pair_values))),
        (
            "variables",
            Some(values::json::from_clean_json(&Json::Object(variables))?),
        ),
    ]))
}

/// `aiEnhancement:storeEnhancement` (internal): writes `<phase>_extra` (refused once submitted);
/// the narrative's new version.
fn store(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args, now)?;
    let phase = phase_of(&args)?;
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?.ok_or_else(|| {
        FunctionError::validation(
            "phase",
            format!("No original narrative found for phase: {}", phase.as_str()),
        )
    })?;
    let version = narratives::write_enhancement(
        &mut ctx.db,
        &scope,
        &incident,
        &narrative,
        (phase, text(&args, "enhanced_content")),
        &viewer.user_id,
        now,
    )?;
    Ok(object([("version", Some(Value::from(version)))]))
}

/// `aiEnhancement:enhanceNarrativePhase`: `{phase, enhanced_content, original_content,
/// clarification_count, correlation_id, processing_time_ms, ai_model_used, success}`, plus
/// `error_code` and `error` when the fallback was stored.
async fn enhance(ctx: ActionCtx, args: Object, ai: AiService) -> FnResult {
    let started = Instant::now();
    let phase = phase_of(&args)?;
    let incident = text(&args, "incident_id").to_string();
    let mut fields = Object::new();
    fields.insert("incident_id".into(), Value::from(incident.as_str()));
    fields.insert("phase".into(), Value::from(phase.as_str()));
    let found = ctx
        .run_query(PREPARE, forward(&args, fields.clone()))
        .await?;
    let id = |field: &str| {
        found
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| DocumentId::decode(s).ok())
    };
    let original = found
        .get("original")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let pairs: Vec<(String, String)> = found
        .get("pairs")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let p = p.as_array()?;
            Some((
                p.first()?.as_str()?.to_string(),
                p.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect();
    let variables: Map<String, Json> = match found.get("variables").map(values::json::to_clean_json)
    {
        Some(Json::Object(map)) => map,
        _ => return Err(FunctionError::internal("prepare gave no prompt variables")),
    };

    let call = AiCall::new(format!("enhance_narrative_{}", phase.as_str()), variables)
        .by(id("user_id"), id("company_id"))
        .about_incident(incident.as_str());
    let (content, model, correlation_id, failure) = match ai.generate(&ctx, call).await {
        Ok(outcome) if !outcome.text.trim().is_empty() => (
            outcome.text.trim().to_string(),
            outcome.model,
            outcome.correlation_id,
            None,
        ),
        Ok(outcome) => (
            fallback_text(&original, &pairs),
            FALLBACK_MODEL.to_string(),
            outcome.correlation_id,
            Some((
                ai::AiErrorCode::BadReply.as_str().to_string(),
                "The AI service answered with an empty text".to_string(),
            )),
        ),
        Err(failure) => (
            fallback_text(&original, &pairs),
            FALLBACK_MODEL.to_string(),
            failure.correlation_id.clone(),
            Some((
                failure.code.clone(),
                failure.error.client_message(ctx.request_id.as_str()),
            )),
        ),
    };
    if let Some((code, message)) = &failure {
        // The AI service has logged the request itself; this says what the worker got instead.
        tracing::warn!(request_id = %ctx.request_id, %code, phase = phase.as_str(), "narrative enhancement failed, the fallback text was stored: {message}");
    }
    fields.insert("enhanced_content".into(), Value::from(content.as_str()));
    ctx.run_mutation(STORE, forward(&args, fields)).await?;
    Ok(object([
        ("phase", Some(Value::from(phase.as_str()))),
        ("enhanced_content", Some(Value::from(content))),
        ("original_content", Some(Value::from(original))),
        ("clarification_count", Some(Value::from(pairs.len() as f64))),
        ("correlation_id", Some(Value::from(correlation_id))),
        (
            "processing_time_ms",
            Some(Value::from(started.elapsed().as_millis() as f64)),
        ),
        ("ai_model_used", Some(Value::from(model))),
        ("success", Some(Value::from(failure.is_none()))),
        (
            "error_code",
            failure.as_ref().map(|(code, _)| Value::from(code.as_str())),
        ),
        ("error", failure.map(|(_, message)| Value::from(message))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_keeps_the_original_and_adds_the_answers_as_sentences() {
        let pairs = vec![
            (
                "Who was there?".to_string(),
                "Jo and two residents".to_string(),
            ),
            ("What time?".to_string(), "  ".to_string()),
            ("How did it end?".to_string(), "She sat down!".to_string()),
        ];
        assert_eq!(
            fallback_text("Sarah was calm at lunch.", &pairs),
            "Sarah was calm at lunch.\n\nAsked \"Who was there?\", the reporter answered: Jo and two residents. Asked \"How did it end?\", the reporter answered: She sat down!"
        );
        assert_eq!(fallback_text(" Calm. ", &[]), "Calm.");
    }
}
