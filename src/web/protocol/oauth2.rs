//! OAuth 2.0 endpoints: `POST /oauth2/token` (client credentials),
//! `/oauth2/introspect` (RFC 7662) and `/oauth2/revoke` (RFC 7009). Errors
//! are answered the OAuth way: `{"error", "error_description"}`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::access::credentials as creds;
use crate::access::{self, ClientKind, Permission, Principal, Resource};
use crate::audit::Source;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::web::AppState;
use crate::web::extract::{Purpose, bearer_principal, source};

fn oauth_error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::UNAUTHORIZED {
        b.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"gatehouse\""));
    }
    b.json(serde_json::json!({"error": code, "error_description": description}))
}

/// 429 while the caller's address has used up its failed client
/// authentications (successful calls are never counted).
fn client_auth_limited(req: &HttpRequest, st: &AppState) -> Option<HttpResponse> {
    let ip = st.limits.rate_key(req);
    let wait = st.limits.client_auth_blocked(ip)?;
    tracing::warn!(%ip, wait, "oauth client-authentication failure limit");
    let mut resp = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "temporarily_unavailable",
        &format!(
            "Too many failed client authentications from your address; try again in {wait} s."
        ),
    );
    if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}

/// The error answer, counting a failed client authentication against the address.
fn oauth_failure(req: &HttpRequest, st: &AppState, e: Error) -> HttpResponse {
    if matches!(e, Error::Unauthenticated(_)) {
        st.limits.client_auth_failed(st.limits.rate_key(req));
    }
    oauth_from(e)
}

fn oauth_from(e: Error) -> HttpResponse {
    match e {
        Error::Unauthenticated(m) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &m),
        Error::Forbidden(m) => oauth_error(StatusCode::FORBIDDEN, "access_denied", &m),
        e @ Error::MfaEnrollmentRequired => {
            oauth_error(StatusCode::FORBIDDEN, "access_denied", &e.public_message())
        }
        Error::Invalid { field, message } => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("{field}: {message}"),
        ),
        other => {
            tracing::error!(error = %other, "oauth endpoint failed");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &other.public_message(),
            )
        }
    }
}

#[derive(Deserialize, Default)]
pub struct OAuthForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    token: Option<String>,
}

/// `client_secret_basic` or `client_secret_post` (RFC 6749 §2.3.1).
fn client_credentials(req: &HttpRequest, form: &OAuthForm) -> Option<(String, String)> {
    if let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(b64) = v.strip_prefix("Basic ")
    {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (id, secret) = s.split_once(':')?;
        return Some((id.to_string(), secret.to_string()));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

/// `grant_type=client_credentials`: a 15-minute RS256 token with exactly the
/// granted scopes (or the requested subset).
pub(super) async fn token(
    req: HttpRequest,
    st: web::Data<AppState>,
    raw: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let form = match read_form(&req, &st, raw) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Some(r) = client_auth_limited(&req, &st) {
        return r;
    }
    let src = source(&req);
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only grant_type=client_credentials is served here; users sign in at /login or /api/v1/auth/login.",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required.",
            );
        }
    }
    let Some((id, secret)) = client_credentials(&req, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Authenticate with HTTP Basic (client_id:client_secret) or client_id and client_secret form fields.",
        );
    };
    let sa = match creds::authenticate_client(&st.svc, &id, &secret, &src) {
        Ok(sa) => sa,
        Err(e) => return oauth_failure(&req, &st, e),
    };
    if let Err(e) = creds::check_ip(&st.svc, &sa, st.limits.client_ip(&req), &src) {
        return oauth_from(e);
    }
    let scopes = match creds::grant_scopes(&sa, form.scope.as_deref()) {
        Ok(s) => s,
        Err(Error::Forbidden(m)) | Err(Error::Invalid { message: m, .. }) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &m);
        }
        Err(e) => return oauth_from(e),
    };
    let scope = scopes.to_scope_string();
    let signer = st.svc.signer();
    match signer.sign_client(
        &sa.id,
        sa.workspace.as_ref(),
        scope.clone(),
        st.svc.now(),
        sa.tokens_epoch,
    ) {
        Ok((tok, _)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "access_token": tok,
                "token_type": "Bearer",
                "expires_in": signer.ttl(),
                "scope": scope,
            })),
        Err(e) => oauth_from(e),
    }
}

