//! Deleting a test company and everything that belongs to it (`companies/admin:
//! previewTestCompanyCleanup` and `executeTestCompanyCleanup`).
//!
//! Only system administrators may run either: a demo admin also holds `manage_all_companies`, but
//! deleting a tenant is irreversible, and demo admins do not create tenants either. Only companies
//! whose status is `test` can go.
//!
//! Each module deletes its own rows, in an order that never leaves a row pointing at a deleted one:
//! incidents with all their child rows, the company's remaining AI logs and usage, participants,
//! sites, invitations, then what hangs off each user (sessions, reset tokens, provider accounts,
//! impersonations they took part in, queued emails to them), the users, and the company. It all
//! happens in one transaction, so a failure deletes nothing; a test company is small. The preview
//! counts exactly those rows. The audit log is kept (it is append-only): the deletion itself is
//! recorded under the acting administrator with no company, so it outlives the company.

use std::collections::BTreeSet;

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Scope};
use store::Document;
use values::{DocumentId, Object, Value};

use super::{company_not_found, rows, str_field};
use crate::args::{object, text};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_session, sessions, Permission, Role, Viewer};
use crate::{ai_service, auth, email, impersonation, incidents, invitations, oauth};
use crate::{participants, users};

fn require_system_admin(viewer: &Viewer) -> FnResult<()> {
    if viewer.role != Role::SystemAdmin {
        return Err(FunctionError::forbidden(
            "Only system administrators can delete test companies",
        ));
    }
    Ok(())
}

/// The test company `companyId` names, with a scope limited to it.
fn test_company(
    db: &mut impl functions::DbRead,
    viewer: &Viewer,
    grant: &functions::CrossTenant,
    id: &str,
) -> FnResult<(Document, Scope)> {
    let company_id = db
        .normalize_id("companies", id)
        .ok_or_else(company_not_found)?;
    let scope = viewer.scope_for(&company_id, Some(grant), Permission::ManageAllCompanies)?;
    let company = db
        .read_scoped(&scope)
        .get(&company_id)?
        .ok_or_else(company_not_found)?;
    let status = str_field(&company, "status");
    if status != "test" {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "companyId",
            format!("Only test companies can be deleted. This company has status: {status}"),
        ));
    }
    if viewer.company_id.as_ref() == Some(&company.id) {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "companyId",
            "You cannot delete the company you belong to",
        ));
    }
    Ok((company, scope))
}

fn counted(n: usize) -> Value {
    object([("count", Some(Value::from(n as f64)))])
}

fn strings(items: Vec<String>) -> Value {
    Value::Array(items.into_iter().map(Value::from).collect())
}

/// `companies/admin:previewTestCompanyCleanup`: what executing would delete, counted.
pub fn preview(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    require_system_admin(&viewer)?;
    let grant = ctx.cross_tenant()?;
    let (company, scope) = test_company(&mut ctx.db, &viewer, &grant, text(&args, "companyId"))?;
    let db = &mut ctx.db;

    let sites = rows::site_names(db, &scope)?;
    let members = users::rows::of_company(db, &scope)?;
    let user_ids: Vec<DocumentId> = members.iter().map(|m| m.id).collect();
    let mut addresses: Vec<String> = members.iter().map(|m| m.email.clone()).collect();
    let people = participants::rows::names(db, &scope)?;
    let invitation_count = invitations::rows::count(db, &scope)?;
    addresses.extend(invitations::rows::emails(db, &scope)?);
    let session_count = sessions::count_for(db, &user_ids)?;
    let reset_count = auth::reset::count_for(db, &user_ids)?;
    let account_count = oauth::rows::count_for(db, &user_ids)?;
    let impersonation_count = impersonation::rows::count_involving(db, &user_ids)?;
    let email_count = email::count_for_company(db, &company.id, &addresses)?;
    // Incident child tables include AI logs, which the AI service also counts: count ids once.
    let (incident_count, incident_rows) = incidents::rows::company_row_ids(db, &scope)?;
    let mut records: BTreeSet<DocumentId> = incident_rows.into_iter().collect();
    records.extend(ai_service::rows::company_row_ids(db, &scope)?);
    let incident_records = records.len() - incident_count;

    let total = 1
        + sites.len()
        + members.len()
        + people.len()
        + invitation_count
        + session_count
        + reset_count
        + account_count
        + impersonation_count
        + email_count
        + records.len();
    let user_count = members.len();
    Ok(object([
        (
            "company",
            Some(object([
                ("_id", Some(Value::from(company.id))),
                ("name", company.get("name").cloned()),
                ("status", company.get("status").cloned()),
            ])),
        ),
        (
            "sites",
            Some(object([
                ("count", Some(Value::from(sites.len() as f64))),
                ("names", Some(strings(sites))),
            ])),
        ),
        (
            "users",
            Some(object([
                ("count", Some(Value::from(user_count as f64))),
                (
                    "emails",
                    Some(strings(members.into_iter().map(|m| m.email).collect())),
                ),
            ])),
        ),
        (
            "participants",
            Some(object([
                ("count", Some(Value::from(people.len() as f64))),
                ("names", Some(strings(people))),
            ])),
        ),
        ("incidents", Some(counted(incident_count))),
        ("userInvitations", Some(counted(invitation_count))),
        ("sessions", Some(counted(session_count))),
        ("passwordResetTokens", Some(counted(reset_count))),
        ("oauthAccounts", Some(counted(account_count))),
        ("impersonations", Some(counted(impersonation_count))),
        ("emails", Some(counted(email_count))),
        // Narratives, clarification questions and answers, handoffs, AI logs and usage, counts.
        ("incidentRecords", Some(counted(incident_records))),
        ("totalRecords", Some(Value::from(total as f64))),
    ]))
}

