//! The analysis stage: a team lead (anyone with `perform_analysis` in the incident's company)
//! takes a submitted incident, reviews the AI's contributing conditions (`conditions`), its
//! classifications (`classification`) and its reportable-incident screening (`screening`, with the
//! NDIS Commission notification clock and its reminders), and completes the analysis
//! (`workflow`). `read` serves the queue and the analysis page, `report` the JSON and Markdown
//! report. This module owns the four tables of `model`; it reaches incidents, narratives,
//! clarification answers, users and notifications through their modules' functions.
//!
//! Who may do what: `perform_analysis` in the company for everything, except reopening a completed
//! analysis (`company_configuration`); the incident's creator may read the completed analysis of
//! their own incident. Edits are made by the analyst the analysis is assigned to; another team lead
//! takes it over first (audited), never silently. Another company's incident answers exactly like
//! a missing one.

mod classification;
mod conditions;
pub mod deadline;
pub mod model;
mod read;
mod reply;
mod report;
mod screening;
pub mod workflow;

use std::collections::BTreeMap;

use functions::{Auth, DbRead, DbWriter, ErrorCode, FnResult, FunctionError, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::TableDef;
use values::{DocumentId, Typed, Validator};

use crate::ai_service::AiService;
use crate::clarification::{self, AiRequest};
use crate::identity::{require_permission, Permission, Viewer};
use crate::incidents::record::{self, Incident};
use crate::incidents::status::CaptureStatus;
use crate::narratives::{self, Phase};

pub use model::{
    AnalysisDoc, ClassificationDoc, Condition, ReportableCategory, ScreeningDoc, ANALYSES,
    CLASSIFICATIONS, REVISIONS, SCREENINGS,
};
pub use workflow::NOTIFY_HANDOFF;

pub fn tables() -> Vec<TableDef> {
    model::tables()
}

pub fn rows() -> Vec<(&'static str, Validator)> {
    model::rows()
}

pub fn register(r: &mut Registry, urls: &config::Urls, ai: &AiService) {
    let app_base = urls.app_base().to_string();
    workflow::register(r, &app_base);
    conditions::register(r, ai);
    classification::register(r, ai);
    screening::register(r, ai, &app_base);
    read::register(r);
    report::register(r);
}

/// The arguments of the functions that name one incident.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct ByIncident {
    #[typed(id = "incidents")]
    pub incident_id: String,
}

/// The caller, who holds `perform_analysis`, their company and the incident (in it).
pub(crate) fn analyst(
    db: &mut impl DbRead,
    auth: &Auth,
    incident_id: &str,
    now: f64,
) -> FnResult<(Viewer, Scope, Incident)> {
    let viewer = require_permission(db, auth, now, Permission::PerformAnalysis)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(db, &scope, incident_id)?;
    Ok((viewer, scope, incident))
}

/// Refuses an incident whose capture has not been submitted.
pub(crate) fn require_submitted(incident: &Incident) -> FnResult<()> {
    if incident.row.capture_status != CaptureStatus::Completed {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "capture_status",
            "The incident has not been submitted for analysis yet",
        ));
    }
    Ok(())
}

/// The analysis of `incident`, if started.
pub(crate) fn find_analysis(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<Option<AnalysisDoc>> {
    db.read_scoped(scope)
        .query(ANALYSES, "by_company_incident", |q| {
            q.eq("incident_id", incident.encode())
        })?
        .first()?
        .map(|doc| functions::row(&doc))
        .transpose()
}

/// The analysis of `incident`, which must have been started.
pub(crate) fn started(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<AnalysisDoc> {
    find_analysis(db, scope, incident)?.ok_or_else(|| {
        FunctionError::field(
            ErrorCode::Conflict,
            "incident_id",
            "The analysis of this incident has not been started (analysis:startAnalysis)",
        )
    })
}

/// Refuses a change to a completed analysis, and one by someone it is not assigned to.
pub(crate) fn require_editor(
    db: &mut impl DbRead,
    scope: &Scope,
    analysis: &AnalysisDoc,
    viewer: &Viewer,
) -> FnResult<()> {
    if analysis.row.status == model::AnalysisState::Completed {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "analysis_status",
            "The analysis is completed; a company administrator may reopen it",
        ));
    }
    if analysis.row.assigned_to != viewer.user_id {
        let name = crate::users::rows::contact_of(db, scope, &analysis.row.assigned_to)?
            .map_or_else(|| "another analyst".to_string(), |c| c.name);
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "assigned_to",
            format!(
                "This analysis is assigned to {name}; take it over (analysis:takeOverAnalysis) to change it"
            ),
        ));
    }
    Ok(())
}

/// Stores a new row of `table` in the scope's company.
pub(crate) fn insert<T: Serialize>(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    table: &str,
    row: &T,
) -> FnResult<DocumentId> {
    let fields = values::serde_bridge::to_value(row)?
        .into_object()
        .ok_or_else(|| FunctionError::internal(format!("a {table} row is an object")))?;
    db.scoped(scope).insert(table, fields)
}

/// Replaces the row `id` (absent optional fields are removed).
pub(crate) fn replace<T: Serialize>(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    id: &DocumentId,
    row: &T,
) -> FnResult<()> {
    let fields = values::serde_bridge::to_value(row)?
        .into_object()
        .ok_or_else(|| FunctionError::internal("a row is an object"))?;
    db.scoped(scope).replace(id, fields)
}

