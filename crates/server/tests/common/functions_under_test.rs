//! Functions that exist only in tests, to exercise the runtime through the real HTTP API.

use functions::{
    no_args, pagination_opts_validator, pagination_result, parse_pagination_opts, DbRead,
    ErrorCode, FunctionError, Registry, Scope,
};
use store::{Order, Schema, TableDef};
use values::validator::v;
use values::{Object, Value};

pub fn schema() -> Schema {
    Schema::new()
        .table(
            TableDef::new("companies")
                .field("name", v::string())
                .tenant("_id"),
        )
        .table(
            TableDef::new("notes")
                .field("company_id", v::id("companies"))
                .field("text", v::string())
                .index("by_company", &["company_id"])
                .tenant("company_id"),
        )
        .table(
            TableDef::new("messages")
                .field("body", v::string())
                .field("author", v::string())
                .optional("n", v::int64())
                .index("by_author", &["author"]),
        )
}

fn str_arg<'a>(args: &'a Object, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.mutation_untyped(
        "messages:send",
        v::object([
            ("body", v::string().into()),
            ("author", v::optional(v::string())),
            ("n", v::optional(v::int64())),
        ]),
        |ctx, args| {
            let mut doc = Object::new();
            doc.insert("body".into(), Value::from(str_arg(&args, "body")));
            doc.insert(
                "author".into(),
                Value::from(args.get("author").and_then(Value::as_str).unwrap_or("anon")),
            );
            if let Some(n) = args.get("n") {
                doc.insert("n".into(), n.clone());
            }
            ctx.log("sent");
            Ok(Value::from(ctx.db.insert("messages", doc)?))
        },
    );
    r.query_untyped("messages:list", no_args(), |ctx, _| {
        let docs = ctx.db.query("messages")?.collect()?;
        Ok(Value::Array(docs.iter().map(|d| d.to_value()).collect()))
    });
    r.query_untyped("messages:count", no_args(), |ctx, _| {
        Ok(Value::from(
            ctx.db.query("messages")?.collect()?.len() as f64
        ))
    });
    r.query_untyped(
        "messages:byAuthor",
        v::object([("author", v::string())]),
        |ctx, args| {
            let docs = ctx
                .db
                .query("messages")?
                .with_index("by_author", |q| q.eq("author", str_arg(&args, "author")))?
                .order(Order::Desc)
                .collect()?;
            Ok(Value::Array(
                docs.iter()
                    .map(|d| d.get("body").cloned().unwrap_or(Value::Null))
                    .collect(),
            ))
        },
    );
    r.query_untyped(
        "messages:page",
        v::object([
            ("author", v::string()),
            ("paginationOpts", pagination_opts_validator()),
        ]),
        |ctx, args| {
            let opts = parse_pagination_opts(&args)?;
            let page = ctx
                .db
                .query("messages")?
                .with_index("by_author", |q| q.eq("author", str_arg(&args, "author")))?
                .paginate(opts)?;
            Ok(pagination_result(&page, |d| {
                d.get("body").cloned().unwrap_or(Value::Null)
            }))
        },
    );
    // Runs long enough for a shutdown to arrive while it is in flight.
    r.action_untyped("messages:slow", no_args(), |_, _| async move {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        Ok(Value::from("finished"))
    });
    r.query_untyped(
        "messages:get",
        v::object([("id", v::string())]),
        |ctx, args| {
            Ok(ctx
                .db
                .get_in("messages", str_arg(&args, "id"))?
                .map(|d| d.to_value())
                .unwrap_or(Value::Null))
        },
    );
    r.query_untyped(
        "messages:echo",
        v::object([("value", v::any())]),
        |_, args| Ok(args.get("value").cloned().unwrap_or(Value::Null)),
    );
    r.query_untyped(
        "messages:typed",
        v::object([
            ("id", v::id("messages").into()),
            ("count", v::int64().into()),
            ("tags", v::array(v::string()).into()),
            ("nested", v::object([("email", v::string())]).into()),
            (
                "mode",
                v::optional(v::union(vec![v::literal("a"), v::literal("b")])),
            ),
        ]),
        |_, _| Ok(Value::from(true)),
    );
    // Writes, then refuses: nothing may be left behind.
    r.mutation_untyped(
        "messages:sendThenFail",
        v::object([("body", v::string())]),
        |ctx, args| {
            let mut doc = Object::new();
            doc.insert("body".into(), Value::from(str_arg(&args, "body")));
            doc.insert("author".into(), Value::from("failing"));
            ctx.db.insert("messages", doc)?;
            Err(FunctionError::field(
                ErrorCode::Conflict,
                "body",
                "That message clashes with another",
            ))
        },
    );
    r.mutation_untyped("messages:invalidWrite", no_args(), |ctx, _| {
        let mut doc = Object::new();
        doc.insert("body".into(), Value::from(42.0));
        doc.insert("author".into(), Value::from("x"));
        Ok(Value::from(ctx.db.insert("messages", doc)?))
    });
    r.query_untyped("messages:boom", no_args(), |_, _| {
        Err(FunctionError::internal(
            "secret detail: connection string postgres://u:pw@h/db",
        ))
    });
    r.mutation_untyped("messages:panic", no_args(), |_, _| panic!("handler bug"));
    r.query_untyped("messages:wrongReturn", no_args(), |_, _| {
        Ok(Value::from(1.0))
    })
    .returns(v::string());
    r.query_untyped("messages:whoami", no_args(), |ctx, _| {
        Ok(Value::from(
            ctx.auth
                .token()
                .map(|t| format!("token of length {}", t.len())),
        ))
    });
    r.internal_query_untyped("messages:secretCount", no_args(), |ctx, _| {
        Ok(Value::from(
            ctx.db.query("messages")?.collect()?.len() as f64
        ))
    });
    r.action_untyped(
        "messages:act",
        v::object([("body", v::string())]),
        |ctx, args| async move {
            let id = ctx
                .run_mutation_untyped("messages:send", args.clone())
                .await?;
            let count = ctx
                .run_query_untyped("messages:secretCount", Object::new())
                .await?;
            let mut out = Object::new();
            out.insert("id".into(), id);
            out.insert("count".into(), count);
            Ok(Value::Object(out))
        },
    );
    r.action_untyped("messages:actFail", no_args(), |_, _| async move {
        Err(FunctionError::user(ErrorCode::RateLimited, "Slow down"))
    });
    tenancy_functions(&mut r);
    storage_functions(&mut r);
    r
}

