//! Sign-in pages: /login, the MFA step (/login/mfa), the "choose a new
//! password" step after a temporary password (/login/password) and /logout.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::authn::{self, Channel, Grant, mfa::MfaMethod, password::Password};
use crate::error::Error;
use crate::web::AppState;
use crate::web::extract::{self as wauth, ConsoleUser, signed_in, source, with_pre_cookie};
use crate::web::html::{
    CsrfForm, LoginQuery, MethodOption, PageResult, SendForm, confirmed, enc, method_options,
    redirect, render, render_failed, safe_rd, words,
};

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    csrf: String,
    email: String,
    rd: String,
    rd_enc: String,
    error: Option<String>,
    notice: Option<String>,
    /// Enabled SSO connections: (id, name, protocol).
    sso: Vec<(String, String, &'static str)>,
}

fn login_view(
    st: &AppState,
    pre: &str,
    email: String,
    rd: String,
    error: Option<String>,
    notice: Option<String>,
) -> Result<LoginPage, Error> {
    let sso = crate::sso::sign_in_options(&st.svc)?
        .into_iter()
        .map(|(id, name, p)| (id, name, p.as_str()))
        .collect();
    Ok(LoginPage {
        csrf: wauth::csrf_for_pre(&st.svc, pre),
        email,
        rd_enc: enc(&rd),
        rd,
        error,
        notice,
        sso,
    })
}

pub(super) async fn login_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<LoginQuery>,
) -> PageResult {
    let (pre, cookie) = wauth::pre_cookie(&req)?;
    let page = login_view(
        &st,
        &pre,
        String::new(),
        safe_rd(q.rd.as_deref()),
        None,
        crate::web::notice::notice_text(q.notice),
    )?;
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    email: String,
    password: Password,
    csrf_token: String,
    rd: Option<String>,
}

pub(super) async fn login_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let src = source(&req);
    match authn::login(&st.svc, &form.email, &form.password, &src, Channel::Browser).await {
        Ok((user, Grant::Session { token, .. })) => {
            signed_in(&req, &st, &user, token, &safe_rd(form.rd.as_deref()))
        }
        Ok((_, Grant::Mfa { mfa_token, .. })) => {
            // The half-signed-in state lives only in this short cookie; it
            // opens nothing but /login/mfa.
            let mut resp = redirect(&format!(
                "/login/mfa?rd={}",
                enc(&safe_rd(form.rd.as_deref()))
            ));
            let c = actix_web::cookie::Cookie::build(MFA_COOKIE, mfa_token)
                .path("/login")
                .http_only(true)
                .secure(st.tls)
                .same_site(actix_web::cookie::SameSite::Strict)
                .max_age(actix_web::cookie::time::Duration::seconds(
                    authn::mfa::CHALLENGE_TTL_SECS,
                ))
                .finish();
            let _ = resp.add_cookie(&c);
            Ok(resp)
        }
        Ok((_, Grant::PasswordChange { step_token })) => Ok(to_password_step(
            &st,
            step_token,
            &safe_rd(form.rd.as_deref()),
        )),
        Ok((_, Grant::Tokens(_))) => {
            Err(Error::internal("token grant on the browser channel").into())
        }
        Err(e @ (Error::InvalidCredentials | Error::Forbidden(_))) => {
            let status = if matches!(e, Error::Forbidden(_)) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            let (pre, cookie) = wauth::pre_cookie(&req)?;
            let page = login_view(
                &st,
                &pre,
                form.email.chars().take(254).collect(),
                safe_rd(form.rd.as_deref()),
                Some(crate::web::html::words(&e)),
                None,
            )?;
            Ok(with_pre_cookie(render(status, &page)?, cookie))
        }
        Err(e) => Err(e.into()),
    }
}

const MFA_COOKIE: &str = "gh_mfa";

#[derive(Template)]
#[template(path = "login_mfa.html")]
pub(super) struct MfaPage {
    csrf: String,
    rd: String,
    error: Option<String>,
    notice: Option<String>,
    options: Vec<MethodOption>,
    /// Methods that send a code on request (e-mail, SMS).
    sendable: Vec<MethodOption>,
}

