//! My account: the account page's password change and session list.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde::Deserialize;

use crate::authn::{self, password::Password};
use crate::error::Error;
use crate::users;
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, resumed_form, source};
use crate::web::html::{
    CsrfForm, PageResult, ResumedQuery, account_page, confirmed, redirect, render_resumed,
};
use crate::web::notice::{AccountNotice, Notice, notice_text, notice_url};

// ---------------------------------------------------------------- my account

pub(super) async fn account(
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<Notice<AccountNotice>>,
    r: web::Query<ResumedQuery>,
) -> PageResult {
    let resumed = resumed_form(&st, &u, r.resumed.as_deref());
    render_resumed(
        &account_page(&st, &u, notice_text(q.notice), None)?,
        resumed.as_ref(),
    )
}

#[derive(Deserialize)]
pub(super) struct ChangePasswordForm {
    current_password: Password,
    password: Password,
    password_confirm: Password,
    csrf_token: String,
}

pub(super) async fn account_password(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ChangePasswordForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let f = f.into_inner();
    let result = async {
        confirmed(&f.password, &f.password_confirm)?;
        users::change_password(
            &st.svc,
            &u.actor(&req),
            &f.current_password,
            f.password.clone(),
            Some(&u.session_hash),
        )
        .await
    }
    .await;
    match result {
        Ok(()) => Ok(redirect(&notice_url(
            "/admin/account",
            AccountNotice::Password,
        ))),
        Err(e @ Error::Invalid { .. }) => crate::web::html::render_failed(
            StatusCode::BAD_REQUEST,
            &account_page(&st, &u, None, Some(crate::web::html::words(&e)))?,
            &req,
            &e,
            None,
        ),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn end_session(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    authn::end_session(&st.svc, &u.user, &id, &source(&req))?;
    Ok(redirect(&notice_url(
        "/admin/account",
        AccountNotice::Ended,
    )))
}

pub(super) async fn end_other_sessions(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    authn::end_other_sessions(&st.svc, &u.actor(&req), &u.session_hash)?;
    Ok(redirect(&notice_url(
        "/admin/account",
        AccountNotice::EndedOthers,
    )))
}
