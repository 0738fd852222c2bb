//! Resolution: the newest active version of a prompt by name (subsystem "incidents" unless given),
//! cached in memory with its parsed template, and rendering with validation.
//!
//! The cache is keyed by family and stamped with the prompt generation it was filled at. Every
//! resolution reads the generation row (one index probe) and the cached prompt by id, so a change
//! committed on any node is seen by the next resolution everywhere, and live queries re-run when
//! a prompt changes. What the cache saves is finding the newest active version and parsing its
//! template and variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ai::template::{self, Rendered, SubstitutionError, Template, VarKind, VariableSpec};
use std::collections::BTreeMap;

use functions::{DbRead, ErrorCode, FnResult, FunctionError, FunctionRef, QueryCtx, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use store::Document;
use values::{DocumentId, Id, Nullable, Typed, Value};

use super::{
    active, anonymous, check_name, generation, output_format_validator, substitute, subsystem_of,
    text, variables, AnonymousPrompt, PromptDoc, MAX_TEMPLATE_CHARS, TABLE,
};

/// The internal query behind the AI service (see `resolve_for_service`).
pub const RESOLVE: FunctionRef<ResolveArgs, Resolution> =
    FunctionRef::internal_query("promptManager:resolvePrompt");

/// Values for a template's variables, as clients send them.
pub type Variables = BTreeMap<String, Value>;

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ActiveArgs {
    prompt_name: String,
    subsystem: Option<String>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ProcessArgs {
    template: Option<String>,
    prompt_name: Option<String>,
    variables: Variables,
    subsystem: Option<String>,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct ResolveArgs {
    pub prompt_name: String,
    pub subsystem: Option<String>,
    pub variables: Variables,
}

/// The prompt facts a caller of the AI service needs.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct PromptSummary {
    pub prompt_id: Id<PromptDoc>,
    pub prompt_name: String,
    pub prompt_version: String,
    pub subsystem: String,
    pub ai_model: String,
    pub temperature: f64,
    pub max_tokens: f64,
    #[typed(validator = output_format_validator())]
    pub output_format: String,
}

/// Why the values given do not fill a template in.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Problems {
    pub missing: Vec<String>,
    pub type_errors: Vec<String>,
    pub unknown: Vec<String>,
}

/// `{prompt: null, anyPrompts}` when there is no active version; otherwise `{prompt, rendered,
/// unused}` or `{prompt, problems}`.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub prompt: Nullable<PromptSummary>,
    pub any_prompts: Option<bool>,
    pub rendered: Option<String>,
    pub unused: Option<Vec<String>>,
    pub problems: Option<Problems>,
}

/// `processTemplateWithValidationQuery` with a `template`: the text with the values put in.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct TextPreview {
    processed_template: String,
    missing_placeholders: Vec<String>,
    unused_variables: Vec<String>,
    substitutions: BTreeMap<String, String>,
}

/// `processTemplateWithValidationQuery` with a `prompt_name`: the active version rendered.
#[derive(Serialize, Typed)]
pub struct PromptPreview {
    #[serde(rename = "processedTemplate")]
    processed_template: String,
    #[serde(rename = "isValid")]
    is_valid: bool,
    missing: Vec<String>,
    unused: Vec<String>,
    #[serde(rename = "typeErrors")]
    type_errors: Vec<String>,
    unknown: Vec<String>,
    prompt_id: Id<PromptDoc>,
    prompt_name: String,
    prompt_version: String,
}

/// The two forms of `processTemplateWithValidationQuery`'s answer.
#[derive(Serialize, Typed)]
#[serde(untagged)]
pub enum Processed {
    Text(TextPreview),
    Prompt(PromptPreview),
}

/// The resolved prompt: its document (fresh from this transaction), parsed template and variables.
#[derive(Clone)]
pub struct Resolved {
    pub doc: Document,
    pub template: Arc<Template>,
    pub variables: Arc<Vec<VariableSpec>>,
}

#[derive(Clone)]
struct Entry {
    generation: f64,
    prompt: DocumentId,
    template: Arc<Template>,
    variables: Arc<Vec<VariableSpec>>,
}

/// One per registry (so one per database); cheap to clone.
#[derive(Clone, Default)]
pub struct PromptCache {
    entries: Arc<Mutex<HashMap<(String, String), Entry>>>,
}

impl PromptCache {
    pub fn new() -> PromptCache {
        PromptCache::default()
    }

