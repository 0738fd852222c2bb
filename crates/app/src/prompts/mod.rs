//! Prompt templates in the database (`promptManager:*`): versioned `{{variable}}` templates with
//! typed variables, model and limits, groups, usage statistics, and the defaults seeded on first
//! start. Prompts are platform-wide (not tenant tables); every change is audited.
//!
//! A prompt "family" is one `prompt_name` within a `subsystem`; each edit of its text makes a new
//! version, and at most one version of a family is active. Resolution takes the newest active
//! version and is cached in memory (`resolve`), checked against a generation counter that every
//! write bumps in the same transaction, so a node never serves a template another node replaced.
//!
//! Field names follow the reference (`prompt_name`, `prompt_template`, `ai_model`, ...) so its web
//! app reads these documents unchanged.

pub mod defaults;
mod groups;
mod read;
pub mod resolve;
pub mod rows;
mod seed;
mod settings;
mod substitute;
pub mod variables;
mod versions;

use functions::{DbRead, DbWriter, ErrorCode, FnResult, FunctionError, Registry};
use serde::{Deserialize, Serialize};
use store::{Document, Order, Patch, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Nullable, Object, Typed, Validator, Value};

use crate::audit::{self, Entry, Event};
use crate::identity::Viewer;
use defaults::OutputFormat;

pub use resolve::{PromptCache, Resolved};
pub use seed::{NoArgs, ENSURE_DEFAULTS};
pub use settings::{apply_adjustment, TokenAdjustment};

pub const TABLE: &str = "ai_prompts";
/// The reference system's name (the web app writes `Id<"prompt_groups">`); stored as
/// `ai_prompt_groups` before 2026-12-05.
pub const GROUPS: &str = "prompt_groups";
/// One row holding the prompt generation (see the module comment).
pub const STATE: &str = "ai_prompt_state";
const STATE_KEY: &str = "prompts";

/// Limits an administrator may set (the escalation cap of the providers is 10000 tokens).
pub const MAX_TOKENS_LIMIT: f64 = 32_000.0;
pub const MAX_TEMPLATE_CHARS: usize = 50_000;

pub(crate) fn one_of(options: &[&str]) -> Validator {
    v::union(options.iter().map(|o| v::literal(*o)).collect())
}

pub fn output_format_validator() -> Validator {
    one_of(&OutputFormat::ALL.map(OutputFormat::as_str))
}

pub fn tables() -> Vec<TableDef> {
    vec![
        TableDef::new(TABLE)
            .field("prompt_name", v::string())
            .field("prompt_version", v::string())
            // 1, 2, 3... within the family: what "newest" means.
            .field("version_number", v::number())
            .field("prompt_template", v::string())
            .optional("description", v::string())
            .field("variables", v::array(variables::validator()))
            .field("ai_model", v::string())
            .field("temperature", v::number())
            .field("max_tokens", v::number())
            // An automatic escalation after truncated replies: the limit before it, why, when, and
            // whether an administrator has seen it.
            .optional("baseline_max_tokens", v::number())
            .optional("adjustment_reason", v::string())
            .optional("adjusted_at", v::number())
            .optional("acknowledged_at", v::number())
            .optional("acknowledged_by", v::id("users"))
            .field("output_format", output_format_validator())
            .field("subsystem", v::string())
            .field("workflow_step", v::string())
            .optional("group_id", v::id(GROUPS))
            .field("display_order", v::number())
            .field("is_active", v::boolean())
            .field("usage_count", v::number())
            .field("success_count", v::number())
            .field("failure_count", v::number())
            // Milliseconds, averaged over every call.
            .field("average_response_time", v::number())
            .optional("last_used_at", v::number())
            .field("created_at", v::number())
            .optional("created_by", v::id("users"))
            .field("updated_at", v::number())
            .optional("updated_by", v::id("users"))
            .optional("replaced_at", v::number())
            .optional("replaced_by", v::id("users"))
            .index("by_name_version", &["prompt_name", "prompt_version"])
            .index("by_family", &["subsystem", "prompt_name", "version_number"])
            .index(
                "by_family_active",
                &["subsystem", "prompt_name", "is_active", "version_number"],
            )
            .index(
                "by_subsystem_active",
                &["subsystem", "is_active", "display_order"],
            )
            .index("by_active", &["is_active", "display_order"])
            .index("by_group", &["group_id", "display_order"]),
        TableDef::new(GROUPS)
            .formerly("ai_prompt_groups")
            .field("group_name", v::string())
            .optional("description", v::string())
            .field("display_order", v::number())
            .field("is_collapsible", v::boolean())
            .field("default_collapsed", v::boolean())
            .field("created_at", v::number())
            .optional("created_by", v::id("users"))
            .field("updated_at", v::number())
            .optional("updated_by", v::id("users"))
            .index("by_name", &["group_name"])
            .index("by_display_order", &["display_order"]),
        TableDef::new(STATE)
            .field("key", v::string())
            .field("generation", v::number())
            .index("by_key", &["key"]),
    ]
}

