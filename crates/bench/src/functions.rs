//! The benchmark's own table and functions (point reads, range reads, inserts, seeding items and
//! incidents), served together with the application's, which the authenticated scenarios call.

use app::incidents::counts::{self, Whose};
use app::incidents::fields::{format_event_time, Details};
use app::incidents::record::{self, IncidentRow};
use app::incidents::status::{AnalysisStatus, CaptureStatus};
use functions::{FnResult, FunctionError, MutationCtx, Registry, Scope};
use store::{Document, Schema, TableDef};
use values::validator::v;
use values::Validator;
use values::{Object, Value};

/// Items per seeded group: the range scenario reads exactly one group's worth.
pub const RANGE_LEN: usize = 50;

/// The application's schema and functions plus the benchmark's own table (`items`) and functions
/// (for `app::start_with`).
pub fn extend(schema: Schema, registry: &mut Registry) -> Schema {
    registry.merge(bench_functions());
    schema.table(
        TableDef::new("items")
            .field("group", v::string())
            .field("key", v::string())
            .field("n", v::number())
            .field("payload", v::string())
            .index("by_key", &["key"])
            .index("by_group", &["group", "n"]),
    )
}

/// The key of the `i`-th seeded item, shared by the seeding code and the point-read scenario.
pub fn item_key(i: usize) -> String {
    format!("k{i:07}")
}

/// The name of the `g`-th seeded group.
pub fn group_name(g: usize) -> String {
    format!("g{g:05}")
}

/// A payload of `len` bytes, so documents have a realistic size without random content.
pub fn payload(len: usize) -> String {
    "x".repeat(len)
}

