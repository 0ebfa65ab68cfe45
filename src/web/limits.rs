//! Request-edge protections: the client IP (X-Forwarded-For believed only from
//! trusted proxies) and the per-IP buckets (`ratelimit`) on the sign-in
//! endpoints and on failed OAuth client authentication, answered with 429 and
//! `Retry-After`. Per-account lockout is `authn::lockout`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::access::credentials::ClientAddress;
use crate::config::Settings;
use crate::error::Result;
use crate::ratelimit::RateKey;
use crate::service::Service;

/// The caller as far as the request shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Known(IpAddr),
    /// Behind a trusted proxy whose X-Forwarded-For cannot be read.
    Unknown,
}

/// How the audit log names a caller whose address is unknown.
pub const UNKNOWN_CLIENT: &str = "unknown";

/// At most one log line this often about callers whose address is unknown.
const UNKNOWN_LOG_EVERY_SECS: i64 = 60;

impl Client {
    /// The caller's rate-limit bucket: its address, or the one bucket of
    /// every caller whose address is unknown (never an address's bucket).
    pub fn rate_key(self) -> RateKey {
        match self {
            Client::Known(ip) => RateKey::Ip(ip),
            Client::Unknown => RateKey::Unknown,
        }
    }

    /// What IP allowlists are held against: an unknown address is
    /// `Unreadable`, which an allowlist refuses.
    pub fn address(self) -> ClientAddress {
        match self {
            Client::Known(ip) => ClientAddress::Known(ip),
            Client::Unknown => ClientAddress::Unreadable,
        }
    }
}

/// One X-Forwarded-For element: an address, optionally with a port
/// (`192.0.2.1:443`) or in brackets (`[2001:db8::1]`, `[2001:db8::1]:443`),
/// as some proxies write them. Anything else is unreadable.
fn parse_hop(e: &[u8]) -> Option<IpAddr> {
    let e = std::str::from_utf8(e).ok()?;
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
    /// Requests whose caller's address could not be read, since start.
    unknown: AtomicU64,
    /// The count at the last log line about them, and when it was written.
    unknown_logged: Mutex<(u64, i64)>,
}

impl Limits {
    pub fn new(s: &Settings, svc: Arc<Service>) -> Result<Limits> {
        Ok(Limits {
            trusted: s.trusted_proxies()?,
            svc,
            unknown: AtomicU64::new(0),
            unknown_logged: Mutex::new((0, i64::MIN)),
        })
    }

    fn trusted(&self, ip: &IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }
    /// Who the caller is: the peer, unless the peer is a trusted proxy — then
    /// the right-most address in X-Forwarded-For (all such headers, in order)
    /// that is not a trusted proxy. The elements are read one by one from the
    /// right, as bytes: hops left of that address were written by the client
    /// and are never read, so bytes there that are not text (which nginx
    /// forwards) change nothing. An element that cannot be read before it is
    /// reached (garbage, an empty element, bytes that are not text) makes
    /// the caller `Unknown`: never the proxy's own address.
    pub fn client(&self, req: &HttpRequest) -> Client {
        let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
            return Client::Unknown;
        };
        if !self.trusted(&peer) {
            return Client::Known(peer);
        }
        let headers: Vec<&[u8]> = req
            .headers()
            .get_all("x-forwarded-for")
            .map(|v| v.as_bytes())
            .collect();
        let mut leftmost = None;
        for e in headers
            .iter()
            .rev()
            .flat_map(|h| h.split(|b| *b == b',').rev())
        {
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

    /// Where the caller is, for IP allowlists: an unreadable X-Forwarded-For
    /// is `Unreadable`, which every allowlist refuses.
    pub fn client_address(&self, req: &HttpRequest) -> ClientAddress {
        self.client(req).address()
    }

    /// The caller's address, when it is known (usage notes; allowlists take
    /// `client_address`).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.client_address(req).ip()
    }

    /// The key of the caller's rate-limit buckets: its address, or one
    /// bucket shared by every caller whose address is unknown.
    pub fn rate_key(&self, req: &HttpRequest) -> RateKey {
        self.client(req).rate_key()
    }

