//! Operators and the background layer: a job that fails for good shows up as dead, a system
//! administrator retries it (audited) and cancels pending work; crons list their runs; /metrics
//! counts runs and failures. Everyone else is refused.

mod harness;
mod seed;

use std::time::{Duration, Instant};

use functions::jobs::JobOptions;
use functions::{FnResult, FunctionError, FunctionRef, MutationCtx, Registry};
use harness::{backends, App, Place};
use seed::signed_in;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use store::Schema;
use values::Typed;

#[derive(Serialize, Deserialize, Typed)]
struct NoArgs {}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
struct SetUp {
    failing_job: String,
    later_job: String,
    later_schedule: String,
}

const FAILS: FunctionRef<NoArgs, ()> = FunctionRef::internal_mutation("testing:alwaysFails");
const SET_UP: FunctionRef<NoArgs, SetUp> = FunctionRef::mutation("testing:setUp");

fn always_fails(_: &mut MutationCtx<'_>, _: NoArgs) -> FnResult<()> {
    Err(FunctionError::internal("the relay said no"))
}

/// A job that dies at its first attempt, a job due in an hour and a schedule due in an hour.
fn set_up(ctx: &mut MutationCtx<'_>, _: NoArgs) -> FnResult<SetUp> {
    let once = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let failing_job = ctx.jobs().enqueue(FAILS, &NoArgs {}, once)?;
    let later = JobOptions {
        delay_ms: 3_600_000.0,
        ..JobOptions::default()
    };
    let later_job = ctx.jobs().enqueue(FAILS, &NoArgs {}, later)?;
    let later_schedule = ctx.scheduler().run_after(3_600_000.0, FAILS, &NoArgs {})?;
    Ok(SetUp {
        failing_job: failing_job.encode(),
        later_job: later_job.encode(),
        later_schedule: later_schedule.encode(),
    })
}

fn extend(schema: Schema, r: &mut Registry) -> Schema {
    r.internal_mutation(FAILS, always_fails);
    r.mutation(SET_UP, set_up);
    schema
}

