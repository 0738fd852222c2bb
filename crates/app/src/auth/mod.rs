//! Signing in and out, registration, the current user, and password changes.

mod change_password;
mod current;
mod login;
pub mod passwords;
mod permission_labels;
mod register;
pub mod reset;

use config::Urls;
use functions::{CrossTenant, FnResult, QueryCtx, Registry, Scope};
use values::validator::v;
use values::{Object, Value};

use crate::args::{object, text, with_session};
use crate::identity::require_session;

pub use login::{LOCKOUT_MS, MAX_FAILED_LOGINS};

/// The web app's sign-in code reads `error.data` of these calls as text (`.includes("Invalid email
/// or password")` and the like), so their user errors carry the message string as data.
pub fn register(r: &mut Registry, urls: &Urls) {
    // The web client sends its session token in every call's arguments; it counts as the caller's
    // token wherever the module's registry goes.
    r.session_token_argument("sessionToken");
    r.mutation_with_prepare_untyped(
        "auth:registerUser",
        with_session([
            ("name", v::string().into()),
            ("email", v::string().into()),
            ("password", v::string().into()),
            ("company_id", v::optional(v::string())),
            ("invitationToken", v::optional(v::string())),
        ]),
        register::prepare,
        register::apply,
    )
    .cross_tenant()
    .message_error_data();
    r.mutation_with_prepare_untyped(
        "auth:loginUser",
        with_session([
            ("email", v::string().into()),
            ("password", v::string().into()),
            ("rememberMe", v::optional(v::boolean())),
        ]),
        login::prepare,
        login::apply,
    )
    .cross_tenant()
    .message_error_data();
    r.mutation_untyped("auth:logoutUser", with_session([]), current::logout);
    r.query_untyped(
        "auth:getCurrentUser",
        with_session([]),
        current::get_current_user,
    );
    r.query_untyped(
        "auth:verifySession",
        with_session([]),
        current::verify_session,
    );
    r.query_untyped(
        "auth:verifyOwnerAccess",
        with_session([]),
        current::verify_owner_access,
    );
    r.query_untyped("users:getCurrent", with_session([]), current::get_current);
    r.query_untyped(
        "users:getCurrentUser",
        with_session([]),
        current::get_current,
    );
    r.query_untyped(
        "permissions:getUserPermissions",
        with_session([("companyId", v::optional(v::string()))]),
        current::get_user_permissions,
    );
    r.query_untyped(
        "permissions:getTestablePermissions",
        with_session([]),
        permission_labels::testable,
    );
    r.query_untyped(
        "permissions:getRolePermissionLabels",
        with_session([("role", v::optional(v::string()))]),
        permission_labels::role_labels,
    );
    r.mutation_with_prepare_untyped(
        "auth:changePassword",
        with_session([
            ("currentPassword", v::string().into()),
            ("newPassword", v::string().into()),
        ]),
        change_password::prepare,
        change_password::apply,
    )
    .message_error_data();
    r.mutation_untyped(
        "sessionManagement:updateWorkflowState",
        with_session([("workflowState", v::any().into())]),
        current::update_workflow_state,
    );
    r.query_untyped(
        "sessionManagement:recoverState",
        with_session([]),
        current::recover_state,
    );

    r.action_untyped(
        "auth:requestPasswordReset",
        with_session([("email", v::string().into())]),
        reset::request,
    )
    .message_error_data();
    let reset_urls = urls.clone();
    r.internal_mutation_untyped(
        "auth:createPasswordReset",
        v::object([("email", v::string())]),
        move |ctx, args| reset::create(ctx, &reset_urls, args),
    )
    .cross_tenant();
    r.action_untyped(
        "email:sendPasswordResetEmail",
        with_session([
            ("email", v::string().into()),
            // Sent by the web app, and ignored: the link is always a fresh one.
            ("token", v::optional(v::string())),
        ]),
        reset::send_by_admin,
    );
    let admin_reset_urls = urls.clone();
    r.internal_mutation_untyped(
        "auth:createPasswordResetByAdmin",
        with_session([("email", v::string().into())]),
        move |ctx, args| reset::create_by_admin(ctx, &admin_reset_urls, args),
    )
    .cross_tenant();
    r.mutation_with_prepare_untyped(
        "auth:resetPassword",
        with_session([
            ("token", v::string().into()),
            ("newPassword", v::string().into()),
        ]),
        reset::prepare_reset,
        reset::apply_reset,
    )
    .cross_tenant()
    .message_error_data();

    // What the prepare steps read; internal, so no client can look up password hashes.
    r.internal_query_untyped(
        "auth:credentialsForLogin",
        v::object([("email", v::string())]),
        credentials_for_login,
    )
    .cross_tenant();
    r.internal_query_untyped(
        "auth:credentialsForSession",
        with_session([]),
        credentials_for_session,
    );
}

fn credentials_for_login(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let user = ctx
        .db
        .scoped(&all)
        .query("users", "by_email", |q| q.eq("email", text(&args, "email")))?
        .first()?;
    Ok(match user {
        Some(u) => object([
            ("userId", Some(Value::from(u.id))),
            ("passwordHash", u.get("password").cloned()),
        ]),
        None => Value::Null,
    })
}

fn credentials_for_session(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    Ok(object([
        ("userId", Some(Value::from(viewer.user_id))),
        ("passwordHash", viewer.user.get("password").cloned()),
    ]))
}
