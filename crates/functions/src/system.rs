//! Read access to the background layer's own tables for operators' functions (what Convex calls
//! `ctx.db.system`): scheduled functions, jobs and crons. These tables belong to no company, so
//! they are read only through here; changes go through `ctx.jobs()` and `ctx.scheduler()`.

use std::collections::HashMap;

use store::{Order, Txn};
use values::{DocumentId, Value};

use crate::context::QueryCtx;
use crate::crons::{self, CronSpec};
use crate::jobs::{self, Job, JobState};
use crate::scheduler::{self, ScheduledFunction, ScheduledState};
use crate::{FnResult, Registry};

/// A declared cron and how its runs went (fields are `None` before its first tick was seen).
#[derive(Clone, Debug, PartialEq)]
pub struct CronStatus {
    pub name: String,
    pub schedule: String,
    pub function: String,
    pub next_run: Option<f64>,
    /// Set while a run is in progress: when it started.
    pub running_since: Option<f64>,
    pub last_run: Option<f64>,
    pub last_finished: Option<f64>,
    pub last_error: Option<String>,
    pub runs: f64,
    /// Ticks skipped because the previous run was still going.
    pub skipped: f64,
}

pub struct System<'a> {
    txn: &'a mut Txn,
    registry: &'a Registry,
}

impl<'a> QueryCtx<'a> {
    pub fn system(&mut self) -> System<'_> {
        let registry = self.info.runtime.registry();
        System {
            txn: self.db.txn_mut(),
            registry,
        }
    }
}

impl System<'_> {
    /// Up to `limit` jobs in `state`: pending and running ones by when they are due (oldest
    /// first), finished ones newest first.
    pub fn jobs(&mut self, state: JobState, limit: usize) -> FnResult<Vec<Job>> {
        let waiting = matches!(state, JobState::Pending | JobState::Running);
        let (index, order) = if waiting {
            (jobs::INDEX_BY_STATE_RUN_AT, Order::Asc)
        } else {
            (jobs::INDEX_BY_STATE_COMPLETED, Order::Desc)
        };
        let docs = self
            .txn
            .query(jobs::TABLE)?
            .with_index(index, |q| q.eq("state", state.as_str()))?
            .order(order)
            .take(limit)?;
        docs.iter().map(Job::from_document).collect()
    }

    /// One job; `None` for a missing one or an Id of another table.
    pub fn job(&mut self, id: &DocumentId) -> FnResult<Option<Job>> {
        match self.txn.get(id)? {
            Some(doc) if doc.table == jobs::TABLE => Job::from_document(&doc).map(Some),
            _ => Ok(None),
        }
    }

    /// Up to `limit` scheduled functions in `state`: pending ones soonest first, others newest
    /// first.
    pub fn scheduled(
        &mut self,
        state: ScheduledState,
        limit: usize,
    ) -> FnResult<Vec<ScheduledFunction>> {
        let (index, order) = match state {
            ScheduledState::Pending => (scheduler::INDEX_BY_STATE_TIME, Order::Asc),
            ScheduledState::InProgress => (scheduler::INDEX_BY_STATE_TIME, Order::Desc),
            _ => (scheduler::INDEX_BY_STATE_COMPLETED, Order::Desc),
        };
        let docs = self
            .txn
            .query(scheduler::TABLE)?
            .with_index(index, |q| q.eq("state", state.as_str()))?
            .order(order)
            .take(limit)?;
        docs.iter().map(ScheduledFunction::from_document).collect()
    }

    /// Every cron the registry declares, in declaration order, with its stored state.
    pub fn crons(&mut self) -> FnResult<Vec<CronStatus>> {
        let mut rows: HashMap<String, store::Document> = self
            .txn
            .query(crons::TABLE)?
            .collect()?
            .into_iter()
            .filter_map(|doc| Some((doc.get("name")?.as_str()?.to_string(), doc)))
            .collect();
        Ok(self
            .registry
            .crons()
            .iter()
            .map(|spec| status(spec, rows.remove(&spec.name)))
            .collect())
    }
}

fn status(spec: &CronSpec, row: Option<store::Document>) -> CronStatus {
    let number = |field: &str| row.as_ref().and_then(|d| d.get(field)?.as_f64());
    CronStatus {
        name: spec.name.clone(),
        schedule: spec.schedule.describe(),
        function: spec.function.clone(),
        next_run: number("next_run"),
        running_since: number("running_since"),
        last_run: number("last_run"),
        last_finished: number("last_finished"),
        last_error: row
            .as_ref()
            .and_then(|d| d.get("last_error").and_then(Value::as_str))
            .map(str::to_string),
        runs: number("runs").unwrap_or(0.0),
        skipped: number("skipped").unwrap_or(0.0),
    }
}
