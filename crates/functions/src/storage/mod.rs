//! File storage, as Convex offers it: a mutation mints a single-use upload URL, the client POSTs
//! the bytes there and gets a storage id; functions read a file's metadata, mint signed and
//! expiring download URLs and delete files through `ctx.storage()`. This module owns the tables
//! (`storage_files`, the `_storage` of Convex; upload tokens; the access log), the blob directory
//! and the sweep of what an interrupted upload or a deletion leaves behind. The HTTP routes live
//! in the server and call in here.

mod blobs;
pub mod kinds;
mod signing;
mod sweep;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use store::{Document, Store, StoreError, TableDef, Txn};
use values::validator::v;
use values::{DocumentId, Object, Typed, Value};

use crate::tenancy::Scope;
use crate::{FnResult, FunctionError};

pub use kinds::KindError;
pub use sweep::{register, SweepArgs, Swept, SWEEP};

/// File metadata, one row per stored file (Convex's `_storage`).
pub const FILES: &str = "storage_files";
/// Upload URLs not yet used, by the hash of their token.
pub const UPLOADS: &str = "storage_uploads";
/// Every upload, download URL, download and deletion: who, when, which file, from where.
pub const ACCESS_LOG: &str = "storage_access_log";

/// Tables `server::open_store` adds to every schema.
pub fn tables() -> Vec<TableDef> {
    vec![
        TableDef::new(FILES)
            .field("storage_id", v::string())
            .field("company_id", v::id("companies"))
            // Base64 of the SHA-256, as Convex keeps it.
            .field("sha256", v::string())
            .field("size", v::number())
            .optional("contentType", v::string())
            .optional("file_name", v::string())
            .optional("uploaded_by", v::string())
            .field("uploaded_at", v::number())
            .index("by_storage_id", &["storage_id"])
            .index("by_company", &["company_id", "uploaded_at"])
            .tenant("company_id"),
        TableDef::new(UPLOADS)
            .field("token_hash", v::string())
            .field("company_id", v::id("companies"))
            .optional("created_by", v::string())
            .field("expires_at", v::number())
            .index("by_token_hash", &["token_hash"])
            .index("by_expires_at", &["expires_at"])
            .tenant("company_id"),
        TableDef::new(ACCESS_LOG)
            .field("company_id", v::id("companies"))
            .field("file", v::string())
            .field("storage_id", v::string())
            .field("action", v::string())
            .optional("user_id", v::string())
            .optional("client_ip", v::string())
            .field("at", v::number())
            .index("by_company_at", &["company_id", "at"])
            .index("by_at", &["at"])
            .tenant("company_id"),
    ]
}

/// How file storage is set up.
#[derive(Clone)]
pub struct StorageSettings {
    /// The directory that holds the blobs (`<data dir>/files`).
    pub root: PathBuf,
    /// This server's public base URL, no trailing slash; upload and download URLs start with it.
    pub api_base: String,
    /// The server secret; the key that signs download URLs is derived from it.
    pub server_secret: Vec<u8>,
    /// Largest file accepted.
    pub max_upload_bytes: u64,
    /// Most bytes one company may keep.
    pub company_quota_bytes: u64,
    /// How long an upload URL stays usable (once).
    pub upload_url_ttl: Duration,
    /// How long a download URL works.
    pub download_url_ttl: Duration,
    /// Keep stored blobs in an S3-compatible bucket rather than under `root` (which still holds
    /// uploads in progress).
    pub bucket: Option<BucketSettings>,
}

/// An S3-compatible bucket (AWS, MinIO, Ceph, R2, moto).
#[derive(Clone)]
pub struct BucketSettings {
    pub bucket: String,
    /// Keys start with `<prefix>/blobs/`.
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: bool,
}

impl BucketSettings {
    fn connect(&self) -> Result<blobs::Bucket, String> {
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_allow_http(self.allow_http);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| format!("object storage for bucket {}: {e}", self.bucket))?;
        Ok(blobs::Bucket {
            store: Arc::new(store),
            prefix: self.prefix.clone(),
        })
    }
}

