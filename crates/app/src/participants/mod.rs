//! Participants: the NDIS clients of a company. Any member of a company lists, searches, views,
//! creates, edits and changes the status of its participants; deleting is for administrators and
//! refused once incidents refer to the participant (discharge instead).

mod admin;
mod fields;
mod listing;
pub mod rows;
mod samples;
mod write;

use config::Urls;
use functions::{pagination_opts_validator, FunctionError, Registry};
use store::{Document, TableDef};
use values::validator::v;
use values::{FieldValidator, Validator, Value};

use crate::args::with_session;
use fields::{STATUSES, SUPPORT_LEVELS};

pub const TABLE: &str = "participants";

fn one_of(options: &[&str]) -> Validator {
    v::union(options.iter().map(|o| v::literal(*o)).collect())
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
        .field("support_level", one_of(&SUPPORT_LEVELS))
        .optional("care_notes", v::string())
        .field("status", one_of(&STATUSES))
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

/// The participant fields a caller can set; `required` for creation.
fn participant_fields(required: bool) -> [(&'static str, FieldValidator); 10] {
    let field = |validator: Validator| -> FieldValidator {
        if required {
            validator.into()
        } else {
            v::optional(validator)
        }
    };
    [
        ("first_name", field(v::string())),
        ("last_name", field(v::string())),
        ("date_of_birth", field(v::string())),
        ("ndis_number", field(v::string())),
        ("support_level", field(one_of(&SUPPORT_LEVELS))),
        ("site_id", v::optional(v::id("sites"))),
        ("contact_phone", v::optional(v::string())),
        ("emergency_contact", v::optional(v::string())),
        ("care_notes", v::optional(v::string())),
        // The contract lists status for creation; it defaults to active when left out.
        ("status", v::optional(one_of(&STATUSES))),
    ]
}

pub fn register(r: &mut Registry, _urls: &Urls) {
    let filter = || v::optional(v::string());
    r.query_untyped(
        "participants/list:listParticipants",
        with_session([
            ("search", filter()),
            ("status", filter()),
            ("support_level", filter()),
            ("site_id", v::optional(v::id("sites"))),
            ("limit", v::optional(v::number())),
            ("paginationOpts", v::optional(pagination_opts_validator())),
        ]),
        listing::list,
    );
    let age_range = v::object([
        ("min_age", v::optional(v::number())),
        ("max_age", v::optional(v::number())),
    ]);
    r.query_untyped(
        "participants/search:searchParticipants",
        with_session([
            ("query", filter()),
            ("status", filter()),
            ("support_level", filter()),
            ("site_id", v::optional(v::id("sites"))),
            ("age_range", v::optional(age_range)),
            (
                "sort_by",
                v::optional(one_of(&listing::SORT_BY.map(|(name, _)| name))),
            ),
            ("sort_order", v::optional(one_of(&["asc", "desc"]))),
            ("limit", v::optional(v::number())),
            ("offset", v::optional(v::number())),
            ("paginationOpts", v::optional(pagination_opts_validator())),
        ]),
        listing::search,
    );
    r.query_untyped(
        "participants/getById:getParticipantById",
        with_session([("participantId", v::id(TABLE).into())]),
        listing::get_by_id,
    );

    r.mutation_untyped(
        "participants/create:createParticipant",
        with_session(participant_fields(true)),
        write::create,
    );
    let [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = participant_fields(false);
    r.mutation_untyped(
        "participants/update:updateParticipant",
        with_session([
            ("participantId", v::id(TABLE).into()),
            f0,
            f1,
            f2,
            f3,
            f4,
            f5,
            f6,
            f7,
            f8,
            f9,
        ]),
        write::update,
    );
    r.mutation_untyped(
        "participants/updateStatus:updateParticipantStatus",
        with_session([
            ("participantId", v::id(TABLE).into()),
            ("status", one_of(&STATUSES).into()),
            ("reason", v::optional(v::string())),
        ]),
        write::update_status,
    );

    r.query_untyped(
        "participants/admin:listParticipants",
        with_session([
            ("companyId", v::string().into()),
            ("siteId", v::optional(v::string())),
        ]),
        admin::list,
    )
    .cross_tenant();
    r.query_untyped(
        "participants/admin:getParticipantById",
        with_session([("participantId", v::string().into())]),
        admin::get,
    )
    .cross_tenant();
    let mut create_args = admin::admin_fields(true);
    // New participants start active; the edit page changes the status.
    create_args.retain(|(name, _)| *name != "status");
    create_args.push(("sessionToken", v::optional(v::string())));
    r.mutation_untyped(
        "participants/admin:createParticipant",
        v::object(create_args),
        admin::create,
    )
    .cross_tenant();
    let mut update_args = admin::admin_fields(false);
    update_args.push(("participantId", v::string().into()));
    update_args.push(("sessionToken", v::optional(v::string())));
    r.mutation_untyped(
        "participants/admin:updateParticipant",
        v::object(update_args),
        admin::update,
    )
    .cross_tenant();
    r.mutation_untyped(
        "participants/createSampleData:createSampleParticipants",
        with_session([]),
        samples::create_samples,
    );
    r.mutation_untyped(
        "participants/admin:deleteParticipant",
        with_session([("participantId", v::id(TABLE).into())]),
        admin::delete,
    )
    .cross_tenant();
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

/// The fields clients see: the creation fields, `company_id`, the status reason and the times
/// (never the internal sort key or who edited it). An allowlist, so a new internal field stays in.
const PUBLIC_FIELDS: [&str; 14] = [
    "company_id",
    "site_id",
    "first_name",
    "last_name",
    "date_of_birth",
    "ndis_number",
    "contact_phone",
    "emergency_contact",
    "support_level",
    "care_notes",
    "status",
    "discharge_reason",
    "created_at",
    "updated_at",
];

/// A participant as clients see it (`into_value` adds `_id` and `_creationTime`).
fn public(doc: &Document) -> Value {
    into_public(doc.clone())
}

/// As `public`, reusing the document's fields (lists render many participants).
fn into_public(mut doc: Document) -> Value {
    doc.fields
        .retain(|name, _| PUBLIC_FIELDS.contains(&name.as_str()));
    doc.into_value()
}
