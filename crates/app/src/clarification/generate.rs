//! Generating clarification questions through the AI service: for one phase
//! (`generateClarificationQuestions`) or for every written phase at once, in parallel
//! (`generateAllClarificationQuestions`). The actions read and write through two internal
//! functions: `prepareGeneration` (access, the incident's prompt variables, the questions already
//! there) and `storeQuestions` (retires the old questions and their answers, stores the new ones).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use functions::{
    ActionCtx, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, QueryCtx, Registry,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use store::Patch;
use values::{Object, Typed, Value};

use super::{
    active_questions, answers_of, capture_editor, phase_variable, prompt_context, question_id,
    questions_with_answers, AiRequest, Answer, Question, QuestionSummary, MAX_QUESTIONS,
    MAX_QUESTION_CHARS, MIN_QUESTIONS, QUESTIONS,
};
use crate::ai_service::{AiFailure, AiService, JsonCheck};
use crate::incidents::record::{self, Change};
use crate::narratives::{Phase, MAX_PHASE_CHARS};

pub const PREPARE: FunctionRef<PrepareArgs, Prepared> =
    FunctionRef::internal_query("aiClarification:prepareGeneration");
pub const STORE: FunctionRef<StoreArgs, Stored> =
    FunctionRef::internal_mutation("aiClarification:storeQuestions");

pub fn register(r: &mut Registry, ai: &AiService) {
    let service = ai.clone();
    r.action(
        "aiClarification:generateClarificationQuestions",
        move |ctx, args| {
            let ai = service.clone();
            async move { generate_one(ctx, args, ai).await }
        },
    );
    let service = ai.clone();
    r.action(
        "aiClarification:generateAllClarificationQuestions",
        move |ctx, args| {
            let ai = service.clone();
            async move { generate_all(ctx, args, ai).await }
        },
    );
    r.internal_query(PREPARE, prepare);
    r.internal_mutation(STORE, store);
}

#[derive(Deserialize, Typed)]
#[typed(session)]
struct GenerateOneArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    phase: Phase,
    narrative_content: String,
    force_regenerate: Option<bool>,
}

/// The four phases' text, as `generateAllClarificationQuestions` takes it.
#[derive(Deserialize, Typed)]
struct NarrativeText {
    before_event: String,
    during_event: String,
    end_event: String,
    post_event: String,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
struct GenerateAllArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    narrative: NarrativeText,
    force_regenerate: Option<bool>,
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct PrepareArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    phases: Vec<Phase>,
    force: bool,
}

/// What `prepareGeneration` found: who asks, the prompt variables, and the active questions of
/// each phase asked about (by phase name), as clients see them.
#[derive(Serialize, Deserialize, Typed)]
pub struct Prepared {
    #[serde(flatten)]
    request: AiRequest,
    existing: BTreeMap<String, Vec<QuestionSummary>>,
}

/// A question as the AI proposed it, on its way to `storeQuestions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
pub struct Proposed {
    pub question: String,
    pub purpose: Option<String>,
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct StoreArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    phase: Phase,
    questions: Vec<Proposed>,
    ai_model: String,
    provider: String,
    prompt_version: Option<String>,
    correlation_id: String,
    replace: bool,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct Stored {
    questions: Vec<QuestionSummary>,
    cached: bool,
}

// ---- the reply ----

/// The questions in a reply: a JSON array of `{question, purpose}` objects, or an object holding
/// that array (JSON mode makes some models wrap it, e.g. `{"questions": [...]}`). Fewer than
/// `MIN_QUESTIONS` makes the reply unusable; beyond `MAX_QUESTIONS` the first ones are kept.
pub fn read_questions(reply: &Json) -> Result<Vec<Proposed>, String> {
    let list = match reply {
        Json::Array(items) => items,
        Json::Object(fields) => {
            let arrays: Vec<&Vec<Json>> = fields.values().filter_map(Json::as_array).collect();
            match (
                fields.get("questions").and_then(Json::as_array),
                &arrays[..],
            ) {
                (Some(items), _) => items,
                (None, [only]) => *only,
                _ => return Err("expected a JSON array of questions".into()),
            }
        }
        _ => return Err("expected a JSON array of questions".into()),
    };
    let mut questions = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let field = |name: &str| item.get(name).and_then(Json::as_str).map(str::trim);
        let question = field("question")
            .or_else(|| field("question_text"))
            .filter(|q| !q.is_empty())
            .ok_or_else(|| format!("question {} has no \"question\" text", i + 1))?;
        if question.chars().count() > MAX_QUESTION_CHARS {
            return Err(format!(
                "question {} is longer than {MAX_QUESTION_CHARS} characters",
                i + 1
            ));
        }
        let purpose = field("purpose").filter(|p| !p.is_empty());
        questions.push(Proposed {
            question: question.to_string(),
            purpose: purpose.map(str::to_string),
        });
    }
    if questions.len() < MIN_QUESTIONS {
        return Err(format!(
            "expected {MIN_QUESTIONS} to {MAX_QUESTIONS} questions, got {}",
            questions.len()
        ));
    }
    questions.truncate(MAX_QUESTIONS);
    Ok(questions)
}