/// Who calls introspection or revocation: a service account (Basic or form
/// credentials) or a bearer credential; it needs `introspect:credentials`.
fn endpoint_caller(
    req: &HttpRequest,
    st: &AppState,
    form: &OAuthForm,
    src: &Source,
) -> Result<Principal, Error> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let p = match bearer {
        // The caller's own credential must be a full one: a token signed
        // for MFA enrollment opens nothing else, these endpoints included.
        Some(b) => {
            bearer_principal(
                st,
                b.trim(),
                st.limits.client_address(req),
                src,
                Purpose::Full,
            )?
            .principal
        }
        None => {
            let (id, secret) = client_credentials(req, form).ok_or_else(|| {
                Error::Unauthenticated(
                    "Authenticate with HTTP Basic (client_id:client_secret) or a bearer token."
                        .into(),
                )
            })?;
            let sa = creds::authenticate_client(&st.svc, &id, &secret, src)?;
            creds::check_ip(&st.svc, &sa, st.limits.client_ip(req), src)?;
            creds::principal_from_client_token(
                &st.svc,
                &sa.id,
                &sa.scopes.join(" "),
                i64::MAX,
                sa.tokens_epoch,
                // Its allowlist was just held against the caller.
                creds::ClientAddress::NotApplicable,
                src,
            )?
        }
    };
    let d = access::decide(
        &st.svc,
        &p,
        Permission::IntrospectCredentials,
        Resource::Any,
    )?;
    if !d.allow {
        access::audit_denial(
            &st.svc,
            &p,
            Permission::IntrospectCredentials,
            Resource::Any,
            d.reason,
            src,
        )?;
        return Err(Error::Forbidden(
            "The caller lacks introspect:credentials.".into(),
        ));
    }
    Ok(p)
}

