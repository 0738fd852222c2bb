//! Invitations in bulk: a deleted company's, and the export (never the token hash).

use functions::{CrossTenant, DbRead, DbWriter, FnResult, Scope};
use store::Document;
use values::Value;

use super::{read_rows, TABLE};
use crate::exports::exported;

const SECRET: [&str; 1] = ["token_hash"];

fn of_company(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<Document>> {
    Ok(db
        .read_scoped(scope)
        .query(TABLE, "by_company_status_created", |q| q)?
        .collect()?)
}

/// How many invitations (any status) the scope's company has.
pub fn count(db: &mut impl DbRead, scope: &Scope) -> FnResult<usize> {
    Ok(of_company(db, scope)?.len())
}

/// The addresses the scope's company invited (their emails go with the company).
pub fn emails(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<String>> {
    Ok(read_rows(&of_company(db, scope)?)?
        .into_iter()
        .map(|i| i.email)
        .collect())
}

/// Deletes every invitation of the scope's company; returns how many went.
pub fn delete_company_rows(db: &mut DbWriter<'_>, scope: &Scope) -> FnResult<usize> {
    let rows = of_company(db, scope)?;
    for row in &rows {
        db.scoped(scope).delete(&row.id)?;
    }
    Ok(rows.len())
}

/// Every invitation, without its token hash.
pub fn export_rows(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<Vec<Value>> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query(TABLE, "by_creation_time", |q| q)?
        .collect()?
        .iter()
        .map(|i| exported(i, &SECRET))
        .collect())
}

/// The field names `export_rows` leaves out.
pub fn export_removed() -> &'static [&'static str] {
    &SECRET
}
