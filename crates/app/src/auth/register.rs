//! `auth:registerUser`: self-registration as a frontline worker with no company. Joining a company
//! takes an invitation (the reference let anyone join any company by passing its id).

use functions::{ActionCtx, CrossTenant, ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use values::{Object, Value};

use super::passwords;
use crate::args::{object, opt_text, text};
use crate::audit::{self, Entry, Event};
use crate::users::Email;

pub struct Registration {
    name: String,
    email: Email,
    password_hash: String,
}

pub async fn prepare(_ctx: ActionCtx, args: Object) -> FnResult<Registration> {
    if opt_text(&args, "company_id").is_some_and(|c| !c.is_empty()) {
        return Err(FunctionError::field(
            ErrorCode::Forbidden,
            "company_id",
            "Joining a company requires an invitation",
        ));
    }
    let name = text(&args, "name").trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(FunctionError::validation(
            "name",
            "Name must be between 1 and 100 characters",
        ));
    }
    let email = Email::parse(text(&args, "email"))
        .map_err(|_| FunctionError::validation("email", "Invalid email format"))?;
    let password = text(&args, "password").to_string();
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

pub fn apply(ctx: &mut MutationCtx<'_>, _args: Object, r: &Registration) -> FnResult {
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
    Ok(object([
        ("success", Some(Value::from(true))),
        ("userId", Some(Value::from(id))),
        ("email", Some(Value::from(r.email.as_str()))),
        ("name", Some(Value::from(r.name.as_str()))),
        ("role", Some(Value::from("frontline_worker"))),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}
