//! The prompt templates for the database export (platform-wide, no secrets).

use functions::{DbRead, FnResult};
use store::Document;
use values::Value;

use super::TABLE;

/// Every prompt version.
pub fn export_rows(db: &mut impl DbRead) -> FnResult<Vec<Value>> {
    Ok(db
        .query(TABLE)?
        .collect()?
        .iter()
        .map(Document::to_value)
        .collect())
}
