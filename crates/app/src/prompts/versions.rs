//! Versions: creating one (checked when saved), activating one (which deactivates the others of its
//! family, so rolling back is activating an older one), editing the text (a new version), resetting
//! to the seeded default (a new version too, so history is kept).

use ai::template::VariableSpec;
use functions::{DbWriter, ErrorCode, FnResult, FunctionError, MutationCtx, Registry};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Nullable, Object, Typed, Value};

use super::defaults::{self, DefaultPrompt, OutputFormat};
use super::seed::default_group;
use super::settings::{check_max_tokens, check_model, check_temperature};
use super::{
    active, active_not_found, audit_change, bump_generation, by_id, check_name, family, num,
    output_format_validator, saved, subsystem_of, text as field_text, variables, NoExtra,
    PromptSettings, Saved, MAX_TEMPLATE_CHARS, TABLE,
};
use crate::identity::{require_permission, Permission, Viewer};

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateTemplateArgs {
    prompt_name: String,
    new_template: String,
    subsystem: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct CreateVersionArgs {
    prompt_name: String,
    prompt_template: String,
    variables: Option<Vec<variables::Declared>>,
    subsystem: Option<String>,
    prompt_version: Option<String>,
    description: Option<String>,
    ai_model: Option<String>,
    temperature: Option<f64>,
    max_tokens: Option<f64>,
    #[typed(validator = output_format_validator())]
    output_format: Option<String>,
    workflow_step: Option<String>,
    activate: Option<bool>,
}

/// The arguments naming one prompt version.
#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct PromptIdArgs {
    pub prompt_id: String,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct PromptNameArgs {
    prompt_name: String,
}

/// `updatePromptTemplate` with wording the active version already has.
#[derive(Serialize, Typed)]
pub struct Unchanged {
    unchanged: bool,
}

#[derive(Serialize, Typed)]
pub struct TemplateUpdated {
    previous_version: String,
    unused_variables: Vec<String>,
}

#[derive(Serialize, Typed)]
#[serde(untagged)]
pub enum UpdateTemplateResult {
    Unchanged(Saved<Unchanged>),
    Updated(Saved<TemplateUpdated>),
}

#[derive(Serialize, Typed)]
pub struct VersionCreated {
    is_active: bool,
}

#[derive(Serialize, Typed)]
pub struct Activated {
    previous_version: Nullable<String>,
}

/// A version about to be saved.
pub struct Draft {
    pub name: String,
    pub subsystem: String,
    pub version: Option<String>,
    pub template: String,
    pub variables: Vec<VariableSpec>,
    pub description: Option<String>,
    pub model: String,
    pub temperature: f64,
    pub max_tokens: f64,
    pub output_format: OutputFormat,
    pub workflow_step: String,
    pub group_id: Option<Value>,
    pub display_order: f64,
    pub activate: bool,
    /// An edit of the wording alone: checked by `variables::check_wording` (optional
    /// declarations may go unused) rather than `variables::check`.
    pub wording_only: bool,
}

impl Draft {
    /// A copy of `doc` with everything but the wording and variables kept.
    fn from_doc(doc: &Document, template: String, variables: Vec<VariableSpec>) -> Draft {
        Draft {
            name: field_text(doc, "prompt_name").to_string(),
            subsystem: field_text(doc, "subsystem").to_string(),
            version: None,
            template,
            variables,
            description: doc
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            model: field_text(doc, "ai_model").to_string(),
            temperature: num(doc, "temperature"),
            max_tokens: num(doc, "max_tokens"),
            output_format: OutputFormat::parse(field_text(doc, "output_format"))
                .unwrap_or(OutputFormat::Text),
            workflow_step: field_text(doc, "workflow_step").to_string(),
            group_id: doc.get("group_id").cloned(),
            display_order: num(doc, "display_order"),
            activate: true,
            wording_only: false,
        }
    }

    pub fn from_default(prompt: &DefaultPrompt, model: &str, group_id: Option<Value>) -> Draft {
        Draft {
            name: prompt.name.clone(),
            subsystem: defaults::SUBSYSTEM.to_string(),
            version: None,
            template: prompt.template.clone(),
            variables: prompt.variables.clone(),
            description: Some(prompt.description.clone()),
            model: model.to_string(),
            temperature: defaults::TEMPERATURE,
            max_tokens: prompt.max_tokens,
            output_format: prompt.output_format,
            workflow_step: prompt.workflow_step.to_string(),
            group_id,
            display_order: prompt.display_order,
            activate: true,
            wording_only: false,
        }
    }
}

/// The first version is `v1.0.0`; then `v1.0.0` → `v1.0.1`; a label that is not dotted numbers
/// → `v<number>`.
fn next_label(previous: Option<&str>, number: f64) -> String {
    let Some(previous) = previous else {
        return defaults::VERSION.to_string();
    };
    let bumped = Some(previous).and_then(|p| {
        let (prefix, rest) = p.strip_prefix('v').map_or(("", p), |r| ("v", r));
        let mut parts: Vec<u64> = rest
            .split('.')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        let last = parts.last_mut()?;
        *last += 1;
        let joined: Vec<String> = parts.iter().map(u64::to_string).collect();
        Some(format!("{prefix}{}", joined.join(".")))
    });
    bumped.unwrap_or_else(|| format!("v{number}"))
}

fn check_label(raw: &str) -> FnResult<String> {
    let label = raw.trim();
    let valid = (1..=40).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    if valid {
        Ok(label.to_string())
    } else {
        Err(FunctionError::validation(
            "prompt_version",
            "A version label is 1 to 40 letters, digits, '.', '_', '-' or '+' (for example v1.2.0)",
        ))
    }
}

/// Deactivates the family's active versions except `keep`.
fn deactivate_others(
    db: &mut DbWriter<'_>,
    subsystem: &str,
    name: &str,
    keep: Option<&DocumentId>,
    actor: Option<&DocumentId>,
    now: f64,
) -> FnResult<()> {
    let (s, n) = (subsystem.to_string(), name.to_string());
    let actives = db
        .query(TABLE)?
        .with_index("by_family_active", |q| {
            q.eq("subsystem", s)
                .eq("prompt_name", n)
                .eq("is_active", true)
        })?
        .collect()?;
    for doc in actives.iter().filter(|d| Some(&d.id) != keep) {
        let mut patch = Patch::new();
        patch.insert("is_active".into(), Some(Value::from(false)));
        patch.insert("replaced_at".into(), Some(Value::from(now)));
        patch.insert("replaced_by".into(), actor.map(|a| Value::from(*a)));
        db.patch(&doc.id, patch)?;
    }
    Ok(())
}

/// Saves a version after checking its template; returns the new document.
pub fn insert(
    db: &mut DbWriter<'_>,
    now: f64,
    actor: Option<&DocumentId>,
    draft: Draft,
) -> FnResult<Document> {
    if draft.template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(FunctionError::validation(
            "prompt_template",
            format!("A prompt template is at most {MAX_TEMPLATE_CHARS} characters"),
        ));
    }
    if draft.wording_only {
        variables::check_wording("prompt_template", &draft.template, &draft.variables)?;
    } else {
        variables::check("prompt_template", &draft.template, &draft.variables)?;
    }
    let newest = family(db, &draft.subsystem, &draft.name)?
        .into_iter()
        .next();
    let number = newest.as_ref().map_or(0.0, |d| num(d, "version_number")) + 1.0;
    let label = match &draft.version {
        Some(label) => check_label(label)?,
        None => next_label(
            newest.as_ref().map(|d| field_text(d, "prompt_version")),
            number,
        ),
    };
    let (name, l) = (draft.name.clone(), label.clone());
    let taken = db
        .query(TABLE)?
        .with_index("by_name_version", |q| {
            q.eq("prompt_name", name).eq("prompt_version", l)
        })?
        .collect()?
        .iter()
        .any(|d| field_text(d, "subsystem") == draft.subsystem);
    if taken {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "prompt_version",
            format!("Prompt {} already has a version {label}", draft.name),
        ));
    }
    let mut row = Object::new();
    let mut put = |k: &str, v: Value| {
        row.insert(k.to_string(), v);
    };
    put("prompt_name", Value::from(draft.name.as_str()));
    put("prompt_version", Value::from(label));
    put("version_number", Value::from(number));
    put("prompt_template", Value::from(draft.template.as_str()));
    put("variables", variables::to_value(&draft.variables)?);
    put("ai_model", Value::from(draft.model.as_str()));
    put("temperature", Value::from(draft.temperature));
    put("max_tokens", Value::from(draft.max_tokens));
    put("output_format", Value::from(draft.output_format.as_str()));
    put("subsystem", Value::from(draft.subsystem.as_str()));
    put("workflow_step", Value::from(draft.workflow_step.as_str()));
    put("display_order", Value::from(draft.display_order));
    put("is_active", Value::from(draft.activate));
    for counter in [
        "usage_count",
        "success_count",
        "failure_count",
        "average_response_time",
    ] {
        put(counter, Value::from(0.0));
    }
    put("created_at", Value::from(now));
    put("updated_at", Value::from(now));
    if let Some(description) = draft.description {
        put("description", Value::from(description));
    }
    if let Some(group) = draft.group_id {
        put("group_id", group);
    }
    if let Some(actor) = actor {
        put("created_by", Value::from(*actor));
        put("updated_by", Value::from(*actor));
    }
    let id = db.insert(TABLE, row)?;
    if draft.activate {
        deactivate_others(db, &draft.subsystem, &draft.name, Some(&id), actor, now)?;
    }
    bump_generation(db)?;
    by_id(db, &id.encode())
}

