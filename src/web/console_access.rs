//! Console pages for access control: the workspaces a user may see, and one
//! workspace's members, API apps with their keys (shown once at creation,
//! deleted after a confirmation that warns about recent use) and service
//! accounts. Every change goes through the same `access` functions as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::access::credentials as creds;
use crate::access::workspaces as wss;
use crate::access::{BuiltinRole, Permission};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::{self, Email};
use crate::web::AppState;
use crate::web::auth::{ConsoleUser, source};
use crate::web::console::{ConfirmPage, CsrfForm, Nav, PageResult, nav, redirect, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/workspaces", web::get().to(list))
        .route("/admin/workspaces", web::post().to(create))
        .route("/admin/workspaces/{id}", web::get().to(show))
        .route(
            "/admin/workspaces/{id}/delete",
            web::get().to(delete_confirm),
        )
        .route("/admin/workspaces/{id}/delete", web::post().to(delete))
        .route("/admin/workspaces/{id}/members", web::post().to(add_member))
        .route(
            "/admin/workspaces/{id}/users",
            web::post().to(create_member),
        )
        .route("/admin/workspaces/{id}/apps", web::post().to(create_app))
        .route(
            "/admin/workspaces/{id}/apps/{app}/keys",
            web::post().to(create_key),
        )
        .route(
            "/admin/workspaces/{id}/apps/{app}/keys/{key}/delete",
            web::get().to(key_delete_confirm),
        )
        .route(
            "/admin/workspaces/{id}/apps/{app}/keys/{key}/delete",
            web::post().to(key_delete),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts",
            web::post().to(create_sa),
        );
}

#[derive(Template)]
#[template(path = "workspaces.html")]
struct ListPage {
    nav: Nav,
    rows: Vec<wss::Workspace>,
    can_create: bool,
    error: Option<String>,
}

async fn list(st: web::Data<AppState>, u: ConsoleUser) -> PageResult {
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
struct NameForm {
    csrf_token: String,
    name: String,
}

async fn create(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<NameForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let p = u.principal();
    match wss::create(&st.svc, &p, &source(&req), &f.name) {
        Ok(w) => Ok(redirect(&format!("/admin/workspaces/{}", w.id))),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ListPage {
                nav: nav(&u, "workspaces"),
                rows: wss::list(&st.svc, &p)?,
                can_create: true,
                error: Some(e.public_message()),
            },
        ),
        Err(e) => Err(e.into()),
    }
}

struct MemberRow {
    email: String,
    roles: String,
}

struct KeyRow {
    id: String,
    name: String,
    hint: String,
    created: String,
    last_used: String,
}

struct AppRow {
    id: String,
    name: String,
    scopes: String,
    keys: Vec<KeyRow>,
}

struct SaRow {
    id: String,
    name: String,
    scopes: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "workspace.html")]
struct WorkspacePage {
    nav: Nav,
    ws: wss::Workspace,
    members: Vec<MemberRow>,
    apps: Vec<AppRow>,
    accounts: Vec<SaRow>,
    roles: Vec<(&'static str, &'static str)>,
    scopes: Vec<&'static str>,
    can_users: bool,
    can_credentials: bool,
    can_delete: bool,
    /// A secret just made: shown this once.
    secret: Option<(String, String)>,
    error: Option<String>,
}

