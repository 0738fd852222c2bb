//! The two providers' HTTP conversations: the authorize URL, the code exchange at the token
//! endpoint (with the PKCE verifier), and the profile with a verified email address.

use config::{OAuthClient, OAuthProvider, OAuthSettings, Urls};
use functions::{ErrorCode, FnResult, FunctionError};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::users::Email;

/// What a provider vouches for.
#[derive(Debug)]
pub struct Profile {
    /// The provider's stable id for the account (GitHub's numeric id, Google's `sub`).
    pub account_id: String,
    /// Verified by the provider; only such an address may link to an existing user.
    pub email: Email,
    pub name: String,
    pub picture: Option<String>,
}

pub fn label(provider: OAuthProvider) -> &'static str {
    match provider {
        OAuthProvider::GitHub => "GitHub",
        OAuthProvider::Google => "Google",
    }
}

pub fn client(settings: &OAuthSettings, provider: OAuthProvider) -> FnResult<&OAuthClient> {
    let client = match provider {
        OAuthProvider::GitHub => settings.github.as_ref(),
        OAuthProvider::Google => settings.google.as_ref(),
    };
    client.ok_or_else(|| {
        FunctionError::forbidden(format!("{} OAuth not configured", label(provider)))
    })
}

/// `"<Provider> OAuth login failed: <reason>"`, the contract's wording, under a stable code.
pub fn failed(provider: OAuthProvider, code: ErrorCode, reason: &str) -> FunctionError {
    FunctionError::user(
        code,
        format!("{} OAuth login failed: {reason}", label(provider)),
    )
}

pub fn authorize_url(
    settings: &OAuthSettings,
    urls: &Urls,
    provider: OAuthProvider,
    client: &OAuthClient,
    state: &str,
    code_challenge: &str,
) -> String {
    let callback = urls.oauth_callback(provider);
    let (mut url, scope) = match provider {
        // `user:email` is needed to read private and unverified-flagged addresses.
        OAuthProvider::GitHub => (settings.github_authorize_url(), "read:user user:email"),
        OAuthProvider::Google => (settings.google_authorize_url(), "openid email profile"),
    };
    url.query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &callback)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("code_challenge", code_challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// A provider's own words, trimmed to something safe and short enough to show a user.
fn provider_words(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    clean.trim().to_string()
}

fn unreachable(provider: OAuthProvider, e: &reqwest::Error) -> FunctionError {
    // The detail (which may name the endpoint) is for operators; the caller learns the gist.
    tracing::warn!(provider = provider.as_str(), error = %e, "OAuth provider request failed");
    failed(
        provider,
        ErrorCode::Unavailable,
        &format!("could not reach {}; try again", label(provider)),
    )
}

/// Exchanges the authorization code (and the PKCE verifier) for an access token.
pub async fn exchange_code(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    urls: &Urls,
    provider: OAuthProvider,
    client: &OAuthClient,
    code: &str,
    code_verifier: &str,
) -> FnResult<String> {
    let callback = urls.oauth_callback(provider);
    let url = match provider {
        OAuthProvider::GitHub => settings.github_token_url(),
        OAuthProvider::Google => settings.google_token_url(),
    };
    let form = [
        ("client_id", client.client_id.as_str()),
        ("client_secret", client.client_secret()),
        ("code", code),
        ("redirect_uri", callback.as_str()),
        ("grant_type", "authorization_code"),
        ("code_verifier", code_verifier),
    ];
    let response = http
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| unreachable(provider, &e))?;
    let status = response.status();
    // Both providers describe refusals as JSON `{error, error_description}` (GitHub with HTTP 200).
    let body: Json = response.json().await.unwrap_or(Json::Null);
    if let Some(error) = body.get("error").and_then(Json::as_str) {
        let description = body
            .get("error_description")
            .and_then(Json::as_str)
            .unwrap_or(error);
        return Err(failed(
            provider,
            ErrorCode::Unauthenticated,
            &provider_words(description),
        ));
    }
    match body.get("access_token").and_then(Json::as_str) {
        Some(token) if status.is_success() && !token.is_empty() => Ok(token.to_string()),
        _ => Err(failed(
            provider,
            ErrorCode::Unavailable,
            &format!(
                "{} did not issue an access token (HTTP {})",
                label(provider),
                status.as_u16()
            ),
        )),
    }
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    provider: OAuthProvider,
    url: reqwest::Url,
    token: &str,
) -> FnResult<T> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/json")
        // GitHub's API refuses requests without a User-Agent.
        .header(reqwest::header::USER_AGENT, "SupportSignal")
        .send()
        .await
        .map_err(|e| unreachable(provider, &e))?;
    let status = response.status();
    if !status.is_success() {
        // A 5xx is the provider's trouble and worth retrying; a 4xx means the token was refused.
        let code = if status.is_server_error() {
            ErrorCode::Unavailable
        } else {
            ErrorCode::Unauthenticated
        };
        return Err(failed(
            provider,
            code,
            &format!(
                "{} refused the profile request (HTTP {})",
                label(provider),
                status.as_u16()
            ),
        ));
    }
    response.json().await.map_err(|e| {
        tracing::warn!(provider = provider.as_str(), error = %e, "unexpected OAuth profile");
        failed(
            provider,
            ErrorCode::Unavailable,
            &format!("{} sent a profile we could not read", label(provider)),
        )
    })
}

#[derive(Deserialize)]
struct GitHubUser {
    id: u64,
    login: String,
    name: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct GitHubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Deserialize)]
struct GoogleUser {
    sub: String,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
    picture: Option<String>,
}

fn unverified(provider: OAuthProvider, detail: &str) -> FunctionError {
    failed(provider, ErrorCode::Forbidden, detail)
}

fn email(provider: OAuthProvider, raw: &str) -> FnResult<Email> {
    Email::parse(raw).map_err(|_| {
        failed(
            provider,
            ErrorCode::Forbidden,
            &format!("the email address {} gave is not usable", label(provider)),
        )
    })
}

/// The signed-in account: its id, name, picture and a verified email address (or a refusal).
pub async fn fetch_profile(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    provider: OAuthProvider,
    token: &str,
) -> FnResult<Profile> {
    match provider {
        OAuthProvider::GitHub => {
            let user: GitHubUser =
                get_json(http, provider, settings.github_user_url(), token).await?;
            // `/user` shows only the public email, verified or not; the list says which is both
            // primary and verified.
            let emails: Vec<GitHubEmail> =
                get_json(http, provider, settings.github_emails_url(), token).await?;
            let primary = emails.into_iter().find(|e| e.primary && e.verified).ok_or_else(|| {
                unverified(
                    provider,
                    "your GitHub account has no verified primary email address; verify it on GitHub and try again",
                )
            })?;
            Ok(Profile {
                account_id: user.id.to_string(),
                email: email(provider, &primary.email)?,
                name: user
                    .name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(user.login),
                picture: user.avatar_url,
            })
        }
        OAuthProvider::Google => {
            let user: GoogleUser =
                get_json(http, provider, settings.google_userinfo_url(), token).await?;
            let address = match (&user.email, user.email_verified) {
                (Some(address), true) => address.clone(),
                _ => {
                    return Err(unverified(
                        provider,
                        "your Google account's email address is not verified",
                    ))
                }
            };
            let email = email(provider, &address)?;
            let name = user
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("").to_string());
            Ok(Profile {
                account_id: user.sub,
                email,
                name,
                picture: user.picture,
            })
        }
    }
}
