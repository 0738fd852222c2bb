//! Operators' view of the background layer: jobs by state, scheduled functions, crons with their
//! last and next runs; retrying a dead job and cancelling a pending job or schedule (audited).
//! System administrators only (`system_configuration`): these rows belong to no company, and a
//! job's arguments may name any company's records, so they are not shown at all (the function
//! name, state, attempts and last error are what an operator acts on).

use functions::jobs::{Job, JobState};
use functions::system::CronStatus;
use functions::{
    FnResult, FunctionError, MutationCtx, QueryCtx, Registry, ScheduledFunction, ScheduledState,
};
use serde::{Deserialize, Serialize};
use values::validator::v;
use values::{DocumentId, Typed, Validator};

use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission, Viewer};

/// Rows one list returns at most.
const MAX_LIMIT: usize = 500;

fn job_state_validator() -> Validator {
    v::union(
        JobState::ALL
            .iter()
            .map(|s| v::literal(s.as_str()))
            .collect(),
    )
}

fn scheduled_state_validator() -> Validator {
    v::union(
        ScheduledState::ALL
            .iter()
            .map(|s| v::literal(s.as_str()))
            .collect(),
    )
}

fn limit(requested: Option<f64>) -> usize {
    requested.map_or(100, |n| n.clamp(1.0, MAX_LIMIT as f64) as usize)
}

fn operator(
    db: &mut impl functions::DbRead,
    ctx_auth: &functions::Auth,
    now: f64,
) -> FnResult<Viewer> {
    require_permission(db, ctx_auth, now, Permission::SystemConfiguration)
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListJobsArgs {
    /// Defaults to `dead`: the jobs that need an operator.
    #[typed(validator = job_state_validator())]
    state: Option<String>,
    limit: Option<f64>,
}

/// A job as operators see it.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    id: String,
    function: String,
    #[typed(validator = job_state_validator())]
    state: String,
    priority: f64,
    attempts: f64,
    max_attempts: f64,
    /// Pending: when it is due. Running: when its lease runs out.
    run_at: f64,
    created_at: f64,
    started_at: Option<f64>,
    completed_at: Option<f64>,
    last_error: Option<String>,
    idempotency_key: Option<String>,
}

impl From<Job> for JobSummary {
    fn from(job: Job) -> JobSummary {
        JobSummary {
            id: job.id.encode(),
            function: job.name,
            state: job.state.as_str().to_string(),
            priority: job.priority,
            attempts: f64::from(job.attempts),
            max_attempts: f64::from(job.max_attempts),
            run_at: job.run_at,
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            last_error: job.last_error,
            idempotency_key: job.idempotency_key,
        }
    }
}