/// `companies/admin:executeTestCompanyCleanup`: deletes the test company and every row that
/// belongs to it, and audits the deletion.
pub fn execute(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    require_system_admin(&viewer)?;
    let grant = ctx.cross_tenant()?;
    let (company, scope) = test_company(&mut ctx.db, &viewer, &grant, text(&args, "companyId"))?;
    let db = &mut ctx.db;

    let removed = incidents::rows::delete_company_rows(db, &scope)?;
    let ai_rows = ai_service::rows::delete_company_rows(db, &scope)?;
    let participant_count = participants::rows::delete_company_rows(db, &scope)?;
    let site_count = rows::delete_sites(db, &scope)?;
    let members = users::rows::of_company(db, &scope)?;
    let user_ids: Vec<DocumentId> = members.iter().map(|m| m.id).collect();
    let mut addresses: Vec<String> = members.iter().map(|m| m.email.clone()).collect();
    addresses.extend(invitations::rows::emails(db, &scope)?);
    let invitation_count = invitations::rows::delete_company_rows(db, &scope)?;
    let session_count = sessions::delete_for(db, &user_ids)?;
    let reset_count = auth::reset::delete_for(db, &user_ids)?;
    let account_count = oauth::rows::delete_for(db, &user_ids)?;
    let impersonation_count = impersonation::rows::delete_involving(db, &user_ids)?;
    let email_count = email::delete_for_company(db, &company.id, &addresses)?;
    let user_count = users::rows::delete_company_rows(db, &scope)?;
    db.scoped(&scope).delete(&company.id)?;

    let name = str_field(&company, "name").to_string();
    let n = |v: usize| Value::from(v as f64);
    let deleted = object([
        ("incidents", Some(n(removed.incidents))),
        ("incident_records", Some(n(removed.dependents + ai_rows))),
        ("participants", Some(n(participant_count))),
        ("sites", Some(n(site_count))),
        ("user_invitations", Some(n(invitation_count))),
        ("sessions", Some(n(session_count))),
        ("password_reset_tokens", Some(n(reset_count))),
        ("oauth_accounts", Some(n(account_count))),
        ("impersonations", Some(n(impersonation_count))),
        ("emails", Some(n(email_count))),
        ("users", Some(n(user_count))),
        ("companies", Some(n(1))),
    ]);
    let total = 1
        + removed.incidents
        + removed.dependents
        + ai_rows
        + participant_count
        + site_count
        + invitation_count
        + session_count
        + reset_count
        + account_count
        + impersonation_count
        + email_count
        + user_count;
    let (incident_text, user_text, total_text) = (
        removed.incidents.to_string(),
        user_count.to_string(),
        total.to_string(),
    );
    // No company on the entry: the company is gone, and the entry must outlive it.
    let entry = Entry {
        event: Event::CompanyDeleted,
        actor: Some(&viewer.user_id),
        target: Some(company.id.encode()),
        company: None,
        details: &[
            ("name", &name),
            ("incidents", &incident_text),
            ("users", &user_text),
            ("records", &total_text),
        ],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("deletedCounts", Some(deleted)),
        ("companyName", Some(Value::from(name))),
    ]))
}
