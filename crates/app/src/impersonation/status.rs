//! `impersonation:getImpersonationStatus`: whether a token is a live impersonation, and whose. The
//! token is the credential: only its holder (the admin who started it) learns anything; every other
//! token, valid session or not, answers `{isImpersonating: false}`.

use functions::{FnResult, QueryCtx};
use serde::{Deserialize, Serialize};
use store::Document;
use values::{Typed, Value};

use super::find_active;

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct StatusArgs {
    session_token: String,
}

/// `{isImpersonating: false}` alone, or with the details of the live impersonation.
#[derive(Default, Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    is_impersonating: bool,
    admin_user: Option<StatusUser>,
    target_user: Option<StatusUser>,
    time_remaining: Option<f64>,
    expires: Option<f64>,
    reason: Option<String>,
    // Snake case, as the reference's answer had it.
    #[serde(rename = "correlation_id")]
    correlation_id: Option<String>,
}

#[derive(Serialize, Typed)]
pub struct StatusUser {
    #[typed(id = "users")]
    id: String,
    name: String,
    email: String,
    role: String,
    #[typed(id = "companies")]
    company_id: Option<String>,
}

pub fn status(ctx: &mut QueryCtx<'_>, args: StatusArgs) -> FnResult<Status> {
    let now = ctx.now_ms();
    let Some(active) = find_active(&mut ctx.db, &args.session_token, now)? else {
        return Ok(Status::default());
    };
    let expires = active.row.expires_at;
    Ok(Status {
        is_impersonating: true,
        admin_user: Some(user(&active.admin)),
        target_user: Some(user(&active.target)),
        time_remaining: Some((expires - now).max(0.0)),
        expires: Some(expires),
        reason: Some(active.row.reason),
        correlation_id: Some(active.row.correlation_id),
    })
}

fn text(doc: &Document, name: &str) -> Option<String> {
    doc.get(name).and_then(Value::as_str).map(str::to_string)
}

fn user(doc: &Document) -> StatusUser {
    StatusUser {
        id: doc.id.encode(),
        name: text(doc, "name").unwrap_or_default(),
        email: text(doc, "email").unwrap_or_default(),
        role: text(doc, "role").unwrap_or_default(),
        company_id: text(doc, "company_id"),
    }
}
