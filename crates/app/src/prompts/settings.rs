//! A version's model and limits, edited in place (they are settings, not wording: changing them
//! makes no new version), and the automatic token adjustment: saved when a truncated JSON reply made
//! the providers raise max tokens, then acknowledged or reset by an administrator. The web app's
//! names for these (`acknowledgePromptAdjustment`, `resetPromptToBaseline`: by prompt name;
//! `bulkUpdatePromptModels`) share the code and permissions of ours.

use functions::{DbWriter, ErrorCode, FnResult, FunctionError, MutationCtx, Registry};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Id, Nullable, Typed, Value};

use super::versions::PromptIdArgs;
use super::{
    active, active_not_found, audit_change, bump_generation, by_id, check_name, num, saved,
    subsystem_of, text as field_text, NoExtra, PromptDoc, Saved, MAX_TOKENS_LIMIT, TABLE,
};
use crate::identity::{require_permission, Permission, Viewer};

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateModelArgs {
    prompt_name: String,
    ai_model: String,
    subsystem: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateLimitsArgs {
    prompt_id: String,
    ai_model: Option<String>,
    temperature: Option<f64>,
    max_tokens: Option<f64>,
}

/// The web app's arguments naming the active version of a family.
#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ByNameArgs {
    prompt_name: String,
    correlation_id: Option<String>,
    subsystem: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct BulkModelArgs {
    prompt_ids: Vec<String>,
    ai_model: String,
}

#[derive(Serialize, Typed)]
pub struct ModelChanged {
    ai_model: String,
    previous_model: String,
}

#[derive(Serialize, Typed)]
pub struct MaxTokens {
    max_tokens: f64,
}

/// `acknowledgePromptAdjustment` when there was nothing (more) to acknowledge.
#[derive(Serialize, Typed)]
pub struct AlreadySettled {
    success: bool,
    message: String,
    prompt_name: String,
    current_max_tokens: f64,
    acknowledged_at: Option<f64>,
    #[serde(rename = "correlationId")]
    correlation_id: String,
}

/// `acknowledgePromptAdjustment` when it recorded the acknowledgement.
#[derive(Serialize, Typed)]
pub struct Acknowledged {
    success: bool,
    message: String,
    prompt_name: String,
    baseline_max_tokens: Nullable<f64>,
    current_max_tokens: f64,
    difference: Nullable<f64>,
    adjusted_at: Nullable<f64>,
    adjustment_reason: Nullable<String>,
    acknowledged_at: Nullable<f64>,
    /// The administrator's email.
    acknowledged_by: String,
    #[serde(rename = "correlationId")]
    correlation_id: String,
}

#[derive(Serialize, Typed)]
#[serde(untagged)]
pub enum AcknowledgeResult {
    Settled(AlreadySettled),
    Acknowledged(Acknowledged),
}

#[derive(Serialize, Typed)]
pub struct BaselineRestored {
    success: bool,
    prompt_id: Id<PromptDoc>,
    prompt_name: String,
    old_max_tokens: f64,
    new_max_tokens: f64,
    baseline_max_tokens: f64,
    /// The administrator's email.
    reset_by: String,
    #[serde(rename = "correlationId")]
    correlation_id: String,
    message: String,
}

#[derive(Serialize, Typed)]
pub struct BulkUpdated {
    success: bool,
    updated: usize,
    failed: usize,
    errors: Vec<String>,
}

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
    r.mutation("promptManager:updatePromptModel", update_model);
    r.mutation("promptManager:updatePromptLimits", update_limits);
    r.mutation("promptManager:acknowledgeTokenAdjustment", acknowledge);
    r.mutation("promptManager:resetTokenAdjustment", reset);
    r.mutation(
        "promptManager:acknowledgePromptAdjustment",
        acknowledge_by_name,
    );
    r.mutation("promptManager:resetPromptToBaseline", reset_by_name);
    r.mutation("promptManager:bulkUpdatePromptModels", bulk_update_models);
}

/// At most this many prompts in one bulk model change (prompts are few).
const MAX_BULK: usize = 1000;

