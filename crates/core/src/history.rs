//! The execution history budget.
//!
//! Step Functions keeps at most 25,000 events in one execution's history; a run that needs
//! more is ended by the service at once, with no Catch, no undo and no release of its lock.
//! A run's longest stretches are its loops: the drain wait (one round every
//! `drain.check_interval_seconds`, up to the policy's limit) and the poll of each build (one
//! round every `build_poll_seconds`, up to `build_timeout_seconds`, which every retry of a
//! Terraform build shares). So a fleet configuration
//! is refused when its worst run could pass [`BUDGET`] events, which leaves the rest of the
//! limit for retries.
//!
//! The figures below are the definition's (`statemachines/scale.asl.json`);
//! `crates/core/tests/history.rs` computes them from it and fails when they drift.

use crate::fleet::{DrainPolicy, FleetConfig};

/// Step Functions' own limit on an execution's history.
pub const LIMIT: u64 = 25_000;
/// What a run may plan to use: the rest of [`LIMIT`] is for retries.
pub const BUDGET: u64 = 20_000;
const _: () = assert!(BUDGET < LIMIT);

/// History events of one state of each type: entered and exited, and for a Task also
/// scheduled, started and succeeded.
pub const TASK_EVENTS: u64 = 5;
pub const OTHER_STATE_EVENTS: u64 = 2;

/// One round of the drain wait: `In: drain wait` (Wait), `In: drain heartbeat` (Task),
/// `In: drain check` (Task), `In: drain decision` (Choice).
pub const DRAIN_ROUND_EVENTS: u64 = 2 * TASK_EVENTS + 2 * OTHER_STATE_EVENTS;
/// Rounds the last look before the destroy adds to the drain's (`In: confirm wait`, `In:
/// confirm heartbeat`, `In: confirm empty`, `In: confirm decision`: a drain round). It shares
/// the drain's start, limit and force count, so it adds only one round at each end; its
/// hang-up rounds count among [`FORCE_ROUNDS`] and are shorter than the drain's.
pub const CONFIRM_EXTRA_ROUNDS: u64 = 2;
/// One round of a build's poll: `Wait`, `Heartbeat` (Task), `Status` (Task), `Finished?`
/// (Choice).
pub const BUILD_ROUND_EVENTS: u64 = 2 * TASK_EVENTS + 2 * OTHER_STATE_EVENTS;
/// One round of a scale-out's health-check wait: `Out: wait until healthy` (Task, failed),
/// `Out: not healthy yet` (Pass), `Out: still waiting for health?` (Choice), `Out: health wait`
/// (Wait), `Out: health heartbeat` (Task).
pub const HEALTH_ROUND_EVENTS: u64 = 2 * TASK_EVENTS + 3 * OTHER_STATE_EVENTS;
/// The rounds of the health-check wait before the run gives up on the new nodes.
pub const HEALTH_ROUNDS: u64 = 24;
/// One item of an inline Map of status updates: iteration started and succeeded, and the
/// states the item passes (up to four, in `In: settle candidates`).
pub const MAP_ITEM_EVENTS: u64 = 10;
/// Hang-up rounds under policy `force` before the run gives up (`In: count forced hangups`),
/// each a drain round and then [`FORCE_ROUND_EVENTS`] and a Map over the pairs chosen.
pub const FORCE_ROUNDS: u64 = 5;
/// The hangups of one force round: `In: count forced hangups` (Pass), `In: too many forced
/// hangups?` and `In: anything to cut?` (Choices), `In: mark chosen drained` (a Map, its items
/// counted apart), `In: commit chosen` (Task), `In: note calls hung up` (Pass), `In: force
/// hangups` (Task).
pub const FORCE_ROUND_EVENTS: u64 = 2 * TASK_EVENTS + 5 * OTHER_STATE_EVENTS;
/// Everything outside the loops and Maps, bounded by every state of the definition taken once
/// as a Task.
pub const STRAIGHT_EVENTS: u64 = 1_500;
/// Builds one run polls at most: a scale-out's Terraform and Ansible, then the two builds that
/// undo them (or the warm pool's refill, which comes only after the count is committed, where
/// nothing is undone: three); a scale-in's Ansible and Terraform.
pub const SCALE_OUT_BUILDS: u64 = 4;
/// The build loops of a scale-out's branch: the four above and the refill.
pub const SCALE_OUT_BUILD_LOOPS: u64 = 5;
pub const SCALE_IN_BUILDS: u64 = 2;
/// Before either, the builds that undo what an earlier, unfinished scale-out left
/// (`Recover: ansible`, `Recover: terraform`).
pub const RECOVERY_BUILDS: u64 = 2;
/// Of those, the Terraform builds, which are started again after a transient failure (up to
/// `build_retries` times each): a scale-out's and its undo, or its and the refill.
pub const SCALE_OUT_TERRAFORM_BUILDS: u64 = 2;
/// The Terraform build loops of a scale-out's branch: its own, the undo and the refill.
pub const SCALE_OUT_TERRAFORM_LOOPS: u64 = 3;
pub const SCALE_IN_TERRAFORM_BUILDS: u64 = 1;
pub const RECOVERY_TERRAFORM_BUILDS: u64 = 1;
/// Build rounds one retry adds at most. Its attempts share the step's deadline, so their polls
/// and the waits between them (rounds of the back-off: `Back off?`, `Back off wait`, `Back off
/// heartbeat`, `Back off count`, no longer than a poll round) fit in the one deadline's rounds;
/// each retry adds a round at each end of its poll, one for the back-off's last short round,
/// and one for `Start again` with the back-off's way out.
pub const RETRY_ROUNDS: u64 = 4;

