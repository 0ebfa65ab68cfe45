//! `/api/v1`: the JSON management API, one file per resource, and its OpenAPI
//! document generated from those handlers and types. This file holds the route
//! table and the JSON helpers the resources share. Each handler: authorize,
//! parse, one domain call, render.
//!
//! A new resource: a file here whose `pub(super)` handlers each carry a
//! `#[utoipa::path]`, its rows in `route_table!` (which registers them and puts
//! them in the document), and its request and answer types in `ApiDoc`'s
//! schemas. `openapi::tests` fail if a row and its attribute disagree.

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
mod openapi;
mod roles;
mod service_accounts;
mod settings;
mod sinks;
mod sso;
pub(crate) mod tls;
mod users;
mod widget_keys;
mod workspaces;

type ApiResult = Result<HttpResponse, ApiError>;

/// One table drives both the routes and the OpenAPI document: each row
/// registers `method path => handler` under `/api/v1`, in order (actix takes
/// the first match), and lists the handler's `#[utoipa::path]` in the
/// document. `openapi::tests` checks every row against the document, so a
/// row whose attribute names another path or method fails the build's tests.
macro_rules! route_table {
    ($($method:ident $path:literal => $module:ident :: $handler:ident,)*) => {
        fn table(scope: actix_web::Scope) -> actix_web::Scope {
            scope$(.route($path, web::$method().to($module::$handler)))*
        }

        /// The document's paths: exactly the table's handlers. Listed by bare
        /// name so that utoipa adds no module-path tags.
        mod table_doc {
            // One glob per row, so repeats of a module go unused.
            #[allow(unused_imports)]
            use super::{$($module::*),*};
            #[derive(utoipa::OpenApi)]
            #[openapi(paths($($handler),*))]
            pub(super) struct TableDoc;
        }
        use table_doc::TableDoc;

        /// Every row as `(method, path under /api/v1)`; also `web::allow`'s.
        pub(crate) const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];
    };
}

route_table! {
    get "/openapi.json" => openapi::document,
    post "/auth/login" => auth::login,
    post "/auth/refresh" => auth::refresh,
    post "/auth/mfa" => auth::mfa_complete,
    post "/auth/mfa/send" => auth::mfa_send,
    post "/me/mfa/email" => mfa::email_start,
    post "/me/mfa/email/confirm" => mfa::email_confirm,
    post "/me/mfa/sms" => mfa::sms_start,
    post "/me/mfa/sms/confirm" => mfa::sms_confirm,
    delete "/me/mfa/methods/{method}" => mfa::method_remove,
    post "/me/mfa/code" => mfa::proof_code_send,
    get "/me/mfa" => mfa::my_mfa,
    delete "/me/mfa" => mfa::mfa_remove,
    post "/me/mfa/totp" => mfa::totp_start,
    post "/me/mfa/totp/confirm" => mfa::totp_confirm,
    post "/me/mfa/recovery-codes" => mfa::recovery_regenerate,
    post "/users/{id}/mfa/reset" => mfa::mfa_reset,
    post "/users/{id}/sessions/end" => users::end_sessions,
    get "/settings/security" => settings::get_security,
    put "/settings/security" => settings::put_security,
    get "/me" => users::me,
    post "/me/password" => users::change_own_password,
    post "/me/email" => users::change_own_email,
    get "/users" => users::list_users,
    post "/users" => users::create_user,
    get "/users/{id}" => users::get_user,
    patch "/users/{id}" => users::update_user,
    delete "/users/{id}" => users::delete_user,
    post "/users/{id}/disable" => users::disable_user,
    post "/users/{id}/enable" => users::enable_user,
    post "/users/{id}/password" => users::reset_password,
    post "/users/{id}/unlock" => users::unlock_user,
    get "/audit" => audit::audit_log,
    get "/audit/sinks" => sinks::list_sinks,
    post "/audit/sinks" => sinks::create_sink,
    get "/audit/sinks/{id}" => sinks::get_sink,
    put "/audit/sinks/{id}" => sinks::update_sink,
    delete "/audit/sinks/{id}" => sinks::delete_sink,
    post "/audit/sinks/{id}/test" => sinks::test_sink,
    get "/keys" => keys::key_status,
    get "/tls" => tls::tls_status,
    post "/keys/rotate" => keys::rotate_keys,
    get "/permissions" => authorize::permissions,
    post "/authorize" => authorize::authorize,
    post "/keys/signing/rotate" => keys::rotate_signing,
    get "/workspaces" => workspaces::list_workspaces,
    post "/workspaces" => workspaces::create_workspace,
    get "/workspaces/{id}" => workspaces::get_workspace,
    patch "/workspaces/{id}" => workspaces::rename_workspace,
    delete "/workspaces/{id}" => workspaces::delete_workspace,
    put "/workspaces/{id}/session-limits" => workspaces::put_session_limits,
    get "/workspaces/{id}/members" => members::list_members,
    post "/workspaces/{id}/members" => members::add_member,
    post "/workspaces/{id}/users" => members::create_member,
    put "/workspaces/{id}/members/{user}" => members::put_member,
    delete "/workspaces/{id}/members/{user}" => members::remove_member,
    get "/roles" => roles::list_roles,
    post "/roles" => roles::create_role,
    get "/roles/{id}" => roles::get_role,
    patch "/roles/{id}" => roles::update_role,
    delete "/roles/{id}" => roles::delete_role,
    get "/groups" => groups::list_groups,
    post "/groups" => groups::create_group,
    get "/groups/{id}" => groups::get_group,
    patch "/groups/{id}" => groups::update_group,
    delete "/groups/{id}" => groups::delete_group,
    get "/service-accounts" => service_accounts::list_sas,
    post "/service-accounts" => service_accounts::create_sa,
    get "/service-accounts/{id}" => service_accounts::get_sa,
    patch "/service-accounts/{id}" => service_accounts::update_sa,
    delete "/service-accounts/{id}" => service_accounts::delete_sa,
    post "/service-accounts/{id}/secret" => service_accounts::rotate_sa_secret,
    post "/service-accounts/{id}/disable" => service_accounts::disable_sa,
    post "/service-accounts/{id}/enable" => service_accounts::enable_sa,
    get "/api-apps" => api_apps::list_apps,
    post "/api-apps" => api_apps::create_app,
    get "/api-apps/{id}" => api_apps::get_app,
    patch "/api-apps/{id}" => api_apps::update_app,
    delete "/api-apps/{id}" => api_apps::delete_app,
    get "/api-apps/{id}/keys" => api_apps::list_keys,
    post "/api-apps/{id}/keys" => api_apps::create_key,
    delete "/api-apps/{id}/keys/{key}" => api_apps::delete_key,
    get "/widget-keys" => widget_keys::list_widgets,
    post "/widget-keys" => widget_keys::create_widget,
    delete "/widget-keys/{id}" => widget_keys::delete_widget,
    get "/sso/connections" => sso::list_connections,
    post "/sso/connections" => sso::create_connection,
    get "/sso/connections/{id}" => sso::get_connection,
    put "/sso/connections/{id}" => sso::update_connection,
    delete "/sso/connections/{id}" => sso::delete_connection,
    get "/sso/presets" => sso::presets,
    get "/sso/settings" => sso::get_settings,
    put "/sso/settings" => sso::put_settings,
    post "/users/{id}/sso-links" => sso::link_user,
    delete "/users/{id}/sso-links" => sso::unlink_user,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(table(web::scope("/api/v1")));
}

