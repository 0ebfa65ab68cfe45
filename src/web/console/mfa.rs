//! My second factors: TOTP enrolment, e-mail and SMS codes, recovery codes,
//! removing a factor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::authn::{self, mfa::MfaMethod, password::Password};
use crate::error::Error;
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, reauth_gate_for, source};
use crate::web::html::{Nav, PageResult, SendForm, account_page, nav, redirect, render};

// ---------------------------------------------------------------- two-factor

#[derive(Template)]
#[template(path = "mfa_enroll.html")]
pub(super) struct EnrollPage {
    nav: Nav,
    secret: String,
    qr: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(super) struct CodesPage {
    nav: Nav,
    codes: Vec<String>,
}

/// The otpauth URI as a QR code: an SVG in a data URI (no inline markup from the encoder).
fn qr_data_uri(uri: &str) -> Result<String, Error> {
    use base64::Engine;
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| Error::internal_caused("qr", e))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// The key in groups of four (as authenticator apps accept it typed), so a
/// person copying it by hand keeps their place.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn enroll_page(
    st: &AppState,
    u: &ConsoleUser,
    error: Option<String>,
) -> Result<Option<EnrollPage>, Error> {
    Ok(match authn::mfa::pending_uri(&st.svc, &u.user)? {
        Some((secret, uri)) => Some(EnrollPage {
            nav: nav(u, "account"),
            secret: grouped(&secret),
            qr: qr_data_uri(&uri)?,
            error,
        }),
        None => None,
    })
}

/// The proof fields of the account page's "add a factor" and "new recovery
/// codes" forms (present once a factor is active).
#[derive(Deserialize)]
pub(super) struct ProofForm {
    csrf_token: String,
    current_password: Option<Password>,
    method: Option<String>,
    code: Option<String>,
    phone: Option<String>,
}

impl ProofForm {
    fn proof(&self) -> Result<Option<authn::Proof<'_>>, Error> {
        let method = MfaMethod::parse_opt(self.method.as_deref())?;
        Ok(self.current_password.as_ref().map(|password| authn::Proof {
            password,
            method,
            code: self.code.as_deref(),
        }))
    }
}

/// "Confirm it's you" for an account-page form (`action`, "to …"): its
/// method and phone are kept. A form that carried a password or a code is
/// shown again, filled in, for the user to retype them (sent without, it
/// would only fail); one that carried none (no factor yet) is sent again.
fn proof_gate(
    st: &AppState,
    u: &ConsoleUser,
    action: &str,
    purpose: &str,
    kept: [(&str, Option<&str>); 2],
    secrets: [(&str, bool); 2],
) -> Result<Option<actix_web::HttpResponse>, Error> {
    let retype: Vec<String> = secrets
        .iter()
        .filter(|(_, typed)| *typed)
        .map(|(n, _)| n.to_string())
        .collect();
    let form = crate::web::KeptForm {
        action: action.into(),
        purpose: purpose.into(),
        fields: kept
            .iter()
            .filter_map(|&(k, v)| Some((k.to_string(), v?.to_string())))
            .collect(),
        reshow: !retype.is_empty(),
        retype,
    };
    reauth_gate_for(st, u, "/admin/account", form)
}

fn typed(s: Option<&str>) -> bool {
    s.is_some_and(|s| !s.trim().is_empty())
}

impl ProofForm {
    /// `proof_gate` for this form.
    fn gate(
        &self,
        st: &AppState,
        u: &ConsoleUser,
        action: &str,
        purpose: &str,
    ) -> Result<Option<actix_web::HttpResponse>, Error> {
        proof_gate(
            st,
            u,
            action,
            purpose,
            [
                ("method", self.method.as_deref()),
                ("phone", self.phone.as_deref()),
            ],
            [
                (
                    "current_password",
                    typed(self.current_password.as_ref().map(Password::expose)),
                ),
                ("code", typed(self.code.as_deref())),
            ],
        )
    }
}

