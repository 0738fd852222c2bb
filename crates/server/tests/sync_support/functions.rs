//! Functions the sync tests subscribe to and call: messages, per-company items (with a count of
//! how often each company's list ran), counters, and a small session model like the app's (a
//! session row found by its token, then the user row), so identity changes show up in read sets.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use functions::{no_args, DbRead, ErrorCode, FunctionError, Registry};
use store::{Document, Order, Schema, TableDef};
use values::validator::v;
use values::{Object, Value};

pub fn schema() -> Schema {
    Schema::new()
        .table(
            TableDef::new("messages")
                .field("body", v::string())
                .field("author", v::string()),
        )
        .table(
            TableDef::new("items")
                .field("company", v::string())
                .field("text", v::string())
                .index("by_company", &["company"]),
        )
        .table(
            TableDef::new("counters")
                .field("name", v::string())
                .field("value", v::number())
                .index("by_name", &["name"]),
        )
        .table(
            TableDef::new("users")
                .field("name", v::string())
                .field("role", v::string())
                .index("by_name", &["name"]),
        )
        .table(
            TableDef::new("sessions")
                .field("user_id", v::id("users"))
                .field("token", v::string())
                .field("expires_at", v::number())
                .index("by_token", &["token"]),
        )
}

/// How many times `items:list` ran for each company, in this process.
pub fn list_runs(company: &str) -> u64 {
    *runs().lock().unwrap().get(company).unwrap_or(&0)
}

fn runs() -> &'static Mutex<HashMap<String, u64>> {
    static RUNS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    RUNS.get_or_init(Default::default)
}