/// The document's title and the schemas every handler's attribute refers to.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse API",
        description = "Management and sign-in API of Gatehouse."
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
        crate::audit::Category,
        sinks::SinkDto,
        sinks::HecDto,
        sinks::DatadogDto,
        sinks::WebhookDto,
        crate::sinks::SinkInput,
        crate::sinks::Kind,
        crate::sinks::Transport,
        crate::sinks::SyslogConfig,
        crate::sinks::HecInput,
        crate::sinks::DatadogInput,
        crate::sinks::WebhookInput,
        crate::sinks::TestResult,
        keys::KeyDto,
        keys::RotateResponse,
        Role,
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
        crate::access::credentials::IpMode,
        sso::ConnectionDto,
        crate::web::html::CertificateDto,
        crate::sso::ConnectionInput,
        crate::sso::RoleRule,
        crate::sso::TestResult,
        crate::sso::SpValues,
        crate::sso::Preset,
        crate::sso::Protocol,
        crate::sso::Enforcement,
        crate::sso::SsoSettingsInput,
        sso::SettingsDto,
        sso::SsoLinkInput
    ))
)]
struct ApiDoc;

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

fn sent() -> HttpResponse {
    HttpResponse::Accepted().json(Sent {
        sent: true,
        expires_in: authn::mfa::CODE_TTL_SECS,
    })
}

fn paging(page: Option<usize>, per_page: Option<usize>) -> Result<(usize, usize), Error> {
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

fn ts(t: Timestamp) -> String {
    rfc3339(t)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct WorkspaceQuery {
    /// Only this workspace.
    pub workspace: Option<String>,
}

impl WorkspaceQuery {
    /// The list filter: `Some(None)` for every workspace, `Some(Some(id))`
    /// for one, `None` when the value names no workspace (malformed or
    /// empty), so nothing matches.
    pub fn filter(&self) -> Option<Option<crate::principal::WorkspaceId>> {
        match self.workspace.as_deref() {
            None => Some(None),
            Some(w) => crate::principal::WorkspaceId::parse(w).ok().map(Some),
        }
    }
}
