//! The sweep of what file storage leaves behind: upload URLs past their expiry, uploads that broke
//! off (a crash mid-upload leaves a `.part` file), and blobs without metadata (deleted files, or a
//! crash between writing a blob and recording it). Only things older than `min_age_ms` go, so an
//! upload in progress is never touched.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use store::StoreError;
use values::Typed;

use super::{find_file, io_error, UPLOADS};
use crate::crons::Schedule;
use crate::{ActionCtx, FnResult, FunctionError, FunctionRef, Registry};

#[derive(Serialize, Deserialize, Typed)]
pub struct SweepArgs {
    /// Leave alone whatever is younger than this (ms).
    pub min_age_ms: f64,
}

#[derive(Serialize, Deserialize, Typed, Debug, Default)]
pub struct Swept {
    pub expired_upload_urls: f64,
    pub unfinished_uploads: f64,
    pub orphaned_blobs: f64,
}

pub const SWEEP: FunctionRef<SweepArgs, Swept> = FunctionRef::internal_action("storage:sweep");

/// An hour: far longer than any upload may take (the body deadline is much shorter).
const MIN_AGE: Duration = Duration::from_secs(3600);
const BATCH: usize = 200;

/// Declares the sweep and its hourly cron.
pub fn register(r: &mut Registry) {
    r.internal_action(SWEEP, sweep);
    r.cron(
        "sweep file storage",
        Schedule::every(Duration::from_secs(3600)),
        SWEEP,
        &SweepArgs {
            min_age_ms: MIN_AGE.as_secs_f64() * 1000.0,
        },
    );
}

async fn sweep(ctx: ActionCtx, args: SweepArgs) -> FnResult<Swept> {
    let Some(files) = ctx.runtime.storage().cloned() else {
        return Ok(Swept::default());
    };
    let store = ctx.runtime.store().clone();
    let mut swept = Swept::default();
    loop {
        let (deleted, _, _) = store
            .mutate(|txn| {
                let now = txn.now_ms();
                let old = txn
                    .query(UPLOADS)?
                    .with_index("by_expires_at", |q| q.lt("expires_at", now))?
                    .take(BATCH)?;
                for doc in &old {
                    txn.delete(&doc.id)?;
                }
                Ok::<_, StoreError>(old.len())
            })
            .await?;
        swept.expired_upload_urls += deleted as f64;
        if deleted < BATCH {
            break;
        }
    }
    let cutoff = SystemTime::now() - Duration::from_secs_f64(args.min_age_ms.max(0.0) / 1000.0);
    let blobs = &files.inner.blobs;
    for (name, modified) in blobs.list_unfinished().await.map_err(io_error)? {
        if modified <= cutoff {
            blobs.remove_unfinished(&name).await.map_err(io_error)?;
            swept.unfinished_uploads += 1.0;
        }
    }
    let old: Vec<String> = blobs
        .list()
        .await
        .map_err(io_error)?
        .into_iter()
        .filter(|(_, modified)| *modified <= cutoff)
        .map(|(name, _)| name)
        .collect();
    for batch in old.chunks(BATCH) {
        let names = batch.to_vec();
        let (orphans, _, _) = store
            .query(move |txn| {
                let mut orphans = Vec::new();
                for name in &names {
                    if find_file(txn, name)?.is_none() {
                        orphans.push(name.clone());
                    }
                }
                Ok::<_, FunctionError>(orphans)
            })
            .await?;
        for name in orphans {
            blobs.remove(&name).await.map_err(io_error)?;
            swept.orphaned_blobs += 1.0;
        }
    }
    if swept.orphaned_blobs + swept.unfinished_uploads > 0.0 {
        tracing::info!(
            unfinished = swept.unfinished_uploads,
            orphaned = swept.orphaned_blobs,
            "file storage swept"
        );
    }
    Ok(swept)
}
