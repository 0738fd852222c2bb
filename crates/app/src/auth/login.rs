//! `auth:loginUser`: sign-in with lockout. The password check (slow by design) runs before the
//! transaction; the transaction re-checks that the hash it was checked against is still current.

use functions::{ActionCtx, CrossTenant, ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use serde::{Deserialize, Serialize};
use store::Patch;
use values::{Typed, Value};

use super::passwords::{self, Verified};
use super::{EmailArgs, CREDENTIALS_FOR_LOGIN};
use crate::audit::{self, Entry, Event};
use crate::identity::sessions;
use crate::rate_limit;
use crate::users::Email;

pub const MAX_FAILED_LOGINS: f64 = 5.0;
pub const LOCKOUT_MS: f64 = 15.0 * 60.0 * 1000.0;

pub fn invalid_credentials() -> FunctionError {
    FunctionError::user(ErrorCode::Unauthenticated, "Invalid email or password")
}

fn locked(until: f64, now: f64) -> FunctionError {
    let minutes = ((until - now) / 60_000.0).ceil().max(1.0);
    FunctionError::user(
        ErrorCode::RateLimited,
        format!("Account temporarily locked after too many failed sign-in attempts. Try again in {minutes} minutes."),
    )
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct LoginArgs {
    email: String,
    password: String,
    remember_me: Option<bool>,
}

#[derive(Default, Serialize, Typed)]
pub struct SignedInUser {
    #[typed(id = "users")]
    id: String,
    name: String,
    email: String,
    role: String,
    #[typed(id = "companies")]
    company_id: Option<String>,
}

#[derive(Default, Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    success: bool,
    user: SignedInUser,
    session_token: String,
    expires: f64,
    correlation_id: String,
}

pub struct LoginCheck {
    user_id: Option<String>,
    hash_seen: String,
    verified: Verified,
}

pub async fn prepare(ctx: ActionCtx, args: LoginArgs) -> FnResult<LoginCheck> {
    let Ok(email) = Email::parse(&args.email) else {
        return Err(invalid_credentials());
    };
    let query = EmailArgs {
        email: email.as_str().to_string(),
    };
    let found = ctx.run_query(CREDENTIALS_FOR_LOGIN, &query).await?;
    let (user_id, hash_seen) = match found {
        Some(c) => (Some(c.user_id), c.password_hash),
        None => (None, String::new()),
    };
    let password = args.password;
    let stored = (!hash_seen.is_empty()).then(|| hash_seen.clone());
    let verified = passwords::off_thread(move || passwords::verify(&password, stored.as_deref()))
        .await
        .map_err(|e| FunctionError::internal(format!("password check failed: {e}")))?;
    Ok(LoginCheck {
        user_id,
        hash_seen,
        verified,
    })
}

pub fn apply(ctx: &mut MutationCtx<'_>, args: LoginArgs, check: &LoginCheck) -> FnResult<SignedIn> {
    let now = ctx.now_ms();
    let address_key = ctx
        .auth
        .client_ip()
        .map(|ip| format!("sign_in_failures:{ip}"));
    if let Some(key) = &address_key {
        let message = "Too many failed sign-in attempts from your network. Try again later.";
        rate_limit::check(
            &mut ctx.db,
            key,
            rate_limit::SIGN_IN_FAILURES_PER_ADDRESS,
            now,
            message,
        )?;
    }
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let Some(user_id) = &check.user_id else {
        // Unknown email: nothing to count against, but the attempt is worth a record.
        let tried = args.email.trim().to_ascii_lowercase();
        let entry = Entry {
            event: Event::SignInFailed,
            actor: None,
            target: None,
            company: None,
            details: &[("email", &tried), ("reason", "unknown email")],
        };
        audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
        if let Some(key) = &address_key {
            rate_limit::record(
                &mut ctx.db,
                key,
                rate_limit::SIGN_IN_FAILURES_PER_ADDRESS,
                now,
            )?;
        }
        return ctx.fail_after_commit_typed(invalid_credentials());
    };
    let user = ctx
        .db
        .scoped(&all)
        .get_in("users", user_id)?
        .ok_or_else(invalid_credentials)?;
    let number = |field: &str| user.get(field).and_then(Value::as_f64).unwrap_or(0.0);
    let locked_until = number("locked_until");
    if locked_until > now {
        return Err(locked(locked_until, now));
    }
    let current_hash = user
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if current_hash.is_empty() {
        return Err(FunctionError::user(
            ErrorCode::Forbidden,
            "Account requires password reset. Check your email for a link to set your password.",
        ));
    }
    if current_hash != check.hash_seen {
        // The password changed between the check and now; the check proves nothing.
        return Err(invalid_credentials());
    }
    let company_id = user
        .get("company_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let company = company_id
        .as_deref()
        .and_then(|c| ctx.db.normalize_id("companies", c));
    let mut patch = Patch::new();
    if check.verified == Verified::No {
        let failures = number("failed_logins") + 1.0;
        let (error, event) = if failures >= MAX_FAILED_LOGINS {
            patch.insert("failed_logins".into(), Some(Value::from(0.0)));
            patch.insert("locked_until".into(), Some(Value::from(now + LOCKOUT_MS)));
            (locked(now + LOCKOUT_MS, now), Event::AccountLocked)
        } else {
            patch.insert("failed_logins".into(), Some(Value::from(failures)));
            (invalid_credentials(), Event::SignInFailed)
        };
        ctx.db.scoped(&all).patch(&user.id, patch)?;
        let entry = Entry {
            event,
            actor: None,
            target: Some(user.id.encode()),
            company: company.as_ref(),
            details: &[("reason", "wrong password")],
        };
        audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
        if let Some(key) = &address_key {
            rate_limit::record(
                &mut ctx.db,
                key,
                rate_limit::SIGN_IN_FAILURES_PER_ADDRESS,
                now,
            )?;
        }
        return ctx.fail_after_commit_typed(error);
    }
    if let Some(company_id) = &company_id {
        let company = ctx.db.scoped(&all).get_in("companies", company_id)?;
        if company.and_then(|c| c.get("status").cloned()) == Some(Value::from("suspended")) {
            return Err(FunctionError::forbidden(
                "Your organisation's account is suspended",
            ));
        }
    }
    patch.insert("failed_logins".into(), Some(Value::from(0.0)));
    patch.insert("locked_until".into(), None);
    patch.insert("last_login_at".into(), Some(Value::from(now)));
    if let Verified::YesRehash(new_hash) = &check.verified {
        patch.insert("password".into(), Some(Value::from(new_hash.as_str())));
    }
    ctx.db.scoped(&all).patch(&user.id, patch)?;
    let (token, expires) = sessions::create(
        &mut ctx.db,
        &user.id,
        args.remember_me.unwrap_or(false),
        now,
    )?;
    let entry = Entry {
        event: Event::SignIn,
        actor: Some(&user.id),
        target: Some(user.id.encode()),
        company: company.as_ref(),
        details: &[],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    let field = |name: &str| crate::users::text_of(&user, name).to_string();
    Ok(SignedIn {
        success: true,
        user: SignedInUser {
            id: user.id.encode(),
            name: field("name"),
            email: field("email"),
            role: field("role"),
            company_id,
        },
        session_token: token.expose().to_string(),
        expires,
        correlation_id: ctx.request_id.to_string(),
    })
}
