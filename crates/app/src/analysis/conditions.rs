//! Contributing conditions: the AI proposes them from the whole capture record
//! (`generateContributingConditions`, prompt `analyze_contributing_conditions`); the analyst edits
//! them (`updateContributingConditions`), each save a revision, with optimistic concurrency so two
//! editors never overwrite each other silently. The AI's first list is kept unchanged, and
//! evidence that does not quote the narrative is dropped (from the AI) or refused (from a person).

use std::sync::Arc;

use functions::{
    ActionCtx, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, QueryCtx, Registry,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use values::Typed;

use super::model::{
    AnalysisState, Condition, ConditionStatus, ConditionType, Evidence, RevisionDoc, RevisionRow,
    Severity, Source, REVISIONS,
};
use super::reply::{self, strings, text};
use super::{analyst, phase_texts, prepare_ai, quote_occurs, require_editor, started, Prepared};
use crate::ai_service::AiService;
use crate::narratives::Phase;

pub const PROMPT: &str = "analyze_contributing_conditions";
const MAX_CONDITIONS: usize = 50;

const PREPARE: FunctionRef<GenerateArgs, Prepared> =
    FunctionRef::internal_query("analysis:prepareConditions");
const STORE: FunctionRef<StoreArgs, Vec<Condition>> =
    FunctionRef::internal_mutation("analysis:storeGeneratedConditions");

pub fn register(r: &mut Registry, ai: &AiService) {
    r.internal_query(PREPARE, prepare);
    r.internal_mutation(STORE, store);
    let service = ai.clone();
    r.action(
        "analysis:generateContributingConditions",
        move |ctx, args| {
            let ai = service.clone();
            async move { generate(ctx, args, ai).await }
        },
    );
    r.mutation("analysis:updateContributingConditions", update);
    r.query("analysis:listRevisions", list_revisions);
    register_current(r);
}

/// A condition as a client or the AI sends it: the server fills in what is left out.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct ConditionInput {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: ConditionType,
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub is_modifiable: Option<bool>,
    pub recommended_actions: Option<Vec<String>>,
    pub status: Option<ConditionStatus>,
    pub evidence: Option<Vec<Evidence>>,
    pub source: Option<Source>,
}

/// Each condition as `### title` with its details, for the Markdown the web app renders.
pub fn markdown(conditions: &[Condition]) -> String {
    let mut out = String::from("**Immediate Contributing Conditions**\n");
    for c in conditions {
        out.push_str(&format!(
            "\n### {}\n- Type: {}; severity: {}; status: {}\n",
            c.title,
            c.kind.as_str(),
            c.severity.as_str(),
            c.status.as_str()
        ));
        if !c.description.is_empty() {
            out.push_str(&format!("- {}\n", c.description));
        }
        for e in &c.evidence {
            out.push_str(&format!("- {}: \"{}\"\n", e.phase.label(), e.quote));
        }
        for a in &c.recommended_actions {
            out.push_str(&format!("- Recommended: {a}\n"));
        }
    }
    out
}

/// The next free `cond_<n>` id.
fn next_id(taken: &[String]) -> String {
    let n = taken
        .iter()
        .filter_map(|id| id.strip_prefix("cond_")?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    format!("cond_{}", n + 1)
}

fn clean_list(items: Option<Vec<String>>) -> Vec<String> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .take(20)
        .collect()
}

/// How evidence that does not quote the narrative is treated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ungrounded {
    /// The AI's: dropped.
    Drop,
    /// A person's: refused, naming the quote.
    Refuse,
}

