//! The PDF incident report (`pdfGeneration:*`, wizard step 8): whoever may read an incident
//! generates a report of the sections they choose (`content`), laid out as a real PDF (`render`)
//! and stored as a file of the incident's company; downloading it mints a short-lived signed URL
//! after checking, again, that the caller may read the incident. This module owns the
//! `incident_reports` table (which file is whose report); reports go with their incident.

pub mod content;
mod render;

use std::time::Instant;

use functions::{ActionCtx, FnResult, FunctionError, FunctionRef, MutationCtx, Registry};
use serde::{Deserialize, Serialize};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

use crate::identity::require_session;
use crate::incidents::record;
use content::{Report, ReportArgs, SECTIONS};

pub const TABLE: &str = "incident_reports";
pub const CONTENT_TYPE: &str = "application/pdf";

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(TABLE)
        .field("company_id", v::id("companies"))
        .field("incident_id", v::id("incidents"))
        .field("file", v::id("storage_files"))
        .field("file_name", v::string())
        .field("sections", v::array(v::string()))
        .field("size", v::number())
        .field("generated_by", v::id("users"))
        .field("generated_at", v::number())
        .index("by_company_incident", &["company_id", "incident_id"])
        .index("by_company_file", &["company_id", "file"])
        .tenant("company_id")]
}

/// A stored report.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "incident_reports")]
pub struct ReportDoc {
    #[serde(rename = "_id")]
    pub id: Id<ReportDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    #[typed(id = "storage_files")]
    pub file: String,
    pub file_name: String,
    pub sections: Vec<String>,
    pub size: f64,
    #[typed(id = "users")]
    pub generated_by: DocumentId,
    pub generated_at: f64,
}

pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, ReportDoc::validator())]
}

pub const REPORT: FunctionRef<ReportArgs, Report> =
    FunctionRef::internal_query("pdfGeneration:reportContent");
const RECORD: FunctionRef<RecordArgs, RecordedBy> =
    FunctionRef::internal_mutation("pdfGeneration:recordReport");
const MINT: FunctionRef<DownloadArgs, Download> =
    FunctionRef::internal_mutation("pdfGeneration:mintDownload");

pub fn register(r: &mut Registry) {
    r.action("pdfGeneration:generateIncidentPDF", generate);
    r.action("pdfGeneration:downloadPDF", download);
    r.internal_query(REPORT, content::report);
    r.internal_mutation(RECORD, record_report);
    r.internal_mutation(MINT, mint_download);
}

/// The caller's error with `prefix` before its message (the web app shows one toast for all).
fn prefixed(error: FunctionError, prefix: &str) -> FunctionError {
    match error {
        FunctionError::User {
            code,
            message,
            field,
            shape,
        } => FunctionError::User {
            code,
            message: format!("{prefix}: {message}"),
            field,
            shape,
        },
        internal => internal,
    }
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct GenerateArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    /// Keys of `content::SECTIONS`; all when left out; unknown keys are ignored.
    sections: Option<Vec<String>>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    page_count: f64,
    section_count: f64,
    generation_time_ms: f64,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Generated {
    #[typed(id = "storage_files")]
    storage_id: String,
    filename: String,
    /// Ms since the epoch.
    generated_at: f64,
    sections: Vec<String>,
    file_size: f64,
    metrics: Metrics,
}

/// `incident-<participant-name-dashed>-<incidentId>-<ms>.pdf`.
fn file_name(report: &Report, at_ms: f64) -> String {
    let mut dashed = String::new();
    for c in report.participant_name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            dashed.push(c.to_ascii_lowercase());
        } else if !dashed.ends_with('-') {
            dashed.push('-');
        }
    }
    let dashed = dashed.trim_matches('-');
    let dashed = if dashed.is_empty() {
        "participant"
    } else {
        dashed
    };
    format!(
        "incident-{dashed}-{}-{}.pdf",
        report.incident_id, at_ms as u64
    )
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// `pdfGeneration:generateIncidentPDF`: renders, stores and records the report.
async fn generate(ctx: ActionCtx, args: GenerateArgs) -> FnResult<Generated> {
    let started = Instant::now();
    let sections = args
        .sections
        .unwrap_or_else(|| SECTIONS.iter().map(|s| s.to_string()).collect());
    let report = ctx
        .run_query(
            REPORT,
            &ReportArgs {
                incident_id: args.incident_id.clone(),
                sections,
            },
        )
        .await
        .map_err(|e| prefixed(e, "PDF generation failed"))?;
    let at = now_ms();
    let rendered = render::render(&report, &content::format_ms(at));
    let name = file_name(&report, at);
    let company = DocumentId::decode(&report.company_id)
        .map_err(|e| FunctionError::internal(format!("report company id: {e}")))?;
    let file = ctx
        .storage()
        .store(&company, &rendered.bytes, CONTENT_TYPE, Some(&name), None)
        .await
        .map_err(|e| prefixed(e, "PDF generation failed"))?;
    ctx.run_mutation(
        RECORD,
        &RecordArgs {
            incident_id: report.incident_id.clone(),
            file: file.id.clone(),
            file_name: name.clone(),
            sections: report.sections.clone(),
            size: file.size,
        },
    )
    .await
    .map_err(|e| prefixed(e, "PDF generation failed"))?;
    Ok(Generated {
        storage_id: file.id,
        filename: name,
        generated_at: at,
        sections: report.sections.clone(),
        file_size: file.size,
        metrics: Metrics {
            page_count: rendered.pages as f64,
            section_count: report.parts.len() as f64,
            generation_time_ms: started.elapsed().as_secs_f64() * 1000.0,
        },
    })
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct RecordArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    #[typed(id = "storage_files")]
    file: String,
    file_name: String,
    sections: Vec<String>,
    size: f64,
}

