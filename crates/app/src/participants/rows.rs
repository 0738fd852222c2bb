//! Participants in bulk: counting them, a deleted company's, and the export.

use functions::{CrossTenant, DbRead, DbWriter, FnResult, Scope};
use store::Document;
use values::Value;

use super::TABLE;

fn of_company(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<Document>> {
    Ok(db
        .read_scoped(scope)
        .query(TABLE, "by_company_name", |q| q)?
        .collect()?)
}

/// How many participants exist in every company.
pub fn count_all(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<usize> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query(TABLE, "by_creation_time", |q| q)?
        .count()? as usize)
}

/// The scope's company's participants as "First Last", in name order.
pub fn names(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<String>> {
    let text = |p: &Document, f: &str| {
        p.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(of_company(db, scope)?
        .iter()
        .map(|p| format!("{} {}", text(p, "first_name"), text(p, "last_name")))
        .collect())
}

/// Deletes every participant of the scope's company; returns how many went. Incidents that refer
/// to them go first (cleanup deletes the company's incidents before its participants).
pub fn delete_company_rows(db: &mut DbWriter<'_>, scope: &Scope) -> FnResult<usize> {
    let rows = of_company(db, scope)?;
    for row in &rows {
        db.scoped(scope).delete(&row.id)?;
    }
    Ok(rows.len())
}

/// Every participant.
pub fn export_rows(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<Vec<Value>> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query(TABLE, "by_creation_time", |q| q)?
        .collect()?
        .iter()
        .map(Document::to_value)
        .collect())
}
