//! `/api/v1/workspaces*`: workspaces, their names and session limits.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, ts};
use crate::access::workspaces as wss;
use crate::principal::WorkspaceId;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct WorkspaceDto {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The workspace's own session limits (null: the installation's).
    pub session: wss::SessionLimits,
}

impl From<wss::Workspace> for WorkspaceDto {
    fn from(w: wss::Workspace) -> Self {
        WorkspaceDto {
            id: w.id.into(),
            name: w.name,
            created_at: ts(w.created_at),
            session: w.session,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NameRequest {
    pub name: String,
}

/// Workspaces the caller belongs to (platform admins: all).
#[utoipa::path(get, path = "/api/v1/workspaces", responses((status = 200, body = [WorkspaceDto])))]
pub(super) async fn list_workspaces(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<WorkspaceDto> = wss::list(&st.svc, &caller.principal)?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/workspaces", request_body = NameRequest, responses((status = 201, body = WorkspaceDto)))]
pub(super) async fn create_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<NameRequest>,
) -> ApiResult {
    let w = wss::create(&st.svc, &caller.actor(&req), &body.name)?;
    Ok(HttpResponse::Created().json(WorkspaceDto::from(w)))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}", responses((status = 200, body = WorkspaceDto)))]
pub(super) async fn get_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let w = wss::show(&st.svc, &caller.actor(&req), &WorkspaceId::parse(&id)?)?;
    Ok(HttpResponse::Ok().json(WorkspaceDto::from(w)))
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{id}", request_body = NameRequest, responses((status = 200, body = WorkspaceDto)))]
pub(super) async fn rename_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<NameRequest>,
) -> ApiResult {
    let w = wss::rename(
        &st.svc,
        &caller.actor(&req),
        &WorkspaceId::parse(&id)?,
        &body.name,
    )?;
    Ok(HttpResponse::Ok().json(WorkspaceDto::from(w)))
}

/// Sets the workspace's own session limits (`null` for the installation's);
/// they only shorten: a member gets the shortest of the installation's and
/// every workspace they belong to.
#[utoipa::path(put, path = "/api/v1/workspaces/{id}/session-limits", request_body = wss::SessionLimits, responses((status = 200, body = WorkspaceDto)))]
pub(super) async fn put_session_limits(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<wss::SessionLimits>,
) -> ApiResult {
    let w = wss::set_session_limits(
        &st.svc,
        &caller.actor(&req),
        &WorkspaceId::parse(&id)?,
        *body,
    )?;
    Ok(HttpResponse::Ok().json(WorkspaceDto::from(w)))
}

/// Deletes the workspace with its members, roles, groups and credentials.
#[utoipa::path(delete, path = "/api/v1/workspaces/{id}", responses((status = 204)))]
pub(super) async fn delete_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    wss::delete(&st.svc, &caller.actor(&req), &WorkspaceId::parse(&id)?)?;
    Ok(HttpResponse::NoContent().finish())
}
