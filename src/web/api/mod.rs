//! `/api/v1`: the JSON management API, one file per resource, and its OpenAPI
//! document generated from those handlers and types. This file holds the route
//! table and the JSON helpers the resources share. Each handler: authorize,
//! parse, one domain call, render.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::authn::{self, TokenPair};
use crate::error::Error;
use crate::identity::Role;
use crate::web::error::ApiError;

mod audit;
mod auth;
mod keys;
mod mfa;
mod settings;
mod users;

/// Shared with the console's key page.
pub use keys::start_rotation;

type ApiResult = Result<HttpResponse, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route("/openapi.json", web::get().to(openapi))
            .route("/auth/login", web::post().to(auth::login))
            .route("/auth/refresh", web::post().to(auth::refresh))
            .route("/auth/mfa", web::post().to(auth::mfa_complete))
            .route("/auth/mfa/send", web::post().to(auth::mfa_send))
            .route("/me/mfa/email", web::post().to(mfa::email_start))
            .route("/me/mfa/email/confirm", web::post().to(mfa::email_confirm))
            .route("/me/mfa/sms", web::post().to(mfa::sms_start))
            .route("/me/mfa/sms/confirm", web::post().to(mfa::sms_confirm))
            .route(
                "/me/mfa/methods/{method}",
                web::delete().to(mfa::method_remove),
            )
            .route("/me/mfa/code", web::post().to(mfa::proof_code_send))
            .route("/me/mfa", web::get().to(mfa::my_mfa))
            .route("/me/mfa", web::delete().to(mfa::mfa_remove))
            .route("/me/mfa/totp", web::post().to(mfa::totp_start))
            .route("/me/mfa/totp/confirm", web::post().to(mfa::totp_confirm))
            .route(
                "/me/mfa/recovery-codes",
                web::post().to(mfa::recovery_regenerate),
            )
            .route("/users/{id}/mfa/reset", web::post().to(mfa::mfa_reset))
            .route(
                "/users/{id}/sessions/end",
                web::post().to(users::end_sessions),
            )
            .route("/settings/security", web::get().to(settings::get_security))
            .route("/settings/security", web::put().to(settings::put_security))
            .route("/me", web::get().to(users::me))
            .route("/users", web::get().to(users::list_users))
            .route("/users", web::post().to(users::create_user))
            .route("/users/{id}", web::get().to(users::get_user))
            .route("/users/{id}", web::patch().to(users::update_user))
            .route("/users/{id}", web::delete().to(users::delete_user))
            .route("/users/{id}/disable", web::post().to(users::disable_user))
            .route("/users/{id}/enable", web::post().to(users::enable_user))
            .route(
                "/users/{id}/password",
                web::post().to(users::reset_password),
            )
            .route("/users/{id}/unlock", web::post().to(users::unlock_user))
            .route("/audit", web::get().to(audit::audit_log))
            .route("/keys", web::get().to(keys::key_status))
            .route("/keys/rotate", web::post().to(keys::rotate_keys))
            .configure(super::api_access::routes)
            .configure(super::sso::api_routes),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse API",
        description = "Management and sign-in API of Gatehouse."
    ),
    paths(
        auth::login,
        auth::refresh,
        auth::mfa_complete,
        auth::mfa_send,
        mfa::email_start,
        mfa::email_confirm,
        mfa::sms_start,
        mfa::sms_confirm,
        mfa::method_remove,
        mfa::proof_code_send,
        mfa::my_mfa,
        mfa::totp_start,
        mfa::totp_confirm,
        mfa::recovery_regenerate,
        mfa::mfa_remove,
        mfa::mfa_reset,
        users::end_sessions,
        settings::get_security,
        settings::put_security,
        users::me,
        users::list_users,
        users::create_user,
        users::get_user,
        users::update_user,
        users::delete_user,
        users::disable_user,
        users::enable_user,
        users::reset_password,
        audit::audit_log,
        keys::key_status,
        keys::rotate_keys
    ),
    components(schemas(
        auth::MfaRequired,
        auth::SendCodeRequest,
        mfa::PhoneRequest,
        mfa::ProofRequest,
        mfa::MethodRequest,
        Sent,
        auth::MfaRequest,
        mfa::TotpEnrollment,
        mfa::CodeRequest,
        mfa::RecoveryCodes,
        authn::mfa::MfaSummary,
        crate::policy::SecurityPolicy,
        crate::policy::MfaPolicy,
        crate::policy::SessionPolicy,
        crate::policy::MfaMode,
        ErrorBody,
        ErrorDetail,
        auth::LoginRequest,
        auth::RefreshRequest,
        TokenPair,
        users::UserDto,
        users::UserList,
        users::CreateUserRequest,
        users::UpdateUserRequest,
        users::PasswordRequest,
        audit::AuditPage,
        crate::audit::Event,
        keys::KeyDto,
        keys::RotateResponse,
        Role
    ))
)]
struct ApiDoc;

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body({
        let mut doc = ApiDoc::openapi();
        doc.merge(super::api_access::openapi_doc());
        doc.merge(super::sso::openapi_doc());
        doc.to_json().unwrap_or_default()
    })
}

/// Every error: `{"error": {"code": "snake_case", "message": "what to do"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct Sent {
    pub sent: bool,
    /// Seconds the code stays valid.
    pub expires_in: i64,
}

pub(super) fn sent() -> HttpResponse {
    HttpResponse::Accepted().json(Sent {
        sent: true,
        expires_in: authn::mfa::CODE_TTL_SECS,
    })
}

pub(super) fn paging(
    page: Option<usize>,
    per_page: Option<usize>,
) -> Result<(usize, usize), Error> {
    let page = page.unwrap_or(1);
    let per = per_page.unwrap_or(50);
    if page == 0 {
        return Err(Error::invalid("page", "starts at 1"));
    }
    if !(1..=200).contains(&per) {
        return Err(Error::invalid("per_page", "must be between 1 and 200"));
    }
    Ok((page, per))
}