    fn lookup(&self, key: &(String, String)) -> Option<Entry> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    fn store(&self, key: (String, String), entry: Entry) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key, entry);
        }
    }

    /// The newest active version of `name` in `subsystem`, or `None`.
    pub fn resolve(
        &self,
        db: &mut impl DbRead,
        subsystem: &str,
        name: &str,
    ) -> FnResult<Option<Resolved>> {
        let now = generation(db)?;
        let key = (subsystem.to_string(), name.to_string());
        if let Some(hit) = self.lookup(&key).filter(|e| e.generation == now) {
            // A write that deletes or replaces the prompt bumps the generation, so this finds it.
            if let Some(doc) = db.get_in(TABLE, &hit.prompt.encode())? {
                return Ok(Some(Resolved {
                    doc,
                    template: hit.template,
                    variables: hit.variables,
                }));
            }
        }
        let Some(doc) = active(db, subsystem, name)? else {
            return Ok(None);
        };
        let template = Template::parse(text(&doc, "prompt_template")).map_err(|e| {
            // Templates are checked when saved, so only a row written around the API gets here.
            FunctionError::user(
                ErrorCode::Validation,
                format!("The active version of prompt {name} does not parse: {e}"),
            )
        })?;
        let entry = Entry {
            generation: now,
            prompt: doc.id,
            template: Arc::new(template),
            variables: Arc::new(variables::specs(doc.get("variables"))?),
        };
        self.store(key, entry.clone());
        Ok(Some(Resolved {
            doc,
            template: entry.template,
            variables: entry.variables,
        }))
    }
}

/// Function arguments as the template engine's values. Whole numbers lose their `.0` so that
/// `{{count}}` renders as `3`, not `3.0`.
pub fn json_values(values: &Variables) -> Map<String, Json> {
    fn tidy(json: Json) -> Json {
        match json {
            Json::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Json::from(f as i64),
                _ => Json::Number(n),
            },
            Json::Array(items) => Json::Array(items.into_iter().map(tidy).collect()),
            Json::Object(map) => Json::Object(map.into_iter().map(|(k, v)| (k, tidy(v))).collect()),
            other => other,
        }
    }
    values
        .iter()
        .map(|(name, value)| (name.clone(), tidy(values::json::to_clean_json(value))))
        .collect()
}

/// A preview that renders whatever can be rendered: a value that is missing or of the wrong type
/// shows as its `{{name}}` placeholder (inserted as text, so it is not expanded again).
fn preview(resolved: &Resolved, values: &Map<String, Json>) -> String {
    let lenient: Vec<VariableSpec> = resolved
        .template
        .placeholders()
        .into_iter()
        .map(|name| VariableSpec {
            name: name.to_string(),
            kind: VarKind::String,
            required: false,
            default: None,
            description: None,
        })
        .collect();
    let shown: Map<String, Json> = lenient
        .iter()
        .map(|spec| {
            let declared = resolved.variables.iter().find(|d| d.name == spec.name);
            let placeholder = format!("{{{{{}}}}}", spec.name);
            let shown = |v: &Json| match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            let text = match (values.get(&spec.name).filter(|v| !v.is_null()), declared) {
                (Some(v), Some(d)) if d.kind.accepts(v) => shown(v),
                // Of the wrong type, or for a placeholder nothing declares.
                (Some(_), _) | (None, None) => placeholder,
                (None, Some(d)) => match &d.default {
                    Some(default) if !default.is_null() => shown(default),
                    _ if d.required => placeholder,
                    _ => String::new(),
                },
            };
            (spec.name.clone(), Json::String(text))
        })
        .collect();
    template::render(&resolved.template, &lenient, &shown)
        .map(|r| r.text)
        .unwrap_or_default()
}

/// The prompt facts a caller of the AI service needs.
fn summary(doc: &Document) -> FnResult<PromptSummary> {
    let row: PromptDoc = functions::row(doc)?;
    let core = row.core;
    Ok(PromptSummary {
        prompt_id: core.id,
        prompt_name: core.prompt_name,
        prompt_version: core.prompt_version,
        subsystem: core.subsystem,
        ai_model: core.ai_model,
        temperature: core.temperature,
        max_tokens: core.max_tokens,
        output_format: core.output_format,
    })
}

pub fn render(
    resolved: &Resolved,
    values: &Map<String, Json>,
) -> Result<Rendered, SubstitutionError> {
    template::render(&resolved.template, &resolved.variables, values)
}

pub fn register(r: &mut Registry, cache: &PromptCache) {
    let c = cache.clone();
    r.query("promptManager:getActivePrompt", move |ctx, args| {
        get_active(ctx, &c, args)
    });
    let c = cache.clone();
    r.query(
        "promptManager:processTemplateWithValidationQuery",
        move |ctx, args| process_with_validation(ctx, &c, args),
    );
    let c = cache.clone();
    r.internal_query(RESOLVE, move |ctx, args| resolve_for_service(ctx, &c, args));
}

fn resolve_named(
    ctx: &mut QueryCtx<'_>,
    cache: &PromptCache,
    name: &str,
    subsystem: Option<&str>,
) -> FnResult<Option<Resolved>> {
    let name = check_name("prompt_name", name)?;
    let subsystem = subsystem_of(subsystem)?;
    cache.resolve(&mut ctx.db, &subsystem, &name)
}

