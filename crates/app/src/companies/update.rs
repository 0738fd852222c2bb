//! `companies/updateCompany:updateCompany`: a company admin changes their own company's name and
//! contact email. The web form sends the status back too; it may only change for holders of
//! `manage_all_companies` (the reference let company admins lift their own suspension).

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use serde::{Deserialize, Serialize};
use store::Patch;
use values::{Typed, Value};

use super::{admin, company_not_found, company_row, status_validator, str_field, CompanyDoc};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_session, Permission};
use crate::users::Email;

const MIN_NAME_CHARS: usize = 2;
const MAX_NAME_CHARS: usize = 100;

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateOwnCompanyArgs {
    name: String,
    contact_email: String,
    #[typed(validator = status_validator())]
    status: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct OwnCompanyUpdated {
    company: CompanyDoc,
    correlation_id: String,
}

pub fn update_company(
    ctx: &mut MutationCtx<'_>,
    args: UpdateOwnCompanyArgs,
) -> FnResult<OwnCompanyUpdated> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    if !viewer.has(Permission::ManageCompany) {
        return Err(FunctionError::forbidden(
            "Only company administrators can update company information",
        ));
    }
    let Some(company_id) = viewer.company_id else {
        return Err(FunctionError::forbidden(
            "User must be associated with a company",
        ));
    };
    let name = args.name.trim().to_string();
    if name.chars().count() < MIN_NAME_CHARS {
        return Err(FunctionError::validation(
            "name",
            "Company name must be at least 2 characters long",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(FunctionError::validation(
            "name",
            "Company name must be at most 100 characters long",
        ));
    }
    let email = Email::parse(&args.contact_email)
        .map_err(|_| FunctionError::validation("contact_email", "Invalid email format"))?;

    let scope = viewer.company_scope()?;
    let company = ctx
        .db
        .scoped(&scope)
        .get(&company_id)?
        .ok_or_else(company_not_found)?;
    let old_status = str_field(&company, "status").to_string();
    // The validator admits only known statuses.
    let status = args.status.as_deref().filter(|s| *s != old_status);
    if status.is_some() && !viewer.has(Permission::ManageAllCompanies) {
        return Err(FunctionError::field(
            ErrorCode::Forbidden,
            "status",
            "Only platform administrators can change a company's status",
        ));
    }
    // Contact emails are unique across companies; only whether another company holds a new one is
    // read. The form sends the current email back unchanged, which is never a conflict.
    let email_changed = email.as_str() != str_field(&company, "contact_email");
    if email_changed {
        let grant = ctx.cross_tenant()?;
        let holder = ctx
            .db
            .scoped(&Scope::all_companies(&grant))
            .query("companies", "by_contact_email", |q| {
                q.eq("contact_email", email.as_str())
            })?
            .first()?;
        if holder.is_some_and(|h| h.id != company.id) {
            return Err(FunctionError::field(
                ErrorCode::Conflict,
                "contact_email",
                format!(
                    "Company with contact email '{}' already exists",
                    email.as_str()
                ),
            ));
        }
    }

    let mut changed: Vec<&str> = Vec::new();
    let mut patch = Patch::new();
    if name != str_field(&company, "name") {
        patch.insert("name".into(), Some(Value::from(name.as_str())));
        changed.push("name");
    }
    if email_changed {
        patch.insert("contact_email".into(), Some(Value::from(email.as_str())));
        changed.push("contact_email");
    }
    if !changed.is_empty() {
        patch.insert("updated_at".into(), Some(Value::from(now)));
        ctx.db.scoped(&scope).patch(&company.id, patch)?;
        let fields = changed.join(",");
        let entry = Entry {
            event: Event::CompanyUpdated,
            actor: Some(&viewer.user_id),
            target: Some(company.id.encode()),
            company: Some(&company.id),
            details: &[("fields", &fields)],
        };
        audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    }
    if let Some(status) = status {
        admin::change_status(ctx, &viewer, &company.id, &scope, &old_status, status, now)?;
    }
    let company = ctx
        .db
        .scoped(&scope)
        .get(&company.id)?
        .ok_or_else(company_not_found)?;
    Ok(OwnCompanyUpdated {
        company: company_row(&company)?,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}
