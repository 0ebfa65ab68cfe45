//! The one workspace page (name, members, roles, groups, API apps and keys,
//! service accounts, widget keys) and what its forms share: re-rendering
//! after a change, the recent-sign-in gate for new credentials, and repeated
//! form fields. Used by `workspaces`, `members` and `clients`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use crate::access::credentials as creds;
use crate::access::workspaces as wss;
use crate::access::{BuiltinRole, Permission};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::{self, UserId};
use crate::principal::WorkspaceId;
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{Nav, PageResult, nav, redirect, render};

/// A checkbox: its value, its label, and whether it starts ticked.
pub(super) struct Check {
    pub(super) value: String,
    pub(super) label: String,
    pub(super) on: bool,
}

pub(super) fn checks<'a>(
    all: impl Iterator<Item = (&'a str, &'a str)>,
    on: &[String],
) -> Vec<Check> {
    all.map(|(value, label)| Check {
        value: value.to_string(),
        label: label.to_string(),
        on: on.iter().any(|x| x == value),
    })
    .collect()
}

pub(super) struct MemberRow {
    pub(super) id: String,
    pub(super) email: String,
    pub(super) roles: String,
}

pub(super) struct RoleRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) permissions: String,
    pub(super) checks: Vec<Check>,
}

pub(super) struct GroupRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) roles: String,
    pub(super) members: String,
    pub(super) role_checks: Vec<Check>,
    pub(super) member_checks: Vec<Check>,
}

pub(super) struct KeyRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) hint: String,
    pub(super) created: String,
    pub(super) last_used: String,
}

pub(super) struct AppRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) scopes: String,
    pub(super) checks: Vec<Check>,
    pub(super) keys: Vec<KeyRow>,
}

pub(super) struct SaRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) scopes: String,
    pub(super) ip: String,
    pub(super) allowlist: String,
    pub(super) warn: bool,
    /// Disabled: it gets no token; the page offers to enable it.
    pub(super) disabled: bool,
    pub(super) checks: Vec<Check>,
}

pub(super) struct WidgetRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) bot: String,
    pub(super) origins: String,
    pub(super) hint: String,
    pub(super) created: String,
}

#[derive(Template)]
#[template(path = "workspace.html")]
pub(super) struct WorkspacePage {
    pub(super) nav: Nav,
    pub(super) ws: wss::Workspace,
    pub(super) members: Vec<MemberRow>,
    pub(super) custom_roles: Vec<RoleRow>,
    pub(super) groups: Vec<GroupRow>,
    pub(super) apps: Vec<AppRow>,
    pub(super) accounts: Vec<SaRow>,
    pub(super) widgets: Vec<WidgetRow>,
    /// Every role a member or group can be given here: (id, name).
    pub(super) roles: Vec<(String, String)>,
    /// The catalogue's workspace permissions (scopes), unticked.
    pub(super) scopes: Vec<Check>,
    pub(super) can_users: bool,
    pub(super) can_credentials: bool,
    pub(super) can_delete: bool,
    /// The workspace's own session limits as typed ("" for the installation's).
    pub(super) idle_minutes: String,
    pub(super) absolute_hours: String,
    /// The installation's, for comparison.
    pub(super) default_idle_minutes: i64,
    pub(super) default_absolute_hours: i64,
    /// A secret just made: shown this once.
    pub(super) secret: Option<(String, String)>,
    pub(super) error: Option<String>,
}

pub(super) fn catalogue() -> impl Iterator<Item = &'static str> {
    Permission::all()
        .filter(|p| !p.platform_only())
        .map(|p| p.as_str())
}

pub(super) fn page(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    id: &str,
) -> Result<WorkspacePage, Error> {
    let actor = u.actor(req);
    let p = &actor.principal;
    let ws = wss::show(&st.svc, &actor, &WorkspaceId::parse(id)?)?;
    let res = crate::access::Resource::Workspace(&ws.id);
    let can = |perm| crate::access::decide(&st.svc, p, perm, res).map(|d| d.allow);
    let can_users = can(Permission::ManageUsers)?;
    let can_credentials = can(Permission::ManageCredentials)?;
    let mut roles: Vec<(String, String)> = BuiltinRole::ALL
        .iter()
        .skip(1)
        .map(|r| (r.id().to_string(), r.name().to_string()))
        .collect();
    let (mut members, mut custom_roles, mut groups) = (Vec::new(), Vec::new(), Vec::new());
    if can_users {
        let custom = wss::roles(&st.svc, p, Some(&ws.id))?;
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
        let mut ms: Vec<(UserId, String, Vec<String>)> = wss::members(&st.svc, &actor, &ws.id)?
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
        groups = wss::groups(&st.svc, p, Some(&ws.id))?
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
        for a in creds::apps(&st.svc, p)?
            .into_iter()
            .filter(|a| a.workspace == ws.id)
        {
            let keys = creds::keys(&st.svc, &actor, &a.id)?
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
        accounts = creds::service_accounts(&st.svc, p)?
            .into_iter()
            .filter(|s| s.workspace.as_ref() == Some(&ws.id))
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
                    disabled: s.disabled,
                    id: s.id,
                    name: s.name,
                    description: s.description,
                    scopes: s.scopes.join(" "),
                }
            })
            .collect();
        widgets = creds::widget_keys(&st.svc, p)?
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
/// Redirects to the workspace page (a new secret rides along once, held in
/// memory for this session only, so a reload never re-posts the form and the
/// secret is never shown twice), or re-renders it with an error.
pub(super) fn after(
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

/// Creating a credential needs a recent sign-in: else the Confirm-it's-you
/// page, which comes back to this workspace.
pub(super) fn fresh_sign_in(
    st: &AppState,
    u: &ConsoleUser,
    id: &str,
) -> Result<Option<actix_web::HttpResponse>, Error> {
    crate::web::extract::reauth_gate(st, u, &format!("/admin/workspaces/{id}"))
}

/// A posted form with repeated fields (`scope=a&scope=b`), kept as pairs.
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(super) fn new(
        body: web::Form<Vec<(String, String)>>,
        u: &ConsoleUser,
    ) -> Result<Fields, Error> {
        let f = Fields(body.into_inner());
        u.check_csrf(f.one("csrf_token"))?;
        Ok(f)
    }

    /// The first value of `k`, or "" when the form has none.
    pub(super) fn one(&self, k: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `k`, in order.
    pub(super) fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A free-text list: entries split on white space and commas.
    pub(super) fn list(&self, k: &str) -> Vec<String> {
        self.one(k)
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(super) fn ip_mode(&self) -> Result<creds::IpMode, Error> {
        match self.one("ip_mode") {
            "" | "block" => Ok(creds::IpMode::Block),
            "warn" => Ok(creds::IpMode::Warn),
            _ => Err(Error::invalid("ip_mode", "choose block or warn")),
        }
    }
}
