//! `workflowData:*`: the whole capture record of one incident (the incident and the rows of every
//! table in `CHILD_TABLES`) as versioned JSON, its validation, and its import into a company with
//! new ids. For platform administrators: exporting reads any company's records and importing
//! writes into any company, which is what `manage_all_companies` grants (system and demo admins).
//!
//! The document: `{format: "supportsignal.incident", version: 1, exported_at, exported_by, source:
//! {incident_id, company_id}, incident: {…}, children: {<table>: [{…}]}}`. Rows carry their own
//! fields without `_id`, `company_id` and `incident_id`, which the import assigns. Participant
//! details are not exported (they are personal data of another record); the participant link is
//! kept on import only when the participant exists in the target company.

use std::collections::{BTreeMap, HashMap};

use functions::{
    ActionCtx, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, QueryCtx, Scope,
};
use serde::{Deserialize, Serialize};
use store::{Document, Schema};
use values::{DocumentId, Id, Object, Typed, Validator, Value};

use super::children::{rows_of, CHILD_TABLES};
use super::fields::{self, Given, Window};
use super::record::{self, IncidentDoc, IncidentRow, INTERNAL_FIELDS};
use super::status::{AnalysisStatus, CaptureStatus, State};
use super::submission::Checklist;
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission, Viewer};

pub const FORMAT: &str = "supportsignal.incident";
pub const VERSION: f64 = 1.0;

pub const READ_RECORD: FunctionRef<ByIncident, ExportDocument> =
    FunctionRef::internal_query("workflowData:readRecord");
pub const CHECK_RECORD: FunctionRef<CheckArgs, CheckReport> =
    FunctionRef::internal_query("workflowData:checkRecord");
pub const WRITE_RECORD: FunctionRef<ImportArgs, Imported> =
    FunctionRef::internal_mutation("workflowData:writeRecord");

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct ByIncident {
    #[typed(id = "incidents")]
    incident_id: String,
}

/// A workflow document to check, as sent: anything, which the check then reads.
#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct CheckArgs {
    workflow_data: Value,
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct ImportArgs {
    workflow_data: Value,
    #[typed(id = "companies")]
    company_id: Option<String>,
}

/// Where an exported record came from.
#[derive(Serialize, Deserialize, Typed)]
pub struct Source {
    #[typed(id = "incidents")]
    incident_id: DocumentId,
    #[typed(id = "companies")]
    company_id: DocumentId,
}

/// The export document. The incident and the child rows are carried as stored (less the fields an
/// import assigns), so they stay free-form: a document written by another version still reads.
#[derive(Serialize, Deserialize, Typed)]
pub struct ExportDocument {
    format: String,
    version: f64,
    exported_at: f64,
    #[typed(id = "users")]
    exported_by: DocumentId,
    source: Source,
    incident: Value,
    children: BTreeMap<String, Vec<Value>>,
}

#[derive(Serialize, Typed)]
pub struct Exported {
    success: bool,
    data: ExportDocument,
    filename: String,
}

/// What checking a document found: `detected_step` is the step the document says it reached.
#[derive(Serialize, Deserialize, Typed)]
pub struct CheckReport {
    valid: bool,
    errors: Vec<String>,
    warnings: Vec<String>,
    detected_step: f64,
}

/// An import: `{success: true, incident_id, created_step, created_records, warnings}`, or
/// `{success: false, errors, warnings}` for data that does not validate.
#[derive(Serialize, Deserialize, Typed)]
pub struct Imported {
    success: bool,
    incident_id: Option<Id<IncidentDoc>>,
    created_step: Option<f64>,
    created_records: Option<BTreeMap<String, f64>>,
    errors: Option<Vec<String>>,
    warnings: Vec<String>,
}

