//! `/api/v1/workspaces/{id}/members*` and `/users`: a workspace's members and
//! their roles, and creating a user straight into a workspace.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, ts};
use crate::access::workspaces as wss;
use crate::error::Error;
use crate::identity::{self, Email, UserId};
use crate::principal::WorkspaceId;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct MemberDto {
    pub user_id: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub added_at: String,
}

fn member_dto(st: &AppState, m: wss::Membership) -> MemberDto {
    MemberDto {
        email: identity::get_cached(&st.svc, &m.user)
            .ok()
            .map(|u| u.email.as_str().to_string()),
        user_id: m.user.as_str().to_string(),
        roles: m.roles,
        added_at: ts(m.added_at),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct AddMemberRequest {
    /// The user's id, or give `email` instead.
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// Role ids: built-in (`workspace_admin`, `agent_developer`, `analyst`, `user`) or custom (`rol_…`).
    pub roles: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}/members", responses((status = 200, body = [MemberDto])))]
pub(super) async fn list_members(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let ws = WorkspaceId::parse(&id)?;
    let list: Vec<MemberDto> = wss::members(&st.svc, &caller.actor(&req), &ws)?
        .into_iter()
        .map(|m| member_dto(&st, m))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/members", request_body = AddMemberRequest, responses((status = 201, body = MemberDto)))]
pub(super) async fn add_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<AddMemberRequest>,
) -> ApiResult {
    let actor = caller.actor(&req);
    let m = match (&body.user_id, &body.email) {
        (Some(u), _) => {
            let u = UserId::parse(u)?;
            wss::set_member(&st.svc, &actor, &WorkspaceId::parse(&id)?, &u, &body.roles)?
        }
        (None, Some(e)) => {
            let e = Email::parse(e)?;
            wss::add_member_by_email(&st.svc, &actor, &WorkspaceId::parse(&id)?, &e, &body.roles)?
        }
        (None, None) => return Err(Error::invalid("user_id", "give user_id or email").into()),
    };
    Ok(HttpResponse::Created().json(member_dto(&st, m)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemberRequest {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[schema(value_type = String)]
    pub password: crate::authn::password::Password,
    /// Workspace role ids, as for members.
    pub roles: Vec<String>,
}

/// Create a new user (platform role `user`) as a member of this workspace
/// (workspace admins may; audited in the workspace).
#[utoipa::path(post, path = "/api/v1/workspaces/{id}/users", request_body = CreateMemberRequest,
    responses((status = 201, body = MemberDto), (status = 202, description = "Callers below platform level, whether or not the address existed"),
        (status = 409, body = crate::web::api::ErrorBody)))]
pub(super) async fn create_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<CreateMemberRequest>,
) -> ApiResult {
    let body = body.into_inner();
    let email = Email::parse(&body.email)?;
    let created = wss::create_member(
        &st.svc,
        &caller.actor(&req),
        &WorkspaceId::parse(&id)?,
        identity::NewUser {
            email,
            name: body.name,
            password: body.password,
            role: identity::Role::User,
        },
        &body.roles,
    )
    .await?;
    Ok(match created {
        Some((_, m)) => HttpResponse::Created().json(member_dto(&st, m)),
        None => HttpResponse::Accepted().json(serde_json::json!({
            "status": "accepted",
            "message": "A new address is now a user and member of this workspace; an existing \
                account this workspace may add is now a member (its password unchanged); \
                otherwise nothing changed. GET /api/v1/workspaces/{id}/members lists the members.",
        })),
    })
}

#[utoipa::path(put, path = "/api/v1/workspaces/{id}/members/{user}", request_body = RolesRequest, responses((status = 200, body = MemberDto)))]
pub(super) async fn put_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
    body: web::Json<RolesRequest>,
) -> ApiResult {
    let (ws, user) = path.into_inner();
    let uid = UserId::parse(&user)?;
    let ws = WorkspaceId::parse(&ws)?;
    let m = wss::set_member(&st.svc, &caller.actor(&req), &ws, &uid, &body.roles)?;
    Ok(HttpResponse::Ok().json(member_dto(&st, m)))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/members/{user}", responses((status = 204)))]
pub(super) async fn remove_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (ws, user) = path.into_inner();
    let uid = UserId::parse(&user)?;
    let ws = WorkspaceId::parse(&ws)?;
    wss::remove_member(&st.svc, &caller.actor(&req), &ws, &uid)?;
    Ok(HttpResponse::NoContent().finish())
}
