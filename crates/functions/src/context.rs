//! The contexts handlers receive. A `QueryCtx` can only read; a `MutationCtx` reads and writes in one
//! transaction; an `ActionCtx` has no database handle at all, only calls to other functions and the
//! outside world. These rules hold by construction: the types offer nothing else.

use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

use store::{Document, Patch, Query, Txn};
use values::{DocumentId, Object, Value};

use crate::runtime::{Call, Caller, RequestId, Runtime};
use crate::tenancy::{refuse_unscoped, CrossTenant, Scope, Scoped, ScopedWriter};
use crate::{FnResult, FunctionError, FunctionKind};

/// Who is calling: the bearer token presented with the request, if any. Later layers resolve it to a
/// session and user. Never printed.
#[derive(Clone, Default)]
pub struct Auth {
    token: Option<String>,
    client_ip: Option<IpAddr>,
}

impl Auth {
    pub fn anonymous() -> Auth {
        Auth::default()
    }
    pub fn bearer(token: impl Into<String>) -> Auth {
        Auth {
            token: Some(token.into()),
            client_ip: None,
        }
    }
    /// The address the request came from (for per-client rate limits).
    pub fn with_client_ip(mut self, ip: Option<IpAddr>) -> Auth {
        self.client_ip = ip;
        self
    }
    /// A session token sent as an argument (see `Registry::session_token_argument`); it wins
    /// over the bearer token.
    pub fn with_argument_token(mut self, token: &str) -> Auth {
        self.token = Some(token.to_owned());
        self
    }
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.token.is_some() {
            "bearer ***"
        } else {
            "anonymous"
        };
        write!(f, "Auth({who}, from {:?})", self.client_ip)
    }
}

/// Read access to the database.
pub struct Db<'a> {
    txn: &'a mut Txn,
}

impl Db<'_> {
    /// A document of an unscoped table (tenant-scoped tables go through `scoped`).
    pub fn get(&mut self, id: &DocumentId) -> store::Result<Option<Document>> {
        unscoped_get(self.txn, id)
    }
    /// A document of `table` by its Id string; `None` for malformed Ids, Ids of other tables and
    /// missing documents alike, so callers cannot tell them apart.
    pub fn get_in(&mut self, table: &str, id: &str) -> store::Result<Option<Document>> {
        refuse_unscoped(self.txn, table)?;
        match self.txn.normalize_id(table, id) {
            Some(id) => self.txn.get(&id),
            None => Ok(None),
        }
    }
    pub fn normalize_id(&self, table: &str, id: &str) -> Option<DocumentId> {
        self.txn.normalize_id(table, id)
    }
    pub fn query(&mut self, table: &str) -> store::Result<Query<'_>> {
        refuse_unscoped(self.txn, table)?;
        self.txn.query(table)
    }
    pub(crate) fn txn_mut(&mut self) -> &mut Txn {
        self.txn
    }
    /// Access limited to `scope`: the only way to reach tenant-scoped tables.
    pub fn scoped(&mut self, scope: &Scope) -> Scoped<'_> {
        Scoped {
            txn: self.txn,
            scope: scope.clone(),
        }
    }
}

fn unscoped_get(txn: &mut Txn, id: &DocumentId) -> store::Result<Option<Document>> {
    let doc = txn.get(id)?;
    if let Some(doc) = &doc {
        refuse_unscoped(txn, &doc.table)?;
    }
    Ok(doc)
}

/// Read and write access to the database, inside the mutation's transaction.
pub struct DbWriter<'a> {
    pub(crate) txn: &'a mut Txn,
}

