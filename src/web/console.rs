//! Server-rendered pages: sign-in, setup, recovery, and the admin console
//! (dashboard, users, my account, audit log, keys). Each page works as plain
//! HTML forms; with `HX-Request` the list handlers return only their table.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::access::{self, Permission};
use crate::audit;
use crate::authn::{self, Channel, Grant, password::Password, session};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::{self, Email, NewUser, Role, User, UserId, UserUpdate};
use crate::keys;
use crate::store::Reader;
use crate::web::AppState;
use crate::web::auth::{self as wauth, ConsoleUser, source};
use crate::web::error::{PageError, html_error};

pub(crate) type PageResult = Result<HttpResponse, PageError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login_post))
        .route("/login/mfa", web::get().to(mfa_page))
        .route("/login/mfa", web::post().to(mfa_post))
        .route("/login/mfa/send", web::post().to(mfa_send))
        .route("/logout", web::post().to(logout))
        .route("/setup", web::get().to(setup_page))
        .route("/setup", web::post().to(setup_post))
        .route("/recover", web::get().to(recover_page))
        .route("/recover", web::post().to(recover_post))
        .route("/admin", web::get().to(dashboard))
        .route("/admin/users", web::get().to(users))
        .route("/admin/users", web::post().to(users_create))
        .route("/admin/users/{id}", web::get().to(user_detail))
        .route("/admin/users/{id}/disable", web::post().to(user_disable))
        .route("/admin/users/{id}/enable", web::post().to(user_enable))
        .route(
            "/admin/users/{id}/delete",
            web::get().to(user_delete_confirm),
        )
        .route("/admin/users/{id}/delete", web::post().to(user_delete))
        .route("/admin/users/{id}/password", web::post().to(user_password))
        .route("/admin/users/{id}/unlock", web::post().to(user_unlock))
        .route("/admin/account", web::get().to(account))
        .route("/admin/account/password", web::post().to(account_password))
        .route("/admin/account/mfa/totp", web::post().to(totp_start))
        .route("/admin/account/mfa/totp", web::get().to(totp_page))
        .route(
            "/admin/account/mfa/totp/confirm",
            web::post().to(totp_confirm),
        )
        .route("/admin/account/mfa/recovery", web::post().to(recovery_new))
        .route("/admin/account/mfa/email", web::post().to(code_start_email))
        .route("/admin/account/mfa/sms", web::post().to(code_start_sms))
        .route(
            "/admin/account/mfa/code/confirm",
            web::post().to(code_confirm),
        )
        .route("/admin/account/mfa/remove", web::post().to(mfa_remove))
        .route("/admin/account/mfa/code", web::post().to(proof_code_send))
        .route(
            "/admin/users/{id}/mfa/reset",
            web::post().to(user_mfa_reset),
        )
        .route(
            "/admin/users/{id}/sessions/end",
            web::post().to(user_end_sessions),
        )
        .route(
            "/admin/account/mfa/required",
            web::get().to(mfa_required_page),
        )
        .route("/admin/reauth", web::get().to(reauth_page))
        .route("/admin/reauth", web::post().to(reauth_post))
        .route("/admin/reauth/send", web::post().to(reauth_send))
        .route("/admin/settings/security", web::get().to(settings_page))
        .route("/admin/settings/security", web::post().to(settings_post))
        .route(
            "/admin/account/sessions/end-others",
            web::post().to(end_other_sessions),
        )
        .route(
            "/admin/account/sessions/{id}/end",
            web::post().to(end_session),
        )
        .route("/admin/audit", web::get().to(audit_page))
        .route("/admin/keys", web::get().to(keys_page))
        .route("/admin/keys/rotate", web::get().to(keys_rotate_confirm))
        .route("/admin/keys/rotate", web::post().to(keys_rotate));
}

pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> PageResult {
    let body = t
        .render()
        .map_err(|e| Error::internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body))
}

pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

/// The "repeat password" field must match.
fn confirmed(pw: &Password, again: &Password) -> Result<(), Error> {
    if crate::crypto::ct_eq(pw.expose().as_bytes(), again.expose().as_bytes()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "password_confirm",
            "does not match the password",
        ))
    }
}

/// Where to go after signing in (every `rd` parameter): a local path, never
/// an open redirect; anything else goes to `/admin`.
pub(crate) fn safe_rd(rd: Option<&str>) -> String {
    match rd {
        Some(p) if is_local_path(p) => p.to_string(),
        _ => "/admin".to_string(),
    }
}

/// Whether `p` is a same-origin relative reference a browser cannot turn into
/// another host: exactly one leading `/`, then printable ASCII only (no
/// control characters or whitespace, which browsers strip: `/\t/evil` becomes
/// `//evil`) and no backslash (which browsers read as `/`). The same holds
/// after percent-decoding, repeatedly, because a later hop may decode it
/// (`/%2F%2Fevil`, `/%5Cevil`, `/%09/evil`, `/%252F…`).
pub(crate) fn is_local_path(p: &str) -> bool {
    const MAX_LEN: usize = 2048;
    fn plain_ok(b: &[u8]) -> bool {
        b.first() == Some(&b'/')
            && !matches!(b.get(1), Some(b'/' | b'\\'))
            && b.iter().all(|c| c.is_ascii_graphic() && *c != b'\\')
    }
    if p.len() > MAX_LEN {
        return false;
    }
    let mut cur = p.as_bytes().to_vec();
    // Each round removes one layer of encoding; four layers is no real path.
    for _ in 0..4 {
        if !plain_ok(&cur) {
            return false;
        }
        let next = percent_decode(&cur);
        if next == cur {
            return true;
        }
        cur = next;
    }
    false
}

