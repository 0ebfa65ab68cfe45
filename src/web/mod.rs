//! HTTP: the actix server, middleware (request id, logging, security headers),
//! static assets, health probes, and the three route groups — `console`
//! (pages), `api` (/api/v1 JSON) and `protocol` (JWKS, discovery). Handlers
//! parse, call one domain function and render; they never open a table.

pub mod api;
pub mod auth;
pub mod console;
pub mod console_access;
pub mod console_sso;
pub mod error;
pub mod limits;
pub mod protocol;
pub mod sso;
pub mod verify_cache;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use rust_embed::RustEmbed;

use crate::clock::Timestamp;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::service::Service;
use crate::tokens::Claims;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Bearer tokens already verified, until they expire: an RSA verification per
/// request would otherwise cap the checks the platform makes on every call.
const TOKEN_CACHE_MAX: usize = 50_000;

/// SHA-256 of a verified token → its claims and expiry.
type TokenCache = HashMap<[u8; 32], (Arc<Claims>, Timestamp)>;

pub struct AppState {
    pub svc: Arc<Service>,
    pub tls: bool,
    verified: RwLock<TokenCache>,
    /// Request ids: a random per-process prefix and a counter (no syscall per request).
    request_prefix: String,
    request_counter: AtomicU64,
    pub limits: limits::Limits,
    /// Allowed `/auth/verify` answers for bearer credentials (see `verify_cache`).
    pub verify_cache: verify_cache::VerifyCache,
    /// Active `/oauth2/introspect` answers (see `verify_cache`).
    pub introspect_cache: verify_cache::VerifyCache,
    /// New secrets on their way to the page that shows them once.
    pub secrets_once: SecretsOnce,
}

/// A secret just created (an API key, a client secret) handed from the POST
/// that made it to the GET that shows it: in memory only, for the session
/// that made it, for 5 minutes, and taken on first display.
#[derive(Default)]
pub struct SecretsOnce {
    map: std::sync::Mutex<HashMap<[u8; 32], (Timestamp, LabelledSecret)>>,
}

/// What the copy-once panel shows: a label and the secret (wiped when the
/// entry is taken, expires or is dropped).
type LabelledSecret = (String, zeroize::Zeroizing<String>);

impl SecretsOnce {
    const TTL_SECS: Timestamp = 300;

    fn slot(session: &[u8; 32], handle: &str) -> [u8; 32] {
        let mut d = session.to_vec();
        d.extend_from_slice(handle.as_bytes());
        crate::crypto::sha256(&d)
    }

    /// Keeps `(label, secret)`; returns the handle for the page's URL.
    pub fn put(
        &self,
        session: &[u8; 32],
        value: (String, String),
        now: Timestamp,
    ) -> Result<String> {
        let handle = crate::crypto::random_token()?;
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, (at, _)| now - *at < Self::TTL_SECS);
            m.insert(
                Self::slot(session, &handle),
                (now, (value.0, zeroize::Zeroizing::new(value.1))),
            );
        }
        Ok(handle)
    }

    /// The secret for this session and handle, once.
    pub fn take(
        &self,
        session: &[u8; 32],
        handle: &str,
        now: Timestamp,
    ) -> Option<(String, String)> {
        let mut m = self.map.lock().ok()?;
        let (at, (label, secret)) = m.remove(&Self::slot(session, handle))?;
        (now - at < Self::TTL_SECS).then(|| (label, secret.to_string()))
    }
}

impl AppState {
    pub fn new(svc: Arc<Service>, tls: bool) -> Result<Self> {
        let prefix = hex::encode(crate::crypto::random_bytes::<4>().unwrap_or_default());
        let limits = limits::Limits::new(&svc.settings, svc.clone())?;
        Ok(AppState {
            svc,
            tls,
            verified: RwLock::new(HashMap::new()),
            request_prefix: prefix,
            request_counter: AtomicU64::new(0),
            limits,
            verify_cache: Default::default(),
            introspect_cache: Default::default(),
            secrets_once: Default::default(),
        })
    }

    fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.request_prefix)
    }

    /// Verifies a bearer token, remembering verified tokens until they expire.
    pub fn verify_bearer(&self, token: &str) -> Result<Arc<Claims>> {
        let now = self.svc.now();
        let key = crate::crypto::sha256(token.as_bytes());
        if let Ok(cache) = self.verified.read()
            && let Some((c, exp)) = cache.get(&key)
            && *exp > now
        {
            return Ok(c.clone());
        }
        let claims = Arc::new(self.svc.signer().verify(token, now)?);
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.retain(|_, (_, exp)| *exp > now);
                if cache.len() >= TOKEN_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (claims.clone(), claims.exp));
        }
        Ok(claims)
    }
}

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// The request id, for handlers and error logs.
#[derive(Clone)]
pub struct RequestId(pub String);

