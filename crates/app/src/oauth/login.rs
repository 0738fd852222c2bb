//! `auth:githubOAuthLogin` / `auth:googleOAuthLogin`: check the state, exchange the code at the
//! provider (with the PKCE verifier), read the verified email, then in one transaction consume the
//! state, find or link or create the user, and open a 30-day session.

use config::{OAuthProvider, OAuthSettings, Urls};
use functions::{ActionCtx, CrossTenant, FnResult, FunctionError, FunctionRef, MutationCtx, Scope};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Object, Typed, Value};

use super::providers::{self, label};
use super::state::{self, StateError};
use super::{AccountDoc, ACCOUNTS, USED_STATES};
use crate::audit::{self, Entry, Event};
use crate::identity::sessions;

/// Stale used-state rows removed per sign-in; enough to keep pace, small enough to stay cheap.
const PURGE_BATCH: usize = 20;
/// The longest name kept from a provider profile (registration allows the same).
const MAX_NAME_CHARS: usize = 100;

fn state_error(provider: OAuthProvider, reason: &str) -> FunctionError {
    FunctionError::validation(
        "state",
        format!(
            "{} OAuth login failed: {reason}; start sign-in again",
            label(provider)
        ),
    )
}

fn wall_clock_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

/// The database half of the login actions.
pub const COMPLETE: FunctionRef<CompleteArgs, Completed> =
    FunctionRef::internal_mutation("oauth:completeLogin");

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct LoginArgs {
    code: String,
    state: Option<String>,
}