struct Inner {
    blobs: blobs::LocalBlobs,
    api_base: String,
    key: Vec<u8>,
    max_upload_bytes: u64,
    company_quota_bytes: u64,
    upload_url_ttl: Duration,
    download_url_ttl: Duration,
}

/// The file storage of a runtime. Cheap to clone; never prints its key.
#[derive(Clone)]
pub struct FileStorage {
    inner: Arc<Inner>,
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("blobs", &self.inner.blobs)
            .field("max_upload_bytes", &self.inner.max_upload_bytes)
            .finish_non_exhaustive()
    }
}

/// A stored file's metadata as functions see it.
#[derive(Clone, Debug, Serialize, Deserialize, Typed, PartialEq)]
pub struct FileMetadata {
    /// The `storage_files` document's Id (what `storageId` means to clients).
    #[serde(rename = "storageId")]
    #[typed(id = "storage_files")]
    pub id: String,
    /// Base64 of the SHA-256 of the bytes.
    pub sha256: String,
    pub size: f64,
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
}

/// The row, as stored.
#[derive(Clone, Debug, Deserialize)]
struct FileRow {
    #[serde(rename = "_id")]
    id: String,
    storage_id: String,
    company_id: String,
    sha256: String,
    size: f64,
    #[serde(rename = "contentType")]
    content_type: Option<String>,
    file_name: Option<String>,
    uploaded_by: Option<String>,
}