/// RFC 7662 for access tokens, API keys and widget keys. Anything invalid,
/// expired, revoked, deleted, or outside the caller's workspace is `{"active": false}`.
pub(super) async fn introspect(
    req: HttpRequest,
    st: web::Data<AppState>,
    raw: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let raw = match raw {
        Ok(b) => b,
        Err(e) => return body_error(&e),
    };
    // Active answers are reused for the same caller credential and token
    // while nothing they depend on changed (see `verify_cache`). The key is
    // the raw Authorization and Content-Type headers and body: the same bytes
    // always parse to the same caller and token, and a hit parses nothing.
    let generation = crate::web::verify_cache::generation(&st.svc);
    let now = st.svc.now();
    let h = |n| req.headers().get(n).map_or(&b""[..], |v| v.as_bytes());
    let (auth, kind) = (h(header::AUTHORIZATION), h(header::CONTENT_TYPE));
    let cache_key =
        (!raw.is_empty()).then(|| crate::web::verify_cache::key_of(&[auth, kind, &raw]));
    if let Some(k) = &cache_key
        && let Some(e) = st.introspect_cache.get(k, generation, now)
        && let Some(body) = &e.body
    {
        if let Some(id) = &e.api_key
            && e.note_due(now)
        {
            creds::note_key_use(&st.svc, id, None);
        }
        return HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("application/json")
            .body(body.clone());
    }
    let form = match oauth_form(&req, &st, &raw) {
        Ok(f) => f,
        Err((status, why)) => return oauth_error(status, "invalid_request", why),
    };
    let src = source(&req);
    if let Some(r) = client_auth_limited(&req, &st) {
        return r;
    }
    let caller = match endpoint_caller(&req, &st, &form, &src) {
        Ok(c) => c,
        Err(e) => return oauth_failure(&req, &st, e),
    };
    let inactive = || {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"active": false}))
    };
    let Some(tok) = form
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required.",
        );
    };
    // The token is not the caller's: its allowlist is for its own user.
    let b = match bearer_principal(
        &st,
        tok,
        creds::ClientAddress::NotApplicable,
        &src,
        Purpose::Full,
    ) {
        Ok(b) => b,
        Err(Error::Unauthenticated(_) | Error::Forbidden(_) | Error::MfaEnrollmentRequired) => {
            return inactive();
        }
        Err(e) => return oauth_from(e),
    };
    let visible =
        match access::visible_workspaces(&st.svc, &caller, Permission::IntrospectCredentials) {
            Ok(v) => v,
            Err(e) => return oauth_from(e),
        };
    // A workspace-bound caller sees credentials of its own workspace(s) only;
    // a user token is answered for the caller's workspace the user belongs to.
    let ws: Option<crate::principal::WorkspaceId> = match (&visible, &b.principal) {
        (None, _) => None,
        (Some(v), Principal::User { .. }) => {
            let admin = b.principal.is_platform_admin();
            let mine = v.iter().find(|w| {
                admin
                    || b.principal
                        .user_id()
                        .is_some_and(|u| access::is_member(&st.svc, u, w).unwrap_or(false))
            });
            match mine {
                Some(w) => Some(w.clone()),
                None => return inactive(),
            }
        }
        (Some(v), Principal::Client(c)) => match &c.workspace {
            Some(w) if v.contains(w) => Some(w.clone()),
            _ => return inactive(),
        },
        (Some(_), Principal::Local(_)) => return inactive(),
    };
    let (scopes, workspace, _roles) = match access::effective(&st.svc, &b.principal, ws.as_ref()) {
        Ok(x) => x,
        Err(e) => return oauth_from(e),
    };
    let mut out = serde_json::json!({
        "active": true,
        "scope": scopes.to_scope_string(),
        "workspace": workspace,
    });
    let o = out.as_object_mut();
    if let Some(o) = o {
        match (&b.principal, &b.claims) {
            (Principal::User { user, .. }, Some(c)) => {
                o.insert("sub".into(), user.id.as_str().into());
                o.insert("username".into(), user.email.as_str().into());
                o.insert("token_type".into(), "access_token".into());
                o.insert("exp".into(), c.exp.into());
                o.insert("iat".into(), c.iat.into());
                o.insert("iss".into(), c.iss.clone().into());
                o.insert("aud".into(), c.aud.clone().into());
                o.insert("client_id".into(), "gatehouse".into());
            }
            (Principal::Client(c), claims) => {
                o.insert("sub".into(), c.id.clone().into());
                o.insert(
                    "client_id".into(),
                    c.app.clone().unwrap_or_else(|| c.id.clone()).into(),
                );
                o.insert(
                    "token_type".into(),
                    match c.kind {
                        ClientKind::ServiceAccount => "access_token",
                        ClientKind::ApiKey => "api_key",
                        ClientKind::WidgetKey => "widget_key",
                    }
                    .into(),
                );
                if let Some(e) = claims.as_ref().map(|c| c.exp).or(c.exp) {
                    o.insert("exp".into(), e.into());
                }
                if let Some(b) = &c.bot {
                    o.insert("bot".into(), b.clone().into());
                    o.insert("origins".into(), c.origins.clone().into());
                }
            }
            _ => {}
        }
    }
    let body = match serde_json::to_vec(&out) {
        Ok(b) => actix_web::web::Bytes::from(b),
        Err(e) => return oauth_from(e.into()),
    };
    if let (Some(k), Some(caller_exp)) = (cache_key, caller_cacheable_until(&st, &caller)) {
        let (subject_exp, api_key) = match (&b.principal, &b.claims) {
            (_, Some(c)) => (c.exp, None),
            (Principal::Client(c), None) => (
                c.exp.unwrap_or(Timestamp::MAX),
                (c.kind == ClientKind::ApiKey).then(|| c.id.clone()),
            ),
            _ => (now, None),
        };
        st.introspect_cache.put(
            k,
            generation,
            crate::web::verify_cache::Answer {
                exp: subject_exp.min(caller_exp),
                headers: Vec::new(),
                body: Some(body.clone()),
                api_key,
            },
        );
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(body)
}

