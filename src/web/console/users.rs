//! Admin pages for users: the list, creating one, and one user's admin
//! actions together (detail, disable/enable, unlock, delete, password, MFA
//! reset, end sessions).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::access::Actor;
use crate::authn::{self, password::Password};
use crate::error::Error;
use crate::identity::{Email, NewUser, Role, UserId};
use crate::users::{self, UserUpdate};
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{
    ConfirmPage, CsrfForm, Nav, PER_PAGE, PageResult, UserRow, is_htmx, nav, redirect, render,
    render_failed,
};
use crate::web::notice::{Notice, PageNotice, UserNotice, UsersNotice, notice_text, notice_url};

// ---------------------------------------------------------------- users

#[derive(Template)]
#[template(path = "users.html")]
pub(super) struct UsersPage {
    nav: Nav,
    rows: Vec<UserRow>,
    q: String,
    page: usize,
    pages: usize,
    total: usize,
    notice: Option<String>,
    error: Option<String>,
    form_email: String,
    form_name: String,
    form_role: String,
}

#[derive(Template)]
#[template(path = "users_table.html")]
pub(super) struct UsersTable {
    rows: Vec<UserRow>,
    q: String,
    page: usize,
    pages: usize,
    total: usize,
}

#[derive(Deserialize)]
pub(super) struct UsersQuery {
    q: Option<String>,
    page: Option<usize>,
    #[serde(default, deserialize_with = "crate::web::notice::lenient")]
    notice: Option<UsersNotice>,
}

fn users_view(
    st: &AppState,
    actor: &Actor,
    q: &str,
    page: usize,
) -> Result<(Vec<UserRow>, usize, usize, usize), Error> {
    let page = page.max(1);
    let (list, total) =
        authn::queries::users_for(&st.svc, actor, q, || Ok(((page - 1) * PER_PAGE, PER_PAGE)))?;
    let pages = total.div_ceil(PER_PAGE).max(1);
    let rows = list
        .iter()
        .map(|(u, s)| UserRow::new(u, s.last_sign_in).locked(s.locked_until))
        .collect();
    Ok((rows, total, page, pages))
}

pub(super) async fn users(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<UsersQuery>,
) -> PageResult {
    let search = q.q.clone().unwrap_or_default();
    let (rows, total, page, pages) = users_view(&st, &u.actor(&req), &search, q.page.unwrap_or(1))?;
    if is_htmx(&req) {
        return render(
            StatusCode::OK,
            &UsersTable {
                rows,
                q: search,
                page,
                pages,
                total,
            },
        );
    }
    let p = UsersPage {
        nav: nav(&u, "users"),
        rows,
        q: search,
        page,
        pages,
        total,
        notice: notice_text(q.notice),
        error: None,
        form_email: String::new(),
        form_name: String::new(),
        form_role: "user".into(),
    };
    render(StatusCode::OK, &p)
}

#[derive(Deserialize)]
pub(super) struct CreateUserForm {
    email: String,
    name: Option<String>,
    password: Password,
    role: Option<String>,
    csrf_token: String,
}

