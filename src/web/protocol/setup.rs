//! First-run setup (/setup) and password recovery (/recover).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::authn::{self, password::Password};
use crate::error::Error;
use crate::identity::Email;
use crate::users;
use crate::web::AppState;
use crate::web::extract::{self as wauth, signed_in, source, with_pre_cookie};
use crate::web::html::{PageResult, confirmed, redirect, render, render_failed, words};

// ---------------------------------------------------------------- setup & recovery

#[derive(Template)]
#[template(path = "setup.html")]
pub(super) struct SetupPage {
    csrf: String,
    token: String,
    email: String,
    name: String,
    error: Option<String>,
}

/// A setup or reset link that no longer works: what to do instead. Once an
/// owner exists a new setup link is refused, so the page says to sign in or
/// to ask for a reset link; before that, to ask for a new setup link.
#[derive(Template)]
#[template(path = "link_gone.html")]
pub(super) struct LinkGonePage {
    title: &'static str,
    message: &'static str,
    owner_exists: bool,
}

fn link_gone(st: &AppState, setup: bool) -> PageResult {
    let owner_exists = authn::queries::owner_exists(&st.svc)?;
    let (title, message) = match (setup, owner_exists) {
        (true, true) => (
            "Setup is complete",
            "This setup link was already used or expired, and the owner account exists.",
        ),
        (true, false) => (
            "This link no longer works",
            "This setup link is invalid, already used or expired.",
        ),
        (false, _) => (
            "This link no longer works",
            "This password-reset link is invalid, already used or expired.",
        ),
    };
    render(
        StatusCode::FORBIDDEN,
        &LinkGonePage {
            title,
            message,
            owner_exists,
        },
    )
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    token: Option<String>,
}

pub(super) async fn setup_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<TokenQuery>,
) -> PageResult {
    let token = q.token.clone().unwrap_or_default();
    match authn::onetime::check_now(&st.svc, &token) {
        Ok(_) => {}
        Err(Error::Unauthenticated(_)) => return link_gone(&st, true),
        Err(e) => return Err(e.into()),
    }
    let (pre, cookie) = wauth::pre_cookie(&req)?;
    let page = SetupPage {
        csrf: wauth::csrf_for_pre(&st.svc, &pre),
        token,
        email: String::new(),
        name: String::new(),
        error: None,
    };
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
pub(super) struct SetupForm {
    token: String,
    email: String,
    name: Option<String>,
    password: Password,
    password_confirm: Password,
    csrf_token: String,
}

pub(super) async fn setup_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<SetupForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let form = form.into_inner();
    let result = async {
        confirmed(&form.password, &form.password_confirm)?;
        let email = Email::parse(&form.email)?;
        authn::setup_owner(
            &st.svc,
            &form.token,
            email,
            form.name.clone().unwrap_or_default(),
            form.password.clone(),
            &source(&req),
        )
        .await
    }
    .await;
    match result {
        // Signed in at once: the owner lands on the console.
        Ok((user, authn::Grant::Session { token, .. })) => {
            signed_in(&req, &st, &user, token, "/admin")
        }
        Ok(_) => Err(Error::internal("setup without a browser session").into()),
        Err(e @ Error::Invalid { .. }) => {
            let (pre, cookie) = wauth::pre_cookie(&req)?;
            let page = SetupPage {
                csrf: wauth::csrf_for_pre(&st.svc, &pre),
                token: form.token,
                email: form.email,
                name: form.name.unwrap_or_default(),
                error: Some(words(&e)),
            };
            Ok(with_pre_cookie(
                render_failed(StatusCode::BAD_REQUEST, &page, &req, &e, None)?,
                cookie,
            ))
        }
        Err(Error::Unauthenticated(_) | Error::Conflict(_)) => link_gone(&st, true),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "recover.html")]
pub(super) struct RecoverPage {
    csrf: String,
    token: String,
    error: Option<String>,
}

pub(super) async fn recover_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<TokenQuery>,
) -> PageResult {
    let token = q.token.clone().unwrap_or_default();
    // Only a recovery link opens this form (not a setup link, not the
    // sign-in's "choose a new password" step).
    if !matches!(
        authn::onetime::check_now(&st.svc, &token),
        Ok(authn::onetime::Purpose::Recover { .. })
    ) {
        return link_gone(&st, false);
    }
    let (pre, cookie) = wauth::pre_cookie(&req)?;
    let page = RecoverPage {
        csrf: wauth::csrf_for_pre(&st.svc, &pre),
        token,
        error: None,
    };
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
pub(super) struct RecoverForm {
    token: String,
    password: Password,
    password_confirm: Password,
    csrf_token: String,
}

pub(super) async fn recover_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<RecoverForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let form = form.into_inner();
    let result = if let Err(e) = confirmed(&form.password, &form.password_confirm) {
        Err(e)
    } else {
        users::recover(&st.svc, &form.token, form.password.clone(), &source(&req)).await
    };
    match result {
        Ok(_) => Ok(redirect(&crate::web::notice::notice_url(
            "/login",
            crate::web::notice::LoginNotice::Recovered,
        ))),
        Err(e @ Error::Invalid { .. }) => {
            let (pre, cookie) = wauth::pre_cookie(&req)?;
            let page = RecoverPage {
                csrf: wauth::csrf_for_pre(&st.svc, &pre),
                token: form.token,
                error: Some(words(&e)),
            };
            Ok(with_pre_cookie(
                render_failed(StatusCode::BAD_REQUEST, &page, &req, &e, None)?,
                cookie,
            ))
        }
        Err(Error::Unauthenticated(_)) => link_gone(&st, false),
        Err(e) => Err(e.into()),
    }
}
