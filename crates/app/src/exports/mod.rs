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

use std::collections::BTreeMap;

use functions::{ErrorCode, FnResult, FunctionError, QueryCtx, Registry};
use serde::Serialize;
use values::{Typed, Value};

use crate::args::SessionArgs;
use crate::identity::{resolve, Role};
use crate::{ai_service, companies, impersonation, incidents, invitations, oauth};
use crate::{participants, prompts, users};

pub const VERSION: &str = "1.0";

pub fn register(r: &mut Registry) {
    r.query("exports:generateDatabaseExport", generate_database_export)
        .cross_tenant();
}

#[derive(Serialize, Typed)]
pub struct Export {
    metadata: Metadata,
    /// Each exported table's documents, as stored (less secrets): free-form.
    data: BTreeMap<String, Vec<Value>>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    exported_at: f64,
    export_type: String,
    version: String,
    record_counts: BTreeMap<String, usize>,
    total_records: usize,
    exported_by: String,
    sanitization: Sanitization,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Sanitization {
    removed_fields: RemovedFields,
    excluded_tables: Vec<String>,
    password_hashes_removed: bool,
    tokens_removed: bool,
}

/// The fields left out of each table that keeps its rows but not all their fields.
#[derive(Serialize, Typed)]
pub struct RemovedFields {
    users: Vec<String>,
    user_invitations: Vec<String>,
    impersonation_sessions: Vec<String>,
}

fn generate_database_export(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Export> {
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

    let mut counts = BTreeMap::new();
    let mut data = BTreeMap::new();
    let mut total = 0;
    for (table, rows) in tables {
        total += rows.len();
        counts.insert(table.to_string(), rows.len());
        data.insert(table.to_string(), rows);
    }
    // Whatever the export does not carry, named from the schema so a new table shows up here.
    let excluded = crate::schema()
        .tables
        .iter()
        .filter(|t| !data.contains_key(&t.name))
        .map(|t| t.name.clone())
        .collect();
    let removed = |fields: &[&str]| fields.iter().map(|f| f.to_string()).collect();
    // The struct's field names are these tables' names.
    debug_assert_eq!(invitations::TABLE, "user_invitations");
    debug_assert_eq!(impersonation::TABLE, "impersonation_sessions");
    let sanitization = Sanitization {
        removed_fields: RemovedFields {
            users: removed(users::rows::export_removed()),
            user_invitations: removed(invitations::rows::export_removed()),
            impersonation_sessions: removed(impersonation::rows::export_removed()),
        },
        excluded_tables: excluded,
        password_hashes_removed: true,
        tokens_removed: true,
    };
    tracing::info!(
        user = %viewer.user_id.encode(),
        records = total,
        "database export generated"
    );
    Ok(Export {
        metadata: Metadata {
            exported_at: now,
            export_type: "full".into(),
            version: VERSION.into(),
            record_counts: counts,
            total_records: total,
            exported_by: viewer.email.clone(),
            sanitization,
        },
        data,
    })
}

/// A document as exported, less `secret` fields (password and token hashes never leave the server).
pub fn exported(doc: &store::Document, secret: &[&str]) -> Value {
    let mut value = doc.to_value();
    if let Value::Object(fields) = &mut value {
        for name in secret {
            fields.remove(*name);
        }
    }
    value
}
