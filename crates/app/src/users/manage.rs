//! Managing other users (`manage_users`): `users:createUser`, `users:updateUser`,
//! `users:updateRole`, `users:deleteUser`. Company admins act within their company (another
//! company's user answers exactly like a missing one); holders of `manage_all_companies` act on any.
//! Nobody touches a user above their own role, and a company never loses its last company admin.

use config::Urls;
use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Id, Object, Typed, Value};

use super::{email_in_use, manage_scope, parse_name, roles, text_of, Email, UserDoc};
use crate::audit::{self, Entry, Event};
use crate::auth::reset;
use crate::identity::{require_permission, sessions, Permission, Role, Viewer};

pub fn register(r: &mut Registry, urls: &Urls) {
    let create_urls = urls.clone();
    r.mutation("users:createUser", move |ctx, args| {
        create_user(ctx, &create_urls, args)
    })
    .cross_tenant();
    r.mutation("users:updateUser", update_user).cross_tenant();
    r.mutation("users:updateRole", update_role).cross_tenant();
    r.mutation("users:deleteUser", delete_user).cross_tenant();
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct CreateUserArgs {
    name: String,
    email: String,
    role: String,
    // For holders of manage_all_companies; everyone else creates in their own company.
    company_id: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    success: bool,
    user_id: Id<UserDoc>,
    message: String,
    correlation_id: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct UpdateUserArgs {
    user_id: String,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct UpdateRoleArgs {
    user_id: String,
    new_role: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct UserIdArgs {
    user_id: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    success: bool,
    correlation_id: String,
}

fn done(ctx: &MutationCtx<'_>) -> Done {
    Done {
        success: true,
        correlation_id: ctx.request_id.as_str().to_string(),
    }
}

fn company_of(ctx: &MutationCtx<'_>, user: &Document) -> Option<DocumentId> {
    ctx.db
        .normalize_id("companies", text_of(user, "company_id"))
}

/// The manager and the user named by `userId`, which the manager may act on.
struct Target {
    viewer: Viewer,
    scope: Scope,
    user: Document,
    role: Role,
}

fn target(ctx: &mut MutationCtx<'_>, user_id: &str) -> FnResult<Target> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ManageUsers)?;
    let scope = manage_scope(&viewer, &ctx.cross_tenant()?)?;
    let user = ctx
        .db
        .scoped(&scope)
        .get_in("users", user_id)?
        .ok_or_else(|| FunctionError::not_found("User not found"))?;
    let role = Role::parse(text_of(&user, "role"))
        .ok_or_else(|| FunctionError::internal(format!("user {} has an unknown role", user.id)))?;
    roles::require_manageable(viewer.role, role)?;
    Ok(Target {
        viewer,
        scope,
        user,
        role,
    })
}

/// Whether `user` is the only company admin of their company.
fn is_last_company_admin(ctx: &mut MutationCtx<'_>, user: &Document, role: Role) -> FnResult<bool> {
    let Some(company) = company_of(ctx, user).filter(|_| role == Role::CompanyAdmin) else {
        return Ok(false);
    };
    let admins = ctx
        .db
        .scoped(&Scope::company(company))
        .query("users", "by_company_role", |q| {
            q.eq("role", Role::CompanyAdmin.as_str())
        })?
        .take(2)?;
    Ok(admins.len() <= 1)
}

/// The company a new user joins: the one named (which the viewer must be allowed to act on), or the
/// viewer's own.
fn company_for_new_user(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    company_id: Option<&str>,
) -> FnResult<DocumentId> {
    let Some(raw) = company_id.filter(|c| !c.is_empty()) else {
        return match viewer.company_scope()? {
            Scope::Company(company) => Ok(company),
            Scope::AllCompanies => Err(FunctionError::internal("company scope spans companies")),
        };
    };
    let not_found = || FunctionError::field(ErrorCode::NotFound, "companyId", "Company not found");
    let company = ctx
        .db
        .normalize_id("companies", raw)
        .ok_or_else(not_found)?;
    let grant = ctx.cross_tenant()?;
    let scope = viewer.scope_for(&company, Some(&grant), Permission::ManageAllCompanies)?;
    ctx.db.scoped(&scope).get(&company)?.ok_or_else(not_found)?;
    Ok(company)
}

/// `users:createUser`: an account without a password; its owner gets an emailed link to set one
/// (the reference generated a temporary password and returned it in plain text).
fn create_user(
    ctx: &mut MutationCtx<'_>,
    urls: &Urls,
    args: CreateUserArgs,
) -> FnResult<UserCreated> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ManageUsers)?;
    let company = company_for_new_user(ctx, &viewer, args.company_id.as_deref())?;
    let name = parse_name("name", &args.name)?;
    let email = Email::parse(&args.email)
        .map_err(|_| FunctionError::validation("email", "Invalid email format"))?;
    let role = roles::parse("role", &args.role)?;
    roles::require_grantable(viewer.role, role, "role")?;
    let grant = ctx.cross_tenant()?;
    if email_in_use(&mut ctx.db, &grant, email.as_str())?.is_some() {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "email",
            "User with this email already exists",
        ));
    }
    let mut user = Object::new();
    user.insert("name".into(), Value::from(name.as_str()));
    user.insert("email".into(), Value::from(email.as_str()));
    user.insert("password".into(), Value::from(""));
    user.insert("role".into(), Value::from(role.as_str()));
    user.insert("company_id".into(), Value::from(company));
    user.insert("created_at".into(), Value::from(now));
    let scope = Scope::company(company);
    let id = ctx.db.scoped(&scope).insert("users", user)?;
    let created = ctx
        .db
        .scoped(&scope)
        .get(&id)?
        .ok_or_else(|| FunctionError::internal("the new user vanished"))?;
    reset::issue(ctx, urls, &created)?;
    let entry = Entry {
        event: Event::UserCreated,
        actor: Some(&viewer.user_id),
        target: Some(id.encode()),
        company: Some(&company),
        details: &[("role", role.as_str())],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(UserCreated {
        success: true,
        user_id: id.into(),
        message: format!(
            "{name} was added; a link to set a password was emailed to {}",
            email.as_str()
        ),
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `users:updateUser`: another user's name or email.
fn update_user(ctx: &mut MutationCtx<'_>, args: UpdateUserArgs) -> FnResult<Done> {
    let now = ctx.now_ms();
    let t = target(ctx, &args.user_id)?;
    let mut patch = Patch::new();
    let mut changed: Vec<(&str, &str)> = Vec::new();
    if let Some(name) = args.name.as_deref() {
        patch.insert("name".into(), Some(Value::from(parse_name("name", name)?)));
        changed.push(("name", "changed"));
    }
    if let Some(raw) = args.email.as_deref() {
        let email = Email::parse(raw)
            .map_err(|_| FunctionError::validation("email", "Invalid email format"))?;
        if email.as_str() != text_of(&t.user, "email") {
            let grant = ctx.cross_tenant()?;
            let holder = email_in_use(&mut ctx.db, &grant, email.as_str())?;
            if holder.is_some_and(|h| h != t.user.id) {
                return Err(FunctionError::field(
                    ErrorCode::Conflict,
                    "email",
                    "Email already in use by another user",
                ));
            }
            patch.insert("email".into(), Some(Value::from(email.as_str())));
            changed.push(("email", "changed"));
        }
    }
    if patch.is_empty() {
        return Ok(done(ctx));
    }
    ctx.db.scoped(&t.scope).patch(&t.user.id, patch)?;
    let company = company_of(ctx, &t.user);
    let entry = Entry {
        event: Event::UserUpdated,
        actor: Some(&t.viewer.user_id),
        target: Some(t.user.id.encode()),
        company: company.as_ref(),
        details: &changed,
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &t.viewer, entry)?;
    Ok(done(ctx))
}

/// `users:updateRole`.
fn update_role(ctx: &mut MutationCtx<'_>, args: UpdateRoleArgs) -> FnResult<Done> {
    let now = ctx.now_ms();
    let t = target(ctx, &args.user_id)?;
    let new_role = roles::parse("newRole", &args.new_role)?;
    roles::require_grantable(t.viewer.role, new_role, "newRole")?;
    if t.user.id == t.viewer.user_id {
        return Err(FunctionError::forbidden("You cannot change your own role"));
    }
    if new_role == t.role {
        return Ok(done(ctx));
    }
    if is_last_company_admin(ctx, &t.user, t.role)? {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            "A company must keep at least one company admin",
        ));
    }
    let mut patch = Patch::new();
    patch.insert("role".into(), Some(Value::from(new_role.as_str())));
    ctx.db.scoped(&t.scope).patch(&t.user.id, patch)?;
    let company = company_of(ctx, &t.user);
    let entry = Entry {
        event: Event::RoleChanged,
        actor: Some(&t.viewer.user_id),
        target: Some(t.user.id.encode()),
        company: company.as_ref(),
        details: &[("from", t.role.as_str()), ("to", new_role.as_str())],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &t.viewer, entry)?;
    Ok(done(ctx))
}

/// `users:deleteUser`: a hard delete; the user's sessions and reset links go with them.
fn delete_user(ctx: &mut MutationCtx<'_>, args: UserIdArgs) -> FnResult<Done> {
    let now = ctx.now_ms();
    let t = target(ctx, &args.user_id)?;
    if t.user.id == t.viewer.user_id {
        return Err(FunctionError::forbidden(
            "You cannot delete your own account",
        ));
    }
    if is_last_company_admin(ctx, &t.user, t.role)? {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            "Cannot delete the last company admin of a company",
        ));
    }
    sessions::end_all(&mut ctx.db, &t.user.id, None)?;
    // Reset links and OAuth account links belong to the user and go with them.
    for table in ["password_reset_tokens", "accounts"] {
        let rows = ctx
            .db
            .query(table)?
            .with_index("by_user", |q| q.eq("user_id", t.user.id.encode()))?
            .collect()?;
        for row in rows {
            ctx.db.delete(&row.id)?;
        }
    }
    ctx.db.scoped(&t.scope).delete(&t.user.id)?;
    let company = company_of(ctx, &t.user);
    let entry = Entry {
        event: Event::UserDeleted,
        actor: Some(&t.viewer.user_id),
        target: Some(t.user.id.encode()),
        company: company.as_ref(),
        details: &[
            ("email", text_of(&t.user, "email")),
            ("role", t.role.as_str()),
        ],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &t.viewer, entry)?;
    Ok(done(ctx))
}
