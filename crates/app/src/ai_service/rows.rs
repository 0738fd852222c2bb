//! AI request logs and daily usage in bulk: a deleted company's, and the export of the logs.
//! Logs about an incident go with the incident (`CHILD_TABLES`); these are the rest.

use functions::{CrossTenant, DbRead, DbWriter, FnResult, Scope};
use store::Document;
use values::{DocumentId, Value};

use super::{LOGS, USAGE};

/// The ids of the scope's company's log and usage rows.
pub fn company_row_ids(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<DocumentId>> {
    let mut ids: Vec<DocumentId> = db
        .read_scoped(scope)
        .query(LOGS, "by_company_time", |q| q)?
        .collect()?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let usage = db
        .read_scoped(scope)
        .query(USAGE, "by_company_day", |q| q)?
        .collect()?;
    ids.extend(usage.into_iter().map(|r| r.id));
    Ok(ids)
}

/// Deletes the scope's company's log and usage rows; returns how many went.
pub fn delete_company_rows(db: &mut DbWriter<'_>, scope: &Scope) -> FnResult<usize> {
    let ids = company_row_ids(db, scope)?;
    for id in &ids {
        db.scoped(scope).delete(id)?;
    }
    Ok(ids.len())
}

/// Every AI request log (prompts and outputs, no credentials: provider keys live in config).
pub fn export_logs(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<Vec<Value>> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query(LOGS, "by_creation_time", |q| q)?
        .collect()?
        .iter()
        .map(Document::to_value)
        .collect())
}
