//! Password reset: `auth:requestPasswordReset` mails a one-hour, single-use link (the same answer
//! whether or not the email has an account); `auth:resetPassword` sets a new password, which must meet
//! the rules, clears any lockout and ends every session of the user. `email:sendPasswordResetEmail`
//! lets a system administrator send someone such a link.

use config::Urls;
use functions::{
    ActionCtx, CrossTenant, DbRead, DbWriter, FnResult, FunctionError, FunctionRef, MutationCtx,
    Scope,
};
use serde::{Deserialize, Serialize};
use store::{Patch, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

use super::{passwords, EmailArgs};
use crate::args::Success;
use crate::audit::{self, Entry, Event};
use crate::email::{self, OutgoingEmail};
use crate::identity::sessions::{self, hash_token, SessionToken};
use crate::identity::{require_session, Role};
use crate::rate_limit;
use crate::users::Email;

pub const RESET_TTL_MS: f64 = 3600.0 * 1000.0;
/// A new link is not sent while the last one is this fresh, so the endpoint cannot flood an inbox.
pub const RESET_MIN_INTERVAL_MS: f64 = 60.0 * 1000.0;

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new("password_reset_tokens")
        .field("user_id", v::id("users"))
        .field("token_hash", v::string())
        .field("created_at", v::number())
        .field("expires_at", v::number())
        .index("by_token_hash", &["token_hash"])
        .index("by_user", &["user_id", "created_at"])
        // For housekeeping: used tokens are deleted at once, expired ones by the sweep.
        .index("by_expires", &["expires_at"])]
}

/// A document of the password reset tokens. No `Debug`: it holds the token's hash.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(table = "password_reset_tokens")]
pub struct ResetTokenDoc {
    #[serde(rename = "_id")]
    pub id: Id<ResetTokenDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "users")]
    pub user_id: DocumentId,
    pub token_hash: String,
    pub created_at: f64,
    pub expires_at: f64,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![("password_reset_tokens", ResetTokenDoc::validator())]
}

const ON_ITS_WAY: &str = "If an account exists for that email, a reset link is on its way.";

/// The database half of `requestPasswordReset`.
pub const CREATE: FunctionRef<EmailArgs, ()> =
    FunctionRef::internal_mutation("auth:createPasswordReset");
/// The database half of `sendPasswordResetEmail`; the caller's session reaches it through `Auth`.
pub const CREATE_BY_ADMIN: FunctionRef<AdminResetArgs, ()> =
    FunctionRef::internal_mutation("auth:createPasswordResetByAdmin");

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct RequestArgs {
    email: String,
}

#[derive(Serialize, Typed)]
pub struct Requested {
    success: bool,
    message: String,
}

