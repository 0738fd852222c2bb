//! Email delivery end to end: mutations queue into the outbox (and a delivery job onto the job
//! queue), the job queue's worker (`background::Queue`) sends to a local SMTP sink started by each
//! test. Every test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set (a fresh
//! database per test).

mod harness;
mod sink;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::email::{self, LogMailer, Mailer, Status};
use background::QueueOptions;
use functions::ErrorCode;
use harness::{backends, field, number, Env, Worker};
use sink::Sink;
use values::Value;

const TOKEN: &str = "tok_9f8e7d6c5b4a";

/// The job worker with retries milliseconds apart: the queue caps every job's backoff (30 s and
/// doubling for email) at 50 ms.
fn fast() -> QueueOptions {
    QueueOptions {
        max_backoff: Duration::from_millis(50),
        fallback_poll: Duration::from_millis(200),
        ..QueueOptions::default()
    }
}

fn reset_text() -> String {
    format!("Reset your password: http://localhost:3200/reset-password?token={TOKEN}\n")
}

#[tokio::test]
async fn queued_email_is_delivered_to_the_relay() {
    for db in backends() {
        let env = Env::open(db).await;
        let sink = Sink::start().await;
        // No polling to speak of: the commit that queues the email must wake the worker.
        let options = QueueOptions {
            fallback_poll: Duration::from_secs(3600),
            ..fast()
        };
        let worker = Worker::start(&env.store, env.smtp(&sink.url()), options);
        let id = env
            .queue("Ann@Example.org", "Reset your password", &reset_text())
            .await
            .unwrap();
        let row = env.wait_for_status(&id, Status::Sent).await;
        assert_eq!(number(&row, "attempts"), 1.0, "{db:?}");
        assert!(row.get("sent_at").is_some() && row.get("last_error").is_none());
        assert_eq!(field(&row, "kind"), "password_reset");
        assert_eq!(field(&row, "correlation_id"), "test-correlation");

        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "{db:?}");
        let message = &messages[0];
        assert_eq!(message.rcpt_to, ["Ann@Example.org"]);
        assert_eq!(message.mail_from, "no-reply@example.org");
        assert_eq!(message.header("To").unwrap(), "Ann@Example.org");
        assert_eq!(
            message.header("From").unwrap(),
            "SupportSignal <no-reply@example.org>"
        );
        assert_eq!(message.header("Subject").unwrap(), "Reset your password");
        assert!(message.header("Message-ID").unwrap().contains(&id));
        assert!(
            message.body().contains(&format!("token={TOKEN}")),
            "{}",
            message.data
        );
        worker.stop().await;
    }
}

#[tokio::test]
async fn a_mutation_that_fails_leaves_no_email() {
    for db in backends() {
        let env = Env::open(db).await;
        let sink = Sink::start().await;
        let worker = Worker::start(&env.store, env.smtp(&sink.url()), fast());
        let failed = env
            .call("queue", "ann@example.org", "Welcome", "rolled back", true)
            .await;
        assert!(failed.is_err(), "{db:?}");
        let bad = env
            .call("queue", "not an address", "Welcome", "x", false)
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Some(ErrorCode::Validation));
        assert!(bad.to_string().contains("recipient"), "{bad}");
        let bad = env
            .call(
                "queue",
                "ann@example.org",
                "Two\r\nBcc: x@y.org",
                "x",
                false,
            )
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Some(ErrorCode::Validation));

        let id = env
            .queue("bob@example.org", "Committed", "kept")
            .await
            .unwrap();
        env.wait_for_status(&id, Status::Sent).await;
        assert_eq!(env.rows().await.len(), 1, "{db:?}");
        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].rcpt_to, ["bob@example.org"]);
        worker.stop().await;
    }
}

#[tokio::test]
async fn email_queued_by_server_code_in_its_own_transaction_is_delivered() {
    for db in backends() {
        let env = Env::open(db).await;
        let sink = Sink::start().await;
        let worker = Worker::start(&env.store, env.smtp(&sink.url()), fast());
        let id = env
            .queue_in_txn("ann@example.org", "Invited", "join us")
            .await;
        let row = env.wait_for_status(&id, Status::Sent).await;
        assert_eq!(field(&row, "kind"), "invitation", "{db:?}");
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "{db:?}");
        assert_eq!(messages[0].rcpt_to, ["ann@example.org"]);
        worker.stop().await;
    }
}