pub fn register(r: &mut Registry, settings: &PromptSettings) {
    r.mutation("promptManager:updatePromptTemplate", update_template);
    let model = settings.default_model.clone();
    r.mutation("promptManager:createPromptVersion", move |ctx, args| {
        create_version(ctx, args, &model)
    });
    r.mutation("promptManager:activatePromptVersion", activate);
    let model = settings.default_model.clone();
    r.mutation("promptManager:resetPromptToDefault", move |ctx, args| {
        reset_to_default(ctx, args, &model)
    });
}

pub fn admin(ctx: &mut MutationCtx<'_>, permission: Permission) -> FnResult<Viewer> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, permission)
}

/// `promptManager:updatePromptTemplate` (`sample_data`, as the contract): new wording for the
/// active version, saved as a new active version (the old one stays for rollback). The declared
/// variables are what the code supplies, so they all stay (with any of the seeded default's that
/// an earlier edit dropped): wording that leaves out a required one, or uses an undeclared one, is
/// refused by name; optional ones it leaves out are listed in `unused_variables`.
fn update_template(
    ctx: &mut MutationCtx<'_>,
    args: UpdateTemplateArgs,
) -> FnResult<UpdateTemplateResult> {
    let viewer = admin(ctx, Permission::SampleData)?;
    let name = check_name("prompt_name", &args.prompt_name)?;
    let subsystem = subsystem_of(args.subsystem.as_deref())?;
    let template = args.new_template;
    if template.trim().is_empty() {
        return Err(FunctionError::validation(
            "new_template",
            "The template must not be empty",
        ));
    }
    let current = active(&mut ctx.db, &subsystem, &name)?.ok_or_else(|| active_not_found(&name))?;
    let previous = field_text(&current, "prompt_version").to_string();
    if field_text(&current, "prompt_template") == template {
        return Ok(UpdateTemplateResult::Unchanged(saved(
            current.id,
            &name,
            &previous,
            Unchanged { unchanged: true },
        )));
    }
    let mut declared = variables::specs(current.get("variables"))?;
    if subsystem == defaults::SUBSYSTEM {
        if let Some(seeded) = defaults::find(&name) {
            declared = variables::with_defaults(declared, &seeded.variables);
        }
    }
    let unused = variables::left_out(&template, &declared);
    let mut draft = Draft::from_doc(&current, template, declared);
    draft.wording_only = true;
    let now = ctx.now_ms();
    let doc = insert(&mut ctx.db, now, Some(&viewer.user_id), draft)
        .map_err(|e| rename_field(e, "prompt_template", "new_template"))?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        Some(&viewer),
        "update_template",
        Some(&doc),
    )?;
    Ok(UpdateTemplateResult::Updated(saved(
        doc.id,
        &name,
        field_text(&doc, "prompt_version"),
        TemplateUpdated {
            previous_version: previous,
            unused_variables: unused,
        },
    )))
}

