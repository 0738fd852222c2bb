//! Mutations over WebSocket apply once per (session id, request id), across reconnects, restarts
//! and nodes (protocol §B.6): after a reconnect the npm client sends every unconfirmed mutation
//! again, including ones that already ran.
//!
//! Two layers. In the database, the `sync_mutations` table: the mutation's own transaction first
//! looks for the record of an earlier run and answers with it instead of running again, and
//! otherwise writes the record together with the mutation's writes, so a mutation and its record
//! commit (or vanish) together, on any node and across restarts; serializable transactions make
//! two concurrent retries of one request meet in a conflict, and the retry finds the record. In
//! memory, per node, the same key maps to the running or finished call, so a retry arriving on the
//! node that is still running the first attempt waits for it instead of queueing a second run.
//!
//! Records are kept for `mutation_memory` (10 minutes by default), then pruned. Without the table
//! in the schema (a store opened without `server::open_store`) only the per-node memory applies.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use functions::{
    Call, ErrorCode, ErrorShape, FnResult, FunctionError, FunctionRef, MutationGuard, Registry,
    RequestId, Runtime, Schedule,
};
use parking_lot::Mutex;
use serde_json::{json, Value as Json};
use store::{TableDef, Ts, Txn};
use tokio::sync::watch;
use values::validator::v;
use values::{Format, Object, Value};

use super::metrics::Metrics;

pub const TABLE: &str = "sync_mutations";
/// Most results kept in memory per node; the oldest go first.
const MEMORY_ENTRIES: usize = 100_000;
/// Results larger than this are not kept in the database (a record must fit in a document).
const MAX_RECORDED_RESULT: usize = 512 * 1024;
/// Records deleted per pruning transaction.
const PRUNE_BATCH: usize = 500;
/// How often old records are pruned (at most; more often with a shorter retention).
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

const PRUNE: FunctionRef<PruneArgs, Pruned> =
    FunctionRef::internal_mutation("_sync:pruneMutations");

#[derive(serde::Serialize, serde::Deserialize, values::Typed)]
#[serde(rename_all = "camelCase")]
struct PruneArgs {
    keep_ms: f64,
}

#[derive(serde::Serialize, serde::Deserialize, values::Typed)]
struct Pruned {
    deleted: f64,
    more: bool,
}

/// When the store keeps the records (it has the table), declares their pruning: a cron deletes
/// records older than `keep`, a batch per transaction.
pub fn register_prune(r: &mut Registry, store: &store::Store, keep: Duration) {
    if store.table_number(TABLE).is_none() {
        return;
    }
    r.internal_mutation(PRUNE, |ctx, args: PruneArgs| {
        let cutoff = ctx.now_ms() - args.keep_ms;
        let old = ctx
            .db
            .query(TABLE)?
            .with_index("by_recorded_at", |q| q.lt("recorded_at", cutoff))?
            .take(PRUNE_BATCH)?;
        for doc in &old {
            ctx.db.delete(&doc.id)?;
        }
        Ok(Pruned {
            deleted: old.len() as f64,
            more: old.len() == PRUNE_BATCH,
        })
    });
    let keep_ms = keep.as_secs_f64() * 1000.0;
    r.cron(
        "prune sync mutations",
        Schedule::every(keep.min(PRUNE_INTERVAL)),
        PRUNE,
        &PruneArgs { keep_ms },
    );
}

/// The table the records live in; `server::open_store` adds it to every schema.
pub fn table() -> TableDef {
    TableDef::new(TABLE)
        .field("session_id", v::string())
        .field("request_id", v::number())
        // `{"value": <encoded>}`, `{"error": {code, message, field?, shape?}}`, `{"internal": true}` or
        // `{"tooLarge": true}`.
        .field("outcome", v::string())
        .field("recorded_at", v::number())
        .index("by_request", &["session_id", "request_id"])
        .index("by_recorded_at", &["recorded_at"])
}

/// How a mutation ended, as the client is told.
pub struct Reply {
    pub result: FnResult<(Value, Vec<String>)>,
    /// Commit ts of a successful mutation.
    pub ts: Option<Ts>,
    /// Names the run in logs and in "Server Error" messages.
    pub trace: RequestId,
}

type Key = (String, u32);
type Slot = watch::Receiver<Option<Arc<Reply>>>;

#[derive(Default)]
struct Memory {
    slots: HashMap<Key, Slot>,
    order: VecDeque<(Instant, Key)>,
}

pub struct MutationLog {
    runtime: Runtime,
    durable: bool,
    keep: Duration,
    memory: Arc<Mutex<Memory>>,
    metrics: Arc<Metrics>,
}

