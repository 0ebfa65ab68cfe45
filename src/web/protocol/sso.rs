//! Browser endpoints of single sign-on: OpenID Connect (`/sso/oidc/{id}/login`,
//! `/callback`), SAML (`/sso/saml/{id}/metadata`, `/login`, `/acs`) and
//! WS-Federation (`/sso/wsfed/{id}/login`, `/callback`). The sign-in in flight
//! is bound to the browser by a short cookie holding it, sealed by `sso` (with
//! its `state`: the SAML request ID, the WS-Federation `wctx`); see `extract`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::error::Error;
use crate::sso::{self, Finished, Protocol};
use crate::web::AppState;
use crate::web::error::{PageError, html_error};
use crate::web::extract::{binding_cookie, post_state_cookie_name, source, state_cookie_name};

/// The browser endpoints.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
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
                .route(web::post().to(wsfed_callback))
                .default_service(web::to(crate::web::not_found)),
        )
        .service(
            web::resource("/sso/saml/{id}/acs")
                // A signed response with its certificate and attributes outgrows the form limit.
                .app_data(
                    web::FormConfig::default()
                        .limit(crate::sso::xmldsig::MAX_BYTES * 4 / 3 + 4096)
                        .error_handler(|e, _| crate::web::error::payload_error(e.into(), false)),
                )
                .route(web::post().to(saml_acs))
                .default_service(web::to(crate::web::not_found)),
        );
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
pub(super) struct LoginQuery {
    rd: Option<String>,
}

pub(super) async fn oidc_login(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let rd = crate::web::html::safe_rd(q.rd.as_deref());
    let (url, state) = sso::oidc::start(&st.svc, id, &rd, None, &source(&req)).await?;
    Ok(to_idp(&st, Protocol::Oidc, &url, state))
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(super) async fn oidc_callback(
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

pub(super) async fn saml_metadata(
    st: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let c = sso::connection(&st.svc, id)?;
    if c.protocol != Protocol::Saml {
        return Err(Error::NotFound("connection").into());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .body(sso::saml::sp_metadata(&st.svc, &c)?))
}

pub(super) async fn saml_login(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let rd = crate::web::html::safe_rd(q.rd.as_deref());
    let (url, request_id) = sso::saml::start(&st.svc, id, &rd, None, &source(&req))?;
    Ok(to_idp(&st, Protocol::Saml, &url, request_id))
}

#[derive(Deserialize)]
pub(super) struct AcsForm {
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
            crate::web::extract::signed_in(req, st, &user, token, &rd)?
        }
        Ok(Finished::Tested { connection, ok }) => {
            crate::web::html::redirect(&crate::web::notice::notice_url(
                &format!("/admin/settings/sso/{connection}"),
                if ok {
                    crate::web::notice::ConnectionNotice::Tested
                } else {
                    crate::web::notice::ConnectionNotice::TestFailed
                },
            ))
        }
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
        // The IdP vouched for the user; the link it came through needs an
        // administrator: say so, so that they know whom to ask.
        Err(f) if f.reason == sso::STALE_LINK => html_error(
            StatusCode::FORBIDDEN,
            "Single sign-on did not complete: your account now holds more access than whoever \
             linked it to this identity provider may link, so the link must be approved again. \
             An administrator must re-link your account (on its user page in the console) \
             before single sign-on signs you in again.",
        ),
        Err(_) => html_error(
            StatusCode::UNAUTHORIZED,
            "Single sign-on did not complete. Start again from the sign-in page; if it keeps \
             failing, your administrator can see the reason in the audit log.",
        ),
    })
}

pub(super) async fn saml_acs(
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

pub(super) async fn wsfed_login(
    req: HttpRequest,
    st: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let id = sso::parse_id(&id)?;
    let rd = crate::web::html::safe_rd(q.rd.as_deref());
    let (url, state) = sso::wsfed::start(&st.svc, id, &rd, None, &source(&req))?;
    Ok(to_idp(&st, Protocol::Wsfed, &url, state))
}

#[derive(Deserialize)]
pub(super) struct WsfedForm {
    wa: String,
    wresult: String,
    #[serde(default)]
    wctx: String,
}

pub(super) async fn wsfed_callback(
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