fn page(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    id: &str,
) -> Result<WorkspacePage, Error> {
    let p = u.principal();
    let src = source(req);
    let ws = wss::show(&st.svc, &p, &src, id)?;
    let res = crate::access::Resource::Workspace(&ws.id);
    let can = |perm| crate::access::decide(&st.svc, &p, perm, res).map(|d| d.allow);
    let can_users = can(Permission::ManageUsers)?;
    let can_credentials = can(Permission::ManageCredentials)?;
    let members = if can_users {
        wss::members(&st.svc, &p, &src, &ws.id)?
            .into_iter()
            .map(|m| MemberRow {
                email: identity::get_cached(&st.svc, &m.user)
                    .map(|u| u.email.as_str().to_string())
                    .unwrap_or_else(|_| m.user.as_str().to_string()),
                roles: m.roles.join(", "),
            })
            .collect()
    } else {
        Vec::new()
    };
    let now = st.svc.now();
    let mut apps = Vec::new();
    let mut accounts = Vec::new();
    if can_credentials {
        for a in creds::apps(&st.svc, &p)?
            .into_iter()
            .filter(|a| a.workspace == ws.id)
        {
            let keys = creds::keys(&st.svc, &p, &src, &a.id)?
                .into_iter()
                .map(|(k, used)| KeyRow {
                    id: k.id,
                    name: k.name,
                    hint: k.hint,
                    created: rfc3339(k.created_at),
                    last_used: match used {
                        Some(u) if now - u.at < 86_400 => format!("{} (last 24 h)", rfc3339(u.at)),
                        Some(u) => rfc3339(u.at),
                        None => "never".into(),
                    },
                })
                .collect();
            apps.push(AppRow {
                id: a.id,
                name: a.name,
                scopes: a.scopes.join(" "),
                keys,
            });
        }
        accounts = creds::service_accounts(&st.svc, &p)?
            .into_iter()
            .filter(|s| s.workspace.as_deref() == Some(ws.id.as_str()))
            .map(|s| SaRow {
                id: s.id,
                name: s.name,
                scopes: s.scopes.join(" "),
                ip: if s.ip_allowlist.is_empty() {
                    "any address".into()
                } else {
                    format!(
                        "{} ({})",
                        s.ip_allowlist.join(", "),
                        if s.ip_mode == creds::IpMode::Block {
                            "block"
                        } else {
                            "warn"
                        }
                    )
                },
            })
            .collect();
    }
    Ok(WorkspacePage {
        nav: nav(u, "workspaces"),
        can_delete: p.is_platform_admin(),
        ws,
        members,
        apps,
        accounts,
        roles: BuiltinRole::ALL
            .iter()
            .skip(1)
            .map(|r| (r.id(), r.name()))
            .collect(),
        scopes: Permission::all()
            .filter(|p| !p.platform_only())
            .map(|p| p.as_str())
            .collect(),
        can_users,
        can_credentials,
        secret: None,
        error: None,
    })
}

#[derive(Deserialize)]
struct ShowQuery {
    /// The one-time handle of a secret just made (see `after`).
    shown: Option<String>,
}