/// Fields of each child table that hold user ids: the users of another company or deployment
/// mean nothing in the target company, so an import puts the importing administrator there.
#[derive(Clone, Debug, Default)]
pub struct UserFields(HashMap<&'static str, Vec<String>>);

impl UserFields {
    pub fn from_schema(schema: &Schema) -> UserFields {
        let mut map = HashMap::new();
        for child in CHILD_TABLES.iter().filter(|c| c.exported()) {
            let table = schema
                .get(child.table)
                .unwrap_or_else(|| panic!("child table {} is not in the schema", child.table));
            let fields = table
                .fields
                .iter()
                .filter(|(_, f)| f.validator == Validator::Id("users".into()))
                .map(|(name, _)| name.clone())
                .collect();
            map.insert(child.table, fields);
        }
        UserFields(map)
    }
}

fn admin(db: &mut impl functions::DbRead, auth: &functions::Auth, now: f64) -> FnResult<Viewer> {
    require_permission(db, auth, now, Permission::ManageAllCompanies)
}

/// `workflowData:exportWorkflowData`: `{success, data, filename}`.
pub async fn export_action(ctx: ActionCtx, args: ByIncident) -> FnResult<Exported> {
    let data = ctx.run_query(READ_RECORD, &args).await?;
    let name = data
        .incident
        .get("participant_name")
        .and_then(Value::as_str)
        .unwrap_or("incident");
    let slug: String = crate::companies::slugify(name);
    let day = chrono::DateTime::from_timestamp_millis(data.exported_at as i64)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Ok(Exported {
        success: true,
        data,
        filename: format!("workflow-{slug}-{day}.json"),
    })
}

/// The child rows of a document as exported: own fields only.
fn exported_row(doc: &Document) -> Value {
    let mut fields = doc.fields.clone();
    fields.remove("company_id");
    fields.remove("incident_id");
    Value::Object(fields)
}

/// `workflowData:readRecord` (internal): the export document of one incident of any company.
pub fn read_record(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<ExportDocument> {
    let now = ctx.now_ms();
    let viewer = admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let all = viewer.all_companies_scope(&grant, Permission::ManageAllCompanies)?;
    let incident = record::load(&mut ctx.db, &all, &args.incident_id)?;
    let scope = Scope::company(incident.row.company_id);
    let mut fields = incident.doc.fields.clone();
    fields.remove("company_id");
    for field in INTERNAL_FIELDS {
        fields.remove(field);
    }
    let mut children = BTreeMap::new();
    for child in CHILD_TABLES.iter().filter(|c| c.exported()) {
        let rows = rows_of(&mut ctx.db, &scope, child, &incident.id)?;
        let rows = rows.iter().map(exported_row).collect();
        children.insert(child.table.to_string(), rows);
    }
    Ok(ExportDocument {
        format: FORMAT.to_string(),
        version: VERSION,
        exported_at: now,
        exported_by: viewer.user_id,
        source: Source {
            incident_id: incident.id,
            company_id: incident.row.company_id,
        },
        incident: Value::Object(fields),
        children,
    })
}

/// What validation found.
#[derive(Default)]
struct Report {
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// The parts of a valid document an import needs.
struct Checked<'a> {
    incident: &'a Object,
    details: fields::Details,
    state: State,
    children: Vec<(&'static str, Vec<&'a Object>)>,
}

/// Checks a document's structure and the incident's fields (the event time may be of any age).
fn check<'a>(data: &'a Value, now: f64, report: &mut Report) -> Option<Checked<'a>> {
    let Some(doc) = data.as_object() else {
        report
            .errors
            .push("The workflow data must be a JSON object".into());
        return None;
    };
    if opt_text(doc, "format") != Some(FORMAT) {
        report
            .errors
            .push(format!("Unknown format: expected \"format\": \"{FORMAT}\""));
    }
    match doc.get("version").and_then(Value::as_f64) {
        Some(v) if v == VERSION => {}
        Some(v) => report.errors.push(format!(
            "Unsupported version {v}; this server reads version 1"
        )),
        None => report.errors.push("Missing version".into()),
    }
    let Some(incident) = doc.get("incident").and_then(Value::as_object) else {
        report.errors.push("Missing the incident section".into());
        return None;
    };
    let text = |field: &str| opt_text(incident, field).unwrap_or_default().to_string();
    let given = Given {
        reporter_name: text("reporter_name"),
        participant_name: text("participant_name"),
        location: text("location"),
        event_date_time: text("event_date_time"),
    };
    let details = match fields::details(&given, now, Window::Ignored) {
        Ok(details) => Some(details),
        Err(e) => {
            report
                .errors
                .push(format!("incident: {}", user_message(&e)));
            None
        }
    };
    let capture = opt_text(incident, "capture_status").and_then(CaptureStatus::parse);
    let analysis = opt_text(incident, "analysis_status").and_then(AnalysisStatus::parse);
    let state = match (capture, analysis) {
        (Some(capture), Some(analysis)) if (State { capture, analysis }).is_valid() => {
            Some(State { capture, analysis })
        }
        (Some(_), Some(_)) => {
            report
                .errors
                .push("incident: analysis cannot have started before capture completed".into());
            None
        }
        _ => {
            report.errors.push(format!(
                "incident: capture_status must be one of {} and analysis_status one of {}",
                CaptureStatus::names(),
                AnalysisStatus::names()
            ));
            None
        }
    };
    let mut children = Vec::new();
    if let Some(given) = doc.get("children") {
        let Some(given) = given.as_object() else {
            report
                .errors
                .push("children must be an object of record lists".into());
            return None;
        };
        for (table, rows) in given {
            let Some(child) = CHILD_TABLES
                .iter()
                .find(|c| c.table == table && c.exported())
            else {
                report.errors.push(format!("Unknown record type '{table}'"));
                continue;
            };
            let rows: Option<Vec<&Object>> = rows
                .as_array()
                .and_then(|rows| rows.iter().map(Value::as_object).collect());
            match rows {
                Some(rows) => children.push((child.table, rows)),
                None => report
                    .errors
                    .push(format!("children.{table} must be a list of objects")),
            }
        }
    }
    let narratives = children
        .iter()
        .find(|(t, _)| *t == crate::narratives::TABLE)
        .map_or(0, |(_, rows)| rows.len());
    if narratives > 1 {
        report
            .errors
            .push("An incident has at most one narrative".into());
    }
    if incident.contains_key("participant_id") {
        report.warnings.push(
            "The participant link is kept only if the participant exists in the target company"
                .into(),
        );
    }
    match (details, state, report.errors.is_empty()) {
        (Some(details), Some(state), true) => Some(Checked {
            incident,
            details,
            state,
            children,
        }),
        _ => None,
    }
}