/// A refused proof or start, shown on the account page.
fn account_refusal(st: &AppState, u: &ConsoleUser, e: Error) -> PageResult {
    match e {
        Error::Invalid { .. }
        | Error::InvalidCode
        | Error::ProofRefused
        | Error::Conflict(_)
        | Error::Forbidden(_) => render(
            StatusCode::BAD_REQUEST,
            &account_page(st, u, None, Some(crate::web::html::words(&e)))?,
        ),
        e => Err(e.into()),
    }
}

pub(super) async fn totp_start(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = f.gate(
        &st,
        &u,
        "/admin/account/mfa/totp",
        "to set up an authenticator app",
    )? {
        return Ok(r);
    }
    let started = match f.proof() {
        Ok(p) => authn::mfa::start_totp(&st.svc, &u.actor(&req), p.as_ref()).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(_) => Ok(redirect("/admin/account/mfa/totp")),
        Err(e) => account_refusal(&st, &u, e),
    }
}

pub(super) async fn totp_page(st: web::Data<AppState>, u: ConsoleUser) -> PageResult {
    match enroll_page(&st, &u, None)? {
        Some(p) => render(StatusCode::OK, &p),
        None => Ok(redirect("/admin/account")),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    code: String,
    csrf_token: String,
}

pub(super) async fn totp_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CodeForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    // Enrolled: this session becomes a full one, in the same transaction.
    let result = authn::mfa::confirm_totp_upgrading(
        &st.svc,
        &u.user,
        &f.code,
        &source(&req),
        Some(&u.session_hash),
    );
    match result {
        Ok(codes) if codes.is_empty() => Ok(redirect(&crate::web::notice::notice_url(
            "/admin/account",
            crate::web::notice::AccountNotice::MfaOn,
        ))),
        Ok(codes) => render(
            StatusCode::OK,
            &CodesPage {
                nav: nav(&u, "account"),
                codes,
            },
        ),
        Err(e @ Error::Invalid { .. }) => {
            match enroll_page(&st, &u, Some(crate::web::html::words(&e)))? {
                Some(p) => {
                    crate::web::html::render_failed(StatusCode::BAD_REQUEST, &p, &req, &e, None)
                }
                None => Ok(redirect("/admin/account")),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "mfa_code.html")]
pub(super) struct CodeConfirmPage {
    nav: Nav,
    method: &'static str,
    target: String,
    error: Option<String>,
}

pub(super) async fn code_start_email(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = f.gate(
        &st,
        &u,
        "/admin/account/mfa/email",
        "to turn on e-mail codes",
    )? {
        return Ok(r);
    }
    code_started(&req, &st, &u, MfaMethod::Email, &f).await
}

pub(super) async fn code_start_sms(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = f.gate(&st, &u, "/admin/account/mfa/sms", "to turn on SMS codes")? {
        return Ok(r);
    }
    code_started(&req, &st, &u, MfaMethod::Sms, &f).await
}

pub(super) async fn code_started(
    req: &HttpRequest,
    st: &AppState,
    u: &ConsoleUser,
    method: MfaMethod,
    f: &ProofForm,
) -> PageResult {
    let phone = if method == MfaMethod::Sms {
        Some(f.phone.as_deref().unwrap_or(""))
    } else {
        None
    };
    let started = match f.proof() {
        Ok(p) => {
            authn::mfa::start_code_enrollment(&st.svc, &u.actor(req), method, phone, p.as_ref())
                .await
        }
        Err(e) => Err(e),
    };
    match started {
        Ok(()) => {
            let target = phone
                .map(str::to_string)
                .unwrap_or_else(|| u.user.email.as_str().to_string());
            render(
                StatusCode::OK,
                &CodeConfirmPage {
                    nav: nav(u, "account"),
                    method: method.as_str(),
                    target,
                    error: None,
                },
            )
        }
        Err(e) => account_refusal(st, u, e),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeConfirmForm {
    method: String,
    target: Option<String>,
    code: String,
    csrf_token: String,
}

pub(super) async fn code_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CodeConfirmForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    // The form's hidden field: anything but `sms` is the e-mail enrollment.
    let method = if f.method == "sms" {
        MfaMethod::Sms
    } else {
        MfaMethod::Email
    };
    match authn::mfa::confirm_code_enrollment_upgrading(
        &st.svc,
        &u.user,
        method,
        &f.code,
        &source(&req),
        Some(&u.session_hash),
    ) {
        Ok(codes) => {
            if codes.is_empty() {
                Ok(redirect(&crate::web::notice::notice_url(
                    "/admin/account",
                    crate::web::notice::AccountNotice::MfaOn,
                )))
            } else {
                render(
                    StatusCode::OK,
                    &CodesPage {
                        nav: nav(&u, "account"),
                        codes,
                    },
                )
            }
        }
        Err(e @ Error::Invalid { .. }) => {
            let p = CodeConfirmPage {
                nav: nav(&u, "account"),
                method: method.as_str(),
                target: f.target.clone().unwrap_or_default(),
                error: Some(crate::web::html::words(&e)),
            };
            crate::web::html::render_failed(StatusCode::BAD_REQUEST, &p, &req, &e, None)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn recovery_new(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = f.gate(
        &st,
        &u,
        "/admin/account/mfa/recovery",
        "to make new recovery codes",
    )? {
        return Ok(r);
    }
    let made = match f.proof() {
        Ok(Some(p)) => authn::mfa::regenerate_recovery(&st.svc, &u.actor(&req), &p).await,
        Ok(None) => Err(Error::invalid(
            "current_password",
            "new recovery codes need your password and a current code",
        )),
        Err(e) => Err(e),
    };
    let codes = match made {
        Ok(c) => c,
        Err(e) => return account_refusal(&st, &u, e),
    };
    render(
        StatusCode::OK,
        &CodesPage {
            nav: nav(&u, "account"),
            codes,
        },
    )
}

#[derive(Deserialize)]
pub(super) struct RemoveMfaForm {
    current_password: Password,
    method: Option<String>,
    code: Option<String>,
    csrf_token: String,
}

pub(super) async fn mfa_remove(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<RemoveMfaForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = proof_gate(
        &st,
        &u,
        "/admin/account/mfa/remove",
        "to remove two-factor sign-in",
        [("method", f.method.as_deref()), ("phone", None)],
        [
            ("current_password", typed(Some(f.current_password.expose()))),
            ("code", typed(f.code.as_deref())),
        ],
    )? {
        return Ok(r);
    }
    let removed = match MfaMethod::parse_opt(f.method.as_deref()) {
        Ok(method) => {
            let proof = authn::Proof {
                password: &f.current_password,
                method,
                code: f.code.as_deref(),
            };
            authn::mfa::remove_all_own(&st.svc, &u.actor(&req), &proof).await
        }
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => Ok(redirect(&crate::web::notice::notice_url(
            "/admin/account",
            crate::web::notice::AccountNotice::MfaOff,
        ))),
        Err(
            e @ (Error::Invalid { .. }
            | Error::InvalidCode
            | Error::ProofRefused
            | Error::Conflict(_)
            | Error::Forbidden(_)),
        ) => render(
            StatusCode::BAD_REQUEST,
            &account_page(&st, &u, None, Some(crate::web::html::words(&e)))?,
        ),
        Err(e) => Err(e.into()),
    }
}

/// Sends an e-mail or SMS code for the removal form (the proof of a current factor).
pub(super) async fn proof_code_send(
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SendForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let method = MfaMethod::from_wire(&f.method);
    let sent = match method {
        Some(m) => authn::mfa::send_reauth_code(&st.svc, &u.user, m).await,
        None => Err(authn::mfa::not_one_of_yours()),
    };
    let (notice, error) = match sent {
        Ok(()) => (
            Some(format!(
                "A code was sent by {}; enter it below to remove two-factor.",
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
    render(StatusCode::OK, &account_page(&st, &u, notice, error)?)
}
