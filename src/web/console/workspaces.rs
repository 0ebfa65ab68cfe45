//! Console pages for workspaces: the list of those a user may see, creating
//! one, showing one, renaming it, its session limits, and deleting it. Every
//! change goes through the same `access` functions as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use super::workspace_view::{Fields, Usage, after, page};
use crate::access::workspaces as wss;
use crate::error::Error;
use crate::principal::WorkspaceId;
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{ConfirmPage, CsrfForm, Nav, PageResult, nav, redirect, render};

#[derive(Template)]
#[template(path = "workspaces.html")]
pub(super) struct ListPage {
    nav: Nav,
    rows: Vec<wss::Workspace>,
    can_create: bool,
    error: Option<String>,
}

pub(super) async fn list(st: web::Data<AppState>, u: ConsoleUser) -> PageResult {
    let p = u.principal();
    let rows = wss::list(&st.svc, &p)?;
    render(
        StatusCode::OK,
        &ListPage {
            nav: nav(&u, "workspaces"),
            rows,
            can_create: p.is_platform_admin(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub(super) struct NameForm {
    csrf_token: String,
    name: String,
    /// "Add me as a Workspace Admin" (ticked by default on the form).
    join: Option<String>,
}

pub(super) async fn create(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<NameForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let p = u.principal();
    let actor = u.actor(&req);
    match wss::create(&st.svc, &actor, &f.name) {
        Ok(w) => {
            // The platform admin who made it may also work in it as a member.
            if f.join.is_some() {
                wss::set_member(
                    &st.svc,
                    &actor,
                    &w.id,
                    &u.user.id,
                    &[crate::access::BuiltinRole::WorkspaceAdmin.id().to_string()],
                )?;
            }
            Ok(redirect(&format!("/admin/workspaces/{}?tab=members", w.id)))
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => crate::web::html::render_failed(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ListPage {
                nav: nav(&u, "workspaces"),
                rows: wss::list(&st.svc, &p)?,
                can_create: true,
                error: Some(crate::web::html::words(&e)),
            },
            &req,
            &e,
            Some(&[("name".to_string(), f.name.clone())]),
        ),
        Err(e) => Err(e.into()),
    }
}
#[derive(Deserialize)]
pub(super) struct ShowQuery {
    /// The one-time handle of a secret just made (see `after`).
    shown: Option<String>,
    /// Which tab to show (see `workspace_view::TABS`).
    tab: Option<String>,
    /// An API app just created: the page says so.
    created: Option<String>,
}

pub(super) async fn show(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> PageResult {
    let mut p = page(&st, &req, &u, &id)?;
    if let Some(t) = q.tab.as_deref() {
        p.select(t);
    }
    if let Some(h) = q.shown.as_deref() {
        p.secret = st.secrets_once.take(&u.session_hash, h, st.svc.now());
        p.usage = p
            .secret
            .as_ref()
            .map(|(label, value)| Usage::of(&st, &p, label, value));
    }
    if let Some(a) = q
        .created
        .as_deref()
        .and_then(|c| p.apps.iter().find(|a| a.id == c))
    {
        p.notice = Some(format!(
            "API app \u{201c}{}\u{201d} created with the scopes {}. Make its first key below with New key.",
            a.name, a.scopes
        ));
    }
    render(StatusCode::OK, &p)
}

pub(super) async fn rename(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let r = WorkspaceId::parse(&id)
        .and_then(|ws| wss::rename(&st.svc, &u.actor(&req), &ws, f.one("name")))
        .map(|_| None);
    after(&st, &req, &u, &id, r, f.pairs())
}

/// Blank for the installation's value, else a whole number of `unit` seconds.
fn limit(f: &Fields, field: &'static str, unit: i64) -> Result<Option<i64>, Error> {
    match f.one(field).trim() {
        "" => Ok(None),
        v => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| Some(n.saturating_mul(unit)))
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    "give a whole number, or leave it empty for the installation's",
                )
            }),
    }
}

pub(super) async fn session_limits(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let r = (|| {
        let limits = wss::SessionLimits {
            idle_timeout_secs: limit(&f, "idle_minutes", 60)?,
            absolute_lifetime_secs: limit(&f, "absolute_hours", 3600)?,
        };
        wss::set_session_limits(&st.svc, &u.actor(&req), &WorkspaceId::parse(&id)?, limits)
    })()
    .map(|_| None);
    after(&st, &req, &u, &id, r, f.pairs())
}
pub(super) async fn delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
) -> PageResult {
    let w = wss::show(&st.svc, &u.actor(&req), &WorkspaceId::parse(&id)?)?;
    render(
        StatusCode::OK,
        &ConfirmPage {
            nav: nav(&u, "workspaces"),
            title: "Delete workspace".into(),
            message: format!(
                "Delete the workspace \u{201c}{}\u{201d} with its members, roles, groups, service accounts, API apps and keys? Every credential of it stops working at once. This cannot be undone.",
                w.name
            ),
            action: format!("/admin/workspaces/{}/delete", w.id),
            button: "Delete workspace".into(),
            cancel: format!("/admin/workspaces/{}?tab=settings", w.id),
        },
    )
}

pub(super) async fn delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    wss::delete(&st.svc, &u.actor(&req), &WorkspaceId::parse(&id)?)?;
    Ok(redirect("/admin/workspaces"))
}
