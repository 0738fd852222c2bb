//! Users and the first system administrator. (The identity issue adds sessions, roles and the rest.)

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use store::{Store, StoreError, TableDef};
use values::validator::v;
use values::{Object, Value};

pub const ROLES: [&str; 5] = [
    "system_admin",
    "demo_admin",
    "company_admin",
    "team_lead",
    "frontline_worker",
];

pub fn tables() -> Vec<TableDef> {
    vec![
        TableDef::new("companies")
            .field("name", v::string())
            .field("slug", v::string())
            .field("contact_email", v::string())
            .field(
                "status",
                v::union(vec![
                    v::literal("active"),
                    v::literal("trial"),
                    v::literal("suspended"),
                    v::literal("test"),
                ]),
            )
            .field("created_at", v::number())
            .index("by_slug", &["slug"])
            .index("by_status", &["status"]),
        TableDef::new("users")
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
            .index("by_email", &["email"])
            .index("by_company", &["company_id"])
            .index("by_role", &["role"]),
    ]
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

const SPECIAL: &str = "!@#$%^&*(),.?\":{}|<>";
const COMMON: [&str; 4] = ["123456", "password", "qwerty", "admin"];

/// The reference system's password rules: 8–128 characters; upper, lower, digit and special
/// character; no character three times in a row; none of the well-known weak words.
pub fn check_password_strength(password: &str) -> Result<(), AdminError> {
    let mut problems = Vec::new();
    let len = password.chars().count();
    if !(8..=128).contains(&len) {
        problems.push("must be 8 to 128 characters long");
    }
    if !password.chars().any(|c| c.is_ascii_uppercase()) {
        problems.push("needs an uppercase letter");
    }
    if !password.chars().any(|c| c.is_ascii_lowercase()) {
        problems.push("needs a lowercase letter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        problems.push("needs a digit");
    }
    if !password.chars().any(|c| SPECIAL.contains(c)) {
        problems.push("needs a special character");
    }
    let chars: Vec<char> = password.chars().collect();
    if chars.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        problems.push("must not repeat a character three times in a row");
    }
    let lower = password.to_ascii_lowercase();
    if COMMON.iter().any(|weak| lower.contains(weak)) {
        problems.push("must not contain a common password");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AdminError::WeakPassword(problems.join(", ")))
    }
}

pub fn hash_password(password: &SecretString) -> Result<String, AdminError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AdminError::Internal(format!("hashing failed: {e}")))
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
    check_password_strength(password.expose_secret())?;
    let hash = hash_password(password)?;
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
    fn password_rules() {
        assert!(check_password_strength("Str0ng!Pass").is_ok());
        for weak in [
            "short1!",
            "alllowercase1!",
            "ALLUPPER1!",
            "NoDigits!!x",
            "NoSpecial123",
            "Paaa55word!",
            "MyPassword1!",
            "xAdmin#123",
        ] {
            assert!(
                check_password_strength(weak).is_err(),
                "{weak} should be refused"
            );
        }
    }

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
