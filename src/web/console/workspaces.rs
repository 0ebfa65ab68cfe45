//! Console pages for access control: the workspaces a user may see, and one
//! workspace's settings on one page — its name, members, custom roles,
//! groups, API apps with their keys, service accounts and widget keys.
//! Secrets are shown once; deletions go through a confirmation that says what
//! stops working. Every change goes through the same `access` functions as
//! the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::access::credentials as creds;
use crate::access::workspaces as wss;
use crate::access::{BuiltinRole, Permission};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::{self, Email, UserId};
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, source};
use crate::web::html::{ConfirmPage, CsrfForm, Nav, PageResult, nav, redirect, render};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/workspaces", web::get().to(list))
        .route("/admin/workspaces", web::post().to(create))
        .route("/admin/workspaces/{id}", web::get().to(show))
        .route("/admin/workspaces/{id}/rename", web::post().to(rename))
        .route(
            "/admin/workspaces/{id}/session",
            web::post().to(session_limits),
        )
        .route(
            "/admin/workspaces/{id}/delete",
            web::get().to(delete_confirm),
        )
        .route("/admin/workspaces/{id}/delete", web::post().to(delete))
        .route("/admin/workspaces/{id}/members", web::post().to(add_member))
        .route(
            "/admin/workspaces/{id}/members/{user}/remove",
            web::post().to(remove_member),
        )
        .route(
            "/admin/workspaces/{id}/users",
            web::post().to(create_member),
        )
        .route("/admin/workspaces/{id}/roles", web::post().to(save_role))
        .route(
            "/admin/workspaces/{id}/roles/{item}",
            web::post().to(save_role),
        )
        .route("/admin/workspaces/{id}/groups", web::post().to(save_group))
        .route(
            "/admin/workspaces/{id}/groups/{item}",
            web::post().to(save_group),
        )
        .route("/admin/workspaces/{id}/apps", web::post().to(create_app))
        .route(
            "/admin/workspaces/{id}/apps/{item}",
            web::post().to(update_app),
        )
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
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}",
            web::post().to(update_sa),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}/secret",
            web::get().to(sa_secret_confirm),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}/secret",
            web::post().to(sa_secret),
        )
        .route(
            "/admin/workspaces/{id}/widget-keys",
            web::post().to(create_widget),
        )
        .route(
            "/admin/workspaces/{id}/{kind}/{item}/delete",
            web::get().to(item_delete_confirm),
        )
        .route(
            "/admin/workspaces/{id}/{kind}/{item}/delete",
            web::post().to(item_delete),
        );
}

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
}

pub(super) async fn create(
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

/// A checkbox: its value, its label, and whether it starts ticked.
pub(super) struct Check {
    value: String,
    label: String,
    on: bool,
}

fn checks<'a>(all: impl Iterator<Item = (&'a str, &'a str)>, on: &[String]) -> Vec<Check> {
    all.map(|(value, label)| Check {
        value: value.to_string(),
        label: label.to_string(),
        on: on.iter().any(|x| x == value),
    })
    .collect()
}

pub(super) struct MemberRow {
    id: String,
    email: String,
    roles: String,
}

pub(super) struct RoleRow {
    id: String,
    name: String,
    description: String,
    permissions: String,
    checks: Vec<Check>,
}

pub(super) struct GroupRow {
    id: String,
    name: String,
    roles: String,
    members: String,
    role_checks: Vec<Check>,
    member_checks: Vec<Check>,
}

pub(super) struct KeyRow {
    id: String,
    name: String,
    hint: String,
    created: String,
    last_used: String,
}

pub(super) struct AppRow {
    id: String,
    name: String,
    scopes: String,
    checks: Vec<Check>,
    keys: Vec<KeyRow>,
}

pub(super) struct SaRow {
    id: String,
    name: String,
    description: String,
    scopes: String,
    ip: String,
    allowlist: String,
    warn: bool,
    checks: Vec<Check>,
}

pub(super) struct WidgetRow {
    id: String,
    name: String,
    bot: String,
    origins: String,
    hint: String,
    created: String,
}

#[derive(Template)]
#[template(path = "workspace.html")]
pub(super) struct WorkspacePage {
    nav: Nav,
    ws: wss::Workspace,
    members: Vec<MemberRow>,
    custom_roles: Vec<RoleRow>,
    groups: Vec<GroupRow>,
    apps: Vec<AppRow>,
    accounts: Vec<SaRow>,
    widgets: Vec<WidgetRow>,
    /// Every role a member or group can be given here: (id, name).
    roles: Vec<(String, String)>,
    /// The catalogue's workspace permissions (scopes), unticked.
    scopes: Vec<Check>,
    can_users: bool,
    can_credentials: bool,
    can_delete: bool,
    /// The workspace's own session limits as typed ("" for the installation's).
    idle_minutes: String,
    absolute_hours: String,
    /// The installation's, for comparison.
    default_idle_minutes: i64,
    default_absolute_hours: i64,
    /// A secret just made: shown this once.
    secret: Option<(String, String)>,
    error: Option<String>,
}

