//! `impersonation:startImpersonation`: a system admin, signed in with their own session, starts
//! acting as a non-admin user for a stated reason.

use functions::{Auth, ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use serde::{Deserialize, Serialize};
use values::{Object, Typed, Value};

use super::{
    can_be_impersonated, is_impersonation_token, live_users, mark_ended, read_rows,
    MAX_ACTIVE_PER_ADMIN, TABLE, TOKEN_PREFIX, TTL_MS,
};
use crate::audit::{self, Entry, Event};
use crate::identity::sessions::{hash_token, SessionToken};
use crate::identity::{require_permission, Permission, Role};
use crate::users::Email;

const MAX_REASON_CHARS: usize = 500;

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct StartArgs {
    admin_session_token: String,
    target_user_email: String,
    reason: String,
}

#[derive(Serialize, Typed)]
pub struct Started {
    success: bool,
    impersonation_token: String,
    correlation_id: String,
    expires: f64,
}

pub fn start(ctx: &mut MutationCtx<'_>, args: StartArgs) -> FnResult<Started> {
    let now = ctx.now_ms();
    let admin_token = args.admin_session_token.as_str();
    // Impersonations do not nest: an impersonation token acts as a non-admin, and starting from one
    // would chain the admin's authority through a token they did not sign in for.
    if is_impersonation_token(admin_token) {
        return Err(FunctionError::forbidden(
            "Insufficient permissions: start impersonation from your own session",
        ));
    }
    // The contract names the credential `admin_session_token`; only it counts (not a bearer token).
    let admin = require_permission(
        &mut ctx.db,
        &Auth::bearer(admin_token),
        now,
        Permission::ImpersonateUsers,
    )?;

    let reason = args.reason.trim().to_string();
    if reason.is_empty() {
        return Err(FunctionError::validation(
            "reason",
            "A reason for impersonation is required",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(FunctionError::validation(
            "reason",
            format!("Reason must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let email = Email::parse(&args.target_user_email)
        .map_err(|e| FunctionError::validation("target_user_email", e.to_string()))?;

    let grant = ctx.cross_tenant()?;
    let everyone = admin.all_companies_scope(&grant, Permission::ImpersonateUsers)?;
    let live = retire_dead_and_count_live(ctx, &everyone, &admin.user_id, now)?;
    if live >= MAX_ACTIVE_PER_ADMIN {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            format!("Maximum concurrent impersonation sessions reached ({MAX_ACTIVE_PER_ADMIN})"),
        ));
    }

    let target = ctx
        .db
        .scoped(&everyone)
        .query("users", "by_email", |q| q.eq("email", email.as_str()))?
        .first()?
        .ok_or_else(|| FunctionError::not_found("Target user not found"))?;
    let role = target
        .get("role")
        .and_then(Value::as_str)
        .and_then(Role::parse);
    if !role.is_some_and(can_be_impersonated) {
        return Err(FunctionError::forbidden(
            "Cannot impersonate other system administrators",
        ));
    }
    let target_company = target
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| ctx.db.normalize_id("companies", c));

    let token = format!("{TOKEN_PREFIX}{}", SessionToken::generate().expose());
    let expires = now + TTL_MS;
    let mut row = Object::new();
    row.insert("admin_user_id".into(), Value::from(admin.user_id));
    row.insert("admin_session_id".into(), Value::from(admin.session_id));
    row.insert("target_user_id".into(), Value::from(target.id));
    if let Some(company) = target_company {
        row.insert("target_company_id".into(), Value::from(company));
    }
    row.insert("token_hash".into(), Value::from(hash_token(&token)));
    row.insert("reason".into(), Value::from(reason.as_str()));
    row.insert("created_at".into(), Value::from(now));
    row.insert("expires_at".into(), Value::from(expires));
    row.insert("is_active".into(), Value::from(true));
    row.insert(
        "correlation_id".into(),
        Value::from(ctx.request_id.as_str()),
    );
    let id = ctx.db.insert(TABLE, row)?;

    let id_text = id.encode();
    let entry = Entry {
        event: Event::ImpersonationStarted,
        actor: Some(&admin.user_id),
        target: Some(target.id.encode()),
        company: target_company.as_ref(),
        details: &[
            ("reason", &reason),
            ("target_email", email.as_str()),
            ("impersonation_id", &id_text),
        ],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(Started {
        success: true,
        impersonation_token: token,
        correlation_id: ctx.request_id.as_str().to_string(),
        expires,
    })
}

/// Marks the admin's rows that are flagged active but no longer live (expired, or their admin
/// session ended) as ended, so they stop counting against the limit; returns how many are live.
fn retire_dead_and_count_live(
    ctx: &mut MutationCtx<'_>,
    everyone: &Scope,
    admin: &values::DocumentId,
    now: f64,
) -> FnResult<usize> {
    let flagged = ctx
        .db
        .query(TABLE)?
        .with_index("by_admin_active", |q| {
            q.eq("admin_user_id", admin.encode()).eq("is_active", true)
        })?
        .collect()?;
    let mut live = 0;
    for row in read_rows(&flagged)? {
        if live_users(&mut ctx.db, everyone, &row, now)?.is_some() {
            live += 1;
            continue;
        }
        mark_ended(&mut ctx.db, &row.id, row.expires_at.min(now))?;
    }
    Ok(live)
}
