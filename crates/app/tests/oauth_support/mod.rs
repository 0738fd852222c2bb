//! A fake GitHub and Google (the real endpoint shapes, PKCE S256 checked) and the server started
//! with the OAuth settings pointed at it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::Place;

pub const GITHUB_ID: &str = "gh-client";
pub const GITHUB_SECRET: &str = "gh-secret-value";
pub const GOOGLE_ID: &str = "google-client";
pub const GOOGLE_SECRET: &str = "google-secret-value";
pub const SECRET_KEY: &str = "test-secret-key-0123456789abcdef0123";

/// Someone signed in at the provider.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub login: String,
    pub name: String,
    pub email: String,
    pub verified: bool,
    /// Another address on the account (GitHub lists it; not primary).
    pub other_verified_email: Option<String>,
}

impl Person {
    pub fn new(id: &str, name: &str, email: &str) -> Person {
        Person {
            id: id.into(),
            login: name.to_lowercase().replace(' ', "-"),
            name: name.into(),
            email: email.into(),
            verified: true,
            other_verified_email: None,
        }
    }
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    person: Person,
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Person>,
    token_requests: usize,
    profile_status: Option<u16>,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

fn param(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/login/oauth/access_token", post(github_token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .route("/token", post(google_token))
            .route("/v1/userinfo", get(google_userinfo))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeProvider { url, inner }
    }

    /// What the provider does when `person` approves the authorize URL: remembers the PKCE
    /// challenge and hands back a code (as the redirect to the callback would).
    pub fn approve(&self, authorize_url: &str, person: &Person) -> String {
        let url = url::Url::parse(authorize_url).unwrap();
        assert_eq!(param(&url, "code_challenge_method"), "S256", "{url}");
        assert_eq!(param(&url, "response_type"), "code", "{url}");
        let code = hex::encode(rand::random::<[u8; 10]>());
        self.inner.lock().unwrap().codes.insert(
            code.clone(),
            Grant {
                client_id: param(&url, "client_id"),
                redirect_uri: param(&url, "redirect_uri"),
                challenge: param(&url, "code_challenge"),
                person: person.clone(),
            },
        );
        code
    }

    pub fn token_requests(&self) -> usize {
        self.inner.lock().unwrap().token_requests
    }

    /// Makes the profile endpoints answer with `status` (for outage tests).
    pub fn fail_profiles_with(&self, status: Option<u16>) {
        self.inner.lock().unwrap().profile_status = status;
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

/// Checks a token request the way a provider does; `Err` holds the OAuth error and description.
fn redeem(
    inner: &mut Inner,
    form: &HashMap<String, String>,
    client: (&str, &str),
) -> Result<String, (&'static str, String)> {
    inner.token_requests += 1;
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    if (field("client_id").as_str(), field("client_secret").as_str()) != client {
        return Err((
            "invalid_client",
            "The client credentials are invalid.".into(),
        ));
    }
    // Codes are single use, whatever happens next.
    let Some(grant) = inner.codes.remove(&field("code")) else {
        return Err((
            "bad_verification_code",
            "The code passed is incorrect or expired.".into(),
        ));
    };
    if grant.client_id != client.0 || grant.redirect_uri != field("redirect_uri") {
        return Err((
            "redirect_uri_mismatch",
            "The redirect_uri does not match.".into(),
        ));
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes()));
    if challenge != grant.challenge {
        return Err((
            "invalid_grant",
            "code_verifier does not match the challenge.".into(),
        ));
    }
    let token = hex::encode(rand::random::<[u8; 12]>());
    inner.tokens.insert(token.clone(), grant.person);
    Ok(token)
}

async fn github_token(
    State(inner): Shared,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let mut inner = inner.lock().unwrap();
    // GitHub answers refusals with HTTP 200 and an `error` field.
    Json(
        match redeem(&mut inner, &form, (GITHUB_ID, GITHUB_SECRET)) {
            Ok(token) => {
                json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})
            }
            Err((error, description)) => json!({"error": error, "error_description": description}),
        },
    )
}

async fn google_token(
    State(inner): Shared,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let mut inner = inner.lock().unwrap();
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        );
    }
    match redeem(&mut inner, &form, (GOOGLE_ID, GOOGLE_SECRET)) {
        Ok(token) => (
            StatusCode::OK,
            Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3599})),
        ),
        Err((error, description)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": description})),
        ),
    }
}

fn person_for(inner: &Inner, headers: &HeaderMap) -> Result<Person, (StatusCode, Json<Value>)> {
    if let Some(status) = inner.profile_status {
        return Err((
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"message": "unavailable"})),
        ));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    inner.tokens.get(token).cloned().ok_or((
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials"})),
    ))
}