#[derive(Serialize, Deserialize, Typed)]
pub struct RecordedBy {
    #[typed(id = "users")]
    generated_by: String,
}

/// Records which incident a stored report belongs to (the caller may still read it).
fn record_report(ctx: &mut MutationCtx<'_>, args: RecordArgs) -> FnResult<RecordedBy> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, &args.incident_id)?;
    record::require_view(&viewer, &incident)?;
    let mut fields = Object::new();
    fields.insert("incident_id".into(), incident.id.encode().into());
    fields.insert("file".into(), args.file.into());
    fields.insert("file_name".into(), args.file_name.into());
    fields.insert(
        "sections".into(),
        Value::Array(args.sections.into_iter().map(Value::from).collect()),
    );
    fields.insert("size".into(), args.size.into());
    fields.insert("generated_by".into(), viewer.user_id.encode().into());
    fields.insert("generated_at".into(), now.into());
    ctx.db.scoped(&scope).insert(TABLE, fields)?;
    Ok(RecordedBy {
        generated_by: viewer.user_id.encode(),
    })
}

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
#[serde(rename_all = "camelCase")]
pub struct DownloadArgs {
    /// What `generateIncidentPDF` answered.
    storage_id: String,
}

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Download {
    download_url: String,
    content_type: String,
    file_size: f64,
}

/// `pdfGeneration:downloadPDF`: a signed link to a report, valid for a few minutes.
async fn download(ctx: ActionCtx, args: DownloadArgs) -> FnResult<Download> {
    ctx.run_mutation(MINT, &args)
        .await
        .map_err(|e| prefixed(e, "PDF download failed"))
}

/// Mints the link when the file is a report of an incident the caller may read.
fn mint_download(ctx: &mut MutationCtx<'_>, args: DownloadArgs) -> FnResult<Download> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let missing = || FunctionError::not_found("PDF file not found in storage");
    let Some(file) = ctx.storage().get_metadata(&scope, &args.storage_id)? else {
        return Err(missing());
    };
    let report = ctx
        .db
        .scoped(&scope)
        .query(TABLE, "by_company_file", |q| q.eq("file", file.id.clone()))?
        .first()?
        .ok_or_else(missing)?;
    let report: ReportDoc = functions::row(&report)?;
    let incident = record::load(&mut ctx.db, &scope, &report.incident_id.encode())?;
    record::require_view(&viewer, &incident)?;
    let url = ctx
        .storage()
        .get_url(&scope, &file.id, Some(&viewer.user_id.encode()))?
        .ok_or_else(missing)?;
    Ok(Download {
        download_url: url,
        content_type: CONTENT_TYPE.to_string(),
        file_size: file.size,
    })
}

/// Deletes the file of a report row that is being deleted with its incident.
pub fn release_file(
    db: &mut functions::DbWriter<'_>,
    scope: &functions::Scope,
    row: &store::Document,
) -> FnResult<()> {
    if let Some(file) = row.get("file").and_then(Value::as_str) {
        functions::storage::delete_with(db, scope, file, None)?;
    }
    Ok(())
}