fn catalogue() -> impl Iterator<Item = &'static str> {
    Permission::all()
        .filter(|p| !p.platform_only())
        .map(|p| p.as_str())
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
    let mut roles: Vec<(String, String)> = BuiltinRole::ALL
        .iter()
        .skip(1)
        .map(|r| (r.id().to_string(), r.name().to_string()))
        .collect();
    let (mut members, mut custom_roles, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    if can_users {
        let custom = wss::roles(&st.svc, &p, Some(&ws.id))?;
        roles.extend(custom.iter().map(|r| (r.id.clone(), r.name.clone())));
        let role_name = |id: &String| {
            roles
                .iter()
                .find(|(r, _)| r == id)
                .map_or_else(|| id.clone(), |(_, n)| n.clone())
        };
        let names = |ids: &[String]| ids.iter().map(role_name).collect::<Vec<_>>().join(", ");
        let email = |id: &UserId| {
            identity::get_cached(&st.svc, id)
                .map(|u| u.email.as_str().to_string())
                .unwrap_or_else(|_| id.as_str().to_string())
        };
        let mut ms: Vec<(UserId, String, Vec<String>)> = wss::members(&st.svc, &p, &src, &ws.id)?
            .into_iter()
            .map(|m| (m.user.clone(), email(&m.user), m.roles))
            .collect();
        ms.sort_by(|a, b| a.1.cmp(&b.1));
        members = ms
            .iter()
            .map(|(id, email, r)| MemberRow {
                id: id.as_str().to_string(),
                email: email.clone(),
                roles: names(r),
            })
            .collect();
        custom_roles = custom
            .into_iter()
            .map(|r| RoleRow {
                checks: checks(catalogue().map(|s| (s, s)), &r.permissions),
                permissions: r.permissions.join(" "),
                id: r.id,
                name: r.name,
                description: r.description,
            })
            .collect();
        groups = wss::groups(&st.svc, &p, Some(&ws.id))?
            .into_iter()
            .map(|g| {
                let ids: Vec<String> = g.members.iter().map(|m| m.as_str().to_string()).collect();
                GroupRow {
                    roles: names(&g.roles),
                    members: g.members.iter().map(email).collect::<Vec<_>>().join(", "),
                    role_checks: checks(
                        roles.iter().map(|(i, n)| (i.as_str(), n.as_str())),
                        &g.roles,
                    ),
                    member_checks: checks(
                        ms.iter().map(|(i, e, _)| (i.as_str(), e.as_str())),
                        &ids,
                    ),
                    id: g.id,
                    name: g.name,
                }
            })
            .collect();
    }
    let now = st.svc.now();
    let (mut apps, mut accounts, mut widgets) = (Vec::new(), Vec::new(), Vec::new());
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
                checks: checks(catalogue().map(|s| (s, s)), &a.scopes),
                id: a.id,
                name: a.name,
                scopes: a.scopes.join(" "),
                keys,
            });
        }
        accounts = creds::service_accounts(&st.svc, &p)?
            .into_iter()
            .filter(|s| s.workspace.as_deref() == Some(ws.id.as_str()))
            .map(|s| {
                let warn = s.ip_mode == creds::IpMode::Warn;
                SaRow {
                    checks: checks(catalogue().map(|x| (x, x)), &s.scopes),
                    ip: if s.ip_allowlist.is_empty() {
                        "any address".into()
                    } else {
                        format!(
                            "{} ({})",
                            s.ip_allowlist.join(", "),
                            if warn { "warn" } else { "block" }
                        )
                    },
                    allowlist: s.ip_allowlist.join("\n"),
                    warn,
                    id: s.id,
                    name: s.name,
                    description: s.description,
                    scopes: s.scopes.join(" "),
                }
            })
            .collect();
        widgets = creds::widget_keys(&st.svc, &p)?
            .into_iter()
            .filter(|w| w.workspace == ws.id)
            .map(|w| WidgetRow {
                id: w.id,
                name: w.name,
                bot: w.bot,
                origins: w.origins.join(" "),
                hint: w.hint,
                created: rfc3339(w.created_at),
            })
            .collect();
    }
    let installation = crate::policy::current(&st.svc)?.session;
    Ok(WorkspacePage {
        nav: nav(u, "workspaces"),
        can_delete: p.is_platform_admin(),
        idle_minutes: ws
            .session
            .idle_timeout_secs
            .map(|s| (s / 60).to_string())
            .unwrap_or_default(),
        absolute_hours: ws
            .session
            .absolute_lifetime_secs
            .map(|s| (s / 3600).to_string())
            .unwrap_or_default(),
        default_idle_minutes: installation.idle_timeout_secs / 60,
        default_absolute_hours: installation.absolute_lifetime_secs / 3600,
        ws,
        members,
        custom_roles,
        groups,
        apps,
        accounts,
        widgets,
        roles,
        scopes: checks(catalogue().map(|s| (s, s)), &[]),
        can_users,
        can_credentials,
        secret: None,
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct ShowQuery {
    /// The one-time handle of a secret just made (see `after`).
    shown: Option<String>,
}

pub(super) async fn show(
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
pub(super) struct MemberForm {
    csrf_token: String,
    email: String,
    role: String,
}

#[derive(Deserialize)]
pub(super) struct NewMemberForm {
    csrf_token: String,
    email: String,
    #[serde(default)]
    name: String,
    password: crate::authn::password::Password,
    role: String,
}

/// A workspace admin creates a new user straight into the workspace.
pub(super) async fn create_member(
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

pub(super) async fn add_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<MemberForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let p = u.principal();
    let r = Email::parse(&f.email)
        .and_then(|email| {
            wss::add_member_by_email(
                &st.svc,
                &p,
                &source(&req),
                &id,
                &email,
                std::slice::from_ref(&f.role),
            )
        })
        .map(|_| None);
    after(&st, &req, &u, &id, r)
}

/// Creating a credential needs a recent sign-in: else the Confirm-it's-you
/// page, which comes back to this workspace.
fn fresh_sign_in(
    st: &AppState,
    u: &ConsoleUser,
    id: &str,
) -> Result<Option<actix_web::HttpResponse>, Error> {
    crate::web::extract::reauth_gate(st, u, &format!("/admin/workspaces/{id}"))
}

/// A posted form with repeated fields (`scope=a&scope=b`), kept as pairs.
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    fn new(body: web::Form<Vec<(String, String)>>, u: &ConsoleUser) -> Result<Fields, Error> {
        let f = Fields(body.into_inner());
        u.check_csrf(f.one("csrf_token"))?;
        Ok(f)
    }

    /// The first value of `k`, or "" when the form has none.
    fn one(&self, k: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `k`, in order.
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A free-text list: entries split on white space and commas.
    fn list(&self, k: &str) -> Vec<String> {
        self.one(k)
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn ip_mode(&self) -> Result<creds::IpMode, Error> {
        match self.one("ip_mode") {
            "" | "block" => Ok(creds::IpMode::Block),
            "warn" => Ok(creds::IpMode::Warn),
            _ => Err(Error::invalid("ip_mode", "choose block or warn")),
        }
    }
}

pub(super) async fn rename(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let r = wss::rename(&st.svc, &u.principal(), &source(&req), &id, f.one("name")).map(|_| None);
    after(&st, &req, &u, &id, r)
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
        wss::set_session_limits(&st.svc, &u.principal(), &source(&req), &id, limits)
    })()
    .map(|_| None);
    after(&st, &req, &u, &id, r)
}

pub(super) async fn remove_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, user) = path.into_inner();
    let r = UserId::parse(&user).and_then(|user| {
        wss::remove_member(&st.svc, &u.principal(), &source(&req), &id, &user).map(|_| None)
    });
    after(&st, &req, &u, &id, r)
}

