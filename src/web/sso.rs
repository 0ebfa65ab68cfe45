//! Single sign-on over HTTP: `/api/v1/sso/*` (connections, presets, status
//! and enforcement) and the browser endpoints `/sso/oidc/{id}/login` and
//! `/sso/oidc/{id}/callback`, and SAML's and WS-Federation's. The sign-in in
//! flight is bound to the browser by a short cookie holding it, sealed by
//! `sso` (with its `state`: the SAML request ID, the WS-Federation `wctx`).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{self, Permission, Resource};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::identity;
use crate::sso::{self, Connection, Finished, Protocol};
use crate::web::AppState;
use crate::web::auth::{ApiCaller, source};
use crate::web::error::{ApiError, PageError, html_error};

type ApiResult = Result<HttpResponse, ApiError>;

/// The cookie that binds an OpenID sign-in at the IdP to this browser. Under
/// TLS it carries the `__Host-` prefix (Secure, `Path=/`, no Domain), so a
/// sibling subdomain cannot plant its own state in the browser (cookie
/// tossing); browsers accept that prefix only over TLS.
pub fn state_cookie_name(tls: bool) -> &'static str {
    if tls { "__Host-gh_sso" } else { "gh_sso" }
}

/// The same for SAML and WS-Federation, whose answers come back as a POST.
pub fn post_state_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-gh_sso_post"
    } else {
        "gh_sso_post"
    }
}

/// `__Host-` cookies must have `Path=/`; over plain HTTP the cookie stays
/// scoped to the SSO endpoints.
fn binding_path(tls: bool) -> &'static str {
    if tls { "/" } else { "/sso" }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_connections,
        create_connection,
        get_connection,
        update_connection,
        delete_connection,
        presets,
        get_settings,
        put_settings,
        link_user,
        unlink_user
    ),
    components(schemas(
        ConnectionDto,
        CertificateDto,
        sso::ConnectionInput,
        sso::RoleRule,
        sso::TestResult,
        sso::SpValues,
        sso::Preset,
        sso::Protocol,
        sso::Enforcement,
        sso::SsoSettingsInput,
        SettingsDto,
        SsoLinkInput
    ))
)]
struct SsoDoc;

pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    <SsoDoc as utoipa::OpenApi>::openapi()
}

/// Under `/api/v1`.
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sso/connections", web::get().to(list_connections))
        .route("/sso/connections", web::post().to(create_connection))
        .route("/sso/connections/{id}", web::get().to(get_connection))
        .route("/sso/connections/{id}", web::put().to(update_connection))
        .route("/sso/connections/{id}", web::delete().to(delete_connection))
        .route("/sso/presets", web::get().to(presets))
        .route("/sso/settings", web::get().to(get_settings))
        .route("/sso/settings", web::put().to(put_settings))
        .route("/users/{id}/sso-links", web::post().to(link_user))
        .route("/users/{id}/sso-links", web::delete().to(unlink_user));
}

/// An identity at a connection: the IdP's subject for the user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoLinkInput {
    pub connection: String,
    pub subject: String,
}

/// Link an existing user to an IdP identity (needs a recent sign-in;
/// audited). Sign-ins never link existing accounts by e-mail; this does.
#[utoipa::path(post, path = "/api/v1/users/{id}/sso-links", params(("id" = String, Path)), request_body = SsoLinkInput,
    responses((status = 204), (status = 400, body = crate::web::api::ErrorBody), (status = 409, body = crate::web::api::ErrorBody)))]
async fn link_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<SsoLinkInput>,
) -> ApiResult {
    require(&req, &st, &caller)?;
    caller.require_recent_auth(&st.svc)?;
    sso::link_user(
        &st.svc,
        &caller.principal,
        &source(&req),
        &identity::UserId::parse(&id)?,
        &body.connection,
        &body.subject,
    )?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a user's link to an IdP identity (audited).
#[utoipa::path(delete, path = "/api/v1/users/{id}/sso-links", params(("id" = String, Path)), request_body = SsoLinkInput,
    responses((status = 204), (status = 404, body = crate::web::api::ErrorBody)))]
async fn unlink_user(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<SsoLinkInput>,
) -> ApiResult {
    require(&req, &st, &caller)?;
    caller.require_recent_auth(&st.svc)?;
    sso::unlink_user(
        &st.svc,
        &caller.principal,
        &source(&req),
        &identity::UserId::parse(&id)?,
        &body.connection,
        &body.subject,
    )?;
    Ok(HttpResponse::NoContent().finish())
}