/// One layer of `%XX` decoding; a `%` not followed by two hex digits stays.
fn percent_decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub(crate) fn notice_text(code: Option<&str>) -> Option<String> {
    Some(
        match code? {
            "created" => "User created.",
            "deleted" => "User deleted.",
            "disabled" => "User disabled; their sessions and tokens have ended.",
            "enabled" => "User enabled.",
            "password" => "Password changed.",
            "reset" => "Password reset; the user's sessions and tokens have ended.",
            "ended" => "Session ended.",
            "ended_others" => "All your other sessions and your access tokens have ended.",
            "rotated" => "A new data key is active. Records are being re-sealed in the background.",
            "recovered" => "Password set. Sign in with it now.",
            "unlocked" => "Account unlocked.",
            "saved" => "Security settings saved.",
            "sessions_ended" => "All of the user's sessions and tokens have ended.",
            "mfa_expired" => "The sign-in step expired; sign in again.",
            "recovery_used" => "You signed in with a recovery code; it no longer works. Check how many remain below.",
            "mfa_on" => "Second factor active.",
            "mfa_off" => "Two-factor authentication removed.",
            "mfa_reset" => "The user's second factors were reset; they enroll again.",
            "sso_saved" => "Single sign-on settings saved.",
            "sso_created" => "Connection created. Paste the values below into the identity provider, then run Test connection.",
            "sso_updated" => "Connection saved.",
            "sso_deleted" => "Connection deleted.",
            "tested" => "Test sign-in passed: the identity provider's answer is valid.",
            "test_failed" => "Test sign-in failed; the reason is below.",
            _ => return None,
        }
        .to_string(),
    )
}

pub struct Nav {
    pub email: String,
    pub is_admin: bool,
    pub csrf: String,
    pub section: &'static str,
}

pub(crate) fn nav(u: &ConsoleUser, section: &'static str) -> Nav {
    Nav {
        email: u.user.email.as_str().into(),
        is_admin: u.user.is_admin(),
        csrf: u.csrf.clone(),
        section,
    }
}

/// Admin pages: authorize through the one check, with the request's source.
pub(crate) fn require(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    p: Permission,
) -> Result<(), PageError> {
    access::authorize(
        &st.svc,
        &u.principal(),
        p,
        access::Resource::Platform,
        &source(req),
    )
    .map(|_| ())
    .map_err(PageError)
}

#[derive(Deserialize)]
pub struct Notice {
    pub notice: Option<String>,
}

async fn root() -> HttpResponse {
    redirect("/admin")
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
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

#[derive(Deserialize)]
struct LoginQuery {
    rd: Option<String>,
    notice: Option<String>,
}

fn with_pre_cookie(
    mut resp: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

async fn login_page(
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
        notice_text(q.notice.as_deref()),
    )?;
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: Password,
    csrf_token: String,
    rd: Option<String>,
}

async fn login_post(
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
                Some(e.public_message()),
                None,
            )?;
            Ok(with_pre_cookie(render(status, &page)?, cookie))
        }
        Err(e) => Err(e.into()),
    }
}

const MFA_COOKIE: &str = "gh_mfa";

/// Ends whatever session the browser held (a fresh id at every sign-in) and
/// sets the new session cookie.
pub(crate) fn signed_in(
    req: &HttpRequest,
    st: &AppState,
    user: &User,
    token: String,
    rd: &str,
) -> PageResult {
    if let Some(old) = req.cookie(wauth::session_cookie_name(st.tls)) {
        let mut tx = st.svc.store.write()?;
        session::end(&mut tx, &user.id, &session::hash_token(old.value()))?;
        tx.commit()?;
    }
    let mut resp = redirect(rd);
    let _ = resp.add_cookie(&wauth::session_cookie(st.tls, token));
    Ok(resp)
}

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct MfaPage {
    csrf: String,
    rd: String,
    error: Option<String>,
    notice: Option<String>,
    options: Vec<MethodOption>,
    /// Methods that send a code on request (e-mail, SMS).
    sendable: Vec<MethodOption>,
}

