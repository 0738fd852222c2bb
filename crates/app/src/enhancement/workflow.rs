//! The end of the capture: the enhanced narrative beside the original
//! (`getEnhancedNarrative`), the completion checklist (`validateWorkflowCompletion`), and
//! submission for analysis (`submitIncidentForAnalysis`).

use functions::Scope;
use functions::{DbRead, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use serde::Serialize;
use values::{DocumentId, Id, Typed};

use crate::clarification::{any_answered, capture_editor, incident_reader};
use crate::incidents::record::Incident;
use crate::incidents::{self, Checklist};
use crate::narratives::handlers::ByIncident;
use crate::narratives::{self, NarrativeDoc};

pub fn register(r: &mut Registry) {
    r.query("aiEnhancement:getEnhancedNarrative", get_enhanced);
    r.query("aiEnhancement:validateWorkflowCompletion", validate);
    r.mutation("aiEnhancement:submitIncidentForAnalysis", submit);
}

/// The enhanced text of each phase that has one.
#[derive(Serialize, Typed)]
struct EnhancedContent {
    before_event_extra: Option<String>,
    during_event_extra: Option<String>,
    end_event_extra: Option<String>,
    post_event_extra: Option<String>,
}

/// The original text of every phase.
#[derive(Serialize, Typed)]
struct OriginalContent {
    before_event: String,
    during_event: String,
    end_event: String,
    post_event: String,
}

#[derive(Serialize, Typed)]
struct EnhancedNarrative {
    #[serde(rename = "_id")]
    id: Id<NarrativeDoc>,
    #[typed(id = "incidents")]
    incident_id: DocumentId,
    enhanced_content: EnhancedContent,
    original_content: OriginalContent,
    user_edited: bool,
    enhanced_at: Option<f64>,
    version: f64,
    created_at: f64,
    updated_at: f64,
}

/// `aiEnhancement:getEnhancedNarrative`: null until a phase is enhanced; then `{_id,
/// incident_id, enhanced_content: {<phase>_extra}, original_content: {<phase>}, user_edited,
/// enhanced_at, version, created_at, updated_at}`.
fn get_enhanced(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<Option<EnhancedNarrative>> {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let Some(narrative) = narratives::find(&mut ctx.db, &scope, &incident.id)? else {
        return Ok(None);
    };
    if !narrative.any_enhanced() {
        return Ok(None);
    }
    let row = narrative.row()?;
    let enhanced = |phase| narrative.enhanced(phase).map(str::to_string);
    let original = |phase| narrative.phase(phase).to_string();
    use narratives::Phase::{BeforeEvent, DuringEvent, EndEvent, PostEvent};
    Ok(Some(EnhancedNarrative {
        id: narrative.id.into(),
        incident_id: incident.id,
        enhanced_content: EnhancedContent {
            before_event_extra: enhanced(BeforeEvent),
            during_event_extra: enhanced(DuringEvent),
            end_event_extra: enhanced(EndEvent),
            post_event_extra: enhanced(PostEvent),
        },
        original_content: OriginalContent {
            before_event: original(BeforeEvent),
            during_event: original(DuringEvent),
            end_event: original(EndEvent),
            post_event: original(PostEvent),
        },
        // Edits (`updateEnhancedNarrative`) replace the text without being recorded apart from
        // the AI's, so this stays false; said explicitly for the reference client.
        user_edited: false,
        enhanced_at: row.enhanced_at,
        version: narrative.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

/// The checklist of `incident` as it stands.
fn checklist(db: &mut impl DbRead, scope: &Scope, incident: &Incident) -> FnResult<Checklist> {
    let narrative = narratives::find(db, scope, &incident.id)?;
    Ok(Checklist {
        clarifications_complete: any_answered(db, scope, &incident.id)?,
        ..Checklist::observed(incident, narrative.as_ref())
    })
}

#[derive(Serialize, Typed)]
struct Validated {
    checklist: Checklist,
    all_complete: bool,
    missing_requirements: Vec<&'static str>,
    submitted: bool,
}

/// `aiEnhancement:validateWorkflowCompletion`: `{checklist, all_complete, missing_requirements,
/// submitted}`.
fn validate(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<Validated> {
    let now = ctx.now_ms();
    let (_, scope, incident) = incident_reader(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let checklist = checklist(&mut ctx.db, &scope, &incident)?;
    let missing = checklist.missing();
    Ok(Validated {
        checklist,
        all_complete: missing.is_empty(),
        missing_requirements: missing,
        submitted: incident.row.submitted_at.is_some(),
    })
}

fn already_submitted() -> FunctionError {
    FunctionError::field(
        ErrorCode::Conflict,
        "incident_id",
        "This incident has already been submitted for analysis",
    )
}

#[derive(Serialize, Typed)]
struct SubmittedForAnalysis {
    success: bool,
    #[typed(id = "workflow_handoffs")]
    handoff_id: DocumentId,
    message: &'static str,
}

/// `aiEnhancement:submitIncidentForAnalysis`: `{success, handoff_id, message}`. Refused while the
/// checklist is incomplete (naming what is missing) and once submitted (one handoff per incident).
fn submit(ctx: &mut MutationCtx<'_>, args: ByIncident) -> FnResult<SubmittedForAnalysis> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = capture_editor(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    if incident.row.submitted_at.is_some() {
        return Err(already_submitted());
    }
    let clarified = any_answered(&mut ctx.db, &scope, &incident.id)?;
    let done = incidents::submit(&mut ctx.db, &scope, &viewer, &incident, clarified, now)?;
    if done.already {
        return Err(already_submitted());
    }
    // The team hears of it from a job, so a failure to notify never undoes the submission.
    crate::analysis::workflow::enqueue_handoff_notification(
        ctx,
        &incident.row.company_id,
        &incident.id,
    )?;
    Ok(SubmittedForAnalysis {
        success: true,
        handoff_id: done.handoff_id,
        message: "Incident submitted for analysis",
    })
}
