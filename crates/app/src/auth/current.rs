//! Who am I: `auth:getCurrentUser`, `auth:verifySession`, `auth:verifyOwnerAccess`,
//! `users:getCurrent`, `permissions:getUserPermissions`; and `auth:logoutUser`, and workflow state
//! kept on the session.

use functions::{FnResult, MutationCtx, QueryCtx};
use store::Patch;
use values::{Object, Value};

use crate::args::object;
use crate::audit::{self, Entry, Event};
use crate::identity::{presented_token, require_session, resolve, sessions, Role, Viewer};

fn field(viewer: &Viewer, name: &str) -> Option<Value> {
    viewer.user.get(name).cloned()
}

pub fn get_current_user(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    Ok(match resolve(&mut ctx.db, ctx.auth, now)? {
        Some(v) => object([
            ("id", Some(Value::from(v.user_id))),
            ("name", Some(Value::from(v.name.as_str()))),
            ("email", Some(Value::from(v.email.as_str()))),
            ("role", Some(Value::from(v.role.as_str()))),
        ]),
        None => Value::Null,
    })
}

pub fn verify_session(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    Ok(match resolve(&mut ctx.db, ctx.auth, now)? {
        Some(v) => object([
            ("id", Some(Value::from(v.user_id))),
            ("_id", Some(Value::from(v.user_id))),
            ("name", Some(Value::from(v.name.as_str()))),
            ("email", Some(Value::from(v.email.as_str()))),
            ("role", Some(Value::from(v.role.as_str()))),
            ("company_id", v.company_id.map(Value::from)),
        ]),
        None => Value::Null,
    })
}

/// `auth:verifyOwnerAccess`: whether the caller may see the developer tools (version details), as
/// `{hasAccess, reason, userEmail?}`. The web app subscribes to it on every page, so it never
/// throws. Access is the system administrator role alone (the reference also let one hard-coded
/// email in), and never while impersonating: the admin is acting as someone else.
pub fn verify_owner_access(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let answer = |has_access: bool, reason: &str, email: Option<&str>| {
        Ok(object([
            ("hasAccess", Some(Value::from(has_access))),
            ("reason", Some(Value::from(reason))),
            ("userEmail", email.map(Value::from)),
        ]))
    };
    let now = ctx.now_ms();
    let Some(token) = presented_token(ctx.auth).map(str::to_string) else {
        return answer(false, "No session token provided", None);
    };
    let viewer = match resolve(&mut ctx.db, ctx.auth, now) {
        Ok(viewer) => viewer,
        Err(error) => {
            // A page must not break over this; the failure is still worth knowing about.
            tracing::warn!(%error, "verifyOwnerAccess could not resolve the session");
            return answer(false, "Invalid or expired session", None);
        }
    };
    match viewer {
        None => {
            // A live session whose user is gone.
            let orphan = !crate::impersonation::is_impersonation_token(&token)
                && sessions::find(&mut ctx.db, &token, now)
                    .ok()
                    .flatten()
                    .is_some();
            let reason = if orphan {
                "User not found"
            } else {
                "Invalid or expired session"
            };
            answer(false, reason, None)
        }
        Some(v) if v.role == Role::SystemAdmin && v.impersonator.is_none() => {
            answer(true, "Access granted", Some(&v.email))
        }
        Some(v) => answer(false, "Access restricted to owner only", Some(&v.email)),
    }
}

/// `users:getCurrent`: the user document as the web app shows it (never the password hash).
pub fn get_current(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    Ok(match resolve(&mut ctx.db, ctx.auth, now)? {
        Some(v) => object([
            ("_id", Some(Value::from(v.user_id))),
            ("_creationTime", Some(Value::from(v.user.creation_time))),
            ("name", Some(Value::from(v.name.as_str()))),
            ("email", Some(Value::from(v.email.as_str()))),
            ("profile_image_url", field(&v, "profile_image_url")),
            ("role", Some(Value::from(v.role.as_str()))),
            ("company_id", v.company_id.map(Value::from)),
        ]),
        None => Value::Null,
    })
}

/// Never throws: a client asks this to decide what to show.
pub fn get_user_permissions(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    Ok(match resolve(&mut ctx.db, ctx.auth, now)? {
        Some(v) => object([
            (
                "permissions",
                Some(Value::Array(
                    v.role
                        .permissions()
                        .into_iter()
                        .map(|p| Value::from(p.as_str()))
                        .collect(),
                )),
            ),
            ("role", Some(Value::from(v.role.as_str()))),
            (
                "companyId",
                Some(v.company_id.map(Value::from).unwrap_or(Value::Null)),
            ),
            ("reason", Some(Value::from("Success"))),
        ]),
        None => object([
            ("permissions", Some(Value::Array(Vec::new()))),
            ("role", Some(Value::Null)),
            ("reason", Some(Value::from("Invalid or expired session"))),
        ]),
    })
}

/// Always succeeds, so a client can sign out even with a stale token.
pub fn logout(ctx: &mut MutationCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    if let Some(token) = presented_token(ctx.auth).map(str::to_string) {
        // Signing out of an impersonation ends it; the admin's own session is untouched.
        if crate::impersonation::is_impersonation_token(&token) {
            // Signing out always succeeds: an unknown or ended impersonation needs nothing done.
            let _ = crate::impersonation::end::sign_out(ctx, &token);
            return Ok(object([("success", Some(Value::from(true)))]));
        }
        if let Some(viewer) = resolve(&mut ctx.db, ctx.auth, now)? {
            let entry = Entry {
                event: Event::SignOut,
                actor: Some(&viewer.user_id),
                target: Some(viewer.user_id.encode()),
                company: viewer.company_id.as_ref(),
                details: &[],
            };
            audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
        }
        if let Some(session) = sessions::find(&mut ctx.db, &token, now)? {
            ctx.db.delete(&session.id)?;
        }
    }
    Ok(object([("success", Some(Value::from(true)))]))
}

pub fn update_workflow_state(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let mut patch = Patch::new();
    patch.insert("workflow_state".into(), args.get("workflowState").cloned());
    ctx.db.patch(&viewer.session_id, patch)?;
    Ok(object([("success", Some(Value::from(true)))]))
}

pub fn recover_state(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let session = ctx.db.get(&viewer.session_id)?;
    Ok(object([(
        "workflowState",
        Some(
            session
                .and_then(|s| s.get("workflow_state").cloned())
                .unwrap_or(Value::Null),
        ),
    )]))
}
