//! Confirm it's you: the MFA-required page and re-authentication.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::authn::{self, mfa::MfaMethod, password::Password};
use crate::error::Error;
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, source};
use crate::web::html::{
    LoginQuery, MethodOption, Nav, PageResult, SendForm, method_options, nav, redirect, render,
    safe_rd,
};

// ---------------------------------------------------------------- policy, re-authentication

#[derive(Template)]
#[template(path = "mfa_required.html")]
pub(super) struct MfaRequiredPage {
    nav: Nav,
}

pub(super) async fn mfa_required_page(u: ConsoleUser) -> PageResult {
    render(
        StatusCode::OK,
        &MfaRequiredPage {
            nav: nav(&u, "account"),
        },
    )
}

#[derive(Template)]
#[template(path = "reauth.html")]
pub(super) struct ReauthPage {
    nav: Nav,
    rd: String,
    options: Vec<MethodOption>,
    sendable: Vec<MethodOption>,
    notice: Option<String>,
    error: Option<String>,
}

fn reauth_view(
    st: &AppState,
    u: &ConsoleUser,
    rd: String,
    selected: Option<MfaMethod>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ReauthPage, Error> {
    let methods = authn::queries::mfa_summary(&st.svc, &u.user.id)?.methods;
    let (options, sendable) = method_options(&methods, selected);
    Ok(ReauthPage {
        nav: nav(u, "account"),
        rd,
        options,
        sendable,
        notice,
        error,
    })
}

pub(super) async fn reauth_page(
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<LoginQuery>,
) -> PageResult {
    render(
        StatusCode::OK,
        &reauth_view(
            &st,
            &u,
            safe_rd(q.rd.as_deref()),
            Some(MfaMethod::Totp),
            None,
            None,
        )?,
    )
}

#[derive(Deserialize)]
pub(super) struct ReauthForm {
    password: Password,
    method: Option<String>,
    code: Option<String>,
    csrf_token: String,
    rd: Option<String>,
}

pub(super) async fn reauth_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ReauthForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let rd = safe_rd(f.rd.as_deref());
    let reauthenticated = match MfaMethod::parse_opt(f.method.as_deref()) {
        Ok(method) => {
            authn::reauthenticate(
                &st.svc,
                &u.user,
                &u.session_hash,
                &f.password,
                method,
                f.code.as_deref(),
                &source(&req),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match reauthenticated {
        Ok(()) => Ok(redirect(&rd)),
        Err(
            e @ (Error::Invalid { .. }
            | Error::InvalidCode
            | Error::ProofRefused
            | Error::Forbidden(_)),
        ) => {
            let p = reauth_view(
                &st,
                &u,
                rd,
                MfaMethod::from_wire(f.method.as_deref().unwrap_or("totp")),
                None,
                Some(crate::web::html::words(&e)),
            )?;
            render(StatusCode::UNAUTHORIZED, &p)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn reauth_send(
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SendForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let rd = safe_rd(f.rd.as_deref());
    let method = MfaMethod::from_wire(&f.method);
    let sent = match method {
        Some(m) => authn::mfa::send_reauth_code(&st.svc, &u.user, m).await,
        None => Err(authn::mfa::not_one_of_yours()),
    };
    let (notice, error) = match sent {
        Ok(()) => (
            Some(format!(
                "A code was sent by {}.",
                if method == Some(MfaMethod::Sms) {
                    "SMS"
                } else {
                    "e-mail"
                }
            )),
            None,
        ),
        Err(e @ (Error::Conflict(_) | Error::Invalid { .. } | Error::Forbidden(_))) => {
            (None, Some(crate::web::html::words(&e)))
        }
        Err(e) => return Err(e.into()),
    };
    render(
        StatusCode::OK,
        &reauth_view(&st, &u, rd, method, notice, error)?,
    )
}
