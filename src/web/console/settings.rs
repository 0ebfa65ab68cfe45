//! Settings → Security: the security policy form.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::authn::mfa::MfaMethod;
use crate::error::Error;
use crate::identity::Role;
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, reauth_gate_for};
use crate::web::html::{Nav, PageResult, nav, redirect, render};
use crate::web::notice::{Notice, SettingsNotice, notice_text, notice_url};

#[derive(Template)]
#[template(path = "settings_security.html")]
pub(super) struct SettingsPage {
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
    let sso = crate::sso::current_settings(&st.svc).unwrap_or_default();
    SettingsPage {
        nav: nav(u, "settings"),
        mfa_scope: crate::web::html::mfa_scope(&sso),
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
        method_totp: p.mfa.allows(MfaMethod::Totp),
        method_email: p.mfa.allows(MfaMethod::Email),
        method_sms: p.mfa.allows(MfaMethod::Sms),
        email_ready: crate::notify::email_configured(&st.svc.settings.smtp),
        sms_ready: crate::notify::sms_configured(&st.svc.settings.sms),
        p,
        notice,
        error,
    }
}

pub(super) async fn settings_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<Notice<SettingsNotice>>,
) -> PageResult {
    let p = crate::authn::policy_for(&st.svc, &u.actor(&req))?;
    render(
        StatusCode::OK,
        &settings_view(&st, &u, p, notice_text(q.notice), None),
    )
}

#[derive(Deserialize, serde::Serialize)]
pub(super) struct SettingsForm {
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

pub(super) async fn settings_post(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SettingsForm>,
) -> PageResult {
    use crate::policy::{MfaMode, MfaPolicy, SecurityPolicy, SessionPolicy};
    u.check_csrf(&f.csrf_token)?;
    crate::authn::may_change_policy(&st.svc, &u.actor(&req))?;
    if let Some(r) = reauth_gate_for(
        &st,
        &u,
        "/admin/settings/security",
        crate::web::KeptForm {
            action: "/admin/settings/security".into(),
            purpose: "to change the security settings".into(),
            fields: crate::web::html::form_fields(&*f),
            ..Default::default()
        },
    )? {
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
                (MfaMethod::Totp, &f.method_totp),
                (MfaMethod::Email, &f.method_email),
                (MfaMethod::Sms, &f.method_sms),
            ]
            .into_iter()
            .filter(|(_, on)| on.is_some())
            .map(|(m, _)| m.as_str().to_string())
            .collect(),
        },
        session: SessionPolicy {
            idle_timeout_secs: f.idle_minutes.saturating_mul(60),
            absolute_lifetime_secs: f.absolute_hours.saturating_mul(3600),
            reauth_window_secs: f.reauth_minutes.saturating_mul(60),
            single_session: f.single_session.is_some(),
        },
    };
    match crate::authn::update_policy(&st.svc, &u.actor(&req), next.clone()) {
        Ok(_) => Ok(redirect(&notice_url(
            "/admin/settings/security",
            SettingsNotice::Saved,
        ))),
        Err(e @ Error::Invalid { .. }) => crate::web::html::render_failed(
            StatusCode::BAD_REQUEST,
            &settings_view(&st, &u, next, None, Some(crate::web::html::words(&e))),
            &req,
            &e,
            None,
        ),
        Err(e) => Err(e.into()),
    }
}