fn questions_check() -> JsonCheck {
    Arc::new(|reply: &Json| read_questions(reply).map(|_| ()))
}

// ---- the actions ----

/// What `prepareGeneration` found.
struct Plan {
    request: AiRequest,
    incident: String,
    /// The active questions of each phase asked about, as clients see them.
    existing: BTreeMap<String, Vec<QuestionSummary>>,
}

async fn plan(ctx: &ActionCtx, incident_id: &str, phases: &[Phase], force: bool) -> FnResult<Plan> {
    let args = PrepareArgs {
        incident_id: incident_id.to_string(),
        phases: phases.to_vec(),
        force,
    };
    let found = ctx.run_query(PREPARE, &args).await?;
    Ok(Plan {
        request: found.request,
        incident: incident_id.to_string(),
        existing: found.existing,
    })
}

/// Questions for one phase: the stored ones or newly generated ones.
struct Generated {
    questions: Vec<QuestionSummary>,
    cached: bool,
    correlation_id: String,
}

/// Why a phase got no questions: the stable code (`AI_UNAVAILABLE`, `PROMPT_NOT_FOUND`,
/// `CONFLICT`, …) and the error for the client.
struct Failure {
    code: String,
    error: FunctionError,
}

impl From<AiFailure> for Failure {
    fn from(f: AiFailure) -> Failure {
        Failure {
            code: f.code,
            error: f.error,
        }
    }
}

impl From<FunctionError> for Failure {
    fn from(error: FunctionError) -> Failure {
        Failure {
            code: error
                .code()
                .map_or("INTERNAL", ErrorCode::as_str)
                .to_string(),
            error,
        }
    }
}

async fn run_phase(
    ctx: &ActionCtx,
    ai: &AiService,
    plan: &Plan,
    (phase, narrative): (Phase, &str),
    force: bool,
) -> Result<Generated, Failure> {
    let existing = plan
        .existing
        .get(phase.as_str())
        .cloned()
        .unwrap_or_default();
    if !force && !existing.is_empty() {
        return Ok(Generated {
            questions: existing,
            cached: true,
            correlation_id: ctx.request_id.as_str().to_string(),
        });
    }
    let mut request = plan.request.clone();
    request
        .variables
        .insert(phase_variable(phase).to_string(), narrative.to_string());
    let call = request
        .call(
            format!("generate_clarification_questions_{}", phase.as_str()),
            &plan.incident,
        )
        .checked(questions_check());
    let outcome = ai.generate(ctx, call).await?;
    // A prompt an administrator switched to text output still has to answer in JSON.
    let proposed = match &outcome.json {
        Some(json) => read_questions(json),
        None => ai::parse_json(&outcome.text).and_then(|json| read_questions(&json)),
    }
    .map_err(|why| Failure {
        code: ai::AiErrorCode::BadReply.as_str().to_string(),
        error: FunctionError::user(
            ErrorCode::Unavailable,
            format!(
                "The AI service could not answer ({}): the reply was not a list of questions: {why}",
                ai::AiErrorCode::BadReply.as_str()
            ),
        ),
    })?;

    let args = StoreArgs {
        incident_id: plan.incident.clone(),
        phase,
        questions: proposed,
        ai_model: outcome.model.clone(),
        provider: outcome.provider.clone(),
        prompt_version: Some(outcome.prompt_version.clone()).filter(|v| !v.is_empty()),
        correlation_id: outcome.correlation_id.clone(),
        replace: force,
    };
    let stored = ctx.run_mutation(STORE, &args).await?;
    Ok(Generated {
        questions: stored.questions,
        cached: stored.cached,
        correlation_id: outcome.correlation_id,
    })
}

