//! `aiClarification:generateMockAnswers`: fictional answers to a phase's questions, written by the
//! AI (prompt `generate_mock_answers`) for demonstrations and tests. Needs `sample_data`, and like
//! any answer it goes into the caller's own capture.

use std::sync::Arc;
use std::time::Instant;

use functions::{ActionCtx, Auth, DbRead, FnResult, FunctionError, MutationCtx, QueryCtx};
use functions::{ErrorCode, Registry};
use serde_json::{json, Map, Value as Json};
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::answers::upsert;
use super::{
    active_question, active_questions, capture_editor, forward, phase_arg, phase_validator,
    MAX_ANSWER_CHARS,
};
use crate::ai_service::{AiCall, AiService, JsonCheck};
use crate::args::{object, text, with_session};
use crate::identity::{require_permission, Permission, Viewer};
use crate::incidents::record::{self, Incident};
use crate::narratives;

pub const PREPARE: &str = "aiClarification:prepareMockAnswers";
pub const STORE: &str = "aiClarification:storeMockAnswers";
pub const PROMPT: &str = "generate_mock_answers";

pub fn register(r: &mut Registry, ai: &AiService) {
    let service = ai.clone();
    let by_phase = || {
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phase", phase_validator().into()),
        ])
    };
    r.action_untyped(
        "aiClarification:generateMockAnswers",
        by_phase(),
        move |ctx, args| {
            let ai = service.clone();
            async move { generate(ctx, args, ai).await }
        },
    );
    r.internal_query_untyped(PREPARE, by_phase(), prepare);
    r.internal_mutation_untyped(
        STORE,
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phase", phase_validator().into()),
            (
                "answers",
                v::array(v::object([
                    ("question_id", v::string()),
                    ("answer", v::string()),
                ]))
                .into(),
            ),
        ]),
        store,
    );
}