/// Inline Maps one run passes at most (a scale-in marks its candidates, then settles them).
pub const MAPS_PER_RUN: u64 = 2;

/// A run's worst history, and which loop weighs most in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorstCase {
    /// The most history events one run of this fleet can take, retries aside.
    pub events: u64,
    /// The drain loop's share (its rounds and the force rounds).
    pub drain_events: u64,
    /// One build poll loop's share.
    pub build_events: u64,
}

/// The worst run of a fleet with this configuration.
pub fn worst_case(c: &FleetConfig) -> WorstCase {
    let d = &c.drain;
    let drain_limit = match d.policy {
        DrainPolicy::Wait => d.hard_max_seconds.unwrap_or(d.deadline_seconds),
        DrainPolicy::Force | DrainPolicy::Abort => d.deadline_seconds,
    };
    let interval = d.check_interval_seconds.max(1);
    // Every round to the limit, one more at each end (and at each end of the last look
    // before the destroy), and the force rounds (each a drain round, its hangups, and a Map
    // over the pairs chosen: at most max_step).
    let drain = (drain_limit / interval + 2 + CONFIRM_EXTRA_ROUNDS)
        .saturating_mul(DRAIN_ROUND_EVENTS)
        .saturating_add(
            FORCE_ROUNDS
                * (DRAIN_ROUND_EVENTS
                    + FORCE_ROUND_EVENTS
                    + u64::from(c.max_step) * MAP_ITEM_EVENTS),
        );
    let poll = c.build_poll_seconds.max(1);
    let build = (c.build_timeout_seconds / poll + 2) * BUILD_ROUND_EVENTS;
    let retries = u64::from(c.build_retries) * RETRY_ROUNDS * BUILD_ROUND_EVENTS;
    let scale_in = drain
        .saturating_add((RECOVERY_BUILDS + SCALE_IN_BUILDS) * build)
        .saturating_add((RECOVERY_TERRAFORM_BUILDS + SCALE_IN_TERRAFORM_BUILDS) * retries);
    let scale_out = ((RECOVERY_BUILDS + SCALE_OUT_BUILDS) * build)
        .saturating_add((RECOVERY_TERRAFORM_BUILDS + SCALE_OUT_TERRAFORM_BUILDS) * retries)
        .saturating_add((HEALTH_ROUNDS + 1) * HEALTH_ROUND_EVENTS);
    // A scale-in's Maps go over its candidates: the pairs it removes and its spares.
    let maps = MAPS_PER_RUN * (u64::from(c.max_step) + u64::from(c.race_spares)) * MAP_ITEM_EVENTS;
    WorstCase {
        events: STRAIGHT_EVENTS
            .saturating_add(scale_in.max(scale_out))
            .saturating_add(maps),
        drain_events: drain,
        build_events: build,
    }
}

/// The most history events one run of this fleet can take, retries aside.
pub fn worst_case_events(c: &FleetConfig) -> u64 {
    worst_case(c).events
}
