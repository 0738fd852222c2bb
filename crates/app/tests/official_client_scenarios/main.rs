//! Acceptance scenarios 1, 2, 3, 10 (users and participants), 14, 15 and 16 of the reference (§10)
//! through the official npm client: every call a user's browser would make goes through
//! `ConvexHttpClient` in `npm/scenario.mjs`, one step (several calls) per Node run. The Rust side
//! starts the real server, plays the parts no client plays (the operator creating the first system
//! administrator, the user's inbox, time passing, the OAuth provider) and checks what a user would
//! notice.

#[path = "../harness/mod.rs"]
mod harness;
mod later;
#[path = "../node_client/mod.rs"]
mod node_client;
#[path = "../oauth_support/mod.rs"]
mod oauth_support;
#[path = "../seed/mod.rs"]
mod seed;

use harness::{backends, App, Db, Place};
use node_client::ensure_client_installed;
use oauth_support::{FakeProvider, Person};
use seed::{links, now_ms, rows, token_of, PW};
use serde_json::{json, Value as Json};

const ROOT: &str = "root@platform.org";
const RESET_LINK: &str = "/reset-password?token=";
const INVITE_LINK: &str = "/invite/accept?token=";
const HOUR_MS: f64 = 3600e3;
const DAY_MS: f64 = 24.0 * HOUR_MS;
/// A well-formed Id that names no document.
const MISSING_ID: &str = "j570pc2nfafw9t8e6dc7v8p7xg8kdsw0";

/// The real server with every module, its GitHub sign-in pointed at a fake provider.
struct Scenario {
    app: App,
    fake: FakeProvider,
    db: Db,
    // Dropped last: the database outlives the server.
    _place: Place,
}

impl Scenario {
    async fn start(db: Db) -> Scenario {
        tokio::task::spawn_blocking(ensure_client_installed)
            .await
            .unwrap();
        let place = Place::new(db).await;
        let fake = FakeProvider::start().await;
        let env = [
            ("SUPPORTSIGNAL_SECRET_KEY", oauth_support::SECRET_KEY),
            ("GITHUB_CLIENT_ID", oauth_support::GITHUB_ID),
            ("GITHUB_CLIENT_SECRET", oauth_support::GITHUB_SECRET),
            ("GITHUB_OAUTH_BASE_URL", fake.url.as_str()),
            ("GITHUB_API_BASE_URL", fake.url.as_str()),
        ];
        let app = App::start_with(&place, &env).await;
        Scenario {
            app,
            fake,
            db,
            _place: place,
        }
    }

    async fn stop(self) {
        self.app.stop().await;
    }

    /// Runs one step of `npm/scenario.mjs` against the server; its printed JSON.
    async fn step(&self, step: &str, input: Json) -> Json {
        let label = format!("{:?}", self.db);
        node_client::step("scenario.mjs", &self.app.url, step, input, label).await
    }

    /// The operator creates the first system administrator (`supportsignal admin ...`).
    async fn system_admin(&self, email: &str) {
        let secret = secrecy::SecretString::from(PW.to_string());
        app::users::create_system_admin(&self.app.store, email, "Root", &secret)
            .await
            .unwrap();
    }

    /// The one link with `marker` in `to`'s inbox.
    async fn only_link(&self, to: &str, marker: &str) -> String {
        let found = links(&self.app, to, marker).await;
        assert_eq!(
            found.len(),
            1,
            "{:?}: one email to {to}: {found:?}",
            self.db
        );
        found[0].clone()
    }

    /// Scenario 1 for each `(company name, admin email)`: the system admin creates the companies,
    /// each admin follows the emailed link to set a password and signs in.
    async fn companies(&self, wanted: &[(&str, &str)]) -> Companies {
        self.system_admin(ROOT).await;
        let companies: Vec<Json> = wanted
            .iter()
            .map(|(name, admin)| {
                json!({"name": name, "contactEmail": format!("office@{}", domain(admin)),
                       "adminEmail": admin, "adminName": "Casey Admin"})
            })
            .collect();
        let created = self
            .step(
                "createCompanies",
                json!({"root": {"email": ROOT, "password": PW}, "companies": companies}),
            )
            .await;
        // Each link lasts an hour (read before they are used up).
        let reset_expiries = rows(&self.app, "password_reset_tokens")
            .await
            .iter()
            .map(|r| r.get("expires_at").unwrap().as_f64().unwrap())
            .collect();
        let mut accounts = Vec::new();
        for (_, admin) in wanted {
            let email = admin.to_lowercase();
            let link = self.only_link(&email, RESET_LINK).await;
            assert!(
                link.starts_with("http://localhost:3200/reset-password?token="),
                "{link}"
            );
            accounts.push(json!({"email": admin, "token": token_of(&link), "password": PW}));
        }
        let activated = self.step("activate", json!({"accounts": accounts})).await;
        let list = created["created"]
            .as_array()
            .unwrap()
            .iter()
            .zip(activated["accounts"].as_array().unwrap())
            .map(|(c, a)| Company {
                id: text(&c["companyId"]),
                admin: text(&a["login"]["sessionToken"]),
                site: text(&a["sites"][0]["_id"]),
            })
            .collect();
        Companies {
            root: text(&created["rootToken"]),
            list,
            created,
            activated,
            reset_expiries,
        }
    }

