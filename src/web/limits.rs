//! Request-edge protections: the client IP (X-Forwarded-For believed only from
//! trusted proxies) and the per-IP buckets (`ratelimit`) on the sign-in
//! endpoints and on failed OAuth client authentication, answered with 429 and
//! `Retry-After`. Per-account lockout is `authn::lockout`.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::config::Settings;
use crate::error::Result;
use crate::service::Service;

/// The caller as far as the request shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Known(IpAddr),
    /// Behind a trusted proxy whose X-Forwarded-For cannot be read.
    Unknown,
}

/// The bucket of every caller whose address is unknown: `::`, which no
/// peer connects from.
pub const UNKNOWN_CLIENT_BUCKET: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

/// How the audit log names a caller whose address is unknown.
pub const UNKNOWN_CLIENT: &str = "unknown";

impl Client {
    pub fn rate_key(self) -> IpAddr {
        match self {
            Client::Known(ip) => ip,
            Client::Unknown => UNKNOWN_CLIENT_BUCKET,
        }
    }
}

/// One X-Forwarded-For element: an address, optionally with a port
/// (`192.0.2.1:443`) or in brackets (`[2001:db8::1]`, `[2001:db8::1]:443`),
/// as some proxies write them. Anything else is unreadable.
fn parse_hop(e: &str) -> Option<IpAddr> {
    let e = e.trim_matches(|c| c == ' ' || c == '\t');
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = e.strip_prefix('[') {
        let (v6, tail) = rest.split_once(']')?;
        let ip = v6.parse::<std::net::Ipv6Addr>().ok()?;
        return (tail.is_empty() || valid_port(tail.strip_prefix(':')?)).then_some(IpAddr::V6(ip));
    }
    let (v4, port) = e.split_once(':')?;
    let ip = v4.parse::<std::net::Ipv4Addr>().ok()?;
    valid_port(port).then_some(IpAddr::V4(ip))
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

/// The client-address side of the per-IP limits; the buckets themselves are
/// the service's (`ratelimit`), so they are saved and survive a restart.
pub struct Limits {
    trusted: Vec<IpNet>,
    svc: Arc<Service>,
}

impl Limits {
    pub fn new(s: &Settings, svc: Arc<Service>) -> Result<Limits> {
        Ok(Limits {
            trusted: s.trusted_proxies()?,
            svc,
        })
    }

    fn trusted(&self, ip: &IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }
    /// Who the caller is: the peer, unless the peer is a trusted proxy — then
    /// the right-most address in X-Forwarded-For (all such headers, in order)
    /// that is not a trusted proxy. Hops left of that address were written by
    /// the client and are never read. An element that cannot be read before
    /// it is reached (garbage, an empty element, a header that is not text)
    /// makes the caller `Unknown`: never the proxy's own address.
    pub fn client(&self, req: &HttpRequest) -> Client {
        let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
            return Client::Unknown;
        };
        if !self.trusted(&peer) {
            return Client::Known(peer);
        }
        let mut elements: Vec<&str> = Vec::new();
        for v in req.headers().get_all("x-forwarded-for") {
            let Ok(v) = v.to_str() else {
                return Client::Unknown;
            };
            elements.extend(v.split(','));
        }
        let mut leftmost = None;
        for e in elements.iter().rev() {
            let Some(ip) = parse_hop(e) else {
                return Client::Unknown;
            };
            if !self.trusted(&ip) {
                return Client::Known(ip);
            }
            leftmost = Some(ip);
        }
        // Every hop is a trusted proxy (or there is no header): the first one.
        Client::Known(leftmost.unwrap_or(peer))
    }

    /// The caller's address, when it is known: what allowlists check, so an
    /// unreadable X-Forwarded-For fails closed.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        match self.client(req) {
            Client::Known(ip) => Some(ip),
            Client::Unknown => None,
        }
    }

    /// The key of the caller's rate-limit buckets: its address, or one
    /// bucket shared by every caller whose address is unknown.
    pub fn rate_key(&self, req: &HttpRequest) -> IpAddr {
        self.client(req).rate_key()
    }

    /// `Err(seconds to wait)` when `ip` is over the sign-in rate.
    pub fn check_auth(&self, ip: IpAddr) -> std::result::Result<(), u64> {
        self.svc.ratelimit.auth().take(ip, self.svc.now())
    }

    /// `Some(seconds to wait)` while `ip` has used up its failed client authentications.
    pub fn client_auth_blocked(&self, ip: IpAddr) -> Option<u64> {
        self.svc
            .ratelimit
            .client_auth()
            .exhausted(ip, self.svc.now())
    }

    /// Counts a failed client authentication from `ip`.
    pub fn client_auth_failed(&self, ip: IpAddr) {
        let _ = self.svc.ratelimit.client_auth().take(ip, self.svc.now());
    }
}

