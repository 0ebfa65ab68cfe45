//! Request-side authentication: session cookies, bearer tokens, CSRF tokens,
//! and the extractors that turn a request into a `Principal`. No decisions
//! about permissions (that is `access::authorize`).

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use crate::access::{self, Principal};
use crate::audit::Source;
use crate::authn::session;
use crate::crypto;
use crate::error::Error;
use crate::identity::{self, User};
use crate::service::Service;
use crate::sso::Protocol;
use crate::web::AppState;
use crate::web::error::{ApiError, PageError};
use crate::web::html::{PageResult, enc, redirect};

pub const PRE_COOKIE: &str = "gh_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn session_cookie_name(tls: bool) -> &'static str {
    // The __Host- prefix demands Secure, which browsers accept only over TLS.
    if tls {
        "__Host-gh_session"
    } else {
        "gh_session"
    }
}

pub fn session_cookie(tls: bool, value: String) -> Cookie<'static> {
    Cookie::build(session_cookie_name(tls), value)
        .path("/")
        .http_only(true)
        .secure(tls)
        .same_site(SameSite::Lax)
        .finish()
}

pub fn removal_cookie(tls: bool) -> Cookie<'static> {
    let mut c = session_cookie(tls, String::new());
    c.make_removal();
    c
}

pub fn source(req: &HttpRequest) -> Source {
    let ip = match req.app_data::<web::Data<AppState>>() {
        Some(st) => match st.limits.client(req) {
            crate::web::limits::Client::Known(ip) => Some(ip.to_string()),
            crate::web::limits::Client::Unknown => {
                Some(crate::web::limits::UNKNOWN_CLIENT.to_string())
            }
        },
        None => req.peer_addr().map(|a| a.ip().to_string()),
    };
    Source {
        ip,
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    }
}

pub fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, Error> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::internal("app state missing"))
}

/// CSRF token bound to a session (hash of its id).
pub fn csrf_for_session(svc: &Service, session_hash: &[u8]) -> String {
    let mut d = b"session:".to_vec();
    d.extend_from_slice(session_hash);
    crypto::b64url(&crypto::hmac_sha256(svc.csrf_key.expose(), &d))
}

/// CSRF token bound to the pre-session cookie (sign-in, setup, recovery forms).
pub fn csrf_for_pre(svc: &Service, pre: &str) -> String {
    let mut d = b"pre:".to_vec();
    d.extend_from_slice(pre.as_bytes());
    crypto::b64url(&crypto::hmac_sha256(svc.csrf_key.expose(), &d))
}

fn csrf_refused() -> Error {
    Error::Forbidden("Missing or invalid CSRF token: reload the page and try again.".into())
}

/// Checks a form's token against the caller's pre-session cookie.
pub fn check_pre_csrf(req: &HttpRequest, svc: &Service, token: &str) -> Result<(), Error> {
    let pre = req.cookie(PRE_COOKIE).ok_or_else(csrf_refused)?;
    if token.is_empty()
        || !crypto::ct_eq(csrf_for_pre(svc, pre.value()).as_bytes(), token.as_bytes())
    {
        return Err(csrf_refused());
    }
    Ok(())
}

/// The pre-session cookie value to use for a form: the existing one, or a new one.
pub fn pre_cookie(req: &HttpRequest) -> Result<(String, Option<Cookie<'static>>), Error> {
    if let Some(c) = req.cookie(PRE_COOKIE)
        && c.value().len() >= 32
    {
        return Ok((c.value().to_string(), None));
    }
    let v = crypto::random_token()?;
    let tls = state(req)?.tls;
    let c = Cookie::build(PRE_COOKIE, v.clone())
        .path("/")
        .http_only(true)
        .secure(tls)
        .same_site(SameSite::Strict)
        .finish();
    Ok((v, Some(c)))
}

/// A signed-in browser user (console pages).
pub struct ConsoleUser {
    pub user: identity::User,
    pub session_hash: [u8; 32],
    pub csrf: String,
    /// When this session last proved the user's identity.
    pub auth_at: crate::clock::Timestamp,
}

