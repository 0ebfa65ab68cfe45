//! `/api/v1/api-apps*`: API apps and their scoped API keys.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, ts};
use crate::access::credentials::{self as creds};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

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
            workspace: a.workspace.into(),
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
pub(super) async fn list_apps(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<ApiAppDto> = creds::apps(&st.svc, &caller.principal)?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/api-apps", request_body = ApiAppRequest, responses((status = 201, body = ApiAppDto)))]
pub(super) async fn create_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<ApiAppRequest>,
) -> ApiResult {
    let ws = creds::workspace_for_new(&st.svc, &caller.actor(&req), body.workspace.as_deref())?;
    let name = body
        .name
        .as_deref()
        .ok_or_else(|| Error::invalid("name", "is required"))?;
    let scopes = body
        .scopes
        .as_deref()
        .ok_or_else(|| Error::invalid("scopes", "is required (a JSON array of catalogue names)"))?;
    let app = creds::create_app(&st.svc, &caller.actor(&req), &ws, name, scopes)?;
    Ok(HttpResponse::Created().json(ApiAppDto::from(app)))
}

#[utoipa::path(get, path = "/api/v1/api-apps/{id}", responses((status = 200, body = ApiAppDto)))]
pub(super) async fn get_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let app = creds::get_app(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(ApiAppDto::from(app)))
}

/// Renames or re-scopes the app; its keys carry the new scopes at once.
#[utoipa::path(patch, path = "/api/v1/api-apps/{id}", request_body = ApiAppRequest, responses((status = 200, body = ApiAppDto)))]
pub(super) async fn update_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<ApiAppRequest>,
) -> ApiResult {
    let app = creds::update_app(
        &st.svc,
        &caller.actor(&req),
        &id,
        body.name.as_deref(),
        body.scopes.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(ApiAppDto::from(app)))
}

#[utoipa::path(delete, path = "/api/v1/api-apps/{id}", responses((status = 204)))]
pub(super) async fn delete_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    creds::delete_app(&st.svc, &caller.actor(&req), &id)?;
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
pub(super) async fn list_keys(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let now = st.svc.now();
    let list: Vec<ApiKeyDto> = creds::keys(&st.svc, &caller.actor(&req), &id)?
        .into_iter()
        .map(|(k, u)| key_dto(k, u, now, None))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Creates a key; the answer's `key` field is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/api-apps/{id}/keys", request_body = CreateKeyRequest, responses((status = 201, body = ApiKeyDto)))]
pub(super) async fn create_key(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: Option<web::Json<CreateKeyRequest>>,
) -> ApiResult {
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
    let (k, secret) =
        creds::create_key(&st.svc, &caller.actor(&req), &id, name.as_deref(), expires)?;
    Ok(HttpResponse::Created().json(key_dto(k, None, st.svc.now(), Some(secret))))
}

/// Deletes a key; it is refused on the very next check.
#[utoipa::path(delete, path = "/api/v1/api-apps/{id}/keys/{key}", responses((status = 204)))]
pub(super) async fn delete_key(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (app, key) = path.into_inner();
    creds::delete_key(&st.svc, &caller.actor(&req), &app, &key)?;
    Ok(HttpResponse::NoContent().finish())
}
