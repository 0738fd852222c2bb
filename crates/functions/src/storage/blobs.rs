//! The blobs themselves: `tmp/<random>.part` in a local directory for uploads in progress, and
//! `blobs/<storage id>` for stored files, in the same directory or in an S3-compatible bucket. A
//! blob is written to `tmp` and fsynced, then renamed into `blobs` with the directory fsynced (or
//! uploaded to the bucket, which acknowledges only what it keeps) before its metadata commits, so
//! an acknowledged file is stored; a crash in between leaves only blobs without metadata, which
//! the sweep removes.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// How many leading bytes are kept to recognise the file type.
const HEAD: usize = 8192;

#[derive(Clone)]
pub(crate) struct LocalBlobs {
    root: PathBuf,
    bucket: Option<Bucket>,
}

/// Stored blobs in object storage, under `<prefix>/blobs/`.
#[derive(Clone)]
pub(crate) struct Bucket {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
}

impl fmt::Debug for LocalBlobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.bucket {
            Some(bucket) => write!(f, "Blobs({}, bucket {})", self.root.display(), bucket.store),
            None => write!(f, "Blobs({})", self.root.display()),
        }
    }
}

fn other(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(e),
    }
}

/// A storage id names a file on disk, so only the characters we generate are accepted.
pub(crate) fn valid_storage_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl LocalBlobs {
    pub fn new(root: PathBuf, bucket: Option<Bucket>) -> LocalBlobs {
        LocalBlobs { root, bucket }
    }

    fn key(bucket: &Bucket, storage_id: &str) -> Key {
        let prefix = bucket.prefix.trim_matches('/');
        if prefix.is_empty() {
            Key::from(format!("blobs/{storage_id}"))
        } else {
            Key::from(format!("{prefix}/blobs/{storage_id}"))
        }
    }

    /// `len` bytes of stored blob `storage_id` from `start`.
    pub async fn read(
        &self,
        storage_id: &str,
        start: u64,
        len: u64,
    ) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        if !valid_storage_id(storage_id) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if let Some(bucket) = &self.bucket {
            let options = GetOptions {
                range: Some(GetRange::Bounded(start..start + len)),
                ..GetOptions::default()
            };
            let got = bucket
                .store
                .get_opts(&Self::key(bucket, storage_id), options)
                .await
                .map_err(other)?;
            return Ok(got.into_stream().map_err(other).boxed());
        }
        let mut file = tokio::fs::File::open(self.blobs().join(storage_id)).await?;
        if start > 0 {
            file.seek(io::SeekFrom::Start(start)).await?;
        }
        Ok(tokio_util::io::ReaderStream::new(file.take(len)).boxed())
    }

    fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub async fn ensure_dirs(&self) -> io::Result<()> {
        tokio::fs::create_dir_all(self.blobs()).await?;
        tokio::fs::create_dir_all(self.tmp()).await
    }

    fn path(&self, storage_id: &str) -> Option<PathBuf> {
        valid_storage_id(storage_id).then(|| self.blobs().join(storage_id))
    }

    /// A new blob being written; it disappears unless `commit` moves it into place.
    pub async fn writer(&self) -> io::Result<BlobWriter> {
        self.ensure_dirs().await?;
        let path = self
            .tmp()
            .join(format!("{}.part", hex::encode(rand::random::<[u8; 16]>())));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(BlobWriter {
            file: Some(file),
            path: Some(path),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
        })
    }

    /// Moves a finished (fsynced) blob to its final name and makes the rename durable.
    pub async fn commit(&self, mut written: Written, storage_id: &str) -> io::Result<()> {
        let target = self
            .path(storage_id)
            .ok_or_else(|| io::Error::other("bad storage id"))?;
        if let Some(bucket) = &self.bucket {
            // Streamed up in parts; `Written` removes the local copy when it drops.
            let from = written.path.as_ref().expect("a written blob has a path");
            let mut file = tokio::fs::File::open(from).await?;
            let mut upload = object_store::buffered::BufWriter::new(
                bucket.store.clone(),
                Self::key(bucket, storage_id),
            );
            tokio::io::copy(&mut file, &mut upload).await?;
            return upload.shutdown().await;
        }
        let from = written.path.take().expect("a written blob has a path");
        tokio::fs::rename(&from, &target).await?;
        sync_dir(&self.blobs()).await
    }

    pub async fn remove(&self, storage_id: &str) -> io::Result<()> {
        if let Some(bucket) = &self.bucket {
            if !valid_storage_id(storage_id) {
                return Ok(());
            }
            return match bucket.store.delete(&Self::key(bucket, storage_id)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(other(e)),
            };
        }
        if let Some(path) = self.path(storage_id) {
            match tokio::fs::remove_file(path).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Stored blobs (`(storage id, last modified)`).
    pub async fn list(&self) -> io::Result<Vec<(String, SystemTime)>> {
        let Some(bucket) = &self.bucket else {
            return list_dir(&self.blobs()).await;
        };
        let prefix = Self::key(bucket, "x");
        let dir: Key = prefix.parts().take(prefix.parts().count() - 1).collect();
        let listed: Vec<_> = bucket
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(other)?;
        Ok(listed
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_string();
                Some((name, SystemTime::from(meta.last_modified)))
            })
            .collect())
    }

    /// Unfinished uploads (`(file name, last modified)`).
    pub async fn list_unfinished(&self) -> io::Result<Vec<(String, SystemTime)>> {
        list_dir(&self.tmp()).await
    }

    pub async fn remove_unfinished(&self, name: &str) -> io::Result<()> {
        if name.ends_with(".part") && !name.contains('/') {
            tokio::fs::remove_file(self.tmp().join(name)).await?;
        }
        Ok(())
    }
}

async fn list_dir(dir: &Path) -> io::Result<Vec<(String, SystemTime)>> {
    let mut out = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        let meta = entry.metadata().await?;
        if meta.is_file() {
            if let Some(name) = entry.file_name().to_str() {
                out.push((name.to_string(), meta.modified()?));
            }
        }
    }
    Ok(out)
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

/// A blob being written: counts, hashes and keeps the first bytes as they pass.
pub(crate) struct BlobWriter {
    file: Option<tokio::fs::File>,
    path: Option<PathBuf>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl BlobWriter {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file
            .as_mut()
            .expect("written before finish")
            .write_all(chunk)
            .await
    }

    /// Flushes and fsyncs the blob.
    pub async fn finish(mut self) -> io::Result<Written> {
        let mut file = self.file.take().expect("finished once");
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        Ok(Written {
            path: self.path.take(),
            sha256: self.hasher.clone().finalize().into(),
            size: self.size,
            head: std::mem::take(&mut self.head),
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // An upload that breaks off leaves nothing behind.
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A finished blob in `tmp`, not yet stored; removed when dropped uncommitted.
pub(crate) struct Written {
    path: Option<PathBuf>,
    pub sha256: [u8; 32],
    pub size: u64,
    pub head: Vec<u8>,
}

impl Drop for Written {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
