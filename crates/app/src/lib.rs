//! The SupportSignal modules: their tables and functions. Each module owns its tables.

pub mod users;

use functions::Registry;
use store::Schema;

/// Every table of the application.
pub fn schema() -> Schema {
    users::tables()
        .into_iter()
        .fold(Schema::new(), Schema::table)
}

/// Every function of the application.
pub fn registry() -> Registry {
    Registry::new()
}
