//! The request edge (attack review of issue 11): per-address limits on the
//! matched route (r1 2), the unknown-client bucket (r1 8), unreadable
//! X-Forwarded-For and IP allowlists (r2 2).

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::access::{call, service_account};
use crate::common::{TestApp, plain, spawn_with};

fn xff(raw: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(raw).unwrap()
}

async fn send(app: &TestApp, m: Method, path: &str, forwarded: Option<&[u8]>) -> u16 {
    let mut r = plain()
        .request(m, app.url(path))
        .json(&json!({"email": "x@example.com", "password": "wrong-password-000"}));
    if let Some(f) = forwarded {
        r = r.header("x-forwarded-for", xff(f));
    }
    r.send().await.unwrap().status().as_u16()
}

// ------------------------------------------------------------------ r1 2

/// Every limited endpoint, with one byte of its path percent-encoded: the
/// router runs the same handler, so the same bucket counts and refuses.
#[actix_web::test]
async fn percent_encoded_paths_count_against_and_are_refused_by_the_sign_in_limit() {
    let app = spawn_with(|s| {
        s.rate_limit.auth_per_minute = 6;
        s.rate_limit.auth_burst = 3;
    })
    .await;
    // The encoded path uses up the bucket...
    for _ in 0..3 {
        assert_eq!(
            send(&app, Method::POST, "/api/v1/%61uth/login", None).await,
            401
        );
    }
    // ...that the plain path and every encoded variant share.
    assert_eq!(
        send(&app, Method::POST, "/api/v1/auth/login", None).await,
        429
    );
    for (m, p) in [
        (Method::POST, "/api/v1/%61uth/login"),
        (Method::POST, "/api/v1/%61uth/refresh"),
        (Method::POST, "/api/v1/%61uth/mfa"),
        (Method::POST, "/api/v1/auth/%6Dfa/send"),
        (Method::POST, "/%6Cogin"),
        (Method::POST, "/%6Cogin/mfa"),
        (Method::POST, "/admin/%72eauth"),
        (Method::POST, "/admin/%61ccount/password"),
        (Method::POST, "/api/v1/me/mfa/totp/%63onfirm"),
        (Method::POST, "/api/v1/me/mfa/%65mail/confirm"),
        (Method::DELETE, "/api/v1/me/%6Dfa"),
        (Method::DELETE, "/api/v1/me/%6Dfa/methods/totp"),
    ] {
        assert_eq!(send(&app, m.clone(), p, None).await, 429, "{m} {p}");
    }
    // Not every path is limited: the read-only ones are not.
    let r = plain().get(app.url("/%6Cogin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

// ------------------------------------------------------------------ r1 8

#[actix_web::test]
async fn callers_with_an_unreadable_address_share_no_bucket_with_any_address() {
    let app = spawn_with(|s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.rate_limit.auth_per_minute = 6;
        s.rate_limit.auth_burst = 3;
    })
    .await;
    let login = "/api/v1/auth/login";
    for _ in 0..3 {
        assert_eq!(send(&app, Method::POST, login, Some(b"::1")).await, 401);
    }
    assert_eq!(send(&app, Method::POST, login, Some(b"::1")).await, 429);
    assert_eq!(
        send(&app, Method::POST, login, Some(b"::9.9.9.9")).await,
        429,
        "the same /64 as ::1"
    );
    // The unknown bucket is not `::`'s /64.
    for _ in 0..3 {
        assert_eq!(send(&app, Method::POST, login, Some(b"garbage")).await, 401);
    }
    assert_eq!(send(&app, Method::POST, login, Some(b"garbage")).await, 429);
    assert_eq!(
        send(&app, Method::POST, login, Some(b"203.0.113.5, \xff")).await,
        429,
        "every unreadable caller shares the unknown bucket"
    );
    assert_eq!(
        send(&app, Method::POST, login, Some(b"2001:db8::5")).await,
        401
    );
}

// ------------------------------------------------------------------ r2 2

async fn verify(app: &TestApp, tok: &str, forwarded: &[u8]) -> u16 {
    plain()
        .get(app.url("/auth/verify?scope=introspect:credentials"))
        .bearer_auth(tok)
        .header("x-forwarded-for", xff(forwarded))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn an_unreadable_forwarded_address_fails_every_ip_allowlist() {
    let app = spawn_with(|s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let owner = app.owner_token().await;
    let (id, secret) = service_account(
        &app,
        &owner,
        json!({"name": "locked", "scopes": ["introspect:credentials"],
               "ip_allowlist": ["10.0.0.0/8"], "ip_mode": "block"}),
    )
    .await;
    let token_from = |f: &'static [u8]| {
        plain()
            .post(app.url("/oauth2/token"))
            .basic_auth(&id, Some(&secret))
            .header("x-forwarded-for", xff(f))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token_from(b"10.1.2.3, \xff").await.unwrap().status(), 403);
    let r = token_from(b"\xff, 10.1.2.3").await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "bytes left of the client's hop are never read"
    );
    let tok = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Forward auth.
    assert_eq!(verify(&app, &tok, b"10.1.2.3").await, 200);
    assert_eq!(verify(&app, &tok, b"\xff, 10.1.2.3").await, 200);
    assert_eq!(verify(&app, &tok, b"203.0.113.9").await, 403);
    assert_eq!(
        verify(&app, &tok, b"\xff, 203.0.113.9").await,
        403,
        "the attack of r2 2: the client's own bytes do not hide its address"
    );
    assert_eq!(verify(&app, &tok, b"10.1.2.3, \xff").await, 403);
    assert_eq!(verify(&app, &tok, b"10.1.2.3, garbage").await, 403);

    // The API.
    let api = |f: &'static [u8]| {
        plain()
            .get(app.url("/api/v1/permissions"))
            .bearer_auth(&tok)
            .header("x-forwarded-for", xff(f))
            .send()
    };
    assert_eq!(api(b"10.1.2.3").await.unwrap().status(), 200);
    assert_eq!(api(b"10.1.2.3, \xff").await.unwrap().status(), 403);
    assert_eq!(api(b"\xff, 203.0.113.9").await.unwrap().status(), 403);

    // Introspection, with the token as the caller's own credential.
    let intro = |f: &'static [u8]| {
        plain()
            .post(app.url("/oauth2/introspect"))
            .bearer_auth(&tok)
            .header("x-forwarded-for", xff(f))
            .form(&[("token", tok.as_str())])
            .send()
    };
    assert_eq!(intro(b"10.1.2.3").await.unwrap().status(), 200);
    let r = intro(b"10.1.2.3, \xff").await.unwrap();
    assert_eq!(r.status(), 403, "{:?}", r.text().await);

    // `authorize` must be told the end client's address for this account.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/authorize",
        &owner,
        Some(json!({"credential": tok, "scope": "introspect:credentials"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "ip_required", "{v}");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/authorize",
        &owner,
        Some(json!({"credential": tok, "scope": "introspect:credentials", "ip": "10.9.9.9"})),
    )
    .await;
    assert_eq!((s, v["allow"].clone()), (200, json!(true)), "{v}");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/authorize",
        &owner,
        Some(json!({"credential": tok, "scope": "introspect:credentials", "ip": "203.0.113.9"})),
    )
    .await;
    assert_eq!(
        (s, v["reason"].clone()),
        (200, json!("ip_not_allowed")),
        "{v}"
    );
}
