//! The blobs themselves, in a local directory: `blobs/<storage id>` for stored files and
//! `tmp/<random>.part` for uploads in progress. A blob is written to `tmp`, fsynced, renamed into
//! `blobs` and the directory fsynced before its metadata commits, so an acknowledged file is on
//! disk; a crash in between leaves only files without metadata, which the sweep removes.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// How many leading bytes are kept to recognise the file type.
const HEAD: usize = 8192;

#[derive(Clone, Debug)]
pub(crate) struct LocalBlobs {
    root: PathBuf,
}

/// A storage id names a file on disk, so only the characters we generate are accepted.
pub(crate) fn valid_storage_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl LocalBlobs {
    pub fn new(root: PathBuf) -> LocalBlobs {
        LocalBlobs { root }
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

    /// Where a stored file lives; `None` for ids we never generate.
    pub fn path(&self, storage_id: &str) -> Option<PathBuf> {
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
        let from = written.path.take().expect("a written blob has a path");
        tokio::fs::rename(&from, &target).await?;
        sync_dir(&self.blobs()).await
    }

    pub async fn remove(&self, storage_id: &str) -> io::Result<()> {
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
        list_dir(&self.blobs()).await
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
