//! Impersonation: a system admin acts as another user, for support, with a stated reason.
//!
//! `impersonation:startImpersonation` issues an `imp_…` token (stored only as its hash) that lasts
//! 30 minutes; at most three are live per admin. While it is live, `identity::resolve` turns it into
//! the TARGET as the viewer (with `impersonator` set), so every function acts as the target.
//! Admin roles (system_admin, demo_admin) can never be impersonated, not even by the reference's
//! hard-coded "owner". An impersonation also dies with the admin's session or permission.
//!
//! `impersonation:endImpersonation` may be called only by the impersonating admin (from their own
//! session, or with the impersonation token itself as the session, as the web app does). It hands
//! back `original_session_token`: we keep only hashes, so there is no original token to return, and
//! a FRESH admin session is minted instead, ending no later than the admin session that started
//! the impersonation.
//!
//! The admin page (`searchUsersForImpersonation`, `getActiveImpersonationSessions`,
//! `emergencyTerminateAllSessions`, in `oversight`) authenticates with `admin_session_token`, which
//! must belong to a system administrator; the two queries answer `[]` before the page has a token.

pub(crate) mod end;
mod oversight;
pub mod rows;
mod start;
mod status;

pub use end::end_all_for_admin;

use config::Urls;
use functions::{
    Auth, CrossTenant, DbRead, DbWriter, ErrorCode, FnResult, FunctionError, Registry, Scope,
};
use serde::{Deserialize, Serialize};
use store::{Document, Patch, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Typed, Validator, Value};

use crate::identity::sessions::{hash_token, SessionDoc};
use crate::identity::{resolve, Permission, Role, Viewer};

pub const TABLE: &str = "impersonation_sessions";
/// Marks impersonation tokens, so resolution knows which table to look in.
pub const TOKEN_PREFIX: &str = "imp_";
pub const TTL_MS: f64 = 30.0 * 60.0 * 1000.0;
pub const MAX_ACTIVE_PER_ADMIN: usize = 3;

pub fn tables() -> Vec<TableDef> {
    // Not tenant-scoped: a row links a system admin (no company) to a user of any company, and only
    // this module and identity resolution read it.
    vec![TableDef::new(TABLE)
        .field("admin_user_id", v::id("users"))
        // The admin session that started it: signing out there ends the impersonation too.
        .field("admin_session_id", v::id("sessions"))
        .field("target_user_id", v::id("users"))
        // Kept so the audit entry at the end lands in the target's company without a cross-tenant read.
        .optional("target_company_id", v::id("companies"))
        .field("token_hash", v::string())
        .field("reason", v::string())
        .field("created_at", v::number())
        .field("expires_at", v::number())
        .field("is_active", v::boolean())
        .optional("terminated_at", v::number())
        .field("correlation_id", v::string())
        // Workflow state saved while impersonating (`sessionManagement:updateWorkflowState`), kept
        // apart from the target's own sessions.
        .optional("workflow_state", v::any())
        .index("by_token_hash", &["token_hash"])
        .index(
            "by_admin_active",
            &["admin_user_id", "is_active", "expires_at"],
        )
        // For housekeeping: every row, ended or not, is dead once it expires.
        .index("by_expires", &["expires_at"])]
}

/// A document of the impersonation sessions. No `Debug`: it holds the token's hash.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(table = "impersonation_sessions")]
pub struct ImpersonationDoc {
    #[serde(rename = "_id")]
    pub id: Id<ImpersonationDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "users")]
    pub admin_user_id: DocumentId,
    #[typed(id = "sessions")]
    pub admin_session_id: DocumentId,
    #[typed(id = "users")]
    pub target_user_id: DocumentId,
    #[typed(id = "companies")]
    pub target_company_id: Option<DocumentId>,
    pub token_hash: String,
    pub reason: String,
    pub created_at: f64,
    pub expires_at: f64,
    pub is_active: bool,
    pub terminated_at: Option<f64>,
    pub correlation_id: String,
    pub workflow_state: Option<Value>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, ImpersonationDoc::validator())]
}

pub fn register(r: &mut Registry, _urls: &Urls) {
    r.mutation("impersonation:startImpersonation", start::start)
        .cross_tenant();
    r.mutation("impersonation:endImpersonation", end::end);
    r.query("impersonation:getImpersonationStatus", status::status);
    r.query(
        "impersonation:searchUsersForImpersonation",
        oversight::search_users,
    )
    .cross_tenant();
    r.query(
        "impersonation:getActiveImpersonationSessions",
        oversight::active_sessions,
    )
    .cross_tenant();
    r.mutation(
        "impersonation:emergencyTerminateAllSessions",
        oversight::terminate_all,
    )
    .cross_tenant();
}

