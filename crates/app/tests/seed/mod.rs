//! Direct setup for the user and invitation tests: companies and users written straight into the
//! store, and the links a user would find in their inbox (read from the email outbox).
#![allow(dead_code)]

use values::{Object, Value};

use crate::harness::App;

pub const PW: &str = "Str0ng!Pass";

/// A company row, as `companies:createCompany` would leave it.
pub async fn company(app: &App, name: &str) -> String {
    let mut row = Object::new();
    row.insert("name".into(), Value::from(name));
    row.insert(
        "slug".into(),
        Value::from(name.to_lowercase().replace(' ', "-")),
    );
    row.insert("contact_email".into(), Value::from("office@example.org"));
    row.insert("status".into(), Value::from("active"));
    row.insert("created_at".into(), Value::from(1.0));
    let (id, _, _) = app
        .store
        .mutate(move |txn| txn.insert("companies", row.clone()))
        .await
        .unwrap();
    id.encode()
}

/// A user with the password `PW` in `company` (or none) holding `role`.
pub async fn user(app: &App, company: Option<&str>, email: &str, role: &str) -> String {
    let hash = app::auth::passwords::hash(PW).unwrap();
    let mut row = Object::new();
    row.insert("name".into(), Value::from(format!("{role} {email}")));
    row.insert("email".into(), Value::from(email));
    row.insert("password".into(), Value::from(hash));
    row.insert("role".into(), Value::from(role));
    if let Some(company) = company {
        row.insert("company_id".into(), Value::from(company));
    }
    row.insert("created_at".into(), Value::from(1.0));
    let (id, _, _) = app
        .store
        .mutate(move |txn| txn.insert("users", row.clone()))
        .await
        .unwrap();
    id.encode()
}

/// A signed-in user: their session token.
pub async fn signed_in(app: &App, company: Option<&str>, email: &str, role: &str) -> String {
    user(app, company, email, role).await;
    app.token(email, PW).await
}

/// Every link containing `marker` in emails sent to `to`, oldest first.
pub async fn links(app: &App, to: &str, marker: &str) -> Vec<String> {
    let to = to.to_string();
    let (texts, _, _) = app
        .store
        .query(move |txn| {
            let rows = txn.query("email_outbox")?.collect()?;
            Ok::<_, store::StoreError>(
                rows.iter()
                    .filter(|r| r.get("to").and_then(Value::as_str) == Some(to.as_str()))
                    .filter_map(|r| r.get("text").and_then(Value::as_str).map(str::to_string))
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    texts
        .iter()
        .flat_map(|t| t.split_whitespace())
        .filter(|w| w.contains(marker))
        .map(str::to_string)
        .collect()
}

/// The token at the end of a link.
pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_string()
}

/// The documents of `table` (for checking what was stored).
pub async fn rows(app: &App, table: &'static str) -> Vec<store::Document> {
    let (docs, _, _) = app
        .store
        .query(move |txn| txn.query(table)?.collect())
        .await
        .unwrap();
    docs
}

pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64
}

/// Writes a row (given as clean JSON) straight into the store; returns its id.
pub async fn insert(app: &App, table: &'static str, fields: serde_json::Value) -> String {
    let row = values::json::from_clean_json(&fields)
        .unwrap()
        .into_object()
        .unwrap();
    let (id, _, _) = app
        .store
        .mutate(move |txn| txn.insert(table, row.clone()))
        .await
        .unwrap();
    id.encode()
}

/// A signed-in user, written straight into the store.
pub struct Member {
    pub id: String,
    pub token: String,
}

/// A user of `role` in `company` (or none) with a live session, written directly: no password
/// hashing, so tests can make many (they cannot sign in with a password).
pub async fn member(app: &App, company: Option<&str>, email: &str, role: &str) -> Member {
    let mut row = serde_json::json!({"name": format!("{role} {email}"), "email": email,
                                     "password": "", "role": role, "created_at": 1.0});
    if let Some(company) = company {
        row["company_id"] = serde_json::json!(company);
    }
    let id = insert(app, "users", row).await;
    let token = hex::encode(rand::random::<[u8; 32]>());
    let now = now_ms();
    insert(
        app,
        "sessions",
        serde_json::json!({"user_id": id, "token_hash": app::identity::sessions::hash_token(&token),
                           "created_at": now, "expires_at": now + 86_400_000.0,
                           "remember_me": false}),
    )
    .await;
    Member { id, token }
}

/// As `member`, with a fresh random email.
pub async fn anyone(app: &App, company: Option<&str>, role: &str) -> Member {
    let email = format!("{role}-{}@example.org", rand::random::<u32>());
    member(app, company, &email, role).await
}
