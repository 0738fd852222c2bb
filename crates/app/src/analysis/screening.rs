//! Reportable-incident screening and the NDIS Commission notification clock. The AI screens the
//! record against the six categories (`screenReportable`, prompt `screen_reportable_incident`); a
//! person decides (`decideReportable`), which for a reportable incident sets the deadline
//! (`deadline`) and schedules reminders through the durable scheduler, once each at 50%, 75% and
//! 90% of the window and when overdue. Recording the immediate notification
//! (`recordCommissionNotification`) or deciding `not_reportable` cancels the ones to come.

use std::sync::Arc;

use functions::{
    ActionCtx, DbRead, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, QueryCtx,
    Registry, Scope,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use values::{DocumentId, Typed};

use super::deadline::{self, HOUR_MS};
use super::model::{
    AiScreening, CommissionForm, CommissionNotification, Decision, Evidence, ReportableCategory,
    ScreeningDoc, ScreeningRow, SCREENINGS,
};
use super::{analyst, phase_texts, quote_occurs, record_variables, require_submitted, Prepared};
use crate::ai_service::AiService;
use crate::audit::{self, Entry, Event};
use crate::clarification::AiRequest;
use crate::incidents::record::Incident;
use crate::notifications::{self, Kind, Note, ANALYSTS};

pub const PROMPT: &str = "screen_reportable_incident";

const PREPARE: FunctionRef<super::ByIncident, Prepared> =
    FunctionRef::internal_query("analysis:prepareScreening");
const STORE: FunctionRef<StoreArgs, AiScreening> =
    FunctionRef::internal_mutation("analysis:storeScreening");
/// One reminder of a running clock (scheduled).
pub const REMIND: FunctionRef<ReminderArgs, Reminded> =
    FunctionRef::internal_mutation("analysis:sendReportableReminder");

pub fn register(r: &mut Registry, ai: &AiService, app_base: &str) {
    r.internal_query(PREPARE, prepare);
    r.internal_mutation(STORE, store);
    let service = ai.clone();
    r.action("analysis:screenReportable", move |ctx, args| {
        let ai = service.clone();
        async move { screen(ctx, args, ai).await }
    });
    r.mutation("analysis:decideReportable", decide);
    r.mutation("analysis:recordCommissionNotification", record_notification);
    r.query("analysis:listReportableDeadlines", list_deadlines);
    let base = app_base.to_string();
    r.internal_mutation(REMIND, move |ctx, args| remind(ctx, args, &base));
}

/// The screening of `incident`, if any.
pub(crate) fn find(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<Option<ScreeningDoc>> {
    db.read_scoped(scope)
        .query(SCREENINGS, "by_company_incident", |q| {
            q.eq("incident_id", incident.encode())
        })?
        .first()?
        .map(|doc| functions::row(&doc))
        .transpose()
}

/// A screening not yet decided: aware since the incident was recorded.
fn fresh(incident: &Incident) -> ScreeningRow {
    ScreeningRow {
        incident_id: incident.id,
        company_id: incident.row.company_id,
        ai_suggestion: None,
        decision: Decision::Pending,
        categories: Vec::new(),
        harm_caused: false,
        rationale: String::new(),
        decided_by: None,
        decided_at: None,
        aware_at: incident.row.created_at,
        due_at: None,
        notifications: Vec::new(),
        reminder_ids: Vec::new(),
        reminders_sent: Vec::new(),
    }
}

/// Writes `row` as the incident's screening (creating it the first time).
fn save(
    db: &mut functions::DbWriter<'_>,
    scope: &Scope,
    existing: Option<&ScreeningDoc>,
    row: &ScreeningRow,
) -> FnResult<DocumentId> {
    match existing {
        Some(doc) => {
            super::replace(db, scope, &doc.id.get(), row)?;
            Ok(doc.id.get())
        }
        None => super::insert(db, scope, SCREENINGS, row),
    }
}

fn read_back(db: &mut impl DbRead, scope: &Scope, id: &DocumentId) -> FnResult<ScreeningDoc> {
    let doc = db
        .read_scoped(scope)
        .get(id)?
        .ok_or_else(|| FunctionError::internal("a saved screening reads back"))?;
    functions::row(&doc)
}

/// The analyst's request: anyone with `perform_analysis`, once the incident was submitted.
fn prepare(ctx: &mut QueryCtx<'_>, args: super::ByIncident) -> FnResult<Prepared> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    require_submitted(&incident)?;
    let vars = record_variables(&mut ctx.db, &scope, &incident)?;
    Ok(Prepared {
        request: AiRequest::new(&viewer, vars),
    })
}

/// The AI's screening from its JSON reply (evidence not yet checked).
#[derive(Clone, Serialize, Deserialize, Typed)]
pub struct Suggested {
    categories: Vec<ReportableCategory>,
    harm_caused: bool,
    rationale: String,
    evidence: Vec<Evidence>,
}

fn read_reply(reply: &Json) -> Result<Suggested, String> {
    let fields = reply.as_object().ok_or("the reply is not a JSON object")?;
    let categories = fields
        .get("categories")
        .and_then(Json::as_array)
        .ok_or("the reply has no \"categories\" list")?
        .iter()
        .filter_map(Json::as_str)
        .filter_map(ReportableCategory::parse)
        .collect();
    let evidence = super::reply::evidence(reply);
    Ok(Suggested {
        categories,
        harm_caused: fields
            .get("harm_caused")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        rationale: fields
            .get("rationale")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .trim()
            .to_string(),
        evidence,
    })
}

#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct StoreArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    suggestion: Suggested,
    model: String,
}

/// `analysis:storeScreening` (internal): keeps the AI's screening beside the decision (evidence
/// that does not quote the narrative is dropped). The decision itself is not touched.
fn store(ctx: &mut MutationCtx<'_>, args: StoreArgs) -> FnResult<AiScreening> {
    let now = ctx.now_ms();
    let (_, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    require_submitted(&incident)?;
    let texts = phase_texts(&mut ctx.db, &scope, &incident.id)?;
    let mut categories = args.suggestion.categories;
    categories.sort();
    categories.dedup();
    let suggestion = AiScreening {
        categories,
        harm_caused: args.suggestion.harm_caused,
        rationale: args.suggestion.rationale,
        evidence: args
            .suggestion
            .evidence
            .into_iter()
            .filter(|e| quote_occurs(&texts, e.phase, &e.quote))
            .collect(),
        model: args.model,
        at: now,
    };
    let existing = find(&mut ctx.db, &scope, &incident.id)?;
    let mut row = existing
        .as_ref()
        .map_or_else(|| fresh(&incident), |d| d.row.clone());
    row.ai_suggestion = Some(suggestion.clone());
    save(&mut ctx.db, &scope, existing.as_ref(), &row)?;
    Ok(suggestion)
}

#[derive(Serialize, Typed)]
pub struct Screened {
    success: bool,
    suggestion: Option<AiScreening>,
    ai_model: String,
    offline: bool,
    error_code: Option<String>,
    error: Option<String>,
}

/// `analysis:screenReportable`: the AI's screening against the six categories, with its reasons
/// and evidence; a person still decides. `{success, suggestion?, ai_model, offline, error_code?,
/// error?}`.
async fn screen(ctx: ActionCtx, args: super::ByIncident, ai: AiService) -> FnResult<Screened> {
    let prepared = ctx.run_query(PREPARE, &args).await?;
    let check: crate::ai_service::JsonCheck = Arc::new(|reply| read_reply(reply).map(|_| ()));
    let call = prepared
        .request
        .call(PROMPT, &args.incident_id)
        .checked(check);
    match ai.generate(&ctx, call).await {
        Ok(outcome) => {
            let reply = outcome.json.as_ref().ok_or_else(|| {
                FunctionError::internal("the screening prompt answered without JSON")
            })?;
            let suggestion = read_reply(reply).map_err(FunctionError::internal)?;
            let store_args = StoreArgs {
                incident_id: args.incident_id.clone(),
                suggestion,
                model: outcome.model.clone(),
            };
            let stored = ctx.run_mutation(STORE, &store_args).await?;
            Ok(Screened {
                success: true,
                suggestion: Some(stored),
                ai_model: outcome.model,
                offline: outcome.offline,
                error_code: None,
                error: None,
            })
        }
        Err(failure) => Ok(Screened {
            success: false,
            suggestion: None,
            ai_model: String::new(),
            offline: ai.is_offline(),
            error_code: Some(failure.code.clone()),
            error: Some(failure.error.client_message(ctx.request_id.as_str())),
        }),
    }
}

#[derive(Clone, Serialize, Deserialize, Typed)]
pub struct ReminderArgs {
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    /// `50`, `75`, `90` or `overdue`.
    pub point: String,
    /// The deadline the reminder was scheduled for (a changed deadline makes it stale).
    pub due_at: f64,
}

#[derive(Clone, Serialize, Deserialize, Typed)]
pub struct Reminded {
    pub sent: bool,
    pub delivered: usize,
}

/// Cancels the reminders still to come.
fn cancel_reminders(ctx: &mut MutationCtx<'_>, row: &mut ScreeningRow) -> FnResult<()> {
    for id in std::mem::take(&mut row.reminder_ids) {
        if let Ok(id) = id.parse::<DocumentId>() {
            ctx.scheduler().cancel(&id)?;
        }
    }
    Ok(())
}

/// Schedules the reminder points still ahead of `now` (the overdue one at once when the deadline
/// has passed and it was not sent).
fn schedule_reminders(ctx: &mut MutationCtx<'_>, row: &mut ScreeningRow) -> FnResult<()> {
    let now = ctx.now_ms();
    let Some(due_at) = row.due_at else {
        return Ok(());
    };
    for (point, at) in deadline::reminder_times(row.aware_at, due_at) {
        let last = point == "overdue";
        if row.reminders_sent.iter().any(|p| p == point) || (at <= now && !last) {
            continue;
        }
        let args = ReminderArgs {
            company_id: row.company_id,
            incident_id: row.incident_id,
            point: point.to_string(),
            due_at,
        };
        let id = ctx.scheduler().run_at(at, REMIND, &args)?;
        row.reminder_ids.push(id.encode());
    }
    Ok(())
}

fn hours(ms: f64) -> String {
    let h = (ms / HOUR_MS).round().max(0.0);
    if h == 1.0 {
        "1 hour".to_string()
    } else {
        format!("{h} hours")
    }
}

/// `analysis:sendReportableReminder` (scheduled): tells the team leads and company administrators
/// how long is left, unless the clock stopped, the deadline moved or the point was already sent.
fn remind(ctx: &mut MutationCtx<'_>, args: ReminderArgs, app_base: &str) -> FnResult<Reminded> {
    let now = ctx.now_ms();
    let scope = Scope::company(args.company_id);
    let skip = Reminded {
        sent: false,
        delivered: 0,
    };
    let Some(screening) = find(&mut ctx.db, &scope, &args.incident_id)? else {
        return Ok(skip);
    };
    let mut row = screening.row.clone();
    let stale = row.due_at != Some(args.due_at);
    if !row.clock_running() || stale || row.reminders_sent.contains(&args.point) {
        return Ok(skip);
    }
    let Some(doc) = ctx
        .db
        .scoped(&scope)
        .get_in(crate::incidents::TABLE, &args.incident_id.encode())?
    else {
        return Ok(skip);
    };
    let incident = Incident::from_doc(doc)?;
    let when = if args.point == "overdue" {
        "is overdue".to_string()
    } else {
        format!("is due in {}", hours(args.due_at - now))
    };
    let note = Note {
        kind: Kind::ReportableDeadline,
        incident_id: Some(incident.id),
        title: format!(
            "Reportable incident: NDIS Commission notification {when} ({})",
            incident.row.participant_name
        ),
        body: format!(
            "The immediate notification to the NDIS Commission about the incident involving {} \
             ({}) {when}. Record it in SupportSignal once submitted.",
            incident.row.participant_name, incident.row.event_date_time
        ),
        link: super::link(&incident.id),
    };
    let people = crate::users::rows::with_roles(&mut ctx.db, &scope, &ANALYSTS)?;
    let delivered =
        notifications::notify(ctx, &scope, &args.company_id, &people, &note, app_base, now)?;
    row.reminders_sent.push(args.point.clone());
    super::replace(&mut ctx.db, &scope, &screening.id.get(), &row)?;
    Ok(Reminded {
        sent: true,
        delivered,
    })
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct DecideArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    decision: Decision,
    categories: Vec<ReportableCategory>,
    harm_caused: bool,
    rationale: String,
    aware_at: Option<f64>,
    aware_at_reason: Option<String>,
}

/// `analysis:decideReportable`: a person's decision (team lead or company administrator).
/// Reportable needs at least one category and starts the clock from `aware_at` (when the provider
/// became aware; by default when the incident was recorded, and changing it needs a reason);
/// not reportable stops it. Audited.
fn decide(ctx: &mut MutationCtx<'_>, args: DecideArgs) -> FnResult<ScreeningDoc> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    require_submitted(&incident)?;
    let rationale = super::required_text("rationale", &args.rationale, 4000)?;
    let mut categories = args.categories;
    categories.sort();
    categories.dedup();
    match args.decision {
        Decision::Pending => {
            return Err(FunctionError::validation(
                "decision",
                "decision must be reportable or not_reportable",
            ))
        }
        Decision::Reportable if categories.is_empty() => {
            return Err(FunctionError::validation(
                "categories",
                "A reportable incident needs at least one category",
            ))
        }
        Decision::Reportable => {}
        Decision::NotReportable => categories.clear(),
    }
    let existing = find(&mut ctx.db, &scope, &incident.id)?;
    let mut row = existing
        .as_ref()
        .map_or_else(|| fresh(&incident), |d| d.row.clone());
    let mut aware_change = None;
    if let Some(aware_at) = args.aware_at.filter(|a| *a != row.aware_at) {
        if !aware_at.is_finite() || aware_at > now + 60_000.0 || aware_at < 0.0 {
            return Err(FunctionError::validation(
                "aware_at",
                "aware_at must be a time (ms) that is not in the future",
            ));
        }
        let reason = args
            .aware_at_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                FunctionError::validation(
                    "aware_at_reason",
                    "Changing when the provider became aware needs a reason",
                )
            })?;
        aware_change = Some((row.aware_at, reason.chars().take(500).collect::<String>()));
        row.aware_at = aware_at;
    }
    cancel_reminders(ctx, &mut row)?;
    let due_changes = |row: &ScreeningRow, due: Option<f64>| row.due_at != due;
    let due = (args.decision == Decision::Reportable)
        .then(|| deadline::due_at(row.aware_at, &categories, args.harm_caused));
    if due_changes(&row, due) {
        // A new deadline has its own reminder points.
        row.reminders_sent.clear();
    }
    row.decision = args.decision;
    row.categories = categories;
    row.harm_caused = args.harm_caused;
    row.rationale = rationale;
    row.decided_by = Some(viewer.user_id);
    row.decided_at = Some(now);
    row.due_at = due;
    if row.clock_running() {
        schedule_reminders(ctx, &mut row)?;
    }
    let id = save(&mut ctx.db, &scope, existing.as_ref(), &row)?;
    let cats = row
        .categories
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let due_text = row.due_at.map(|d| d.to_string()).unwrap_or_default();
    let mut details = vec![
        ("decision", row.decision.as_str()),
        ("categories", cats.as_str()),
        ("due_at", due_text.as_str()),
    ];
    let previous_aware;
    if let Some((previous, reason)) = &aware_change {
        previous_aware = previous.to_string();
        details.push(("previous_aware_at", previous_aware.as_str()));
        details.push(("aware_at_reason", reason.as_str()));
    }
    details.retain(|(_, v)| !v.is_empty());
    let entry = Entry {
        event: Event::ReportableDecided,
        actor: Some(&viewer.user_id),
        target: Some(incident.id.encode()),
        company: Some(&incident.row.company_id),
        details: &details,
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    read_back(&mut ctx.db, &scope, &id)
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct RecordArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    form: CommissionForm,
    submitted_at: f64,
    reference: String,
}

/// `analysis:recordCommissionNotification`: records a form submitted to the Commission with its
/// reference number; the immediate notification stops the clock and its reminders. Audited.
fn record_notification(ctx: &mut MutationCtx<'_>, args: RecordArgs) -> FnResult<ScreeningDoc> {
    let now = ctx.now_ms();
    let (viewer, scope, incident) = analyst(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let reference = super::required_text("reference", &args.reference, 100)?;
    if !args.submitted_at.is_finite() || args.submitted_at > now + 60_000.0 {
        return Err(FunctionError::validation(
            "submitted_at",
            "submitted_at must be a time (ms) that is not in the future",
        ));
    }
    let screening = find(&mut ctx.db, &scope, &incident.id)?
        .filter(|s| s.row.decision == Decision::Reportable)
        .ok_or_else(|| {
            FunctionError::field(
                ErrorCode::Conflict,
                "decision",
                "Only an incident decided reportable is notified to the Commission",
            )
        })?;
    let mut row = screening.row.clone();
    row.notifications.push(CommissionNotification {
        form: args.form,
        submitted_at: args.submitted_at,
        reference: reference.clone(),
        recorded_by: viewer.user_id,
    });
    if args.form == CommissionForm::Immediate {
        cancel_reminders(ctx, &mut row)?;
    }
    super::replace(&mut ctx.db, &scope, &screening.id.get(), &row)?;
    let details = [
        ("form", args.form.as_str()),
        ("reference", reference.as_str()),
    ];
    let entry = Entry {
        event: Event::CommissionNotified,
        actor: Some(&viewer.user_id),
        target: Some(incident.id.encode()),
        company: Some(&incident.row.company_id),
        details: &details,
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    read_back(&mut ctx.db, &scope, &screening.id.get())
}

/// The screenings of the company with a running clock, soonest deadline first.
pub(crate) fn open_clocks(db: &mut impl DbRead, scope: &Scope) -> FnResult<Vec<ScreeningDoc>> {
    let docs: Vec<ScreeningDoc> = db
        .read_scoped(scope)
        .query(SCREENINGS, "by_company_decision_due", |q| {
            q.eq("decision", Decision::Reportable.as_str())
        })?
        .collect()?
        .iter()
        .map(functions::row)
        .collect::<FnResult<_>>()?;
    Ok(docs.into_iter().filter(|d| d.row.clock_running()).collect())
}

#[derive(Serialize, Typed)]
pub struct OpenClock {
    #[typed(id = "incidents")]
    incident_id: DocumentId,
    participant_name: String,
    categories: Vec<ReportableCategory>,
    aware_at: f64,
    due_at: f64,
    overdue: bool,
    reminders_sent: Vec<String>,
}

/// `analysis:listReportableDeadlines`: the company's running clocks, soonest first (live).
fn list_deadlines(
    ctx: &mut QueryCtx<'_>,
    _args: crate::args::SessionArgs,
) -> FnResult<Vec<OpenClock>> {
    let now = ctx.now_ms();
    let viewer = crate::identity::require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        crate::identity::Permission::PerformAnalysis,
    )?;
    let scope = viewer.company_scope()?;
    let mut out = Vec::new();
    for clock in open_clocks(&mut ctx.db, &scope)? {
        let Some(due_at) = clock.row.due_at else {
            continue;
        };
        let name =
            crate::incidents::record::load(&mut ctx.db, &scope, &clock.row.incident_id.encode())
                .map(|i| i.row.participant_name)
                .unwrap_or_default();
        out.push(OpenClock {
            incident_id: clock.row.incident_id,
            participant_name: name,
            categories: clock.row.categories.clone(),
            aware_at: clock.row.aware_at,
            due_at,
            overdue: due_at <= now,
            reminders_sent: clock.row.reminders_sent.clone(),
        });
    }
    Ok(out)
}
