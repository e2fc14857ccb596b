//! Cluster-wide request/success/error counts per account (`count:{id}`). The request
//! path is untouched: the reconcile loop reads this instance's pool counters and adds
//! what grew since the last flush, in one pipelined round trip.

use super::Cluster;
use crate::dispatch::now_ms;
use crate::state::AppState;
use qgate_pool::AccountId;
use qgate_store::redis::Counts;

/// What grew from `before` to `now`. A counter that went backwards was reset (the account
/// was removed and added again): all of it is new.
fn growth(before: Counts, now: Counts) -> Counts {
    let grown = |b: u64, n: u64| if n >= b { n - b } else { n };
    Counts {
        requests: grown(before.requests, now.requests),
        successes: grown(before.successes, now.successes),
        errors: grown(before.errors, now.errors),
    }
}

impl Cluster {
    /// Add this instance's counter growth to Redis; kept for the next try on failure.
    pub(crate) async fn flush_counts(&self, state: &AppState) {
        let _one_at_a_time = self.flush_turn.lock().await;
        let rt = state.runtime();
        let current: Vec<(AccountId, Counts)> = rt
            .pool
            .snapshot(now_ms())
            .into_iter()
            .map(|s| {
                (
                    s.id,
                    Counts {
                        requests: s.request_count,
                        successes: s.success_count,
                        errors: s.error_count,
                    },
                )
            })
            .collect();
        let deltas: Vec<(AccountId, Counts)> = {
            let flushed = self.flushed.lock();
            current
                .iter()
                .map(|(id, now)| {
                    let before = flushed.get(id).copied().unwrap_or_default();
                    (id.clone(), growth(before, *now))
                })
                .filter(|(_, delta)| !delta.is_zero())
                .collect()
        };
        if deltas.is_empty() {
            return;
        }
        let refs: Vec<(&str, Counts)> = deltas.iter().map(|(id, d)| (id.as_str(), *d)).collect();
        if self.redis.add_counts(&refs).await.is_ok() {
            let mut flushed = self.flushed.lock();
            for (id, now) in current {
                flushed.insert(id, now);
            }
        }
    }

    /// Cluster-wide counts of `ids` (this instance's latest growth included), or `None`
    /// when Redis cannot be read.
    pub async fn cluster_counts(&self, state: &AppState, ids: &[&str]) -> Option<Vec<Counts>> {
        self.flush_counts(state).await;
        self.redis.read_counts(ids).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(requests: u64, successes: u64, errors: u64) -> Counts {
        Counts {
            requests,
            successes,
            errors,
        }
    }

    #[test]
    fn growth_is_the_difference_or_everything_after_a_reset() {
        assert_eq!(growth(c(5, 4, 1), c(8, 6, 2)), c(3, 2, 1));
        assert_eq!(growth(c(5, 4, 1), c(2, 2, 0)), c(2, 2, 0));
        assert!(growth(c(1, 1, 0), c(1, 1, 0)).is_zero());
    }
}
