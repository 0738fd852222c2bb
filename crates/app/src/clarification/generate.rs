//! Generating clarification questions through the AI service: for one phase
//! (`generateClarificationQuestions`) or for every written phase at once, in parallel
//! (`generateAllClarificationQuestions`). The actions read and write through two internal
//! functions: `prepareGeneration` (access, the incident's prompt variables, the questions already
//! there) and `storeQuestions` (retires the old questions and their answers, stores the new ones).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use functions::{ActionCtx, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use serde_json::{Map, Value as Json};
use store::Patch;
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{
    active_questions, answers_of, capture_editor, forward, phase_arg, phase_validator,
    phase_variable, prompt_context, question_id, questions_with_answers, Answer, Question,
    MAX_QUESTIONS, MAX_QUESTION_CHARS, MIN_QUESTIONS, QUESTIONS,
};
use crate::ai_service::{AiCall, AiFailure, AiService, JsonCheck};
use crate::args::{flag, object, text, with_session};
use crate::incidents::record::{self, Change};
use crate::narratives::{Phase, MAX_PHASE_CHARS};

pub const PREPARE: &str = "aiClarification:prepareGeneration";
pub const STORE: &str = "aiClarification:storeQuestions";

pub fn register(r: &mut Registry, ai: &AiService) {
    let service = ai.clone();
    r.action_untyped(
        "aiClarification:generateClarificationQuestions",
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phase", phase_validator().into()),
            ("narrative_content", v::string().into()),
            ("force_regenerate", v::optional(v::boolean())),
        ]),
        move |ctx, args| {
            let ai = service.clone();
            async move { generate_one(ctx, args, ai).await }
        },
    );
    let service = ai.clone();
    let narrative = v::object(Phase::ALL.map(|p| (p.as_str(), v::string())));
    r.action_untyped(
        "aiClarification:generateAllClarificationQuestions",
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("narrative", narrative.into()),
            ("force_regenerate", v::optional(v::boolean())),
        ]),
        move |ctx, args| {
            let ai = service.clone();
            async move { generate_all(ctx, args, ai).await }
        },
    );
    r.internal_query_untyped(
        PREPARE,
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phases", v::array(phase_validator()).into()),
            ("force", v::boolean().into()),
        ]),
        prepare,
    );
    r.internal_mutation_untyped(
        STORE,
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phase", phase_validator().into()),
            (
                "questions",
                v::array(v::object([
                    ("question", v::string().into()),
                    ("purpose", v::optional(v::string())),
                ]))
                .into(),
            ),
            ("ai_model", v::string().into()),
            ("provider", v::string().into()),
            ("prompt_version", v::optional(v::string())),
            ("correlation_id", v::string().into()),
            ("replace", v::boolean().into()),
        ]),
        store,
    );
}

// ---- the reply ----

/// A question as the AI proposed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposed {
    pub question: String,
    pub purpose: Option<String>,
}

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
    user: DocumentId,
    company: Option<DocumentId>,
    incident: String,
    variables: Map<String, Json>,
    /// The active questions of each phase asked about, as clients see them.
    existing: HashMap<Phase, Vec<Value>>,
}

async fn plan(ctx: &ActionCtx, args: &Object, phases: &[Phase], force: bool) -> FnResult<Plan> {
    let mut fields = Object::new();
    fields.insert("incident_id".into(), Value::from(text(args, "incident_id")));
    fields.insert(
        "phases".into(),
        Value::Array(phases.iter().map(|p| Value::from(p.as_str())).collect()),
    );
    fields.insert("force".into(), Value::from(force));
    let found = ctx
        .run_query_untyped(PREPARE, forward(args, fields))
        .await?;
    let id = |field: &str| {
        found
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| DocumentId::decode(s).ok())
    };
    let user = id("user_id").ok_or_else(|| FunctionError::internal("prepare gave no user"))?;
    let variables = match found.get("variables").map(values::json::to_clean_json) {
        Some(Json::Object(map)) => map,
        _ => return Err(FunctionError::internal("prepare gave no prompt variables")),
    };
    let existing = phases
        .iter()
        .map(|p| {
            let list = found
                .get("existing")
                .and_then(|e| e.get(p.as_str()))
                .and_then(Value::as_array)
                .map(<[Value]>::to_vec)
                .unwrap_or_default();
            (*p, list)
        })
        .collect();
    Ok(Plan {
        user,
        company: id("company_id"),
        incident: text(args, "incident_id").to_string(),
        variables,
        existing,
    })
}

