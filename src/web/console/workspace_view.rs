//! The one workspace page, in tabs (`?tab=`: members, roles and groups, API
//! apps and keys, service accounts, widget keys, settings), and what its forms
//! share: re-rendering after a change on the tab the form was on, the
//! recent-sign-in gate for new credentials (which keeps the form), the
//! copy-once panel with how to use the secret, and repeated form fields.
//! Used by `workspaces`, `members` and `clients`.

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
use crate::web::html::{Nav, PageResult, nav, redirect, render_failed, words};

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

/// A credential's scope boxes: the catalogue's, then its narrowed scopes
/// (`transit:decrypt:conversations`), ticked, so saving the form keeps them.
fn scope_checks(on: &[String]) -> Vec<Check> {
    let mut names: Vec<&str> = catalogue().collect();
    names.extend(
        on.iter()
            .map(String::as_str)
            .filter(|s| Permission::parse(s).is_none()),
    );
    checks(names.into_iter().map(|s| (s, s)), on)
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

/// The page's tabs: (id for `?tab=`, label).
pub(super) const TABS: [(&str, &str); 6] = [
    ("members", "Members"),
    ("roles", "Roles and groups"),
    ("apps", "API apps and keys"),
    ("accounts", "Service accounts"),
    ("widgets", "Widget keys"),
    ("settings", "Settings"),
];

/// The tab a workspace form's path belongs to (where its answer goes back to).
pub(super) fn tab_of_path(path: &str) -> &'static str {
    let has = |p: &str| path.contains(p);
    if has("/apps") {
        "apps"
    } else if has("/service-accounts") {
        "accounts"
    } else if has("/widget-keys") {
        "widgets"
    } else if has("/roles") || has("/groups") {
        "roles"
    } else if has("/rename") || has("/session") {
        "settings"
    } else {
        "members"
    }
}

/// How to use a secret just shown: filled in with this installation's URLs.
pub(super) struct Usage {
    /// "api_key", "client_secret" or "widget_key".
    pub(super) kind: &'static str,
    pub(super) base: String,
    /// An API key's example scope and workspace (`scope=…&workspace=…`).
    pub(super) query: String,
    /// A client secret's client id.
    pub(super) client_id: String,
}

impl Usage {
    /// From the secret's own prefix and the page's label.
    pub(super) fn of(st: &AppState, p: &WorkspacePage, label: &str, secret: &str) -> Usage {
        let kind = if secret.starts_with(creds::CLIENT_SECRET_PREFIX) {
            "client_secret"
        } else if secret.starts_with(creds::WIDGET_KEY_PREFIX) {
            "widget_key"
        } else {
            "api_key"
        };
        let hint = creds::hint(secret);
        let scope = p
            .apps
            .iter()
            .find(|a| a.keys.iter().any(|k| k.hint == hint))
            .and_then(|a| a.scopes.split(' ').next().map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "read:agents".into());
        Usage {
            kind,
            base: st.svc.public_url().trim_end_matches('/').to_string(),
            query: format!("scope={scope}&workspace={}", p.ws.id),
            client_id: label
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|w| w.starts_with("sa_"))
                .unwrap_or("CLIENT_ID")
                .to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "workspace.html")]
pub(super) struct WorkspacePage {
    pub(super) nav: Nav,
    /// The tab shown (one of `TABS`), and the tabs this user may open.
    pub(super) tab: &'static str,
    pub(super) tabs: Vec<(&'static str, &'static str)>,
    /// A platform admin who is not a member: offered to join.
    pub(super) offer_join: bool,
    /// Said after a creation ("API app “ci” created …").
    pub(super) notice: Option<String>,
    pub(super) usage: Option<Usage>,
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
                checks: scope_checks(&a.scopes),
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
                    checks: scope_checks(&s.scopes),
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
    let tabs: Vec<(&'static str, &'static str)> = TABS
        .iter()
        .copied()
        .filter(|(t, _)| match *t {
            "members" | "roles" => can_users,
            "apps" | "accounts" | "widgets" => can_credentials,
            _ => can_users || p.is_platform_admin(),
        })
        .collect();
    let offer_join = p.is_platform_admin() && !members.iter().any(|m| m.id == u.user.id.as_str());
    Ok(WorkspacePage {
        nav: nav(u, "workspaces"),
        tab: tabs.first().map_or("settings", |(t, _)| *t),
        tabs,
        offer_join,
        notice: None,
        usage: None,
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
impl WorkspacePage {
    /// Shows `tab` when this user may open it (else the first they may).
    pub(super) fn select(&mut self, tab: &str) {
        if let Some((t, _)) = self.tabs.iter().find(|(t, _)| *t == tab) {
            self.tab = t;
        }
    }
}

/// Redirects to the workspace page on the tab of the form (a new secret
/// rides along once, held in memory for this session only, so a reload never
/// re-posts the form and the secret is never shown twice), or re-renders it
/// with an error.
pub(super) fn after(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    id: &str,
    r: Result<Option<(String, String)>, Error>,
    posted: &[(String, String)],
) -> PageResult {
    let tab = tab_of_path(req.path());
    match r {
        Ok(None) => Ok(redirect(&format!("/admin/workspaces/{id}?tab={tab}"))),
        Ok(Some(secret)) => {
            let handle = st.secrets_once.put(&u.session_hash, secret, st.svc.now())?;
            Ok(redirect(&format!(
                "/admin/workspaces/{id}?tab={tab}&shown={handle}"
            )))
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_) | Error::NotFound(_))) => {
            // The form that failed comes back as it was typed, the error
            // beside its field.
            let mut p = page(st, req, u, id)?;
            p.select(tab);
            p.error = Some(words(&e));
            let status = if matches!(e, Error::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            render_failed(status, &p, req, &e, Some(posted))
        }
        Err(e) => Err(e.into()),
    }
}

/// Creating a credential needs a recent sign-in: else the Confirm-it's-you
/// page, which says what for, keeps the form (`fields`, without secrets) and
/// completes it once confirmed, back on this workspace's tab.
pub(super) fn fresh_sign_in(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    id: &str,
    purpose: &str,
    fields: &[(String, String)],
) -> Result<Option<actix_web::HttpResponse>, Error> {
    crate::web::extract::reauth_gate_for(
        st,
        u,
        &format!("/admin/workspaces/{id}?tab={}", tab_of_path(req.path())),
        crate::web::KeptForm {
            action: req.path().to_string(),
            purpose: purpose.to_string(),
            fields: fields.to_vec(),
        },
    )
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

    /// Every field as posted: to give a failed form back, and to keep it
    /// across "Confirm it's you" (which drops secrets).
    pub(super) fn pairs(&self) -> &[(String, String)] {
        &self.0
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

    /// A credential's scopes: the ticked boxes and the narrowed scopes typed
    /// in `scope_more` (`transit:decrypt:conversations secrets:read:webhooks/`).
    pub(super) fn scopes(&self) -> Vec<String> {
        let mut v = self.all("scope");
        v.extend(self.list("scope_more"));
        v
    }

    pub(super) fn ip_mode(&self) -> Result<creds::IpMode, Error> {
        match self.one("ip_mode") {
            "" | "block" => Ok(creds::IpMode::Block),
            "warn" => Ok(creds::IpMode::Warn),
            _ => Err(Error::invalid("ip_mode", "choose block or warn")),
        }
    }
}
