//! `auth:registerUser`: self-registration as a frontline worker with no company. Joining a company
//! takes an invitation (the reference let anyone join any company by passing its id).

use functions::{ActionCtx, CrossTenant, ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use serde::{Deserialize, Serialize};
use values::{Object, Typed, Value};

use super::passwords;
use crate::audit::{self, Entry, Event};
use crate::users::Email;

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct RegisterArgs {
    name: String,
    email: String,
    password: String,
    company_id: Option<String>,
    /// Accepted for the web app's sake; joining by invitation goes through the invitations module.
    #[serde(rename = "invitationToken")]
    #[allow(dead_code)]
    invitation_token: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    success: bool,
    #[typed(id = "users")]
    user_id: String,
    email: String,
    name: String,
    role: String,
    correlation_id: String,
}

pub struct Registration {
    name: String,
    email: Email,
    password_hash: String,
}

pub async fn prepare(_ctx: ActionCtx, args: RegisterArgs) -> FnResult<Registration> {
    if args.company_id.as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(FunctionError::field(
            ErrorCode::Forbidden,
            "company_id",
            "Joining a company requires an invitation",
        ));
    }
    let name = args.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(FunctionError::validation(
            "name",
            "Name must be between 1 and 100 characters",
        ));
    }
    let email = Email::parse(&args.email)
        .map_err(|_| FunctionError::validation("email", "Invalid email format"))?;
    let password = args.password;
    passwords::require_strong("password", &password)?;
    let password_hash = passwords::off_thread(move || passwords::hash(&password))
        .await
        .map_err(|e| FunctionError::internal(format!("hashing failed: {e}")))??;
    Ok(Registration {
        name,
        email,
        password_hash,
    })
}

pub fn apply(
    ctx: &mut MutationCtx<'_>,
    _args: RegisterArgs,
    r: &Registration,
) -> FnResult<Registered> {
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    let now = ctx.now_ms();
    let mut users = ctx.db.scoped(&all);
    let taken = users
        .query("users", "by_email", |q| q.eq("email", r.email.as_str()))?
        .first()?
        .is_some();
    if taken {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "email",
            "User with this email already exists",
        ));
    }
    let mut user = Object::new();
    user.insert("name".into(), Value::from(r.name.as_str()));
    user.insert("email".into(), Value::from(r.email.as_str()));
    user.insert("password".into(), Value::from(r.password_hash.as_str()));
    user.insert("role".into(), Value::from("frontline_worker"));
    user.insert("created_at".into(), Value::from(now));
    let id = users.insert("users", user)?;
    let entry = Entry {
        event: Event::UserRegistered,
        actor: Some(&id),
        target: Some(id.encode()),
        company: None,
        details: &[],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(Registered {
        success: true,
        user_id: id.encode(),
        email: r.email.as_str().to_string(),
        name: r.name.clone(),
        role: "frontline_worker".into(),
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}
