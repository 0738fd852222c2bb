//! The registry of named functions, each with a kind, a visibility, an args validator and an optional
//! returns validator. Its specs can be exported so typed client code can be generated from them.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use values::validator::v;
use values::{Object, Validator};

use crate::context::{ActionCtx, MutationCtx, QueryCtx};
use crate::error::ErrorShape;
use crate::path::FunctionPath;
use crate::FnResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    Query,
    Mutation,
    Action,
}

impl FunctionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
            FunctionKind::Action => "action",
        }
    }
}

impl fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FunctionKind::Query => "Query",
            FunctionKind::Mutation => "Mutation",
            FunctionKind::Action => "Action",
        })
    }
}

/// Internal functions can be called by actions and background jobs, never over the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Internal,
}

#[derive(Clone, Debug)]
pub struct FunctionSpec {
    pub path: FunctionPath,
    pub kind: FunctionKind,
    pub visibility: Visibility,
    /// Always a `Validator::Object`.
    pub args: Validator,
    pub returns: Option<Validator>,
    /// May act on every company's data (for viewers whose permission allows it).
    pub cross_tenant: bool,
    /// How the function's user errors reach clients (see `ErrorShape`).
    pub error_shape: ErrorShape,
}

impl FunctionSpec {
    /// Declares that the function may obtain a scope over all companies (see `tenancy`).
    pub fn cross_tenant(&mut self) -> &mut FunctionSpec {
        self.cross_tenant = true;
        self
    }

    /// Declares that the function's user errors reach clients as ConvexErrors whose data is the
    /// message string, not `{code, message, field?}`: for clients that search `error.data` as text.
    pub fn message_error_data(&mut self) -> &mut FunctionSpec {
        self.error_shape = ErrorShape::Message;
        self
    }

    /// Declares what the function returns; a handler returning anything else is a server error.
    pub fn returns(&mut self, validator: Validator) -> &mut FunctionSpec {
        self.returns = Some(validator);
        self
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "path": self.path.to_string(),
            "kind": self.kind.as_str(),
            "visibility": match self.visibility { Visibility::Public => "public", Visibility::Internal => "internal" },
            "args": self.args.to_json(),
            "returns": self.returns.as_ref().map(Validator::to_json),
            "crossTenant": self.cross_tenant,
        });
        if self.error_shape != ErrorShape::Object {
            json["errorData"] = self.error_shape.as_str().into();
        }
        json
    }
}