#[tokio::test]
async fn an_unsent_email_without_a_job_gets_one_and_is_delivered() {
    for db in backends() {
        let env = Env::open(db).await;
        let queued = env.queue("a@example.org", "Queued", "1").await.unwrap();
        let left_over = env.insert_without_job("b@example.org", "Left over").await;
        assert_eq!(env.jobs().await.len(), 1, "{db:?}");
        assert_eq!(env.requeue().await, 2.0, "{db:?}");
        // One job per row: the queued email keeps the one it had.
        assert_eq!(env.jobs().await.len(), 2, "{db:?}");
        env.job(&left_over).await;

        let sink = Sink::start().await;
        let worker = Worker::start(&env.store, env.smtp(&sink.url()), fast());
        env.wait_for_status(&queued, Status::Sent).await;
        env.wait_for_status(&left_over, Status::Sent).await;
        assert_eq!(sink.messages().len(), 2, "{db:?}");
        assert_eq!(env.requeue().await, 0.0, "nothing is left unsent");
        worker.stop().await;
    }
}

#[tokio::test]
async fn transient_failures_are_retried_then_delivered() {
    for db in backends() {
        let env = Env::open(db).await;
        let sink = Sink::start().await;
        sink.fail_transiently(2);
        let worker = Worker::start(&env.store, env.smtp(&sink.url()), fast());
        let id = env
            .queue("ann@example.org", "Retry me", "body")
            .await
            .unwrap();
        let row = env.wait_for_status(&id, Status::Sent).await;
        assert_eq!(number(&row, "attempts"), 3.0, "{db:?}");
        assert!(row.get("last_error").is_none(), "cleared once sent");
        assert_eq!((sink.refused(), sink.messages().len()), (2, 1));
        worker.stop().await;
    }
}

#[tokio::test]
async fn permanent_refusal_fails_at_once_and_retries_are_bounded() {
    for db in backends() {
        let env = Env::open(db).await;
        let refusing = Sink::start().await;
        refusing.fail_permanently();
        let worker = Worker::start(&env.store, env.smtp(&refusing.url()), fast());
        let id = env
            .queue("gone@example.org", "Hello", "body")
            .await
            .unwrap();
        let row = env.wait_for_status(&id, Status::Failed).await;
        assert_eq!(number(&row, "attempts"), 1.0, "{db:?}");
        assert!(field(&row, "last_error").contains("550"), "{row:?}");
        assert!(refusing.messages().is_empty());
        worker.stop().await;

        let busy = Sink::start().await;
        busy.fail_transiently(usize::MAX);
        let worker = Worker::start(&env.store, env.smtp(&busy.url()), fast());
        let id = env.queue("ann@example.org", "Hello", "body").await.unwrap();
        let row = env.wait_for_status(&id, Status::Failed).await;
        let max = f64::from(email::MAX_ATTEMPTS);
        assert_eq!(number(&row, "attempts"), max, "{db:?}");
        assert!(field(&row, "last_error").contains("451"), "{row:?}");
        assert_eq!(busy.refused(), email::MAX_ATTEMPTS as usize);
        // Failing the row ends the job (rather than leaving it to die): nothing is left to retry.
        env.wait_for_job(&id, "succeeded").await;
        worker.stop().await;
    }
}

