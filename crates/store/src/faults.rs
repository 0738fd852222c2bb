//! Injected faults, for the tests of what clients see when the database misbehaves. Switched on
//! per store (`Store::inject_fault`), never by configuration; a store without one pays one atomic
//! load per commit.

use std::sync::atomic::{AtomicU8, Ordering};

/// A fault a store can be told to simulate (tests only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Every write fails as on a full disk (SQLite: `SQLITE_FULL`; PostgreSQL: `53100`), health
    /// probes included.
    DiskFull = 1,
    /// PostgreSQL: COMMIT succeeds but its answer is lost with the connection, as when the
    /// network drops right after the COMMIT went out. The outcome is then looked up.
    CommitReplyLost = 2,
    /// PostgreSQL: the connection is killed just before COMMIT is sent, so the transaction
    /// aborts; to the client it looks the same as `CommitReplyLost`.
    CommitConnectionKilled = 3,
    /// PostgreSQL: like `CommitReplyLost`, and the database stays unreachable for the lookup.
    CommitUnknowable = 4,
}

/// The fault in force, if any.
#[derive(Default)]
pub(crate) struct Faults(AtomicU8);

impl Faults {
    pub fn set(&self, fault: Option<Fault>) {
        self.0.store(fault.map_or(0, |f| f as u8), Ordering::SeqCst);
    }

    pub fn get(&self) -> Option<Fault> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(Fault::DiskFull),
            2 => Some(Fault::CommitReplyLost),
            3 => Some(Fault::CommitConnectionKilled),
            4 => Some(Fault::CommitUnknowable),
            _ => None,
        }
    }

    pub fn is(&self, fault: Fault) -> bool {
        self.get() == Some(fault)
    }
}
