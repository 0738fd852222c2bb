//! `aiEnhancement:enhanceNarrativePhase`: one phase's original text and its answered clarification
//! questions go to the prompt `enhance_narrative_<phase>`; the reply is stored in
//! `<phase>_extra`. When the AI cannot answer, a plain fallback (the original followed by the
//! answers as sentences) is stored instead and the result says `success: false`, so the worker
//! can go on and try again later.

use std::time::Instant;

use functions::{ActionCtx, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use serde_json::{Map, Value as Json};
use values::validator::v;
use values::{DocumentId, Object, Value};

use crate::ai_service::{AiCall, AiService};
use crate::args::{object, opt_text, text, with_session};
use crate::clarification::{
    answered_pairs, capture_editor, forward, phase_validator, phase_variable, prompt_context,
    qa_text,
};
use crate::identity::{require_permission, Permission};
use crate::incidents::record;
use crate::narratives::{self, Phase};

pub const PREPARE: &str = "aiEnhancement:prepareEnhancement";
pub const STORE: &str = "aiEnhancement:storeEnhancement";
pub const WRITTEN: &str = "aiEnhancement:writtenPhases";
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
    r.action_untyped(
        "aiEnhancement:enhanceNarrativePhase",
        by_phase(),
        move |ctx, args| {
            let ai = service.clone();
            async move { enhance(ctx, args, ai).await }
        },
    );
    let service = ai.clone();
    r.action_untyped(
        "aiEnhancement:enhanceIncidentNarrative",
        with_session([("incident_id", v::id("incidents").into())]),
        move |ctx, args| {
            let ai = service.clone();
            async move { enhance_incident(ctx, args, ai).await }
        },
    );
    r.mutation_untyped(
        "aiEnhancement:updateEnhancedNarrative",
        with_session([
            ("enhanced_narrative_id", v::id(narratives::TABLE).into()),
            ("user_edited_content", v::string().into()),
            ("phase", v::optional(phase_validator())),
        ]),
        update_enhanced,
    );
    r.internal_query_untyped(
        WRITTEN,
        with_session([("incident_id", v::id("incidents").into())]),
        written_phases,
    );
    r.internal_query_untyped(PREPARE, by_phase(), prepare);
    r.internal_mutation_untyped(
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

/// `aiEnhancement:writtenPhases` (internal): for the incident's creator, before submission (the
/// checks of `prepare`), the narrative's id and the phases that have text.
fn written_phases(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (_, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args, now)?;
    record::require_unlocked(&incident, "narrative")?;
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?;
    let phases = narrative.as_ref().map_or(Vec::new(), |n| {
        Phase::ALL
            .into_iter()
            .filter(|p| !n.phase(*p).trim().is_empty())
            .map(|p| Value::from(p.as_str()))
            .collect()
    });
    Ok(object([
        ("narrative_id", narrative.map(|n| Value::from(n.id))),
        ("phases", Some(Value::Array(phases))),
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
        .run_query_untyped(PREPARE, forward(&args, fields.clone()))
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
    ctx.run_mutation_untyped(STORE, forward(&args, fields))
        .await?;
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

/// `aiEnhancement:enhanceIncidentNarrative`: the reference's whole-incident form, `{incident_id}`
/// (the web app names it only in commented-out code). An alias of `enhanceNarrativePhase` run for
/// each phase that has text, in order, with the same checks (the incident's creator, before
/// submission). `{enhanced_narrative_id, enhanced_content, phases, correlation_id,
/// processing_time_ms, ai_model_used, success}`: `enhanced_narrative_id` is the narrative's id
/// (what `getEnhancedNarrative` gives as `_id`), `enhanced_content` the enhanced phases as
/// `**Before Event**: …` paragraphs, `phases` each phase's `enhanceNarrativePhase` result,
/// `ai_model_used` the last phase's, and `success` whether the AI answered for every phase.
async fn enhance_incident(ctx: ActionCtx, args: Object, ai: AiService) -> FnResult {
    let started = Instant::now();
    let mut fields = Object::new();
    fields.insert(
        "incident_id".into(),
        Value::from(text(&args, "incident_id")),
    );
    let found = ctx
        .run_query_untyped(WRITTEN, forward(&args, fields))
        .await?;
    let written: Vec<Phase> = found
        .get("phases")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.as_str().and_then(Phase::parse))
        .collect();
    if written.is_empty() {
        return Err(FunctionError::validation(
            "incident_id",
            "Incident narratives not found: write the narrative before enhancing it",
        ));
    }
    let mut results = Vec::new();
    let mut paragraphs = Vec::new();
    let mut success = true;
    let mut model = Value::Null;
    for phase in written {
        let mut call = args.clone();
        call.insert("phase".into(), Value::from(phase.as_str()));
        let result = enhance(ctx.clone(), call, ai.clone()).await?;
        let content = result.get("enhanced_content").and_then(Value::as_str);
        paragraphs.push(format!(
            "**{}**: {}",
            phase.label(),
            content.unwrap_or_default()
        ));
        success &= result.get("success").and_then(Value::as_bool) == Some(true);
        model = result.get("ai_model_used").cloned().unwrap_or(Value::Null);
        results.push(result);
    }
    Ok(object([
        ("enhanced_narrative_id", found.get("narrative_id").cloned()),
        (
            "enhanced_content",
            Some(Value::from(paragraphs.join("\n\n"))),
        ),
        ("phases", Some(Value::Array(results))),
        ("correlation_id", Some(Value::from(ctx.request_id.as_str()))),
        (
            "processing_time_ms",
            Some(Value::from(started.elapsed().as_millis() as f64)),
        ),
        ("ai_model_used", Some(model)),
        ("success", Some(Value::from(success))),
    ]))
}

/// `aiEnhancement:updateEnhancedNarrative`: the reference's edit of the enhanced text,
/// `{enhanced_narrative_id, user_edited_content}` (the web app names it only in commented-out
/// code). Enhanced text is kept per phase here, so `phase` says which one; then it stores the text
/// exactly as `enhanceNarrativePhase` stores the AI's (`aiEnhancement:storeEnhancement`: the
/// incident's creator, before submission). `{success, version}`.
fn update_enhanced(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        Permission::EditOwnIncidentCapture,
    )?;
    let scope = viewer.company_scope()?;
    let narrative = narratives::get(&mut ctx.db, &scope, text(&args, "enhanced_narrative_id"))?
        .ok_or_else(|| {
            FunctionError::field(
                ErrorCode::NotFound,
                "enhanced_narrative_id",
                "Enhanced narrative not found",
            )
        })?;
    let mut call = forward(&args, Object::new());
    let incident = narrative.doc.get("incident_id").cloned();
    call.insert("incident_id".into(), incident.unwrap_or(Value::Null));
    // Who may edit comes before what they sent, as everywhere.
    capture_editor(&mut ctx.db, ctx.auth, &call, now)?;
    let phase = opt_text(&args, "phase")
        .and_then(Phase::parse)
        .ok_or_else(|| {
            FunctionError::validation(
                "phase",
                "phase is required: the enhanced narrative is kept per phase (before_event, \
             during_event, end_event or post_event)",
            )
        })?;
    let content = text(&args, "user_edited_content").trim();
    if content.is_empty() {
        return Err(FunctionError::validation(
            "user_edited_content",
            "The enhanced narrative cannot be empty",
        ));
    }
    if content.chars().count() > narratives::MAX_PHASE_CHARS {
        return Err(FunctionError::validation(
            "user_edited_content",
            format!(
                "The enhanced narrative may be at most {} characters",
                narratives::MAX_PHASE_CHARS
            ),
        ));
    }
    call.insert("phase".into(), Value::from(phase.as_str()));
    call.insert("enhanced_content".into(), Value::from(content));
    let stored = store(ctx, call)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("version", stored.get("version").cloned()),
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
