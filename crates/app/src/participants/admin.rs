//! The system-admin participant pages (`participants/admin:*`). Listing, reading, creating and
//! editing any company's participants needs `manage_all_companies` and takes camelCase arguments;
//! creation and edits go through the module's own write path, so they obey the same rules as
//! `participants/create` (the reference skipped them here). `deleteParticipant` also serves
//! company administrators for their own company; a participant that incidents refer to is kept
//! (incident records must keep their subject) and the answer says to discharge instead.

use std::collections::HashMap;

use functions::Scope;
use functions::{CrossTenant, DbRead, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx};
use store::Document;
use values::validator::v;
use values::{DocumentId, FieldValidator, Object, Validator, Value};

use super::fields::{checked, STATUSES, SUPPORT_LEVELS};
use super::{into_public, not_found, one_of, write, TABLE};
use crate::args::{object, opt_text, text};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, require_session, Permission, Viewer};

pub fn delete(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
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
        .get_in(TABLE, text(&args, "participantId"))?
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
    Ok(object([
        ("success", Some(Value::from(true))),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}

/// The camelCase arguments of the admin pages and the participant fields they carry.
const CAMEL_FIELDS: [(&str, &str); 9] = [
    ("firstName", "first_name"),
    ("lastName", "last_name"),
    ("ndisNumber", "ndis_number"),
    ("dateOfBirth", "date_of_birth"),
    ("supportLevel", "support_level"),
    ("contactPhone", "contact_phone"),
    ("emergencyContact", "emergency_contact"),
    ("careNotes", "care_notes"),
    ("status", "status"),
];

/// The admin pages' argument validators; `required` for creation (contact fields and notes stay
/// optional; status is for edits).
pub(super) fn admin_fields(required: bool) -> Vec<(&'static str, FieldValidator)> {
    let field = |validator: Validator, needed: bool| -> FieldValidator {
        if required && needed {
            validator.into()
        } else {
            v::optional(validator)
        }
    };
    vec![
        ("companyId", field(v::string(), true)),
        ("siteId", field(v::string(), true)),
        ("firstName", field(v::string(), true)),
        ("lastName", field(v::string(), true)),
        ("ndisNumber", field(v::string(), true)),
        ("dateOfBirth", field(v::string(), true)),
        ("supportLevel", field(one_of(&SUPPORT_LEVELS), true)),
        ("contactPhone", v::optional(v::string())),
        ("emergencyContact", v::optional(v::string())),
        ("careNotes", v::optional(v::string())),
        ("status", v::optional(one_of(&STATUSES))),
    ]
}

/// The participant fields of camelCase `args`, renamed for `fields::checked` (the same rules as
/// `participants/create`; an empty contact field clears it).
fn snake_args(args: &Object) -> Object {
    CAMEL_FIELDS
        .iter()
        .filter_map(|(camel, snake)| args.get(*camel).map(|v| (snake.to_string(), v.clone())))
        .collect()
}

/// A platform administrator (`manage_all_companies`) and the cross-tenant grant.
fn platform_admin(
    db: &mut impl DbRead,
    auth: &functions::Auth,
    _args: &Object,
    now: f64,
) -> FnResult<Viewer> {
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
fn site_values(db: &mut impl DbRead, scope: &Scope) -> FnResult<HashMap<String, Value>> {
    Ok(crate::companies::sites_of(db, scope)?
        .iter()
        .map(|s| (s.id.encode(), s.to_value()))
        .collect())
}

/// A participant as the admin pages read it: the public fields and `site` (or `null`).
fn with_site(doc: Document, sites: &HashMap<String, Value>) -> Value {
    let site = doc
        .get("site_id")
        .and_then(Value::as_str)
        .and_then(|s| sites.get(s))
        .cloned()
        .unwrap_or(Value::Null);
    let mut value = into_public(doc).into_object().unwrap_or_default();
    value.insert("site".into(), site);
    Value::Object(value)
}

/// `participants/admin:listParticipants`: a company's participants (optionally one site's), by
/// last then first name, each with its `site`.
pub fn list(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_arg(&mut ctx.db, &viewer, &grant, text(&args, "companyId"))?;
    let sites = site_values(&mut ctx.db, &scope)?;
    let mut db = ctx.db.scoped(&scope);
    let docs = match opt_text(&args, "siteId").filter(|s| !s.is_empty() && *s != "all") {
        Some(site) => {
            let site = site.to_string();
            db.query(TABLE, "by_company_site_name", |q| q.eq("site_id", site))?
                .collect()?
        }
        None => db.query(TABLE, "by_company_name", |q| q)?.collect()?,
    };
    Ok(Value::Array(
        docs.into_iter().map(|d| with_site(d, &sites)).collect(),
    ))
}

/// `participants/admin:getParticipantById`: any company's participant with its `site`.
pub fn get(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (participant, scope) =
        participant_arg(&mut ctx.db, &viewer, &grant, text(&args, "participantId"))?;
    let sites = site_values(&mut ctx.db, &scope)?;
    Ok(with_site(participant, &sites))
}

/// `participants/admin:createParticipant`: `{success, participantId, correlationId}`, active, in
/// the named company at the named site.
pub fn create(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_arg(&mut ctx.db, &viewer, &grant, text(&args, "companyId"))?;
    let fields = checked(&snake_args(&args), now)?;
    let site = site_arg(&mut ctx.db, &grant, &scope, text(&args, "siteId"))?;
    let id = write::insert(ctx, &viewer, &scope, fields, Some(&site))?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("participantId", Some(Value::from(id))),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}

/// `participants/admin:updateParticipant`: the fields given, with the rules of
/// `participants/update` (an empty contact field clears it). Participants stay in their company.
pub fn update(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = platform_admin(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    let (participant, scope) =
        participant_arg(&mut ctx.db, &viewer, &grant, text(&args, "participantId"))?;
    if let Some(raw) = opt_text(&args, "companyId").filter(|c| !c.is_empty()) {
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
    let patch = checked(&snake_args(&args), now)?;
    let site = match opt_text(&args, "siteId").filter(|s| !s.is_empty()) {
        Some(raw) => Some(site_arg(&mut ctx.db, &grant, &scope, raw)?),
        None => None,
    };
    let id = participant.id.encode();
    write::change(ctx, &viewer, &scope, &id, patch, site.as_deref())?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}