/// Questions for one phase: the stored ones or newly generated ones.
struct Generated {
    questions: Vec<Value>,
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
    args: &Object,
    plan: &Plan,
    (phase, narrative): (Phase, &str),
    force: bool,
) -> Result<Generated, Failure> {
    let existing = plan.existing.get(&phase).cloned().unwrap_or_default();
    if !force && !existing.is_empty() {
        return Ok(Generated {
            questions: existing,
            cached: true,
            correlation_id: ctx.request_id.as_str().to_string(),
        });
    }
    let mut variables = plan.variables.clone();
    variables.insert(
        phase_variable(phase).to_string(),
        Json::String(narrative.to_string()),
    );
    let call = AiCall::new(
        format!("generate_clarification_questions_{}", phase.as_str()),
        variables,
    )
    .by(Some(plan.user), plan.company)
    .about_incident(plan.incident.clone())
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

    let mut fields = Object::new();
    fields.insert("incident_id".into(), Value::from(plan.incident.as_str()));
    fields.insert("phase".into(), Value::from(phase.as_str()));
    let items = proposed
        .iter()
        .map(|p| {
            object([
                ("question", Some(Value::from(p.question.as_str()))),
                ("purpose", p.purpose.as_deref().map(Value::from)),
            ])
        })
        .collect();
    fields.insert("questions".into(), Value::Array(items));
    fields.insert("ai_model".into(), Value::from(outcome.model.as_str()));
    fields.insert("provider".into(), Value::from(outcome.provider.as_str()));
    if !outcome.prompt_version.is_empty() {
        fields.insert(
            "prompt_version".into(),
            Value::from(outcome.prompt_version.as_str()),
        );
    }
    fields.insert(
        "correlation_id".into(),
        Value::from(outcome.correlation_id.as_str()),
    );
    fields.insert("replace".into(), Value::from(force));
    let stored = ctx
        .run_mutation_untyped(STORE, forward(args, fields))
        .await?;
    Ok(Generated {
        questions: stored
            .get("questions")
            .and_then(Value::as_array)
            .map(<[Value]>::to_vec)
            .unwrap_or_default(),
        cached: stored.get("cached").and_then(Value::as_bool) == Some(true),
        correlation_id: outcome.correlation_id,
    })
}

/// `aiClarification:generateClarificationQuestions`: `{questions, cached, correlation_id, phase}`.
/// An AI failure is an error carrying its code, never an empty list.
async fn generate_one(ctx: ActionCtx, args: Object, ai: AiService) -> FnResult {
    let phase =
        phase_arg(&args).ok_or_else(|| FunctionError::validation("phase", "Unknown phase"))?;
    let force = flag(&args, "force_regenerate");
    let plan = plan(&ctx, &args, &[phase], force).await?;
    let narrative = text(&args, "narrative_content").trim();
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
    let generated = run_phase(&ctx, &ai, &args, &plan, (phase, narrative), force)
        .await
        .map_err(|f| f.error)?;
    Ok(object([
        ("questions", Some(Value::Array(generated.questions))),
        ("cached", Some(Value::from(generated.cached))),
        (
            "correlation_id",
            Some(Value::from(generated.correlation_id.as_str())),
        ),
        ("phase", Some(Value::from(phase.as_str()))),
    ]))
}

fn elapsed_ms(since: Instant) -> Value {
    Value::from(since.elapsed().as_millis() as f64)
}

