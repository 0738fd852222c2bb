//! The users table as other modules see it in bulk: counting every user, the members of one
//! company (for cleanup), deleting them, and the export (never password hashes or lockout state).

use functions::{CrossTenant, DbRead, DbWriter, FnResult, Scope};
use values::{DocumentId, Value};

use crate::exports::exported;

/// Fields that never leave the server: the password hash and the sign-in failure state.
const SECRET: [&str; 3] = ["password", "failed_logins", "locked_until"];

/// How many users exist, in every company and none.
pub fn count_all(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<usize> {
    let all = Scope::all_companies(grant);
    Ok(db
        .read_scoped(&all)
        .query("users", "by_creation_time", |q| q)?
        .count()? as usize)
}

/// A member of a company: only what cleanup needs to show and to follow.
pub struct Member {
    pub id: DocumentId,
    pub email: String,
}

/// The members of the scope's company, oldest first.
pub fn of_company(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<Member>> {
    let users = db
        .read_scoped(scope)
        .query("users", "by_company", |q| q)?
        .collect()?;
    Ok(users
        .into_iter()
        .map(|u| Member {
            email: super::text_of(&u, "email").to_string(),
            id: u.id,
        })
        .collect())
}

/// Deletes every user of the scope's company; returns how many went. Their sessions, tokens and
/// accounts are the owning modules' to delete first.
pub fn delete_company_rows(db: &mut DbWriter<'_>, scope: &Scope) -> FnResult<usize> {
    let members = of_company(db, scope)?;
    for member in &members {
        db.scoped(scope).delete(&member.id)?;
    }
    Ok(members.len())
}

/// Every user, without secrets.
pub fn export_rows(db: &mut impl DbRead, grant: &CrossTenant) -> FnResult<Vec<Value>> {
    let all = Scope::all_companies(grant);
    let users = db
        .read_scoped(&all)
        .query("users", "by_creation_time", |q| q)?
        .collect()?;
    Ok(users.iter().map(|u| exported(u, &SECRET)).collect())
}

/// The field names `export_rows` leaves out (for the export's sanitization report).
pub fn export_removed() -> &'static [&'static str] {
    &SECRET
}

/// Someone other modules address: name and email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub id: DocumentId,
    pub name: String,
    pub email: String,
}

fn contact(doc: &store::Document) -> Contact {
    Contact {
        id: doc.id,
        name: super::text_of(doc, "name").to_string(),
        email: super::text_of(doc, "email").to_string(),
    }
}

/// The members of the scope's company holding any of `roles` (one index probe per role).
pub fn with_roles(
    db: &mut impl DbRead,
    scope: &Scope,
    roles: &[crate::identity::Role],
) -> FnResult<Vec<Contact>> {
    let mut found = Vec::new();
    for role in roles {
        let role = role.as_str();
        let users = db
            .read_scoped(scope)
            .query("users", "by_company_role", |q| q.eq("role", role))?
            .collect()?;
        found.extend(users.iter().map(contact));
    }
    Ok(found)
}

/// The member `id` of the scope's company, if there is one.
pub fn contact_of(
    db: &mut impl DbRead,
    scope: &Scope,
    id: &DocumentId,
) -> FnResult<Option<Contact>> {
    Ok(db
        .read_scoped(scope)
        .get_in("users", &id.encode())?
        .as_ref()
        .map(contact))
}