impl ConsoleUser {
    /// The actor a domain operation checks: this user and session, from this request.
    pub fn actor(&self, req: &HttpRequest) -> crate::access::Actor {
        crate::access::Actor::new(self.principal(), source(req), Some(self.auth_at))
    }
    pub fn principal(&self) -> Principal {
        Principal::User {
            user: std::sync::Arc::new(self.user.clone()),
            session: Some(self.session_hash),
        }
    }
    /// Checks a console form's CSRF token against this session.
    pub fn check_csrf(&self, token: &str) -> Result<(), Error> {
        if token.is_empty() || !crypto::ct_eq(self.csrf.as_bytes(), token.as_bytes()) {
            return Err(csrf_refused());
        }
        Ok(())
    }
}

fn session_from(
    req: &HttpRequest,
    svc: &Service,
    tls: bool,
) -> Result<Option<([u8; 32], session::Session, identity::User)>, Error> {
    let Some(c) = req.cookie(session_cookie_name(tls)) else {
        return Ok(None);
    };
    session::lookup(svc, c.value())
}

impl FromRequest for ConsoleUser {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            (|| {
                let st = state(req)?;
                let (hash, sess, user) = session_from(req, &st.svc, st.tls)?
                    .ok_or_else(|| Error::Unauthenticated("Sign in to continue.".into()))?;
                // Until the required second factor is set up, only enrollment opens.
                if sess.enroll_only
                    && !(req.path().starts_with("/admin/account/mfa")
                        || req.path() == "/logout"
                        || req.path().starts_with("/admin/reauth"))
                {
                    return Err(Error::MfaEnrollmentRequired);
                }
                Ok(ConsoleUser {
                    csrf: csrf_for_session(&st.svc, &hash),
                    user,
                    session_hash: hash,
                    auth_at: sess.auth_at,
                })
            })()
            .map_err(PageError),
        )
    }
}

/// Who a bearer credential (access token, API key or widget key) stands for.
pub struct Bearer {
    pub principal: Principal,
    pub auth_at: crate::clock::Timestamp,
    /// The verified token's claims (absent for keys).
    pub claims: Option<std::sync::Arc<crate::tokens::Claims>>,
}

/// What a bearer credential is being accepted for. A token signed for MFA
/// enrollment only (the policy demands a factor the user has not set up) is
/// accepted for `Enrollment` and refused for everything else with
/// `Error::MfaEnrollmentRequired`: every caller of `bearer_principal` says
/// which it needs, so no endpoint can take such a token for a full one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Anything the principal's permissions allow.
    Full,
    /// The MFA enrollment endpoints and `/api/v1/me` only.
    Enrollment,
}

/// Checks a bearer credential: API and widget keys by hash, tokens by
/// signature (cached), then revocation, the user's tokens-valid-after mark,
/// whether its user or service account still exists and is enabled, and
/// whether the token may serve `purpose`.
pub fn bearer_principal(
    st: &AppState,
    raw: &str,
    addr: access::credentials::ClientAddress,
    src: &Source,
    purpose: Purpose,
) -> Result<Bearer, Error> {
    let svc = &st.svc;
    if raw.starts_with("gh") && !raw.contains('.') {
        return Ok(Bearer {
            principal: access::credentials::principal_from_key(svc, raw, addr.ip())?,
            auth_at: 0,
            claims: None,
        });
    }
    let claims = st.verify_bearer(raw)?;
    if access::credentials::is_revoked(svc, &claims.jti)? {
        return Err(Error::Unauthenticated(
            "The access token was revoked.".into(),
        ));
    }
    let principal = match &claims.client_id {
        Some(cid) => access::credentials::principal_from_client_token(
            svc,
            cid,
            claims.scope.as_deref().unwrap_or(""),
            claims.exp,
            claims.tva,
            addr,
            src,
        )?,
        None => {
            let uid = identity::UserId::parse(&claims.sub)
                .map_err(|_| Error::Unauthenticated("Invalid access token.".into()))?;
            let user = match identity::get_cached(svc, &uid) {
                Ok(u) if !u.disabled => u,
                _ => {
                    return Err(Error::Unauthenticated(
                        "The token's user is disabled or deleted.".into(),
                    ));
                }
            };
            if claims.tva < crate::tokens::valid_after_cached(svc, &uid)?.epoch {
                return Err(Error::Unauthenticated(
                    "The access token has ended (password changed, sessions ended or access \
                     changed); sign in again."
                        .into(),
                ));
            }
            Principal::User {
                user,
                session: None,
            }
        }
    };
    if claims.mfa_enroll && purpose != Purpose::Enrollment {
        return Err(Error::MfaEnrollmentRequired);
    }
    let auth_at = if claims.auth_time > 0 {
        claims.auth_time
    } else {
        claims.iat
    };
    Ok(Bearer {
        principal,
        auth_at,
        claims: Some(claims),
    })
}

