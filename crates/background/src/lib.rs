//! The background layer: work that runs outside requests. Today the scheduler's executor, which runs
//! what `ctx.scheduler()` scheduled (see `functions::scheduler`); the job queue and crons build on
//! the same waking and claiming.

mod executor;

pub use executor::{Executor, SchedulerOptions};
pub use functions::scheduler::{ScheduledFunction, ScheduledState, TABLE};
pub mod crons;
pub use crons::{CronOptions, CronRunner};