pub fn rename_field(mut error: FunctionError, from: &str, to: &str) -> FunctionError {
    if let FunctionError::User { field, .. } = &mut error {
        if field.as_deref() == Some(from) {
            *field = Some(to.to_string());
        }
    }
    error
}

/// `promptManager:createPromptVersion`: a new version of a family (or a new family). Fields left
/// out are taken from the newest version; the template is checked against the variables before
/// anything is saved. Active unless `activate: false`.
fn create_version(
    ctx: &mut MutationCtx<'_>,
    args: CreateVersionArgs,
    default_model: &str,
) -> FnResult<Saved<VersionCreated>> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let name = check_name("prompt_name", &args.prompt_name)?;
    let subsystem = subsystem_of(args.subsystem.as_deref())?;
    let template = args.prompt_template;
    if template.trim().is_empty() {
        return Err(FunctionError::validation(
            "prompt_template",
            "The template must not be empty",
        ));
    }
    let declared = args.variables.as_deref().map(variables::declared_specs);
    let newest = family(&mut ctx.db, &subsystem, &name)?.into_iter().next();
    let mut draft = match &newest {
        Some(doc) => {
            let vars = match declared {
                Some(vars) => vars,
                None => variables::specs(doc.get("variables"))?,
            };
            Draft::from_doc(doc, template, vars)
        }
        None => Draft {
            name: name.clone(),
            subsystem: subsystem.clone(),
            version: None,
            template,
            variables: declared.unwrap_or_default(),
            description: None,
            model: default_model.to_string(),
            temperature: defaults::TEMPERATURE,
            max_tokens: 2000.0,
            output_format: OutputFormat::Text,
            workflow_step: "custom".to_string(),
            group_id: None,
            display_order: 100.0,
            activate: true,
            wording_only: false,
        },
    };
    if let Some(label) = args.prompt_version {
        draft.version = Some(label);
    }
    if let Some(description) = &args.description {
        draft.description = Some(description.trim().to_string()).filter(|d| !d.is_empty());
    }
    if let Some(model) = &args.ai_model {
        draft.model = check_model("ai_model", model)?;
    }
    if let Some(t) = args.temperature {
        draft.temperature = check_temperature("temperature", t)?;
    }
    if let Some(m) = args.max_tokens {
        draft.max_tokens = check_max_tokens("max_tokens", m)?;
    }
    if let Some(format) = args.output_format.as_deref().and_then(OutputFormat::parse) {
        draft.output_format = format;
    }
    if let Some(step) = &args.workflow_step {
        draft.workflow_step = check_name("workflow_step", step)?;
    }
    draft.activate = args.activate.unwrap_or(true);
    let now = ctx.now_ms();
    let doc = insert(&mut ctx.db, now, Some(&viewer.user_id), draft)?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        Some(&viewer),
        "create_version",
        Some(&doc),
    )?;
    Ok(saved(
        doc.id,
        &name,
        field_text(&doc, "prompt_version"),
        VersionCreated {
            is_active: doc.get("is_active").and_then(Value::as_bool) == Some(true),
        },
    ))
}

