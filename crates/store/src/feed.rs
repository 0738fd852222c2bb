//! The commit feed: every commit's ts and write set, in ts order, for live queries.
//!
//! SQLite has one server process, so its feed is the in-process broadcast of commits, plus a
//! once-a-second look at the file for commits another process (a CLI command) made. PostgreSQL may have
//! several server nodes writing, so its feed tails `ss_commit_log` in ts order: woken by
//! `LISTEN ss_commits` (every commit NOTIFYs) and by a periodic poll should a notification be lost.
//! Commits become visible in ts order (see `persistence/postgres/mod.rs`), so reading the log after the
//! last ts seen never skips one that becomes visible later.
//!
//! The log is pruned (see `persistence/postgres/prune.rs`): a reader that finds rows it has not read
//! deleted delivers a `Reset` and carries on from the newest commit.
//!
//! A tailer that lost its connection reconnects with backoff and goes on from where it was, so no
//! commit is skipped; once reconnected it also delivers a `Reset` at that position, because work
//! done on the commits' behalf while the database was away (re-running live queries) may have
//! failed.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::store::{Backend, Commit};
use crate::{Result, Store, StoreError, Ts, WriteSet};

/// Fallback poll of the commit log when no notification arrives.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Rows read from the commit log per round trip.
const BATCH: i64 = 512;
/// How often a SQLite feed checks the file for commits of another process (a CLI command run
/// beside the server); those reach live queries within about this long.
const FOREIGN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a commit of this process may take from the file to its publication.
const OWN_COMMIT_GRACE: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts of the tailer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the feed delivers.
#[derive(Clone, Debug)]
pub enum FeedEvent {
    /// One commit; commits arrive in strictly increasing ts order.
    Commit(Commit),
    /// The reader fell behind and some commits up to `ts` were skipped, or the feed lost the
    /// database for a while and is back: anything may have changed.
    Reset(Ts),
}

/// A stream of commits starting after `start_ts`.
pub struct CommitFeed {
    start: Ts,
    source: Source,
}

enum Source {
    Local {
        commits: broadcast::Receiver<Commit>,
        store: Store,
        /// Looks for commits made by another process on the same file (a CLI command).
        poll: tokio::time::Interval,
    },
    Log(mpsc::Receiver<FeedEvent>),
}

impl CommitFeed {
    /// Every commit after this ts is delivered; none at or before it is.
    pub fn start_ts(&self) -> Ts {
        self.start
    }

    /// The next event, or `None` once the store is gone.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        match &mut self.source {
            Source::Local {
                commits,
                store,
                poll,
            } => loop {
                let received = tokio::select! {
                    received = commits.recv() => received,
                    _ = poll.tick() => match foreign_commit(store, self.start).await {
                        // Its write set is unknown here: anything may have changed.
                        Some(ts) => {
                            self.start = ts;
                            return Some(FeedEvent::Reset(ts));
                        }
                        None => continue,
                    },
                };
                match received {
                    Ok(commit) if commit.ts <= self.start => continue,
                    Ok(commit) => {
                        self.start = commit.ts;
                        return Some(FeedEvent::Commit(commit));
                    }
                    // The broadcast keeps the latest commits only; `last_ts` is published before
                    // each send, so it covers every skipped one.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let ts = store.last_ts().max(self.start);
                        self.start = ts;
                        return Some(FeedEvent::Reset(ts));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
            Source::Log(events) => {
                let event = events.recv().await?;
                self.start = match &event {
                    FeedEvent::Commit(commit) => commit.ts,
                    FeedEvent::Reset(ts) => *ts,
                };
                Some(event)
            }
        }
    }
}

