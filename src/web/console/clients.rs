//! A workspace's clients: API apps and their keys, service accounts and
//! their secrets, widget keys, and the confirmations that say what stops
//! working before a deletion. Secrets are shown once.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};

use super::workspace_view::{Fields, after, fresh_sign_in, tab_of_path};
use crate::access::credentials as creds;
use crate::access::workspaces as wss;
use crate::clock::rfc3339;
use crate::error::Error;
use crate::principal::WorkspaceId;
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{ConfirmPage, CsrfForm, PageResult, nav, redirect, render};

pub(super) async fn create_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let r = WorkspaceId::parse(&id)
        .and_then(|ws| creds::create_app(&st.svc, &u.actor(&req), &ws, f.one("name"), &f.scopes()));
    match r {
        // The page says it was made, on the tab where its keys are made.
        Ok(a) => Ok(redirect(&format!(
            "/admin/workspaces/{id}?tab=apps&created={}",
            a.id
        ))),
        Err(e) => after(&st, &req, &u, &id, Err(e), f.pairs()),
    }
}

/// Renames an app or changes its scopes; its keys follow at once.
pub(super) async fn update_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let (id, item) = path.into_inner();
    let r = creds::update_app(
        &st.svc,
        &u.actor(&req),
        &item,
        Some(f.one("name")),
        Some(&f.scopes()),
    )
    .map(|_| None);
    after(&st, &req, &u, &id, r, f.pairs())
}

pub(super) async fn create_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    if let Some(r) = fresh_sign_in(&st, &req, &u, &id, "to create a service account", f.pairs())? {
        return Ok(r);
    }
    let r = f.ip_mode().and_then(|ip_mode| {
        creds::create_service_account(
            &st.svc,
            &u.actor(&req),
            creds::NewServiceAccount {
                workspace: Some(&WorkspaceId::parse(&id)?),
                name: f.one("name"),
                description: Some(f.one("description")),
                scopes: &f.scopes(),
                ip_allowlist: &f.list("ip_allowlist"),
                ip_mode,
            },
        )
    });
    let r = r.map(|(sa, secret)| {
        Some((
            format!("Client secret for {} (client id {})", sa.name, sa.id),
            secret,
        ))
    });
    after(&st, &req, &u, &id, r, f.pairs())
}

/// Edits an account: description, scopes, allowlist and its mode.
pub(super) async fn update_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let (id, item) = path.into_inner();
    let r = f.ip_mode().and_then(|ip_mode| {
        creds::update_service_account(
            &st.svc,
            &u.actor(&req),
            &item,
            creds::ServiceAccountUpdate {
                name: Some(f.one("name")),
                description: Some(f.one("description")),
                scopes: Some(&f.scopes()),
                ip_allowlist: Some(&f.list("ip_allowlist")),
                ip_mode: Some(ip_mode),
            },
        )
        .map(|_| None)
    });
    after(&st, &req, &u, &id, r, f.pairs())
}

pub(super) async fn sa_secret_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (id, item) = path.into_inner();
    let sa = creds::get_service_account(&st.svc, &u.actor(&req), &item)?;
    render(
        StatusCode::OK,
        &ConfirmPage {
            nav: nav(&u, "workspaces"),
            title: "New client secret".into(),
            message: format!(
                "Replace the client secret of \u{201c}{}\u{201d} ({})? The current secret stops working at once; tokens already issued stay valid until they expire.",
                sa.name, sa.id
            ),
            action: format!("/admin/workspaces/{id}/service-accounts/{item}/secret"),
            button: "Replace secret".into(),
            cancel: format!("/admin/workspaces/{id}?tab=accounts"),
        },
    )
}

pub(super) async fn sa_secret(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, item) = path.into_inner();
    if let Some(r) = fresh_sign_in(
        &st,
        &req,
        &u,
        &id,
        "to replace a service account's secret",
        &[],
    )? {
        return Ok(r);
    }
    let r = creds::rotate_service_account_secret(&st.svc, &u.actor(&req), &item)
        .map(|secret| Some((format!("New client secret for {item}"), secret)));
    after(&st, &req, &u, &id, r, &[])
}