/// `ctx.storage()` as modules use it; the company comes from the arguments here.
fn storage_functions(r: &mut Registry) {
    let file_args = || v::object([("company", v::string()), ("storageId", v::string())]);
    r.mutation_untyped(
        "files:generateUploadUrl",
        v::object([("company", v::string())]),
        |ctx, args| {
            let scope = company_scope(&ctx.db, &args)?;
            let Scope::Company(company) = scope else {
                unreachable!()
            };
            Ok(Value::from(
                ctx.storage()
                    .generate_upload_url(&company, Some("tester"))?,
            ))
        },
    );
    r.mutation_untyped("files:getUrl", file_args(), |ctx, args| {
        let scope = company_scope(&ctx.db, &args)?;
        let url = ctx
            .storage()
            .get_url(&scope, str_arg(&args, "storageId"), Some("tester"))?;
        Ok(url.map_or(Value::Null, Value::from))
    });
    r.query_untyped("files:getMetadata", file_args(), |ctx, args| {
        let scope = company_scope(&ctx.db, &args)?;
        let meta = ctx
            .storage()
            .get_metadata(&scope, str_arg(&args, "storageId"))?;
        Ok(meta.map_or(Value::Null, |m| {
            values::serde_bridge::to_value(&m).expect("metadata encodes")
        }))
    });
    r.mutation_untyped("files:delete", file_args(), |ctx, args| {
        let scope = company_scope(&ctx.db, &args)?;
        let deleted = ctx
            .storage()
            .delete(&scope, str_arg(&args, "storageId"), Some("tester"))?;
        Ok(Value::from(deleted))
    });
    r.query_untyped(
        "files:count",
        v::object([("company", v::string())]),
        |ctx, args| {
            let scope = company_scope(&ctx.db, &args)?;
            let count = ctx
                .db
                .scoped(&scope)
                .query(functions::storage::FILES, "by_company", |q| q)?
                .count()?;
            Ok(Value::from(count as f64))
        },
    );
    // The sweep, sparing nothing for its age (tests in another process cannot call it directly).
    r.action_untyped("files:sweepNow", no_args(), |ctx, _| async move {
        let swept = ctx
            .run_action(
                functions::storage::SWEEP,
                &functions::storage::SweepArgs { min_age_ms: 0.0 },
            )
            .await?;
        Ok(values::serde_bridge::to_value(&swept).expect("counts encode"))
    });
    r.action_untyped(
        "files:storeText",
        v::object([("company", v::string()), ("text", v::string())]),
        |ctx, args| async move {
            let company = values::DocumentId::decode(str_arg(&args, "company"))
                .map_err(|_| FunctionError::validation("company", "unknown company"))?;
            let meta = ctx
                .storage()
                .store(
                    &company,
                    str_arg(&args, "text").as_bytes(),
                    "text/plain",
                    Some("note.txt"),
                    None,
                )
                .await?;
            Ok(Value::from(meta.id))
        },
    );
}

/// Tests pass the company to act for as an argument; real modules take it from the signed-in user.
fn company_scope(db: &impl DbRead, args: &Object) -> Result<Scope, FunctionError> {
    db.normalize_id("companies", str_arg(args, "company"))
        .map(Scope::company)
        .ok_or_else(|| FunctionError::validation("company", "unknown company"))
}

