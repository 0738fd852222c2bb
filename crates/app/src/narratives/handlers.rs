//! The narrative functions. Creating and editing are for the incident's creator (the frontline
//! worker's own capture); reading is for whoever may view the incident: its creator, or anyone in
//! the company with `view_all_company_incidents` (the reference asked everyone for the latter,
//! which locked frontline workers out of their own summary).

use functions::{FnResult, FunctionError, MutationCtx, QueryCtx, Scope};
use values::{Object, Value};

use super::{consolidated_text, ensure, find, write_phases, Narrative, Phase};
use crate::args::{object, opt_text, text};
use crate::identity::{require_permission, require_session, Permission, Viewer};
use crate::incidents::record::{self, Incident};

/// The caller, their company and the incident they may edit the capture of.
fn editor(ctx: &mut MutationCtx<'_>, args: &Object) -> FnResult<(Viewer, Scope, Incident)> {
    let now = ctx.now_ms();
    let viewer = require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        Permission::EditOwnIncidentCapture,
    )?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, text(args, "incident_id"))?;
    record::require_capture_editor(&viewer, &incident)?;
    Ok((viewer, scope, incident))
}

/// The caller, their company and the incident they may read.
pub fn reader(ctx: &mut QueryCtx<'_>, args: &Object) -> FnResult<(Viewer, Scope, Incident)> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, text(args, "incident_id"))?;
    record::require_view(&viewer, &incident)?;
    Ok((viewer, scope, incident))
}

/// `narratives:create`: the narrative's id, creating the empty one (version 1) if needed.
pub fn create(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = editor(ctx, &args)?;
    let narrative = ensure(&mut ctx.db, &scope, &incident, &viewer.user_id, now)?;
    Ok(Value::from(narrative.id))
}

/// `narratives:update`: writes the phases given; `{success, version}`.
pub fn update(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = editor(ctx, &args)?;
    let changes: Vec<(Phase, String)> = Phase::ALL
        .into_iter()
        .filter_map(|p| opt_text(&args, p.as_str()).map(|t| (p, t.to_string())))
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
    Ok(object([
        ("success", Some(Value::from(true))),
        ("version", Some(Value::from(version))),
    ]))
}

/// The incident's narrative for a reader, if one exists.
pub fn readable(ctx: &mut QueryCtx<'_>, args: &Object) -> FnResult<Option<Narrative>> {
    let (_, scope, incident) = reader(ctx, args)?;
    find(&mut ctx.db, &scope, &incident.id)
}

/// `narratives:getByIncident` / `getByIncidentId`: the narrative or null.
pub fn get(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    Ok(readable(ctx, &args)?.map_or(Value::Null, |n| n.public()))
}

/// `narratives:getConsolidated`: the narrative plus `consolidated_narrative` (the written phases
/// as `**Before Event**: …` paragraphs), or null. Computed on every read; nothing is written.
pub fn consolidated(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let Some(narrative) = readable(ctx, &args)? else {
        return Ok(Value::Null);
    };
    let mut value = narrative.public();
    if let Value::Object(fields) = &mut value {
        fields.insert(
            "consolidated_narrative".into(),
            Value::from(consolidated_text(&narrative)),
        );
    }
    Ok(value)
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// `narratives:getStatsByIncidentId`: per phase the character and word counts, whether it is
/// written and enhanced, and its clarification questions and answers; totals and how complete the
/// narrative is.
pub fn stats(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let (_, scope, incident) = reader(ctx, &args)?;
    let narrative = find(&mut ctx.db, &scope, &incident.id)?;
    let questions = crate::clarification::counts(&mut ctx.db, &scope, &incident.id)?;
    let mut phases = Object::new();
    let (mut characters, mut total_words, mut written) = (0usize, 0usize, 0usize);
    for (phase, asked) in Phase::ALL.into_iter().zip(questions) {
        let body = narrative.as_ref().map_or("", |n| n.phase(phase));
        let enhanced = narrative.as_ref().and_then(|n| n.enhanced(phase));
        let (chars, count) = (body.chars().count(), words(body));
        let complete = !body.trim().is_empty();
        characters += chars;
        total_words += count;
        written += usize::from(complete);
        let entry = object([
            ("character_count", Some(Value::from(chars as f64))),
            ("word_count", Some(Value::from(count as f64))),
            ("has_content", Some(Value::from(complete))),
            ("is_complete", Some(Value::from(complete))),
            ("enhanced", Some(Value::from(enhanced.is_some()))),
            (
                "enhanced_character_count",
                enhanced.map(|e| Value::from(e.chars().count() as f64)),
            ),
            ("question_count", Some(Value::from(asked.questions as f64))),
            ("answered_count", Some(Value::from(asked.answered as f64))),
        ]);
        phases.insert(phase.as_str().into(), entry);
    }
    Ok(object([
        ("incident_id", Some(Value::from(text(&args, "incident_id")))),
        (
            "narrative_id",
            narrative.as_ref().map(|n| Value::from(n.id)),
        ),
        (
            "version",
            Some(Value::from(narrative.as_ref().map_or(0.0, |n| n.version))),
        ),
        ("phases", Some(Value::Object(phases))),
        (
            "total_questions",
            Some(Value::from(
                questions.iter().map(|c| c.questions).sum::<usize>() as f64,
            )),
        ),
        (
            "total_answered",
            Some(Value::from(
                questions.iter().map(|c| c.answered).sum::<usize>() as f64,
            )),
        ),
        ("total_characters", Some(Value::from(characters as f64))),
        ("total_words", Some(Value::from(total_words as f64))),
        ("completed_phases", Some(Value::from(written as f64))),
        (
            "completion_percentage",
            Some(Value::from((written * 100 / Phase::ALL.len()) as f64)),
        ),
        (
            "is_complete",
            Some(Value::from(written == Phase::ALL.len())),
        ),
    ]))
}
