//! Named queries, mutations and actions: the registry, typed contexts, argument validation, errors,
//! and the runtime that executes a call against the store.

pub mod activity;
mod context;
pub mod crons;
mod error;
pub mod jobs;
mod pagination;
mod path;
mod registry;
mod runtime;
pub mod scheduler;
pub mod storage;
pub mod system;
mod tenancy;
mod typed;

pub use context::{ActionCtx, Auth, Db, DbRead, DbWriter, MutationCtx, QueryCtx};
pub use crons::{CronSpec, Schedule};
pub use error::{ErrorCode, ErrorShape, FunctionError};
pub use pagination::{
    pagination_opts_validator, pagination_result, parse_pagination_opts, Page, PaginationArg,
    MAX_PAGE_SIZE,
};
pub use path::{FunctionPath, PathError};
pub use registry::{no_args, FunctionKind, FunctionSpec, Registry, Visibility};
pub use runtime::{Call, Caller, MutationGuard, Outcome, QueryRun, RequestId, Runtime};
pub use scheduler::{ActionScheduler, ScheduledFunction, ScheduledState, Scheduler};
pub use tenancy::{CrossTenant, Scope, Scoped, ScopedWriter};
pub use typed::{row, Args, FunctionName, FunctionRef, Returns};

/// What handlers return.
pub type FnResult<T = values::Value> = Result<T, FunctionError>;