/// `aiClarification:generateAllClarificationQuestions`: every written phase at once, each with
/// its own result and timing; a phase that fails does not fail the others, and a blank phase is
/// skipped (`reason: "no_content"`).
async fn generate_all(ctx: ActionCtx, args: Object, ai: AiService) -> FnResult {
    let started = Instant::now();
    let force = flag(&args, "force_regenerate");
    let narrative = |phase: Phase| -> String {
        args.get("narrative")
            .and_then(|n| n.get(phase.as_str()))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let texts: Vec<(Phase, String)> = Phase::ALL.map(|p| (p, narrative(p))).into();
    let written: Vec<Phase> = texts
        .iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(p, _)| *p)
        .collect();
    let plan = plan(&ctx, &args, &written, force).await?;

    let runs = texts.iter().map(|(phase, content)| {
        let (ctx, ai, args, plan) = (&ctx, &ai, &args, &plan);
        async move {
            let phase_started = Instant::now();
            let name = Some(Value::from(phase.as_str()));
            if content.is_empty() {
                return (
                    Outcome::Skipped,
                    object([
                        ("phase", name),
                        ("success", Some(Value::from(false))),
                        ("questions", Some(Value::Array(Vec::new()))),
                        ("reason", Some(Value::from("no_content"))),
                        ("processing_time_ms", Some(Value::from(0.0))),
                    ]),
                );
            }
            if content.chars().count() > MAX_PHASE_CHARS {
                let error = FunctionError::validation(
                    phase.as_str(),
                    format!("The narrative must not exceed {MAX_PHASE_CHARS} characters"),
                );
                return failed(name, error.into(), phase_started, ctx);
            }
            match run_phase(ctx, ai, args, plan, (*phase, content), force).await {
                Ok(generated) => {
                    let count = generated.questions.len();
                    (
                        Outcome::Generated(count),
                        object([
                            ("phase", name),
                            ("success", Some(Value::from(true))),
                            ("questions", Some(Value::Array(generated.questions))),
                            ("question_count", Some(Value::from(count as f64))),
                            ("cached", Some(Value::from(generated.cached))),
                            (
                                "correlation_id",
                                Some(Value::from(generated.correlation_id.as_str())),
                            ),
                            ("processing_time_ms", Some(elapsed_ms(phase_started))),
                        ]),
                    )
                }
                Err(failure) => failed(name, failure, phase_started, ctx),
            }
        }
    });
    let results = futures::future::join_all(runs).await;

    let names = |wanted: fn(&Outcome) -> bool| -> Value {
        Value::Array(
            results
                .iter()
                .zip(Phase::ALL)
                .filter(|((outcome, _), _)| wanted(outcome))
                .map(|(_, phase)| Value::from(phase.as_str()))
                .collect(),
        )
    };
    let successful = names(|o| matches!(o, Outcome::Generated(_)));
    let failed_phases = names(|o| matches!(o, Outcome::Failed));
    let skipped = names(|o| matches!(o, Outcome::Skipped));
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
    Ok(object([
        ("success", Some(Value::from(any_success))),
        ("total_questions_generated", Some(Value::from(total as f64))),
        ("successful_phases", Some(successful)),
        ("failed_phases", Some(failed_phases)),
        ("skipped_phases", Some(skipped)),
        (
            "phase_results",
            Some(Value::Array(results.into_iter().map(|(_, v)| v).collect())),
        ),
        ("correlation_id", Some(Value::from(ctx.request_id.as_str()))),
        ("processing_time_ms", Some(elapsed_ms(started))),
    ]))
}

enum Outcome {
    Generated(usize),
    Failed,
    Skipped,
}

