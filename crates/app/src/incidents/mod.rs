//! Incidents: what a frontline worker records about an event involving a participant, from the
//! first details through the four-phase narrative to submission for analysis. This module owns the
//! incidents table and its status machine (`status`), the status counts (`counts`), submission and
//! the capture-to-analysis handoffs (`submission`), the lists (`listing`, planned by `plan`), the
//! export
//! (`export`), and `CHILD_TABLES`, the one list of tables whose rows belong to an incident.
//!
//! Who may do what, from the permission matrix:
//! - anyone with `create_incident` records incidents in their own company;
//! - the capture (details, narrative, progress, submission) is edited by its creator only, who
//!   holds `edit_own_incident_capture`; no permission lets anyone edit someone else's capture;
//! - an incident is read by its creator and by holders of `view_all_company_incidents` in the
//!   same company; analysis statuses change with `perform_analysis`;
//! - deleting needs `company_configuration` (own company) or `manage_all_companies` (any);
//! - export and import need `manage_all_companies` (system and demo administrators).
//!
//! Another company's incident always answers exactly like a missing one.

pub mod children;
pub mod counts;
pub mod export;
pub mod fields;
pub mod listing;
pub mod plan;
pub mod queue;
mod read;
pub mod record;
pub mod rows;
pub mod status;
pub mod submission;
pub mod upgrade;
mod write;

use functions::{DbRead, FnResult, QueryCtx, Registry, Scope};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Typed, Validator};

use status::{AnalysisStatus, CaptureStatus, HandoffStatus, OverallStatus};

pub use children::{ChildTable, CHILD_TABLES};
pub use submission::{submit, Checklist, Submitted};
pub use write::step_description;

pub const TABLE: &str = "incidents";

fn one_of(values: impl IntoIterator<Item = &'static str>) -> Validator {
    v::union(values.into_iter().map(v::literal).collect())
}

pub fn tables() -> Vec<TableDef> {
    let incidents = TableDef::new(TABLE)
        .field("company_id", v::id("companies"))
        .field("site_id", v::id("sites"))
        .field("reporter_name", v::string())
        .optional("participant_id", v::id("participants"))
        .field("participant_name", v::string())
        // As sent (web: `YYYY-MM-DDTHH:mm`), and the same instant in ms.
        .field("event_date_time", v::string())
        .field("event_at", v::number())
        .field("location", v::string())
        .field(
            "capture_status",
            one_of(CaptureStatus::ALL.iter().map(|s| s.as_str())),
        )
        .field(
            "analysis_status",
            one_of(AnalysisStatus::ALL.iter().map(|s| s.as_str())),
        )
        .field(
            "overall_status",
            one_of(OverallStatus::ALL.iter().map(|s| s.as_str())),
        )
        .field(
            "handoff_status",
            one_of(HandoffStatus::ALL.iter().map(|s| s.as_str())),
        )
        .field("created_at", v::number())
        .field("created_by", v::id("users"))
        .field("updated_at", v::number())
        .field("updated_by", v::id("users"))
        .optional("narrative_hash", v::string())
        .field("questions_generated", v::boolean())
        .field("narrative_enhanced", v::boolean())
        .field("analysis_generated", v::boolean())
        .optional("current_step", v::number())
        .optional("step_description", v::string())
        .optional("content_preview", v::string())
        .optional("workflow_completed_at", v::number())
        .optional("submitted_by", v::id("users"))
        .optional("submitted_at", v::number())
        .optional("completion_checklist", Checklist::validator())
        .optional("imported_from", v::string())
        .field("participant_sort", v::string())
        .field("reporter_sort", v::string());
    let incidents = plan::INDEXES
        .iter()
        .fold(incidents, |t, index| t.index(index.name, index.fields))
        .index(
            queue::BY_STATUS_SUBMITTED,
            &["company_id", "overall_status", "submitted_at"],
        )
        .index(
            queue::BY_HANDOFF_SUBMITTED,
            &["company_id", "handoff_status", "submitted_at"],
        )
        .tenant("company_id");
    let mut all = vec![incidents];
    all.extend(counts::tables());
    all.extend(submission::tables());
    all
}