/// Creates a custom role (no `item`) or edits one.
pub(super) async fn save_role(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let id = req.match_info().get("id").unwrap_or_default().to_string();
    let item = req.match_info().get("item").map(str::to_string);
    let (p, src) = (u.principal(), source(&req));
    let perms = f.all("permission");
    let r = match item {
        None => wss::create_role(
            &st.svc,
            &p,
            &src,
            &id,
            f.one("name"),
            f.one("description"),
            &perms,
        ),
        Some(item) => wss::update_role(&st.svc, &p, &src, &item, Some(f.one("name")), Some(&perms)),
    }
    .map(|_| None);
    after(&st, &req, &u, &id, r)
}

/// Creates a group (no `item`) or edits its name, roles and members.
pub(super) async fn save_group(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let id = req.match_info().get("id").unwrap_or_default().to_string();
    let item = req.match_info().get("item").map(str::to_string);
    let r = f
        .all("member")
        .iter()
        .map(|m| UserId::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|members| {
            wss::save_group(
                &st.svc,
                &u.principal(),
                &source(&req),
                item.as_deref(),
                &id,
                Some(f.one("name")),
                Some(&f.all("role")),
                Some(&members),
            )
        })
        .map(|_| None);
    after(&st, &req, &u, &id, r)
}

pub(super) async fn create_app(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    let r = creds::create_app(
        &st.svc,
        &u.principal(),
        &source(&req),
        &id,
        f.one("name"),
        &f.all("scope"),
    )
    .map(|_| None);
    after(&st, &req, &u, &id, r)
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
        &u.principal(),
        &source(&req),
        &item,
        Some(f.one("name")),
        Some(&f.all("scope")),
    )
    .map(|_| None);
    after(&st, &req, &u, &id, r)
}

