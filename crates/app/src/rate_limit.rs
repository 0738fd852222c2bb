//! Fixed-window counters kept in the database, so limits hold across restarts and across nodes
//! (per client address for sign-in failures and reset requests).

use functions::{DbWriter, ErrorCode, FnResult, FunctionError};
use serde::{Deserialize, Serialize};
use store::{Patch, TableDef};
use values::validator::v;
use values::{Id, Object, Typed, Validator, Value};

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new("rate_limits")
        .field("key", v::string())
        .field("window_start", v::number())
        .field("count", v::number())
        .index("by_key", &["key"])
        .index("by_window_start", &["window_start"])]
}

/// A document of the rate limit counters.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "rate_limits")]
pub struct RateLimitDoc {
    #[serde(rename = "_id")]
    pub id: Id<RateLimitDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub key: String,
    pub window_start: f64,
    pub count: f64,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![("rate_limits", RateLimitDoc::validator())]
}

/// A row whose window started this long ago counts nothing under any limit (the longest window is
/// an hour), so housekeeping may delete it.
pub const STALE_AFTER_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// A limit: at most `max` events per `window_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: f64,
    pub window_ms: f64,
}

/// Failed sign-ins from one address.
pub const SIGN_IN_FAILURES_PER_ADDRESS: Limit = Limit {
    max: 20.0,
    window_ms: 15.0 * 60_000.0,
};
/// Password reset requests from one address.
pub const RESETS_PER_ADDRESS: Limit = Limit {
    max: 10.0,
    window_ms: 60.0 * 60_000.0,
};

fn current(
    db: &mut DbWriter<'_>,
    key: &str,
    limit: Limit,
    now: f64,
) -> FnResult<(Option<RateLimitDoc>, f64)> {
    let row = db
        .query("rate_limits")?
        .with_index("by_key", |q| q.eq("key", key))?
        .first()?
        .map(|doc| functions::row::<RateLimitDoc>(&doc))
        .transpose()?;
    let count = match &row {
        Some(r) if r.window_start + limit.window_ms > now => r.count,
        _ => 0.0,
    };
    Ok((row, count))
}

/// Refuses with RATE_LIMITED once `key` has used up `limit` in the current window.
pub fn check(
    db: &mut DbWriter<'_>,
    key: &str,
    limit: Limit,
    now: f64,
    message: &str,
) -> FnResult<()> {
    let (_, count) = current(db, key, limit, now)?;
    if count >= limit.max {
        return Err(FunctionError::user(ErrorCode::RateLimited, message));
    }
    Ok(())
}

/// Counts one event against `key`.
pub fn record(db: &mut DbWriter<'_>, key: &str, limit: Limit, now: f64) -> FnResult<()> {
    let (row, count) = current(db, key, limit, now)?;
    match row {
        Some(row) => {
            let mut patch = Patch::new();
            if count == 0.0 {
                patch.insert("window_start".into(), Some(Value::from(now)));
            }
            patch.insert("count".into(), Some(Value::from(count + 1.0)));
            db.patch(&row.id, patch)?;
        }
        None => {
            let mut fields = Object::new();
            fields.insert("key".into(), Value::from(key));
            fields.insert("window_start".into(), Value::from(now));
            fields.insert("count".into(), Value::from(1.0));
            db.insert("rate_limits", fields)?;
        }
    }
    Ok(())
}

static STALE: crate::housekeeping::Expiring = crate::housekeeping::Expiring {
    table: "rate_limits",
    index: "by_window_start",
    field: "window_start",
    keep_ms: STALE_AFTER_MS,
};

pub fn register_sweep(r: &mut functions::Registry) {
    crate::housekeeping::expiring(
        r,
        "prune rate limits",
        functions::FunctionRef::internal_mutation("housekeeping:sweepRateLimits"),
        &STALE,
    );
}