/// The browser endpoints.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sso/oidc/{id}/login", web::get().to(oidc_login))
        .route("/sso/oidc/{id}/callback", web::get().to(oidc_callback))
        .route("/sso/saml/{id}/metadata", web::get().to(saml_metadata))
        .route("/sso/saml/{id}/login", web::get().to(saml_login))
        .route("/sso/wsfed/{id}/login", web::get().to(wsfed_login))
        .service(
            web::resource("/sso/wsfed/{id}/callback")
                .app_data(
                    web::FormConfig::default()
                        .limit(crate::sso::xmldsig::MAX_BYTES + 4096)
                        .error_handler(|e, _| crate::web::error::payload_error(e.into(), false)),
                )
                .route(web::post().to(wsfed_callback)),
        )
        .service(
            web::resource("/sso/saml/{id}/acs")
                // A signed response with its certificate and attributes outgrows the form limit.
                .app_data(
                    web::FormConfig::default()
                        .limit(crate::sso::xmldsig::MAX_BYTES * 4 / 3 + 4096)
                        .error_handler(|e, _| crate::web::error::payload_error(e.into(), false)),
                )
                .route(web::post().to(saml_acs)),
        );
}

/// A connection as the API shows it: never the client secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionDto {
    pub id: String,
    pub protocol: Protocol,
    pub provider: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub trust_unverified_email: bool,
    pub jit: bool,
    /// E-mail domains whose users may sign in (empty: any; Google: also `hd`).
    pub allowed_domains: Vec<String>,
    pub role_attribute: String,
    pub role_rules: Vec<sso::RoleRule>,
    #[schema(value_type = String)]
    pub default_role: identity::Role,
    pub last_test: Option<sso::TestResult>,
    /// SAML: the IdP's single sign-on URL (WS-Federation: its sign-on endpoint).
    pub sso_url: String,
    /// WS-Federation: the sign-on endpoint (the same as `sso_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_on_url: Option<String>,
    /// SAML: the IdP's signing certificates, with their validity.
    pub certificates: Vec<CertificateDto>,
    pub allow_idp_initiated: bool,
    pub allow_sha1: bool,
    /// SAML: AuthnRequests are signed (the certificate is in the SP metadata).
    pub sign_requests: bool,
    pub clock_skew_secs: i64,
    /// WS-Federation: the realm (`wtrealm`).
    pub realm: String,
    /// The values to paste into the identity provider.
    pub sp: sso::SpValues,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An IdP certificate as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDto {
    pub pem: String,
    pub subject: String,
    pub not_after: String,
    /// Expired, or expiring within 30 days.
    pub warning: Option<String>,
}

pub fn certificate_dtos(now: Timestamp, pems: &[String]) -> Vec<CertificateDto> {
    pems.iter()
        .map(|pem| match sso::xmldsig::parse_certificate(pem) {
            Ok(c) => CertificateDto {
                pem: pem.clone(),
                subject: c.subject,
                not_after: crate::clock::rfc3339(c.not_after),
                warning: if c.not_after <= now {
                    Some("expired: signatures by it are refused".into())
                } else if c.not_after - now < 30 * 86_400 {
                    Some(format!(
                        "expires in {} days: add the IdP's next certificate",
                        (c.not_after - now) / 86_400
                    ))
                } else {
                    None
                },
            },
            Err(m) => CertificateDto {
                pem: pem.clone(),
                subject: String::new(),
                not_after: String::new(),
                warning: Some(m),
            },
        })
        .collect()
}

pub fn connection_dto(st: &AppState, c: Connection) -> ConnectionDto {
    ConnectionDto {
        certificates: certificate_dtos(st.svc.now(), &c.certificates),
        sign_on_url: (c.protocol == Protocol::Wsfed).then(|| c.sso_url.clone()),
        sso_url: c.sso_url,
        allow_idp_initiated: c.allow_idp_initiated,
        allow_sha1: c.allow_sha1,
        sign_requests: c.sign_requests,
        clock_skew_secs: c.clock_skew_secs,
        realm: c.realm,
        sp: sso::sp_values(&st.svc, &c.id),
        id: c.id,
        protocol: c.protocol,
        provider: c.provider,
        name: c.name,
        issuer: c.issuer,
        client_id: c.client_id,
        client_secret_set: !c.client_secret.is_empty(),
        scopes: c.scopes,
        trust_unverified_email: c.trust_unverified_email,
        jit: c.jit,
        allowed_domains: c.allowed_domains,
        role_attribute: c.role_attribute,
        role_rules: c.role_rules,
        default_role: c.default_role,
        last_test: c.last_test,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn require(req: &HttpRequest, st: &AppState, caller: &ApiCaller) -> Result<(), Error> {
    access::authorize(
        &st.svc,
        &caller.principal,
        Permission::ManageSecurity,
        Resource::Platform,
        &source(req),
    )
    .map(|_| ())
}

/// List SSO connections.
#[utoipa::path(get, path = "/api/v1/sso/connections", responses((status = 200, body = [ConnectionDto])))]
async fn list_connections(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
) -> ApiResult {
    require(&req, &st, &caller)?;
    let rows: Vec<ConnectionDto> = sso::list(&st.svc)?
        .into_iter()
        .map(|c| connection_dto(&st, c))
        .collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// Create an SSO connection (needs a recent sign-in; audited).
#[utoipa::path(post, path = "/api/v1/sso/connections", request_body = sso::ConnectionInput,
    responses((status = 201, body = ConnectionDto), (status = 400, body = crate::web::api::ErrorBody)))]
async fn create_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<sso::ConnectionInput>,
) -> ApiResult {
    require(&req, &st, &caller)?;
    caller.require_recent_auth(&st.svc)?;
    let c = sso::create(&st.svc, &caller.principal, &source(&req), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(connection_dto(&st, c)))
}