pub(super) async fn create_sa(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    if let Some(r) = fresh_sign_in(&st, &u, &id)? {
        return Ok(r);
    }
    let r = f.ip_mode().and_then(|ip_mode| {
        creds::create_service_account(
            &st.svc,
            &u.principal(),
            &source(&req),
            creds::NewServiceAccount {
                workspace: Some(&id),
                name: f.one("name"),
                description: Some(f.one("description")),
                scopes: &f.all("scope"),
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
    after(&st, &req, &u, &id, r)
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
            &u.principal(),
            &source(&req),
            &item,
            creds::ServiceAccountUpdate {
                name: Some(f.one("name")),
                description: Some(f.one("description")),
                scopes: Some(&f.all("scope")),
                ip_allowlist: Some(&f.list("ip_allowlist")),
                ip_mode: Some(ip_mode),
            },
        )
        .map(|_| None)
    });
    after(&st, &req, &u, &id, r)
}

pub(super) async fn sa_secret_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (id, item) = path.into_inner();
    let sa = creds::get_service_account(&st.svc, &u.principal(), &source(&req), &item)?;
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
            cancel: format!("/admin/workspaces/{id}"),
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
    if let Some(r) = fresh_sign_in(&st, &u, &id)? {
        return Ok(r);
    }
    let r = creds::rotate_service_account_secret(&st.svc, &u.principal(), &source(&req), &item)
        .map(|secret| Some((format!("New client secret for {item}"), secret)));
    after(&st, &req, &u, &id, r)
}

pub(super) async fn create_widget(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields::new(body, &u)?;
    if let Some(r) = fresh_sign_in(&st, &u, &id)? {
        return Ok(r);
    }
    let r = creds::create_widget_key(
        &st.svc,
        &u.principal(),
        &source(&req),
        &id,
        f.one("name"),
        f.one("bot"),
        &f.list("origins"),
    )
    .map(|(w, secret)| Some((format!("Widget key for bot {}", w.bot), secret)));
    after(&st, &req, &u, &id, r)
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
    let (p, src) = (u.principal(), source(&req));
    let (title, message) = match Kind::parse(&kind)? {
        Kind::Role => {
            let r = wss::get_role(&st.svc, &p, &src, &item)?;
            (
                "Delete role",
                format!(
                    "Delete the role \u{201c}{}\u{201d}? Members and groups that have it lose its permissions at once.",
                    r.name
                ),
            )
        }
        Kind::Group => {
            let g = wss::get_group(&st.svc, &p, &src, &item)?;
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
            let a = creds::get_app(&st.svc, &p, &src, &item)?;
            let keys = creds::keys(&st.svc, &p, &src, &a.id)?;
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
            let sa = creds::get_service_account(&st.svc, &p, &src, &item)?;
            (
                "Delete service account",
                format!(
                    "Delete the service account \u{201c}{}\u{201d} ({})? Its secret and every token it holds are refused from the next call on.",
                    sa.name, sa.id
                ),
            )
        }
        Kind::Widget => {
            let w = creds::widget_keys(&st.svc, &p)?
                .into_iter()
                .find(|w| w.id == item && w.workspace == id)
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
            cancel: format!("/admin/workspaces/{id}"),
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
    let (p, src) = (u.principal(), source(&req));
    match Kind::parse(&kind)? {
        Kind::Role => wss::delete_role(&st.svc, &p, &src, &item)?,
        Kind::Group => wss::delete_group(&st.svc, &p, &src, &item)?,
        Kind::App => creds::delete_app(&st.svc, &p, &src, &item)?,
        Kind::ServiceAccount => creds::delete_service_account(&st.svc, &p, &src, &item)?,
        Kind::Widget => creds::delete_widget_key(&st.svc, &p, &src, &item)?,
    }
    Ok(redirect(&format!("/admin/workspaces/{id}")))
}

#[derive(Deserialize)]
pub(super) struct KeyForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
}

pub(super) async fn create_key(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    path: web::Path<(String, String)>,
    f: web::Form<KeyForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (id, app) = path.into_inner();
    if let Some(r) = fresh_sign_in(&st, &u, &id)? {
        return Ok(r);
    }
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

pub(super) async fn key_delete_confirm(
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

pub(super) async fn key_delete(
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

pub(super) async fn delete_confirm(
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

pub(super) async fn delete(
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
