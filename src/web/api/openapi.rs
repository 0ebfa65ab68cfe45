//! `GET /api/v1/openapi.json`: the OpenAPI document, put together from the
//! route table's handlers (see `api/mod.rs`, the SSO API's among them) and the OAuth2
//! endpoints served by `web/protocol.rs` (described here, routed there).

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI document of this API", content_type = "application/json")))]
pub(super) async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(full().to_json().unwrap_or_default())
}

/// Everything `/api/v1/openapi.json` answers.
pub(super) fn full() -> utoipa::openapi::OpenApi {
    let mut doc = super::ApiDoc::openapi();
    doc.merge(super::TableDoc::openapi());
    doc.merge(OAuth2Doc::openapi());
    doc
}

// ---- /oauth2/*: routed and handled in web/protocol.rs; only described here ----

#[derive(OpenApi)]
#[openapi(
    paths(oauth2_jwks, oauth2_token, oauth2_introspect, oauth2_revoke),
    components(schemas(TokenForm, TokenResponse, TokenParam, Introspection, OAuthError))
)]
struct OAuth2Doc;

/// `POST /oauth2/token`, `application/x-www-form-urlencoded`. The client
/// authenticates with HTTP Basic (`client_id:client_secret`) or with the
/// `client_id` and `client_secret` fields.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes a form for the document only")]
struct TokenForm {
    /// `client_credentials`, the only grant served here.
    grant_type: String,
    /// Space-separated; a subset of the service account's scopes (default: all).
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct TokenResponse {
    /// An RS256 JWT.
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds.
    expires_in: i64,
    /// The granted scopes, space-separated.
    scope: String,
}

/// `POST /oauth2/introspect` and `/oauth2/revoke`,
/// `application/x-www-form-urlencoded`. The caller authenticates as a service
/// account (HTTP Basic or form fields) or with a bearer credential, and needs
/// `introspect:credentials`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes a form for the document only")]
struct TokenParam {
    /// An access token, refresh token, API key (`ghk_…`) or widget key (`ghw_…`).
    token: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7662. Anything invalid, expired, revoked, deleted, or outside the
/// caller's workspace is `{"active": false}` and nothing else.
#[derive(Serialize, ToSchema)]
struct Introspection {
    active: bool,
    scope: Option<String>,
    workspace: Option<String>,
    sub: Option<String>,
    username: Option<String>,
    client_id: Option<String>,
    /// `access_token`, `api_key` or `widget_key`.
    token_type: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    iss: Option<String>,
    aud: Option<String>,
    /// Widget keys: the bot they open and the origins allowed.
    bot: Option<String>,
    origins: Option<Vec<String>>,
}

/// RFC 6749 §5.2: `{"error": "invalid_client", "error_description": "…"}`.
#[derive(Serialize, ToSchema)]
struct OAuthError {
    error: String,
    error_description: String,
}

/// The public keys that verify access tokens (JWKS).
#[utoipa::path(get, path = "/oauth2/jwks",
    responses((status = 200, description = "A JSON Web Key Set", content_type = "application/json")))]
#[expect(
    dead_code,
    reason = "describes a route of web/protocol.rs for the document only"
)]
fn oauth2_jwks() {}

/// Client credentials grant: a short-lived access token with the granted scopes.
#[utoipa::path(post, path = "/oauth2/token",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthError),
        (status = 401, body = OAuthError), (status = 429, body = OAuthError)))]
#[expect(
    dead_code,
    reason = "describes a route of web/protocol.rs for the document only"
)]
fn oauth2_token() {}

/// Token introspection (RFC 7662) for access tokens, API keys and widget keys.
#[utoipa::path(post, path = "/oauth2/introspect",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 400, body = OAuthError),
        (status = 401, body = OAuthError), (status = 403, body = OAuthError)))]
#[expect(
    dead_code,
    reason = "describes a route of web/protocol.rs for the document only"
)]
fn oauth2_introspect() {}

/// Token revocation (RFC 7009): an access token, a refresh token (its whole
/// family) or an API key. Unknown tokens answer 200 too.
#[utoipa::path(post, path = "/oauth2/revoke",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200), (status = 400, body = OAuthError),
        (status = 401, body = OAuthError), (status = 403, body = OAuthError)))]
#[expect(
    dead_code,
    reason = "describes a route of web/protocol.rs for the document only"
)]
fn oauth2_revoke() {}

#[cfg(test)]
mod tests {
    use actix_web::test as actix_test;
    use actix_web::{App, http::Method};
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(super::full()).unwrap()
    }

    /// A route cannot be added to the table without its description: each row's
    /// path and method are in the document.
    #[test]
    fn every_row_of_the_route_table_is_in_the_document() {
        let doc = document();
        for (method, path) in super::super::ROUTES {
            let full = format!("/api/v1{path}");
            assert!(
                doc["paths"][&full][method].is_object(),
                "{} {full} is routed but not in the OpenAPI document",
                method.to_uppercase()
            );
        }
    }

    #[test]
    fn the_oauth2_endpoints_are_in_the_document() {
        let doc = document();
        for (method, path) in [
            ("get", "/oauth2/jwks"),
            ("post", "/oauth2/token"),
            ("post", "/oauth2/introspect"),
            ("post", "/oauth2/revoke"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
    }

    /// The other direction, through actix itself: every operation of the
    /// document reaches a handler of the API or protocol routes (without app
    /// state the handler's extractors refuse, but not with the default 404).
    #[actix_web::test]
    async fn every_operation_in_the_document_is_routed() {
        let app = actix_test::init_service(
            App::new()
                .configure(super::super::routes)
                .configure(crate::web::protocol::routes),
        )
        .await;
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut seen = 0;
        for (path, item) in paths {
            let uri = path
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            for (method, _) in item.as_object().unwrap() {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let req = actix_test::TestRequest::default()
                    .method(m)
                    .uri(&uri)
                    .to_request();
                let resp = actix_test::call_service(&app, req).await;
                assert_ne!(
                    resp.status(),
                    actix_web::http::StatusCode::NOT_FOUND,
                    "{method} {path} is documented but not routed"
                );
                seen += 1;
            }
        }
        assert!(seen >= super::super::ROUTES.len() + 4);
    }
}
