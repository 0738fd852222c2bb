//! A version's model and limits, edited in place (they are settings, not wording: changing them
//! makes no new version), and the automatic token adjustment: saved when a truncated JSON reply made
//! the providers raise max tokens, then acknowledged or reset by an administrator. The web app's
//! names for these (`acknowledgePromptAdjustment`, `resetPromptToBaseline`: by prompt name;
//! `bulkUpdatePromptModels`) share the code and permissions of ours.

use functions::{DbWriter, ErrorCode, FnResult, FunctionError, MutationCtx, Registry};
use store::{Document, Patch};
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{
    active, active_not_found, audit_change, bump_generation, by_id, check_name, num, saved,
    subsystem_of, text as field_text, MAX_TOKENS_LIMIT, TABLE,
};
use crate::args::{object, opt_text, text, with_session};
use crate::identity::{require_permission, Permission, Viewer};

pub fn check_model(field: &str, raw: &str) -> FnResult<String> {
    let model = raw.trim();
    if model.is_empty()
        || model.len() > 200
        || model.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(FunctionError::validation(
            field,
            "A model name is 1 to 200 characters without spaces (for example gpt-4o-mini)",
        ));
    }
    Ok(model.to_string())
}

pub fn check_temperature(field: &str, value: f64) -> FnResult<f64> {
    if (0.0..=2.0).contains(&value) {
        Ok(value)
    } else {
        Err(FunctionError::validation(
            field,
            "The temperature must be between 0 and 2",
        ))
    }
}

pub fn check_max_tokens(field: &str, value: f64) -> FnResult<f64> {
    if value.fract() == 0.0 && (1.0..=MAX_TOKENS_LIMIT).contains(&value) {
        Ok(value)
    } else {
        Err(FunctionError::validation(
            field,
            format!("Max tokens must be a whole number from 1 to {MAX_TOKENS_LIMIT}"),
        ))
    }
}

pub fn register(r: &mut Registry) {
    r.mutation_untyped(
        "promptManager:updatePromptModel",
        with_session([
            ("prompt_name", v::string().into()),
            ("ai_model", v::string().into()),
            ("subsystem", v::optional(v::string())),
        ]),
        update_model,
    );
    r.mutation_untyped(
        "promptManager:updatePromptLimits",
        with_session([
            ("prompt_id", v::string().into()),
            ("ai_model", v::optional(v::string())),
            ("temperature", v::optional(v::number())),
            ("max_tokens", v::optional(v::number())),
        ]),
        update_limits,
    );
    let id_args = || with_session([("prompt_id", v::string().into())]);
    r.mutation_untyped(
        "promptManager:acknowledgeTokenAdjustment",
        id_args(),
        acknowledge,
    );
    r.mutation_untyped("promptManager:resetTokenAdjustment", id_args(), reset);
    let name_args = || {
        with_session([
            ("prompt_name", v::string().into()),
            ("correlation_id", v::optional(v::string())),
            ("subsystem", v::optional(v::string())),
        ])
    };
    r.mutation_untyped(
        "promptManager:acknowledgePromptAdjustment",
        name_args(),
        acknowledge_by_name,
    );
    r.mutation_untyped(
        "promptManager:resetPromptToBaseline",
        name_args(),
        reset_by_name,
    );
    r.mutation_untyped(
        "promptManager:bulkUpdatePromptModels",
        with_session([
            ("prompt_ids", v::array(v::string()).into()),
            ("ai_model", v::string().into()),
        ]),
        bulk_update_models,
    );
}

/// At most this many prompts in one bulk model change (prompts are few).
const MAX_BULK: usize = 1000;

/// The correlation id a caller passed (echoed when it is a short printable label), else ours.
fn correlation(ctx: &MutationCtx<'_>, args: &Object) -> String {
    opt_text(args, "correlation_id")
        .filter(|c| (1..=100).contains(&c.len()) && !c.chars().any(char::is_control))
        .map_or_else(|| ctx.request_id.as_str().to_string(), str::to_string)
}

fn active_by_name(ctx: &mut MutationCtx<'_>, args: &Object) -> FnResult<(String, Document)> {
    let name = check_name("prompt_name", text(args, "prompt_name"))?;
    let subsystem = subsystem_of(args)?;
    let doc = active(&mut ctx.db, &subsystem, &name)?.ok_or_else(|| active_not_found(&name))?;
    Ok((name, doc))
}

