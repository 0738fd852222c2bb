//! Reading the analysis stage: the queue (`listQueue`, most urgent first) and one incident's
//! analysis (`getAnalysis`), both live queries.

use std::collections::HashSet;

use functions::{
    Auth, DbRead, FnResult, FunctionError, Page, PaginationArg, QueryCtx, Registry, Scope,
};
use serde::{Deserialize, Serialize};
use values::{DocumentId, Typed};

use super::model::{AnalysisDoc, ClassificationDoc, Decision, ScreeningDoc};
use super::{find_analysis, ByIncident};
use crate::identity::{require_permission, require_session, Permission, Viewer};
use crate::incidents::queue::{self, Stage};
use crate::incidents::record::{self, Incident, PublicIncident};
use crate::incidents::status::AnalysisStatus;

pub fn register(r: &mut Registry) {
    r.query("analysis:listQueue", list_queue);
    r.query("analysis:getAnalysis", get_analysis);
}

/// The caller and an incident whose analysis they may read: holders of `perform_analysis` in the
/// company, and the incident's creator once the analysis is completed.
pub(crate) fn reader(
    db: &mut impl DbRead,
    auth: &Auth,
    incident_id: &str,
    now: f64,
) -> FnResult<(Viewer, Scope, Incident)> {
    let viewer = require_session(db, auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(db, &scope, incident_id)?;
    let analyst = viewer.has(Permission::PerformAnalysis);
    let creator_after = incident.is_creator(&viewer)
        && viewer.has(Permission::ViewMyIncidents)
        && incident.row.analysis_status == AnalysisStatus::Completed;
    if !(analyst || creator_after) {
        return Err(FunctionError::forbidden(
            "Only team leads read an analysis before it is completed",
        ));
    }
    Ok((viewer, scope, incident))
}

#[derive(Serialize, Typed)]
pub struct AnalysisView {
    incident: PublicIncident,
    analysis: Option<AnalysisDoc>,
    classifications: Vec<ClassificationDoc>,
    screening: Option<ScreeningDoc>,
    revisions_count: usize,
}

/// `analysis:getAnalysis`: `{incident, analysis?, classifications, screening?, revisions_count}`.
fn get_analysis(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<AnalysisView> {
    let now = ctx.now_ms();
    let (_, scope, incident) = reader(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let analysis = find_analysis(&mut ctx.db, &scope, &incident.id)?;
    let classifications = super::classification::of_incident(&mut ctx.db, &scope, &incident.id)?;
    let screening = super::screening::find(&mut ctx.db, &scope, &incident.id)?;
    let revisions_count = match &analysis {
        Some(a) => a.row.revision as usize,
        None => 0,
    };
    Ok(AnalysisView {
        incident: incident.public()?,
        analysis,
        classifications,
        screening,
        revisions_count,
    })
}

#[derive(Clone, Copy, Deserialize, Typed)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    Awaiting,
    InProgress,
    Completed,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
#[serde(rename_all = "camelCase")]
pub struct QueueArgs {
    status: Option<QueueStatus>,
    pagination_opts: PaginationArg,
}

#[derive(Serialize, Typed)]
pub struct Reportable {
    decision: Decision,
    due_at: Option<f64>,
    overdue: bool,
}

#[derive(Serialize, Typed)]
pub struct QueueItem {
    #[typed(id = "incidents")]
    incident_id: DocumentId,
    participant_name: String,
    site_name: Option<String>,
    reporter_name: String,
    event_date_time: String,
    submitted_at: Option<f64>,
    analysis_status: AnalysisStatus,
    assigned_to_name: Option<String>,
    reportable: Reportable,
}

fn item(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &Incident,
    sites: &[crate::companies::SiteRef],
    now: f64,
) -> FnResult<QueueItem> {
    let analysis = find_analysis(db, scope, &incident.id)?;
    let assigned_to_name = match &analysis {
        Some(a) => crate::users::rows::contact_of(db, scope, &a.row.assigned_to)?.map(|c| c.name),
        None => None,
    };
    let screening = super::screening::find(db, scope, &incident.id)?;
    let reportable = match screening {
        Some(s) => Reportable {
            decision: s.row.decision,
            due_at: s.row.due_at,
            overdue: s.row.clock_running() && s.row.due_at.is_some_and(|d| d <= now),
        },
        None => Reportable {
            decision: Decision::Pending,
            due_at: None,
            overdue: false,
        },
    };
    let row = &incident.row;
    Ok(QueueItem {
        incident_id: incident.id,
        participant_name: row.participant_name.clone(),
        site_name: sites
            .iter()
            .find(|s| s.id == row.site_id)
            .map(|s| s.name.clone()),
        reporter_name: row.reporter_name.clone(),
        event_date_time: row.event_date_time.clone(),
        submitted_at: row.submitted_at,
        analysis_status: row.analysis_status,
        assigned_to_name,
        reportable,
    })
}

/// `analysis:listQueue`: a Convex page of the company's submitted incidents awaiting or in
/// analysis (or those of `status`). Most urgent first: incidents with a running reportable clock
/// (soonest deadline first) head the first page, then the rest by oldest submission. The first
/// page may hold more than `numItems` when several clocks run; later pages never repeat them.
fn list_queue(ctx: &mut QueryCtx<'_>, args: QueueArgs) -> FnResult<Page<QueueItem>> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::PerformAnalysis)?;
    let scope = viewer.company_scope()?;
    let opts = args.pagination_opts.opts()?;
    let stage = match args.status {
        None => Stage::Open,
        Some(QueueStatus::Awaiting) => Stage::Awaiting,
        Some(QueueStatus::InProgress) => Stage::InProgress,
        Some(QueueStatus::Completed) => Stage::Completed,
    };
    let first_page = opts.cursor.is_none();
    let sites = crate::companies::sites_of(&mut ctx.db, &scope)?;
    let mut urgent = Vec::new();
    for clock in super::screening::open_clocks(&mut ctx.db, &scope)? {
        let incident = record::load(&mut ctx.db, &scope, &clock.row.incident_id.encode())?;
        if queue::in_stage(&incident, stage) {
            urgent.push(incident);
        }
    }
    let skip: HashSet<DocumentId> = urgent.iter().map(|i| i.id).collect();
    let result = queue::page(&mut ctx.db, &scope, stage, opts, skip)?;
    let mut page = Vec::new();
    if first_page {
        for incident in &urgent {
            page.push(item(&mut ctx.db, &scope, incident, &sites, now)?);
        }
    }
    for doc in &result.page {
        let incident = Incident::from_doc(doc.clone())?;
        page.push(item(&mut ctx.db, &scope, &incident, &sites, now)?);
    }
    Ok(Page {
        page,
        is_done: result.is_done,
        continue_cursor: result.continue_cursor.clone(),
    })
}