impl MutationLog {
    pub fn new(runtime: Runtime, keep: Duration, metrics: Arc<Metrics>) -> MutationLog {
        let durable = runtime.store().table_number(TABLE).is_some();
        if !durable {
            tracing::warn!(
                "the store has no {TABLE} table: retried WebSocket mutations are recognised on this node only, and not across restarts"
            );
        }
        MutationLog {
            runtime,
            durable,
            keep,
            memory: Arc::default(),
            metrics,
        }
    }

    /// Runs `call` unless this (session, request) already ran, in which case its first outcome is
    /// returned. The call runs on a task of its own, so it completes (and is recorded) even if the
    /// connection that sent it goes away.
    pub async fn run(&self, session: Option<&str>, request: u32, call: Call) -> Arc<Reply> {
        let Some(session) = session else {
            return Arc::new(execute(self.runtime.clone(), call, None).await);
        };
        let key = (session.to_string(), request);
        let mut slot = {
            let mut memory = self.memory.lock();
            self.expire(&mut memory);
            match memory.slots.get(&key) {
                Some(slot) => {
                    self.metrics
                        .mutation_replays
                        .fetch_add(1, Ordering::Relaxed);
                    slot.clone()
                }
                None => {
                    let (done, slot) = watch::channel(None);
                    memory.slots.insert(key.clone(), slot.clone());
                    memory.order.push_back((Instant::now(), key.clone()));
                    let guard = self.durable.then(|| {
                        Arc::new(Guard {
                            session: key.0.clone(),
                            request,
                            replayed: AtomicBool::new(false),
                            recorded: AtomicBool::new(false),
                        })
                    });
                    let runtime = self.runtime.clone();
                    let metrics = self.metrics.clone();
                    let memory = self.memory.clone();
                    let key = key.clone();
                    tokio::spawn(async move {
                        let reply = execute(runtime, call, guard.clone()).await;
                        if let Some(guard) = &guard {
                            if guard.replayed.load(Ordering::Relaxed) {
                                metrics.mutation_replays.fetch_add(1, Ordering::Relaxed);
                            } else if !guard.recorded.load(Ordering::Relaxed) {
                                // Nothing committed (the handler refused, the database was
                                // unavailable): a retry may run it again.
                                memory.lock().slots.remove(&key);
                            }
                        }
                        done.send_replace(Some(Arc::new(reply)));
                    });
                    slot
                }
            }
        };
        let reply = slot
            .wait_for(Option::is_some)
            .await
            .map(|reply| reply.clone());
        match reply {
            Ok(reply) => reply.expect("waited for a reply"),
            // The task running it panicked; forget the slot so a retry runs again (the database
            // record still guards against a second application).
            Err(_) => {
                self.memory.lock().slots.remove(&key);
                Arc::new(Reply {
                    result: Err(FunctionError::internal("the mutation task failed")),
                    ts: None,
                    trace: RequestId::generate(),
                })
            }
        }
    }

    fn expire(&self, memory: &mut Memory) {
        let now = Instant::now();
        while let Some((at, _)) = memory.order.front() {
            if now.duration_since(*at) < self.keep && memory.order.len() <= MEMORY_ENTRIES {
                break;
            }
            if let Some((_, key)) = memory.order.pop_front() {
                memory.slots.remove(&key);
            }
        }
    }
}

async fn execute(runtime: Runtime, call: Call, guard: Option<Arc<Guard>>) -> Reply {
    let trace = call.request_id.clone();
    let result = match guard {
        Some(guard) => runtime.call_guarded(call, guard).await,
        None => runtime.call(call).await,
    };
    match result {
        Ok(outcome) => Reply {
            ts: outcome.ts,
            result: Ok((outcome.value, outcome.log_lines)),
            trace,
        },
        Err(error) => Reply {
            result: Err(error),
            ts: None,
            trace,
        },
    }
}

/// Looks for and writes the record inside the mutation's transaction.
struct Guard {
    session: String,
    request: u32,
    replayed: AtomicBool,
    /// Set when the record was written; it commits with the mutation (or the attempt is retried
    /// and sets it again).
    recorded: AtomicBool,
}

impl MutationGuard for Guard {
    fn replay(&self, txn: &mut Txn) -> FnResult<Option<FnResult<Value>>> {
        let (session, request) = (self.session.clone(), f64::from(self.request));
        let record = txn
            .query(TABLE)?
            .with_index("by_request", |q| {
                q.eq("session_id", session).eq("request_id", request)
            })?
            .first()?;
        let Some(record) = record else {
            return Ok(None);
        };
        self.replayed.store(true, Ordering::Relaxed);
        let text = record
            .get("outcome")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(Some(decode_outcome(text)))
    }

