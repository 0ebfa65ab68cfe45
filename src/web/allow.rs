//! 405 Method Not Allowed: a wrong method on a path the server serves is
//! answered 405 with an `Allow` header naming the methods the path has (RFC
//! 9110 §15.5.6), instead of the 404 actix gives when no route's method guard
//! matches. The methods per path come from `api`'s route table (the OpenAPI
//! rows) and the table below for the other groups; `tests` checks both against
//! the routes actually registered. It does not route anything itself.

use std::sync::LazyLock;

use actix_web::dev::ResourceDef;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};

use crate::web::error;

/// Paths outside `/api/v1`'s route table and the methods each is served with.
/// A route added elsewhere gets its row here (`tests` fails until it has one).
const OTHER_ROUTES: &[(&str, &str)] = &[
    ("/healthz", "GET"),
    ("/readyz", "GET"),
    ("/static/{path:.*}", "GET"),
    ("/favicon.ico", "GET"),
    ("/oauth2/jwks", "GET"),
    ("/.well-known/openid-configuration", "GET"),
    ("/oauth2/token", "POST"),
    ("/oauth2/introspect", "POST"),
    ("/oauth2/revoke", "POST"),
    ("/auth/verify", "GET, HEAD"),
    ("/login", "GET, POST"),
    ("/login/mfa", "GET, POST"),
    ("/login/mfa/send", "POST"),
    ("/login/password", "GET, POST"),
    ("/logout", "POST"),
    ("/setup", "GET, POST"),
    ("/recover", "GET, POST"),
    ("/sso/oidc/{id}/login", "GET"),
    ("/sso/oidc/{id}/callback", "GET"),
    ("/sso/saml/{id}/metadata", "GET"),
    ("/sso/saml/{id}/login", "GET"),
    ("/sso/wsfed/{id}/login", "GET"),
    ("/sso/wsfed/{id}/callback", "POST"),
    ("/sso/saml/{id}/acs", "POST"),
    ("/", "GET"),
    ("/admin", "GET"),
    ("/admin/users", "GET, POST"),
    ("/admin/users/{id}", "GET, POST"),
    ("/admin/users/{id}/disable", "POST"),
    ("/admin/users/{id}/enable", "POST"),
    ("/admin/users/{id}/delete", "GET, POST"),
    ("/admin/users/{id}/password", "POST"),
    ("/admin/users/{id}/unlock", "POST"),
    ("/admin/account", "GET"),
    ("/admin/account/password", "POST"),
    ("/admin/account/mfa/totp", "GET, POST"),
    ("/admin/account/mfa/totp/confirm", "POST"),
    ("/admin/account/mfa/recovery", "POST"),
    ("/admin/account/mfa/email", "POST"),
    ("/admin/account/mfa/sms", "POST"),
    ("/admin/account/mfa/code/confirm", "POST"),
    ("/admin/account/mfa/remove", "POST"),
    ("/admin/account/mfa/code", "POST"),
    ("/admin/users/{id}/mfa/reset", "POST"),
    ("/admin/users/{id}/sessions/end", "POST"),
    ("/admin/account/mfa/required", "GET"),
    ("/admin/reauth", "GET, POST"),
    ("/admin/reauth/send", "POST"),
    ("/admin/settings/security", "GET, POST"),
    ("/admin/account/sessions/end-others", "POST"),
    ("/admin/account/sessions/{id}/end", "POST"),
    ("/admin/audit", "GET"),
    ("/admin/keys", "GET"),
    ("/admin/keys/rotate", "GET, POST"),
    ("/admin/workspaces", "GET, POST"),
    ("/admin/workspaces/{id}", "GET"),
    ("/admin/workspaces/{id}/rename", "POST"),
    ("/admin/workspaces/{id}/session", "POST"),
    ("/admin/workspaces/{id}/delete", "GET, POST"),
    ("/admin/workspaces/{id}/secrets", "GET, POST"),
    ("/admin/workspaces/{id}/secrets/delete", "POST"),
    ("/admin/workspaces/{id}/secrets/undelete", "POST"),
    ("/admin/workspaces/{id}/secrets/destroy", "GET, POST"),
    ("/admin/workspaces/{id}/secrets/reveal", "POST"),
    ("/admin/users/{id}/sso-links/reapprove", "POST"),
    ("/admin/settings/audit/streaming", "GET, POST"),
    ("/admin/settings/audit/streaming/{id}", "POST"),
    ("/admin/settings/audit/streaming/{id}/delete", "POST"),
    ("/admin/settings/audit/streaming/{id}/test", "POST"),
    ("/admin/settings/tls", "GET"),
    ("/admin/workspaces/{id}/members", "POST"),
    ("/admin/workspaces/{id}/members/{user}/remove", "POST"),
    ("/admin/workspaces/{id}/users", "POST"),
    ("/admin/workspaces/{id}/roles", "POST"),
    ("/admin/workspaces/{id}/roles/{item}", "POST"),
    ("/admin/workspaces/{id}/groups", "POST"),
    ("/admin/workspaces/{id}/groups/{item}", "POST"),
    ("/admin/workspaces/{id}/apps", "POST"),
    ("/admin/workspaces/{id}/apps/{item}", "POST"),
    ("/admin/workspaces/{id}/apps/{app}/keys", "POST"),
    (
        "/admin/workspaces/{id}/apps/{app}/keys/{key}/delete",
        "GET, POST",
    ),
    ("/admin/workspaces/{id}/service-accounts", "POST"),
    ("/admin/workspaces/{id}/service-accounts/{item}", "POST"),
    (
        "/admin/workspaces/{id}/service-accounts/{item}/secret",
        "GET, POST",
    ),
    (
        "/admin/workspaces/{id}/service-accounts/{item}/disable",
        "POST",
    ),
    (
        "/admin/workspaces/{id}/service-accounts/{item}/enable",
        "POST",
    ),
    ("/admin/workspaces/{id}/widget-keys", "POST"),
    ("/admin/workspaces/{id}/{kind}/{item}/delete", "GET, POST"),
    ("/admin/settings/sso", "GET, POST"),
    ("/admin/settings/sso/connections", "POST"),
    ("/admin/settings/sso/{id}", "GET, POST"),
    ("/admin/settings/sso/{id}/test", "POST"),
    ("/admin/settings/sso/{id}/delete", "GET, POST"),
];

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// Each known pattern, compiled once (constant data, not configuration), with
/// its methods.
static TABLE: LazyLock<Vec<(ResourceDef, Vec<&'static str>)>> = LazyLock::new(|| {
    let mut rows: Vec<(String, Vec<&'static str>)> = Vec::new();
    let mut add =
        |path: String, method: &'static str| match rows.iter_mut().find(|(p, _)| *p == path) {
            Some((_, ms)) => ms.push(method),
            None => rows.push((path, vec![method])),
        };
    for (method, path) in crate::web::api::ROUTES {
        if let Some(m) = METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)) {
            add(format!("/api/v1{path}"), m);
        }
    }
    for (path, methods) in OTHER_ROUTES {
        for m in methods.split(", ") {
            if let Some(m) = METHODS.iter().find(|k| **k == m) {
                add((*path).to_string(), m);
            }
        }
    }
    rows.into_iter()
        .map(|(p, ms)| (ResourceDef::new(p), ms))
        .collect()
});

