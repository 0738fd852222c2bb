//! Sessions: 32 random bytes shown to the client once, stored only as a SHA-256 hash; 24 hours, or
//! 30 days with remember-me; at most five per user, the oldest evicted.

use functions::{DbRead, DbWriter, FnResult};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{Order, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

pub const SESSION_TTL_MS: f64 = 24.0 * 3600.0 * 1000.0;
pub const REMEMBER_ME_TTL_MS: f64 = 30.0 * 24.0 * 3600.0 * 1000.0;
pub const MAX_SESSIONS_PER_USER: usize = 5;

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new("sessions")
        .field("user_id", v::id("users"))
        .field("token_hash", v::string())
        .field("created_at", v::number())
        .field("expires_at", v::number())
        .field("remember_me", v::boolean())
        // Where the user was in a workflow, so an interrupted wizard can resume.
        .optional("workflow_state", v::any())
        .index("by_token_hash", &["token_hash"])
        .index("by_user", &["user_id", "created_at"])
        // For housekeeping, which deletes expired sessions.
        .index("by_expires", &["expires_at"])]
}

/// A document of the sessions table. No `Debug`: it holds the token's hash.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(table = "sessions")]
pub struct SessionDoc {
    #[serde(rename = "_id")]
    pub id: Id<SessionDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "users")]
    pub user_id: DocumentId,
    pub token_hash: String,
    pub created_at: f64,
    pub expires_at: f64,
    pub remember_me: bool,
    pub workflow_state: Option<Value>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![("sessions", SessionDoc::validator())]
}

/// A session token as handed to the client. Never printed.
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate() -> SessionToken {
        SessionToken(hex::encode(rand::random::<[u8; 32]>()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// How tokens (sessions, resets, invitations) are stored: only their hash, so a database leak
/// hands out no usable token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a session, evicting the user's oldest ones beyond the cap. Returns the token and expiry.
pub fn create(
    db: &mut DbWriter<'_>,
    user_id: &DocumentId,
    remember_me: bool,
    now: f64,
) -> FnResult<(SessionToken, f64)> {
    let ttl = if remember_me {
        REMEMBER_ME_TTL_MS
    } else {
        SESSION_TTL_MS
    };
    create_until(db, user_id, remember_me, now, now + ttl, None)
}

/// Creates a session that ends at `expires_at` (the caller's bound, e.g. another session's end),
/// evicting the user's oldest sessions beyond the cap but never `keep`.
pub fn create_until(
    db: &mut DbWriter<'_>,
    user_id: &DocumentId,
    remember_me: bool,
    now: f64,
    expires_at: f64,
    keep: Option<&DocumentId>,
) -> FnResult<(SessionToken, f64)> {
    let existing = db
        .query("sessions")?
        .with_index("by_user", |q| q.eq("user_id", user_id.encode()))?
        .order(Order::Asc)
        .collect()?;
    let excess = (existing.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
    for oldest in existing.iter().filter(|s| Some(&s.id) != keep).take(excess) {
        db.delete(&oldest.id)?;
    }
    let token = SessionToken::generate();
    let mut session = Object::new();
    session.insert("user_id".into(), Value::from(user_id.encode()));
    session.insert("token_hash".into(), Value::from(hash_token(token.expose())));
    session.insert("created_at".into(), Value::from(now));
    session.insert("expires_at".into(), Value::from(expires_at));
    session.insert("remember_me".into(), Value::from(remember_me));
    db.insert("sessions", session)?;
    Ok((token, expires_at))
}

/// The live session for `token`; expired and unknown tokens are both `None`.
pub fn find(db: &mut impl DbRead, token: &str, now: f64) -> FnResult<Option<SessionDoc>> {
    let session = db
        .query("sessions")?
        .with_index("by_token_hash", |q| q.eq("token_hash", hash_token(token)))?
        .first()?
        .map(|doc| functions::row::<SessionDoc>(&doc))
        .transpose()?;
    Ok(session.filter(|s| s.expires_at > now))
}

/// Ends every session of a user (password reset), optionally keeping one.
pub fn end_all(
    db: &mut DbWriter<'_>,
    user_id: &DocumentId,
    keep: Option<&DocumentId>,
) -> FnResult<usize> {
    let sessions = db
        .query("sessions")?
        .with_index("by_user", |q| q.eq("user_id", user_id.encode()))?
        .collect()?;
    let mut ended = 0;
    for s in sessions.iter().filter(|s| Some(&s.id) != keep) {
        db.delete(&s.id)?;
        ended += 1;
    }
    Ok(ended)
}

/// How many sessions `users` hold, live or expired (cleanup's preview counts what it deletes).
pub fn count_for(db: &mut impl DbRead, users: &[DocumentId]) -> FnResult<usize> {
    let mut n = 0;
    for user in users {
        n += db
            .query("sessions")?
            .with_index("by_user", |q| q.eq("user_id", user.encode()))?
            .count()? as usize;
    }
    Ok(n)
}

/// Deletes every session of `users` (their company is being deleted); returns how many went.
pub fn delete_for(db: &mut DbWriter<'_>, users: &[DocumentId]) -> FnResult<usize> {
    let mut n = 0;
    for user in users {
        n += end_all(db, user, None)?;
    }
    Ok(n)
}

/// An expired session answers exactly like a missing one (`find`), so it goes.
static EXPIRED: crate::housekeeping::Expiring = crate::housekeeping::Expiring {
    table: "sessions",
    index: "by_expires",
    field: "expires_at",
    keep_ms: 0.0,
};

pub fn register_sweep(r: &mut functions::Registry) {
    crate::housekeeping::expiring(
        r,
        "prune sessions",
        functions::FunctionRef::internal_mutation("housekeeping:sweepSessions"),
        &EXPIRED,
    );
}