fn tenancy_functions(r: &mut Registry) {
    r.mutation_untyped(
        "tenancy:createCompany",
        v::object([("name", v::string())]),
        |ctx, args| {
            let scope = Scope::all_companies(&ctx.cross_tenant()?);
            let mut doc = Object::new();
            doc.insert("name".into(), Value::from(str_arg(&args, "name")));
            Ok(Value::from(ctx.db.scoped(&scope).insert("companies", doc)?))
        },
    )
    .cross_tenant();
    let note_args = || v::object([("company", v::string()), ("text", v::string())]);
    r.mutation_untyped("tenancy:addNote", note_args(), |ctx, args| {
        let scope = company_scope(&ctx.db, &args)?;
        let mut doc = Object::new();
        doc.insert("text".into(), Value::from(str_arg(&args, "text")));
        Ok(Value::from(ctx.db.scoped(&scope).insert("notes", doc)?))
    });
    // Tries to file a note under another company than its scope.
    r.mutation_untyped(
        "tenancy:addNoteElsewhere",
        v::object([("company", v::string()), ("other", v::string())]),
        |ctx, args| {
            let scope = company_scope(&ctx.db, &args)?;
            let mut doc = Object::new();
            doc.insert("text".into(), Value::from("sneaky"));
            doc.insert("company_id".into(), Value::from(str_arg(&args, "other")));
            Ok(Value::from(ctx.db.scoped(&scope).insert("notes", doc)?))
        },
    );
    r.query_untyped(
        "tenancy:listNotes",
        v::object([("company", v::string())]),
        |ctx, args| {
            let scope = company_scope(&ctx.db, &args)?;
            let notes = ctx
                .db
                .scoped(&scope)
                .query("notes", "by_company", |q| q)?
                .collect()?;
            Ok(Value::Array(
                notes
                    .iter()
                    .map(|d| d.get("text").cloned().unwrap_or(Value::Null))
                    .collect(),
            ))
        },
    );
    r.query_untyped(
        "tenancy:getNote",
        v::object([("company", v::string()), ("id", v::string())]),
        |ctx, args| {
            let scope = company_scope(&ctx.db, &args)?;
            let note = ctx
                .db
                .scoped(&scope)
                .get_in("notes", str_arg(&args, "id"))?;
            Ok(note.map(|d| d.to_value()).unwrap_or(Value::Null))
        },
    );
    r.mutation_untyped(
        "tenancy:deleteNote",
        v::object([("company", v::string()), ("id", v::string())]),
        |ctx, args| {
            let scope = company_scope(&ctx.db, &args)?;
            let id = ctx
                .db
                .normalize_id("notes", str_arg(&args, "id"))
                .ok_or_else(|| FunctionError::not_found("Record not found"))?;
            ctx.db.scoped(&scope).delete(&id)?;
            Ok(Value::Null)
        },
    );
    // Forgets the scope: must fail loudly rather than read every company's notes.
    r.query_untyped("tenancy:listUnscoped", no_args(), |ctx, _| {
        Ok(Value::from(ctx.db.query("notes")?.collect()?.len() as f64))
    });
    r.query_untyped("tenancy:countAll", no_args(), |ctx, _| {
        let scope = Scope::all_companies(&ctx.cross_tenant()?);
        Ok(Value::from(
            ctx.db
                .scoped(&scope)
                .query("notes", "by_company", |q| q)?
                .collect()?
                .len() as f64,
        ))
    })
    .cross_tenant();
    // Asks for all companies without being declared cross-tenant.
    r.query_untyped("tenancy:countAllUndeclared", no_args(), |ctx, _| {
        let scope = Scope::all_companies(&ctx.cross_tenant()?);
        Ok(Value::from(
            ctx.db
                .scoped(&scope)
                .query("notes", "by_company", |q| q)?
                .collect()?
                .len() as f64,
        ))
    });
    // Records an attempt durably, then fails (as a failed sign-in does).
    r.mutation_untyped(
        "tenancy:recordThenFail",
        v::object([("company", v::string())]),
        |ctx, args| {
            let scope = company_scope(&ctx.db, &args)?;
            let mut doc = Object::new();
            doc.insert("text".into(), Value::from("attempt"));
            ctx.db.scoped(&scope).insert("notes", doc)?;
            ctx.fail_after_commit(FunctionError::user(
                ErrorCode::Unauthenticated,
                "Invalid email or password",
            ))
        },
    );
    // The slow part runs before the transaction; the transaction sees its result.
    r.mutation_with_prepare_untyped(
        "tenancy:prepared",
        v::object([("text", v::string())]),
        |_, args| async move { Ok(str_arg(&args, "text").to_uppercase()) },
        |_, _, prepared: &String| Ok(Value::from(prepared.as_str())),
    );
}
