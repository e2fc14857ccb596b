//! Per-account requests-per-minute limit as an exact sliding window: the start times of
//! the requests of the last 60 s. A fixed window would let twice the limit through
//! around a minute boundary, which is exactly the burst an upstream rate limiter punishes.
//! Memory is bounded by the limit (refused requests are never recorded).

use std::collections::VecDeque;

pub(crate) const WINDOW_MS: u64 = 60_000;

#[derive(Debug, Default)]
pub(crate) struct RpmWindow {
    starts: VecDeque<u64>,
}

impl RpmWindow {
    fn expire(&mut self, now_ms: u64) {
        while self
            .starts
            .front()
            .is_some_and(|&t| t.saturating_add(WINDOW_MS) <= now_ms)
        {
            self.starts.pop_front();
        }
    }

    /// Record a request at `now_ms` if the limit allows; otherwise say until when the
    /// window stays full, recording nothing.
    pub fn try_take(&mut self, limit: u32, now_ms: u64) -> Result<(), u64> {
        self.expire(now_ms);
        if self.starts.len() < limit as usize {
            self.starts.push_back(now_ms);
            return Ok(());
        }
        let oldest = self.starts.front().copied().unwrap_or(now_ms);
        Err(oldest.saturating_add(WINDOW_MS))
    }

    /// Requests counted in the window ending at `now_ms` (read-only).
    pub fn used(&self, now_ms: u64) -> u32 {
        let live = self
            .starts
            .iter()
            .filter(|&&t| t.saturating_add(WINDOW_MS) > now_ms)
            .count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_instead_of_resetting_on_minute_boundaries() {
        let mut w = RpmWindow::default();
        assert_eq!(w.try_take(2, 59_000), Ok(()));
        assert_eq!(w.try_take(2, 59_500), Ok(()));
        // a fixed window would reset at 60 000; the sliding one stays full
        assert_eq!(w.try_take(2, 60_001), Err(119_000));
        assert_eq!(w.used(60_001), 2);
        assert_eq!(w.try_take(2, 119_000), Ok(()));
        assert_eq!(w.try_take(2, 119_001), Err(119_500));
        assert_eq!(w.used(119_500), 1);
    }

    #[test]
    fn refusals_do_not_consume_budget() {
        let mut w = RpmWindow::default();
        assert_eq!(w.try_take(1, 0), Ok(()));
        for t in 1..100 {
            assert_eq!(w.try_take(1, t), Err(60_000));
        }
        assert_eq!(w.try_take(1, 60_000), Ok(()));
    }
}