/// `auth:requestPasswordReset` (an action, as in the reference API).
pub async fn request(ctx: ActionCtx, args: RequestArgs) -> FnResult<Requested> {
    if let Ok(email) = Email::parse(&args.email) {
        let inner = EmailArgs {
            email: email.as_str().to_string(),
        };
        ctx.run_mutation(CREATE, &inner).await?;
    }
    Ok(Requested {
        success: true,
        message: ON_ITS_WAY.into(),
    })
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct SendArgs {
    email: String,
    /// Sent by the web app, and ignored: the link is always a fresh one.
    #[allow(dead_code)]
    token: Option<String>,
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct AdminResetArgs {
    email: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct SentByAdmin {
    success: bool,
    email_id: String,
    message: String,
}

/// `email:sendPasswordResetEmail`: a system administrator sends someone a fresh reset link. The
/// reference mailed whatever token the caller chose to whatever address, with no session: a
/// phishing relay. Here the caller's `token` is ignored and the link is a new one from the normal
/// flow. The answer is the same whether or not the email has an account; `emailId` is the request's
/// correlation id, which the queued email carries.
pub async fn send_by_admin(ctx: ActionCtx, args: SendArgs) -> FnResult<SentByAdmin> {
    let inner = AdminResetArgs { email: args.email };
    ctx.run_mutation(CREATE_BY_ADMIN, &inner).await?;
    Ok(SentByAdmin {
        success: true,
        email_id: ctx.request_id.as_str().to_string(),
        message: ON_ITS_WAY.into(),
    })
}

/// `auth:createPasswordResetByAdmin` (internal): the database half of `sendPasswordResetEmail`.
pub fn create_by_admin(
    ctx: &mut MutationCtx<'_>,
    urls: &Urls,
    args: AdminResetArgs,
) -> FnResult<()> {
    let now = ctx.now_ms();
    let admin = require_session(&mut ctx.db, ctx.auth, now)?;
    // An impersonating admin acts as someone else, so is no administrator here.
    if admin.role != Role::SystemAdmin || admin.impersonator.is_some() {
        return Err(FunctionError::forbidden(
            "System administrator access required",
        ));
    }
    let Ok(email) = Email::parse(&args.email) else {
        return Ok(());
    };
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let user = ctx
        .db
        .scoped(&all)
        .query("users", "by_email", |q| q.eq("email", email.as_str()))?
        .first()?;
    if let Some(user) = user {
        if issue(ctx, urls, &user)?.is_some() {
            let company = user
                .get("company_id")
                .and_then(Value::as_str)
                .and_then(|c| ctx.db.normalize_id("companies", c));
            let entry = Entry {
                event: Event::PasswordResetRequested,
                actor: Some(&admin.user_id),
                target: Some(user.id.encode()),
                company: company.as_ref(),
                details: &[],
            };
            audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &admin, entry)?;
        }
    }
    Ok(())
}

/// Issues a reset token for `user_id` and queues the email, inside the caller's transaction.
/// Returns `None` when a fresh link was sent moments ago.
pub fn issue(
    ctx: &mut MutationCtx<'_>,
    urls: &Urls,
    user: &store::Document,
) -> FnResult<Option<()>> {
    let now = ctx.now_ms();
    let previous = ctx
        .db
        .query("password_reset_tokens")?
        .with_index("by_user", |q| q.eq("user_id", user.id.encode()))?
        .collect()?
        .iter()
        .map(functions::row::<ResetTokenDoc>)
        .collect::<FnResult<Vec<_>>>()?;
    if previous
        .iter()
        .any(|t| t.created_at > now - RESET_MIN_INTERVAL_MS)
    {
        return Ok(None);
    }
    for old in &previous {
        ctx.db.delete(&old.id)?;
    }
    let token = SessionToken::generate();
    let mut row = Object::new();
    row.insert("user_id".into(), Value::from(user.id));
    row.insert("token_hash".into(), Value::from(hash_token(token.expose())));
    row.insert("created_at".into(), Value::from(now));
    row.insert("expires_at".into(), Value::from(now + RESET_TTL_MS));
    ctx.db.insert("password_reset_tokens", row)?;
    let link = urls
        .password_reset(token.expose())
        .map_err(|e| FunctionError::internal(e.to_string()))?;
    let name = user.get("name").and_then(Value::as_str).unwrap_or("there");
    let to = user
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let company_id = user
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| ctx.db.normalize_id("companies", c));
    email::enqueue(
        ctx,
        OutgoingEmail {
            to,
            subject: "Set your SupportSignal password".into(),
            text: format!(
                "Hello {name},\n\nUse this link within the next hour to set your SupportSignal password:\n\n{link}\n\nIf you did not ask for this, you can ignore this email.\n"
            ),
            kind: "password_reset".into(),
            company_id,
            correlation_id: Some(ctx.request_id.to_string()),
        },
    )?;
    Ok(Some(()))
}

/// `auth:createPasswordReset` (internal): the database half of `requestPasswordReset`.
pub fn create(ctx: &mut MutationCtx<'_>, urls: &Urls, args: EmailArgs) -> FnResult<()> {
    if let Some(ip) = ctx.auth.client_ip() {
        let (key, now) = (format!("password_resets:{ip}"), ctx.now_ms());
        let message = "Too many password reset requests from your network. Try again later.";
        rate_limit::check(
            &mut ctx.db,
            &key,
            rate_limit::RESETS_PER_ADDRESS,
            now,
            message,
        )?;
        rate_limit::record(&mut ctx.db, &key, rate_limit::RESETS_PER_ADDRESS, now)?;
    }
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let user = ctx
        .db
        .scoped(&all)
        .query("users", "by_email", |q| q.eq("email", args.email.as_str()))?
        .first()?;
    if let Some(user) = user {
        if issue(ctx, urls, &user)?.is_some() {
            let company = user
                .get("company_id")
                .and_then(Value::as_str)
                .and_then(|c| ctx.db.normalize_id("companies", c));
            let entry = Entry {
                event: Event::PasswordResetRequested,
                actor: None,
                target: Some(user.id.encode()),
                company: company.as_ref(),
                details: &[],
            };
            let now = ctx.now_ms();
            audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
        }
    }
    Ok(())
}

/// The new password's hash, computed before the transaction.
pub struct NewHash(String);

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ResetArgs {
    token: String,
    new_password: String,
}

pub async fn prepare_reset(_ctx: ActionCtx, args: ResetArgs) -> FnResult<NewHash> {
    let password = args.new_password;
    passwords::require_strong("newPassword", &password)?;
    passwords::off_thread(move || passwords::hash(&password))
        .await
        .map_err(|e| FunctionError::internal(format!("hashing failed: {e}")))?
        .map(NewHash)
}

pub fn apply_reset(
    ctx: &mut MutationCtx<'_>,
    args: ResetArgs,
    NewHash(new_hash): &NewHash,
) -> FnResult<Success> {
    let now = ctx.now_ms();
    let invalid = || FunctionError::validation("token", "Invalid or expired token");
    let row = ctx
        .db
        .query("password_reset_tokens")?
        .with_index("by_token_hash", |q| {
            q.eq("token_hash", hash_token(&args.token))
        })?
        .first()?
        .ok_or_else(invalid)?;
    let row: ResetTokenDoc = functions::row(&row)?;
    // Single use: the token goes whether or not it was still valid.
    ctx.db.delete(&row.id)?;
    if row.expires_at <= now {
        return ctx.fail_after_commit_typed(invalid());
    }
    let user_id = row.user_id.encode();
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let user = ctx
        .db
        .scoped(&all)
        .get_in("users", &user_id)?
        .ok_or_else(invalid)?;
    let mut patch = Patch::new();
    patch.insert("password".into(), Some(Value::from(new_hash.as_str())));
    patch.insert("failed_logins".into(), Some(Value::from(0.0)));
    patch.insert("locked_until".into(), None);
    ctx.db.scoped(&all).patch(&user.id, patch)?;
    sessions::end_all(&mut ctx.db, &user.id, None)?;
    let company = user
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| ctx.db.normalize_id("companies", c));
    let entry = Entry {
        event: Event::PasswordReset,
        actor: Some(&user.id),
        target: Some(user.id.encode()),
        company: company.as_ref(),
        details: &[],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(Success::YES)
}

/// The reset tokens of `users` (their company is being deleted: cleanup counts, then deletes them).
fn tokens_of(db: &mut impl DbRead, users: &[DocumentId]) -> FnResult<Vec<DocumentId>> {
    let mut ids = Vec::new();
    for user in users {
        let rows = db
            .query("password_reset_tokens")?
            .with_index("by_user", |q| q.eq("user_id", user.encode()))?
            .collect()?;
        ids.extend(rows.into_iter().map(|r| r.id));
    }
    Ok(ids)
}

/// How many reset tokens `users` hold.
pub fn count_for(db: &mut impl DbRead, users: &[DocumentId]) -> FnResult<usize> {
    Ok(tokens_of(db, users)?.len())
}

/// Deletes every reset token of `users`; returns how many went.
pub fn delete_for(db: &mut DbWriter<'_>, users: &[DocumentId]) -> FnResult<usize> {
    let ids = tokens_of(db, users)?;
    for id in &ids {
        db.delete(id)?;
    }
    Ok(ids.len())
}

/// Used tokens are deleted when used; an expired one is refused exactly like a missing one.
static EXPIRED: crate::housekeeping::Expiring = crate::housekeeping::Expiring {
    table: "password_reset_tokens",
    index: "by_expires",
    field: "expires_at",
    keep_ms: 0.0,
};

pub fn register_sweep(r: &mut functions::Registry) {
    crate::housekeeping::expiring(
        r,
        "prune password resets",
        functions::FunctionRef::internal_mutation("housekeeping:sweepPasswordResets"),
        &EXPIRED,
    );
}
