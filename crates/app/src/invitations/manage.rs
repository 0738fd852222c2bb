//! `users/invite/listPendingInvitations` (newest first) and `users/invite/revokeInvitation`.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use store::{Order, Patch};
use values::validator::v;
use values::{Object, Value};

use super::{company_scope, expires_at, status_of, TABLE};
use crate::args::{object, text, with_session};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission};
use crate::users::manage_scope;

/// More pending invitations than this for one company means something is wrong; the list stops.
const MAX_LISTED: usize = 500;

pub fn register(r: &mut Registry) {
    r.query_untyped(
        "users/invite/listPendingInvitations",
        with_session([("companyId", v::string().into())]),
        list_pending,
    )
    .cross_tenant();
    r.mutation_untyped(
        "users/invite/revokeInvitation",
        with_session([("invitationId", v::string().into())]),
        revoke,
    )
    .cross_tenant();
}

fn list_pending(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::InviteUsers)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_scope(
        &mut ctx.db,
        &viewer,
        &grant,
        text(&args, "companyId"),
        "You can only view invitations for your own company",
    )?;
    let rows = ctx
        .db
        .scoped(&scope)
        .query(TABLE, "by_company_status_created", |q| {
            q.eq("status", "pending")
        })?
        .order(Order::Desc)
        .take(MAX_LISTED)?;
    Ok(Value::Array(
        rows.iter()
            .map(|inv| {
                let field = |name: &str| inv.get(name).cloned();
                object([
                    ("_id", Some(Value::from(inv.id))),
                    ("email", field("email")),
                    ("role", field("role")),
                    ("status", field("status")),
                    ("created_at", field("created_at")),
                    ("expires_at", field("expires_at")),
                    ("inviter_name", field("inviter_name")),
                    ("inviter_email", field("inviter_email")),
                    ("is_expired", Some(Value::from(expires_at(inv) <= now))),
                ])
            })
            .collect(),
    ))
}

fn revoke(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::InviteUsers)?;
    let scope = manage_scope(&viewer, &ctx.cross_tenant()?)?;
    let invitation = ctx
        .db
        .scoped(&scope)
        .get_in(TABLE, text(&args, "invitationId"))?
        .ok_or_else(|| FunctionError::not_found("Invitation not found"))?;
    let status = status_of(&invitation);
    if status != "pending" {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            format!("Cannot revoke invitation with status: {status}. Only pending invitations can be revoked."),
        ));
    }
    let mut patch = Patch::new();
    patch.insert("status".into(), Some(Value::from("revoked")));
    patch.insert("revoked_at".into(), Some(Value::from(now)));
    patch.insert("revoked_by".into(), Some(Value::from(viewer.user_id)));
    ctx.db.scoped(&scope).patch(&invitation.id, patch)?;
    let company = invitation
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| ctx.db.normalize_id("companies", c));
    let email = invitation
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let entry = Entry {
        event: Event::InvitationRevoked,
        actor: Some(&viewer.user_id),
        target: Some(invitation.id.encode()),
        company: company.as_ref(),
        details: &[("email", email)],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("message", Some(Value::from("Invitation revoked"))),
    ]))
}
