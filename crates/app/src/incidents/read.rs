//! Reading one incident: by id for whoever may view it (its creator, or anyone in the company with
//! `view_all_company_incidents`), the draft with its narrative for the capture wizard, and the
//! status options clients filter by.

use functions::{FnResult, FunctionError, QueryCtx, Scope};
use values::{Object, Value};

use super::record::{self, Incident};
use super::status::{AnalysisStatus, CaptureStatus, HandoffStatus, OverallStatus};
use crate::args::{object, text};
use crate::identity::{require_session, Viewer};
use crate::narratives;

/// The viewer and the incident `field` names, if it is in their company (else `None`).
fn find(
    ctx: &mut QueryCtx<'_>,
    args: &Object,
    field: &str,
) -> FnResult<(Viewer, Scope, Option<Incident>)> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = match ctx
        .db
        .scoped(&scope)
        .get_in(super::TABLE, text(args, field))?
    {
        Some(doc) => Some(Incident::from_doc(doc)?),
        None => None,
    };
    Ok((viewer, scope, incident))
}

/// `incidents:getById`: the incident.
pub fn get_by_id(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let (viewer, _, incident) = find(ctx, &args, "id")?;
    let incident = incident.ok_or_else(|| {
        FunctionError::not_found("Incident not found or you don't have access to it")
    })?;
    record::require_view(&viewer, &incident)?;
    Ok(incident.public())
}

/// `incidents:getIncidentById`: the incident, or null when there is none (in the company).
pub fn get_incident_by_id(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let (viewer, _, incident) = find(ctx, &args, "incident_id")?;
    let Some(incident) = incident else {
        return Ok(Value::Null);
    };
    record::require_view(&viewer, &incident)?;
    Ok(incident.public())
}

/// `incidents:getDraftIncident`: `{incident, narrative}` (narrative null until created).
pub fn get_draft_incident(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let (viewer, scope, incident) = find(ctx, &args, "incidentId")?;
    let incident = incident.ok_or_else(record::not_found)?;
    record::require_view(&viewer, &incident)?;
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?;
    Ok(object([
        ("incident", Some(incident.public())),
        (
            "narrative",
            Some(narrative.map_or(Value::Null, |n| n.public())),
        ),
    ]))
}

fn options<S: Copy>(
    all: &[S],
    value: impl Fn(S) -> &'static str,
    label: impl Fn(S) -> &'static str,
) -> Value {
    Value::Array(
        all.iter()
            .map(|s| {
                object([
                    ("value", Some(Value::from(value(*s)))),
                    ("label", Some(Value::from(label(*s)))),
                ])
            })
            .collect(),
    )
}

/// `incidents:getStatusOptions`: every status with its label, from the status machine's own lists
/// (so badges and filters cannot disagree). `overall` is what the listings filter by.
pub fn get_status_options(_ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    Ok(object([
        (
            "overall",
            Some(options(
                OverallStatus::ALL,
                OverallStatus::as_str,
                OverallStatus::label,
            )),
        ),
        (
            "capture",
            Some(options(
                CaptureStatus::ALL,
                CaptureStatus::as_str,
                CaptureStatus::label,
            )),
        ),
        (
            "analysis",
            Some(options(
                AnalysisStatus::ALL,
                AnalysisStatus::as_str,
                AnalysisStatus::label,
            )),
        ),
        (
            "handoff",
            Some(options(
                HandoffStatus::ALL,
                HandoffStatus::as_str,
                HandoffStatus::label,
            )),
        ),
    ]))
}
