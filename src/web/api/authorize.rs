//! `/api/v1/permissions` (the permission catalogue) and `POST /api/v1/authorize`,
//! the one answer for services: may this credential do this here?

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiResult;
use crate::access::{self, Permission, Resource};
use crate::error::Error;
use crate::web::AppState;
use crate::web::auth::{ApiCaller, source};

#[derive(Serialize, ToSchema)]
pub struct PermissionDto {
    pub name: &'static str,
    pub description: &'static str,
    /// Held platform-wide only; never granted inside a workspace.
    pub platform_only: bool,
}

/// The permission catalogue: every name roles, scopes and checks use.
#[utoipa::path(get, path = "/api/v1/permissions", responses((status = 200, body = [PermissionDto])))]
pub(super) async fn permissions(_caller: ApiCaller) -> ApiResult {
    let list: Vec<PermissionDto> = Permission::all()
        .map(|p| PermissionDto {
            name: p.as_str(),
            description: p.description(),
            platform_only: p.platform_only(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize, ToSchema)]
pub struct AuthorizeRequest {
    /// An access token, an API key (`ghk_…`) or a widget key (`ghw_…`).
    pub credential: String,
    /// One catalogue permission, e.g. `read:agents`.
    pub scope: String,
    /// `ws_…`, `ws_…/anything` or `ws_…/bots/{bot}`; absent: any workspace.
    pub resource: Option<String>,
    /// The end client's address, for service-account IP allowlists: required
    /// (400 `ip_required`) when the credential is a token of an account that has one.
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
pub(super) async fn authorize(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<AuthorizeRequest>,
) -> ApiResult {
    let src = source(&req);
    let perm = crate::access::PermSet::parse_one("scope", &body.scope)?;
    let parsed = match body.resource.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => Some(Resource::parse(r)?),
        None => None,
    };
    let res = parsed
        .as_ref()
        .map_or(Resource::Any, access::ParsedResource::get);
    let addr = match body.ip.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => access::credentials::ClientAddress::Known(
            s.trim()
                .parse::<std::net::IpAddr>()
                .map_err(|_| Error::invalid("ip", "must be an IPv4 or IPv6 address"))?,
        ),
        None => access::credentials::ClientAddress::Unstated,
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
        addr,
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
        workspace: if allow {
            d.workspace.map(String::from)
        } else {
            None
        },
    }))
}
