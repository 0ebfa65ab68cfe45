//! OpenID Connect relying party (the `openidconnect` crate): discovery,
//! authorization code flow with PKCE (S256), state and nonce, ID-token
//! validation (issuer, audience, azp, expiry, issue time, nonce, signature,
//! an asymmetric-algorithm allow-list) and userinfo when the ID token lacks
//! the e-mail address.

use std::sync::Arc;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

use super::{Connection, Failure, Finished, Identity, Pending, Protocol};
use crate::audit::Source;
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::service::Service;

/// Provider metadata (with its JWKS) is re-read after this long.
const METADATA_TTL_SECS: i64 = 300;
const HTTP_TIMEOUT_SECS: u64 = 10;

/// Discovered provider metadata by connection id.
pub type MetadataCache =
    std::sync::Mutex<std::collections::HashMap<String, (Timestamp, Arc<CoreProviderMetadata>)>>;

/// The HTTP error type handed to `openidconnect`.
#[derive(Debug)]
pub struct HttpError(String);
impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for HttpError {}

fn http_client() -> Result<reqwest::Client> {
    // Redirects are never followed: the crate's docs warn of SSRF otherwise.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(HTTP_TIMEOUT_SECS))
        .build()
        .map_err(|e| Error::internal_caused("http client", e))
}

/// Runs one `openidconnect` request over reqwest 0.13.
async fn send(
    client: &reqwest::Client,
    req: openidconnect::HttpRequest,
) -> std::result::Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let resp = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(super::reach::describe(&e, HTTP_TIMEOUT_SECS)))?;
    let mut out = openidconnect::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp.bytes().await.map_err(|e| {
        HttpError(format!(
            "reading the answer failed: {}",
            super::reach::describe(&e, HTTP_TIMEOUT_SECS)
        ))
    })?;
    out.body(bytes.to_vec())
        .map_err(|e| HttpError(format!("bad answer: {e}")))
}

pub fn forget_metadata(svc: &Service, id: &str) {
    if let Ok(mut m) = svc.sso.oidc_metadata.lock() {
        m.remove(id);
    }
}

async fn metadata(
    svc: &Service,
    conn: &Connection,
    http: &reqwest::Client,
    fresh: bool,
) -> std::result::Result<Arc<CoreProviderMetadata>, Failure> {
    let now = svc.now();
    if !fresh
        && let Ok(m) = svc.sso.oidc_metadata.lock()
        && let Some((at, md)) = m.get(&conn.id)
        && now - at < METADATA_TTL_SECS
    {
        return Ok(md.clone());
    }
    let issuer = IssuerUrl::new(conn.issuer.clone())
        .map_err(|e| Failure::new("bad_issuer", format!("the issuer URL does not parse: {e}")))?;
    let client = |r| send(http, r);
    let md = CoreProviderMetadata::discover_async(issuer, &client)
        .await
        .map_err(|e| {
            Failure::new(
                "discovery_failed",
                format!(
                    "OpenID discovery at {}/.well-known/openid-configuration failed: {}",
                    conn.issuer.trim_end_matches('/'),
                    discovery_failure(&e)
                ),
            )
        })?;
    let md = Arc::new(md);
    if let Ok(mut m) = svc.sso.oidc_metadata.lock() {
        m.insert(conn.id.clone(), (now, md.clone()));
    }
    Ok(md)
}

/// A failed discovery in words: the crate's own `Display` says only
/// "Request failed" for an unreachable provider.
fn discovery_failure(e: &openidconnect::DiscoveryError<HttpError>) -> String {
    use openidconnect::DiscoveryError as D;
    match e {
        D::Request(HttpError(m)) => m.clone(),
        D::Response(status, _, m) if !status.is_success() => {
            format!("it answered HTTP {status} ({m})")
        }
        D::Response(_, _, m) => format!("the answer is not a discovery document: {m}"),
        D::Parse(p) => format!("the answer is not a discovery document: {p}"),
        other => super::reach::chain(other),
    }
}

fn redirect_uri(svc: &Service, id: &str) -> Result<RedirectUrl> {
    RedirectUrl::new(super::sp_values(svc, id).oidc_redirect_uri)
        .map_err(|e| Error::internal_caused("redirect uri", e))
}

