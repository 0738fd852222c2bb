//! Linked provider accounts in bulk: those of a deleted company's users, and the export. No
//! provider tokens are stored (sign-in only needs the account id), so nothing is left out.

use functions::{DbRead, DbWriter, FnResult};
use values::{DocumentId, Value};

use super::ACCOUNTS;

fn accounts_of(db: &mut impl DbRead, users: &[DocumentId]) -> FnResult<Vec<DocumentId>> {
    let mut ids = Vec::new();
    for user in users {
        let rows = db
            .query(ACCOUNTS)?
            .with_index("by_user", |q| q.eq("user_id", user.encode()))?
            .collect()?;
        ids.extend(rows.into_iter().map(|r| r.id));
    }
    Ok(ids)
}

/// How many provider accounts `users` have linked.
pub fn count_for(db: &mut impl DbRead, users: &[DocumentId]) -> FnResult<usize> {
    Ok(accounts_of(db, users)?.len())
}

/// Deletes the provider accounts of `users`; returns how many went.
pub fn delete_for(db: &mut DbWriter<'_>, users: &[DocumentId]) -> FnResult<usize> {
    let ids = accounts_of(db, users)?;
    for id in &ids {
        db.delete(id)?;
    }
    Ok(ids.len())
}

/// Every linked account.
pub fn export_rows(db: &mut impl DbRead) -> FnResult<Vec<Value>> {
    Ok(db
        .query(ACCOUNTS)?
        .collect()?
        .iter()
        .map(|a| a.to_value())
        .collect())
}
