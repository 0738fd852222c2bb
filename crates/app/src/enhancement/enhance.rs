//! `aiEnhancement:enhanceNarrativePhase`: one phase's original text and its answered clarification
//! questions go to the prompt `enhance_narrative_<phase>`; the reply is stored in
//! `<phase>_extra`. When the AI cannot answer, a plain fallback (the original followed by the
//! answers as sentences) is stored instead and the result says `success: false`, so the worker
//! can go on and try again later.

use std::time::Instant;

use functions::{
    ActionCtx, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, QueryCtx, Registry,
};
use serde::{Deserialize, Serialize};
use values::{Id, Typed};

use crate::ai_service::AiService;
use crate::clarification::{
    answered_pairs, capture_editor, phase_variable, prompt_context, qa_text, AiRequest, ByPhase,
};
use crate::identity::{require_permission, Permission};
use crate::incidents::record;
use crate::narratives::handlers::ByIncident;
use crate::narratives::{self, NarrativeDoc, Phase};

pub const PREPARE: FunctionRef<ByPhase, Prepared> =
    FunctionRef::internal_query("aiEnhancement:prepareEnhancement");
pub const STORE: FunctionRef<StoreArgs, StoredVersion> =
    FunctionRef::internal_mutation("aiEnhancement:storeEnhancement");
pub const WRITTEN: FunctionRef<ByIncident, Written> =
    FunctionRef::internal_query("aiEnhancement:writtenPhases");
/// What `ai_model_used` says when the fallback text was stored.
pub const FALLBACK_MODEL: &str = "fallback";

pub fn register(r: &mut Registry, ai: &AiService) {
    let service = ai.clone();
    r.action("aiEnhancement:enhanceNarrativePhase", move |ctx, args| {
        let ai = service.clone();
        async move { enhance(ctx, args, ai).await }
    });
    let service = ai.clone();
    r.action(
        "aiEnhancement:enhanceIncidentNarrative",
        move |ctx, args| {
            let ai = service.clone();
            async move { enhance_incident(ctx, args, ai).await }
        },
    );
    r.mutation("aiEnhancement:updateEnhancedNarrative", update_enhanced);
    r.internal_query(WRITTEN, written_phases);
    r.internal_query(PREPARE, prepare);
    r.internal_mutation(STORE, store);
}

/// An answered clarification question.
#[derive(Clone, Serialize, Deserialize, Typed)]
pub struct Answered {
    question: String,
    answer: String,
}

/// For the incident's creator: who asks, the phase's original text, its answered questions and
/// the prompt's variables.
#[derive(Serialize, Deserialize, Typed)]
pub struct Prepared {
    #[serde(flatten)]
    request: AiRequest,
    original: String,
    pairs: Vec<Answered>,
}