/// Starts a sign-in (or an admin's test, `test_by`): returns the IdP URL to
/// send the browser to and the value of its binding cookie (the sign-in,
/// sealed; nothing is stored), which must come back with the `state`.
pub async fn start(
    svc: &Service,
    id: &str,
    rd: &str,
    test_by: Option<&crate::identity::User>,
    src: &Source,
) -> Result<(String, String)> {
    let conn = super::startable(svc, id, Protocol::Oidc, test_by.is_some())?;
    let http = http_client()?;
    let md = metadata(svc, &conn, &http, false).await.map_err(|f| {
        Error::Conflict(format!(
            "The identity provider is unreachable or misconfigured: {}",
            f.message
        ))
    })?;
    let client = CoreClient::from_provider_metadata(
        (*md).clone(),
        ClientId::new(conn.client_id.clone()),
        Some(ClientSecret::new(conn.client_secret.clone())),
    )
    .set_redirect_uri(redirect_uri(svc, id)?);
    let state = super::new_state(svc)?;
    let nonce = crypto::random_token()?;
    let verifier = crypto::random_token()?;
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
    let (st, nn) = (state.clone(), nonce.clone());
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(st.clone()),
            move || Nonce::new(nn.clone()),
        )
        .set_pkce_challenge(challenge);
    for s in conn.scopes.iter().filter(|s| s.as_str() != "openid") {
        req = req.add_scope(Scope::new(s.clone()));
    }
    let (url, _, _) = req.url();
    let pending = Pending {
        state: String::new(),
        connection: conn.id.clone(),
        nonce,
        pkce_verifier: verifier,
        rd: rd.to_string(),
        test_by: test_by.map(|u| u.id.clone()),
        created_at: svc.now(),
        client: String::new(),
    };
    let cookie = super::seal_pending(svc, Protocol::Oidc, &state, pending, src)?;
    Ok((url.to_string(), cookie))
}

/// How much of the callback's `error` the log keeps.
pub const IDP_ERROR_CODE_MAX: usize = 32;
/// How much of the callback's `error_description` the log keeps.
pub const IDP_ERROR_TEXT_MAX: usize = 64;

/// The parameters of the redirect back from the IdP.
pub struct Callback<'a> {
    pub state: &'a str,
    /// This browser's binding cookie: the sign-in it started, sealed.
    pub browser_state: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

/// Completes a sign-in: the state must match this browser's and be unused;
/// the code is exchanged (with the PKCE verifier) and the ID token verified.
/// `Err` is a failure already audited (and shown on the test page).
pub async fn callback(
    svc: &Service,
    id: &str,
    cb: Callback<'_>,
    src: &Source,
) -> Result<std::result::Result<Finished, Failure>> {
    let pending =
        match super::take_bound_pending(svc, Protocol::Oidc, cb.state, cb.browser_state, id) {
            Ok(p) => p,
            Err(f) => {
                // Not this browser's sign-in (login CSRF): the sign-in, if any,
                // stays for its own browser.
                let f = if f.reason == "state_mismatch" {
                    Failure::new(
                        "state_mismatch",
                        "the state does not match the sign-in this browser started",
                    )
                } else {
                    f
                };
                super::record_failure(svc, id, None, &f, src)?;
                return Ok(Err(f));
            }
        };
    let outcome = match verify(svc, id, &pending, &cb).await {
        Ok((conn, ident)) => super::finish(svc, &conn, &pending, ident, src)?,
        Err(f) => Err(f),
    };
    match outcome {
        Ok(done) => Ok(Ok(done)),
        Err(f) => match super::record_failure(svc, id, Some(&pending), &f, src)? {
            Some(tested) => Ok(Ok(tested)),
            None => Ok(Err(f)),
        },
    }
}