/// `promptManager:activatePromptVersion`: makes this version the one that resolves. Activating an
/// older version is the rollback.
fn activate(ctx: &mut MutationCtx<'_>, args: PromptIdArgs) -> FnResult<Saved<Activated>> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let doc = by_id(&mut ctx.db, &args.prompt_id)?;
    let (subsystem, name) = (
        field_text(&doc, "subsystem").to_string(),
        field_text(&doc, "prompt_name").to_string(),
    );
    let now = ctx.now_ms();
    // The version being replaced, for the answer (and so a rollback can be undone).
    let previous = active(&mut ctx.db, &subsystem, &name)?;
    let mut patch = Patch::new();
    patch.insert("is_active".into(), Some(Value::from(true)));
    patch.insert("replaced_at".into(), None);
    patch.insert("replaced_by".into(), None);
    patch.insert("updated_at".into(), Some(Value::from(now)));
    patch.insert("updated_by".into(), Some(Value::from(viewer.user_id)));
    ctx.db.patch(&doc.id, patch)?;
    deactivate_others(
        &mut ctx.db,
        &subsystem,
        &name,
        Some(&doc.id),
        Some(&viewer.user_id),
        now,
    )?;
    bump_generation(&mut ctx.db)?;
    let doc = by_id(&mut ctx.db, &doc.id.encode())?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        Some(&viewer),
        "activate_version",
        Some(&doc),
    )?;
    let previous = previous
        .filter(|p| p.id != doc.id)
        .map(|p| field_text(&p, "prompt_version").to_string());
    Ok(saved(
        doc.id,
        &name,
        field_text(&doc, "prompt_version"),
        Activated {
            previous_version: Nullable(previous),
        },
    ))
}