    /// Scenario 2's happy path: `email` is invited into `company` and accepts; their session token.
    async fn worker(&self, company: &Company, email: &str) -> String {
        self.step(
            "invite",
            json!({"sessionToken": company.admin, "companyId": company.id,
                   "emails": [email], "role": "frontline_worker"}),
        )
        .await;
        let token = token_of(&self.only_link(email, INVITE_LINK).await);
        let accepted = self
            .step(
                "accept",
                json!({"sessionToken": company.admin, "companyId": company.id,
                       "accept": token, "password": PW, "name": "Jo Worker"}),
            )
            .await;
        text(&accepted["joined"]["sessionToken"])
    }
}

struct Company {
    id: String,
    /// The company admin's session token.
    admin: String,
    /// The "Primary" site.
    site: String,
}

struct Companies {
    /// The system admin's session token.
    root: String,
    list: Vec<Company>,
    created: Json,
    activated: Json,
    /// When each set-password link lapses (ms).
    reset_expiries: Vec<f64>,
}

fn domain(email: &str) -> &str {
    email.split('@').nth(1).unwrap()
}

fn text(v: &Json) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// The failure of a call made with `attempt` (panics on success).
fn failure(v: &Json) -> &Json {
    let error = &v["$error"];
    assert!(error.is_object(), "expected a failure, got {v}");
    error
}

fn code(v: &Json) -> &str {
    failure(v)["code"].as_str().unwrap_or("<no code>")
}

fn field(v: &Json) -> &str {
    failure(v)["field"].as_str().unwrap_or("<no field>")
}

/// The data of a failed sign-in call, which is its message (the web app searches it as text).
fn text_data(v: &Json) -> &str {
    let error = failure(v);
    assert_eq!(error["isConvexError"], true, "{v}");
    error["text"].as_str().unwrap_or("<no text data>")
}

fn message(v: &Json) -> &str {
    failure(v)["message"].as_str().unwrap_or_default()
}

fn succeeded(v: &Json) -> &Json {
    assert!(v.get("$error").is_none(), "expected success, got {v}");
    v
}

/// When the session of `user_id` ends (ms), read from the store.
async fn session_expiry(app: &App, user_id: &str) -> f64 {
    let sessions = rows(app, "sessions").await;
    let theirs = sessions
        .iter()
        .find(|s| s.get("user_id").and_then(values::Value::as_str) == Some(user_id))
        .unwrap_or_else(|| panic!("a session for {user_id}"));
    theirs.get("expires_at").unwrap().as_f64().unwrap()
}

fn sarah(site: &str) -> Json {
    json!({
        "first_name": "Sarah",
        "last_name": "Williams",
        "date_of_birth": "1985-04-12",
        "ndis_number": "431234567",
        "site_id": site,
        "support_level": "high",
        "status": "active",
    })
}

#[tokio::test]
async fn scenario_1_a_company_is_created_and_its_admin_sets_a_password_and_signs_in() {
    for db in backends() {
        let s = Scenario::start(db).await;
        let c = s.companies(&[("ABC Care", "Admin@ABC.org")]).await;
        let created = &c.created["created"][0];
        assert_eq!(created["success"], true, "{created}");
        assert_eq!(created["slug"], "abc-care");
        assert_eq!(created["adminEmail"], "admin@abc.org");
        assert!(
            created.get("resetToken").is_none(),
            "the set-password token goes only to the inbox: {created}"
        );
        // Before following the link the admin has no password to sign in with.
        assert_eq!(failure(&c.created["noPassword"])["isConvexError"], true);

        assert_eq!(c.reset_expiries.len(), 1);
        assert!(
            (c.reset_expiries[0] - now_ms() - HOUR_MS).abs() < 60e3,
            "1 h link"
        );

        let admin = &c.activated["accounts"][0];
        assert!(
            text_data(&admin["weak"]).starts_with("Password does not meet requirements"),
            "weak password refused: {}",
            admin["weak"]
        );
        assert_eq!(admin["reset"]["success"], true);
        assert_eq!(admin["login"]["user"]["role"], "company_admin");
        assert_eq!(admin["me"]["email"], "admin@abc.org");
        assert_eq!(admin["me"]["company_id"], c.list[0].id.as_str());
        assert_eq!(admin["company"]["name"], "ABC Care");
        assert_eq!(admin["company"]["status"], "active");
        let sites = admin["sites"].as_array().unwrap();
        assert_eq!(sites.len(), 1, "{sites:?}");
        assert_eq!(sites[0]["name"], "Primary");
        assert_eq!(sites[0]["company_id"], c.list[0].id.as_str());
        // The link is single use.
        assert_eq!(rows(&s.app, "password_reset_tokens").await.len(), 0);
        s.stop().await;
    }
}