/// `(question_id, answer)` pairs of a reply: `{"answers": [{question_id, answer}]}` (or the bare
/// list). Items without both are left out; a reply with none is unusable.
pub fn read_answers(reply: &Json) -> Result<Vec<(String, String)>, String> {
    let list = match reply {
        Json::Array(items) => items,
        Json::Object(fields) => fields
            .get("answers")
            .and_then(Json::as_array)
            .ok_or("expected an object with an \"answers\" list")?,
        _ => return Err("expected an object with an \"answers\" list".into()),
    };
    let pairs: Vec<(String, String)> = list
        .iter()
        .filter_map(|item| {
            let field = |name: &str| {
                item.get(name)
                    .and_then(Json::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            Some((
                field("question_id")?.to_string(),
                field("answer")?.to_string(),
            ))
        })
        .collect();
    if pairs.is_empty() {
        return Err("the reply holds no answers with a question_id".into());
    }
    Ok(pairs)
}

fn answers_check() -> JsonCheck {
    Arc::new(|reply: &Json| read_answers(reply).map(|_| ()))
}

/// The sample-data holder, their company and their own incident.
fn sample_editor(
    db: &mut impl DbRead,
    auth: &Auth,
    args: &Object,
    now: f64,
) -> FnResult<(Viewer, functions::Scope, Incident)> {
    require_permission(db, auth, now, Permission::SampleData)?;
    let (viewer, scope, incident) = capture_editor(db, auth, args, now)?;
    record::require_unlocked(&incident, "clarification answers")?;
    Ok((viewer, scope, incident))
}

/// `aiClarification:prepareMockAnswers` (internal): who asks and the prompt's variables.
fn prepare(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = sample_editor(&mut ctx.db, ctx.auth, &args, now)?;
    let phase =
        phase_arg(&args).ok_or_else(|| FunctionError::validation("phase", "Unknown phase"))?;
    let questions = active_questions(&mut ctx.db, &scope, &incident.id, Some(phase))?;
    if questions.is_empty() {
        return Err(FunctionError::validation(
            "phase",
            format!(
                "No questions found for {} phase. Please generate questions first.",
                phase.as_str()
            ),
        ));
    }
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?;
    let phase_text = narrative
        .as_ref()
        .map(|n| n.phase(phase).trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "No narrative was written for this part of the incident.".into());
    let list: Vec<Json> = questions
        .iter()
        .map(|q| json!({"question_id": q.question_id, "question": q.text}))
        .collect();
    let row = &incident.row;
    let variables = json!({
        "participant_name": row.participant_name,
        "reporter_name": row.reporter_name,
        "location": row.location,
        "phase": phase.as_str(),
        "phase_narrative": phase_text,
        "questions": Json::Array(list).to_string(),
    });
    Ok(object([
        ("user_id", Some(Value::from(viewer.user_id))),
        ("company_id", viewer.company_id.map(Value::from)),
        (
            "variables",
            Some(values::json::from_clean_json(&variables)?),
        ),
    ]))
}

/// `aiClarification:storeMockAnswers` (internal): upserts each answer to an active question of the
/// phase (others are left out); the stored ones as `{question_id, question_text, answer_text,
/// answer_id}`.
fn store(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = sample_editor(&mut ctx.db, ctx.auth, &args, now)?;
    let phase =
        phase_arg(&args).ok_or_else(|| FunctionError::validation("phase", "Unknown phase"))?;
    let mut stored = Vec::new();
    for item in args
        .get("answers")
        .and_then(Value::as_array)
        .unwrap_or_default()
    {
        let question_id = item
            .get("question_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let answer: String = item
            .get("answer")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(MAX_ANSWER_CHARS)
            .collect();
        let Some(question) = active_question(&mut ctx.db, &scope, &incident.id, question_id)?
            .filter(|q| q.phase == phase)
        else {
            continue;
        };
        let (answer_id, _) = upsert(
            &mut ctx.db,
            &scope,
            &incident.id,
            &question,
            &answer,
            &viewer.user_id,
            now,
        )?;
        stored.push(object([
            ("question_id", Some(Value::from(question_id))),
            ("question_text", Some(Value::from(question.text.as_str()))),
            ("answer_text", Some(Value::from(answer.trim()))),
            ("answer_id", Some(Value::from(answer_id))),
        ]));
    }
    Ok(Value::Array(stored))
}

/// `aiClarification:generateMockAnswers`: `{success, phase, generated_count, answers,
/// correlation_id, processing_time_ms, ai_model, provider, tokens_used, cost}`.
async fn generate(ctx: ActionCtx, args: Object, ai: AiService) -> FnResult {
    let started = Instant::now();
    let phase =
        phase_arg(&args).ok_or_else(|| FunctionError::validation("phase", "Unknown phase"))?;
    let mut fields = Object::new();
    fields.insert(
        "incident_id".into(),
        Value::from(text(&args, "incident_id")),
    );
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
    let variables: Map<String, Json> = match found.get("variables").map(values::json::to_clean_json)
    {
        Some(Json::Object(map)) => map,
        _ => return Err(FunctionError::internal("prepare gave no prompt variables")),
    };
    let call = AiCall::new(PROMPT, variables)
        .by(id("user_id"), id("company_id"))
        .about_incident(text(&args, "incident_id"))
        .checked(answers_check());
    let outcome = ai.generate(&ctx, call).await?;
    let answers = match &outcome.json {
        Some(json) => read_answers(json),
        None => ai::parse_json(&outcome.text).and_then(|json| read_answers(&json)),
    }
    .map_err(|why| {
        FunctionError::user(
            ErrorCode::Unavailable,
            format!(
                "The AI service could not answer ({}): {why}",
                ai::AiErrorCode::BadReply.as_str()
            ),
        )
    })?;
    let list = answers
        .iter()
        .map(|(q, a)| {
            object([
                ("question_id", Some(Value::from(q.as_str()))),
                ("answer", Some(Value::from(a.as_str()))),
            ])
        })
        .collect();
    fields.insert("answers".into(), Value::Array(list));
    let stored = ctx
        .run_mutation_untyped(STORE, forward(&args, fields))
        .await?;
    let count = stored.as_array().map_or(0, <[Value]>::len);
    Ok(object([
        ("success", Some(Value::from(count > 0))),
        ("phase", Some(Value::from(phase.as_str()))),
        ("generated_count", Some(Value::from(count as f64))),
        ("answers", Some(stored)),
        (
            "correlation_id",
            Some(Value::from(outcome.correlation_id.as_str())),
        ),
        (
            "processing_time_ms",
            Some(Value::from(started.elapsed().as_millis() as f64)),
        ),
        ("ai_model", Some(Value::from(outcome.model.as_str()))),
        ("provider", Some(Value::from(outcome.provider.as_str()))),
        (
            "tokens_used",
            Some(Value::from(f64::from(
                outcome.tokens_in.saturating_add(outcome.tokens_out),
            ))),
        ),
        ("cost", Some(Value::from(outcome.cost_usd))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_the_reply() {
        let reply = json!({"answers": [
            {"question_id": "before_event_q1", "answer": " Jo was there. "},
            {"question_id": "before_event_q2"},
            {"answer": "orphan"},
        ]});
        assert_eq!(
            read_answers(&reply).unwrap(),
            vec![("before_event_q1".to_string(), "Jo was there.".to_string())]
        );
        let bare = json!([{"question_id": "end_event_q1", "answer": "Calm."}]);
        assert_eq!(read_answers(&bare).unwrap().len(), 1);
        assert!(read_answers(&json!({"answers": []})).is_err());
        assert!(read_answers(&json!({"other": 1})).is_err());
    }
}
