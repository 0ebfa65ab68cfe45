//! `/api/v1` for access control: workspaces, members, roles, groups, service
//! accounts, API apps and keys, widget keys, the permission catalogue, the
//! one-answer `POST /api/v1/authorize`, and signing-key rotation. Handlers
//! parse, call one `access` function (which authorizes and audits) and render.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::credentials::{self as creds, IpMode};
use crate::access::workspaces as wss;
use crate::access::{self, BuiltinRole, Permission, Resource};
use crate::clock::{Timestamp, rfc3339};
use crate::error::Error;
use crate::identity::{self, Email, UserId};
use crate::web::AppState;
use crate::web::auth::{ApiCaller, source};
use crate::web::error::ApiError;

type ApiResult = Result<HttpResponse, ApiError>;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        permissions,
        list_workspaces,
        create_workspace,
        get_workspace,
        rename_workspace,
        put_session_limits,
        delete_workspace,
        list_members,
        add_member,
        create_member,
        put_member,
        remove_member,
        list_roles,
        create_role,
        get_role,
        update_role,
        delete_role,
        list_groups,
        create_group,
        get_group,
        update_group,
        delete_group,
        list_sas,
        create_sa,
        get_sa,
        update_sa,
        delete_sa,
        rotate_sa_secret,
        list_apps,
        create_app,
        get_app,
        update_app,
        delete_app,
        list_keys,
        create_key,
        delete_key,
        list_widgets,
        create_widget,
        delete_widget,
        authorize,
        rotate_signing
    ),
    components(schemas(
        PermissionDto,
        WorkspaceDto,
        wss::SessionLimits,
        NameRequest,
        MemberDto,
        AddMemberRequest,
        CreateMemberRequest,
        RolesRequest,
        RoleDto,
        CreateRoleRequest,
        UpdateRoleRequest,
        GroupDto,
        GroupRequest,
        ServiceAccountDto,
        CreateServiceAccountRequest,
        UpdateServiceAccountRequest,
        ApiAppDto,
        ApiAppRequest,
        ApiKeyDto,
        CreateKeyRequest,
        WidgetKeyDto,
        CreateWidgetKeyRequest,
        AuthorizeRequest,
        AuthorizeResponse,
        SigningRotateResponse,
        IpMode
    ))
)]
struct AccessDoc;

/// The part of the OpenAPI document these handlers contribute.
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    <AccessDoc as utoipa::OpenApi>::openapi()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/permissions", web::get().to(permissions))
        .route("/authorize", web::post().to(authorize))
        .route("/keys/signing/rotate", web::post().to(rotate_signing))
        .route("/workspaces", web::get().to(list_workspaces))
        .route("/workspaces", web::post().to(create_workspace))
        .route("/workspaces/{id}", web::get().to(get_workspace))
        .route("/workspaces/{id}", web::patch().to(rename_workspace))
        .route("/workspaces/{id}", web::delete().to(delete_workspace))
        .route(
            "/workspaces/{id}/session-limits",
            web::put().to(put_session_limits),
        )
        .route("/workspaces/{id}/members", web::get().to(list_members))
        .route("/workspaces/{id}/members", web::post().to(add_member))
        .route("/workspaces/{id}/users", web::post().to(create_member))
        .route("/workspaces/{id}/members/{user}", web::put().to(put_member))
        .route(
            "/workspaces/{id}/members/{user}",
            web::delete().to(remove_member),
        )
        .route("/roles", web::get().to(list_roles))
        .route("/roles", web::post().to(create_role))
        .route("/roles/{id}", web::get().to(get_role))
        .route("/roles/{id}", web::patch().to(update_role))
        .route("/roles/{id}", web::delete().to(delete_role))
        .route("/groups", web::get().to(list_groups))
        .route("/groups", web::post().to(create_group))
        .route("/groups/{id}", web::get().to(get_group))
        .route("/groups/{id}", web::patch().to(update_group))
        .route("/groups/{id}", web::delete().to(delete_group))
        .route("/service-accounts", web::get().to(list_sas))
        .route("/service-accounts", web::post().to(create_sa))
        .route("/service-accounts/{id}", web::get().to(get_sa))
        .route("/service-accounts/{id}", web::patch().to(update_sa))
        .route("/service-accounts/{id}", web::delete().to(delete_sa))
        .route(
            "/service-accounts/{id}/secret",
            web::post().to(rotate_sa_secret),
        )
        .route("/api-apps", web::get().to(list_apps))
        .route("/api-apps", web::post().to(create_app))
        .route("/api-apps/{id}", web::get().to(get_app))
        .route("/api-apps/{id}", web::patch().to(update_app))
        .route("/api-apps/{id}", web::delete().to(delete_app))
        .route("/api-apps/{id}/keys", web::get().to(list_keys))
        .route("/api-apps/{id}/keys", web::post().to(create_key))
        .route("/api-apps/{id}/keys/{key}", web::delete().to(delete_key))
        .route("/widget-keys", web::get().to(list_widgets))
        .route("/widget-keys", web::post().to(create_widget))
        .route("/widget-keys/{id}", web::delete().to(delete_widget));
}

