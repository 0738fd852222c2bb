//! Housekeeping: each module's sweep (a cron) deletes dead rows and keeps live ones, and a sweep
//! claimed by one runner is skipped by the others until its interval has passed.

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../seed/mod.rs"]
mod seed;

use std::collections::HashMap;

use background::crons::{run_due, CronOptions, CronRun};
use functions::crons::TABLE as CRONS;
use harness::{backends, App, Db, Place};
use seed::{anyone, insert, links, now_ms, rows, token_of, user};
use serde_json::json;
use values::Value;

const DAY: f64 = 86_400_000.0;
const RESET_LINK: &str = "/reset-password?token=";

/// What one sweep of a round deleted.
#[derive(Debug)]
struct Swept {
    sweep: String,
    deleted: usize,
}

/// Every sweep once, as its cron would run it two intervals from now (once the server's runner has
/// written each cron's row, so the two do not race).
async fn run_round(app: &App) -> Vec<Swept> {
    let runtime = app.runtime();
    let crons = runtime.registry().crons().len();
    for _ in 0..400 {
        let states = background::crons::states(runtime.store()).await.unwrap();
        if states.len() == crons && states.values().all(|s| s.get("running_since").is_none()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let later = now_ms() + 2.0 * 3600e3;
    let runs = run_due(&runtime, later, &CronOptions::default())
        .await
        .unwrap();
    runs.iter().map(swept).collect()
}

fn swept(run: &CronRun) -> Swept {
    assert!(run.error.is_none(), "{run:?}");
    let deleted = run
        .results
        .iter()
        .filter_map(|r| match r {
            Value::Object(o) => o.get("deleted").and_then(Value::as_f64),
            _ => None,
        })
        .sum::<f64>() as usize;
    Swept {
        sweep: run.function.clone(),
        deleted,
    }
}

fn deleted(round: &[Swept]) -> HashMap<&str, usize> {
    round
        .iter()
        .map(|s| (s.sweep.as_str(), s.deleted))
        .collect()
}

async fn ids(app: &App, table: &'static str) -> Vec<String> {
    let mut ids: Vec<String> = rows(app, table)
        .await
        .iter()
        .map(|r| r.id.encode())
        .collect();
    ids.sort();
    ids
}

fn session(user: &str, expires_at: f64) -> serde_json::Value {
    let token = hex::encode(rand::random::<[u8; 32]>());
    json!({"user_id": user, "token_hash": app::identity::sessions::hash_token(&token),
           "created_at": expires_at - DAY, "expires_at": expires_at, "remember_me": false})
}

fn email(status: &str, at: f64) -> serde_json::Value {
    json!({"to": "someone@example.org", "subject": "Hello", "text": "a link", "kind": "test",
           "status": status, "attempts": 1.0, "next_attempt_at": at, "created_at": at})
}

#[tokio::test]
async fn a_round_removes_dead_rows_and_keeps_live_ones() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let now = now_ms();
        let live = anyone(&app, None, "frontline_worker").await;
        let mut expired_sessions = Vec::new();
        for _ in 0..3 {
            expired_sessions.push(insert(&app, "sessions", session(&live.id, now - 1000.0)).await);
        }
        let admin_session = expired_sessions[0].clone();

        // A reset link just sent (unused, unexpired) and one that ran out.
        user(&app, None, "reset@example.org", "frontline_worker").await;
        app.ok(
            "action",
            "auth:requestPasswordReset",
            json!({"email": "reset@example.org"}),
        )
        .await;
        let fresh_reset = ids(&app, "password_reset_tokens").await;
        insert(
            &app,
            "password_reset_tokens",
            json!({"user_id": live.id, "token_hash": "old", "created_at": now - 2.0 * 3600e3,
                   "expires_at": now - 3600e3}),
        )
        .await;

        // The reset request above counted against its address: a live window too.
        let mut windows = ids(&app, "rate_limits").await;
        let current_window = insert(
            &app,
            "rate_limits",
            json!({"key": "sign_in_failures:10.0.0.1", "window_start": now, "count": 3.0}),
        )
        .await;
        insert(
            &app,
            "rate_limits",
            json!({"key": "sign_in_failures:10.0.0.2", "window_start": now - 2.0 * DAY, "count": 3.0}),
        )
        .await;

        // Final emails older than the retention go; recent ones and unsent ones stay.
        let emails_before = ids(&app, "email_outbox").await;
        insert(&app, "email_outbox", email("sent", now - 8.0 * DAY)).await;
        insert(&app, "email_outbox", email("failed", now - 8.0 * DAY)).await;
        insert(&app, "email_outbox", email("logged", now - 8.0 * DAY)).await;
        let recent = insert(&app, "email_outbox", email("sent", now - DAY)).await;
        let unsent = insert(&app, "email_outbox", email("pending", now - 8.0 * DAY)).await;

        let live_state = insert(
            &app,
            "oauth_used_states",
            json!({"nonce": "live", "expires_at": now + 600e3}),
        )
        .await;
        insert(
            &app,
            "oauth_used_states",
            json!({"nonce": "done", "expires_at": now - 1000.0}),
        )
        .await;

        // Impersonations are kept a day past their expiry.
        let impersonation = |expires_at: f64| {
            json!({"admin_user_id": live.id, "admin_session_id": admin_session,
                   "target_user_id": live.id, "token_hash": format!("imp{expires_at}"),
                   "reason": "support", "created_at": expires_at - 1800e3,
                   "expires_at": expires_at, "is_active": false, "correlation_id": "c"})
        };
        let recent_impersonation =
            insert(&app, "impersonation_sessions", impersonation(now - 3600e3)).await;
        insert(
            &app,
            "impersonation_sessions",
            impersonation(now - 2.0 * DAY),
        )
        .await;

        let round = run_round(&app).await;
        let counts = deleted(&round);
        assert_eq!(
            counts.len(),
            app.runtime().registry().crons().len(),
            "{round:?}"
        );
        assert_eq!(counts["housekeeping:sweepSessions"], 3, "{db:?}");
        assert_eq!(counts["housekeeping:sweepPasswordResets"], 1, "{db:?}");
        assert_eq!(counts["housekeeping:sweepRateLimits"], 1, "{db:?}");
        assert_eq!(counts["housekeeping:sweepEmails"], 3, "{db:?}");
        assert_eq!(counts["housekeeping:sweepOAuthStates"], 1, "{db:?}");
        assert_eq!(counts["housekeeping:sweepImpersonations"], 1, "{db:?}");

        let sessions = ids(&app, "sessions").await;
        assert!(expired_sessions.iter().all(|s| !sessions.contains(s)));
        assert_eq!(sessions.len(), 1, "only the live session is left");
        assert_eq!(ids(&app, "password_reset_tokens").await, fresh_reset);
        windows.push(current_window);
        windows.sort();
        assert_eq!(ids(&app, "rate_limits").await, windows);
        let mut kept = emails_before.clone();
        kept.extend([recent, unsent]);
        kept.sort();
        assert_eq!(ids(&app, "email_outbox").await, kept);
        assert_eq!(ids(&app, "oauth_used_states").await, vec![live_state]);
        assert_eq!(
            ids(&app, "impersonation_sessions").await,
            vec![recent_impersonation]
        );

        // What was kept still works.
        let me = app
            .ok(
                "query",
                "users:getCurrent",
                json!({"sessionToken": live.token}),
            )
            .await;
        assert_eq!(
            me["_id"],
            live.id.as_str(),
            "the live session still signs in: {me}"
        );
        let link = links(&app, "reset@example.org", RESET_LINK).await;
        app.ok(
            "mutation",
            "auth:resetPassword",
            json!({"token": token_of(&link[0]), "newPassword": "N3w!Secret"}),
        )
        .await;
        app.stop().await;
    }
}

