//! Crons declared in code, next to the module that owns the data:
//!
//! ```ignore
//! r.cron("prune sessions", Schedule::every(Duration::from_secs(3600)), SWEEP, &BatchArgs::default());
//! r.cron("nightly report", Schedule::cron("0 0 3 * * *"), REPORT, &NoArgs {});
//! ```
//!
//! The registry only keeps the declarations; the `background` crate's cron runner claims each tick
//! once across nodes (the `cron_jobs` table) and runs the function as the server.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use store::TableDef;
use values::serde_bridge::to_value;
use values::validator::v;
use values::Value;

use crate::registry::{FunctionKind, Registry};
use crate::typed::FunctionRef;

/// The table of cron state: one row per cron name.
pub const TABLE: &str = "cron_jobs";
pub const INDEX_BY_NAME: &str = "by_name";

/// When a cron runs.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Every interval, counted from the start of the last run (the first run one interval after the
    /// cron is first seen, so a fresh start does not race what it starts with).
    Every(Duration),
    /// A cron expression (the `cron` crate's syntax: seconds first, `sec min hour day month
    /// weekday`), in UTC.
    Cron(Box<cron::Schedule>),
}

impl Schedule {
    pub fn every(interval: Duration) -> Schedule {
        assert!(!interval.is_zero(), "a cron interval must not be zero");
        Schedule::Every(interval)
    }
    /// Panics on a bad expression: crons are declared in code, so that is a programming error.
    pub fn cron(expression: &str) -> Schedule {
        let parsed = cron::Schedule::from_str(expression)
            .unwrap_or_else(|e| panic!("bad cron expression {expression:?}: {e}"));
        Schedule::Cron(Box::new(parsed))
    }
    /// The first tick strictly after `after_ms` (ms since the epoch); None when the expression has
    /// no more ticks.
    pub fn next_after(&self, after_ms: f64) -> Option<f64> {
        match self {
            Schedule::Every(interval) => Some(after_ms + interval.as_secs_f64() * 1000.0),
            Schedule::Cron(schedule) => {
                let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(after_ms as i64)?;
                schedule
                    .after(&at)
                    .next()
                    .map(|t| t.timestamp_millis() as f64)
            }
        }
    }
    /// The first tick of a cron never run before: the next one after now.
    pub fn first(&self, now_ms: f64) -> Option<f64> {
        self.next_after(now_ms)
    }
    /// How it is shown to operators.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(interval) => format!("every {}s", interval.as_secs_f64()),
            Schedule::Cron(schedule) => format!("cron {schedule}"),
        }
    }
}

/// One declared cron.
#[derive(Clone, Debug)]
pub struct CronSpec {
    pub name: String,
    pub schedule: Schedule,
    /// A mutation or an action.
    pub function: String,
    pub kind: FunctionKind,
    pub args: Value,
}

impl Registry {
    /// Declares a cron: `function` runs with `args` on `schedule`, once per tick across nodes.
    /// A mutation that answers an object with `more: true` (a sweep whose batch was full) is called
    /// again at once, each batch its own transaction.
    pub fn cron<A: Serialize, R>(
        &mut self,
        name: &str,
        schedule: Schedule,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> &mut Registry {
        assert!(
            !self.crons.iter().any(|c| c.name == name),
            "cron {name:?} declared twice"
        );
        assert!(
            function.kind() != FunctionKind::Query,
            "cron {name:?}: only mutations and actions can run as crons"
        );
        let args = to_value(args)
            .unwrap_or_else(|e| panic!("arguments of cron {name:?} do not encode: {e}"));
        self.crons.push(CronSpec {
            name: name.to_string(),
            schedule,
            function: function.path().to_string(),
            kind: function.kind(),
            args,
        });
        self
    }

    /// The declared crons, in declaration order.
    pub fn crons(&self) -> &[CronSpec] {
        &self.crons
    }
}

/// `cron_jobs`: per cron, the tick it waits for, the run in progress (if any) and how the last one
/// ended, for operators.
pub fn table() -> TableDef {
    TableDef::new(TABLE)
        .field("name", v::string())
        .field("schedule", v::string())
        .field("function", v::string())
        // Ms since the epoch; absent for an expression with no more ticks.
        .optional("next_run", v::number())
        // Set while a run is in progress (its start); a later tick is skipped meanwhile.
        .optional("running_since", v::number())
        .optional("last_run", v::number())
        .optional("last_finished", v::number())
        .optional("last_error", v::string())
        .field("runs", v::number())
        .field("skipped", v::number())
        .index(INDEX_BY_NAME, &["name"])
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-01-01T00:00:00Z
    const NEW_YEAR_MS: f64 = 1_767_225_600_000.0;

    #[test]
    fn next_ticks() {
        let every = Schedule::every(Duration::from_secs(60));
        assert_eq!(every.next_after(NEW_YEAR_MS), Some(NEW_YEAR_MS + 60_000.0));
        let nightly = Schedule::cron("0 0 3 * * *");
        assert_eq!(
            nightly.next_after(NEW_YEAR_MS + 5.0),
            Some(NEW_YEAR_MS + 3.0 * 3_600_000.0)
        );
        // Strictly after: a claim exactly at a tick moves to the next day's.
        assert_eq!(
            nightly.next_after(NEW_YEAR_MS + 3.0 * 3_600_000.0),
            Some(NEW_YEAR_MS + 27.0 * 3_600_000.0)
        );
    }

    #[test]
    #[should_panic(expected = "bad cron expression")]
    fn a_bad_expression_is_refused_at_declaration() {
        Schedule::cron("every tuesday");
    }
}
