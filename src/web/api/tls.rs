//! `/api/v1/tls`: the HTTPS certificate being served, where it comes from
//! (files or ACME), its renewal and the last error with the CA's problem
//! document.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiResult;
use crate::clock::rfc3339;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct CertificateDto {
    pub subject: String,
    pub issuer: String,
    /// The DNS names (and IP addresses) it is valid for.
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub sha256_fingerprint: String,
}

#[derive(Serialize, ToSchema)]
pub struct TlsErrorDto {
    pub at: String,
    pub message: String,
    /// The ACME CA's problem document (RFC 8555 §6.7), when it sent one.
    #[schema(value_type = Option<Object>)]
    pub problem: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct AcmeDto {
    pub directory_url: String,
    pub domains: Vec<String>,
    pub challenge: String,
    pub last_renewal: Option<String>,
    pub next_attempt: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TlsDto {
    /// `files` or `acme`.
    pub source: String,
    pub min_version: String,
    pub hsts_max_age_secs: u64,
    pub certificate: Option<CertificateDto>,
    pub loaded_at: Option<String>,
    pub acme: Option<AcmeDto>,
    pub last_error: Option<TlsErrorDto>,
}

pub(crate) fn dto(s: crate::tls::Status) -> TlsDto {
    TlsDto {
        source: s.source.to_string(),
        min_version: s.min_version,
        hsts_max_age_secs: s.hsts_max_age_secs,
        certificate: s.certificate.map(|c| CertificateDto {
            subject: c.subject,
            issuer: c.issuer,
            names: c.names,
            not_before: rfc3339(c.not_before),
            not_after: rfc3339(c.not_after),
            sha256_fingerprint: c.sha256_fingerprint,
        }),
        loaded_at: s.loaded_at.map(rfc3339),
        acme: s.acme.map(|a| AcmeDto {
            directory_url: a.directory_url,
            domains: a.domains,
            challenge: a.challenge,
            last_renewal: a.last_renewal.map(rfc3339),
            next_attempt: a.next_attempt.map(rfc3339),
        }),
        last_error: s.last_error.map(|e| TlsErrorDto {
            at: rfc3339(e.at),
            message: e.message,
            problem: e.problem,
        }),
    }
}

/// The served certificate and its renewal (`manage:security`); 404 on plain HTTP.
#[utoipa::path(get, path = "/api/v1/tls", responses((status = 200, body = TlsDto)))]
pub(super) async fn tls_status(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    let s = crate::tls::status_for(&st.svc, &caller.actor(&req))?;
    Ok(HttpResponse::Ok().json(dto(s)))
}
