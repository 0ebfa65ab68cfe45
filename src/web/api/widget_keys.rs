//! `/api/v1/widget-keys*`: origin-bound widget keys.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, ts};
use crate::access::credentials::{self as creds};
use crate::web::AppState;
use crate::web::auth::ApiCaller;

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
        workspace: w.workspace.into(),
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
pub(super) async fn list_widgets(st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    let list: Vec<WidgetKeyDto> = creds::widget_keys(&st.svc, &caller.principal)?
        .into_iter()
        .map(|w| widget_dto(w, None))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(post, path = "/api/v1/widget-keys", request_body = CreateWidgetKeyRequest, responses((status = 201, body = WidgetKeyDto)))]
pub(super) async fn create_widget(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<CreateWidgetKeyRequest>,
) -> ApiResult {
    let ws = creds::workspace_for_new(&st.svc, &caller.actor(&req), body.workspace.as_deref())?;
    let (w, key) = creds::create_widget_key(
        &st.svc,
        &caller.actor(&req),
        &ws,
        &body.name,
        &body.bot,
        &body.origins,
    )?;
    Ok(HttpResponse::Created().json(widget_dto(w, Some(key))))
}

#[utoipa::path(delete, path = "/api/v1/widget-keys/{id}", responses((status = 204)))]
pub(super) async fn delete_widget(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    creds::delete_widget_key(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}
