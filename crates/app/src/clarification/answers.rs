//! Reading questions and answers, and answering: `getClarificationQuestions`,
//! `getClarificationAnswers` and `submitClarificationAnswer` (one answer per question, upserted,
//! with its length metrics).

use functions::{DbWriter, FnResult, FunctionError, MutationCtx, QueryCtx, Registry, Scope};
use store::Patch;
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{
    answer_to, capture_editor, incident_reader, phase_arg, phase_of_question, phase_validator,
    questions_with_answers, Answer, Question, ANSWERS, COMPLETE_ANSWER_CHARS, MAX_ANSWER_CHARS,
};
use crate::args::{object, text, with_session};
use crate::incidents::record;

pub fn register(r: &mut Registry) {
    let listing = || {
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("phase", v::optional(phase_validator())),
        ])
    };
    r.query_untyped(
        "aiClarification:getClarificationQuestions",
        listing(),
        get_questions,
    );
    r.query_untyped(
        "aiClarification:getClarificationAnswers",
        listing(),
        get_answers,
    );
    r.mutation_untyped(
        "aiClarification:submitClarificationAnswer",
        with_session([
            ("incident_id", v::id("incidents").into()),
            ("question_id", v::string().into()),
            ("answer_text", v::string().into()),
            ("phase", phase_validator().into()),
        ]),
        submit_answer,
    );
}

/// The length measures of an answer; complete beyond `COMPLETE_ANSWER_CHARS` characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

    pub fn value(&self) -> Value {
        object([
            (
                "character_count",
                Some(Value::from(self.character_count as f64)),
            ),
            ("word_count", Some(Value::from(self.word_count as f64))),
            ("is_complete", Some(Value::from(self.is_complete))),
        ])
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

/// `aiClarification:getClarificationQuestions`: the active questions (of a phase, or all) in
/// order, each with `answered`, `answer_text`, `answer_id` and the answer's `updated_at`.
fn get_questions(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args, now)?;
    let list = questions_with_answers(&mut ctx.db, &scope, &incident.id, phase_arg(&args))?
        .into_iter()
        .map(|(question, answer)| {
            let mut value = question.doc.to_value();
            if let Value::Object(fields) = &mut value {
                let given = answer.as_ref().filter(|a| a.is_given());
                fields.insert("answered".into(), Value::from(given.is_some()));
                fields.insert(
                    "answer_text".into(),
                    Value::from(answer.as_ref().map_or("", |a| a.text.as_str())),
                );
                fields.insert(
                    "answer_id".into(),
                    answer.as_ref().map_or(Value::Null, |a| Value::from(a.id)),
                );
                fields.insert(
                    "updated_at".into(),
                    answer
                        .as_ref()
                        .and_then(|a| a.doc.get("updated_at").cloned())
                        .unwrap_or(Value::Null),
                );
            }
            value
        })
        .collect();
    Ok(Value::Array(list))
}

/// `aiClarification:getClarificationAnswers`: the answers (of a phase, or all) in question order,
/// each with its `question_text` and `answered_at`.
fn get_answers(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args, now)?;
    let list = questions_with_answers(&mut ctx.db, &scope, &incident.id, phase_arg(&args))?
        .into_iter()
        .filter_map(|(question, answer)| answer.map(|a| (question, a)))
        .map(|(question, answer): (Question, Answer)| {
            let mut value = answer.doc.to_value();
            if let Value::Object(fields) = &mut value {
                fields.insert("question_text".into(), Value::from(question.text));
                if let Some(created) = answer.doc.get("created_at") {
                    fields.insert("answered_at".into(), created.clone());
                }
            }
            value
        })
        .collect();
    Ok(Value::Array(list))
}

/// `aiClarification:submitClarificationAnswer`: `{success, answer_id, metrics}`.
fn submit_answer(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args, now)?;
    record::require_unlocked(&incident, "clarification answers")?;
    let phase =
        phase_arg(&args).ok_or_else(|| FunctionError::validation("phase", "Unknown phase"))?;
    let question_id = text(&args, "question_id");
    if phase_of_question(question_id) != Some(phase) {
        return Err(FunctionError::validation(
            "question_id",
            format!(
                "Question {question_id} is not a question of the {} phase",
                phase.label()
            ),
        ));
    }
    let answer = text(&args, "answer_text");
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
    Ok(object([
        ("success", Some(Value::from(true))),
        ("answer_id", Some(Value::from(answer_id))),
        ("metrics", Some(metrics.value())),
    ]))
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
