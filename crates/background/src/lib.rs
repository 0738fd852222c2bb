//! The background layer: work that runs outside requests. The scheduler's executor, which runs
//! what `ctx.scheduler()` scheduled (see `functions::scheduler`); the job queue's workers, which
//! run what `ctx.jobs()` enqueued (see `functions::jobs`); and the cron runner, which runs the
//! crons a registry declares (see `functions::crons`).

pub mod crons;
mod executor;
mod queue;

pub use crons::{CronOptions, CronRunner};
pub use executor::{Executor, SchedulerOptions};
pub use functions::jobs::{Job, JobOptions, JobState};
pub use functions::scheduler::{ScheduledFunction, ScheduledState, TABLE};
pub use queue::{Queue, QueueOptions};
