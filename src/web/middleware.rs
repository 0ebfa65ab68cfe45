//! The request middleware: request ids, logging, the sign-in rate limit and
//! the security headers on every answer.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpMessage, web};

use crate::web::{AppState, error, limits};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The request id, for handlers and error logs.
#[derive(Clone)]
pub struct RequestId(pub String);

pub(crate) async fn request_middleware(
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
        Some(st) => {
            let key = st.limits.rate_key(req.request());
            if key == crate::ratelimit::RateKey::Unknown {
                st.limits.note_unknown(&path);
            }
            if limits::is_auth_endpoint(req.request()) {
                st.limits.check_auth(key).err().map(|wait| (key, wait))
            } else {
                None
            }
        }
        None => None,
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
    if !path.starts_with("/static/") && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if path != "/healthz" && path != "/readyz" {
        tracing::info!(%method, %path, status, ms = format!("{ms:.2}"), "http");
    }
    Ok(res)
}

/// The static security headers on every answer, errors and the 429 above
/// included (wrapped outside `request_middleware`). No handler sets any of
/// them, so adding them only when absent is the same as overwriting.
/// `hsts_max_age`: HTTPS only (`tls.hsts_max_age_secs`, none when 0).
pub(crate) fn security_headers(hsts_max_age: Option<u64>) -> DefaultHeaders {
    let h = DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CONTENT_SECURITY_POLICY, CSP));
    match hsts_max_age {
        Some(secs) if secs > 0 => {
            h.add((header::STRICT_TRANSPORT_SECURITY, format!("max-age={secs}")))
        }
        _ => h,
    }
}