/// Full conditions from `inputs`: ids given to new ones, text checked, evidence grounded.
fn complete(
    inputs: Vec<ConditionInput>,
    texts: &[(Phase, Vec<String>)],
    default_source: Source,
    ungrounded: Ungrounded,
) -> FnResult<Vec<Condition>> {
    if inputs.len() > MAX_CONDITIONS {
        return Err(FunctionError::validation(
            "conditions",
            format!("At most {MAX_CONDITIONS} contributing conditions"),
        ));
    }
    let mut taken: Vec<String> = inputs.iter().filter_map(|c| c.id.clone()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let field = |name: &str| format!("conditions[{i}].{name}");
        let title = input.title.trim().to_string();
        if title.is_empty() || title.chars().count() > 200 {
            if ungrounded == Ungrounded::Drop {
                continue;
            }
            return Err(FunctionError::validation(
                field("title"),
                "Each condition needs a title of at most 200 characters",
            ));
        }
        let description = input.description.unwrap_or_default().trim().to_string();
        if description.chars().count() > 4000 {
            return Err(FunctionError::validation(
                field("description"),
                "A description may be at most 4000 characters",
            ));
        }
        let id = match input.id.filter(|id| !id.trim().is_empty()) {
            Some(id) => id.trim().to_string(),
            None => {
                let id = next_id(&taken);
                taken.push(id.clone());
                id
            }
        };
        if !seen.insert(id.clone()) {
            return Err(FunctionError::validation(
                field("id"),
                format!("Two conditions have the id {id}"),
            ));
        }
        let mut evidence = Vec::new();
        for (j, e) in input.evidence.unwrap_or_default().into_iter().enumerate() {
            if quote_occurs(texts, e.phase, &e.quote) {
                evidence.push(Evidence {
                    phase: e.phase,
                    quote: e.quote.trim().to_string(),
                });
            } else if ungrounded == Ungrounded::Refuse {
                return Err(FunctionError::validation(
                    format!("conditions[{i}].evidence[{j}].quote"),
                    format!(
                        "The quote \"{}\" does not occur in the {} narrative",
                        e.quote.trim(),
                        e.phase.label()
                    ),
                ));
            }
        }
        out.push(Condition {
            id,
            kind: input.kind,
            title,
            description,
            severity: input.severity,
            is_modifiable: input.is_modifiable.unwrap_or(true),
            recommended_actions: clean_list(input.recommended_actions),
            status: input.status.unwrap_or(ConditionStatus::Identified),
            evidence,
            source: input.source.unwrap_or(default_source),
        });
    }
    Ok(out)
}

#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct GenerateArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    force: Option<bool>,
}

/// Refuses to replace a person's edits unless forced.
fn require_no_edits(state: AnalysisState, force: bool) -> FnResult<()> {
    if state == AnalysisState::UserReviewed && !force {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "force",
            "The conditions have been edited; generating again would replace the edits (pass force: true to do so)",
        ));
    }
    Ok(())
}

/// `analysis:prepareConditions` (internal): the analyst's request, refused when it would replace
/// a person's edits without `force`.
fn prepare(ctx: &mut QueryCtx<'_>, args: GenerateArgs) -> FnResult<Prepared> {
    let now = ctx.now_ms();
    let (_, _, _, analysis, request) = prepare_ai(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    require_no_edits(analysis.row.status, args.force == Some(true))?;
    Ok(Prepared { request })
}

#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct StoreArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    conditions: Vec<ConditionInput>,
    ai_model: String,
    ai_confidence: Option<f64>,
    prompt_version: String,
    force: bool,
}

