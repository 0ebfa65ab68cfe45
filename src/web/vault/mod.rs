//! HTTP for the Vault-compatible services under `/v1/`: the caller (a
//! Gatehouse API key, service-account token or user token sent as
//! `X-Vault-Token` or `Authorization: Bearer`, and its workspace, named by
//! `X-Vault-Namespace` when it has several), the request body (JSON, at most
//! `limits.vault_request_bytes`, 413 beyond), Vault's envelope (`{"data": …}`
//! / `{"errors": […]}`) and status codes, the `LIST` method (and
//! `GET ?list=true`). The engines' routes are `transit` (and `kv`).

pub(crate) mod kv;
pub(crate) mod transit;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, guard, web};
use serde_json::{Value, json};

use crate::access::Actor;
use crate::error::Error;
use crate::principal::WorkspaceId;
use crate::web::extract::{Purpose, bearer_principal, source, state};

/// Mounts `/v1/...` (called from `web::routes`).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .configure(transit::routes)
            .configure(kv::routes)
            .default_service(web::to(unsupported_path)),
    );
}

/// The `LIST` method Vault clients send for listings.
pub(crate) fn list_method() -> impl guard::Guard {
    guard::fn_guard(|ctx| ctx.head().method.as_str() == "LIST")
}

/// A Vault answer: `{"errors": […]}` with Vault's status for the error.
#[derive(Debug)]
pub(crate) enum VaultError {
    Domain(Error),
    /// An HTTP-level refusal (oversize body, unsupported method or path).
    Status(StatusCode, String),
}

impl From<Error> for VaultError {
    fn from(e: Error) -> Self {
        VaultError::Domain(e)
    }
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultError::Domain(e) => e.fmt(f),
            VaultError::Status(s, m) => write!(f, "{s}: {m}"),
        }
    }
}

impl VaultError {
    fn status_and_errors(&self) -> (StatusCode, Vec<String>) {
        match self {
            VaultError::Status(s, m) => (*s, vec![m.clone()]),
            VaultError::Domain(e) => match e {
                // Vault's words without our field prefix: the message names it.
                Error::Invalid { message, .. } => (StatusCode::BAD_REQUEST, vec![message.clone()]),
                // Vault answers a missing key or path with a 404 and no errors.
                Error::NotFound(_) => (StatusCode::NOT_FOUND, Vec::new()),
                // Vault refuses a bad or missing token as it refuses a policy: 403.
                Error::Unauthenticated(m) | Error::Forbidden(m) => (
                    StatusCode::FORBIDDEN,
                    vec![format!("permission denied: {m}")],
                ),
                Error::MfaEnrollmentRequired | Error::ReauthRequired => (
                    StatusCode::FORBIDDEN,
                    vec![format!("permission denied: {}", e.public_message())],
                ),
                // Vault answers a check-and-set mismatch with 400.
                Error::Conflict(m) => (StatusCode::BAD_REQUEST, vec![m.clone()]),
                other => {
                    let s = crate::web::error::status_of(other);
                    if s.is_server_error() {
                        tracing::error!(error = %other, "vault request failed");
                        (s, vec!["internal error".into()])
                    } else {
                        (s, vec![other.public_message()])
                    }
                }
            },
        }
    }
}

impl ResponseError for VaultError {
    fn status_code(&self) -> StatusCode {
        self.status_and_errors().0
    }
    fn error_response(&self) -> HttpResponse {
        let (status, errors) = self.status_and_errors();
        let mut r = HttpResponse::build(status);
        r.insert_header((header::CACHE_CONTROL, "no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.insert_header((
                header::RETRY_AFTER,
                crate::sso::xml_budget::RETRY_AFTER_SECS,
            ));
        }
        r.json(json!({ "errors": errors }))
    }
}

pub(crate) type VaultResult = Result<HttpResponse, VaultError>;

/// The authenticated caller of a `/v1/` endpoint and the workspace its
/// keys and secrets live in.
pub(crate) struct VaultCaller {
    pub actor: Actor,
    pub ws: WorkspaceId,
}