/// The highest step of the capture wizard the record fills, where the web app opens the imported
/// incident: 1 details; 2 the four-phase narrative (with its clarification questions, which the
/// wizard generates on leaving that step); 3-6 the clarification answers of the before, during,
/// end and post-event phases; 7 the enhanced review (any phase enhanced); 8 the consolidated
/// report, once the capture was submitted.
fn created_step(checked: &Checked<'_>) -> f64 {
    use crate::narratives::Phase;
    let rows = |table: &'static str| {
        checked
            .children
            .iter()
            .filter(move |(t, _)| *t == table)
            .flat_map(|(_, rows)| rows.iter().copied())
    };
    let has_text =
        |row: &Object, field: &str| opt_text(row, field).is_some_and(|t| !t.trim().is_empty());
    let narrative = rows(crate::narratives::TABLE).next();
    let mut step = 1.0;
    if narrative.is_some_and(|n| Phase::ALL.iter().any(|p| has_text(n, p.as_str()))) {
        step = 2.0;
    }
    let answered = rows(crate::clarification::ANSWERS)
        .filter(|a| has_text(a, "answer_text"))
        .filter_map(|a| opt_text(a, "phase").and_then(Phase::parse))
        .filter_map(|p| Phase::ALL.iter().position(|q| *q == p))
        .max();
    if let Some(phase) = answered {
        step = 3.0 + phase as f64;
    }
    if narrative.is_some_and(|n| Phase::ALL.iter().any(|p| has_text(n, p.extra_field()))) {
        step = 7.0;
    }
    let submitted = checked.state.capture == CaptureStatus::Completed
        || checked
            .incident
            .get("submitted_at")
            .and_then(Value::as_f64)
            .is_some();
    if submitted {
        step = 8.0;
    }
    step
}