/// `analysis:storeGeneratedConditions` (internal): stores the AI's conditions (evidence that does
/// not quote the narrative dropped) as a new revision; the first list is also kept as the original.
fn store(ctx: &mut MutationCtx<'_>, args: StoreArgs) -> FnResult<Vec<Condition>> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    require_editor(&mut ctx.db, &scope, &analysis, &viewer)?;
    // Checked again: an edit may have been saved while the AI was answering.
    require_no_edits(analysis.row.status, args.force)?;
    let texts = phase_texts(&mut ctx.db, &scope, &incident.id)?;
    let conditions = complete(args.conditions, &texts, Source::Ai, Ungrounded::Drop)?;
    let mut row = analysis.row.clone();
    if row.conditions_original.is_none() {
        row.conditions_original = Some(conditions.clone());
    }
    row.conditions = conditions.clone();
    row.conditions_markdown = markdown(&conditions);
    row.status = AnalysisState::AiGenerated;
    row.ai_model = Some(args.ai_model);
    row.ai_confidence = args.ai_confidence.map(|c| c.clamp(0.0, 1.0));
    row.prompt_version = Some(args.prompt_version);
    row.revision += 1.0;
    row.updated_at = now;
    super::replace(&mut ctx.db, &scope, &analysis.id, &row)?;
    let revision = RevisionRow {
        analysis_id: analysis.id.get(),
        incident_id: incident.id,
        company_id: incident.row.company_id,
        revision: row.revision,
        conditions: conditions.clone(),
        edited_by: viewer.user_id,
        edited_at: now,
        edit_time_ms: 0.0,
    };
    super::insert(&mut ctx.db, &scope, REVISIONS, &revision)?;
    Ok(conditions)
}

/// The AI's conditions and confidence from its JSON reply.
fn read_reply(reply: &Json) -> Result<(Vec<ConditionInput>, Option<f64>), String> {
    let list = reply::list(reply, "conditions")?;
    let confidence = reply.get("confidence").and_then(Json::as_f64);
    let conditions = list
        .iter()
        .map(|c| ConditionInput {
            id: None,
            kind: ConditionType::parse(&text(c, "type")).unwrap_or(ConditionType::Other),
            title: text(c, "title"),
            description: Some(text(c, "description")),
            severity: Severity::parse(&text(c, "severity")).unwrap_or(Severity::Medium),
            is_modifiable: c.get("is_modifiable").and_then(Json::as_bool),
            recommended_actions: Some(strings(c, "recommended_actions")),
            status: None,
            evidence: Some(reply::evidence(c)),
            source: Some(Source::Ai),
        })
        .collect();
    Ok((conditions, confidence))
}

#[derive(Serialize, Typed)]
pub struct Generated {
    success: bool,
    conditions: Vec<Condition>,
    ai_model: String,
    offline: bool,
    error_code: Option<String>,
    error: Option<String>,
}

/// `analysis:generateContributingConditions`: `{success, conditions, ai_model, offline,
/// error_code?, error?}`. When the AI fails, nothing stored changes and the current conditions
/// come back with the error code.
async fn generate(ctx: ActionCtx, args: GenerateArgs, ai: AiService) -> FnResult<Generated> {
    let prepared = ctx.run_query(PREPARE, &args).await?;
    let check: crate::ai_service::JsonCheck = Arc::new(|reply| read_reply(reply).map(|_| ()));
    let call = prepared
        .request
        .call(PROMPT, &args.incident_id)
        .checked(check);
    let outcome = match ai.generate(&ctx, call).await {
        Ok(outcome) => outcome,
        Err(failure) => {
            tracing::warn!(request_id = %ctx.request_id, code = %failure.code, "contributing conditions could not be generated; nothing was changed");
            return Ok(Generated {
                success: false,
                conditions: current(&ctx, &args).await?,
                ai_model: String::new(),
                offline: ai.is_offline(),
                error_code: Some(failure.code.clone()),
                error: Some(failure.error.client_message(ctx.request_id.as_str())),
            });
        }
    };
    let (conditions, confidence) = outcome
        .json
        .as_ref()
        .map(read_reply)
        .transpose()
        .map_err(FunctionError::internal)?
        .unwrap_or_default();
    let store_args = StoreArgs {
        incident_id: args.incident_id.clone(),
        conditions,
        ai_model: outcome.model.clone(),
        ai_confidence: confidence,
        prompt_version: outcome.prompt_version.clone(),
        force: args.force == Some(true),
    };
    let conditions = ctx.run_mutation(STORE, &store_args).await?;
    Ok(Generated {
        success: true,
        conditions,
        ai_model: outcome.model,
        offline: outcome.offline,
        error_code: None,
        error: None,
    })
}

