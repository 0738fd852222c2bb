//! The narrative functions. Creating and editing are for the incident's creator (the frontline
//! worker's own capture); reading is for whoever may view the incident: its creator, or anyone in
//! the company with `view_all_company_incidents` (the reference asked everyone for the latter,
//! which locked frontline workers out of their own summary).

use functions::{FnResult, FunctionError, MutationCtx, QueryCtx, Scope};
use serde::{Deserialize, Serialize};
use values::{Id, Typed};

use super::{consolidated_text, ensure, find, write_phases, Narrative, NarrativeDoc, Phase};
use crate::identity::{require_permission, require_session, Permission, Viewer};
use crate::incidents::record::{self, Incident};

/// The arguments of the functions that name only an incident.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct ByIncident {
    #[typed(id = "incidents")]
    pub incident_id: String,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    before_event: Option<String>,
    during_event: Option<String>,
    end_event: Option<String>,
    post_event: Option<String>,
}

#[derive(Serialize, Typed)]
pub struct Updated {
    success: bool,
    version: f64,
}

/// The caller, their company and the incident they may edit the capture of.
fn editor(ctx: &mut MutationCtx<'_>, incident_id: &str) -> FnResult<(Viewer, Scope, Incident)> {
    let now = ctx.now_ms();
    let viewer = require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        Permission::EditOwnIncidentCapture,
    )?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, incident_id)?;
    record::require_capture_editor(&viewer, &incident)?;
    Ok((viewer, scope, incident))
}

/// The caller, their company and the incident they may read.
pub fn reader(ctx: &mut QueryCtx<'_>, incident_id: &str) -> FnResult<(Viewer, Scope, Incident)> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, incident_id)?;
    record::require_view(&viewer, &incident)?;
    Ok((viewer, scope, incident))
}

/// `narratives:create`: the narrative's id, creating the empty one (version 1) if needed.
pub fn create(ctx: &mut MutationCtx<'_>, args: ByIncident) -> FnResult<Id<NarrativeDoc>> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = editor(ctx, &args.incident_id)?;
    let narrative = ensure(&mut ctx.db, &scope, &incident, &viewer.user_id, now)?;
    Ok(narrative.id.into())
}

/// `narratives:update`: writes the phases given; `{success, version}`.
pub fn update(ctx: &mut MutationCtx<'_>, args: UpdateArgs) -> FnResult<Updated> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = editor(ctx, &args.incident_id)?;
    let given = [
        args.before_event,
        args.during_event,
        args.end_event,
        args.post_event,
    ];
    let changes: Vec<(Phase, String)> = Phase::ALL
        .into_iter()
        .zip(given)
        .filter_map(|(p, text)| text.map(|t| (p, t)))
        .collect();
    if changes.is_empty() {
        return Err(FunctionError::validation(
            "before_event",
            "At least one narrative phase must be provided",
        ));
    }
    record::require_unlocked(&incident, "narrative")?;
    let narrative = find(&mut ctx.db, &scope, &incident.id)?.ok_or_else(|| {
        FunctionError::field(
            functions::ErrorCode::Conflict,
            "incident_id",
            "Narrative not found. Create narrative first.",
        )
    })?;
    let version = write_phases(
        &mut ctx.db,
        &scope,
        &viewer,
        &incident,
        &narrative,
        &changes,
        now,
    )?;
    Ok(Updated {
        success: true,
        version,
    })
}

/// The incident's narrative for a reader, if one exists.
pub fn readable(ctx: &mut QueryCtx<'_>, incident_id: &str) -> FnResult<Option<Narrative>> {
    let (_, scope, incident) = reader(ctx, incident_id)?;
    find(&mut ctx.db, &scope, &incident.id)
}

/// `narratives:getByIncident` / `getByIncidentId`: the narrative or null.
pub fn get(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<Option<NarrativeDoc>> {
    readable(ctx, &args.incident_id)?
        .map(|n| n.row())
        .transpose()
}

/// `narratives:getConsolidated`: the narrative plus `consolidated_narrative` (the written phases
/// as `**Before Event**: …` paragraphs), or null. Computed on every read; nothing is written.
pub fn consolidated(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<Option<NarrativeDoc>> {
    let Some(narrative) = readable(ctx, &args.incident_id)? else {
        return Ok(None);
    };
    let mut row = narrative.row()?;
    row.consolidated_narrative = Some(consolidated_text(&narrative));
    Ok(Some(row))
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[derive(Serialize, Typed)]
pub struct PhaseStats {
    character_count: usize,
    word_count: usize,
    has_content: bool,
    is_complete: bool,
    enhanced: bool,
    enhanced_character_count: Option<usize>,
    question_count: usize,
    answered_count: usize,
}

#[derive(Serialize, Typed)]
pub struct PhasesStats {
    before_event: PhaseStats,
    during_event: PhaseStats,
    end_event: PhaseStats,
    post_event: PhaseStats,
}

#[derive(Serialize, Typed)]
pub struct NarrativeStats {
    #[typed(id = "incidents")]
    incident_id: String,
    narrative_id: Option<Id<NarrativeDoc>>,
    version: f64,
    phases: PhasesStats,
    total_questions: usize,
    total_answered: usize,
    total_characters: usize,
    total_words: usize,
    completed_phases: usize,
    completion_percentage: usize,
    is_complete: bool,
}

/// `narratives:getStatsByIncidentId`: per phase the character and word counts, whether it is
/// written and enhanced, and its clarification questions and answers; totals and how complete the
/// narrative is.
pub fn stats(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<NarrativeStats> {
    let (_, scope, incident) = reader(ctx, &args.incident_id)?;
    let narrative = find(&mut ctx.db, &scope, &incident.id)?;
    let questions = crate::clarification::counts(&mut ctx.db, &scope, &incident.id)?;
    let (mut characters, mut total_words, mut written) = (0usize, 0usize, 0usize);
    let phases = Phase::ALL.map(|phase| {
        let asked = questions[Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0)];
        let body = narrative.as_ref().map_or("", |n| n.phase(phase));
        let enhanced = narrative.as_ref().and_then(|n| n.enhanced(phase));
        let (chars, count) = (body.chars().count(), words(body));
        let complete = !body.trim().is_empty();
        characters += chars;
        total_words += count;
        written += usize::from(complete);
        PhaseStats {
            character_count: chars,
            word_count: count,
            has_content: complete,
            is_complete: complete,
            enhanced: enhanced.is_some(),
            enhanced_character_count: enhanced.map(|e| e.chars().count()),
            question_count: asked.questions,
            answered_count: asked.answered,
        }
    });
    let [before_event, during_event, end_event, post_event] = phases;
    Ok(NarrativeStats {
        incident_id: args.incident_id,
        narrative_id: narrative.as_ref().map(|n| n.id.into()),
        version: narrative.as_ref().map_or(0.0, |n| n.version),
        phases: PhasesStats {
            before_event,
            during_event,
            end_event,
            post_event,
        },
        total_questions: questions.iter().map(|c| c.questions).sum(),
        total_answered: questions.iter().map(|c| c.answered).sum(),
        total_characters: characters,
        total_words,
        completed_phases: written,
        completion_percentage: written * 100 / Phase::ALL.len(),
        is_complete: written == Phase::ALL.len(),
    })
}