/// The methods served at `path` (every pattern matching it), in a fixed
/// order; empty when the path is unknown.
pub(crate) fn methods_at(path: &str) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = Vec::new();
    for (def, ms) in TABLE.iter() {
        if def.is_match(path) {
            found.extend(ms.iter().copied());
        }
    }
    METHODS
        .iter()
        .copied()
        .filter(|m| found.contains(m))
        .collect()
}

/// The 405 answer when `req`'s path is served with other methods, in the
/// path's own error shape: OAuth's for `/oauth2/*`, the API's JSON under
/// `/api/` and `/.well-known/`, a page elsewhere.
pub(crate) fn method_not_allowed(req: &HttpRequest) -> Option<HttpResponse> {
    let methods = methods_at(req.path());
    if methods.is_empty() || methods.contains(&req.method().as_str()) {
        return None;
    }
    let allow = methods.join(", ");
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let p = req.path();
    let message = format!(
        "{} is not served at this address; use {}.",
        req.method(),
        methods.join(" or ")
    );
    let mut resp = if p.starts_with("/oauth2/") {
        HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"error": "invalid_request", "error_description": message}))
    } else if p.starts_with("/api/") || p.starts_with("/.well-known/") {
        error::json_error(status, "method_not_allowed", &message)
    } else {
        error::html_error(status, &message)
    };
    if let Ok(v) = header::HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use actix_web::http::{Method, StatusCode, header};
    use actix_web::{App, HttpRequest, HttpResponse, test, web};

    use super::{METHODS, TABLE};

    /// A concrete path for a pattern: each `{name}` (or `{name:re}`) becomes
    /// a segment every parameter accepts at routing time.
    fn concrete(pattern: &str) -> String {
        let mut out = String::new();
        let mut depth = 0;
        for c in pattern.chars() {
            match c {
                '{' => {
                    depth += 1;
                    if depth == 1 {
                        out.push_str("x1");
                    }
                }
                '}' => depth -= 1,
                _ if depth > 0 => {}
                _ => out.push(c),
            }
        }
        out
    }

    async fn rmap_debug(req: HttpRequest) -> HttpResponse {
        HttpResponse::Ok().body(format!("{:?}", req.resource_map()))
    }

    /// Every row of the table is served with exactly its methods, and every
    /// pattern registered has a row.
    #[actix_web::test]
    async fn the_table_is_the_routes() {
        let settings = crate::config::Settings::default();
        let app = test::init_service(
            App::new()
                .route("/__rmap", web::get().to(rmap_debug))
                .configure(|cfg| crate::web::routes(cfg, &settings))
                .default_service(web::to(crate::web::not_found)),
        )
        .await;
        for (def, _) in TABLE.iter() {
            let path = concrete(def.pattern().unwrap_or_default());
            // Every row matching the path counts (actix tries the next
            // resource when a method guard fails).
            let methods = super::methods_at(&path);
            for m in METHODS {
                let req = test::TestRequest::default()
                    .method(Method::from_bytes(m.as_bytes()).unwrap())
                    .uri(&path)
                    .to_request();
                let resp = test::call_service(&app, req).await;
                let fallback = resp.status() == StatusCode::METHOD_NOT_ALLOWED
                    && resp.headers().contains_key(header::ALLOW);
                assert_eq!(
                    fallback,
                    !methods.contains(&m),
                    "{m} {path}: table says {methods:?}, got {}",
                    resp.status()
                );
            }
        }
        // The routes actually registered (the app's resource map, by its
        // debug form: actix has no other way to list them) all have a row.
        let req = test::TestRequest::get().uri("/__rmap").to_request();
        let dump = String::from_utf8(test::call_and_read_body(&app, req).await.to_vec()).unwrap();
        let known: Vec<String> = TABLE
            .iter()
            .filter_map(|(d, _)| d.pattern().map(str::to_string))
            .collect();
        let mut seen = 0;
        for part in dump.split("Single(\"").skip(1) {
            seen += 1;
            let Some(pattern) = part.split("\")").next() else {
                continue;
            };
            // The Vault mount (`/v1`, web::vault) answers wrong methods and
            // paths itself, in Vault's envelope, as Vault clients expect.
            let vault = pattern.starts_with("/transit/") || pattern.starts_with("/secret/");
            let ok = vault
                || matches!(
                    pattern,
                    "" | "/__rmap" | "/api/v1" | "/v1" | "/static" | "/{path:.*}"
                )
                || known
                    .iter()
                    .any(|k| k == pattern || *k == format!("/api/v1{pattern}"));
            assert!(ok, "{pattern} is routed but has no row in web::allow");
        }
        // One resource per registered route, so at least one per row.
        assert!(seen >= TABLE.len(), "{seen} patterns in the resource map");
    }
}
