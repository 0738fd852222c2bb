//! `exports:generateDatabaseExport`: the whole database as one JSON document, for system
//! administrators (the web app's developer tools fetch it with a raw `POST /api/query` and save the
//! body). Each table comes from the module that owns it, without secrets: password hashes, lockout
//! state, and the hashes of invitation and impersonation tokens are left out, and sessions, reset
//! tokens, the email outbox (its bodies hold links with tokens), the audit log and other
//! bookkeeping tables are not exported at all (`metadata.sanitization` names them). No OAuth
//! provider tokens are stored anywhere.
//!
//! Not audited: the app calls it as a query, and a query cannot write. Each export is logged
//! instead (who, how many records).

use functions::{ErrorCode, FnResult, FunctionError, QueryCtx, Registry};
use values::{Object, Value};

use crate::args::{object, with_session};
use crate::identity::{resolve, Role};
use crate::{ai_service, companies, impersonation, incidents, invitations, oauth};
use crate::{participants, prompts, users};

pub const VERSION: &str = "1.0";

pub fn register(r: &mut Registry) {
    r.query_untyped(
        "exports:generateDatabaseExport",
        with_session([]),
        generate_database_export,
    )
    .cross_tenant();
}

fn generate_database_export(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    let Some(viewer) = resolve(&mut ctx.db, ctx.auth, now)? else {
        return Err(FunctionError::user(
            ErrorCode::Unauthenticated,
            "Authentication required. Please log in.",
        ));
    };
    // An impersonation token resolves to its target, never an administrator, so it is refused too.
    if viewer.role != Role::SystemAdmin {
        return Err(FunctionError::forbidden(
            "Unauthorized. System admin access required for database exports.",
        ));
    }
    let grant = ctx.cross_tenant()?;
    let db = &mut ctx.db;
    let mut tables: Vec<(&str, Vec<Value>)> = vec![
        ("companies", companies::rows::export_companies(db, &grant)?),
        ("users", users::rows::export_rows(db, &grant)?),
        (
            invitations::TABLE,
            invitations::rows::export_rows(db, &grant)?,
        ),
        ("sites", companies::rows::export_sites(db, &grant)?),
        (oauth::ACCOUNTS, oauth::rows::export_rows(db)?),
        (impersonation::TABLE, impersonation::rows::export_rows(db)?),
        (
            participants::TABLE,
            participants::rows::export_rows(db, &grant)?,
        ),
    ];
    tables.extend(incidents::rows::export_tables(db, &grant)?);
    tables.push((prompts::TABLE, prompts::rows::export_rows(db)?));
    tables.push((ai_service::LOGS, ai_service::rows::export_logs(db, &grant)?));

    let mut counts = Object::new();
    let mut data = Object::new();
    let mut total = 0;
    for (table, rows) in tables {
        total += rows.len();
        counts.insert(table.to_string(), Value::from(rows.len() as f64));
        data.insert(table.to_string(), Value::Array(rows));
    }
    // Whatever the export does not carry, named from the schema so a new table shows up here.
    let excluded = Value::Array(
        crate::schema()
            .tables
            .iter()
            .filter(|t| !data.contains_key(&t.name))
            .map(|t| Value::from(t.name.as_str()))
            .collect(),
    );
    let removed = |fields: &[&str]| Value::Array(fields.iter().map(|f| Value::from(*f)).collect());
    let sanitization = object([
        (
            "removedFields",
            Some(object([
                ("users", Some(removed(users::rows::export_removed()))),
                (
                    invitations::TABLE,
                    Some(removed(invitations::rows::export_removed())),
                ),
                (
                    impersonation::TABLE,
                    Some(removed(impersonation::rows::export_removed())),
                ),
            ])),
        ),
        ("excludedTables", Some(excluded)),
        ("passwordHashesRemoved", Some(Value::from(true))),
        ("tokensRemoved", Some(Value::from(true))),
    ]);
    tracing::info!(
        user = %viewer.user_id.encode(),
        records = total,
        "database export generated"
    );
    Ok(object([
        (
            "metadata",
            Some(object([
                ("exportedAt", Some(Value::from(now))),
                ("exportType", Some(Value::from("full"))),
                ("version", Some(Value::from(VERSION))),
                ("recordCounts", Some(Value::Object(counts))),
                ("totalRecords", Some(Value::from(total as f64))),
                ("exportedBy", Some(Value::from(viewer.email.as_str()))),
                ("sanitization", Some(sanitization)),
            ])),
        ),
        ("data", Some(Value::Object(data))),
    ]))
}