/// Polls `listJobs` until the job with `id` is in `state`; returns it.
async fn job_in_state(app: &App, token: &str, id: &str, state: &str) -> Json {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = app
            .ok(
                "query",
                "operations:listJobs",
                json!({"sessionToken": token, "state": state}),
            )
            .await;
        if let Some(job) = jobs.as_array().unwrap().iter().find(|j| j["id"] == id) {
            return job.clone();
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never reached {state}: {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn operators_see_retry_and_cancel_background_work() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start_extended(&place, extend).await;
        let root = signed_in(&app, None, "root@x.org", "system_admin").await;
        let company = seed::company(&app, "ABC Care").await;
        let admin = signed_in(&app, Some(&company), "admin@abc.org", "company_admin").await;

        let ids = app.ok("mutation", "testing:setUp", json!({})).await;
        let failing = ids["failingJob"].as_str().unwrap();

        // The failure is kept with the job, for the operator.
        let dead = job_in_state(&app, &root, failing, "dead").await;
        assert_eq!(dead["function"], "testing:alwaysFails", "{db:?}");
        assert_eq!(dead["attempts"], 1.0);
        assert!(
            dead["lastError"].as_str().is_some_and(|e| !e.is_empty()),
            "{db:?}: {dead}"
        );
        // A company administrator sees none of it.
        assert_eq!(
            app.code(
                "query",
                "operations:listJobs",
                json!({"sessionToken": admin, "state": "dead"})
            )
            .await,
            "FORBIDDEN"
        );
        assert_eq!(
            app.code(
                "mutation",
                "operations:retryJob",
                json!({"sessionToken": admin, "jobId": failing})
            )
            .await,
            "FORBIDDEN"
        );

        // Retried: it runs again from its first attempt (and fails again here).
        let retried = app
            .ok(
                "mutation",
                "operations:retryJob",
                json!({"sessionToken": root, "jobId": failing}),
            )
            .await;
        assert_eq!(retried["changed"], true, "{db:?}: {retried}");
        assert_eq!(retried["state"], "pending");
        let dead_again = job_in_state(&app, &root, failing, "dead").await;
        assert_eq!(dead_again["attempts"], 1.0, "{db:?}: attempts were reset");
        assert!(dead_again["completedAt"].as_f64() > dead["completedAt"].as_f64());

        // A pending job and a pending schedule are cancelled; a second cancel changes nothing.
        let later = ids["laterJob"].as_str().unwrap();
        job_in_state(&app, &root, later, "pending").await;
        let cancel = json!({"sessionToken": root, "jobId": later});
        let canceled = app
            .ok("mutation", "operations:cancelJob", cancel.clone())
            .await;
        assert_eq!(canceled, json!({"changed": true, "state": "canceled"}));
        let again = app.ok("mutation", "operations:cancelJob", cancel).await;
        assert_eq!(again, json!({"changed": false, "state": "canceled"}));
        // A dead job is retried, not cancelled.
        let not_pending = app
            .ok(
                "mutation",
                "operations:cancelJob",
                json!({"sessionToken": root, "jobId": failing}),
            )
            .await;
        assert_eq!(not_pending, json!({"changed": false, "state": "dead"}));

        let schedule = ids["laterSchedule"].as_str().unwrap();
        let pending = app
            .ok(
                "query",
                "operations:listScheduledFunctions",
                json!({"sessionToken": root}),
            )
            .await;
        let listed = pending
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == schedule)
            .unwrap_or_else(|| panic!("{db:?}: schedule not listed: {pending}"));
        assert_eq!(listed["function"], "testing:alwaysFails");
        assert_eq!(listed["state"], "pending");
        let canceled = app
            .ok(
                "mutation",
                "operations:cancelScheduledFunction",
                json!({"sessionToken": root, "scheduledFunctionId": schedule}),
            )
            .await;
        assert_eq!(canceled, json!({"changed": true, "state": "canceled"}));
        let canceled_list = app
            .ok(
                "query",
                "operations:listScheduledFunctions",
                json!({"sessionToken": root, "state": "canceled"}),
            )
            .await;
        assert!(
            canceled_list
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == schedule),
            "{db:?}: {canceled_list}"
        );
        assert_eq!(
            app.code(
                "mutation",
                "operations:retryJob",
                json!({"sessionToken": root, "jobId": "not-an-id"})
            )
            .await,
            "VALIDATION"
        );

        // Every change an operator made is in the audit log.
        let events = app
            .ok(
                "query",
                "audit:listEvents",
                json!({"sessionToken": root, "allCompanies": true}),
            )
            .await;
        let names: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        for event in ["job_retried", "job_canceled", "scheduled_function_canceled"] {
            assert_eq!(
                names.iter().filter(|n| **n == event).count(),
                1,
                "{db:?}: {event} in {names:?}"
            );
        }

        // The crons the application declares, with when they run next.
        let crons = app
            .ok(
                "query",
                "operations:listCrons",
                json!({"sessionToken": root}),
            )
            .await;
        let prune = crons
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "prune emails")
            .unwrap_or_else(|| panic!("{db:?}: {crons}"));
        assert!(prune["schedule"].as_str().unwrap().starts_with("every "));
        assert_eq!(prune["function"], "housekeeping:sweepEmails");
        assert!(prune["nextRun"].as_f64().is_some(), "{db:?}: {prune}");

        // This node counted both failed runs.
        let metrics = app
            .http
            .get(format!("{}/metrics", app.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let failures = metrics
            .lines()
            .find_map(|l| l.strip_prefix("supportsignal_background_failures_total{kind=\"job\"} "))
            .unwrap_or_else(|| panic!("{db:?}: no job failures line in\n{metrics}"));
        assert_eq!(failures, "2", "{db:?}");
        let started = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("supportsignal_background_start_lag_seconds_count{kind=\"job\"} ")
            })
            .unwrap_or_else(|| panic!("{db:?}: no job lag count in\n{metrics}"));
        assert_eq!(started, "2", "{db:?}: {metrics}");
        app.stop().await;
    }
}