/// Collects what the current thread's tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime keeps the worker task on this thread, where the log capture is installed.
#[tokio::test(flavor = "current_thread")]
async fn without_smtp_the_email_is_logged_without_its_body_and_kept() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _capture = tracing::subscriber::set_default(subscriber);
    for db in backends() {
        let env = Env::open(db).await;
        let worker = Worker::start(&env.store, Arc::new(LogMailer), fast());
        let id = env
            .queue("ann@example.org", "Reset your password", &reset_text())
            .await
            .unwrap();
        let row = env.wait_for_status(&id, Status::Logged).await;
        assert_eq!(field(&row, "text"), reset_text(), "{db:?}");
        assert!(row.get("sent_at").is_none());
        worker.stop().await;

        let printed = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = printed
            .lines()
            .find(|l| l.contains(&id))
            .unwrap_or_else(|| panic!("no log line names {id}: {printed}"));
        for expected in ["ann@example.org", "Reset your password", "password_reset"] {
            assert!(line.contains(expected), "{line}");
        }
        assert!(!printed.contains(TOKEN), "the body leaked into the logs");
    }
}

#[tokio::test]
async fn worker_survives_the_relay_being_down() {
    for db in backends() {
        let env = Env::open(db).await;
        // A port nobody listens on: every connection is refused.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let down = format!("smtp://{}", closed.local_addr().unwrap());
        drop(closed);
        // Retries far enough apart that the row is seen between two of them.
        let options = QueueOptions {
            max_backoff: Duration::from_secs(1),
            ..fast()
        };
        let worker = Worker::start(&env.store, env.smtp(&down), options);
        let id = env.queue("ann@example.org", "Later", "body").await.unwrap();
        let row = env
            .wait_for(&id, |row| {
                field(row, "status") == "pending" && number(row, "attempts") >= 2.0
            })
            .await;
        assert!(!field(&row, "last_error").is_empty(), "{db:?}");
        worker.stop().await;
        let job = env.job(&id).await;
        assert_eq!(
            field(&job, "state"),
            "pending",
            "still to be retried: {job:?}"
        );

        // Another worker (a restart, another node) picks the retry up once a relay answers.
        let sink = Sink::start().await;
        let worker = Worker::start(&env.store, env.smtp(&sink.url()), fast());
        let row = env.wait_for_status(&id, Status::Sent).await;
        assert!(number(&row, "attempts") >= 3.0, "{db:?}");
        assert_eq!(sink.messages().len(), 1);
        worker.stop().await;
    }
}

#[tokio::test]
async fn an_abandoned_claim_is_sent_again_after_its_lease() {
    for db in backends() {
        let env = Env::open(db).await;
        let expired = env.queue("a@example.org", "Expired", "1").await.unwrap();
        let leased = env.queue("b@example.org", "Leased", "2").await.unwrap();
        let exhausted = env.queue("c@example.org", "Exhausted", "3").await.unwrap();
        // As a worker that crashed after claiming would have left them.
        env.set_claim(&expired, 1.0, -1000.0).await;
        env.set_claim(&leased, 1.0, 3_600_000.0).await;
        env.set_claim(&exhausted, 8.0, -1000.0).await;

        let sink = Sink::start().await;
        let worker = Worker::start(&env.store, env.smtp(&sink.url()), fast());
        let row = env.wait_for_status(&expired, Status::Sent).await;
        assert_eq!(number(&row, "attempts"), 2.0, "{db:?}");
        let row = env.wait_for_status(&exhausted, Status::Failed).await;
        assert!(field(&row, "last_error").contains("never reported back"));
        let row = env.row(&leased).await;
        assert_eq!(
            field(&row, "status"),
            "sending",
            "a live lease is respected"
        );
        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].rcpt_to, ["a@example.org"]);
        worker.stop().await;
    }
}

#[tokio::test]
async fn a_late_outcome_does_not_overwrite_a_later_attempt() {
    for db in backends() {
        let env = Env::open(db).await;
        let id = env.queue("ann@example.org", "Hello", "body").await.unwrap();
        let target = || ("outboxId", Value::from(id.as_str()));
        let claim = || env.run("email:claimDelivery", Value::object([target()]));
        let record = |attempt: f64, outcome: &str| {
            let args = Value::object([
                target(),
                ("attempt", Value::from(attempt)),
                ("outcome", Value::from(outcome)),
                ("error", Value::from("550 mailbox unavailable")),
            ]);
            env.run("email:recordDelivery", args)
        };
        // Attempt 1 is claimed, then taken over by attempt 2 (its node seemed dead).
        let first = claim().await.unwrap();
        assert_eq!(first.get("attempt"), Some(&Value::from(1.0)), "{db:?}");
        assert_eq!(first.get("text"), Some(&Value::from("body")));
        claim().await.unwrap();
        assert_eq!(record(1.0, "failed").await.unwrap(), Value::Boolean(false));
        let row = env.row(&id).await;
        assert_eq!(field(&row, "status"), "sending", "{db:?}");
        assert_eq!(number(&row, "attempts"), 2.0);
        assert!(row.get("last_error").is_none(), "{row:?}");
        assert_eq!(record(2.0, "failed").await.unwrap(), Value::Boolean(true));
        let row = env.row(&id).await;
        assert_eq!(field(&row, "status"), "failed", "{db:?}");
        // A final row is not claimed again: its job has nothing to send.
        assert_eq!(claim().await.unwrap(), Value::Null);
    }
}