/// An API caller: `Authorization: Bearer <JWT>`, or a session cookie — which
/// must then carry `X-CSRF-Token` on state-changing methods.
pub struct ApiCaller {
    pub principal: Principal,
    /// When the caller last proved who they are (token `auth_time`, or the session's).
    pub auth_at: crate::clock::Timestamp,
}

/// Sensitive actions need an authentication newer than the policy's window
/// (the rule lives in the domain: `access::actor`).
pub fn require_recent_auth(svc: &Service, auth_at: crate::clock::Timestamp) -> Result<(), Error> {
    crate::access::actor::require_recent_auth(svc, auth_at)
}

impl ApiCaller {
    /// The actor a domain operation checks: this caller, from this request.
    pub fn actor(&self, req: &HttpRequest) -> crate::access::Actor {
        crate::access::Actor::new(self.principal.clone(), source(req), Some(self.auth_at))
    }
}

/// Callers signed in for MFA enrollment only may reach these.
fn enrollment_path(path: &str) -> bool {
    path.starts_with("/api/v1/me/mfa") || path == "/api/v1/me"
}

impl ApiCaller {
    pub fn user(&self) -> Result<&identity::User, Error> {
        self.principal.user().ok_or_else(|| {
            Error::Forbidden(
                "This endpoint is for users; service accounts and API keys cannot call it.".into(),
            )
        })
    }
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(api_caller(req).map_err(ApiError))
    }
}

fn api_caller(req: &HttpRequest) -> Result<ApiCaller, Error> {
    let st = state(req)?;
    let svc = &st.svc;
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let v = h
            .to_str()
            .map_err(|_| Error::Unauthenticated("Malformed Authorization header.".into()))?;
        let token = v.strip_prefix("Bearer ").ok_or_else(|| {
            Error::Unauthenticated(
                "Send the header Authorization: Bearer followed by an access token or an API key."
                    .into(),
            )
        })?;
        let purpose = if enrollment_path(req.path()) {
            Purpose::Enrollment
        } else {
            Purpose::Full
        };
        let b = bearer_principal(
            st,
            token.trim(),
            st.limits.client_address(req),
            &source(req),
            purpose,
        )?;
        return Ok(ApiCaller {
            principal: b.principal,
            auth_at: b.auth_at,
        });
    }
    let (hash, sess, user) = session_from(req, svc, st.tls)?.ok_or_else(|| {
        Error::Unauthenticated("Authentication required: send a bearer token.".into())
    })?;
    if sess.enroll_only && !enrollment_path(req.path()) {
        return Err(Error::MfaEnrollmentRequired);
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sent.is_empty()
            || !crypto::ct_eq(csrf_for_session(svc, &hash).as_bytes(), sent.as_bytes())
        {
            return Err(csrf_refused());
        }
    }
    Ok(ApiCaller {
        principal: Principal::User {
            user: std::sync::Arc::new(user),
            session: Some(hash),
        },
        auth_at: sess.auth_at,
    })
}

