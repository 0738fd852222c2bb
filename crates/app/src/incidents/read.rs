//! Reading one incident: by id for whoever may view it (its creator, or anyone in the company with
//! `view_all_company_incidents`), the draft with its narrative for the capture wizard, and the
//! status options clients filter by.

use functions::{FnResult, FunctionError, QueryCtx, Scope};
use serde::{Deserialize, Serialize};
use values::{Nullable, Typed};

use super::record::{self, Incident, PublicIncident};
use super::status::{AnalysisStatus, CaptureStatus, HandoffStatus, OverallStatus};
use crate::args::SessionArgs;
use crate::identity::{require_session, Viewer};
use crate::narratives::{self, NarrativeDoc};

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ById {
    #[typed(id = "incidents")]
    id: String,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ByIncidentId {
    #[typed(id = "incidents")]
    incident_id: String,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
#[serde(rename_all = "camelCase")]
pub struct DraftArgs {
    #[typed(id = "incidents")]
    incident_id: String,
}

/// The viewer and the incident `id` names, if it is in their company (else `None`).
fn find(ctx: &mut QueryCtx<'_>, id: &str) -> FnResult<(Viewer, Scope, Option<Incident>)> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = match ctx.db.scoped(&scope).get_in(super::TABLE, id)? {
        Some(doc) => Some(Incident::from_doc(doc)?),
        None => None,
    };
    Ok((viewer, scope, incident))
}

/// `incidents:getById`: the incident.
pub fn get_by_id(ctx: &mut QueryCtx<'_>, args: ById) -> FnResult<PublicIncident> {
    let (viewer, _, incident) = find(ctx, &args.id)?;
    let incident = incident.ok_or_else(|| {
        FunctionError::not_found("Incident not found or you don't have access to it")
    })?;
    record::require_view(&viewer, &incident)?;
    incident.public()
}

/// `incidents:getIncidentById`: the incident, or null when there is none (in the company).
pub fn get_incident_by_id(
    ctx: &mut QueryCtx<'_>,
    args: ByIncidentId,
) -> FnResult<Option<PublicIncident>> {
    let (viewer, _, incident) = find(ctx, &args.incident_id)?;
    let Some(incident) = incident else {
        return Ok(None);
    };
    record::require_view(&viewer, &incident)?;
    incident.public().map(Some)
}

#[derive(Serialize, Typed)]
pub struct Draft {
    incident: PublicIncident,
    narrative: Nullable<NarrativeDoc>,
}

/// `incidents:getDraftIncident`: `{incident, narrative}` (narrative null until created).
pub fn get_draft_incident(ctx: &mut QueryCtx<'_>, args: DraftArgs) -> FnResult<Draft> {
    let (viewer, scope, incident) = find(ctx, &args.incident_id)?;
    let incident = incident.ok_or_else(record::not_found)?;
    record::require_view(&viewer, &incident)?;
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?;
    Ok(Draft {
        incident: incident.public()?,
        narrative: narrative.map(|n| n.row()).transpose()?.into(),
    })
}

/// A status and what people read for it.
#[derive(Serialize, Typed)]
pub struct StatusOption<S> {
    value: S,
    label: &'static str,
}

fn options<S: Copy>(all: &[S], label: impl Fn(S) -> &'static str) -> Vec<StatusOption<S>> {
    all.iter()
        .map(|s| StatusOption {
            value: *s,
            label: label(*s),
        })
        .collect()
}

#[derive(Serialize, Typed)]
pub struct StatusOptions {
    overall: Vec<StatusOption<OverallStatus>>,
    capture: Vec<StatusOption<CaptureStatus>>,
    analysis: Vec<StatusOption<AnalysisStatus>>,
    handoff: Vec<StatusOption<HandoffStatus>>,
}

/// `incidents:getStatusOptions`: every status with its label, from the status machine's own lists
/// (so badges and filters cannot disagree). `overall` is what the listings filter by.
pub fn get_status_options(_ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<StatusOptions> {
    Ok(StatusOptions {
        overall: options(OverallStatus::ALL, OverallStatus::label),
        capture: options(CaptureStatus::ALL, CaptureStatus::label),
        analysis: options(AnalysisStatus::ALL, AnalysisStatus::label),
        handoff: options(HandoffStatus::ALL, HandoffStatus::label),
    })
}
