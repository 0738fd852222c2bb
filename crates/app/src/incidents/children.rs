//! The records that belong to one incident. `CHILD_TABLES` is the one list of them: deleting an
//! incident deletes their rows and the export carries them. A module that adds such a table adds
//! it here; a test fails for any table with an `incident_id` field that is missing from the list.
//!
//! Every child table is tenant-scoped by `company_id`, has an `incident_id` field and an index
//! starting with `[company_id, incident_id]`. Child rows must not hold the Ids of other child rows
//! (imports give every row a new Id); they refer to each other by stable keys such as
//! `question_id`.

use functions::{DbRead, DbWriter, FnResult, Scope};
use store::Document;
use values::DocumentId;

use super::counts;
use super::record::Incident;
use super::submission::HANDOFFS;

/// A table of records owned by an incident, and the index that finds one incident's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildTable {
    pub table: &'static str,
    /// Starts with `[company_id, incident_id]`.
    pub index: &'static str,
}

pub const CHILD_TABLES: &[ChildTable] = &[
    ChildTable {
        table: crate::narratives::TABLE,
        index: "by_company_incident",
    },
    ChildTable {
        table: HANDOFFS,
        index: "by_company_incident",
    },
    ChildTable {
        table: crate::clarification::QUESTIONS,
        index: "by_company_incident_phase",
    },
    ChildTable {
        table: crate::clarification::ANSWERS,
        index: "by_company_incident_phase",
    },
    ChildTable {
        table: crate::ai_service::LOGS,
        index: "by_company_incident",
    },
    ChildTable {
        table: crate::attachments::TABLE,
        index: "by_company_incident",
    },
    ChildTable {
        table: crate::reports::TABLE,
        index: "by_company_incident",
    },
    ChildTable {
        table: crate::analysis::ANALYSES,
        index: "by_company_incident",
    },
    ChildTable {
        table: crate::analysis::REVISIONS,
        index: "by_company_incident_revision",
    },
    ChildTable {
        table: crate::analysis::CLASSIFICATIONS,
        index: "by_company_incident",
    },
    ChildTable {
        table: crate::analysis::SCREENINGS,
        index: "by_company_incident",
    },
    ChildTable {
        table: crate::notifications::TABLE,
        index: "by_company_incident",
    },
];

impl ChildTable {
    /// Whether the export carries this table. AI request logs go when their incident is deleted
    /// (they quote its narrative) but are the platform's records, not part of the capture.
    /// Attachments and generated reports stay behind too: the export is JSON and does not carry
    /// file contents.
    pub fn exported(&self) -> bool {
        ![
            crate::ai_service::LOGS,
            crate::attachments::TABLE,
            crate::reports::TABLE,
            // Notifications are each user's inbox, not part of the record.
            crate::notifications::TABLE,
        ]
        .contains(&self.table)
    }
}

/// The rows of `child` that belong to `incident`, in creation order.
pub fn rows_of(
    db: &mut impl DbRead,
    scope: &Scope,
    child: &ChildTable,
    incident: &DocumentId,
) -> FnResult<Vec<Document>> {
    Ok(db
        .read_scoped(scope)
        .query(child.table, child.index, |q| {
            q.eq("incident_id", incident.encode())
        })?
        .collect()?)
}

/// Deletes `incident` and all its child rows, and takes it out of the counts. Returns how many
/// child rows went.
pub fn delete_all(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &Incident,
    now: f64,
) -> FnResult<usize> {
    let mut removed = 0;
    for child in CHILD_TABLES {
        for row in rows_of(db, scope, child, &incident.id)? {
            if child.table == crate::attachments::TABLE {
                crate::attachments::release_file(db, scope, &row)?;
            }
            if child.table == crate::reports::TABLE {
                crate::reports::release_file(db, scope, &row)?;
            }
            db.scoped(scope).delete(&row.id)?;
            removed += 1;
        }
    }
    db.scoped(scope).delete(&incident.id)?;
    counts::moved(
        db,
        scope,
        &incident.row.created_by,
        Some(incident.row.overall_status),
        None,
        now,
    )?;
    Ok(removed)
}