/// The correlation id a caller passed (echoed when it is a short printable label), else ours.
fn correlation(ctx: &MutationCtx<'_>, given: Option<&str>) -> String {
    given
        .filter(|c| (1..=100).contains(&c.len()) && !c.chars().any(char::is_control))
        .map_or_else(|| ctx.request_id.as_str().to_string(), str::to_string)
}

fn active_by_name(ctx: &mut MutationCtx<'_>, args: &ByNameArgs) -> FnResult<(String, Document)> {
    let name = check_name("prompt_name", &args.prompt_name)?;
    let subsystem = subsystem_of(args.subsystem.as_deref())?;
    let doc = active(&mut ctx.db, &subsystem, &name)?.ok_or_else(|| active_not_found(&name))?;
    Ok((name, doc))
}

fn number(doc: &Document, field: &str) -> Option<f64> {
    doc.get(field).and_then(Value::as_f64)
}

fn admin(ctx: &mut MutationCtx<'_>, permission: Permission) -> FnResult<Viewer> {
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
fn update_model(ctx: &mut MutationCtx<'_>, args: UpdateModelArgs) -> FnResult<Saved<ModelChanged>> {
    let viewer = admin(ctx, Permission::SampleData)?;
    let name = check_name("prompt_name", &args.prompt_name)?;
    let model = check_model("ai_model", &args.ai_model)?;
    let subsystem = subsystem_of(args.subsystem.as_deref())?;
    let doc = active(&mut ctx.db, &subsystem, &name)?.ok_or_else(|| active_not_found(&name))?;
    let previous = field_text(&doc, "ai_model").to_string();
    let mut patch = Patch::new();
    patch.insert("ai_model".into(), Some(Value::from(model.as_str())));
    let doc = write(ctx, &viewer, &doc, patch, "update_model")?;
    Ok(saved(
        doc.id,
        &name,
        field_text(&doc, "prompt_version"),
        ModelChanged {
            ai_model: model,
            previous_model: previous,
        },
    ))
}

/// `promptManager:updatePromptLimits`: model, temperature and max tokens of one version. Setting
/// max tokens by hand settles any pending automatic adjustment.
fn update_limits(ctx: &mut MutationCtx<'_>, args: UpdateLimitsArgs) -> FnResult<Saved<NoExtra>> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let mut patch = Patch::new();
    if let Some(model) = &args.ai_model {
        patch.insert(
            "ai_model".into(),
            Some(Value::from(check_model("ai_model", model)?)),
        );
    }
    if let Some(t) = args.temperature {
        patch.insert(
            "temperature".into(),
            Some(Value::from(check_temperature("temperature", t)?)),
        );
    }
    if let Some(m) = args.max_tokens {
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
    let doc = by_id(&mut ctx.db, &args.prompt_id)?;
    let doc = write(ctx, &viewer, &doc, patch, "update_limits")?;
    Ok(saved(
        doc.id,
        field_text(&doc, "prompt_name"),
        field_text(&doc, "prompt_version"),
        NoExtra {},
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
fn acknowledge(ctx: &mut MutationCtx<'_>, args: PromptIdArgs) -> FnResult<Saved<MaxTokens>> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let doc = by_id(&mut ctx.db, &args.prompt_id)?;
    pending_adjustment(&doc)?;
    let doc = mark_acknowledged(ctx, &viewer, &doc)?;
    Ok(saved(
        doc.id,
        field_text(&doc, "prompt_name"),
        field_text(&doc, "prompt_version"),
        MaxTokens {
            max_tokens: num(&doc, "max_tokens"),
        },
    ))
}

/// `promptManager:resetTokenAdjustment`: back to the limit before the adjustment.
fn reset(ctx: &mut MutationCtx<'_>, args: PromptIdArgs) -> FnResult<Saved<MaxTokens>> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let doc = by_id(&mut ctx.db, &args.prompt_id)?;
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
        MaxTokens {
            max_tokens: baseline,
        },
    ))
}

/// `promptManager:acknowledgePromptAdjustment` (the web app's, by name; the permission of
/// `acknowledgeTokenAdjustment`): records who saw the active version's adjustment. With nothing
/// to acknowledge it succeeds and says so, as the reference.
fn acknowledge_by_name(ctx: &mut MutationCtx<'_>, args: ByNameArgs) -> FnResult<AcknowledgeResult> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let correlation_id = correlation(ctx, args.correlation_id.as_deref());
    let (name, doc) = active_by_name(ctx, &args)?;
    let settled = |message: String, doc: &Document| {
        Ok(AcknowledgeResult::Settled(AlreadySettled {
            success: true,
            message,
            prompt_name: name.clone(),
            current_max_tokens: num(doc, "max_tokens"),
            acknowledged_at: number(doc, "acknowledged_at"),
            correlation_id: correlation_id.clone(),
        }))
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
    let baseline = number(&doc, "baseline_max_tokens");
    Ok(AcknowledgeResult::Acknowledged(Acknowledged {
        success: true,
        message: format!("The token limit of {name} stays at {current}"),
        prompt_name: name.clone(),
        baseline_max_tokens: Nullable(baseline),
        current_max_tokens: current,
        difference: Nullable(baseline.map(|b| current - b)),
        adjusted_at: Nullable(number(&doc, "adjusted_at")),
        adjustment_reason: Nullable(
            doc.get("adjustment_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        acknowledged_at: Nullable(number(&doc, "acknowledged_at")),
        acknowledged_by: viewer.email.clone(),
        correlation_id,
    }))
}

/// `promptManager:resetPromptToBaseline` (the web app's, by name; the permission of
/// `resetTokenAdjustment`, where the reference let any signed-in user lower a limit).
fn reset_by_name(ctx: &mut MutationCtx<'_>, args: ByNameArgs) -> FnResult<BaselineRestored> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let correlation_id = correlation(ctx, args.correlation_id.as_deref());
    let (name, doc) = active_by_name(ctx, &args)?;
    let Some(baseline) = number(&doc, "baseline_max_tokens") else {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "prompt_name",
            format!("Prompt has no baseline_max_tokens set: {name}"),
        ));
    };
    let old = num(&doc, "max_tokens");
    let doc = reset_to_baseline(ctx, &viewer, &doc, baseline)?;
    Ok(BaselineRestored {
        success: true,
        prompt_id: doc.id.into(),
        prompt_name: name.clone(),
        old_max_tokens: old,
        new_max_tokens: baseline,
        baseline_max_tokens: baseline,
        reset_by: viewer.email.clone(),
        correlation_id,
        message: format!("The token limit of {name} is back to {baseline} (was {old})"),
    })
}

/// `promptManager:bulkUpdatePromptModels` (`sample_data`, as `updatePromptModel`): the model of
/// each listed version; ids that name no prompt or an inactive version are skipped and reported.
fn bulk_update_models(ctx: &mut MutationCtx<'_>, args: BulkModelArgs) -> FnResult<BulkUpdated> {
    let viewer = admin(ctx, Permission::SampleData)?;
    let model = check_model("ai_model", &args.ai_model)?;
    let ids = args.prompt_ids;
    if ids.len() > MAX_BULK {
        return Err(FunctionError::validation(
            "prompt_ids",
            format!("At most {MAX_BULK} prompts can be changed at once"),
        ));
    }
    let (mut updated, mut errors) = (0usize, Vec::new());
    for id in &ids {
        let found = match ctx.db.normalize_id(TABLE, id) {
            Some(id) => ctx.db.get_in(TABLE, &id.encode())?,
            None => None,
        };
        let Some(doc) = found else {
            errors.push(format!("Prompt not found: {id}"));
            continue;
        };
        if doc.get("is_active").and_then(Value::as_bool) != Some(true) {
            errors.push(format!(
                "Prompt inactive: {}",
                field_text(&doc, "prompt_name")
            ));
            continue;
        }
        let mut patch = Patch::new();
        patch.insert("ai_model".into(), Some(Value::from(model.as_str())));
        write(ctx, &viewer, &doc, patch, "update_model")?;
        updated += 1;
    }
    Ok(BulkUpdated {
        success: true,
        updated,
        failed: errors.len(),
        errors,
    })
}

/// An automatic escalation reported by the providers, to be saved on the version that was used
/// (and kept in the request log as it is here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
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
