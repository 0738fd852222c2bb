//! Clarification: the follow-up questions the AI asks about each phase of an incident narrative,
//! and the frontline worker's answers. This module owns the `clarification_questions` and
//! `clarification_answers` tables and the `aiClarification:*` functions.
//!
//! Questions are per incident and phase, numbered `<phase>_q<n>` from 1. Generating again on
//! purpose (`force_regenerate`) retires the phase's questions (kept, `is_active: false`) and
//! deletes their answers, so an old answer can never attach to a new question that reuses its id.
//! Answers are upserted per question.
//!
//! Who may do what: generating questions, answering them and filling in sample answers are part
//! of the capture, edited by the incident's creator only (and refused once it is submitted);
//! reading them is for whoever may read the incident. Another company's incident answers exactly
//! like a missing one.

mod answers;
mod generate;
mod mock;

use std::collections::BTreeMap;

use functions::{Auth, DbRead, FnResult, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::{Document, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Typed, Validator, Value};

use crate::ai_service::{AiCall, AiService};
use crate::identity::{require_permission, require_session, Permission, Viewer};
use crate::incidents::record::{self, Incident};
use crate::narratives::Phase;

pub const QUESTIONS: &str = "clarification_questions";
pub const ANSWERS: &str = "clarification_answers";
/// How many questions one phase gets.
pub const MIN_QUESTIONS: usize = 3;
pub const MAX_QUESTIONS: usize = 5;
/// Longest question text accepted from the AI.
pub const MAX_QUESTION_CHARS: usize = 1_000;
/// Longest answer a worker can give.
pub const MAX_ANSWER_CHARS: usize = 5_000;
/// An answer longer than this many characters counts as complete.
pub const COMPLETE_ANSWER_CHARS: usize = 10;

/// Every phase, as a validator.
pub fn phase_validator() -> Validator {
    Phase::validator()
}

pub fn tables() -> Vec<TableDef> {
    let questions = TableDef::new(QUESTIONS)
        .field("company_id", v::id("companies"))
        .field("incident_id", v::id("incidents"))
        .field("phase", phase_validator())
        // `<phase>_q<n>`, 1-based; stable within a generation, reused by the next one.
        .field("question_id", v::string())
        .field("question_text", v::string())
        .optional("purpose", v::string())
        .field("question_order", v::number())
        .field("is_active", v::boolean())
        .field("ai_model", v::string())
        .field("provider", v::string())
        .optional("prompt_version", v::string())
        .field("correlation_id", v::string())
        .field("created_at", v::number())
        .field("created_by", v::id("users"))
        .field("updated_at", v::number())
        .optional("retired_at", v::number())
        .index(
            "by_company_incident_phase",
            &[
                "company_id",
                "incident_id",
                "phase",
                "is_active",
                "question_order",
            ],
        )
        .index(
            "by_company_incident_question",
            &["company_id", "incident_id", "question_id", "is_active"],
        )
        .tenant("company_id");
    let answers = TableDef::new(ANSWERS)
        .field("company_id", v::id("companies"))
        .field("incident_id", v::id("incidents"))
        .field("question_id", v::string())
        .field("phase", phase_validator())
        .field("answer_text", v::string())
        .field("character_count", v::number())
        .field("word_count", v::number())
        .field("is_complete", v::boolean())
        .field("answered_by", v::id("users"))
        .field("created_at", v::number())
        .field("updated_at", v::number())
        .index(
            "by_company_incident_phase",
            &["company_id", "incident_id", "phase", "question_id"],
        )
        .index(
            "by_company_incident_question",
            &["company_id", "incident_id", "question_id"],
        )
        .tenant("company_id");
    vec![questions, answers]
}

/// A document of the questions table, as stored and as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "clarification_questions")]
pub struct QuestionDoc {
    #[serde(rename = "_id")]
    pub id: Id<QuestionDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    pub phase: Phase,
    pub question_id: String,
    pub question_text: String,
    pub purpose: Option<String>,
    pub question_order: f64,
    pub is_active: bool,
    pub ai_model: String,
    pub provider: String,
    pub prompt_version: Option<String>,
    pub correlation_id: String,
    pub created_at: f64,
    #[typed(id = "users")]
    pub created_by: DocumentId,
    pub updated_at: f64,
    pub retired_at: Option<f64>,
}

/// A document of the answers table, as stored and as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "clarification_answers")]
pub struct AnswerDoc {
    #[serde(rename = "_id")]
    pub id: Id<AnswerDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    pub question_id: String,
    pub phase: Phase,
    pub answer_text: String,
    pub character_count: f64,
    pub word_count: f64,
    pub is_complete: bool,
    #[typed(id = "users")]
    pub answered_by: DocumentId,
    pub created_at: f64,
    pub updated_at: f64,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![
        (QUESTIONS, QuestionDoc::validator()),
        (ANSWERS, AnswerDoc::validator()),
    ]
}

/// The arguments of the functions that name an incident and one of its phases.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct ByPhase {
    #[typed(id = "incidents")]
    pub incident_id: String,
    pub phase: Phase,
}

