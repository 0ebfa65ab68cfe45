//! Per-client-address token buckets (GCRA) over the service clock: the
//! sign-in endpoints, and failed client authentications at the OAuth
//! endpoints. The buckets are saved (sealed: they hold IP addresses) every
//! 30 s and at shutdown and read back at start, so a restart does not hand a
//! guesser a fresh allowance; a crash loses at most the last 30 s of counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::{Reader, Table, WriteTx};

/// This module's state in `Service` (`svc.ratelimit`): the per-IP buckets of
/// the sign-in endpoints and of failed client authentications at /oauth2/*,
/// loaded at start and saved every 30 s and at shutdown.
pub struct Limits {
    auth: Buckets,
    client_auth: Buckets,
}

impl Limits {
    /// The buckets configured by `rl`, with their stored levels from `r`.
    pub(crate) fn load(
        rl: &crate::config::RateLimitSettings,
        r: &impl Reader,
        now: Timestamp,
    ) -> Result<Limits> {
        let auth = Buckets::new(b"rate_limit/auth", rl.auth_per_minute, rl.auth_burst)
            .with_ipv6_prefix(rl.ipv6_prefix);
        let client_auth = Buckets::new(
            b"rate_limit/client_auth_failures",
            rl.client_auth_failures_per_minute,
            rl.client_auth_failures_burst,
        )
        .with_ipv6_prefix(rl.ipv6_prefix);
        auth.load(r, now)?;
        client_auth.load(r, now)?;
        Ok(Limits { auth, client_auth })
    }

    /// The sign-in endpoints' buckets.
    pub(crate) fn auth(&self) -> &Buckets {
        &self.auth
    }

    /// The buckets of failed client authentications at /oauth2/*.
    pub(crate) fn client_auth(&self) -> &Buckets {
        &self.client_auth
    }

    /// Writes the buckets that changed; whether anything was written.
    pub(crate) fn save(&self, tx: &mut WriteTx<'_>, now: Timestamp) -> Result<bool> {
        let a = self.auth.save(tx, now)?;
        let b = self.client_auth.save(tx, now)?;
        Ok(a || b)
    }
}

/// Above this many addresses, buckets that are full again are dropped.
const PRUNE_AT: usize = 100_000;

pub struct Buckets {
    key: &'static [u8],
    /// One token comes back every `interval_ms`; `burst` tokens at most.
    interval_ms: i64,
    capacity_ms: i64,
    /// Address → theoretical arrival time (ms): the bucket is full once it is past.
    tat: Mutex<HashMap<RateKey, i64>>,
    dirty: AtomicBool,
    /// The latest time seen: the buckets' time never runs backwards (a clock
    /// stepped back must not turn used tokens into a long lock-out).
    latest_ms: AtomicI64,
    /// IPv6 addresses share the bucket of their network of this many bits:
    /// one host is routinely given a whole /64, so per-address buckets
    /// would be unlimited.
    ipv6_prefix: u8,
}

pub(crate) use crate::config::IPV6_PREFIX;

/// Whose bucket a request counts against: a client address, or the one
/// bucket of every caller whose address cannot be read (a trusted proxy that
/// forwarded an unreadable X-Forwarded-For). A type, so the unknown bucket
/// can never be the bucket of any address (`::`, `::1` and `::a.b.c.d` share
/// one /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Ip(IpAddr),
    Unknown,
}

/// How a saved bucket names `RateKey::Unknown` (no address parses as this).
const UNKNOWN_SAVED: &str = "unknown";

impl RateKey {
    fn saved(self) -> String {
        match self {
            RateKey::Ip(ip) => ip.to_string(),
            RateKey::Unknown => UNKNOWN_SAVED.to_string(),
        }
    }
    fn from_saved(s: &str) -> Option<RateKey> {
        if s == UNKNOWN_SAVED {
            return Some(RateKey::Unknown);
        }
        s.parse::<IpAddr>().ok().map(RateKey::Ip)
    }
}

