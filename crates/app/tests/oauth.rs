//! GitHub and Google sign-in through the real HTTP API against a fake provider: new users, linking
//! by verified email, refusals (unverified email, bad state, provider errors), and configuration.

mod harness;
mod oauth_support;

use harness::{backends, Place};
use oauth_support::{FakeProvider, OAuthApp, Person, SECRET_KEY};
use serde_json::{json, Value};
use store::Order;
use values::Object;

const DAY_MS: f64 = 24.0 * 3600.0 * 1000.0;

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The whole browser round trip: fetch the URL, approve at the provider, come back with the code.
async fn sign_in(app: &OAuthApp, fake: &FakeProvider, provider: &str, who: &Person) -> Value {
    let (url_fn, login_fn) = paths(provider);
    let start = app.ok("query", url_fn, json!({})).await;
    let code = fake.approve(start["url"].as_str().unwrap(), who);
    app.call(
        "action",
        login_fn,
        json!({"code": code, "state": start["state"]}),
    )
    .await
}

fn paths(provider: &str) -> (&'static str, &'static str) {
    match provider {
        "github" => ("auth:getGitHubOAuthUrl", "auth:githubOAuthLogin"),
        _ => ("auth:getGoogleOAuthUrl", "auth:googleOAuthLogin"),
    }
}

async fn audit_events(app: &OAuthApp) -> Vec<(String, Object)> {
    let (rows, _, _) = app
        .store
        .query(|txn| {
            txn.query("audit_log")?
                .with_index("by_time", |q| q)?
                .order(Order::Asc)
                .collect()
        })
        .await
        .unwrap();
    rows.into_iter()
        .map(|d| {
            let event = d.get("event").and_then(|v| v.as_str()).unwrap().to_string();
            let details = match d.get("details") {
                Some(values::Value::Object(o)) => o.clone(),
                _ => Object::new(),
            };
            (event, details)
        })
        .collect()
}

