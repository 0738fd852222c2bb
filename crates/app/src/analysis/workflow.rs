//! The analysis from start to finish: the team's notification of a handoff (a job), starting
//! (`startAnalysis`, which accepts the handoff), taking over (`takeOverAnalysis`, audited),
//! completing (`completeAnalysis`, when every rule holds) and reopening (`reopenAnalysis`, by a
//! company administrator, audited).

use functions::jobs::JobOptions;
use functions::{ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use values::{DocumentId, Id, Typed};

use super::model::{AnalysisRow, AnalysisState, ClassificationDoc, Decision, Rank, ANALYSES};
use super::{analyst, find_analysis, link, require_editor, required_text, started, ByIncident};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission, Role, Viewer};
use crate::incidents::record::{self, Change, Incident};
use crate::incidents::status::{self, AnalysisStatus, Request, Route};
use crate::incidents::submission;
use crate::notifications::{self, Delivery, Kind, Note, ANALYSTS};

pub use super::model::AnalysisDoc;

/// Tells the company's team leads and administrators that an incident awaits analysis, and
/// records on the handoff that they were told (a job, enqueued by the submission).
pub const NOTIFY_HANDOFF: FunctionRef<HandoffArgs, HandoffNotified> =
    FunctionRef::internal_mutation("analysis:notifyHandoff");

pub fn register(r: &mut Registry, app_base: &str) {
    let base = app_base.to_string();
    r.internal_mutation(NOTIFY_HANDOFF, move |ctx, args| {
        notify_handoff(ctx, args, &base)
    });
    r.mutation("analysis:startAnalysis", start);
    r.mutation("analysis:takeOverAnalysis", take_over);
    r.mutation("analysis:completeAnalysis", complete);
    r.mutation("analysis:reopenAnalysis", reopen);
}

#[derive(Clone, Serialize, Deserialize, Typed)]
pub struct HandoffArgs {
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
}

#[derive(Clone, Serialize, Deserialize, Typed)]
pub struct HandoffNotified {
    pub delivered: usize,
}

/// Enqueues the handoff notification for `incident` (once per incident, whatever retries).
pub fn enqueue_handoff_notification(
    ctx: &mut MutationCtx<'_>,
    company: &DocumentId,
    incident: &DocumentId,
) -> FnResult<()> {
    let args = HandoffArgs {
        company_id: *company,
        incident_id: *incident,
    };
    let key = format!("analysis-ready:{}", incident.encode());
    ctx.jobs()
        .enqueue(NOTIFY_HANDOFF, &args, JobOptions::default().key(key))?;
    Ok(())
}

fn notify_handoff(
    ctx: &mut MutationCtx<'_>,
    args: HandoffArgs,
    app_base: &str,
) -> FnResult<HandoffNotified> {
    let now = ctx.now_ms();
    let scope = Scope::company(args.company_id);
    // A deleted incident needs no one's attention.
    let Some(doc) = ctx
        .db
        .scoped(&scope)
        .get_in(crate::incidents::TABLE, &args.incident_id.encode())?
    else {
        return Ok(HandoffNotified { delivered: 0 });
    };
    let incident = Incident::from_doc(doc)?;
    let note = Note {
        kind: Kind::AnalysisReady,
        incident_id: Some(incident.id),
        title: format!(
            "Incident ready for analysis: {}",
            incident.row.participant_name
        ),
        body: format!(
            "{} submitted the incident involving {} at {} ({}) for analysis.",
            incident.row.reporter_name,
            incident.row.participant_name,
            incident.row.location,
            incident.row.event_date_time
        ),
        link: link(&incident.id),
    };
    let people = crate::users::rows::with_roles(&mut ctx.db, &scope, &ANALYSTS)?;
    let delivered =
        notifications::notify(ctx, &scope, &args.company_id, &people, &note, app_base, now)?;
    submission::mark_team_notified(&mut ctx.db, &scope, &incident.id, now)?;
    Ok(HandoffNotified { delivered })
}

fn audit_entry(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    incident: &Incident,
    event: Event,
    details: &[(&str, &str)],
) -> FnResult<()> {
    let now = ctx.now_ms();
    let entry = Entry {
        event,
        actor: Some(&viewer.user_id),
        target: Some(incident.id.encode()),
        company: Some(&incident.row.company_id),
        details,
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), viewer, entry)
}

