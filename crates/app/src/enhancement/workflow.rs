//! The end of the capture: the enhanced narrative beside the original
//! (`getEnhancedNarrative`), the completion checklist (`validateWorkflowCompletion`), and
//! submission for analysis (`submitIncidentForAnalysis`).

use functions::Scope;
use functions::{DbRead, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use values::validator::v;
use values::{Object, Value};

use crate::args::{object, with_session};
use crate::clarification::{any_answered, capture_editor, incident_reader};
use crate::incidents::record::Incident;
use crate::incidents::{self, Checklist};
use crate::narratives::{self, Phase};

pub fn register(r: &mut Registry) {
    let by_incident = || with_session([("incident_id", v::id("incidents").into())]);
    r.query_untyped(
        "aiEnhancement:getEnhancedNarrative",
        by_incident(),
        get_enhanced,
    );
    r.query_untyped(
        "aiEnhancement:validateWorkflowCompletion",
        by_incident(),
        validate,
    );
    r.mutation_untyped(
        "aiEnhancement:submitIncidentForAnalysis",
        by_incident(),
        submit,
    );
}

/// `aiEnhancement:getEnhancedNarrative`: null until a phase is enhanced; then `{_id,
/// incident_id, enhanced_content: {<phase>_extra}, original_content: {<phase>}, user_edited,
/// enhanced_at, version, created_at, updated_at}`.
fn get_enhanced(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args, now)?;
    let Some(narrative) = narratives::find(&mut ctx.db, &scope, &incident.id)? else {
        return Ok(Value::Null);
    };
    if !narrative.any_enhanced() {
        return Ok(Value::Null);
    }
    let mut enhanced = Object::new();
    let mut original = Object::new();
    for phase in Phase::ALL {
        if let Some(text) = narrative.enhanced(phase) {
            enhanced.insert(phase.extra_field().into(), Value::from(text));
        }
        original.insert(phase.as_str().into(), Value::from(narrative.phase(phase)));
    }
    let field = |name: &str| narrative.doc.get(name).cloned();
    Ok(object([
        ("_id", Some(Value::from(narrative.id))),
        ("incident_id", Some(Value::from(incident.id))),
        ("enhanced_content", Some(Value::Object(enhanced))),
        ("original_content", Some(Value::Object(original))),
        // Edits (`updateEnhancedNarrative`) replace the text without being recorded apart from
        // the AI's, so this stays false; said explicitly for the reference client.
        ("user_edited", Some(Value::from(false))),
        ("enhanced_at", field("enhanced_at")),
        ("version", Some(Value::from(narrative.version))),
        ("created_at", field("created_at")),
        ("updated_at", field("updated_at")),
    ]))
}

/// The checklist of `incident` as it stands.
fn checklist(db: &mut impl DbRead, scope: &Scope, incident: &Incident) -> FnResult<Checklist> {
    let narrative = narratives::find(db, scope, &incident.id)?;
    Ok(Checklist {
        clarifications_complete: any_answered(db, scope, &incident.id)?,
        ..Checklist::observed(incident, narrative.as_ref())
    })
}

/// `aiEnhancement:validateWorkflowCompletion`: `{checklist, all_complete, missing_requirements,
/// submitted}`.
fn validate(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args, now)?;
    let checklist = checklist(&mut ctx.db, &scope, &incident)?;
    let missing = checklist.missing();
    Ok(object([
        (
            "checklist",
            Some(values::serde_bridge::to_value(&checklist)?),
        ),
        ("all_complete", Some(Value::from(missing.is_empty()))),
        (
            "missing_requirements",
            Some(Value::Array(missing.into_iter().map(Value::from).collect())),
        ),
        (
            "submitted",
            Some(Value::from(incident.row.submitted_at.is_some())),
        ),
    ]))
}

fn already_submitted() -> FunctionError {
    FunctionError::field(
        ErrorCode::Conflict,
        "incident_id",
        "This incident has already been submitted for analysis",
    )
}

/// `aiEnhancement:submitIncidentForAnalysis`: `{success, handoff_id, message}`. Refused while the
/// checklist is incomplete (naming what is missing) and once submitted (one handoff per incident).
fn submit(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args, now)?;
    if incident.row.submitted_at.is_some() {
        return Err(already_submitted());
    }
    let clarified = any_answered(&mut ctx.db, &scope, &incident.id)?;
    let done = incidents::submit(&mut ctx.db, &scope, &viewer, &incident, clarified, now)?;
    if done.already {
        return Err(already_submitted());
    }
    Ok(object([
        ("success", Some(Value::from(true))),
        ("handoff_id", Some(Value::from(done.handoff_id))),
        (
            "message",
            Some(Value::from("Incident submitted for analysis")),
        ),
    ]))
}
