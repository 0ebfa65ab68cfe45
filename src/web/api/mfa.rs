//! `/api/v1/me/mfa/*`: the caller's own second factors (TOTP, e-mail and SMS
//! codes, recovery codes, removal), and an admin's `users/{id}/mfa/reset`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, ErrorBody, Sent, sent};
use crate::authn::{self, mfa::MfaMethod, password::Password};
use crate::identity::UserId;
use crate::web::AppState;
use crate::web::auth::{ApiCaller, source};

/// The proof for adding a factor beside an active one (absent for the first).
#[derive(Deserialize, ToSchema, Default)]
pub struct AddProof {
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Password>,
    /// The factor `code` is from: `totp`, `email`, `sms` or `recovery_code`.
    pub method: Option<String>,
    pub code: Option<String>,
}

impl AddProof {
    fn proof(&self) -> Result<Option<authn::Proof<'_>>, crate::error::Error> {
        let method = MfaMethod::parse_opt(self.method.as_deref())?;
        Ok(self.password.as_ref().map(|password| authn::Proof {
            password,
            method,
            code: self.code.as_deref(),
        }))
    }
}

/// Start e-mail codes: a code goes to the account's address; confirm it.
/// Beside an active factor, the body carries the proof (password and a current code).
#[utoipa::path(post, path = "/api/v1/me/mfa/email", request_body = AddProof, responses((status = 202, body = Sent), (status = 400, body = ErrorBody)))]
pub(super) async fn email_start(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: Option<web::Json<AddProof>>,
) -> ApiResult {
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    authn::mfa::start_code_enrollment(
        &st.svc,
        &caller.actor(&req),
        MfaMethod::Email,
        None,
        body.proof()?.as_ref(),
    )
    .await?;
    Ok(sent())
}

/// Activate e-mail codes with the code that was sent.
#[utoipa::path(post, path = "/api/v1/me/mfa/email/confirm", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)))]
pub(super) async fn email_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CodeRequest>,
) -> ApiResult {
    let codes = authn::mfa::confirm_code_enrollment(
        &st.svc,
        caller.user()?,
        MfaMethod::Email,
        &body.code,
        &source(&req),
    )?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PhoneRequest {
    /// International format, e.g. +4915112345678.
    pub phone: String,
    /// Beside an active factor: the proof (see `AddProof`).
    #[serde(flatten)]
    pub proof: AddProof,
}

/// Start SMS codes: a code goes to `phone`; confirm it.
#[utoipa::path(post, path = "/api/v1/me/mfa/sms", request_body = PhoneRequest, responses((status = 202, body = Sent)))]
pub(super) async fn sms_start(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<PhoneRequest>,
) -> ApiResult {
    authn::mfa::start_code_enrollment(
        &st.svc,
        &caller.actor(&req),
        MfaMethod::Sms,
        Some(&body.phone),
        body.proof.proof()?.as_ref(),
    )
    .await?;
    Ok(sent())
}

/// Activate SMS codes with the code that was sent.
#[utoipa::path(post, path = "/api/v1/me/mfa/sms/confirm", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)))]
pub(super) async fn sms_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CodeRequest>,
) -> ApiResult {
    let codes = authn::mfa::confirm_code_enrollment(
        &st.svc,
        caller.user()?,
        MfaMethod::Sms,
        &body.code,
        &source(&req),
    )?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Proof that the caller is the user: the current password and, when any
/// second factor is enrolled, a current code from one of them.
#[derive(Deserialize, ToSchema)]
pub struct ProofRequest {
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// The factor `code` is from: `totp`, `email`, `sms` or `recovery_code`
    /// (default: the first enrolled).
    pub method: Option<String>,
    pub code: Option<String>,
}

impl ProofRequest {
    fn proof(&self) -> Result<authn::Proof<'_>, crate::error::Error> {
        Ok(authn::Proof {
            password: &self.password,
            method: MfaMethod::parse_opt(self.method.as_deref())?,
            code: self.code.as_deref(),
        })
    }
}