/// One connection, with the values to paste into the IdP and the last test.
#[utoipa::path(get, path = "/api/v1/sso/connections/{id}", params(("id" = String, Path)),
    responses((status = 200, body = ConnectionDto), (status = 404, body = crate::web::api::ErrorBody)))]
async fn get_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    require(&req, &st, &caller)?;
    let c = sso::get(&st.svc.store.read()?, sso::parse_id(&id)?)?;
    Ok(HttpResponse::Ok().json(connection_dto(&st, c)))
}

/// Replace a connection's fields (an omitted client secret is kept).
#[utoipa::path(put, path = "/api/v1/sso/connections/{id}", params(("id" = String, Path)), request_body = sso::ConnectionInput,
    responses((status = 200, body = ConnectionDto), (status = 400, body = crate::web::api::ErrorBody)))]
async fn update_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    body: web::Json<sso::ConnectionInput>,
) -> ApiResult {
    require(&req, &st, &caller)?;
    caller.require_recent_auth(&st.svc)?;
    let c = sso::update(
        &st.svc,
        &caller.principal,
        &source(&req),
        sso::parse_id(&id)?,
        body.into_inner(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(connection_dto(&st, c)))
}

/// Delete a connection (refused for the last one while SSO is enabled).
#[utoipa::path(delete, path = "/api/v1/sso/connections/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = crate::web::api::ErrorBody)))]
async fn delete_connection(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> ApiResult {
    require(&req, &st, &caller)?;
    caller.require_recent_auth(&st.svc)?;
    sso::delete(
        &st.svc,
        &caller.principal,
        &source(&req),
        sso::parse_id(&id)?,
    )?;
    Ok(HttpResponse::NoContent().finish())
}

/// Provider presets: labels and help in each IdP's words.
#[utoipa::path(get, path = "/api/v1/sso/presets", responses((status = 200, body = [sso::Preset])))]
async fn presets(req: HttpRequest, st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    require(&req, &st, &caller)?;
    Ok(HttpResponse::Ok().json(sso::PRESETS))
}

/// The SSO status; the owner is always among the excluded users.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsDto {
    pub enabled: bool,
    pub enforcement: sso::Enforcement,
    /// User ids.
    pub test_group: Vec<String>,
    /// User ids; the owner is always one of them.
    pub excluded_users: Vec<String>,
    /// Id → e-mail address of every user named above.
    pub emails: std::collections::BTreeMap<String, String>,
    /// Who Gatehouse's own MFA policy applies to, in words.
    pub mfa_scope: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub fn settings_dto(
    st: &AppState,
    s: sso::SsoSettings,
    warnings: Vec<String>,
) -> Result<SettingsDto, Error> {
    let r = st.svc.store.read()?;
    let mut emails = std::collections::BTreeMap::new();
    for id in s.test_group.iter().chain(s.excluded_users.iter()) {
        if let Ok(u) = identity::get(&r, id) {
            emails.insert(id.as_str().to_string(), u.email.as_str().to_string());
        }
    }
    Ok(SettingsDto {
        mfa_scope: mfa_scope(&s).into(),
        enabled: s.enabled,
        enforcement: s.enforcement,
        test_group: s
            .test_group
            .iter()
            .map(|u| u.as_str().to_string())
            .collect(),
        excluded_users: s
            .excluded_users
            .iter()
            .map(|u| u.as_str().to_string())
            .collect(),
        emails,
        warnings,
    })
}

/// Which MFA rule is in force, for the console and the API.
pub fn mfa_scope(s: &sso::SsoSettings) -> &'static str {
    if s.enabled {
        "SSO is enabled: sign-ins through the identity provider use the IdP's own MFA; \
         Gatehouse's MFA policy applies to password sign-ins (SSO-excluded users, and anyone \
         still allowed a password)."
    } else {
        "SSO is disabled: Gatehouse's MFA policy applies to every user."
    }
}

#[utoipa::path(get, path = "/api/v1/sso/settings", responses((status = 200, body = SettingsDto)))]
async fn get_settings(req: HttpRequest, st: web::Data<AppState>, caller: ApiCaller) -> ApiResult {
    require(&req, &st, &caller)?;
    let s = sso::settings(&st.svc.store.read()?)?;
    Ok(HttpResponse::Ok().json(settings_dto(&st, s, Vec::new())?))
}

/// Change the SSO status, enforcement, test group and excluded users (needs a
/// recent sign-in; audited). Users are named by id or e-mail address.
#[utoipa::path(put, path = "/api/v1/sso/settings", request_body = sso::SsoSettingsInput,
    responses((status = 200, body = SettingsDto), (status = 400, body = crate::web::api::ErrorBody)))]
