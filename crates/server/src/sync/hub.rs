//! The node-wide side of live queries: the read sets of every subscription on this node, the
//! commit feed that invalidates them, and the feed position connections vouch for.
//!
//! A connection has its queries run (`runs`, shared between identical subscriptions) and
//! registers what each read. The feed task takes every
//! commit in ts order, finds the subscriptions whose read set the commit's writes intersect (the
//! `ReadIndex`), marks those queries dirty on their connection and wakes it, and then advances the
//! position. A connection that reads position P and then takes its dirty set has therefore seen
//! every invalidation up to P: after re-running those queries its results are current as of P,
//! which is the ts its next Transition may claim.
//!
//! A query's snapshot can be older than commits the feed delivers before the query registers, so
//! the last commits are kept, and registering checks the new read set against those after the
//! snapshot.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use store::{Commit, CommitFeed, FeedEvent, ReadSet, Ts};
use tokio::sync::{watch, Notify};

use super::index::{ReadIndex, SubId};
use super::metrics::Metrics;
use super::protocol::QueryId;

/// Commits kept for checking fresh registrations; a query slower than this many commits runs again.
const RECENT_COMMITS: usize = 4096;

/// What the hub tells one connection: which of its queries may have changed.
#[derive(Default)]
pub struct ConnSignal {
    dirty: Mutex<HashSet<QueryId>>,
    pub notify: Notify,
}

impl ConnSignal {
    pub fn mark(&self, query: QueryId) {
        self.dirty.lock().insert(query);
        self.notify.notify_one();
    }

    pub fn mark_all(&self, queries: impl IntoIterator<Item = QueryId>) {
        self.dirty.lock().extend(queries);
        self.notify.notify_one();
    }

    pub fn take(&self) -> HashSet<QueryId> {
        std::mem::take(&mut *self.dirty.lock())
    }
}

struct Sub {
    conn: Arc<ConnSignal>,
    query: QueryId,
    reads: ReadSet,
    /// The snapshot ts of the run that registered this read set; commits up to it are reflected.
    valid_from: Ts,
}

#[derive(Default)]
struct State {
    index: ReadIndex,
    subs: HashMap<SubId, Sub>,
    recent: VecDeque<Commit>,
    /// Commits at or below this ts are no longer in `recent`.
    floor: Ts,
}

pub struct Subscriptions {
    state: Mutex<State>,
    position: watch::Sender<Ts>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Subscriptions {
    /// Starts following `feed`; the position starts at the feed's start.
    pub fn start(
        feed: CommitFeed,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> Arc<Subscriptions> {
        let start = feed.start_ts();
        let subscriptions = Arc::new(Subscriptions {
            state: Mutex::new(State {
                floor: start,
                ..State::default()
            }),
            position: watch::Sender::new(start),
            next_id: AtomicU64::new(1),
            metrics,
        });
        tokio::spawn(follow(Arc::downgrade(&subscriptions), feed, stop));
        subscriptions
    }

    /// Every invalidation up to this ts has been handed to the connections.
    pub fn position(&self) -> Ts {
        *self.position.borrow()
    }

    /// Changes of the position (awaited only by connections waiting for a ts).
    pub fn watch_position(&self) -> watch::Receiver<Ts> {
        self.position.subscribe()
    }

    pub fn new_id(&self) -> SubId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records what a run of `query` read (replacing its previous read set). `reads` is `None` for
    /// runs that failed before reading: nothing can invalidate them. If a commit the feed already
    /// delivered touches the new read set, the query is marked dirty at once.
    pub fn register(
        &self,
        sub: SubId,
        conn: &Arc<ConnSignal>,
        query: QueryId,
        reads: Option<(ReadSet, Ts)>,
    ) {
        let mut state = self.state.lock();
        let (reads, valid_from) = reads.unwrap_or_else(|| (ReadSet::default(), self.position()));
        let previous = state.subs.remove(&sub);
        if let Some(previous) = &previous {
            state.index.remove(sub, &previous.reads);
        } else {
            self.metrics.subscriptions.fetch_add(1, Ordering::Relaxed);
        }
        state.index.insert(sub, &reads);
        let stale = valid_from < state.floor
            || state
                .recent
                .iter()
                .rev()
                .take_while(|commit| commit.ts > valid_from)
                .any(|commit| reads.intersects(&commit.writes));
        state.subs.insert(
            sub,
            Sub {
                conn: conn.clone(),
                query,
                reads,
                valid_from,
            },
        );
        drop(state);
        if stale {
            conn.mark(query);
        }
    }

    pub fn unregister(&self, sub: SubId) {
        let mut state = self.state.lock();
        if let Some(previous) = state.subs.remove(&sub) {
            state.index.remove(sub, &previous.reads);
            self.metrics.subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn apply(&self, event: FeedEvent) {
        let mut state = self.state.lock();
        let position = self.position();
        let mut woken: Vec<(Arc<ConnSignal>, QueryId)> = Vec::new();
        let ts = match event {
            FeedEvent::Commit(commit) if commit.ts <= position => return,
            FeedEvent::Commit(commit) => {
                let mut hits = HashSet::new();
                state.index.affected(&commit.writes, &mut hits);
                for id in hits {
                    if let Some(sub) = state.subs.get(&id) {
                        if sub.valid_from < commit.ts {
                            woken.push((sub.conn.clone(), sub.query));
                        }
                    }
                }
                let ts = commit.ts;
                state.recent.push_back(commit);
                while state.recent.len() > RECENT_COMMITS {
                    if let Some(evicted) = state.recent.pop_front() {
                        state.floor = evicted.ts;
                    }
                }
                self.metrics.commits.fetch_add(1, Ordering::Relaxed);
                ts
            }
            // Commits were missed, or the feed lost the database for a while (runs may have
            // failed meanwhile): every subscription may be out of date.
            FeedEvent::Reset(ts) => {
                tracing::warn!(
                    ts = ts.0,
                    "the commit feed was reset (it fell behind or reconnected); re-running every subscription"
                );
                woken.extend(state.subs.values().map(|sub| (sub.conn.clone(), sub.query)));
                state.recent.clear();
                state.floor = state.floor.max(ts);
                ts.max(position)
            }
        };
        self.metrics
            .invalidations
            .fetch_add(woken.len() as u64, Ordering::Relaxed);
        // Marks land before the position moves, so whoever reads the new position finds them.
        for (conn, query) in &woken {
            conn.mark(*query);
        }
        self.position.send_replace(ts);
        drop(state);
    }
}

/// Applies the feed's events until the feed ends, the server stops or the hub goes away.
async fn follow(
    subscriptions: Weak<Subscriptions>,
    mut feed: CommitFeed,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            event = feed.next() => event,
            _ = super::stopped(&mut stop) => return,
        };
        let Some(event) = event else {
            tracing::warn!("the commit feed ended; live queries no longer update");
            return;
        };
        let Some(subscriptions) = subscriptions.upgrade() else {
            return;
        };
        subscriptions.apply(event);
    }
}
