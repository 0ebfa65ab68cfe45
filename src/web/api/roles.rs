//! `/api/v1/roles*`: built-in and custom roles.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, WorkspaceQuery};
use crate::access::BuiltinRole;
use crate::access::workspaces as wss;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct RoleDto {
    pub id: String,
    /// Absent for built-in roles.
    pub workspace: Option<String>,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub builtin: bool,
}

impl From<wss::CustomRole> for RoleDto {
    fn from(r: wss::CustomRole) -> Self {
        RoleDto {
            id: r.id,
            workspace: Some(r.workspace.into()),
            name: r.name,
            description: r.description,
            permissions: r.permissions,
            builtin: false,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateRoleRequest {
    /// Defaults to the caller's only workspace.
    pub workspace: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateRoleRequest {
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
}

/// Built-in roles, then the custom roles of workspaces the caller administers.
#[utoipa::path(get, path = "/api/v1/roles", params(WorkspaceQuery), responses((status = 200, body = [RoleDto])))]
pub(super) async fn list_roles(
    st: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<WorkspaceQuery>,
) -> ApiResult {
    let mut list: Vec<RoleDto> = BuiltinRole::ALL
        .into_iter()
        .map(|r| RoleDto {
            id: r.id().into(),
            workspace: None,
            name: r.name().into(),
            description: match r {
                BuiltinRole::PlatformAdmin => {
                    "Everything, in every workspace (the owner and admin users)".into()
                }
                BuiltinRole::WorkspaceAdmin => {
                    "Settings, users and credentials of a workspace".into()
                }
                BuiltinRole::AgentDeveloper => {
                    "Create, modify and deploy agents, tools and models".into()
                }
                BuiltinRole::Analyst => "Analytics, reports and conversations".into(),
                BuiltinRole::User => "Use deployed agents".into(),
            },
            permissions: r.permissions().names(),
            builtin: true,
        })
        .collect();
    if let Some(ws) = q.filter() {
        list.extend(
            wss::roles(&st.svc, &caller.principal, ws.as_ref())?
                .into_iter()
                .map(RoleDto::from),
        );
    }
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/roles", request_body = CreateRoleRequest, responses((status = 201, body = RoleDto)))]
pub(super) async fn create_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateRoleRequest>,
) -> ApiResult {
    let ws = wss::workspace_for_new(&st.svc, &caller.actor(&req), body.workspace.as_deref())?;
    let r = wss::create_role(
        &st.svc,
        &caller.actor(&req),
        &ws,
        &body.name,
        body.description.as_deref().unwrap_or(""),
        &body.permissions,
    )?;
    Ok(HttpResponse::Created().json(RoleDto::from(r)))
}

#[utoipa::path(get, path = "/api/v1/roles/{id}", responses((status = 200, body = RoleDto)))]
pub(super) async fn get_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let r = wss::get_role(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(RoleDto::from(r)))
}

/// Renames or re-scopes a custom role; its holders get the change at once.
#[utoipa::path(patch, path = "/api/v1/roles/{id}", request_body = UpdateRoleRequest, responses((status = 200, body = RoleDto)))]
pub(super) async fn update_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<UpdateRoleRequest>,
) -> ApiResult {
    let r = wss::update_role(
        &st.svc,
        &caller.actor(&req),
        &id,
        body.name.as_deref(),
        body.permissions.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(RoleDto::from(r)))
}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", responses((status = 204)))]
pub(super) async fn delete_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    wss::delete_role(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}
