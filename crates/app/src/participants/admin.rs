//! The system-admin participant pages (`participants/admin:*`). Listing, reading, creating and
//! editing any company's participants needs `manage_all_companies` and takes camelCase arguments;
//! creation and edits go through the module's own write path, so they obey the same rules as
//! `participants/create` (the reference skipped them here). `deleteParticipant` also serves
//! company administrators for their own company; a participant that incidents refer to is kept
//! (incident records must keep their subject) and the answer says to discharge instead.

use std::collections::HashMap;

use functions::Scope;
use functions::{CrossTenant, DbRead, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx};
use serde::{Deserialize, Serialize};
use store::Document;
use values::{DocumentId, Id, Nullable, Typed, Value};

use super::fields::{checked, ParticipantFields};
use super::{not_found, public, statuses, support_levels, write, ParticipantDoc};
use super::{PublicParticipant, TABLE};
use crate::audit::{self, Entry, Event};
use crate::companies::SiteSummary;
use crate::identity::{require_permission, require_session, Permission, Viewer};

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct DeleteArgs {
    #[typed(id = "participants")]
    participant_id: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    success: bool,
    correlation_id: String,
}

pub fn delete(ctx: &mut MutationCtx<'_>, args: DeleteArgs) -> FnResult<Done> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    // Where to look: everywhere for those who manage every company, else only the own company.
    let lookup = if viewer.has(Permission::ManageAllCompanies) {
        viewer.all_companies_scope(&grant, Permission::ManageAllCompanies)?
    } else {
        viewer.require(Permission::CompanyConfiguration)?;
        viewer.company_scope()?
    };
    let participant = ctx
        .db
        .scoped(&lookup)
        .get_in(TABLE, &args.participant_id)?
        .ok_or_else(not_found)?;
    let company = participant
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| ctx.db.normalize_id("companies", c))
        .ok_or_else(|| FunctionError::internal("participant without a company"))?;
    let scope = viewer.scope_for(&company, Some(&grant), Permission::ManageAllCompanies)?;
    if crate::incidents::refers_to_participant(&mut ctx.db, &scope, &participant.id)? {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            "Cannot delete a participant with incidents; discharge the participant instead",
        ));
    }
    ctx.db.scoped(&scope).delete(&participant.id)?;
    let entry = Entry {
        event: Event::ParticipantDeleted,
        actor: Some(&viewer.user_id),
        target: Some(participant.id.encode()),
        company: Some(&company),
        details: &[],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(Done {
        success: true,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `participants/admin:createParticipant`'s arguments (camelCase, as the admin pages send them).
/// New participants start active; the edit page changes the status.
#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct AdminCreateArgs {
    company_id: String,
    site_id: String,
    first_name: String,
    last_name: String,
    ndis_number: String,
    date_of_birth: String,
    #[typed(validator = support_levels())]
    support_level: String,
    contact_phone: Option<String>,
    emergency_contact: Option<String>,
    care_notes: Option<String>,
}

/// `participants/admin:updateParticipant`'s arguments: every field optional.
#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct AdminUpdateArgs {
    participant_id: String,
    company_id: Option<String>,
    site_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    ndis_number: Option<String>,
    date_of_birth: Option<String>,
    #[typed(validator = support_levels())]
    support_level: Option<String>,
    contact_phone: Option<String>,
    emergency_contact: Option<String>,
    care_notes: Option<String>,
    #[typed(validator = statuses())]
    status: Option<String>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct AdminListArgs {
    company_id: String,
    site_id: Option<String>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct AdminGetArgs {
    participant_id: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct AdminCreated {
    success: bool,
    participant_id: Id<ParticipantDoc>,
    correlation_id: String,
}

/// A participant as the admin pages read it: the public fields and `site` (or `null`).
#[derive(Serialize, Typed)]
pub struct AdminParticipant {
    #[serde(flatten)]
    participant: PublicParticipant,
    site: Nullable<SiteSummary>,
}

/// A platform administrator (`manage_all_companies`) and the cross-tenant grant.
fn platform_admin(db: &mut impl DbRead, auth: &functions::Auth, now: f64) -> FnResult<Viewer> {
    require_permission(db, auth, now, Permission::ManageAllCompanies)
}

/// The company `companyId` names and a scope limited to it.
fn company_arg(
    db: &mut impl DbRead,
    viewer: &Viewer,
    grant: &CrossTenant,
    raw: &str,
) -> FnResult<(DocumentId, Scope)> {
    let missing = || FunctionError::field(ErrorCode::NotFound, "companyId", "Company not found");
    let company = db.normalize_id("companies", raw).ok_or_else(missing)?;
    let scope = viewer.scope_for(&company, Some(grant), Permission::ManageAllCompanies)?;
    if !crate::companies::exists(db, &scope, &company)? {
        return Err(missing());
    }
    Ok((company, scope))
}

/// The participant `participantId` names, in any company, and its company's scope.
fn participant_arg(
    db: &mut impl DbRead,
    viewer: &Viewer,
    grant: &CrossTenant,
    raw: &str,
) -> FnResult<(Document, Scope)> {
    let all = viewer.all_companies_scope(grant, Permission::ManageAllCompanies)?;
    let participant = db
        .read_scoped(&all)
        .get_in(TABLE, raw)?
        .ok_or_else(not_found)?;
    let company = participant
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| db.normalize_id("companies", c))
        .ok_or_else(|| FunctionError::internal("participant without a company"))?;
    let scope = viewer.scope_for(&company, Some(grant), Permission::ManageAllCompanies)?;
    Ok((participant, scope))
}

/// The normalised id of `siteId`, which must be a site of the scope's company. A site of another
/// company is named as such: platform administrators may see every company anyway.
fn site_arg(
    db: &mut impl DbRead,
    grant: &CrossTenant,
    scope: &Scope,
    raw: &str,
) -> FnResult<String> {
    let missing = || FunctionError::field(ErrorCode::NotFound, "site_id", "Site not found");
    let site = db.normalize_id("sites", raw).ok_or_else(missing)?;
    if db.read_scoped(scope).get(&site)?.is_some() {
        return Ok(site.encode());
    }
    if db
        .read_scoped(&Scope::all_companies(grant))
        .get(&site)?
        .is_some()
    {
        return Err(FunctionError::field(
            ErrorCode::Validation,
            "site_id",
            "Site does not belong to this company",
        ));
    }
    Err(missing())
}

/// `{_id, name, company_id}` of each site of the scope's company.
fn site_summaries(db: &mut impl DbRead, scope: &Scope) -> FnResult<HashMap<String, SiteSummary>> {
    Ok(crate::companies::sites_of(db, scope)?
        .iter()
        .map(|s| (s.id.encode(), s.summary()))
        .collect())
}

/// A participant as the admin pages read it: the public fields and `site` (or `null`).
fn with_site(doc: Document, sites: &HashMap<String, SiteSummary>) -> FnResult<AdminParticipant> {
    let participant = public(&doc)?;
    let site = participant
        .site_id
        .as_deref()
        .and_then(|s| sites.get(s))
        .cloned();
    Ok(AdminParticipant {
        participant,
        site: Nullable(site),
    })
}

/// `participants/admin:listParticipants`: a company's participants (optionally one site's), by
/// last then first name, each with its `site`.
pub fn list(ctx: &mut QueryCtx<'_>, args: AdminListArgs) -> FnResult<Vec<AdminParticipant>> {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_arg(&mut ctx.db, &viewer, &grant, &args.company_id)?;
    let sites = site_summaries(&mut ctx.db, &scope)?;
    let mut db = ctx.db.scoped(&scope);
    let site = args.site_id.filter(|s| !s.is_empty() && s != "all");
    let docs = match site {
        Some(site) => db
            .query(TABLE, "by_company_site_name", |q| q.eq("site_id", site))?
            .collect()?,
        None => db.query(TABLE, "by_company_name", |q| q)?.collect()?,
    };
    docs.into_iter().map(|d| with_site(d, &sites)).collect()
}

/// `participants/admin:getParticipantById`: any company's participant with its `site`.
pub fn get(ctx: &mut QueryCtx<'_>, args: AdminGetArgs) -> FnResult<AdminParticipant> {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (participant, scope) = participant_arg(&mut ctx.db, &viewer, &grant, &args.participant_id)?;
    let sites = site_summaries(&mut ctx.db, &scope)?;
    with_site(participant, &sites)
}

/// `participants/admin:createParticipant`: `{success, participantId, correlationId}`, active, in
/// the named company at the named site.
pub fn create(ctx: &mut MutationCtx<'_>, args: AdminCreateArgs) -> FnResult<AdminCreated> {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_arg(&mut ctx.db, &viewer, &grant, &args.company_id)?;
    let given = ParticipantFields {
        first_name: Some(args.first_name),
        last_name: Some(args.last_name),
        date_of_birth: Some(args.date_of_birth),
        ndis_number: Some(args.ndis_number),
        contact_phone: args.contact_phone,
        emergency_contact: args.emergency_contact,
        care_notes: args.care_notes,
        support_level: Some(args.support_level),
        status: None,
    };
    let fields = checked(&given, now)?;
    let site = site_arg(&mut ctx.db, &grant, &scope, &args.site_id)?;
    let id = write::insert(ctx, &viewer, &scope, fields, Some(&site))?;
    Ok(AdminCreated {
        success: true,
        participant_id: id.into(),
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `participants/admin:updateParticipant`: the fields given, with the rules of
/// `participants/update` (an empty contact field clears it). Participants stay in their company.
pub fn update(ctx: &mut MutationCtx<'_>, args: AdminUpdateArgs) -> FnResult<Done> {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let (participant, scope) = participant_arg(&mut ctx.db, &viewer, &grant, &args.participant_id)?;
    if let Some(raw) = args.company_id.as_deref().filter(|c| !c.is_empty()) {
        let moved = ctx
            .db
            .normalize_id("companies", raw)
            .is_none_or(|c| Scope::company(c) != scope);
        if moved {
            return Err(FunctionError::validation(
                "companyId",
                "A participant cannot be moved to another company",
            ));
        }
    }
    let given = ParticipantFields {
        first_name: args.first_name,
        last_name: args.last_name,
        date_of_birth: args.date_of_birth,
        ndis_number: args.ndis_number,
        contact_phone: args.contact_phone,
        emergency_contact: args.emergency_contact,
        care_notes: args.care_notes,
        support_level: args.support_level,
        status: args.status,
    };
    let patch = checked(&given, now)?;
    let site = match args.site_id.as_deref().filter(|s| !s.is_empty()) {
        Some(raw) => Some(site_arg(&mut ctx.db, &grant, &scope, raw)?),
        None => None,
    };
    let id = participant.id.encode();
    write::change(ctx, &viewer, &scope, &id, patch, site.as_deref())?;
    Ok(Done {
        success: true,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}
