//! The system administrators' impersonation page: finding someone to impersonate, the live
//! impersonations of every admin, and the emergency stop that ends them all. Each authenticates with
//! `admin_session_token` (see `require_admin`). No answer carries a token: a session is named by its
//! row id, so one admin cannot take over another's impersonation.

use std::collections::HashMap;

use functions::{FnResult, MutationCtx, QueryCtx};
use store::Document;
use values::{Object, Value};

use super::{
    can_be_impersonated, expires_at, is_flagged_active, live_users, mark_ended, require_admin,
    TABLE,
};
use crate::args::{object, opt_text, text};
use crate::audit::{self, Entry, Event};
use crate::identity::{Permission, Role};

const DEFAULT_LIMIT: f64 = 20.0;
const MAX_LIMIT: f64 = 100.0;

/// `impersonation:searchUsersForImpersonation`: users who may be impersonated (never an admin role,
/// never the caller), matching `search_term` in name or email, sorted by name.
pub fn search_users(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let token = text(&args, "admin_session_token");
    // The page runs this before its token has loaded: nothing to show yet, not an error.
    if token.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    let admin = require_admin(&mut ctx.db, token, now)?;
    let limit = args
        .get("limit")
        .and_then(Value::as_f64)
        .filter(|l| l.is_finite())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1.0, MAX_LIMIT) as usize;
    let term = opt_text(&args, "search_term")
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
        out.push(object([
            ("id", Some(Value::from(user.id))),
            ("name", user.get("name").cloned()),
            ("email", user.get("email").cloned()),
            ("role", user.get("role").cloned()),
            ("company_name", company.map(Value::from)),
        ]));
    }
    Ok(Value::Array(out))
}

/// `impersonation:getActiveImpersonationSessions`: the live impersonations of every admin, newest
/// first. Rows whose admin or target is gone (or no longer qualifies) are not live, so not listed.
pub fn active_sessions(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let token = text(&args, "admin_session_token");
    if token.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    let admin = require_admin(&mut ctx.db, token, now)?;
    let grant = ctx.cross_tenant()?;
    let everyone = admin.all_companies_scope(&grant, Permission::ImpersonateUsers)?;
    // Every row still live expires in the future; older rows are skipped by the index.
    let mut rows = ctx
        .db
        .query(TABLE)?
        .with_index("by_expires", |q| q.gt("expires_at", now))?
        .collect()?;
    rows.sort_by(|a, b| number(b, "created_at").total_cmp(&number(a, "created_at")));
    let mut out = Vec::new();
    for row in rows {
        let Some((admin_user, target)) = live_users(&mut ctx.db, &everyone, &row, now)? else {
            continue;
        };
        let expires = expires_at(&row);
        out.push(object([
            ("sessionId", Some(Value::from(row.id))),
            (
                "adminUser",
                Some(object([
                    ("id", Some(Value::from(admin_user.id))),
                    ("name", admin_user.get("name").cloned()),
                    ("email", admin_user.get("email").cloned()),
                ])),
            ),
            (
                "targetUser",
                Some(object([
                    ("id", Some(Value::from(target.id))),
                    ("name", target.get("name").cloned()),
                    ("email", target.get("email").cloned()),
                    ("role", target.get("role").cloned()),
                ])),
            ),
            ("reason", row.get("reason").cloned()),
            ("created_at", row.get("created_at").cloned()),
            ("expires", Some(Value::from(expires))),
            ("timeRemaining", Some(Value::from((expires - now).max(0.0)))),
            ("correlation_id", row.get("correlation_id").cloned()),
        ]));
    }
    Ok(Value::Array(out))
}

/// `impersonation:emergencyTerminateAllSessions`: ends every live impersonation of every admin.
/// Each ending is audited in the target's company, and the stop itself once, with the count.
pub fn terminate_all(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let admin = require_admin(&mut ctx.db, text(&args, "admin_session_token"), now)?;
    let grant = ctx.cross_tenant()?;
    let everyone = admin.all_companies_scope(&grant, Permission::ImpersonateUsers)?;
    let rows = ctx
        .db
        .query(TABLE)?
        .with_index("by_expires", |q| q.gt("expires_at", now))?
        .collect()?;
    let mut terminated = 0usize;
    for row in rows.iter().filter(|r| is_flagged_active(r)) {
        let live = live_users(&mut ctx.db, &everyone, row, now)?.is_some();
        mark_ended(&mut ctx.db, &row.id, now)?;
        // Rows that were already dead (their admin signed out) are only tidied, not counted.
        if !live {
            continue;
        }
        terminated += 1;
        let field = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
        let company = ctx.db.normalize_id("companies", field("target_company_id"));
        let id_text = row.id.encode();
        let entry = Entry {
            event: Event::ImpersonationEnded,
            actor: Some(&admin.user_id),
            target: Some(field("target_user_id").to_string()),
            company: company.as_ref(),
            details: &[
                ("reason", field("reason")),
                ("impersonation_id", &id_text),
                ("started_by", field("admin_user_id")),
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
    Ok(object([
        ("success", Some(Value::from(true))),
        ("sessions_terminated", Some(Value::from(terminated as f64))),
        ("correlation_id", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}

fn str_of<'a>(doc: &'a Document, name: &str) -> &'a str {
    doc.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn number(doc: &Document, name: &str) -> f64 {
    doc.get(name).and_then(Value::as_f64).unwrap_or(0.0)
}
