//! `/api/v1/audit`: the audit log, filtered and paged.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiResult, paging};
use crate::access::{self};
use crate::audit;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

/// Flat on purpose: serde's `flatten` breaks numeric query parameters.
#[derive(Deserialize)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// authentication, authorization, data_access, configuration or security.
    pub category: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// A workspace id: its events only (what workspace admins may read).
    pub workspace: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<audit::Event>,
    pub page: usize,
    pub per_page: usize,
    pub more: bool,
}

/// Audit events, newest first, filtered by actor, action, outcome, category and time.
#[utoipa::path(get, path = "/api/v1/audit", params(audit::Filter, ("page" = Option<usize>, Query), ("per_page" = Option<usize>, Query)),
    responses((status = 200, body = AuditPage)))]
pub(super) async fn audit_log(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    q: web::Query<AuditQuery>,
) -> ApiResult {
    let q = q.into_inner();
    let filter = audit::Filter {
        actor: q.actor,
        action: q.action,
        outcome: q.outcome,
        category: q.category,
        since: q.since,
        until: q.until,
        workspace: q.workspace,
    };
    let (mut page, mut per) = (1, 1);
    let (events, more) = access::audit_page(&st.svc, &caller.actor(&req), &filter, || {
        (page, per) = paging(q.page, q.per_page)?;
        Ok(((page - 1) * per, per))
    })?;
    Ok(HttpResponse::Ok().json(AuditPage {
        events,
        page,
        per_page: per,
        more,
    }))
}