impl DbWriter<'_> {
    pub fn get(&mut self, id: &DocumentId) -> store::Result<Option<Document>> {
        unscoped_get(self.txn, id)
    }
    pub fn get_in(&mut self, table: &str, id: &str) -> store::Result<Option<Document>> {
        refuse_unscoped(self.txn, table)?;
        match self.txn.normalize_id(table, id) {
            Some(id) => self.txn.get(&id),
            None => Ok(None),
        }
    }
    pub fn normalize_id(&self, table: &str, id: &str) -> Option<DocumentId> {
        self.txn.normalize_id(table, id)
    }
    pub fn query(&mut self, table: &str) -> store::Result<Query<'_>> {
        refuse_unscoped(self.txn, table)?;
        self.txn.query(table)
    }
    pub fn insert(&mut self, table: &str, fields: Object) -> store::Result<DocumentId> {
        refuse_unscoped(self.txn, table)?;
        self.txn.insert(table, fields)
    }
    pub fn patch(&mut self, id: &DocumentId, patch: Patch) -> store::Result<()> {
        if unscoped_get(self.txn, id)?.is_none() {
            return Err(store::StoreError::NotFound(id.encode()));
        }
        self.txn.patch(id, patch)
    }
    pub fn replace(&mut self, id: &DocumentId, fields: Object) -> store::Result<()> {
        if unscoped_get(self.txn, id)?.is_none() {
            return Err(store::StoreError::NotFound(id.encode()));
        }
        self.txn.replace(id, fields)
    }
    pub fn delete(&mut self, id: &DocumentId) -> store::Result<()> {
        if unscoped_get(self.txn, id)?.is_none() {
            return Err(store::StoreError::NotFound(id.encode()));
        }
        self.txn.delete(id)
    }
    /// Read and write access limited to `scope`: the only way to reach tenant-scoped tables.
    pub fn scoped(&mut self, scope: &Scope) -> ScopedWriter<'_> {
        ScopedWriter {
            txn: self.txn,
            scope: scope.clone(),
        }
    }
}

/// Reading, whether inside a query or a mutation, so shared helpers (session resolution, permission
/// checks) serve both.
pub trait DbRead {
    fn get_in(&mut self, table: &str, id: &str) -> store::Result<Option<Document>>;
    fn normalize_id(&self, table: &str, id: &str) -> Option<DocumentId>;
    fn query(&mut self, table: &str) -> store::Result<Query<'_>>;
    fn read_scoped(&mut self, scope: &Scope) -> Scoped<'_>;
}

impl DbRead for Db<'_> {
    fn get_in(&mut self, table: &str, id: &str) -> store::Result<Option<Document>> {
        Db::get_in(self, table, id)
    }
    fn normalize_id(&self, table: &str, id: &str) -> Option<DocumentId> {
        Db::normalize_id(self, table, id)
    }
    fn query(&mut self, table: &str) -> store::Result<Query<'_>> {
        Db::query(self, table)
    }
    fn read_scoped(&mut self, scope: &Scope) -> Scoped<'_> {
        self.scoped(scope)
    }
}

impl DbRead for DbWriter<'_> {
    fn get_in(&mut self, table: &str, id: &str) -> store::Result<Option<Document>> {
        DbWriter::get_in(self, table, id)
    }
    fn normalize_id(&self, table: &str, id: &str) -> Option<DocumentId> {
        DbWriter::normalize_id(self, table, id)
    }
    fn query(&mut self, table: &str) -> store::Result<Query<'_>> {
        DbWriter::query(self, table)
    }
    fn read_scoped(&mut self, scope: &Scope) -> Scoped<'_> {
        Scoped {
            txn: self.txn,
            scope: scope.clone(),
        }
    }
}

/// Lines a handler logs, returned to the client as `logLines` (as Convex returns `console.log`).
#[derive(Default)]
pub(crate) struct LogLines(pub Vec<String>);

impl LogLines {
    fn push(&mut self, message: &str) {
        self.0.push(format!("[LOG] {message:?}"));
    }
}

/// What the runtime tells a context about the call.
#[derive(Clone, Copy)]
pub(crate) struct CallInfo<'a> {
    pub auth: &'a Auth,
    pub request_id: &'a RequestId,
    pub path: &'a str,
    pub cross_tenant: bool,
    /// For the scheduler: the registry (to check what is scheduled) and the store.
    pub runtime: &'a Runtime,
}

impl CallInfo<'_> {
    fn cross_tenant(&self) -> FnResult<CrossTenant> {
        if self.cross_tenant {
            Ok(CrossTenant(()))
        } else {
            Err(FunctionError::internal(format!(
                "{} asked for all companies but is not declared cross-tenant",
                self.path
            )))
        }
    }
}

pub struct QueryCtx<'a> {
    pub db: Db<'a>,
    pub auth: &'a Auth,
    pub request_id: &'a RequestId,
    now_ms: f64,
    pub(crate) info: CallInfo<'a>,
    pub(crate) logs: LogLines,
}