pub(super) async fn users_create(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    form: web::Form<CreateUserForm>,
) -> PageResult {
    u.check_csrf(&form.csrf_token)?;
    let form = form.into_inner();
    let result = async {
        let new = NewUser {
            email: Email::parse(&form.email)?,
            name: form.name.clone().unwrap_or_default(),
            password: form.password.clone(),
            role: Role::parse(form.role.as_deref().unwrap_or("user"))?,
        };
        users::create(&st.svc, &u.actor(&req), new).await
    }
    .await;
    match result {
        Ok(_) => Ok(redirect(&notice_url("/admin/users", UsersNotice::Created))),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let (rows, total, page, pages) = users_view(&st, &u.actor(&req), "", 1)?;
            let p = UsersPage {
                nav: nav(&u, "users"),
                rows,
                q: String::new(),
                page,
                pages,
                total,
                notice: None,
                error: Some(crate::web::html::words(&e)),
                form_email: form.email,
                form_name: form.name.unwrap_or_default(),
                form_role: form.role.unwrap_or_else(|| "user".into()),
            };
            let status = if matches!(e, Error::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            render_failed(status, &p, &req, &e, None)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "user.html")]
pub(super) struct UserPage {
    nav: Nav,
    u: UserRow,
    notice: Option<String>,
    error: Option<String>,
    sessions: usize,
    /// The signed-in admin's own page: resetting one's own password or lock
    /// here is refused (the account page changes one's password).
    is_self: bool,
    /// The user's SSO links, each marked when it needs re-approval.
    links: Vec<LinkRow>,
}

/// One SSO link as the user page lists it.
pub(super) struct LinkRow {
    connection: String,
    connection_name: String,
    via: &'static str,
    made_by: String,
    made_at: String,
    needs_reapproval: bool,
    reference: String,
}

impl LinkRow {
    fn new(l: crate::sso::LinkInfo) -> LinkRow {
        LinkRow {
            via: match l.via {
                "admin" => "linked by an admin",
                "jit" => "created just in time",
                _ => "made by an older version",
            },
            made_at: l
                .made_at
                .map_or_else(|| "unknown".into(), crate::clock::rfc3339),
            connection: l.connection,
            connection_name: l.connection_name,
            made_by: l.made_by,
            needs_reapproval: l.needs_reapproval,
            reference: l.reference,
        }
    }
}

fn user_page(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<UserPage, Error> {
    let actor = u.actor(req);
    let (target, status, sessions) = authn::queries::user_page_for(&st.svc, &actor, id)?;
    let links = crate::sso::user_links(&st.svc, &actor, &target.id)?
        .into_iter()
        .map(LinkRow::new)
        .collect();
    Ok(UserPage {
        links,
        nav: nav(u, "users"),
        is_self: target.id == u.user.id,
        u: UserRow::new(&target, status.last_sign_in).locked(status.locked_until),
        notice,
        error,
        sessions,
    })
}

/// The user page again after a refused form, its error beside the field and
/// (when given) the form as it was typed.
fn user_page_failed(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    uid: &UserId,
    e: &Error,
    posted: Option<&[(String, String)]>,
) -> PageResult {
    render_failed(
        StatusCode::BAD_REQUEST,
        &user_page(
            st,
            req,
            u,
            uid.as_str(),
            None,
            Some(crate::web::html::words(e)),
        )?,
        req,
        e,
        posted,
    )
}

pub(super) async fn user_detail(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<Notice<UserNotice>>,
) -> PageResult {
    let p = user_page(&st, &req, &u, &id, notice_text(q.notice), None)?;
    render(StatusCode::OK, &p)
}

#[derive(Deserialize)]
pub(super) struct EditForm {
    name: String,
    role: Option<String>,
    csrf_token: String,
}

/// Edits a user's name and role. A new role decides what the account may
/// do, so it needs a recent sign-in (the confirm-it's-you page comes back
/// here); the owner's role stays.
pub(super) async fn user_edit(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<EditForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let uid = UserId::parse(&id)?;
    let f = f.into_inner();
    let posted = [
        ("name".to_string(), f.name.clone()),
        ("role".to_string(), f.role.clone().unwrap_or_default()),
    ];
    let result = async {
        let current = crate::identity::find(&st.svc, &uid)?;
        let role = match f.role.as_deref() {
            Some(r) if !r.is_empty() && r != current.role.as_str() => Some(Role::parse(r)?),
            _ => None,
        };
        if role.is_some()
            && let Some(r) = crate::web::extract::reauth_gate(
                &st,
                &u,
                &format!("/admin/users/{}", uid.as_str()),
            )?
        {
            return Ok(Some(r));
        }
        let up = UserUpdate {
            name: (f.name != current.name).then(|| f.name.clone()),
            role,
            ..Default::default()
        };
        users::update(&st.svc, &u.actor(&req), &uid, up).map(|_| None)
    }
    .await;
    match result {
        Ok(Some(gate)) => Ok(gate),
        Ok(None) => Ok(redirect(&notice_url(
            &format!("/admin/users/{}", uid.as_str()),
            UserNotice::Saved,
        ))),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            user_page_failed(&st, &req, &u, &uid, &e, Some(&posted))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn set_disabled(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: &str,
    token: &str,
    disabled: bool,
) -> PageResult {
    u.check_csrf(token)?;
    let uid = UserId::parse(id)?;
    let up = UserUpdate {
        disabled: Some(disabled),
        ..Default::default()
    };
    match users::update(&st.svc, &u.actor(&req), &uid, up) {
        Ok(_) => Ok(redirect(&notice_url(
            &format!("/admin/users/{id}"),
            if disabled {
                UserNotice::Disabled
            } else {
                UserNotice::Enabled
            },
        ))),
        Err(e @ Error::Conflict(_)) => render(
            StatusCode::CONFLICT,
            &user_page(
                &st,
                &req,
                &u,
                uid.as_str(),
                None,
                Some(crate::web::html::words(&e)),
            )?,
        ),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn user_disable(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    set_disabled(req, st, u, &id, &f.csrf_token, true).await
}

pub(super) async fn user_enable(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    set_disabled(req, st, u, &id, &f.csrf_token, false).await
}

pub(super) async fn user_unlock(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let uid = UserId::parse(&id)?;
    authn::lockout::unlock(&st.svc, &u.actor(&req), &uid)?;
    Ok(redirect(&format!(
        "/admin/users/{}?notice={}",
        uid.as_str(),
        UserNotice::Unlocked.code()
    )))
}

pub(super) async fn user_delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
) -> PageResult {
    let (target, _) = authn::queries::user_for(&st.svc, &u.actor(&req), &id)?;
    let uid = &target.id;
    let p = ConfirmPage {
        nav: nav(&u, "users"),
        title: "Delete user".into(),
        message: format!(
            "Delete {}? Their sessions and tokens end at once, and the account cannot be restored (the audit log keeps its history).",
            target.email
        ),
        action: format!("/admin/users/{}/delete", uid.as_str()),
        button: "Delete user".into(),
        cancel: format!("/admin/users/{}", uid.as_str()),
    };
    render(StatusCode::OK, &p)
}

pub(super) async fn user_delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let uid = UserId::parse(&id)?;
    match users::delete(&st.svc, &u.actor(&req), &uid) {
        Ok(()) => Ok(redirect(&notice_url("/admin/users", UsersNotice::Deleted))),
        Err(e @ Error::Conflict(_)) => render(
            StatusCode::CONFLICT,
            &user_page(
                &st,
                &req,
                &u,
                uid.as_str(),
                None,
                Some(crate::web::html::words(&e)),
            )?,
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    password: Password,
    /// The "must change password at next sign-in" box: sent only when ticked.
    #[serde(default)]
    temporary: Option<String>,
    csrf_token: String,
}

pub(super) async fn user_password(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<PasswordForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let uid = UserId::parse(&id)?;
    let f = f.into_inner();
    let notice = if f.temporary.is_some() {
        UserNotice::ResetTemporary
    } else {
        UserNotice::Reset
    };
    match users::set_password(
        &st.svc,
        &u.actor(&req),
        &uid,
        f.password,
        "user.password_reset",
        f.temporary.is_some(),
    )
    .await
    {
        Ok(()) => Ok(redirect(&format!(
            "/admin/users/{}?notice={}",
            uid.as_str(),
            notice.code()
        ))),
        Err(e @ Error::Invalid { .. }) => user_page_failed(&st, &req, &u, &uid, &e, None),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn user_mfa_reset(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let uid = UserId::parse(&id)?;
    authn::mfa::reset(&st.svc, &u.actor(&req), &uid)?;
    Ok(redirect(&format!(
        "/admin/users/{}?notice={}",
        uid.as_str(),
        UserNotice::MfaReset.code()
    )))
}

pub(super) async fn user_end_sessions(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let uid = UserId::parse(&id)?;
    authn::admin_end_user_sessions(&st.svc, &u.actor(&req), &uid)?;
    Ok(redirect(&format!(
        "/admin/users/{}?notice={}",
        uid.as_str(),
        UserNotice::SessionsEnded.code()
    )))
}

#[derive(Deserialize)]
pub(super) struct ReapproveForm {
    connection: String,
    reference: String,
    csrf_token: String,
}

/// Re-approves an SSO link that needs it: the admin links the identity
/// again on their own authority. A recent sign-in first (the confirmation
/// comes back to the user page).
pub(super) async fn user_link_reapprove(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<ReapproveForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let uid = UserId::parse(&id)?;
    let back = format!("/admin/users/{}", uid.as_str());
    if let Some(gate) = crate::web::extract::reauth_gate(&st, &u, &back)? {
        return Ok(gate);
    }
    crate::sso::reapprove_link(&st.svc, &u.actor(&req), &uid, &f.connection, &f.reference)?;
    Ok(redirect(&notice_url(&back, UserNotice::LinkReapproved)))
}