async fn put_settings(
    req: HttpRequest,
    st: web::Data<AppState>,
    caller: ApiCaller,
    body: web::Json<sso::SsoSettingsInput>,
) -> ApiResult {
    require(&req, &st, &caller)?;
    caller.require_recent_auth(&st.svc)?;
    let (s, warnings) =
        sso::update_settings(&st.svc, &caller.principal, &source(&req), body.into_inner())?;
    Ok(HttpResponse::Ok().json(settings_dto(&st, s, warnings)?))
}

// ---- browser endpoints ----

pub fn state_cookie(tls: bool, value: String) -> Cookie<'static> {
    Cookie::build(state_cookie_name(tls), value)
        .path(binding_path(tls))
        .http_only(true)
        .secure(tls)
        // Lax: the IdP's redirect back is a top-level navigation from another site.
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            sso::PENDING_TTL_SECS,
        ))
        .finish()
}

/// Binds a SAML request ID or a WS-Federation `wctx` to the browser. The
/// IdP's answer is a cross-site POST, which a SameSite=Lax cookie does not
/// come with, so under TLS the cookie is `SameSite=None; Secure`; over plain
/// HTTP (loopback only) browsers refuse `None` without `Secure`, so the
/// attribute is left to the browser's default.
pub fn post_state_cookie(tls: bool, value: String) -> Cookie<'static> {
    let mut c = Cookie::build(post_state_cookie_name(tls), value)
        .path(binding_path(tls))
        .http_only(true)
        .secure(tls)
        .max_age(actix_web::cookie::time::Duration::seconds(
            sso::PENDING_TTL_SECS,
        ))
        .finish();
    if tls {
        c.set_same_site(SameSite::None);
    }
    c
}

/// The binding cookie of a sign-in through `protocol`.
pub fn binding_cookie(tls: bool, protocol: Protocol, state: String) -> Cookie<'static> {
    match protocol {
        Protocol::Oidc => state_cookie(tls, state),
        Protocol::Saml | Protocol::Wsfed => post_state_cookie(tls, state),
    }
}

/// Adds the removal of the binding cookie: a finished sign-in's state is spent.
fn forget_binding(st: &AppState, protocol: Protocol, resp: &mut HttpResponse) {
    let mut gone = binding_cookie(st.tls, protocol, String::new());
    gone.make_removal();
    let _ = resp.add_cookie(&gone);
}

/// Sends the browser to the IdP.
fn found(url: String) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((actix_web::http::header::LOCATION, url))
        .finish()
}

/// Sends the browser to the IdP, bound to it by the state cookie.
pub fn to_idp(st: &AppState, protocol: Protocol, url: &str, state: String) -> HttpResponse {
    let mut resp = found(url.to_string());
    let _ = resp.add_cookie(&binding_cookie(st.tls, protocol, state));
    resp
}

#[derive(Deserialize)]
struct LoginQuery {
    rd: Option<String>,
}

