//! The incidents the analysis stage works through: submitted ones by how far their analysis has
//! come, oldest submission first, a page at a time (for `analysis:listQueue`).

use std::collections::HashSet;

use functions::{DbRead, FnResult, Scope};
use store::{PaginationOpts, PaginationResult};
use values::DocumentId;

use super::record::Incident;
use super::status::{HandoffStatus, OverallStatus};
use super::TABLE;

pub const BY_STATUS_SUBMITTED: &str = "by_company_status_submitted";
pub const BY_HANDOFF_SUBMITTED: &str = "by_company_handoff_submitted";

/// Which submitted incidents a queue shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Awaiting or in analysis.
    Open,
    Awaiting,
    InProgress,
    Completed,
}

/// One page of the stage's incidents, oldest submission first, leaving out `skip` (shown
/// elsewhere on the page).
pub fn page(
    db: &mut impl DbRead,
    scope: &Scope,
    stage: Stage,
    opts: PaginationOpts,
    skip: HashSet<DocumentId>,
) -> FnResult<PaginationResult> {
    let mut db = db.read_scoped(scope);
    let query = match stage {
        Stage::Open => db.query(TABLE, BY_STATUS_SUBMITTED, |q| {
            q.eq("overall_status", OverallStatus::AnalysisPending.as_str())
        })?,
        Stage::Awaiting | Stage::InProgress | Stage::Completed => {
            let handoff = match stage {
                Stage::Awaiting => HandoffStatus::ReadyForAnalysis,
                Stage::InProgress => HandoffStatus::InAnalysis,
                _ => HandoffStatus::AnalysisComplete,
            };
            db.query(TABLE, BY_HANDOFF_SUBMITTED, |q| {
                q.eq("handoff_status", handoff.as_str())
            })?
        }
    };
    let query = if skip.is_empty() {
        query
    } else {
        query.filter(move |doc| !skip.contains(&doc.id))
    };
    Ok(query.paginate(opts)?)
}

/// Whether `incident` belongs to `stage`.
pub fn in_stage(incident: &Incident, stage: Stage) -> bool {
    let handoff = incident.row.handoff_status;
    match stage {
        Stage::Open => matches!(
            handoff,
            HandoffStatus::ReadyForAnalysis | HandoffStatus::InAnalysis
        ),
        Stage::Awaiting => handoff == HandoffStatus::ReadyForAnalysis,
        Stage::InProgress => handoff == HandoffStatus::InAnalysis,
        Stage::Completed => handoff == HandoffStatus::AnalysisComplete,
    }
}
