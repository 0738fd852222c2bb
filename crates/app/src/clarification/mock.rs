//! `aiClarification:generateMockAnswers`: fictional answers to a phase's questions, written by the
//! AI (prompt `generate_mock_answers`) for demonstrations and tests. Needs `sample_data`, and like
//! any answer it goes into the caller's own capture.

use std::sync::Arc;
use std::time::Instant;

use functions::{ActionCtx, Auth, DbRead, FnResult, FunctionError, MutationCtx, QueryCtx};
use functions::{ErrorCode, FunctionRef, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use values::{Id, Typed};

use super::answers::upsert;
use super::{
    active_question, active_questions, capture_editor, AiRequest, AnswerDoc, ByPhase,
    MAX_ANSWER_CHARS,
};
use crate::ai_service::{AiService, JsonCheck};
use crate::identity::{require_permission, Permission, Viewer};
use crate::incidents::record::{self, Incident};
use crate::narratives::{self, Phase};

pub const PREPARE: FunctionRef<ByPhase, AiRequest> =
    FunctionRef::internal_query("aiClarification:prepareMockAnswers");
pub const STORE: FunctionRef<StoreArgs, Vec<StoredAnswer>> =
    FunctionRef::internal_mutation("aiClarification:storeMockAnswers");
pub const PROMPT: &str = "generate_mock_answers";

pub fn register(r: &mut Registry, ai: &AiService) {
    let service = ai.clone();
    r.action("aiClarification:generateMockAnswers", move |ctx, args| {
        let ai = service.clone();
        async move { generate(ctx, args, ai).await }
    });
    r.internal_query(PREPARE, prepare);
    r.internal_mutation(STORE, store);
}

/// An answer the AI wrote, for a question of the phase.
#[derive(Serialize, Deserialize, Typed)]
pub struct MockAnswer {
    question_id: String,
    answer: String,
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct StoreArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    phase: Phase,
    answers: Vec<MockAnswer>,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct StoredAnswer {
    question_id: String,
    question_text: String,
    answer_text: String,
    answer_id: Id<AnswerDoc>,
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
    incident_id: &str,
    now: f64,
) -> FnResult<(Viewer, functions::Scope, Incident)> {
    require_permission(db, auth, now, Permission::SampleData)?;
    let (viewer, scope, incident) = capture_editor(db, auth, incident_id, now)?;
    record::require_unlocked(&incident, "clarification answers")?;
    Ok((viewer, scope, incident))
}

/// `aiClarification:prepareMockAnswers` (internal): who asks and the prompt's variables.
fn prepare(ctx: &mut QueryCtx<'_>, args: ByPhase) -> FnResult<AiRequest> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = sample_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let phase = args.phase;
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
    let variables = [
        ("participant_name", row.participant_name.clone()),
        ("reporter_name", row.reporter_name.clone()),
        ("location", row.location.clone()),
        ("phase", phase.as_str().to_string()),
        ("phase_narrative", phase_text),
        ("questions", Json::Array(list).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(AiRequest::new(&viewer, variables))
}

/// `aiClarification:storeMockAnswers` (internal): upserts each answer to an active question of the
/// phase (others are left out); the stored ones as `{question_id, question_text, answer_text,
/// answer_id}`.
fn store(ctx: &mut MutationCtx<'_>, args: StoreArgs) -> FnResult<Vec<StoredAnswer>> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = sample_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let phase = args.phase;
    let mut stored = Vec::new();
    for item in &args.answers {
        let question_id = item.question_id.as_str();
        let answer: String = item.answer.chars().take(MAX_ANSWER_CHARS).collect();
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
        stored.push(StoredAnswer {
            question_id: question_id.to_string(),
            question_text: question.text.clone(),
            answer_text: answer.trim().to_string(),
            answer_id: answer_id.into(),
        });
    }
    Ok(stored)
}

#[derive(Serialize, Typed)]
struct Generated {
    success: bool,
    phase: Phase,
    generated_count: usize,
    answers: Vec<StoredAnswer>,
    correlation_id: String,
    processing_time_ms: f64,
    ai_model: String,
    provider: String,
    tokens_used: f64,
    cost: f64,
}

/// `aiClarification:generateMockAnswers`: `{success, phase, generated_count, answers,
/// correlation_id, processing_time_ms, ai_model, provider, tokens_used, cost}`.
async fn generate(ctx: ActionCtx, args: ByPhase, ai: AiService) -> FnResult<Generated> {
    let started = Instant::now();
    let phase = args.phase;
    let found = ctx.run_query(PREPARE, &args).await?;
    let call = found
        .call(PROMPT, &args.incident_id)
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
    let call = StoreArgs {
        incident_id: args.incident_id.clone(),
        phase,
        answers: answers
            .into_iter()
            .map(|(question_id, answer)| MockAnswer {
                question_id,
                answer,
            })
            .collect(),
    };
    let stored = ctx.run_mutation(STORE, &call).await?;
    let count = stored.len();
    Ok(Generated {
        success: count > 0,
        phase,
        generated_count: count,
        answers: stored,
        correlation_id: outcome.correlation_id,
        processing_time_ms: started.elapsed().as_millis() as f64,
        ai_model: outcome.model,
        provider: outcome.provider,
        tokens_used: f64::from(outcome.tokens_in.saturating_add(outcome.tokens_out)),
        cost: outcome.cost_usd,
    })
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