impl FromRequest for VaultCaller {
    type Error = VaultError;
    type Future = Ready<Result<Self, VaultError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(vault_caller(req))
    }
}

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, VaultError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| {
            VaultError::Domain(Error::invalid(
                "header",
                format!("the {name} header is not readable text"),
            ))
        }),
    }
}

fn vault_caller(req: &HttpRequest) -> Result<VaultCaller, VaultError> {
    let st = state(req)?;
    let token = match header_str(req, "x-vault-token")?.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => match header_str(req, "authorization")? {
            Some(a) => a.strip_prefix("Bearer ").map(str::trim).ok_or_else(|| {
                Error::Unauthenticated(
                    "send the credential as X-Vault-Token or Authorization: Bearer".into(),
                )
            })?,
            None => {
                return Err(Error::Unauthenticated(
                    "missing client token: send a Gatehouse API key, service-account token or \
                     user token as X-Vault-Token or Authorization: Bearer"
                        .into(),
                )
                .into());
            }
        },
    };
    let src = source(req);
    let b = bearer_principal(
        st,
        token,
        st.limits.client_address(req),
        &src,
        Purpose::Full,
    )?;
    let auth_at = match b.principal {
        crate::access::Principal::User { .. } => Some(b.auth_at),
        _ => None,
    };
    let actor = Actor::new(b.principal, src, auth_at);
    let ws = crate::vault::namespace(&st.svc, &actor, header_str(req, "x-vault-namespace")?)?;
    Ok(VaultCaller { actor, ws })
}

/// Reads a JSON request body of at most `limits.vault_request_bytes`: an
/// empty body is `{}`; anything but a JSON object is a 400; a larger body
/// is a 413 (told by its Content-Length before a byte is read, else once
/// the limit is passed).
pub(crate) async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Value, VaultError> {
    let limit = state(req)?.svc.settings.limits.vault_request_bytes;
    let too_large = || {
        VaultError::Status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large: at most {limit} bytes (limits.vault_request_bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let buf = match payload.to_bytes_limited(limit).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return Err(VaultError::Status(
                StatusCode::BAD_REQUEST,
                "the request body could not be read".into(),
            ));
        }
        Err(_) => return Err(too_large()),
    };
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&buf) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(VaultError::Domain(Error::invalid(
            "body",
            "failed to parse JSON input: send a JSON object",
        ))),
    }
}

/// Vault's answer to a successful call: the envelope around `data`, or 204
/// when there is none; `status` overrides 200 (a batch with failed items).
pub(crate) fn envelope(
    data: Option<Value>,
    warnings: Vec<String>,
    status: Option<StatusCode>,
) -> HttpResponse {
    let Some(data) = data else {
        return HttpResponse::NoContent()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    };
    let id = crate::crypto::random_bytes::<16>()
        .map(|b| {
            let h = hex::encode(b);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        })
        .unwrap_or_default();
    HttpResponse::build(status.unwrap_or(StatusCode::OK))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "request_id": id,
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": data,
            "wrap_info": null,
            "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
            "auth": null,
        }))
}

/// Whether a `GET` asks for a listing (`?list=true`, as Vault's clients send).
pub(crate) fn wants_list(req: &HttpRequest) -> bool {
    req.query_string()
        .split('&')
        .any(|kv| matches!(kv, "list=true" | "list=1"))
}

async fn unsupported_path(req: HttpRequest) -> HttpResponse {
    let p: String = req.path().chars().take(200).collect();
    VaultError::Status(
        StatusCode::NOT_FOUND,
        format!(
            "no handler for route \"{}\". route entry not found.",
            p.trim_start_matches("/v1/")
        ),
    )
    .error_response()
}

/// What a known path answers to a method it does not serve.
pub(crate) async fn unsupported_operation() -> HttpResponse {
    VaultError::Status(
        StatusCode::METHOD_NOT_ALLOWED,
        "unsupported operation".into(),
    )
    .error_response()
}