    fn record(&self, txn: &mut Txn, outcome: &FnResult<Value>) -> FnResult<()> {
        let mut fields = Object::new();
        fields.insert("session_id".into(), Value::from(self.session.as_str()));
        fields.insert("request_id".into(), Value::from(f64::from(self.request)));
        fields.insert("outcome".into(), Value::from(encode_outcome(outcome)));
        fields.insert("recorded_at".into(), Value::from(txn.now_ms()));
        txn.insert(TABLE, fields)?;
        self.recorded.store(true, Ordering::Relaxed);
        Ok(())
    }
}

fn encode_outcome(outcome: &FnResult<Value>) -> String {
    match outcome {
        Ok(value) => {
            let encoded = Format::Encoded.encode_to_string(value);
            if encoded.len() > MAX_RECORDED_RESULT {
                json!({"tooLarge": true}).to_string()
            } else {
                format!(r#"{{"value":{encoded}}}"#)
            }
        }
        Err(FunctionError::User {
            code,
            message,
            field,
            shape,
        }) => json!({"error": {"code": code.as_str(), "message": message, "field": field, "shape": shape.as_str()}})
            .to_string(),
        Err(FunctionError::Internal(_)) => json!({"internal": true}).to_string(),
    }
}

fn decode_outcome(text: &str) -> FnResult<Value> {
    let corrupt = || FunctionError::internal("the record of an earlier run does not decode");
    let json: Json = serde_json::from_str(text).map_err(|_| corrupt())?;
    if let Some(value) = json.get("value") {
        return Format::Encoded.decode(value).map_err(|_| corrupt());
    }
    if let Some(error) = json.get("error") {
        let text = |name: &str| error.get(name).and_then(Json::as_str).map(str::to_string);
        let code = text("code")
            .as_deref()
            .and_then(parse_code)
            .ok_or_else(corrupt)?;
        // Records from before shapes were kept have the default one.
        let shape = match text("shape") {
            Some(name) => ErrorShape::parse(&name).ok_or_else(corrupt)?,
            None => ErrorShape::Object,
        };
        return Err(FunctionError::User {
            code,
            message: text("message").unwrap_or_default(),
            field: text("field"),
            shape,
        });
    }
    if json.get("tooLarge").is_some() {
        return Err(FunctionError::internal(
            "this request already ran; its result was too large to keep for a retry",
        ));
    }
    Err(FunctionError::internal(
        "this request already ran and failed",
    ))
}

fn parse_code(code: &str) -> Option<ErrorCode> {
    ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_survive_the_record() {
        let value = Value::Array(vec![Value::Int64(-1), Value::from("x"), Value::Null]);
        assert_eq!(
            decode_outcome(&encode_outcome(&Ok(value.clone()))).unwrap(),
            value
        );
        let error = FunctionError::validation("body", "too long");
        match decode_outcome(&encode_outcome(&Err(error))) {
            Err(FunctionError::User {
                code,
                message,
                field,
                shape,
            }) => {
                assert_eq!(code, ErrorCode::Validation);
                assert_eq!(message, "too long");
                assert_eq!(field.as_deref(), Some("body"));
                assert_eq!(shape, ErrorShape::Object);
            }
            other => panic!("unexpected {other:?}"),
        }
        // A retried call answers in the shape of its first answer.
        let error = FunctionError::validation("body", "too long").shaped(ErrorShape::Message);
        let replayed = decode_outcome(&encode_outcome(&Err(error))).unwrap_err();
        assert_eq!(replayed.error_data(), Some(Value::from("too long")));
        // Records written before shapes were kept read as the default shape.
        let old = r#"{"error":{"code":"CONFLICT","message":"m","field":null}}"#;
        assert!(matches!(
            decode_outcome(old),
            Err(FunctionError::User {
                shape: ErrorShape::Object,
                ..
            })
        ));
        let internal = encode_outcome(&Err(FunctionError::internal("secret detail")));
        assert!(
            !internal.contains("secret"),
            "internal details are not kept"
        );
        assert!(matches!(
            decode_outcome(&internal),
            Err(FunctionError::Internal(_))
        ));
        let big = Value::from("x".repeat(MAX_RECORDED_RESULT + 1));
        assert!(matches!(
            decode_outcome(&encode_outcome(&Ok(big))),
            Err(FunctionError::Internal(_))
        ));
    }
}
