//! What an incident report says: the sections the web app offers, filled from the incident, its
//! participant, narrative and clarification answers. Layout is `render`'s business.

use functions::{FnResult, QueryCtx};
use serde::{Deserialize, Serialize};
use store::Document;
use values::{Typed, Value};

use crate::clarification::{ANSWERS, QUESTIONS};
use crate::identity::require_session;
use crate::incidents::record;
use crate::narratives::{self, Phase};

/// The section keys of `generateIncidentPDF`, in report order.
pub const SECTIONS: [&str; 6] = [
    "basic_information",
    "participant_details",
    "incident_narratives",
    "enhanced_narrative",
    "clarification_qa",
    "metadata",
];

/// A report ready to lay out.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct Report {
    pub company_id: String,
    pub company_name: String,
    pub incident_id: String,
    pub participant_name: String,
    /// The section keys that were asked for and known, in report order.
    pub sections: Vec<String>,
    pub parts: Vec<Section>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// One thing on the page.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct Block {
    /// A bold line before `text` (a field's label, a phase's name, a question).
    pub label: Option<String>,
    pub text: String,
}

fn field(label: &str, text: impl Into<String>) -> Block {
    Block {
        label: Some(label.to_string()),
        text: text.into(),
    }
}

fn text_of(doc: &Document, name: &str) -> String {
    doc.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `2026-12-05 13:40 UTC`.
pub fn format_ms(ms: f64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn or_dash(text: &str) -> String {
    if text.trim().is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

/// Whole years from `YYYY-MM-DD` to `now`.
fn age(date_of_birth: &str, now: f64) -> Option<i64> {
    let (y, m, d) = crate::participants::fields::parse_date(date_of_birth)?;
    let (ny, nm, nd) = crate::participants::fields::civil_from_ms(now);
    Some(ny - y - i64::from((nm, nd) < (m, d)))
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct ReportArgs {
    #[typed(id = "incidents")]
    pub incident_id: String,
    pub sections: Vec<String>,
}

/// The report of an incident for whoever may read it (as `incidents:getById`).
pub fn report(ctx: &mut QueryCtx<'_>, args: ReportArgs) -> FnResult<Report> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, &args.incident_id)?;
    record::require_view(&viewer, &incident)?;
    let row = &incident.row;
    let company = ctx.db.scoped(&scope).get(&row.company_id)?;
    let company_name = company.map(|c| text_of(&c, "name")).unwrap_or_default();
    let chosen: Vec<String> = SECTIONS
        .iter()
        .filter(|key| args.sections.iter().any(|s| s == *key))
        .map(|key| key.to_string())
        .collect();
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?
        .map(|n| n.row())
        .transpose()?;
    let mut parts = Vec::new();
    for key in &chosen {
        let section = match key.as_str() {
            "basic_information" => Some(Section {
                title: "Incident overview".into(),
                blocks: vec![
                    field("Incident ID", incident.id.encode()),
                    field("Participant", or_dash(&row.participant_name)),
                    field("Date and time of event", or_dash(&row.event_date_time)),
                    field("Location", or_dash(&row.location)),
                    field("Reported by", or_dash(&row.reporter_name)),
                    field("Recorded", format_ms(row.created_at)),
                    field("Capture status", row.capture_status.label()),
                    field("Analysis status", row.analysis_status.label()),
                    field("Overall status", row.overall_status.label()),
                    field(
                        "Clarification questions generated",
                        if row.questions_generated { "Yes" } else { "No" },
                    ),
                    field(
                        "Narrative enhanced",
                        if row.narrative_enhanced { "Yes" } else { "No" },
                    ),
                ],
            }),
            // Skipped when the incident names no participant record (a name typed in only).
            "participant_details" => match &row.participant_id {
                Some(id) => ctx
                    .db
                    .scoped(&scope)
                    .get(id)?
                    .map(|p| participant_section(&p, now)),
                None => None,
            },
            "incident_narratives" => Some(Section {
                title: "Incident narrative".into(),
                blocks: Phase::ALL
                    .iter()
                    .map(|phase| {
                        let text = narrative
                            .as_ref()
                            .map(|n| phase_text(n, *phase).to_string())
                            .unwrap_or_default();
                        field(phase.label(), or_dash(&text))
                    })
                    .collect(),
            }),
            "enhanced_narrative" => Some(Section {
                title: "Enhanced narrative".into(),
                blocks: Phase::ALL
                    .iter()
                    .map(|phase| {
                        let text = narrative
                            .as_ref()
                            .and_then(|n| enhanced_text(n, *phase))
                            .unwrap_or("Not enhanced yet");
                        field(phase.label(), text)
                    })
                    .collect(),
            }),
            "clarification_qa" => Some(Section {
                title: "Clarification questions and answers".into(),
                blocks: questions_and_answers(ctx, &scope, &incident.id)?,
            }),
            "metadata" => Some(Section {
                title: "Processing information".into(),
                blocks: match &narrative {
                    Some(n) => vec![
                        field("Narrative created", format_ms(n.created_at)),
                        field("Narrative last updated", format_ms(n.updated_at)),
                        field("Narrative version", format!("{}", n.version)),
                    ],
                    None => vec![field("Narrative", "Not started")],
                },
            }),
            _ => None,
        };
        parts.extend(section);
    }
    Ok(Report {
        company_id: row.company_id.encode(),
        company_name,
        incident_id: incident.id.encode(),
        participant_name: row.participant_name.clone(),
        sections: chosen,
        parts,
    })
}

fn participant_section(p: &Document, now: f64) -> Section {
    let born = text_of(p, "date_of_birth");
    let born = match age(&born, now) {
        Some(age) => format!("{born} (age {age})"),
        None => or_dash(&born),
    };
    Section {
        title: "Participant details".into(),
        blocks: vec![
            field(
                "Name",
                format!("{} {}", text_of(p, "first_name"), text_of(p, "last_name")),
            ),
            field("Date of birth", born),
            field("NDIS number", or_dash(&text_of(p, "ndis_number"))),
            field("Support level", or_dash(&text_of(p, "support_level"))),
            field("Phone", or_dash(&text_of(p, "contact_phone"))),
            field(
                "Emergency contact",
                or_dash(&text_of(p, "emergency_contact")),
            ),
            field("Care notes", or_dash(&text_of(p, "care_notes"))),
        ],
    }
}

fn phase_text(n: &narratives::NarrativeDoc, phase: Phase) -> &str {
    match phase {
        Phase::BeforeEvent => &n.before_event,
        Phase::DuringEvent => &n.during_event,
        Phase::EndEvent => &n.end_event,
        Phase::PostEvent => &n.post_event,
    }
}

fn enhanced_text(n: &narratives::NarrativeDoc, phase: Phase) -> Option<&str> {
    match phase {
        Phase::BeforeEvent => n.before_event_extra.as_deref(),
        Phase::DuringEvent => n.during_event_extra.as_deref(),
        Phase::EndEvent => n.end_event_extra.as_deref(),
        Phase::PostEvent => n.post_event_extra.as_deref(),
    }
    .filter(|t| !t.trim().is_empty())
}

/// The current questions in phase order, each with its answer.
fn questions_and_answers(
    ctx: &mut QueryCtx<'_>,
    scope: &functions::Scope,
    incident: &values::DocumentId,
) -> FnResult<Vec<Block>> {
    let mut blocks = Vec::new();
    for phase in Phase::ALL {
        let questions = ctx
            .db
            .scoped(scope)
            .query(QUESTIONS, "by_company_incident_phase", |q| {
                q.eq("incident_id", incident.encode())
                    .eq("phase", phase.as_str())
                    .eq("is_active", true)
            })?
            .collect()?;
        for question in questions {
            let question_id = text_of(&question, "question_id");
            let answer = ctx
                .db
                .scoped(scope)
                .query(ANSWERS, "by_company_incident_question", |q| {
                    q.eq("incident_id", incident.encode())
                        .eq("question_id", question_id.clone())
                })?
                .first()?
                .map(|a| text_of(&a, "answer_text"))
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| "Not answered".to_string());
            blocks.push(Block {
                label: Some(format!(
                    "{}: {}",
                    phase.label(),
                    text_of(&question, "question_text")
                )),
                text: answer,
            });
        }
    }
    if blocks.is_empty() {
        blocks.push(Block {
            label: None,
            text: "No clarification questions were asked.".into(),
        });
    }
    Ok(blocks)
}
