//! The domain's use cases, written against the ports. No I/O of their own; every effect goes
//! through a trait, and each returns a typed outcome for its caller to report.
//!
//! Layout:
//! - [`break_stale`] (`lock`): break a lock whose holder can no longer be using it.
//! - [`commit`] and [`rollback`] (`journal`): a fenced, journaled change, and its exact undo.
//! - [`discover`]: record where a scale-out's new pairs run, and hand them on as drain nodes.
//! - [`recover`]: repair what a run whose lock was broken as stale left behind.

mod discover;
mod journal;
mod lock;
mod recover;

pub use discover::{discover, Discovery};
pub use journal::{
    commit, note_build, restore_except, rollback, CommitReceipt, RollbackReceipt,
    MAX_PAIR_WRITES_PER_BATCH,
};
pub use lock::{break_stale, BreakOutcome};
pub use recover::{
    assess_stale_run, finish_runs, recover, recover_open, rollback_keeping_removal, OpenRecovery,
    PartialRollback, Recovery, RecoveryAction, StaleRun, MAX_FINISH_RUNS,
};

#[cfg(test)]
mod tests;
