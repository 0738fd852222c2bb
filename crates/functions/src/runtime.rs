//! Executes calls: resolves the path, checks visibility and kind, validates arguments, runs the
//! handler in the right kind of transaction, and validates what it returns.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::{ReadSet, Store, Ts, Txn};
use values::{Object, Validator, Value};

use crate::context::{ActionCtx, Auth, CallInfo, MutationCtx, QueryCtx};
use crate::error::{ErrorCode, FunctionError};
use crate::path::FunctionPath;
use crate::registry::{Handler, Prepared, QueryFn, Registered, Registry, Visibility};
use crate::{FnResult, FunctionKind};

/// Correlates a request's log lines with what the client was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub fn generate() -> RequestId {
        RequestId(hex::encode(rand::random::<[u8; 8]>()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the call comes from outside (only public functions) or from server code (any function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Client,
    Server,
}

pub struct Call {
    pub path: String,
    /// The kind the endpoint expects (`/api/query` expects a query); `None` accepts any kind.
    pub expected: Option<FunctionKind>,
    pub args: Value,
    pub auth: Auth,
    pub request_id: RequestId,
    pub caller: Caller,
}

#[derive(Debug)]
pub struct Outcome {
    pub kind: FunctionKind,
    pub value: Value,
    pub log_lines: Vec<String>,
    /// Commit ts for mutations, snapshot ts for queries.
    pub ts: Option<Ts>,
    /// What a query read (for live queries).
    pub read_set: Option<ReadSet>,
}

/// A query run for a live subscription: its result or error, and in both cases what it read, so
/// the subscription re-runs when that data changes (an error can depend on data too: a session
/// that ends, a role that changes).
#[derive(Debug)]
pub struct QueryRun {
    /// The value and log lines, or the error.
    pub result: FnResult<(Value, Vec<String>)>,
    /// What the run read and its snapshot ts; `None` when it failed before reading (unknown
    /// function, bad arguments, timeout, database unavailable).
    pub reads: Option<(ReadSet, Ts)>,
}

/// Runs inside a mutation's transaction around the handler, so a client's retried request applies
/// once: `replay` first (an answer means the request already ran, and the handler is skipped), and
/// `record` last, with the outcome, only when the transaction commits.
pub trait MutationGuard: Send + Sync {
    fn replay(&self, txn: &mut Txn) -> FnResult<Option<FnResult<Value>>>;
    fn record(&self, txn: &mut Txn, outcome: &FnResult<Value>) -> FnResult<()>;
}

struct Inner {
    registry: Registry,
    store: Store,
    http: reqwest::Client,
    timeout: Duration,
    activity: crate::activity::Activity,
    storage: Option<crate::storage::FileStorage>,
}

#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// `timeout` bounds queries and actions. Mutations are not cut off once started: the client must
    /// never be told "failed" about a write that then commits.
    pub fn new(registry: Registry, store: Store, timeout: Duration) -> Runtime {
        Runtime {
            inner: Arc::new(Inner {
                registry,
                store,
                http: reqwest::Client::builder()
                    .timeout(timeout)
                    .build()
                    .expect("HTTP client builds with default TLS settings"),
                timeout,
                activity: crate::activity::Activity::default(),
                storage: None,
            }),
        }
    }

    /// This runtime with file storage (`ctx.storage()`); call before the runtime is shared.
    pub fn with_storage(mut self, storage: crate::storage::FileStorage) -> Runtime {
        Arc::get_mut(&mut self.inner)
            .expect("with_storage is called before the runtime is cloned")
            .storage = Some(storage);
        self
    }

    /// The file storage, when configured.
    pub fn storage(&self) -> Option<&crate::storage::FileStorage> {
        self.inner.storage.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    /// What the background layer ran on this node, for `/metrics`.
    pub fn activity(&self) -> &crate::activity::Activity {
        &self.inner.activity
    }
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }
    /// How long a query or action may run (mutations are not cut off).
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn resolve(&self, call: &Call) -> FnResult<&Registered> {
        // Refusals of the platform, not of a function: plain errors, as Convex sends them.
        let path = FunctionPath::parse(&call.path)
            .map_err(|e| FunctionError::plain(ErrorCode::Validation, e.to_string()))?;
        let not_found = || {
            FunctionError::plain(
                ErrorCode::NotFound,
                format!("Could not find public function for '{path}'."),
            )
        };
        let registered = self.inner.registry.lookup(&path).ok_or_else(not_found)?;
        // Internal functions answer exactly like missing ones, so clients learn nothing about them.
        if registered.spec.visibility == Visibility::Internal && call.caller == Caller::Client {
            return Err(not_found());
        }
        if let Some(expected) = call.expected {
            if expected != registered.spec.kind {
                return Err(wrong_kind(&path, expected, registered.spec.kind));
            }
        }
        Ok(registered)
    }

    fn check_args(&self, registered: &Registered, args: Value) -> FnResult<Object> {
        let args = match args {
            Value::Object(o) => o,
            other => {
                return Err(FunctionError::plain(
                    ErrorCode::Validation,
                    format!(
                        "ArgumentValidationError: arguments must be an object, not {}",
                        other.type_name()
                    ),
                ))
            }
        };
        let value = Value::Object(args);
        registered
            .spec
            .args
            .check(&value, &self.inner.store.table_numbers())
            // The message names the path; a plain error carries no field.
            .map_err(|e| {
                FunctionError::plain(
                    ErrorCode::Validation,
                    format!("ArgumentValidationError: {}", e.message),
                )
            })?;
        Ok(value.into_object().expect("checked above"))
    }

    /// The call's `Auth`, with the session token argument in front when the call carries one.
    fn auth_for(&self, call: &Call, args: &Object) -> Auth {
        let argument = self.inner.registry.session_argument().and_then(|name| {
            args.get(name)
                .and_then(Value::as_str)
                .filter(|token| !token.is_empty())
        });
        match argument {
            Some(token) => call.auth.clone().with_argument_token(token),
            None => call.auth.clone(),
        }
    }

    fn check_returns(
        &self,
        returns: Option<&Validator>,
        path: &FunctionPath,
        value: &Value,
    ) -> FnResult<()> {
        match returns {
            Some(validator) => validator
                .check(value, &self.inner.store.table_numbers())
                .map_err(|e| {
                    FunctionError::internal(format!(
                        "{path} returned a value that does not match its returns validator: {e}"
                    ))
                }),
            None => Ok(()),
        }
    }

    /// Runs one call. Errors come back as `FunctionError`; internal ones are logged here with the
    /// request id.
    pub async fn call(&self, call: Call) -> FnResult<Outcome> {
        let result = self.call_inner(&call, None).await;
        log_internal(&call, &result);
        result
    }

    /// Runs a mutation call with `guard` inside its transaction (see `MutationGuard`). Other kinds
    /// run as with `call`.
    pub async fn call_guarded(
        &self,
        call: Call,
        guard: Arc<dyn MutationGuard>,
    ) -> FnResult<Outcome> {
        let result = self.call_inner(&call, Some(guard)).await;
        log_internal(&call, &result);
        result
    }

    /// Runs a query for a live subscription; unlike `call`, a failed run still reports what it read.
    pub async fn run_query(&self, call: Call) -> QueryRun {
        let run = self.run_query_inner(&call).await;
        if let Err(FunctionError::Internal(detail)) = &run.result {
            tracing::error!(request_id = %call.request_id, path = %call.path, %detail, "function failed");
        }
        run
    }

    async fn run_query_inner(&self, call: &Call) -> QueryRun {
        let failed = |error| QueryRun {
            result: Err(error),
            reads: None,
        };
        let registered = match self.resolve(call) {
            Ok(registered) => registered.clone(),
            Err(error) => return failed(error),
        };
        let args = match self.check_args(&registered, call.args.clone()) {
            Ok(args) => args,
            Err(error) => return failed(error),
        };
        let Handler::Query(handler) = registered.handler else {
            return failed(wrong_kind(
                &registered.spec.path,
                FunctionKind::Query,
                registered.spec.kind,
            ));
        };
        let spec = registered.spec;
        let (result, reads) = self.execute_query(handler, args, call, &spec).await;
        let result = result
            .and_then(|(value, logs)| {
                self.check_returns(spec.returns.as_ref(), &spec.path, &value)?;
                Ok((value, logs))
            })
            .map_err(|e| e.shaped(spec.error_shape));
        QueryRun { result, reads }
    }

    /// Runs a query handler in a snapshot transaction; the read set comes back even when the
    /// handler fails.
    async fn execute_query(
        &self,
        handler: QueryFn,
        args: Object,
        call: &Call,
        spec: &crate::FunctionSpec,
    ) -> (FnResult<(Value, Vec<String>)>, Option<(ReadSet, Ts)>) {
        let (auth, request_id) = (self.auth_for(call, &args), call.request_id.clone());
        let path = spec.path.to_string();
        let cross_tenant = spec.cross_tenant;
        let runtime = self.clone();
        let run = self.inner.store.query(move |txn| {
            let info = CallInfo {
                auth: &auth,
                request_id: &request_id,
                path: &path,
                cross_tenant,
                runtime: &runtime,
            };
            let mut ctx = QueryCtx::new(txn, info);
            let result = guard(|| handler(&mut ctx, args));
            Ok::<_, FunctionError>((result, std::mem::take(&mut ctx.logs.0)))
        });
        match tokio::time::timeout(self.inner.timeout, run).await {
            Err(_) => (
                Err(timeout_error(FunctionKind::Query, self.inner.timeout)),
                None,
            ),
            Ok(Err(error)) => (Err(error), None),
            Ok(Ok(((result, logs), read_set, ts))) => {
                (result.map(|value| (value, logs)), Some((read_set, ts)))
            }
        }
    }

    async fn call_inner(
        &self,
        call: &Call,
        once: Option<Arc<dyn MutationGuard>>,
    ) -> FnResult<Outcome> {
        let registered = self.resolve(call)?.clone();
        let args = self.check_args(&registered, call.args.clone())?;
        let shape = registered.spec.error_shape;
        self.execute(registered, args, call, once)
            .await
            .map_err(|e| e.shaped(shape))
    }

    /// Runs a resolved function with checked arguments.
    async fn execute(
        &self,
        registered: Registered,
        args: Object,
        call: &Call,
        once: Option<Arc<dyn MutationGuard>>,
    ) -> FnResult<Outcome> {
        let spec = registered.spec;
        let (auth, request_id) = (self.auth_for(call, &args), call.request_id.clone());
        let path = spec.path.to_string();
        let cross_tenant = spec.cross_tenant;
        let outcome = match registered.handler {
            Handler::Query(handler) => {
                let (result, reads) = self.execute_query(handler, args, call, &spec).await;
                let (value, log_lines) = result?;
                Outcome {
                    kind: FunctionKind::Query,
                    value,
                    log_lines,
                    ts: reads.as_ref().map(|(_, ts)| *ts),
                    read_set: reads.map(|(read_set, _)| read_set),
                }
            }
            Handler::Mutation { apply, prepare } => {
                let prepared: Prepared = match prepare {
                    Some(prepare) => {
                        let ctx = ActionCtx {
                            runtime: self.clone(),
                            auth: auth.clone(),
                            request_id: request_id.clone(),
                            deadline: Instant::now() + self.inner.timeout,
                        };
                        tokio::time::timeout(self.inner.timeout, prepare(ctx, args.clone()))
                            .await
                            .map_err(|_| {
                                timeout_error(FunctionKind::Mutation, self.inner.timeout)
                            })??
                    }
                    None => Arc::new(()),
                };
                let runtime = self.clone();
                let ((value, log_lines, deferred), ts, _writes) = self
                    .inner
                    .store
                    .mutate(move |txn| {
                        let info = CallInfo {
                            auth: &auth,
                            request_id: &request_id,
                            path: &path,
                            cross_tenant,
                            runtime: &runtime,
                        };
                        if let Some(once) = &once {
                            if let Some(replayed) = once.replay(txn)? {
                                return Ok(match replayed {
                                    Ok(value) => (value, Vec::new(), None),
                                    Err(error) => (Value::Null, Vec::new(), Some(error)),
                                });
                            }
                        }
                        let mut ctx = MutationCtx::new(txn, info);
                        let value = guard(|| apply(&mut ctx, args.clone(), &prepared))?;
                        let logs = std::mem::take(&mut ctx.logs.0);
                        let deferred = ctx.error_after_commit.take();
                        if let Some(once) = &once {
                            let outcome = match &deferred {
                                Some(error) => Err(error.clone()),
                                None => Ok(value.clone()),
                            };
                            once.record(txn, &outcome)?;
                        }
                        Ok::<_, FunctionError>((value, logs, deferred))
                    })
                    .await?;
                if let Some(error) = deferred {
                    return Err(error);
                }
                Outcome {
                    kind: FunctionKind::Mutation,
                    value,
                    log_lines,
                    ts: Some(ts),
                    read_set: None,
                }
            }
            Handler::Action(handler) => {
                let ctx = ActionCtx {
                    runtime: self.clone(),
                    auth,
                    request_id,
                    deadline: Instant::now() + self.inner.timeout,
                };
                let value = tokio::time::timeout(self.inner.timeout, handler(ctx, args))
                    .await
                    .map_err(|_| timeout_error(FunctionKind::Action, self.inner.timeout))??;
                Outcome {
                    kind: FunctionKind::Action,
                    value,
                    log_lines: Vec::new(),
                    ts: None,
                    read_set: None,
                }
            }
        };
        self.check_returns(spec.returns.as_ref(), &spec.path, &outcome.value)?;
        Ok(outcome)
    }
}

fn log_internal(call: &Call, result: &FnResult<Outcome>) {
    if let Err(FunctionError::Internal(detail)) = result {
        tracing::error!(request_id = %call.request_id, path = %call.path, %detail, "function failed");
    }
}

fn wrong_kind(path: &FunctionPath, expected: FunctionKind, actual: FunctionKind) -> FunctionError {
    FunctionError::plain(
        ErrorCode::Validation,
        format!("Trying to execute {path} as {expected}, but it is defined as {actual}."),
    )
}

fn timeout_error(kind: FunctionKind, limit: Duration) -> FunctionError {
    FunctionError::user(
        ErrorCode::Timeout,
        format!("{kind} timed out after {} s", limit.as_secs()),
    )
}

/// A panicking handler must not take down the thread it runs on (the store's writer thread, for
/// mutations); it becomes an internal error for that one call.
fn guard(f: impl FnOnce() -> FnResult) -> FnResult {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".to_string());
        Err(FunctionError::internal(format!(
            "handler panicked: {detail}"
        )))
    })
}