async fn verify(
    svc: &Service,
    id: &str,
    pending: &Pending,
    cb: &Callback<'_>,
) -> std::result::Result<(Connection, Identity), Failure> {
    let conn = super::get(&svc.store.read().map_err(Failure::internal)?, id)
        .map_err(|_| Failure::new("unknown_connection", "the connection was deleted"))?;
    if let Some(e) = cb.error {
        // Both come from the query string, so anyone may write them: they
        // are kept short (the description to `IDP_ERROR_TEXT_MAX`).
        let code = super::finish::bounded(e, IDP_ERROR_CODE_MAX);
        let desc = super::finish::bounded(cb.error_description.unwrap_or(""), IDP_ERROR_TEXT_MAX);
        return Err(Failure::new(
            "idp_error",
            format!("the identity provider answered with an error ({code}: {desc})"),
        ));
    }
    let code = cb
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Failure::new("no_code", "the identity provider sent no code"))?;
    let http = http_client().map_err(Failure::internal)?;
    let md = metadata(svc, &conn, &http, false).await?;
    let client = CoreClient::from_provider_metadata(
        (*md).clone(),
        ClientId::new(conn.client_id.clone()),
        Some(ClientSecret::new(conn.client_secret.clone())),
    )
    .set_redirect_uri(redirect_uri(svc, id).map_err(Failure::internal)?);
    let send_fn = |r| send(&http, r);
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| Failure::new("no_token_endpoint", format!("{e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(&send_fn)
        .await
        .map_err(|e| {
            let detail = match &e {
                openidconnect::RequestTokenError::ServerResponse(r) => format!(
                    "{}{}",
                    r.error(),
                    r.error_description()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                openidconnect::RequestTokenError::Request(HttpError(m)) => m.clone(),
                other => super::reach::chain(other),
            };
            Failure::new(
                "code_exchange_failed",
                format!("the identity provider refused the code ({detail})"),
            )
        })?;
    let id_token = token
        .id_token()
        .ok_or_else(|| Failure::new("no_id_token", "the token answer carries no ID token"))?;
    let nonce = Nonce::new(pending.nonce.clone());
    let claims = match id_token.claims(&verifier(svc, &conn, &md), &nonce) {
        // The provider may have rotated its keys since discovery: read its
        // JWKS again once before refusing a signature.
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
            let md = metadata(svc, &conn, &http, true).await?;
            id_token.claims(&verifier(svc, &conn, &md), &nonce)
        }
        other => other,
    }
    .map_err(|e| Failure::new("id_token_invalid", format!("the ID token was refused: {e}")))?;
    // The signature covers exactly this string: read the claims the crate
    // does not model (the role attribute) from it.
    let raw = raw_claims(&id_token.to_string());
    let mut ident = Identity {
        subject: claims.subject().as_str().to_string(),
        email: claims.email().map(|e| e.as_str().to_string()),
        email_verified: claims.email_verified(),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string()),
        roles: string_list(raw.get(&conn.role_attribute)),
        hosted_domain: raw.get("hd").and_then(|v| v.as_str()).map(str::to_string),
    };
    if ident.email.is_none()
        && let Some(url) = md.userinfo_endpoint()
    {
        let info = userinfo(&http, url.as_str(), token.access_token().secret()).await?;
        if info.get("sub").and_then(|v| v.as_str()) != Some(ident.subject.as_str()) {
            return Err(Failure::new(
                "userinfo_subject_mismatch",
                "userinfo describes another subject than the ID token",
            ));
        }
        ident.email = info
            .get("email")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        ident.email_verified = info.get("email_verified").and_then(|v| v.as_bool());
        if ident.name.is_none() {
            ident.name = info
                .get("name")
                .and_then(|v| v.as_str())
                .map(str::to_string);
        }
        if ident.roles.is_empty() {
            ident.roles = string_list(info.get(&conn.role_attribute));
        }
    }
    Ok((conn, ident))
}

/// ID-token checks: our client id as audience, the discovered issuer and
/// JWKS, asymmetric signatures only, expiry by our clock, no `iat` from the future.
fn verifier(
    svc: &Service,
    conn: &Connection,
    md: &CoreProviderMetadata,
) -> CoreIdTokenVerifier<'static> {
    let clock = svc.clock.clone();
    let now = svc.now();
    CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(conn.client_id.clone()),
        ClientSecret::new(conn.client_secret.clone()),
        md.issuer().clone(),
        md.jwks().clone(),
    )
    .set_allowed_algs([
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    ])
    .set_time_fn(move || {
        chrono::DateTime::<chrono::Utc>::from_timestamp(clock.now(), 0).unwrap_or_default()
    })
    .set_issue_time_verifier_fn(move |iat| {
        if iat.timestamp() > now + 120 {
            Err("issued in the future".into())
        } else {
            Ok(())
        }
    })
}

async fn userinfo(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
) -> std::result::Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let fail = |m: String| Failure::new("userinfo_failed", m);
    let resp = http
        .get(url)
        .bearer_auth(access_token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            fail(format!(
                "userinfo request failed: {}",
                super::reach::describe(&e, HTTP_TIMEOUT_SECS)
            ))
        })?;
    if !resp.status().is_success() {
        return Err(fail(format!("userinfo answered {}", resp.status())));
    }
    resp.json()
        .await
        .map_err(|e| fail(format!("userinfo is not a JSON object: {e}")))
}

fn raw_claims(jwt: &str) -> serde_json::Map<String, serde_json::Value> {
    jwt.split('.')
        .nth(1)
        .and_then(crypto::b64url_decode)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// A claim that is a string or a list of strings.
fn string_list(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .take(200)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_claims_read_as_lists() {
        assert_eq!(
            string_list(Some(&serde_json::json!(["a", 1, "b"]))),
            vec!["a", "b"]
        );
        assert_eq!(string_list(Some(&serde_json::json!("x"))), vec!["x"]);
        assert!(string_list(Some(&serde_json::json!({"a": 1}))).is_empty());
        let jwt = format!("h.{}.s", crypto::b64url(br#"{"groups":["g"]}"#));
        assert_eq!(string_list(raw_claims(&jwt).get("groups")), vec!["g"]);
    }
}
