//! `GET /auth/verify`: forward auth for nginx `auth_request`, Traefik
//! ForwardAuth and Caddy `forward_auth`, and the credential check the API's
//! access check shares.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::access::credentials as creds;
use crate::access::{self, ClientKind, Decision, Permission, Principal, Resource};
use crate::audit::Source;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::principal::WorkspaceId;
use crate::web::AppState;
use crate::web::extract::{Purpose, bearer_principal, session_cookie_name, source};

/// The answer about one presented credential, shared by `/auth/verify` and
/// `POST /api/v1/authorize`.
pub struct Checked {
    pub allow: bool,
    pub reason: &'static str,
    pub sub: Option<String>,
    pub workspace: Option<WorkspaceId>,
}

impl Checked {
    fn no(reason: &'static str) -> Checked {
        Checked {
            allow: false,
            reason,
            sub: None,
            workspace: None,
        }
    }
}

fn sub_of(p: &Principal) -> Option<String> {
    match p {
        Principal::User { user, .. } => Some(user.id.as_str().to_string()),
        Principal::Client(c) => Some(c.id.clone()),
        Principal::Local(_) => None,
    }
}

/// Authenticates `raw` and decides `perm` on `res`; denials are audited.
pub fn check_credential(
    st: &AppState,
    raw: &str,
    perm: Permission,
    res: Resource<'_>,
    addr: creds::ClientAddress,
    origin: Option<&str>,
    src: &Source,
) -> Result<Checked, Error> {
    let b = match bearer_principal(st, raw.trim(), addr, src, Purpose::Full) {
        Ok(b) => b,
        Err(Error::Unauthenticated(_)) => return Ok(Checked::no("invalid_credential")),
        Err(Error::Forbidden(_)) => return Ok(Checked::no("ip_not_allowed")),
        Err(Error::MfaEnrollmentRequired) => return Ok(Checked::no("mfa_enrollment_required")),
        Err(e) => return Err(e),
    };
    decide_for(st, b.principal, perm, res, origin, src)
}

fn decide_for(
    st: &AppState,
    p: Principal,
    perm: Permission,
    res: Resource<'_>,
    origin: Option<&str>,
    src: &Source,
) -> Result<Checked, Error> {
    if let Some(c) = p.client()
        && c.kind == ClientKind::WidgetKey
    {
        let o = origin.map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase());
        if !o.is_some_and(|o| c.origins.contains(&o)) {
            access::audit_denial(&st.svc, &p, perm, res, "origin_not_allowed", src)?;
            return Ok(Checked::no("origin_not_allowed"));
        }
    }
    let d: Decision = access::decide(&st.svc, &p, perm, res)?;
    if !d.allow {
        access::audit_denial(&st.svc, &p, perm, res, d.reason, src)?;
    }
    Ok(Checked {
        allow: d.allow,
        reason: d.reason,
        sub: sub_of(&p),
        workspace: d.workspace,
    })
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    /// A catalogue permission the request needs.
    scope: Option<String>,
    /// Or a role id (built-in or custom) the user must hold.
    role: Option<String>,
    workspace: Option<String>,
    bot: Option<String>,
}

fn header_str<'a>(req: &'a HttpRequest, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| req.headers().get(*n).and_then(|v| v.to_str().ok()))
        .filter(|s| !s.is_empty())
}

/// Forward auth. 200 with identity headers; 401 when no valid credential
/// (with `Location: /login?rd=…` for the proxy to redirect browsers to);
/// 403 when the credential lacks the scope or role.
pub(super) async fn verify(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<VerifyQuery>,
) -> HttpResponse {
    match verify_inner(&req, &st, &q) {
        Ok(r) => r,
        Err(e) => crate::web::error::json_error(
            crate::web::error::status_of(&e),
            e.code(),
            &e.public_message(),
        ),
    }
}

fn unauthorized(req: &HttpRequest, st: &AppState, why: &str) -> HttpResponse {
    let uri = header_str(req, &["x-original-uri", "x-forwarded-uri"]).unwrap_or("/");
    let rd = if crate::web::html::is_local_path(uri) {
        uri
    } else {
        "/"
    };
    let login = format!(
        "{}/login?rd={}",
        st.svc.public_url(),
        crate::web::html::enc_path(rd)
    );
    let browser = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut b = HttpResponse::Unauthorized();
    b.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"gatehouse\""));
    if browser {
        b.insert_header((header::LOCATION, login.clone()));
    }
    b.json(serde_json::json!({"error": {"code": "unauthenticated", "message": why}, "login_url": login}))
}

