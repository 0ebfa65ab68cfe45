//! HTTP for the KV v2 secrets store at `/v1/secret/`: `data/`, `metadata/`,
//! `delete/`, `undelete/`, `destroy/` and `config`, each method mapped as
//! Vault maps it (`LIST` and `GET ?list=true` on `metadata/`). The secret's
//! path is read from the request as sent (still percent-encoded), so that
//! what the scope check sees is what the store sees.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::{Value, json};

use super::{VaultCaller, VaultError, VaultResult, envelope, read_body, wants_list};
use crate::error::Error;
use crate::vault::kv::{
    self, ConfigUpdate, Folder, MetadataUpdate, PatchRequest, ReadOutcome, SecretPath, Versions,
    WriteRequest,
};
use crate::web::extract::state;

const MOUNT: &str = "/v1/secret/";

/// Mounts `/secret/...` inside the `/v1` scope.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/secret/{op}", "/secret/{op}/{path:.*}"]).route(web::route().to(dispatch)),
    );
}

/// Which endpoint, and the raw rest of the path after it.
fn split(req: &HttpRequest) -> (String, String) {
    let tail = req.uri().path().strip_prefix(MOUNT).unwrap_or("");
    match tail.split_once('/') {
        Some((op, rest)) => (op.to_string(), rest.to_string()),
        None => (tail.to_string(), String::new()),
    }
}

async fn dispatch(req: HttpRequest, caller: VaultCaller, payload: web::Payload) -> VaultResult {
    let (op, raw) = split(&req);
    let method = req.method().as_str().to_string();
    let list = method == "LIST" || (method == "GET" && wants_list(&req));
    match (op.as_str(), method.as_str()) {
        ("config", _) if !raw.is_empty() => unsupported(&req),
        ("config", "GET") => config_read(&req, &caller),
        ("config", "POST" | "PUT") => config_write(&req, &caller, payload).await,
        ("data", "GET") => data_read(&req, &caller, &raw),
        ("data", "POST" | "PUT") => data_write(&req, &caller, &raw, payload).await,
        ("data", "PATCH") => data_patch(&req, &caller, &raw, payload).await,
        ("data", "DELETE") => versions_op(&req, &caller, &raw, Op::DeleteLatest, payload).await,
        ("delete", "POST" | "PUT") => versions_op(&req, &caller, &raw, Op::Delete, payload).await,
        ("undelete", "POST" | "PUT") => {
            versions_op(&req, &caller, &raw, Op::Undelete, payload).await
        }
        ("destroy", "POST" | "PUT") => versions_op(&req, &caller, &raw, Op::Destroy, payload).await,
        ("metadata", _) if list => metadata_list(&req, &caller, &raw),
        ("metadata", "GET") => metadata_read(&req, &caller, &raw),
        ("metadata", "POST" | "PUT") => metadata_write(&req, &caller, &raw, payload, false).await,
        ("metadata", "PATCH") => metadata_write(&req, &caller, &raw, payload, true).await,
        ("metadata", "DELETE") => metadata_delete(&req, &caller, &raw),
        ("config" | "data" | "delete" | "undelete" | "destroy" | "metadata", _) => {
            Err(VaultError::Status(
                StatusCode::METHOD_NOT_ALLOWED,
                "unsupported operation".into(),
            ))
        }
        _ => unsupported(&req),
    }
}

fn unsupported(req: &HttpRequest) -> VaultResult {
    let p: String = req.path().chars().take(200).collect();
    Err(VaultError::Status(
        StatusCode::NOT_FOUND,
        format!(
            "no handler for route \"{}\". route entry not found (secret/ has data/, metadata/, delete/, undelete/, destroy/ and config)",
            p.trim_start_matches("/v1/")
        ),
    ))
}

fn ok(data: impl serde::Serialize) -> VaultResult {
    let v = serde_json::to_value(data).map_err(Error::from)?;
    Ok(envelope(Some(v), Vec::new(), None))
}

fn no_content() -> VaultResult {
    Ok(envelope(None, Vec::new(), None))
}

/// `?version=N` of a read (absent or 0: the current version).
fn version_query(req: &HttpRequest) -> Result<Option<u64>, Error> {
    for kv in req.query_string().split('&') {
        if let Some(v) = kv.strip_prefix("version=") {
            return v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| Error::invalid("version", "version must be a whole number"));
        }
    }
    Ok(None)
}