impl FileRow {
    fn read(doc: &Document) -> FnResult<FileRow> {
        crate::row(doc)
    }
    fn metadata(&self) -> FileMetadata {
        FileMetadata {
            id: self.id.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
        }
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Why an upload is refused; each has an HTTP status and a stable code.
#[derive(Debug)]
pub enum UploadError {
    /// Unknown, already used or expired upload URL.
    BadToken,
    TooLarge {
        max: u64,
    },
    Empty,
    Kind(KindError),
    /// `Digest: sha-256=` does not match the bytes (or cannot be read).
    DigestMismatch,
    QuotaExceeded {
        quota: u64,
    },
    /// The body broke off.
    Interrupted(String),
    Failed(FunctionError),
}

impl UploadError {
    pub fn status(&self) -> u16 {
        match self {
            UploadError::BadToken => 403,
            UploadError::TooLarge { .. } => 413,
            UploadError::Empty | UploadError::DigestMismatch | UploadError::Interrupted(_) => 400,
            UploadError::Kind(_) => 415,
            UploadError::QuotaExceeded { .. } => 507,
            UploadError::Failed(FunctionError::User { .. }) => 503,
            UploadError::Failed(FunctionError::Internal(_)) => 500,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            UploadError::BadToken => "InvalidUploadUrl",
            UploadError::TooLarge { .. } => "FileTooLarge",
            UploadError::Empty => "EmptyFile",
            UploadError::Kind(KindError::Unsupported(_)) => "UnsupportedFileType",
            UploadError::Kind(KindError::Mismatch { .. }) => "ContentTypeMismatch",
            UploadError::DigestMismatch => "DigestMismatch",
            UploadError::QuotaExceeded { .. } => "StorageQuotaExceeded",
            UploadError::Interrupted(_) => "UploadInterrupted",
            UploadError::Failed(_) => "StorageUnavailable",
        }
    }
    /// What the client is told (internal details go to the log only).
    pub fn message(&self) -> String {
        match self {
            UploadError::BadToken => {
                "This upload URL is invalid, expired or already used; ask for a new one".into()
            }
            UploadError::TooLarge { max } => {
                format!("The file is too large (at most {max} bytes)")
            }
            UploadError::Empty => "The file is empty".into(),
            UploadError::Kind(KindError::Unsupported(kind)) => format!(
                "Files of this type ({kind}) cannot be uploaded; images, PDF, Word, Excel and plain text can"
            ),
            UploadError::Kind(KindError::Mismatch { declared, detected }) => format!(
                "The file is declared as {declared} but its contents are {detected}"
            ),
            UploadError::DigestMismatch => {
                "The file does not match its Digest header (sha-256)".into()
            }
            UploadError::QuotaExceeded { quota } => {
                format!("Your organisation's file storage is full ({quota} bytes)")
            }
            UploadError::Interrupted(_) => "The upload broke off before the file was complete".into(),
            UploadError::Failed(FunctionError::User { message, .. }) => message.clone(),
            UploadError::Failed(FunctionError::Internal(_)) => "Server Error".into(),
        }
    }
}

impl From<StoreError> for UploadError {
    fn from(e: StoreError) -> UploadError {
        UploadError::Failed(e.into())
    }
}

impl From<FunctionError> for UploadError {
    fn from(e: FunctionError) -> UploadError {
        UploadError::Failed(e)
    }
}

fn io_error(e: std::io::Error) -> FunctionError {
    FunctionError::internal(format!("file storage: {e}"))
}

/// An upload in progress on the server: the token was valid when it began.
pub struct Upload {
    storage: FileStorage,
    token_hash: String,
    writer: blobs::BlobWriter,
}

/// A file the server may serve: its metadata (`FileStorage::read` streams the bytes).
#[derive(Debug)]
pub struct Download {
    storage_id: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub file_name: Option<String>,
}

/// Why a download URL is refused.
#[derive(Debug)]
pub enum DownloadError {
    /// Bad signature, or a file that does not exist (any more).
    NotFound,
    Expired,
    Failed(FunctionError),
}

impl FileStorage {
    /// Fails when the bucket settings cannot make a client (nothing is contacted yet).
    pub fn new(settings: StorageSettings) -> Result<FileStorage, String> {
        let bucket = settings
            .bucket
            .as_ref()
            .map(BucketSettings::connect)
            .transpose()?;
        Ok(FileStorage {
            inner: Arc::new(Inner {
                blobs: blobs::LocalBlobs::new(settings.root, bucket),
                api_base: settings.api_base.trim_end_matches('/').to_string(),
                key: signing::derive_key(&settings.server_secret),
                max_upload_bytes: settings.max_upload_bytes,
                company_quota_bytes: settings.company_quota_bytes,
                upload_url_ttl: settings.upload_url_ttl,
                download_url_ttl: settings.download_url_ttl,
            }),
        })
    }

    /// `len` bytes of a file from `start`, as a stream (nothing is held in memory whole).
    pub async fn read(
        &self,
        file: &Download,
        start: u64,
        len: u64,
    ) -> std::io::Result<futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>> {
        self.inner.blobs.read(&file.storage_id, start, len).await
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.inner.max_upload_bytes
    }

    /// Starts an upload with the token from an upload URL; refuses unknown, used and expired
    /// tokens before any of the body is read.
    pub async fn begin_upload(&self, store: &Store, token: &str) -> Result<Upload, UploadError> {
        let token_hash = signing::token_hash(token);
        let lookup = token_hash.clone();
        let (valid, _, _) = store
            .query(move |txn| Ok::<_, StoreError>(find_token(txn, &lookup, now_ms())?.is_some()))
            .await?;
        if !valid {
            return Err(UploadError::BadToken);
        }
        let writer = self.inner.blobs.writer().await.map_err(io_error)?;
        Ok(Upload {
            storage: self.clone(),
            token_hash,
            writer,
        })
    }

    /// Writes `bytes` as a new file of `company` (for server code such as generated reports).
    pub(crate) async fn store_bytes(
        &self,
        store: &Store,
        company: &DocumentId,
        bytes: &[u8],
        content_type: &str,
        file_name: Option<&str>,
        by: Option<&str>,
    ) -> FnResult<FileMetadata> {
        let mut writer = self.inner.blobs.writer().await.map_err(io_error)?;
        writer.write(bytes).await.map_err(io_error)?;
        let written = writer.finish().await.map_err(io_error)?;
        let record = NewFile {
            company: company.encode(),
            sha256: STANDARD.encode(written.sha256),
            size: written.size,
            content_type: content_type.to_string(),
            file_name: file_name.map(str::to_string),
            by: by.map(str::to_string),
            client_ip: None,
        };
        let storage_id = uuid::Uuid::new_v4().to_string();
        self.inner
            .blobs
            .commit(written, &storage_id)
            .await
            .map_err(io_error)?;
        let quota = self.inner.company_quota_bytes;
        let result = store
            .mutate(move |txn| insert_file(txn, &storage_id, &record, quota))
            .await;
        result.map(|(file, _, _)| file).map_err(|e| match e {
            UploadError::Failed(e) => e,
            other => FunctionError::user(crate::ErrorCode::Validation, other.message()),
        })
    }

    /// Checks a download URL's signature and expiry and finds the file.
    pub async fn open_download(
        &self,
        store: &Store,
        storage_id: &str,
        expires: u64,
        by: &str,
        signature: &str,
    ) -> Result<Download, DownloadError> {
        if !blobs::valid_storage_id(storage_id)
            || !signing::verify_download(&self.inner.key, storage_id, expires, by, signature)
        {
            return Err(DownloadError::NotFound);
        }
        if (now_ms() / 1000.0) as u64 >= expires {
            return Err(DownloadError::Expired);
        }
        let id = storage_id.to_string();
        let (row, _, _) = store
            .query(move |txn| find_file(txn, &id))
            .await
            .map_err(DownloadError::Failed)?;
        let row = row.ok_or(DownloadError::NotFound)?;
        Ok(Download {
            storage_id: row.storage_id,
            sha256: row.sha256,
            size: row.size as u64,
            content_type: row.content_type,
            file_name: row.file_name,
        })
    }

    /// Records a download in the access log.
    pub async fn log_download(
        &self,
        store: &Store,
        storage_id: &str,
        by: &str,
        client_ip: Option<IpAddr>,
    ) -> FnResult<()> {
        let id = storage_id.to_string();
        let by = (!by.is_empty()).then(|| by.to_string());
        store
            .mutate(move |txn| {
                let Some(row) = find_file(txn, &id)? else {
                    return Ok(());
                };
                log_access(txn, &row, "download", by.as_deref(), client_ip)
            })
            .await
            .map(|_| ())
    }

    fn download_url(&self, storage_id: &str, by: Option<&str>) -> String {
        let expires = (now_ms() / 1000.0) as u64 + self.inner.download_url_ttl.as_secs().max(1);
        let by = by.unwrap_or_default();
        let sig = signing::sign_download(&self.inner.key, storage_id, expires, by);
        let mut url = format!(
            "{}/api/storage/{storage_id}?exp={expires}",
            self.inner.api_base
        );
        if !by.is_empty() {
            url.push_str(&format!("&by={by}"));
        }
        url.push_str(&format!("&sig={sig}"));
        url
    }
}

impl Upload {
    /// Adds the next part of the body; refuses the file as soon as it passes the size limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        let max = self.storage.inner.max_upload_bytes;
        if self.writer.size() + chunk.len() as u64 > max {
            return Err(UploadError::TooLarge { max });
        }
        self.writer
            .write(chunk)
            .await
            .map_err(|e| UploadError::Failed(io_error(e)))
    }

    /// Checks the whole file (type, digest), makes it durable, then records it and uses up the
    /// token in one transaction. Returns the new file's metadata.
    pub async fn finish(
        self,
        store: &Store,
        declared_type: Option<&str>,
        digest: Option<&str>,
        client_ip: Option<IpAddr>,
    ) -> Result<FileMetadata, UploadError> {
        let Upload {
            storage,
            token_hash,
            writer,
        } = self;
        let written = writer
            .finish()
            .await
            .map_err(|e| UploadError::Failed(io_error(e)))?;
        if written.size == 0 {
            return Err(UploadError::Empty);
        }
        let content_type = kinds::check(&written.head, declared_type).map_err(UploadError::Kind)?;
        if let Some(digest) = digest {
            if !digest_matches(digest, &written.sha256) {
                return Err(UploadError::DigestMismatch);
            }
        }
        let record = NewFile {
            company: String::new(),
            sha256: STANDARD.encode(written.sha256),
            size: written.size,
            content_type,
            file_name: None,
            by: None,
            client_ip,
        };
        let storage_id = uuid::Uuid::new_v4().to_string();
        storage
            .inner
            .blobs
            .commit(written, &storage_id)
            .await
            .map_err(|e| UploadError::Failed(io_error(e)))?;
        let quota = storage.inner.company_quota_bytes;
        let id = storage_id.clone();
        let result = store
            .mutate(move |txn| {
                // Used up in the same transaction that records the file: two uploads racing on
                // one URL cannot both commit.
                let now = txn.now_ms();
                let token = find_token(txn, &token_hash, now)?.ok_or(UploadError::BadToken)?;
                txn.delete(&token.id)?;
                let mut record = record.clone();
                record.company = token.company_id.clone();
                record.by = token.created_by.clone();
                insert_file(txn, &id, &record, quota)
            })
            .await
            .map(|(file, _, _)| file);
        if result.is_err() {
            // Not recorded: the blob must not outlive the refusal.
            let _ = storage.inner.blobs.remove(&storage_id).await;
        }
        result
    }
}

/// `sha-256=<base64>` among the comma-separated digests of a `Digest` header.
fn digest_matches(header: &str, sha256: &[u8; 32]) -> bool {
    header.split(',').any(|part| {
        part.trim().split_once('=').is_some_and(|(alg, value)| {
            alg.trim().eq_ignore_ascii_case("sha-256")
                && STANDARD.decode(value.trim()).ok().as_deref() == Some(&sha256[..])
        })
    })
}

#[derive(Clone)]
struct NewFile {
    company: String,
    sha256: String,
    size: u64,
    content_type: String,
    file_name: Option<String>,
    by: Option<String>,
    client_ip: Option<IpAddr>,
}

#[derive(Deserialize)]
struct TokenRow {
    #[serde(rename = "_id")]
    id: String,
    company_id: String,
    created_by: Option<String>,
}

struct Token {
    id: DocumentId,
    company_id: String,
    created_by: Option<String>,
}

fn find_token(txn: &mut Txn, token_hash: &str, now: f64) -> Result<Option<Token>, StoreError> {
    let hash = token_hash.to_string();
    let found = txn
        .query(UPLOADS)?
        .with_index("by_token_hash", |q| q.eq("token_hash", hash))?
        .first()?;
    let Some(doc) = found else {
        return Ok(None);
    };
    if doc.get("expires_at").and_then(Value::as_f64).unwrap_or(0.0) <= now {
        return Ok(None);
    }
    let row: TokenRow = values::serde_bridge::from_value(&doc.to_value())
        .map_err(|e| StoreError::Internal(format!("upload token row: {e}")))?;
    let id = DocumentId::decode(&row.id)
        .map_err(|e| StoreError::Internal(format!("upload token id: {e}")))?;
    Ok(Some(Token {
        id,
        company_id: row.company_id,
        created_by: row.created_by,
    }))
}

fn find_file(txn: &mut Txn, storage_id: &str) -> FnResult<Option<FileRow>> {
    let id = storage_id.to_string();
    let found = txn
        .query(FILES)?
        .with_index("by_storage_id", |q| q.eq("storage_id", id))?
        .first()?;
    found.as_ref().map(FileRow::read).transpose()
}

/// Bytes the company keeps.
fn company_usage(txn: &mut Txn, company: &str) -> FnResult<u64> {
    let company = company.to_string();
    let files = txn
        .query(FILES)?
        .with_index("by_company", |q| q.eq("company_id", company))?
        .collect()?;
    Ok(files
        .iter()
        .filter_map(|doc| doc.get("size").and_then(Value::as_f64))
        .sum::<f64>() as u64)
}

fn insert_file(
    txn: &mut Txn,
    storage_id: &str,
    file: &NewFile,
    quota: u64,
) -> Result<FileMetadata, UploadError> {
    if company_usage(txn, &file.company)? + file.size > quota {
        return Err(UploadError::QuotaExceeded { quota });
    }
    let mut fields = Object::new();
    fields.insert("storage_id".into(), storage_id.into());
    fields.insert("company_id".into(), file.company.clone().into());
    fields.insert("sha256".into(), file.sha256.clone().into());
    fields.insert("size".into(), (file.size as f64).into());
    fields.insert("contentType".into(), file.content_type.clone().into());
    if let Some(name) = &file.file_name {
        fields.insert("file_name".into(), name.clone().into());
    }
    if let Some(by) = &file.by {
        fields.insert("uploaded_by".into(), by.clone().into());
    }
    fields.insert("uploaded_at".into(), txn.now_ms().into());
    let id = txn.insert(FILES, fields)?;
    let row = FileRow {
        id: id.encode(),
        storage_id: storage_id.to_string(),
        company_id: file.company.clone(),
        sha256: file.sha256.clone(),
        size: file.size as f64,
        content_type: Some(file.content_type.clone()),
        file_name: file.file_name.clone(),
        uploaded_by: file.by.clone(),
    };
    log_access(txn, &row, "upload", file.by.as_deref(), file.client_ip)?;
    Ok(row.metadata())
}

fn log_access(
    txn: &mut Txn,
    file: &FileRow,
    action: &str,
    by: Option<&str>,
    client_ip: Option<IpAddr>,
) -> FnResult<()> {
    let mut fields = Object::new();
    fields.insert("company_id".into(), file.company_id.clone().into());
    fields.insert("file".into(), file.id.clone().into());
    fields.insert("storage_id".into(), file.storage_id.clone().into());
    fields.insert("action".into(), action.into());
    if let Some(by) = by {
        fields.insert("user_id".into(), by.into());
    }
    if let Some(ip) = client_ip {
        fields.insert("client_ip".into(), ip.to_string().into());
    }
    fields.insert("at".into(), txn.now_ms().into());
    txn.insert(ACCESS_LOG, fields)?;
    Ok(())
}

/// The file `id` names if `scope` may see it (`None` for missing, foreign and malformed alike).
fn scoped_file(txn: &mut Txn, scope: &Scope, id: &str) -> FnResult<Option<FileRow>> {
    let Some(id) = txn.normalize_id(FILES, id) else {
        return Ok(None);
    };
    let Some(doc) = txn.get(&id)? else {
        return Ok(None);
    };
    let row = FileRow::read(&doc)?;
    let visible = match scope {
        Scope::AllCompanies => true,
        Scope::Company(company) => row.company_id == company.encode(),
    };
    Ok(visible.then_some(row))
}

fn not_configured() -> FunctionError {
    FunctionError::internal("file storage is not configured on this runtime")
}

/// `ctx.storage()` in a query: metadata and download URLs.
pub struct StorageReader<'a> {
    pub(crate) txn: &'a mut Txn,
    pub(crate) files: Option<&'a FileStorage>,
}