#[derive(Serialize, Typed)]
struct GeneratedOne {
    questions: Vec<QuestionSummary>,
    cached: bool,
    correlation_id: String,
    phase: Phase,
}

/// `aiClarification:generateClarificationQuestions`: `{questions, cached, correlation_id, phase}`.
/// An AI failure is an error carrying its code, never an empty list.
async fn generate_one(
    ctx: ActionCtx,
    args: GenerateOneArgs,
    ai: AiService,
) -> FnResult<GeneratedOne> {
    let phase = args.phase;
    let force = args.force_regenerate.unwrap_or(false);
    let plan = plan(&ctx, &args.incident_id, &[phase], force).await?;
    let narrative = args.narrative_content.trim();
    if narrative.is_empty() {
        return Err(FunctionError::validation(
            "narrative_content",
            format!(
                "Write the {} part of the narrative before asking for questions about it",
                phase.label()
            ),
        ));
    }
    if narrative.chars().count() > MAX_PHASE_CHARS {
        return Err(FunctionError::validation(
            "narrative_content",
            format!("The narrative must not exceed {MAX_PHASE_CHARS} characters"),
        ));
    }
    let generated = run_phase(&ctx, &ai, &plan, (phase, narrative), force)
        .await
        .map_err(|f| f.error)?;
    Ok(GeneratedOne {
        questions: generated.questions,
        cached: generated.cached,
        correlation_id: generated.correlation_id,
        phase,
    })
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_millis() as f64
}

/// One phase's part of `generateAllClarificationQuestions`: generated (`question_count`,
/// `cached`, `correlation_id`), skipped (`reason: "no_content"`) or failed (`reason`,
/// `error_code`).
#[derive(Serialize, Typed)]
struct PhaseResult {
    phase: Phase,
    success: bool,
    questions: Vec<QuestionSummary>,
    question_count: Option<usize>,
    cached: Option<bool>,
    correlation_id: Option<String>,
    reason: Option<String>,
    error_code: Option<String>,
    processing_time_ms: f64,
}

impl PhaseResult {
    fn new(phase: Phase, processing_time_ms: f64) -> PhaseResult {
        PhaseResult {
            phase,
            success: false,
            questions: Vec::new(),
            question_count: None,
            cached: None,
            correlation_id: None,
            reason: None,
            error_code: None,
            processing_time_ms,
        }
    }
}

#[derive(Serialize, Typed)]
struct GeneratedAll {
    success: bool,
    total_questions_generated: usize,
    successful_phases: Vec<Phase>,
    failed_phases: Vec<Phase>,
    skipped_phases: Vec<Phase>,
    phase_results: Vec<PhaseResult>,
    correlation_id: String,
    processing_time_ms: f64,
}