/// What the provider vouched for, and the state's nonce and expiry, for the transaction.
#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CompleteArgs {
    provider: String,
    account_id: String,
    email: String,
    name: String,
    picture: Option<String>,
    nonce: String,
    state_expires_at: f64,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct OAuthUser {
    #[typed(id = "users")]
    id: String,
    name: String,
    email: String,
    role: String,
    profile_image_url: Option<String>,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct Completed {
    user: OAuthUser,
    #[serde(rename = "sessionToken")]
    session_token: String,
}

/// The public action.
pub async fn login(
    ctx: ActionCtx,
    args: LoginArgs,
    provider: OAuthProvider,
    settings: &OAuthSettings,
    urls: &Urls,
) -> FnResult<Completed> {
    let client = providers::client(settings, provider)?;
    let code = args.code.trim();
    if code.is_empty() {
        return Err(FunctionError::validation(
            "code",
            format!(
                "{} OAuth login failed: the authorization code is missing",
                label(provider)
            ),
        ));
    }
    // The reference made `state` optional; without it there is no PKCE verifier and no CSRF check.
    let raw_state = args.state.as_deref().unwrap_or_default();
    if raw_state.is_empty() {
        return Err(state_error(provider, "the sign-in state is missing"));
    }
    // An early check (the transaction re-checks expiry with its own clock), so a stale or forged
    // state never costs a call to the provider.
    let checked = state::verify(
        settings.secret_key.expose(),
        provider,
        raw_state,
        wall_clock_ms(),
    )
    .map_err(|e| match e {
        StateError::Invalid => state_error(provider, "the sign-in state is not valid"),
        StateError::Expired => state_error(provider, "the sign-in state has expired"),
    })?;
    let token = providers::exchange_code(
        ctx.http(),
        settings,
        urls,
        provider,
        client,
        code,
        &checked.code_verifier,
    )
    .await?;
    let profile = providers::fetch_profile(ctx.http(), settings, provider, &token).await?;
    let inner = CompleteArgs {
        provider: provider.as_str().to_string(),
        account_id: profile.account_id,
        email: profile.email.as_str().to_string(),
        name: profile.name,
        picture: profile.picture,
        nonce: checked.nonce,
        state_expires_at: checked.expires_at,
    };
    ctx.run_mutation(COMPLETE, &inner).await
}

/// How the user was found, for the audit log.
enum Found {
    Returning,
    Linked,
    Created,
}

/// Records the state's nonce so it cannot be used twice, and clears out long-expired ones.
fn consume_state(
    ctx: &mut MutationCtx<'_>,
    provider: OAuthProvider,
    args: &CompleteArgs,
) -> FnResult<()> {
    let now = ctx.now_ms();
    let expires_at = args.state_expires_at;
    if expires_at <= now {
        return Err(state_error(provider, "the sign-in state has expired"));
    }
    let nonce = args.nonce.as_str();
    let used = ctx
        .db
        .query(USED_STATES)?
        .with_index("by_nonce", |q| q.eq("nonce", nonce))?
        .first()?;
    if used.is_some() {
        return Err(state_error(provider, "this sign-in was already completed"));
    }
    let stale = ctx
        .db
        .query(USED_STATES)?
        .with_index("by_expires", |q| q.lt("expires_at", now))?
        .take(PURGE_BATCH)?;
    for row in stale {
        ctx.db.delete(&row.id)?;
    }
    let mut row = Object::new();
    row.insert("nonce".into(), Value::from(nonce));
    row.insert("expires_at".into(), Value::from(expires_at));
    ctx.db.insert(USED_STATES, row)?;
    Ok(())
}

fn link_account(
    ctx: &mut MutationCtx<'_>,
    provider: OAuthProvider,
    account_id: &str,
    user_id: &DocumentId,
) -> FnResult<()> {
    let mut row = Object::new();
    row.insert("user_id".into(), Value::from(*user_id));
    row.insert("provider".into(), Value::from(provider.as_str()));
    row.insert("provider_account_id".into(), Value::from(account_id));
    row.insert("created_at".into(), Value::from(ctx.now_ms()));
    ctx.db.insert(ACCOUNTS, row)?;
    Ok(())
}

/// The user behind the provider account: already linked, or matched by verified email and linked
/// now, or created as a frontline worker with no company.
fn find_or_create_user(
    ctx: &mut MutationCtx<'_>,
    provider: OAuthProvider,
    args: &CompleteArgs,
) -> FnResult<(Document, Found)> {
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let account_id = args.account_id.as_str();
    let linked = ctx
        .db
        .query(ACCOUNTS)?
        .with_index("by_provider_account", |q| {
            q.eq("provider", provider.as_str())
                .eq("provider_account_id", account_id)
        })?
        .first()?;
    if let Some(account) = linked {
        let account: AccountDoc = functions::row(&account)?;
        let user_id = account.user_id.encode();
        if let Some(user) = ctx.db.scoped(&all).get_in("users", &user_id)? {
            return Ok((user, Found::Returning));
        }
        // The user was deleted but the link stayed behind; it must not block a fresh start.
        ctx.db.delete(&account.id)?;
    }
    let email = args.email.as_str();
    let existing = ctx
        .db
        .scoped(&all)
        .query("users", "by_email", |q| q.eq("email", email))?
        .first()?;
    if let Some(user) = existing {
        link_account(ctx, provider, account_id, &user.id)?;
        return Ok((user, Found::Linked));
    }
    let name: String = args.name.trim().chars().take(MAX_NAME_CHARS).collect();
    let mut user = Object::new();
    user.insert("name".into(), Value::from(name));
    user.insert("email".into(), Value::from(email));
    // No password: this account signs in through the provider until the user sets one by reset.
    user.insert("password".into(), Value::from(""));
    user.insert("role".into(), Value::from("frontline_worker"));
    if let Some(picture) = &args.picture {
        user.insert("profile_image_url".into(), Value::from(picture.as_str()));
    }
    user.insert("created_at".into(), Value::from(ctx.now_ms()));
    let id = ctx.db.scoped(&all).insert("users", user)?;
    link_account(ctx, provider, account_id, &id)?;
    let user = ctx
        .db
        .scoped(&all)
        .get(&id)?
        .ok_or_else(|| FunctionError::internal("user vanished after insert"))?;
    Ok((user, Found::Created))
}

/// `oauth:completeLogin` (internal): the database half of the login actions.
pub fn complete(ctx: &mut MutationCtx<'_>, args: CompleteArgs) -> FnResult<Completed> {
    let now = ctx.now_ms();
    let provider = OAuthProvider::parse(&args.provider)
        .ok_or_else(|| FunctionError::internal("unknown OAuth provider"))?;
    consume_state(ctx, provider, &args)?;
    let (user, found) = find_or_create_user(ctx, provider, &args)?;
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let company_id = user
        .get("company_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(company_id) = &company_id {
        let company = ctx.db.scoped(&all).get_in("companies", company_id)?;
        if company.and_then(|c| c.get("status").cloned()) == Some(Value::from("suspended")) {
            return Err(FunctionError::forbidden(
                "Your organisation's account is suspended",
            ));
        }
    }
    let company = company_id
        .as_deref()
        .and_then(|c| ctx.db.normalize_id("companies", c));
    let mut patch = Patch::new();
    patch.insert("last_login_at".into(), Some(Value::from(now)));
    if user.get("profile_image_url").is_none() {
        if let Some(picture) = &args.picture {
            patch.insert(
                "profile_image_url".into(),
                Some(Value::from(picture.as_str())),
            );
        }
    }
    ctx.db.scoped(&all).patch(&user.id, patch)?;

    let method = provider.as_str();
    let record = |ctx: &mut MutationCtx<'_>, event: Event| {
        let entry = Entry {
            event,
            actor: Some(&user.id),
            target: Some(user.id.encode()),
            company: company.as_ref(),
            details: &[("method", "oauth"), ("provider", method)],
        };
        audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)
    };
    match found {
        Found::Returning => {}
        Found::Linked => record(ctx, Event::OAuthAccountLinked)?,
        Found::Created => record(ctx, Event::UserRegistered)?,
    }
    record(ctx, Event::SignIn)?;
    // OAuth sessions last as long as remember-me ones (the reference's 30 days).
    let (token, _expires) = sessions::create(&mut ctx.db, &user.id, true, now)?;
    let field = |name: &str| user.get(name).and_then(Value::as_str).map(str::to_string);
    let picture = field("profile_image_url").or_else(|| args.picture.clone());
    Ok(Completed {
        user: OAuthUser {
            id: user.id.encode(),
            name: field("name").unwrap_or_default(),
            email: field("email").unwrap_or_default(),
            role: field("role").unwrap_or_default(),
            profile_image_url: picture,
        },
        session_token: token.expose().to_string(),
    })
}