/// The short form of a question that generation returns.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct QuestionSummary {
    #[serde(rename = "_id")]
    pub id: Id<QuestionDoc>,
    pub question_id: String,
    pub question_text: String,
    pub purpose: Option<String>,
    pub question_order: f64,
    pub phase: Phase,
    pub is_active: bool,
    pub answered: bool,
}

/// Who asks for an AI call and the prompt's variables (all text), as an internal `prepare…`
/// query finds them for the action that calls the AI.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct AiRequest {
    #[typed(id = "users")]
    pub user_id: DocumentId,
    #[typed(id = "companies")]
    pub company_id: Option<DocumentId>,
    pub variables: BTreeMap<String, String>,
}

impl AiRequest {
    pub fn new(viewer: &Viewer, variables: BTreeMap<String, String>) -> AiRequest {
        AiRequest {
            user_id: viewer.user_id,
            company_id: viewer.company_id,
            variables,
        }
    }

    /// The call of prompt `name` on behalf of the caller, about `incident`.
    pub fn call(&self, name: impl Into<String>, incident: &str) -> AiCall {
        let variables = self
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        AiCall::new(name, variables)
            .by(Some(self.user_id), self.company_id)
            .about_incident(incident)
    }
}

pub fn register(r: &mut Registry, ai: &AiService) {
    generate::register(r, ai);
    answers::register(r);
    mock::register(r, ai);
}

/// The id of the `n`th (1-based) question of `phase`.
pub fn question_id(phase: Phase, n: usize) -> String {
    format!("{}_q{n}", phase.as_str())
}

/// The phase a well-formed question id belongs to.
pub fn phase_of_question(question_id: &str) -> Option<Phase> {
    Phase::ALL.into_iter().find(|p| {
        question_id
            .strip_prefix(p.as_str())
            .and_then(|rest| rest.strip_prefix("_q"))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 1)
    })
}

/// A stored clarification question.
#[derive(Clone, Debug)]
pub struct Question {
    pub id: DocumentId,
    pub question_id: String,
    pub phase: Phase,
    pub text: String,
    pub order: f64,
    pub doc: Document,
}

impl Question {
    fn from_doc(doc: Document) -> Option<Question> {
        let text = |f: &str| doc.get(f).and_then(Value::as_str).map(str::to_string);
        Some(Question {
            id: doc.id,
            question_id: text("question_id")?,
            phase: Phase::parse(&text("phase")?)?,
            text: text("question_text").unwrap_or_default(),
            order: doc
                .get("question_order")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            doc,
        })
    }

    /// The short form generation returns: `{_id, question_id, question_text, purpose?,
    /// question_order, phase, is_active, answered}`.
    pub fn summary(&self, answered: bool) -> QuestionSummary {
        QuestionSummary {
            id: self.id.into(),
            question_id: self.question_id.clone(),
            question_text: self.text.clone(),
            purpose: self
                .doc
                .get("purpose")
                .and_then(Value::as_str)
                .map(str::to_string),
            question_order: self.order,
            phase: self.phase,
            is_active: true,
            answered,
        }
    }