fn field_or_null(doc: &Document, field: &str) -> Value {
    doc.get(field).cloned().unwrap_or(Value::Null)
}

fn admin(ctx: &mut MutationCtx<'_>, _args: &Object, permission: Permission) -> FnResult<Viewer> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, permission)
}

fn stamp(patch: &mut Patch, viewer: &Viewer, now: f64) {
    patch.insert("updated_at".into(), Some(Value::from(now)));
    patch.insert("updated_by".into(), Some(Value::from(viewer.user_id)));
}

fn write(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    doc: &Document,
    mut patch: Patch,
    action: &str,
) -> FnResult<Document> {
    let now = ctx.now_ms();
    stamp(&mut patch, viewer, now);
    ctx.db.patch(&doc.id, patch)?;
    bump_generation(&mut ctx.db)?;
    let updated = by_id(&mut ctx.db, &doc.id.encode())?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        Some(viewer),
        action,
        Some(&updated),
    )?;
    Ok(updated)
}

/// `promptManager:updatePromptModel` (`sample_data`, as the contract): the active version's model.
fn update_model(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SampleData)?;
    let name = check_name("prompt_name", text(&args, "prompt_name"))?;
    let model = check_model("ai_model", text(&args, "ai_model"))?;
    let subsystem = subsystem_of(&args)?;
    let doc = active(&mut ctx.db, &subsystem, &name)?.ok_or_else(|| active_not_found(&name))?;
    let previous = field_text(&doc, "ai_model").to_string();
    let mut patch = Patch::new();
    patch.insert("ai_model".into(), Some(Value::from(model.as_str())));
    let doc = write(ctx, &viewer, &doc, patch, "update_model")?;
    Ok(saved(
        doc.id,
        &name,
        field_text(&doc, "prompt_version"),
        &[
            ("ai_model", Value::from(model)),
            ("previous_model", Value::from(previous)),
        ],
    ))
}

/// `promptManager:updatePromptLimits`: model, temperature and max tokens of one version. Setting
/// max tokens by hand settles any pending automatic adjustment.
fn update_limits(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SystemConfiguration)?;
    let mut patch = Patch::new();
    if let Some(model) = opt_text(&args, "ai_model") {
        patch.insert(
            "ai_model".into(),
            Some(Value::from(check_model("ai_model", model)?)),
        );
    }
    if let Some(t) = args.get("temperature").and_then(Value::as_f64) {
        patch.insert(
            "temperature".into(),
            Some(Value::from(check_temperature("temperature", t)?)),
        );
    }
    if let Some(m) = args.get("max_tokens").and_then(Value::as_f64) {
        patch.insert(
            "max_tokens".into(),
            Some(Value::from(check_max_tokens("max_tokens", m)?)),
        );
        for field in [
            "baseline_max_tokens",
            "adjustment_reason",
            "adjusted_at",
            "acknowledged_at",
            "acknowledged_by",
        ] {
            patch.insert(field.into(), None);
        }
    }
    if patch.is_empty() {
        return Err(FunctionError::validation(
            "ai_model",
            "Give at least one of ai_model, temperature and max_tokens",
        ));
    }
    let doc = by_id(&mut ctx.db, text(&args, "prompt_id"))?;
    let doc = write(ctx, &viewer, &doc, patch, "update_limits")?;
    Ok(saved(
        doc.id,
        field_text(&doc, "prompt_name"),
        field_text(&doc, "prompt_version"),
        &[],
    ))
}

fn pending_adjustment(doc: &Document) -> FnResult<()> {
    if doc.get("adjusted_at").is_none() {
        return Err(FunctionError::field(
            functions::ErrorCode::Conflict,
            "prompt_id",
            "This prompt has no automatic token adjustment",
        ));
    }
    Ok(())
}

/// Records that `viewer` saw the adjustment of `doc`.
fn mark_acknowledged(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    doc: &Document,
) -> FnResult<Document> {
    let mut patch = Patch::new();
    patch.insert("acknowledged_at".into(), Some(Value::from(ctx.now_ms())));
    patch.insert("acknowledged_by".into(), Some(Value::from(viewer.user_id)));
    write(ctx, viewer, doc, patch, "acknowledge_token_adjustment")
}

