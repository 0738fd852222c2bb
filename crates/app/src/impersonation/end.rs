//! `impersonation:endImpersonation`: only the impersonating admin may end an impersonation, either
//! from one of their own sessions or with the impersonation token itself as the session (what the web
//! client injects while impersonating). Anyone else gets the same answer as for an unknown token.
//!
//! Ending a live impersonation hands back `original_session_token`, which the web app stores as the
//! admin's session. We keep no raw tokens, so it is a FRESH session of the admin, minted in the same
//! transaction that ends the impersonation, expiring with the admin session that started it (never
//! later) and never evicting that session. An impersonation that is already over (ended, expired, or
//! its admin session gone) answers `{success: true}` with no token: ending is idempotent, but a dead
//! impersonation must not turn into an admin session. Signing out of an impersonation
//! (`auth:logoutUser`) ends it through `sign_out`, which hands nothing back.

use functions::{CrossTenant, FnResult, FunctionError, MutationCtx, Scope};
use serde::{Deserialize, Serialize};
use values::Typed;

use super::{is_impersonation_token, live_users, mark_ended, read_rows, ImpersonationDoc, TABLE};
use crate::audit::{self, Entry, Event};
use crate::identity::require_session;
use crate::identity::sessions::{self, hash_token};

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct EndArgs {
    impersonation_token: String,
}

#[derive(Serialize, Typed)]
pub struct Ended {
    success: bool,
    /// A fresh session of the admin; left out when the impersonation was already over.
    original_session_token: Option<String>,
}

/// The registered handler: ends the impersonation and hands the admin a session.
pub fn end(ctx: &mut MutationCtx<'_>, args: EndArgs) -> FnResult<Ended> {
    finish(ctx, &args.impersonation_token, true)
}

/// Ends the impersonation `token` as its own holder signing out; no admin session is minted.
pub(crate) fn sign_out(ctx: &mut MutationCtx<'_>, token: &str) -> FnResult<()> {
    finish(ctx, token, false).map(|_| ())
}

fn finish(ctx: &mut MutationCtx<'_>, token: &str, hand_back: bool) -> FnResult<Ended> {
    let now = ctx.now_ms();
    let caller = require_session(&mut ctx.db, ctx.auth, now)?;
    let not_found = || FunctionError::not_found("Impersonation session not found");
    if !is_impersonation_token(token) {
        return Err(not_found());
    }
    let row = ctx
        .db
        .query(TABLE)?
        .with_index("by_token_hash", |q| q.eq("token_hash", hash_token(token)))?
        .first()?
        .ok_or_else(not_found)?;
    let row: ImpersonationDoc = functions::row(&row)?;
    let by_admin_session = caller.impersonator.is_none() && caller.user_id == row.admin_user_id;
    let by_this_impersonation = caller.session_id == *row.id;
    if !by_admin_session && !by_this_impersonation {
        return Err(not_found());
    }
    // Ending twice succeeds (the client only wants to be back as the admin), without a token.
    if !row.is_active {
        return Ok(success(None));
    }
    // Whether it is still live, checked as resolving its token would (identity resolution).
    let identity = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let live = live_users(&mut ctx.db, &identity, &row, now)?.is_some();
    mark_ended(&mut ctx.db, &row.id, now)?;
    let handed = if live && hand_back {
        admin_session(ctx, &row, now)?
    } else {
        None
    };

    let id_text = row.id.encode();
    let entry = Entry {
        event: Event::ImpersonationEnded,
        actor: Some(&row.admin_user_id),
        target: Some(row.target_user_id.encode()),
        company: row.target_company_id.as_ref(),
        details: &[
            ("reason", &row.reason),
            ("impersonation_id", &id_text),
            (
                "ended_with",
                if by_admin_session {
                    "admin_session"
                } else {
                    "impersonation_token"
                },
            ),
            (
                "admin_session_issued",
                if handed.is_some() { "true" } else { "false" },
            ),
        ],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(success(handed.map(|t| t.expose().to_string())))
}

/// A fresh session for the admin of `row`, ending with the admin session that started it. `None`
/// if that session is gone (then the impersonation was not live either).
fn admin_session(
    ctx: &mut MutationCtx<'_>,
    row: &ImpersonationDoc,
    now: f64,
) -> FnResult<Option<sessions::SessionToken>> {
    let Some(original) = ctx.db.get_in("sessions", &row.admin_session_id.encode())? else {
        return Ok(None);
    };
    let original: sessions::SessionDoc = functions::row(&original)?;
    if original.expires_at <= now {
        return Ok(None);
    }
    let (token, _) = sessions::create_until(
        &mut ctx.db,
        &row.admin_user_id,
        original.remember_me,
        now,
        original.expires_at,
        Some(&original.id),
    )?;
    Ok(Some(token))
}

fn success(token: Option<String>) -> Ended {
    Ended {
        success: true,
        original_session_token: token,
    }
}

/// Ends every live impersonation `admin` started (their role is going, and with it the right to
/// act as others), each with an audit entry naming `why`. Returns how many were ended.
pub fn end_all_for_admin(
    db: &mut functions::DbWriter<'_>,
    now: f64,
    correlation_id: &str,
    admin: &values::DocumentId,
    why: &str,
) -> FnResult<usize> {
    let rows = db
        .query(TABLE)?
        .with_index("by_admin_active", |q| {
            q.eq("admin_user_id", admin.encode())
                .eq("is_active", true)
                .gt("expires_at", now)
        })?
        .collect()?;
    for row in &read_rows(&rows)? {
        mark_ended(db, &row.id, now)?;
        let id_text = row.id.encode();
        let entry = Entry {
            event: Event::ImpersonationEnded,
            actor: Some(admin),
            target: Some(row.target_user_id.encode()),
            company: row.target_company_id.as_ref(),
            details: &[
                ("reason", &row.reason),
                ("impersonation_id", &id_text),
                ("ended_with", why),
            ],
        };
        audit::record(db, now, correlation_id, entry)?;
    }
    Ok(rows.len())
}
