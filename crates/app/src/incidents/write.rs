//! Recording and changing incidents: create, edit details, status updates through the status
//! machine, resume progress, the honest `autoCompleteWorkflow`, and deletion with every child
//! record.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, Scope, ScopedWriter};
use serde::{Deserialize, Serialize};
use values::{DocumentId, Id, Typed, Value};

use super::children;
use super::fields::{self, Given, Window};
use super::record::{self, Change, Incident, IncidentDoc, IncidentRow};
use super::status::{self, AnalysisStatus, CaptureStatus, OverallStatus, Request, Route};
use crate::args::Success;
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, require_session, Permission, Viewer};
use crate::narratives::{self, Phase};

/// Longest resume preview kept.
pub const MAX_PREVIEW_CHARS: usize = 100;

/// The resume points of the capture wizard, by step number.
pub fn step_description(step: u32) -> &'static str {
    match step {
        1 => "Basic Information",
        2 => "Before Event",
        3 => "During Event",
        4 => "After Event",
        5 => "Q&A Session",
        6 => "AI Enhancement",
        7 => "Review & Submit",
        _ => "Unknown Step",
    }
}

/// The narrative phases `incidents:create` may write with the incident.
#[derive(Deserialize, Typed)]
pub struct NarrativeArg {
    before_event: Option<String>,
    during_event: Option<String>,
    end_event: Option<String>,
    post_event: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct CreateArgs {
    #[typed(id = "sites")]
    site_id: String,
    #[typed(id = "participants")]
    participant_id: Option<String>,
    #[serde(flatten)]
    given: Given,
    narrative: Option<NarrativeArg>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateMetadataArgs {
    #[serde(rename = "incidentId")]
    #[typed(id = "incidents")]
    incident_id: String,
    #[typed(id = "sites")]
    site_id: Option<String>,
    #[typed(id = "participants")]
    participant_id: Option<String>,
    #[serde(flatten)]
    given: Given,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateStatusArgs {
    #[typed(id = "incidents")]
    id: String,
    capture_status: Option<CaptureStatus>,
    analysis_status: Option<AnalysisStatus>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ProgressArgs {
    #[serde(rename = "incidentId")]
    #[typed(id = "incidents")]
    incident_id: String,
    current_step: Option<f64>,
    content_preview: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct AutoCompleteArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    /// Accepted from the reference client; not used.
    #[allow(dead_code)]
    correlation_id: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct DeleteArgs {
    #[typed(id = "incidents")]
    id: String,
    reason: Option<String>,
}

/// The caller, who must hold `permission`, and their company.
fn caller(ctx: &mut MutationCtx<'_>, permission: Permission) -> FnResult<(Viewer, Scope)> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, permission)?;
    let scope = viewer.company_scope()?;
    Ok((viewer, scope))
}

/// The site must be one of the company's; another company's site answers like a missing one.
fn check_site(db: &mut ScopedWriter<'_>, site: &str) -> FnResult<DocumentId> {
    match db.get_in("sites", site)? {
        Some(doc) => Ok(doc.id),
        None => Err(FunctionError::field(
            ErrorCode::NotFound,
            "site_id",
            "Invalid site: Site does not belong to your company",
        )),
    }
}

/// The participant, if given, must be one of the company's; a new link to a discharged
/// participant is refused (an existing one is kept).
fn check_participant(
    db: &mut ScopedWriter<'_>,
    participant: Option<&str>,
    current: Option<&DocumentId>,
) -> FnResult<Option<DocumentId>> {
    let Some(participant) = participant else {
        return Ok(None);
    };
    let doc = db.get_in("participants", participant)?.ok_or_else(|| {
        FunctionError::field(
            ErrorCode::NotFound,
            "participant_id",
            "Participant not found",
        )
    })?;
    let discharged = doc.get("status").and_then(Value::as_str) == Some("discharged");
    if discharged && current != Some(&doc.id) {
        return Err(FunctionError::validation(
            "participant_id",
            "Participant has been discharged and is no longer available for new incident reports",
        ));
    }
    Ok(Some(doc.id))
}

/// `incidents:create`: the new incident's id. It starts as a draft (capture draft, analysis not
/// started, overall capture_pending). With `narrative`, the narrative is created in the same
/// transaction.
pub fn create(ctx: &mut MutationCtx<'_>, args: CreateArgs) -> FnResult<Id<IncidentDoc>> {
    let now = ctx.now_ms();
    let (viewer, scope) = caller(ctx, Permission::CreateIncident)?;
    // The references first: another company's site or participant answers like a missing one,
    // whatever else is wrong with the request.
    let mut db = ctx.db.scoped(&scope);
    let site_id = check_site(&mut db, &args.site_id)?;
    let participant_id = check_participant(&mut db, args.participant_id.as_deref(), None)?;
    let details = fields::details(&args.given, now, Window::Enforced)?;
    let company_id = match scope {
        Scope::Company(company) => company,
        Scope::AllCompanies => return Err(FunctionError::internal("own company spans all")),
    };
    let row = IncidentRow::new(
        company_id,
        site_id,
        participant_id,
        details,
        viewer.user_id,
        now,
    );
    let id = record::insert(&mut ctx.db, &scope, row)?;
    if let Some(narrative) = args.narrative {
        let incident = record::load(&mut ctx.db, &scope, &id.encode())?;
        let created = narratives::ensure(&mut ctx.db, &scope, &incident, &viewer.user_id, now)?;
        let given = [
            narrative.before_event,
            narrative.during_event,
            narrative.end_event,
            narrative.post_event,
        ];
        let changes: Vec<(Phase, String)> = Phase::ALL
            .into_iter()
            .zip(given)
            .filter_map(|(p, text)| text.map(|t| (p, t)))
            .collect();
        if !changes.is_empty() {
            narratives::write_phases(
                &mut ctx.db,
                &scope,
                &viewer,
                &incident,
                &created,
                &changes,
                now,
            )?;
        }
    }
    Ok(id.into())
}

/// The incident `id` names, which the caller must be able to edit the capture of.
fn own_capture(ctx: &mut MutationCtx<'_>, id: &str) -> FnResult<(Viewer, Scope, Incident)> {
    let (viewer, scope) = caller(ctx, Permission::EditOwnIncidentCapture)?;
    let incident = record::load(&mut ctx.db, &scope, id)?;
    record::require_capture_editor(&viewer, &incident)?;
    Ok((viewer, scope, incident))
}

/// `incidents:updateMetadata`: changes the details of the caller's own unsubmitted incident;
/// returns its id. `site_id` may be left out to keep the site.
pub fn update_metadata(
    ctx: &mut MutationCtx<'_>,
    args: UpdateMetadataArgs,
) -> FnResult<Id<IncidentDoc>> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = own_capture(ctx, &args.incident_id)?;
    record::require_unlocked(&incident, "incident")?;
    let mut db = ctx.db.scoped(&scope);
    let site_id = match &args.site_id {
        Some(site) => check_site(&mut db, site)?,
        None => incident.row.site_id,
    };
    let participant = args.participant_id.as_deref();
    let participant_id =
        check_participant(&mut db, participant, incident.row.participant_id.as_ref())?;
    let details = fields::details(&args.given, now, Window::Enforced)?;
    let mut change = Change::default();
    change
        .set("site_id", site_id)
        .set("reporter_name", details.reporter_name)
        .set("participant_name", details.participant_name)
        .set("event_date_time", details.event_date_time)
        .set("event_at", details.event_at)
        .set("location", details.location)
        .set_opt("participant_id", participant_id.map(Value::from));
    record::save(&mut ctx.db, &scope, &incident, change, &viewer.user_id, now)?;
    Ok(incident.id.into())
}

/// `incidents:updateStatus`: moves capture and/or analysis through the status machine; the overall
/// status follows. Capture completes only by submission, never here.
pub fn update_status(ctx: &mut MutationCtx<'_>, args: UpdateStatusArgs) -> FnResult<Success> {
    let now = ctx.now_ms();
    let capture = args.capture_status;
    let analysis = args.analysis_status;
    if capture.is_none() && analysis.is_none() {
        // The caller first: an anonymous one is told to sign in, not about the arguments.
        require_session(&mut ctx.db, ctx.auth, now)?;
        return Err(FunctionError::validation(
            "capture_status",
            "Validation failed: At least one status field must be provided",
        ));
    }
    // The contract's permission: perform_analysis to touch the analysis, else edit_own.
    let permission = match analysis {
        Some(_) => Permission::PerformAnalysis,
        None => Permission::EditOwnIncidentCapture,
    };
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, permission)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, &args.id)?;
    let actor = incident.actor(&viewer);
    let mut state = incident.row.state();
    let requests = [
        capture.map(Request::Capture),
        analysis.map(Request::Analysis),
    ];
    for request in requests.into_iter().flatten() {
        state = status::transition(state, request, actor, Route::StatusUpdate)?;
    }
    if state != incident.row.state() {
        let change = Change {
            state: Some(state),
            ..Change::default()
        };
        record::save(&mut ctx.db, &scope, &incident, change, &viewer.user_id, now)?;
    }
    Ok(Success { success: true })
}

/// `incidents:updateWorkflowProgress`: saves where the creator is in the wizard (step and a
/// preview of at most 100 characters), so they can resume later.
pub fn update_workflow_progress(
    ctx: &mut MutationCtx<'_>,
    args: ProgressArgs,
) -> FnResult<Success> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = own_capture(ctx, &args.incident_id)?;
    let step = match args.current_step {
        None => None,
        Some(n) if n.fract() == 0.0 && (1.0..=1000.0).contains(&n) => Some(n as u32),
        Some(_) => {
            return Err(FunctionError::validation(
                "current_step",
                "Validation failed: current_step must be a whole number of at least 1",
            ))
        }
    };
    let mut change = Change::default();
    if let Some(step) = step {
        change
            .set("current_step", f64::from(step))
            .set("step_description", step_description(step));
    }
    if let Some(preview) = &args.content_preview {
        let preview: String = preview.trim().chars().take(MAX_PREVIEW_CHARS).collect();
        change.set("content_preview", preview);
    }
    if !change.patch.is_empty() {
        record::save(&mut ctx.db, &scope, &incident, change, &viewer.user_id, now)?;
    }
    Ok(Success { success: true })
}

/// `incidents:autoCompleteWorkflow`. Completing a capture needs the checklist, which only
/// submission (`aiEnhancement:submitIncidentForAnalysis`) checks; so this reports an incident that
/// was submitted as complete and refuses, saying so, for one that was not. It never changes a
/// status itself.
#[derive(Serialize, Typed)]
pub struct AutoCompleted {
    success: bool,
    already_completed: bool,
    current_status: OverallStatus,
    workflow_completed_at: Option<f64>,
}

pub fn auto_complete_workflow(
    ctx: &mut MutationCtx<'_>,
    args: AutoCompleteArgs,
) -> FnResult<AutoCompleted> {
    let (_, _, incident) = own_capture(ctx, &args.incident_id)?;
    if incident.row.submitted_at.is_none() {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "incident_id",
            "Cannot auto-complete: the workflow is not finished. Submit the incident for analysis \
             (aiEnhancement:submitIncidentForAnalysis), which checks the completion checklist",
        ));
    }
    Ok(AutoCompleted {
        success: true,
        already_completed: true,
        current_status: incident.row.overall_status,
        workflow_completed_at: incident.row.workflow_completed_at,
    })
}

