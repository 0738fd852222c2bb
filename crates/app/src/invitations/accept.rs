//! `users/invite/acceptInvitation`: an action (as in the reference API). It checks the token first
//! (so a bad link costs no password hashing), hashes the password outside any transaction, then one
//! internal mutation re-checks the invitation, creates the user in the invitation's company, marks
//! the invitation accepted and signs the user in with a 30-day session.

use functions::{
    ActionCtx, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, QueryCtx, Registry,
    Scope,
};
use serde::{Deserialize, Serialize};
use store::Patch;
use values::{Object, Typed, Value};

use super::{find_by_token, invalid_token, refusal};
use crate::audit::{self, Entry, Event};
use crate::auth::passwords;
use crate::identity::sessions;
use crate::users::{email_in_use, parse_name, text_of};

const CHECK: FunctionRef<TokenArgs, ()> =
    FunctionRef::internal_query("users/invite/acceptInvitation:checkToken");
const CREATE: FunctionRef<CreateArgs, Accepted> =
    FunctionRef::internal_mutation("users/invite/acceptInvitation:createUserFromInvitation");

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct AcceptArgs {
    token: String,
    name: String,
    password: String,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct TokenArgs {
    token: String,
}

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CreateArgs {
    token: String,
    name: String,
    password_hash: String,
}

#[derive(Default, Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    success: bool,
    session_token: String,
    #[typed(id = "users")]
    user_id: String,
    message: String,
}

pub fn register(r: &mut Registry) {
    r.action("users/invite/acceptInvitation", accept);
    r.internal_query(CHECK, check_token).cross_tenant();
    // Internal: it trusts the hash it is given, so no client may call it (the reference's
    // equivalent was public).
    r.internal_mutation(CREATE, create_user).cross_tenant();
}

async fn accept(ctx: ActionCtx, args: AcceptArgs) -> FnResult<Accepted> {
    let name = parse_name("name", &args.name)?;
    let password = args.password;
    passwords::check_strength(&password).map_err(|problems| {
        FunctionError::validation(
            "password",
            format!("Password validation failed: {problems}"),
        )
    })?;
    let check = TokenArgs { token: args.token };
    ctx.run_query(CHECK, &check).await?;
    let hash = passwords::off_thread(move || passwords::hash(&password))
        .await
        .map_err(|e| FunctionError::internal(format!("hashing failed: {e}")))??;
    let create = CreateArgs {
        token: check.token,
        name,
        password_hash: hash,
    };
    ctx.run_mutation(CREATE, &create).await
}

fn check_token(ctx: &mut QueryCtx<'_>, args: TokenArgs) -> FnResult<()> {
    let now = ctx.now_ms();
    let grant = ctx.cross_tenant()?;
    let invitation = find_by_token(&mut ctx.db, &grant, &args.token)?.ok_or_else(invalid_token)?;
    match refusal(&invitation, now) {
        // A lapsed invitation still marked pending goes on to the mutation, which records it as
        // expired (once; after that this check refuses it).
        Some(error) if invitation.status != "pending" => Err(error),
        _ => Ok(()),
    }
}

fn create_user(ctx: &mut MutationCtx<'_>, args: CreateArgs) -> FnResult<Accepted> {
    let now = ctx.now_ms();
    let grant = ctx.cross_tenant()?;
    let invitation = find_by_token(&mut ctx.db, &grant, &args.token)?.ok_or_else(invalid_token)?;
    let company = invitation.company_id;
    // From here on everything happens inside the invitation's company.
    let scope = Scope::company(company);
    if let Some(error) = refusal(&invitation, now) {
        if invitation.status == "pending" {
            // Lapsed: record it, so lists and later attempts see it as expired.
            let mut patch = Patch::new();
            patch.insert("status".into(), Some(Value::from("expired")));
            ctx.db.scoped(&scope).patch(&invitation.id, patch)?;
            return ctx.fail_after_commit_typed(error);
        }
        return Err(error);
    }
    let company_doc = ctx
        .db
        .scoped(&scope)
        .get(&company)?
        .ok_or_else(invalid_token)?;
    let email = invitation.email.clone();
    if email_in_use(&mut ctx.db, &grant, &email)?.is_some() {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "email",
            "An account with this email address already exists. Please sign in instead.",
        ));
    }
    let mut user = Object::new();
    user.insert("name".into(), Value::from(args.name));
    user.insert("email".into(), Value::from(email.as_str()));
    user.insert("password".into(), Value::from(args.password_hash));
    user.insert("role".into(), Value::from(invitation.role.as_str()));
    user.insert("company_id".into(), Value::from(company));
    user.insert("created_at".into(), Value::from(now));
    let user_id = ctx.db.scoped(&scope).insert("users", user)?;
    let mut patch = Patch::new();
    patch.insert("status".into(), Some(Value::from("accepted")));
    patch.insert("accepted_at".into(), Some(Value::from(now)));
    patch.insert("accepted_user_id".into(), Some(Value::from(user_id)));
    ctx.db.scoped(&scope).patch(&invitation.id, patch)?;
    // Invitation sign-ins last 30 days, like remember-me.
    let (token, _) = sessions::create(&mut ctx.db, &user_id, true, now)?;
    let entry = Entry {
        event: Event::InvitationAccepted,
        actor: Some(&user_id),
        target: Some(invitation.id.encode()),
        company: Some(&company),
        details: &[("role", &invitation.role)],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(Accepted {
        success: true,
        session_token: token.expose().to_string(),
        user_id: user_id.encode(),
        message: format!(
            "Welcome to {}! Your account has been created.",
            text_of(&company_doc, "name")
        ),
    })
}