fn user_message(error: &FunctionError) -> String {
    match error {
        FunctionError::User { message, .. } => message.clone(),
        FunctionError::Internal(_) => "invalid".into(),
    }
}

/// `workflowData:checkRecord` (internal): `{valid, errors, warnings, detected_step}`.
pub fn check_record(ctx: &mut QueryCtx<'_>, args: CheckArgs) -> FnResult<CheckReport> {
    let now = ctx.now_ms();
    admin(&mut ctx.db, ctx.auth, now)?;
    let mut report = Report::default();
    let checked = check(&args.workflow_data, now, &mut report);
    let step = checked
        .as_ref()
        .and_then(|c| c.incident.get("current_step").and_then(Value::as_f64))
        .unwrap_or(if checked.is_some() { 1.0 } else { 0.0 });
    Ok(CheckReport {
        valid: checked.is_some(),
        errors: report.errors,
        warnings: report.warnings,
        detected_step: step,
    })
}

/// `workflowData:validateWorkflowData`.
pub async fn validate_action(ctx: ActionCtx, args: CheckArgs) -> FnResult<CheckReport> {
    ctx.run_query(CHECK_RECORD, &args).await
}

/// `workflowData:importWorkflowData`: `{success: true, incident_id, created_step,
/// created_records, warnings}`, or `{success: false, errors, warnings}` for data that does not
/// validate (nothing is written then). Access and target-company problems are errors.
pub async fn import_action(ctx: ActionCtx, args: ImportArgs) -> FnResult<Imported> {
    ctx.run_mutation(WRITE_RECORD, &args).await
}

/// The target company's site for the record: the exported one if it is the company's, else the
/// company's first site by name.
fn target_site(db: &mut functions::ScopedWriter<'_>, wanted: Option<&str>) -> FnResult<DocumentId> {
    if let Some(site) = wanted.and_then(|s| db.get_in("sites", s).transpose()) {
        return Ok(site?.id);
    }
    let first = db.query("sites", "by_company_name", |q| q)?.first()?;
    first.map(|s| s.id).ok_or_else(|| {
        FunctionError::field(
            ErrorCode::Conflict,
            "company_id",
            "The company has no site to file the incident under; create a site first",
        )
    })
}