    /// Counts a request (once per request, from the middleware) whose caller
    /// is unknown; at most once a minute a warning says how many there were,
    /// so an operator sees a proxy that forwards unreadable X-Forwarded-For.
    pub fn note_unknown(&self, path: &str) {
        let total = self.unknown.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.svc.now();
        let Ok(mut last) = self.unknown_logged.lock() else {
            return;
        };
        if last.1 != i64::MIN && now < last.1.saturating_add(UNKNOWN_LOG_EVERY_SECS) {
            return;
        }
        let since = total - last.0;
        *last = (total, now);
        tracing::warn!(
            requests = since,
            total,
            %path,
            "requests from a trusted proxy with an unreadable X-Forwarded-For: their callers \
             share one rate-limit bucket and fail every IP allowlist; check the proxy"
        );
    }

    /// Requests whose caller's address could not be read, since start.
    pub fn unknown_count(&self) -> u64 {
        self.unknown.load(Ordering::Relaxed)
    }

    /// `Err(seconds to wait)` when `ip` is over the sign-in rate.
    pub fn check_auth(&self, ip: RateKey) -> std::result::Result<(), u64> {
        self.svc.ratelimit.auth().take(ip, self.svc.now())
    }

    /// `Some(seconds to wait)` while `ip` has used up its failed client authentications.
    pub fn client_auth_blocked(&self, ip: RateKey) -> Option<u64> {
        self.svc
            .ratelimit
            .client_auth()
            .exhausted(ip, self.svc.now())
    }

    /// Counts a failed client authentication from `ip`.
    pub fn client_auth_failed(&self, ip: RateKey) {
        let _ = self.svc.ratelimit.client_auth().take(ip, self.svc.now());
    }
}

/// The pattern of the resource the router will run for `req`, found the way
/// the router finds it: on the percent-decoded path (`match_info`), so an
/// encoded byte (`/api/v1/%61uth/login`) names the same resource as the
/// plain path. `None`: no resource (404).
pub fn route_pattern(req: &HttpRequest) -> Option<String> {
    req.resource_map().match_pattern(req.match_info().as_str())
}

/// Requests that take a password or a code, or send one: rate-limited per
/// client address. Decided on the resource the router matched, never on the
/// request's text.
pub fn is_auth_endpoint(req: &HttpRequest) -> bool {
    could_be_auth_route(req.method(), req.match_info().as_str())
        && route_pattern(req).is_some_and(|p| is_auth_route(req.method(), &p))
}

