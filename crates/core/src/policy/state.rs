//! What the policy keeps between two evaluations: the recommendations still inside the
//! stabilisation window (a scale-in follows the highest of them), and the operator's switch
//! that stops it acting. One record per fleet, changed only by conditional writes: two
//! evaluations that overlap (a retried invocation, the alarm rule and the schedule in the
//! same minute) each see the other's recommendation or retry, never lose it.

use crate::error::{Error, Result};
use crate::ids::Timestamp;
use serde::{Deserialize, Serialize};

use super::Recommendation;

/// The longest reason a suspension may give.
pub const MAX_SUSPEND_REASON_LEN: usize = 500;

/// Who stopped the policy acting, when and why. While it stands, evaluations decide and
/// report and start no run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Suspension {
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

impl Suspension {
    /// A suspension with a reason that says why, within [`MAX_SUSPEND_REASON_LEN`].
    pub fn new(by: &str, at: Timestamp, reason: &str) -> Result<Suspension> {
        if reason.trim().is_empty() || reason.len() > MAX_SUSPEND_REASON_LEN {
            return Err(Error::invalid(
                "reason",
                reason,
                format!("say why, in at most {MAX_SUSPEND_REASON_LEN} characters"),
            ));
        }
        if by.trim().is_empty() || by.len() > 200 {
            return Err(Error::invalid(
                "by",
                by,
                "say who, in at most 200 characters",
            ));
        }
        Ok(Suspension {
            by: by.to_string(),
            at,
            reason: reason.to_string(),
        })
    }
}

/// The policy's record of one fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicyState {
    /// The recommendations of earlier evaluations still inside the stabilisation window.
    pub recent: Vec<Recommendation>,
    /// Set by `pairscale policy suspend`, cleared by `resume`.
    pub suspended: Option<Suspension>,
    /// The record's version: every write names the version it read and makes the next one
    /// (0: no record yet).
    pub version: u64,
}

/// The recommendations to keep: `ours` merged with what a concurrent evaluation kept, at most
/// one per instant (the higher wins, as the window's rule does), oldest first. A doubled
/// evaluation of the same minute therefore keeps one recommendation, not two.
pub fn merge(theirs: &[Recommendation], ours: &[Recommendation]) -> Vec<Recommendation> {
    let mut all: Vec<Recommendation> = theirs.iter().chain(ours).copied().collect();
    all.sort_by_key(|r| (r.at, std::cmp::Reverse(r.pairs)));
    all.dedup_by_key(|r| r.at);
    all
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(at: i64, pairs: u32) -> Recommendation {
        Recommendation {
            at: Timestamp(at),
            pairs,
            load_channels: None,
            arrivals_per_minute: None,
        }
    }

    #[test]
    fn a_merge_keeps_one_recommendation_per_instant_the_higher() {
        assert_eq!(
            merge(&[r(1, 3), r(2, 5)], &[r(2, 4), r(3, 1)]),
            vec![r(1, 3), r(2, 5), r(3, 1)]
        );
        assert_eq!(merge(&[r(2, 4)], &[r(2, 6)]), vec![r(2, 6)]);
        assert_eq!(merge(&[], &[r(2, 6), r(2, 6)]), vec![r(2, 6)]);
    }

    #[test]
    fn a_suspension_says_who_and_why() {
        assert!(Suspension::new("alice", Timestamp(1), "maintenance").is_ok());
        let e = Suspension::new("alice", Timestamp(1), "  ").unwrap_err();
        assert!(e.to_string().contains("reason"), "{e}");
        let long = "x".repeat(MAX_SUSPEND_REASON_LEN + 1);
        assert!(Suspension::new("alice", Timestamp(1), &long).is_err());
        assert!(Suspension::new("", Timestamp(1), "why").is_err());
    }
}