/// The text each phase of the narrative holds: the original and, where there is one, the
/// enhanced version. Evidence must quote one of them.
pub(crate) fn phase_texts(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<Vec<(Phase, Vec<String>)>> {
    let narrative = narratives::find(db, scope, incident)?;
    Ok(Phase::ALL
        .into_iter()
        .map(|phase| {
            let texts = narrative.as_ref().map_or(Vec::new(), |n| {
                std::iter::once(n.phase(phase).to_string())
                    .chain(n.enhanced(phase).map(str::to_string))
                    .collect()
            });
            (phase, texts)
        })
        .collect())
}

/// Text compared for quoting: words only, lower case, single spaces.
fn comparable(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether `quote` occurs in the text of `phase` (whitespace and case aside; quotation marks and
/// an ellipsis around it are allowed).
pub(crate) fn quote_occurs(texts: &[(Phase, Vec<String>)], phase: Phase, quote: &str) -> bool {
    let quote = quote
        .trim()
        .trim_matches(|c: char| matches!(c, '"' | '“' | '”' | '\'' | '…'))
        .trim_end_matches("...")
        .trim();
    let quote = comparable(quote);
    if quote.is_empty() {
        return false;
    }
    texts
        .iter()
        .filter(|(p, _)| *p == phase)
        .flat_map(|(_, t)| t.iter())
        .any(|t| comparable(t).contains(&quote))
}

/// The prompt variables of the analysis prompts: the whole capture record.
pub(crate) fn record_variables(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &Incident,
) -> FnResult<BTreeMap<String, String>> {
    let row = &incident.row;
    let mut vars: BTreeMap<String, String> = [
        ("participant_name", &row.participant_name),
        ("reporter_name", &row.reporter_name),
        ("location", &row.location),
        ("event_datetime", &row.event_date_time),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.trim().to_string()))
    .collect();
    let narrative = narratives::find(db, scope, &incident.id)?;
    for (phase, var) in [
        (Phase::BeforeEvent, "before_event"),
        (Phase::DuringEvent, "during_event"),
        (Phase::EndEvent, "end_of_event"),
        (Phase::PostEvent, "post_event_support"),
    ] {
        let (text, extra) = narrative.as_ref().map_or((String::new(), None), |n| {
            (n.phase(phase).trim().to_string(), n.enhanced(phase))
        });
        vars.insert(var.to_string(), text);
        if let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) {
            vars.insert(format!("{var}_extra"), extra.to_string());
        }
    }
    let answered: Vec<(String, String)> =
        clarification::questions_with_answers(db, scope, &incident.id, None)?
            .into_iter()
            .filter_map(|(q, a)| a.filter(|a| a.is_given()).map(|a| (q.text, a.text)))
            .collect();
    if !answered.is_empty() {
        vars.insert(
            "clarification_answers".to_string(),
            clarification::qa_text(&answered),
        );
    }
    Ok(vars)
}

/// What an AI action of this module needs from the database: who asks and the variables.
#[derive(Clone, Serialize, Deserialize, Typed)]
pub struct Prepared {
    pub request: AiRequest,
}

/// For an analysis AI action: the analyst, an incident whose analysis they may change, and the
/// prompt variables.
pub(crate) fn prepare_ai(
    db: &mut impl DbRead,
    auth: &Auth,
    incident_id: &str,
    now: f64,
) -> FnResult<(Viewer, Scope, Incident, AnalysisDoc, AiRequest)> {
    let (viewer, scope, incident) = analyst(db, auth, incident_id, now)?;
    let analysis = started(db, &scope, &incident.id)?;
    require_editor(db, &scope, &analysis, &viewer)?;
    let vars = record_variables(db, &scope, &incident)?;
    let request = AiRequest::new(&viewer, vars);
    Ok((viewer, scope, incident, analysis, request))
}

/// The web app's page of an incident's analysis.
pub fn link(incident: &DocumentId) -> String {
    format!("/analysis/{}", incident.encode())
}

/// Trims `text` and refuses it empty or longer than `max` characters (as `field`).
pub(crate) fn required_text(field: &str, text: &str, max: usize) -> FnResult<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FunctionError::validation(
            field,
            format!("{field} is required"),
        ));
    }
    if text.chars().count() > max {
        return Err(FunctionError::validation(
            field,
            format!("{field} may be at most {max} characters"),
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_must_occur_in_the_named_phase() {
        let texts = vec![
            (
                Phase::BeforeEvent,
                vec!["The TV was  loud.\nAlex changed the channel.".to_string()],
            ),
            (Phase::DuringEvent, vec!["Jordan threw a cup.".to_string()]),
        ];
        assert!(quote_occurs(&texts, Phase::BeforeEvent, "the tv was loud"));
        assert!(quote_occurs(
            &texts,
            Phase::BeforeEvent,
            "“Alex changed the channel…”"
        ));
        assert!(!quote_occurs(&texts, Phase::DuringEvent, "The TV was loud"));
        assert!(!quote_occurs(
            &texts,
            Phase::BeforeEvent,
            "The radio was loud"
        ));
        assert!(!quote_occurs(&texts, Phase::BeforeEvent, "  "));
        assert!(quote_occurs(&texts, Phase::DuringEvent, "threw a cup"));
    }
}
