//! Sites, the physical locations of a company. Every signed-in user lists their own company's sites
//! (`sites/list`); `sites/admin` creates, renames and deletes them: platform administrators
//! (`manage_all_companies`) for any company, company admins (`company_configuration`) for their own.
//! Names are unique per company ignoring case, a company always keeps at least one site, and a
//! site that participants or incidents refer to is not deleted.

use functions::{CrossTenant, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Scope};
use functions::{DbRead, Registry};
use store::{Document, Patch};
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{company_not_found, scope_for_company, str_field};
use crate::args::{object, text, with_session};
use crate::identity::{require_permission, Permission, Viewer};

const MIN_NAME_CHARS: usize = 2;
const MAX_NAME_CHARS: usize = 100;

pub fn register(r: &mut Registry) {
    r.query_untyped(
        "sites/list:listCompanySites",
        with_session([]),
        list_company_sites,
    );
    r.query_untyped(
        "sites/admin:listSites",
        with_session([("companyId", v::id("companies").into())]),
        list_sites,
    )
    .cross_tenant();
    r.mutation_untyped(
        "sites/admin:createSite",
        with_session([
            ("companyId", v::id("companies").into()),
            ("name", v::string().into()),
        ]),
        create_site,
    )
    .cross_tenant();
    r.mutation_untyped(
        "sites/admin:updateSite",
        with_session([
            ("siteId", v::id("sites").into()),
            ("name", v::string().into()),
        ]),
        update_site,
    )
    .cross_tenant();
    r.mutation_untyped(
        "sites/admin:deleteSite",
        with_session([("siteId", v::id("sites").into())]),
        delete_site,
    )
    .cross_tenant();
}

fn site_not_found() -> FunctionError {
    FunctionError::field(ErrorCode::NotFound, "siteId", "Site not found")
}

/// `sites/list:listCompanySites`: `[{_id, name, company_id}]` of the caller's company, by name;
/// `[]` for callers without a company (system administrators), whose incident forms and filters
/// render an empty site list rather than crash.
fn list_company_sites(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    if viewer.company_id.is_none() {
        return Ok(Value::Array(Vec::new()));
    }
    let scope = viewer.company_scope()?;
    let sites = company_sites(&mut ctx.db, &scope)?;
    Ok(Value::Array(
        sites
            .iter()
            .map(|s| {
                object([
                    ("_id", Some(Value::from(s.id))),
                    ("name", s.get("name").cloned()),
                    ("company_id", s.get("company_id").cloned()),
                ])
            })
            .collect(),
    ))
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
    pub fn to_value(&self) -> Value {
        object([
            ("_id", Some(Value::from(self.id))),
            ("name", Some(Value::from(self.name.as_str()))),
            ("company_id", Some(Value::from(self.company_id.as_str()))),
        ])
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
fn site_admin(
    db: &mut impl DbRead,
    auth: &functions::Auth,
    _args: &Object,
    now: f64,
) -> FnResult<Viewer> {
    require_permission(db, auth, now, Permission::CompanyConfiguration)
}

/// The scope of `companyId` after checking the company exists and the viewer may manage it.
fn company_scope_arg(
    db: &mut impl DbRead,
    viewer: &Viewer,
    grant: &CrossTenant,
    args: &Object,
) -> FnResult<(DocumentId, Scope)> {
    let company = db
        .normalize_id("companies", text(args, "companyId"))
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
    args: &Object,
) -> FnResult<(Document, Scope)> {
    let lookup = if viewer.has(Permission::ManageAllCompanies) {
        viewer.all_companies_scope(grant, Permission::ManageAllCompanies)?
    } else {
        viewer.company_scope()?
    };
    let site = db
        .read_scoped(&lookup)
        .get_in("sites", text(args, "siteId"))?
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
    args: &Object,
    except: Option<&DocumentId>,
) -> FnResult<String> {
    let name = text(args, "name").trim().to_string();
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
fn list_sites(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_scope_arg(&mut ctx.db, &viewer, &grant, &args)?;
    let sites = company_sites(&mut ctx.db, &scope)?;
    let mut out = Vec::with_capacity(sites.len());
    for site in sites {
        let count = crate::participants::count_at_site(&mut ctx.db, &scope, &site.id)?;
        let mut value = site.into_value().into_object().unwrap_or_default();
        value.insert("participant_count".into(), Value::from(count as f64));
        out.push(Value::Object(value));
    }
    Ok(Value::Array(out))
}

/// `sites/admin:createSite`: `{siteId}`.
fn create_site(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (company, scope) = company_scope_arg(&mut ctx.db, &viewer, &grant, &args)?;
    let name = checked_name(&mut ctx.db, &scope, &args, None)?;
    let mut site = Object::new();
    site.insert("company_id".into(), Value::from(company));
    site.insert("name".into(), Value::from(name));
    site.insert("created_at".into(), Value::from(now));
    site.insert("created_by".into(), Value::from(viewer.user_id));
    let id = ctx.db.scoped(&scope).insert("sites", site)?;
    Ok(object([("siteId", Some(Value::from(id)))]))
}

/// `sites/admin:updateSite`: renames a site.
fn update_site(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (site, scope) = site_arg(&mut ctx.db, &viewer, &grant, &args)?;
    let name = checked_name(&mut ctx.db, &scope, &args, Some(&site.id))?;
    let mut patch = Patch::new();
    patch.insert("name".into(), Some(Value::from(name)));
    patch.insert("updated_at".into(), Some(Value::from(now)));
    ctx.db.scoped(&scope).patch(&site.id, patch)?;
    Ok(object([("success", Some(Value::from(true)))]))
}

/// `sites/admin:deleteSite`: deletes a site unless it is the company's last or participants or
/// incidents refer to it.
fn delete_site(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = site_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (site, scope) = site_arg(&mut ctx.db, &viewer, &grant, &args)?;
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
    Ok(object([("success", Some(Value::from(true)))]))
}
