//! The one place that maps domain errors to HTTP: JSON `{"error": {code,
//! message}}` for the API, an HTML page for the console, a redirect to the
//! sign-in page for an unauthenticated browser. 5xx bodies are opaque; the
//! details go to the log with the request id.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::error::Error;

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid { .. } | Error::IpRequired => StatusCode::BAD_REQUEST,
        Error::InvalidCredentials
        | Error::InvalidCode
        | Error::ProofRefused
        | Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::MfaEnrollmentRequired | Error::ReauthRequired => {
            StatusCode::FORBIDDEN
        }
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Integrity(_) | Error::Storage(_) | Error::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `Retry-After` on every 503 (`Error::Unavailable`: a busy pool, see
/// `sso::xml_budget::Pool`, or any other server-wide cap).
fn retry_after(e: &Error, r: &mut HttpResponse) {
    if status_of(e) == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(crate::sso::xml_budget::RETRY_AFTER_SECS),
        );
    }
}

fn log(e: &Error) {
    if status_of(e).is_server_error() {
        tracing::error!(error = %e, "request failed");
    }
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"error": {"code": code, "message": message}}))
}

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }
    fn error_response(&self) -> HttpResponse {
        log(&self.0);
        let mut r = json_error(self.status_code(), self.0.code(), &self.0.public_message());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        retry_after(&self.0, &mut r);
        r
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
}

pub fn html_error(status: StatusCode, message: &str) -> HttpResponse {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = ErrorPage {
        status: status.as_u16(),
        title,
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body)
}

/// An error answered as a page (or a redirect to sign in).
#[derive(Debug)]
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self.0 {
            Error::Unauthenticated(_) | Error::MfaEnrollmentRequired | Error::ReauthRequired => {
                StatusCode::SEE_OTHER
            }
            _ => status_of(&self.0),
        }
    }
    fn error_response(&self) -> HttpResponse {
        log(&self.0);
        let to = match self.0 {
            Error::Unauthenticated(_) => Some("/login"),
            Error::MfaEnrollmentRequired => Some("/admin/account/mfa/required"),
            Error::ReauthRequired => Some("/admin/reauth"),
            _ => None,
        };
        if let Some(to) = to {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish();
        }
        let mut r = html_error(self.status_code(), &self.0.public_message());
        retry_after(&self.0, &mut r);
        r
    }
}

/// Body and query errors from actix's extractors: 400 naming the field, 413 when too large.
pub fn payload_error(err: actix_web::Error, json: bool) -> actix_web::Error {
    let status = err.as_response_error().status_code();
    let text = err.to_string();
    let (status, msg) = if status == StatusCode::PAYLOAD_TOO_LARGE
        || text.contains("overflow")
        || text.contains("too large")
    {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than the limit.".to_string(),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            format!("Malformed request: {}", sanitize(&text)),
        )
    };
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "payload_too_large"
    } else {
        "invalid_request"
    };
    let resp = if json {
        json_error(status, code, &msg)
    } else {
        html_error(status, &msg)
    };
    actix_web::error::InternalError::from_response(text, resp).into()
}

/// Serde messages name the field (`missing field `email``); keep them short.
fn sanitize(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::http::{StatusCode, header};

    use super::{ApiError, PageError};
    use crate::error::Error;

    #[test]
    fn every_503_says_when_to_retry() {
        let e = || Error::Unavailable("The server is busy; try again.".into());
        for r in [
            ApiError(e()).error_response(),
            PageError(e()).error_response(),
        ] {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(r.headers().contains_key(header::RETRY_AFTER));
        }
        let r = ApiError(Error::IpRequired).error_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(!r.headers().contains_key(header::RETRY_AFTER));
    }
}
