//! Companies and sites in bulk: the platform's counts, a company's sites (for cleanup), and the
//! export.

use std::collections::BTreeMap;

use functions::{CrossTenant, DbRead, DbWriter, FnResult, Scope};
use store::Document;
use values::Value;

use super::str_field;

/// How many companies there are, and how many hold each status.
pub fn count_all(
    db: &mut impl DbRead,
    grant: &CrossTenant,
) -> FnResult<(usize, BTreeMap<String, usize>)> {
    let all = Scope::all_companies(grant);
    let companies = db
        .read_scoped(&all)
        .query("companies", "by_status", |q| q)?
        .collect()?;
    let mut by_status = BTreeMap::new();
    for company in &companies {
        *by_status
            .entry(str_field(company, "status").to_string())
            .or_insert(0) += 1;
    }
    Ok((companies.len(), by_status))
}

/// How many sites there are in every company.
pub fn count_all_sites(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<usize> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query("sites", "by_creation_time", |q| q)?
        .count()? as usize)
}

fn sites_of(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<Document>> {
    Ok(db
        .read_scoped(scope)
        .query("sites", "by_company_name", |q| q)?
        .collect()?)
}

/// The names of the scope's company's sites, in name order.
pub fn site_names(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<String>> {
    Ok(sites_of(db, scope)?
        .iter()
        .map(|s| str_field(s, "name").to_string())
        .collect())
}

/// Deletes every site of the scope's company; returns how many went.
pub fn delete_sites(db: &mut DbWriter<'_>, scope: &Scope) -> FnResult<usize> {
    let sites = sites_of(db, scope)?;
    for site in &sites {
        db.scoped(scope).delete(&site.id)?;
    }
    Ok(sites.len())
}

fn export(db: &mut impl DbRead, grant: &CrossTenant, table: &str) -> FnResult<Vec<Value>> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query(table, "by_creation_time", |q| q)?
        .collect()?
        .iter()
        .map(Document::to_value)
        .collect())
}

/// Every company.
pub fn export_companies(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<Vec<Value>> {
    export(db, grant, "companies")
}

/// Every site.
pub fn export_sites(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<Vec<Value>> {
    export(db, grant, "sites")
}
