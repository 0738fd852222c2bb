//! Housekeeping: each sweep deletes dead rows and keeps live ones, and a round claimed by one runner
//! is skipped by the others until its interval has passed.

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../seed/mod.rs"]
mod seed;

use std::collections::HashMap;

use app::housekeeping::{self, HousekeepingOptions, Swept};
use harness::{backends, App, Db, Place};
use seed::{anyone, insert, links, now_ms, rows, token_of, user};
use serde_json::json;
use values::Value;

const DAY: f64 = 86_400_000.0;
const RESET_LINK: &str = "/reset-password?token=";

/// Small batches, so a sweep with more dead rows than one batch has to go round again.
fn options() -> HousekeepingOptions {
    HousekeepingOptions {
        batch: 2,
        ..HousekeepingOptions::default()
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

        let round = housekeeping::run_round(&app.runtime(), &options())
            .await
            .unwrap();
        let counts = deleted(&round);
        assert_eq!(counts.len(), housekeeping::sweeps().len(), "{round:?}");
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

fn claimed(round: &[Swept]) -> usize {
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
        let options = options();
        let (a, b) = tokio::join!(
            housekeeping::run_round(&one, &options),
            housekeeping::run_round(&other, &options)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let all = housekeeping::sweeps().len();
        assert_eq!(
            claimed(&a) + claimed(&b),
            all,
            "{db:?}: each sweep ran once: {a:?} {b:?}"
        );
        assert!(
            a.is_empty() || b.is_empty(),
            "{db:?}: one claimer took the round"
        );
        // Within the interval, nobody runs the round again.
        for runtime in [&one, &other] {
            let again = housekeeping::run_round(runtime, &options).await.unwrap();
            assert!(again.is_empty(), "{db:?}: {again:?}");
        }
        let runs = rows(&first, housekeeping::RUNS).await;
        assert_eq!(runs.len(), all, "one row per sweep");
        assert!(runs
            .iter()
            .all(|r| r.get("last_run_at").and_then(Value::as_f64).is_some()));
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
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = housekeeping::spawn(app.runtime(), options(), async move {
            let _ = stopped.await;
        });
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
        let _ = stop.send(());
        task.await.unwrap();
        assert_eq!(ids(&app, "sessions").await.len(), 1, "the live one stays");
        app.stop().await;
    }
}
