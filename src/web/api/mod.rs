//! `/api/v1`: the JSON management API, one file per resource, and its OpenAPI
//! document generated from those handlers and types. This file holds the route
//! table and the JSON helpers the resources share. Each handler: authorize,
//! parse, one domain call, render.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::authn::{self, TokenPair};
use crate::clock::{Timestamp, rfc3339};
use crate::error::Error;
use crate::identity::Role;
use crate::web::error::ApiError;

mod api_apps;
mod audit;
mod auth;
mod authorize;
mod groups;
mod keys;
mod members;
mod mfa;
mod roles;
mod service_accounts;
mod settings;
mod users;
mod widget_keys;
mod workspaces;

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
            .configure(access_routes)
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
        doc.merge(access_doc());
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

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        authorize::permissions,
        workspaces::list_workspaces,
        workspaces::create_workspace,
        workspaces::get_workspace,
        workspaces::rename_workspace,
        workspaces::put_session_limits,
        workspaces::delete_workspace,
        members::list_members,
        members::add_member,
        members::create_member,
        members::put_member,
        members::remove_member,
        roles::list_roles,
        roles::create_role,
        roles::get_role,
        roles::update_role,
        roles::delete_role,
        groups::list_groups,
        groups::create_group,
        groups::get_group,
        groups::update_group,
        groups::delete_group,
        service_accounts::list_sas,
        service_accounts::create_sa,
        service_accounts::get_sa,
        service_accounts::update_sa,
        service_accounts::delete_sa,
        service_accounts::rotate_sa_secret,
        api_apps::list_apps,
        api_apps::create_app,
        api_apps::get_app,
        api_apps::update_app,
        api_apps::delete_app,
        api_apps::list_keys,
        api_apps::create_key,
        api_apps::delete_key,
        widget_keys::list_widgets,
        widget_keys::create_widget,
        widget_keys::delete_widget,
        authorize::authorize,
        keys::rotate_signing
    ),
    components(schemas(
        authorize::PermissionDto,
        workspaces::WorkspaceDto,
        crate::access::workspaces::SessionLimits,
        workspaces::NameRequest,
        members::MemberDto,
        members::AddMemberRequest,
        members::CreateMemberRequest,
        members::RolesRequest,
        roles::RoleDto,
        roles::CreateRoleRequest,
        roles::UpdateRoleRequest,
        groups::GroupDto,
        groups::GroupRequest,
        service_accounts::ServiceAccountDto,
        service_accounts::CreateServiceAccountRequest,
        service_accounts::UpdateServiceAccountRequest,
        api_apps::ApiAppDto,
        api_apps::ApiAppRequest,
        api_apps::ApiKeyDto,
        api_apps::CreateKeyRequest,
        widget_keys::WidgetKeyDto,
        widget_keys::CreateWidgetKeyRequest,
        authorize::AuthorizeRequest,
        authorize::AuthorizeResponse,
        keys::SigningRotateResponse,
        crate::access::credentials::IpMode
    ))
)]
struct AccessDoc;

/// The part of the OpenAPI document these handlers contribute.
fn access_doc() -> utoipa::openapi::OpenApi {
    <AccessDoc as utoipa::OpenApi>::openapi()
}

fn access_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/permissions", web::get().to(authorize::permissions))
        .route("/authorize", web::post().to(authorize::authorize))
        .route("/keys/signing/rotate", web::post().to(keys::rotate_signing))
        .route("/workspaces", web::get().to(workspaces::list_workspaces))
        .route("/workspaces", web::post().to(workspaces::create_workspace))
        .route("/workspaces/{id}", web::get().to(workspaces::get_workspace))
        .route(
            "/workspaces/{id}",
            web::patch().to(workspaces::rename_workspace),
        )
        .route(
            "/workspaces/{id}",
            web::delete().to(workspaces::delete_workspace),
        )
        .route(
            "/workspaces/{id}/session-limits",
            web::put().to(workspaces::put_session_limits),
        )
        .route(
            "/workspaces/{id}/members",
            web::get().to(members::list_members),
        )
        .route(
            "/workspaces/{id}/members",
            web::post().to(members::add_member),
        )
        .route(
            "/workspaces/{id}/users",
            web::post().to(members::create_member),
        )
        .route(
            "/workspaces/{id}/members/{user}",
            web::put().to(members::put_member),
        )
        .route(
            "/workspaces/{id}/members/{user}",
            web::delete().to(members::remove_member),
        )
        .route("/roles", web::get().to(roles::list_roles))
        .route("/roles", web::post().to(roles::create_role))
        .route("/roles/{id}", web::get().to(roles::get_role))
        .route("/roles/{id}", web::patch().to(roles::update_role))
        .route("/roles/{id}", web::delete().to(roles::delete_role))
        .route("/groups", web::get().to(groups::list_groups))
        .route("/groups", web::post().to(groups::create_group))
        .route("/groups/{id}", web::get().to(groups::get_group))
        .route("/groups/{id}", web::patch().to(groups::update_group))
        .route("/groups/{id}", web::delete().to(groups::delete_group))
        .route(
            "/service-accounts",
            web::get().to(service_accounts::list_sas),
        )
        .route(
            "/service-accounts",
            web::post().to(service_accounts::create_sa),
        )
        .route(
            "/service-accounts/{id}",
            web::get().to(service_accounts::get_sa),
        )
        .route(
            "/service-accounts/{id}",
            web::patch().to(service_accounts::update_sa),
        )
        .route(
            "/service-accounts/{id}",
            web::delete().to(service_accounts::delete_sa),
        )
        .route(
            "/service-accounts/{id}/secret",
            web::post().to(service_accounts::rotate_sa_secret),
        )
        .route("/api-apps", web::get().to(api_apps::list_apps))
        .route("/api-apps", web::post().to(api_apps::create_app))
        .route("/api-apps/{id}", web::get().to(api_apps::get_app))
        .route("/api-apps/{id}", web::patch().to(api_apps::update_app))
        .route("/api-apps/{id}", web::delete().to(api_apps::delete_app))
        .route("/api-apps/{id}/keys", web::get().to(api_apps::list_keys))
        .route("/api-apps/{id}/keys", web::post().to(api_apps::create_key))
        .route(
            "/api-apps/{id}/keys/{key}",
            web::delete().to(api_apps::delete_key),
        )
        .route("/widget-keys", web::get().to(widget_keys::list_widgets))
        .route("/widget-keys", web::post().to(widget_keys::create_widget))
        .route(
            "/widget-keys/{id}",
            web::delete().to(widget_keys::delete_widget),
        );
}

pub(super) fn ts(t: Timestamp) -> String {
    rfc3339(t)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct WorkspaceQuery {
    /// Only this workspace.
    pub workspace: Option<String>,
}