async fn oidc_login(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let rd = crate::web::console::safe_rd(q.rd.as_deref());
    let (url, state) = sso::oidc::start(&st.svc, id, &rd, None, &source(&req)).await?;
    Ok(to_idp(&st, Protocol::Oidc, &url, state))
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn oidc_callback(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<CallbackQuery>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let browser = req.cookie(state_cookie_name(st.tls));
    let cb = sso::oidc::Callback {
        state: q.state.as_deref().unwrap_or(""),
        browser_state: browser.as_ref().map(|c| c.value()),
        code: q.code.as_deref(),
        error: q.error.as_deref(),
        error_description: q.error_description.as_deref(),
    };
    let outcome = sso::oidc::callback(&st.svc, id, cb, &source(&req)).await?;
    let mut resp = finished(&req, &st, outcome)?;
    forget_binding(&st, Protocol::Oidc, &mut resp);
    Ok(resp)
}

async fn saml_metadata(
    st: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let c = sso::get(&st.svc.store.read()?, id)?;
    if c.protocol != Protocol::Saml {
        return Err(Error::NotFound("connection").into());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .body(sso::saml::sp_metadata(&st.svc, &c)?))
}

async fn saml_login(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let rd = crate::web::console::safe_rd(q.rd.as_deref());
    let (url, request_id) = sso::saml::start(&st.svc, id, &rd, None, &source(&req))?;
    Ok(to_idp(&st, Protocol::Saml, &url, request_id))
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState")]
    #[allow(dead_code)] // accepted, not used: the pending sign-in carries where to go
    relay_state: Option<String>,
}

/// Where a finished IdP round trip leads the browser (OIDC, SAML alike).
fn finished(
    req: &HttpRequest,
    st: &AppState,
    outcome: std::result::Result<Finished, sso::Failure>,
) -> Result<HttpResponse, PageError> {
    Ok(match outcome {
        Ok(Finished::SignedIn { user, token, rd }) => {
            crate::web::console::signed_in(req, st, &user, token, &rd)?
        }
        Ok(Finished::Tested { connection, ok }) => crate::web::console::redirect(&format!(
            "/admin/settings/sso/{connection}?notice={}",
            if ok { "tested" } else { "test_failed" }
        )),
        // Refused before parsing: nothing was learnt from the document, so
        // the limit it broke can be named (the IdP's admin can act on it).
        Err(f) if f.reason == sso::xml_budget::REASON => html_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Single sign-on did not complete: the identity provider's message was refused \
                 because {}. The audit log has the details.",
                f.message
            ),
        ),
        Err(_) => html_error(
            StatusCode::UNAUTHORIZED,
            "Single sign-on did not complete. Start again from the sign-in page; if it keeps \
             failing, your administrator can see the reason in the audit log.",
        ),
    })
}

async fn saml_acs(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    f: web::Form<AcsForm>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let browser = req.cookie(post_state_cookie_name(st.tls));
    let browser = browser.map(|c| c.value().to_string());
    let outcome = sso::saml::acs_pooled(
        &st.svc,
        id,
        f.into_inner().saml_response,
        browser,
        source(&req),
    )
    .await?;
    let mut resp = finished(&req, &st, outcome)?;
    forget_binding(&st, Protocol::Saml, &mut resp);
    Ok(resp)
}

async fn wsfed_login(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let rd = crate::web::console::safe_rd(q.rd.as_deref());
    let (url, state) = sso::wsfed::start(&st.svc, id, &rd, None, &source(&req))?;
    Ok(to_idp(&st, Protocol::Wsfed, &url, state))
}

#[derive(Deserialize)]
struct WsfedForm {
    wa: String,
    wresult: String,
    #[serde(default)]
    wctx: String,
}

async fn wsfed_callback(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    f: web::Form<WsfedForm>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let browser = req.cookie(post_state_cookie_name(st.tls));
    let browser = browser.map(|c| c.value().to_string());
    let f = f.into_inner();
    let outcome =
        sso::wsfed::callback_pooled(&st.svc, id, f.wa, f.wresult, f.wctx, browser, source(&req))
            .await?;
    let mut resp = finished(&req, &st, outcome)?;
    forget_binding(&st, Protocol::Wsfed, &mut resp);
    Ok(resp)
}

#[cfg(test)]
mod cookie_tests {
    use super::*;

    /// Attack review: under TLS the binding cookies carry `__Host-`, so a
    /// sibling subdomain cannot toss its own state into the browser.
    #[test]
    fn binding_cookies_are_host_only_under_tls() {
        for p in [Protocol::Oidc, Protocol::Saml, Protocol::Wsfed] {
            let c = binding_cookie(true, p, "s".into());
            assert!(c.name().starts_with("__Host-"), "{c}");
            assert_eq!(
                (c.path(), c.domain(), c.secure()),
                (Some("/"), None, Some(true))
            );
            let plain = binding_cookie(false, p, "s".into());
            assert!(!plain.name().starts_with("__Host-"), "{plain}");
            assert_eq!(plain.path(), Some("/sso"));
        }
    }
}