pub fn register(r: &mut Registry) {
    r.mutation("incidents:create", write::create);
    r.mutation("incidents:updateMetadata", write::update_metadata);
    r.query("incidents:getById", read::get_by_id);
    r.query("incidents:getIncidentById", read::get_incident_by_id);
    r.query("incidents:getDraftIncident", read::get_draft_incident);
    r.query("incidents:getStatusOptions", read::get_status_options);
    r.mutation("incidents:updateStatus", write::update_status);
    r.mutation(
        "incidents:updateWorkflowProgress",
        write::update_workflow_progress,
    );
    r.mutation(
        "incidents:autoCompleteWorkflow",
        write::auto_complete_workflow,
    );
    r.mutation("incidents:deleteIncident", write::delete_incident)
        .cross_tenant();
    r.query("incidents:getIncidentNarrative", narrative_if_signed_in);
    r.query(
        "incidents:getIncidentNarrativeByIncidentId",
        crate::narratives::handlers::get,
    );
    r.internal_mutation("incidents:markSubmitted", submission::mark_submitted);

    register_listing(r);
    register_export(r);
}

/// `incidents:getIncidentNarrative`: the narrative for whoever may read the incident, as
/// `narratives:getByIncidentId`; `null` when the call carries no token at all. The web app's
/// prompt-testing panel asks with `{incident_id}` only (its queries send no token) and renders
/// nothing for null, where an error would crash the wizard page. No data is given without a
/// session; a token that is presented is checked as everywhere.
fn narrative_if_signed_in(
    ctx: &mut QueryCtx<'_>,
    args: crate::narratives::handlers::ByIncident,
) -> FnResult<Option<crate::narratives::NarrativeDoc>> {
    if crate::identity::presented_token(ctx.auth).is_none() {
        return Ok(None);
    }
    crate::narratives::handlers::get(ctx, args)
}

fn register_listing(r: &mut Registry) {
    r.query(
        "incidents_listing:getAllCompanyIncidents",
        listing::all_company_incidents,
    );
    r.query("incidents_listing:getMyIncidents", listing::my_incidents);
    r.query(
        "incidents_listing:getIncidentCounts",
        listing::incident_counts,
    );
    r.query(
        "incidents_listing:getMyIncompleteIncidents",
        listing::my_incomplete_incidents,
    );
}

fn register_export(r: &mut Registry) {
    r.action("workflowData:exportWorkflowData", export::export_action);
    r.action("workflowData:validateWorkflowData", export::validate_action);
    r.action("workflowData:importWorkflowData", export::import_action);
    r.internal_query(export::READ_RECORD, export::read_record)
        .cross_tenant();
    r.internal_query(export::CHECK_RECORD, export::check_record);
    let users = export::UserFields::from_schema(&crate::schema());
    r.internal_mutation(export::WRITE_RECORD, move |ctx, args| {
        export::write_record(ctx, args, &users)
    })
    .cross_tenant();
}

/// Whether any incident of the scope's company names `participant` (participants with incidents
/// are kept: incident records must keep their subject). One index probe.
pub fn refers_to_participant(
    db: &mut impl DbRead,
    scope: &Scope,
    participant: &DocumentId,
) -> FnResult<bool> {
    let id = participant.encode();
    Ok(db
        .read_scoped(scope)
        .query(TABLE, "by_company_participant_created", |q| {
            q.eq("participant_id", id)
        })?
        .first()?
        .is_some())
}

/// Whether any incident of the scope's company was filed under `site`. One index probe.
pub fn refers_to_site(db: &mut impl DbRead, scope: &Scope, site: &DocumentId) -> FnResult<bool> {
    let id = site.encode();
    Ok(db
        .read_scoped(scope)
        .query(TABLE, "by_company_site_created", |q| q.eq("site_id", id))?
        .first()?
        .is_some())
}

/// The scope's company's incidents that are not completed (capture or analysis still open), from
/// the status counts: one row read.
pub fn active_count(db: &mut impl DbRead, scope: &Scope) -> FnResult<f64> {
    let counts = counts::read(db, scope, counts::Whose::Company)?;
    Ok(counts.total() - counts.get(OverallStatus::Completed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table with an `incident_id` is a child table, and every child table can be found by
    /// company and incident, so deleting and exporting an incident misses nothing.
    #[test]
    fn every_table_holding_incident_rows_is_a_child_table() {
        let schema = crate::schema();
        for table in &schema.tables {
            let holds = table.fields.contains_key("incident_id");
            let listed = CHILD_TABLES.iter().find(|c| c.table == table.name);
            assert_eq!(
                holds,
                listed.is_some(),
                "table {} has an incident_id field but is not in CHILD_TABLES (or the reverse)",
                table.name
            );
            if let Some(child) = listed {
                assert_eq!(table.tenant_field.as_deref(), Some("company_id"));
                let index = table
                    .indexes
                    .iter()
                    .find(|i| i.name == child.index)
                    .unwrap_or_else(|| panic!("{}.{} is not declared", table.name, child.index));
                assert_eq!(index.fields[..2], ["company_id", "incident_id"]);
            }
        }
    }
}
