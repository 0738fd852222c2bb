//! Classification: the AI suggests one primary and any secondary classifications
//! (`generateClassifications`, prompt `classify_incident`); the analyst accepts, modifies, removes
//! or adds them (`saveClassification`, `removeClassification`). The AI's suggestion is kept beside
//! each reviewed one.

use std::sync::Arc;

use functions::{
    ActionCtx, DbRead, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, QueryCtx,
    Registry, Scope,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use values::{DocumentId, Typed};

use super::model::{
    ClassificationDoc, ClassificationFacts, ClassificationRow, IncidentType, Rank, RiskLevel,
    Severity, CLASSIFICATIONS,
};
use super::reply::{self, strings, text};
use super::{analyst, prepare_ai, require_editor, started, ByIncident, Prepared};
use crate::ai_service::AiService;

pub const PROMPT: &str = "classify_incident";

const PREPARE: FunctionRef<ByIncident, Prepared> =
    FunctionRef::internal_query("analysis:prepareClassification");
const STORE: FunctionRef<StoreArgs, Vec<ClassificationDoc>> =
    FunctionRef::internal_mutation("analysis:storeSuggestedClassifications");
const MAX_ITEMS: usize = 20;

pub fn register(r: &mut Registry, ai: &AiService) {
    r.internal_query(PREPARE, prepare);
    r.internal_mutation(STORE, store);
    let service = ai.clone();
    r.action("analysis:generateClassifications", move |ctx, args| {
        let ai = service.clone();
        async move { generate(ctx, args, ai).await }
    });
    r.mutation("analysis:saveClassification", save);
    r.mutation("analysis:removeClassification", remove);
}

/// The classifications of `incident`, by id.
pub(crate) fn of_incident(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<Vec<ClassificationDoc>> {
    db.read_scoped(scope)
        .query(CLASSIFICATIONS, "by_company_incident", |q| {
            q.eq("incident_id", incident.encode())
        })?
        .collect()?
        .iter()
        .map(functions::row)
        .collect()
}

fn next_id(existing: &[ClassificationDoc]) -> u32 {
    existing
        .iter()
        .filter_map(|c| {
            c.row
                .classification_id
                .strip_prefix("cls_")?
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0)
        + 1
}

fn prepare(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<Prepared> {
    let now = ctx.now_ms();
    let (_, _, _, _, request) = prepare_ai(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    Ok(Prepared { request })
}

#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct StoreArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    suggestions: Vec<ClassificationFacts>,
}

/// `analysis:storeSuggestedClassifications` (internal): replaces the suggestions nobody reviewed
/// yet with the new ones; reviewed classifications stay.
fn store(ctx: &mut MutationCtx<'_>, args: StoreArgs) -> FnResult<Vec<ClassificationDoc>> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    require_editor(&mut ctx.db, &scope, &analysis, &viewer)?;
    let existing = of_incident(&mut ctx.db, &scope, &incident.id)?;
    let mut n = next_id(&existing);
    for old in existing.iter().filter(|c| !c.row.user_reviewed) {
        ctx.db.scoped(&scope).delete(&old.id.get())?;
    }
    for facts in args.suggestions.into_iter().take(MAX_ITEMS) {
        let row = ClassificationRow {
            incident_id: incident.id,
            analysis_id: analysis.id.get(),
            company_id: incident.row.company_id,
            classification_id: format!("cls_{n}"),
            facts: facts.clone(),
            ai_generated: true,
            original_ai_classification: Some(facts),
            user_reviewed: false,
            user_modified: false,
            review_notes: None,
            reviewed_by: None,
            reviewed_at: None,
            created_at: now,
            updated_at: now,
        };
        super::insert(&mut ctx.db, &scope, CLASSIFICATIONS, &row)?;
        n += 1;
    }
    of_incident(&mut ctx.db, &scope, &incident.id)
}

/// The AI's classifications from its JSON reply (at most one primary: later ones become
/// secondary).
fn read_reply(reply: &Json) -> Result<Vec<ClassificationFacts>, String> {
    let list = reply::list(reply, "classifications")?;
    let mut primary_seen = false;
    Ok(list
        .iter()
        .map(|c| {
            let mut rank = Rank::parse(&text(c, "rank")).unwrap_or(Rank::Secondary);
            if rank == Rank::Primary && primary_seen {
                rank = Rank::Secondary;
            }
            primary_seen |= rank == Rank::Primary;
            ClassificationFacts {
                rank,
                incident_type: IncidentType::parse(&text(c, "incident_type"))
                    .unwrap_or(IncidentType::Other),
                severity: Severity::parse(&text(c, "severity")).unwrap_or(Severity::Medium),
                risk_level: RiskLevel::parse(&text(c, "risk_level")).unwrap_or(RiskLevel::Moderate),
                confidence: c
                    .get("confidence")
                    .and_then(Json::as_f64)
                    .unwrap_or(50.0)
                    .clamp(0.0, 100.0),
                supporting_evidence: strings(c, "supporting_evidence"),
                recommended_actions: strings(c, "recommended_actions"),
            }
        })
        .collect())
}

#[derive(Serialize, Typed)]
pub struct Generated {
    success: bool,
    classifications: Vec<ClassificationDoc>,
    ai_model: String,
    offline: bool,
    error_code: Option<String>,
    error: Option<String>,
}

/// `analysis:generateClassifications`: the AI's suggestions, stored unreviewed beside any reviewed
/// ones; `{success, classifications, ai_model, offline, error_code?, error?}`. When the AI fails,
/// nothing changes.
async fn generate(ctx: ActionCtx, args: ByIncident, ai: AiService) -> FnResult<Generated> {
    let prepared = ctx.run_query(PREPARE, &args).await?;
    let check: crate::ai_service::JsonCheck = Arc::new(|reply| read_reply(reply).map(|_| ()));
    let call = prepared
        .request
        .call(PROMPT, &args.incident_id)
        .checked(check);
    match ai.generate(&ctx, call).await {
        Ok(outcome) => {
            let suggestions = outcome
                .json
                .as_ref()
                .map(read_reply)
                .transpose()
                .map_err(FunctionError::internal)?
                .unwrap_or_default();
            let store_args = StoreArgs {
                incident_id: args.incident_id.clone(),
                suggestions,
            };
            let classifications = ctx.run_mutation(STORE, &store_args).await?;
            Ok(Generated {
                success: true,
                classifications,
                ai_model: outcome.model,
                offline: outcome.offline,
                error_code: None,
                error: None,
            })
        }
        Err(failure) => Ok(Generated {
            success: false,
            classifications: Vec::new(),
            ai_model: String::new(),
            offline: ai.is_offline(),
            error_code: Some(failure.code.clone()),
            error: Some(failure.error.client_message(ctx.request_id.as_str())),
        }),
    }
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct SaveArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    classification_id: Option<String>,
    rank: Rank,
    incident_type: IncidentType,
    severity: Severity,
    risk_level: RiskLevel,
    supporting_evidence: Vec<String>,
    recommended_actions: Vec<String>,
    review_notes: Option<String>,
    confidence: Option<f64>,
}

fn not_found() -> FunctionError {
    FunctionError::field(
        ErrorCode::NotFound,
        "classification_id",
        "Classification not found",
    )
}

fn clean(items: Vec<String>, field: &str) -> FnResult<Vec<String>> {
    let items: Vec<String> = items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if items.len() > MAX_ITEMS || items.iter().any(|s| s.chars().count() > 1000) {
        return Err(FunctionError::validation(
            field,
            format!("At most {MAX_ITEMS} items of at most 1000 characters"),
        ));
    }
    Ok(items)
}

/// `analysis:saveClassification`: adds a classification (no `classification_id`) or changes one;
/// either way it is reviewed by the caller, and modified when it differs from the AI's suggestion.
fn save(ctx: &mut MutationCtx<'_>, args: SaveArgs) -> FnResult<ClassificationDoc> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    require_editor(&mut ctx.db, &scope, &analysis, &viewer)?;
    let existing = of_incident(&mut ctx.db, &scope, &incident.id)?;
    let current = match &args.classification_id {
        Some(id) => Some(
            existing
                .iter()
                .find(|c| c.row.classification_id == *id)
                .cloned()
                .ok_or_else(not_found)?,
        ),
        None => None,
    };
    let notes = args
        .review_notes
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if notes.as_ref().is_some_and(|n| n.chars().count() > 4000) {
        return Err(FunctionError::validation(
            "review_notes",
            "Review notes may be at most 4000 characters",
        ));
    }
    let facts = ClassificationFacts {
        rank: args.rank,
        incident_type: args.incident_type,
        severity: args.severity,
        risk_level: args.risk_level,
        confidence: args
            .confidence
            .or(current.as_ref().map(|c| c.row.facts.confidence))
            .unwrap_or(100.0)
            .clamp(0.0, 100.0),
        supporting_evidence: clean(args.supporting_evidence, "supporting_evidence")?,
        recommended_actions: clean(args.recommended_actions, "recommended_actions")?,
    };
    let id = match current {
        Some(doc) => {
            let mut row = doc.row.clone();
            row.user_modified = row
                .original_ai_classification
                .as_ref()
                .is_some_and(|original| *original != facts);
            row.facts = facts;
            row.user_reviewed = true;
            row.review_notes = notes;
            row.reviewed_by = Some(viewer.user_id);
            row.reviewed_at = Some(now);
            row.updated_at = now;
            super::replace(&mut ctx.db, &scope, &doc.id.get(), &row)?;
            doc.id.get()
        }
        None => {
            let row = ClassificationRow {
                incident_id: incident.id,
                analysis_id: analysis.id.get(),
                company_id: incident.row.company_id,
                classification_id: format!("cls_{}", next_id(&existing)),
                facts,
                ai_generated: false,
                original_ai_classification: None,
                user_reviewed: true,
                user_modified: false,
                review_notes: notes,
                reviewed_by: Some(viewer.user_id),
                reviewed_at: Some(now),
                created_at: now,
                updated_at: now,
            };
            super::insert(&mut ctx.db, &scope, CLASSIFICATIONS, &row)?
        }
    };
    let doc = ctx
        .db
        .scoped(&scope)
        .get(&id)?
        .ok_or_else(|| FunctionError::internal("a saved classification reads back"))?;
    functions::row(&doc)
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct RemoveArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    classification_id: String,
}

#[derive(Serialize, Typed)]
pub struct Removed {
    success: bool,
}

/// `analysis:removeClassification`: removes one (the AI's suggestion goes with it).
fn remove(ctx: &mut MutationCtx<'_>, args: RemoveArgs) -> FnResult<Removed> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let analysis = started(&mut ctx.db, &scope, &incident.id)?;
    require_editor(&mut ctx.db, &scope, &analysis, &viewer)?;
    let doc = of_incident(&mut ctx.db, &scope, &incident.id)?
        .into_iter()
        .find(|c| c.row.classification_id == args.classification_id)
        .ok_or_else(not_found)?;
    ctx.db.scoped(&scope).delete(&doc.id.get())?;
    Ok(Removed { success: true })
}
