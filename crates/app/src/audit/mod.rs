//! The security audit log: a durable, append-only record of sign-ins, failures, lockouts, password
//! resets, role changes, invitations, impersonation, changes to companies (details, status,
//! deletion), AI prompt changes, and deletions and imports of records. Readable by those with
//! `view_audit_logs` (their own company) or `view_security_logs` (every company).

use std::collections::BTreeMap;

use functions::{CrossTenant, DbWriter, FnResult, QueryCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::{Order, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

use crate::identity::{require_permission, Permission, Viewer};

pub const TABLE: &str = "audit_log";

/// What happened. The names are stable: clients filter by them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    SignIn,
    SignInFailed,
    AccountLocked,
    SignOut,
    PasswordChanged,
    PasswordResetRequested,
    PasswordReset,
    UserRegistered,
    UserCreated,
    UserUpdated,
    RoleChanged,
    UserDeleted,
    InvitationSent,
    InvitationAccepted,
    InvitationRevoked,
    ImpersonationStarted,
    ImpersonationEnded,
    /// `impersonation:emergencyTerminateAllSessions`, once per use, with the count it ended.
    ImpersonationEmergencyStop,
    CompanyCreated,
    CompanyStatusChanged,
    CompanyUpdated,
    CompanyDeleted,
    OAuthAccountLinked,
    ParticipantDeleted,
    AiPromptChanged,
    AiPromptGroupChanged,
    IncidentDeleted,
    IncidentImported,
    JobRetried,
    JobCanceled,
    ScheduledFunctionCanceled,
    AnalysisStarted,
    AnalysisTakenOver,
    ReportableDecided,
    CommissionNotified,
    AnalysisCompleted,
    AnalysisReopened,
}

impl Event {
    pub const ALL: [Event; 37] = [
        Event::SignIn,
        Event::SignInFailed,
        Event::AccountLocked,
        Event::SignOut,
        Event::PasswordChanged,
        Event::PasswordResetRequested,
        Event::PasswordReset,
        Event::UserRegistered,
        Event::UserCreated,
        Event::UserUpdated,
        Event::RoleChanged,
        Event::UserDeleted,
        Event::InvitationSent,
        Event::InvitationAccepted,
        Event::InvitationRevoked,
        Event::ImpersonationStarted,
        Event::ImpersonationEnded,
        Event::ImpersonationEmergencyStop,
        Event::CompanyCreated,
        Event::CompanyStatusChanged,
        Event::CompanyUpdated,
        Event::CompanyDeleted,
        Event::OAuthAccountLinked,
        Event::ParticipantDeleted,
        Event::AiPromptChanged,
        Event::AiPromptGroupChanged,
        Event::IncidentDeleted,
        Event::IncidentImported,
        Event::JobRetried,
        Event::JobCanceled,
        Event::ScheduledFunctionCanceled,
        Event::AnalysisStarted,
        Event::AnalysisTakenOver,
        Event::ReportableDecided,
        Event::CommissionNotified,
        Event::AnalysisCompleted,
        Event::AnalysisReopened,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::SignIn => "sign_in",
            Event::SignInFailed => "sign_in_failed",
            Event::AccountLocked => "account_locked",
            Event::SignOut => "sign_out",
            Event::PasswordChanged => "password_changed",
            Event::PasswordResetRequested => "password_reset_requested",
            Event::PasswordReset => "password_reset",
            Event::UserRegistered => "user_registered",
            Event::UserCreated => "user_created",
            Event::UserUpdated => "user_updated",
            Event::RoleChanged => "role_changed",
            Event::UserDeleted => "user_deleted",
            Event::InvitationSent => "invitation_sent",
            Event::InvitationAccepted => "invitation_accepted",
            Event::InvitationRevoked => "invitation_revoked",
            Event::ImpersonationStarted => "impersonation_started",
            Event::ImpersonationEnded => "impersonation_ended",
            Event::ImpersonationEmergencyStop => "impersonation_emergency_stop",
            Event::CompanyCreated => "company_created",
            Event::CompanyStatusChanged => "company_status_changed",
            Event::CompanyUpdated => "company_updated",
            Event::CompanyDeleted => "company_deleted",
            Event::OAuthAccountLinked => "oauth_account_linked",
            Event::ParticipantDeleted => "participant_deleted",
            Event::AiPromptChanged => "ai_prompt_changed",
            Event::AiPromptGroupChanged => "ai_prompt_group_changed",
            Event::IncidentDeleted => "incident_deleted",
            Event::IncidentImported => "incident_imported",
            Event::JobRetried => "job_retried",
            Event::JobCanceled => "job_canceled",
            Event::ScheduledFunctionCanceled => "scheduled_function_canceled",
            Event::AnalysisStarted => "analysis_started",
            Event::AnalysisTakenOver => "analysis_taken_over",
            Event::ReportableDecided => "reportable_decided",
            Event::CommissionNotified => "commission_notified",
            Event::AnalysisCompleted => "analysis_completed",
            Event::AnalysisReopened => "analysis_reopened",
        }
    }
}

fn event_validator() -> Validator {
    v::union(Event::ALL.iter().map(|e| v::literal(e.as_str())).collect())
}

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(TABLE)
        .field("event", event_validator())
        .field("at", v::number())
        .optional("actor_id", v::id("users"))
        // The administrator who acted while impersonating `actor_id`, so the log names both.
        .optional("impersonated_by", v::id("users"))
        .optional("target_id", v::string())
        .optional("company_id", v::id("companies"))
        .field("correlation_id", v::string())
        // Small, non-secret facts (the email tried, the new role, the reason given).
        .optional("details", v::record(v::string(), v::string()))
        .index("by_company_time", &["company_id", "at"])
        .index("by_event_time", &["event", "at"])
        .index("by_time", &["at"])
        .tenant("company_id")]
}

