//! Creating and editing participants and changing their status. Any member of the company may do
//! so (the contract's `create_incident`); the NDIS number stays unique within the company, checked
//! in the same serializable transaction as the write, so two concurrent creations cannot both win.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, ScopedWriter};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Id, Object, Typed, Value};

use super::fields::{self, checked, name_key, ParticipantFields, DISCHARGED, MAX_REASON};
use super::{not_found, statuses, support_levels, ParticipantDoc, TABLE};
use crate::identity::{require_permission, Permission, Viewer};

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct CreateArgs {
    first_name: String,
    last_name: String,
    date_of_birth: String,
    ndis_number: String,
    #[typed(validator = support_levels())]
    support_level: String,
    #[typed(id = "sites")]
    site_id: Option<String>,
    contact_phone: Option<String>,
    emergency_contact: Option<String>,
    care_notes: Option<String>,
    // The contract lists status for creation; it defaults to active when left out.
    #[typed(validator = statuses())]
    status: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateArgs {
    #[serde(rename = "participantId")]
    #[typed(id = "participants")]
    participant_id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    date_of_birth: Option<String>,
    ndis_number: Option<String>,
    #[typed(validator = support_levels())]
    support_level: Option<String>,
    #[typed(id = "sites")]
    site_id: Option<String>,
    contact_phone: Option<String>,
    emergency_contact: Option<String>,
    care_notes: Option<String>,
    #[typed(validator = statuses())]
    status: Option<String>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct UpdateStatusArgs {
    #[typed(id = "participants")]
    participant_id: String,
    #[typed(validator = statuses())]
    status: String,
    reason: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    success: bool,
    participant_id: Id<ParticipantDoc>,
    correlation_id: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged {
    success: bool,
    message: String,
    participant_id: Id<ParticipantDoc>,
    previous_status: String,
    new_status: String,
    correlation_id: String,
}

/// The caller and their company's scope.
fn writer(ctx: &mut MutationCtx<'_>) -> FnResult<(Viewer, functions::Scope)> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    let scope = viewer.company_scope()?;
    Ok((viewer, scope))
}

/// Refuses an NDIS number another participant of the company already has.
fn ensure_ndis_free(
    db: &mut ScopedWriter<'_>,
    ndis: &str,
    except: Option<&DocumentId>,
) -> FnResult<()> {
    let ndis = ndis.to_string();
    let holders = db
        .query(TABLE, "by_company_ndis", |q| q.eq("ndis_number", ndis))?
        .take(2)?;
    if holders.iter().any(|p| Some(&p.id) != except) {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "ndis_number",
            "A participant with this NDIS number already exists in your company",
        ));
    }
    Ok(())
}

/// Refuses a site that is not one of the company's (a foreign site answers like a missing one).
fn ensure_site(db: &mut ScopedWriter<'_>, site: &str) -> FnResult<()> {
    match db.get_in("sites", site)? {
        Some(_) => Ok(()),
        None => Err(FunctionError::field(
            ErrorCode::NotFound,
            "site_id",
            "Site not found",
        )),
    }
}

fn patched_text(patch: &Patch, doc: Option<&Document>, field: &str) -> String {
    match patch.get(field) {
        Some(value) => value.as_ref().and_then(Value::as_str),
        None => doc.and_then(|d| d.get(field)).and_then(Value::as_str),
    }
    .unwrap_or_default()
    .to_string()
}

fn stamp(patch: &mut Patch, viewer: &Viewer, now: f64) {
    patch.insert("updated_at".into(), Some(Value::from(now)));
    patch.insert("updated_by".into(), Some(Value::from(viewer.user_id)));
}

fn saved(ctx: &MutationCtx<'_>, id: DocumentId) -> Saved {
    Saved {
        success: true,
        participant_id: id.into(),
        correlation_id: ctx.request_id.as_str().to_string(),
    }
}

/// `participants/create:createParticipant`: `{success, participantId, correlationId}`.
pub fn create(ctx: &mut MutationCtx<'_>, args: CreateArgs) -> FnResult<Saved> {
    let now = ctx.now_ms();
    let (viewer, scope) = writer(ctx)?;
    let given = ParticipantFields {
        first_name: Some(args.first_name),
        last_name: Some(args.last_name),
        date_of_birth: Some(args.date_of_birth),
        ndis_number: Some(args.ndis_number),
        contact_phone: args.contact_phone,
        emergency_contact: args.emergency_contact,
        care_notes: args.care_notes,
        support_level: Some(args.support_level),
        status: args.status,
    };
    let fields = checked(&given, now)?;
    let id = insert(ctx, &viewer, &scope, fields, args.site_id.as_deref())?;
    Ok(saved(ctx, id))
}

/// Creates a participant in `scope`'s company from `checked` fields (plus, for sample data, a
/// discharge reason): the one write path of every creation, with the NDIS and site checks.
pub(super) fn insert(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    scope: &functions::Scope,
    mut fields: Patch,
    site: Option<&str>,
) -> FnResult<DocumentId> {
    let now = ctx.now_ms();
    let mut db = ctx.db.scoped(scope);
    ensure_ndis_free(&mut db, &patched_text(&fields, None, "ndis_number"), None)?;
    if let Some(site) = site {
        ensure_site(&mut db, site)?;
        fields.insert("site_id".into(), Some(Value::from(site)));
    }
    let key = name_key(
        &patched_text(&fields, None, "first_name"),
        &patched_text(&fields, None, "last_name"),
    );
    fields.insert("name_key".into(), Some(Value::from(key)));
    fields
        .entry("status".into())
        .or_insert(Some(Value::from("active")));
    fields.insert("created_at".into(), Some(Value::from(now)));
    fields.insert("created_by".into(), Some(Value::from(viewer.user_id)));
    stamp(&mut fields, viewer, now);
    let row: Object = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    db.insert(TABLE, row)
}

/// `participants/update:updateParticipant`: changes the fields given. Discharging needs a reason,
/// so it goes through `updateParticipantStatus`; leaving the discharged status drops the reason.
pub fn update(ctx: &mut MutationCtx<'_>, args: UpdateArgs) -> FnResult<Saved> {
    let now = ctx.now_ms();
    let (viewer, scope) = writer(ctx)?;
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
    let id = change(
        ctx,
        &viewer,
        &scope,
        &args.participant_id,
        patch,
        args.site_id.as_deref(),
    )?;
    Ok(saved(ctx, id))
}

/// Applies `checked` fields to the participant `id` of `scope`'s company: the one write path of
/// every edit, with the NDIS, site and status rules.
pub(super) fn change(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    scope: &functions::Scope,
    id: &str,
    mut patch: Patch,
    site: Option<&str>,
) -> FnResult<DocumentId> {
    let now = ctx.now_ms();
    let mut db = ctx.db.scoped(scope);
    let current = db.get_in(TABLE, id)?.ok_or_else(not_found)?;
    let was = patched_text(&Patch::new(), Some(&current), "status");
    if patch.contains_key("ndis_number") {
        let ndis = patched_text(&patch, None, "ndis_number");
        ensure_ndis_free(&mut db, &ndis, Some(&current.id))?;
    }
    if let Some(site) = site {
        ensure_site(&mut db, site)?;
        patch.insert("site_id".into(), Some(Value::from(site)));
    }
    if patch.contains_key("status") {
        let status = patched_text(&patch, None, "status");
        if status == DISCHARGED && was != DISCHARGED {
            return Err(FunctionError::validation(
                "status",
                "Reason is required when discharging a participant (use updateParticipantStatus)",
            ));
        }
        if status != DISCHARGED {
            patch.insert("discharge_reason".into(), None);
        }
    }
    if patch.contains_key("first_name") || patch.contains_key("last_name") {
        let key = name_key(
            &patched_text(&patch, Some(&current), "first_name"),
            &patched_text(&patch, Some(&current), "last_name"),
        );
        patch.insert("name_key".into(), Some(Value::from(key)));
    }
    stamp(&mut patch, viewer, now);
    db.patch(&current.id, patch)?;
    Ok(current.id)
}

/// `participants/updateStatus:updateParticipantStatus`: `{success, message, participantId,
/// previousStatus, newStatus, correlationId}`. Discharging needs a reason, which is kept.
pub fn update_status(ctx: &mut MutationCtx<'_>, args: UpdateStatusArgs) -> FnResult<StatusChanged> {
    let now = ctx.now_ms();
    let (viewer, scope) = writer(ctx)?;
    let status = args.status;
    let reason = fields::bounded(
        "reason",
        args.reason.as_deref().unwrap_or_default(),
        MAX_REASON,
        "Reason",
    )?;
    let mut db = ctx.db.scoped(&scope);
    let current = db
        .get_in(TABLE, &args.participant_id)?
        .ok_or_else(not_found)?;
    let previous = patched_text(&Patch::new(), Some(&current), "status");
    let message = if previous == status {
        "Participant status is already set to the requested value"
    } else {
        if status == DISCHARGED && reason.is_none() {
            return Err(FunctionError::validation(
                "reason",
                "Reason is required when discharging a participant",
            ));
        }
        let mut patch = Patch::new();
        patch.insert("status".into(), Some(Value::from(status.as_str())));
        let kept_reason = reason.filter(|_| status == DISCHARGED).map(Value::from);
        patch.insert("discharge_reason".into(), kept_reason);
        stamp(&mut patch, &viewer, now);
        db.patch(&current.id, patch)?;
        match status.as_str() {
            "active" => {
                "Participant has been activated and is now available for incident reporting"
            }
            "inactive" => "Participant has been set to inactive status",
            _ => {
                "Participant has been discharged and is no longer available for new incident reports"
            }
        }
    };
    Ok(StatusChanged {
        success: true,
        message: message.to_string(),
        participant_id: current.id.into(),
        previous_status: previous,
        new_status: status,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}
