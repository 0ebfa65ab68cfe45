//! `/api/v1/sso/*`: the SSO connections (list, create, read, replace,
//! delete), the provider presets, the SSO status and enforcement settings, and
//! `/api/v1/users/{id}/sso-links` (linking a user to an IdP identity). Its
//! rows are in `route_table!` (api/mod.rs), its types in `ApiDoc`'s schemas.
//! The browser sign-in endpoints are `protocol::sso`; the SSO rules are the
//! domain's `sso` module.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::identity;
use crate::sso::{self, Connection, Protocol};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::extract::ApiCaller;
use crate::web::html::{CertificateDto, certificate_dtos, mfa_scope};

type ApiResult = Result<HttpResponse, ApiError>;

/// An identity at a connection: the IdP's subject for the user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoLinkInput {
    pub connection: String,
    pub subject: String,
}

/// Link an existing user to an IdP identity (needs a recent sign-in;
/// audited). Sign-ins never link existing accounts by e-mail; this does.
#[utoipa::path(post, path = "/api/v1/users/{id}/sso-links", params(("id" = String, Path)), request_body = SsoLinkInput,
    responses((status = 204), (status = 400, body = crate::web::api::ErrorBody), (status = 409, body = crate::web::api::ErrorBody)))]
pub(super) async fn link_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<SsoLinkInput>,
) -> ApiResult {
    sso::link_user(
        &st.svc,
        &caller.actor(&req),
        &identity::UserId::parse(&id)?,
        &body.connection,
        &body.subject,
    )?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a user's link to an IdP identity (audited).
#[utoipa::path(delete, path = "/api/v1/users/{id}/sso-links", params(("id" = String, Path)), request_body = SsoLinkInput,
    responses((status = 204), (status = 404, body = crate::web::api::ErrorBody)))]
pub(super) async fn unlink_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<SsoLinkInput>,
) -> ApiResult {
    sso::unlink_user(
        &st.svc,
        &caller.actor(&req),
        &identity::UserId::parse(&id)?,
        &body.connection,
        &body.subject,
    )?;
    Ok(HttpResponse::NoContent().finish())
}
/// A connection as the API shows it: never the client secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionDto {
    pub id: String,
    pub protocol: Protocol,
    pub provider: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub trust_unverified_email: bool,
    pub jit: bool,
    /// E-mail domains whose users may sign in (empty: any; Google: also `hd`).
    pub allowed_domains: Vec<String>,
    pub role_attribute: String,
    pub role_rules: Vec<sso::RoleRule>,
    #[schema(value_type = String)]
    pub default_role: identity::Role,
    pub last_test: Option<sso::TestResult>,
    /// SAML: the IdP's single sign-on URL (WS-Federation: its sign-on endpoint).
    pub sso_url: String,
    /// WS-Federation: the sign-on endpoint (the same as `sso_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_on_url: Option<String>,
    /// SAML: the IdP's signing certificates, with their validity.
    pub certificates: Vec<CertificateDto>,
    pub allow_idp_initiated: bool,
    pub allow_sha1: bool,
    /// SAML: AuthnRequests are signed (the certificate is in the SP metadata).
    pub sign_requests: bool,
    pub clock_skew_secs: i64,
    /// WS-Federation: the realm (`wtrealm`).
    pub realm: String,
    /// The values to paste into the identity provider.
    pub sp: sso::SpValues,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn connection_dto(st: &AppState, c: Connection) -> ConnectionDto {
    ConnectionDto {
        certificates: certificate_dtos(st.svc.now(), &c.certificates),
        sign_on_url: (c.protocol == Protocol::Wsfed).then(|| c.sso_url.clone()),
        sso_url: c.sso_url,
        allow_idp_initiated: c.allow_idp_initiated,
        allow_sha1: c.allow_sha1,
        sign_requests: c.sign_requests,
        clock_skew_secs: c.clock_skew_secs,
        realm: c.realm,
        sp: sso::sp_values(&st.svc, &c.id),
        id: c.id,
        protocol: c.protocol,
        provider: c.provider,
        name: c.name,
        issuer: c.issuer,
        client_id: c.client_id,
        client_secret_set: !c.client_secret.is_empty(),
        scopes: c.scopes,
        trust_unverified_email: c.trust_unverified_email,
        jit: c.jit,
        allowed_domains: c.allowed_domains,
        role_attribute: c.role_attribute,
        role_rules: c.role_rules,
        default_role: c.default_role,
        last_test: c.last_test,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// List SSO connections.
#[utoipa::path(get, path = "/api/v1/sso/connections", responses((status = 200, body = [ConnectionDto])))]
pub(super) async fn list_connections(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    let rows: Vec<ConnectionDto> = sso::list_for(&st.svc, &caller.actor(&req))?
        .into_iter()
        .map(|c| connection_dto(&st, c))
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// Create an SSO connection (needs a recent sign-in; audited).
#[utoipa::path(post, path = "/api/v1/sso/connections", request_body = sso::ConnectionInput,
    responses((status = 201, body = ConnectionDto), (status = 400, body = crate::web::api::ErrorBody)))]
pub(super) async fn create_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<sso::ConnectionInput>,
) -> ApiResult {
    let c = sso::create(&st.svc, &caller.actor(&req), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(connection_dto(&st, c)))
}

