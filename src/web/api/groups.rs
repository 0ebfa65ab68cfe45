//! `/api/v1/groups*`: groups of users inside a workspace.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, WorkspaceQuery, ts};
use crate::access::workspaces as wss;
use crate::error::Error;
use crate::identity::UserId;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct GroupDto {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub roles: Vec<String>,
    pub members: Vec<String>,
    pub created_at: String,
}

impl From<wss::Group> for GroupDto {
    fn from(g: wss::Group) -> Self {
        GroupDto {
            id: g.id,
            workspace: g.workspace.into(),
            name: g.name,
            roles: g.roles,
            members: g.members.into_iter().map(String::from).collect(),
            created_at: ts(g.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct GroupRequest {
    /// On create: defaults to the caller's only workspace. Ignored on update.
    pub workspace: Option<String>,
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    /// User ids; each must be a member of the workspace.
    pub members: Option<Vec<String>>,
}

fn user_ids(list: &Option<Vec<String>>) -> Result<Option<Vec<UserId>>, Error> {
    list.as_ref()
        .map(|l| {
            l.iter()
                .map(|u| {
                    UserId::parse(u).map_err(|_| {
                        Error::invalid("members", format!("\"{u}\" is not a user id (usr_…)"))
                    })
                })
                .collect()
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/v1/groups", params(WorkspaceQuery), responses((status = 200, body = [GroupDto])))]
pub(super) async fn list_groups(
    st: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<WorkspaceQuery>,
) -> ApiResult {
    let list: Vec<GroupDto> = match q.filter() {
        Some(ws) => wss::groups(&st.svc, &caller.principal, ws.as_ref())?
            .into_iter()
            .map(Into::into)
            .collect(),
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/groups", request_body = GroupRequest, responses((status = 201, body = GroupDto)))]
pub(super) async fn create_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<GroupRequest>,
) -> ApiResult {
    let ws = wss::workspace_for_new(&st.svc, &caller.actor(&req), body.workspace.as_deref())?;
    let members = user_ids(&body.members)?;
    let g = wss::save_group(
        &st.svc,
        &caller.actor(&req),
        None,
        Some(&ws),
        body.name.as_deref(),
        body.roles.as_deref(),
        members.as_deref(),
    )?;
    Ok(HttpResponse::Created().json(GroupDto::from(g)))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}", responses((status = 200, body = GroupDto)))]
pub(super) async fn get_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let g = wss::get_group(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(GroupDto::from(g)))
}

#[utoipa::path(patch, path = "/api/v1/groups/{id}", request_body = GroupRequest, responses((status = 200, body = GroupDto)))]
pub(super) async fn update_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<GroupRequest>,
) -> ApiResult {
    let members = user_ids(&body.members)?;
    let g = wss::save_group(
        &st.svc,
        &caller.actor(&req),
        Some(&id),
        None,
        body.name.as_deref(),
        body.roles.as_deref(),
        members.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(GroupDto::from(g)))
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}", responses((status = 204)))]
pub(super) async fn delete_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    wss::delete_group(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}
