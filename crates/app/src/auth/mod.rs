//! Signing in and out, registration, the current user, and password changes.

mod change_password;
mod current;
mod login;
pub mod passwords;
mod permission_labels;
mod register;
pub mod reset;

use config::Urls;
use functions::{CrossTenant, FnResult, FunctionRef, QueryCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use values::Typed;

use crate::args::SessionArgs;
use crate::identity::require_session;

pub use login::{LOCKOUT_MS, MAX_FAILED_LOGINS};

/// An email address, the arguments of the internal credential and reset functions.
#[derive(Serialize, Deserialize, Typed)]
pub struct EmailArgs {
    pub email: String,
}

/// A user's id and password hash (empty when the account must set a password first), for the
/// prepare steps of sign-in and password change.
#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    #[typed(id = "users")]
    pub user_id: String,
    pub password_hash: String,
}

pub const CREDENTIALS_FOR_LOGIN: FunctionRef<EmailArgs, Option<Credentials>> =
    FunctionRef::internal_query("auth:credentialsForLogin");
pub const CREDENTIALS_FOR_SESSION: FunctionRef<SessionArgs, Credentials> =
    FunctionRef::internal_query("auth:credentialsForSession");

/// The web app's sign-in code reads `error.data` of these calls as text (`.includes("Invalid email
/// or password")` and the like), so their user errors carry the message string as data.
pub fn register(r: &mut Registry, urls: &Urls) {
    // The web client sends its session token in every call's arguments; it counts as the caller's
    // token wherever the module's registry goes.
    r.session_token_argument("sessionToken");
    r.mutation_with_prepare("auth:registerUser", register::prepare, register::apply)
        .cross_tenant()
        .message_error_data();
    r.mutation_with_prepare("auth:loginUser", login::prepare, login::apply)
        .cross_tenant()
        .message_error_data();
    r.mutation("auth:logoutUser", current::logout);
    r.query("auth:getCurrentUser", current::get_current_user);
    r.query("auth:verifySession", current::verify_session);
    r.query("auth:verifyOwnerAccess", current::verify_owner_access);
    r.query("users:getCurrent", current::get_current);
    r.query("users:getCurrentUser", current::get_current);
    r.query(
        "permissions:getUserPermissions",
        current::get_user_permissions,
    );
    r.query(
        "permissions:getTestablePermissions",
        permission_labels::testable,
    );
    r.query(
        "permissions:getRolePermissionLabels",
        permission_labels::role_labels,
    );
    r.mutation_with_prepare(
        "auth:changePassword",
        change_password::prepare,
        change_password::apply,
    )
    .message_error_data();
    r.mutation(
        "sessionManagement:updateWorkflowState",
        current::update_workflow_state,
    );
    r.query("sessionManagement:recoverState", current::recover_state);

    r.action("auth:requestPasswordReset", reset::request)
        .message_error_data();
    let reset_urls = urls.clone();
    r.internal_mutation(reset::CREATE, move |ctx, args| {
        reset::create(ctx, &reset_urls, args)
    })
    .cross_tenant();
    r.action("email:sendPasswordResetEmail", reset::send_by_admin);
    let admin_reset_urls = urls.clone();
    r.internal_mutation(reset::CREATE_BY_ADMIN, move |ctx, args| {
        reset::create_by_admin(ctx, &admin_reset_urls, args)
    })
    .cross_tenant();
    r.mutation_with_prepare(
        "auth:resetPassword",
        reset::prepare_reset,
        reset::apply_reset,
    )
    .cross_tenant()
    .message_error_data();

    // What the prepare steps read; internal, so no client can look up password hashes.
    r.internal_query(CREDENTIALS_FOR_LOGIN, credentials_for_login)
        .cross_tenant();
    r.internal_query(CREDENTIALS_FOR_SESSION, credentials_for_session);
}

fn credentials_for_login(ctx: &mut QueryCtx<'_>, args: EmailArgs) -> FnResult<Option<Credentials>> {
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let user = ctx
        .db
        .scoped(&all)
        .query("users", "by_email", |q| q.eq("email", args.email.as_str()))?
        .first()?;
    Ok(user.map(|u| Credentials {
        user_id: u.id.encode(),
        password_hash: crate::users::text_of(&u, "password").to_string(),
    }))
}

fn credentials_for_session(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Credentials> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    Ok(Credentials {
        user_id: viewer.user_id.encode(),
        password_hash: crate::users::text_of(&viewer.user, "password").to_string(),
    })
}
