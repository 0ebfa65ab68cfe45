//! `/api/v1/audit/sinks`: the audit streaming sinks (list, create, read,
//! replace, delete, send a test event). Credentials are write-only: an
//! answer says whether one is set, never what it is. The rules and the
//! delivery are the domain's `sinks` module.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiResult;
use crate::audit::Category;
use crate::clock::{Timestamp, rfc3339};
use crate::sinks::{self, Kind, SinkInput, SinkStatus, SyslogConfig};
use crate::web::AppState;
use crate::web::extract::ApiCaller;

#[derive(Debug, Serialize, ToSchema)]
pub struct HecDto {
    pub url: String,
    pub token_set: bool,
    pub index: Option<String>,
    pub source: Option<String>,
    pub sourcetype: Option<String>,
    pub ack: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatadogDto {
    pub site: Option<String>,
    pub url: String,
    pub api_key_set: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    pub url: String,
    pub secret_set: bool,
}

/// A sink as the API shows it, with its delivery status.
#[derive(Debug, Serialize, ToSchema)]
pub struct SinkDto {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub enabled: bool,
    /// Empty: every category.
    pub categories: Vec<Category>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub splunk_hec: Option<HecDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookDto>,
    /// Events written after the last one delivered (or passed over).
    pub backlog: u64,
    pub delivered: u64,
    /// The id of the newest event taken care of.
    pub cursor: u64,
    #[schema(value_type = Option<String>)]
    pub last_delivered_at: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>)]
    pub last_error_at: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn sink_dto(st: SinkStatus) -> SinkDto {
    let s = st.sink;
    SinkDto {
        datadog: s.datadog.as_ref().map(|c| DatadogDto {
            site: c.site.clone(),
            url: crate::sinks::wire::datadog_url(&s),
            api_key_set: c.api_key.is_some(),
        }),
        splunk_hec: s.splunk_hec.map(|c| HecDto {
            url: c.url,
            token_set: c.token.is_some(),
            index: c.index,
            source: c.source,
            sourcetype: c.sourcetype,
            ack: c.ack,
        }),
        webhook: s.webhook.map(|c| WebhookDto {
            url: c.url,
            secret_set: c.secret.is_some(),
        }),
        id: s.id,
        name: s.name,
        kind: s.kind,
        enabled: s.enabled,
        categories: s.categories,
        syslog: s.syslog,
        backlog: st.backlog,
        delivered: st.state.delivered,
        cursor: st.state.cursor,
        last_delivered_at: st.state.last_delivered_at.map(rfc3339),
        last_error: st.state.last_error,
        last_error_at: st.state.last_error_at.map(rfc3339),
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// Every audit sink with its delivery status (`manage:security`).
#[utoipa::path(get, path = "/api/v1/audit/sinks", responses((status = 200, body = Vec<SinkDto>)))]
pub(super) async fn list_sinks(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    let rows: Vec<SinkDto> = sinks::list_for(&st.svc, &caller.actor(&req))?
        .into_iter()
        .map(sink_dto)
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// Add an audit sink (needs a recent sign-in; audited). It streams the
/// events written from now on.
#[utoipa::path(post, path = "/api/v1/audit/sinks", request_body = SinkInput,
    responses((status = 201, body = SinkDto), (status = 400, body = crate::web::api::ErrorBody)))]
pub(super) async fn create_sink(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<SinkInput>,
) -> ApiResult {
    let s = sinks::create(&st.svc, &caller.actor(&req), body.into_inner())?;
    Ok(HttpResponse::Created().json(sink_dto(s)))
}

/// One audit sink with its delivery status.
#[utoipa::path(get, path = "/api/v1/audit/sinks/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SinkDto), (status = 404, body = crate::web::api::ErrorBody)))]
pub(super) async fn get_sink(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let s = sinks::get_for(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::Ok().json(sink_dto(s)))
}

/// Replace an audit sink's settings; credentials left out are kept.
#[utoipa::path(put, path = "/api/v1/audit/sinks/{id}", params(("id" = String, Path)), request_body = SinkInput,
    responses((status = 200, body = SinkDto), (status = 400, body = crate::web::api::ErrorBody), (status = 404, body = crate::web::api::ErrorBody)))]
pub(super) async fn update_sink(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<SinkInput>,
) -> ApiResult {
    let s = sinks::update(&st.svc, &caller.actor(&req), &id, body.into_inner())?;
    Ok(HttpResponse::Ok().json(sink_dto(s)))
}

/// Delete an audit sink (audited).
#[utoipa::path(delete, path = "/api/v1/audit/sinks/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::web::api::ErrorBody)))]
pub(super) async fn delete_sink(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    sinks::delete(&st.svc, &caller.actor(&req), &id)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Write an `audit_sink.test` event and send it to the sink now.
#[utoipa::path(post, path = "/api/v1/audit/sinks/{id}/test", params(("id" = String, Path)),
    responses((status = 200, body = crate::sinks::TestResult), (status = 404, body = crate::web::api::ErrorBody)))]
pub(super) async fn test_sink(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    let r = sinks::send_test(&st.svc, &caller.actor(&req), &id).await?;
    Ok(HttpResponse::Ok().json(r))
}
