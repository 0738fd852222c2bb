//! Test harness: the real server on port 0 with a fresh data directory (SQLite) or a fresh database
//! (PostgreSQL, when TEST_DATABASE_URL is set), and the functions the tests call.
#![allow(dead_code)]

pub mod functions_under_test;

use std::collections::HashMap;
use std::path::PathBuf;

use config::{Config, Overrides};
use serde_json::{json, Value as Json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when TEST_DATABASE_URL is set.
pub fn backends() -> Vec<Db> {
    let mut all = vec![Db::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        all.push(Db::Postgres);
    } else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant skipped");
    }
    all
}

/// A database of its own for one test, dropped when the guard goes away.
pub struct PgDatabase {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
        let name = format!("ss_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .expect("connect to TEST_DATABASE_URL");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL parses");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            url: url.to_string(),
            name,
            admin_url,
        }
    }

    /// Makes the database vanish under a running server (connections are terminated).
    pub async fn drop_now(&self) {
        let (client, conn) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .expect("drop test database");
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Best effort, on a thread of its own because Drop may run inside a runtime.
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

/// Where a test server keeps its data; kept across restarts of the same test.
pub struct Place {
    pub db: Db,
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
}

impl Place {
    pub async fn new(db: Db) -> Place {
        let pg = match db {
            Db::Postgres => Some(PgDatabase::create().await),
            Db::Sqlite => None,
        };
        Place {
            db,
            dir: tempfile::tempdir().expect("tempdir"),
            pg,
        }
    }

    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        let mut env: HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("SUPPORTSIGNAL_ENV".into(), "test".into());
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(self.data_dir()),
            database_url: self.pg.as_ref().map(|pg| pg.url.clone()),
        };
        Config::from_env(overrides, move |k| env.get(k).cloned())
            .expect("test configuration is valid")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

pub struct TestServer {
    pub url: String,
    pub http: reqwest::Client,
    running: Option<server::Running>,
}

impl TestServer {
    pub async fn start(place: &Place) -> TestServer {
        TestServer::start_with(place, &[]).await
    }

    pub async fn start_with(place: &Place, env: &[(&str, &str)]) -> TestServer {
        TestServer::start_config(place.config(env)).await
    }

    /// A server with exactly this configuration (e.g. a production one).
    pub async fn start_config(config: Config) -> TestServer {
        let store = server::open_store(&config, functions_under_test::schema())
            .await
            .expect("open store");
        let running = server::start(
            config,
            store,
            functions_under_test::registry(),
            std::future::pending(),
        )
        .await
        .expect("server starts");
        TestServer {
            url: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
            running: Some(running),
        }
    }

    /// The server's function runtime (its store, internal functions).
    pub fn runtime(&self) -> functions::Runtime {
        self.running.as_ref().expect("running").runtime.clone()
    }

    pub async fn stop(mut self) {
        self.running
            .take()
            .expect("running")
            .stop()
            .await
            .expect("clean shutdown");
    }

    pub async fn post(&self, route: &str, body: Json) -> (u16, Json) {
        let response = self
            .http
            .post(format!("{}{route}", self.url))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }

    /// Calls a function the way ConvexHttpClient does and returns the response body.
    pub async fn call(&self, kind: &str, path: &str, args: Json) -> Json {
        let (status, body) = self
            .post(
                &format!("/api/{kind}"),
                json!({"path": path, "format": "convex_encoded_json", "args": [args]}),
            )
            .await;
        assert_eq!(status, 200, "{kind} {path}: {body}");
        body
    }

    /// The value of a successful call, panicking with the error otherwise.
    pub async fn ok(&self, kind: &str, path: &str, args: Json) -> Json {
        let body = self.call(kind, path, args).await;
        assert_eq!(body["status"], "success", "{kind} {path}: {body}");
        body["value"].clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // A test that panicked still lets the server wind down in the background.
            tokio::spawn(async move {
                let _ = running.stop().await;
            });
        }
    }
}