fn data_read(req: &HttpRequest, c: &VaultCaller, raw: &str) -> VaultResult {
    let path = SecretPath::parse(raw)?;
    let version = version_query(req)?;
    let st = state(req)?;
    match kv::read(&st.svc, &c.actor, &c.ws, &path, version)? {
        ReadOutcome::Found { data, metadata } => ok(json!({"data": data, "metadata": metadata})),
        // Vault's 404 for a deleted or destroyed version still says which.
        ReadOutcome::Gone(metadata) => Ok(envelope(
            Some(json!({"data": Value::Null, "metadata": metadata})),
            Vec::new(),
            Some(StatusCode::NOT_FOUND),
        )),
        ReadOutcome::Missing => Err(Error::NotFound("secret").into()),
    }
}

async fn data_write(
    req: &HttpRequest,
    c: &VaultCaller,
    raw: &str,
    payload: web::Payload,
) -> VaultResult {
    let path = SecretPath::parse(raw)?;
    let body = read_body(req, payload).await?;
    let w = WriteRequest::from_json(&body)?;
    let st = state(req)?;
    ok(kv::write(&st.svc, &c.actor, &c.ws, &path, w)?)
}

async fn data_patch(
    req: &HttpRequest,
    c: &VaultCaller,
    raw: &str,
    payload: web::Payload,
) -> VaultResult {
    let path = SecretPath::parse(raw)?;
    let body = read_body(req, payload).await?;
    let p = PatchRequest::from_json(&body)?;
    let st = state(req)?;
    match kv::patch(&st.svc, &c.actor, &c.ws, &path, p)? {
        Ok(v) => ok(v),
        Err(Some(v)) => Ok(envelope(
            Some(serde_json::to_value(v).map_err(Error::from)?),
            Vec::new(),
            Some(StatusCode::NOT_FOUND),
        )),
        Err(None) => Err(Error::NotFound("secret").into()),
    }
}

enum Op {
    DeleteLatest,
    Delete,
    Undelete,
    Destroy,
}

async fn versions_op(
    req: &HttpRequest,
    c: &VaultCaller,
    raw: &str,
    op: Op,
    payload: web::Payload,
) -> VaultResult {
    let path = SecretPath::parse(raw)?;
    let st = state(req)?;
    let svc = &st.svc;
    if let Op::DeleteLatest = op {
        kv::delete(svc, &c.actor, &c.ws, &path, Versions::Latest)?;
        return no_content();
    }
    let versions = kv::versions_from_json(&read_body(req, payload).await?)?;
    match op {
        Op::Delete => kv::delete(svc, &c.actor, &c.ws, &path, Versions::These(versions))?,
        Op::Undelete => kv::undelete(svc, &c.actor, &c.ws, &path, versions)?,
        Op::Destroy => kv::destroy(svc, &c.actor, &c.ws, &path, versions)?,
        Op::DeleteLatest => {}
    }
    no_content()
}

fn metadata_list(req: &HttpRequest, c: &VaultCaller, raw: &str) -> VaultResult {
    let folder = Folder::parse(raw)?;
    let st = state(req)?;
    match kv::list(&st.svc, &c.actor, &c.ws, &folder)? {
        Some(keys) => ok(json!({"keys": keys})),
        None => Err(Error::NotFound("folder").into()),
    }
}

fn metadata_read(req: &HttpRequest, c: &VaultCaller, raw: &str) -> VaultResult {
    let path = SecretPath::parse(raw)?;
    let st = state(req)?;
    match kv::metadata(&st.svc, &c.actor, &c.ws, &path)? {
        Some(m) => ok(m),
        None => Err(Error::NotFound("secret").into()),
    }
}

async fn metadata_write(
    req: &HttpRequest,
    c: &VaultCaller,
    raw: &str,
    payload: web::Payload,
    patch: bool,
) -> VaultResult {
    let path = SecretPath::parse(raw)?;
    let up = MetadataUpdate::from_json(&read_body(req, payload).await?, patch)?;
    let st = state(req)?;
    if kv::update_metadata(&st.svc, &c.actor, &c.ws, &path, up, patch)? {
        no_content()
    } else {
        Err(Error::NotFound("secret").into())
    }
}

fn metadata_delete(req: &HttpRequest, c: &VaultCaller, raw: &str) -> VaultResult {
    let path = SecretPath::parse(raw)?;
    let st = state(req)?;
    kv::delete_metadata(&st.svc, &c.actor, &c.ws, &path)?;
    no_content()
}

fn config_read(req: &HttpRequest, c: &VaultCaller) -> VaultResult {
    let st = state(req)?;
    ok(kv::config(&st.svc, &c.actor, &c.ws)?)
}

async fn config_write(req: &HttpRequest, c: &VaultCaller, payload: web::Payload) -> VaultResult {
    let up = ConfigUpdate::from_json(&read_body(req, payload).await?)?;
    let st = state(req)?;
    kv::set_config(&st.svc, &c.actor, &c.ws, up)?;
    no_content()
}
