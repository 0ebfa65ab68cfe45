//! A workspace's Secrets page (the KV v2 store): its paths and versions,
//! writing a new version, deleting, undeleting and destroying one, and
//! revealing one value on request (audited). Values appear only in the
//! answer to a Reveal, never in a listing, a redirect or a re-rendered form.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::error::Error;
use crate::principal::WorkspaceId;
use crate::vault::kv::{self, PathSummary, ReadOutcome, SecretPath, Versions, WriteRequest};
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{ConfirmPage, CsrfForm, Nav, PageResult, nav, redirect, render, words};
use crate::web::notice::{Notice, SecretsNotice, notice_text, notice_url};

/// A revealed value: its path, version and the data as indented JSON.
pub(super) struct Revealed {
    path: String,
    version: u64,
    json: String,
}

#[derive(Template)]
#[template(path = "secrets.html")]
pub(super) struct SecretsPage {
    nav: Nav,
    ws_id: String,
    ws_name: String,
    paths: Vec<PathSummary>,
    may_read: bool,
    may_write: bool,
    may_admin: bool,
    notice: Option<String>,
    error: Option<String>,
    /// The path typed into the write form, kept after a refusal (never the data).
    form_path: String,
    revealed: Option<Revealed>,
}

fn base(id: &WorkspaceId) -> String {
    format!("/admin/workspaces/{id}/secrets")
}

fn page(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    ws: &WorkspaceId,
) -> Result<SecretsPage, Error> {
    Ok(from_view(
        u,
        ws,
        kv::console_view(&st.svc, &u.actor(req), ws)?,
    ))
}

fn from_view(u: &ConsoleUser, ws: &WorkspaceId, v: kv::ConsoleView) -> SecretsPage {
    SecretsPage {
        nav: nav(u, "workspaces"),
        ws_id: ws.to_string(),
        ws_name: v.workspace_name,
        paths: v.paths,
        may_read: v.may_read,
        may_write: v.may_write,
        may_admin: v.may_admin,
        notice: None,
        error: None,
        form_path: String::new(),
        revealed: None,
    }
}

pub(super) async fn show(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<Notice<SecretsNotice>>,
) -> PageResult {
    let ws = WorkspaceId::parse(&id)?;
    let mut p = page(&st, &req, &u, &ws)?;
    p.notice = notice_text(q.notice);
    render(StatusCode::OK, &p)
}

#[derive(Deserialize)]
pub(super) struct WriteForm {
    csrf_token: String,
    path: String,
    /// A JSON object: the new version's data.
    data: String,
    /// Check-and-set: the version the writer saw (empty: none).
    #[serde(default)]
    cas: String,
}

pub(super) async fn write(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<WriteForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let ws = WorkspaceId::parse(&id)?;
    let done = SecretPath::parse(f.path.trim()).and_then(|path| {
        let data: serde_json::Value = serde_json::from_str(&f.data).map_err(|_| {
            Error::invalid("data", "must be a JSON object, e.g. {\"api_key\": \"…\"}")
        })?;
        let mut body = serde_json::json!({"data": data});
        if !f.cas.trim().is_empty() {
            body["options"] = serde_json::json!({"cas": f.cas.trim()});
        }
        let req_ = WriteRequest::from_json(&body)?;
        kv::write(&st.svc, &u.actor(&req), &ws, &path, req_)
    });
    match done {
        Ok(_) => Ok(redirect(&notice_url(&base(&ws), SecretsNotice::Written))),
        Err(e @ Error::Invalid { .. }) => {
            let mut p = page(&st, &req, &u, &ws)?;
            p.error = Some(words(&e));
            p.form_path = f.path.clone();
            render(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct VersionForm {
    csrf_token: String,
    path: String,
    version: u64,
}

pub(super) async fn delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<VersionForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let ws = WorkspaceId::parse(&id)?;
    let path = SecretPath::parse(&f.path)?;
    kv::delete(
        &st.svc,
        &u.actor(&req),
        &ws,
        &path,
        Versions::These(vec![f.version]),
    )?;
    Ok(redirect(&notice_url(&base(&ws), SecretsNotice::Deleted)))
}

pub(super) async fn undelete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<VersionForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let ws = WorkspaceId::parse(&id)?;
    let path = SecretPath::parse(&f.path)?;
    kv::undelete(&st.svc, &u.actor(&req), &ws, &path, vec![f.version])?;
    Ok(redirect(&notice_url(&base(&ws), SecretsNotice::Undeleted)))
}

#[derive(Deserialize)]
pub(super) struct VersionQuery {
    path: String,
    version: u64,
}

/// Destroying cannot be undone: a confirmation page first.
pub(super) async fn destroy_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<VersionQuery>,
) -> PageResult {
    let ws = WorkspaceId::parse(&id)?;
    let path = SecretPath::parse(&q.path)?;
    kv::may_destroy(&st.svc, &u.actor(&req), &ws, &path)?;
    let action = format!(
        "{}/destroy?path={}&version={}",
        base(&ws),
        crate::web::html::enc(path.as_str()),
        q.version
    );
    let p = ConfirmPage {
        nav: nav(&u, "workspaces"),
        title: format!("Destroy version {} of {}", q.version, path.as_str()),
        message: "Destroying removes this version's value for good: it cannot be undeleted or read again. The version stays listed as destroyed.".into(),
        action,
        button: "Destroy".into(),
        cancel: base(&ws),
    };
    render(StatusCode::OK, &p)
}

pub(super) async fn destroy(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<VersionQuery>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let ws = WorkspaceId::parse(&id)?;
    let path = SecretPath::parse(&q.path)?;
    kv::destroy(&st.svc, &u.actor(&req), &ws, &path, vec![q.version])?;
    Ok(redirect(&notice_url(&base(&ws), SecretsNotice::Destroyed)))
}

/// Shows one version's value, to a holder of `secrets:read` (audited by
/// the domain before the value leaves it); the answer is never cached.
pub(super) async fn reveal(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<VersionForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let ws = WorkspaceId::parse(&id)?;
    let path = SecretPath::parse(&f.path)?;
    let (view, out) = kv::reveal(&st.svc, &u.actor(&req), &ws, &path, Some(f.version))?;
    let mut p = from_view(&u, &ws, view);
    match out {
        ReadOutcome::Found { data, metadata } => {
            p.revealed = Some(Revealed {
                path: path.as_str().to_string(),
                version: metadata.version,
                json: serde_json::to_string_pretty(&data)
                    .map_err(|e| Error::internal_caused("secret data", e))?,
            });
        }
        ReadOutcome::Gone(_) | ReadOutcome::Missing => {
            p.error = Some(
                "That version is deleted, destroyed or gone: there is no value to show.".into(),
            );
        }
    }
    let mut r = render(StatusCode::OK, &p)?;
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}