async fn user_count(app: &OAuthApp, email: &str) -> usize {
    let email = email.to_string();
    let (n, _, _) = app
        .store
        .query(move |txn| {
            Ok::<_, store::StoreError>(
                txn.query("users")?
                    .with_index("by_email", |q| q.eq("email", email.as_str()))?
                    .collect()?
                    .len(),
            )
        })
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn github_sign_in_creates_a_companyless_frontline_worker_with_a_30_day_session() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = FakeProvider::start().await;
        let app = OAuthApp::start(&place, Some(&fake)).await;

        let start = app.ok("query", "auth:getGitHubOAuthUrl", json!({})).await;
        let url = start["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/login/oauth/authorize?", fake.url)),
            "{url}"
        );
        assert_eq!(query_param(url, "client_id"), oauth_support::GITHUB_ID);
        assert_eq!(
            query_param(url, "redirect_uri"),
            "http://localhost:3200/auth/github/callback"
        );
        assert_eq!(query_param(url, "state"), start["state"].as_str().unwrap());
        assert!(!url.contains(oauth_support::GITHUB_SECRET), "{url}");
        // The web client adds its session token to calls; it is accepted and ignored.
        app.ok(
            "query",
            "auth:getGitHubOAuthUrl",
            json!({"sessionToken": "x"}),
        )
        .await;

        let ada = Person::new("4242", "Ada Lovelace", "Ada@Example.org");
        let code = fake.approve(url, &ada);
        let login = app
            .ok(
                "action",
                "auth:githubOAuthLogin",
                json!({"code": code, "state": start["state"], "sessionToken": ""}),
            )
            .await;
        let user = &login["user"];
        assert_eq!(user["email"], "ada@example.org", "{login}");
        assert_eq!(user["name"], "Ada Lovelace");
        assert_eq!(user["role"], "frontline_worker");
        assert_eq!(
            user["profile_image_url"],
            "https://avatars.example.org/4242"
        );
        let token = login["sessionToken"].as_str().unwrap();
        assert_eq!(token.len(), 64);

        let me = app
            .ok("query", "users:getCurrent", json!({"sessionToken": token}))
            .await;
        assert_eq!(me["_id"], user["id"]);
        assert!(me.get("company_id").is_none(), "no company: {me}");

        // A 30-day session, stored only as a hash.
        let user_id = user["id"].as_str().unwrap().to_string();
        let (session, _, _) = app
            .store
            .query(move |txn| {
                txn.query("sessions")?
                    .with_index("by_user", |q| q.eq("user_id", user_id.as_str()))?
                    .first()
            })
            .await
            .unwrap();
        let session = session.unwrap();
        let expires = session.get("expires_at").and_then(|v| v.as_f64()).unwrap();
        assert!((expires - now_ms() - 30.0 * DAY_MS).abs() < 60e3, "30 days");
        assert!(format!("{:?}", session.fields).find(token).is_none());

        // Signing in again finds the linked account, even after the address changed at GitHub.
        let moved = Person {
            email: "ada@newmail.example.org".into(),
            ..ada.clone()
        };
        let again = sign_in(&app, &fake, "github", &moved).await;
        assert_eq!(again["value"]["user"]["id"], user["id"], "{again}");
        assert_ne!(again["value"]["sessionToken"], login["sessionToken"]);
        assert_eq!(user_count(&app, "ada@newmail.example.org").await, 0);

        let events = audit_events(&app).await;
        let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(
            names,
            ["user_registered", "sign_in", "sign_in"],
            "{events:?}"
        );
        let (_, details) = &events[0];
        assert_eq!(
            details.get("provider").and_then(|v| v.as_str()),
            Some("github")
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn google_sign_in_links_an_existing_user_by_verified_email() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = FakeProvider::start().await;
        let app = OAuthApp::start(&place, Some(&fake)).await;
        let password = "Str0ng!Pass";
        let existing = app
            .ok(
                "mutation",
                "auth:registerUser",
                json!({"name": "Lee Lead", "email": "lee@example.org", "password": password}),
            )
            .await["userId"]
            .clone();

        let start = app.ok("query", "auth:getGoogleOAuthUrl", json!({})).await;
        let url = start["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/o/oauth2/v2/auth?", fake.url)),
            "{url}"
        );
        assert_eq!(
            query_param(url, "redirect_uri"),
            "http://localhost:3200/auth/google/callback"
        );
        assert!(query_param(url, "scope").contains("email"));

        // Google reports the address in its own case; it still matches.
        let lee = Person::new("109876543210", "Lee from Google", "LEE@example.org");
        let code = fake.approve(url, &lee);
        let login = app
            .ok(
                "action",
                "auth:googleOAuthLogin",
                json!({"code": code, "state": start["state"]}),
            )
            .await;
        assert_eq!(
            login["user"]["id"], existing,
            "linked, not duplicated: {login}"
        );
        assert_eq!(
            login["user"]["name"], "Lee Lead",
            "the account keeps its own name"
        );
        assert_eq!(login["user"]["role"], "frontline_worker");
        assert_eq!(
            login["user"]["profile_image_url"],
            "https://pictures.example.org/109876543210"
        );
        assert_eq!(user_count(&app, "lee@example.org").await, 1);
        let me = app
            .ok(
                "query",
                "auth:getCurrentUser",
                json!({"sessionToken": login["sessionToken"]}),
            )
            .await;
        assert_eq!(me["email"], "lee@example.org");
        // The password still works: linking adds a way in, it takes none away.
        let by_password = app
            .ok(
                "mutation",
                "auth:loginUser",
                json!({"email": "lee@example.org", "password": password}),
            )
            .await;
        assert_eq!(by_password["user"]["id"], existing);

        let events = audit_events(&app).await;
        let linked = events
            .iter()
            .find(|(e, _)| e == "oauth_account_linked")
            .expect("linking is audited");
        assert_eq!(
            linked.1.get("provider").and_then(|v| v.as_str()),
            Some("google")
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn unverified_email_is_refused_and_creates_nobody() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = FakeProvider::start().await;
        let app = OAuthApp::start(&place, Some(&fake)).await;
        // A registered user whose address someone claims at GitHub without verifying it.
        app.ok(
            "mutation",
            "auth:registerUser",
            json!({"name": "Victim", "email": "victim@example.org", "password": "Str0ng!Pass"}),
        )
        .await;

        let mut claimant = Person::new("77", "Claimant", "victim@example.org");
        claimant.verified = false;
        // A verified address that is not the primary one does not count either.
        claimant.other_verified_email = Some("claimant@example.org".into());
        for provider in ["github", "google"] {
            let body = sign_in(&app, &fake, provider, &claimant).await;
            assert_eq!(body["status"], "error", "{body}");
            // Sign-in errors carry the message as their data (the web app searches it as text).
            assert_eq!(body["errorData"], body["errorMessage"], "{body}");
            let message = body["errorMessage"].as_str().unwrap();
            let label = if provider == "github" {
                "GitHub"
            } else {
                "Google"
            };
            assert!(
                message.starts_with(&format!("{label} OAuth login failed: "))
                    && message.contains("verified"),
                "{message}"
            );
        }
        assert_eq!(user_count(&app, "victim@example.org").await, 1);
        assert_eq!(user_count(&app, "claimant@example.org").await, 0);
        let events = audit_events(&app).await;
        assert!(
            events
                .iter()
                .all(|(e, _)| e != "sign_in" && e != "oauth_account_linked"),
            "{events:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn missing_tampered_expired_reused_or_foreign_state_is_refused() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = FakeProvider::start().await;
        let app = OAuthApp::start(&place, Some(&fake)).await;
        let sam = Person::new("900", "Sam", "sam@example.org");
        let start = app.ok("query", "auth:getGitHubOAuthUrl", json!({})).await;
        let url = start["url"].as_str().unwrap();
        let state = start["state"].as_str().unwrap().to_string();

        // The data of a sign-in error is its message, which names what was wrong.
        let refused = |phrase: &'static str, args: Value, path: &'static str| {
            let app = &app;
            async move {
                let e = app.error("action", path, args).await;
                let message = e.as_str().unwrap_or_else(|| panic!("{e}")).to_string();
                assert!(message.contains(phrase), "{message}");
                message
            }
        };
        let login = "auth:githubOAuthLogin";
        let message = refused("sign-in state", json!({"code": "abc"}), login).await;
        assert!(
            message.starts_with("GitHub OAuth login failed: "),
            "{message}"
        );
        refused(
            "authorization code",
            json!({"code": " ", "state": state}),
            login,
        )
        .await;

        // One character of the signature changed (not the last, whose low bits are padding).
        let mut tampered = state.clone().into_bytes();
        let at = tampered.len() - 5;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        refused(
            "start sign-in again",
            json!({"code": "abc", "state": tampered}),
            login,
        )
        .await;
        refused(
            "start sign-in again",
            json!({"code": "abc", "state": "not-a-state"}),
            login,
        )
        .await;
        // A GitHub state is no good for Google.
        refused(
            "start sign-in again",
            json!({"code": "abc", "state": state}),
            "auth:googleOAuthLogin",
        )
        .await;
        // Genuinely signed but past its time.
        let old = now_ms() - app::oauth::state::STATE_TTL_MS - 1000.0;
        let stale =
            app::oauth::state::issue(SECRET_KEY.as_bytes(), config::OAuthProvider::GitHub, old);
        let message = refused(
            "start sign-in again",
            json!({"code": "abc", "state": stale.state}),
            login,
        )
        .await;
        assert!(message.contains("expired"), "{message}");
        assert_eq!(
            fake.token_requests(),
            0,
            "refused before asking the provider"
        );

        // The state works once; a second sign-in with it is refused even with a fresh code.
        let code = fake.approve(url, &sam);
        app.ok("action", login, json!({"code": code, "state": state}))
            .await;
        let code = fake.approve(url, &sam);
        let message = refused(
            "start sign-in again",
            json!({"code": code, "state": state}),
            login,
        )
        .await;
        assert!(message.contains("already"), "{message}");
        app.stop().await;
    }
}

