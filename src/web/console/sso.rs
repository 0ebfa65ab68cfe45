//! Console pages for single sign-on (Settings → Security → SSO): the SSO
//! status with enforcement, test group and excluded users; connections with
//! the values to paste into the IdP, provider labels, and "Test connection",
//! which runs a real sign-in through the IdP without signing anyone in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::Role;
use crate::sso::{self, Connection, ConnectionInput, Protocol, RoleRule, SsoSettingsInput};
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, reauth_gate_for, resumed_form, source};
use crate::web::html::{
    ConfirmPage, CsrfForm, Nav, PageResult, ResumedQuery, form_fields, nav, redirect, render,
    render_resumed,
};
use crate::web::notice::{ConnectionNotice, Notice, SsoNotice, notice_text, notice_url};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/settings/sso", web::get().to(page))
        .route("/admin/settings/sso", web::post().to(save_settings))
        .route(
            "/admin/settings/sso/connections",
            web::post().to(create_connection),
        )
        .route("/admin/settings/sso/{id}", web::get().to(connection_page))
        .route(
            "/admin/settings/sso/{id}",
            web::post().to(update_connection),
        )
        .route("/admin/settings/sso/{id}/test", web::post().to(test))
        .route(
            "/admin/settings/sso/{id}/delete",
            web::get().to(delete_confirm),
        )
        .route("/admin/settings/sso/{id}/delete", web::post().to(delete));
}

pub(super) struct Row {
    id: String,
    name: String,
    protocol: &'static str,
    provider: String,
    tested: bool,
    test_state: &'static str,
}

#[derive(Template)]
#[template(path = "sso.html")]
pub(super) struct SsoPage {
    nav: Nav,
    notice: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
    mfa_scope: &'static str,
    connections: Vec<Row>,
    enabled: bool,
    enforcement: &'static str,
    excluded: String,
    test_group: String,
    owner: String,
    /// The provider chooser, grouped by protocol: (group label, presets).
    groups: Vec<(&'static str, Vec<&'static sso::Preset>)>,
    /// The chosen preset: the new-connection form shows only its protocol's
    /// fields, in its words.
    chosen: &'static sso::Preset,
    chosen_key: String,
    /// What was typed into a refused new-connection form (never the secret).
    typed: Typed,
    base: String,
}

/// The new-connection form's values, kept when it is refused.
#[derive(Default)]
pub(super) struct Typed {
    id: String,
    name: String,
    issuer: String,
    client_id: String,
    metadata_url: String,
    sso_url: String,
    realm: String,
}

fn protocol_label(p: Protocol) -> &'static str {
    match p {
        Protocol::Oidc => "OpenID Connect",
        Protocol::Saml => "SAML 2.0",
        Protocol::Wsfed => "WS-Federation",
    }
}

fn preset_key(p: &sso::Preset) -> String {
    format!("{}:{}", p.protocol.as_str(), p.provider)
}

fn parse_protocol(s: &str) -> Result<Protocol, Error> {
    match s {
        "oidc" => Ok(Protocol::Oidc),
        "saml" => Ok(Protocol::Saml),
        "wsfed" => Ok(Protocol::Wsfed),
        _ => Err(Error::invalid(
            "protocol",
            "choose OpenID Connect (oidc), SAML 2.0 (saml) or WS-Federation (wsfed)",
        )),
    }
}

