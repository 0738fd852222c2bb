//! Enhancement and completion: merging the clarification answers into each narrative phase
//! (`aiEnhancement:enhanceNarrativePhase`, stored beside the original in `<phase>_extra`), the
//! completion checklist (`validateWorkflowCompletion`), and submission for analysis
//! (`submitIncidentForAnalysis`, through `incidents::submit`). The reference's older
//! whole-incident paths, `enhanceIncidentNarrative` and `updateEnhancedNarrative`, are aliases of
//! the per-phase enhancement and of its store.
//!
//! Enhancing and submitting are part of the capture: the incident's creator does them, frontline
//! workers included (the reference asked for `view_all_company_incidents`, which locked them out
//! of the last steps of their own report). Reading the enhanced narrative and the checklist is for
//! whoever may read the incident.

mod enhance;
mod workflow;

use functions::Registry;

use crate::ai_service::AiService;

pub use enhance::fallback_text;

pub fn register(r: &mut Registry, ai: &AiService) {
    enhance::register(r, ai);
    workflow::register(r);
}