pub(crate) type QueryFn = Arc<dyn Fn(&mut QueryCtx<'_>, Object) -> FnResult + Send + Sync>;
/// What a mutation's `prepare` step hands to its transaction.
pub(crate) type Prepared = Arc<dyn Any + Send + Sync>;
pub(crate) type MutationFn =
    Arc<dyn Fn(&mut MutationCtx<'_>, Object, &Prepared) -> FnResult + Send + Sync>;
pub(crate) type PrepareFn =
    Arc<dyn Fn(ActionCtx, Object) -> BoxFuture<'static, FnResult<Prepared>> + Send + Sync>;
pub(crate) type ActionFn =
    Arc<dyn Fn(ActionCtx, Object) -> BoxFuture<'static, FnResult> + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Handler {
    Query(QueryFn),
    Mutation {
        apply: MutationFn,
        prepare: Option<PrepareFn>,
    },
    Action(ActionFn),
}

#[derive(Clone)]
pub(crate) struct Registered {
    pub spec: FunctionSpec,
    pub handler: Handler,
}

/// Functions are registered typed (`query`, `mutation`, `action` ... in `typed.rs`) or, while
/// modules move over, untyped (`*_untyped`: `Object` in, `Value` out, validators given by hand).
#[derive(Clone, Default)]
pub struct Registry {
    functions: BTreeMap<FunctionPath, Registered>,
    auth_check: Option<FunctionPath>,
    session_argument: Option<String>,
    /// Crons declared with `cron` (see `crons.rs`); the background layer runs them.
    pub(crate) crons: Vec<crate::crons::CronSpec>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub(crate) fn add(
        &mut self,
        path: &str,
        visibility: Visibility,
        args: Validator,
        handler: Handler,
    ) -> &mut FunctionSpec {
        // Registration happens at start-up from code; a bad or duplicate path is a programming error.
        let path = FunctionPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(args, Validator::Object(_)),
            "args validator of {path} must be v::object(...)"
        );
        assert!(
            !self.functions.contains_key(&path),
            "function {path} registered twice"
        );
        let kind = match handler {
            Handler::Query(_) => FunctionKind::Query,
            Handler::Mutation { .. } => FunctionKind::Mutation,
            Handler::Action(_) => FunctionKind::Action,
        };
        let spec = FunctionSpec {
            path: path.clone(),
            kind,
            visibility,
            args,
            returns: None,
            cross_tenant: false,
            error_shape: ErrorShape::Object,
        };
        &mut self
            .functions
            .entry(path)
            .or_insert(Registered { spec, handler })
            .spec
    }

    pub fn query_untyped(
        &mut self,
        path: &str,
        args: Validator,
        f: impl Fn(&mut QueryCtx<'_>, Object) -> FnResult + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.add(path, Visibility::Public, args, Handler::Query(Arc::new(f)))
    }

    pub fn internal_query_untyped(
        &mut self,
        path: &str,
        args: Validator,
        f: impl Fn(&mut QueryCtx<'_>, Object) -> FnResult + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.add(
            path,
            Visibility::Internal,
            args,
            Handler::Query(Arc::new(f)),
        )
    }

    pub fn mutation_untyped(
        &mut self,
        path: &str,
        args: Validator,
        f: impl Fn(&mut MutationCtx<'_>, Object) -> FnResult + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.add(path, Visibility::Public, args, plain_mutation(f))
    }

    pub fn internal_mutation_untyped(
        &mut self,
        path: &str,
        args: Validator,
        f: impl Fn(&mut MutationCtx<'_>, Object) -> FnResult + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.add(path, Visibility::Internal, args, plain_mutation(f))
    }

    /// `mutation_with_prepare` over untyped arguments and result.
    pub fn mutation_with_prepare_untyped<P, Prep, Fut, Apply>(
        &mut self,
        path: &str,
        args: Validator,
        prepare: Prep,
        apply: Apply,
    ) -> &mut FunctionSpec
    where
        P: Send + Sync + 'static,
        Prep: Fn(ActionCtx, Object) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = FnResult<P>> + Send + 'static,
        Apply: Fn(&mut MutationCtx<'_>, Object, &P) -> FnResult + Send + Sync + 'static,
    {
        let prepare: PrepareFn = Arc::new(move |ctx, args| {
            let fut = prepare(ctx, args);
            Box::pin(async move { fut.await.map(|p| Arc::new(p) as Prepared) })
        });
        let apply: MutationFn = Arc::new(move |ctx, args, prepared| {
            let prepared = prepared.downcast_ref::<P>().ok_or_else(|| {
                crate::FunctionError::internal("prepared value has the wrong type")
            })?;
            apply(ctx, args, prepared)
        });
        let handler = Handler::Mutation {
            apply,
            prepare: Some(prepare),
        };
        self.add(path, Visibility::Public, args, handler)
    }

    pub fn action_untyped<F, Fut>(&mut self, path: &str, args: Validator, f: F) -> &mut FunctionSpec
    where
        F: Fn(ActionCtx, Object) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = FnResult> + Send + 'static,
    {
        let handler: ActionFn = Arc::new(move |ctx, args| Box::pin(f(ctx, args)));
        self.add(path, Visibility::Public, args, Handler::Action(handler))
    }

    pub fn internal_action_untyped<F, Fut>(
        &mut self,
        path: &str,
        args: Validator,
        f: F,
    ) -> &mut FunctionSpec
    where
        F: Fn(ActionCtx, Object) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = FnResult> + Send + 'static,
    {
        let handler: ActionFn = Arc::new(move |ctx, args| Box::pin(f(ctx, args)));
        self.add(path, Visibility::Internal, args, Handler::Action(handler))
    }

    /// Adds every function of `other` (modules register into their own registry and are merged).
    pub fn merge(&mut self, other: Registry) {
        for (path, registered) in other.functions {
            assert!(
                !self.functions.contains_key(&path),
                "function {path} registered twice"
            );
            self.functions.insert(path, registered);
        }
        if other.auth_check.is_some() {
            self.auth_check = other.auth_check;
        }
        if other.session_argument.is_some() {
            self.session_argument = other.session_argument;
        }
        for cron in other.crons {
            assert!(
                !self.crons.iter().any(|c| c.name == cron.name),
                "cron {:?} declared twice",
                cron.name
            );
            self.crons.push(cron);
        }
    }

    /// Names the query that decides whether a token a client authenticates a connection with (the
    /// WebSocket `Authenticate` message) is valid. It runs with the token as the bearer token and no
    /// arguments, and returns null for an invalid or expired token.
    pub fn authenticate_with(&mut self, path: &str) {
        self.auth_check = Some(FunctionPath::parse(path).unwrap_or_else(|e| panic!("{e}")));
    }

    /// Names an argument that carries the caller's session token (clients that cannot set a
    /// header put it in every call's arguments). When a call has it, it is the token the handler's
    /// `Auth` presents, ahead of the connection's.
    pub fn session_token_argument(&mut self, name: &str) {
        self.session_argument = Some(name.to_owned());
    }

    pub(crate) fn session_argument(&self) -> Option<&str> {
        self.session_argument.as_deref()
    }

    /// The query named by `authenticate_with`, if any.
    pub fn auth_check(&self) -> Option<&FunctionPath> {
        self.auth_check.as_ref()
    }

    pub(crate) fn lookup(&self, path: &FunctionPath) -> Option<&Registered> {
        self.functions.get(path)
    }

    pub fn specs(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.functions.values().map(|r| &r.spec)
    }

    /// The whole API as JSON, in path order (stable, so it can be snapshot-tested).
    pub fn spec_json(&self) -> serde_json::Value {
        serde_json::json!({ "functions": self.specs().map(FunctionSpec::to_json).collect::<Vec<_>>() })
    }

    pub fn len(&self) -> usize {
        self.functions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

fn plain_mutation(
    f: impl Fn(&mut MutationCtx<'_>, Object) -> FnResult + Send + Sync + 'static,
) -> Handler {
    Handler::Mutation {
        apply: Arc::new(move |ctx, args, _| f(ctx, args)),
        prepare: None,
    }
}

/// Shorthand for functions without arguments.
pub fn no_args() -> Validator {
    v::object(Vec::<(&str, Validator)>::new())
}
