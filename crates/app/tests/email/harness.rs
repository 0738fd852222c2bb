//! Test plumbing: a store per test (SQLite in a temporary directory, or a fresh PostgreSQL
//! database), a runtime with mutations that queue email, the job queue's worker running delivery
//! through a given mailer, and bounded polling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::email::{self, LogMailer, Mailer, OutgoingEmail, SmtpMailer, Status};
use background::{Queue, QueueOptions};
use functions::{Auth, Call, Caller, ErrorCode, FnResult, FunctionError, FunctionKind, Registry};
use functions::{RequestId, Runtime};
use store::{Backend, Document, Patch, Store, StoreConfig, StoreError};
use values::validator::v;
use values::Value;

/// How long any expected state may take to appear; generous, since tests never assert on time.
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when TEST_DATABASE_URL is set.
pub fn backends() -> Vec<Db> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(_) => vec![Db::Sqlite, Db::Postgres],
        Err(_) => vec![Db::Sqlite],
    }
}

pub struct Env {
    pub store: Store,
    runtime: Runtime,
    backend: Backend,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

impl Env {
    pub async fn open(db: Db) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = match db {
            Db::Postgres => Some(PgDatabase::create().await),
            Db::Sqlite => None,
        };
        let backend = match &pg {
            Some(pg) => Backend::Postgres {
                url: pg.url.clone(),
            },
            None => Backend::Sqlite {
                path: dir.path().join("test.db"),
            },
        };
        let store = open_store(&backend).await;
        // Runs the calls; no job worker runs on it (see `Worker`), so its mailer is never used.
        let runtime = runtime(&store, Arc::new(LogMailer));
        Env {
            store,
            runtime,
            backend,
            _dir: dir,
            _pg: pg,
        }
    }

    /// Another server's store on the same database (PostgreSQL); SQLite has one process per file.
    pub async fn second_node(&self) -> Store {
        match &self.backend {
            Backend::Postgres { .. } => open_store(&self.backend).await,
            Backend::Sqlite { .. } => self.store.clone(),
        }
    }

    pub fn smtp(&self, url: &str) -> Arc<dyn Mailer> {
        let settings = config::SmtpSettings::parse(url).expect("test SMTP URL");
        Arc::new(
            SmtpMailer::new(&settings, "SupportSignal <no-reply@example.org>").expect("mailer"),
        )
    }

    /// Runs mutation `path` as the server.
    pub async fn run(&self, path: &str, args: Value) -> FnResult<Value> {
        let call = Call {
            path: path.to_string(),
            expected: Some(FunctionKind::Mutation),
            args,
            auth: Auth::anonymous(),
            request_id: RequestId::generate(),
            caller: Caller::Server,
        };
        self.runtime.call(call).await.map(|outcome| outcome.value)
    }

    /// Runs the test mutation that queues an email and then fails if `fail`.
    pub async fn call(
        &self,
        function: &str,
        to: &str,
        subject: &str,
        text: &str,
        fail: bool,
    ) -> FnResult<Value> {
        let args = Value::object([
            ("to", Value::from(to)),
            ("subject", Value::from(subject)),
            ("text", Value::from(text)),
            ("fail", Value::Boolean(fail)),
        ]);
        self.run(&format!("emails:{function}"), args).await
    }

    /// Queues an email in a committed mutation; returns the outbox id.
    pub async fn queue(&self, to: &str, subject: &str, text: &str) -> FnResult<String> {
        let id = self.call("queue", to, subject, text, false).await?;
        Ok(id.as_str().expect("id string").to_string())
    }

    /// Queues an email as server code on its own transaction would (`email::enqueue_in_txn`).
    pub async fn queue_in_txn(&self, to: &str, subject: &str, text: &str) -> String {
        let (runtime, email) = (
            self.runtime.clone(),
            OutgoingEmail::new(to, subject, text, "invitation"),
        );
        let (id, _, _) = self
            .store
            .mutate(move |txn| email::enqueue_in_txn(txn, &runtime, email.clone()))
            .await
            .expect("queue in a transaction");
        id.encode()
    }

