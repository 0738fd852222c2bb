//! Seeding the default prompts (and their groups): into an empty database at start-up and before
//! the first AI call, on request (`seedPromptTemplates`: the missing ones), and after clearing
//! every version (`resetAndSeedPrompts`).

use functions::{DbWriter, FnResult, MutationCtx, Registry};
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::defaults;
use super::versions::{admin, insert, Draft};
use super::{audit_change, bump_generation, family, PromptSettings, GROUPS, TABLE};
use crate::args::{object, with_session};
use crate::identity::Permission;

pub const ENSURE_DEFAULTS: &str = "promptManager:ensureDefaultPrompts";

pub fn register(r: &mut Registry, settings: &PromptSettings) {
    let model = settings.default_model.clone();
    r.mutation(
        "promptManager:seedPromptTemplates",
        with_session([]),
        move |ctx, args| seed(ctx, args, &model),
    );
    let model = settings.default_model.clone();
    r.mutation(
        "promptManager:resetAndSeedPrompts",
        with_session([]),
        move |ctx, args| reset_and_seed(ctx, args, &model),
    );
    let model = settings.default_model.clone();
    r.internal_mutation(
        ENSURE_DEFAULTS,
        v::object(Vec::<(&str, values::Validator)>::new()),
        move |ctx, _| ensure_defaults(ctx, &model),
    );
}

/// The id of the default group `name`, created if missing.
pub fn default_group(db: &mut DbWriter<'_>, now: f64, name: &str) -> FnResult<Value> {
    let n = name.to_string();
    if let Some(group) = db
        .query(GROUPS)?
        .with_index("by_name", |q| q.eq("group_name", n))?
        .first()?
    {
        return Ok(Value::from(group.id));
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
    Ok(Value::from(db.insert(GROUPS, row)?))
}

/// Seeds every default whose family has no version yet; returns the new ids.
pub fn seed_missing(
    db: &mut DbWriter<'_>,
    now: f64,
    actor: Option<&DocumentId>,
    model: &str,
) -> FnResult<Vec<DocumentId>> {
    let mut seeded = Vec::new();
    for prompt in defaults::all() {
        if !family(db, defaults::SUBSYSTEM, &prompt.name)?.is_empty() {
            continue;
        }
        let group = default_group(db, now, prompt.group)?;
        let doc = insert(
            db,
            now,
            actor,
            Draft::from_default(&prompt, model, Some(group)),
        )?;
        seeded.push(doc.id);
    }
    Ok(seeded)
}

fn ids(ids: &[DocumentId]) -> Value {
    Value::Array(ids.iter().map(|id| Value::from(*id)).collect())
}

/// `promptManager:seedPromptTemplates`: adds the defaults that are missing; `{message, promptIds}`.
fn seed(ctx: &mut MutationCtx<'_>, args: Object, model: &str) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SampleData)?;
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
    Ok(object([
        ("message", Some(Value::from(message))),
        ("promptIds", Some(ids(&seeded))),
    ]))
}

/// At start-up and before the first AI call: the defaults, only into an empty table (an
/// administrator's choices are never overwritten). Returns how many were seeded.
fn ensure_defaults(ctx: &mut MutationCtx<'_>, model: &str) -> FnResult {
    if ctx.db.query(TABLE)?.first()?.is_some() {
        return Ok(Value::from(0.0));
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
    Ok(Value::from(seeded.len() as f64))
}

/// `promptManager:resetAndSeedPrompts`: deletes every prompt version and seeds the defaults again;
/// `{message, promptIds, clearedCount, seededCount}`.
fn reset_and_seed(ctx: &mut MutationCtx<'_>, args: Object, model: &str) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SampleData)?;
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
    Ok(object([
        (
            "message",
            Some(Value::from(format!(
                "Cleared {} prompt versions and seeded {} default prompts",
                all.len(),
                seeded.len()
            ))),
        ),
        ("promptIds", Some(ids(&seeded))),
        ("clearedCount", Some(Value::from(all.len() as f64))),
        ("seededCount", Some(Value::from(seeded.len() as f64))),
    ]))
}
