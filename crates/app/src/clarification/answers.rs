//! Reading questions and answers, and answering: `getClarificationQuestions`,
//! `getClarificationAnswers` and `submitClarificationAnswer` (one answer per question, upserted,
//! with its length metrics).

use functions::{DbWriter, FnResult, FunctionError, MutationCtx, QueryCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::Patch;
use values::{DocumentId, Id, Nullable, Object, Typed, Value};

use super::{
    answer_to, capture_editor, incident_reader, phase_of_question, questions_with_answers,
    AnswerDoc, Question, QuestionDoc, ANSWERS, COMPLETE_ANSWER_CHARS, MAX_ANSWER_CHARS,
};
use crate::incidents::record;
use crate::narratives::Phase;

pub fn register(r: &mut Registry) {
    r.query("aiClarification:getClarificationQuestions", get_questions);
    r.query("aiClarification:getClarificationAnswers", get_answers);
    r.mutation("aiClarification:submitClarificationAnswer", submit_answer);
}

/// The arguments of the lists: an incident and, optionally, one phase.
#[derive(Deserialize, Typed)]
#[typed(session)]
struct ListArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    phase: Option<Phase>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
struct AnswerArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    question_id: String,
    answer_text: String,
    phase: Phase,
}

/// The length measures of an answer; complete beyond `COMPLETE_ANSWER_CHARS` characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Typed)]
pub struct Metrics {
    pub character_count: usize,
    pub word_count: usize,
    pub is_complete: bool,
}

impl Metrics {
    pub fn of(answer: &str) -> Metrics {
        let answer = answer.trim();
        let character_count = answer.chars().count();
        Metrics {
            character_count,
            word_count: answer.split_whitespace().count(),
            is_complete: character_count > COMPLETE_ANSWER_CHARS,
        }
    }
}

/// Stores `answer` as the answer to `question` (replacing an earlier one) on behalf of `by`.
pub fn upsert(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &DocumentId,
    question: &Question,
    answer: &str,
    by: &DocumentId,
    now: f64,
) -> FnResult<(DocumentId, Metrics)> {
    let answer = answer.trim();
    let metrics = Metrics::of(answer);
    let mut fields = Object::new();
    fields.insert("answer_text".into(), Value::from(answer));
    fields.insert(
        "character_count".into(),
        Value::from(metrics.character_count as f64),
    );
    fields.insert("word_count".into(), Value::from(metrics.word_count as f64));
    fields.insert("is_complete".into(), Value::from(metrics.is_complete));
    fields.insert("answered_by".into(), Value::from(*by));
    fields.insert("updated_at".into(), Value::from(now));
    if let Some(existing) = answer_to(db, scope, incident, &question.question_id)? {
        let patch: Patch = fields.into_iter().map(|(k, v)| (k, Some(v))).collect();
        db.scoped(scope).patch(&existing.id, patch)?;
        return Ok((existing.id, metrics));
    }
    fields.insert("incident_id".into(), Value::from(*incident));
    fields.insert(
        "question_id".into(),
        Value::from(question.question_id.as_str()),
    );
    fields.insert("phase".into(), Value::from(question.phase.as_str()));
    fields.insert("created_at".into(), Value::from(now));
    let id = db.scoped(scope).insert(ANSWERS, fields)?;
    Ok((id, metrics))
}

/// A question as the lists show it: the question's fields, with `updated_at` that of its answer
/// (null while unanswered).
#[derive(Serialize, Typed)]
struct ListedQuestion {
    #[serde(rename = "_id")]
    id: Id<QuestionDoc>,
    #[serde(rename = "_creationTime")]
    creation_time: f64,
    #[typed(id = "companies")]
    company_id: DocumentId,
    #[typed(id = "incidents")]
    incident_id: DocumentId,
    phase: Phase,
    question_id: String,
    question_text: String,
    purpose: Option<String>,
    question_order: f64,
    is_active: bool,
    ai_model: String,
    provider: String,
    prompt_version: Option<String>,
    correlation_id: String,
    created_at: f64,
    #[typed(id = "users")]
    created_by: DocumentId,
    retired_at: Option<f64>,
    answered: bool,
    answer_text: String,
    answer_id: Nullable<Id<AnswerDoc>>,
    updated_at: Nullable<f64>,
}