fn failed(
    name: Option<Value>,
    failure: Failure,
    started: Instant,
    ctx: &ActionCtx,
) -> (Outcome, Value) {
    let message = failure.error.client_message(ctx.request_id.as_str());
    tracing::warn!(request_id = %ctx.request_id, code = %failure.code, "clarification questions for a phase failed: {message}");
    (
        Outcome::Failed,
        object([
            ("phase", name),
            ("success", Some(Value::from(false))),
            ("questions", Some(Value::Array(Vec::new()))),
            ("reason", Some(Value::from(message))),
            ("error_code", Some(Value::from(failure.code))),
            ("processing_time_ms", Some(elapsed_ms(started))),
        ]),
    )
}

// ---- the internal functions ----

/// `aiClarification:prepareGeneration` (internal): `{user_id, company_id?, variables,
/// existing: {<phase>: [question]}}` for the incident's creator. Refused for a submitted incident
/// when anything would have to be generated.
fn prepare(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args, now)?;
    let force = flag(&args, "force");
    let phases: Vec<Phase> = args
        .get("phases")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.as_str().and_then(Phase::parse))
        .collect();
    let mut existing = Object::new();
    let mut must_generate = false;
    for phase in phases {
        let questions = questions_with_answers(&mut ctx.db, &scope, &incident.id, Some(phase))?;
        must_generate |= force || questions.is_empty();
        let list = questions
            .iter()
            .map(|(q, a)| q.summary(a.as_ref().is_some_and(Answer::is_given)))
            .collect();
        existing.insert(phase.as_str().into(), Value::Array(list));
    }
    if must_generate {
        record::require_unlocked(&incident, "clarification questions")?;
    }
    let variables = values::json::from_clean_json(&Json::Object(prompt_context(&incident)))?;
    Ok(object([
        ("user_id", Some(Value::from(viewer.user_id))),
        ("company_id", viewer.company_id.map(Value::from)),
        ("variables", Some(variables)),
        ("existing", Some(Value::Object(existing))),
    ]))
}

/// `aiClarification:storeQuestions` (internal): stores a phase's new questions as
/// `<phase>_q1…`; with `replace`, first retires the phase's questions and deletes their answers.
/// Without it, questions stored meanwhile by another request win (`cached: true`).
fn store(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args, now)?;
    record::require_unlocked(&incident, "clarification questions")?;
    let phase =
        phase_arg(&args).ok_or_else(|| FunctionError::validation("phase", "Unknown phase"))?;
    let proposed: Vec<Object> = args
        .get("questions")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|q| q.as_object().cloned())
        .collect();
    if !(MIN_QUESTIONS..=MAX_QUESTIONS).contains(&proposed.len()) {
        return Err(FunctionError::validation(
            "questions",
            format!("Expected {MIN_QUESTIONS} to {MAX_QUESTIONS} questions"),
        ));
    }
    let current = active_questions(&mut ctx.db, &scope, &incident.id, Some(phase))?;
    if !current.is_empty() && !flag(&args, "replace") {
        let kept = questions_with_answers(&mut ctx.db, &scope, &incident.id, Some(phase))?
            .iter()
            .map(|(q, a)| q.summary(a.as_ref().is_some_and(Answer::is_given)))
            .collect();
        return Ok(object([
            ("questions", Some(Value::Array(kept))),
            ("cached", Some(Value::from(true))),
        ]));
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
        let question = item
            .get("question")
            .and_then(Value::as_str)
            .unwrap_or_default();
        row.insert("question_text".into(), Value::from(question.trim()));
        if let Some(purpose) = item.get("purpose").and_then(Value::as_str) {
            row.insert("purpose".into(), Value::from(purpose.trim()));
        }
        row.insert("question_order".into(), Value::from(n as f64));
        row.insert("is_active".into(), Value::from(true));
        for field in ["ai_model", "provider", "correlation_id"] {
            row.insert(field.into(), Value::from(text(&args, field)));
        }
        if let Some(version) = args.get("prompt_version") {
            row.insert("prompt_version".into(), version.clone());
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
    Ok(object([
        ("questions", Some(Value::Array(stored))),
        ("cached", Some(Value::from(false))),
    ]))
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
