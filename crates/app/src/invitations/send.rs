//! `users/invite/sendUserInvitation`: an action (as in the reference API) whose work happens in one
//! internal mutation, so the invitation row, its email and its audit entry commit together or not
//! at all (the reference created the row, then deleted it again when its email call failed).

use config::Urls;
use functions::{
    ActionCtx, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, Registry,
};
use serde::{Deserialize, Serialize};
use store::Patch;
use values::{DocumentId, Object, Typed, Value};

use super::{company_role_validator, company_scope, read_rows, TABLE, TTL_MS};
use crate::audit::{self, Entry, Event};
use crate::email::{self, OutgoingEmail};
use crate::identity::sessions::{hash_token, SessionToken};
use crate::identity::{require_permission, Permission};
use crate::users::{email_in_use, roles, text_of, Email};

const CREATE: FunctionRef<SendArgs, Sent> =
    FunctionRef::internal_mutation("users/invite/sendUserInvitation:createInvitation");

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct SendArgs {
    email: String,
    #[typed(validator = company_role_validator())]
    role: String,
    company_id: String,
}

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    success: bool,
    #[typed(id = "user_invitations")]
    invitation_id: DocumentId,
    #[typed(id = "email_outbox")]
    email_id: DocumentId,
    message: String,
    expires_at: f64,
}

pub fn register(r: &mut Registry, urls: &Urls) {
    r.action("users/invite/sendUserInvitation", send);
    let urls = urls.clone();
    r.internal_mutation(CREATE, move |ctx, args| create(ctx, &urls, args))
        .cross_tenant();
}

async fn send(ctx: ActionCtx, args: SendArgs) -> FnResult<Sent> {
    // The caller's session reaches the mutation through `ctx.auth`.
    ctx.run_mutation(CREATE, &args).await
}

fn create(ctx: &mut MutationCtx<'_>, urls: &Urls, args: SendArgs) -> FnResult<Sent> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::InviteUsers)?;
    let grant = ctx.cross_tenant()?;
    let (company, scope) = company_scope(
        &mut ctx.db,
        &viewer,
        &grant,
        &args.company_id,
        "You can only invite users to your own company",
    )?;
    let role = roles::parse("role", &args.role)?;
    roles::require_grantable(viewer.role, role, "role")?;
    let email = Email::parse(&args.email)
        .map_err(|_| FunctionError::validation("email", "Invalid email format"))?;
    if email_in_use(&mut ctx.db, &grant, email.as_str())?.is_some() {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "email",
            "This email address is already registered with a company. Each user can only belong to one company.",
        ));
    }
    let pending = ctx
        .db
        .scoped(&scope)
        .query(TABLE, "by_company_email_status", |q| {
            q.eq("email", email.as_str()).eq("status", "pending")
        })?
        .collect()?;
    for old in read_rows(&pending)? {
        if old.expires_at > now {
            return Err(FunctionError::field(
                ErrorCode::Conflict,
                "email",
                "An invitation has already been sent to this email address for this company. Revoke it to send a new one.",
            ));
        }
        // A lapsed invitation does not block a new one; it is recorded as what it is.
        let mut patch = Patch::new();
        patch.insert("status".into(), Some(Value::from("expired")));
        ctx.db.scoped(&scope).patch(&old.id, patch)?;
    }

    let token = SessionToken::generate();
    let expires = now + TTL_MS;
    let mut row = Object::new();
    row.insert("email".into(), Value::from(email.as_str()));
    row.insert("company_id".into(), Value::from(company));
    row.insert("role".into(), Value::from(role.as_str()));
    row.insert("invited_by".into(), Value::from(viewer.user_id));
    row.insert("inviter_name".into(), Value::from(viewer.name.as_str()));
    row.insert("inviter_email".into(), Value::from(viewer.email.as_str()));
    row.insert("token_hash".into(), Value::from(hash_token(token.expose())));
    row.insert("expires_at".into(), Value::from(expires));
    row.insert("status".into(), Value::from("pending"));
    row.insert("created_at".into(), Value::from(now));
    let invitation_id = ctx.db.scoped(&scope).insert(TABLE, row)?;

    let company_doc = ctx
        .db
        .scoped(&scope)
        .get(&company)?
        .ok_or_else(|| FunctionError::internal("the company vanished"))?;
    let company_name = text_of(&company_doc, "name").to_string();
    let link = urls
        .invitation_acceptance(token.expose())
        .map_err(|e| FunctionError::internal(e.to_string()))?;
    let role_words = role.as_str().replace('_', " ");
    let email_id = email::enqueue(
        ctx,
        OutgoingEmail {
            to: email.as_str().to_string(),
            subject: format!("You're invited to join {company_name} on SupportSignal"),
            text: format!(
                "Hello,\n\n{} has invited you to join {company_name} on SupportSignal as a {role_words}.\n\nAccept the invitation within 7 days:\n\n{link}\n\nIf you did not expect this invitation, you can ignore this email.\n",
                viewer.name
            ),
            kind: "invitation".into(),
            company_id: Some(company),
            correlation_id: Some(invitation_id.encode()),
        },
    )?;
    let entry = Entry {
        event: Event::InvitationSent,
        actor: Some(&viewer.user_id),
        target: Some(invitation_id.encode()),
        company: Some(&company),
        details: &[("email", email.as_str()), ("role", role.as_str())],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(Sent {
        success: true,
        invitation_id,
        email_id,
        message: format!("Invitation sent successfully to {}", email.as_str()),
        expires_at: expires,
    })
}
