//! Incident attachments: photos and documents a frontline worker adds to their own incident while
//! its capture is open, each a stored file (`functions::storage`) with a caption. Readers of the
//! incident list them with short-lived download links; removing one, or deleting the incident,
//! deletes its file. This module owns the `incident_attachments` table; the company's file access
//! log is read here too (`storageAccess:listAccessLog`).
//!
//! Who may do what: adding and removing is the capture's (its creator, `edit_own_incident_capture`,
//! until submission); listing is for whoever may read the incident; the access log needs
//! `view_audit_logs` in the company. Another company's incident or file answers like a missing one.

use functions::{FnResult, FunctionError, MutationCtx, QueryCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::TableDef;
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

use crate::identity::{require_session, Permission, Viewer};
use crate::incidents::record::{self, Incident};

pub const TABLE: &str = "incident_attachments";
/// Most files on one incident.
pub const MAX_PER_INCIDENT: usize = 20;
pub const MAX_CAPTION_CHARS: usize = 500;
pub const MAX_FILE_NAME_CHARS: usize = 200;

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(TABLE)
        .field("company_id", v::id("companies"))
        .field("incident_id", v::id("incidents"))
        .field("file", v::id("storage_files"))
        .field("file_name", v::string())
        .field("caption", v::string())
        .field("content_type", v::string())
        .field("size", v::number())
        .field("attached_by", v::id("users"))
        .field("attached_at", v::number())
        .index("by_company_incident", &["company_id", "incident_id"])
        .index("by_company_file", &["company_id", "file"])
        .tenant("company_id")]
}

/// A stored attachment.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "incident_attachments")]
pub struct AttachmentDoc {
    #[serde(rename = "_id")]
    pub id: Id<AttachmentDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    #[typed(id = "storage_files")]
    pub file: String,
    pub file_name: String,
    pub caption: String,
    pub content_type: String,
    pub size: f64,
    #[typed(id = "users")]
    pub attached_by: DocumentId,
    pub attached_at: f64,
}

pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, AttachmentDoc::validator())]
}

pub fn register(r: &mut Registry) {
    r.mutation("incidentAttachments:generateUploadUrl", generate_upload_url);
    r.mutation("incidentAttachments:attach", attach);
    r.query("incidentAttachments:list", list);
    r.mutation("incidentAttachments:remove", remove);
    r.query("storageAccess:listAccessLog", list_access_log);
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ByIncident {
    #[typed(id = "incidents")]
    incident_id: String,
}

/// The viewer and the incident, which they may edit the capture of while it is open.
fn open_capture(
    ctx: &mut MutationCtx<'_>,
    incident_id: &str,
) -> FnResult<(Viewer, Scope, Incident)> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, incident_id)?;
    record::require_capture_editor(&viewer, &incident)?;
    record::require_unlocked(&incident, "attachments")?;
    Ok((viewer, scope, incident))
}

/// `incidentAttachments:generateUploadUrl`: a single-use upload URL for a file of this incident.
fn generate_upload_url(ctx: &mut MutationCtx<'_>, args: ByIncident) -> FnResult<String> {
    let (viewer, _, incident) = open_capture(ctx, &args.incident_id)?;
    let company = incident.row.company_id;
    ctx.storage()
        .generate_upload_url(&company, Some(&viewer.user_id.encode()))
}

#[derive(Deserialize, Typed)]
#[typed(session)]
#[serde(rename_all = "camelCase")]
pub struct AttachArgs {
    #[serde(rename = "incident_id")]
    #[typed(id = "incidents")]
    incident_id: String,
    /// What the upload answered.
    storage_id: String,
    #[serde(rename = "file_name")]
    file_name: Option<String>,
    caption: Option<String>,
}

