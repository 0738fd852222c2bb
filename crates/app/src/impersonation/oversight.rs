//! The system administrators' impersonation page: finding someone to impersonate, the live
//! impersonations of every admin, and the emergency stop that ends them all. Each authenticates with
//! `admin_session_token` (see `require_admin`). No answer carries a token: a session is named by its
//! row id, so one admin cannot take over another's impersonation.

use std::collections::HashMap;

use functions::{FnResult, MutationCtx, QueryCtx};
use serde::{Deserialize, Serialize};
use store::Document;
use values::{Typed, Value};

use super::{can_be_impersonated, live_users, mark_ended, read_rows, require_admin, TABLE};
use crate::audit::{self, Entry, Event};
use crate::identity::{Permission, Role};

const DEFAULT_LIMIT: f64 = 20.0;
const MAX_LIMIT: f64 = 100.0;

/// The arguments of the functions that take only the admin's credential.
#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct AdminArgs {
    admin_session_token: String,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct SearchArgs {
    admin_session_token: String,
    search_term: Option<String>,
    limit: Option<f64>,
}

#[derive(Serialize, Typed)]
pub struct Candidate {
    #[typed(id = "users")]
    id: String,
    name: String,
    email: String,
    role: String,
    company_name: Option<String>,
}

/// `impersonation:searchUsersForImpersonation`: users who may be impersonated (never an admin role,
/// never the caller), matching `search_term` in name or email, sorted by name.
pub fn search_users(ctx: &mut QueryCtx<'_>, args: SearchArgs) -> FnResult<Vec<Candidate>> {
    let now = ctx.now_ms();
    let token = args.admin_session_token.as_str();
    // The page runs this before its token has loaded: nothing to show yet, not an error.
    if token.is_empty() {
        return Ok(Vec::new());
    }
    let admin = require_admin(&mut ctx.db, token, now)?;
    let limit = args
        .limit
        .filter(|l| l.is_finite())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1.0, MAX_LIMIT) as usize;
    let term = args
        .search_term
        .as_deref()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    let grant = ctx.cross_tenant()?;
    let everyone = admin.all_companies_scope(&grant, Permission::ImpersonateUsers)?;
    let mut users: Vec<Document> = Vec::new();
    // Only the roles that can be impersonated are read, so admins never reach the answer.
    for role in Role::ALL.into_iter().filter(|r| can_be_impersonated(*r)) {
        let found = ctx
            .db
            .scoped(&everyone)
            .query("users", "by_role", |q| q.eq("role", role.as_str()))?
            .collect()?;
        users.extend(found);
    }
    users.retain(|u| {
        u.id != admin.user_id
            && term.as_deref().is_none_or(|t| {
                str_of(u, "name").to_lowercase().contains(t)
                    || str_of(u, "email").to_lowercase().contains(t)
            })
    });
    users.sort_by_cached_key(|u| {
        (
            str_of(u, "name").to_lowercase(),
            str_of(u, "email").to_string(),
        )
    });
    users.truncate(limit);

    let mut company_names: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::with_capacity(users.len());
    for user in &users {
        let company = match user.get("company_id").and_then(Value::as_str) {
            Some(id) => match company_names.get(id) {
                Some(name) => name.clone(),
                None => {
                    let name = crate::companies::name_of(&mut ctx.db, &everyone, id)?;
                    company_names.insert(id.to_string(), name.clone());
                    name
                }
            },
            None => None,
        };
        out.push(Candidate {
            id: user.id.encode(),
            name: str_of(user, "name").to_string(),
            email: str_of(user, "email").to_string(),
            role: str_of(user, "role").to_string(),
            company_name: company,
        });
    }
    Ok(out)
}

#[derive(Serialize, Typed)]
pub struct AdminUser {
    #[typed(id = "users")]
    id: String,
    name: String,
    email: String,
}

#[derive(Serialize, Typed)]
pub struct TargetUser {
    #[typed(id = "users")]
    id: String,
    name: String,
    email: String,
    role: String,
}

#[derive(Serialize, Typed)]
pub struct ActiveSession {
    #[serde(rename = "sessionId")]
    #[typed(id = "impersonation_sessions")]
    session_id: String,
    #[serde(rename = "adminUser")]
    admin_user: AdminUser,
    #[serde(rename = "targetUser")]
    target_user: TargetUser,
    reason: String,
    created_at: f64,
    expires: f64,
    #[serde(rename = "timeRemaining")]
    time_remaining: f64,
    correlation_id: String,
}