impl StorageReader<'_> {
    /// The metadata of file `id` (a `storage_files` Id) if `scope` may see it.
    pub fn get_metadata(&mut self, scope: &Scope, id: &str) -> FnResult<Option<FileMetadata>> {
        Ok(scoped_file(self.txn, scope, id)?.map(|row| row.metadata()))
    }

    /// A signed download URL for file `id`, valid for the configured time, if `scope` may see it.
    /// The caller checks the viewer's permission on the record that owns the file first.
    pub fn get_url(
        &mut self,
        scope: &Scope,
        id: &str,
        by: Option<&str>,
    ) -> FnResult<Option<String>> {
        let files = self.files.ok_or_else(not_configured)?;
        Ok(scoped_file(self.txn, scope, id)?.map(|row| files.download_url(&row.storage_id, by)))
    }
}

/// `ctx.storage()` in a mutation: upload URLs, metadata, download URLs and deletion.
pub struct StorageWriter<'a> {
    pub(crate) txn: &'a mut Txn,
    pub(crate) files: Option<&'a FileStorage>,
    pub(crate) client_ip: Option<IpAddr>,
}

impl StorageWriter<'_> {
    /// `{api}/api/storage/upload?token=…`: one upload into `company`, within the configured time.
    pub fn generate_upload_url(
        &mut self,
        company: &DocumentId,
        by: Option<&str>,
    ) -> FnResult<String> {
        let files = self.files.ok_or_else(not_configured)?;
        let token = signing::new_token();
        let mut fields = Object::new();
        fields.insert("token_hash".into(), signing::token_hash(&token).into());
        fields.insert("company_id".into(), company.encode().into());
        if let Some(by) = by {
            fields.insert("created_by".into(), by.into());
        }
        let expires = self.txn.now_ms() + files.inner.upload_url_ttl.as_secs_f64() * 1000.0;
        fields.insert("expires_at".into(), expires.into());
        self.txn.insert(UPLOADS, fields)?;
        Ok(format!(
            "{}/api/storage/upload?token={token}",
            files.inner.api_base
        ))
    }

    pub fn get_metadata(&mut self, scope: &Scope, id: &str) -> FnResult<Option<FileMetadata>> {
        Ok(scoped_file(self.txn, scope, id)?.map(|row| row.metadata()))
    }

    /// Who uploaded file `id` (the user the upload URL was made for), if `scope` may see it:
    /// `Some(None)` for a file stored by the server.
    pub fn uploader(&mut self, scope: &Scope, id: &str) -> FnResult<Option<Option<String>>> {
        Ok(scoped_file(self.txn, scope, id)?.map(|row| row.uploaded_by))
    }

    /// A signed download URL, as `StorageReader::get_url`; minting it is in the access log.
    pub fn get_url(
        &mut self,
        scope: &Scope,
        id: &str,
        by: Option<&str>,
    ) -> FnResult<Option<String>> {
        let files = self.files.ok_or_else(not_configured)?;
        let Some(row) = scoped_file(self.txn, scope, id)? else {
            return Ok(None);
        };
        log_access(self.txn, &row, "url_issued", by, self.client_ip)?;
        Ok(Some(files.download_url(&row.storage_id, by)))
    }

    /// Deletes file `id` if `scope` may see it: the metadata goes now (no URL serves it any more),
    /// the bytes with the next sweep. Returns whether there was such a file.
    pub fn delete(&mut self, scope: &Scope, id: &str, by: Option<&str>) -> FnResult<bool> {
        let Some(row) = scoped_file(self.txn, scope, id)? else {
            return Ok(false);
        };
        let doc_id = DocumentId::decode(&row.id)
            .map_err(|e| FunctionError::internal(format!("file id: {e}")))?;
        self.txn.delete(&doc_id)?;
        log_access(self.txn, &row, "delete", by, self.client_ip)?;
        Ok(true)
    }
}

