//! Every company in brief, for other modules' system-wide views (the platform user list and its
//! statistics), so they need not read the companies table themselves.

use functions::{CrossTenant, DbRead, FnResult, Scope};
use values::{DocumentId, Value};

use super::str_field;

/// A company's id, name, status and creation time.
#[derive(Clone, Debug)]
pub struct CompanyEntry {
    pub id: DocumentId,
    pub name: String,
    pub status: String,
    pub created_at: Option<f64>,
}

/// Every company, sorted by name (ignoring case). `grant` proves the caller is cross-tenant.
pub fn directory(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<Vec<CompanyEntry>> {
    let all = Scope::all_companies(grant);
    let companies = db
        .read_scoped(&all)
        .query("companies", "by_creation_time", |q| q)?
        .collect()?;
    let mut entries: Vec<CompanyEntry> = companies
        .iter()
        .map(|c| CompanyEntry {
            id: c.id,
            name: str_field(c, "name").to_string(),
            status: str_field(c, "status").to_string(),
            created_at: c.get("created_at").and_then(Value::as_f64),
        })
        .collect();
    entries.sort_by_cached_key(|e| e.name.to_lowercase());
    Ok(entries)
}

/// Whether `company` exists and `scope` reaches it.
pub fn exists(db: &mut impl DbRead, scope: &Scope, company: &DocumentId) -> FnResult<bool> {
    Ok(db.read_scoped(scope).get(company)?.is_some())
}