/// The body could not be read (larger than the payload limit, or cut off):
/// answered the OAuth way too, never as actix's plain-text page.
fn body_error(e: &actix_web::Error) -> HttpResponse {
    if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "The request body is larger than the limit.",
        )
    } else {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body could not be read; send the parameters as \
             application/x-www-form-urlencoded.",
        )
    }
}

/// The raw body read by the handler (not by actix's form extractor, whose
/// errors would be a page) parsed as the endpoint's form; every failure is an
/// RFC 6749 §5.2 answer.
fn read_form(
    req: &HttpRequest,
    st: &AppState,
    raw: Result<web::Bytes, actix_web::Error>,
) -> Result<OAuthForm, Box<HttpResponse>> {
    let raw = raw.map_err(|e| Box::new(body_error(&e)))?;
    oauth_form(req, st, &raw)
        .map_err(|(status, why)| Box::new(oauth_error(status, "invalid_request", why)))
}

/// The form of an OAuth endpoint read from its raw body, or the status and
/// the message that says what to fix.
fn oauth_form(
    req: &HttpRequest,
    st: &AppState,
    raw: &[u8],
) -> Result<OAuthForm, (StatusCode, &'static str)> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err((
            StatusCode::BAD_REQUEST,
            "Send the parameters as application/x-www-form-urlencoded \
             (Content-Type: application/x-www-form-urlencoded), not JSON.",
        ));
    }
    if raw.len() > st.svc.settings.limits.form_body_bytes {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than the limit.",
        ));
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| web::Query::<OAuthForm>::from_query(s).ok())
        .map(web::Query::into_inner)
        .ok_or((
            StatusCode::BAD_REQUEST,
            "The form is malformed: send name=value pairs joined by &, percent-encoded \
             (e.g. grant_type=client_credentials&scope=read%3Aagents).",
        ))
}

/// Until when answers to this introspection caller may be reused: only
/// clients (service accounts, API keys) whose access does not depend on
/// their address.
fn caller_cacheable_until(st: &AppState, caller: &Principal) -> Option<Timestamp> {
    let Principal::Client(c) = caller else {
        return None;
    };
    match c.kind {
        ClientKind::ApiKey => Some(c.exp.unwrap_or(Timestamp::MAX)),
        ClientKind::ServiceAccount => {
            let snap = access::snapshot(&st.svc).ok()?;
            snap.service_accounts
                .get(&c.id)?
                .ip_allowlist
                .is_empty()
                .then(|| c.exp.unwrap_or(Timestamp::MAX))
        }
        ClientKind::WidgetKey => None,
    }
}

/// RFC 7009: revokes an access token (until it would expire), a refresh
/// token (its whole family) or an API key (deleted). Unknown tokens answer
/// 200 too, as the RFC says.
pub(super) async fn revoke(
    req: HttpRequest,
    st: web::Data<AppState>,
    raw: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let form = match read_form(&req, &st, raw) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let src = source(&req);
    if let Some(r) = client_auth_limited(&req, &st) {
        return r;
    }
    let caller = match endpoint_caller(&req, &st, &form, &src) {
        Ok(c) => c,
        Err(e) => return oauth_failure(&req, &st, e),
    };
    let Some(tok) = form
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required.",
        );
    };
    let result = if tok.starts_with(creds::API_KEY_PREFIX) {
        creds::revoke_key(
            &st.svc,
            &crate::access::Actor::new(caller.clone(), src.clone(), None),
            tok,
        )
        .map(|_| ())
    } else if tok.contains('.') {
        revoke_access_token(&st, &caller, &src, tok)
    } else {
        let actor = crate::access::Actor::new(caller.clone(), src.clone(), None);
        crate::authn::refresh::revoke_token(&st.svc, &actor, tok).map(|_| ())
    };
    match result {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => oauth_from(e),
    }
}

/// Verifies the token (an unreadable one is not ours: nothing to revoke) and
/// hands it to `access::credentials::revoke_access_token`, which holds the rules.
fn revoke_access_token(
    st: &AppState,
    caller: &Principal,
    src: &Source,
    tok: &str,
) -> Result<(), Error> {
    let Ok(claims) = st.verify_bearer(tok) else {
        return Ok(());
    };
    creds::revoke_access_token(&st.svc, caller, src, &claims)
}
