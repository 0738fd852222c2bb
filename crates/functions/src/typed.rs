//! Typed functions: handlers over an arguments type and a result type, whose validators come from
//! the types (`values::Typed`), and `FunctionRef`s, so calls between functions are checked by the
//! compiler instead of matched by path strings.
//!
//! ```ignore
//! #[derive(Deserialize, Typed)]
//! #[serde(rename_all = "camelCase")]
//! #[typed(session)]
//! pub struct GetArgs { #[typed(id = "participants")] participant_id: String }
//!
//! pub const GET: FunctionRef<GetArgs, Participant> = FunctionRef::query("participants:get");
//!
//! r.query(GET, get);                   // fn get(ctx: &mut QueryCtx, args: GetArgs) -> FnResult<Participant>
//! let p = ctx.run_query(GET, args).await?;   // from an action
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use values::serde_bridge::{from_value, to_value};
use values::{Object, Typed, Value};

use crate::context::{ActionCtx, MutationCtx, QueryCtx};
use crate::registry::{ActionFn, FunctionSpec, Handler, MutationFn, PrepareFn, Prepared};
use crate::{ErrorCode, FnResult, FunctionError, FunctionKind, Registry, Visibility};

/// A function's path, kind and visibility, with its argument and result types.
pub struct FunctionRef<A, R> {
    path: &'static str,
    kind: FunctionKind,
    visibility: Visibility,
    types: PhantomData<fn(A) -> R>,
}

impl<A, R> Clone for FunctionRef<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, R> Copy for FunctionRef<A, R> {}

impl<A, R> std::fmt::Debug for FunctionRef<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.path)
    }
}

impl<A, R> FunctionRef<A, R> {
    const fn new(path: &'static str, kind: FunctionKind, visibility: Visibility) -> Self {
        FunctionRef {
            path,
            kind,
            visibility,
            types: PhantomData,
        }
    }
    pub const fn query(path: &'static str) -> Self {
        Self::new(path, FunctionKind::Query, Visibility::Public)
    }
    pub const fn mutation(path: &'static str) -> Self {
        Self::new(path, FunctionKind::Mutation, Visibility::Public)
    }
    pub const fn action(path: &'static str) -> Self {
        Self::new(path, FunctionKind::Action, Visibility::Public)
    }
    pub const fn internal_query(path: &'static str) -> Self {
        Self::new(path, FunctionKind::Query, Visibility::Internal)
    }
    pub const fn internal_mutation(path: &'static str) -> Self {
        Self::new(path, FunctionKind::Mutation, Visibility::Internal)
    }
    pub const fn internal_action(path: &'static str) -> Self {
        Self::new(path, FunctionKind::Action, Visibility::Internal)
    }
    pub fn path(&self) -> &'static str {
        self.path
    }
    pub fn kind(&self) -> FunctionKind {
        self.kind
    }
}

/// What a typed registration names: a path (its types come from the handler) or a `FunctionRef`
/// (whose kind and visibility must match how it is registered).
pub trait FunctionName<A, R> {
    fn path(&self) -> &str;
    fn declared(&self) -> Option<(FunctionKind, Visibility)>;
}

impl<A, R> FunctionName<A, R> for &str {
    fn path(&self) -> &str {
        self
    }
    fn declared(&self) -> Option<(FunctionKind, Visibility)> {
        None
    }
}

impl<A, R> FunctionName<A, R> for FunctionRef<A, R> {
    fn path(&self) -> &str {
        self.path
    }
    fn declared(&self) -> Option<(FunctionKind, Visibility)> {
        Some((self.kind, self.visibility))
    }
}

/// Arguments after their validator passed. Serde can still refuse what a validator cannot express
/// (a fraction for an integer field), with the same kind of error.
pub(crate) fn decode<A: DeserializeOwned>(args: Object) -> FnResult<A> {
    from_value(&Value::Object(args)).map_err(|e| {
        FunctionError::plain(
            ErrorCode::Validation,
            format!("ArgumentValidationError: {e}"),
        )
    })
}

