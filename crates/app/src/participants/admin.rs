//! `participants/admin:deleteParticipant`: company administrators delete their company's
//! participants, holders of `manage_all_companies` any company's. A participant that incidents refer
//! to is kept (incident records must keep their subject); the answer says to discharge instead.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx};
use values::{Object, Value};

use super::{not_found, TABLE};
use crate::args::{object, text};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_session, Permission};

pub fn delete(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, &args, now)?;
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
