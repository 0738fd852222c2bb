//! Incidents in bulk: counting them, deleting a company's with every child row and its status
//! counts, and the export of incidents and their exported child tables.

use functions::{CrossTenant, DbRead, DbWriter, FnResult, Scope};
use store::Document;
use values::Value;

use super::children::{rows_of, CHILD_TABLES};
use super::{counts, TABLE};

fn of_company(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<Document>> {
    Ok(db
        .read_scoped(scope)
        .query(TABLE, "by_company_created", |q| q)?
        .collect()?)
}

/// How many incidents exist in every company.
pub fn count_all(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<usize> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query(TABLE, "by_creation_time", |q| q)?
        .count()? as usize)
}

/// What deleting the scope's company's incidents removes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub incidents: usize,
    /// Rows of `CHILD_TABLES` and of the status counts.
    pub dependents: usize,
}

fn count_rows(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<Document>> {
    Ok(db
        .read_scoped(scope)
        .query(counts::TABLE, "by_company_scope", |q| q)?
        .collect()?)
}

/// The ids of every row `delete_company_rows` would remove: incidents, their child rows and the
/// status counts (child tables such as AI logs may also be counted by their own module, so callers
/// that add counts up de-duplicate by id). `.0` is how many of them are incidents.
pub fn company_row_ids(
    db: &mut impl DbRead,
    scope: &Scope,
) -> FnResult<(usize, Vec<values::DocumentId>)> {
    let incidents = of_company(db, scope)?;
    let mut ids: Vec<_> = count_rows(db, scope)?.into_iter().map(|r| r.id).collect();
    for incident in &incidents {
        for child in CHILD_TABLES {
            ids.extend(
                rows_of(db, scope, child, &incident.id)?
                    .into_iter()
                    .map(|r| r.id),
            );
        }
        ids.push(incident.id);
    }
    Ok((incidents.len(), ids))
}

/// Deletes every incident of the scope's company with all its child rows, and the company's status
/// counts (nothing is left to count).
pub fn delete_company_rows(db: &mut DbWriter<'_>, scope: &Scope) -> FnResult<Removed> {
    let incidents = of_company(db, scope)?;
    let mut dependents = 0;
    for incident in &incidents {
        for child in CHILD_TABLES {
            for row in rows_of(db, scope, child, &incident.id)? {
                db.scoped(scope).delete(&row.id)?;
                dependents += 1;
            }
        }
        db.scoped(scope).delete(&incident.id)?;
    }
    for row in count_rows(db, scope)? {
        db.scoped(scope).delete(&row.id)?;
        dependents += 1;
    }
    Ok(Removed {
        incidents: incidents.len(),
        dependents,
    })
}

/// Every incident, then every exported child table, as `(table, rows)`.
pub fn export_tables(
    db: &mut impl DbRead,
    grant: &CrossTenant,
) -> FnResult<Vec<(&'static str, Vec<Value>)>> {
    let all = Scope::all_companies(grant);
    let mut tables = Vec::new();
    for table in std::iter::once(TABLE).chain(
        CHILD_TABLES
            .iter()
            .filter(|c| c.exported())
            .map(|c| c.table),
    ) {
        let rows = db
            .read_scoped(&all)
            .query(table, "by_creation_time", |q| q)?
            .collect()?;
        tables.push((table, rows.iter().map(Document::to_value).collect()));
    }
    Ok(tables)
}
