//! `/v1/transit/...`: Vault's Transit paths, each handler reading the
//! caller and the body, calling one `vault::transit` operation and
//! answering in Vault's envelope.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};

use super::{
    VaultCaller, VaultError, VaultResult, envelope, list_method, read_body, unsupported_operation,
    wants_list,
};
use crate::vault::transit::{self as domain, Reply};
use crate::web::extract::state;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    let write = || actix_web::guard::Any(actix_web::guard::Post()).or(actix_web::guard::Put());
    cfg.service(
        web::resource(["/transit/keys", "/transit/keys/"])
            .route(web::route().guard(list_method()).to(list_keys))
            .route(web::get().to(list_keys))
            .default_service(web::to(unsupported_operation)),
    )
    .service(
        web::resource("/transit/keys/{name}")
            .route(web::route().guard(write()).to(create_key))
            .route(web::get().to(read_key))
            .route(web::delete().to(delete_key))
            .default_service(web::to(unsupported_operation)),
    )
    .service(
        web::resource("/transit/keys/{name}/rotate")
            .route(web::route().guard(write()).to(rotate_key))
            .default_service(web::to(unsupported_operation)),
    )
    .service(
        web::resource("/transit/keys/{name}/config")
            .route(web::route().guard(write()).to(configure_key))
            .default_service(web::to(unsupported_operation)),
    )
    .service(
        web::resource("/transit/keys/{name}/trim")
            .route(web::route().guard(write()).to(trim_key))
            .default_service(web::to(unsupported_operation)),
    );
    for (path, op) in [
        ("/transit/encrypt/{name}", Op::Encrypt),
        ("/transit/decrypt/{name}", Op::Decrypt),
        ("/transit/rewrap/{name}", Op::Rewrap),
        ("/transit/hmac/{name}", Op::Hmac),
        ("/transit/hmac/{name}/{algorithm}", Op::Hmac),
        ("/transit/verify/{name}", Op::Verify),
        ("/transit/verify/{name}/{algorithm}", Op::Verify),
        ("/transit/datakey/{kind}/{name}", Op::Datakey),
    ] {
        cfg.service(
            web::resource(path)
                .app_data(web::Data::new(op))
                .route(web::route().guard(write()).to(data_op))
                .default_service(web::to(unsupported_operation)),
        );
    }
    for path in [
        "/transit/random",
        "/transit/random/{a}",
        "/transit/random/{a}/{b}",
    ] {
        cfg.service(
            web::resource(path)
                .route(web::route().guard(write()).to(random))
                .default_service(web::to(unsupported_operation)),
        );
    }
}

fn answer(r: Reply) -> VaultResult {
    let status = r.batch_failed.map(|f| match f.partial_code {
        Some(c) if f.any_success => StatusCode::from_u16(c).unwrap_or(StatusCode::BAD_REQUEST),
        _ => StatusCode::BAD_REQUEST,
    });
    Ok(envelope(r.data, r.warnings, status))
}

fn name<'a>(req: &'a HttpRequest, key: &str) -> &'a str {
    req.match_info().get(key).unwrap_or("")
}

async fn list_keys(req: HttpRequest, c: VaultCaller) -> VaultResult {
    if req.method() == actix_web::http::Method::GET && !wants_list(&req) {
        return Err(VaultError::Status(
            StatusCode::METHOD_NOT_ALLOWED,
            "unsupported operation: list keys with LIST or GET ?list=true".into(),
        ));
    }
    let st = state(&req)?;
    answer(domain::list_keys(&st.svc, &c.actor, &c.ws)?)
}

async fn create_key(req: HttpRequest, c: VaultCaller, body: web::Payload) -> VaultResult {
    let body = read_body(&req, body).await?;
    let st = state(&req)?;
    answer(domain::create_key(
        &st.svc,
        &c.actor,
        &c.ws,
        name(&req, "name"),
        &body,
    )?)
}

async fn read_key(req: HttpRequest, c: VaultCaller) -> VaultResult {
    let st = state(&req)?;
    answer(domain::read_key(
        &st.svc,
        &c.actor,
        &c.ws,
        name(&req, "name"),
    )?)
}

async fn delete_key(req: HttpRequest, c: VaultCaller) -> VaultResult {
    let st = state(&req)?;
    answer(domain::delete_key(
        &st.svc,
        &c.actor,
        &c.ws,
        name(&req, "name"),
    )?)
}

async fn rotate_key(req: HttpRequest, c: VaultCaller, body: web::Payload) -> VaultResult {
    read_body(&req, body).await?;
    let st = state(&req)?;
    answer(domain::rotate_key(
        &st.svc,
        &c.actor,
        &c.ws,
        name(&req, "name"),
    )?)
}

async fn configure_key(req: HttpRequest, c: VaultCaller, body: web::Payload) -> VaultResult {
    let body = read_body(&req, body).await?;
    let st = state(&req)?;
    answer(domain::configure_key(
        &st.svc,
        &c.actor,
        &c.ws,
        name(&req, "name"),
        &body,
    )?)
}

async fn trim_key(req: HttpRequest, c: VaultCaller, body: web::Payload) -> VaultResult {
    let body = read_body(&req, body).await?;
    let st = state(&req)?;
    answer(domain::trim_key(
        &st.svc,
        &c.actor,
        &c.ws,
        name(&req, "name"),
        &body,
    )?)
}

/// The data operations, one handler told which by its resource.
#[derive(Debug, Clone, Copy)]
enum Op {
    Encrypt,
    Decrypt,
    Rewrap,
    Hmac,
    Verify,
    Datakey,
}

async fn data_op(
    req: HttpRequest,
    op: web::Data<Op>,
    c: VaultCaller,
    body: web::Payload,
) -> VaultResult {
    let body = read_body(&req, body).await?;
    let st = state(&req)?;
    let (svc, a, ws, n) = (&st.svc, &c.actor, &c.ws, name(&req, "name"));
    let alg = req.match_info().get("algorithm");
    answer(match *op.get_ref() {
        Op::Encrypt => domain::encrypt(svc, a, ws, n, &body)?,
        Op::Decrypt => domain::decrypt(svc, a, ws, n, &body)?,
        Op::Rewrap => domain::rewrap(svc, a, ws, n, &body)?,
        Op::Hmac => domain::hmac(svc, a, ws, n, alg, &body)?,
        Op::Verify => domain::verify(svc, a, ws, n, alg, &body)?,
        Op::Datakey => domain::datakey(svc, a, ws, name(&req, "kind"), n, &body)?,
    })
}

/// `random`, `random/:bytes`, `random/:source` and `random/:source/:bytes`.
async fn random(req: HttpRequest, _c: VaultCaller, body: web::Payload) -> VaultResult {
    let body = read_body(&req, body).await?;
    let (a, b) = (req.match_info().get("a"), req.match_info().get("b"));
    let (source, bytes) = match (a, b) {
        (Some(s), Some(n)) => (Some(s), Some(n)),
        (Some(x), None) if x.bytes().all(|c| c.is_ascii_digit()) => (None, Some(x)),
        (Some(s), None) => (Some(s), None),
        _ => (None, None),
    };
    answer(domain::random(bytes, source, &body)?)
}
