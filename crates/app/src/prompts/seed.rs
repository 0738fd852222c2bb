//! Seeding the default prompts (and their groups): into an empty database at start-up and before
//! the first AI call, on request (`seedPromptTemplates`: the missing ones), and after clearing
//! every version (`resetAndSeedPrompts`). The seeder view of the web app also lists the defaults
//! (`listDefaultTemplates`) and deactivates every prompt (`clearAllPrompts`).

use std::collections::BTreeSet;

use functions::{DbWriter, FnResult, FunctionRef, MutationCtx, QueryCtx, Registry};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Id, Object, Typed, Value};

use super::defaults;
use super::versions::{admin, insert, Draft};
use super::{
    active, audit_change, bump_generation, text, variables, PromptDoc, PromptSettings, GROUPS,
    TABLE,
};
use crate::args::SessionArgs;
use crate::identity::{require_permission, Permission};

/// Seeds the defaults into an empty table; answers how many it seeded.
pub const ENSURE_DEFAULTS: FunctionRef<NoArgs, usize> =
    FunctionRef::internal_mutation("promptManager:ensureDefaultPrompts");

/// No arguments at all.
#[derive(Serialize, Deserialize, Typed)]
pub struct NoArgs {}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Seeded {
    message: String,
    prompt_ids: Vec<Id<PromptDoc>>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct ResetAndSeeded {
    message: String,
    prompt_ids: Vec<Id<PromptDoc>>,
    cleared_count: usize,
    cleared_templates: Vec<String>,
    seeded_count: usize,
}

#[derive(Serialize, Typed)]
pub struct DefaultTemplate {
    name: String,
    description: String,
    subsystem: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct DefaultsValidation {
    is_valid: bool,
    errors: Vec<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct DefaultTemplates {
    templates: Vec<DefaultTemplate>,
    validation: DefaultsValidation,
    total_templates: usize,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Cleared {
    message: String,
    deleted_count: usize,
    deleted_templates: Vec<String>,
}

pub fn register(r: &mut Registry, settings: &PromptSettings) {
    let model = settings.default_model.clone();
    r.mutation(
        "promptManager:seedPromptTemplates",
        move |ctx, _: SessionArgs| seed(ctx, &model),
    );
    let model = settings.default_model.clone();
    r.mutation(
        "promptManager:resetAndSeedPrompts",
        move |ctx, _: SessionArgs| reset_and_seed(ctx, &model),
    );
    r.query("promptManager:listDefaultTemplates", list_defaults);
    r.mutation("promptManager:clearAllPrompts", clear_all);
    let model = settings.default_model.clone();
    r.internal_mutation(ENSURE_DEFAULTS, move |ctx, _| ensure_defaults(ctx, &model));
}

/// The id of the default group `name`, created if missing.
pub fn default_group(db: &mut DbWriter<'_>, now: f64, name: &str) -> FnResult<DocumentId> {
    let n = name.to_string();
    if let Some(group) = db
        .query(GROUPS)?
        .with_index("by_name", |q| q.eq("group_name", n))?
        .first()?
    {
        return Ok(group.id);
    }
    let position = defaults::GROUPS
        .iter()
        .position(|(g, _)| *g == name)
        .unwrap_or(0);
    let description = defaults::GROUPS.get(position).map_or("", |(_, d)| *d);
    let mut row = Object::new();
    row.insert("group_name".into(), Value::from(name));
    row.insert("description".into(), Value::from(description));
    row.insert("display_order".into(), Value::from(position as f64 + 1.0));
    row.insert("is_collapsible".into(), Value::from(true));
    row.insert("default_collapsed".into(), Value::from(false));
    row.insert("created_at".into(), Value::from(now));
    row.insert("updated_at".into(), Value::from(now));
    Ok(db.insert(GROUPS, row)?)
}

/// Seeds every default whose family has no active version (none yet, or all deactivated by
/// `clearAllPrompts`; a new version then keeps the history); returns the new ids.
pub fn seed_missing(
    db: &mut DbWriter<'_>,
    now: f64,
    actor: Option<&DocumentId>,
    model: &str,
) -> FnResult<Vec<DocumentId>> {
    let mut seeded = Vec::new();
    for prompt in defaults::all() {
        if active(db, defaults::SUBSYSTEM, &prompt.name)?.is_some() {
            continue;
        }
        let group = default_group(db, now, prompt.group)?;
        let doc = insert(
            db,
            now,
            actor,
            Draft::from_default(&prompt, model, Some(Value::from(group))),
        )?;
        seeded.push(doc.id);
    }
    Ok(seeded)
}

fn ids(ids: &[DocumentId]) -> Vec<Id<PromptDoc>> {
    ids.iter().map(|id| Id::new(*id)).collect()
}

/// `promptManager:seedPromptTemplates`: adds the defaults that are missing; `{message, promptIds}`.
fn seed(ctx: &mut MutationCtx<'_>, model: &str) -> FnResult<Seeded> {
    let viewer = admin(ctx, Permission::SampleData)?;
    let now = ctx.now_ms();
    let seeded = seed_missing(&mut ctx.db, now, Some(&viewer.user_id), model)?;
    if !seeded.is_empty() {
        audit_change(
            &mut ctx.db,
            now,
            ctx.request_id.as_str(),
            Some(&viewer),
            "seed_defaults",
            None,
        )?;
    }
    let message = match seeded.len() {
        0 => "Every default prompt is already present".to_string(),
        n => format!("Seeded {n} default prompts"),
    };
    Ok(Seeded {
        message,
        prompt_ids: ids(&seeded),
    })
}

/// At start-up and before the first AI call: the defaults, only into an empty table (an
/// administrator's choices are never overwritten). Returns how many were seeded.
fn ensure_defaults(ctx: &mut MutationCtx<'_>, model: &str) -> FnResult<usize> {
    if ctx.db.query(TABLE)?.first()?.is_some() {
        return Ok(0);
    }
    let now = ctx.now_ms();
    let seeded = seed_missing(&mut ctx.db, now, None, model)?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        None,
        "seed_defaults",
        None,
    )?;
    Ok(seeded.len())
}

/// The distinct prompt names of `docs`, sorted.
fn names(docs: &[Document]) -> Vec<String> {
    let names: BTreeSet<&str> = docs.iter().map(|d| text(d, "prompt_name")).collect();
    names.into_iter().map(str::to_string).collect()
}

/// `promptManager:resetAndSeedPrompts`: deletes every prompt version and seeds the defaults again;
/// `{message, promptIds, clearedCount, clearedTemplates, seededCount}` (`clearedTemplates`: the
/// names cleared, which the seeder view lists).
fn reset_and_seed(ctx: &mut MutationCtx<'_>, model: &str) -> FnResult<ResetAndSeeded> {
    let viewer = admin(ctx, Permission::SampleData)?;
    let now = ctx.now_ms();
    let all = ctx.db.query(TABLE)?.collect()?;
    for doc in &all {
        ctx.db.delete(&doc.id)?;
    }
    let seeded = seed_missing(&mut ctx.db, now, Some(&viewer.user_id), model)?;
    bump_generation(&mut ctx.db)?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        Some(&viewer),
        "reset_and_seed",
        None,
    )?;
    Ok(ResetAndSeeded {
        message: format!(
            "Cleared {} prompt versions and seeded {} default prompts",
            all.len(),
            seeded.len()
        ),
        prompt_ids: ids(&seeded),
        cleared_count: all.len(),
        cleared_templates: names(&all),
        seeded_count: seeded.len(),
    })
}

/// `promptManager:listDefaultTemplates` (any signed-in member, as `listAllPrompts`): the prompts
/// seeding would create, `{templates: [{name, description, subsystem}], validation: {isValid,
/// errors}, totalTemplates}`, each checked as a save would check it.
fn list_defaults(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<DefaultTemplates> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    let prompts = defaults::all();
    let mut errors = Vec::new();
    let templates: Vec<DefaultTemplate> = prompts
        .iter()
        .map(|p| {
            if let Err(e) = variables::check("prompt_template", &p.template, &p.variables) {
                errors.push(format!("{}: {e}", p.name));
            }
            DefaultTemplate {
                name: p.name.clone(),
                description: p.description.clone(),
                subsystem: defaults::SUBSYSTEM.to_string(),
            }
        })
        .collect();
    Ok(DefaultTemplates {
        templates,
        validation: DefaultsValidation {
            is_valid: errors.is_empty(),
            errors,
        },
        total_templates: prompts.len(),
    })
}

/// `promptManager:clearAllPrompts` (`sample_data`, as seeding): deactivates every active version,
/// keeping them for history and rollback. The AI features then have no prompt until the defaults
/// are seeded again (as in the reference), so the clearing is audited.
/// `{message, deletedCount, deletedTemplates}` (the reference's names for what it deactivated).
fn clear_all(ctx: &mut MutationCtx<'_>, _args: SessionArgs) -> FnResult<Cleared> {
    let viewer = admin(ctx, Permission::SampleData)?;
    let now = ctx.now_ms();
    let actives = ctx
        .db
        .query(TABLE)?
        .with_index("by_active", |q| q.eq("is_active", true))?
        .collect()?;
    for doc in &actives {
        let mut patch = Patch::new();
        patch.insert("is_active".into(), Some(Value::from(false)));
        patch.insert("replaced_at".into(), Some(Value::from(now)));
        patch.insert("replaced_by".into(), Some(Value::from(viewer.user_id)));
        ctx.db.patch(&doc.id, patch)?;
    }
    bump_generation(&mut ctx.db)?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        Some(&viewer),
        "clear_all",
        None,
    )?;
    let message = match actives.len() {
        0 => "No active prompt to clear".to_string(),
        n => format!("Deactivated {n} prompts; seed the defaults to use the AI features again"),
    };
    Ok(Cleared {
        message,
        deleted_count: actives.len(),
        deleted_templates: names(&actives),
    })
}