async fn request_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = match req.app_data::<web::Data<AppState>>() {
        Some(st) => st.next_request_id(),
        None => String::from("-"),
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.path().to_string();
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let _guard = span.enter();
    let limited = match req.app_data::<web::Data<AppState>>() {
        Some(st) if limits::is_auth_endpoint(req.request()) => st
            .limits
            .check_auth(st.limits.rate_key(req.request()))
            .err()
            .map(|wait| (st.limits.rate_key(req.request()), wait)),
        _ => None,
    };
    let mut res = match limited {
        Some((ip, wait)) => {
            tracing::warn!(%ip, %path, wait, "sign-in rate limit");
            let msg = format!("Too many attempts from your address; try again in {wait} s.");
            let mut resp = if path.starts_with("/api/") {
                error::json_error(
                    actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &msg,
                )
            } else {
                error::html_error(actix_web::http::StatusCode::TOO_MANY_REQUESTS, &msg)
            };
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            req.into_response(resp).map_into_right_body()
        }
        None => next.call(req).await?.map_into_left_body(),
    };
    let status = res.status().as_u16();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(header::HeaderName::from_static("x-request-id"), v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    if !path.starts_with("/static/") && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if path != "/healthz" && path != "/readyz" {
        tracing::info!(%method, %path, status, ms = format!("{ms:.2}"), "http");
    }
    Ok(res)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    match st.svc.store.read() {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(e) => {
            tracing::error!(error = %e, "not ready");
            error::json_error(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "The store is not available.",
            )
        }
    }
}

async fn asset(path: web::Path<String>) -> HttpResponse {
    match Assets::get(&path) {
        Some(f) => {
            let mime = match path.rsplit('.').next() {
                Some("css") => "text/css; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("png") => "image/png",
                _ => "application/octet-stream",
            };
            HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, mime))
                .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
                .body(f.data.into_owned())
        }
        None => error::html_error(actix_web::http::StatusCode::NOT_FOUND, "No such file."),
    }
}

async fn favicon() -> HttpResponse {
    asset(web::Path::from("favicon.svg".to_string())).await
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    let status = actix_web::http::StatusCode::NOT_FOUND;
    let p = req.path();
    if p.starts_with("/api/") || p.starts_with("/oauth2/") || p.starts_with("/.well-known/") {
        error::json_error(
            status,
            "not_found",
            "No such endpoint; see /api/v1/openapi.json.",
        )
    } else {
        error::html_error(status, "There is no page at this address.")
    }
}

/// Registers every route; also used by in-process tests.
pub fn routes(cfg: &mut web::ServiceConfig, settings: &Settings) {
    let json_limit = settings.limits.json_body_bytes;
    let form_limit = settings.limits.form_body_bytes;
    cfg.app_data(
        web::JsonConfig::default()
            .limit(json_limit)
            .error_handler(|e, _| error::payload_error(e.into(), true)),
    )
    .app_data(
        web::FormConfig::default()
            .limit(form_limit)
            .error_handler(|e, _| error::payload_error(e.into(), false)),
    )
    .app_data(
        web::QueryConfig::default().error_handler(|e, req| {
            error::payload_error(e.into(), req.path().starts_with("/api/"))
        }),
    )
    .app_data(
        web::PathConfig::default().error_handler(|e, req| {
            error::payload_error(e.into(), req.path().starts_with("/api/"))
        }),
    )
    .route("/healthz", web::get().to(healthz))
    .route("/readyz", web::get().to(readyz))
    // A scope, so the pattern is only matched under /static (not on every API call).
    .service(web::scope("/static").route("/{path:.*}", web::get().to(asset)))
    .route("/favicon.ico", web::get().to(favicon));
    protocol::routes(cfg);
    sso::routes(cfg);
    api::routes(cfg);
    console_access::routes(cfg);
    console_sso::routes(cfg);
    console::routes(cfg);
}

pub fn tls_config(s: &Settings) -> Result<Option<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&s.tls.cert_file, &s.tls.key_file) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::invalid("tls.cert_file", format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::invalid("tls.key_file", format!("{}: {e}", key.display())))?;
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::invalid(
                "tls",
                format!("certificate and key do not form a usable pair: {e}"),
            )
        })?;
    Ok(Some(cfg))
}

pub fn server(
    svc: Arc<Service>,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> Result<actix_web::dev::Server> {
    let settings = svc.settings.clone();
    let state = web::Data::new(AppState::new(svc, tls.is_some())?);
    let http = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(request_middleware))
            .configure(|cfg| routes(cfg, &settings))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(10);
    let http = match tls {
        Some(cfg) => http.listen_rustls_0_23(listener, cfg)?,
        None => http.listen(listener)?,
    };
    Ok(http.run())
}
