//! The request middleware: request ids, logging, the sign-in rate limit and
//! the security headers on every answer.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpMessage, web};
use tracing::Instrument;

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
    let st = req.app_data::<web::Data<AppState>>().cloned();
    let id = match &st {
        Some(st) => st.next_request_id(),
        None => String::from("-"),
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    // Handlers' own log lines carry the request id through this span; it is
    // attached to the handler's future (never entered across an await).
    let span = tracing::info_span!("request", request_id = %id);
    let started = std::time::Instant::now();
    let client = st.as_ref().map(|st| st.limits.client(req.request()));
    let log = tracing::enabled!(tracing::Level::INFO)
        && (st.as_ref().is_some_and(|st| st.log_probes) || !is_probe(req.path()));
    // What the request line shows, taken before the request moves on.
    let line = log.then(|| {
        (
            req.method().clone(),
            req.path().to_string(),
            shown_query(req.query_string()),
        )
    });
    let is_static = req.path().starts_with("/static/");
    let mut res = handle(req, next, st, client).instrument(span).await?;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(header::HeaderName::from_static("x-request-id"), v);
    }
    if !is_static && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some((method, path, query)) = line {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let client = match client {
            Some(limits::Client::Known(ip)) => Shown::Ip(ip),
            _ => Shown::Text(limits::UNKNOWN_CLIENT),
        };
        tracing::info!(
            request_id = %id,
            %method,
            %path,
            query = (!query.is_empty()).then_some(query.as_str()),
            status = res.status().as_u16(),
            ms = (ms * 100.0).round() / 100.0,
            %client,
            "http"
        );
    }
    Ok(res)
}

/// The sign-in rate limit, then the handler.
async fn handle<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    st: Option<web::Data<AppState>>,
    client: Option<limits::Client>,
) -> std::result::Result<ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    let limited = match (&st, client) {
        (Some(st), Some(client)) => {
            let key = client.rate_key();
            if key == crate::ratelimit::RateKey::Unknown {
                st.limits.note_unknown(req.path());
            }
            if limits::is_auth_endpoint(req.request()) {
                st.limits.check_auth(key).err().map(|wait| (key, wait))
            } else {
                None
            }
        }
        _ => None,
    };
    Ok(match limited {
        Some((ip, wait)) => {
            let path = req.path();
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
    })
}

/// Health and readiness probes: left out of the request log unless
/// `log_probes` is set (a load balancer asks every few seconds).
fn is_probe(path: &str) -> bool {
    path == "/healthz" || path == "/readyz"
}

/// The client address as the request line shows it.
enum Shown {
    Ip(std::net::IpAddr),
    Text(&'static str),
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Ip(ip) => std::fmt::Display::fmt(ip, f),
            Shown::Text(t) => f.write_str(t),
        }
    }
}

/// The query string as logged: parameter names only, every value shown as
/// `*` (a setup token, an authorization code, a bearer token put in the URL
/// by a careless client). A name that does not look like one (long, or
/// with other characters: a bare value such as `?ghk_…`) is shown as `?`.
/// Empty when there is no query.
pub(crate) fn shown_query(q: &str) -> String {
    let mut out = String::new();
    for (i, pair) in q.split('&').filter(|p| !p.is_empty()).enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        let plain = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        out.push_str(if plain { name } else { "?" });
        if value.is_some() {
            out.push_str("=*");
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::shown_query;

    #[test]
    fn the_logged_query_keeps_names_and_never_values() {
        assert_eq!(shown_query(""), "");
        assert_eq!(
            shown_query("token=s3cret&scope=read:agents"),
            "token=*&scope=*"
        );
        // A bare value, a long name, a name with other bytes: not shown.
        assert_eq!(shown_query("ghk_0123456789abcdefghijklmnopqrstuvwxyz"), "?");
        assert_eq!(shown_query("a%20b=1&&x"), "?=*&x");
        assert_eq!(shown_query("rd=https%3A%2F%2Fapp%2F%3Ftoken%3Dabc"), "rd=*");
    }
}