#[derive(Serialize, Typed)]
pub struct Deleted {
    success: bool,
    deleted_child_records: usize,
    #[serde(rename = "correlationId")]
    correlation_id: String,
}

/// `incidents:deleteIncident`: deletes an incident and every child record (narrative, handoffs,
/// and whatever `CHILD_TABLES` lists). Company administrators (`company_configuration`) delete
/// their company's incidents, holders of `manage_all_companies` any company's. Audited.
pub fn delete_incident(ctx: &mut MutationCtx<'_>, args: DeleteArgs) -> FnResult<Deleted> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let lookup = if viewer.has(Permission::ManageAllCompanies) {
        viewer.all_companies_scope(&grant, Permission::ManageAllCompanies)?
    } else {
        viewer.require(Permission::CompanyConfiguration)?;
        viewer.company_scope()?
    };
    let incident = record::load(&mut ctx.db, &lookup, &args.id)?;
    let company = incident.row.company_id;
    let scope = viewer.scope_for(&company, Some(&grant), Permission::ManageAllCompanies)?;
    let removed = children::delete_all(&mut ctx.db, &scope, &incident, now)?;
    let reason = args.reason.as_deref().map(str::trim).unwrap_or_default();
    let reason: String = reason.chars().take(500).collect();
    let removed_text = removed.to_string();
    let details: Vec<(&str, &str)> = [
        ("participant_name", incident.row.participant_name.as_str()),
        ("child_records", removed_text.as_str()),
        ("reason", reason.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let entry = Entry {
        event: Event::IncidentDeleted,
        actor: Some(&viewer.user_id),
        target: Some(incident.id.encode()),
        company: Some(&company),
        details: &details,
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(Deleted {
        success: true,
        deleted_child_records: removed,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}