/// Endpoints that take a password or a code, or send one: rate-limited per
/// client address. Every caller of `authn::confirm` (re-authentication,
/// password change, factor removal) and every code check is listed here.
pub fn is_auth_endpoint(req: &HttpRequest) -> bool {
    use actix_web::http::Method;
    let path = req.path();
    // Every SSO request costs a commit and a call to the IdP.
    if path.starts_with("/sso/") {
        return true;
    }
    if req.method() == Method::DELETE {
        // Removing second factors needs the password and a code.
        return path == "/api/v1/me/mfa" || path.starts_with("/api/v1/me/mfa/methods/");
    }
    req.method() == Method::POST
        && (matches!(
            path,
            "/login"
                | "/login/mfa"
                | "/login/mfa/send"
                | "/setup"
                | "/recover"
                | "/admin/reauth"
                | "/admin/reauth/send"
                | "/admin/account/password"
                | "/admin/account/mfa/remove"
                | "/admin/account/mfa/totp/confirm"
                | "/admin/account/mfa/code/confirm"
                | "/admin/account/mfa/email"
                | "/admin/account/mfa/sms"
                | "/admin/account/mfa/code"
                | "/admin/account/mfa/recovery"
                | "/admin/account/mfa/totp"
                | "/api/v1/me/mfa/email"
                | "/api/v1/me/mfa/sms"
                | "/api/v1/me/mfa/code"
                | "/api/v1/me/mfa/totp"
                | "/api/v1/me/mfa/recovery-codes"
                | "/api/v1/me/password"
                | "/api/v1/me/email"
        ) || path.starts_with("/api/v1/auth/")
            || path.starts_with("/api/v1/me/mfa/") && path.ends_with("/confirm"))
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;
    use actix_web::test::TestRequest;

    use super::is_auth_endpoint;

    #[test]
    fn every_endpoint_that_checks_a_password_or_a_code_is_limited() {
        for (m, p) in [
            (Method::POST, "/login"),
            (Method::POST, "/login/mfa"),
            (Method::POST, "/login/mfa/send"),
            (Method::POST, "/admin/reauth"),
            (Method::POST, "/admin/reauth/send"),
            (Method::POST, "/admin/account/password"),
            (Method::POST, "/admin/account/mfa/remove"),
            (Method::POST, "/admin/account/mfa/code/confirm"),
            (Method::POST, "/admin/account/mfa/totp/confirm"),
            (Method::POST, "/api/v1/auth/mfa"),
            (Method::POST, "/api/v1/me/mfa/totp/confirm"),
            (Method::POST, "/api/v1/me/mfa/email/confirm"),
            (Method::POST, "/api/v1/me/mfa/sms/confirm"),
            (Method::POST, "/api/v1/me/mfa/code"),
            (Method::POST, "/admin/account/mfa/code"),
            (Method::DELETE, "/api/v1/me/mfa"),
            (Method::DELETE, "/api/v1/me/mfa/methods/totp"),
        ] {
            let req = TestRequest::default()
                .method(m.clone())
                .uri(p)
                .to_http_request();
            assert!(is_auth_endpoint(&req), "{m} {p}");
        }
        for (m, p) in [(Method::GET, "/login"), (Method::GET, "/api/v1/me/mfa")] {
            let req = TestRequest::default()
                .method(m.clone())
                .uri(p)
                .to_http_request();
            assert!(!is_auth_endpoint(&req), "{m} {p}");
        }
    }
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    #[test]
    fn hops_parse_with_ports_and_brackets_and_nothing_else() {
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for (raw, want) in [
            ("203.0.113.9", Some(v4)),
            (" 203.0.113.9 ", Some(v4)),
            ("203.0.113.9:8443", Some(v4)),
            ("2001:db8::1", Some(v6)),
            ("[2001:db8::1]", Some(v6)),
            ("[2001:db8::1]:443", Some(v6)),
            ("", None),
            ("  ", None),
            ("not-an-ip", None),
            ("unknown", None),
            ("203.0.113.9:", None),
            ("203.0.113.9:99999", None),
            ("203.0.113.9:80:80", None),
            ("[2001:db8::1]x", None),
            ("[203.0.113.9]", None),
            ("2001:db8::1:443x", None),
            ("203.0.113.9\u{0}", None),
        ] {
            assert_eq!(parse_hop(raw), want, "{raw:?}");
        }
    }
}
