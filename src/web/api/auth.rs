//! `/api/v1/auth/*`: sign-in over the API — password, the second-factor step
//! (and its e-mail/SMS code) and refresh-token exchange.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, ErrorBody, Sent, sent};
use crate::authn::{self, Channel, Grant, TokenPair, password::Password};
use crate::error::Error;
use crate::web::AppState;
use crate::web::auth::source;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
}

/// Exchange e-mail and password for an access token and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/login", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody, description = "invalid credentials"),
        (status = 403, body = ErrorBody, description = "single sign-on is enforced, or an administrator set a temporary password: a new one is chosen in the console first")))]
pub(super) async fn login(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> ApiResult {
    let (_, grant) = authn::login(
        &st.svc,
        &body.email,
        &body.password,
        &source(&req),
        Channel::Api,
    )
    .await?;
    match grant {
        Grant::Tokens(pair) => Ok(HttpResponse::Ok().json(pair)),
        Grant::Mfa { mfa_token, methods } => Ok(HttpResponse::Ok().json(MfaRequired {
            mfa_required: true,
            mfa_token,
            methods,
        })),
        Grant::Session { .. } | Grant::PasswordChange { .. } => {
            Err(Error::internal("browser grant on the API channel").into())
        }
    }
}

/// Answer to a correct password when a second factor is due.
#[derive(Serialize, ToSchema)]
pub struct MfaRequired {
    pub mfa_required: bool,
    /// Single-use, 5 minutes, good for `POST /api/v1/auth/mfa` only.
    pub mfa_token: String,
    #[schema(value_type = Vec<String>)]
    pub methods: Vec<authn::mfa::MfaMethod>,
}

#[derive(Deserialize, ToSchema)]
pub struct MfaRequest {
    pub mfa_token: String,
    /// `totp` or `recovery_code`.
    pub method: String,
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct MfaTokens {
    #[serde(flatten)]
    pub tokens: TokenPair,
    /// Present when a recovery code was used: how many are left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes_remaining: Option<usize>,
}

/// Complete a sign-in with the second factor.
#[utoipa::path(post, path = "/api/v1/auth/mfa", request_body = MfaRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody, description = "wrong or replayed code, or expired mfa_token")))]
pub(super) async fn mfa_complete(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<MfaRequest>,
) -> ApiResult {
    let method = authn::mfa::MfaMethod::parse(&body.method)?;
    let (_, grant, remaining) = authn::complete_mfa(
        &st.svc,
        &body.mfa_token,
        method,
        &body.code,
        &source(&req),
        Channel::Api,
    )?;
    match grant {
        Grant::Tokens(tokens) => Ok(HttpResponse::Ok().json(MfaTokens {
            tokens,
            recovery_codes_remaining: remaining,
        })),
        _ => Err(Error::internal("unexpected grant on the API channel").into()),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SendCodeRequest {
    pub mfa_token: String,
    /// `email` or `sms`.
    pub method: String,
}

/// During sign-in: send an e-mail or SMS code for the `mfa_token` (at most one per 30 s).
#[utoipa::path(post, path = "/api/v1/auth/mfa/send", request_body = SendCodeRequest,
    responses((status = 202, body = Sent), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "sent too recently")))]
pub(super) async fn mfa_send(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<SendCodeRequest>,
) -> ApiResult {
    let method = authn::mfa::MfaMethod::from_wire(&body.method)
        .ok_or_else(authn::mfa::not_a_sign_in_method)?;
    authn::mfa::send_challenge_code(&st.svc, &body.mfa_token, method, &source(&req)).await?;
    Ok(sent())
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Spend a refresh token for a new pair. Reusing a spent token revokes its family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = ErrorBody)))]
pub(super) async fn refresh(
    req: HttpRequest,
    st: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(authn::refresh_tokens(
        &st.svc,
        &body.refresh_token,
        &source(&req),
    )?))
}
