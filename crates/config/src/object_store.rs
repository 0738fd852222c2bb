//! `SUPPORTSIGNAL_STORAGE_URL=s3://bucket/prefix` and the usual AWS variables: where file contents
//! live when several nodes share them.

use std::fmt;

/// An S3-compatible bucket for file contents. The secret never prints.
#[derive(Clone)]
pub struct ObjectStoreSettings {
    pub bucket: String,
    /// Key prefix inside the bucket, without slashes at either end (may be empty).
    pub prefix: String,
    pub region: String,
    /// `AWS_ENDPOINT_URL`: another S3-compatible service (MinIO, Ceph, moto, R2).
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `AWS_ALLOW_HTTP=true`: let the endpoint be plain http (a local test service).
    pub allow_http: bool,
}

impl fmt::Debug for ObjectStoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreSettings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

pub(crate) fn load(
    var: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<ObjectStoreSettings> {
    let raw = var("SUPPORTSIGNAL_STORAGE_URL")?;
    let Some(rest) = raw.strip_prefix("s3://") else {
        problems.push(format!(
            "SUPPORTSIGNAL_STORAGE_URL must be s3://bucket[/prefix] (got {raw:?})"
        ));
        return None;
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        problems.push("SUPPORTSIGNAL_STORAGE_URL names no bucket".to_string());
        return None;
    }
    let access_key_id = var("AWS_ACCESS_KEY_ID");
    let secret_access_key = var("AWS_SECRET_ACCESS_KEY");
    if access_key_id.is_some() != secret_access_key.is_some() {
        problems
            .push("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".to_string());
    }
    Some(ObjectStoreSettings {
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
        region: var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string()),
        endpoint: var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT")),
        access_key_id,
        secret_access_key,
        allow_http: var("AWS_ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1"),
    })
}
