//! Test harness: the same suite runs on SQLite (always) and PostgreSQL (when `TEST_DATABASE_URL` is
//! set), each test on a fresh database.
#![allow(dead_code)]

use std::sync::Arc;

use store::{Backend, Schema, Store, StoreConfig, StoreError, TableDef};
use values::validator::v;
use values::{DocumentId, Object, Value};

/// A fresh database for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    pub name: &'static str,
    pub config: StoreConfig,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn open(&self, schema: Schema) -> Store {
        Store::open(self.config.clone(), schema)
            .await
            .unwrap_or_else(|e| panic!("{}: open failed: {e}", self.name))
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// PostgreSQL only: the admin URL and the name of this test's database.
    pub fn pg_admin(&self) -> Option<(&str, &str)> {
        self.pg
            .as_ref()
            .map(|(url, db)| (url.as_str(), db.as_str()))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, db)) = self.pg.take() {
            // The sync client runs its own runtime, so it must not run on an async worker thread.
            let _ = std::thread::spawn(move || {
                if let Ok(mut client) = postgres::Client::connect(&admin_url, postgres::NoTls) {
                    let _ =
                        client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
                }
            })
            .join();
        }
    }
}

/// One database per available backend.
pub fn test_dbs() -> Vec<TestDb> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = TestDb {
        name: "sqlite",
        config: StoreConfig {
            backend: Backend::Sqlite {
                path: dir.path().join("nested/dir/store.db"),
            },
            pool_size: 4,
        },
        _dir: Some(dir),
        pg: None,
    };
    let mut dbs = vec![sqlite];
    if let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") {
        let db = format!("ss_t_{:016x}", rand::random::<u64>());
        let create = {
            let (admin_url, db) = (admin_url.clone(), db.clone());
            std::thread::spawn(move || {
                let mut client = postgres::Client::connect(&admin_url, postgres::NoTls)?;
                client.batch_execute(&format!("CREATE DATABASE {db}"))
            })
            .join()
            .expect("create database thread")
        };
        create.unwrap_or_else(|e| {
            panic!("cannot create a PostgreSQL test database via TEST_DATABASE_URL: {e}")
        });
        let url = with_database(&admin_url, &db);
        dbs.push(TestDb {
            name: "postgres",
            config: StoreConfig {
                backend: Backend::Postgres { url },
                pool_size: 8,
            },
            _dir: None,
            pg: Some((admin_url, db)),
        });
    }
    dbs
}

/// `admin_url` with its database name replaced.
fn with_database(admin_url: &str, db: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let host = rest.split_once('/').map_or(rest, |(host, _)| host);
    format!("{scheme}://{host}/{db}{query}")
}

pub fn schema() -> Schema {
    Schema::new()
        .table(
            TableDef::new("users")
                .field("name", v::string())
                .field("age", v::float64())
                .optional("team", v::id("teams"))
                .optional("tags", v::array(v::string()))
                .index("by_name", &["name"])
                .index("by_age_name", &["age", "name"]),
        )
        .table(TableDef::new("teams").field("title", v::string()))
        .table(
            TableDef::new("counters")
                .field("name", v::string())
                .field("value", v::int64())
                .index("by_name", &["name"]),
        )
}

pub fn obj<const N: usize>(fields: [(&str, Value); N]) -> Object {
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

pub fn user(name: &str, age: f64) -> Object {
    obj([("name", name.into()), ("age", age.into())])
}

pub async fn insert(store: &Store, table: &'static str, fields: Object) -> DocumentId {
    let fields = Arc::new(fields);
    store
        .mutate(move |txn| txn.insert(table, (*fields).clone()))
        .await
        .expect("insert")
        .0
}

/// The names of `docs`, in order.
pub fn names(docs: &[store::Document]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            d.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

pub type R<T> = Result<T, StoreError>;