fn encode<R: Serialize>(result: &R) -> FnResult<Value> {
    to_value(result).map_err(|e| FunctionError::internal(format!("result does not encode: {e}")))
}

fn encode_args<A: Serialize>(args: &A) -> FnResult<Value> {
    to_value(args).map_err(|e| FunctionError::internal(format!("arguments do not encode: {e}")))
}

/// Bounds every typed argument type meets.
pub trait Args: DeserializeOwned + Typed + Send + 'static {}
impl<T: DeserializeOwned + Typed + Send + 'static> Args for T {}

/// Bounds every typed result type meets.
pub trait Returns: Serialize + Typed + Send + 'static {}
impl<T: Serialize + Typed + Send + 'static> Returns for T {}

impl Registry {
    fn add_typed<A: Args, R: Returns>(
        &mut self,
        name: impl FunctionName<A, R>,
        kind: FunctionKind,
        visibility: Visibility,
        handler: Handler,
    ) -> &mut FunctionSpec {
        if let Some(declared) = name.declared() {
            assert_eq!(
                declared,
                (kind, visibility),
                "{} is declared as one kind and registered as another",
                name.path()
            );
        }
        self.add(name.path(), visibility, A::validator(), handler)
            .returns(R::validator())
    }

    fn typed_query<A: Args, R: Returns>(
        &mut self,
        name: impl FunctionName<A, R>,
        visibility: Visibility,
        f: impl Fn(&mut QueryCtx<'_>, A) -> FnResult<R> + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        let handler = Handler::Query(Arc::new(move |ctx, args| encode(&f(ctx, decode(args)?)?)));
        self.add_typed(name, FunctionKind::Query, visibility, handler)
    }

    fn typed_mutation<A: Args, R: Returns>(
        &mut self,
        name: impl FunctionName<A, R>,
        visibility: Visibility,
        f: impl Fn(&mut MutationCtx<'_>, A) -> FnResult<R> + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        let apply: MutationFn = Arc::new(move |ctx, args, _| encode(&f(ctx, decode(args)?)?));
        let handler = Handler::Mutation {
            apply,
            prepare: None,
        };
        self.add_typed(name, FunctionKind::Mutation, visibility, handler)
    }

    fn typed_action<A: Args, R: Returns, F, Fut>(
        &mut self,
        name: impl FunctionName<A, R>,
        visibility: Visibility,
        f: F,
    ) -> &mut FunctionSpec
    where
        F: Fn(ActionCtx, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = FnResult<R>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: ActionFn = Arc::new(move |ctx, args| {
            let f = f.clone();
            Box::pin(async move { encode(&f(ctx, decode(args)?).await?) })
        });
        self.add_typed(
            name,
            FunctionKind::Action,
            visibility,
            Handler::Action(handler),
        )
    }

    pub fn query<A: Args, R: Returns>(
        &mut self,
        name: impl FunctionName<A, R>,
        f: impl Fn(&mut QueryCtx<'_>, A) -> FnResult<R> + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.typed_query(name, Visibility::Public, f)
    }

    pub fn internal_query<A: Args, R: Returns>(
        &mut self,
        name: impl FunctionName<A, R>,
        f: impl Fn(&mut QueryCtx<'_>, A) -> FnResult<R> + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.typed_query(name, Visibility::Internal, f)
    }

    pub fn mutation<A: Args, R: Returns>(
        &mut self,
        name: impl FunctionName<A, R>,
        f: impl Fn(&mut MutationCtx<'_>, A) -> FnResult<R> + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.typed_mutation(name, Visibility::Public, f)
    }

    pub fn internal_mutation<A: Args, R: Returns>(
        &mut self,
        name: impl FunctionName<A, R>,
        f: impl Fn(&mut MutationCtx<'_>, A) -> FnResult<R> + Send + Sync + 'static,
    ) -> &mut FunctionSpec {
        self.typed_mutation(name, Visibility::Internal, f)
    }

    pub fn action<A: Args, R: Returns, F, Fut>(
        &mut self,
        name: impl FunctionName<A, R>,
        f: F,
    ) -> &mut FunctionSpec
    where
        F: Fn(ActionCtx, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = FnResult<R>> + Send + 'static,
    {
        self.typed_action(name, Visibility::Public, f)
    }

    pub fn internal_action<A: Args, R: Returns, F, Fut>(
        &mut self,
        name: impl FunctionName<A, R>,
        f: F,
    ) -> &mut FunctionSpec
    where
        F: Fn(ActionCtx, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = FnResult<R>> + Send + 'static,
    {
        self.typed_action(name, Visibility::Internal, f)
    }

    /// A mutation whose slow, side-effect-free part (password hashing, reads it can verify later)
    /// runs in `prepare`, outside the transaction, so it never holds the writer. `apply` runs in the
    /// transaction with what `prepare` produced and must re-check anything `prepare` read. Clients
    /// see an ordinary mutation.
    pub fn mutation_with_prepare<A, R, P, Prep, Fut, Apply>(
        &mut self,
        name: impl FunctionName<A, R>,
        prepare: Prep,
        apply: Apply,
    ) -> &mut FunctionSpec
    where
        A: Args,
        R: Returns,
        P: Send + Sync + 'static,
        Prep: Fn(ActionCtx, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = FnResult<P>> + Send + 'static,
        Apply: Fn(&mut MutationCtx<'_>, A, &P) -> FnResult<R> + Send + Sync + 'static,
    {
        let prepare = Arc::new(prepare);
        let prepare: PrepareFn = Arc::new(move |ctx, args| {
            let prepare = prepare.clone();
            Box::pin(async move {
                let prepared = prepare(ctx, decode(args)?).await?;
                Ok(Arc::new(prepared) as Prepared)
            })
        });
        let apply: MutationFn = Arc::new(move |ctx, args, prepared| {
            let prepared = prepared
                .downcast_ref::<P>()
                .ok_or_else(|| FunctionError::internal("prepared value has the wrong type"))?;
            encode(&apply(ctx, decode(args)?, prepared)?)
        });
        let handler = Handler::Mutation {
            apply,
            prepare: Some(prepare),
        };
        self.add_typed(name, FunctionKind::Mutation, Visibility::Public, handler)
    }
}

impl MutationCtx<'_> {
    /// `fail_after_commit` for a typed mutation: commits the writes, then answers with `error`. The
    /// `R::default()` it returns only lets the handler finish; no caller sees it.
    pub fn fail_after_commit_typed<R: Default>(&mut self, error: FunctionError) -> FnResult<R> {
        self.fail_after_commit(error).map(|_| R::default())
    }
}

impl ActionCtx {
    async fn call_typed<A: Serialize, R: DeserializeOwned>(
        &self,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<R> {
        let args = match encode_args(args)? {
            Value::Object(args) => args,
            other => {
                return Err(FunctionError::internal(format!(
                    "arguments of {} encode as {}, not an object",
                    function.path,
                    other.type_name()
                )))
            }
        };
        let value = self.run(function.kind, function.path, args).await?;
        from_value(&value).map_err(|e| {
            FunctionError::internal(format!(
                "{} returned what its type does not read: {e}",
                function.path
            ))
        })
    }

    pub async fn run_query<A: Serialize, R: DeserializeOwned>(
        &self,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<R> {
        self.call_typed(function, args).await
    }
    pub async fn run_mutation<A: Serialize, R: DeserializeOwned>(
        &self,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<R> {
        self.call_typed(function, args).await
    }
    pub async fn run_action<A: Serialize, R: DeserializeOwned>(
        &self,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<R> {
        self.call_typed(function, args).await
    }
}

/// A stored document as its row type: the table's fields plus `_id` and `_creationTime`, as
/// clients see documents.
pub fn row<T: DeserializeOwned>(doc: &store::Document) -> FnResult<T> {
    from_value(&doc.to_value()).map_err(|e| {
        FunctionError::internal(format!(
            "a {} document does not read as its row type: {e}",
            doc.table
        ))
    })
}
