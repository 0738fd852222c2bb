//! Reading users and editing one's own profile: `users:listCompanyUsers`,
//! `users/listUsersForCompany` (system administrators) and `users:updateUserProfile`.

use functions::{FnResult, FunctionError, MutationCtx, QueryCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{Id, Typed, Value};

use super::protection::{protection, Protection};
use super::{parse_name, public_user, roles, text_of, PublicUser, UserDoc};
use crate::args::Success;
use crate::identity::{require_permission, require_session, Permission, Role};

const DEFAULT_LIMIT: f64 = 100.0;
const MAX_LIMIT: f64 = 500.0;

pub fn register(r: &mut Registry) {
    r.query("users:listCompanyUsers", list_company_users);
    r.query("users/listUsersForCompany", list_users_for_company)
        .cross_tenant();
    r.mutation("users:updateUserProfile", update_user_profile)
        .cross_tenant();
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListCompanyUsersArgs {
    search_term: Option<String>,
    role_filter: Option<String>,
    limit: Option<f64>,
}

/// A listed user with what the viewer may not do to them.
#[derive(Serialize, Typed)]
pub struct ListedUser {
    #[serde(flatten)]
    user: PublicUser,
    protection: Protection,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CompanyUsers {
    users: Vec<ListedUser>,
    total: usize,
    correlation_id: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct CompanyArgs {
    company_id: String,
}

/// A user in brief, as the system administrators' company pages list them.
#[derive(Serialize, Typed)]
pub struct UserBrief {
    #[serde(rename = "_id")]
    id: Id<UserDoc>,
    name: String,
    email: String,
    #[typed(validator = super::role_validator())]
    role: String,
    created_at: f64,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ProfileArgs {
    name: Option<String>,
    profile_image_url: Option<String>,
}

/// `users:listCompanyUsers`: the viewer's company, optionally searched (name or email) and filtered
/// by role (`"all"` means no filter), sorted by name.
fn list_company_users(
    ctx: &mut QueryCtx<'_>,
    args: ListCompanyUsersArgs,
) -> FnResult<CompanyUsers> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ViewUserProfiles)?;
    let correlation_id = ctx.request_id.as_str().to_string();
    // A user without a company (a system administrator) has no company users; the /users page
    // renders an empty list where an error would crash it.
    let Some(company) = viewer.company_id else {
        return Ok(CompanyUsers {
            users: Vec::new(),
            total: 0,
            correlation_id,
        });
    };
    let scope = Scope::company(company);
    let role = match args.role_filter.as_deref().map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(r) => Some(roles::parse("roleFilter", r)?),
    };
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1.0, MAX_LIMIT) as usize;
    let term = args
        .search_term
        .as_deref()
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
            let sole = sole_admin == Some(u.id);
            Ok(ListedUser {
                user: public_user(u)?,
                protection: protection(&viewer, u, sole),
            })
        })
        .collect::<FnResult<_>>()?;
    Ok(CompanyUsers {
        users: listed,
        total,
        correlation_id,
    })
}

/// `users/listUsersForCompany`: any company's users, for system administrators.
fn list_users_for_company(ctx: &mut QueryCtx<'_>, args: CompanyArgs) -> FnResult<Vec<UserBrief>> {
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
        .normalize_id("companies", &args.company_id)
        .ok_or_else(not_found)?;
    let scope = viewer.scope_for(&company, Some(&grant), Permission::ManageAllCompanies)?;
    let mut db = ctx.db.scoped(&scope);
    db.get(&company)?.ok_or_else(not_found)?;
    let users = db.query("users", "by_company", |q| q)?.collect()?;
    users
        .iter()
        .map(|u| {
            let user: UserDoc = functions::row(u)?;
            Ok(UserBrief {
                id: user.id,
                name: user.name,
                email: user.email,
                role: user.role,
                created_at: user.created_at,
            })
        })
        .collect()
}

/// `users:updateUserProfile`: the caller's own name and picture. An empty picture URL removes it.
fn update_user_profile(ctx: &mut MutationCtx<'_>, args: ProfileArgs) -> FnResult<Success> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let mut patch = Patch::new();
    if let Some(name) = args.name.as_deref() {
        patch.insert("name".into(), Some(Value::from(parse_name("name", name)?)));
    }
    if let Some(url) = args.profile_image_url.as_deref().map(str::trim) {
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
    Ok(Success { success: true })
}
