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
use serde::Serialize;
use store::Document;
use values::{DocumentId, Id, Typed};

use super::{company_not_found, rows, str_field, CompanyDoc, CompanyIdArgs};
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

#[derive(Serialize, Typed)]
pub struct Counted {
    count: usize,
}

fn counted(count: usize) -> Counted {
    Counted { count }
}

#[derive(Serialize, Typed)]
pub struct CompanyBrief {
    #[serde(rename = "_id")]
    id: Id<CompanyDoc>,
    name: Option<String>,
    status: Option<String>,
}

#[derive(Serialize, Typed)]
pub struct Named {
    count: usize,
    names: Vec<String>,
}

#[derive(Serialize, Typed)]
pub struct Addressed {
    count: usize,
    emails: Vec<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CleanupPreview {
    company: CompanyBrief,
    sites: Named,
    users: Addressed,
    participants: Named,
    incidents: Counted,
    user_invitations: Counted,
    sessions: Counted,
    password_reset_tokens: Counted,
    oauth_accounts: Counted,
    impersonations: Counted,
    emails: Counted,
    /// Narratives, clarification questions and answers, handoffs, AI logs and usage, counts.
    incident_records: Counted,
    total_records: usize,
}

/// `companies/admin:previewTestCompanyCleanup`: what executing would delete, counted.
pub fn preview(ctx: &mut QueryCtx<'_>, args: CompanyIdArgs) -> FnResult<CleanupPreview> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    require_system_admin(&viewer)?;
    let grant = ctx.cross_tenant()?;
    let (company, scope) = test_company(&mut ctx.db, &viewer, &grant, &args.company_id)?;
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
    let text = |field: &str| {
        company
            .get(field)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    Ok(CleanupPreview {
        company: CompanyBrief {
            id: company.id.into(),
            name: text("name"),
            status: text("status"),
        },
        sites: Named {
            count: sites.len(),
            names: sites,
        },
        users: Addressed {
            count: members.len(),
            emails: members.into_iter().map(|m| m.email).collect(),
        },
        participants: Named {
            count: people.len(),
            names: people,
        },
        incidents: counted(incident_count),
        user_invitations: counted(invitation_count),
        sessions: counted(session_count),
        password_reset_tokens: counted(reset_count),
        oauth_accounts: counted(account_count),
        impersonations: counted(impersonation_count),
        emails: counted(email_count),
        incident_records: counted(incident_records),
        total_records: total,
    })
}

#[derive(Serialize, Typed)]
pub struct DeletedCounts {
    incidents: usize,
    incident_records: usize,
    participants: usize,
    sites: usize,
    user_invitations: usize,
    sessions: usize,
    password_reset_tokens: usize,
    oauth_accounts: usize,
    impersonations: usize,
    emails: usize,
    users: usize,
    companies: usize,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CleanupDone {
    success: bool,
    deleted_counts: DeletedCounts,
    company_name: String,
}

/// `companies/admin:executeTestCompanyCleanup`: deletes the test company and every row that
/// belongs to it, and audits the deletion.
pub fn execute(ctx: &mut MutationCtx<'_>, args: CompanyIdArgs) -> FnResult<CleanupDone> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    require_system_admin(&viewer)?;
    let grant = ctx.cross_tenant()?;
    let (company, scope) = test_company(&mut ctx.db, &viewer, &grant, &args.company_id)?;
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
    let deleted = DeletedCounts {
        incidents: removed.incidents,
        incident_records: removed.dependents + ai_rows,
        participants: participant_count,
        sites: site_count,
        user_invitations: invitation_count,
        sessions: session_count,
        password_reset_tokens: reset_count,
        oauth_accounts: account_count,
        impersonations: impersonation_count,
        emails: email_count,
        users: user_count,
        companies: 1,
    };
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
    Ok(CleanupDone {
        success: true,
        deleted_counts: deleted,
        company_name: name,
    })
}
