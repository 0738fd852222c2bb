//! Submitting a capture for analysis: the completion checklist, the handoff record, and
//! `submit`, the one way capture becomes `completed` (the incident then `analysis_pending`, its
//! handoff `ready_for_analysis`).
//!
//! The AI layer's `aiEnhancement:submitIncidentForAnalysis` calls `submit` inside its own mutation
//! with the part of the checklist only it can judge (clarification answers); the parts this module
//! can see (details, narrative, enhancement) are checked here again, so no caller can claim them.

use functions::{DbWriter, ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use serde::{Deserialize, Serialize};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

use super::record::{self, Change, Incident};
use super::status::{self, Request, Route};
use crate::identity::{require_permission, Permission, Viewer};
use crate::narratives::{self, Narrative};

pub const HANDOFFS: &str = "workflow_handoffs";
pub const FROM_WORKFLOW: &str = "incident_capture";
pub const TO_WORKFLOW: &str = "incident_analysis";

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(HANDOFFS)
        .field("company_id", v::id("companies"))
        .field("incident_id", v::id("incidents"))
        .field("from_workflow", v::string())
        .field("to_workflow", v::string())
        // What was handed over: the checklist, the narrative version and hash, who submitted.
        .field("handoff_data", v::any())
        .field("team_leader_notified", v::boolean())
        .optional("notification_sent_at", v::number())
        .field("handoff_accepted", v::boolean())
        .optional("accepted_by", v::id("users"))
        .optional("accepted_at", v::number())
        .field("created_at", v::number())
        .field("created_by", v::id("users"))
        .field("updated_at", v::number())
        .field("updated_by", v::id("users"))
        .index("by_company_incident", &["company_id", "incident_id"])
        .index(
            "by_company_to_workflow",
            &["company_id", "to_workflow", "created_at"],
        )
        .tenant("company_id")]
}

/// A document of the workflow handoffs.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "workflow_handoffs")]
pub struct HandoffDoc {
    #[serde(rename = "_id")]
    pub id: Id<HandoffDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    pub from_workflow: String,
    pub to_workflow: String,
    pub handoff_data: Value,
    pub team_leader_notified: bool,
    pub notification_sent_at: Option<f64>,
    pub handoff_accepted: bool,
    #[typed(id = "users")]
    pub accepted_by: Option<DocumentId>,
    pub accepted_at: Option<f64>,
    pub created_at: f64,
    #[typed(id = "users")]
    pub created_by: DocumentId,
    pub updated_at: f64,
    #[typed(id = "users")]
    pub updated_by: DocumentId,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(HANDOFFS, HandoffDoc::validator())]
}

/// The completion checklist of the contract (§8), stored on the incident when it is submitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Typed)]
pub struct Checklist {
    pub metadata_complete: bool,
    pub narratives_complete: bool,
    pub clarifications_complete: bool,
    pub enhancement_complete: bool,
    pub validation_passed: bool,
}

impl Checklist {
    /// What this module can judge from the incident and its narrative. Clarifications belong to
    /// the AI layer, which passes its verdict to `submit`.
    pub fn observed(incident: &Incident, narrative: Option<&Narrative>) -> Checklist {
        let row = &incident.row;
        let metadata_complete = [
            &row.reporter_name,
            &row.participant_name,
            &row.location,
            &row.event_date_time,
        ]
        .iter()
        .all(|t| !t.trim().is_empty());
        Checklist {
            metadata_complete,
            narratives_complete: narrative.is_some_and(Narrative::all_phases_written),
            clarifications_complete: false,
            enhancement_complete: narrative.is_some_and(Narrative::any_enhanced),
            validation_passed: true,
        }
    }

    /// The names of the items not complete, in checklist order.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("metadata_complete", self.metadata_complete),
            ("narratives_complete", self.narratives_complete),
            ("clarifications_complete", self.clarifications_complete),
            ("enhancement_complete", self.enhancement_complete),
            ("validation_passed", self.validation_passed),
        ]
        .into_iter()
        .filter(|(_, done)| !done)
        .map(|(name, _)| name)
        .collect()
    }
}

/// The narrative as it was handed over.
#[derive(Serialize)]
struct NarrativeFacts {
    narrative_id: DocumentId,
    narrative_version: f64,
    narrative_hash: String,
}

/// What a handoff records (its `handoff_data`).
#[derive(Serialize)]
struct HandoffData {
    checklist: Checklist,
    submitted_by: DocumentId,
    submitted_by_name: String,
    submitted_at: f64,
    narrative: Option<NarrativeFacts>,
}

/// What a submission did.
#[derive(Clone, Debug, PartialEq)]
pub struct Submitted {
    pub handoff_id: DocumentId,
    /// The incident had been submitted before; nothing changed and no second handoff was made.
    pub already: bool,
}