#[tokio::test]
async fn two_nodes_send_each_email_once() {
    for db in backends() {
        let env = Env::open(db).await;
        // On PostgreSQL the second node has a store of its own, as a second server would.
        let other = env.second_node().await;
        let sink = Sink::start().await;
        let options = QueueOptions {
            batch: 3,
            concurrency: 2,
            ..fast()
        };
        let a = Worker::start(&env.store, env.smtp(&sink.url()), options.clone());
        let b = Worker::start(&other, env.smtp(&sink.url()), options);
        let mut ids = Vec::new();
        for n in 0..12 {
            let to = format!("user{n}@example.org");
            ids.push(env.queue(&to, "Hello", "body").await.unwrap());
        }
        for id in &ids {
            env.wait_for_status(id, Status::Sent).await;
        }
        let mut message_ids: Vec<String> = sink
            .messages()
            .iter()
            .map(|m| m.header("Message-ID").unwrap())
            .collect();
        message_ids.sort();
        message_ids.dedup();
        assert_eq!(
            (sink.messages().len(), message_ids.len()),
            (12, 12),
            "{db:?}"
        );
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test]
async fn credentials_from_the_url_are_used() {
    let env = Env::open(harness::Db::Sqlite).await;
    let sink = Sink::start().await;
    let url = format!("smtp://mailer%40example.org:p%3Ass@{}", sink.addr);
    let worker = Worker::start(&env.store, env.smtp(&url), fast());
    let id = env.queue("ann@example.org", "Hi", "body").await.unwrap();
    env.wait_for_status(&id, Status::Sent).await;
    assert_eq!(sink.logins(), ["\0mailer@example.org\0p:ss"]);
    worker.stop().await;
}

#[tokio::test]
async fn purge_removes_only_old_finished_rows() {
    for db in backends() {
        let env = Env::open(db).await;
        let worker = Worker::start(&env.store, Arc::new(LogMailer), fast());
        let done = env.queue("a@example.org", "Done", "1").await.unwrap();
        env.wait_for_status(&done, Status::Logged).await;
        worker.stop().await;
        let waiting = env.queue("b@example.org", "Waiting", "2").await.unwrap();

        let purged = env.purge(-60_000.0).await;
        assert_eq!(purged, 0, "nothing finished a minute ago");
        let purged = env.purge(1000.0).await;
        assert_eq!(purged, 1, "{db:?}");
        let rows = env.rows().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id.encode(), waiting);
    }
}

#[test]
fn mailer_follows_the_configuration() {
    let config = |vars: &[(&str, &str)]| {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config::Config::from_env(config::Overrides::default(), move |key| {
            vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })
        .unwrap()
    };
    // Nothing observable distinguishes the two through the trait; building them must succeed.
    let _log: Arc<dyn Mailer> = email::mailer_from_config(&config(&[])).unwrap();
    let _smtp = email::mailer_from_config(&config(&[("SMTP_URL", "smtps://u:p@mail.example.org")]))
        .unwrap();
    let settings = config::SmtpSettings::parse("smtp://127.0.0.1:2525").unwrap();
    let bad = email::SmtpMailer::new(&settings, "SupportSignal <nobody>").err();
    assert!(bad.is_some_and(|e| !e.transient && e.message.contains("SMTP_FROM")));
}
