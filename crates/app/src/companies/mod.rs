//! Companies (the tenants) and their sites: creating a company with its first admin and "Primary"
//! site, reading and listing companies, changing their details and status, managing sites, the
//! platform totals, and deleting test companies with everything in them (`cleanup`).
//!
//! Error codes. The reference answered site errors with its own codes; here every error carries one
//! of the stable `FunctionError` codes, and the `field` it names tells the cases apart:
//!
//! | reference code             | code        | field       |
//! |----------------------------|-------------|-------------|
//! | COMPANY_NOT_FOUND          | `NOT_FOUND` | `companyId` |
//! | SITE_NOT_FOUND             | `NOT_FOUND` | `siteId`    |
//! | INVALID_SITE_NAME          | `VALIDATION`| `name`      |
//! | DUPLICATE_SITE_NAME        | `CONFLICT`  | `name`      |
//! | LAST_SITE_DELETE_FORBIDDEN | `CONFLICT`  | `siteId`    |
//! | DUPLICATE_EMAIL            | `CONFLICT`  | `adminEmail`|

mod admin;
mod cleanup;
mod create;
mod directory;
mod read;
pub mod rows;
mod sites;
mod update;

pub use directory::{directory, exists, CompanyEntry};
pub use sites::{sites_of, SiteDoc, SiteRef, SiteSummary};

use config::Urls;
use functions::{DbRead, ErrorCode, FnResult, FunctionError, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Id, Typed, Validator, Value};

use crate::identity::{Permission, Viewer};

pub const STATUSES: [&str; 4] = ["active", "trial", "suspended", "test"];
/// The site every new company starts with.
pub const PRIMARY_SITE: &str = "Primary";

pub fn tables() -> Vec<TableDef> {
    vec![
        TableDef::new("companies")
            .field("name", v::string())
            .field("slug", v::string())
            .field("contact_email", v::string())
            .field("status", status_validator())
            .field("created_at", v::number())
            .optional("created_by", v::id("users"))
            .optional("updated_at", v::number())
            .index("by_slug", &["slug"])
            .index("by_status", &["status"])
            .index("by_contact_email", &["contact_email"])
            .tenant("_id"),
        TableDef::new("sites")
            .field("company_id", v::id("companies"))
            .field("name", v::string())
            .field("created_at", v::number())
            .optional("created_by", v::id("users"))
            .optional("updated_at", v::number())
            .index("by_company_name", &["company_id", "name"])
            .tenant("company_id"),
    ]
}

fn status_validator() -> Validator {
    v::union(STATUSES.iter().map(|s| v::literal(*s)).collect())
}

/// A document of the companies table, as stored and as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "companies")]
pub struct CompanyDoc {
    #[serde(rename = "_id")]
    pub id: Id<CompanyDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub name: String,
    pub slug: String,
    pub contact_email: String,
    #[typed(validator = status_validator())]
    pub status: String,
    pub created_at: f64,
    #[typed(id = "users")]
    pub created_by: Option<String>,
    pub updated_at: Option<f64>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![
        ("companies", CompanyDoc::validator()),
        ("sites", SiteDoc::validator()),
    ]
}

/// The arguments of the functions that name one company.
#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct CompanyIdArgs {
    #[typed(id = "companies")]
    pub company_id: String,
}

pub fn register(r: &mut Registry, urls: &Urls) {
    let create_urls = urls.clone();
    r.mutation("companies:createCompany", move |ctx, args| {
        create::create_company(ctx, &create_urls, args)
    })
    .cross_tenant();

    r.query(
        "companies/getCompany:getCurrentUserCompany",
        read::get_current_user_company,
    );
    r.mutation(
        "companies/updateCompany:updateCompany",
        update::update_company,
    )
    .cross_tenant();
    r.query("companies/getCompanyDetails", read::get_company_details)
        .cross_tenant();

    r.query(
        "companies/admin:listAllCompanies",
        admin::list_all_companies,
    )
    .cross_tenant();
    r.query(
        "companies/admin:getCompanyForEdit",
        admin::get_company_for_edit,
    )
    .cross_tenant();
    r.query(
        "companies/admin:getSystemMetrics",
        admin::get_system_metrics,
    )
    .cross_tenant();
    r.query(
        "companies/admin:previewTestCompanyCleanup",
        cleanup::preview,
    )
    .cross_tenant();
    r.mutation(
        "companies/admin:executeTestCompanyCleanup",
        cleanup::execute,
    )
    .cross_tenant();
    r.mutation("companies/admin:updateCompany", admin::update_company)
        .cross_tenant();

    sites::register(r);
}

/// "Company not found" (the reference's COMPANY_NOT_FOUND), also the answer for another company's id.
fn company_not_found() -> FunctionError {
    FunctionError::field(ErrorCode::NotFound, "companyId", "Company not found")
}

/// The scope for acting on `company`: the viewer's own company, or any company for holders of
/// `manage_all_companies` (the function must be cross-tenant). Anything else answers exactly as a
/// missing company would, so ids of other tenants cannot be probed.
fn scope_for_company(
    viewer: &Viewer,
    company: &DocumentId,
    grant: &functions::CrossTenant,
) -> FnResult<Scope> {
    if viewer.company_id.as_ref() != Some(company) && !viewer.has(Permission::ManageAllCompanies) {
        return Err(company_not_found());
    }
    viewer.scope_for(company, Some(grant), Permission::ManageAllCompanies)
}

/// A company document as its row type.
fn company_row(doc: &store::Document) -> FnResult<CompanyDoc> {
    functions::row(doc)
}

fn str_field<'a>(doc: &'a store::Document, name: &str) -> &'a str {
    doc.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The name of the company `id`, for other modules' listings; `None` when it is missing or outside
/// `scope`.
pub fn name_of(db: &mut impl DbRead, scope: &Scope, id: &str) -> FnResult<Option<String>> {
    Ok(db
        .read_scoped(scope)
        .get_in("companies", id)?
        .map(|c| str_field(&c, "name").to_string()))
}

/// A URL-safe identifier from a company name: lower case, runs of anything outside `[a-z0-9]`
/// become one `-`, none at either end. Callers add `-2`, `-3`… when it is taken.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    // Keep slugs short enough for URLs; cut on a character boundary (all ASCII here).
    slug.truncate(60);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "company".to_string()
    } else {
        slug.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs() {
        assert_eq!(slugify("ABC Care"), "abc-care");
        assert_eq!(
            slugify("  St. Mary's -- Care & Support! "),
            "st-mary-s-care-support"
        );
        assert_eq!(slugify("Café 21"), "caf-21");
        assert_eq!(slugify("!!!"), "company");
        assert!(slugify(&"x".repeat(200)).len() <= 60);
    }
}