/// Moves the incident's analysis status through the status machine.
fn move_analysis(
    ctx: &mut MutationCtx<'_>,
    scope: &Scope,
    viewer: &Viewer,
    incident: &Incident,
    to: AnalysisStatus,
    route: Route,
) -> FnResult<()> {
    let now = ctx.now_ms();
    let state = status::transition(
        incident.row.state(),
        Request::Analysis(to),
        incident.actor(viewer),
        route,
    )?;
    if state != incident.row.state() {
        let change = Change {
            state: Some(state),
            ..Change::default()
        };
        record::save(&mut ctx.db, scope, incident, change, &viewer.user_id, now)?;
    }
    Ok(())
}

/// `analysis:startAnalysis`: the analysis id. Accepts the handoff, moves the incident's analysis
/// to `in_progress` and assigns the analysis to the caller. Starting again is harmless for its
/// analyst; anyone else is told who has it (and takes it over explicitly).
fn start(ctx: &mut MutationCtx<'_>, args: ByIncident) -> FnResult<Id<AnalysisDoc>> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    if let Some(existing) = find_analysis(&mut ctx.db, &scope, &incident.id)? {
        require_editor(&mut ctx.db, &scope, &existing, &viewer)?;
        return Ok(existing.id);
    }
    move_analysis(
        ctx,
        &scope,
        &viewer,
        &incident,
        AnalysisStatus::InProgress,
        Route::StatusUpdate,
    )?;
    submission::accept_handoff(&mut ctx.db, &scope, &incident.id, &viewer.user_id, now)?;
    let row = AnalysisRow {
        incident_id: incident.id,
        company_id: incident.row.company_id,
        status: AnalysisState::Draft,
        assigned_to: viewer.user_id,
        started_at: now,
        conditions: Vec::new(),
        conditions_original: None,
        conditions_markdown: String::new(),
        ai_model: None,
        ai_confidence: None,
        prompt_version: None,
        revision: 0.0,
        total_edit_time_ms: 0.0,
        completed_at: None,
        completed_by: None,
        reopened_count: 0.0,
        created_at: now,
        updated_at: now,
    };
    let id = super::insert(&mut ctx.db, &scope, ANALYSES, &row)?;
    audit_entry(ctx, &viewer, &incident, Event::AnalysisStarted, &[])?;
    Ok(id.into())
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct TakeOverArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    reason: String,
}

#[derive(Serialize, Typed)]
pub struct TakenOver {
    success: bool,
    analysis_id: Id<AnalysisDoc>,
    #[typed(id = "users")]
    previous_assignee: DocumentId,
}

/// `analysis:takeOverAnalysis`: assigns the analysis to the caller, with the reason in the audit
/// log (the previous analyst's work stays).
fn take_over(ctx: &mut MutationCtx<'_>, args: TakeOverArgs) -> FnResult<TakenOver> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let reason = required_text("reason", &args.reason, 500)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    if analysis.row.status == AnalysisState::Completed {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "analysis_status",
            "The analysis is completed; a company administrator may reopen it",
        ));
    }
    let previous = analysis.row.assigned_to;
    if previous != viewer.user_id {
        let mut row = analysis.row.clone();
        row.assigned_to = viewer.user_id;
        row.updated_at = now;
        super::replace(&mut ctx.db, &scope, &analysis.id, &row)?;
        let from = previous.encode();
        audit_entry(
            ctx,
            &viewer,
            &incident,
            Event::AnalysisTakenOver,
            &[("from", from.as_str()), ("reason", reason.as_str())],
        )?;
    }
    Ok(TakenOver {
        success: true,
        analysis_id: analysis.id,
        previous_assignee: previous,
    })
}

/// What completion still needs, as `(field, why)`.
fn missing_for_completion(
    analysis: &AnalysisDoc,
    classifications: &[ClassificationDoc],
    decision: Option<Decision>,
) -> Vec<(&'static str, &'static str)> {
    let mut missing = Vec::new();
    if analysis.row.status != AnalysisState::UserReviewed {
        missing.push((
            "conditions",
            "the contributing conditions have not been reviewed and saved",
        ));
    }
    if !classifications.iter().any(|c| c.row.user_reviewed) {
        missing.push(("classifications", "no classification has been reviewed"));
    } else if classifications
        .iter()
        .filter(|c| c.row.facts.rank == Rank::Primary)
        .count()
        != 1
    {
        missing.push((
            "classifications",
            "exactly one classification must be primary",
        ));
    }
    if decision.is_none_or(|d| d == Decision::Pending) {
        missing.push((
            "reportable_decision",
            "no one has decided whether the incident is reportable",
        ));
    }
    missing
}

#[derive(Serialize, Typed)]
pub struct Completed {
    success: bool,
    completed_at: f64,
}