fn too_long(field: &str, text: &str, max: usize) -> FnResult<()> {
    if text.chars().count() > max {
        return Err(FunctionError::validation(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// `incidentAttachments:attach`: files an uploaded file (uploaded by the caller, not yet
/// attached) under the incident with a caption.
fn attach(ctx: &mut MutationCtx<'_>, args: AttachArgs) -> FnResult<AttachmentDoc> {
    let (viewer, scope, incident) = open_capture(ctx, &args.incident_id)?;
    let caption = args.caption.unwrap_or_default().trim().to_string();
    too_long("caption", &caption, MAX_CAPTION_CHARS)?;
    let file_name = args.file_name.unwrap_or_default().trim().to_string();
    too_long("file_name", &file_name, MAX_FILE_NAME_CHARS)?;
    let no_file = || {
        FunctionError::validation(
            "storageId",
            "No file you uploaded has this id; upload it again",
        )
    };
    let me = viewer.user_id.encode();
    let uploader = ctx
        .storage()
        .uploader(&scope, &args.storage_id)?
        .ok_or_else(no_file)?;
    if uploader.as_deref() != Some(me.as_str()) {
        return Err(no_file());
    }
    let meta = ctx
        .storage()
        .get_metadata(&scope, &args.storage_id)?
        .ok_or_else(no_file)?;
    let attached = ctx
        .db
        .scoped(&scope)
        .query(TABLE, "by_company_file", |q| q.eq("file", meta.id.clone()))?
        .first()?;
    if attached.is_some() {
        return Err(FunctionError::field(
            functions::ErrorCode::Conflict,
            "storageId",
            "This file is already attached",
        ));
    }
    let count = ctx
        .db
        .scoped(&scope)
        .query(TABLE, "by_company_incident", |q| {
            q.eq("incident_id", incident.id.encode())
        })?
        .count()?;
    if count as usize >= MAX_PER_INCIDENT {
        return Err(FunctionError::user(
            functions::ErrorCode::Conflict,
            format!("An incident can have at most {MAX_PER_INCIDENT} attachments"),
        ));
    }
    let mut fields = Object::new();
    fields.insert("incident_id".into(), incident.id.encode().into());
    fields.insert("file".into(), meta.id.clone().into());
    let name = if file_name.is_empty() {
        "attachment".to_string()
    } else {
        file_name
    };
    fields.insert("file_name".into(), name.into());
    fields.insert("caption".into(), caption.into());
    fields.insert(
        "content_type".into(),
        meta.content_type.unwrap_or_default().into(),
    );
    fields.insert("size".into(), meta.size.into());
    fields.insert("attached_by".into(), me.into());
    fields.insert("attached_at".into(), ctx.now_ms().into());
    let id = ctx.db.scoped(&scope).insert(TABLE, fields)?;
    let doc = ctx
        .db
        .scoped(&scope)
        .get(&id)?
        .ok_or_else(|| FunctionError::internal("attachment vanished after insert"))?;
    functions::row(&doc)
}

/// An attachment with a download link that works for a few minutes.
#[derive(Serialize, Typed)]
pub struct ListedAttachment {
    #[serde(flatten)]
    attachment: AttachmentDoc,
    /// Null when the file is gone.
    url: values::Nullable<String>,
}

/// `incidentAttachments:list`: the incident's attachments, oldest first.
fn list(ctx: &mut QueryCtx<'_>, args: ByIncident) -> FnResult<Vec<ListedAttachment>> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, &args.incident_id)?;
    record::require_view(&viewer, &incident)?;
    let docs = ctx
        .db
        .scoped(&scope)
        .query(TABLE, "by_company_incident", |q| {
            q.eq("incident_id", incident.id.encode())
        })?
        .collect()?;
    let me = viewer.user_id.encode();
    docs.iter()
        .map(|doc| {
            let attachment: AttachmentDoc = functions::row(doc)?;
            let url = ctx.storage().get_url(&scope, &attachment.file, Some(&me))?;
            Ok(ListedAttachment {
                attachment,
                url: url.into(),
            })
        })
        .collect()
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct RemoveArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    /// An `incident_attachments` Id; anything else is "no such attachment".
    attachment_id: String,
}

#[derive(Serialize, Typed)]
pub struct Removed {
    success: bool,
}

/// `incidentAttachments:remove`: takes an attachment off the incident and deletes its file.
fn remove(ctx: &mut MutationCtx<'_>, args: RemoveArgs) -> FnResult<Removed> {
    let (viewer, scope, incident) = open_capture(ctx, &args.incident_id)?;
    let doc = ctx
        .db
        .scoped(&scope)
        .get_in(TABLE, &args.attachment_id)?
        .filter(|doc| doc.get("incident_id").and_then(Value::as_str) == Some(&incident.id.encode()))
        .ok_or_else(|| {
            FunctionError::validation("attachment_id", "This incident has no such attachment")
        })?;
    let attachment: AttachmentDoc = functions::row(&doc)?;
    ctx.db.scoped(&scope).delete(&doc.id)?;
    ctx.storage()
        .delete(&scope, &attachment.file, Some(&viewer.user_id.encode()))?;
    Ok(Removed { success: true })
}

/// Deletes the file of an attachment row that is being deleted with its incident.
pub fn release_file(
    db: &mut functions::DbWriter<'_>,
    scope: &Scope,
    row: &store::Document,
) -> FnResult<()> {
    if let Some(file) = row.get("file").and_then(Value::as_str) {
        functions::storage::delete_with(db, scope, file, None)?;
    }
    Ok(())
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct AccessLogArgs {
    limit: Option<f64>,
}

/// One line of the file access log.
#[derive(Serialize, Deserialize, Typed)]
pub struct AccessEntry {
    /// `upload`, `url_issued`, `download` or `delete`.
    action: String,
    /// The `storage_files` Id (the file may be gone).
    file: String,
    /// The user it was for, when known.
    user_id: Option<String>,
    client_ip: Option<String>,
    at: f64,
}

/// `storageAccess:listAccessLog`: the company's file accesses, newest first.
fn list_access_log(ctx: &mut QueryCtx<'_>, args: AccessLogArgs) -> FnResult<Vec<AccessEntry>> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    viewer.require(Permission::ViewAuditLogs)?;
    let scope = viewer.company_scope()?;
    let limit = args.limit.unwrap_or(100.0).clamp(1.0, 1000.0) as usize;
    let docs = ctx
        .db
        .scoped(&scope)
        .query(functions::storage::ACCESS_LOG, "by_company_at", |q| q)?
        .order(store::Order::Desc)
        .take(limit)?;
    docs.iter().map(functions::row).collect()
}
