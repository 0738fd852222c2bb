//! OAuth sign-in with GitHub and Google: the authorization-code flow with signed state and PKCE
//! (S256), callbacks from the URL generator; a verified email links an existing user, otherwise a
//! companyless frontline worker is created; the result is a 30-day session.

mod login;
mod providers;
pub mod rows;
/// Public so tests can mint states (it takes the server secret to make one the server accepts).
pub mod state;

use std::sync::Arc;

use crate::args::SessionArgs;
use config::{OAuthProvider, OAuthSettings, Urls};
use functions::{FnResult, QueryCtx, Registry};
use serde::{Deserialize, Serialize};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Id, Typed, Validator};

/// Which provider account belongs to which user.
pub const ACCOUNTS: &str = "accounts";
/// Nonces of states whose sign-in completed, kept until the state would have expired anyway.
pub const USED_STATES: &str = "oauth_used_states";

pub fn tables() -> Vec<TableDef> {
    vec![
        TableDef::new(ACCOUNTS)
            .field("user_id", v::id("users"))
            .field("provider", provider_validator())
            .field("provider_account_id", v::string())
            .field("created_at", v::number())
            .index("by_provider_account", &["provider", "provider_account_id"])
            .index("by_user", &["user_id"]),
        TableDef::new(USED_STATES)
            .field("nonce", v::string())
            .field("expires_at", v::number())
            .index("by_nonce", &["nonce"])
            .index("by_expires", &["expires_at"]),
    ]
}

/// A document of the provider accounts.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "accounts")]
pub struct AccountDoc {
    #[serde(rename = "_id")]
    pub id: Id<AccountDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "users")]
    pub user_id: DocumentId,
    #[typed(validator = provider_validator())]
    pub provider: String,
    pub provider_account_id: String,
    pub created_at: f64,
}

/// A document of the used states.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "oauth_used_states")]
pub struct UsedStateDoc {
    #[serde(rename = "_id")]
    pub id: Id<UsedStateDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub nonce: String,
    pub expires_at: f64,
}

fn provider_validator() -> Validator {
    let providers = [OAuthProvider::GitHub, OAuthProvider::Google];
    v::union(providers.iter().map(|p| v::literal(p.as_str())).collect())
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![
        (ACCOUNTS, AccountDoc::validator()),
        (USED_STATES, UsedStateDoc::validator()),
    ]
}

/// Registers the functions with no provider configured (they answer "GitHub OAuth not
/// configured"), for callers that only have the URLs. The server should use `register_with`.
pub fn register(r: &mut Registry, urls: &Urls) {
    register_with(r, urls, &OAuthSettings::unconfigured());
}

pub fn register_with(r: &mut Registry, urls: &Urls, oauth: &OAuthSettings) {
    let settings = Arc::new(oauth.clone());
    if settings.secret_key.is_ephemeral()
        && (settings.github.is_some() || settings.google.is_some())
    {
        tracing::warn!(
            "SUPPORTSIGNAL_SECRET_KEY is not set: using a random key, so OAuth sign-ins in progress fail after a restart or on another node"
        );
    }
    for provider in [OAuthProvider::GitHub, OAuthProvider::Google] {
        let (url_path, login_path) = match provider {
            OAuthProvider::GitHub => ("auth:getGitHubOAuthUrl", "auth:githubOAuthLogin"),
            OAuthProvider::Google => ("auth:getGoogleOAuthUrl", "auth:googleOAuthLogin"),
        };
        let (s, u) = (settings.clone(), urls.clone());
        r.query(url_path, move |ctx, args: SessionArgs| {
            authorize_url(ctx, args, provider, &s, &u)
        });
        let (s, u) = (settings.clone(), urls.clone());
        r.action(login_path, move |ctx, args: login::LoginArgs| {
            let (s, u) = (s.clone(), u.clone());
            async move { login::login(ctx, args, provider, &s, &u).await }
        })
        // The web app reads `error.data` of sign-in calls as text (see `auth::register`).
        .message_error_data();
    }
    r.internal_mutation(login::COMPLETE, login::complete)
        .cross_tenant();
}

#[derive(Serialize, Typed)]
pub struct AuthorizeUrl {
    url: String,
    state: String,
}

/// `auth:getGitHubOAuthUrl` / `auth:getGoogleOAuthUrl`: `{url, state}`. A query in the contract,
/// so it writes nothing: the state is signed instead of stored (see `state.rs`).
fn authorize_url(
    ctx: &mut QueryCtx<'_>,
    _args: SessionArgs,
    provider: OAuthProvider,
    settings: &OAuthSettings,
    urls: &Urls,
) -> FnResult<AuthorizeUrl> {
    let client = providers::client(settings, provider)?;
    let issued = state::issue(settings.secret_key.expose(), provider, ctx.now_ms());
    let url = providers::authorize_url(
        settings,
        urls,
        provider,
        client,
        &issued.state,
        &issued.code_challenge,
    );
    Ok(AuthorizeUrl {
        url,
        state: issued.state,
    })
}

/// A nonce is only needed while its state could still be presented.
static EXPIRED: crate::housekeeping::Expiring = crate::housekeeping::Expiring {
    table: USED_STATES,
    index: "by_expires",
    field: "expires_at",
    keep_ms: 0.0,
};

pub fn register_sweep(r: &mut Registry) {
    crate::housekeeping::expiring(
        r,
        "prune oauth states",
        functions::FunctionRef::internal_mutation("housekeeping:sweepOAuthStates"),
        &EXPIRED,
    );
}