/// Submits `incident` for analysis on behalf of `viewer`, its creator: checks the checklist
/// (`clarifications_complete` is the caller's verdict), completes the capture through the status
/// machine, records who and when, and creates the handoff. Submitting again returns the first
/// handoff.
pub fn submit(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    viewer: &Viewer,
    incident: &Incident,
    clarifications_complete: bool,
    now: f64,
) -> FnResult<Submitted> {
    record::require_capture_editor(viewer, incident)?;
    if incident.row.submitted_at.is_some() {
        let existing = db
            .scoped(scope)
            .query(HANDOFFS, "by_company_incident", |q| {
                q.eq("incident_id", incident.id.encode())
            })?
            .first()?
            .ok_or_else(|| FunctionError::internal("submitted incident without a handoff"))?;
        return Ok(Submitted {
            handoff_id: existing.id,
            already: true,
        });
    }
    let narrative = narratives::find(db, scope, &incident.id)?;
    let checklist = Checklist {
        clarifications_complete,
        ..Checklist::observed(incident, narrative.as_ref())
    };
    let missing = checklist.missing();
    if !missing.is_empty() {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "completion_checklist",
            format!("Workflow incomplete. Missing: {}", missing.join(", ")),
        ));
    }
    let state = status::transition(
        incident.row.state(),
        Request::Capture(status::CaptureStatus::Completed),
        incident.actor(viewer),
        Route::Submission,
    )?;
    let mut change = Change {
        state: Some(state),
        ..Change::default()
    };
    change
        .set("submitted_by", viewer.user_id)
        .set("submitted_at", now)
        .set("workflow_completed_at", now)
        .set(
            "completion_checklist",
            values::serde_bridge::to_value(&checklist)?,
        );
    record::save(db, scope, incident, change, &viewer.user_id, now)?;
    let handoff_data = HandoffData {
        checklist,
        submitted_by: viewer.user_id,
        submitted_by_name: viewer.name.clone(),
        submitted_at: now,
        narrative: narrative.as_ref().map(|n| NarrativeFacts {
            narrative_id: n.id,
            narrative_version: n.version,
            narrative_hash: n.hash.clone(),
        }),
    };
    let mut row = Object::new();
    row.insert("incident_id".into(), Value::from(incident.id));
    row.insert("from_workflow".into(), Value::from(FROM_WORKFLOW));
    row.insert("to_workflow".into(), Value::from(TO_WORKFLOW));
    row.insert(
        "handoff_data".into(),
        values::serde_bridge::to_value(&handoff_data)?,
    );
    row.insert("team_leader_notified".into(), Value::from(false));
    row.insert("handoff_accepted".into(), Value::from(false));
    for field in ["created_at", "updated_at"] {
        row.insert(field.into(), Value::from(now));
    }
    for field in ["created_by", "updated_by"] {
        row.insert(field.into(), Value::from(viewer.user_id));
    }
    let handoff_id = db.scoped(scope).insert(HANDOFFS, row)?;
    Ok(Submitted {
        handoff_id,
        already: false,
    })
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct MarkArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    clarifications_complete: Option<bool>,
}

#[derive(Serialize, Typed)]
pub struct Marked {
    success: bool,
    #[typed(id = "workflow_handoffs")]
    handoff_id: DocumentId,
    already_submitted: bool,
}

/// `incidents:markSubmitted` (internal: for server code such as the AI layer's submission and
/// for tests): `{success, handoff_id, already_submitted}`.
pub fn mark_submitted(ctx: &mut MutationCtx<'_>, args: MarkArgs) -> FnResult<Marked> {
    let now = ctx.now_ms();
    let viewer = require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        Permission::EditOwnIncidentCapture,
    )?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, &args.incident_id)?;
    let clarified = args.clarifications_complete.unwrap_or(false);
    let done = submit(&mut ctx.db, &scope, &viewer, &incident, clarified, now)?;
    Ok(Marked {
        success: true,
        handoff_id: done.handoff_id,
        already_submitted: done.already,
    })
}

/// The handoff of `incident`, if it was submitted.
pub fn handoff_of(
    db: &mut impl functions::DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<Option<HandoffDoc>> {
    db.read_scoped(scope)
        .query(HANDOFFS, "by_company_incident", |q| {
            q.eq("incident_id", incident.encode())
        })?
        .first()?
        .map(|doc| functions::row(&doc))
        .transpose()
}

fn patch_handoff(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &DocumentId,
    by: Option<&DocumentId>,
    now: f64,
    fields: &[(&str, Value)],
) -> FnResult<bool> {
    let Some(handoff) = handoff_of(db, scope, incident)? else {
        return Ok(false);
    };
    let mut patch = store::Patch::new();
    for (field, value) in fields {
        patch.insert(field.to_string(), Some(value.clone()));
    }
    patch.insert("updated_at".into(), Some(Value::from(now)));
    if let Some(by) = by {
        patch.insert("updated_by".into(), Some(Value::from(*by)));
    }
    db.scoped(scope).patch(&handoff.id.get(), patch)?;
    Ok(true)
}

/// The analyst accepts the handoff (`accepted_by`, `accepted_at`); the first acceptance stays.
pub fn accept_handoff(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &DocumentId,
    by: &DocumentId,
    now: f64,
) -> FnResult<()> {
    if handoff_of(db, scope, incident)?.is_some_and(|h| h.handoff_accepted) {
        return Ok(());
    }
    patch_handoff(
        db,
        scope,
        incident,
        Some(by),
        now,
        &[
            ("handoff_accepted", Value::from(true)),
            ("accepted_by", Value::from(*by)),
            ("accepted_at", Value::from(now)),
        ],
    )?;
    Ok(())
}

/// Records that the team was told of the handoff (called when the notifications were made).
pub fn mark_team_notified(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &DocumentId,
    now: f64,
) -> FnResult<bool> {
    patch_handoff(
        db,
        scope,
        incident,
        None,
        now,
        &[
            ("team_leader_notified", Value::from(true)),
            ("notification_sent_at", Value::from(now)),
        ],
    )
}
