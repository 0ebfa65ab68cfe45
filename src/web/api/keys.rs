//! `/api/v1/keys*`: data-key versions and rotation (with its background
//! re-sealing), and signing-key rotation.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiResult;
use crate::clock::rfc3339;
use crate::keys;
use crate::store::KeyVersionStatus;
use crate::web::AppState;
use crate::web::auth::ApiCaller;

#[derive(Serialize, ToSchema)]
pub struct KeyDto {
    pub version: u32,
    pub active: bool,
    pub created_at: String,
    /// Records still sealed under this version.
    pub records: u64,
}

impl From<&KeyVersionStatus> for KeyDto {
    fn from(k: &KeyVersionStatus) -> Self {
        KeyDto {
            version: k.version,
            active: k.active,
            created_at: rfc3339(k.created_at),
            records: k.records,
        }
    }
}

/// Data-key versions and the records each still seals.
#[utoipa::path(get, path = "/api/v1/keys", responses((status = 200, body = [KeyDto])))]
pub(super) async fn key_status(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    let list: Vec<KeyDto> = keys::status_for(&st.svc, &caller.actor(&req))?
        .iter()
        .map(KeyDto::from)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Serialize, ToSchema)]
pub struct RotateResponse {
    pub new_version: u32,
    /// Re-sealing runs in the background; watch `GET /api/v1/keys`.
    pub resealing: bool,
}

/// Make a new data key active; existing records are re-sealed in the background.
#[utoipa::path(post, path = "/api/v1/keys/rotate", responses((status = 202, body = RotateResponse)))]
pub(super) async fn rotate_keys(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    let v = keys::start_rotation(&st.svc, &caller.actor(&req))?;
    Ok(HttpResponse::Accepted().json(RotateResponse {
        new_version: v,
        resealing: true,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct SigningRotateResponse {
    /// The new active key id; the previous key stays in the JWKS until its last token expires.
    pub kid: String,
}

/// Rotate the access-token signing key now.
#[utoipa::path(post, path = "/api/v1/keys/signing/rotate", responses((status = 200, body = SigningRotateResponse)))]
pub(super) async fn rotate_signing(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    let kid = keys::rotate_signing(&st.svc, &caller.actor(&req))?;
    Ok(HttpResponse::Ok().json(SigningRotateResponse { kid }))
}
