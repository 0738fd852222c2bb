//! Runs of subscribed queries, shared between identical subscriptions.
//!
//! When a commit changes a company's list, every subscriber of that list asks for a run of the
//! same query with the same arguments as the same caller. One run serves them all, provided it
//! started after the feed position the subscriber has to reflect: a run's snapshot is taken after
//! it starts, so it sees every commit up to the position read when it was created. Runs are also
//! capped per node, so a wave of invalidations queues instead of opening a read per subscriber at
//! once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use functions::{
    Auth, Call, Caller, ErrorCode, FunctionError, FunctionKind, QueryRun, RequestId, Runtime,
};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use store::{ReadSet, Ts};
use tokio::sync::{watch, Semaphore};
use values::{Format, Value};

use super::hub::Subscriptions;
use super::metrics::Metrics;

/// Subscription query runs in progress at once on a node.
const CONCURRENT_RUNS: usize = 32;

/// What makes two subscriptions' runs interchangeable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub path: String,
    /// The arguments as `convex_encoded_json` (object keys are ordered, so equal values give
    /// equal text).
    pub args: String,
    pub token: Option<String>,
    pub client_ip: Option<IpAddr>,
}

/// A finished run, in the form every subscriber needs.
pub struct Finished {
    pub outcome: Outcome,
    /// Digest of what the client would see (minus per-run details), to tell changes apart.
    pub digest: [u8; 32],
    pub reads: Option<(ReadSet, Ts)>,
    pub request_id: RequestId,
}

pub enum Outcome {
    /// The value as `convex_encoded_json` text, and the log lines.
    Value(String, Vec<String>),
    Error(FunctionError),
}

struct Pending {
    /// The feed position when the run was created; its snapshot is at least this recent.
    after: Ts,
    done: watch::Receiver<Option<Arc<Finished>>>,
}

pub struct Runs {
    runtime: Runtime,
    subscriptions: Arc<Subscriptions>,
    metrics: Arc<Metrics>,
    pending: Mutex<HashMap<RunKey, Arc<Pending>>>,
    limit: Arc<Semaphore>,
}

impl Runs {
    pub fn new(
        runtime: Runtime,
        subscriptions: Arc<Subscriptions>,
        metrics: Arc<Metrics>,
    ) -> Arc<Runs> {
        Arc::new(Runs {
            runtime,
            subscriptions,
            metrics,
            pending: Mutex::new(HashMap::new()),
            limit: Arc::new(Semaphore::new(CONCURRENT_RUNS)),
        })
    }

    /// A run of `key` whose snapshot covers every commit up to `position`: one in progress that
    /// started late enough, or a new one.
    pub async fn run(self: &Arc<Runs>, key: RunKey, args: Value, position: Ts) -> Arc<Finished> {
        let mut done = {
            let mut pending = self.pending.lock();
            match pending.get(&key) {
                Some(run) if run.after >= position => {
                    self.metrics.shared_runs.fetch_add(1, Ordering::Relaxed);
                    run.done.clone()
                }
                _ => {
                    let (finish, done) = watch::channel(None);
                    let run = Arc::new(Pending {
                        after: self.subscriptions.position().max(position),
                        done: done.clone(),
                    });
                    pending.insert(key.clone(), run.clone());
                    tokio::spawn(self.clone().execute(key, args, run, finish));
                    done
                }
            }
        };
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map(|finished| finished.clone());
        match outcome {
            Ok(Some(done)) => done,
            // The run's task panicked; report it like any internal error.
            _ => Arc::new(finished(
                QueryRun {
                    result: Err(FunctionError::internal("the query run failed")),
                    reads: None,
                },
                RequestId::generate(),
            )),
        }
    }

    async fn execute(
        self: Arc<Runs>,
        key: RunKey,
        args: Value,
        run: Arc<Pending>,
        finish: watch::Sender<Option<Arc<Finished>>>,
    ) {
        let permit = self.limit.clone().acquire_owned().await;
        self.metrics.reruns.fetch_add(1, Ordering::Relaxed);
        let request_id = RequestId::generate();
        let auth = match &key.token {
            Some(token) => Auth::bearer(token.clone()),
            None => Auth::anonymous(),
        }
        .with_client_ip(key.client_ip);
        let call = Call {
            path: key.path.clone(),
            expected: Some(FunctionKind::Query),
            args,
            auth,
            request_id: request_id.clone(),
            caller: Caller::Client,
        };
        let outcome = self.runtime.run_query(call).await;
        drop(permit);
        // Later subscribers start a fresh run: this one may predate their position.
        {
            let mut pending = self.pending.lock();
            if pending.get(&key).is_some_and(|p| Arc::ptr_eq(p, &run)) {
                pending.remove(&key);
            }
        }
        finish.send_replace(Some(Arc::new(finished(outcome, request_id))));
    }
}

/// The outcome for a subscription whose arguments do not decode (it never runs).
pub fn invalid_args(message: String) -> Finished {
    let run = QueryRun {
        result: Err(FunctionError::plain(ErrorCode::Validation, message)),
        reads: None,
    };
    finished(run, RequestId::generate())
}

fn finished(run: QueryRun, request_id: RequestId) -> Finished {
    let (outcome, digest) = match run.result {
        Ok((value, log_lines)) => {
            let encoded = Format::Encoded.encode_to_string(&value);
            let digest = digest(&[b"ok", encoded.as_bytes()]);
            (Outcome::Value(encoded, log_lines), digest)
        }
        Err(error) => {
            let digest = error_digest(&error);
            (Outcome::Error(error), digest)
        }
    };
    Finished {
        outcome,
        digest,
        reads: run.reads,
        request_id,
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Errors compare by what the client would see, minus the per-run request id.
fn error_digest(error: &FunctionError) -> [u8; 32] {
    match error {
        FunctionError::User {
            code,
            message,
            field,
            shape,
        } => digest(&[
            b"user",
            code.as_str().as_bytes(),
            message.as_bytes(),
            field.as_deref().unwrap_or("").as_bytes(),
            shape.as_str().as_bytes(),
        ]),
        FunctionError::Internal(_) => digest(&[b"internal"]),
    }
}