/// The preset a chooser value (`saml:okta`) names, or why none.
fn preset_named(key: &str) -> Result<&'static sso::Preset, Error> {
    let (proto, provider) = key.split_once(':').unwrap_or(("", key));
    let protocol = parse_protocol(proto)?;
    sso::preset(protocol, provider).ok_or_else(|| {
        Error::invalid(
            "preset",
            format!(
                "there is no {} preset named {provider:?}; choose one of: {}",
                protocol_label(protocol),
                sso::PRESETS
                    .iter()
                    .filter(|p| p.protocol == protocol)
                    .map(|p| p.label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// The chooser value of a page's query, falling back to the first preset.
/// An unknown provider of a known protocol falls back to its "other" preset.
fn chosen_preset(key: Option<&str>) -> &'static sso::Preset {
    key.and_then(|k| {
        preset_named(k).ok().or_else(|| {
            let proto = parse_protocol(k.split_once(':')?.0).ok()?;
            sso::preset(proto, "other")
        })
    })
    .unwrap_or(&sso::PRESETS[0])
}

fn emails_text(users: &[crate::identity::User], skip_owner: bool) -> String {
    users
        .iter()
        .filter(|u| !(skip_owner && u.role == Role::Owner))
        .map(|u| u.email.as_str().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn sso_view(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    notice: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
) -> Result<SsoPage, Error> {
    sso_view_with(
        st,
        req,
        u,
        notice,
        error,
        warnings,
        (&sso::PRESETS[0], Typed::default()),
    )
}

fn sso_view_with(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    notice: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
    // The preset the form shows, and what was typed into it.
    (chosen, typed): (&'static sso::Preset, Typed),
) -> Result<SsoPage, Error> {
    let actor = u.actor(req);
    let s = sso::settings_for(&st.svc, &actor)?;
    let presets = sso::presets_for(&st.svc, &actor)?;
    let excluded = crate::identity::find_many(&st.svc, &s.excluded_users)?;
    let test_group = crate::identity::find_many(&st.svc, &s.test_group)?;
    let owner = excluded
        .iter()
        .find(|u| u.role == Role::Owner)
        .map(|u| u.email.as_str().to_string())
        .unwrap_or_default();
    Ok(SsoPage {
        nav: nav(u, "settings"),
        notice,
        error,
        warnings,
        mfa_scope: crate::web::html::mfa_scope(&s),
        connections: sso::list_for(&st.svc, &actor)?
            .into_iter()
            .map(|c| Row {
                tested: c.tested_ok(),
                test_state: match &c.last_test {
                    None => "not tested",
                    Some(t) if t.ok => "passed",
                    Some(_) => "failed",
                },
                provider: sso::preset(c.protocol, &c.provider)
                    .map(|p| p.label.to_string())
                    .unwrap_or(c.provider),
                id: c.id,
                name: c.name,
                protocol: protocol_label(c.protocol),
            })
            .collect(),
        enabled: s.enabled,
        enforcement: s.enforcement.as_str(),
        excluded: emails_text(&excluded, true),
        test_group: emails_text(&test_group, false),
        owner,
        groups: [Protocol::Oidc, Protocol::Saml, Protocol::Wsfed]
            .into_iter()
            .map(|proto| {
                (
                    protocol_label(proto),
                    presets.iter().filter(|p| p.protocol == proto).collect(),
                )
            })
            .collect(),
        chosen_key: preset_key(chosen),
        chosen,
        typed,
        base: st.svc.public_url(),
    })
}

#[derive(Deserialize)]
pub(super) struct PresetQuery {
    #[serde(default)]
    preset: Option<String>,
}

pub(super) async fn page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<Notice<SsoNotice>>,
    p: web::Query<PresetQuery>,
    r: web::Query<ResumedQuery>,
) -> PageResult {
    let resumed = resumed_form(&st, &u, r.resumed.as_deref());
    // A resumed new connection shows the preset it was made with.
    let kept = |k: &str| {
        resumed
            .as_ref()?
            .fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let preset =
        kept("preset").or_else(|| Some(format!("{}:{}", kept("protocol")?, kept("provider")?)));
    let chosen = chosen_preset(preset.as_deref().or(p.preset.as_deref()));
    render_resumed(
        &sso_view_with(
            &st,
            &req,
            &u,
            notice_text(q.notice),
            None,
            Vec::new(),
            (chosen, Typed::default()),
        )?,
        resumed.as_ref(),
    )
}

fn lines(s: &str) -> Vec<String> {
    s.split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Deserialize, serde::Serialize)]
pub(super) struct SettingsForm {
    csrf_token: String,
    enabled: Option<String>,
    enforcement: String,
    #[serde(default)]
    excluded_users: String,
    #[serde(default)]
    test_group: String,
}

pub(super) async fn save_settings(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SettingsForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sso::may_manage(&st.svc, &u.actor(&req))?;
    // No secret on this form: completed at once after "Confirm it's you".
    let kept = crate::web::KeptForm {
        action: "/admin/settings/sso".into(),
        purpose: "to change how single sign-on is enforced".into(),
        fields: form_fields(&*f),
        ..Default::default()
    };
    if let Some(r) = reauth_gate_for(&st, &u, "/admin/settings/sso", kept)? {
        return Ok(r);
    }
    let enforcement = match f.enforcement.as_str() {
        "off" => sso::Enforcement::Off,
        "test_group" => sso::Enforcement::TestGroup,
        "enforced" => sso::Enforcement::Enforced,
        _ => {
            return Err(
                Error::invalid("enforcement", "must be off, test_group or enforced").into(),
            );
        }
    };
    let input = SsoSettingsInput {
        enabled: f.enabled.is_some(),
        enforcement,
        test_group: lines(&f.test_group),
        excluded_users: lines(&f.excluded_users),
    };
    match sso::update_settings(&st.svc, &u.actor(&req), input) {
        Ok((_, warnings)) if warnings.is_empty() => Ok(redirect(&notice_url(
            "/admin/settings/sso",
            SsoNotice::Saved,
        ))),
        Ok((_, warnings)) => render(
            StatusCode::OK,
            &sso_view(
                &st,
                &req,
                &u,
                notice_text(Some(SsoNotice::Saved)),
                None,
                warnings,
            )?,
        ),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => render(
            StatusCode::BAD_REQUEST,
            &sso_view(
                &st,
                &req,
                &u,
                None,
                Some(crate::web::html::words(&e)),
                Vec::new(),
            )?,
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, serde::Serialize)]
pub(super) struct ConnectionForm {
    csrf_token: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    /// The new-connection form's chooser: protocol and provider in one
    /// value (`saml:okta`), so a provider of one protocol cannot be sent
    /// with another.
    #[serde(default)]
    preset: Option<String>,
    #[serde(default)]
    provider: String,
    name: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    scopes: Option<String>,
    #[serde(default)]
    role_attribute: Option<String>,
    #[serde(default)]
    role_rules: Option<String>,
    #[serde(default)]
    default_role: Option<String>,
    #[serde(default)]
    jit: Option<String>,
    #[serde(default)]
    trust_unverified_email: Option<String>,
    #[serde(default)]
    sso_url: String,
    #[serde(default)]
    certificate_1: String,
    #[serde(default)]
    certificate_2: String,
    #[serde(default)]
    metadata_url: String,
    #[serde(default)]
    metadata_xml: String,
    #[serde(default)]
    allow_idp_initiated: Option<String>,
    #[serde(default)]
    allow_sha1: Option<String>,
    #[serde(default)]
    realm: String,
    #[serde(default)]
    sign_requests: Option<String>,
    #[serde(default)]
    allowed_domains: Option<String>,
}

fn parse_rules(text: &str) -> Result<Vec<RoleRule>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (value, role) = l.rsplit_once('=').ok_or_else(|| {
                Error::invalid(
                    "role_rules",
                    format!("{l:?}: write \"value = admin\" or \"value = user\""),
                )
            })?;
            Ok(RoleRule {
                value: value.trim().to_string(),
                role: Role::parse(role.trim())?,
            })
        })
        .collect()
}

impl ConnectionForm {
    /// `edit`: the full form of the connection page (checkboxes mean off when absent).
    fn input(&self, edit: bool) -> Result<ConnectionInput, Error> {
        let named = self.protocol.as_deref().map(parse_protocol).transpose()?;
        let (protocol, provider) = match self.preset.as_deref().filter(|p| !p.is_empty()) {
            Some(key) => {
                let p = preset_named(key)?;
                if named.is_some_and(|n| n != p.protocol)
                    || (!self.provider.is_empty() && self.provider != p.provider)
                {
                    return Err(Error::invalid(
                        "preset",
                        format!(
                            "{} is a provider for {}, not for the protocol this form also names; \
                             choose the provider again from the list",
                            p.label,
                            protocol_label(p.protocol)
                        ),
                    ));
                }
                (p.protocol, p.provider.to_string())
            }
            None => (named.unwrap_or(Protocol::Oidc), self.provider.clone()),
        };
        Ok(ConnectionInput {
            id: self.id.clone(),
            protocol,
            provider,
            name: self.name.clone(),
            issuer: Some(self.issuer.clone()).filter(|i| !i.trim().is_empty()),
            client_id: Some(self.client_id.clone()),
            client_secret: Some(self.client_secret.clone()),
            scopes: self
                .scopes
                .as_ref()
                .map(|s| s.split_whitespace().map(str::to_string).collect()),
            trust_unverified_email: edit.then_some(self.trust_unverified_email.is_some()),
            jit: edit.then_some(self.jit.is_some()),
            role_attribute: self.role_attribute.clone(),
            role_rules: self.role_rules.as_deref().map(parse_rules).transpose()?,
            default_role: self.default_role.as_deref().map(Role::parse).transpose()?,
            sso_url: Some(self.sso_url.clone()).filter(|u| !u.trim().is_empty()),
            certificates: Some(
                [&self.certificate_1, &self.certificate_2]
                    .into_iter()
                    .filter(|c| !c.trim().is_empty())
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .filter(|c| !c.is_empty()),
            metadata_url: Some(self.metadata_url.clone()).filter(|u| !u.trim().is_empty()),
            metadata_xml: Some(self.metadata_xml.clone()).filter(|u| !u.trim().is_empty()),
            allow_idp_initiated: edit.then_some(self.allow_idp_initiated.is_some()),
            allow_sha1: edit.then_some(self.allow_sha1.is_some()),
            clock_skew_secs: None,
            realm: Some(self.realm.clone()).filter(|r| !r.trim().is_empty()),
            sign_requests: edit.then_some(self.sign_requests.is_some()),
            allowed_domains: self.allowed_domains.as_ref().map(|s| {
                s.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
        })
    }
}

impl ConnectionForm {
    /// The form kept across "Confirm it's you": every field but the client
    /// secret, shown again to retype it when one was typed (sent without,
    /// the change would drop it), else completed at once.
    fn kept(&self, action: &str, purpose: &str) -> crate::web::KeptForm {
        crate::web::KeptForm {
            action: action.into(),
            purpose: purpose.into(),
            fields: form_fields(self),
            reshow: !self.client_secret.trim().is_empty(),
            retype: Vec::new(),
        }
    }
}

pub(super) async fn create_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<ConnectionForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sso::may_manage(&st.svc, &u.actor(&req))?;
    if let Some(r) = reauth_gate_for(
        &st,
        &u,
        "/admin/settings/sso",
        f.kept("/admin/settings/sso/connections", "to add this connection"),
    )? {
        return Ok(r);
    }
    let input = f.input(false);
    let chosen = match &input {
        Ok(i) => sso::preset(i.protocol, &i.provider),
        Err(_) => None,
    }
    .unwrap_or_else(|| chosen_preset(f.preset.as_deref()));
    let created = match input {
        Ok(i) => sso::create(&st.svc, &u.actor(&req), i).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => Ok(redirect(&notice_url(
            &format!("/admin/settings/sso/{}", c.id),
            ConnectionNotice::Created,
        ))),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let typed = Typed {
                id: f.id.clone().unwrap_or_default(),
                name: f.name.clone(),
                issuer: f.issuer.clone(),
                client_id: f.client_id.clone(),
                metadata_url: f.metadata_url.clone(),
                sso_url: f.sso_url.clone(),
                realm: f.realm.clone(),
            };
            render(
                StatusCode::BAD_REQUEST,
                &sso_view_with(
                    &st,
                    &req,
                    &u,
                    None,
                    Some(crate::web::html::words(&e)),
                    Vec::new(),
                    (chosen, typed),
                )?,
            )
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "sso_connection.html")]
pub(super) struct ConnectionPage {
    nav: Nav,
    notice: Option<String>,
    error: Option<String>,
    c: Connection,
    preset: &'static sso::Preset,
    sp: sso::SpValues,
    test_at: String,
    claims: Vec<(String, String)>,
    scopes: String,
    rules: String,
    default_role: &'static str,
    saml: bool,
    wsfed: bool,
    certs: Vec<crate::web::html::CertificateDto>,
}

fn connection_view(
    st: &AppState,
    u: &ConsoleUser,
    c: Connection,
    notice: Option<String>,
    error: Option<String>,
) -> Result<ConnectionPage, Error> {
    let preset = sso::preset(c.protocol, &c.provider)
        .or_else(|| sso::preset(c.protocol, "other"))
        .ok_or_else(|| Error::internal("no preset"))?;
    let claims = match c.last_test.as_ref().map(|t| &t.claims) {
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(ConnectionPage {
        nav: nav(u, "settings"),
        notice,
        error,
        preset,
        sp: sso::sp_values(&st.svc, &c.id),
        test_at: c
            .last_test
            .as_ref()
            .map(|t| rfc3339(t.at))
            .unwrap_or_default(),
        claims,
        scopes: c.scopes.join(" "),
        rules: c
            .role_rules
            .iter()
            .map(|r| format!("{} = {}", r.value, r.role.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        default_role: c.default_role.as_str(),
        saml: c.protocol != Protocol::Oidc,
        wsfed: c.protocol == Protocol::Wsfed,
        certs: crate::web::html::certificate_dtos(st.svc.now(), &c.certificates),
        c,
    })
}

pub(super) async fn connection_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    q: web::Query<Notice<ConnectionNotice>>,
    r: web::Query<ResumedQuery>,
) -> PageResult {
    let c = sso::connection_for(&st.svc, &u.actor(&req), &id)?;
    let resumed = resumed_form(&st, &u, r.resumed.as_deref());
    render_resumed(
        &connection_view(&st, &u, c, notice_text(q.notice), None)?,
        resumed.as_ref(),
    )
}

pub(super) async fn update_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<ConnectionForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sso::may_manage(&st.svc, &u.actor(&req))?;
    let id = sso::parse_id(&id)?;
    let here = format!("/admin/settings/sso/{id}");
    if let Some(r) = reauth_gate_for(&st, &u, &here, f.kept(&here, "to save this connection"))? {
        return Ok(r);
    }
    let current = sso::connection_for(&st.svc, &u.actor(&req), id)?;
    let mut input = f.input(true)?;
    input.protocol = current.protocol;
    match sso::update(&st.svc, &u.actor(&req), id, input).await {
        Ok(_) => Ok(redirect(&notice_url(
            &format!("/admin/settings/sso/{id}"),
            ConnectionNotice::Updated,
        ))),
        Err(e @ Error::Invalid { .. }) => render(
            StatusCode::BAD_REQUEST,
            &connection_view(&st, &u, current, None, Some(crate::web::html::words(&e)))?,
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "to_idp.html")]
pub(super) struct ToIdpPage {
    url: String,
    name: String,
}

/// Starts a real sign-in through the IdP for the admin; the callback records
/// the result on the connection and comes back to its page.
pub(super) async fn test(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let conn = sso::connection_for(&st.svc, &u.actor(&req), &id)?;
    let id = conn.id.as_str();
    let started = match conn.protocol {
        Protocol::Oidc => {
            sso::oidc::start(&st.svc, id, "/admin", Some(&u.user), &source(&req)).await
        }
        Protocol::Saml => sso::saml::start(&st.svc, id, "/admin", Some(&u.user), &source(&req)),
        Protocol::Wsfed => sso::wsfed::start(&st.svc, id, "/admin", Some(&u.user), &source(&req)),
    };
    match started {
        Ok((url, state)) => {
            // Not a redirect: the CSP's form-action 'self' also covers where a
            // form's answer redirects, so the browser moves on by itself.
            let mut resp = render(
                StatusCode::OK,
                &ToIdpPage {
                    url,
                    name: conn.name.clone(),
                },
            )?;
            let _ = resp.add_cookie(&crate::web::extract::binding_cookie(
                st.tls,
                conn.protocol,
                state,
            ));
            Ok(resp)
        }
        Err(e @ Error::Conflict(_)) => render(
            StatusCode::BAD_GATEWAY,
            &connection_view(&st, &u, conn, None, Some(crate::web::html::words(&e)))?,
        ),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn delete_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
) -> PageResult {
    let c = sso::connection_for(&st.svc, &u.actor(&req), &id)?;
    render(
        StatusCode::OK,
        &ConfirmPage {
            nav: nav(&u, "settings"),
            title: format!("Delete the connection {}?", c.name),
            message: "Users stop seeing it on the sign-in page and its links to Gatehouse \
                      accounts are removed; the accounts themselves stay."
                .into(),
            action: format!("/admin/settings/sso/{}/delete", c.id),
            button: "Delete connection".into(),
            cancel: format!("/admin/settings/sso/{}", c.id),
        },
    )
}

pub(super) async fn delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sso::may_manage(&st.svc, &u.actor(&req))?;
    let id = sso::parse_id(&id)?;
    let kept = crate::web::KeptForm {
        action: format!("/admin/settings/sso/{id}/delete"),
        purpose: "to delete this connection".into(),
        ..Default::default()
    };
    if let Some(r) = reauth_gate_for(&st, &u, &format!("/admin/settings/sso/{id}"), kept)? {
        return Ok(r);
    }
    match sso::delete(&st.svc, &u.actor(&req), id) {
        Ok(()) => Ok(redirect(&notice_url(
            "/admin/settings/sso",
            SsoNotice::Deleted,
        ))),
        Err(e @ Error::Conflict(_)) => {
            let c = sso::connection_for(&st.svc, &u.actor(&req), id)?;
            render(
                StatusCode::CONFLICT,
                &connection_view(&st, &u, c, None, Some(crate::web::html::words(&e)))?,
            )
        }
        Err(e) => Err(e.into()),
    }
}