/// Back to the limit before the adjustment, which is then settled (a later escalation records
/// a fresh baseline).
fn reset_to_baseline(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    doc: &Document,
    baseline: f64,
) -> FnResult<Document> {
    let mut patch = Patch::new();
    patch.insert("max_tokens".into(), Some(Value::from(baseline)));
    for field in [
        "baseline_max_tokens",
        "adjustment_reason",
        "adjusted_at",
        "acknowledged_at",
        "acknowledged_by",
    ] {
        patch.insert(field.into(), None);
    }
    write(ctx, viewer, doc, patch, "reset_token_adjustment")
}

/// `promptManager:acknowledgeTokenAdjustment`: keeps the raised limit and records who saw it.
fn acknowledge(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SystemConfiguration)?;
    let doc = by_id(&mut ctx.db, text(&args, "prompt_id"))?;
    pending_adjustment(&doc)?;
    let doc = mark_acknowledged(ctx, &viewer, &doc)?;
    Ok(saved(
        doc.id,
        field_text(&doc, "prompt_name"),
        field_text(&doc, "prompt_version"),
        &[("max_tokens", Value::from(num(&doc, "max_tokens")))],
    ))
}

/// `promptManager:resetTokenAdjustment`: back to the limit before the adjustment.
fn reset(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SystemConfiguration)?;
    let doc = by_id(&mut ctx.db, text(&args, "prompt_id"))?;
    pending_adjustment(&doc)?;
    let baseline = doc
        .get("baseline_max_tokens")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| num(&doc, "max_tokens"));
    let doc = reset_to_baseline(ctx, &viewer, &doc, baseline)?;
    Ok(saved(
        doc.id,
        field_text(&doc, "prompt_name"),
        field_text(&doc, "prompt_version"),
        &[("max_tokens", Value::from(baseline))],
    ))
}

/// `promptManager:acknowledgePromptAdjustment` (the web app's, by name; the permission of
/// `acknowledgeTokenAdjustment`): records who saw the active version's adjustment. With nothing
/// to acknowledge it succeeds and says so, as the reference.
fn acknowledge_by_name(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SystemConfiguration)?;
    let correlation_id = correlation(ctx, &args);
    let (name, doc) = active_by_name(ctx, &args)?;
    let settled = |message: String, doc: &Document| -> FnResult {
        Ok(object([
            ("success", Some(Value::from(true))),
            ("message", Some(Value::from(message))),
            ("prompt_name", Some(Value::from(name.as_str()))),
            (
                "current_max_tokens",
                Some(Value::from(num(doc, "max_tokens"))),
            ),
            ("acknowledged_at", doc.get("acknowledged_at").cloned()),
            ("correlationId", Some(Value::from(correlation_id.as_str()))),
        ]))
    };
    if doc.get("adjusted_at").is_none() {
        return settled(
            format!("{name} has no token adjustment to acknowledge"),
            &doc,
        );
    }
    if doc.get("acknowledged_at").is_some() {
        return settled(
            format!("The adjustment of {name} was already acknowledged"),
            &doc,
        );
    }
    let doc = mark_acknowledged(ctx, &viewer, &doc)?;
    let current = num(&doc, "max_tokens");
    let baseline = doc.get("baseline_max_tokens").and_then(Value::as_f64);
    Ok(object([
        ("success", Some(Value::from(true))),
        (
            "message",
            Some(Value::from(format!(
                "The token limit of {name} stays at {current}"
            ))),
        ),
        ("prompt_name", Some(Value::from(name.as_str()))),
        (
            "baseline_max_tokens",
            Some(field_or_null(&doc, "baseline_max_tokens")),
        ),
        ("current_max_tokens", Some(Value::from(current))),
        (
            "difference",
            Some(baseline.map_or(Value::Null, |b| Value::from(current - b))),
        ),
        ("adjusted_at", Some(field_or_null(&doc, "adjusted_at"))),
        (
            "adjustment_reason",
            Some(field_or_null(&doc, "adjustment_reason")),
        ),
        (
            "acknowledged_at",
            Some(field_or_null(&doc, "acknowledged_at")),
        ),
        ("acknowledged_by", Some(Value::from(viewer.email.as_str()))),
        ("correlationId", Some(Value::from(correlation_id))),
    ]))
}

