//! A version's model and limits, edited in place (they are settings, not wording: changing them
//! makes no new version), and the automatic token adjustment: saved when a truncated JSON reply made
//! the providers raise max tokens, then acknowledged or reset by an administrator.

use functions::{DbWriter, FnResult, FunctionError, MutationCtx, Registry};
use store::{Document, Patch};
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{
    active, active_not_found, audit_change, bump_generation, by_id, check_name, num, saved,
    subsystem_of, text as field_text, MAX_TOKENS_LIMIT, TABLE,
};
use crate::args::{opt_text, text, with_session};
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
    r.mutation(
        "promptManager:updatePromptModel",
        with_session([
            ("prompt_name", v::string().into()),
            ("ai_model", v::string().into()),
            ("subsystem", v::optional(v::string())),
        ]),
        update_model,
    );
    r.mutation(
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
    r.mutation(
        "promptManager:acknowledgeTokenAdjustment",
        id_args(),
        acknowledge,
    );
    r.mutation("promptManager:resetTokenAdjustment", id_args(), reset);
}

fn admin(ctx: &mut MutationCtx<'_>, args: &Object, permission: Permission) -> FnResult<Viewer> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, args, now, permission)
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

/// `promptManager:acknowledgeTokenAdjustment`: keeps the raised limit and records who saw it.
fn acknowledge(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args, Permission::SystemConfiguration)?;
    let doc = by_id(&mut ctx.db, text(&args, "prompt_id"))?;
    pending_adjustment(&doc)?;
    let mut patch = Patch::new();
    patch.insert("acknowledged_at".into(), Some(Value::from(ctx.now_ms())));
    patch.insert("acknowledged_by".into(), Some(Value::from(viewer.user_id)));
    let doc = write(ctx, &viewer, &doc, patch, "acknowledge_token_adjustment")?;
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
    let doc = write(ctx, &viewer, &doc, patch, "reset_token_adjustment")?;
    Ok(saved(
        doc.id,
        field_text(&doc, "prompt_name"),
        field_text(&doc, "prompt_version"),
        &[("max_tokens", Value::from(baseline))],
    ))
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
