//! `/api/v1/service-accounts*`: service accounts (OAuth2 clients) and their secrets.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, ts};
use crate::access::credentials::{self as creds, IpMode};
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct ServiceAccountDto {
    pub id: String,
    pub client_id: String,
    /// Absent: a platform-level account.
    pub workspace: Option<String>,
    pub name: String,
    pub description: String,
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
    pub ip_mode: IpMode,
    /// Disabled: no token is issued for it and those it held are refused.
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the answer to create and secret rotation: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

fn sa_dto(s: creds::ServiceAccount, secret: Option<String>) -> ServiceAccountDto {
    ServiceAccountDto {
        client_id: s.id.clone(),
        id: s.id,
        workspace: s.workspace.map(String::from),
        name: s.name,
        description: s.description,
        scopes: s.scopes,
        ip_allowlist: s.ip_allowlist,
        ip_mode: s.ip_mode,
        disabled: s.disabled,
        created_at: ts(s.created_at),
        updated_at: ts(s.updated_at),
        client_secret: secret,
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateServiceAccountRequest {
    /// Defaults to the caller's only workspace; platform admins may omit it
    /// for a platform-level account.
    pub workspace: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<String>,
    /// IPv4/IPv6 CIDRs; empty: any address.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[serde(default)]
    pub ip_mode: IpMode,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateServiceAccountRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub ip_allowlist: Option<Vec<String>>,
    pub ip_mode: Option<IpMode>,
}

#[utoipa::path(get, path = "/api/v1/service-accounts", responses((status = 200, body = [ServiceAccountDto])))]
pub(super) async fn list_sas(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<ServiceAccountDto> = creds::service_accounts(&st.svc, &caller.principal)?
        .into_iter()
        .map(|s| sa_dto(s, None))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Creates a service account; the answer carries `client_secret`, shown once.
#[utoipa::path(post, path = "/api/v1/service-accounts", request_body = CreateServiceAccountRequest, responses((status = 201, body = ServiceAccountDto)))]
pub(super) async fn create_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateServiceAccountRequest>,
) -> ApiResult {
    let ws =
        creds::workspace_for_new_account(&st.svc, &caller.actor(&req), body.workspace.as_deref())?;
    let (sa, secret) = creds::create_service_account(
        &st.svc,
        &caller.actor(&req),
        creds::NewServiceAccount {
            workspace: ws.as_ref(),
            name: &body.name,
            description: body.description.as_deref(),
            scopes: &body.scopes,
            ip_allowlist: &body.ip_allowlist,
            ip_mode: body.ip_mode,
        },
    )?;
    Ok(HttpResponse::Created().json(sa_dto(sa, Some(secret))))
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{id}", responses((status = 200, body = ServiceAccountDto)))]
pub(super) async fn get_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let sa = creds::get_service_account(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(sa_dto(sa, None)))
}

#[utoipa::path(patch, path = "/api/v1/service-accounts/{id}", request_body = UpdateServiceAccountRequest, responses((status = 200, body = ServiceAccountDto)))]
pub(super) async fn update_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<UpdateServiceAccountRequest>,
) -> ApiResult {
    let sa = creds::update_service_account(
        &st.svc,
        &caller.actor(&req),
        &id,
        creds::ServiceAccountUpdate {
            name: body.name.as_deref(),
            description: body.description.as_deref(),
            scopes: body.scopes.as_deref(),
            ip_allowlist: body.ip_allowlist.as_deref(),
            ip_mode: body.ip_mode,
        },
    )?;
    Ok(HttpResponse::Ok().json(sa_dto(sa, None)))
}

/// Deletes the account; its tokens are refused on the very next check.
#[utoipa::path(delete, path = "/api/v1/service-accounts/{id}", responses((status = 204)))]
pub(super) async fn delete_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    creds::delete_service_account(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new client secret (shown once); the old one stops working.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/secret", responses((status = 200, body = ServiceAccountDto)))]
pub(super) async fn rotate_sa_secret(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let secret = creds::rotate_service_account_secret(&st.svc, &caller.actor(&req), &id)?;
    let sa = creds::get_service_account(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(sa_dto(sa, Some(secret))))
}

/// Disables the account: its tokens are refused from the next call on, and
/// no new one is issued until it is enabled.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/disable", responses((status = 200, body = ServiceAccountDto)))]
pub(super) async fn disable_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let sa = creds::disable_service_account(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(sa_dto(sa, None)))
}

/// Enables a disabled account: its secret gets new tokens again (those it
/// held when disabled stay ended).
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/enable", responses((status = 200, body = ServiceAccountDto)))]
pub(super) async fn enable_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let sa = creds::enable_service_account(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(sa_dto(sa, None)))
}
