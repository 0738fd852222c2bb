//! Users: the table, the first system administrator, and user management (listing, profiles,
//! roles, creation and deletion). Role rules live in `roles`, the functions in `list` and `manage`,
//! the system administrators' platform-wide user page in `admin`.

mod admin;
mod list;
mod manage;
mod protection;
pub mod roles;
pub mod rows;

use functions::{CrossTenant, DbRead, FnResult, Registry, Scope};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use store::{Document, Store, StoreError, TableDef};

use crate::auth::passwords;
use crate::identity::{Permission, Viewer};
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

pub const ROLES: [&str; 5] = [
    "system_admin",
    "demo_admin",
    "company_admin",
    "team_lead",
    "frontline_worker",
];

/// The user-management functions.
pub fn register(r: &mut Registry, urls: &config::Urls) {
    list::register(r);
    manage::register(r, urls);
    admin::register(r);
}

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new("users")
        .field("name", v::string())
        .field("email", v::string())
        // argon2id PHC string; empty for accounts that must set a password first.
        .field("password", v::string())
        .field("role", role_validator())
        .optional("company_id", v::id("companies"))
        .optional("profile_image_url", v::string())
        .field("created_at", v::number())
        // Sign-in failures since the last success, and the lockout they caused; stored so that
        // lockout survives restarts and holds across nodes.
        .optional("failed_logins", v::number())
        .optional("locked_until", v::number())
        .optional("last_login_at", v::number())
        .index("by_email", &["email"])
        .index("by_company", &["company_id"])
        .index("by_role", &["role"])
        // Counting a company's admins (the last one may not go) and filtering lists by role.
        .index("by_company_role", &["company_id", "role"])
        .tenant("company_id")]
}

fn role_validator() -> Validator {
    v::union(ROLES.iter().map(|r| v::literal(*r)).collect())
}

/// A document of the users table, as stored (never sent as is: see `PublicUser`).
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "users")]
pub struct UserDoc {
    #[serde(rename = "_id")]
    pub id: Id<UserDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub name: String,
    pub email: String,
    pub password: String,
    #[typed(validator = role_validator())]
    pub role: String,
    #[typed(id = "companies")]
    pub company_id: Option<String>,
    pub profile_image_url: Option<String>,
    pub created_at: f64,
    pub failed_logins: Option<f64>,
    pub locked_until: Option<f64>,
    pub last_login_at: Option<f64>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![("users", UserDoc::validator())]
}

/// The user holding `email` in any company, if any. Emails identify accounts across the whole
/// system, so uniqueness checks must see every company; only the Id leaves this function, never the
/// document. `grant` proves the calling function is declared cross-tenant.
pub(crate) fn email_in_use(
    db: &mut impl DbRead,
    grant: &CrossTenant,
    email: &str,
) -> FnResult<Option<DocumentId>> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query("users", "by_email", |q| q.eq("email", email))?
        .first()?
        .map(|u| u.id))
}

/// Whose users a manager may act on: every company's with `manage_all_companies`, otherwise their
/// own company's (a foreign user then answers exactly like a missing one).
pub(crate) fn manage_scope(viewer: &Viewer, grant: &CrossTenant) -> FnResult<Scope> {
    if viewer.has(Permission::ManageAllCompanies) {
        viewer.all_companies_scope(grant, Permission::ManageAllCompanies)
    } else {
        viewer.company_scope()
    }
}

/// A text field of a document ("" when absent).
pub(crate) fn text_of<'a>(doc: &'a Document, field: &str) -> &'a str {
    doc.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// A user as other users see them: never the password hash or the lockout counters (the reference
/// leaked both through its user lists).
#[derive(Clone, Debug, Serialize, Typed)]
pub struct PublicUser {
    #[serde(rename = "_id")]
    pub id: Id<UserDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub name: String,
    pub email: String,
    #[typed(validator = role_validator())]
    pub role: String,
    #[typed(id = "companies")]
    pub company_id: Option<String>,
    pub profile_image_url: Option<String>,
    pub created_at: f64,
    pub last_login_at: Option<f64>,
    /// An account created by an admin has no password until its owner follows the emailed link.
    pub has_password: bool,
}

pub(crate) fn public_user(user: &Document) -> FnResult<PublicUser> {
    let user: UserDoc = functions::row(user)?;
    Ok(PublicUser {
        id: user.id,
        creation_time: user.creation_time,
        name: user.name,
        email: user.email,
        role: user.role,
        company_id: user.company_id,
        profile_image_url: user.profile_image_url,
        created_at: user.created_at,
        last_login_at: user.last_login_at,
        has_password: !user.password.is_empty(),
    })
}

/// A display name: trimmed, 1 to 100 characters.
pub(crate) fn parse_name(field: &str, raw: &str) -> FnResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(functions::FunctionError::validation(
            field,
            "Name must be between 1 and 100 characters",
        ));
    }
    Ok(name.to_string())
}

/// A lower-cased, trimmed email address that looks deliverable (one `@`, a dot in the domain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, AdminError> {
        let email = raw.trim().to_ascii_lowercase();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(char::is_whitespace);
        if valid {
            Ok(Email(email))
        } else {
            Err(AdminError::InvalidEmail)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Invalid email format")]
    InvalidEmail,
    #[error("Name must not be empty")]
    EmptyName,
    #[error("Password does not meet requirements: {0}")]
    WeakPassword(String),
    #[error("A user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Creates a system administrator (no company). Refuses an email that is already taken.
pub async fn create_system_admin(
    store: &Store,
    email: &str,
    name: &str,
    password: &SecretString,
) -> Result<String, AdminError> {
    let email = Email::parse(email)?;
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(AdminError::EmptyName);
    }
    passwords::check_strength(password.expose_secret()).map_err(AdminError::WeakPassword)?;
    let hash = passwords::hash(password.expose_secret())
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let (id, _, _) = store
        .mutate(move |txn| {
            let taken = txn
                .query("users")?
                .with_index("by_email", |q| q.eq("email", email.as_str()))?
                .first()?
                .is_some();
            if taken {
                return Err(AdminError::EmailTaken);
            }
            let mut user = Object::new();
            user.insert("name".into(), Value::from(name.as_str()));
            user.insert("email".into(), Value::from(email.as_str()));
            user.insert("password".into(), Value::from(hash.as_str()));
            user.insert("role".into(), Value::from("system_admin"));
            user.insert("created_at".into(), Value::from(txn.now_ms()));
            Ok(txn.insert("users", user)?)
        })
        .await?;
    tracing::info!(user_id = %id, "system administrator created");
    Ok(id.encode())
}

/// Whether any system administrator exists (so start-up can create the first one once).
pub async fn has_system_admin(store: &Store) -> Result<bool, StoreError> {
    let (found, _, _) = store
        .query(|txn| {
            Ok::<_, StoreError>(
                txn.query("users")?
                    .with_index("by_role", |q| q.eq("role", "system_admin"))?
                    .first()?
                    .is_some(),
            )
        })
        .await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("  Ann@Example.ORG ").unwrap().as_str(),
            "ann@example.org"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.org",
            "ann@x",
            "a b@x.org",
            "a@b@c.org",
            "ann@.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