/// Disables a service account: its tokens stop at once, none is issued.
pub(super) async fn sa_disable(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    sa_set_disabled(req, st, u, path, f, true).await
}

/// Enables a disabled service account (its old tokens stay ended).
pub(super) async fn sa_enable(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    sa_set_disabled(req, st, u, path, f, false).await
}

async fn sa_set_disabled(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    f: web::Form<CsrfForm>,
    disabled: bool,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, item) = path.into_inner();
    let purpose = if disabled {
        "to disable a service account"
    } else {
        "to enable a service account"
    };
    if let Some(r) = fresh_sign_in(&st, &req, &u, &id, purpose, &[])? {
        return Ok(r);
    }
    let actor = u.actor(&req);
    let r = if disabled {
        creds::disable_service_account(&st.svc, &actor, &item)
    } else {
        creds::enable_service_account(&st.svc, &actor, &item)
    };
    after(&st, &req, &u, &id, r.map(|_| None), &[])
}

pub(super) async fn create_widget(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    if let Some(r) = fresh_sign_in(&st, &req, &u, &id, "to create a widget key", f.pairs())? {
        return Ok(r);
    }
    let r = WorkspaceId::parse(&id)
        .and_then(|ws| {
            creds::create_widget_key(
                &st.svc,
                &u.actor(&req),
                &ws,
                f.one("name"),
                f.one("bot"),
                &f.list("origins"),
            )
        })
        .map(|(w, secret)| Some((format!("Widget key for bot {}", w.bot), secret)));
    after(&st, &req, &u, &id, r, f.pairs())
}

/// What the generic delete routes can remove.
#[derive(Clone, Copy)]
enum Kind {
    Role,
    Group,
    App,
    ServiceAccount,
    Widget,
}

impl Kind {
    fn parse(s: &str) -> Result<Kind, Error> {
        Ok(match s {
            "roles" => Kind::Role,
            "groups" => Kind::Group,
            "apps" => Kind::App,
            "service-accounts" => Kind::ServiceAccount,
            "widget-keys" => Kind::Widget,
            _ => return Err(Error::NotFound("page")),
        })
    }
}

/// The confirmation for deleting a role, group, app, service account or
/// widget key: it names the item and says what stops working.
pub(super) async fn item_delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String, String)>,
) -> PageResult {
    let (id, kind, item) = path.into_inner();
    let actor = u.actor(&req);
    let (title, message) = match Kind::parse(&kind)? {
        Kind::Role => {
            let r = wss::get_role(&st.svc, &actor, &item)?;
            (
                "Delete role",
                format!(
                    "Delete the role \u{201c}{}\u{201d}? Members and groups that have it lose its permissions at once.",
                    r.name
                ),
            )
        }
        Kind::Group => {
            let g = wss::get_group(&st.svc, &actor, &item)?;
            (
                "Delete group",
                format!(
                    "Delete the group \u{201c}{}\u{201d}? Its {} members lose the group's roles at once.",
                    g.name,
                    g.members.len()
                ),
            )
        }
        Kind::App => {
            let a = creds::get_app(&st.svc, &actor, &item)?;
            let keys = creds::keys(&st.svc, &actor, &a.id)?;
            let now = st.svc.now();
            let recent = keys
                .iter()
                .filter(|(_, used)| used.is_some_and(|u| now - u.at < 86_400))
                .count();
            (
                "Delete API app",
                format!(
                    "{}Delete the API app \u{201c}{}\u{201d} and its {} keys? Every key of it is refused from the next call on.",
                    if recent > 0 {
                        format!("Warning: {recent} of its keys were used in the last 24 hours. ")
                    } else {
                        String::new()
                    },
                    a.name,
                    keys.len()
                ),
            )
        }
        Kind::ServiceAccount => {
            let sa = creds::get_service_account(&st.svc, &actor, &item)?;
            (
                "Delete service account",
                format!(
                    "Delete the service account \u{201c}{}\u{201d} ({})? Its secret and every token it holds are refused from the next call on.",
                    sa.name, sa.id
                ),
            )
        }
        Kind::Widget => {
            let w = creds::widget_keys(&st.svc, &actor.principal)?
                .into_iter()
                .find(|w| w.id == item && w.workspace.as_str() == id.as_str())
                .ok_or(Error::NotFound("widget key"))?;
            (
                "Delete widget key",
                format!(
                    "Delete the widget key {} for bot {}? Chat widgets that use it stop working at once.",
                    w.hint, w.bot
                ),
            )
        }
    };
    render(
        StatusCode::OK,
        &ConfirmPage {
            nav: nav(&u, "workspaces"),
            title: title.into(),
            message,
            action: format!("/admin/workspaces/{id}/{kind}/{item}/delete"),
            button: title.into(),
            cancel: format!("/admin/workspaces/{id}?tab={}", tab_of_path(req.path())),
        },
    )
}

