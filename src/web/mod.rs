//! HTTP: the actix server, static assets, health probes, and the four route
//! groups — `protocol` (sign-in pages, OAuth 2.0, forward auth, SSO
//! endpoints, discovery), `api` (/api/v1 JSON), `console` (admin pages) and
//! `vault` (the Vault-compatible /v1/ services) —
//! over shared pieces: `state`, `middleware`, `extract` (callers), `html`
//! (rendering, safe redirects) and `error`. Handlers parse, call one domain
//! function and render; they never open a table.

mod allow;
pub mod api;
mod console;
pub mod error;
pub(crate) mod extract;
mod html;
pub(crate) mod limits;
mod middleware;
mod notice;
mod protocol;
mod state;
mod vault;

/// The path handlers have always imported callers from.
pub(crate) use self::extract as auth;
pub use middleware::RequestId;
/// Tests read the forward-auth cache's generation here.
pub use protocol::verify_cache;
pub use state::{AppState, KeptForm, KeptForms, SecretsOnce};

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::http::header::{self};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rust_embed::RustEmbed;

use crate::config::Settings;
use crate::error::Result;
use crate::service::Service;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    match st.svc.store.ping() {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(e) => {
            tracing::error!(error = %e, "not ready");
            let mut r = error::json_error(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "The store is not available.",
            );
            // Every 503 says when to come back.
            r.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(
                    crate::sso::xml_budget::RETRY_AFTER_SECS,
                ),
            );
            r
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

/// No route matched: 405 with `Allow` when the path is served with other
/// methods (`allow`), else 404.
pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    if let Some(r) = allow::method_not_allowed(&req) {
        return r;
    }
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

/// A JSON body error: a missing or wrong Content-Type says what to send
/// (400 `invalid_request` when there is none, as for any missing input; 415
/// `unsupported_media_type` when another type was sent); anything else is
/// the shared 400/413 answer.
fn json_payload_error(
    e: actix_web::error::JsonPayloadError,
    req: &HttpRequest,
) -> actix_web::Error {
    if let actix_web::error::JsonPayloadError::ContentType = e {
        let (status, code) = if req.headers().contains_key(header::CONTENT_TYPE) {
            (
                actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
        } else {
            (actix_web::http::StatusCode::BAD_REQUEST, "invalid_request")
        };
        let resp = error::json_error(
            status,
            code,
            "Send Content-Type: application/json with a JSON body.",
        );
        return actix_web::error::InternalError::from_response(e.to_string(), resp).into();
    }
    error::payload_error(e.into(), true)
}

/// Registers every route; also used by in-process tests.
pub fn routes(cfg: &mut web::ServiceConfig, settings: &Settings) {
    let json_limit = settings.limits.json_body_bytes;
    let form_limit = settings.limits.form_body_bytes;
    cfg.app_data(
        web::JsonConfig::default()
            .limit(json_limit)
            .error_handler(json_payload_error),
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
    vault::routes(cfg);
    api::routes(cfg);
    console::routes(cfg);
}

pub fn server(
    svc: Arc<Service>,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> Result<actix_web::dev::Server> {
    let settings = svc.settings.clone();
    let hsts = tls.is_some().then_some(settings.tls.hsts_max_age_secs);
    let state = web::Data::new(AppState::new(svc, tls.is_some())?);
    let http = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(
                middleware::request_middleware,
            ))
            // Outermost, so it also covers the 429 answered above.
            .wrap(middleware::security_headers(hsts))
            .configure(|cfg| routes(cfg, &settings))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(10);
    let http = match tls {
        Some(cfg) => http
            .tls_handshake_timeout(std::time::Duration::from_secs(10))
            .listen_rustls_0_23(listener, cfg)?,
        None => http.listen(listener)?,
    };
    Ok(http.run())
}

/// ACME HTTP-01: the key authorization for an open challenge, else 404.
async fn acme_http01(svc: web::Data<Arc<Service>>, token: web::Path<String>) -> HttpResponse {
    match svc.tls().and_then(|t| t.http01_answer(&token)) {
        Some(ka) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .body(ka),
        None => HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .body("no such challenge"),
    }
}

/// Everything else on plain HTTP: a permanent redirect to the same path on
/// the HTTPS public URL (never to the request's Host, which the client chose).
async fn to_https(svc: web::Data<Arc<Service>>, req: HttpRequest) -> HttpResponse {
    let base = svc.public_url();
    let target = format!(
        "{}{}",
        base.trim_end_matches('/'),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, target))
        .finish()
}

/// The optional plain-HTTP listener (`tls.http_listen`): redirects to HTTPS
/// and answers HTTP-01 challenges; nothing else is served on it.
pub fn redirect_server(svc: Arc<Service>, listener: TcpListener) -> Result<actix_web::dev::Server> {
    let data = web::Data::new(svc);
    let http = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(
                "/.well-known/acme-challenge/{token}",
                web::get().to(acme_http01),
            )
            .default_service(web::to(to_https))
    })
    .workers(1)
    .shutdown_timeout(5)
    .listen(listener)?;
    Ok(http.run())
}
