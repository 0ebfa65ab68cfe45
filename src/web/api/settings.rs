//! `/api/v1/settings/security`: the security policy (MFA requirement, sessions).

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiResult, ErrorBody};
use crate::web::AppState;
use crate::web::auth::ApiCaller;

/// The security policy: MFA requirement and sessions.
#[utoipa::path(get, path = "/api/v1/settings/security", responses((status = 200, body = crate::policy::SecurityPolicy)))]
pub(super) async fn get_security(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(crate::authn::policy_for(&st.svc, &caller.actor(&req))?))
}

/// Replace the security policy (needs a recent sign-in; audited).
#[utoipa::path(put, path = "/api/v1/settings/security", request_body = crate::policy::SecurityPolicy,
    responses((status = 200, body = crate::policy::SecurityPolicy), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn put_security(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<crate::policy::SecurityPolicy>,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(crate::authn::update_policy(
        &st.svc,
        &caller.actor(&req),
        body.into_inner(),
    )?))
}