fn claimed(round: &[CronRun]) -> usize {
    round.len()
}

#[tokio::test]
async fn one_runner_claims_a_round_and_the_others_skip_it() {
    for db in backends() {
        let place = Place::new(db).await;
        let first = App::start(&place).await;
        // A second node on the same database; SQLite has one process, so two runners in it there.
        let second = match db {
            Db::Postgres => Some(App::start(&place).await),
            Db::Sqlite => None,
        };
        let one = first.runtime();
        let other = second
            .as_ref()
            .map_or_else(|| first.runtime(), App::runtime);
        // Each sweep is claimed on its own (the sweeps are separate crons): the two runners may
        // share the round, but no sweep runs on both.
        run_round(&first).await;
        let options = CronOptions::default();
        let later = now_ms() + 4.0 * 3600e3;
        let (a, b) = tokio::join!(
            run_due(&one, later, &options),
            run_due(&other, later, &options)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let all = one.registry().crons().len();
        assert_eq!(
            claimed(&a) + claimed(&b),
            all,
            "{db:?}: each sweep ran once: {a:?} {b:?}"
        );
        assert!(
            a.iter().all(|x| b.iter().all(|y| x.name != y.name)),
            "{db:?}: one claimer took each sweep"
        );
        // Within the interval, nobody runs the round again.
        for runtime in [&one, &other] {
            let again = run_due(runtime, later, &options).await.unwrap();
            assert!(again.is_empty(), "{db:?}: {again:?}");
        }
        let runs = rows(&first, CRONS).await;
        assert_eq!(runs.len(), all, "one row per sweep");
        assert!(runs
            .iter()
            .all(|r| r.get("last_run").and_then(Value::as_f64).is_some()));
        if let Some(second) = second {
            second.stop().await;
        }
        first.stop().await;
    }
}

#[tokio::test]
async fn the_background_runner_sweeps_and_stops_on_shutdown() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let live = anyone(&app, None, "team_lead").await;
        let dead = insert(&app, "sessions", session(&live.id, now_ms() - 1000.0)).await;
        // As if every node stopped past the sweeps' next tick: the next start runs them.
        let runtime = app.runtime();
        let crons = runtime.registry().crons().len();
        for _ in 0..400 {
            let states = background::crons::states(runtime.store()).await.unwrap();
            if states.len() == crons && states.values().all(|s| s.get("running_since").is_none()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let past = now_ms() - 1.0;
        app.store
            .mutate(move |txn| {
                for doc in txn.query(CRONS)?.collect()? {
                    let patch =
                        store::Patch::from([("next_run".to_string(), Some(Value::Float64(past)))]);
                    txn.patch(&doc.id, patch)?;
                }
                Ok::<_, store::StoreError>(())
            })
            .await
            .unwrap();
        app.stop().await;
        let app = App::start(&place).await;
        let mut swept = false;
        for _ in 0..400 {
            if !ids(&app, "sessions").await.contains(&dead) {
                swept = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(
            swept,
            "{db:?}: the runner's first round deletes the expired session"
        );
        assert_eq!(ids(&app, "sessions").await.len(), 1, "the live one stays");
        app.stop().await;
    }
}