impl std::fmt::Display for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateKey::Ip(ip) => ip.fmt(f),
            RateKey::Unknown => f.write_str(UNKNOWN_SAVED),
        }
    }
}

/// The address a bucket is kept for: IPv4 as is (also when mapped into
/// IPv6), IPv6 cut to its first `prefix` bits.
pub fn bucket_addr(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6);
                let keep = u32::from(prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
                IpAddr::V6(std::net::Ipv6Addr::from(bits & mask))
            }
        },
    }
}

impl Buckets {
    /// `per_minute` tokens a minute, `burst` at once; `key` names the saved state.
    pub fn new(key: &'static [u8], per_minute: u32, burst: u32) -> Buckets {
        let interval_ms = 60_000 / i64::from(per_minute.max(1));
        Buckets {
            key,
            interval_ms: interval_ms.max(1),
            capacity_ms: interval_ms.max(1) * i64::from(burst.max(1)),
            tat: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
            latest_ms: AtomicI64::new(i64::MIN),
            ipv6_prefix: IPV6_PREFIX,
        }
    }

    /// Aggregates IPv6 addresses by networks of `prefix` bits (1–128).
    pub fn with_ipv6_prefix(mut self, prefix: u8) -> Buckets {
        self.ipv6_prefix = prefix.clamp(1, 128);
        self
    }

    fn monotonic_ms(&self, now: Timestamp) -> i64 {
        let ms = now.saturating_mul(1000);
        self.latest_ms.fetch_max(ms, Ordering::AcqRel).max(ms)
    }

    fn wait_secs(&self, next_tat: i64, now_ms: i64) -> Option<u64> {
        let over = next_tat - now_ms - self.capacity_ms;
        (over > 0).then(|| ((over + 999) / 1000).max(1) as u64)
    }

    fn bucket(&self, key: RateKey) -> RateKey {
        match key {
            RateKey::Ip(ip) => RateKey::Ip(bucket_addr(ip, self.ipv6_prefix)),
            RateKey::Unknown => RateKey::Unknown,
        }
    }

    /// Takes a token for `key`; `Err(seconds to wait)` when none is left.
    pub fn take(&self, key: RateKey, now: Timestamp) -> std::result::Result<(), u64> {
        let ip = self.bucket(key);
        let now_ms = self.monotonic_ms(now);
        let Ok(mut m) = self.tat.lock() else {
            return Ok(());
        };
        if m.len() >= PRUNE_AT {
            m.retain(|_, t| *t > now_ms);
        }
        let next = m.get(&ip).copied().unwrap_or(now_ms).max(now_ms) + self.interval_ms;
        if let Some(wait) = self.wait_secs(next, now_ms) {
            return Err(wait);
        }
        m.insert(ip, next);
        self.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// `Some(seconds to wait)` when `key` has no token left (none is taken).
    pub fn exhausted(&self, key: RateKey, now: Timestamp) -> Option<u64> {
        let ip = self.bucket(key);
        let now_ms = self.monotonic_ms(now);
        let m = self.tat.lock().ok()?;
        let next = m.get(&ip).copied()?.max(now_ms) + self.interval_ms;
        self.wait_secs(next, now_ms)
    }

    /// Writes the buckets that are not full (when anything changed).
    pub fn save(&self, tx: &mut WriteTx<'_>, now: Timestamp) -> Result<bool> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(false);
        }
        let now_ms = now.saturating_mul(1000);
        let state: Vec<(String, i64)> = match self.tat.lock() {
            Ok(mut m) => {
                m.retain(|_, t| *t > now_ms);
                m.iter().map(|(k, t)| (k.saved(), *t)).collect()
            }
            Err(_) => return Ok(false),
        };
        tx.put(Table::Secrets, self.key, &state)?;
        Ok(true)
    }