/// Deletes file `id` as `StorageWriter::delete` where only the database handle is at hand (a
/// module deleting a record together with its files).
pub fn delete_with(
    db: &mut crate::DbWriter<'_>,
    scope: &Scope,
    id: &str,
    by: Option<&str>,
) -> FnResult<bool> {
    StorageWriter {
        txn: &mut *db.txn,
        files: None,
        client_ip: None,
    }
    .delete(scope, id, by)
}

/// `ctx.storage()` in an action: storing bytes the server made.
pub struct StorageActions<'a> {
    pub(crate) store: &'a Store,
    pub(crate) files: Option<&'a FileStorage>,
}

impl StorageActions<'_> {
    /// Stores `bytes` as a file of `company` (durable before this returns) and returns its metadata.
    pub async fn store(
        &self,
        company: &DocumentId,
        bytes: &[u8],
        content_type: &str,
        file_name: Option<&str>,
        by: Option<&str>,
    ) -> FnResult<FileMetadata> {
        let files = self.files.ok_or_else(not_configured)?;
        files
            .store_bytes(self.store, company, bytes, content_type, file_name, by)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn digest_header_is_checked_against_the_bytes() {
        let sha: [u8; 32] = Sha256::digest(b"hello").into();
        let good = format!("sha-256={}", STANDARD.encode(sha));
        assert!(digest_matches(&good, &sha));
        assert!(digest_matches(&format!("md5=abc, {good}"), &sha));
        assert!(!digest_matches("sha-256=AAAA", &sha));
        assert!(!digest_matches("md5=abc", &sha));
    }
}
