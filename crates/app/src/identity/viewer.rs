//! Who is calling: `require_permission` resolves the session token (the `sessionToken` argument, or
//! the `Authorization: Bearer` token the official clients send), the user, their role's permissions
//! and their company. Every public function checks access through it.
//!
//! An impersonation token (`imp_…`, see `crate::impersonation`) resolves to its TARGET, with
//! `impersonator` naming the admin, so every function acts as the target without knowing about
//! impersonation.

use functions::{Auth, CrossTenant, DbRead, ErrorCode, FnResult, FunctionError, Scope};
use store::Document;
use values::{DocumentId, Value};

use super::permissions::{Permission, Role};
use super::sessions;

#[derive(Clone, Debug)]
pub struct Viewer {
    pub user_id: DocumentId,
    /// The `sessions` row, or the `impersonation_sessions` row when impersonating (it can hold
    /// workflow state like a session, kept apart from the target's own sessions).
    pub session_id: DocumentId,
    /// The system admin acting as this user, when the token was an impersonation token.
    pub impersonator: Option<DocumentId>,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub company_id: Option<DocumentId>,
    pub user: Document,
}

impl Viewer {
    pub fn has(&self, permission: Permission) -> bool {
        self.role.has(permission)
    }

    pub fn require(&self, permission: Permission) -> FnResult<()> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(FunctionError::forbidden("Insufficient permissions"))
        }
    }

    /// The viewer's own company, the scope of almost every function.
    pub fn company_scope(&self) -> FnResult<Scope> {
        self.company_id
            .map(Scope::company)
            .ok_or_else(|| FunctionError::forbidden("User must be associated with a company"))
    }

    /// Every company, for functions declared cross-tenant, when the viewer holds `permission`.
    pub fn all_companies_scope(
        &self,
        grant: &CrossTenant,
        permission: Permission,
    ) -> FnResult<Scope> {
        self.require(permission)?;
        Ok(Scope::all_companies(grant))
    }

    /// A company chosen by the caller: their own, or any with `permission` in a cross-tenant function.
    pub fn scope_for(
        &self,
        company: &DocumentId,
        grant: Option<&CrossTenant>,
        permission: Permission,
    ) -> FnResult<Scope> {
        if self.company_id.as_ref() == Some(company) {
            return Ok(Scope::company(*company));
        }
        match grant {
            Some(_) if self.has(permission) => Ok(Scope::company(*company)),
            _ => Err(FunctionError::forbidden(
                "You can only act on your own company",
            )),
        }
    }
}

/// The token the caller presented. The `sessionToken` argument, which the reference web app sends
/// with every call, reaches here as the `Auth`'s token ahead of the bearer token (see
/// `Registry::session_token_argument`).
pub fn presented_token(auth: &Auth) -> Option<&str> {
    auth.token().filter(|token| !token.is_empty())
}

/// The viewer behind a token, or `None` when there is no valid session.
pub fn resolve(db: &mut impl DbRead, auth: &Auth, now: f64) -> FnResult<Option<Viewer>> {
    let Some(token) = presented_token(auth) else {
        return Ok(None);
    };
    if crate::impersonation::is_impersonation_token(token) {
        return Ok(match crate::impersonation::find_active(db, token, now)? {
            Some(active) => Some(viewer_for(
                db,
                active.target,
                active.id,
                Some(active.admin.id),
            )?),
            None => None,
        });
    }
    let Some(session) = sessions::find(db, token, now)? else {
        return Ok(None);
    };
    let user_id = session.user_id.encode();
    let grant = CrossTenant::for_identity_resolution();
    let Some(user) = db
        .read_scoped(&Scope::all_companies(&grant))
        .get_in("users", &user_id)?
    else {
        return Ok(None);
    };
    Ok(Some(viewer_for(db, user, session.id.get(), None)?))
}

fn viewer_for(
    db: &mut impl DbRead,
    user: Document,
    session_id: DocumentId,
    impersonator: Option<DocumentId>,
) -> FnResult<Viewer> {
    let text = |field: &str| {
        user.get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let role = Role::parse(&text("role"))
        .ok_or_else(|| FunctionError::internal(format!("user {} has an unknown role", user.id)))?;
    let company_id = user
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| db.normalize_id("companies", c));
    Ok(Viewer {
        user_id: user.id,
        session_id,
        impersonator,
        name: text("name"),
        email: text("email"),
        role,
        company_id,
        user,
    })
}

/// The viewer, who must be signed in and hold `permission`.
pub fn require_permission(
    db: &mut impl DbRead,
    auth: &Auth,
    now: f64,
    permission: Permission,
) -> FnResult<Viewer> {
    let viewer = require_session(db, auth, now)?;
    viewer.require(permission)?;
    Ok(viewer)
}

/// The viewer, who must be signed in (any role).
pub fn require_session(db: &mut impl DbRead, auth: &Auth, now: f64) -> FnResult<Viewer> {
    if presented_token(auth).is_none() {
        return Err(FunctionError::user(
            ErrorCode::Unauthenticated,
            "Authentication required",
        ));
    }
    resolve(db, auth, now)?.ok_or_else(|| {
        FunctionError::user(ErrorCode::Unauthenticated, "Invalid or expired session")
    })
}
