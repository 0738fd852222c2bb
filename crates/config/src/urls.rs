//! Every URL the backend sends outward (emails, OAuth, file links) is built here, from the configured
//! base URLs, so none is hard-coded anywhere else.

use url::Url;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthProvider {
    GitHub,
    Google,
}

impl OAuthProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthProvider::GitHub => "github",
            OAuthProvider::Google => "google",
        }
    }
    pub fn parse(s: &str) -> Option<OAuthProvider> {
        match s {
            "github" => Some(OAuthProvider::GitHub),
            "google" => Some(OAuthProvider::Google),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} contains characters that are not allowed (letters, digits, '-' and '_' only)")]
    BadCharacters { what: &'static str },
    #[error("{what} is too long (at most {max} characters)")]
    TooLong { what: &'static str, max: usize },
}

#[derive(Clone, Debug)]
pub struct Urls {
    app: Url,
    api: Url,
}

/// Tokens and ids we put in URLs are opaque, URL-safe strings; anything else is a bug upstream.
fn check_token(what: &'static str, value: &str) -> Result<(), UrlError> {
    const MAX: usize = 256;
    if value.is_empty() {
        return Err(UrlError::Empty { what });
    }
    if value.len() > MAX {
        return Err(UrlError::TooLong { what, max: MAX });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(UrlError::BadCharacters { what });
    }
    Ok(())
}

impl Urls {
    pub fn new(app: Url, api: Url) -> Urls {
        Urls { app, api }
    }

    fn join(base: &Url, path: &str, query: Option<(&str, &str)>) -> String {
        let mut url = base.clone();
        let prefix = base.path().trim_end_matches('/');
        url.set_path(&format!("{prefix}{path}"));
        if let Some((k, v)) = query {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.to_string()
    }

    /// `<app>/reset-password?token=...`
    pub fn password_reset(&self, token: &str) -> Result<String, UrlError> {
        check_token("password reset token", token)?;
        Ok(Self::join(
            &self.app,
            "/reset-password",
            Some(("token", token)),
        ))
    }

    /// `<app>/invite/accept?token=...` (the web app's acceptance page).
    pub fn invitation_acceptance(&self, token: &str) -> Result<String, UrlError> {
        check_token("invitation token", token)?;
        Ok(Self::join(
            &self.app,
            "/invite/accept",
            Some(("token", token)),
        ))
    }

    /// `<app>/auth/<provider>/callback`
    pub fn oauth_callback(&self, provider: OAuthProvider) -> String {
        Self::join(
            &self.app,
            &format!("/auth/{}/callback", provider.as_str()),
            None,
        )
    }

    /// `<api>/api/storage/<storage id>`
    pub fn file_download(&self, storage_id: &str) -> Result<String, UrlError> {
        check_token("storage id", storage_id)?;
        Ok(Self::join(
            &self.api,
            &format!("/api/storage/{storage_id}"),
            None,
        ))
    }

    pub fn app_base(&self) -> &Url {
        &self.app
    }
    pub fn api_base(&self) -> &Url {
        &self.api
    }
}