/// Whether `path` (the router's, percent-decoded) can match any pattern
/// `is_auth_route` accepts for `method`: every such pattern begins with one
/// of these literal prefixes, so other requests (`/auth/verify`,
/// `/oauth2/*`, every GET outside `/sso/`) skip the walk over the routes.
fn could_be_auth_route(method: &actix_web::http::Method, path: &str) -> bool {
    use actix_web::http::Method;
    if path.starts_with("/sso/") {
        return true;
    }
    if method == Method::DELETE {
        return path.starts_with("/api/v1/me/mfa");
    }
    method == Method::POST
        && ["/login", "/setup", "/recover", "/admin/", "/api/v1/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// Resource patterns (`route_pattern`) that take a password or a code, or
/// send one. Every caller of `authn::confirm` (re-authentication, password
/// change, factor removal) and every code check is listed here.
pub fn is_auth_route(method: &actix_web::http::Method, pattern: &str) -> bool {
    use actix_web::http::Method;
    // Every SSO request costs a commit and a call to the IdP.
    if pattern.starts_with("/sso/") {
        return true;
    }
    if method == Method::DELETE {
        // Removing second factors needs the password and a code.
        return pattern == "/api/v1/me/mfa" || pattern.starts_with("/api/v1/me/mfa/methods/");
    }
    method == Method::POST
        && (matches!(
            pattern,
            "/login"
                | "/login/mfa"
                | "/login/mfa/send"
                | "/login/password"
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
        ) || pattern.starts_with("/api/v1/auth/")
            || pattern.starts_with("/api/v1/me/mfa/") && pattern.ends_with("/confirm"))
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;
    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, HttpResponse, web};

    use super::{could_be_auth_route, is_auth_endpoint, is_auth_route};

    const LIMITED: &[(Method, &str)] = &[
        (Method::POST, "/login"),
        (Method::POST, "/login/mfa"),
        (Method::POST, "/login/mfa/send"),
        (Method::POST, "/login/password"),
        (Method::POST, "/admin/reauth"),
        (Method::POST, "/admin/reauth/send"),
        (Method::POST, "/admin/account/password"),
        (Method::POST, "/admin/account/mfa/remove"),
        (Method::POST, "/admin/account/mfa/code/confirm"),
        (Method::POST, "/admin/account/mfa/totp/confirm"),
        (Method::POST, "/api/v1/auth/login"),
        (Method::POST, "/api/v1/auth/refresh"),
        (Method::POST, "/api/v1/auth/mfa"),
        (Method::POST, "/api/v1/me/mfa/totp/confirm"),
        (Method::POST, "/api/v1/me/mfa/email/confirm"),
        (Method::POST, "/api/v1/me/mfa/sms/confirm"),
        (Method::POST, "/api/v1/me/mfa/code"),
        (Method::POST, "/admin/account/mfa/code"),
        (Method::DELETE, "/api/v1/me/mfa"),
        (Method::DELETE, "/api/v1/me/mfa/methods/{method}"),
    ];

    #[test]
    fn every_endpoint_that_checks_a_password_or_a_code_is_limited() {
        for (m, p) in LIMITED {
            assert!(is_auth_route(m, p), "{m} {p}");
            // The pre-check never skips a limited resource.
            assert!(could_be_auth_route(m, p), "{m} {p}");
        }
        for p in ["/sso/saml/{id}/acs", "/sso/oidc/{id}/login"] {
            assert!(could_be_auth_route(&Method::GET, p));
        }
        for (m, p) in [
            (Method::GET, "/auth/verify"),
            (Method::POST, "/oauth2/introspect"),
            (Method::POST, "/oauth2/token"),
            (Method::GET, "/api/v1/me"),
        ] {
            assert!(!could_be_auth_route(&m, p), "{m} {p}");
        }
        for (m, p) in [(Method::GET, "/login"), (Method::GET, "/api/v1/me/mfa")] {
            assert!(!is_auth_route(&m, p), "{m} {p}");
        }
    }

    /// Routes like the real ones, requested plainly and with a byte
    /// percent-encoded, decided where the middleware decides (before
    /// routing): both are limited, because the decision is on the resource.
    #[actix_web::test]
    async fn encoded_paths_are_limited_like_plain_ones() {
        use actix_web::dev::Service as _;
        async fn ok() -> HttpResponse {
            HttpResponse::Ok().finish()
        }
        let app = init_service(
            App::new()
                .wrap_fn(|req, srv| {
                    let limited = is_auth_endpoint(req.request());
                    let fut = srv.call(req);
                    async move {
                        let mut res = fut.await?;
                        res.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_static("x-limited"),
                            actix_web::http::header::HeaderValue::from_static(if limited {
                                "1"
                            } else {
                                "0"
                            }),
                        );
                        Ok(res)
                    }
                })
                .route("/login", web::post().to(ok))
                .route("/admin/reauth", web::post().to(ok))
                .service(
                    web::scope("/api/v1")
                        .route("/auth/login", web::post().to(ok))
                        .route("/me/mfa", web::delete().to(ok))
                        .route("/me/mfa/totp/confirm", web::post().to(ok))
                        .route("/me/mfa/methods/{method}", web::delete().to(ok))
                        .route("/users", web::get().to(ok)),
                ),
        )
        .await;
        for (m, p, want) in [
            (Method::POST, "/login", "1"),
            (Method::POST, "/%6Cogin", "1"),
            (Method::POST, "/admin/%72eauth", "1"),
            (Method::POST, "/api/v1/auth/login", "1"),
            (Method::POST, "/api/v1/%61uth/login", "1"),
            (Method::POST, "/api/%761/auth/%6Cogin", "1"),
            (Method::POST, "/api/v1/me/mfa/totp/%63onfirm", "1"),
            (Method::DELETE, "/api/v1/me/%6Dfa", "1"),
            (Method::DELETE, "/api/v1/me/%6Dfa/methods/totp", "1"),
            (Method::GET, "/api/v1/%75sers", "0"),
            (Method::GET, "/login", "0"),
        ] {
            let req = TestRequest::default().method(m.clone()).uri(p).to_request();
            let res = call_service(&app, req).await;
            assert_eq!(
                res.headers().get("x-limited").and_then(|v| v.to_str().ok()),
                Some(want),
                "{m} {p} ({})",
                res.status()
            );
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
            assert_eq!(parse_hop(raw.as_bytes()), want, "{raw:?}");
        }
    }
}