const CURRENT: FunctionRef<super::ByIncident, Vec<Condition>> =
    FunctionRef::internal_query("analysis:currentConditions");

async fn current(ctx: &ActionCtx, args: &GenerateArgs) -> FnResult<Vec<Condition>> {
    let by = super::ByIncident {
        incident_id: args.incident_id.clone(),
    };
    ctx.run_query(CURRENT, &by).await
}

fn current_conditions(ctx: &mut QueryCtx<'_>, args: super::ByIncident) -> FnResult<Vec<Condition>> {
    let now = ctx.now_ms();
    let (_, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    Ok(super::find_analysis(&mut ctx.db, &scope, &incident.id)?
        .map(|a| a.row.conditions)
        .unwrap_or_default())
}

pub fn register_current(r: &mut Registry) {
    r.internal_query(CURRENT, current_conditions);
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    conditions: Vec<ConditionInput>,
    expected_revision: f64,
    edit_time_ms: Option<f64>,
}

#[derive(Serialize, Typed)]
pub struct Updated {
    success: bool,
    revision: f64,
    conditions: Vec<Condition>,
}

/// `analysis:updateContributingConditions`: saves the analyst's conditions as the next revision.
/// `CONFLICT` when `expected_revision` is not the current one (someone saved in between).
fn update(ctx: &mut MutationCtx<'_>, args: UpdateArgs) -> FnResult<Updated> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    require_editor(&mut ctx.db, &scope, &analysis, &viewer)?;
    if args.expected_revision != analysis.row.revision {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "expected_revision",
            format!(
                "The conditions were saved by someone else since you loaded them (revision {} is \
                 current, you edited revision {}); reload them and apply your changes again",
                analysis.row.revision, args.expected_revision
            ),
        ));
    }
    let texts = phase_texts(&mut ctx.db, &scope, &incident.id)?;
    let conditions = complete(args.conditions, &texts, Source::User, Ungrounded::Refuse)?;
    let edit_time = args
        .edit_time_ms
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(0.0)
        .min(24.0 * 3_600_000.0);
    let mut row = analysis.row.clone();
    row.conditions = conditions.clone();
    row.conditions_markdown = markdown(&conditions);
    row.status = AnalysisState::UserReviewed;
    row.revision += 1.0;
    row.total_edit_time_ms += edit_time;
    row.updated_at = now;
    super::replace(&mut ctx.db, &scope, &analysis.id, &row)?;
    let revision = RevisionRow {
        analysis_id: analysis.id.get(),
        incident_id: incident.id,
        company_id: incident.row.company_id,
        revision: row.revision,
        conditions: conditions.clone(),
        edited_by: viewer.user_id,
        edited_at: now,
        edit_time_ms: edit_time,
    };
    super::insert(&mut ctx.db, &scope, REVISIONS, &revision)?;
    Ok(Updated {
        success: true,
        revision: row.revision,
        conditions,
    })
}

/// `analysis:listRevisions`: every saved version of the conditions, newest first.
fn list_revisions(ctx: &mut QueryCtx<'_>, args: super::ByIncident) -> FnResult<Vec<RevisionDoc>> {
    let now = ctx.now_ms();
    let (_, scope, incident) = super::read::reader(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    revisions(&mut ctx.db, &scope, &incident.id)
}

pub(crate) fn revisions(
    db: &mut impl functions::DbRead,
    scope: &functions::Scope,
    incident: &values::DocumentId,
) -> FnResult<Vec<RevisionDoc>> {
    db.read_scoped(scope)
        .query(REVISIONS, "by_company_incident_revision", |q| {
            q.eq("incident_id", incident.encode())
        })?
        .order(store::Order::Desc)
        .collect()?
        .iter()
        .map(functions::row)
        .collect()
}