    /// Reads the saved buckets (those still not full).
    pub fn load(&self, r: &impl Reader, now: Timestamp) -> Result<()> {
        let now_ms = now.saturating_mul(1000);
        let saved: Vec<(String, i64)> = r.get(Table::Secrets, self.key)?.unwrap_or_default();
        if let Ok(mut m) = self.tat.lock() {
            for (ip, t) in saved {
                if let Some(ip) = RateKey::from_saved(&ip)
                    && t > now_ms
                {
                    m.insert(ip, t);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_the_bucket_of_their_network() {
        let b = Buckets::new(b"t", 6, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(b.take(RateKey::Ip(a), 100), Ok(()));
        assert_eq!(b.take(RateKey::Ip(same_64), 100), Ok(()));
        assert!(
            b.take(RateKey::Ip(same_64), 100).is_err(),
            "one /64, one bucket"
        );
        assert_eq!(b.take(RateKey::Ip(other_64), 100), Ok(()));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            bucket_addr(mapped, 64),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        let wide = Buckets::new(b"t", 6, 1).with_ipv6_prefix(48);
        assert_eq!(wide.take(RateKey::Ip(a), 100), Ok(()));
        assert!(
            wide.take(RateKey::Ip(other_64), 100).is_err(),
            "a /48 when configured"
        );
        assert_eq!(bucket_addr(a, 128), a);
    }

    #[test]
    fn the_unknown_bucket_is_no_address_bucket_and_survives_a_restart() {
        let b = Buckets::new(b"t", 6, 1);
        for ip in ["::", "::1", "::9.9.9.9"] {
            let ip: IpAddr = ip.parse().unwrap();
            let fresh = Buckets::new(b"t", 6, 1);
            assert_eq!(fresh.take(RateKey::Ip(ip), 100), Ok(()));
            assert_eq!(
                fresh.take(RateKey::Unknown, 100),
                Ok(()),
                "{ip} is not the unknown bucket"
            );
        }
        assert_eq!(b.take(RateKey::Unknown, 100), Ok(()));
        assert!(b.take(RateKey::Unknown, 100).is_err());
        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::store::Store::open(dir.path(), 100).unwrap();
            let mut tx = store.write().unwrap();
            assert!(b.save(&mut tx, 100).unwrap());
            tx.commit().unwrap();
        }
        let store = crate::store::Store::open(dir.path(), 101).unwrap();
        let again = Buckets::new(b"t", 6, 1);
        again.load(&store.read().unwrap(), 101).unwrap();
        assert!(again.take(RateKey::Unknown, 101).is_err());
        assert_eq!(again.take(RateKey::Ip("::".parse().unwrap()), 101), Ok(()));
    }

    #[test]
    fn a_bucket_allows_its_burst_refills_with_time_and_survives_a_restart() {
        let b = Buckets::new(b"t", 6, 3);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(b.take(RateKey::Ip(ip), 100), Ok(()));
        }
        assert_eq!(b.exhausted(RateKey::Ip(ip), 100), Some(10));
        assert_eq!(b.take(RateKey::Ip(ip), 100), Err(10));
        assert_eq!(
            b.take(RateKey::Ip(other), 100),
            Ok(()),
            "each address has its own bucket"
        );
        // One token comes back every 10 s.
        assert_eq!(b.take(RateKey::Ip(ip), 110), Ok(()));
        assert!(b.take(RateKey::Ip(ip), 110).is_err());
        // A clock stepped back neither refills nor locks out: time holds still.
        assert_eq!(b.take(RateKey::Ip(other), 50), Ok(()));
        assert_eq!(b.exhausted(RateKey::Ip(ip), 50), Some(10));

        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::store::Store::open(dir.path(), 110).unwrap();
            let mut tx = store.write().unwrap();
            assert!(b.save(&mut tx, 110).unwrap());
            tx.commit().unwrap();
        }
        let store = crate::store::Store::open(dir.path(), 111).unwrap();
        let again = Buckets::new(b"t", 6, 3);
        again.load(&store.read().unwrap(), 111).unwrap();
        assert!(
            again.take(RateKey::Ip(ip), 111).is_err(),
            "a restart does not refill the bucket"
        );
        assert_eq!(again.take(RateKey::Ip(ip), 200), Ok(()));
    }
}