/// `aiClarification:generateAllClarificationQuestions`: every written phase at once, each with
/// its own result and timing; a phase that fails does not fail the others, and a blank phase is
/// skipped (`reason: "no_content"`).
async fn generate_all(
    ctx: ActionCtx,
    args: GenerateAllArgs,
    ai: AiService,
) -> FnResult<GeneratedAll> {
    let started = Instant::now();
    let force = args.force_regenerate.unwrap_or(false);
    let given = &args.narrative;
    let texts: Vec<(Phase, String)> = Phase::ALL
        .into_iter()
        .zip([
            &given.before_event,
            &given.during_event,
            &given.end_event,
            &given.post_event,
        ])
        .map(|(p, t)| (p, t.trim().to_string()))
        .collect();
    let written: Vec<Phase> = texts
        .iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(p, _)| *p)
        .collect();
    let plan = plan(&ctx, &args.incident_id, &written, force).await?;

    let runs = texts.iter().map(|(phase, content)| {
        let (ctx, ai, plan) = (&ctx, &ai, &plan);
        async move {
            let phase_started = Instant::now();
            if content.is_empty() {
                let mut skipped = PhaseResult::new(*phase, 0.0);
                skipped.reason = Some("no_content".into());
                return (Outcome::Skipped, skipped);
            }
            if content.chars().count() > MAX_PHASE_CHARS {
                let error = FunctionError::validation(
                    phase.as_str(),
                    format!("The narrative must not exceed {MAX_PHASE_CHARS} characters"),
                );
                return failed(*phase, error.into(), phase_started, ctx);
            }
            match run_phase(ctx, ai, plan, (*phase, content), force).await {
                Ok(generated) => {
                    let count = generated.questions.len();
                    let mut done = PhaseResult::new(*phase, elapsed_ms(phase_started));
                    done.success = true;
                    done.questions = generated.questions;
                    done.question_count = Some(count);
                    done.cached = Some(generated.cached);
                    done.correlation_id = Some(generated.correlation_id);
                    (Outcome::Generated(count), done)
                }
                Err(failure) => failed(*phase, failure, phase_started, ctx),
            }
        }
    });
    let results = futures::future::join_all(runs).await;

    let names = |wanted: fn(&Outcome) -> bool| -> Vec<Phase> {
        results
            .iter()
            .zip(Phase::ALL)
            .filter(|((outcome, _), _)| wanted(outcome))
            .map(|(_, phase)| phase)
            .collect()
    };
    let successful_phases = names(|o| matches!(o, Outcome::Generated(_)));
    let failed_phases = names(|o| matches!(o, Outcome::Failed));
    let skipped_phases = names(|o| matches!(o, Outcome::Skipped));
    let total: usize = results
        .iter()
        .map(|(o, _)| match o {
            Outcome::Generated(n) => *n,
            _ => 0,
        })
        .sum();
    let any_success = results
        .iter()
        .any(|(o, _)| matches!(o, Outcome::Generated(_)));
    Ok(GeneratedAll {
        success: any_success,
        total_questions_generated: total,
        successful_phases,
        failed_phases,
        skipped_phases,
        phase_results: results.into_iter().map(|(_, r)| r).collect(),
        correlation_id: ctx.request_id.as_str().to_string(),
        processing_time_ms: elapsed_ms(started),
    })
}

enum Outcome {
    Generated(usize),
    Failed,
    Skipped,
}

fn failed(
    phase: Phase,
    failure: Failure,
    started: Instant,
    ctx: &ActionCtx,
) -> (Outcome, PhaseResult) {
    let message = failure.error.client_message(ctx.request_id.as_str());
    tracing::warn!(request_id = %ctx.request_id, code = %failure.code, "clarification questions for a phase failed: {message}");
    let mut result = PhaseResult::new(phase, elapsed_ms(started));
    result.reason = Some(message);
    result.error_code = Some(failure.code);
    (Outcome::Failed, result)
}

// ---- the internal functions ----

/// `aiClarification:prepareGeneration` (internal): `{user_id, company_id?, variables,
/// existing: {<phase>: [question]}}` for the incident's creator. Refused for a submitted incident
/// when anything would have to be generated.
fn prepare(ctx: &mut QueryCtx<'_>, args: PrepareArgs) -> FnResult<Prepared> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let mut existing = BTreeMap::new();
    let mut must_generate = false;
    for phase in args.phases {
        let questions = questions_with_answers(&mut ctx.db, &scope, &incident.id, Some(phase))?;
        must_generate |= args.force || questions.is_empty();
        let list = questions
            .iter()
            .map(|(q, a)| q.summary(a.as_ref().is_some_and(Answer::is_given)))
            .collect();
        existing.insert(phase.as_str().to_string(), list);
    }
    if must_generate {
        record::require_unlocked(&incident, "clarification questions")?;
    }
    Ok(Prepared {
        request: AiRequest::new(&viewer, prompt_context(&incident)),
        existing,
    })
}

