//! `users/invite/listPendingInvitations` (newest first) and `users/invite/revokeInvitation`.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use serde::{Deserialize, Serialize};
use store::{Order, Patch};
use values::{Typed, Value};

use super::{company_scope, read_rows, InvitationDoc, TABLE};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission};
use crate::users::manage_scope;

/// More pending invitations than this for one company means something is wrong; the list stops.
const MAX_LISTED: usize = 500;

pub fn register(r: &mut Registry) {
    r.query("users/invite/listPendingInvitations", list_pending)
        .cross_tenant();
    r.mutation("users/invite/revokeInvitation", revoke)
        .cross_tenant();
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListArgs {
    company_id: String,
}

/// A pending invitation as the admin page lists it (never the token hash).
#[derive(Serialize, Typed)]
pub struct Pending {
    #[serde(rename = "_id")]
    #[typed(id = "user_invitations")]
    id: String,
    email: String,
    role: String,
    status: String,
    created_at: f64,
    expires_at: f64,
    inviter_name: String,
    inviter_email: String,
    is_expired: bool,
}

fn list_pending(ctx: &mut QueryCtx<'_>, args: ListArgs) -> FnResult<Vec<Pending>> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::InviteUsers)?;
    let grant = ctx.cross_tenant()?;
    let (_, scope) = company_scope(
        &mut ctx.db,
        &viewer,
        &grant,
        &args.company_id,
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
    Ok(read_rows(&rows)?
        .into_iter()
        .map(|inv| Pending {
            id: inv.id.encode(),
            email: inv.email,
            role: inv.role,
            status: inv.status,
            created_at: inv.created_at,
            expires_at: inv.expires_at,
            inviter_name: inv.inviter_name,
            inviter_email: inv.inviter_email,
            is_expired: inv.expires_at <= now,
        })
        .collect())
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct RevokeArgs {
    invitation_id: String,
}

#[derive(Serialize, Typed)]
pub struct Revoked {
    success: bool,
    message: String,
}

fn revoke(ctx: &mut MutationCtx<'_>, args: RevokeArgs) -> FnResult<Revoked> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::InviteUsers)?;
    let scope = manage_scope(&viewer, &ctx.cross_tenant()?)?;
    let invitation = ctx
        .db
        .scoped(&scope)
        .get_in(TABLE, &args.invitation_id)?
        .ok_or_else(|| FunctionError::not_found("Invitation not found"))?;
    let invitation: InvitationDoc = functions::row(&invitation)?;
    let status = &invitation.status;
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
    let entry = Entry {
        event: Event::InvitationRevoked,
        actor: Some(&viewer.user_id),
        target: Some(invitation.id.encode()),
        company: Some(&invitation.company_id),
        details: &[("email", &invitation.email)],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(Revoked {
        success: true,
        message: "Invitation revoked".into(),
    })
}