/// `impersonation:getActiveImpersonationSessions`: the live impersonations of every admin, newest
/// first. Rows whose admin or target is gone (or no longer qualifies) are not live, so not listed.
pub fn active_sessions(ctx: &mut QueryCtx<'_>, args: AdminArgs) -> FnResult<Vec<ActiveSession>> {
    let now = ctx.now_ms();
    let token = args.admin_session_token.as_str();
    if token.is_empty() {
        return Ok(Vec::new());
    }
    let admin = require_admin(&mut ctx.db, token, now)?;
    let grant = ctx.cross_tenant()?;
    let everyone = admin.all_companies_scope(&grant, Permission::ImpersonateUsers)?;
    // Every row still live expires in the future; older rows are skipped by the index.
    let rows = ctx
        .db
        .query(TABLE)?
        .with_index("by_expires", |q| q.gt("expires_at", now))?
        .collect()?;
    let mut rows = read_rows(&rows)?;
    rows.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
    let mut out = Vec::new();
    for row in rows {
        let Some((admin_user, target)) = live_users(&mut ctx.db, &everyone, &row, now)? else {
            continue;
        };
        let expires = row.expires_at;
        out.push(ActiveSession {
            session_id: row.id.encode(),
            admin_user: AdminUser {
                id: admin_user.id.encode(),
                name: str_of(&admin_user, "name").to_string(),
                email: str_of(&admin_user, "email").to_string(),
            },
            target_user: TargetUser {
                id: target.id.encode(),
                name: str_of(&target, "name").to_string(),
                email: str_of(&target, "email").to_string(),
                role: str_of(&target, "role").to_string(),
            },
            reason: row.reason,
            created_at: row.created_at,
            expires,
            time_remaining: (expires - now).max(0.0),
            correlation_id: row.correlation_id,
        });
    }
    Ok(out)
}

/// `impersonation:emergencyTerminateAllSessions`: ends every live impersonation of every admin.
/// Each ending is audited in the target's company, and the stop itself once, with the count.
#[derive(Serialize, Typed)]
pub struct Terminated {
    success: bool,
    sessions_terminated: usize,
    correlation_id: String,
}

pub fn terminate_all(ctx: &mut MutationCtx<'_>, args: AdminArgs) -> FnResult<Terminated> {
    let now = ctx.now_ms();
    let admin = require_admin(&mut ctx.db, &args.admin_session_token, now)?;
    let grant = ctx.cross_tenant()?;
    let everyone = admin.all_companies_scope(&grant, Permission::ImpersonateUsers)?;
    let rows = ctx
        .db
        .query(TABLE)?
        .with_index("by_expires", |q| q.gt("expires_at", now))?
        .collect()?;
    let mut terminated = 0usize;
    for row in read_rows(&rows)?.iter().filter(|r| r.is_active) {
        let live = live_users(&mut ctx.db, &everyone, row, now)?.is_some();
        mark_ended(&mut ctx.db, &row.id, now)?;
        // Rows that were already dead (their admin signed out) are only tidied, not counted.
        if !live {
            continue;
        }
        terminated += 1;
        let id_text = row.id.encode();
        let started_by = row.admin_user_id.encode();
        let entry = Entry {
            event: Event::ImpersonationEnded,
            actor: Some(&admin.user_id),
            target: Some(row.target_user_id.encode()),
            company: row.target_company_id.as_ref(),
            details: &[
                ("reason", &row.reason),
                ("impersonation_id", &id_text),
                ("started_by", &started_by),
                ("ended_with", "emergency_termination"),
            ],
        };
        audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    }
    let count = terminated.to_string();
    let entry = Entry {
        event: Event::ImpersonationEmergencyStop,
        actor: Some(&admin.user_id),
        target: None,
        company: None,
        details: &[("sessions_terminated", &count)],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(Terminated {
        success: true,
        sessions_terminated: terminated,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

fn str_of<'a>(doc: &'a Document, name: &str) -> &'a str {
    doc.get(name).and_then(Value::as_str).unwrap_or_default()
}