async fn show(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> PageResult {
    let mut p = page(&st, &req, &u, &id)?;
    if let Some(h) = q.shown.as_deref() {
        p.secret = st.secrets_once.take(&u.session_hash, h, st.svc.now());
    }
    render(StatusCode::OK, &p)
}

/// Redirects to the workspace page (a new secret rides along once, held in
/// memory for this session only, so a reload never re-posts the form and the
/// secret is never shown twice), or re-renders it with an error.
fn after(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    id: &str,
    r: Result<Option<(String, String)>, Error>,
) -> PageResult {
    match r {
        Ok(None) => Ok(redirect(&format!("/admin/workspaces/{id}"))),
        Ok(Some(secret)) => {
            let handle = st.secrets_once.put(&u.session_hash, secret, st.svc.now())?;
            Ok(redirect(&format!("/admin/workspaces/{id}?shown={handle}")))
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_) | Error::NotFound(_))) => {
            let mut p = page(st, req, u, id)?;
            p.error = Some(e.public_message());
            render(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct MemberForm {
    csrf_token: String,
    email: String,
    role: String,
}

#[derive(Deserialize)]
struct NewMemberForm {
    csrf_token: String,
    email: String,
    #[serde(default)]
    name: String,
    password: crate::authn::password::Password,
    role: String,
}

/// A workspace admin creates a new user straight into the workspace.
async fn create_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<NewMemberForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let f = f.into_inner();
    let r = match Email::parse(&f.email) {
        Ok(email) => wss::create_member(
            &st.svc,
            &u.principal(),
            &source(&req),
            &id,
            identity::NewUser {
                email,
                name: f.name,
                password: f.password,
                role: identity::Role::User,
            },
            std::slice::from_ref(&f.role),
        )
        .await
        .map(|_| None),
        Err(e) => Err(e),
    };
    after(&st, &req, &u, &id, r)
}

async fn add_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<MemberForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let p = u.principal();
    let r = (|| {
        let email = Email::parse(&f.email)?;
        crate::access::authorize(
            &st.svc,
            &p,
            Permission::ManageUsers,
            crate::access::Resource::Workspace(crate::access::parse_id("ws_", &id, "workspace")?),
            &source(&req),
        )?;
        let user = identity::find_by_email(&st.svc, &st.svc.store.read()?, &email)?
            .ok_or(Error::NotFound("user"))?;
        wss::set_member(
            &st.svc,
            &p,
            &source(&req),
            &id,
            &user.id,
            std::slice::from_ref(&f.role),
        )?;
        Ok(None)
    })();
    after(&st, &req, &u, &id, r)
}

struct CredForm {
    csrf_token: String,
    name: String,
    scope: Vec<String>,
}

/// Repeated checkboxes (`scope=a&scope=b`) arrive as a list of pairs.
fn cred_form(pairs: Vec<(String, String)>) -> CredForm {
    let mut f = CredForm {
        csrf_token: String::new(),
        name: String::new(),
        scope: Vec::new(),
    };
    for (k, v) in pairs {
        match k.as_str() {
            "csrf_token" => f.csrf_token = v,
            "name" => f.name = v,
            "scope" => f.scope.push(v),
            _ => {}
        }
    }
    f
}

async fn create_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = cred_form(body.into_inner());
    u.check_csrf(&f.csrf_token)?;
    let r = creds::create_app(
        &st.svc,
        &u.principal(),
        &source(&req),
        &id,
        &f.name,
        &f.scope,
    )
    .map(|_| None);
    after(&st, &req, &u, &id, r)
}

async fn create_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = cred_form(body.into_inner());
    u.check_csrf(&f.csrf_token)?;
    let r = creds::create_service_account(
        &st.svc,
        &u.principal(),
        &source(&req),
        creds::NewServiceAccount {
            workspace: Some(&id),
            name: &f.name,
            description: None,
            scopes: &f.scope,
            ip_allowlist: &[],
            ip_mode: creds::IpMode::Block,
        },
    )
    .map(|(sa, secret)| {
        Some((
            format!("Client secret for {} (client id {})", sa.name, sa.id),
            secret,
        ))
    });
    after(&st, &req, &u, &id, r)
}

#[derive(Deserialize)]
struct KeyForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
}

async fn create_key(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    f: web::Form<KeyForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, app) = path.into_inner();
    let r = creds::create_key(
        &st.svc,
        &u.principal(),
        &source(&req),
        &app,
        Some(&f.name),
        None,
    )
    .map(|(k, secret)| {
        Some((
            format!("API key {}", if k.name.is_empty() { k.id } else { k.name }),
            secret,
        ))
    });
    after(&st, &req, &u, &id, r)
}

async fn key_delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String, String)>,
) -> PageResult {
    let (id, app, key) = path.into_inner();
    let now = st.svc.now();
    let keys = creds::keys(&st.svc, &u.principal(), &source(&req), &app)?;
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
            cancel: format!("/admin/workspaces/{id}"),
        },
    )
}

async fn key_delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String, String)>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, app, key) = path.into_inner();
    creds::delete_key(&st.svc, &u.principal(), &source(&req), &app, &key)?;
    Ok(redirect(&format!("/admin/workspaces/{id}")))
}

async fn delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
) -> PageResult {
    let w = wss::show(&st.svc, &u.principal(), &source(&req), &id)?;
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
            cancel: format!("/admin/workspaces/{}", w.id),
        },
    )
}

async fn delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    wss::delete(&st.svc, &u.principal(), &source(&req), &id)?;
    Ok(redirect("/admin/workspaces"))
}