/// `operations:listJobs`.
fn list_jobs(ctx: &mut QueryCtx<'_>, args: ListJobsArgs) -> FnResult<Vec<JobSummary>> {
    let now = ctx.now_ms();
    operator(&mut ctx.db, ctx.auth, now)?;
    let state = args
        .state
        .as_deref()
        .and_then(JobState::parse)
        .unwrap_or(JobState::Dead);
    let jobs = ctx.system().jobs(state, limit(args.limit))?;
    Ok(jobs.into_iter().map(JobSummary::from).collect())
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct JobIdArgs {
    job_id: String,
}

/// Whether the change was made (false: the job was no longer in the state it needs).
#[derive(Serialize, Typed)]
pub struct Changed {
    changed: bool,
    /// The state the job or schedule is in now.
    state: String,
}

fn job_id(ctx: &MutationCtx<'_>, id: &str) -> FnResult<DocumentId> {
    ctx.db
        .normalize_id(functions::jobs::TABLE, id)
        .ok_or_else(|| FunctionError::validation("jobId", "jobId is not a job's Id"))
}

fn job_state(ctx: &mut MutationCtx<'_>, id: &DocumentId) -> FnResult<String> {
    let doc = ctx
        .db
        .get(id)?
        .ok_or_else(|| FunctionError::not_found("No such job"))?;
    Ok(Job::from_document(&doc)?.state.as_str().to_string())
}

/// `operations:retryJob`: a dead job goes back to pending with its attempts reset.
fn retry_job(ctx: &mut MutationCtx<'_>, args: JobIdArgs) -> FnResult<Changed> {
    let now = ctx.now_ms();
    let viewer = operator(&mut ctx.db, ctx.auth, now)?;
    let id = job_id(ctx, &args.job_id)?;
    job_state(ctx, &id)?;
    let changed = ctx.jobs().retry(&id)?;
    let state = job_state(ctx, &id)?;
    if changed {
        audited(ctx, &viewer, Event::JobRetried, &id)?;
    }
    Ok(Changed { changed, state })
}

/// `operations:cancelJob`: a pending job is canceled (a running one finishes its attempt).
fn cancel_job(ctx: &mut MutationCtx<'_>, args: JobIdArgs) -> FnResult<Changed> {
    let now = ctx.now_ms();
    let viewer = operator(&mut ctx.db, ctx.auth, now)?;
    let id = job_id(ctx, &args.job_id)?;
    job_state(ctx, &id)?;
    let changed = ctx.jobs().cancel(&id)?;
    let state = job_state(ctx, &id)?;
    if changed {
        audited(ctx, &viewer, Event::JobCanceled, &id)?;
    }
    Ok(Changed { changed, state })
}

fn audited(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    event: Event,
    id: &DocumentId,
) -> FnResult<()> {
    let entry = Entry {
        event,
        actor: Some(&viewer.user_id),
        target: Some(id.encode()),
        company: None,
        details: &[],
    };
    let (now, request) = (ctx.now_ms(), ctx.request_id.as_str().to_string());
    audit::record_by(&mut ctx.db, now, &request, viewer, entry)
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListScheduledArgs {
    /// Defaults to `pending`.
    #[typed(validator = scheduled_state_validator())]
    state: Option<String>,
    limit: Option<f64>,
}

/// A scheduled function as operators see it (arguments left out, as for jobs).
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledSummary {
    id: String,
    function: String,
    #[typed(validator = scheduled_state_validator())]
    state: String,
    scheduled_time: f64,
    started_at: Option<f64>,
    completed_at: Option<f64>,
    error: Option<String>,
}

impl From<ScheduledFunction> for ScheduledSummary {
    fn from(row: ScheduledFunction) -> ScheduledSummary {
        ScheduledSummary {
            id: row.id.encode(),
            function: row.name,
            state: row.state.as_str().to_string(),
            scheduled_time: row.scheduled_time,
            started_at: row.started_at,
            completed_at: row.completed_at,
            error: row.error,
        }
    }
}

/// `operations:listScheduledFunctions`.
fn list_scheduled(
    ctx: &mut QueryCtx<'_>,
    args: ListScheduledArgs,
) -> FnResult<Vec<ScheduledSummary>> {
    let now = ctx.now_ms();
    operator(&mut ctx.db, ctx.auth, now)?;
    let state = args
        .state
        .as_deref()
        .and_then(ScheduledState::parse)
        .unwrap_or(ScheduledState::Pending);
    let rows = ctx.system().scheduled(state, limit(args.limit))?;
    Ok(rows.into_iter().map(ScheduledSummary::from).collect())
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ScheduledIdArgs {
    scheduled_function_id: String,
}

/// `operations:cancelScheduledFunction`: a pending schedule is canceled (one that started runs
/// to its end, as in Convex).
fn cancel_scheduled(ctx: &mut MutationCtx<'_>, args: ScheduledIdArgs) -> FnResult<Changed> {
    let now = ctx.now_ms();
    let viewer = operator(&mut ctx.db, ctx.auth, now)?;
    let not_found = || FunctionError::not_found("No such scheduled function");
    let id = ctx
        .db
        .normalize_id(functions::scheduler::TABLE, &args.scheduled_function_id)
        .ok_or_else(|| {
            FunctionError::validation(
                "scheduledFunctionId",
                "scheduledFunctionId is not a scheduled function's Id",
            )
        })?;
    let state_now = |ctx: &mut MutationCtx<'_>| -> FnResult<ScheduledState> {
        let doc = ctx.db.get(&id)?.ok_or_else(not_found)?;
        Ok(ScheduledFunction::from_document(&doc)?.state)
    };
    let before = state_now(ctx)?;
    ctx.scheduler().cancel(&id)?;
    let after = state_now(ctx)?;
    let changed = before != after;
    if changed {
        audited(ctx, &viewer, Event::ScheduledFunctionCanceled, &id)?;
    }
    Ok(Changed {
        changed,
        state: after.as_str().to_string(),
    })
}

/// A cron as operators see it.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CronSummary {
    name: String,
    /// "every 3600s" or "cron <expression>".
    schedule: String,
    function: String,
    next_run: Option<f64>,
    /// When the run in progress started, if one is.
    running_since: Option<f64>,
    last_run: Option<f64>,
    last_finished: Option<f64>,
    last_error: Option<String>,
    runs: f64,
    skipped: f64,
}

impl From<CronStatus> for CronSummary {
    fn from(c: CronStatus) -> CronSummary {
        CronSummary {
            name: c.name,
            schedule: c.schedule,
            function: c.function,
            next_run: c.next_run,
            running_since: c.running_since,
            last_run: c.last_run,
            last_finished: c.last_finished,
            last_error: c.last_error,
            runs: c.runs,
            skipped: c.skipped,
        }
    }
}

/// `operations:listCrons`: every declared cron, in declaration order.
fn list_crons(
    ctx: &mut QueryCtx<'_>,
    _args: crate::args::SessionArgs,
) -> FnResult<Vec<CronSummary>> {
    let now = ctx.now_ms();
    operator(&mut ctx.db, ctx.auth, now)?;
    let crons = ctx.system().crons()?;
    Ok(crons.into_iter().map(CronSummary::from).collect())
}

pub fn register(r: &mut Registry) {
    r.query("operations:listJobs", list_jobs);
    r.mutation("operations:retryJob", retry_job);
    r.mutation("operations:cancelJob", cancel_job);
    r.query("operations:listScheduledFunctions", list_scheduled);
    r.mutation("operations:cancelScheduledFunction", cancel_scheduled);
    r.query("operations:listCrons", list_crons);
}
