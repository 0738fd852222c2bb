//! What SupportSignal's web app calls, called as the web app calls it: the official `ConvexClient`
//! over one WebSocket (`npm/webapp.mjs`), `sessionToken` in the arguments where the app sends it.
//! Each module covers one part of `shared/reference/webapp-contract.md`; `drift` checks that every
//! path the app references is registered with the kind the app calls it as.

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../node_client/mod.rs"]
mod node_client;
#[path = "../seed/mod.rs"]
mod seed;

mod auth;
mod companies;
mod drift;
mod impersonation;
mod incidents;
mod participants;
mod prompts;
mod users;

pub use harness::backends;
use harness::{App, Db, Place};
use seed::Member;
use serde_json::{json, Value as Json};

/// The real server with every module, and the people the web app's pages are used by.
pub struct Web {
    pub app: App,
    pub db: Db,
    // Dropped last: the database outlives the server.
    _place: Place,
}

impl Web {
    pub async fn start(db: Db) -> Web {
        Web::start_with(db, &[]).await
    }

    pub async fn start_with(db: Db, env: &[(&str, &str)]) -> Web {
        tokio::task::spawn_blocking(node_client::ensure_client_installed)
            .await
            .unwrap();
        let place = Place::new(db).await;
        let app = App::start_with(&place, env).await;
        Web {
            app,
            db,
            _place: place,
        }
    }

    pub async fn stop(self) {
        self.app.stop().await;
    }

    /// Runs `calls` (`(kind, path, args)`) in order over one WebSocket client; one `Outcome` each.
    pub async fn calls(&self, calls: &[(&str, &str, Json)]) -> Vec<Outcome> {
        let list: Vec<Json> = calls
            .iter()
            .map(|(kind, path, args)| json!({"kind": kind, "path": path, "args": args}))
            .collect();
        let label = format!("{:?}", self.db);
        let out = node_client::run("webapp.mjs", &self.app.url, Json::Array(list), label).await;
        let Json::Array(items) = out else {
            panic!("webapp.mjs printed {out}");
        };
        items.into_iter().map(Outcome).collect()
    }

    /// One call; its outcome.
    pub async fn call(&self, kind: &str, path: &str, args: Json) -> Outcome {
        self.calls(&[(kind, path, args)]).await.remove(0)
    }

    pub async fn query(&self, path: &str, args: Json) -> Outcome {
        self.call("query", path, args).await
    }

    pub async fn mutation(&self, path: &str, args: Json) -> Outcome {
        self.call("mutation", path, args).await
    }

    pub async fn action(&self, path: &str, args: Json) -> Outcome {
        self.call("action", path, args).await
    }

    /// Two companies with an admin, a team lead and a frontline worker each, and a system
    /// administrator of no company. Rows are written directly (no password hashing).
    pub async fn people(&self) -> People {
        let a = seed::company(&self.app, "Harbour Care").await;
        let b = seed::company(&self.app, "Ridge Support").await;
        let app = &self.app;
        People {
            system_admin: seed::member(app, None, "root@platform.org", "system_admin").await,
            admin_a: seed::member(app, Some(&a), "admin@harbour.org", "company_admin").await,
            lead_a: seed::member(app, Some(&a), "lead@harbour.org", "team_lead").await,
            worker_a: seed::member(app, Some(&a), "worker@harbour.org", "frontline_worker").await,
            admin_b: seed::member(app, Some(&b), "admin@ridge.org", "company_admin").await,
            worker_b: seed::member(app, Some(&b), "worker@ridge.org", "frontline_worker").await,
            company_a: a,
            company_b: b,
        }
    }
}

pub struct People {
    pub company_a: String,
    pub company_b: String,
    pub system_admin: Member,
    pub admin_a: Member,
    pub lead_a: Member,
    pub worker_a: Member,
    pub admin_b: Member,
    pub worker_b: Member,
}

/// What the app's call gave back: a value, or the error its catch block sees.
#[derive(Debug, Clone)]
pub struct Outcome(pub Json);

impl Outcome {
    /// The value; panics (naming `what`) when the call failed.
    pub fn value(&self) -> &Json {
        match self.0.get("value") {
            Some(v) => v,
            None => panic!("expected a value, got {}", self.0),
        }
    }

    /// The error (`{isConvexError, data, message}`); panics when the call succeeded.
    pub fn error(&self) -> &Json {
        match self.0.get("error") {
            Some(e) => e,
            None => panic!("expected an error, got {}", self.0),
        }
    }

    /// The stable code of a ConvexError with object data.
    pub fn code(&self) -> &str {
        self.error()["data"]["code"].as_str().unwrap_or("<no code>")
    }

    /// The message the app would show (`error.message` of a ConvexError is its data's message).
    pub fn message(&self) -> String {
        let e = self.error();
        match &e["data"] {
            Json::String(s) => s.clone(),
            Json::Object(o) => o
                .get("message")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => e["message"].as_str().unwrap_or_default().to_string(),
        }
    }
}

/// The runner itself: a query with the token in its arguments, over the WebSocket, and a refusal.
#[tokio::test]
async fn calls_arrive_over_the_websocket_with_the_token_in_the_arguments() {
    for db in backends() {
        let web = Web::start(db).await;
        let people = web.people().await;
        let token = &people.worker_a.token;
        let out = web
            .calls(&[
                (
                    "query",
                    "users:getCurrentUser",
                    json!({"sessionToken": token}),
                ),
                (
                    "query",
                    "users:getCurrentUser",
                    json!({"sessionToken": "nonsense"}),
                ),
            ])
            .await;
        assert_eq!(out[0].value()["email"], "worker@harbour.org", "{db:?}");
        assert_eq!(
            out[1].value(),
            &Json::Null,
            "{db:?}: an unknown token is no user"
        );
        web.stop().await;
    }
}