#[tokio::test]
async fn provider_errors_are_surfaced_clearly() {
    for db in backends() {
        let place = Place::new(db).await;
        let fake = FakeProvider::start().await;
        let app = OAuthApp::start(&place, Some(&fake)).await;
        let kim = Person::new("31337", "Kim", "kim@example.org");

        for provider in ["github", "google"] {
            let (url_fn, login_fn) = paths(provider);
            let label = if provider == "github" {
                "GitHub"
            } else {
                "Google"
            };
            // A code the provider never issued.
            let start = app.ok("query", url_fn, json!({})).await;
            let body = app
                .call(
                    "action",
                    login_fn,
                    json!({"code": "forged", "state": start["state"]}),
                )
                .await;
            assert_eq!(body["errorData"], body["errorMessage"], "{body}");
            assert_eq!(
                body["errorMessage"],
                format!("{label} OAuth login failed: The code passed is incorrect or expired.")
            );

            // A code issued for another sign-in attempt: its PKCE challenge is not this state's.
            let other = app.ok("query", url_fn, json!({})).await;
            let code = fake.approve(other["url"].as_str().unwrap(), &kim);
            let body = app
                .call(
                    "action",
                    login_fn,
                    json!({"code": code, "state": start["state"]}),
                )
                .await;
            assert_eq!(body["errorData"], body["errorMessage"], "{body}");
            assert!(
                body["errorMessage"]
                    .as_str()
                    .unwrap()
                    .contains("code_verifier does not match"),
                "{body}"
            );

            // The provider's API is down.
            fake.fail_profiles_with(Some(503));
            let body = sign_in(&app, &fake, provider, &kim).await;
            fake.fail_profiles_with(None);
            assert_eq!(body["errorData"], body["errorMessage"], "{body}");
            assert_eq!(
                body["errorMessage"],
                format!(
                    "{label} OAuth login failed: {label} refused the profile request (HTTP 503)"
                )
            );
        }
        assert_eq!(user_count(&app, "kim@example.org").await, 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn unconfigured_providers_say_so() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = OAuthApp::start(&place, None).await;
        for (url_fn, login_fn, label) in [
            ("auth:getGitHubOAuthUrl", "auth:githubOAuthLogin", "GitHub"),
            ("auth:getGoogleOAuthUrl", "auth:googleOAuthLogin", "Google"),
        ] {
            let expected = format!("{label} OAuth not configured");
            let e = app.error("query", url_fn, json!({})).await;
            assert_eq!(e["message"], expected.as_str(), "{e}");
            assert_eq!(e["code"], "FORBIDDEN");
            // Sign-in errors carry the message as their data.
            let e = app
                .error("action", login_fn, json!({"code": "c", "state": "s"}))
                .await;
            assert_eq!(e, expected.as_str(), "{e}");
        }
        app.stop().await;
    }
}
