//! Participants: the NDIS clients of a company. Any member of a company lists, searches, views,
//! creates, edits and changes the status of its participants; deleting is for administrators and
//! refused once incidents refer to the participant (discharge instead).

mod admin;
pub(crate) mod fields;
mod listing;
pub mod rows;
mod samples;
mod write;

use config::Urls;
use functions::{FunctionError, Registry};
use serde::{Deserialize, Serialize};
use store::TableDef;
use values::validator::v;
use values::{Id, Typed, Validator};

use crate::companies::CompanyDoc;
use fields::{STATUSES, SUPPORT_LEVELS};

pub const TABLE: &str = "participants";

fn one_of(options: &[&str]) -> Validator {
    v::union(options.iter().map(|o| v::literal(*o)).collect())
}

fn support_levels() -> Validator {
    one_of(&SUPPORT_LEVELS)
}

fn statuses() -> Validator {
    one_of(&STATUSES)
}

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(TABLE)
        .field("company_id", v::id("companies"))
        .optional("site_id", v::id("sites"))
        .field("first_name", v::string())
        .field("last_name", v::string())
        // As sent: `YYYY-MM-DD`.
        .field("date_of_birth", v::string())
        .field("ndis_number", v::string())
        .optional("contact_phone", v::string())
        .optional("emergency_contact", v::string())
        .field("support_level", support_levels())
        .optional("care_notes", v::string())
        .field("status", statuses())
        .optional("discharge_reason", v::string())
        // Lower-cased "last, first" (see `fields::name_key`): the order of every name-sorted list.
        .field("name_key", v::string())
        .field("created_at", v::number())
        .field("created_by", v::id("users"))
        .field("updated_at", v::number())
        .field("updated_by", v::id("users"))
        // Every list and search runs through one of these, so paging never sorts in memory.
        .index("by_company_name", &["company_id", "name_key"])
        .index(
            "by_company_status_name",
            &["company_id", "status", "name_key"],
        )
        .index(
            "by_company_site_name",
            &["company_id", "site_id", "name_key"],
        )
        .index("by_company_ndis", &["company_id", "ndis_number"])
        .index("by_company_created", &["company_id", "created_at"])
        .index("by_company_updated", &["company_id", "updated_at"])
        .tenant("company_id")]
}

pub fn register(r: &mut Registry, _urls: &Urls) {
    r.query("participants/list:listParticipants", listing::list);
    r.query("participants/search:searchParticipants", listing::search);
    r.query(
        "participants/getById:getParticipantById",
        listing::get_by_id,
    );

    r.mutation("participants/create:createParticipant", write::create);
    r.mutation("participants/update:updateParticipant", write::update);
    r.mutation(
        "participants/updateStatus:updateParticipantStatus",
        write::update_status,
    );

    r.query("participants/admin:listParticipants", admin::list)
        .cross_tenant();
    r.query("participants/admin:getParticipantById", admin::get)
        .cross_tenant();
    r.mutation("participants/admin:createParticipant", admin::create)
        .cross_tenant();
    r.mutation("participants/admin:updateParticipant", admin::update)
        .cross_tenant();
    r.mutation(
        "participants/createSampleData:createSampleParticipants",
        samples::create_samples,
    );
    r.mutation("participants/admin:deleteParticipant", admin::delete)
        .cross_tenant();
}

/// A document of the participants table, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "participants")]
pub struct ParticipantDoc {
    #[serde(rename = "_id")]
    pub id: Id<ParticipantDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: String,
    #[typed(id = "sites")]
    pub site_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: String,
    pub ndis_number: String,
    pub contact_phone: Option<String>,
    pub emergency_contact: Option<String>,
    #[typed(validator = support_levels())]
    pub support_level: String,
    pub care_notes: Option<String>,
    #[typed(validator = statuses())]
    pub status: String,
    pub discharge_reason: Option<String>,
    pub name_key: String,
    pub created_at: f64,
    #[typed(id = "users")]
    pub created_by: String,
    pub updated_at: f64,
    #[typed(id = "users")]
    pub updated_by: String,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, ParticipantDoc::validator())]
}

/// A participant as clients see it: the creation fields, `company_id`, the status reason and the
/// times (never the internal sort key or who edited it).
#[derive(Clone, Debug, Serialize, Typed)]
pub struct PublicParticipant {
    #[serde(rename = "_id")]
    pub id: Id<ParticipantDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: String,
    #[typed(id = "sites")]
    pub site_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: String,
    pub ndis_number: String,
    pub contact_phone: Option<String>,
    pub emergency_contact: Option<String>,
    #[typed(validator = support_levels())]
    pub support_level: String,
    pub care_notes: Option<String>,
    #[typed(validator = statuses())]
    pub status: String,
    pub discharge_reason: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
}

impl From<ParticipantDoc> for PublicParticipant {
    fn from(doc: ParticipantDoc) -> Self {
        PublicParticipant {
            id: doc.id,
            creation_time: doc.creation_time,
            company_id: doc.company_id,
            site_id: doc.site_id,
            first_name: doc.first_name,
            last_name: doc.last_name,
            date_of_birth: doc.date_of_birth,
            ndis_number: doc.ndis_number,
            contact_phone: doc.contact_phone,
            emergency_contact: doc.emergency_contact,
            support_level: doc.support_level,
            care_notes: doc.care_notes,
            status: doc.status,
            discharge_reason: doc.discharge_reason,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        }
    }
}

/// `{_id, name, slug}` of a company, as the participant pages show it.
#[derive(Clone, Debug, Serialize, Typed)]
pub struct CompanySummary {
    #[serde(rename = "_id")]
    pub id: Id<CompanyDoc>,
    pub name: String,
    pub slug: String,
}

/// How many participants of the scope's company are at `site` (the sites admin page shows it).
pub fn count_at_site(
    db: &mut impl functions::DbRead,
    scope: &functions::Scope,
    site: &values::DocumentId,
) -> functions::FnResult<u64> {
    let site = site.encode();
    Ok(db
        .read_scoped(scope)
        .query(TABLE, "by_company_site_name", |q| q.eq("site_id", site))?
        .count()?)
}

/// Whether any participant of the scope's company is at `site` (a site they refer to is kept).
pub fn refers_to_site(
    db: &mut impl functions::DbRead,
    scope: &functions::Scope,
    site: &values::DocumentId,
) -> functions::FnResult<bool> {
    let site = site.encode();
    Ok(db
        .read_scoped(scope)
        .query(TABLE, "by_company_site_name", |q| q.eq("site_id", site))?
        .first()?
        .is_some())
}

/// The one answer for missing and foreign participants alike.
fn not_found() -> FunctionError {
    FunctionError::not_found("Participant not found")
}

/// A participant document as clients see it.
fn public(doc: &store::Document) -> functions::FnResult<PublicParticipant> {
    Ok(functions::row::<ParticipantDoc>(doc)?.into())
}