/// `aiClarification:getClarificationQuestions`: the active questions (of a phase, or all) in
/// order, each with `answered`, `answer_text`, `answer_id` and the answer's `updated_at`.
fn get_questions(ctx: &mut QueryCtx<'_>, args: ListArgs) -> FnResult<Vec<ListedQuestion>> {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    questions_with_answers(&mut ctx.db, &scope, &incident.id, args.phase)?
        .into_iter()
        .map(|(question, answer)| {
            let q = question.row()?;
            let answer = answer.map(|a| a.row()).transpose()?;
            let given = answer.as_ref().filter(|a| !a.answer_text.trim().is_empty());
            Ok(ListedQuestion {
                id: q.id,
                creation_time: q.creation_time,
                company_id: q.company_id,
                incident_id: q.incident_id,
                phase: q.phase,
                question_id: q.question_id,
                question_text: q.question_text,
                purpose: q.purpose,
                question_order: q.question_order,
                is_active: q.is_active,
                ai_model: q.ai_model,
                provider: q.provider,
                prompt_version: q.prompt_version,
                correlation_id: q.correlation_id,
                created_at: q.created_at,
                created_by: q.created_by,
                retired_at: q.retired_at,
                answered: given.is_some(),
                answer_text: answer
                    .as_ref()
                    .map_or(String::new(), |a| a.answer_text.clone()),
                answer_id: answer.as_ref().map(|a| a.id).into(),
                updated_at: answer.as_ref().map(|a| a.updated_at).into(),
            })
        })
        .collect()
}

/// An answer as the list shows it: with its question's text and when it was first given.
#[derive(Serialize, Typed)]
struct ListedAnswer {
    #[serde(flatten)]
    answer: AnswerDoc,
    question_text: String,
    answered_at: f64,
}

/// `aiClarification:getClarificationAnswers`: the answers (of a phase, or all) in question order,
/// each with its `question_text` and `answered_at`.
fn get_answers(ctx: &mut QueryCtx<'_>, args: ListArgs) -> FnResult<Vec<ListedAnswer>> {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    questions_with_answers(&mut ctx.db, &scope, &incident.id, args.phase)?
        .into_iter()
        .filter_map(|(question, answer)| answer.map(|a| (question, a)))
        .map(|(question, answer)| {
            let answer = answer.row()?;
            Ok(ListedAnswer {
                question_text: question.text,
                answered_at: answer.created_at,
                answer,
            })
        })
        .collect()
}

#[derive(Serialize, Typed)]
struct AnswerStored {
    success: bool,
    answer_id: Id<AnswerDoc>,
    metrics: Metrics,
}

/// `aiClarification:submitClarificationAnswer`: `{success, answer_id, metrics}`.
fn submit_answer(ctx: &mut MutationCtx<'_>, args: AnswerArgs) -> FnResult<AnswerStored> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    record::require_unlocked(&incident, "clarification answers")?;
    let phase = args.phase;
    let question_id = args.question_id.as_str();
    if phase_of_question(question_id) != Some(phase) {
        return Err(FunctionError::validation(
            "question_id",
            format!(
                "Question {question_id} is not a question of the {} phase",
                phase.label()
            ),
        ));
    }
    let answer = args.answer_text.as_str();
    if answer.chars().count() > MAX_ANSWER_CHARS {
        return Err(FunctionError::validation(
            "answer_text",
            format!("An answer must not exceed {MAX_ANSWER_CHARS} characters"),
        ));
    }
    let question = super::active_question(&mut ctx.db, &scope, &incident.id, question_id)?
        .ok_or_else(|| FunctionError::not_found("Clarification question not found"))?;
    let (answer_id, metrics) = upsert(
        &mut ctx.db,
        &scope,
        &incident.id,
        &question,
        answer,
        &viewer.user_id,
        now,
    )?;
    Ok(AnswerStored {
        success: true,
        answer_id: answer_id.into(),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_complete_beyond_ten_characters() {
        let ten = Metrics::of("  abcde fgh  ");
        assert_eq!(ten.character_count, 9);
        assert_eq!(ten.word_count, 2);
        assert!(!ten.is_complete);
        assert!(!Metrics::of("0123456789").is_complete);
        assert!(Metrics::of("0123456789a").is_complete);
        let words = Metrics::of("Jo was\nin the   kitchen.");
        assert_eq!(words.word_count, 5);
        // Characters, not bytes.
        assert_eq!(Metrics::of("café").character_count, 4);
    }
}