    /// Inserts a `pending` row with no delivery job, as versions that delivered with a worker of
    /// their own left them.
    pub async fn insert_without_job(&self, to: &str, subject: &str) -> String {
        let (to, subject) = (to.to_string(), subject.to_string());
        let (id, _, _) = self
            .store
            .mutate(move |txn| {
                let now = txn.now_ms();
                let row = values::Object::from([
                    ("to".to_string(), Value::from(to.as_str())),
                    ("subject".to_string(), Value::from(subject.as_str())),
                    ("text".to_string(), Value::from("from before")),
                    ("kind".to_string(), Value::from("invitation")),
                    ("status".to_string(), Value::from("pending")),
                    ("attempts".to_string(), Value::from(0.0)),
                    ("next_attempt_at".to_string(), Value::from(now)),
                    ("created_at".to_string(), Value::from(now)),
                ]);
                txn.insert(email::TABLE, row)
            })
            .await
            .expect("insert outbox row");
        id.encode()
    }

    /// Runs the cron's mutation that gives unsent rows without a job one; how many it checked.
    pub async fn requeue(&self) -> f64 {
        let done = self
            .run(
                "email:requeueUndelivered",
                Value::Object(values::Object::new()),
            )
            .await
            .expect("requeue");
        match done {
            Value::Object(fields) => fields["checked"].as_f64().expect("checked"),
            other => panic!("requeue answered {other:?}"),
        }
    }

    /// The jobs table.
    pub async fn jobs(&self) -> Vec<Document> {
        let (jobs, _, _) = self
            .store
            .query(|txn| txn.query(functions::jobs::TABLE)?.collect())
            .await
            .expect("read jobs");
        jobs
    }

    /// Purges rows finished before now + `offset_ms`.
    pub async fn purge(&self, offset_ms: f64) -> usize {
        let args = Value::object([("offset_ms", Value::from(offset_ms))]);
        let purged = self.run("emails:purge", args).await.expect("purge");
        purged.as_f64().expect("count") as usize
    }

    pub async fn rows(&self) -> Vec<Document> {
        let (rows, _, _) = self
            .store
            .query(|txn| txn.query(email::TABLE)?.collect())
            .await
            .expect("read outbox");
        rows
    }

    pub async fn row(&self, id: &str) -> Document {
        let id = id.to_string();
        self.rows()
            .await
            .into_iter()
            .find(|row| row.id.encode() == id)
            .unwrap_or_else(|| panic!("no outbox row {id}"))
    }