fn ts(t: Timestamp) -> String {
    rfc3339(t)
}

// ---- catalogue ----

#[derive(Serialize, ToSchema)]
pub struct PermissionDto {
    pub name: &'static str,
    pub description: &'static str,
    /// Held platform-wide only; never granted inside a workspace.
    pub platform_only: bool,
}

/// The permission catalogue: every name roles, scopes and checks use.
#[utoipa::path(get, path = "/api/v1/permissions", responses((status = 200, body = [PermissionDto])))]
async fn permissions(_caller: ApiCaller) -> ApiResult {
    let list: Vec<PermissionDto> = Permission::all()
        .map(|p| PermissionDto {
            name: p.as_str(),
            description: p.description(),
            platform_only: p.platform_only(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

// ---- workspaces ----

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
            id: w.id,
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
async fn list_workspaces(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<WorkspaceDto> = wss::list(&st.svc, &caller.principal)?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/workspaces", request_body = NameRequest, responses((status = 201, body = WorkspaceDto)))]
async fn create_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<NameRequest>,
) -> ApiResult {
    let w = wss::create(&st.svc, &caller.principal, &source(&req), &body.name)?;
    Ok(HttpResponse::Created().json(WorkspaceDto::from(w)))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{id}", responses((status = 200, body = WorkspaceDto)))]
async fn get_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let w = wss::show(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::Ok().json(WorkspaceDto::from(w)))
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{id}", request_body = NameRequest, responses((status = 200, body = WorkspaceDto)))]
async fn rename_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<NameRequest>,
) -> ApiResult {
    let w = wss::rename(&st.svc, &caller.principal, &source(&req), &id, &body.name)?;
    Ok(HttpResponse::Ok().json(WorkspaceDto::from(w)))
}

/// Sets the workspace's own session limits (`null` for the installation's);
/// they only shorten: a member gets the shortest of the installation's and
/// every workspace they belong to.
#[utoipa::path(put, path = "/api/v1/workspaces/{id}/session-limits", request_body = wss::SessionLimits, responses((status = 200, body = WorkspaceDto)))]
async fn put_session_limits(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<wss::SessionLimits>,
) -> ApiResult {
    let w = wss::set_session_limits(&st.svc, &caller.principal, &source(&req), &id, *body)?;
    Ok(HttpResponse::Ok().json(WorkspaceDto::from(w)))
}

/// Deletes the workspace with its members, roles, groups and credentials.
#[utoipa::path(delete, path = "/api/v1/workspaces/{id}", responses((status = 204)))]
async fn delete_workspace(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    wss::delete(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- members ----

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
async fn list_members(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let list: Vec<MemberDto> = wss::members(&st.svc, &caller.principal, &source(&req), &id)?
        .into_iter()
        .map(|m| member_dto(&st, m))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/workspaces/{id}/members", request_body = AddMemberRequest, responses((status = 201, body = MemberDto)))]
async fn add_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<AddMemberRequest>,
) -> ApiResult {
    let src = source(&req);
    let m = match (&body.user_id, &body.email) {
        (Some(u), _) => wss::set_member(
            &st.svc,
            &caller.principal,
            &src,
            &id,
            &UserId::parse(u)?,
            &body.roles,
        )?,
        (None, Some(e)) => wss::add_member_by_email(
            &st.svc,
            &caller.principal,
            &src,
            &id,
            &Email::parse(e)?,
            &body.roles,
        )?,
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
async fn create_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<CreateMemberRequest>,
) -> ApiResult {
    let body = body.into_inner();
    let created = wss::create_member(
        &st.svc,
        &caller.principal,
        &source(&req),
        &id,
        identity::NewUser {
            email: Email::parse(&body.email)?,
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
async fn put_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
    body: web::Json<RolesRequest>,
) -> ApiResult {
    let (ws, user) = path.into_inner();
    let uid = UserId::parse(&user)?;
    let m = wss::set_member(
        &st.svc,
        &caller.principal,
        &source(&req),
        &ws,
        &uid,
        &body.roles,
    )?;
    Ok(HttpResponse::Ok().json(member_dto(&st, m)))
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{id}/members/{user}", responses((status = 204)))]
async fn remove_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (ws, user) = path.into_inner();
    let uid = UserId::parse(&user)?;
    wss::remove_member(&st.svc, &caller.principal, &source(&req), &ws, &uid)?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- roles ----

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
            workspace: Some(r.workspace),
            name: r.name,
            description: r.description,
            permissions: r.permissions,
            builtin: false,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct WorkspaceQuery {
    /// Only this workspace.
    pub workspace: Option<String>,
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
async fn list_roles(
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
    list.extend(
        wss::roles(&st.svc, &caller.principal, q.workspace.as_deref())?
            .into_iter()
            .map(RoleDto::from),
    );
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/roles", request_body = CreateRoleRequest, responses((status = 201, body = RoleDto)))]
async fn create_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateRoleRequest>,
) -> ApiResult {
    let ws = access::resolve_workspace(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        body.workspace.as_deref(),
    )?;
    let r = wss::create_role(
        &st.svc,
        &caller.principal,
        &source(&req),
        &ws,
        &body.name,
        body.description.as_deref().unwrap_or(""),
        &body.permissions,
    )?;
    Ok(HttpResponse::Created().json(RoleDto::from(r)))
}

#[utoipa::path(get, path = "/api/v1/roles/{id}", responses((status = 200, body = RoleDto)))]
async fn get_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let r = wss::get_role(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::Ok().json(RoleDto::from(r)))
}

/// Renames or re-scopes a custom role; its holders get the change at once.
#[utoipa::path(patch, path = "/api/v1/roles/{id}", request_body = UpdateRoleRequest, responses((status = 200, body = RoleDto)))]
async fn update_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<UpdateRoleRequest>,
) -> ApiResult {
    let r = wss::update_role(
        &st.svc,
        &caller.principal,
        &source(&req),
        &id,
        body.name.as_deref(),
        body.permissions.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(RoleDto::from(r)))
}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", responses((status = 204)))]
async fn delete_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    wss::delete_role(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- groups ----

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
            workspace: g.workspace,
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
async fn list_groups(
    st: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<WorkspaceQuery>,
) -> ApiResult {
    let list: Vec<GroupDto> = wss::groups(&st.svc, &caller.principal, q.workspace.as_deref())?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/groups", request_body = GroupRequest, responses((status = 201, body = GroupDto)))]
async fn create_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<GroupRequest>,
) -> ApiResult {
    let ws = access::resolve_workspace(
        &st.svc,
        &caller.principal,
        Permission::ManageUsers,
        body.workspace.as_deref(),
    )?;
    let members = user_ids(&body.members)?;
    let g = wss::save_group(
        &st.svc,
        &caller.principal,
        &source(&req),
        None,
        &ws,
        body.name.as_deref(),
        body.roles.as_deref(),
        members.as_deref(),
    )?;
    Ok(HttpResponse::Created().json(GroupDto::from(g)))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}", responses((status = 200, body = GroupDto)))]
async fn get_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let g = wss::get_group(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::Ok().json(GroupDto::from(g)))
}

#[utoipa::path(patch, path = "/api/v1/groups/{id}", request_body = GroupRequest, responses((status = 200, body = GroupDto)))]
async fn update_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<GroupRequest>,
) -> ApiResult {
    let members = user_ids(&body.members)?;
    let g = wss::save_group(
        &st.svc,
        &caller.principal,
        &source(&req),
        Some(&id),
        "",
        body.name.as_deref(),
        body.roles.as_deref(),
        members.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(GroupDto::from(g)))
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}", responses((status = 204)))]
async fn delete_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    wss::delete_group(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- service accounts ----

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
        workspace: s.workspace,
        name: s.name,
        description: s.description,
        scopes: s.scopes,
        ip_allowlist: s.ip_allowlist,
        ip_mode: s.ip_mode,
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
async fn list_sas(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<ServiceAccountDto> = creds::service_accounts(&st.svc, &caller.principal)?
        .into_iter()
        .map(|s| sa_dto(s, None))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Creates a service account; the answer carries `client_secret`, shown once.
#[utoipa::path(post, path = "/api/v1/service-accounts", request_body = CreateServiceAccountRequest, responses((status = 201, body = ServiceAccountDto)))]
async fn create_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateServiceAccountRequest>,
) -> ApiResult {
    // Creating a credential is sensitive: it needs a recent sign-in.
    caller.require_recent_auth(&st.svc)?;
    let ws = match body.workspace.as_deref().filter(|w| !w.is_empty()) {
        None if caller.principal.is_platform_admin() => None,
        named => Some(access::resolve_workspace(
            &st.svc,
            &caller.principal,
            Permission::ManageCredentials,
            named,
        )?),
    };
    let (sa, secret) = creds::create_service_account(
        &st.svc,
        &caller.principal,
        &source(&req),
        creds::NewServiceAccount {
            workspace: ws.as_deref(),
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
async fn get_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let sa = creds::get_service_account(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::Ok().json(sa_dto(sa, None)))
}

#[utoipa::path(patch, path = "/api/v1/service-accounts/{id}", request_body = UpdateServiceAccountRequest, responses((status = 200, body = ServiceAccountDto)))]
async fn update_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<UpdateServiceAccountRequest>,
) -> ApiResult {
    let sa = creds::update_service_account(
        &st.svc,
        &caller.principal,
        &source(&req),
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
async fn delete_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    creds::delete_service_account(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new client secret (shown once); the old one stops working.
#[utoipa::path(post, path = "/api/v1/service-accounts/{id}/secret", responses((status = 200, body = ServiceAccountDto)))]
async fn rotate_sa_secret(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    // Creating a credential is sensitive: it needs a recent sign-in.
    caller.require_recent_auth(&st.svc)?;
    let secret =
        creds::rotate_service_account_secret(&st.svc, &caller.principal, &source(&req), &id)?;
    let sa = creds::get_service_account(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::Ok().json(sa_dto(sa, Some(secret))))
}

// ---- API apps and keys ----

#[derive(Serialize, ToSchema)]
pub struct ApiAppDto {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<creds::ApiApp> for ApiAppDto {
    fn from(a: creds::ApiApp) -> Self {
        ApiAppDto {
            id: a.id,
            workspace: a.workspace,
            name: a.name,
            scopes: a.scopes,
            created_at: ts(a.created_at),
            updated_at: ts(a.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ApiAppRequest {
    /// On create: defaults to the caller's only workspace.
    pub workspace: Option<String>,
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/api/v1/api-apps", responses((status = 200, body = [ApiAppDto])))]
async fn list_apps(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<ApiAppDto> = creds::apps(&st.svc, &caller.principal)?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/api-apps", request_body = ApiAppRequest, responses((status = 201, body = ApiAppDto)))]
async fn create_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<ApiAppRequest>,
) -> ApiResult {
    let ws = access::resolve_workspace(
        &st.svc,
        &caller.principal,
        Permission::ManageCredentials,
        body.workspace.as_deref(),
    )?;
    let name = body
        .name
        .as_deref()
        .ok_or_else(|| Error::invalid("name", "is required"))?;
    let scopes = body
        .scopes
        .as_deref()
        .ok_or_else(|| Error::invalid("scopes", "is required (a JSON array of catalogue names)"))?;
    let app = creds::create_app(&st.svc, &caller.principal, &source(&req), &ws, name, scopes)?;
    Ok(HttpResponse::Created().json(ApiAppDto::from(app)))
}

#[utoipa::path(get, path = "/api/v1/api-apps/{id}", responses((status = 200, body = ApiAppDto)))]
async fn get_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let app = creds::get_app(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::Ok().json(ApiAppDto::from(app)))
}

/// Renames or re-scopes the app; its keys carry the new scopes at once.
#[utoipa::path(patch, path = "/api/v1/api-apps/{id}", request_body = ApiAppRequest, responses((status = 200, body = ApiAppDto)))]
async fn update_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<ApiAppRequest>,
) -> ApiResult {
    let app = creds::update_app(
        &st.svc,
        &caller.principal,
        &source(&req),
        &id,
        body.name.as_deref(),
        body.scopes.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(ApiAppDto::from(app)))
}

#[utoipa::path(delete, path = "/api/v1/api-apps/{id}", responses((status = 204)))]
async fn delete_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    creds::delete_app(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyDto {
    pub id: String,
    pub app_id: String,
    pub name: String,
    /// First and last characters, to recognise the key.
    pub hint: String,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    /// Used in the last 24 hours: deleting it will likely break a caller.
    pub used_recently: bool,
    /// Only in the answer to create: the key itself, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

pub(crate) fn key_dto(
    k: creds::ApiKey,
    used: Option<creds::Usage>,
    now: Timestamp,
    secret: Option<String>,
) -> ApiKeyDto {
    ApiKeyDto {
        id: k.id,
        app_id: k.app,
        name: k.name,
        hint: k.hint,
        created_at: ts(k.created_at),
        created_by: k.created_by,
        expires_at: k.expires_at.map(ts),
        last_used_at: used.map(|u| ts(u.at)),
        last_used_ip: used.and_then(|u| u.ip).map(|i| i.to_string()),
        used_recently: used.is_some_and(|u| now - u.at < 86_400),
        key: secret,
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    pub name: Option<String>,
    /// RFC 3339 (e.g. 2027-01-31T12:00:00Z), at most 10 years ahead; absent: never expires.
    pub expires_at: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/api-apps/{id}/keys", responses((status = 200, body = [ApiKeyDto])))]
async fn list_keys(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let now = st.svc.now();
    let list: Vec<ApiKeyDto> = creds::keys(&st.svc, &caller.principal, &source(&req), &id)?
        .into_iter()
        .map(|(k, u)| key_dto(k, u, now, None))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Creates a key; the answer's `key` field is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/api-apps/{id}/keys", request_body = CreateKeyRequest, responses((status = 201, body = ApiKeyDto)))]
async fn create_key(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: Option<web::Json<CreateKeyRequest>>,
) -> ApiResult {
    // Creating a credential is sensitive: it needs a recent sign-in.
    caller.require_recent_auth(&st.svc)?;
    let (name, expires) = match &body {
        Some(b) => (
            b.name.clone(),
            match b.expires_at.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(crate::clock::parse_time(s).ok_or_else(|| {
                    Error::invalid(
                        "expires_at",
                        "use an RFC 3339 date and time such as 2027-01-31T12:00:00Z",
                    )
                })?),
                None => None,
            },
        ),
        None => (None, None),
    };
    let (k, secret) = creds::create_key(
        &st.svc,
        &caller.principal,
        &source(&req),
        &id,
        name.as_deref(),
        expires,
    )?;
    Ok(HttpResponse::Created().json(key_dto(k, None, st.svc.now(), Some(secret))))
}

/// Deletes a key; it is refused on the very next check.
#[utoipa::path(delete, path = "/api/v1/api-apps/{id}/keys/{key}", responses((status = 204)))]
async fn delete_key(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (app, key) = path.into_inner();
    creds::delete_key(&st.svc, &caller.principal, &source(&req), &app, &key)?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- widget keys ----

#[derive(Serialize, ToSchema)]
pub struct WidgetKeyDto {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub bot: String,
    pub origins: Vec<String>,
    pub hint: String,
    pub created_at: String,
    /// Only in the answer to create: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn widget_dto(w: creds::WidgetKey, key: Option<String>) -> WidgetKeyDto {
    WidgetKeyDto {
        id: w.id,
        workspace: w.workspace,
        name: w.name,
        bot: w.bot,
        origins: w.origins,
        hint: w.hint,
        created_at: ts(w.created_at),
        key,
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateWidgetKeyRequest {
    pub workspace: Option<String>,
    pub name: String,
    /// The bot's id, as the platform gives it.
    pub bot: String,
    /// Web origins the widget runs on, e.g. `https://shop.example.com`.
    pub origins: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/widget-keys", responses((status = 200, body = [WidgetKeyDto])))]
async fn list_widgets(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<WidgetKeyDto> = creds::widget_keys(&st.svc, &caller.principal)?
        .into_iter()
        .map(|w| widget_dto(w, None))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/widget-keys", request_body = CreateWidgetKeyRequest, responses((status = 201, body = WidgetKeyDto)))]
async fn create_widget(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateWidgetKeyRequest>,
) -> ApiResult {
    // Creating a credential is sensitive: it needs a recent sign-in.
    caller.require_recent_auth(&st.svc)?;
    let ws = access::resolve_workspace(
        &st.svc,
        &caller.principal,
        Permission::ManageCredentials,
        body.workspace.as_deref(),
    )?;
    let (w, key) = creds::create_widget_key(
        &st.svc,
        &caller.principal,
        &source(&req),
        &ws,
        &body.name,
        &body.bot,
        &body.origins,
    )?;
    Ok(HttpResponse::Created().json(widget_dto(w, Some(key))))
}

#[utoipa::path(delete, path = "/api/v1/widget-keys/{id}", responses((status = 204)))]
async fn delete_widget(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    creds::delete_widget_key(&st.svc, &caller.principal, &source(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- one answer for services ----

#[derive(Deserialize, ToSchema)]
pub struct AuthorizeRequest {
    /// An access token, an API key (`ghk_…`) or a widget key (`ghw_…`).
    pub credential: String,
    /// One catalogue permission, e.g. `read:agents`.
    pub scope: String,
    /// `ws_…`, `ws_…/anything` or `ws_…/bots/{bot}`; absent: any workspace.
    pub resource: Option<String>,
    /// The end client's address, for service-account IP allowlists.
    pub ip: Option<String>,
    /// The web origin, for widget keys.
    pub origin: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuthorizeResponse {
    pub allow: bool,
    /// `scope_granted`, `role_grants`, `platform_admin`, or why not:
    /// `invalid_credential`, `scope_missing`, `permission_missing`,
    /// `not_a_member`, `wrong_workspace`, `widget_key_bot_only`,
    /// `origin_not_allowed`, `ip_not_allowed`, `platform_admin_required`.
    pub reason: String,
    pub sub: Option<String>,
    pub workspace: Option<String>,
}

/// "May this credential do this here?" for services that want one answer.
/// The caller needs `introspect:credentials`; a workspace-bound caller gets
/// answers about its own workspace only.
#[utoipa::path(post, path = "/api/v1/authorize", request_body = AuthorizeRequest, responses((status = 200, body = AuthorizeResponse)))]
async fn authorize(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<AuthorizeRequest>,
) -> ApiResult {
    let src = source(&req);
    let perm = Permission::parse(body.scope.trim()).ok_or_else(|| {
        Error::invalid(
            "scope",
            "unknown permission; GET /api/v1/permissions lists the catalogue",
        )
    })?;
    let res = match body.resource.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => Resource::parse(r)?,
        None => Resource::Any,
    };
    let ip = match body.ip.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.trim()
                .parse::<std::net::IpAddr>()
                .map_err(|_| Error::invalid("ip", "must be an IPv4 or IPv6 address"))?,
        ),
        None => None,
    };
    let caller_scope = match res.workspace() {
        Some(w) => Resource::Workspace(w),
        None => Resource::Any,
    };
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::IntrospectCredentials,
        caller_scope,
        &src,
    )?;
    let d = crate::web::protocol::check_credential(
        &st,
        &body.credential,
        perm,
        res,
        ip,
        body.origin.as_deref(),
        &src,
    )?;
    // A workspace-bound caller gets answers about its own workspace only.
    let visible = match &d.workspace {
        Some(w) => {
            access::decide(
                &st.svc,
                &caller.principal,
                Permission::IntrospectCredentials,
                Resource::Workspace(w),
            )?
            .allow
        }
        None => caller.principal.is_platform_level(),
    };
    let (allow, reason) = match (d.allow, visible) {
        (true, true) => (true, d.reason.to_string()),
        (true, false) => (false, "wrong_workspace".to_string()),
        (false, _) => (false, d.reason.to_string()),
    };
    Ok(HttpResponse::Ok().json(AuthorizeResponse {
        allow,
        reason,
        sub: if allow { d.sub } else { None },
        workspace: if allow { d.workspace } else { None },
    }))
}

// ---- signing keys ----

#[derive(Serialize, ToSchema)]
pub struct SigningRotateResponse {
    /// The new active key id; the previous key stays in the JWKS until its last token expires.
    pub kid: String,
}

/// Rotate the access-token signing key now.
#[utoipa::path(post, path = "/api/v1/keys/signing/rotate", responses((status = 200, body = SigningRotateResponse)))]
async fn rotate_signing(req: HttpRequest, st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let src = source(&req);
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageKeys,
        Resource::Platform,
        &src,
    )?;
    caller.require_recent_auth(&st.svc)?;
    let kid = st
        .svc
        .rotate_signing_key(&caller.principal, &src, "on_demand")?;
    Ok(HttpResponse::Ok().json(SigningRotateResponse { kid }))
}
