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
use functions::{DbRead, ErrorCode, FnResult, FunctionError, QueryCtx, Registry};
use serde_json::{Map, Value as Json};
use store::Document;
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{
    active, anonymous, check_name, generation, substitute, subsystem_of, text, variables,
    MAX_TEMPLATE_CHARS, TABLE,
};
use crate::args::{object, text as arg_text, with_session};

pub const RESOLVE: &str = "promptManager:resolvePrompt";

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
pub fn json_values(values: Option<&Value>) -> Map<String, Json> {
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
    match values.map(values::json::to_clean_json).map(tidy) {
        Some(Json::Object(map)) => map,
        _ => Map::new(),
    }
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

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// The prompt facts a caller of the AI service needs.
fn summary(doc: &Document) -> Value {
    let field = |name: &str| doc.get(name).cloned();
    object([
        ("prompt_id", Some(Value::from(doc.id))),
        ("prompt_name", field("prompt_name")),
        ("prompt_version", field("prompt_version")),
        ("subsystem", field("subsystem")),
        ("ai_model", field("ai_model")),
        ("temperature", field("temperature")),
        ("max_tokens", field("max_tokens")),
        ("output_format", field("output_format")),
    ])
}

pub fn render(
    resolved: &Resolved,
    values: &Map<String, Json>,
) -> Result<Rendered, SubstitutionError> {
    template::render(&resolved.template, &resolved.variables, values)
}

pub fn register(r: &mut Registry, cache: &PromptCache) {
    let name_args = || {
        with_session([
            ("prompt_name", v::string().into()),
            ("subsystem", v::optional(v::string())),
        ])
    };
    let c = cache.clone();
    r.query_untyped(
        "promptManager:getActivePrompt",
        name_args(),
        move |ctx, args| get_active(ctx, &c, args),
    );
    let c = cache.clone();
    r.query_untyped(
        "promptManager:processTemplateWithValidationQuery",
        with_session([
            ("template", v::optional(v::string())),
            ("prompt_name", v::optional(v::string())),
            ("variables", v::record(v::string(), v::any()).into()),
            ("subsystem", v::optional(v::string())),
        ]),
        move |ctx, args| process_with_validation(ctx, &c, args),
    );
    let c = cache.clone();
    r.internal_query_untyped(
        RESOLVE,
        v::object([
            ("prompt_name", v::string().into()),
            ("subsystem", v::optional(v::string())),
            ("variables", v::record(v::string(), v::any()).into()),
        ]),
        move |ctx, args| resolve_for_service(ctx, &c, args),
    );
}

fn resolve_args(
    ctx: &mut QueryCtx<'_>,
    cache: &PromptCache,
    args: &Object,
) -> FnResult<Option<Resolved>> {
    let name = check_name("prompt_name", arg_text(args, "prompt_name"))?;
    let subsystem = subsystem_of(args)?;
    cache.resolve(&mut ctx.db, &subsystem, &name)
}

/// `promptManager:getActivePrompt` (no session needed, as in the reference): the newest active
/// version, or null. Anyone may ask, so it leaves out who wrote or changed the prompt (the
/// reference leaked administrators' user ids here); the queries that need a session show them.
fn get_active(ctx: &mut QueryCtx<'_>, cache: &PromptCache, args: Object) -> FnResult {
    let Some(resolved) = resolve_args(ctx, cache, &args)? else {
        return Ok(Value::Null);
    };
    Ok(anonymous(&resolved.doc))
}

/// `promptManager:processTemplateWithValidationQuery`, in two forms (no session needed in either):
/// - `{template, variables}`, as the web app's testing panel sends it: the given text with the
///   values substituted, `{processedTemplate, missingPlaceholders, unusedVariables,
///   substitutions}` (see `substitute`);
/// - `{prompt_name, subsystem?, variables}`, ours: the active version rendered with its declared
///   types, `{processedTemplate, isValid, missing, unused, typeErrors, unknown, prompt_id,
///   prompt_name, prompt_version}`; null when there is no active version. An invalid rendering
///   still shows a preview, with the problem placeholders left as `{{name}}`.
fn process_with_validation(ctx: &mut QueryCtx<'_>, cache: &PromptCache, args: Object) -> FnResult {
    match (args.get("template"), args.get("prompt_name")) {
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
            return process_text(template.as_str().unwrap_or_default(), &args)
        }
        (None, Some(_)) => {}
    }
    let Some(resolved) = resolve_args(ctx, cache, &args)? else {
        return Ok(Value::Null);
    };
    let values = json_values(args.get("variables"));
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
    Ok(object([
        ("processedTemplate", Some(Value::from(processed))),
        ("isValid", Some(Value::from(valid))),
        ("missing", Some(strings(&problems.missing))),
        ("unused", Some(strings(&unused))),
        ("typeErrors", Some(strings(&problems.type_errors))),
        ("unknown", Some(strings(&problems.unknown))),
        ("prompt_id", Some(Value::from(doc.id))),
        ("prompt_name", doc.get("prompt_name").cloned()),
        ("prompt_version", doc.get("prompt_version").cloned()),
    ]))
}

/// The `{template, variables}` form of `processTemplateWithValidationQuery`.
fn process_text(template: &str, args: &Object) -> FnResult {
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(FunctionError::validation(
            "template",
            format!("A prompt template is at most {MAX_TEMPLATE_CHARS} characters"),
        ));
    }
    let out = substitute::preview(template, &json_values(args.get("variables")));
    let substitutions: Object = out
        .substitutions
        .into_iter()
        .map(|(name, text)| (name, Value::from(text)))
        .collect();
    Ok(object([
        ("processedTemplate", Some(Value::from(out.processed))),
        ("missingPlaceholders", Some(strings(&out.missing))),
        ("unusedVariables", Some(strings(&out.unused))),
        ("substitutions", Some(Value::Object(substitutions))),
    ]))
}

/// The internal query behind the AI service: `{prompt: null}` when there is no active version;
/// otherwise `{prompt: {...}, rendered, unused}` or `{prompt: {...}, problems: {missing,
/// typeErrors, unknown}}`. `promptCount` says whether any prompt exists (so the service can seed
/// the defaults into an empty table).
fn resolve_for_service(ctx: &mut QueryCtx<'_>, cache: &PromptCache, args: Object) -> FnResult {
    let Some(resolved) = resolve_args(ctx, cache, &args)? else {
        let any = ctx.db.query(TABLE)?.first()?.is_some();
        return Ok(object([
            ("prompt", Some(Value::Null)),
            ("anyPrompts", Some(Value::from(any))),
        ]));
    };
    let values = json_values(args.get("variables"));
    let prompt = Some(summary(&resolved.doc));
    Ok(match render(&resolved, &values) {
        Ok(rendered) => object([
            ("prompt", prompt),
            ("rendered", Some(Value::from(rendered.text))),
            ("unused", Some(strings(&rendered.unused))),
        ]),
        Err(problems) => object([
            ("prompt", prompt),
            (
                "problems",
                Some(object([
                    ("missing", Some(strings(&problems.missing))),
                    ("typeErrors", Some(strings(&problems.type_errors))),
                    ("unknown", Some(strings(&problems.unknown))),
                ])),
            ),
        ]),
    })
}