/// `promptManager:getActivePrompt` (no session needed, as in the reference): the newest active
/// version, or null. Anyone may ask, so it leaves out who wrote or changed the prompt (the
/// reference leaked administrators' user ids here); the queries that need a session show them.
fn get_active(
    ctx: &mut QueryCtx<'_>,
    cache: &PromptCache,
    args: ActiveArgs,
) -> FnResult<Option<AnonymousPrompt>> {
    let resolved = resolve_named(ctx, cache, &args.prompt_name, args.subsystem.as_deref())?;
    resolved.map(|r| anonymous(&r.doc)).transpose()
}

/// `promptManager:processTemplateWithValidationQuery`, in two forms (no session needed in either):
/// - `{template, variables}`, as the web app's testing panel sends it: the given text with the
///   values substituted, `{processedTemplate, missingPlaceholders, unusedVariables,
///   substitutions}` (see `substitute`);
/// - `{prompt_name, subsystem?, variables}`, ours: the active version rendered with its declared
///   types, `{processedTemplate, isValid, missing, unused, typeErrors, unknown, prompt_id,
///   prompt_name, prompt_version}`; null when there is no active version. An invalid rendering
///   still shows a preview, with the problem placeholders left as `{{name}}`.
fn process_with_validation(
    ctx: &mut QueryCtx<'_>,
    cache: &PromptCache,
    args: ProcessArgs,
) -> FnResult<Option<Processed>> {
    let name = match (&args.template, &args.prompt_name) {
        (Some(_), Some(_)) => {
            return Err(FunctionError::validation(
                "template",
                "Give either template or prompt_name, not both",
            ))
        }
        (None, None) => {
            return Err(FunctionError::validation(
                "template",
                "Give the template to process (or the prompt_name of a saved prompt)",
            ))
        }
        (Some(template), None) => {
            return process_text(template, &args.variables).map(|p| Some(Processed::Text(p)))
        }
        (None, Some(name)) => name,
    };
    let Some(resolved) = resolve_named(ctx, cache, name, args.subsystem.as_deref())? else {
        return Ok(None);
    };
    let values = json_values(&args.variables);
    let (processed, valid, problems, unused) = match render(&resolved, &values) {
        Ok(rendered) => (
            rendered.text,
            true,
            SubstitutionError::default(),
            rendered.unused,
        ),
        Err(problems) => {
            let used = resolved.template.placeholders();
            let mut unused: Vec<String> = values
                .keys()
                .filter(|k| !used.contains(&k.as_str()))
                .cloned()
                .collect();
            unused.sort();
            (preview(&resolved, &values), false, problems, unused)
        }
    };
    let doc = &resolved.doc;
    Ok(Some(Processed::Prompt(PromptPreview {
        processed_template: processed,
        is_valid: valid,
        missing: problems.missing,
        unused,
        type_errors: problems.type_errors,
        unknown: problems.unknown,
        prompt_id: doc.id.into(),
        prompt_name: text(doc, "prompt_name").to_string(),
        prompt_version: text(doc, "prompt_version").to_string(),
    })))
}

/// The `{template, variables}` form of `processTemplateWithValidationQuery`.
fn process_text(template: &str, variables: &Variables) -> FnResult<TextPreview> {
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(FunctionError::validation(
            "template",
            format!("A prompt template is at most {MAX_TEMPLATE_CHARS} characters"),
        ));
    }
    let out = substitute::preview(template, &json_values(variables));
    Ok(TextPreview {
        processed_template: out.processed,
        missing_placeholders: out.missing,
        unused_variables: out.unused,
        substitutions: out.substitutions,
    })
}

/// The internal query behind the AI service: `{prompt: null}` when there is no active version;
/// otherwise `{prompt: {...}, rendered, unused}` or `{prompt: {...}, problems: {missing,
/// typeErrors, unknown}}`. `promptCount` says whether any prompt exists (so the service can seed
/// the defaults into an empty table).
fn resolve_for_service(
    ctx: &mut QueryCtx<'_>,
    cache: &PromptCache,
    args: ResolveArgs,
) -> FnResult<Resolution> {
    let none = Resolution {
        prompt: Nullable::null(),
        any_prompts: None,
        rendered: None,
        unused: None,
        problems: None,
    };
    let resolved = resolve_named(ctx, cache, &args.prompt_name, args.subsystem.as_deref())?;
    let Some(resolved) = resolved else {
        let any = ctx.db.query(TABLE)?.first()?.is_some();
        return Ok(Resolution {
            any_prompts: Some(any),
            ..none
        });
    };
    let values = json_values(&args.variables);
    let prompt = Nullable(Some(summary(&resolved.doc)?));
    Ok(match render(&resolved, &values) {
        Ok(rendered) => Resolution {
            prompt,
            rendered: Some(rendered.text),
            unused: Some(rendered.unused),
            ..none
        },
        Err(problems) => Resolution {
            prompt,
            problems: Some(Problems {
                missing: problems.missing,
                type_errors: problems.type_errors,
                unknown: problems.unknown,
            }),
            ..none
        },
    })
}