/// The system administrator behind `token` (the `admin_session_token` argument). Only that argument
/// counts, not the injected `sessionToken` or a bearer token: the admin pages name their credential.
pub(crate) fn require_admin(db: &mut impl DbRead, token: &str, now: f64) -> FnResult<Viewer> {
    let unauthenticated =
        || FunctionError::user(ErrorCode::Unauthenticated, "Authentication required");
    if token.is_empty() {
        return Err(unauthenticated());
    }
    let viewer = resolve(db, &Auth::bearer(token), now)?.ok_or_else(unauthenticated)?;
    // An impersonation token resolves to its target, never an admin; refused explicitly all the same.
    if viewer.impersonator.is_some() || !viewer.has(Permission::ImpersonateUsers) {
        return Err(FunctionError::forbidden(
            "Insufficient permissions: System administrator role required",
        ));
    }
    Ok(viewer)
}

pub fn is_impersonation_token(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX)
}

/// Roles that may be impersonated: never an admin, whose powers an impersonator must not borrow.
pub fn can_be_impersonated(role: Role) -> bool {
    role < Role::DemoAdmin
}

/// A live impersonation and the two users it joins.
pub struct Active {
    pub id: DocumentId,
    pub row: ImpersonationDoc,
    pub admin: Document,
    pub target: Document,
}

/// The live impersonation behind `token`; `None` for unknown, ended and expired ones alike.
pub fn find_active(db: &mut impl DbRead, token: &str, now: f64) -> FnResult<Option<Active>> {
    if !is_impersonation_token(token) {
        return Ok(None);
    }
    let row = db
        .query(TABLE)?
        .with_index("by_token_hash", |q| q.eq("token_hash", hash_token(token)))?
        .first()?
        .map(|doc| functions::row::<ImpersonationDoc>(&doc))
        .transpose()?;
    let Some(row) = row else {
        return Ok(None);
    };
    // Identity resolution: both users may be in any company (the admin in none).
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let Some((admin, target)) = live_users(db, &all, &row, now)? else {
        return Ok(None);
    };
    Ok(Some(Active {
        id: row.id.get(),
        row,
        admin,
        target,
    }))
}

/// The admin and target of `row` if it is still live, read through `users` (a scope of every
/// company: the admin has none). Re-checked on every call, not only at start: the admin may have
/// signed out or lost the permission, and the target may have been promoted.
pub(crate) fn live_users(
    db: &mut impl DbRead,
    users: &Scope,
    row: &ImpersonationDoc,
    now: f64,
) -> FnResult<Option<(Document, Document)>> {
    if !row.is_active || row.expires_at <= now {
        return Ok(None);
    }
    let admin_session_alive = db
        .get_in("sessions", &row.admin_session_id.encode())?
        .map(|s| functions::row::<SessionDoc>(&s))
        .transpose()?
        .is_some_and(|s| s.expires_at > now);
    if !admin_session_alive {
        return Ok(None);
    }
    let mut users = db.read_scoped(users);
    let role = |user: &Document| {
        user.get("role")
            .and_then(Value::as_str)
            .and_then(Role::parse)
    };
    let admin = users
        .get_in("users", &row.admin_user_id.encode())?
        .filter(|a| role(a).is_some_and(|r| r.has(Permission::ImpersonateUsers)));
    let target = users
        .get_in("users", &row.target_user_id.encode())?
        .filter(|t| role(t).is_some_and(can_be_impersonated));
    Ok(admin.zip(target))
}

/// Flags the impersonation `id` as ended at `at`; its token stops resolving at once.
pub(crate) fn mark_ended(db: &mut DbWriter<'_>, id: &DocumentId, at: f64) -> FnResult<()> {
    let mut patch = Patch::new();
    patch.insert("is_active".into(), Some(Value::from(false)));
    patch.insert("terminated_at".into(), Some(Value::from(at)));
    db.patch(id, patch)?;
    Ok(())
}

/// The impersonation rows in `docs`, read as their row type.
pub(crate) fn read_rows(docs: &[Document]) -> FnResult<Vec<ImpersonationDoc>> {
    docs.iter().map(functions::row).collect()
}

/// Ended and expired impersonations are kept a day, so a late `endImpersonation` still gets its
/// usual `success` rather than "not found".
pub const RETENTION_MS: f64 = crate::housekeeping::DAY_MS;

static EXPIRED: crate::housekeeping::Expiring = crate::housekeeping::Expiring {
    table: TABLE,
    index: "by_expires",
    field: "expires_at",
    keep_ms: RETENTION_MS,
};

pub fn register_sweep(r: &mut Registry) {
    crate::housekeeping::expiring(
        r,
        "prune impersonations",
        functions::FunctionRef::internal_mutation("housekeeping:sweepImpersonations"),
        &EXPIRED,
    );
}
