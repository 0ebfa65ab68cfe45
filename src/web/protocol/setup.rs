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
use crate::web::error::{PageError, html_error};
use crate::web::extract::{self as wauth, source, with_pre_cookie};
use crate::web::html::{PageResult, confirmed, redirect, render};

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
    authn::onetime::check_now(&st.svc, &token).map_err(|e| {
        PageError(match e {
            Error::Unauthenticated(m) => Error::Forbidden(m),
            other => other,
        })
    })?;
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
        authn::create_owner(
            &st.svc,
            Some(&form.token),
            email,
            form.name.clone().unwrap_or_default(),
            form.password.clone(),
            &source(&req),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => Ok(redirect(&crate::web::notice::notice_url(
            "/login",
            crate::web::notice::LoginNotice::Created,
        ))),
        Err(Error::Invalid { field, message }) => {
            let (pre, cookie) = wauth::pre_cookie(&req)?;
            let page = SetupPage {
                csrf: wauth::csrf_for_pre(&st.svc, &pre),
                token: form.token,
                email: form.email,
                name: form.name.unwrap_or_default(),
                error: Some(format!("{field}: {message}")),
            };
            Ok(with_pre_cookie(
                render(StatusCode::BAD_REQUEST, &page)?,
                cookie,
            ))
        }
        Err(Error::Unauthenticated(m)) => Err(Error::Forbidden(m).into()),
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
    if authn::onetime::check_now(&st.svc, &token).is_err() {
        return Ok(html_error(
            StatusCode::FORBIDDEN,
            "This link is invalid, already used or expired. Run `gatehouse recover EMAIL` for a new one.",
        ));
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
        Err(Error::Invalid { field, message }) => {
            let (pre, cookie) = wauth::pre_cookie(&req)?;
            let page = RecoverPage {
                csrf: wauth::csrf_for_pre(&st.svc, &pre),
                token: form.token,
                error: Some(format!("{field}: {message}")),
            };
            Ok(with_pre_cookie(
                render(StatusCode::BAD_REQUEST, &page)?,
                cookie,
            ))
        }
        Err(Error::Unauthenticated(m)) => Err(Error::Forbidden(m).into()),
        Err(e) => Err(e.into()),
    }
}