    /// Polls until `done(row)` holds; panics with the row's last state after the deadline.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Document) -> bool) -> Document {
        let start = Instant::now();
        loop {
            let row = self.row(id).await;
            if done(&row) {
                return row;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "outbox row never reached the expected state: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for_status(&self, id: &str, status: Status) -> Document {
        self.wait_for(id, |row| field(row, "status") == status.as_str())
            .await
    }

    /// The delivery job of outbox row `id`.
    pub async fn job(&self, id: &str) -> Document {
        let key = format!("email:{id}");
        self.jobs()
            .await
            .into_iter()
            .find(|job| field(job, "idempotency_key") == key)
            .unwrap_or_else(|| panic!("no delivery job for {id}"))
    }

    /// Polls until the delivery job of row `id` is in `state`; panics with the job after the
    /// deadline.
    pub async fn wait_for_job(&self, id: &str, state: &str) -> Document {
        let start = Instant::now();
        loop {
            let job = self.job(id).await;
            if field(&job, "state") == state {
                return job;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the delivery job never became {state}: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Leaves a row and its job as a node that died during attempt `attempts` would: the row
    /// `sending`, the job `running` under that node's lease, which ends at now + `lease_ms`.
    pub async fn set_claim(&self, id: &str, attempts: f64, lease_ms: f64) {
        let row = self.row(id).await.id;
        let job = self.job(id).await.id;
        self.store
            .mutate(move |txn| {
                let now = txn.now_ms();
                let mut patch = Patch::new();
                patch.insert("status".into(), Some(Value::from("sending")));
                patch.insert("attempts".into(), Some(Value::from(attempts)));
                patch.insert("next_attempt_at".into(), Some(Value::from(now)));
                txn.patch(&row, patch)?;
                let mut patch = Patch::new();
                patch.insert("state".into(), Some(Value::from("running")));
                patch.insert("attempts".into(), Some(Value::from(attempts)));
                patch.insert("run_at".into(), Some(Value::from(now + lease_ms)));
                patch.insert("lease_owner".into(), Some(Value::from("a node that died")));
                patch.insert("started_at".into(), Some(Value::from(now)));
                txn.patch(&job, patch)
            })
            .await
            .expect("claim row");
    }
}

async fn open_store(backend: &Backend) -> Store {
    let config = StoreConfig {
        backend: backend.clone(),
        pool_size: 4,
    };
    // The jobs table, as `server::open_store` adds it.
    let schema = app::schema().table(functions::jobs::table());
    Store::open(config, schema).await.expect("open store")
}

/// A runtime whose registry has the test mutations and delivery through `mailer`.
fn runtime(store: &Store, mailer: Arc<dyn Mailer>) -> Runtime {
    Runtime::new(registry(mailer), store.clone(), Duration::from_secs(30))
}

fn registry(mailer: Arc<dyn Mailer>) -> Registry {
    let mut registry = Registry::new();
    email::register(&mut registry, mailer);
    let args = v::object([
        ("to", v::string()),
        ("subject", v::string()),
        ("text", v::string()),
        ("fail", v::boolean()),
    ]);
    registry.mutation_untyped("emails:queue", args, |ctx, args| {
        let text = |name: &str| args[name].as_str().unwrap_or_default().to_string();
        let mut outgoing =
            OutgoingEmail::new(text("to"), text("subject"), text("text"), "password_reset");
        outgoing.correlation_id = Some("test-correlation".into());
        let id = email::enqueue(ctx, outgoing)?;
        if args["fail"].as_bool() == Some(true) {
            // The business write failed after queuing: the email must vanish with it.
            return Err(FunctionError::user(ErrorCode::Conflict, "rolled back"));
        }
        Ok(Value::from(id))
    });
    registry.mutation_untyped(
        "emails:purge",
        v::object([("offset_ms", v::number())]),
        |ctx, args| {
            let before = ctx.now_ms() + args["offset_ms"].as_f64().unwrap_or_default();
            let purged = email::purge_finished(&mut ctx.db, before, 100)?;
            Ok(Value::from(purged as f64))
        },
    );
    registry
}

/// A node's job worker (`background::Queue`), running delivery through its own mailer.
pub struct Worker {
    queue: Queue,
}

impl Worker {
    pub fn start(store: &Store, mailer: Arc<dyn Mailer>, options: QueueOptions) -> Worker {
        Worker {
            queue: Queue::start(runtime(store, mailer), options),
        }
    }

    /// Stops the worker (runs in progress finish).
    pub async fn stop(self) {
        tokio::time::timeout(DEADLINE, self.queue.stop())
            .await
            .expect("worker stops");
    }
}

pub fn field(doc: &Document, name: &str) -> String {
    doc.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn number(doc: &Document, name: &str) -> f64 {
    doc.get(name).and_then(Value::as_f64).unwrap_or(-1.0)
}

/// A database of its own for one test on the TEST_DATABASE_URL server, dropped afterwards.
struct PgDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create() -> PgDatabase {
        let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
        let name = format!("ss_t_{:016x}", rand::random::<u64>());
        admin(&admin_url, &format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        PgDatabase {
            url: url.to_string(),
            admin_url,
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, sql) = (
            self.admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _ = runtime.block_on(admin(&admin_url, &sql));
        })
        .join();
    }
}

async fn admin(url: &str, sql: &str) -> Result<(), StoreError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let connection = tokio::spawn(connection);
    let result = client
        .batch_execute(sql)
        .await
        .map_err(|e| StoreError::Internal(e.to_string()));
    drop(client);
    let _ = connection.await;
    result
}