/// The narrative's id and the phases that have text.
#[derive(Serialize, Deserialize, Typed)]
pub struct Written {
    narrative_id: Option<Id<NarrativeDoc>>,
    phases: Vec<Phase>,
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct StoreArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    phase: Phase,
    enhanced_content: String,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct StoredVersion {
    version: f64,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
struct UpdateArgs {
    #[typed(id = "incident_narratives")]
    enhanced_narrative_id: String,
    user_edited_content: String,
    phase: Option<Phase>,
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
fn prepare(ctx: &mut QueryCtx<'_>, args: ByPhase) -> FnResult<Prepared> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    record::require_unlocked(&incident, "narrative")?;
    let phase = args.phase;
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
    variables.insert(var.to_string(), original.clone());
    variables.insert(format!("{var}QA"), qa_text(&pairs));
    Ok(Prepared {
        request: AiRequest::new(&viewer, variables),
        original,
        pairs: pairs
            .into_iter()
            .map(|(question, answer)| Answered { question, answer })
            .collect(),
    })
}

/// `aiEnhancement:writtenPhases` (internal): for the incident's creator, before submission (the
/// checks of `prepare`), the narrative's id and the phases that have text.
fn written_phases(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<Written> {
    let now = ctx.now_ms();
    let (_, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    record::require_unlocked(&incident, "narrative")?;
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?;
    let phases = narrative.as_ref().map_or(Vec::new(), |n| {
        Phase::ALL
            .into_iter()
            .filter(|p| !n.phase(*p).trim().is_empty())
            .collect()
    });
    Ok(Written {
        narrative_id: narrative.map(|n| n.id.into()),
        phases,
    })
}

/// `aiEnhancement:storeEnhancement` (internal): writes `<phase>_extra` (refused once submitted);
/// the narrative's new version.
fn store(ctx: &mut MutationCtx<'_>, args: StoreArgs) -> FnResult<StoredVersion> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let phase = args.phase;
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
        (phase, args.enhanced_content.as_str()),
        &viewer.user_id,
        now,
    )?;
    Ok(StoredVersion { version })
}

/// One phase's enhancement.
#[derive(Serialize, Typed)]
struct Enhanced {
    phase: Phase,
    enhanced_content: String,
    original_content: String,
    clarification_count: usize,
    correlation_id: String,
    processing_time_ms: f64,
    ai_model_used: String,
    success: bool,
    error_code: Option<String>,
    error: Option<String>,
}

/// `aiEnhancement:enhanceNarrativePhase`: `{phase, enhanced_content, original_content,
/// clarification_count, correlation_id, processing_time_ms, ai_model_used, success}`, plus
/// `error_code` and `error` when the fallback was stored.
async fn enhance(ctx: ActionCtx, args: ByPhase, ai: AiService) -> FnResult<Enhanced> {
    let started = Instant::now();
    let phase = args.phase;
    let incident = args.incident_id.clone();
    let found = ctx.run_query(PREPARE, &args).await?;
    let original = found.original;
    let pairs: Vec<(String, String)> = found
        .pairs
        .into_iter()
        .map(|p| (p.question, p.answer))
        .collect();
    let call = found
        .request
        .call(format!("enhance_narrative_{}", phase.as_str()), &incident);
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
    let store_args = StoreArgs {
        incident_id: incident,
        phase,
        enhanced_content: content.clone(),
    };
    ctx.run_mutation(STORE, &store_args).await?;
    let (error_code, error) = failure.unzip();
    Ok(Enhanced {
        phase,
        enhanced_content: content,
        original_content: original,
        clarification_count: pairs.len(),
        correlation_id,
        processing_time_ms: started.elapsed().as_millis() as f64,
        ai_model_used: model,
        success: error.is_none(),
        error_code,
        error,
    })
}

#[derive(Serialize, Typed)]
struct EnhancedIncident {
    enhanced_narrative_id: Option<Id<NarrativeDoc>>,
    enhanced_content: String,
    phases: Vec<Enhanced>,
    correlation_id: String,
    processing_time_ms: f64,
    ai_model_used: String,
    success: bool,
}

/// `aiEnhancement:enhanceIncidentNarrative`: the reference's whole-incident form, `{incident_id}`
/// (the web app names it only in commented-out code). An alias of `enhanceNarrativePhase` run for
/// each phase that has text, in order, with the same checks (the incident's creator, before
/// submission). `{enhanced_narrative_id, enhanced_content, phases, correlation_id,
/// processing_time_ms, ai_model_used, success}`: `enhanced_narrative_id` is the narrative's id
/// (what `getEnhancedNarrative` gives as `_id`), `enhanced_content` the enhanced phases as
/// `**Before Event**: …` paragraphs, `phases` each phase's `enhanceNarrativePhase` result,
/// `ai_model_used` the last phase's, and `success` whether the AI answered for every phase.
async fn enhance_incident(
    ctx: ActionCtx,
    args: ByIncident,
    ai: AiService,
) -> FnResult<EnhancedIncident> {
    let started = Instant::now();
    let found = ctx.run_query(WRITTEN, &args).await?;
    if found.phases.is_empty() {
        return Err(FunctionError::validation(
            "incident_id",
            "Incident narratives not found: write the narrative before enhancing it",
        ));
    }
    let mut results = Vec::new();
    let mut paragraphs = Vec::new();
    let mut success = true;
    // Set by every phase; there is at least one.
    let mut model = String::new();
    for phase in found.phases {
        let call = ByPhase {
            incident_id: args.incident_id.clone(),
            phase,
        };
        let result = enhance(ctx.clone(), call, ai.clone()).await?;
        paragraphs.push(format!(
            "**{}**: {}",
            phase.label(),
            result.enhanced_content
        ));
        success &= result.success;
        model.clone_from(&result.ai_model_used);
        results.push(result);
    }
    Ok(EnhancedIncident {
        enhanced_narrative_id: found.narrative_id,
        enhanced_content: paragraphs.join("\n\n"),
        phases: results,
        correlation_id: ctx.request_id.as_str().to_string(),
        processing_time_ms: started.elapsed().as_millis() as f64,
        ai_model_used: model,
        success,
    })
}

#[derive(Serialize, Typed)]
struct Updated {
    success: bool,
    version: f64,
}

/// `aiEnhancement:updateEnhancedNarrative`: the reference's edit of the enhanced text,
/// `{enhanced_narrative_id, user_edited_content}` (the web app names it only in commented-out
/// code). Enhanced text is kept per phase here, so `phase` says which one; then it stores the text
/// exactly as `enhanceNarrativePhase` stores the AI's (`aiEnhancement:storeEnhancement`: the
/// incident's creator, before submission). `{success, version}`.
fn update_enhanced(ctx: &mut MutationCtx<'_>, args: UpdateArgs) -> FnResult<Updated> {
    let now = ctx.now_ms();
    let viewer = require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        Permission::EditOwnIncidentCapture,
    )?;
    let scope = viewer.company_scope()?;
    let narrative =
        narratives::get(&mut ctx.db, &scope, &args.enhanced_narrative_id)?.ok_or_else(|| {
            FunctionError::field(
                ErrorCode::NotFound,
                "enhanced_narrative_id",
                "Enhanced narrative not found",
            )
        })?;
    let incident_id = narrative.row()?.incident_id.encode();
    // Who may edit comes before what they sent, as everywhere.
    capture_editor(&mut ctx.db, ctx.auth, &incident_id, now)?;
    let phase = args.phase.ok_or_else(|| {
        FunctionError::validation(
            "phase",
            "phase is required: the enhanced narrative is kept per phase (before_event, \
             during_event, end_event or post_event)",
        )
    })?;
    let content = args.user_edited_content.trim();
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
    let call = StoreArgs {
        incident_id,
        phase,
        enhanced_content: content.to_string(),
    };
    let stored = store(ctx, call)?;
    Ok(Updated {
        success: true,
        version: stored.version,
    })
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