fn mfa_view(
    req: &HttpRequest,
    st: &AppState,
    rd: String,
    error: Option<String>,
    notice: Option<String>,
    selected: Option<MfaMethod>,
) -> Result<(MfaPage, Option<actix_web::cookie::Cookie<'static>>), Error> {
    let methods = match req.cookie(MFA_COOKIE) {
        Some(c) => authn::mfa::challenge_methods(&st.svc, c.value()).unwrap_or_default(),
        None => Vec::new(),
    };
    let (pre, cookie) = wauth::pre_cookie(req)?;
    let (options, sendable) = method_options(&methods, selected);
    Ok((
        MfaPage {
            csrf: wauth::csrf_for_pre(&st.svc, &pre),
            rd,
            error,
            notice,
            options,
            sendable,
        },
        cookie,
    ))
}

pub(super) async fn mfa_send(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<SendForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let Some(token) = req.cookie(MFA_COOKIE) else {
        return Ok(redirect("/login"));
    };
    let rd = safe_rd(form.rd.as_deref());
    let method = MfaMethod::from_wire(&form.method);
    let sent = match method {
        Some(m) => authn::mfa::send_challenge_code(&st.svc, token.value(), m, &source(&req)).await,
        None => Err(authn::mfa::not_a_sign_in_method()),
    };
    let (notice, error) = match sent {
        Ok(()) => (
            Some(format!(
                "A code was sent by {}. It works once, for 10 minutes.",
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
        Err(Error::Unauthenticated(_)) => {
            return Ok(redirect(&crate::web::notice::notice_url(
                "/login",
                crate::web::notice::LoginNotice::MfaExpired,
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let (page, cookie) = mfa_view(&req, &st, rd, error, notice, method)?;
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

pub(super) async fn mfa_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<LoginQuery>,
) -> PageResult {
    if req.cookie(MFA_COOKIE).is_none() {
        return Ok(redirect("/login"));
    }
    let (page, cookie) = mfa_view(
        &req,
        &st,
        safe_rd(q.rd.as_deref()),
        None,
        None,
        Some(MfaMethod::Totp),
    )?;
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
pub(super) struct MfaForm {
    code: String,
    method: Option<String>,
    csrf_token: String,
    rd: Option<String>,
}

pub(super) async fn mfa_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<MfaForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let Some(token) = req.cookie(MFA_COOKIE) else {
        return Ok(redirect("/login"));
    };
    let raw = authn::mfa::method_for_code(form.method.as_deref().unwrap_or("totp"), &form.code);
    let rd = safe_rd(form.rd.as_deref());
    let mut gone = actix_web::cookie::Cookie::build(MFA_COOKIE, "")
        .path("/login")
        .finish();
    gone.make_removal();
    let completed = MfaMethod::parse(raw).and_then(|method| {
        authn::complete_mfa(
            &st.svc,
            token.value(),
            method,
            &form.code,
            &source(&req),
            Channel::Browser,
        )
    });
    match completed {
        Ok((user, Grant::Session { token, .. }, remaining)) => {
            let to = if remaining.is_some() {
                crate::web::notice::notice_url(
                    "/admin/account",
                    crate::web::notice::AccountNotice::RecoveryUsed,
                )
            } else {
                rd
            };
            let mut resp = signed_in(&req, &st, &user, token, &to)?;
            let _ = resp.add_cookie(&gone);
            Ok(resp)
        }
        Ok((_, Grant::PasswordChange { step_token }, _)) => {
            let mut resp = to_password_step(&st, step_token, &rd);
            let _ = resp.add_cookie(&gone);
            Ok(resp)
        }
        Ok(_) => Err(Error::internal("unexpected grant on the browser channel").into()),
        Err(Error::InvalidCode | Error::Invalid { .. }) => {
            let (page, cookie) = mfa_view(
                &req,
                &st,
                rd,
                Some(Error::InvalidCode.public_message()),
                None,
                MfaMethod::from_wire(raw),
            )?;
            Ok(with_pre_cookie(
                render(StatusCode::UNAUTHORIZED, &page)?,
                cookie,
            ))
        }
        Err(Error::Unauthenticated(_)) => {
            let mut resp = redirect(&crate::web::notice::notice_url(
                "/login",
                crate::web::notice::LoginNotice::MfaExpired,
            ));
            let _ = resp.add_cookie(&gone);
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------- temporary password step

/// The "choose a new password" step's token: like the MFA cookie, it opens
/// nothing but /login/password, and no session exists until it is done.
const PASSWORD_STEP_COOKIE: &str = "gh_pwstep";

fn step_cookie(st: &AppState, value: String, ttl: i64) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(PASSWORD_STEP_COOKIE, value)
        .path("/login")
        .http_only(true)
        .secure(st.tls)
        .same_site(actix_web::cookie::SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(ttl))
        .finish()
}

fn to_password_step(st: &AppState, step_token: String, rd: &str) -> actix_web::HttpResponse {
    let mut resp = redirect(&format!("/login/password?rd={}", enc(rd)));
    let _ = resp.add_cookie(&step_cookie(
        st,
        step_token,
        authn::temporary::STEP_TTL_SECS,
    ));
    resp
}

fn step_expired(st: &AppState) -> actix_web::HttpResponse {
    let mut resp = redirect(&crate::web::notice::notice_url(
        "/login",
        crate::web::notice::LoginNotice::MfaExpired,
    ));
    let _ = resp.add_cookie(&step_cookie(st, String::new(), 0));
    resp
}

#[derive(Template)]
#[template(path = "login_password.html")]
pub(super) struct PasswordStepPage {
    csrf: String,
    rd: String,
    error: Option<String>,
    min_length: usize,
}

fn password_step_page(
    req: &HttpRequest,
    st: &AppState,
    rd: String,
    status: StatusCode,
    error: Option<&Error>,
) -> PageResult {
    let (pre, cookie) = wauth::pre_cookie(req)?;
    let page = PasswordStepPage {
        csrf: wauth::csrf_for_pre(&st.svc, &pre),
        rd,
        error: error.map(words),
        min_length: st.svc.settings.password.min_length,
    };
    let resp = match error {
        Some(e) => render_failed(status, &page, req, e, None)?,
        None => render(status, &page)?,
    };
    Ok(with_pre_cookie(resp, cookie))
}

pub(super) async fn password_step_page_get(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<LoginQuery>,
) -> PageResult {
    let Some(token) = req.cookie(PASSWORD_STEP_COOKIE) else {
        return Ok(redirect("/login"));
    };
    if !authn::temporary::step_live(&st.svc, token.value())? {
        return Ok(step_expired(&st));
    }
    password_step_page(&req, &st, safe_rd(q.rd.as_deref()), StatusCode::OK, None)
}

#[derive(Deserialize)]
pub(super) struct PasswordStepForm {
    password: Password,
    password_confirm: Password,
    csrf_token: String,
    rd: Option<String>,
}

pub(super) async fn password_step_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<PasswordStepForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let Some(token) = req.cookie(PASSWORD_STEP_COOKIE) else {
        return Ok(redirect("/login"));
    };
    let form = form.into_inner();
    let rd = safe_rd(form.rd.as_deref());
    let done = match confirmed(&form.password, &form.password_confirm) {
        Err(e) => Err(e),
        Ok(()) => {
            authn::temporary::complete(&st.svc, token.value(), form.password, &source(&req)).await
        }
    };
    match done {
        Ok((user, Grant::Session { token, .. })) => {
            let mut resp = signed_in(&req, &st, &user, token, &rd)?;
            let _ = resp.add_cookie(&step_cookie(&st, String::new(), 0));
            Ok(resp)
        }
        Ok(_) => Err(Error::internal("unexpected grant on the browser channel").into()),
        Err(e @ Error::Invalid { .. }) => {
            password_step_page(&req, &st, rd, StatusCode::BAD_REQUEST, Some(&e))
        }
        Err(e @ Error::Forbidden(_)) => {
            let (pre, cookie) = wauth::pre_cookie(&req)?;
            let page = login_view(&st, &pre, String::new(), rd, Some(words(&e)), None)?;
            let mut resp = with_pre_cookie(render(StatusCode::FORBIDDEN, &page)?, cookie);
            let _ = resp.add_cookie(&step_cookie(&st, String::new(), 0));
            Ok(resp)
        }
        Err(Error::Unauthenticated(_)) => Ok(step_expired(&st)),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn logout(
    st: web::Data<AppState>,
    req: HttpRequest,
    u: ConsoleUser,
    form: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&form.csrf_token)?;
    authn::logout(&st.svc, &u.user, &u.session_hash, &source(&req))?;
    let mut resp = redirect("/login");
    let _ = resp.add_cookie(&wauth::removal_cookie(st.tls));
    Ok(resp)
}