pub struct MethodOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// The method picker and the "send a code" buttons for a list of methods.
fn method_options(
    methods: &[&'static str],
    selected: &str,
) -> (Vec<MethodOption>, Vec<MethodOption>) {
    let selected = if methods.contains(&selected) {
        selected
    } else {
        methods.first().copied().unwrap_or("")
    };
    let label = |m: &str| match m {
        "totp" => "Authenticator app",
        "email" => "E-mail code",
        "sms" => "SMS code",
        _ => "Recovery code",
    };
    let options = methods
        .iter()
        .map(|m| MethodOption {
            value: m,
            label: label(m),
            selected: *m == selected,
        })
        .collect();
    let sendable = methods
        .iter()
        .filter(|m| matches!(**m, "email" | "sms"))
        .map(|m| MethodOption {
            value: m,
            label: if *m == "email" { "e-mail" } else { "SMS" },
            selected: false,
        })
        .collect();
    (options, sendable)
}

fn mfa_view(
    req: &HttpRequest,
    st: &AppState,
    rd: String,
    error: Option<String>,
    notice: Option<String>,
    selected: &str,
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

#[derive(Deserialize)]
struct SendForm {
    method: String,
    csrf_token: String,
    rd: Option<String>,
}

async fn mfa_send(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<SendForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let Some(token) = req.cookie(MFA_COOKIE) else {
        return Ok(redirect("/login"));
    };
    let rd = safe_rd(form.rd.as_deref());
    let (notice, error) =
        match authn::mfa::send_challenge_code(&st.svc, token.value(), &form.method, &source(&req))
            .await
        {
            Ok(()) => (
                Some(format!(
                    "A code was sent by {}. It works once, for 10 minutes.",
                    if form.method == "sms" {
                        "SMS"
                    } else {
                        "e-mail"
                    }
                )),
                None,
            ),
            Err(e @ (Error::Conflict(_) | Error::Invalid { .. } | Error::Forbidden(_))) => {
                (None, Some(e.public_message()))
            }
            Err(Error::Unauthenticated(_)) => return Ok(redirect("/login?notice=mfa_expired")),
            Err(e) => return Err(e.into()),
        };
    let (page, cookie) = mfa_view(&req, &st, rd, error, notice, &form.method)?;
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

async fn mfa_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<LoginQuery>,
) -> PageResult {
    if req.cookie(MFA_COOKIE).is_none() {
        return Ok(redirect("/login"));
    }
    let (page, cookie) = mfa_view(&req, &st, safe_rd(q.rd.as_deref()), None, None, "totp")?;
    Ok(with_pre_cookie(render(StatusCode::OK, &page)?, cookie))
}

#[derive(Deserialize)]
struct MfaForm {
    code: String,
    method: Option<String>,
    csrf_token: String,
    rd: Option<String>,
}

async fn mfa_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<MfaForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let Some(token) = req.cookie(MFA_COOKIE) else {
        return Ok(redirect("/login"));
    };
    let method = form.method.as_deref().unwrap_or("totp");
    let rd = safe_rd(form.rd.as_deref());
    let mut gone = actix_web::cookie::Cookie::build(MFA_COOKIE, "")
        .path("/login")
        .finish();
    gone.make_removal();
    match authn::complete_mfa(
        &st.svc,
        token.value(),
        method,
        &form.code,
        &source(&req),
        Channel::Browser,
    ) {
        Ok((user, Grant::Session { token, .. }, remaining)) => {
            let to = if remaining.is_some() {
                "/admin/account?notice=recovery_used".to_string()
            } else {
                rd
            };
            let mut resp = signed_in(&req, &st, &user, token, &to)?;
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
                method,
            )?;
            Ok(with_pre_cookie(
                render(StatusCode::UNAUTHORIZED, &page)?,
                cookie,
            ))
        }
        Err(Error::Unauthenticated(_)) => {
            let mut resp = redirect("/login?notice=mfa_expired");
            let _ = resp.add_cookie(&gone);
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf_token: String,
}

async fn logout(
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

// ---------------------------------------------------------------- setup & recovery

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    token: String,
    email: String,
    name: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn setup_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<TokenQuery>,
) -> PageResult {
    let token = q.token.clone().unwrap_or_default();
    authn::onetime::check(&st.svc.store.read()?, &token, st.svc.now()).map_err(|e| {
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
struct SetupForm {
    token: String,
    email: String,
    name: Option<String>,
    password: Password,
    password_confirm: Password,
    csrf_token: String,
}

async fn setup_post(
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
        Ok(_) => Ok(redirect("/login?notice=created")),
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
struct RecoverPage {
    csrf: String,
    token: String,
    error: Option<String>,
}

async fn recover_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<TokenQuery>,
) -> PageResult {
    let token = q.token.clone().unwrap_or_default();
    if authn::onetime::check(&st.svc.store.read()?, &token, st.svc.now()).is_err() {
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
struct RecoverForm {
    token: String,
    password: Password,
    password_confirm: Password,
    csrf_token: String,
}

async fn recover_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Form<RecoverForm>,
) -> PageResult {
    wauth::check_pre_csrf(&req, &st.svc, &form.csrf_token)?;
    let form = form.into_inner();
    let result = if let Err(e) = confirmed(&form.password, &form.password_confirm) {
        Err(e)
    } else {
        authn::recover(&st.svc, &form.token, form.password.clone(), &source(&req)).await
    };
    match result {
        Ok(_) => Ok(redirect("/login?notice=recovered")),
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

// ---------------------------------------------------------------- rows

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub disabled: bool,
    pub is_owner: bool,
    pub created: String,
    pub last_login: String,
}

impl UserRow {
    /// A user's row, with their last sign-in (kept apart from the record).
    fn new(u: &User, last_sign_in: Option<crate::clock::Timestamp>) -> Self {
        UserRow {
            id: u.id.as_str().into(),
            email: u.email.as_str().into(),
            name: u.name.clone(),
            role: u.role.as_str(),
            disabled: u.disabled,
            is_owner: u.role == Role::Owner,
            created: rfc3339(u.created_at),
            last_login: last_sign_in.map(rfc3339).unwrap_or_else(|| "never".into()),
        }
    }
}

pub struct EventRow {
    pub id: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: &'static str,
    pub ip: String,
    pub details: String,
}

impl From<&audit::Event> for EventRow {
    fn from(e: &audit::Event) -> Self {
        EventRow {
            id: e.id,
            time: rfc3339(e.time),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone().unwrap_or_default(),
            outcome: e.outcome.as_str(),
            ip: e.source_ip.clone().unwrap_or_default(),
            details: if e.details.is_null() {
                String::new()
            } else {
                e.details.to_string()
            },
        }
    }
}

// ---------------------------------------------------------------- dashboard

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Nav,
    users_total: usize,
    users_disabled: usize,
    admins: usize,
    failed_logins: usize,
    key_version: u32,
    audit_events: u64,
    rows: Vec<EventRow>,
}

async fn dashboard(req: HttpRequest, st: web::Data<AppState>, u: ConsoleUser) -> PageResult {
    if !u.user.is_admin() {
        return Ok(redirect("/admin/account"));
    }
    require(&st, &req, &u, Permission::ViewConsole)?;
    let r = st.svc.store.read()?;
    let (all, total) = identity::list(&r, "", 0, usize::MAX)?;
    let security = audit::Filter {
        action: Some("auth.".into()),
        ..Default::default()
    };
    let (recent, _) = audit::query(&r, &security, 0, 10)?;
    let since = st.svc.now() - 86_400;
    let failed = audit::Filter {
        action: Some("auth.login".into()),
        outcome: Some("failure".into()),
        since: Some(crate::clock::rfc3339(since)),
        ..Default::default()
    };
    let (failed_rows, _) = audit::query(&r, &failed, 0, 10_000)?;
    let key_version = st.svc.store.active_key_version()?;
    let page = DashboardPage {
        nav: nav(&u, "dashboard"),
        users_total: total,
        users_disabled: all.iter().filter(|u| u.disabled).count(),
        admins: all.iter().filter(|u| u.is_admin()).count(),
        failed_logins: failed_rows.len(),
        key_version,
        audit_events: r.count(crate::store::Table::Audit)?,
        rows: recent.iter().map(EventRow::from).collect(),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- users

const PER_PAGE: usize = 25;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
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
struct UsersTable {
    rows: Vec<UserRow>,
    q: String,
    page: usize,
    pages: usize,
    total: usize,
}

#[derive(Deserialize)]
struct UsersQuery {
    q: Option<String>,
    page: Option<usize>,
    notice: Option<String>,
}

fn users_view(
    st: &AppState,
    q: &str,
    page: usize,
) -> Result<(Vec<UserRow>, usize, usize, usize), Error> {
    let page = page.max(1);
    let r = st.svc.store.read()?;
    let (list, total) = identity::list(&r, q, (page - 1) * PER_PAGE, PER_PAGE)?;
    let pages = total.div_ceil(PER_PAGE).max(1);
    let rows = list
        .iter()
        .map(|u| Ok(UserRow::new(u, identity::last_sign_in(&r, &u.id)?)))
        .collect::<Result<_, Error>>()?;
    Ok((rows, total, page, pages))
}

async fn users(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<UsersQuery>,
) -> PageResult {
    require(&st, &req, &u, Permission::ManageUsers)?;
    let search = q.q.clone().unwrap_or_default();
    let (rows, total, page, pages) = users_view(&st, &search, q.page.unwrap_or(1))?;
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
        notice: notice_text(q.notice.as_deref()),
        error: None,
        form_email: String::new(),
        form_name: String::new(),
        form_role: "user".into(),
    };
    render(StatusCode::OK, &p)
}

#[derive(Deserialize)]
struct CreateUserForm {
    email: String,
    name: Option<String>,
    password: Password,
    role: Option<String>,
    csrf_token: String,
}

async fn users_create(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    form: web::Form<CreateUserForm>,
) -> PageResult {
    u.check_csrf(&form.csrf_token)?;
    require(&st, &req, &u, Permission::ManageUsers)?;
    let form = form.into_inner();
    let result = async {
        let new = NewUser {
            email: Email::parse(&form.email)?,
            name: form.name.clone().unwrap_or_default(),
            password: form.password.clone(),
            role: Role::parse(form.role.as_deref().unwrap_or("user"))?,
        };
        identity::create(&st.svc, &u.principal(), &source(&req), new).await
    }
    .await;
    match result {
        Ok(_) => Ok(redirect("/admin/users?notice=created")),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let (rows, total, page, pages) = users_view(&st, "", 1)?;
            let p = UsersPage {
                nav: nav(&u, "users"),
                rows,
                q: String::new(),
                page,
                pages,
                total,
                notice: None,
                error: Some(e.public_message()),
                form_email: form.email,
                form_name: form.name.unwrap_or_default(),
                form_role: form.role.unwrap_or_else(|| "user".into()),
            };
            let status = if matches!(e, Error::Conflict(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            render(status, &p)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    nav: Nav,
    u: UserRow,
    notice: Option<String>,
    error: Option<String>,
    sessions: usize,
    locked_until: Option<String>,
}

fn user_page(
    st: &AppState,
    u: &ConsoleUser,
    id: &UserId,
    notice: Option<String>,
    error: Option<String>,
) -> Result<UserPage, Error> {
    let r = st.svc.store.read()?;
    let target = identity::get(&r, id)?;
    let sessions = session::list_for_user(&r, id)?.len();
    let locked_until = authn::lockout::locked_until(&r, id, st.svc.now())?.map(rfc3339);
    Ok(UserPage {
        nav: nav(u, "users"),
        u: UserRow::new(&target, identity::last_sign_in(&r, id)?),
        notice,
        error,
        sessions,
        locked_until,
    })
}

async fn user_detail(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<Notice>,
) -> PageResult {
    require(&st, &req, &u, Permission::ManageUsers)?;
    let p = user_page(
        &st,
        &u,
        &UserId::parse(&id)?,
        notice_text(q.notice.as_deref()),
        None,
    )?;
    render(StatusCode::OK, &p)
}

async fn set_disabled(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: &str,
    token: &str,
    disabled: bool,
) -> PageResult {
    u.check_csrf(token)?;
    require(&st, &req, &u, Permission::ManageUsers)?;
    let uid = UserId::parse(id)?;
    let up = UserUpdate {
        disabled: Some(disabled),
        ..Default::default()
    };
    match identity::update(&st.svc, &u.principal(), &source(&req), &uid, up) {
        Ok(_) => Ok(redirect(&format!(
            "/admin/users/{id}?notice={}",
            if disabled { "disabled" } else { "enabled" }
        ))),
        Err(e @ Error::Conflict(_)) => render(
            StatusCode::CONFLICT,
            &user_page(&st, &u, &uid, None, Some(e.public_message()))?,
        ),
        Err(e) => Err(e.into()),
    }
}

async fn user_disable(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    set_disabled(req, st, u, &id, &f.csrf_token, true).await
}

async fn user_enable(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    set_disabled(req, st, u, &id, &f.csrf_token, false).await
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub(crate) struct ConfirmPage {
    pub nav: Nav,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: String,
    pub cancel: String,
}

async fn user_unlock(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    require(&st, &req, &u, Permission::ManageUsers)?;
    let uid = UserId::parse(&id)?;
    authn::lockout::unlock(&st.svc, &u.principal(), &source(&req), &uid)?;
    Ok(redirect(&format!(
        "/admin/users/{}?notice=unlocked",
        uid.as_str()
    )))
}

async fn user_delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
) -> PageResult {
    require(&st, &req, &u, Permission::ManageUsers)?;
    let uid = UserId::parse(&id)?;
    let target = identity::get(&st.svc.store.read()?, &uid)?;
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

async fn user_delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    require(&st, &req, &u, Permission::ManageUsers)?;
    let uid = UserId::parse(&id)?;
    match identity::delete(&st.svc, &u.principal(), &source(&req), &uid) {
        Ok(()) => Ok(redirect("/admin/users?notice=deleted")),
        Err(e @ Error::Conflict(_)) => render(
            StatusCode::CONFLICT,
            &user_page(&st, &u, &uid, None, Some(e.public_message()))?,
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    password: Password,
    csrf_token: String,
}

async fn user_password(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<PasswordForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    require(&st, &req, &u, Permission::ManageUsers)?;
    let uid = UserId::parse(&id)?;
    let by = u.principal();
    match identity::set_password(
        &st.svc,
        &by,
        &source(&req),
        &uid,
        f.into_inner().password,
        "user.password_reset",
    )
    .await
    {
        Ok(()) => Ok(redirect(&format!(
            "/admin/users/{}?notice=reset",
            uid.as_str()
        ))),
        Err(e @ Error::Invalid { .. }) => render(
            StatusCode::BAD_REQUEST,
            &user_page(&st, &u, &uid, None, Some(e.public_message()))?,
        ),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- my account

pub struct SessionRow {
    pub id: String,
    pub current: bool,
    pub created: String,
    pub last_seen: String,
    pub ip: String,
    pub device: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Nav,
    me: UserRow,
    can_email: bool,
    can_sms: bool,
    mfa: authn::mfa::MfaSummary,
    mfa_since: String,
    sessions: Vec<SessionRow>,
    notice: Option<String>,
    error: Option<String>,
}

fn account_page(
    st: &AppState,
    u: &ConsoleUser,
    notice: Option<String>,
    error: Option<String>,
) -> Result<AccountPage, Error> {
    let r = st.svc.store.read()?;
    let list = session::list_for_user(&r, &u.user.id)?;
    let mfa = authn::mfa::summary(&r, &u.user.id)?;
    let available = authn::mfa::available_methods(&st.svc)?;
    let mfa_since = mfa.totp_since.map(rfc3339).unwrap_or_default();
    let sessions = list
        .iter()
        .map(|(h, s)| SessionRow {
            id: hex::encode(h),
            current: *h == u.session_hash,
            created: rfc3339(s.created_at),
            last_seen: rfc3339(s.last_seen),
            ip: s.ip.clone().unwrap_or_default(),
            device: s.user_agent.clone().unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    Ok(AccountPage {
        nav: nav(u, "account"),
        me: UserRow::new(
            &u.user,
            identity::last_sign_in(&st.svc.store.read()?, &u.user.id)?,
        ),
        mfa,
        mfa_since,
        can_email: available.contains(&"email"),
        can_sms: available.contains(&"sms"),
        sessions,
        notice,
        error,
    })
}

async fn account(st: web::Data<AppState>, u: ConsoleUser, q: web::Query<Notice>) -> PageResult {
    render(
        StatusCode::OK,
        &account_page(&st, &u, notice_text(q.notice.as_deref()), None)?,
    )
}

#[derive(Deserialize)]
struct ChangePasswordForm {
    current_password: Password,
    password: Password,
    password_confirm: Password,
    csrf_token: String,
}

async fn account_password(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ChangePasswordForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let f = f.into_inner();
    let result = async {
        confirmed(&f.password, &f.password_confirm)?;
        authn::change_password(
            &st.svc,
            &u.principal(),
            &f.current_password,
            f.password.clone(),
            Some(&u.session_hash),
            &source(&req),
        )
        .await
    }
    .await;
    match result {
        Ok(()) => Ok(redirect("/admin/account?notice=password")),
        Err(e @ Error::Invalid { .. }) => render(
            StatusCode::BAD_REQUEST,
            &account_page(&st, &u, None, Some(e.public_message()))?,
        ),
        Err(e) => Err(e.into()),
    }
}

async fn end_session(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    authn::end_session(&st.svc, &u.user, &id, &source(&req))?;
    Ok(redirect("/admin/account?notice=ended"))
}

async fn end_other_sessions(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    authn::end_other_sessions(&st.svc, &u.principal(), &u.session_hash, &source(&req))?;
    Ok(redirect("/admin/account?notice=ended_others"))
}

// ---------------------------------------------------------------- two-factor

#[derive(Template)]
#[template(path = "mfa_enroll.html")]
struct EnrollPage {
    nav: Nav,
    secret: String,
    qr: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesPage {
    nav: Nav,
    codes: Vec<String>,
}

/// The otpauth URI as a QR code: an SVG in a data URI (no inline markup from the encoder).
fn qr_data_uri(uri: &str) -> Result<String, Error> {
    use base64::Engine;
    let code =
        qrcode::QrCode::new(uri.as_bytes()).map_err(|e| Error::internal(format!("qr: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

fn enroll_page(
    st: &AppState,
    u: &ConsoleUser,
    error: Option<String>,
) -> Result<Option<EnrollPage>, Error> {
    Ok(match authn::mfa::pending_uri(&st.svc, &u.user)? {
        Some((secret, uri)) => Some(EnrollPage {
            nav: nav(u, "account"),
            secret,
            qr: qr_data_uri(&uri)?,
            error,
        }),
        None => None,
    })
}

/// The proof fields of the account page's "add a factor" and "new recovery
/// codes" forms (present once a factor is active).
#[derive(Deserialize)]
struct ProofForm {
    csrf_token: String,
    current_password: Option<Password>,
    method: Option<String>,
    code: Option<String>,
    phone: Option<String>,
}

impl ProofForm {
    fn proof(&self) -> Result<Option<authn::Proof<'_>>, Error> {
        let method = authn::mfa::MfaMethod::parse_opt(self.method.as_deref())?;
        Ok(self.current_password.as_ref().map(|password| authn::Proof {
            password,
            method,
            code: self.code.as_deref(),
        }))
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
            &account_page(st, u, None, Some(e.public_message()))?,
        ),
        e => Err(e.into()),
    }
}

async fn totp_start(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = reauth_gate(&st, &u, "/admin/account")? {
        return Ok(r);
    }
    let started = match f.proof() {
        Ok(p) => authn::mfa::start_totp(&st.svc, &u.user, p.as_ref(), &source(&req)).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(_) => Ok(redirect("/admin/account/mfa/totp")),
        Err(e) => account_refusal(&st, &u, e),
    }
}

async fn totp_page(st: web::Data<AppState>, u: ConsoleUser) -> PageResult {
    match enroll_page(&st, &u, None)? {
        Some(p) => render(StatusCode::OK, &p),
        None => Ok(redirect("/admin/account")),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
    csrf_token: String,
}

async fn totp_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CodeForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let result = authn::mfa::confirm_totp(&st.svc, &u.user, &f.code, &source(&req));
    if result.is_ok() {
        // Enrolled: this session is now a full one.
        let mut tx = st.svc.store.write()?;
        session::refresh_auth(&mut tx, &u.session_hash, st.svc.now(), true)?;
        tx.commit()?;
    }
    match result {
        Ok(codes) if codes.is_empty() => Ok(redirect("/admin/account?notice=mfa_on")),
        Ok(codes) => render(
            StatusCode::OK,
            &CodesPage {
                nav: nav(&u, "account"),
                codes,
            },
        ),
        Err(e @ Error::Invalid { .. }) => match enroll_page(&st, &u, Some(e.public_message()))? {
            Some(p) => render(StatusCode::BAD_REQUEST, &p),
            None => Ok(redirect("/admin/account")),
        },
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "mfa_code.html")]
struct CodeConfirmPage {
    nav: Nav,
    method: &'static str,
    target: String,
    error: Option<String>,
}

async fn code_start_email(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = reauth_gate(&st, &u, "/admin/account")? {
        return Ok(r);
    }
    code_started(&req, &st, &u, "email", &f).await
}

async fn code_start_sms(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = reauth_gate(&st, &u, "/admin/account")? {
        return Ok(r);
    }
    code_started(&req, &st, &u, "sms", &f).await
}

async fn code_started(
    req: &HttpRequest,
    st: &AppState,
    u: &ConsoleUser,
    method: &'static str,
    f: &ProofForm,
) -> PageResult {
    let phone = if method == "sms" {
        Some(f.phone.as_deref().unwrap_or(""))
    } else {
        None
    };
    let started = match f.proof() {
        Ok(p) => {
            authn::mfa::start_code_enrollment(
                &st.svc,
                &u.user,
                method,
                phone,
                p.as_ref(),
                &source(req),
            )
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
                    method,
                    target,
                    error: None,
                },
            )
        }
        Err(e) => account_refusal(st, u, e),
    }
}

#[derive(Deserialize)]
struct CodeConfirmForm {
    method: String,
    target: Option<String>,
    code: String,
    csrf_token: String,
}

async fn code_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CodeConfirmForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let method: &'static str = if f.method == "sms" { "sms" } else { "email" };
    match authn::mfa::confirm_code_enrollment(&st.svc, &u.user, method, &f.code, &source(&req)) {
        Ok(codes) => {
            let mut tx = st.svc.store.write()?;
            session::refresh_auth(&mut tx, &u.session_hash, st.svc.now(), true)?;
            tx.commit()?;
            if codes.is_empty() {
                Ok(redirect("/admin/account?notice=mfa_on"))
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
                method,
                target: f.target.clone().unwrap_or_default(),
                error: Some(e.public_message()),
            };
            render(StatusCode::BAD_REQUEST, &p)
        }
        Err(e) => Err(e.into()),
    }
}

async fn recovery_new(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ProofForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = reauth_gate(&st, &u, "/admin/account")? {
        return Ok(r);
    }
    let made = match f.proof() {
        Ok(Some(p)) => authn::mfa::regenerate_recovery(&st.svc, &u.user, &p, &source(&req)).await,
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
struct RemoveMfaForm {
    current_password: Password,
    method: Option<String>,
    code: Option<String>,
    csrf_token: String,
}

async fn mfa_remove(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<RemoveMfaForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = reauth_gate(&st, &u, "/admin/account")? {
        return Ok(r);
    }
    let removed = match authn::mfa::MfaMethod::parse_opt(f.method.as_deref()) {
        Ok(method) => {
            let proof = authn::Proof {
                password: &f.current_password,
                method,
                code: f.code.as_deref(),
            };
            authn::mfa::remove_all_own(&st.svc, &u.principal(), &proof, &source(&req)).await
        }
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => Ok(redirect("/admin/account?notice=mfa_off")),
        Err(
            e @ (Error::Invalid { .. }
            | Error::InvalidCode
            | Error::ProofRefused
            | Error::Conflict(_)
            | Error::Forbidden(_)),
        ) => render(
            StatusCode::BAD_REQUEST,
            &account_page(&st, &u, None, Some(e.public_message()))?,
        ),
        Err(e) => Err(e.into()),
    }
}

/// Sends an e-mail or SMS code for the removal form (the proof of a current factor).
async fn proof_code_send(
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SendForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let (notice, error) = match authn::mfa::send_reauth_code(&st.svc, &u.user, &f.method).await {
        Ok(()) => (
            Some(format!(
                "A code was sent by {}; enter it below to remove two-factor.",
                if f.method == "sms" { "SMS" } else { "e-mail" }
            )),
            None,
        ),
        Err(e @ (Error::Conflict(_) | Error::Invalid { .. } | Error::Forbidden(_))) => {
            (None, Some(e.public_message()))
        }
        Err(e) => return Err(e.into()),
    };
    render(StatusCode::OK, &account_page(&st, &u, notice, error)?)
}

async fn user_mfa_reset(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    require(&st, &req, &u, Permission::ManageUsers)?;
    let uid = UserId::parse(&id)?;
    authn::mfa::reset(&st.svc, &u.principal(), &source(&req), &uid)?;
    Ok(redirect(&format!(
        "/admin/users/{}?notice=mfa_reset",
        uid.as_str()
    )))
}

// ---------------------------------------------------------------- policy, re-authentication

/// Sends the user to confirm who they are when the last proof is older than
/// the policy's window; `rd` is where to come back to.
pub(crate) fn reauth_gate(
    st: &AppState,
    u: &ConsoleUser,
    rd: &str,
) -> Result<Option<HttpResponse>, Error> {
    match wauth::require_recent_auth(&st.svc, u.auth_at) {
        Ok(()) => Ok(None),
        Err(Error::ReauthRequired) => Ok(Some(redirect(&format!("/admin/reauth?rd={}", enc(rd))))),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "mfa_required.html")]
struct MfaRequiredPage {
    nav: Nav,
}

async fn mfa_required_page(u: ConsoleUser) -> PageResult {
    render(
        StatusCode::OK,
        &MfaRequiredPage {
            nav: nav(&u, "account"),
        },
    )
}

#[derive(Template)]
#[template(path = "reauth.html")]
struct ReauthPage {
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
    selected: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ReauthPage, Error> {
    let methods = authn::mfa::summary(&st.svc.store.read()?, &u.user.id)?.methods;
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

async fn reauth_page(
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<LoginQuery>,
) -> PageResult {
    render(
        StatusCode::OK,
        &reauth_view(&st, &u, safe_rd(q.rd.as_deref()), "totp", None, None)?,
    )
}

#[derive(Deserialize)]
struct ReauthForm {
    password: Password,
    method: Option<String>,
    code: Option<String>,
    csrf_token: String,
    rd: Option<String>,
}

async fn reauth_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ReauthForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let rd = safe_rd(f.rd.as_deref());
    let method = f.method.as_deref();
    match authn::reauthenticate(
        &st.svc,
        &u.user,
        &u.session_hash,
        &f.password,
        method,
        f.code.as_deref(),
        &source(&req),
    )
    .await
    {
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
                method.unwrap_or("totp"),
                None,
                Some(e.public_message()),
            )?;
            render(StatusCode::UNAUTHORIZED, &p)
        }
        Err(e) => Err(e.into()),
    }
}

async fn reauth_send(
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SendForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let rd = safe_rd(f.rd.as_deref());
    let (notice, error) = match authn::mfa::send_reauth_code(&st.svc, &u.user, &f.method).await {
        Ok(()) => (
            Some(format!(
                "A code was sent by {}.",
                if f.method == "sms" { "SMS" } else { "e-mail" }
            )),
            None,
        ),
        Err(e @ (Error::Conflict(_) | Error::Invalid { .. } | Error::Forbidden(_))) => {
            (None, Some(e.public_message()))
        }
        Err(e) => return Err(e.into()),
    };
    render(
        StatusCode::OK,
        &reauth_view(&st, &u, rd, &f.method, notice, error)?,
    )
}

#[derive(Template)]
#[template(path = "settings_security.html")]
struct SettingsPage {
    nav: Nav,
    mfa_scope: &'static str,
    p: crate::policy::SecurityPolicy,
    mode: &'static str,
    role_admin: bool,
    role_user: bool,
    role_owner: bool,
    idle_minutes: i64,
    absolute_hours: i64,
    reauth_minutes: i64,
    method_totp: bool,
    method_email: bool,
    method_sms: bool,
    email_ready: bool,
    sms_ready: bool,
    notice: Option<String>,
    error: Option<String>,
}

fn settings_view(
    st: &AppState,
    u: &ConsoleUser,
    p: crate::policy::SecurityPolicy,
    notice: Option<String>,
    error: Option<String>,
) -> SettingsPage {
    use crate::policy::MfaMode;
    let sso = st
        .svc
        .store
        .read()
        .and_then(|r| crate::sso::settings(&r))
        .unwrap_or_default();
    SettingsPage {
        nav: nav(u, "settings"),
        mfa_scope: crate::web::sso::mfa_scope(&sso),
        mode: match p.mfa.mode {
            MfaMode::Off => "off",
            MfaMode::All => "all",
            MfaMode::Roles => "roles",
        },
        role_admin: p.mfa.roles.contains(&Role::Admin),
        role_user: p.mfa.roles.contains(&Role::User),
        role_owner: p.mfa.roles.contains(&Role::Owner),
        idle_minutes: p.session.idle_timeout_secs / 60,
        absolute_hours: p.session.absolute_lifetime_secs / 3600,
        reauth_minutes: p.session.reauth_window_secs / 60,
        method_totp: p.mfa.methods.iter().any(|m| m == "totp"),
        method_email: p.mfa.methods.iter().any(|m| m == "email"),
        method_sms: p.mfa.methods.iter().any(|m| m == "sms"),
        email_ready: crate::notify::email_configured(&st.svc.settings.smtp),
        sms_ready: crate::notify::sms_configured(&st.svc.settings.sms),
        p,
        notice,
        error,
    }
}

async fn settings_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<Notice>,
) -> PageResult {
    require(&st, &req, &u, Permission::ManageSecurity)?;
    let p = crate::policy::current(&st.svc)?;
    render(
        StatusCode::OK,
        &settings_view(&st, &u, p, notice_text(q.notice.as_deref()), None),
    )
}

#[derive(Deserialize)]
struct SettingsForm {
    mfa_mode: String,
    role_admin: Option<String>,
    role_user: Option<String>,
    role_owner: Option<String>,
    idle_minutes: i64,
    absolute_hours: i64,
    reauth_minutes: i64,
    single_session: Option<String>,
    method_totp: Option<String>,
    method_email: Option<String>,
    method_sms: Option<String>,
    csrf_token: String,
}

async fn settings_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SettingsForm>,
) -> PageResult {
    use crate::policy::{MfaMode, MfaPolicy, SecurityPolicy, SessionPolicy};
    u.check_csrf(&f.csrf_token)?;
    require(&st, &req, &u, Permission::ManageSecurity)?;
    if let Some(r) = reauth_gate(&st, &u, "/admin/settings/security")? {
        return Ok(r);
    }
    let mode = match f.mfa_mode.as_str() {
        "off" => MfaMode::Off,
        "all" => MfaMode::All,
        "roles" => MfaMode::Roles,
        _ => return Err(Error::invalid("mfa_mode", "must be off, all or roles").into()),
    };
    let mut roles = Vec::new();
    for (on, role) in [
        (&f.role_owner, Role::Owner),
        (&f.role_admin, Role::Admin),
        (&f.role_user, Role::User),
    ] {
        if on.is_some() {
            roles.push(role);
        }
    }
    let next = SecurityPolicy {
        mfa: MfaPolicy {
            mode,
            roles,
            methods: [
                ("totp", &f.method_totp),
                ("email", &f.method_email),
                ("sms", &f.method_sms),
            ]
            .into_iter()
            .filter(|(_, on)| on.is_some())
            .map(|(m, _)| m.to_string())
            .collect(),
        },
        session: SessionPolicy {
            idle_timeout_secs: f.idle_minutes.saturating_mul(60),
            absolute_lifetime_secs: f.absolute_hours.saturating_mul(3600),
            reauth_window_secs: f.reauth_minutes.saturating_mul(60),
            single_session: f.single_session.is_some(),
        },
    };
    match crate::policy::update(&st.svc, &u.principal(), &source(&req), next.clone()) {
        Ok(_) => Ok(redirect("/admin/settings/security?notice=saved")),
        Err(e @ Error::Invalid { .. }) => render(
            StatusCode::BAD_REQUEST,
            &settings_view(&st, &u, next, None, Some(e.public_message())),
        ),
        Err(e) => Err(e.into()),
    }
}

async fn user_end_sessions(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    require(&st, &req, &u, Permission::ManageUsers)?;
    let uid = UserId::parse(&id)?;
    authn::end_user_sessions(&st.svc, &u.principal(), &source(&req), &uid)?;
    Ok(redirect(&format!(
        "/admin/users/{}?notice=sessions_ended",
        uid.as_str()
    )))
}

// ---------------------------------------------------------------- audit

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPageT {
    nav: Nav,
    rows: Vec<EventRow>,
    actor: String,
    action: String,
    outcome: String,
    since: String,
    until: String,
    page: usize,
    more: bool,
    query: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "audit_table.html")]
struct AuditTable {
    rows: Vec<EventRow>,
    page: usize,
    more: bool,
    query: String,
}

#[derive(Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<usize>,
}

pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn audit_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<AuditQuery>,
) -> PageResult {
    require(&st, &req, &u, Permission::ReadAudit)?;
    let q = q.into_inner();
    let filter = audit::Filter {
        actor: q.actor.clone(),
        action: q.action.clone(),
        outcome: q.outcome.clone(),
        since: q.since.clone(),
        until: q.until.clone(),
        workspace: None,
    };
    let page = q.page.unwrap_or(1).max(1);
    // Refusals wait for their group commit; whoever reads the log sees them.
    crate::access::flush_denials(&st.svc)?;
    let (rows, more, error) = match audit::query(
        &st.svc.store.read()?,
        &filter,
        (page - 1) * PER_PAGE,
        PER_PAGE,
    ) {
        Ok((ev, more)) => (ev.iter().map(EventRow::from).collect(), more, None),
        Err(e @ Error::Invalid { .. }) => (Vec::new(), false, Some(e.public_message())),
        Err(e) => return Err(e.into()),
    };
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let query = format!(
        "actor={}&action={}&outcome={}&since={}&until={}",
        enc(&s(&q.actor)),
        enc(&s(&q.action)),
        enc(&s(&q.outcome)),
        enc(&s(&q.since)),
        enc(&s(&q.until))
    );
    if is_htmx(&req) && error.is_none() {
        return render(
            StatusCode::OK,
            &AuditTable {
                rows,
                page,
                more,
                query,
            },
        );
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let p = AuditPageT {
        nav: nav(&u, "audit"),
        rows,
        actor: s(&q.actor),
        action: s(&q.action),
        outcome: s(&q.outcome),
        since: s(&q.since),
        until: s(&q.until),
        page,
        more,
        query,
        error,
    };
    render(status, &p)
}

// ---------------------------------------------------------------- keys

pub struct KeyRow {
    pub version: u32,
    pub active: bool,
    pub created: String,
    pub records: u64,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    nav: Nav,
    rows: Vec<KeyRow>,
    total: u64,
    backlog: u64,
    percent: u64,
    notice: Option<String>,
}

async fn keys_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<Notice>,
) -> PageResult {
    require(&st, &req, &u, Permission::ManageKeys)?;
    let status = keys::status(&st.svc)?;
    let total: u64 = status.iter().map(|k| k.records).sum();
    let backlog: u64 = status.iter().filter(|k| !k.active).map(|k| k.records).sum();
    let rows = status
        .iter()
        .rev()
        .map(|k| KeyRow {
            version: k.version,
            active: k.active,
            created: rfc3339(k.created_at),
            records: k.records,
        })
        .collect();
    let percent = ((total - backlog) * 100).checked_div(total).unwrap_or(100);
    render(
        StatusCode::OK,
        &KeysPage {
            nav: nav(&u, "keys"),
            rows,
            total,
            backlog,
            percent,
            notice: notice_text(q.notice.as_deref()),
        },
    )
}

async fn keys_rotate_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
) -> PageResult {
    require(&st, &req, &u, Permission::ManageKeys)?;
    let p = ConfirmPage {
        nav: nav(&u, "keys"),
        title: "Rotate the data key".into(),
        message: "A new data key becomes active for every new write, and every existing record is re-sealed under it in the background. Sign-in keeps working throughout. Older keys stay available to read records until re-sealing finishes.".into(),
        action: "/admin/keys/rotate".into(),
        button: "Rotate now".into(),
        cancel: "/admin/keys".into(),
    };
    render(StatusCode::OK, &p)
}

async fn keys_rotate(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    if let Some(r) = reauth_gate(&st, &u, "/admin/keys")? {
        return Ok(r);
    }
    require(&st, &req, &u, Permission::ManageKeys)?;
    crate::web::api::start_rotation(&st, u.principal(), source(&req))?;
    Ok(redirect("/admin/keys?notice=rotated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        for ok in [
            "/admin",
            "/admin/users?q=a%40b",
            "/admin/x#frag",
            "/a%25b",
            "/.//x",
        ] {
            assert!(is_local_path(ok), "{ok:?}");
        }
        for bad in [
            "",
            "admin",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil",
            "/ /evil",
            "/\u{3000}/evil",
            "/%2F%2Fevil",
            "/%5Cevil",
            "/%09/evil",
            "/%252F%252Fevil",
            "/%2525252F%2525252Fevil",
            "https://evil.example",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
            assert_eq!(safe_rd(Some(bad)), "/admin");
        }
        assert!(!is_local_path(&format!("/{}", "a".repeat(3000))));
    }
}