pub(crate) fn with_pre_cookie(
    mut resp: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

/// Ends whatever session the browser held (a fresh id at every sign-in) and
/// sets the new session cookie.
pub(crate) fn signed_in(
    req: &HttpRequest,
    st: &AppState,
    user: &User,
    token: String,
    rd: &str,
) -> PageResult {
    if let Some(old) = req.cookie(session_cookie_name(st.tls)) {
        session::end_previous(&st.svc, &user.id, old.value())?;
    }
    let mut resp = redirect(rd);
    let _ = resp.add_cookie(&session_cookie(st.tls, token));
    Ok(resp)
}
/// Sends the user to confirm who they are when the last proof is older than
/// the policy's window; `rd` is where to come back to.
pub(crate) fn reauth_gate(
    st: &AppState,
    u: &ConsoleUser,
    rd: &str,
) -> Result<Option<HttpResponse>, Error> {
    match require_recent_auth(&st.svc, u.auth_at) {
        Ok(()) => Ok(None),
        Err(Error::ReauthRequired) => Ok(Some(redirect(&format!("/admin/reauth?rd={}", enc(rd))))),
        Err(e) => Err(e),
    }
}

/// The same for a form whose POST the confirmation interrupts: the form is
/// kept (see `KeptForms`: no CSRF token, no secrets) and the page says what
/// it is for; once confirmed, the form is completed with a fresh CSRF token.
pub(crate) fn reauth_gate_for(
    st: &AppState,
    u: &ConsoleUser,
    rd: &str,
    form: crate::web::KeptForm,
) -> Result<Option<HttpResponse>, Error> {
    match require_recent_auth(&st.svc, u.auth_at) {
        Ok(()) => Ok(None),
        Err(Error::ReauthRequired) => {
            let h = st.forms_kept.put(&u.session_hash, form, st.svc.now())?;
            Ok(Some(redirect(&format!(
                "/admin/reauth?rd={}&resume={h}",
                enc(rd)
            ))))
        }
        Err(e) => Err(e),
    }
}

/// The form "Confirm it's you" kept for this page to show again
/// (`?resumed=`, see `KeptForm::reshow`), once, for this session only.
pub(crate) fn resumed_form(
    st: &AppState,
    u: &ConsoleUser,
    handle: Option<&str>,
) -> Option<crate::web::KeptForm> {
    st.forms_kept.take(&u.session_hash, handle?, st.svc.now())
}

/// The cookie that binds an OpenID sign-in at the IdP to this browser. Under
/// TLS it carries the `__Host-` prefix (Secure, `Path=/`, no Domain), so a
/// sibling subdomain cannot plant its own state in the browser (cookie
/// tossing); browsers accept that prefix only over TLS.
pub fn state_cookie_name(tls: bool) -> &'static str {
    if tls { "__Host-gh_sso" } else { "gh_sso" }
}

/// The same for SAML and WS-Federation, whose answers come back as a POST.
pub fn post_state_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-gh_sso_post"
    } else {
        "gh_sso_post"
    }
}

/// `__Host-` cookies must have `Path=/`; over plain HTTP the cookie stays
/// scoped to the SSO endpoints.
pub(crate) fn binding_path(tls: bool) -> &'static str {
    if tls { "/" } else { "/sso" }
}

pub fn state_cookie(tls: bool, value: String) -> Cookie<'static> {
    Cookie::build(state_cookie_name(tls), value)
        .path(binding_path(tls))
        .http_only(true)
        .secure(tls)
        // Lax: the IdP's redirect back is a top-level navigation from another site.
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            crate::sso::PENDING_TTL_SECS,
        ))
        .finish()
}

/// Binds a SAML request ID or a WS-Federation `wctx` to the browser. The
/// IdP's answer is a cross-site POST, which a SameSite=Lax cookie does not
/// come with, so under TLS the cookie is `SameSite=None; Secure`; over plain
/// HTTP (loopback only) browsers refuse `None` without `Secure`, so the
/// attribute is left to the browser's default.
pub fn post_state_cookie(tls: bool, value: String) -> Cookie<'static> {
    let mut c = Cookie::build(post_state_cookie_name(tls), value)
        .path(binding_path(tls))
        .http_only(true)
        .secure(tls)
        .max_age(actix_web::cookie::time::Duration::seconds(
            crate::sso::PENDING_TTL_SECS,
        ))
        .finish();
    if tls {
        c.set_same_site(SameSite::None);
    }
    c
}

/// The binding cookie of a sign-in through `protocol`.
pub fn binding_cookie(tls: bool, protocol: Protocol, state: String) -> Cookie<'static> {
    match protocol {
        Protocol::Oidc => state_cookie(tls, state),
        Protocol::Saml | Protocol::Wsfed => post_state_cookie(tls, state),
    }
}
#[cfg(test)]
mod cookie_tests {
    use super::*;

    /// Attack review: under TLS the binding cookies carry `__Host-`, so a
    /// sibling subdomain cannot toss its own state into the browser.
    #[test]
    fn binding_cookies_are_host_only_under_tls() {
        for p in [Protocol::Oidc, Protocol::Saml, Protocol::Wsfed] {
            let c = binding_cookie(true, p, "s".into());
            assert!(c.name().starts_with("__Host-"), "{c}");
            assert_eq!(
                (c.path(), c.domain(), c.secure()),
                (Some("/"), None, Some(true))
            );
            let plain = binding_cookie(false, p, "s".into());
            assert!(!plain.name().starts_with("__Host-"), "{plain}");
            assert_eq!(plain.path(), Some("/sso"));
        }
    }
}
