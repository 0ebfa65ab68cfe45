//! A workspace's people: adding members (existing or new users), removing
//! them, and its custom roles and groups.

use actix_web::{HttpRequest, web};
use serde::Deserialize;

use super::workspace_view::{Fields, after};
use crate::access::workspaces as wss;
use crate::identity::{self, Email, UserId};
use crate::principal::WorkspaceId;
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{CsrfForm, PageResult};

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
    let posted = [
        ("email".to_string(), f.email.clone()),
        ("name".to_string(), f.name.clone()),
        ("role".to_string(), f.role.clone()),
    ];
    let r = match Email::parse(&f.email).and_then(|e| Ok((e, WorkspaceId::parse(&id)?))) {
        Ok((email, ws)) => wss::create_member(
            &st.svc,
            &u.actor(&req),
            &ws,
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
    after(&st, &req, &u, &id, r, &posted)
}

pub(super) async fn add_member(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<MemberForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let r = Email::parse(&f.email)
        .and_then(|email| {
            wss::add_member_by_email(
                &st.svc,
                &u.actor(&req),
                &WorkspaceId::parse(&id)?,
                &email,
                std::slice::from_ref(&f.role),
            )
        })
        .map(|_| None);
    after(
        &st,
        &req,
        &u,
        &id,
        r,
        &[
            ("email".into(), f.email.clone()),
            ("role".into(), f.role.clone()),
        ],
    )
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
    let r = UserId::parse(&user)
        .and_then(|user| {
            wss::remove_member(&st.svc, &u.actor(&req), &WorkspaceId::parse(&id)?, &user)
        })
        .map(|_| None);
    after(&st, &req, &u, &id, r, &[])
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
    let actor = u.actor(&req);
    let perms = f.all("permission");
    let r = match item {
        None => WorkspaceId::parse(&id).and_then(|ws| {
            wss::create_role(
                &st.svc,
                &actor,
                &ws,
                f.one("name"),
                f.one("description"),
                &perms,
            )
        }),
        Some(item) => wss::update_role(&st.svc, &actor, &item, Some(f.one("name")), Some(&perms)),
    }
    .map(|_| None);
    after(&st, &req, &u, &id, r, f.pairs())
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
                &u.actor(&req),
                item.as_deref(),
                WorkspaceId::parse(&id).ok().as_ref(),
                Some(f.one("name")),
                Some(&f.all("role")),
                Some(&members),
            )
        })
        .map(|_| None);
    after(&st, &req, &u, &id, r, f.pairs())
}