/// A document of the audit log, as stored and as readers see it.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "audit_log")]
pub struct AuditDoc {
    #[serde(rename = "_id")]
    pub id: Id<AuditDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(validator = event_validator())]
    pub event: String,
    pub at: f64,
    #[typed(id = "users")]
    pub actor_id: Option<String>,
    #[typed(id = "users")]
    pub impersonated_by: Option<String>,
    pub target_id: Option<String>,
    #[typed(id = "companies")]
    pub company_id: Option<String>,
    pub correlation_id: String,
    pub details: Option<BTreeMap<String, String>>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, AuditDoc::validator())]
}

/// One entry. `details` must never hold secrets (passwords, tokens).
pub struct Entry<'a> {
    pub event: Event,
    pub actor: Option<&'a DocumentId>,
    pub target: Option<String>,
    pub company: Option<&'a DocumentId>,
    pub details: &'a [(&'a str, &'a str)],
}

/// Appends an entry inside the caller's transaction, so the record exists iff the change committed.
pub fn record(
    db: &mut DbWriter<'_>,
    now: f64,
    correlation_id: &str,
    entry: Entry<'_>,
) -> FnResult<()> {
    write(db, now, correlation_id, None, entry)
}

/// As `record`, for a change a signed-in viewer made: when an administrator is impersonating the
/// viewer, the entry also names the administrator.
pub fn record_by(
    db: &mut DbWriter<'_>,
    now: f64,
    correlation_id: &str,
    viewer: &Viewer,
    entry: Entry<'_>,
) -> FnResult<()> {
    write(db, now, correlation_id, viewer.impersonator.as_ref(), entry)
}

/// The scope's company's entries about `target` (an incident id, say), oldest first. Scans the
/// company's log: for reports, not for hot paths.
pub fn for_target(
    db: &mut impl functions::DbRead,
    scope: &Scope,
    target: &str,
) -> FnResult<Vec<AuditDoc>> {
    let target = target.to_string();
    db.read_scoped(scope)
        .query(TABLE, "by_company_time", |q| q)?
        .filter(move |doc| doc.get("target_id").and_then(Value::as_str) == Some(target.as_str()))
        .collect()?
        .iter()
        .map(functions::row)
        .collect()
}

fn write(
    db: &mut DbWriter<'_>,
    now: f64,
    correlation_id: &str,
    impersonator: Option<&DocumentId>,
    entry: Entry<'_>,
) -> FnResult<()> {
    let mut row = Object::new();
    if let Some(admin) = impersonator {
        row.insert("impersonated_by".into(), Value::from(*admin));
    }
    row.insert("event".into(), Value::from(entry.event.as_str()));
    row.insert("at".into(), Value::from(now));
    row.insert("correlation_id".into(), Value::from(correlation_id));
    if let Some(actor) = entry.actor {
        row.insert("actor_id".into(), Value::from(*actor));
    }
    if let Some(target) = entry.target {
        row.insert("target_id".into(), Value::from(target));
    }
    if let Some(company) = entry.company {
        row.insert("company_id".into(), Value::from(*company));
    }
    if !entry.details.is_empty() {
        let details: Object = entry
            .details
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        row.insert("details".into(), Value::Object(details));
    }
    // The log is security infrastructure: entries without a company (system events) must be writable.
    let all = Scope::all_companies(&CrossTenant::for_identity_resolution());
    db.scoped(&all).insert(TABLE, row)?;
    Ok(())
}

const MAX_ENTRIES: usize = 500;

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListEventsArgs {
    event: Option<String>,
    company_id: Option<String>,
    all_companies: Option<bool>,
    limit: Option<f64>,
}

/// `audit:listEvents`: newest first. Company admins see their company; holders of
/// `view_security_logs` may pass `allCompanies: true` or another `companyId`.
fn list_events(ctx: &mut QueryCtx<'_>, args: ListEventsArgs) -> FnResult<Vec<AuditDoc>> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ViewAuditLogs)?;
    let limit = args.limit.unwrap_or(100.0).clamp(1.0, MAX_ENTRIES as f64) as usize;
    let event = args.event;
    let wants_all = args.all_companies.unwrap_or(false);
    let company = args
        .company_id
        .as_deref()
        .and_then(|c| ctx.db.normalize_id("companies", c));
    let grant = ctx.cross_tenant()?;
    let scope = match (&company, wants_all) {
        (_, true) => viewer.all_companies_scope(&grant, Permission::ViewSecurityLogs)?,
        (Some(c), false) => viewer.scope_for(c, Some(&grant), Permission::ViewSecurityLogs)?,
        (None, false) => viewer.company_scope()?,
    };
    let mut db = ctx.db.scoped(&scope);
    let query = match (&scope, &event) {
        (Scope::Company(_), _) => db.query(TABLE, "by_company_time", |q| q)?,
        (Scope::AllCompanies, Some(e)) => {
            db.query(TABLE, "by_event_time", |q| q.eq("event", e.as_str()))?
        }
        (Scope::AllCompanies, None) => db.query(TABLE, "by_time", |q| q)?,
    };
    let mut query = query.order(Order::Desc);
    if let Some(e) = event {
        query = query.filter(move |d| d.get("event").and_then(Value::as_str) == Some(e.as_str()));
    }
    let rows = query.take(limit)?;
    rows.iter().map(functions::row).collect()
}

pub fn register(r: &mut Registry) {
    r.query("audit:listEvents", list_events).cross_tenant();
}