/// `workflowData:writeRecord` (internal): imports a validated document into `company_id` (or the
/// administrator's own company) in one transaction, with new ids. Audited.
pub fn write_record(
    ctx: &mut MutationCtx<'_>,
    args: ImportArgs,
    users: &UserFields,
) -> FnResult<Imported> {
    let now = ctx.now_ms();
    let viewer = admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let company = match args.company_id.as_deref() {
        Some(id) => ctx.db.normalize_id("companies", id),
        None => viewer.company_id,
    }
    .ok_or_else(|| {
        FunctionError::validation(
            "company_id",
            "company_id is required: the company to import into",
        )
    })?;
    let scope = viewer.scope_for(&company, Some(&grant), Permission::ManageAllCompanies)?;
    if ctx.db.scoped(&scope).get(&company)?.is_none() {
        return Err(FunctionError::field(
            ErrorCode::NotFound,
            "company_id",
            "Company not found",
        ));
    }
    let data = &args.workflow_data;
    let mut report = Report::default();
    let Some(checked) = check(data, now, &mut report) else {
        return Ok(Imported {
            success: false,
            incident_id: None,
            created_step: None,
            created_records: None,
            errors: Some(report.errors),
            warnings: report.warnings,
        });
    };
    let step = created_step(&checked);
    let incident = checked.incident;
    let mut db = ctx.db.scoped(&scope);
    let site_id = target_site(&mut db, opt_text(incident, "site_id"))?;
    let participant_id = match opt_text(incident, "participant_id") {
        Some(p) => db.get_in("participants", p)?.map(|d| d.id),
        None => None,
    };
    let number = |field: &str| incident.get(field).and_then(Value::as_f64);
    let string = |field: &str| opt_text(incident, field).map(str::to_string);
    let flag = |field: &str| {
        incident
            .get(field)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let submitted_at = number("submitted_at");
    let checklist = incident
        .get("completion_checklist")
        .and_then(|c| values::serde_bridge::from_value::<Checklist>(c).ok());
    let details = checked.details;
    let source = data
        .get("source")
        .and_then(|s| s.get("incident_id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let row = IncidentRow {
        company_id: company,
        site_id,
        reporter_name: details.reporter_name,
        participant_id,
        participant_name: details.participant_name,
        event_date_time: details.event_date_time,
        event_at: details.event_at,
        location: details.location,
        capture_status: checked.state.capture,
        analysis_status: checked.state.analysis,
        overall_status: checked.state.overall(),
        handoff_status: checked.state.handoff(),
        created_at: number("created_at").unwrap_or(now),
        created_by: viewer.user_id,
        updated_at: number("updated_at").unwrap_or(now),
        updated_by: viewer.user_id,
        narrative_hash: string("narrative_hash"),
        questions_generated: flag("questions_generated"),
        narrative_enhanced: flag("narrative_enhanced"),
        analysis_generated: flag("analysis_generated"),
        current_step: number("current_step"),
        step_description: string("step_description"),
        content_preview: string("content_preview"),
        workflow_completed_at: number("workflow_completed_at"),
        submitted_by: submitted_at.map(|_| viewer.user_id),
        submitted_at,
        completion_checklist: checklist,
        imported_from: source.clone(),
        participant_sort: String::new(),
        reporter_sort: String::new(),
    };
    let id = record::insert(&mut ctx.db, &scope, row)?;
    let mut created = BTreeMap::new();
    for (table, rows) in &checked.children {
        let user_fields = users.0.get(table).map(Vec::as_slice).unwrap_or_default();
        for row in rows {
            let mut fields: Object = (*row).clone();
            for system in ["_id", "_creationTime", "company_id", "incident_id"] {
                fields.remove(system);
            }
            for field in user_fields {
                if fields.contains_key(field) {
                    fields.insert(field.clone(), Value::from(viewer.user_id));
                }
            }
            fields.insert("incident_id".into(), Value::from(id));
            ctx.db.scoped(&scope).insert(table, fields)?;
        }
        created.insert(table.to_string(), rows.len() as f64);
    }
    if participant_id.is_none() && incident.contains_key("participant_id") {
        report.warnings.push(
            "The participant does not exist in the target company; the link was dropped".into(),
        );
    }
    let source = source.unwrap_or_default();
    let entry = Entry {
        event: Event::IncidentImported,
        actor: Some(&viewer.user_id),
        target: Some(id.encode()),
        company: Some(&company),
        details: &[("source_incident", source.as_str())],
    };
    audit::record(&mut ctx.db, now, ctx.request_id.as_str(), entry)?;
    Ok(Imported {
        success: true,
        incident_id: Some(id.into()),
        created_step: Some(step),
        created_records: Some(created),
        errors: None,
        warnings: report.warnings,
    })
}

/// A text field of an imported record (free-form: it comes from a file, not a validator).
fn opt_text<'a>(row: &'a Object, field: &str) -> Option<&'a str> {
    row.get(field).and_then(Value::as_str)
}