impl Store {
    /// A feed of the commits made after this call by any process sharing the database.
    pub async fn commit_feed(&self) -> Result<CommitFeed> {
        match self.backend_config() {
            Backend::Sqlite { .. } => {
                // Subscribe before reading the last ts, so no commit falls between the two.
                let commits = self.subscribe();
                let mut poll = tokio::time::interval(FOREIGN_POLL_INTERVAL);
                poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                Ok(CommitFeed {
                    start: self.last_ts(),
                    source: Source::Local {
                        commits,
                        store: self.clone(),
                        poll,
                    },
                })
            }
            Backend::Postgres { url } => {
                let mut config: tokio_postgres::Config = url
                    .parse()
                    .map_err(|e| StoreError::Invalid(format!("Invalid PostgreSQL URL: {e}")))?;
                // Names the tailer's session in `pg_stat_activity`.
                if config.get_application_name().is_none() {
                    config.application_name("ss_commit_feed");
                }
                let tailer = Tailer::connect(&config).await?;
                // The largest visible ts, not the sequence: a ts taken by a commit still in flight
                // must be delivered once it lands.
                let start = tailer.max_visible_ts().await?;
                let (events, receiver) = mpsc::channel(1024);
                tokio::spawn(tail(config, tailer, start, events));
                Ok(CommitFeed {
                    start,
                    source: Source::Log(receiver),
                })
            }
        }
    }
}

/// The ts of a commit that another process made to this SQLite file after `seen`, if any. The
/// database's last ts runs ahead of what this process has published only between one of its own
/// commits and the publishing right after it, so a lead that outlasts a short wait is foreign.
async fn foreign_commit(store: &Store, seen: Ts) -> Option<Ts> {
    let stored = store.query(|_| Ok::<_, StoreError>(())).await.ok()?.2;
    if stored <= seen.max(store.last_ts()) {
        return None;
    }
    tokio::time::sleep(OWN_COMMIT_GRACE).await;
    (store.last_ts() < stored).then_some(stored)
}

/// A connection listening on `ss_commits`, with its notifications forwarded to `wake`.
struct Tailer {
    client: tokio_postgres::Client,
    wake: mpsc::Receiver<()>,
    /// Prepared once per connection: the log after a ts, and the prune marker.
    rows_after: tokio_postgres::Statement,
    pruned_through: tokio_postgres::Statement,
}

impl Tailer {
    async fn connect(config: &tokio_postgres::Config) -> Result<Tailer> {
        let (client, mut connection) = config.connect(NoTls).await.map_err(|e| {
            StoreError::Unavailable(format!("commit feed cannot connect to PostgreSQL: {e}"))
        })?;
        let (notify, wake) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    // One pending wake-up covers any number of notifications.
                    Ok(AsyncMessage::Notification(_)) => {
                        let _ = notify.try_send(());
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "commit feed connection failed");
                        break;
                    }
                }
            }
            // Dropping `notify` tells the tailer the connection is gone.
        });
        client
            .batch_execute("LISTEN ss_commits")
            .await
            .map_err(pg_error)?;
        let rows_after = client
            .prepare("SELECT ts, writes FROM ss_commit_log WHERE ts > $1 ORDER BY ts LIMIT $2")
            .await
            .map_err(pg_error)?;
        let pruned_through = client
            .prepare("SELECT pruned_through FROM ss_commit_log_pruned")
            .await
            .map_err(pg_error)?;
        Ok(Tailer {
            client,
            wake,
            rows_after,
            pruned_through,
        })
    }

    async fn max_visible_ts(&self) -> Result<Ts> {
        let row = self
            .client
            .query_one("SELECT COALESCE(max(ts), 0) FROM ss_commit_log", &[])
            .await
            .map_err(pg_error)?;
        Ok(Ts(row.get::<_, i64>(0) as u64))
    }

    /// Commits after `after`, in ts order, or `Gap` when some of them were pruned.
    ///
    /// The marker is read after the rows, in a later snapshot. A pruner deletes rows and raises
    /// the marker in one transaction, so any prune that took rows after `after` away from the
    /// first snapshot has raised the marker the second one sees: a marker at or below `after`
    /// means the rows are complete. (Read before the rows, a prune landing in between would go
    /// unnoticed. One statement joining both measured 2-4 ms more from commit to first update.)
    async fn read_after(&self, after: Ts) -> Result<Read> {
        let rows = self
            .client
            .query(&self.rows_after, &[&(after.0 as i64), &BATCH])
            .await
            .map_err(pg_error)?;
        let marker = self
            .client
            .query_opt(&self.pruned_through, &[])
            .await
            .map_err(pg_error)?
            .map_or(0, |row| row.get::<_, i64>(0));
        if marker as u64 > after.0 {
            return Ok(Read::Gap(Ts(marker as u64)));
        }
        rows.iter()
            .map(|row| {
                let ts = Ts(row.get::<_, i64>(0) as u64);
                let bytes: &[u8] = row.get(1);
                let writes = WriteSet::from_bytes(bytes).ok_or_else(|| {
                    StoreError::Internal(format!("commit log entry {} does not decode", ts.0))
                })?;
                Ok(Commit { ts, writes })
            })
            .collect::<Result<_>>()
            .map(Read::Commits)
    }
}

