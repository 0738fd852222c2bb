//! Counters of the sync layer, rendered in the Prometheus text format at `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use store::Ts;

#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicI64,
    pub connections_total: AtomicU64,
    pub subscriptions: AtomicI64,
    pub commits: AtomicU64,
    pub invalidations: AtomicU64,
    pub reruns: AtomicU64,
    pub shared_runs: AtomicU64,
    pub pushes: AtomicU64,
    pub transitions: AtomicU64,
    pub mutations: AtomicU64,
    pub mutation_replays: AtomicU64,
    pub actions: AtomicU64,
    pub slow_client_disconnects: AtomicU64,
    pub protocol_errors: AtomicU64,
}

impl Metrics {
    pub fn render(&self, position: Ts) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
        let gauge = |value: &AtomicI64| value.load(Ordering::Relaxed).max(0).to_string();
        let rows: [(&str, &str, &str, String); 15] = [
            (
                "sync_connections",
                "gauge",
                "Open WebSocket sync connections.",
                gauge(&self.connections),
            ),
            (
                "sync_connections_total",
                "counter",
                "WebSocket sync connections accepted.",
                get(&self.connections_total),
            ),
            (
                "sync_subscriptions",
                "gauge",
                "Live query subscriptions on this node.",
                gauge(&self.subscriptions),
            ),
            (
                "sync_commits_total",
                "counter",
                "Commits the commit feed delivered to this node.",
                get(&self.commits),
            ),
            (
                "sync_invalidations_total",
                "counter",
                "Subscriptions a commit's writes intersected.",
                get(&self.invalidations),
            ),
            (
                "sync_query_runs_total",
                "counter",
                "Subscription query runs (first runs and re-runs; shared runs count once).",
                get(&self.reruns),
            ),
            (
                "sync_query_shared_runs_total",
                "counter",
                "Subscriptions served by a run another identical subscription asked for.",
                get(&self.shared_runs),
            ),
            (
                "sync_query_pushes_total",
                "counter",
                "Changed query results sent to clients.",
                get(&self.pushes),
            ),
            (
                "sync_transitions_total",
                "counter",
                "Transition messages sent.",
                get(&self.transitions),
            ),
            (
                "sync_mutations_total",
                "counter",
                "Mutations received over WebSocket.",
                get(&self.mutations),
            ),
            (
                "sync_mutation_replays_total",
                "counter",
                "Retried mutations answered from the record of their first run.",
                get(&self.mutation_replays),
            ),
            (
                "sync_actions_total",
                "counter",
                "Actions received over WebSocket.",
                get(&self.actions),
            ),
            (
                "sync_slow_client_disconnects_total",
                "counter",
                "Connections closed because the client did not read its messages.",
                get(&self.slow_client_disconnects),
            ),
            (
                "sync_protocol_errors_total",
                "counter",
                "Connections closed for a protocol error or a limit.",
                get(&self.protocol_errors),
            ),
            (
                "sync_feed_position",
                "gauge",
                "The commit ts (ns since the epoch) up to which subscriptions are invalidated.",
                position.0.to_string(),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP supportsignal_{name} {help}");
            let _ = writeln!(out, "# TYPE supportsignal_{name} {kind}");
            let _ = writeln!(out, "supportsignal_{name} {value}");
        }
        out
    }
}