    /// The document as clients see it.
    pub fn row(&self) -> FnResult<QuestionDoc> {
        functions::row(&self.doc)
    }
}

/// A stored answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub id: DocumentId,
    pub question_id: String,
    pub phase: Phase,
    pub text: String,
    pub doc: Document,
}

impl Answer {
    fn from_doc(doc: Document) -> Option<Answer> {
        let text = |f: &str| doc.get(f).and_then(Value::as_str).map(str::to_string);
        Some(Answer {
            id: doc.id,
            question_id: text("question_id")?,
            phase: Phase::parse(&text("phase")?)?,
            text: text("answer_text").unwrap_or_default(),
            doc,
        })
    }

    /// The document as clients see it.
    pub fn row(&self) -> FnResult<AnswerDoc> {
        functions::row(&self.doc)
    }

    /// Whether the worker actually said something (a blank answer clears one).
    pub fn is_given(&self) -> bool {
        !self.text.trim().is_empty()
    }
}

/// The active questions of an incident, of one phase or all, in phase then question order.
pub fn active_questions(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
    phase: Option<Phase>,
) -> FnResult<Vec<Question>> {
    let id = incident.encode();
    let docs = db
        .read_scoped(scope)
        .query(QUESTIONS, "by_company_incident_phase", |q| match phase {
            Some(phase) => q
                .eq("incident_id", id)
                .eq("phase", phase.as_str())
                .eq("is_active", true),
            None => q.eq("incident_id", id),
        })?
        .filter(|d| d.get("is_active").and_then(Value::as_bool) == Some(true))
        .collect()?;
    let mut questions: Vec<Question> = docs.into_iter().filter_map(Question::from_doc).collect();
    questions.sort_by(|a, b| {
        phase_rank(a.phase)
            .cmp(&phase_rank(b.phase))
            .then(a.order.total_cmp(&b.order))
    });
    Ok(questions)
}

fn phase_rank(phase: Phase) -> usize {
    Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0)
}

/// The active question `question_id` of an incident, if there is one.
pub fn active_question(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
    question_id: &str,
) -> FnResult<Option<Question>> {
    let id = incident.encode();
    let doc = db
        .read_scoped(scope)
        .query(QUESTIONS, "by_company_incident_question", |q| {
            q.eq("incident_id", id)
                .eq("question_id", question_id)
                .eq("is_active", true)
        })?
        .first()?;
    Ok(doc.and_then(Question::from_doc))
}

/// The answers of an incident, of one phase or all.
pub fn answers_of(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
    phase: Option<Phase>,
) -> FnResult<Vec<Answer>> {
    let id = incident.encode();
    let docs = db
        .read_scoped(scope)
        .query(ANSWERS, "by_company_incident_phase", |q| match phase {
            Some(phase) => q.eq("incident_id", id).eq("phase", phase.as_str()),
            None => q.eq("incident_id", id),
        })?
        .collect()?;
    Ok(docs.into_iter().filter_map(Answer::from_doc).collect())
}

/// The answer to `question_id`, if one was given.
pub fn answer_to(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
    question_id: &str,
) -> FnResult<Option<Answer>> {
    let id = incident.encode();
    let doc = db
        .read_scoped(scope)
        .query(ANSWERS, "by_company_incident_question", |q| {
            q.eq("incident_id", id).eq("question_id", question_id)
        })?
        .first()?;
    Ok(doc.and_then(Answer::from_doc))
}

/// Each active question with its answer (if any), in order.
pub fn questions_with_answers(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
    phase: Option<Phase>,
) -> FnResult<Vec<(Question, Option<Answer>)>> {
    let questions = active_questions(db, scope, incident, phase)?;
    let mut answers = answers_of(db, scope, incident, phase)?;
    Ok(questions
        .into_iter()
        .map(|q| {
            let answer = answers
                .iter()
                .position(|a| a.question_id == q.question_id)
                .map(|i| answers.swap_remove(i));
            (q, answer)
        })
        .collect())
}

/// The answered questions of a phase as `(question, answer)` pairs, in question order.
pub fn answered_pairs(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
    phase: Phase,
) -> FnResult<Vec<(String, String)>> {
    Ok(questions_with_answers(db, scope, incident, Some(phase))?
        .into_iter()
        .filter_map(|(q, a)| a.filter(Answer::is_given).map(|a| (q.text, a.text)))
        .collect())
}

