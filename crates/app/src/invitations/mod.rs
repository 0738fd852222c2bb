//! Invitations: a company admin (or a holder of `manage_all_companies`, for any company) invites
//! someone by email with a 7-day link; the invitee accepts with a name and a strong password, which
//! creates their account in that company and signs them in. Paths follow the reference's files:
//! `users/invite/<function>` (default exports). Sending is in `send`, listing and revoking in
//! `manage`, accepting in `accept`.

mod accept;
mod manage;
pub mod rows;
mod send;

use config::Urls;
use functions::{CrossTenant, DbRead, ErrorCode, FnResult, FunctionError, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::{Document, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Typed, Validator};

use crate::identity::sessions::hash_token;
use crate::identity::{Permission, Viewer};
use crate::users::roles::COMPANY_ROLES;

pub const TABLE: &str = "user_invitations";
pub const TTL_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;
pub const STATUSES: [&str; 4] = ["pending", "accepted", "expired", "revoked"];

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(TABLE)
        .field("email", v::string())
        .field("company_id", v::id("companies"))
        .field("role", company_role_validator())
        .field("invited_by", v::id("users"))
        // Kept with the invitation so a company admin can see who invited (a system administrator
        // belongs to no company and so is not otherwise visible to them).
        .field("inviter_name", v::string())
        .field("inviter_email", v::string())
        // SHA-256 of the emailed token; the token itself is never stored.
        .field("token_hash", v::string())
        .field("expires_at", v::number())
        .field("status", status_validator())
        .field("created_at", v::number())
        .optional("accepted_at", v::number())
        .optional("accepted_user_id", v::id("users"))
        .optional("revoked_at", v::number())
        .optional("revoked_by", v::id("users"))
        .index("by_token_hash", &["token_hash"])
        .index(
            "by_company_status_created",
            &["company_id", "status", "created_at"],
        )
        .index(
            "by_company_email_status",
            &["company_id", "email", "status"],
        )
        .tenant("company_id")]
}

/// A document of the invitations. No `Debug`: it holds the token's hash.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(table = "user_invitations")]
pub struct InvitationDoc {
    #[serde(rename = "_id")]
    pub id: Id<InvitationDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub email: String,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(validator = company_role_validator())]
    pub role: String,
    #[typed(id = "users")]
    pub invited_by: DocumentId,
    pub inviter_name: String,
    pub inviter_email: String,
    pub token_hash: String,
    pub expires_at: f64,
    #[typed(validator = status_validator())]
    pub status: String,
    pub created_at: f64,
    pub accepted_at: Option<f64>,
    #[typed(id = "users")]
    pub accepted_user_id: Option<DocumentId>,
    pub revoked_at: Option<f64>,
    #[typed(id = "users")]
    pub revoked_by: Option<DocumentId>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, InvitationDoc::validator())]
}

fn status_validator() -> Validator {
    v::union(STATUSES.iter().map(|s| v::literal(*s)).collect())
}

pub fn register(r: &mut Registry, urls: &Urls) {
    send::register(r, urls);
    manage::register(r);
    accept::register(r);
}

fn company_role_validator() -> Validator {
    v::union(
        COMPANY_ROLES
            .iter()
            .map(|r| v::literal(r.as_str()))
            .collect(),
    )
}

/// The company named by `companyId` and a scope over it, when the viewer may act on it: their own,
/// or any with `manage_all_companies`. Everyone else gets `refusal`, whether or not the company
/// exists, so the answer reveals nothing about other tenants.
fn company_scope(
    db: &mut impl DbRead,
    viewer: &Viewer,
    grant: &CrossTenant,
    raw: &str,
    refusal: &str,
) -> FnResult<(DocumentId, Scope)> {
    let not_found = || FunctionError::field(ErrorCode::NotFound, "companyId", "Company not found");
    let Some(company) = db.normalize_id("companies", raw) else {
        return Err(if viewer.has(Permission::ManageAllCompanies) {
            not_found()
        } else {
            FunctionError::forbidden(refusal)
        });
    };
    let scope = viewer
        .scope_for(&company, Some(grant), Permission::ManageAllCompanies)
        .map_err(|_| FunctionError::forbidden(refusal))?;
    db.read_scoped(&scope)
        .get(&company)?
        .ok_or_else(not_found)?;
    Ok((company, scope))
}

/// The invitation behind an emailed token, in whichever company it is: the token is the invitee's
/// only credential, and they have no session (and so no company) yet.
fn find_by_token(
    db: &mut impl DbRead,
    grant: &CrossTenant,
    token: &str,
) -> FnResult<Option<InvitationDoc>> {
    let all = Scope::all_companies(grant);
    db.read_scoped(&all)
        .query(TABLE, "by_token_hash", |q| {
            q.eq("token_hash", hash_token(token))
        })?
        .first()?
        .map(|doc| functions::row(&doc))
        .transpose()
}

/// The invitation documents `docs`, read as their row type.
fn read_rows(docs: &[Document]) -> FnResult<Vec<InvitationDoc>> {
    docs.iter().map(functions::row).collect()
}

/// Why an invitation cannot be accepted now, if it cannot.
fn refusal(invitation: &InvitationDoc, now: f64) -> Option<FunctionError> {
    match invitation.status.as_str() {
        "pending" if invitation.expires_at > now => None,
        "pending" | "expired" => Some(FunctionError::validation(
            "token",
            "This invitation has expired",
        )),
        status => Some(FunctionError::validation(
            "token",
            format!("This invitation has already been {status}"),
        )),
    }
}

fn invalid_token() -> FunctionError {
    FunctionError::validation("token", "Invalid invitation token")
}
