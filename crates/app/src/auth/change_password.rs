//! `auth:changePassword`: the current password proves who is asking; the new one must meet the
//! rules (the reference skipped them here). Other sessions of the user end.

use functions::{ActionCtx, CrossTenant, ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use serde::Deserialize;
use store::Patch;
use values::{Typed, Value};

use super::passwords::{self, Verified};
use super::CREDENTIALS_FOR_SESSION;
use crate::args::{SessionArgs, Success};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_session, sessions};

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ChangeArgs {
    current_password: String,
    new_password: String,
}

pub struct Change {
    hash_seen: String,
    new_hash: String,
}

pub async fn prepare(ctx: ActionCtx, args: ChangeArgs) -> FnResult<Change> {
    // The caller's session token reaches the query through `ctx.auth`.
    let found = ctx
        .run_query(CREDENTIALS_FOR_SESSION, &SessionArgs::default())
        .await?;
    let hash_seen = found.password_hash;
    if hash_seen.is_empty() {
        return Err(FunctionError::user(
            ErrorCode::Forbidden,
            "User account needs password reset",
        ));
    }
    let (current, new) = (args.current_password, args.new_password);
    passwords::require_strong("newPassword", &new)?;
    let stored = hash_seen.clone();
    let (verified, new_hash) = passwords::off_thread(move || {
        (
            passwords::verify(&current, Some(&stored)),
            passwords::hash(&new),
        )
    })
    .await
    .map_err(|e| FunctionError::internal(format!("password check failed: {e}")))?;
    if verified == Verified::No {
        return Err(FunctionError::validation(
            "currentPassword",
            "Current password is incorrect",
        ));
    }
    Ok(Change {
        hash_seen,
        new_hash: new_hash?,
    })
}

pub fn apply(ctx: &mut MutationCtx<'_>, _args: ChangeArgs, change: &Change) -> FnResult<Success> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    if viewer.impersonator.is_some() {
        return Err(FunctionError::forbidden(
            "Passwords cannot be changed while impersonating",
        ));
    }
    if viewer.user.get("password").and_then(Value::as_str) != Some(change.hash_seen.as_str()) {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            "The password changed meanwhile; try again",
        ));
    }
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let mut patch = Patch::new();
    patch.insert(
        "password".into(),
        Some(Value::from(change.new_hash.as_str())),
    );
    ctx.db.scoped(&all).patch(&viewer.user_id, patch)?;
    sessions::end_all(&mut ctx.db, &viewer.user_id, Some(&viewer.session_id))?;
    let entry = Entry {
        event: Event::PasswordChanged,
        actor: Some(&viewer.user_id),
        target: Some(viewer.user_id.encode()),
        company: viewer.company_id.as_ref(),
        details: &[],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(Success::YES)
}
