//! Sites, the physical locations of a company. Every signed-in user lists their own company's sites
//! (`sites/list`); `sites/admin` creates, renames and deletes them: platform administrators
//! (`manage_all_companies`) for any company, company admins (`company_configuration`) for their own.
//! Names are unique per company ignoring case, a company always keeps at least one site, and a
//! site that participants or incidents refer to is not deleted.

use functions::{CrossTenant, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Scope};
use functions::{DbRead, Registry};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Id, Object, Typed, Value};

use super::{company_not_found, scope_for_company, str_field, CompanyIdArgs};
use crate::args::{SessionArgs, Success};
use crate::identity::{require_permission, Permission, Viewer};

const MIN_NAME_CHARS: usize = 2;
const MAX_NAME_CHARS: usize = 100;

pub fn register(r: &mut Registry) {
    r.query("sites/list:listCompanySites", list_company_sites);
    r.query("sites/admin:listSites", list_sites).cross_tenant();
    r.mutation("sites/admin:createSite", create_site)
        .cross_tenant();
    r.mutation("sites/admin:updateSite", update_site)
        .cross_tenant();
    r.mutation("sites/admin:deleteSite", delete_site)
        .cross_tenant();
}

/// A document of the sites table, as stored and as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "sites")]
pub struct SiteDoc {
    #[serde(rename = "_id")]
    pub id: Id<SiteDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: String,
    pub name: String,
    pub created_at: f64,
    #[typed(id = "users")]
    pub created_by: Option<String>,
    pub updated_at: Option<f64>,
}

