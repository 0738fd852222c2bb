//! The real server with the application's own schema and functions, on port 0 with a fresh
//! SQLite directory or (when TEST_DATABASE_URL is set) a fresh PostgreSQL database.
#![allow(dead_code)]

use std::collections::HashMap;

use serde_json::{json, Value as Json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub fn backends() -> Vec<Db> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(_) => vec![Db::Sqlite, Db::Postgres],
        Err(_) => {
            eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant skipped");
            vec![Db::Sqlite]
        }
    }
}

pub struct Place {
    pub dir: tempfile::TempDir,
    pub pg_url: Option<String>,
    pg_name: Option<String>,
}

impl Place {
    pub async fn new(db: Db) -> Place {
        let (pg_url, pg_name) = match db {
            Db::Sqlite => (None, None),
            Db::Postgres => {
                let admin = std::env::var("TEST_DATABASE_URL").unwrap();
                let name = format!("ss_app_{}", hex::encode(rand::random::<[u8; 6]>()));
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                (Some(url.to_string()), Some(name))
            }
        };
        Place {
            dir: tempfile::tempdir().unwrap(),
            pg_url,
            pg_name,
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.clone() else {
            return;
        };
        let admin = std::env::var("TEST_DATABASE_URL").unwrap();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct App {
    pub url: String,
    pub http: reqwest::Client,
    pub store: store::Store,
    running: Option<app::Running>,
}

impl App {
    pub async fn start(place: &Place) -> App {
        App::start_with(place, &[]).await
    }

    /// Starts with extra environment settings.
    pub async fn start_with(place: &Place, extra: &[(&str, &str)]) -> App {
        let config = App::config(place, extra);
        let running = app::start(config).await.unwrap();
        App::running(running)
    }

    fn config(place: &Place, extra: &[(&str, &str)]) -> config::Config {
        let mut env: HashMap<&str, &str> = [("SUPPORTSIGNAL_ENV", "test")].into_iter().collect();
        env.extend(extra.iter().copied());
        let overrides = config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(place.dir.path().join("data")),
            database_url: place.pg_url.clone(),
        };
        config::Config::from_env(overrides, |k| env.get(k).map(|v| v.to_string())).unwrap()
    }

    /// Starts with the application's functions and tables plus those `extend` adds (for tests
    /// that need a function the application does not have, such as one that always fails).
    pub async fn start_extended(
        place: &Place,
        extend: impl FnOnce(store::Schema, &mut functions::Registry) -> store::Schema + Send + 'static,
    ) -> App {
        let config = App::config(place, &[]);
        let options = app::Options {
            extend: Some(Box::new(extend)),
            ..app::Options::default()
        };
        App::running(app::start_with(config, options).await.unwrap())
    }

    fn running(running: app::Running) -> App {
        let store = running.store().clone();
        App {
            url: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
            store,
            running: Some(running),
        }
    }

    /// The server's function runtime, for calling internal functions as server code does.
    pub fn runtime(&self) -> functions::Runtime {
        self.running.as_ref().unwrap().runtime.clone()
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().stop().await.unwrap();
    }

    /// Calls a function with clean JSON (as `/api/run` and most clients do); returns the raw body.
    pub async fn call(&self, kind: &str, path: &str, args: Json) -> Json {
        self.call_as(kind, path, args, None).await
    }

    pub async fn call_as(&self, kind: &str, path: &str, args: Json, bearer: Option<&str>) -> Json {
        let mut request = self
            .http
            .post(format!("{}/api/{kind}", self.url))
            .json(&json!({"path": path, "args": [args], "format": "json"}));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn ok(&self, kind: &str, path: &str, args: Json) -> Json {
        let body = self.call(kind, path, args).await;
        assert_eq!(body["status"], "success", "{kind} {path}: {body}");
        body["value"].clone()
    }

    /// The stable code of a failed call.
    pub async fn code(&self, kind: &str, path: &str, args: Json) -> String {
        let body = self.call(kind, path, args).await;
        assert_eq!(body["status"], "error", "{kind} {path} should fail: {body}");
        body["errorData"]["code"]
            .as_str()
            .unwrap_or("<no code>")
            .to_string()
    }

    /// The message of a failed call to a sign-in function, whose errors carry their message as the
    /// data (the web app searches `error.data` as text; see `app::auth::register`).
    pub async fn message(&self, kind: &str, path: &str, args: Json) -> String {
        let body = self.call(kind, path, args).await;
        assert_eq!(body["status"], "error", "{kind} {path} should fail: {body}");
        let data = body["errorData"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} {path}: the data should be the message: {body}"));
        assert_eq!(body["errorMessage"], data, "{body}");
        data.to_string()
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> String {
        let r = self
            .ok(
                "mutation",
                "auth:registerUser",
                json!({"name": name, "email": email, "password": password}),
            )
            .await;
        r["userId"].as_str().unwrap().to_string()
    }

    pub async fn login(&self, email: &str, password: &str) -> Json {
        self.ok(
            "mutation",
            "auth:loginUser",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn token(&self, email: &str, password: &str) -> String {
        self.login(email, password).await["sessionToken"]
            .as_str()
            .unwrap()
            .to_string()
    }
}
