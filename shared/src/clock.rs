//! Injected time. Retention, windows and expiry are all decided against a [`Clock`], so tests move time
//! instead of sleeping (the mini-redis approach).

use std::fmt;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// The clock skew allowed to a date an operator gives (a termination's, a sweep's): a little ahead of
/// or behind this machine's clock is a clock, not a decision.
pub const OPERATOR_SKEW: Duration = Duration::minutes(5);

/// A source of "now".
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The clock every deployed function uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to: for tests and for `inboxctl sweep --now`.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().expect("clock lock poisoned") = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().expect("clock lock poisoned");
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("clock lock poisoned")
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The shared system clock.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00 UTC));
        clock.advance(Duration::days(31));
        assert_eq!(clock.now(), datetime!(2026-02-01 00:00 UTC));
        clock.set(datetime!(2025-06-01 12:00 UTC));
        assert_eq!(clock.now(), datetime!(2025-06-01 12:00 UTC));
    }
}
