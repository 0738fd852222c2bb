//! Users and the first system administrator. (The identity issue adds sessions, roles and the rest.)

use secrecy::{ExposeSecret, SecretString};
use store::{Store, StoreError, TableDef};

use crate::auth::passwords;
use values::validator::v;
use values::{Object, Value};

pub const ROLES: [&str; 5] = [
    "system_admin",
    "demo_admin",
    "company_admin",
    "team_lead",
    "frontline_worker",
];

/// The user-management functions (being built, see issue 3).
pub fn register(_r: &mut functions::Registry, _urls: &config::Urls) {}

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new("users")
        .field("name", v::string())
        .field("email", v::string())
        // argon2id PHC string; empty for accounts that must set a password first.
        .field("password", v::string())
        .field(
            "role",
            v::union(ROLES.iter().map(|r| v::literal(*r)).collect()),
        )
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
        .tenant("company_id")]
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
