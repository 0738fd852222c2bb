//! `impersonation:getImpersonationStatus`: whether a token is a live impersonation, and whose. The
//! token is the credential: only its holder (the admin who started it) learns anything; every other
//! token, valid session or not, answers `{isImpersonating: false}`.

use functions::{FnResult, QueryCtx};
use store::Document;
use values::{Object, Value};

use super::{expires_at, find_active};
use crate::args::{object, text};

pub fn status(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let Some(active) = find_active(&mut ctx.db, text(&args, "session_token"), now)? else {
        return Ok(object([("isImpersonating", Some(Value::from(false)))]));
    };
    let expires = expires_at(&active.row);
    Ok(object([
        ("isImpersonating", Some(Value::from(true))),
        ("adminUser", Some(user(&active.admin))),
        ("targetUser", Some(user(&active.target))),
        ("timeRemaining", Some(Value::from((expires - now).max(0.0)))),
        ("expires", Some(Value::from(expires))),
        ("reason", active.row.get("reason").cloned()),
        ("correlation_id", active.row.get("correlation_id").cloned()),
    ]))
}

fn user(doc: &Document) -> Value {
    let field = |name: &str| doc.get(name).cloned();
    object([
        ("id", Some(Value::from(doc.id))),
        ("name", field("name")),
        ("email", field("email")),
        ("role", field("role")),
        ("company_id", field("company_id")),
    ])
}