impl<'a> QueryCtx<'a> {
    pub(crate) fn new(txn: &'a mut Txn, info: CallInfo<'a>) -> QueryCtx<'a> {
        let now_ms = txn.now_ms();
        QueryCtx {
            db: Db { txn },
            auth: info.auth,
            request_id: info.request_id,
            now_ms,
            info,
            logs: LogLines::default(),
        }
    }
    /// The grant for `Scope::all_companies`, available only to functions declared cross-tenant
    /// (callers still check the viewer's permission before using it).
    pub fn cross_tenant(&self) -> FnResult<CrossTenant> {
        self.info.cross_tenant()
    }
    /// The transaction's "now" in ms since the epoch (stable for the whole call).
    pub fn now_ms(&self) -> f64 {
        self.now_ms
    }
    pub fn log(&mut self, message: &str) {
        self.logs.push(message);
    }
    /// File metadata and signed download URLs.
    pub fn storage(&mut self) -> crate::storage::StorageReader<'_> {
        crate::storage::StorageReader {
            txn: &mut *self.db.txn,
            files: self.info.runtime.storage(),
        }
    }
}

pub struct MutationCtx<'a> {
    pub db: DbWriter<'a>,
    pub auth: &'a Auth,
    pub request_id: &'a RequestId,
    now_ms: f64,
    pub(crate) info: CallInfo<'a>,
    pub(crate) logs: LogLines,
    pub(crate) error_after_commit: Option<FunctionError>,
}

impl<'a> MutationCtx<'a> {
    pub(crate) fn new(txn: &'a mut Txn, info: CallInfo<'a>) -> MutationCtx<'a> {
        let now_ms = txn.now_ms();
        MutationCtx {
            db: DbWriter { txn },
            auth: info.auth,
            request_id: info.request_id,
            now_ms,
            info,
            logs: LogLines::default(),
            error_after_commit: None,
        }
    }
    pub fn cross_tenant(&self) -> FnResult<CrossTenant> {
        self.info.cross_tenant()
    }
    /// Commits this mutation's writes, then answers the caller with `error` instead of the result.
    /// For failures that must leave a durable trace (a failed sign-in counts towards lockout).
    pub fn fail_after_commit(&mut self, error: FunctionError) -> FnResult {
        self.error_after_commit = Some(error);
        Ok(Value::Null)
    }
    pub fn now_ms(&self) -> f64 {
        self.now_ms
    }
    pub fn log(&mut self, message: &str) {
        self.logs.push(message);
    }
    /// Upload URLs, file metadata, signed download URLs and deletion, in this transaction.
    pub fn storage(&mut self) -> crate::storage::StorageWriter<'_> {
        crate::storage::StorageWriter {
            txn: &mut *self.db.txn,
            files: self.info.runtime.storage(),
            client_ip: self.auth.client_ip(),
        }
    }
}

/// An action's world: other functions (internal ones included), an HTTP client, and nothing that
/// touches the database directly.
#[derive(Clone)]
pub struct ActionCtx {
    pub(crate) runtime: Runtime,
    pub auth: Auth,
    pub request_id: RequestId,
    pub(crate) deadline: Instant,
}

impl ActionCtx {
    /// When the runtime cuts this action off. Work that must record its own outcome (a log row
    /// of a slow external call) stops short of it, since nothing runs after the cut.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) async fn run(
        &self,
        kind: FunctionKind,
        path: &str,
        args: Object,
    ) -> FnResult<Value> {
        let call = Call {
            path: path.to_string(),
            expected: Some(kind),
            args: Value::Object(args),
            auth: self.auth.clone(),
            request_id: self.request_id.clone(),
            caller: Caller::Server,
        };
        Box::pin(self.runtime.call(call))
            .await
            .map(|outcome| outcome.value)
    }
    /// Calls a function by path with untyped arguments (see `run_query` for typed calls).
    pub async fn run_query_untyped(&self, path: &str, args: Object) -> FnResult<Value> {
        self.run(FunctionKind::Query, path, args).await
    }
    /// Calls a function by path with untyped arguments (see `run_mutation` for typed calls).
    pub async fn run_mutation_untyped(&self, path: &str, args: Object) -> FnResult<Value> {
        self.run(FunctionKind::Mutation, path, args).await
    }
    /// Calls a function by path with untyped arguments (see `run_action` for typed calls).
    pub async fn run_action_untyped(&self, path: &str, args: Object) -> FnResult<Value> {
        self.run(FunctionKind::Action, path, args).await
    }
    /// Storing files the action made (a generated report).
    pub fn storage(&self) -> crate::storage::StorageActions<'_> {
        crate::storage::StorageActions {
            store: self.runtime.store(),
            files: self.runtime.storage(),
        }
    }
    /// A shared HTTP client for calls to external services.
    pub fn http(&self) -> &reqwest::Client {
        self.runtime.http()
    }
}
