//! Request-edge protections: the client IP (X-Forwarded-For believed only from
//! trusted proxies) and per-IP token buckets on the sign-in endpoints, answered
//! with 429 and `Retry-After`. Per-account lockout is `authn::lockout`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;

use crate::config::Settings;
use crate::error::Result;

type Limiter = RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>;

pub struct Limits {
    trusted: Vec<IpNet>,
    auth: Limiter,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl Limits {
    pub fn new(s: &Settings) -> Result<Limits> {
        let per_minute = NonZeroU32::new(s.rate_limit.auth_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(s.rate_limit.auth_burst).unwrap_or(NonZeroU32::MIN);
        let clock = DefaultClock::default();
        Ok(Limits {
            trusted: s.trusted_proxies()?,
            auth: RateLimiter::new(
                Quota::per_minute(per_minute).allow_burst(burst),
                HashMapStateStore::default(),
                clock.clone(),
            ),
            clock,
            checks: AtomicU64::new(0),
        })
    }

    fn trusted(&self, ip: &IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The caller's address: the peer, unless the peer is a trusted proxy — then
    /// the right-most address in X-Forwarded-For that is not a trusted proxy.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusted(&peer) {
            return Some(peer);
        }
        let mut hops = Vec::new();
        for v in req.headers().get_all("x-forwarded-for") {
            let Ok(v) = v.to_str() else { return Some(peer) };
            for part in v.split(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return Some(peer),
                }
            }
        }
        hops.iter()
            .rev()
            .find(|ip| !self.trusted(ip))
            .or(hops.first())
            .copied()
            .or(Some(peer))
    }

    /// `Err(seconds to wait)` when `ip` is over the sign-in rate.
    pub fn check_auth(&self, ip: IpAddr) -> std::result::Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.auth.retain_recent();
        }
        self.auth
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()).as_secs().max(1))
    }
}

/// Endpoints that take a password or a code: rate-limited per client IP.
pub fn is_auth_endpoint(req: &HttpRequest) -> bool {
    // Every SSO request costs a commit and a call to the IdP.
    req.path().starts_with("/sso/")
        || req.method() == actix_web::http::Method::POST
            && (req.path() == "/login"
                || req.path().starts_with("/api/v1/auth/")
                || req.path() == "/setup"
                || req.path() == "/recover")
}