pub(super) async fn item_delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String, String)>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, kind, item) = path.into_inner();
    let actor = u.actor(&req);
    match Kind::parse(&kind)? {
        Kind::Role => wss::delete_role(&st.svc, &actor, &item)?,
        Kind::Group => wss::delete_group(&st.svc, &actor, &item)?,
        Kind::App => creds::delete_app(&st.svc, &actor, &item)?,
        Kind::ServiceAccount => creds::delete_service_account(&st.svc, &actor, &item)?,
        Kind::Widget => creds::delete_widget_key(&st.svc, &actor, &item)?,
    }
    Ok(redirect(&format!(
        "/admin/workspaces/{id}?tab={}",
        tab_of_path(req.path())
    )))
}

pub(super) async fn create_key(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let (id, app) = path.into_inner();
    if let Some(r) = fresh_sign_in(&st, &req, &u, &id, "to create an API key", f.pairs())? {
        return Ok(r);
    }
    let r = creds::create_key(&st.svc, &u.actor(&req), &app, Some(f.one("name")), None).map(
        |(k, secret)| {
            Some((
                format!("API key {}", if k.name.is_empty() { k.id } else { k.name }),
                secret,
            ))
        },
    );
    after(&st, &req, &u, &id, r, f.pairs())
}

pub(super) async fn key_delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String, String)>,
) -> PageResult {
    let (id, app, key) = path.into_inner();
    let now = st.svc.now();
    let keys = creds::keys(&st.svc, &u.actor(&req), &app)?;
    let (k, used) = keys
        .into_iter()
        .find(|(k, _)| k.id == key)
        .ok_or(Error::NotFound("API key"))?;
    let recent = used.is_some_and(|u| now - u.at < 86_400);
    let message = if recent {
        format!(
            "Warning: this key ({}) was used in the last 24 hours, at {}{}. Whatever uses it will be refused from the next call on. Delete it?",
            k.hint,
            used.map(|u| rfc3339(u.at)).unwrap_or_default(),
            used.and_then(|u| u.ip)
                .map(|ip| format!(" from {ip}"))
                .unwrap_or_default()
        )
    } else {
        format!(
            "The key {} will be refused from the next call on. Delete it?",
            k.hint
        )
    };
    render(
        StatusCode::OK,
        &ConfirmPage {
            nav: nav(&u, "workspaces"),
            title: "Delete API key".into(),
            message,
            action: format!("/admin/workspaces/{id}/apps/{app}/keys/{key}/delete"),
            button: "Delete key".into(),
            cancel: format!("/admin/workspaces/{id}?tab=apps"),
        },
    )
}

pub(super) async fn key_delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String, String)>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, app, key) = path.into_inner();
    creds::delete_key(&st.svc, &u.actor(&req), &app, &key)?;
    Ok(redirect(&format!("/admin/workspaces/{id}?tab=apps")))
}