/// `Q: …\nA: …` blocks, the form the enhancement prompts take the answers in.
pub fn qa_text(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(q, a)| format!("Q: {}\nA: {}", q.trim(), a.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Whether the worker answered at least one active question (the checklist's
/// `clarifications_complete`).
pub fn any_answered(db: &mut impl DbRead, scope: &Scope, incident: &DocumentId) -> FnResult<bool> {
    Ok(questions_with_answers(db, scope, incident, None)?
        .iter()
        .any(|(_, a)| a.as_ref().is_some_and(Answer::is_given)))
}

/// How many active questions a phase has and how many of them are answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseCounts {
    pub questions: usize,
    pub answered: usize,
}

/// The counts of every phase, in `Phase::ALL` order (for the narrative statistics).
pub fn counts(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<[PhaseCounts; 4]> {
    let mut counts = [PhaseCounts::default(); 4];
    for (question, answer) in questions_with_answers(db, scope, incident, None)? {
        let entry = &mut counts[phase_rank(question.phase)];
        entry.questions += 1;
        entry.answered += usize::from(answer.as_ref().is_some_and(Answer::is_given));
    }
    Ok(counts)
}

/// The incident details every clarification and enhancement prompt is given.
pub fn prompt_context(incident: &Incident) -> BTreeMap<String, String> {
    let row = &incident.row;
    [
        ("participantName", &row.participant_name),
        ("reporterName", &row.reporter_name),
        ("location", &row.location),
        ("eventDateTime", &row.event_date_time),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.trim().to_string()))
    .collect()
}

/// The prompt variable holding a phase's text (`beforeEvent`, …).
pub fn phase_variable(phase: Phase) -> &'static str {
    match phase {
        Phase::BeforeEvent => "beforeEvent",
        Phase::DuringEvent => "duringEvent",
        Phase::EndEvent => "endEvent",
        Phase::PostEvent => "postEvent",
    }
}

/// The caller, their company and the incident whose capture they edit (its creator, with
/// `edit_own_incident_capture`); another company's incident is "not found".
pub fn capture_editor(
    db: &mut impl DbRead,
    auth: &Auth,
    incident_id: &str,
    now: f64,
) -> FnResult<(Viewer, Scope, Incident)> {
    let viewer = require_permission(db, auth, now, Permission::EditOwnIncidentCapture)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(db, &scope, incident_id)?;
    record::require_capture_editor(&viewer, &incident)?;
    Ok((viewer, scope, incident))
}

/// The caller, their company and the incident they may read (its creator, or anyone in the
/// company with `view_all_company_incidents`).
pub fn incident_reader(
    db: &mut impl DbRead,
    auth: &Auth,
    incident_id: &str,
    now: f64,
) -> FnResult<(Viewer, Scope, Incident)> {
    let viewer = require_session(db, auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(db, &scope, incident_id)?;
    record::require_view(&viewer, &incident)?;
    Ok((viewer, scope, incident))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_ids_name_their_phase() {
        assert_eq!(question_id(Phase::EndEvent, 2), "end_event_q2");
        assert_eq!(phase_of_question("end_event_q2"), Some(Phase::EndEvent));
        assert_eq!(phase_of_question("post_event_q12"), Some(Phase::PostEvent));
        assert_eq!(phase_of_question("post_event_q0"), None);
        assert_eq!(phase_of_question("post_event_qx"), None);
        assert_eq!(phase_of_question("later_q1"), None);
        assert_eq!(phase_of_question("before_event_q-1"), None);
    }

    #[test]
    fn qa_text_pairs_questions_with_answers() {
        let pairs = vec![
            ("Who was there? ".to_string(), " Jo.".to_string()),
            ("When?".to_string(), "At 2 pm.".to_string()),
        ];
        assert_eq!(
            qa_text(&pairs),
            "Q: Who was there?\nA: Jo.\n\nQ: When?\nA: At 2 pm."
        );
    }
}
