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
        self.svc.auth_buckets.take(ip, self.svc.now())
    }

    /// `Some(seconds to wait)` while `ip` has used up its failed client authentications.
    pub fn client_auth_blocked(&self, ip: IpAddr) -> Option<u64> {
        self.svc.client_auth_buckets.exhausted(ip, self.svc.now())
    }

    /// Counts a failed client authentication from `ip`.
    pub fn client_auth_failed(&self, ip: IpAddr) {
        let _ = self.svc.client_auth_buckets.take(ip, self.svc.now());
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
                | "/api/v1/me/mfa/email"
                | "/api/v1/me/mfa/sms"
                | "/api/v1/me/mfa/code"
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