/// What registration needs from the configuration.
#[derive(Clone, Debug)]
pub struct PromptSettings {
    /// The model seeded prompts ask for (`LLM_MODEL`); `DEFAULT_MODEL` means "whatever the
    /// provider is configured with".
    pub default_model: String,
}

/// The model name that leaves the choice to the provider configuration.
pub const DEFAULT_MODEL: &str = "default";

pub fn register(r: &mut Registry, settings: &PromptSettings, cache: &PromptCache) {
    resolve::register(r, cache);
    read::register(r);
    versions::register(r, settings);
    seed::register(r, settings);
    settings::register(r);
    groups::register(r);
}

// ---- the generation counter ----

/// The state row, if any write made one yet.
fn state_row(db: &mut impl DbRead) -> FnResult<Option<StateDoc>> {
    db.query(STATE)?
        .with_index("by_key", |q| q.eq("key", STATE_KEY))?
        .first()?
        .map(|doc| functions::row(&doc))
        .transpose()
}

/// The current prompt generation (0 before the first write).
pub fn generation(db: &mut impl DbRead) -> FnResult<f64> {
    Ok(state_row(db)?.map_or(0.0, |r| r.generation))
}

/// Marks every cached resolution stale; called by every write that changes what resolves.
pub fn bump_generation(db: &mut DbWriter<'_>) -> FnResult<()> {
    match state_row(db)? {
        Some(row) => {
            let next = row.generation + 1.0;
            let mut patch = Patch::new();
            patch.insert("generation".into(), Some(Value::from(next)));
            db.patch(&row.id, patch)?;
        }
        None => {
            let mut row = Object::new();
            row.insert("key".into(), Value::from(STATE_KEY));
            row.insert("generation".into(), Value::from(1.0));
            db.insert(STATE, row)?;
        }
    }
    Ok(())
}

// ---- shared helpers ----

/// Prompt names are identifiers (`generate_clarification_questions_before_event`).
pub fn check_name(field: &str, name: &str) -> FnResult<String> {
    let name = name.trim();
    let valid = (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if valid {
        Ok(name.to_string())
    } else {
        Err(FunctionError::validation(
            field,
            "A prompt name is 1 to 100 letters, digits, '_', '-' or '.'",
        ))
    }
}

/// The `subsystem` argument: `incidents` when left out, else a checked name.
pub fn subsystem_of(given: Option<&str>) -> FnResult<String> {
    match given {
        None => Ok(defaults::SUBSYSTEM.to_string()),
        Some(s) => check_name("subsystem", s),
    }
}

pub fn num(doc: &Document, field: &str) -> f64 {
    doc.get(field).and_then(Value::as_f64).unwrap_or(0.0)
}

pub fn text<'a>(doc: &'a Document, field: &str) -> &'a str {
    doc.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// The versions of a family, newest first.
pub fn family(db: &mut impl DbRead, subsystem: &str, name: &str) -> FnResult<Vec<Document>> {
    let (subsystem, name) = (subsystem.to_string(), name.to_string());
    Ok(db
        .query(TABLE)?
        .with_index("by_family", |q| {
            q.eq("subsystem", subsystem).eq("prompt_name", name)
        })?
        .order(Order::Desc)
        .collect()?)
}