fn str_arg(args: &Object, name: &str) -> String {
    args.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn num_arg(args: &Object, name: &str) -> f64 {
    args.get(name).and_then(Value::as_f64).unwrap_or_default()
}

fn item(group: String, key: String, n: f64, payload: String) -> Object {
    Object::from([
        ("group".to_string(), Value::from(group)),
        ("key".to_string(), Value::from(key)),
        ("n".to_string(), Value::from(n)),
        ("payload".to_string(), Value::from(payload)),
    ])
}

/// A session token the seeding creates directly, so every client can use it from the start.
pub const AUTH_TOKEN: &str = "b3nch0000000000000000000000000000000000000000000000000000000000a";
pub const AUTH_EMAIL: &str = "lead@bench.example";
pub const AUTH_PASSWORD: &str = "Bench!Lead2026";
/// Participants seeded for the authenticated list (more than one page of 50).
pub const PARTICIPANTS: usize = 60;
/// Frontline workers of the bench company, each with a session: the incident writers.
pub const WORKERS: usize = 64;

/// The session token of worker `n` (of `WORKERS`), created by the seeding like `AUTH_TOKEN`.
pub fn worker_token(n: usize) -> String {
    format!("{:064x}", 0xbe7c_0000_u64 + (n % WORKERS) as u64)
}

/// The slug of the company the authenticated scenarios use.
pub const AUTH_COMPANY_SLUG: &str = "bench-care";

/// Statuses spread like a working company's: 40% still being captured, 20% awaiting or in
/// analysis (overall `analysis_pending`, the status the list scenario filters by: a fifth), 40%
/// done.
fn incident_state(i: usize) -> (CaptureStatus, AnalysisStatus) {
    match i % 10 {
        0 | 1 => (CaptureStatus::Draft, AnalysisStatus::NotStarted),
        2 | 3 => (CaptureStatus::InProgress, AnalysisStatus::NotStarted),
        4 => (CaptureStatus::Completed, AnalysisStatus::NotStarted),
        5 => (CaptureStatus::Completed, AnalysisStatus::InProgress),
        _ => (CaptureStatus::Completed, AnalysisStatus::Completed),
    }
}

/// Adds incidents to the bench company (through the application's own write path, so indexes
/// and status counts are maintained) until it holds `upTo`, at most `batch` per call. Returns how
/// many it added; 0 once there are enough.
fn seed_incidents(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let all = Scope::all_companies(&ctx.cross_tenant()?);
    let missing = || FunctionError::internal("bench:seedAuth has not run");
    let company = ctx
        .db
        .scoped(&all)
        .query("companies", "by_slug", |q| q.eq("slug", AUTH_COMPANY_SLUG))?
        .first()?
        .ok_or_else(missing)?;
    let scope = Scope::company(company.id);
    let mut db = ctx.db.scoped(&scope);
    let site = db.query("sites", "by_company_name", |q| q)?.first()?;
    let lead = db.query("users", "by_company", |q| q)?.first()?;
    let (site, lead) = (site.ok_or_else(missing)?.id, lead.ok_or_else(missing)?.id);
    let have = counts::read(&mut ctx.db, &scope, Whose::Company)?.total() as usize;
    let wanted = num_arg(&args, "upTo") as usize;
    let n = wanted
        .saturating_sub(have)
        .min(num_arg(&args, "batch") as usize);
    let now = ctx.now_ms();
    for k in 0..n {
        let i = have + k;
        let at = now - (wanted - i) as f64 * 1000.0;
        let details = Details {
            reporter_name: "Bench Lead".into(),
            participant_name: format!("Pat{:03} Person{:03}", i % 97, i % 89),
            location: ["Kitchen", "Garden", "Lounge", "Bathroom"][i % 4].into(),
            event_date_time: format_event_time(at - 3_600_000.0),
            event_at: at - 3_600_000.0,
        };
        let mut row = IncidentRow::new(company.id, site, None, details, lead, at);
        (row.capture_status, row.analysis_status) = incident_state(i);
        if row.capture_status == CaptureStatus::Completed {
            row.submitted_at = Some(at);
            row.submitted_by = Some(lead);
        }
        record::insert(&mut ctx.db, &scope, row)?;
    }
    Ok(Value::from(n as f64))
}

fn bench_functions() -> Registry {
    let mut r = Registry::new();
    r.mutation_untyped(
        "bench:seedIncidents",
        v::object([("upTo", v::number()), ("batch", v::number())]),
        seed_incidents,
    )
    .cross_tenant();
    // A company, its team lead (with a real argon2 hash, for the sign-in scenario) and a session
    // with a known token; the participants are then created through the real API.
    r.mutation_with_prepare_untyped(
        "bench:seedAuth",
        v::object(Vec::<(&str, Validator)>::new()),
        |_, _| async move {
            app::auth::passwords::off_thread(|| app::auth::passwords::hash(AUTH_PASSWORD)).await?
        },
        |ctx, _, hash: &String| {
            let all = Scope::all_companies(&ctx.cross_tenant()?);
            let now = ctx.now_ms();
            let company = ctx.db.scoped(&all).insert(
                "companies",
                Object::from([
                    ("name".to_string(), Value::from("Bench Care")),
                    ("slug".to_string(), Value::from(AUTH_COMPANY_SLUG)),
                    (
                        "contact_email".to_string(),
                        Value::from("office@bench.example"),
                    ),
                    ("status".to_string(), Value::from("active")),
                    ("created_at".to_string(), Value::from(now)),
                ]),
            )?;
            ctx.db.scoped(&all).insert(
                "sites",
                Object::from([
                    ("company_id".to_string(), Value::from(company)),
                    ("name".to_string(), Value::from("Primary")),
                    ("created_at".to_string(), Value::from(now)),
                ]),
            )?;
            let user = ctx.db.scoped(&all).insert(
                "users",
                Object::from([
                    ("name".to_string(), Value::from("Bench Lead")),
                    ("email".to_string(), Value::from(AUTH_EMAIL)),
                    ("password".to_string(), Value::from(hash.as_str())),
                    ("role".to_string(), Value::from("team_lead")),
                    ("company_id".to_string(), Value::from(company)),
                    ("created_at".to_string(), Value::from(now)),
                ]),
            )?;
            let session = |db: &mut functions::DbWriter<'_>, user, token: &str| {
                db.insert(
                    "sessions",
                    Object::from([
                        ("user_id".to_string(), Value::from(user)),
                        (
                            "token_hash".to_string(),
                            Value::from(app::identity::sessions::hash_token(token)),
                        ),
                        ("created_at".to_string(), Value::from(now)),
                        (
                            "expires_at".to_string(),
                            Value::from(now + 365.0 * 24.0 * 3600e3),
                        ),
                        ("remember_me".to_string(), Value::from(true)),
                    ]),
                )
            };
            session(&mut ctx.db, user, AUTH_TOKEN)?;
            for n in 0..WORKERS {
                let worker = ctx.db.scoped(&all).insert(
                    "users",
                    Object::from([
                        ("name".to_string(), Value::from(format!("Bench Worker {n}"))),
                        (
                            "email".to_string(),
                            Value::from(format!("worker{n}@bench.example")),
                        ),
                        ("password".to_string(), Value::from(hash.as_str())),
                        ("role".to_string(), Value::from("frontline_worker")),
                        ("company_id".to_string(), Value::from(company)),
                        ("created_at".to_string(), Value::from(now)),
                    ]),
                )?;
                session(&mut ctx.db, worker, &worker_token(n))?;
            }
            Ok(Value::Null)
        },
    )
    .cross_tenant();
    r.query_untyped(
        "bench:getOne",
        v::object([("key", v::string())]),
        |ctx, args| {
            let key = str_arg(&args, "key");
            let doc = ctx
                .db
                .query("items")?
                .with_index("by_key", |q| q.eq("key", key))?
                .first()?;
            Ok(doc.map(Document::into_value).unwrap_or(Value::Null))
        },
    );
    r.query_untyped(
        "bench:range50",
        v::object([("group", v::string())]),
        |ctx, args| {
            let group = str_arg(&args, "group");
            let docs = ctx
                .db
                .query("items")?
                .with_index("by_group", |q| q.eq("group", group))?
                .take(RANGE_LEN)?;
            Ok(Value::Array(
                docs.into_iter().map(Document::into_value).collect(),
            ))
        },
    );
    r.mutation_untyped(
        "bench:insert",
        v::object([
            ("group", v::string()),
            ("key", v::string()),
            ("n", v::number()),
            ("payload", v::string()),
        ]),
        |ctx, args| {
            let doc = item(
                str_arg(&args, "group"),
                str_arg(&args, "key"),
                num_arg(&args, "n"),
                str_arg(&args, "payload"),
            );
            Ok(Value::from(ctx.db.insert("items", doc)?))
        },
    );
    // Seeding through the API in one transaction per group keeps set-up to a few hundred requests.
    r.mutation_untyped(
        "bench:seed",
        v::object([
            ("group", v::string()),
            ("first", v::number()),
            ("count", v::number()),
            ("payloadLen", v::number()),
        ]),
        |ctx, args| {
            let group = str_arg(&args, "group");
            let first = num_arg(&args, "first") as usize;
            let count = num_arg(&args, "count") as usize;
            let body = payload(num_arg(&args, "payloadLen") as usize);
            for n in 0..count {
                let doc = item(group.clone(), item_key(first + n), n as f64, body.clone());
                ctx.db.insert("items", doc)?;
            }
            Ok(Value::from(count as f64))
        },
    );
    r
}
