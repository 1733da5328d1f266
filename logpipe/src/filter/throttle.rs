//! The `throttle` filter, with fluent-bit's semantics: time is cut into
//! panes of `Interval`; the last `Window` panes form a sliding window; a
//! record passes while the window's count divided by `Window` (integer
//! division) is below `Rate`, and then counts in the current pane. Records
//! over the rate are dropped and counted ([`Throttle::dropped`]).

use super::{Action, COMMON_KEYS, Filter};
use crate::Result;
use crate::config::Section;
use crate::record::Record;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The throttle filter.
#[derive(Debug)]
pub struct Throttle {
    rate: u64,
    window: usize,
    interval: Duration,
    panes: VecDeque<u64>,
    total: u64,
    pane_start: Option<Instant>,
    dropped: u64,
}

impl Throttle {
    /// A throttle of `rate` records per `interval`, averaged over `window`
    /// intervals.
    pub fn new(rate: u64, window: usize, interval: Duration) -> Throttle {
        let window = window.max(1);
        Throttle {
            rate,
            window,
            interval: interval.max(Duration::from_millis(1)),
            panes: VecDeque::from(vec![0; window]),
            total: 0,
            pane_start: None,
            dropped: 0,
        }
    }

    /// Reads a `[FILTER] Name throttle` section (`Rate` default 1, `Window`
    /// default 5, `Interval` default 1m, `Print_Status` accepted).
    pub fn from_section(s: &Section) -> Result<Throttle> {
        let mut keys = COMMON_KEYS.to_vec();
        keys.extend(["rate", "window", "interval", "print_status"]);
        s.check_keys(&keys)?;
        let rate = s.get_f64("rate")?.unwrap_or(1.0);
        if rate < 0.0 {
            return Err(s.error_at("rate", "Rate must not be negative"));
        }
        let window = s.get_usize("window")?.unwrap_or(5);
        if window == 0 {
            return Err(s.error_at("window", "Window must be at least 1"));
        }
        let interval = s
            .get_duration("interval")?
            .unwrap_or(Duration::from_secs(60));
        if interval.is_zero() {
            return Err(s.error_at("interval", "Interval must be above zero"));
        }
        s.get_bool("print_status")?;
        Ok(Throttle::new(rate as u64, window, interval))
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The decision for a record arriving at `now`.
    pub fn filter_at(&mut self, now: Instant) -> Action {
        let start = *self.pane_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        let steps = (elapsed.as_nanos() / self.interval.as_nanos()) as u64;
        if steps > 0 {
            for _ in 0..steps.min(self.window as u64) {
                let old = self.panes.pop_front().unwrap_or(0);
                self.total -= old;
                self.panes.push_back(0);
            }
            let advance = self
                .interval
                .saturating_mul(steps.min(u32::MAX as u64) as u32);
            self.pane_start = Some(start + advance);
        }
        if self.total / self.window as u64 >= self.rate {
            self.dropped += 1;
            return Action::Drop;
        }
        if let Some(cur) = self.panes.back_mut() {
            *cur += 1;
        }
        self.total += 1;
        Action::Keep
    }
}

impl Filter for Throttle {
    fn filter(&mut self, _rec: &mut Record) -> Action {
        self.filter_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_over_window() {
        // Rate 2 per second averaged over 2 panes: up to 4 in the window.
        let mut t = Throttle::new(2, 2, Duration::from_secs(1));
        let t0 = Instant::now();
        let kept = (0..10).filter(|_| t.filter_at(t0) == Action::Keep).count();
        assert_eq!(kept, 4);
        assert_eq!(t.dropped(), 6);
        // One pane later, the window still holds 4: nothing passes.
        assert_eq!(t.filter_at(t0 + Duration::from_millis(1500)), Action::Drop);
        // Two panes later, the 4 have slid out.
        let kept = (0..10)
            .filter(|_| t.filter_at(t0 + Duration::from_millis(2100)) == Action::Keep)
            .count();
        assert_eq!(kept, 4);
        // Long idle: the window empties, no overflow.
        assert_eq!(t.filter_at(t0 + Duration::from_secs(100_000)), Action::Keep);
    }
}