/// The newest active version of a family.
pub fn active(db: &mut impl DbRead, subsystem: &str, name: &str) -> FnResult<Option<Document>> {
    let (subsystem, name) = (subsystem.to_string(), name.to_string());
    Ok(db
        .query(TABLE)?
        .with_index("by_family_active", |q| {
            q.eq("subsystem", subsystem)
                .eq("prompt_name", name)
                .eq("is_active", true)
        })?
        .order(Order::Desc)
        .first()?)
}

pub fn active_not_found(name: &str) -> FunctionError {
    FunctionError::field(
        ErrorCode::NotFound,
        "prompt_name",
        format!("Active prompt not found: {name}"),
    )
}

/// A prompt by id: VALIDATION for a string that is no prompt id, NOT_FOUND for one that names
/// no prompt (prompts belong to no company, so there is nothing to hide).
pub fn by_id(db: &mut impl DbRead, id: &str) -> FnResult<Document> {
    by_id_in(db, "prompt_id", id)
}

/// `by_id` for an argument named `field` (the web app's `promptId`).
pub fn by_id_in(db: &mut impl DbRead, field: &str, id: &str) -> FnResult<Document> {
    let Some(id) = db.normalize_id(TABLE, id) else {
        return Err(FunctionError::validation(
            field,
            format!("{field} is not the id of a prompt"),
        ));
    };
    db.get_in(TABLE, &id.encode())?
        .ok_or_else(|| FunctionError::field(ErrorCode::NotFound, field, "Prompt not found"))
}

/// A prompt as clients see it: the stored fields, its success rate (null before any call) and
/// whether an automatic token adjustment awaits an administrator.
pub fn public(doc: &Document) -> FnResult<PublicPrompt> {
    let row: PromptDoc = functions::row(doc)?;
    let (success_rate, adjustment_pending) = row.core.derived();
    Ok(PublicPrompt {
        row,
        success_rate,
        adjustment_pending,
    })
}

/// `public` for callers who need no session: without the people fields (the reference leaked
/// administrators' user ids to anyone).
pub fn anonymous(doc: &Document) -> FnResult<AnonymousPrompt> {
    let PublicPrompt {
        row,
        success_rate,
        adjustment_pending,
    } = public(doc)?;
    Ok(AnonymousPrompt {
        core: row.core,
        prompt_template: row.prompt_template,
        success_rate,
        adjustment_pending,
    })
}

/// Records a prompt change in the audit log: who, what, which prompt and version.
pub fn audit_change(
    db: &mut DbWriter<'_>,
    now: f64,
    correlation_id: &str,
    viewer: Option<&Viewer>,
    action: &str,
    prompt: Option<&Document>,
) -> FnResult<()> {
    let (name, version) = prompt.map_or(("", ""), |p| {
        (text(p, "prompt_name"), text(p, "prompt_version"))
    });
    let details: Vec<(&str, &str)> = [
        ("action", action),
        ("prompt_name", name),
        ("prompt_version", version),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let entry = Entry {
        event: Event::AiPromptChanged,
        actor: viewer.map(|v| &v.user_id),
        target: prompt.map(|p| p.id.encode()),
        company: None,
        details: &details,
    };
    match viewer {
        Some(viewer) => audit::record_by(db, now, correlation_id, viewer, entry),
        None => audit::record(db, now, correlation_id, entry),
    }
}

/// `{success: true, prompt_id, prompt_name, prompt_version, ...extra}`.
pub fn saved<E>(doc_id: DocumentId, name: &str, version: &str, extra: E) -> Saved<E> {
    Saved {
        success: true,
        prompt_id: doc_id.into(),
        prompt_name: name.to_string(),
        prompt_version: version.to_string(),
        extra,
    }
}

/// What a change to a prompt answers: which version it made or changed, and `E`'s fields.
#[derive(Serialize, Typed)]
pub struct Saved<E> {
    pub success: bool,
    pub prompt_id: Id<PromptDoc>,
    pub prompt_name: String,
    pub prompt_version: String,
    #[serde(flatten)]
    pub extra: E,
}

/// No fields beyond those of `Saved`.
#[derive(Serialize, Typed)]
pub struct NoExtra {}

// ---- row types ----

/// The fields of a stored prompt that every view shows: all but the template text and the
/// people fields.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct PromptCore {
    #[serde(rename = "_id")]
    pub id: Id<PromptDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub prompt_name: String,
    pub prompt_version: String,
    pub version_number: f64,
    pub description: Option<String>,
    pub variables: Vec<variables::Declared>,
    pub ai_model: String,
    pub temperature: f64,
    pub max_tokens: f64,
    pub baseline_max_tokens: Option<f64>,
    pub adjustment_reason: Option<String>,
    pub adjusted_at: Option<f64>,
    pub acknowledged_at: Option<f64>,
    #[typed(validator = output_format_validator())]
    pub output_format: String,
    pub subsystem: String,
    pub workflow_step: String,
    #[typed(id = "prompt_groups")]
    pub group_id: Option<String>,
    pub display_order: f64,
    pub is_active: bool,
    pub usage_count: f64,
    pub success_count: f64,
    pub failure_count: f64,
    pub average_response_time: f64,
    pub last_used_at: Option<f64>,
    pub created_at: f64,
    pub updated_at: f64,
    pub replaced_at: Option<f64>,
}

