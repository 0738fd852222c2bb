//! `companies:createCompany`: a system administrator creates a company with a unique slug, its first
//! company admin (no password yet) and a "Primary" site, and the admin is emailed a link to set a
//! password. The reset token only travels in that email: the reference also returned it to the
//! caller, which let the creating administrator take over the new account.

use config::Urls;
use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, Scope, ScopedWriter};
use serde::{Deserialize, Serialize};
use values::{DocumentId, Id, Object, Typed, Value};

use super::{slugify, status_validator, CompanyDoc, PRIMARY_SITE};
use crate::audit::{self, Entry, Event};
use crate::auth::reset;
use crate::identity::{require_session, Role};
use crate::users::Email;

const MAX_NAME_CHARS: usize = 100;

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct CreateCompanyArgs {
    name: String,
    contact_email: String,
    admin_email: String,
    admin_name: String,
    #[typed(validator = status_validator())]
    status: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CompanyCreated {
    success: bool,
    company_id: Id<CompanyDoc>,
    #[typed(id = "users")]
    admin_user_id: DocumentId,
    slug: String,
    admin_email: String,
    message: String,
}

fn name_arg(raw: &str, field: &str, what: &str) -> FnResult<String> {
    let name = raw.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(FunctionError::validation(
            field,
            format!("{what} must be between 1 and {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name)
}

fn email_arg(raw: &str, field: &str) -> FnResult<Email> {
    Email::parse(raw).map_err(|_| FunctionError::validation(field, "Invalid email format"))
}

/// The first free slug of `base`, `base-2`, `base-3`…
fn unique_slug(db: &mut ScopedWriter<'_>, base: &str) -> FnResult<String> {
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        let taken = db
            .query("companies", "by_slug", |q| q.eq("slug", candidate.as_str()))?
            .first()?
            .is_some();
        if !taken {
            return Ok(candidate);
        }
        n += 1;
    }
}

pub fn create_company(
    ctx: &mut MutationCtx<'_>,
    urls: &Urls,
    args: CreateCompanyArgs,
) -> FnResult<CompanyCreated> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    // Only system administrators create tenants (demo admins manage them but do not create them).
    if viewer.role != Role::SystemAdmin {
        return Err(FunctionError::forbidden(
            "System administrator access required",
        ));
    }
    let name = name_arg(&args.name, "name", "Company name")?;
    let admin_name = name_arg(&args.admin_name, "adminName", "Admin name")?;
    let contact_email = email_arg(&args.contact_email, "contactEmail")?;
    let admin_email = email_arg(&args.admin_email, "adminEmail")?;
    let status = args.status.unwrap_or_else(|| "active".to_string());

    let grant = ctx.cross_tenant()?;
    let all = Scope::all_companies(&grant);
    let mut db = ctx.db.scoped(&all);
    let contact_taken = db
        .query("companies", "by_contact_email", |q| {
            q.eq("contact_email", contact_email.as_str())
        })?
        .first()?
        .is_some();
    if contact_taken {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "contactEmail",
            format!(
                "Company with contact email '{}' already exists",
                contact_email.as_str()
            ),
        ));
    }
    let admin_taken = db
        .query("users", "by_email", |q| q.eq("email", admin_email.as_str()))?
        .first()?
        .is_some();
    if admin_taken {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "adminEmail",
            "User with this email already exists",
        ));
    }
    let slug = unique_slug(&mut db, &slugify(&name))?;

    let mut company = Object::new();
    company.insert("name".into(), Value::from(name.as_str()));
    company.insert("slug".into(), Value::from(slug.as_str()));
    company.insert("contact_email".into(), Value::from(contact_email.as_str()));
    company.insert("status".into(), Value::from(status.as_str()));
    company.insert("created_at".into(), Value::from(now));
    company.insert("created_by".into(), Value::from(viewer.user_id));
    let company_id = db.insert("companies", company)?;

    let mut user = Object::new();
    user.insert("name".into(), Value::from(admin_name.as_str()));
    user.insert("email".into(), Value::from(admin_email.as_str()));
    // No password until the admin follows the emailed link; sign-in refuses empty passwords.
    user.insert("password".into(), Value::from(""));
    user.insert("role".into(), Value::from(Role::CompanyAdmin.as_str()));
    user.insert("company_id".into(), Value::from(company_id));
    user.insert("created_at".into(), Value::from(now));
    let admin_id = db.insert("users", user)?;

    let mut site = Object::new();
    site.insert("company_id".into(), Value::from(company_id));
    site.insert("name".into(), Value::from(PRIMARY_SITE));
    site.insert("created_at".into(), Value::from(now));
    site.insert("created_by".into(), Value::from(viewer.user_id));
    db.insert("sites", site)?;

    let admin = db
        .get(&admin_id)?
        .ok_or_else(|| FunctionError::internal("the new company admin vanished"))?;
    reset::issue(ctx, urls, &admin)?;

    let admin_text = admin_id.encode();
    let entry = Entry {
        event: Event::CompanyCreated,
        actor: Some(&viewer.user_id),
        target: Some(company_id.encode()),
        company: Some(&company_id),
        details: &[
            ("slug", &slug),
            ("status", &status),
            ("admin_user_id", &admin_text),
        ],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;

    Ok(CompanyCreated {
        success: true,
        company_id: company_id.into(),
        admin_user_id: admin_id,
        slug,
        message: format!(
            "Company '{name}' created. A link to set a password was emailed to {}.",
            admin_email.as_str()
        ),
        admin_email: admin_email.as_str().to_string(),
    })
}
