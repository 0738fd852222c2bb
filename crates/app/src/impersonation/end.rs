//! `impersonation:endImpersonation`: only the impersonating admin may end an impersonation, either
//! from one of their own sessions or with the impersonation token itself as the session (what the web
//! client injects while impersonating). Anyone else gets the same answer as for an unknown token.
//!
//! Unlike the reference (defect 5), nothing is handed back: we never store raw session tokens, and
//! the admin's own session stayed valid all along, so the client switches back to the token it holds.

use functions::{FnResult, FunctionError, MutationCtx};
use store::Patch;
use values::{Object, Value};

use super::{is_impersonation_token, TABLE};
use crate::args::{object, text};
use crate::audit::{self, Entry, Event};
use crate::identity::require_session;
use crate::identity::sessions::hash_token;

pub fn end(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let caller = require_session(&mut ctx.db, ctx.auth, &args, now)?;
    let not_found = || FunctionError::not_found("Impersonation session not found");
    let token = text(&args, "impersonation_token");
    if !is_impersonation_token(token) {
        return Err(not_found());
    }
    let row = ctx
        .db
        .query(TABLE)?
        .with_index("by_token_hash", |q| q.eq("token_hash", hash_token(token)))?
        .first()?
        .ok_or_else(not_found)?;
    let field = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
    let by_admin_session =
        caller.impersonator.is_none() && caller.user_id.encode() == field("admin_user_id");
    let by_this_impersonation = caller.session_id == row.id;
    if !by_admin_session && !by_this_impersonation {
        return Err(not_found());
    }
    // Ending twice (or after expiry) succeeds: the client only wants to be back as the admin.
    if row.get("is_active").and_then(Value::as_bool) != Some(true) {
        return Ok(success());
    }
    let mut patch = Patch::new();
    patch.insert("is_active".into(), Some(Value::from(false)));
    patch.insert("terminated_at".into(), Some(Value::from(now)));
    ctx.db.patch(&row.id, patch)?;

    let admin = ctx.db.normalize_id("users", field("admin_user_id"));
    let company = ctx.db.normalize_id("companies", field("target_company_id"));
    let id_text = row.id.encode();
    let entry = Entry {
        event: Event::ImpersonationEnded,
        actor: admin.as_ref(),
        target: Some(field("target_user_id").to_string()),
        company: company.as_ref(),
        details: &[
            ("reason", field("reason")),
            ("impersonation_id", &id_text),
            (
                "ended_with",
                if by_admin_session {
                    "admin_session"
                } else {
                    "impersonation_token"
                },
            ),
        ],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(success())
}

fn success() -> Value {
    object([("success", Some(Value::from(true)))])
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
    for row in &rows {
        let mut patch = Patch::new();
        patch.insert("is_active".into(), Some(Value::from(false)));
        patch.insert("terminated_at".into(), Some(Value::from(now)));
        db.patch(&row.id, patch)?;
        let field = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
        let company = db.normalize_id("companies", field("target_company_id"));
        let id_text = row.id.encode();
        let entry = Entry {
            event: Event::ImpersonationEnded,
            actor: Some(admin),
            target: Some(field("target_user_id").to_string()),
            company: company.as_ref(),
            details: &[
                ("reason", field("reason")),
                ("impersonation_id", &id_text),
                ("ended_with", why),
            ],
        };
        audit::record(db, now, correlation_id, entry)?;
    }
    Ok(rows.len())
}