/// One connection, with the values to paste into the IdP and the last test.
#[utoipa::path(get, path = "/api/v1/sso/connections/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ConnectionDto), (status = 404, body = crate::web::api::ErrorBody)))]
pub(super) async fn get_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let c = sso::connection_for(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(connection_dto(&st, c)))
}

/// Replace a connection's fields (an omitted client secret is kept).
#[utoipa::path(put, path = "/api/v1/sso/connections/{id}", params(("id" = String, Path)), request_body = sso::ConnectionInput,
    responses((status = 200, body = ConnectionDto), (status = 400, body = crate::web::api::ErrorBody)))]
pub(super) async fn update_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<sso::ConnectionInput>,
) -> ApiResult {
    let c = sso::update(&st.svc, &caller.actor(&req), &id, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(connection_dto(&st, c)))
}

/// Delete a connection (refused for the last one while SSO is enabled).
#[utoipa::path(delete, path = "/api/v1/sso/connections/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = crate::web::api::ErrorBody)))]
pub(super) async fn delete_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    sso::delete(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Provider presets: labels and help in each IdP's words.
#[utoipa::path(get, path = "/api/v1/sso/presets", responses((status = 200, body = [sso::Preset])))]
pub(super) async fn presets(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(sso::presets_for(&st.svc, &caller.actor(&req))?))
}

/// The SSO status; the owner is always among the excluded users.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsDto {
    pub enabled: bool,
    pub enforcement: sso::Enforcement,
    /// User ids.
    pub test_group: Vec<String>,
    /// User ids; the owner is always one of them.
    pub excluded_users: Vec<String>,
    /// Id → e-mail address of every user named above.
    pub emails: std::collections::BTreeMap<String, String>,
    /// Who Gatehouse's own MFA policy applies to, in words.
    pub mfa_scope: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub fn settings_dto(
    st: &AppState,
    s: sso::SsoSettings,
    warnings: Vec<String>,
) -> Result<SettingsDto, Error> {
    let named: Vec<_> = s
        .test_group
        .iter()
        .chain(s.excluded_users.iter())
        .cloned()
        .collect();
    let emails = identity::find_many(&st.svc, &named)?
        .into_iter()
        .map(|u| (u.id.as_str().to_string(), u.email.as_str().to_string()))
        .collect();
    Ok(SettingsDto {
        mfa_scope: mfa_scope(&s).into(),
        enabled: s.enabled,
        enforcement: s.enforcement,
        test_group: s
            .test_group
            .iter()
            .map(|u| u.as_str().to_string())
            .collect(),
        excluded_users: s
            .excluded_users
            .iter()
            .map(|u| u.as_str().to_string())
            .collect(),
        emails,
        warnings,
    })
}

#[utoipa::path(get, path = "/api/v1/sso/settings", responses((status = 200, body = SettingsDto)))]
pub(super) async fn get_settings(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    let s = sso::settings_for(&st.svc, &caller.actor(&req))?;
    Ok(HttpResponse::Ok().json(settings_dto(&st, s, Vec::new())?))
}

/// Change the SSO status, enforcement, test group and excluded users (needs a
/// recent sign-in; audited). Users are named by id or e-mail address.
#[utoipa::path(put, path = "/api/v1/sso/settings", request_body = sso::SsoSettingsInput,
    responses((status = 200, body = SettingsDto), (status = 400, body = crate::web::api::ErrorBody)))]
pub(super) async fn put_settings(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<sso::SsoSettingsInput>,
) -> ApiResult {
    let (s, warnings) = sso::update_settings(&st.svc, &caller.actor(&req), body.into_inner())?;
    Ok(HttpResponse::Ok().json(settings_dto(&st, s, warnings)?))
}
