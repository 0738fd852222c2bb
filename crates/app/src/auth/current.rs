//! Who am I: `auth:getCurrentUser`, `auth:verifySession`, `auth:verifyOwnerAccess`,
//! `users:getCurrent`, `permissions:getUserPermissions`; and `auth:logoutUser`, and workflow state
//! kept on the session.

use functions::{FnResult, MutationCtx, QueryCtx};
use serde::{Deserialize, Serialize};
use store::Patch;
use values::validator::v;
use values::{DocumentId, Nullable, Typed, Value};

use crate::args::{SessionArgs, Success};
use crate::audit::{self, Entry, Event};
use crate::identity::{presented_token, require_session, resolve, sessions, Role};

#[derive(Serialize, Typed)]
pub struct CurrentUser {
    #[typed(id = "users")]
    id: DocumentId,
    name: String,
    email: String,
    role: String,
}

pub fn get_current_user(
    ctx: &mut QueryCtx<'_>,
    _args: SessionArgs,
) -> FnResult<Option<CurrentUser>> {
    let now = ctx.now_ms();
    Ok(resolve(&mut ctx.db, ctx.auth, now)?.map(|v| CurrentUser {
        id: v.user_id,
        name: v.name,
        email: v.email,
        role: v.role.as_str().to_string(),
    }))
}

#[derive(Serialize, Typed)]
pub struct SessionUser {
    #[typed(id = "users")]
    id: DocumentId,
    #[serde(rename = "_id")]
    #[typed(id = "users")]
    doc_id: DocumentId,
    name: String,
    email: String,
    role: String,
    #[typed(id = "companies")]
    company_id: Option<DocumentId>,
}

pub fn verify_session(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Option<SessionUser>> {
    let now = ctx.now_ms();
    Ok(resolve(&mut ctx.db, ctx.auth, now)?.map(|v| SessionUser {
        id: v.user_id,
        doc_id: v.user_id,
        name: v.name,
        email: v.email,
        role: v.role.as_str().to_string(),
        company_id: v.company_id,
    }))
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct OwnerAccess {
    has_access: bool,
    reason: String,
    user_email: Option<String>,
}

/// `auth:verifyOwnerAccess`: whether the caller may see the developer tools (version details), as
/// `{hasAccess, reason, userEmail?}`. The web app subscribes to it on every page, so it never
/// throws. Access is the system administrator role alone (the reference also let one hard-coded
/// email in), and never while impersonating: the admin is acting as someone else.
pub fn verify_owner_access(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<OwnerAccess> {
    let answer = |has_access: bool, reason: &str, email: Option<&str>| {
        Ok(OwnerAccess {
            has_access,
            reason: reason.to_string(),
            user_email: email.map(str::to_string),
        })
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

/// The user document as the web app shows it.
#[derive(Serialize, Typed)]
pub struct CurrentUserDoc {
    #[serde(rename = "_id")]
    #[typed(id = "users")]
    id: DocumentId,
    #[serde(rename = "_creationTime")]
    creation_time: f64,
    name: String,
    email: String,
    profile_image_url: Option<String>,
    role: String,
    #[typed(id = "companies")]
    company_id: Option<DocumentId>,
}

/// `users:getCurrent`: the user document as the web app shows it (never the password hash).
pub fn get_current(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Option<CurrentUserDoc>> {
    let now = ctx.now_ms();
    Ok(
        resolve(&mut ctx.db, ctx.auth, now)?.map(|v| CurrentUserDoc {
            id: v.user_id,
            creation_time: v.user.creation_time,
            profile_image_url: v
                .user
                .get("profile_image_url")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: v.name,
            email: v.email,
            role: v.role.as_str().to_string(),
            company_id: v.company_id,
        }),
    )
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct PermissionsArgs {
    /// Sent by the web app; the answer is always about the caller's own company.
    #[allow(dead_code)]
    company_id: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct UserPermissions {
    permissions: Vec<String>,
    role: Nullable<String>,
    /// Left out when there is no session; null for a user with no company.
    #[typed(validator = v::nullable(v::id("companies")))]
    company_id: Option<Nullable<DocumentId>>,
    reason: String,
}

/// Never throws: a client asks this to decide what to show.
pub fn get_user_permissions(
    ctx: &mut QueryCtx<'_>,
    _args: PermissionsArgs,
) -> FnResult<UserPermissions> {
    let now = ctx.now_ms();
    Ok(match resolve(&mut ctx.db, ctx.auth, now)? {
        Some(v) => UserPermissions {
            permissions: v
                .role
                .permissions()
                .into_iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            role: Nullable(Some(v.role.as_str().to_string())),
            company_id: Some(Nullable(v.company_id)),
            reason: "Success".into(),
        },
        None => UserPermissions {
            permissions: Vec::new(),
            role: Nullable::null(),
            company_id: None,
            reason: "Invalid or expired session".into(),
        },
    })
}

/// Always succeeds, so a client can sign out even with a stale token.
pub fn logout(ctx: &mut MutationCtx<'_>, _args: SessionArgs) -> FnResult<Success> {
    let now = ctx.now_ms();
    if let Some(token) = presented_token(ctx.auth).map(str::to_string) {
        // Signing out of an impersonation ends it; the admin's own session is untouched.
        if crate::impersonation::is_impersonation_token(&token) {
            // Signing out always succeeds: an unknown or ended impersonation needs nothing done.
            let _ = crate::impersonation::end::sign_out(ctx, &token);
            return Ok(Success::YES);
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
    Ok(Success::YES)
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct WorkflowStateArgs {
    /// Whatever the web app wants back after a reload.
    workflow_state: Value,
}

pub fn update_workflow_state(
    ctx: &mut MutationCtx<'_>,
    args: WorkflowStateArgs,
) -> FnResult<Success> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let mut patch = Patch::new();
    patch.insert("workflow_state".into(), Some(args.workflow_state));
    ctx.db.patch(&viewer.session_id, patch)?;
    Ok(Success::YES)
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct RecoveredState {
    /// What `updateWorkflowState` stored, or null.
    workflow_state: Value,
}

pub fn recover_state(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<RecoveredState> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let session = ctx.db.get(&viewer.session_id)?;
    Ok(RecoveredState {
        workflow_state: session
            .and_then(|s| s.get("workflow_state").cloned())
            .unwrap_or(Value::Null),
    })
}