/// `aiClarification:storeQuestions` (internal): stores a phase's new questions as
/// `<phase>_q1…`; with `replace`, first retires the phase's questions and deletes their answers.
/// Without it, questions stored meanwhile by another request win (`cached: true`).
fn store(ctx: &mut MutationCtx<'_>, args: StoreArgs) -> FnResult<Stored> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    record::require_unlocked(&incident, "clarification questions")?;
    let phase = args.phase;
    let proposed = &args.questions;
    if !(MIN_QUESTIONS..=MAX_QUESTIONS).contains(&proposed.len()) {
        return Err(FunctionError::validation(
            "questions",
            format!("Expected {MIN_QUESTIONS} to {MAX_QUESTIONS} questions"),
        ));
    }
    let current = active_questions(&mut ctx.db, &scope, &incident.id, Some(phase))?;
    if !current.is_empty() && !args.replace {
        let kept = questions_with_answers(&mut ctx.db, &scope, &incident.id, Some(phase))?
            .iter()
            .map(|(q, a)| q.summary(a.as_ref().is_some_and(Answer::is_given)))
            .collect();
        return Ok(Stored {
            questions: kept,
            cached: true,
        });
    }
    for old in &current {
        let mut patch = Patch::new();
        patch.insert("is_active".into(), Some(Value::from(false)));
        patch.insert("retired_at".into(), Some(Value::from(now)));
        patch.insert("updated_at".into(), Some(Value::from(now)));
        ctx.db.scoped(&scope).patch(&old.id, patch)?;
    }
    // Every answer of the phase belonged to a question just retired; none may carry over to the
    // new question that reuses its id.
    for answer in answers_of(&mut ctx.db, &scope, &incident.id, Some(phase))? {
        ctx.db.scoped(&scope).delete(&answer.id)?;
    }

    let mut stored = Vec::new();
    for (i, item) in proposed.iter().enumerate() {
        let n = i + 1;
        let mut row = Object::new();
        row.insert("incident_id".into(), Value::from(incident.id));
        row.insert("phase".into(), Value::from(phase.as_str()));
        row.insert("question_id".into(), Value::from(question_id(phase, n)));
        row.insert("question_text".into(), Value::from(item.question.trim()));
        if let Some(purpose) = &item.purpose {
            row.insert("purpose".into(), Value::from(purpose.trim()));
        }
        row.insert("question_order".into(), Value::from(n as f64));
        row.insert("is_active".into(), Value::from(true));
        row.insert("ai_model".into(), Value::from(args.ai_model.as_str()));
        row.insert("provider".into(), Value::from(args.provider.as_str()));
        row.insert(
            "correlation_id".into(),
            Value::from(args.correlation_id.as_str()),
        );
        if let Some(version) = &args.prompt_version {
            row.insert("prompt_version".into(), Value::from(version.as_str()));
        }
        row.insert("created_at".into(), Value::from(now));
        row.insert("created_by".into(), Value::from(viewer.user_id));
        row.insert("updated_at".into(), Value::from(now));
        let id = ctx.db.scoped(&scope).insert(QUESTIONS, row)?;
        let doc = ctx
            .db
            .scoped(&scope)
            .get(&id)?
            .ok_or_else(|| FunctionError::internal("question vanished after insert"))?;
        let question = Question::from_doc(doc)
            .ok_or_else(|| FunctionError::internal("a stored question does not read back"))?;
        stored.push(question.summary(false));
    }
    if !incident.row.questions_generated {
        let mut change = Change::default();
        change.set("questions_generated", true);
        record::save(&mut ctx.db, &scope, &incident, change, &viewer.user_id, now)?;
    }
    Ok(Stored {
        questions: stored,
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(text: &str) -> Json {
        json!({"question": text, "purpose": "Why it matters."})
    }

    #[test]
    fn a_reply_needs_three_to_five_questions_with_text() {
        let three = json!([q("One?"), q("Two?"), q("Three?")]);
        let read = read_questions(&three).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].question, "One?");
        assert_eq!(read[0].purpose.as_deref(), Some("Why it matters."));

        assert!(read_questions(&json!([q("One?"), q("Two?")]))
            .unwrap_err()
            .contains("got 2"));
        assert!(read_questions(&json!([q("One?"), q(" "), q("Three?")]))
            .unwrap_err()
            .contains("question 2"));
        assert!(read_questions(&json!("three questions")).is_err());
        assert!(read_questions(&json!({"a": [q("1?")], "b": [q("2?")]})).is_err());

        let seven: Vec<Json> = (1..=7).map(|i| q(&format!("Q{i}?"))).collect();
        let read = read_questions(&Json::Array(seven)).unwrap();
        assert_eq!(read.len(), MAX_QUESTIONS);
        assert_eq!(read[4].question, "Q5?");
    }

    #[test]
    fn a_wrapped_list_is_accepted() {
        let wrapped = json!({"questions": [q("One?"), q("Two?"), {"question_text": "Three?"}]});
        let read = read_questions(&wrapped).unwrap();
        assert_eq!(read[2].question, "Three?");
        assert_eq!(read[2].purpose, None);
        let other_key = json!({"items": [q("One?"), q("Two?"), q("Three?")]});
        assert_eq!(read_questions(&other_key).unwrap().len(), 3);
    }
}