impl PromptCore {
    /// The success rate (null before any call) and whether an adjustment awaits an administrator.
    fn derived(&self) -> (Nullable<f64>, bool) {
        let (ok, failed) = (self.success_count, self.failure_count);
        let rate = (ok + failed > 0.0).then(|| ok / (ok + failed));
        let pending = self.adjusted_at.is_some() && self.acknowledged_at.is_none();
        (Nullable(rate), pending)
    }
}

/// The fields of a prompt that name platform administrators (the people fields: views for callers
/// without a session leave them out).
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct PromptPeople {
    #[typed(id = "users")]
    pub acknowledged_by: Option<String>,
    #[typed(id = "users")]
    pub created_by: Option<String>,
    #[typed(id = "users")]
    pub updated_by: Option<String>,
    #[typed(id = "users")]
    pub replaced_by: Option<String>,
}

/// A document of the prompts table.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "ai_prompts")]
pub struct PromptDoc {
    #[serde(flatten)]
    pub core: PromptCore,
    pub prompt_template: String,
    #[serde(flatten)]
    pub people: PromptPeople,
}

/// A prompt for signed-in readers: the document, its success rate and pending adjustment.
#[derive(Serialize, Typed)]
pub struct PublicPrompt {
    #[serde(flatten)]
    pub row: PromptDoc,
    pub success_rate: Nullable<f64>,
    pub adjustment_pending: bool,
}

/// `PublicPrompt` without the people fields.
#[derive(Serialize, Typed)]
pub struct AnonymousPrompt {
    #[serde(flatten)]
    pub core: PromptCore,
    pub prompt_template: String,
    pub success_rate: Nullable<f64>,
    pub adjustment_pending: bool,
}

/// The fields of a prompt group that every view shows.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct GroupCore {
    #[serde(rename = "_id")]
    pub id: Id<GroupDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub group_name: String,
    pub description: Option<String>,
    pub display_order: f64,
    pub is_collapsible: bool,
    pub default_collapsed: bool,
    pub created_at: f64,
    pub updated_at: f64,
}

/// A document of the prompt groups table.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "prompt_groups")]
pub struct GroupDoc {
    #[serde(flatten)]
    pub core: GroupCore,
    #[typed(id = "users")]
    pub created_by: Option<String>,
    #[typed(id = "users")]
    pub updated_by: Option<String>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![
        (TABLE, PromptDoc::validator()),
        (GROUPS, GroupDoc::validator()),
        (STATE, StateDoc::validator()),
    ]
}

/// A document of the prompt state: a generation bumped on every prompt change.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "ai_prompt_state")]
pub struct StateDoc {
    #[serde(rename = "_id")]
    pub id: Id<StateDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub key: String,
    pub generation: f64,
}
