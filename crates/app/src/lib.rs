//! The SupportSignal modules: their tables and functions. Each module owns its tables.

mod args;
pub mod audit;
pub mod auth;
pub mod companies;
pub mod email;
pub mod identity;
pub mod impersonation;
pub mod invitations;
pub mod oauth;
pub mod participants;
pub mod rate_limit;
pub mod users;

use functions::Registry;
use store::Schema;

/// Every table of the application.
pub fn schema() -> Schema {
    companies::tables()
        .into_iter()
        .chain(users::tables())
        .chain(identity::sessions::tables())
        .chain(auth::reset::tables())
        .chain(audit::tables())
        .chain(rate_limit::tables())
        .chain(invitations::tables())
        .chain(participants::tables())
        .chain(impersonation::tables())
        .chain(oauth::tables())
        .chain(email::tables())
        .fold(Schema::new(), Schema::table)
}

/// Every function of the application, configured from `config` (links in emails, OAuth providers).
pub fn registry(config: &config::Config) -> Registry {
    let urls = &config.urls();
    let mut r = Registry::new();
    // WebSocket clients authenticate a connection with a session token; this query validates it.
    r.authenticate_with("auth:verifySession");
    auth::register(&mut r, urls);
    audit::register(&mut r);
    companies::register(&mut r, urls);
    users::register(&mut r, urls);
    invitations::register(&mut r, urls);
    participants::register(&mut r, urls);
    impersonation::register(&mut r, urls);
    oauth::register_with(&mut r, urls, &config.oauth);
    r
}
