//! The background layer: work that runs outside requests. The scheduler's executor, which runs
//! what `ctx.scheduler()` scheduled (see `functions::scheduler`), and the cron runner, which runs
//! the crons a registry declares (see `functions::crons`).

mod executor;

pub use executor::{Executor, SchedulerOptions};
pub use functions::scheduler::{ScheduledFunction, ScheduledState, TABLE};
pub mod crons;
pub use crons::{CronOptions, CronRunner};