/// `analysis:completeAnalysis`: completes the analysis when the conditions were reviewed, at
/// least one classification was reviewed (exactly one primary) and the reportable decision is
/// made; otherwise `VALIDATION` naming each missing item (`field` lists them, comma-separated).
/// The incident becomes `completed`; its reporter and the company administrators are notified.
fn complete(ctx: &mut MutationCtx<'_>, args: ByIncident) -> FnResult<Completed> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    require_editor(&mut ctx.db, &scope, &analysis, &viewer)?;
    let classifications = super::classification::of_incident(&mut ctx.db, &scope, &incident.id)?;
    let decision =
        super::screening::find(&mut ctx.db, &scope, &incident.id)?.map(|s| s.row.decision);
    let missing = missing_for_completion(&analysis, &classifications, decision);
    if !missing.is_empty() {
        let fields: Vec<&str> = missing.iter().map(|(f, _)| *f).collect();
        let why: Vec<String> = missing.iter().map(|(f, w)| format!("{f} ({w})")).collect();
        return Err(FunctionError::validation(
            fields.join(","),
            format!("Cannot complete the analysis. Missing: {}", why.join("; ")),
        ));
    }
    move_analysis(
        ctx,
        &scope,
        &viewer,
        &incident,
        AnalysisStatus::Completed,
        Route::StatusUpdate,
    )?;
    let mut row = analysis.row.clone();
    row.status = AnalysisState::Completed;
    row.completed_at = Some(now);
    row.completed_by = Some(viewer.user_id);
    row.updated_at = now;
    super::replace(&mut ctx.db, &scope, &analysis.id, &row)?;
    audit_entry(ctx, &viewer, &incident, Event::AnalysisCompleted, &[])?;
    let delivery = Delivery {
        company_id: incident.row.company_id,
        note: Note {
            kind: Kind::AnalysisCompleted,
            incident_id: Some(incident.id),
            title: format!("Analysis completed: {}", incident.row.participant_name),
            body: format!(
                "{} completed the analysis of the incident involving {} ({}).",
                viewer.name, incident.row.participant_name, incident.row.event_date_time
            ),
            link: link(&incident.id),
        },
        roles: vec![Role::CompanyAdmin.as_str().to_string()],
        users: vec![incident.row.created_by],
    };
    let key = format!(
        "analysis-completed:{}:{}",
        incident.id.encode(),
        analysis.row.reopened_count
    );
    ctx.jobs().enqueue(
        notifications::DELIVER,
        &delivery,
        JobOptions::default().key(key),
    )?;
    Ok(Completed {
        success: true,
        completed_at: now,
    })
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ReopenArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    reason: String,
}

#[derive(Serialize, Typed)]
pub struct Reopened {
    success: bool,
    reopened_count: f64,
}

/// `analysis:reopenAnalysis`: a company administrator (`company_configuration`) takes a completed
/// analysis back to `in_progress`, with a reason (audited); the analysts are notified.
fn reopen(ctx: &mut MutationCtx<'_>, args: ReopenArgs) -> FnResult<Reopened> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CompanyConfiguration)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, &args.incident_id)?;
    let reason = required_text("reason", &args.reason, 500)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    if analysis.row.status != AnalysisState::Completed {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "analysis_status",
            "Only a completed analysis can be reopened",
        ));
    }
    move_analysis(
        ctx,
        &scope,
        &viewer,
        &incident,
        AnalysisStatus::InProgress,
        Route::Reopen,
    )?;
    let mut row = analysis.row.clone();
    row.status = AnalysisState::UserReviewed;
    row.completed_at = None;
    row.completed_by = None;
    row.reopened_count += 1.0;
    row.updated_at = now;
    super::replace(&mut ctx.db, &scope, &analysis.id, &row)?;
    audit_entry(
        ctx,
        &viewer,
        &incident,
        Event::AnalysisReopened,
        &[("reason", reason.as_str())],
    )?;
    let delivery = Delivery {
        company_id: incident.row.company_id,
        note: Note {
            kind: Kind::AnalysisReopened,
            incident_id: Some(incident.id),
            title: format!("Analysis reopened: {}", incident.row.participant_name),
            body: format!("{} reopened the analysis: {reason}", viewer.name),
            link: link(&incident.id),
        },
        roles: ANALYSTS.iter().map(|r| r.as_str().to_string()).collect(),
        users: Vec::new(),
    };
    let key = format!(
        "analysis-reopened:{}:{}",
        incident.id.encode(),
        row.reopened_count
    );
    ctx.jobs().enqueue(
        notifications::DELIVER,
        &delivery,
        JobOptions::default().key(key),
    )?;
    Ok(Reopened {
        success: true,
        reopened_count: row.reopened_count,
    })
}
