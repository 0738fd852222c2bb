//! The background layer: work that runs outside requests. Today the scheduler's executor, which runs
//! what `ctx.scheduler()` scheduled (see `functions::scheduler`); the job queue and crons build on
//! the same waking and claiming.

mod executor;
mod queue;

pub use executor::{Executor, SchedulerOptions};
pub use functions::jobs::{Job, JobOptions, JobState};
pub use functions::scheduler::{ScheduledFunction, ScheduledState, TABLE};
pub use queue::{Queue, QueueOptions};
