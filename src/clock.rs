//! Time as a parameter: every expiry, lockout and rotation asks a `Clock`,
//! so tests can move time without sleeping. Nothing else reads the system clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch.
pub type Timestamp = i64;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<AtomicI64>);

impl FixedClock {
    pub fn new(at: Timestamp) -> Self {
        FixedClock(Arc::new(AtomicI64::new(at)))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 in UTC, for display and audit records.
pub fn rfc3339(ts: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

/// Parses an RFC 3339 date and time (`2026-01-31T12:00:00Z`, or with an
/// offset). Nothing else: a bare number is refused, since `3600` could be
/// meant as a duration and would silently become a moment in 1970. The
/// result lies within years 0000-9999, so adding a bounded duration to it
/// cannot overflow.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = FixedClock::new(100);
        assert_eq!(c.now(), 100);
        c.advance(5);
        assert_eq!(c.now(), 105);
    }

    #[test]
    fn rfc3339_round_trips() {
        let s = rfc3339(1_700_000_000);
        assert_eq!(s, "2023-11-14T22:13:20Z");
        assert_eq!(parse_time(&s), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
    }

    #[test]
    fn only_rfc3339_is_a_time() {
        for bad in [
            "1700000000",
            "3600",
            "-1",
            "9223372036854775807",
            "99999999999999999999",
            "2023-11-14",
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20",
            "10000-01-01T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
