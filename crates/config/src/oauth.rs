//! OAuth sign-in settings: each provider's client credentials (a provider without them is "not
//! configured"), the providers' endpoint base URLs (overridable so tests can point them at a fake
//! provider), and the server secret that signs OAuth state.

use std::fmt;
use std::sync::Arc;

use url::Url;

use crate::{check_base_url, Environment};

pub const DEFAULT_GITHUB_OAUTH_BASE_URL: &str = "https://github.com";
pub const DEFAULT_GITHUB_API_BASE_URL: &str = "https://api.github.com";
pub const DEFAULT_GOOGLE_OAUTH_BASE_URL: &str = "https://accounts.google.com";
pub const DEFAULT_GOOGLE_TOKEN_BASE_URL: &str = "https://oauth2.googleapis.com";
pub const DEFAULT_GOOGLE_API_BASE_URL: &str = "https://openidconnect.googleapis.com";
/// Shorter keys are guessable enough to forge signed state offline.
pub const MIN_SECRET_KEY_LEN: usize = 32;

/// A server secret (`SUPPORTSIGNAL_SECRET_KEY`). `Debug` never prints it.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Arc<[u8]>,
    ephemeral: bool,
}

impl SecretKey {
    pub fn new(bytes: &[u8]) -> SecretKey {
        SecretKey {
            bytes: bytes.into(),
            ephemeral: false,
        }
    }
    /// A random key for this process only: anything signed with it dies with the process.
    pub fn random() -> SecretKey {
        SecretKey {
            bytes: rand::random::<[u8; 32]>().as_slice().into(),
            ephemeral: true,
        }
    }
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
    /// Whether the key was generated at start because none was configured.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(***, ephemeral: {})", self.ephemeral)
    }
}

/// One provider's OAuth app. `Debug` never prints the client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    client_secret: String,
}

impl OAuthClient {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> OAuthClient {
        OAuthClient {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct OAuthSettings {
    pub github: Option<OAuthClient>,
    pub google: Option<OAuthClient>,
    github_base: Url,
    github_api_base: Url,
    google_base: Url,
    google_token_base: Url,
    google_api_base: Url,
    /// Signs the OAuth `state` so it needs no server-side storage.
    pub secret_key: SecretKey,
}

fn default_url(raw: &str) -> Url {
    Url::parse(raw).expect("default provider URLs parse")
}

fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url
}

impl OAuthSettings {
    /// No provider configured, the real providers' endpoints, and a throw-away key.
    pub fn unconfigured() -> OAuthSettings {
        OAuthSettings {
            github: None,
            google: None,
            github_base: default_url(DEFAULT_GITHUB_OAUTH_BASE_URL),
            github_api_base: default_url(DEFAULT_GITHUB_API_BASE_URL),
            google_base: default_url(DEFAULT_GOOGLE_OAUTH_BASE_URL),
            google_token_base: default_url(DEFAULT_GOOGLE_TOKEN_BASE_URL),
            google_api_base: default_url(DEFAULT_GOOGLE_API_BASE_URL),
            secret_key: SecretKey::random(),
        }
    }

    /// `<GITHUB_OAUTH_BASE_URL>/login/oauth/authorize`
    pub fn github_authorize_url(&self) -> Url {
        endpoint(&self.github_base, "/login/oauth/authorize")
    }
    /// `<GITHUB_OAUTH_BASE_URL>/login/oauth/access_token`
    pub fn github_token_url(&self) -> Url {
        endpoint(&self.github_base, "/login/oauth/access_token")
    }
    /// `<GITHUB_API_BASE_URL>/user`
    pub fn github_user_url(&self) -> Url {
        endpoint(&self.github_api_base, "/user")
    }
    /// `<GITHUB_API_BASE_URL>/user/emails`
    pub fn github_emails_url(&self) -> Url {
        endpoint(&self.github_api_base, "/user/emails")
    }
    /// `<GOOGLE_OAUTH_BASE_URL>/o/oauth2/v2/auth`
    pub fn google_authorize_url(&self) -> Url {
        endpoint(&self.google_base, "/o/oauth2/v2/auth")
    }
    /// `<GOOGLE_TOKEN_BASE_URL>/token`
    pub fn google_token_url(&self) -> Url {
        endpoint(&self.google_token_base, "/token")
    }
    /// `<GOOGLE_API_BASE_URL>/v1/userinfo`
    pub fn google_userinfo_url(&self) -> Url {
        endpoint(&self.google_api_base, "/v1/userinfo")
    }
}

/// Reads the OAuth variables and `SUPPORTSIGNAL_SECRET_KEY`, adding every problem to `problems`.
pub(crate) fn load(
    var: &impl Fn(&str) -> Option<String>,
    environment: Environment,
    problems: &mut Vec<String>,
) -> OAuthSettings {
    let mut settings = OAuthSettings::unconfigured();
    let mut client = |provider: &str| {
        let id_key = format!("{provider}_CLIENT_ID");
        let secret_key = format!("{provider}_CLIENT_SECRET");
        match (var(&id_key), var(&secret_key)) {
            (Some(id), Some(secret)) => Some(OAuthClient::new(id, secret)),
            (None, None) => None,
            _ => {
                problems.push(format!(
                    "{id_key} and {secret_key} must be set together (or neither, to turn {provider} sign-in off)"
                ));
                None
            }
        }
    };
    settings.github = client("GITHUB");
    settings.google = client("GOOGLE");
    for (key, slot) in [
        ("GITHUB_OAUTH_BASE_URL", &mut settings.github_base),
        ("GITHUB_API_BASE_URL", &mut settings.github_api_base),
        ("GOOGLE_OAUTH_BASE_URL", &mut settings.google_base),
        ("GOOGLE_TOKEN_BASE_URL", &mut settings.google_token_base),
        ("GOOGLE_API_BASE_URL", &mut settings.google_api_base),
    ] {
        if let Some(raw) = var(key) {
            if let Some(url) = check_base_url(key, &raw, environment, problems) {
                *slot = url;
            }
        }
    }
    match var("SUPPORTSIGNAL_SECRET_KEY") {
        Some(key) if key.len() >= MIN_SECRET_KEY_LEN => {
            settings.secret_key = SecretKey::new(key.as_bytes());
        }
        Some(_) => problems.push(format!(
            "SUPPORTSIGNAL_SECRET_KEY must be at least {MIN_SECRET_KEY_LEN} characters (e.g. the output of `openssl rand -hex 32`)"
        )),
        // Signed state must survive restarts and be shared by every node in production; elsewhere a
        // per-start key only costs an in-flight sign-in at restart.
        None if environment == Environment::Production => problems.push(
            "SUPPORTSIGNAL_SECRET_KEY is required in production (at least 32 random characters, the same on every node; e.g. `openssl rand -hex 32`)"
                .to_string(),
        ),
        None => {}
    }
    settings
}