fn text(args: &Object, name: &str) -> String {
    args.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn object(fields: &[(&str, Value)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn counter(db: &mut impl DbRead, name: &str) -> Result<Option<Document>, FunctionError> {
    Ok(db
        .query("counters")?
        .with_index("by_name", |q| q.eq("name", name))?
        .first()?)
}

/// The signed-in user of a live session.
fn viewer(
    db: &mut impl DbRead,
    token: Option<&str>,
    now: f64,
) -> Result<Option<Document>, FunctionError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let session = db
        .query("sessions")?
        .with_index("by_token", |q| q.eq("token", token))?
        .first()?;
    let live = |s: &Document| s.get("expires_at").and_then(Value::as_f64).unwrap_or(0.0) > now;
    let Some(session) = session.filter(live) else {
        return Ok(None);
    };
    let user_id = session
        .get("user_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(db.get_in("users", user_id)?)
}

fn presented<'a>(args: &'a Object, bearer: Option<&'a str>) -> Option<&'a str> {
    args.get("sessionToken").and_then(Value::as_str).or(bearer)
}

fn require_viewer(
    db: &mut impl DbRead,
    token: Option<&str>,
    now: f64,
) -> Result<Document, FunctionError> {
    viewer(db, token, now)?.ok_or_else(|| {
        FunctionError::user(ErrorCode::Unauthenticated, "Invalid or expired session")
    })
}

fn describe(user: &Document) -> Value {
    object(&[
        ("name", user.get("name").cloned().unwrap_or(Value::Null)),
        ("role", user.get("role").cloned().unwrap_or(Value::Null)),
    ])
}

pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.authenticate_with("auth:verify");

    r.query_untyped("messages:list", no_args(), |ctx, _| {
        let docs = ctx.db.query("messages")?.collect()?;
        Ok(Value::Array(
            docs.into_iter().map(|d| d.into_value()).collect(),
        ))
    });
    // Slow on purpose, so subscribers woken by one commit ask while the run is in progress.
    r.query_untyped("messages:slowCount", no_args(), |ctx, _| {
        std::thread::sleep(Duration::from_millis(300));
        Ok(Value::from(
            ctx.db.query("messages")?.collect()?.len() as f64
        ))
    });
    r.query_untyped("messages:count", no_args(), |ctx, _| {
        Ok(Value::from(
            ctx.db.query("messages")?.collect()?.len() as f64
        ))
    });
    r.mutation_untyped(
        "messages:send",
        v::object([("body", v::string())]),
        |ctx, args| {
            let mut doc = Object::new();
            doc.insert("body".into(), Value::from(text(&args, "body")));
            doc.insert("author".into(), Value::from("test"));
            ctx.log("sent");
            Ok(Value::from(ctx.db.insert("messages", doc)?))
        },
    );
    r.mutation_untyped("messages:fail", no_args(), |_, _| {
        Err(FunctionError::field(
            ErrorCode::Conflict,
            "body",
            "That message clashes with another",
        ))
    });
    r.query_untyped("messages:boom", no_args(), |_, _| {
        Err(FunctionError::internal(
            "secret detail: postgres://u:pw@h/db",
        ))
    });
    // A result of `size` bytes that changes with every message (for slow-client tests).
    r.query_untyped(
        "messages:big",
        v::object([("size", v::number())]),
        |ctx, args| {
            let size = args.get("size").and_then(Value::as_f64).unwrap_or(0.0) as usize;
            let count = ctx.db.query("messages")?.collect()?.len();
            Ok(Value::from(format!("{count}:{}", "x".repeat(size))))
        },
    );
    r.action_untyped(
        "messages:act",
        v::object([("body", v::string())]),
        |ctx, args| async move {
            let id = ctx.run_mutation_untyped("messages:send", args).await?;
            let count = ctx
                .run_query_untyped("messages:count", Object::new())
                .await?;
            Ok(object(&[("id", id), ("count", count)]))
        },
    );
    r.action_untyped("messages:actFail", no_args(), |_, _| async move {
        Err(FunctionError::user(ErrorCode::RateLimited, "Slow down"))
    });

    r.query_untyped(
        "items:list",
        v::object([("company", v::string())]),
        |ctx, args| {
            let company = text(&args, "company");
            *runs().lock().unwrap().entry(company.clone()).or_default() += 1;
            let docs = ctx
                .db
                .query("items")?
                .with_index("by_company", |q| q.eq("company", company))?
                .order(Order::Asc)
                .collect()?;
            Ok(Value::Array(
                docs.iter()
                    .map(|d| d.get("text").cloned().unwrap_or(Value::Null))
                    .collect(),
            ))
        },
    );
    r.mutation_untyped(
        "items:add",
        v::object([("company", v::string()), ("text", v::string())]),
        |ctx, args| {
            let mut doc = Object::new();
            doc.insert("company".into(), Value::from(text(&args, "company")));
            doc.insert("text".into(), Value::from(text(&args, "text")));
            Ok(Value::from(ctx.db.insert("items", doc)?))
        },
    );

    r.query_untyped(
        "counter:get",
        v::object([("name", v::string())]),
        |ctx, args| {
            Ok(counter(&mut ctx.db, &text(&args, "name"))?
                .and_then(|d| d.get("value").cloned())
                .unwrap_or(Value::from(0.0)))
        },
    );
    let bump = |ctx: &mut functions::MutationCtx<'_>, args: &Object| {
        let name = text(args, "name");
        let current = counter(&mut ctx.db, &name)?;
        let value = current
            .as_ref()
            .and_then(|d| d.get("value"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            + 1.0;
        match current {
            Some(doc) => {
                let mut patch = store::Patch::new();
                patch.insert("value".into(), Some(Value::from(value)));
                ctx.db.patch(&doc.id, patch)?;
            }
            None => {
                let mut doc = Object::new();
                doc.insert("name".into(), Value::from(name));
                doc.insert("value".into(), Value::from(value));
                ctx.db.insert("counters", doc)?;
            }
        }
        Ok::<_, FunctionError>(Value::from(value))
    };
    r.mutation_untyped(
        "counter:bump",
        v::object([("name", v::string())]),
        move |ctx, args| bump(ctx, &args),
    );
    // Takes a while before its transaction, so a connection can drop while it is in flight.
    r.mutation_with_prepare_untyped(
        "counter:slowBump",
        v::object([("name", v::string()), ("delayMs", v::number())]),
        |_, args| async move {
            let delay = args.get("delayMs").and_then(Value::as_f64).unwrap_or(0.0);
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
            Ok(())
        },
        move |ctx, args, _: &()| bump(ctx, &args),
    );

    let token_arg = || v::object([("sessionToken", v::optional(v::string()))]);
    // Sessions last a day, or `ttlMs`.
    r.mutation_untyped(
        "auth:login",
        v::object([
            ("name", v::string().into()),
            ("ttlMs", v::optional(v::number())),
        ]),
        |ctx, args| {
            let name = text(&args, "name");
            let existing = ctx
                .db
                .query("users")?
                .with_index("by_name", |q| q.eq("name", name.as_str()))?
                .first()?;
            let user_id = match existing {
                Some(user) => user.id,
                None => {
                    let mut user = Object::new();
                    user.insert("name".into(), Value::from(name.as_str()));
                    user.insert("role".into(), Value::from("member"));
                    ctx.db.insert("users", user)?
                }
            };
            let token = format!("tok-{name}-{}", ctx.now_ms());
            let mut session = Object::new();
            session.insert("user_id".into(), Value::from(user_id));
            session.insert("token".into(), Value::from(token.as_str()));
            let ttl = args
                .get("ttlMs")
                .and_then(Value::as_f64)
                .unwrap_or(86_400_000.0);
            session.insert("expires_at".into(), Value::from(ctx.now_ms() + ttl));
            ctx.db.insert("sessions", session)?;
            Ok(Value::from(token))
        },
    );
    r.mutation_untyped(
        "auth:logout",
        v::object([("token", v::string())]),
        |ctx, args| {
            let token = text(&args, "token");
            let sessions = ctx
                .db
                .query("sessions")?
                .with_index("by_token", |q| q.eq("token", token))?
                .collect()?;
            for session in &sessions {
                ctx.db.delete(&session.id)?;
            }
            Ok(Value::from(!sessions.is_empty()))
        },
    );
    r.mutation_untyped(
        "auth:setRole",
        v::object([("name", v::string()), ("role", v::string())]),
        |ctx, args| {
            let name = text(&args, "name");
            let user = ctx
                .db
                .query("users")?
                .with_index("by_name", |q| q.eq("name", name))?
                .first()?
                .ok_or_else(|| FunctionError::not_found("No such user"))?;
            let mut patch = store::Patch::new();
            patch.insert("role".into(), Some(Value::from(text(&args, "role"))));
            ctx.db.patch(&user.id, patch)?;
            Ok(Value::Null)
        },
    );
    // What the server runs to validate an `Authenticate` token: null for no valid session.
    r.query_untyped("auth:verify", no_args(), |ctx, _| {
        let (token, now) = (ctx.auth.token().map(str::to_string), ctx.now_ms());
        Ok(viewer(&mut ctx.db, token.as_deref(), now)?
            .map(|user| describe(&user))
            .unwrap_or(Value::Null))
    });
    r.query_untyped("auth:me", token_arg(), |ctx, args| {
        let bearer = ctx.auth.token().map(str::to_string);
        let token = presented(&args, bearer.as_deref()).map(str::to_string);
        let now = ctx.now_ms();
        Ok(describe(&require_viewer(
            &mut ctx.db,
            token.as_deref(),
            now,
        )?))
    });
    // Who is asking and how many messages there are, slowly (for tests of shared runs).
    r.query_untyped("auth:slowMe", no_args(), |ctx, _| {
        std::thread::sleep(Duration::from_millis(300));
        let (token, now) = (ctx.auth.token().map(str::to_string), ctx.now_ms());
        let user = require_viewer(&mut ctx.db, token.as_deref(), now)?;
        let count = ctx.db.query("messages")?.collect()?.len() as f64;
        Ok(object(&[
            ("name", user.get("name").cloned().unwrap_or(Value::Null)),
            ("messages", Value::from(count)),
        ]))
    });
    r.query_untyped("auth:adminOnly", token_arg(), |ctx, args| {
        let bearer = ctx.auth.token().map(str::to_string);
        let token = presented(&args, bearer.as_deref()).map(str::to_string);
        let now = ctx.now_ms();
        let user = require_viewer(&mut ctx.db, token.as_deref(), now)?;
        if user.get("role").and_then(Value::as_str) != Some("admin") {
            return Err(FunctionError::forbidden("Insufficient permissions"));
        }
        Ok(Value::from("the admin secret"))
    });
    r
}
