//! The SupportSignal modules: their tables and functions. Each module owns its tables.

pub mod ai_service;
pub mod analysis;
mod args;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod clarification;
pub mod companies;
pub mod email;
pub mod enhancement;
pub mod exports;
pub mod housekeeping;
pub mod identity;
pub mod impersonation;
pub mod incidents;
pub mod invitations;
pub mod narratives;
pub mod notifications;
pub mod oauth;
pub mod operations;
pub mod participants;
pub mod prompts;
pub mod rate_limit;
pub mod reports;
pub mod sample_data;
mod start;
pub mod users;

pub use start::{start, start_with, FirstAdmin, Options, Running};

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
        .chain(incidents::tables())
        .chain(narratives::tables())
        .chain(clarification::tables())
        .chain(impersonation::tables())
        .chain(oauth::tables())
        .chain(email::tables())
        .chain(prompts::tables())
        .chain(ai_service::tables())
        .chain(attachments::tables())
        .chain(reports::tables())
        .chain(analysis::tables())
        .chain(notifications::tables())
        .fold(Schema::new(), Schema::table)
}

/// The row type of each table that has one, as `(table, validator)`: a test checks each against
/// the table's definition, so a field added to one and not the other fails.
pub fn row_types() -> Vec<(&'static str, values::Validator)> {
    narratives::rows()
        .into_iter()
        .chain(audit::rows())
        .chain(companies::rows())
        .chain(participants::rows())
        .chain(users::rows())
        .chain(clarification::rows())
        .chain(incidents::record::rows())
        .chain(prompts::rows())
        .chain(ai_service::rows())
        .chain(identity::sessions::rows())
        .chain(auth::reset::rows())
        .chain(rate_limit::rows())
        .chain(oauth::rows())
        .chain(incidents::submission::rows())
        .chain(invitations::rows())
        .chain(impersonation::rows())
        .chain(email::rows())
        .chain(attachments::rows())
        .chain(reports::rows())
        .chain(analysis::rows())
        .chain(notifications::rows())
        .collect()
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
    incidents::register(&mut r);
    narratives::register(&mut r);
    impersonation::register(&mut r, urls);
    oauth::register_with(&mut r, urls, &config.oauth);
    let prompt_settings = prompts::PromptSettings {
        default_model: config.ai.llm_model.clone(),
    };
    prompts::register(&mut r, &prompt_settings, &prompts::PromptCache::new());
    // The one AI service of this registry: actions that call AI get a clone of it.
    let ai = ai_service::AiService::from_config(&config.ai);
    ai_service::register(&mut r, &ai);
    clarification::register(&mut r, &ai);
    enhancement::register(&mut r, &ai);
    analysis::register(&mut r, urls, &ai);
    notifications::register(&mut r, urls);
    sample_data::register(&mut r);
    operations::register(&mut r);
    // Each module's sweep of its dead rows, run by a cron.
    identity::sessions::register_sweep(&mut r);
    auth::reset::register_sweep(&mut r);
    oauth::register_sweep(&mut r);
    impersonation::register_sweep(&mut r);
    rate_limit::register_sweep(&mut r);
    email::register_sweep(&mut r);
    exports::register(&mut r);
    // Outgoing email: delivery jobs send through the configured relay, or log without one.
    email::register(&mut r, mailer(config));
    attachments::register(&mut r);
    reports::register(&mut r);
    r
}

/// The mailer `config` asks for. One that cannot be built (a sender or TLS setting the relay
/// library refuses; the configuration checks most of these at load) fails every email with the
/// reason, which the outbox rows and the log then show.
fn mailer(config: &config::Config) -> std::sync::Arc<dyn email::Mailer> {
    match email::mailer_from_config(config) {
        Ok(mailer) => mailer,
        Err(error) => {
            tracing::error!(error = %error.message, "email: the mailer could not be set up; every email will fail");
            std::sync::Arc::new(email::Unusable(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use values::validator::v;
    use values::Validator;

    #[test]
    fn row_types_match_their_tables() {
        let schema = super::schema();
        let rows = super::row_types();
        assert!(!rows.is_empty());
        for (table, validator) in rows {
            let def = schema
                .get(table)
                .unwrap_or_else(|| panic!("{table} has a row type but no table"));
            let mut fields = def.fields.clone();
            fields.insert("_id".into(), v::id(table).into());
            fields.insert("_creationTime".into(), v::number().into());
            assert_eq!(validator, Validator::Object(fields), "row type of {table}");
        }
    }
}