async fn github_user(
    State(inner): Shared,
    headers: HeaderMap,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let inner = inner.lock().unwrap();
    if headers.get("user-agent").is_none() {
        return Err((
            StatusCode::FORBIDDEN,
            Json(json!({"message": "User-Agent required"})),
        ));
    }
    let p = person_for(&inner, &headers)?;
    Ok(Json(json!({
        "id": p.id.parse::<u64>().unwrap(),
        "login": p.login,
        "name": p.name,
        "avatar_url": format!("https://avatars.example.org/{}", p.id),
        // The public email, verified or not: never to be trusted for linking.
        "email": p.email,
    })))
}

async fn github_emails(
    State(inner): Shared,
    headers: HeaderMap,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let inner = inner.lock().unwrap();
    let p = person_for(&inner, &headers)?;
    let mut emails = vec![
        json!({"email": p.email, "primary": true, "verified": p.verified, "visibility": "public"}),
    ];
    if let Some(other) = &p.other_verified_email {
        emails
            .push(json!({"email": other, "primary": false, "verified": true, "visibility": null}));
    }
    Ok(Json(Value::Array(emails)))
}

async fn google_userinfo(
    State(inner): Shared,
    headers: HeaderMap,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let inner = inner.lock().unwrap();
    let p = person_for(&inner, &headers)?;
    Ok(Json(json!({
        "sub": p.id,
        "email": p.email,
        "email_verified": p.verified,
        "name": p.name,
        "picture": format!("https://pictures.example.org/{}", p.id),
    })))
}

/// The real server, its OAuth settings read from the environment as in production, pointed at the
/// fake provider (or with no provider configured).
pub struct OAuthApp {
    pub url: String,
    pub http: reqwest::Client,
    pub store: store::Store,
    pub urls: config::Urls,
    running: Option<server::Running>,
}

impl OAuthApp {
    pub async fn start(place: &Place, fake: Option<&FakeProvider>) -> OAuthApp {
        let mut env: HashMap<&str, String> = HashMap::new();
        env.insert("SUPPORTSIGNAL_ENV", "test".into());
        env.insert("SUPPORTSIGNAL_SECRET_KEY", SECRET_KEY.into());
        if let Some(fake) = fake {
            for (k, v) in [
                ("GITHUB_CLIENT_ID", GITHUB_ID),
                ("GITHUB_CLIENT_SECRET", GITHUB_SECRET),
                ("GOOGLE_CLIENT_ID", GOOGLE_ID),
                ("GOOGLE_CLIENT_SECRET", GOOGLE_SECRET),
            ] {
                env.insert(k, v.into());
            }
            for k in [
                "GITHUB_OAUTH_BASE_URL",
                "GITHUB_API_BASE_URL",
                "GOOGLE_OAUTH_BASE_URL",
                "GOOGLE_TOKEN_BASE_URL",
                "GOOGLE_API_BASE_URL",
            ] {
                env.insert(k, fake.url.clone());
            }
        }
        let overrides = config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(place.dir.path().join("data")),
            database_url: place.pg_url.clone(),
        };
        let config = config::Config::from_env(overrides, |k| env.get(k).cloned()).unwrap();
        let store = server::open_store(&config, app::schema()).await.unwrap();
        let urls = config.urls();
        // Until lib.rs passes the OAuth settings, build the registry this module's tests need.
        let mut registry = functions::Registry::new();
        app::auth::register(&mut registry, &urls);
        app::audit::register(&mut registry);
        app::oauth::register_with(&mut registry, &urls, &config.oauth);
        let running = server::start(config, store.clone(), registry, std::future::pending())
            .await
            .unwrap();
        OAuthApp {
            url: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
            store,
            urls,
            running: Some(running),
        }
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().stop().await.unwrap();
    }

    pub async fn call(&self, kind: &str, path: &str, args: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/api/{kind}", self.url))
            .json(&json!({"path": path, "args": [args], "format": "json"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn ok(&self, kind: &str, path: &str, args: Value) -> Value {
        let body = self.call(kind, path, args).await;
        assert_eq!(body["status"], "success", "{kind} {path}: {body}");
        body["value"].clone()
    }

    /// The `errorData` of a call that must fail.
    pub async fn error(&self, kind: &str, path: &str, args: Value) -> Value {
        let body = self.call(kind, path, args).await;
        assert_eq!(body["status"], "error", "{kind} {path} should fail: {body}");
        body["errorData"].clone()
    }
}