/// `promptManager:resetPromptToDefault`: a new active version with the seeded wording, variables
/// and limits (the group and model stay as they are).
fn reset_to_default(
    ctx: &mut MutationCtx<'_>,
    args: PromptNameArgs,
    default_model: &str,
) -> FnResult<Saved<NoExtra>> {
    let viewer = admin(ctx, Permission::SystemConfiguration)?;
    let name = check_name("prompt_name", &args.prompt_name)?;
    let prompt = defaults::find(&name).ok_or_else(|| {
        FunctionError::field(
            ErrorCode::NotFound,
            "prompt_name",
            format!("Prompt {name} has no seeded default"),
        )
    })?;
    let now = ctx.now_ms();
    let newest = family(&mut ctx.db, defaults::SUBSYSTEM, &name)?
        .into_iter()
        .next();
    let group = match newest.as_ref().and_then(|d| d.get("group_id").cloned()) {
        Some(group) => Some(group),
        None => Some(Value::from(default_group(&mut ctx.db, now, prompt.group)?)),
    };
    let model = newest
        .as_ref()
        .map(|d| field_text(d, "ai_model").to_string())
        .unwrap_or_else(|| default_model.to_string());
    let draft = Draft::from_default(&prompt, &model, group);
    let doc = insert(&mut ctx.db, now, Some(&viewer.user_id), draft)?;
    audit_change(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        Some(&viewer),
        "reset_to_default",
        Some(&doc),
    )?;
    Ok(saved(
        doc.id,
        &name,
        field_text(&doc, "prompt_version"),
        NoExtra {},
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_labels_count_up() {
        assert_eq!(next_label(Some("v1.0.0"), 2.0), "v1.0.1");
        assert_eq!(next_label(Some("2.9"), 3.0), "2.10");
        assert_eq!(next_label(Some("beta"), 4.0), "v4");
        assert_eq!(next_label(None, 1.0), "v1.0.0");
        assert!(check_label("v1.2.0").is_ok());
        assert!(check_label("v 1").is_err());
    }
}