/// What one read of the commit log found.
enum Read {
    Commits(Vec<Commit>),
    /// Entries after the position, up to this ts, were pruned before this reader got to them.
    Gap(Ts),
}

/// Follows the commit log until the feed's reader goes away, reconnecting after failures. The
/// position survives reconnections, so nothing is skipped.
async fn tail(
    config: tokio_postgres::Config,
    first: Tailer,
    mut position: Ts,
    events: mpsc::Sender<FeedEvent>,
) {
    let mut tailer = Some(first);
    let mut backoff = Duration::from_millis(50);
    // Whether the connection was lost since the last event: then readers are told to re-run
    // what may have failed meanwhile.
    let mut resumed = false;
    loop {
        let mut current = match tailer.take() {
            Some(current) => current,
            None => match Tailer::connect(&config).await {
                Ok(current) => {
                    tracing::info!(ts = position.0, "commit feed: reconnected");
                    current
                }
                Err(error) => {
                    tracing::warn!(%error, "commit feed: reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = events.closed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        match follow(&mut current, &mut position, &events, &mut resumed).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "commit feed: lost the connection, reconnecting");
                resumed = true;
                backoff = Duration::from_millis(50);
            }
        }
    }
}

/// Reads the log until the connection fails (`Err`) or the reader goes away (`Ok`). With
/// `resumed` (the feed is back after losing the database) the first event is a `Reset`.
async fn follow(
    tailer: &mut Tailer,
    position: &mut Ts,
    events: &mpsc::Sender<FeedEvent>,
    resumed: &mut bool,
) -> Result<()> {
    loop {
        let commits = match tailer.read_after(*position).await? {
            Read::Commits(commits) => commits,
            Read::Gap(pruned_through) => {
                // The newest row is never pruned, so it is above the marker and this ts covers
                // every missing commit; the feed goes on after it.
                let ts = tailer.max_visible_ts().await?.max(pruned_through);
                if events.send(FeedEvent::Reset(ts)).await.is_err() {
                    return Ok(());
                }
                *position = ts;
                *resumed = false;
                continue;
            }
        };
        if std::mem::take(resumed) {
            // Nothing was skipped: the commits after `position` still follow one by one.
            if events.send(FeedEvent::Reset(*position)).await.is_err() {
                return Ok(());
            }
        }
        let full = commits.len() as i64 == BATCH;
        for commit in commits {
            let ts = commit.ts;
            if events.send(FeedEvent::Commit(commit)).await.is_err() {
                return Ok(());
            }
            *position = ts;
        }
        if full {
            continue;
        }
        tokio::select! {
            woken = tailer.wake.recv() => {
                if woken.is_none() {
                    return Err(StoreError::Unavailable("the LISTEN connection closed".into()));
                }
            }
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = events.closed() => return Ok(()),
        }
    }
}

fn pg_error(error: tokio_postgres::Error) -> StoreError {
    let detail = match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    };
    StoreError::Unavailable(format!("commit feed: {detail}"))
}
