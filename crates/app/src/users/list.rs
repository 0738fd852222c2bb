//! Reading users and editing one's own profile: `users:listCompanyUsers`,
//! `users/listUsersForCompany` (system administrators) and `users:updateUserProfile`.

use functions::{FnResult, FunctionError, MutationCtx, QueryCtx, Registry, Scope};
use store::{Document, Patch};
use values::validator::v;
use values::{Object, Value};

use super::protection::protection;
use super::{parse_name, public_user, roles, text_of};
use crate::args::{object, opt_text, text, with_session};
use crate::identity::{require_permission, require_session, Permission, Role};

const DEFAULT_LIMIT: f64 = 100.0;
const MAX_LIMIT: f64 = 500.0;

pub fn register(r: &mut Registry) {
    r.query_untyped(
        "users:listCompanyUsers",
        with_session([
            ("searchTerm", v::optional(v::string())),
            ("roleFilter", v::optional(v::string())),
            ("limit", v::optional(v::number())),
        ]),
        list_company_users,
    );
    r.query_untyped(
        "users/listUsersForCompany",
        with_session([("companyId", v::string().into())]),
        list_users_for_company,
    )
    .cross_tenant();
    r.mutation_untyped(
        "users:updateUserProfile",
        with_session([
            ("name", v::optional(v::string())),
            ("profile_image_url", v::optional(v::string())),
        ]),
        update_user_profile,
    )
    .cross_tenant();
}

/// `users:listCompanyUsers`: the viewer's company, optionally searched (name or email) and filtered
/// by role (`"all"` means no filter), sorted by name.
fn list_company_users(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ViewUserProfiles)?;
    let correlation = Value::from(ctx.request_id.as_str());
    // A user without a company (a system administrator) has no company users; the /users page
    // renders an empty list where an error would crash it.
    let Some(company) = viewer.company_id else {
        return Ok(object([
            ("users", Some(Value::Array(Vec::new()))),
            ("total", Some(Value::from(0.0))),
            ("correlationId", Some(correlation)),
        ]));
    };
    let scope = Scope::company(company);
    let role = match opt_text(&args, "roleFilter").map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(r) => Some(roles::parse("roleFilter", r)?),
    };
    let limit = args
        .get("limit")
        .and_then(Value::as_f64)
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1.0, MAX_LIMIT) as usize;
    let term = opt_text(&args, "searchTerm")
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    let mut db = ctx.db.scoped(&scope);
    let query = match role {
        Some(role) => db.query("users", "by_company_role", |q| q.eq("role", role.as_str()))?,
        None => db.query("users", "by_company", |q| q)?,
    };
    let mut users: Vec<Document> = query
        .collect()?
        .into_iter()
        .filter(|u| {
            term.as_deref().is_none_or(|t| {
                text_of(u, "name").to_lowercase().contains(t)
                    || text_of(u, "email").to_lowercase().contains(t)
            })
        })
        .collect();
    users.sort_by_key(|u| text_of(u, "name").to_lowercase());
    // The company's only company admin cannot lose the role or be deleted; two rows tell.
    let admins = db
        .query("users", "by_company_role", |q| {
            q.eq("role", Role::CompanyAdmin.as_str())
        })?
        .take(2)?;
    let sole_admin = match admins.as_slice() {
        [only] => Some(only.id),
        _ => None,
    };
    let total = users.len();
    let listed = users
        .iter()
        .take(limit)
        .map(|u| {
            let mut row = public_user(u).into_object().unwrap_or_default();
            let sole = sole_admin == Some(u.id);
            row.insert("protection".into(), protection(&viewer, u, sole));
            Value::Object(row)
        })
        .collect();
    Ok(object([
        ("users", Some(Value::Array(listed))),
        ("total", Some(Value::from(total as f64))),
        ("correlationId", Some(correlation)),
    ]))
}

/// `users/listUsersForCompany`: any company's users, for system administrators.
fn list_users_for_company(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    if viewer.role != Role::SystemAdmin {
        return Err(FunctionError::forbidden(
            "Only system administrators can list the users of any company",
        ));
    }
    let grant = ctx.cross_tenant()?;
    let not_found = || FunctionError::not_found("Company not found");
    let company = ctx
        .db
        .normalize_id("companies", text(&args, "companyId"))
        .ok_or_else(not_found)?;
    let scope = viewer.scope_for(&company, Some(&grant), Permission::ManageAllCompanies)?;
    let mut db = ctx.db.scoped(&scope);
    db.get(&company)?.ok_or_else(not_found)?;
    let users = db.query("users", "by_company", |q| q)?.collect()?;
    Ok(Value::Array(
        users
            .iter()
            .map(|u| {
                object([
                    ("_id", Some(Value::from(u.id))),
                    ("name", u.get("name").cloned()),
                    ("email", u.get("email").cloned()),
                    ("role", u.get("role").cloned()),
                    ("created_at", u.get("created_at").cloned()),
                ])
            })
            .collect(),
    ))
}

/// `users:updateUserProfile`: the caller's own name and picture. An empty picture URL removes it.
fn update_user_profile(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let mut patch = Patch::new();
    if let Some(name) = opt_text(&args, "name") {
        patch.insert("name".into(), Some(Value::from(parse_name("name", name)?)));
    }
    if let Some(url) = opt_text(&args, "profile_image_url").map(str::trim) {
        let value = if url.is_empty() {
            None
        } else if url.len() <= 2048 && (url.starts_with("https://") || url.starts_with("http://")) {
            Some(Value::from(url))
        } else {
            return Err(FunctionError::validation(
                "profile_image_url",
                "The picture must be an http(s) URL",
            ));
        };
        patch.insert("profile_image_url".into(), value);
    }
    if !patch.is_empty() {
        // A user without a company (a system administrator) is reachable only through the
        // all-companies scope; the write touches nobody but the caller.
        let scope = match viewer.company_id {
            Some(company) => Scope::company(company),
            None => Scope::all_companies(&ctx.cross_tenant()?),
        };
        ctx.db.scoped(&scope).patch(&viewer.user_id, patch)?;
    }
    Ok(object([("success", Some(Value::from(true)))]))
}
