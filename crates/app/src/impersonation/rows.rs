//! Impersonation rows in bulk: those involving a deleted company's users, and the export (never the
//! token hash). Rows are few (each lives 30 minutes before housekeeping removes it), so these read
//! the whole table rather than keep an index by target for this rare use.

use functions::{DbRead, DbWriter, FnResult};
use values::{DocumentId, Value};

use super::{read_rows, TABLE};
use crate::exports::exported;

const SECRET: [&str; 1] = ["token_hash"];

fn involving(db: &mut impl DbRead, users: &[DocumentId]) -> FnResult<Vec<DocumentId>> {
    let rows = read_rows(&db.query(TABLE)?.collect()?)?;
    Ok(rows
        .into_iter()
        .filter(|r| users.contains(&r.admin_user_id) || users.contains(&r.target_user_id))
        .map(|r| r.id.get())
        .collect())
}

/// How many impersonations (live or ended) `users` took part in, as admin or target.
pub fn count_involving(db: &mut impl DbRead, users: &[DocumentId]) -> FnResult<usize> {
    Ok(involving(db, users)?.len())
}

/// Deletes the impersonations `users` took part in; returns how many went.
pub fn delete_involving(db: &mut DbWriter<'_>, users: &[DocumentId]) -> FnResult<usize> {
    let ids = involving(db, users)?;
    for id in &ids {
        db.delete(id)?;
    }
    Ok(ids.len())
}

/// Every impersonation, without its token hash.
pub fn export_rows(db: &mut impl DbRead) -> FnResult<Vec<Value>> {
    Ok(db
        .query(TABLE)?
        .collect()?
        .iter()
        .map(|r| exported(r, &SECRET))
        .collect())
}

/// The field names `export_rows` leaves out.
pub fn export_removed() -> &'static [&'static str] {
    &SECRET
}