#[derive(Deserialize, ToSchema)]
pub struct MethodRequest {
    /// `email` or `sms`.
    pub method: String,
}

/// Send an e-mail or SMS code to prove a current factor (for removing
/// factors); at most one per 30 s and a daily number per method.
#[utoipa::path(post, path = "/api/v1/me/mfa/code", request_body = MethodRequest,
    responses((status = 202, body = Sent), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody, description = "sent too recently or the daily limit is reached")))]
pub(super) async fn proof_code_send(
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<MethodRequest>,
) -> ApiResult {
    let user = caller.user()?;
    let method = MfaMethod::from_wire(&body.method).ok_or_else(authn::mfa::not_one_of_yours)?;
    authn::mfa::send_reauth_code(&st.svc, user, method).await?;
    Ok(sent())
}

/// Remove one of the caller's methods (`totp`, `email`, `sms`), with the
/// password and a current code; the last one cannot go while the policy
/// requires MFA.
#[utoipa::path(delete, path = "/api/v1/me/mfa/methods/{method}", params(("method" = String, Path)),
    request_body = ProofRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "wrong code"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn method_remove(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    method: web::Path<String>,
    body: web::Json<ProofRequest>,
) -> ApiResult {
    let method = MfaMethod::from_wire(&method).ok_or_else(authn::mfa::not_removable)?;
    authn::mfa::remove_method(&st.svc, &caller.actor(&req), method, &body.proof()?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's second factors.
#[utoipa::path(get, path = "/api/v1/me/mfa", responses((status = 200, body = authn::mfa::MfaSummary)))]
pub(super) async fn my_mfa(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    Ok(HttpResponse::Ok().json(authn::queries::mfa_summary(&st.svc, &caller.user()?.id)?))
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret, for typing into the app.
    pub secret: String,
    pub otpauth_uri: String,
}

/// Start enrolling an authenticator app; active after `/confirm`. Beside an
/// active factor, the body carries the proof (password and a current code).
#[utoipa::path(post, path = "/api/v1/me/mfa/totp", request_body = AddProof, responses((status = 200, body = TotpEnrollment), (status = 400, body = ErrorBody)))]
pub(super) async fn totp_start(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: Option<web::Json<AddProof>>,
) -> ApiResult {
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    let (secret, otpauth_uri) =
        authn::mfa::start_totp(&st.svc, &caller.actor(&req), body.proof()?.as_ref()).await?;
    Ok(HttpResponse::Ok().json(TotpEnrollment {
        secret,
        otpauth_uri,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; each works once.
    pub recovery_codes: Vec<String>,
}

/// Activate the authenticator app with a current code; returns recovery codes once.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody)))]
pub(super) async fn totp_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CodeRequest>,
) -> ApiResult {
    let codes = authn::mfa::confirm_totp(&st.svc, caller.user()?, &body.code, &source(&req))?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// New recovery codes; the old set stops working. Needs the password and a current code.
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-codes", request_body = ProofRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "wrong password or code")))]
pub(super) async fn recovery_regenerate(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<ProofRequest>,
) -> ApiResult {
    let codes =
        authn::mfa::regenerate_recovery(&st.svc, &caller.actor(&req), &body.proof()?).await?;
    Ok(HttpResponse::Ok().json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Remove all of the caller's second factors (needs the current password and a current code).
#[utoipa::path(delete, path = "/api/v1/me/mfa", request_body = ProofRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "wrong code")))]
pub(super) async fn mfa_remove(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<ProofRequest>,
) -> ApiResult {
    authn::mfa::remove_all_own(&st.svc, &caller.actor(&req), &body.proof()?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reset a user's second factors (admin); they enroll again.
#[utoipa::path(post, path = "/api/v1/users/{id}/mfa/reset", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub(super) async fn mfa_reset(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    authn::mfa::reset(&st.svc, &caller.actor(&req), &UserId::parse(&id)?)?;
    Ok(HttpResponse::NoContent().finish())
}