/// `promptManager:resetPromptToBaseline` (the web app's, by name; the permission of
/// `resetTokenAdjustment`, where the reference let any signed-in user lower a limit).
fn reset_by_name(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SystemConfiguration)?;
    let correlation_id = correlation(ctx, &args);
    let (name, doc) = active_by_name(ctx, &args)?;
    let Some(baseline) = doc.get("baseline_max_tokens").and_then(Value::as_f64) else {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "prompt_name",
            format!("Prompt has no baseline_max_tokens set: {name}"),
        ));
    };
    let old = num(&doc, "max_tokens");
    let doc = reset_to_baseline(ctx, &viewer, &doc, baseline)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("prompt_id", Some(Value::from(doc.id))),
        ("prompt_name", Some(Value::from(name.as_str()))),
        ("old_max_tokens", Some(Value::from(old))),
        ("new_max_tokens", Some(Value::from(baseline))),
        ("baseline_max_tokens", Some(Value::from(baseline))),
        ("reset_by", Some(Value::from(viewer.email.as_str()))),
        ("correlationId", Some(Value::from(correlation_id))),
        (
            "message",
            Some(Value::from(format!(
                "The token limit of {name} is back to {baseline} (was {old})"
            ))),
        ),
    ]))
}

/// `promptManager:bulkUpdatePromptModels` (`sample_data`, as `updatePromptModel`): the model of
/// each listed version; ids that name no prompt or an inactive version are skipped and reported.
fn bulk_update_models(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SampleData)?;
    let model = check_model("ai_model", text(&args, "ai_model"))?;
    let ids = args
        .get("prompt_ids")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .to_vec();
    if ids.len() > MAX_BULK {
        return Err(FunctionError::validation(
            "prompt_ids",
            format!("At most {MAX_BULK} prompts can be changed at once"),
        ));
    }
    let (mut updated, mut errors) = (0usize, Vec::new());
    for id in &ids {
        let id = id.as_str().unwrap_or_default();
        let found = match ctx.db.normalize_id(TABLE, id) {
            Some(id) => ctx.db.get_in(TABLE, &id.encode())?,
            None => None,
        };
        let Some(doc) = found else {
            errors.push(Value::from(format!("Prompt not found: {id}")));
            continue;
        };
        if doc.get("is_active").and_then(Value::as_bool) != Some(true) {
            errors.push(Value::from(format!(
                "Prompt inactive: {}",
                field_text(&doc, "prompt_name")
            )));
            continue;
        }
        let mut patch = Patch::new();
        patch.insert("ai_model".into(), Some(Value::from(model.as_str())));
        write(ctx, &viewer, &doc, patch, "update_model")?;
        updated += 1;
    }
    Ok(object([
        ("success", Some(Value::from(true))),
        ("updated", Some(Value::from(updated as f64))),
        ("failed", Some(Value::from(errors.len() as f64))),
        ("errors", Some(Value::Array(errors))),
    ]))
}

/// An automatic escalation reported by the providers, to be saved on the version that was used.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenAdjustment {
    pub baseline: f64,
    pub new_max: f64,
    pub reason: String,
}

/// Saves an adjustment (inside the AI service's logging mutation). The first baseline is kept
/// across repeated escalations, so a reset returns to the limit an administrator chose; a limit
/// that already grew further (a concurrent escalation) is not lowered.
pub fn apply_adjustment(
    db: &mut DbWriter<'_>,
    now: f64,
    correlation_id: &str,
    prompt: &DocumentId,
    adjustment: &TokenAdjustment,
) -> FnResult<()> {
    let Some(doc) = db.get_in(TABLE, &prompt.encode())? else {
        // The version was deleted (reset and reseed) while the call ran: nothing to adjust.
        return Ok(());
    };
    if num(&doc, "max_tokens") >= adjustment.new_max {
        return Ok(());
    }
    let baseline = doc
        .get("baseline_max_tokens")
        .and_then(Value::as_f64)
        .unwrap_or(adjustment.baseline);
    let mut patch = Patch::new();
    patch.insert("max_tokens".into(), Some(Value::from(adjustment.new_max)));
    patch.insert("baseline_max_tokens".into(), Some(Value::from(baseline)));
    patch.insert(
        "adjustment_reason".into(),
        Some(Value::from(adjustment.reason.as_str())),
    );
    patch.insert("adjusted_at".into(), Some(Value::from(now)));
    patch.insert("acknowledged_at".into(), None);
    patch.insert("acknowledged_by".into(), None);
    patch.insert("updated_at".into(), Some(Value::from(now)));
    db.patch(&doc.id, patch)?;
    bump_generation(db)?;
    let updated = db.get_in(TABLE, &prompt.encode())?;
    audit_change(
        db,
        now,
        correlation_id,
        None,
        "automatic_token_adjustment",
        updated.as_ref(),
    )
}
