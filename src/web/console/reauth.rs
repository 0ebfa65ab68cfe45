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
    MethodOption, Nav, PageResult, method_options, nav, redirect, render, safe_rd,
};
use crate::web::{KeptForm, KeptForms};

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
    /// The kept form's handle ("" when none was kept).
    resume: String,
    /// What the confirmation is for: "to create an API key".
    purpose: String,
    options: Vec<MethodOption>,
    sendable: Vec<MethodOption>,
    notice: Option<String>,
    error: Option<String>,
}

/// The console section a path belongs to, so the navigation keeps showing
/// where the user came from.
fn section_of(rd: &str) -> &'static str {
    let under =
        |p: &str| rd == p || rd.starts_with(&format!("{p}/")) || rd.starts_with(&format!("{p}?"));
    if under("/admin/workspaces") {
        "workspaces"
    } else if under("/admin/users") {
        "users"
    } else if under("/admin/keys") {
        "keys"
    } else if under("/admin/settings") {
        "settings"
    } else if under("/admin/audit") {
        "audit"
    } else if under("/admin/account") {
        "account"
    } else {
        "dashboard"
    }
}

/// What a confirmation that kept no form is for, from where it returns to.
fn purpose_of(rd: &str) -> &'static str {
    match section_of(rd) {
        "account" => "to change how you sign in",
        "keys" => "to rotate the data key",
        "workspaces" => "to change this workspace's credentials",
        "settings" if rd.starts_with("/admin/settings/sso") => "to change single sign-on",
        "settings" => "to change the security settings",
        _ => "to continue",
    }
}

fn reauth_view(
    st: &AppState,
    u: &ConsoleUser,
    rd: String,
    resume: Option<&str>,
    selected: Option<MfaMethod>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ReauthPage, Error> {
    let methods = authn::queries::mfa_summary(&st.svc, &u.user.id)?.methods;
    let (options, sendable) = method_options(&methods, selected);
    let kept = resume.and_then(|h| st.forms_kept.peek(&u.session_hash, h, st.svc.now()));
    let purpose = kept
        .as_ref()
        .map_or_else(|| purpose_of(&rd).to_string(), |k| k.purpose.clone());
    Ok(ReauthPage {
        nav: nav(u, section_of(&rd)),
        resume: kept.and(resume).map(str::to_string).unwrap_or_default(),
        purpose,
        rd,
        options,
        sendable,
        notice,
        error,
    })
}

#[derive(Deserialize)]
pub(super) struct ReauthQuery {
    rd: Option<String>,
    resume: Option<String>,
}

pub(super) async fn reauth_page(
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<ReauthQuery>,
) -> PageResult {
    let rd = safe_rd(q.rd.as_deref());
    render(
        StatusCode::OK,
        &reauth_view(
            &st,
            &u,
            rd,
            q.resume.as_deref(),
            Some(MfaMethod::Totp),
            None,
            None,
        )?,
    )
}

/// After the confirmation: the interrupted form again, filled in, with a
/// fresh CSRF token; the script submits it at once (without script, one click).
#[derive(Template)]
#[template(path = "reauth_continue.html")]
pub(super) struct ContinuePage {
    nav: Nav,
    purpose: String,
    action: String,
    fields: Vec<(String, String)>,
    cancel: String,
}

#[derive(Deserialize)]
pub(super) struct ReauthForm {
    password: Password,
    method: Option<String>,
    code: Option<String>,
    csrf_token: String,
    rd: Option<String>,
    resume: Option<String>,
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
        Ok(()) => {
            let kept = f
                .resume
                .as_deref()
                .and_then(|h| st.forms_kept.take(&u.session_hash, h, st.svc.now()));
            match kept {
                // Its secret is retyped: the form again on its own page.
                Some(k) if k.reshow && crate::web::html::is_local_path(&k.action) => {
                    let h = st.forms_kept.put(&u.session_hash, k, st.svc.now())?;
                    let sep = if rd.contains('?') { '&' } else { '?' };
                    Ok(redirect(&format!("{rd}{sep}resumed={h}#resumed")))
                }
                Some(KeptForm {
                    action,
                    purpose,
                    fields,
                    ..
                }) if crate::web::html::is_local_path(&action) => render(
                    StatusCode::OK,
                    &ContinuePage {
                        nav: nav(&u, section_of(&rd)),
                        purpose,
                        action,
                        fields: fields
                            .into_iter()
                            .filter(|(k, _)| KeptForms::keepable(k))
                            .collect(),
                        cancel: rd,
                    },
                ),
                _ => Ok(redirect(&rd)),
            }
        }
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
                f.resume.as_deref(),
                MfaMethod::from_wire(f.method.as_deref().unwrap_or("totp")),
                None,
                Some(crate::web::html::words(&e)),
            )?;
            render(StatusCode::UNAUTHORIZED, &p)
        }
        Err(e) => Err(e.into()),
    }
}

/// "Send me a code" on this page: the kept form stays kept.
#[derive(Deserialize)]
pub(super) struct ReauthSendForm {
    method: String,
    csrf_token: String,
    rd: Option<String>,
    resume: Option<String>,
}

pub(super) async fn reauth_send(
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ReauthSendForm>,
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
        &reauth_view(&st, &u, rd, f.resume.as_deref(), method, notice, error)?,
    )
}