#[tokio::test]
async fn scenario_2_an_invited_worker_joins_with_a_30_day_session() {
    for db in backends() {
        let s = Scenario::start(db).await;
        let c = s.companies(&[("ABC Care", "admin@abc.org")]).await;
        let abc = &c.list[0];
        let emails = ["wendy@abc.org", "rita@abc.org", "late@abc.org"];
        let invited = s
            .step(
                "invite",
                json!({"sessionToken": abc.admin, "companyId": abc.id,
                       "emails": emails, "role": "frontline_worker"}),
            )
            .await;
        let sent = &invited["sent"][0];
        assert_eq!(sent["success"], true, "{sent}");
        let expires = sent["expiresAt"].as_f64().unwrap();
        assert!((expires - now_ms() - 7.0 * DAY_MS).abs() < 60e3, "7 days");
        assert_eq!(code(&invited["duplicate"]), "CONFLICT");
        assert_eq!(field(&invited["duplicate"]), "email");
        assert_eq!(invited["pending"].as_array().unwrap().len(), 3);

        let mut tokens = Vec::new();
        for email in emails {
            let link = s.only_link(email, INVITE_LINK).await;
            assert!(
                link.starts_with("http://localhost:3200/invite/accept?token="),
                "{link}"
            );
            tokens.push(token_of(&link));
        }
        // A week passes for Late's invitation.
        s.app
            .store
            .mutate(|txn| {
                for row in txn.query("user_invitations")?.collect()? {
                    if row.get("email").and_then(values::Value::as_str) == Some("late@abc.org") {
                        let mut patch = store::Patch::new();
                        patch.insert("expires_at".into(), Some(values::Value::from(1.0)));
                        txn.patch(&row.id, patch)?;
                    }
                }
                Ok::<_, store::StoreError>(())
            })
            .await
            .unwrap();

        let out = s
            .step(
                "accept",
                json!({"sessionToken": abc.admin, "companyId": abc.id, "accept": tokens[0],
                       "revoke": {"id": invited["sent"][1]["invitationId"], "token": tokens[1]},
                       "lapsed": tokens[2], "password": PW, "name": "Wendy Worker"}),
            )
            .await;
        assert_eq!(field(&out["weak"]), "password", "weak password refused");
        assert_eq!(out["joined"]["success"], true);
        assert_eq!(out["me"]["email"], "wendy@abc.org");
        assert_eq!(out["me"]["role"], "frontline_worker");
        assert_eq!(out["me"]["company_id"], abc.id.as_str(), "joined ABC Care");
        let user_id = text(&out["me"]["_id"]);
        let session_ends = session_expiry(&s.app, &user_id).await;
        assert!(
            (session_ends - now_ms() - 30.0 * DAY_MS).abs() < 60e3,
            "30-day session"
        );
        assert_eq!(
            message(&out["again"]),
            "This invitation has already been accepted"
        );
        assert_eq!(
            message(&out["revoked"]),
            "This invitation has already been revoked"
        );
        assert_eq!(message(&out["expired"]), "This invitation has expired");
        assert_eq!(out["pending"], json!([]), "nothing left pending");
        succeeded(&out["signIn"]);
        s.stop().await;
    }
}

#[tokio::test]
async fn scenario_3_a_participant_is_added_and_bad_ndis_numbers_are_refused() {
    for db in backends() {
        let s = Scenario::start(db).await;
        let c = s.companies(&[("ABC Care", "admin@abc.org")]).await;
        let abc = &c.list[0];
        let out = s
            .step(
                "participants",
                json!({"sessionToken": abc.admin, "participant": sarah(&abc.site)}),
            )
            .await;
        assert_eq!(out["created"]["success"], true);
        let p = &out["got"]["participant"];
        assert_eq!(p["_id"], out["created"]["participantId"]);
        assert_eq!(
            (&p["first_name"], &p["last_name"]),
            (&json!("Sarah"), &json!("Williams"))
        );
        assert_eq!(p["ndis_number"], "431234567");
        assert_eq!(p["site_id"], abc.site.as_str(), "at the Primary site");
        assert_eq!(p["support_level"], "high");
        assert_eq!(p["company_id"], abc.id.as_str());
        assert_eq!(out["got"]["company"]["name"], "ABC Care");

        assert_eq!(code(&out["duplicate"]), "CONFLICT");
        assert_eq!(field(&out["duplicate"]), "ndis_number");
        assert!(message(&out["duplicate"])
            .starts_with("A participant with this NDIS number already exists"));
        assert_eq!(code(&out["eightDigits"]), "VALIDATION");
        assert_eq!(field(&out["eightDigits"]), "ndis_number");
        assert_eq!(
            message(&out["eightDigits"]),
            "NDIS number must be exactly 9 digits"
        );
        assert_eq!(out["listed"]["totalCount"], 1.0, "only Sarah was added");
        s.stop().await;
    }
}