/// `{_id, name, company_id}`: a site as lists attach it to their rows.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct SiteSummary {
    #[serde(rename = "_id")]
    pub id: Id<SiteDoc>,
    pub name: String,
    #[typed(id = "companies")]
    pub company_id: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct CreateSiteArgs {
    #[typed(id = "companies")]
    company_id: String,
    name: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct UpdateSiteArgs {
    #[typed(id = "sites")]
    site_id: String,
    name: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct SiteIdArgs {
    #[typed(id = "sites")]
    site_id: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct SiteCreated {
    site_id: Id<SiteDoc>,
}

/// A site with how many participants are at it.
#[derive(Serialize, Typed)]
pub struct SiteWithCount {
    #[serde(flatten)]
    site: SiteDoc,
    participant_count: f64,
}

fn site_not_found() -> FunctionError {
    FunctionError::field(ErrorCode::NotFound, "siteId", "Site not found")
}

/// `sites/list:listCompanySites`: `[{_id, name, company_id}]` of the caller's company, by name;
/// `[]` for callers without a company (system administrators), whose incident forms and filters
/// render an empty site list rather than crash.
fn list_company_sites(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Vec<SiteSummary>> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    if viewer.company_id.is_none() {
        return Ok(Vec::new());
    }
    let scope = viewer.company_scope()?;
    Ok(sites_of(&mut ctx.db, &scope)?
        .iter()
        .map(SiteRef::summary)
        .collect())
}

/// The scope's company's sites, in name order.
fn company_sites(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<Document>> {
    Ok(db
        .read_scoped(scope)
        .query("sites", "by_company_name", |q| q)?
        .collect()?)
}

/// A site as other modules see it: its id, name, company and creation time.
#[derive(Clone, Debug)]
pub struct SiteRef {
    pub id: DocumentId,
    pub name: String,
    pub company_id: String,
    pub created_at: f64,
}

impl SiteRef {
    /// `{_id, name, company_id}`, the shape lists attach to their rows.
    pub fn summary(&self) -> SiteSummary {
        SiteSummary {
            id: self.id.into(),
            name: self.name.clone(),
            company_id: self.company_id.clone(),
        }
    }
}

/// The sites of the scope's company, in name order.
pub fn sites_of(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<SiteRef>> {
    Ok(company_sites(db, scope)?
        .iter()
        .map(|s| SiteRef {
            id: s.id,
            name: str_field(s, "name").to_string(),
            company_id: str_field(s, "company_id").to_string(),
            created_at: s.get("created_at").and_then(Value::as_f64).unwrap_or(0.0),
        })
        .collect())
}

/// A site administrator: the permission every `sites/admin` function requires.
fn site_admin(db: &mut impl DbRead, auth: &functions::Auth, now: f64) -> FnResult<Viewer> {
    require_permission(db, auth, now, Permission::CompanyConfiguration)
}

/// The scope of `companyId` after checking the company exists and the viewer may manage it.
fn company_scope_arg(
    db: &mut impl DbRead,
    viewer: &Viewer,
    grant: &CrossTenant,
    company_id: &str,
) -> FnResult<(DocumentId, Scope)> {
    let company = db
        .normalize_id("companies", company_id)
        .ok_or_else(company_not_found)?;
    let scope = scope_for_company(viewer, &company, grant)?;
    db.read_scoped(&scope)
        .get(&company)?
        .ok_or_else(company_not_found)?;
    Ok((company, scope))
}

/// The site `siteId` names and a scope limited to its company. Company admins look only inside
/// their own company, so another company's site answers exactly like a missing one.
fn site_arg(
    db: &mut impl DbRead,
    viewer: &Viewer,
    grant: &CrossTenant,
    site_id: &str,
) -> FnResult<(Document, Scope)> {
    let lookup = if viewer.has(Permission::ManageAllCompanies) {
        viewer.all_companies_scope(grant, Permission::ManageAllCompanies)?
    } else {
        viewer.company_scope()?
    };
    let site = db
        .read_scoped(&lookup)
        .get_in("sites", site_id)?
        .ok_or_else(site_not_found)?;
    let company = db
        .normalize_id("companies", str_field(&site, "company_id"))
        .ok_or_else(|| FunctionError::internal("site without a valid company"))?;
    let scope = viewer.scope_for(&company, Some(grant), Permission::ManageAllCompanies)?;
    Ok((site, scope))
}

/// The trimmed new name, refused when too short or long or already used in the company (ignoring
/// case; `except` is the site being renamed).
fn checked_name(
    db: &mut impl DbRead,
    scope: &Scope,
    name: &str,
    except: Option<&DocumentId>,
) -> FnResult<String> {
    let name = name.trim().to_string();
    let chars = name.chars().count();
    if chars < MIN_NAME_CHARS {
        return Err(FunctionError::validation(
            "name",
            format!("Site name must be at least {MIN_NAME_CHARS} characters"),
        ));
    }
    if chars > MAX_NAME_CHARS {
        return Err(FunctionError::validation(
            "name",
            format!("Site name must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    let wanted = name.to_lowercase();
    // A company has a handful of sites, so comparing against all of them is cheap.
    let clash = company_sites(db, scope)?
        .iter()
        .any(|s| Some(&s.id) != except && str_field(s, "name").to_lowercase() == wanted);
    if clash {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "name",
            format!("A site named '{name}' already exists in this company"),
        ));
    }
    Ok(name)
}

/// `sites/admin:listSites`: the company's site documents, by name, each with `participant_count`
/// (the site page shows it; the reference always sent 0).
fn list_sites(ctx: &mut QueryCtx<'_>, args: CompanyIdArgs) -> FnResult<Vec<SiteWithCount>> {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_scope_arg(&mut ctx.db, &viewer, &grant, &args.company_id)?;
    let sites = company_sites(&mut ctx.db, &scope)?;
    let mut out = Vec::with_capacity(sites.len());
    for site in sites {
        let count = crate::participants::count_at_site(&mut ctx.db, &scope, &site.id)?;
        out.push(SiteWithCount {
            site: functions::row(&site)?,
            participant_count: count as f64,
        });
    }
    Ok(out)
}

/// `sites/admin:createSite`: `{siteId}`.
fn create_site(ctx: &mut MutationCtx<'_>, args: CreateSiteArgs) -> FnResult<SiteCreated> {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (company, scope) = company_scope_arg(&mut ctx.db, &viewer, &grant, &args.company_id)?;
    let name = checked_name(&mut ctx.db, &scope, &args.name, None)?;
    let mut site = Object::new();
    site.insert("company_id".into(), Value::from(company));
    site.insert("name".into(), Value::from(name));
    site.insert("created_at".into(), Value::from(now));
    site.insert("created_by".into(), Value::from(viewer.user_id));
    let id = ctx.db.scoped(&scope).insert("sites", site)?;
    Ok(SiteCreated { site_id: id.into() })
}

/// `sites/admin:updateSite`: renames a site.
fn update_site(ctx: &mut MutationCtx<'_>, args: UpdateSiteArgs) -> FnResult<Success> {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (site, scope) = site_arg(&mut ctx.db, &viewer, &grant, &args.site_id)?;
    let name = checked_name(&mut ctx.db, &scope, &args.name, Some(&site.id))?;
    let mut patch = Patch::new();
    patch.insert("name".into(), Some(Value::from(name)));
    patch.insert("updated_at".into(), Some(Value::from(now)));
    ctx.db.scoped(&scope).patch(&site.id, patch)?;
    Ok(Success { success: true })
}

/// `sites/admin:deleteSite`: deletes a site unless it is the company's last or participants or
/// incidents refer to it.
fn delete_site(ctx: &mut MutationCtx<'_>, args: SiteIdArgs) -> FnResult<Success> {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (site, scope) = site_arg(&mut ctx.db, &viewer, &grant, &args.site_id)?;
    // Only whether a second site exists matters, so read at most two.
    let sites = ctx
        .db
        .scoped(&scope)
        .query("sites", "by_company_name", |q| q)?
        .take(2)?;
    if sites.len() < 2 {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "siteId",
            "The last site of a company cannot be deleted",
        ));
    }
    let participants = crate::participants::refers_to_site(&mut ctx.db, &scope, &site.id)?;
    let incidents = crate::incidents::refers_to_site(&mut ctx.db, &scope, &site.id)?;
    let users = match (participants, incidents) {
        (true, true) => Some("participants and incidents"),
        (true, false) => Some("participants"),
        (false, true) => Some("incidents"),
        (false, false) => None,
    };
    if let Some(users) = users {
        // Deleting would leave records pointing at a site that no longer exists.
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "siteId",
            format!(
                "This site cannot be deleted: {users} refer to it; move them to another site first"
            ),
        ));
    }
    ctx.db.scoped(&scope).delete(&site.id)?;
    Ok(Success { success: true })
}