fn verify_inner(req: &HttpRequest, st: &AppState, q: &VerifyQuery) -> Result<HttpResponse, Error> {
    // Read before anything is computed: a commit racing this check makes the
    // answer stale in the cache, never wrong.
    let generation = crate::web::verify_cache::generation(&st.svc);
    let now = st.svc.now();
    let cache_key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|b| {
            crate::web::verify_cache::key(
                b.trim(),
                req.query_string(),
                header_str(req, &["origin"]),
            )
        });
    if let Some(k) = &cache_key
        && let Some(e) = st.verify_cache.get(k, generation, now)
    {
        if let Some(id) = &e.api_key
            && e.note_due(now)
        {
            creds::note_key_use(&st.svc, id, st.limits.client_ip(req));
        }
        let mut b = HttpResponse::Ok();
        b.insert_header((header::CACHE_CONTROL, "no-store"));
        for (n, v) in &e.headers {
            b.insert_header((n.clone(), v.clone()));
        }
        return Ok(b.finish());
    }
    let src = source(req);
    let addr = st.limits.client_address(req);
    let mut cacheable: Option<(Timestamp, Option<String>)> = None;
    let principal = if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        let Some(raw) = h.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
            return Ok(unauthorized(
                req,
                st,
                "Send the header Authorization: Bearer followed by an access token or an API key.",
            ));
        };
        match bearer_principal(st, raw.trim(), addr, &src, Purpose::Full) {
            Ok(b) => {
                cacheable = cacheable_until(st, &b);
                b.principal
            }
            Err(Error::MfaEnrollmentRequired) => {
                return Ok(unauthorized(req, st, "Finish MFA enrollment first."));
            }
            Err(Error::Unauthenticated(m)) => return Ok(unauthorized(req, st, &m)),
            Err(e) => return Err(e),
        }
    } else if let Some(c) = req.cookie(session_cookie_name(st.tls)) {
        match crate::authn::session::lookup(&st.svc, c.value())? {
            Some((hash, s, user)) if !s.enroll_only => Principal::User {
                user: std::sync::Arc::new(user),
                session: Some(hash),
            },
            _ => {
                return Ok(unauthorized(
                    req,
                    st,
                    "Your session has ended; sign in again.",
                ));
            }
        }
    } else {
        return Ok(unauthorized(
            req,
            st,
            "Sign in, or send a bearer token or API key.",
        ));
    };
    let ws = match q.workspace.as_deref().filter(|w| !w.is_empty()) {
        Some(w) => Some(WorkspaceId::parse(w)?),
        None => None,
    };
    let res = match (&ws, q.bot.as_deref().filter(|b| !b.is_empty())) {
        (Some(w), Some(bot)) => Resource::bot(w, bot)?,
        (Some(w), None) => Resource::Workspace(w),
        (None, _) => Resource::Any,
    };
    let origin = header_str(req, &["origin"]);
    let mut decided_ws = res.workspace().cloned();
    if let Some(scope) = q.scope.as_deref().filter(|s| !s.is_empty()) {
        let perm = crate::access::PermSet::parse_one("scope", scope)?;
        let c = decide_for(st, principal.clone(), perm, res, origin, &src)?;
        if !c.allow {
            return Ok(forbidden(c.reason));
        }
        decided_ws = c.workspace;
    } else if let Some(c) = principal.client()
        && c.kind == ClientKind::WidgetKey
    {
        // A widget key is good for its bot's chat scope only.
        return Ok(forbidden("widget_key_bot_only"));
    }
    let (perms, eff_ws, roles) = access::effective(&st.svc, &principal, decided_ws.as_ref())?;
    if let Some(role) = q.role.as_deref().filter(|r| !r.is_empty()) {
        let ok = principal.is_platform_admin() || roles.iter().any(|r| r == role.trim());
        if !ok {
            access::audit_denial(
                &st.svc,
                &principal,
                Permission::UseAgents,
                res,
                "role_missing",
                &src,
            )?;
            return Ok(forbidden("role_missing"));
        }
    }
    let mut headers: Vec<(header::HeaderName, header::HeaderValue)> = Vec::with_capacity(5);
    let mut set = |name: &'static str, v: &str| {
        if let Ok(hv) = header::HeaderValue::from_str(v) {
            headers.push((header::HeaderName::from_static(name), hv));
        }
    };
    match &principal {
        Principal::User { user, .. } => {
            set("x-gatehouse-user", user.id.as_str());
            set("x-gatehouse-email", user.email.as_str());
        }
        Principal::Client(c) => set("x-gatehouse-user", &c.id),
        Principal::Local(_) => {}
    }
    if let Some(w) = &eff_ws {
        set("x-gatehouse-workspace", w.as_str());
    }
    set("x-gatehouse-roles", &roles.join(","));
    set("x-gatehouse-scopes", &perms.to_scope_string());
    let mut b = HttpResponse::Ok();
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    for (n, v) in &headers {
        b.insert_header((n.clone(), v.clone()));
    }
    if let (Some(k), Some((exp, api_key))) = (cache_key, cacheable) {
        st.verify_cache.put(
            k,
            generation,
            crate::web::verify_cache::Answer {
                exp,
                headers,
                body: None,
                api_key,
            },
        );
    }
    Ok(b.finish())
}

/// Until when an allowed answer for this bearer credential may be reused,
/// and the API key whose use a reuse records; `None` when the answer
/// depends on the caller's address or origin.
fn cacheable_until(
    st: &AppState,
    b: &crate::web::auth::Bearer,
) -> Option<(Timestamp, Option<String>)> {
    match &b.principal {
        Principal::User { .. } => b.claims.as_ref().map(|c| (c.exp, None)),
        Principal::Client(c) => match c.kind {
            ClientKind::ApiKey => Some((c.exp.unwrap_or(Timestamp::MAX), Some(c.id.clone()))),
            ClientKind::ServiceAccount => {
                let snap = access::snapshot(&st.svc).ok()?;
                let sa = snap.service_accounts.get(&c.id)?;
                sa.ip_allowlist
                    .is_empty()
                    .then(|| (c.exp.unwrap_or(Timestamp::MAX), None))
            }
            ClientKind::WidgetKey => None,
        },
        Principal::Local(_) => None,
    }
}

fn forbidden(reason: &str) -> HttpResponse {
    crate::web::error::json_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        &format!("The credential does not allow this ({reason})."),
    )
}
