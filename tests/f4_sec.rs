//! Issue 11, r3 findings 7 and 8: deleting a credential takes away what it
//! grants (so it needs what narrowing it to nothing needs), and a service
//! account's tokens end with the secret they were minted with (and with a
//! narrowing of its scopes).

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{World, call, client_token, service_account, world};
use crate::common::*;

const PW: &str = "amber-meadow-river-77";

async fn ok(app: &TestApp, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, m, path, token, body).await;
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_string()
}

pub async fn verify(app: &TestApp, cred: &str, query: &str) -> u16 {
    plain()
        .get(app.url(&format!("/auth/verify?{query}")))
        .bearer_auth(cred)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn introspect(app: &TestApp, id: &str, secret: &str, tok: &str) -> Value {
    let r = plain()
        .post(app.url("/oauth2/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", tok)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A member of Alpha holding only a custom role with `perms`; returns their token.
pub async fn custom_holder(app: &TestApp, w: &World, email: &str, perms: &[&str]) -> String {
    let u = app.create_user(&w.owner, email, "user").await;
    let uid = u["id"].as_str().unwrap().to_string();
    let role = ok(
        app,
        Method::POST,
        "/api/v1/roles",
        &w.wa,
        Some(json!({"name": format!("Only {}", perms.join(" ")), "permissions": perms})),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/members/{uid}", w.ws_a),
        &w.owner,
        Some(json!({"roles": [role["id"]]})),
    )
    .await;
    token(&app.api_login(email, PW).await)
}

// ---- finding 7: deleting a credential needs every scope it holds ----

#[actix_web::test]
async fn r3_7_deleting_a_credential_needs_what_narrowing_it_to_nothing_needs() {
    let app = spawn().await;
    let w = world(&app).await;
    let dan = custom_holder(&app, &w, "dan@example.com", &["admin:credentials"]).await;
    // The review's repro: a stronger service account with an allowlist.
    let (deployer, _) = service_account(
        &app,
        &w.wa,
        json!({"name": "deployer", "scopes": ["deploy:model", "admin:users"], "ip_allowlist": ["10.0.0.0/8"]}),
    )
    .await;
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/service-accounts/{deployer}"),
        &dan,
        None,
    )
    .await;
    assert_eq!(s, 403, "deleting a stronger service account: {v}");
    assert!(
        v.to_string().contains("deploy:model"),
        "the answer names what is missing: {v}"
    );
    // An app carrying more than dan holds: neither it nor its keys.
    let a = ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.wa,
        Some(json!({"name": "deploy-ci", "scopes": ["deploy:model"]})),
    )
    .await;
    let app_id = a["id"].as_str().unwrap().to_string();
    let k = ok(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        Some(json!({"name": "ci"})),
    )
    .await;
    let key_id = k["id"].as_str().unwrap().to_string();
    let key = k["key"].as_str().unwrap().to_string();
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/api-apps/{app_id}/keys/{key_id}"),
        &dan,
        None,
    )
    .await;
    assert_eq!(s, 403, "deleting a deploy:model key: {v}");
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/api-apps/{app_id}"),
        &dan,
        None,
    )
    .await;
    assert_eq!(s, 403, "deleting a deploy:model app: {v}");
    assert_eq!(verify(&app, &key, "").await, 200, "the key still works");
    // A widget key grants use:agents, which dan does not hold.
    let wk = ok(
        &app,
        Method::POST,
        "/api/v1/widget-keys",
        &w.wa,
        Some(json!({"name": "shop", "bot": "bot-1", "origins": ["https://shop.example.com"]})),
    )
    .await;
    let wk_id = wk["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/widget-keys/{wk_id}"),
        &dan,
        None,
    )
    .await;
    assert_eq!(s, 403, "deleting a use:agents widget key: {v}");
    // The console's delete forms are the same domain operations.
    let (c, _) = app.browser_login("dan@example.com", PW).await;
    let html = c
        .get(app.url(&format!("/admin/workspaces/{}", w.ws_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&html);
    for path in [
        format!(
            "/admin/workspaces/{}/service-accounts/{deployer}/delete",
            w.ws_a
        ),
        format!("/admin/workspaces/{}/apps/{app_id}/delete", w.ws_a),
        format!("/admin/workspaces/{}/widget-keys/{wk_id}/delete", w.ws_a),
    ] {
        let r = c
            .post(app.url(&path))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    // Everything is still there.
    ok(
        &app,
        Method::GET,
        &format!("/api/v1/service-accounts/{deployer}"),
        &w.wa,
        None,
    )
    .await;
    ok(
        &app,
        Method::GET,
        &format!("/api/v1/api-apps/{app_id}"),
        &w.wa,
        None,
    )
    .await;
    // An account no stronger than dan: he deletes it; the admin deletes the rest.
    let (weak, _) = service_account(
        &app,
        &w.wa,
        json!({"name": "clerk-bot", "scopes": ["admin:credentials"]}),
    )
    .await;
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/service-accounts/{weak}"),
        &dan,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    for path in [
        format!("/api/v1/service-accounts/{deployer}"),
        format!("/api/v1/api-apps/{app_id}/keys/{key_id}"),
        format!("/api/v1/api-apps/{app_id}"),
        format!("/api/v1/widget-keys/{wk_id}"),
    ] {
        let (s, v) = call(&app, Method::DELETE, &path, &w.wa, None).await;
        assert_eq!(s, 204, "{path}: {v}");
    }
}

// ---- finding 8: tokens end with the secret they were minted with ----

#[actix_web::test]
async fn r3_8_rotating_a_secret_or_narrowing_ends_the_accounts_tokens() {
    let app = spawn().await;
    let w = world(&app).await;
    let (checker, csecret) = service_account(
        &app,
        &w.owner,
        json!({"name": "platform", "scopes": ["introspect:credentials"]}),
    )
    .await;
    let (sid, secret) = service_account(
        &app,
        &w.wa,
        json!({"name": "worker", "scopes": ["read:agents", "read:analytics"]}),
    )
    .await;
    let (s, v) = client_token(&app, &sid, &secret, None).await;
    assert_eq!(s, 200, "{v}");
    let leaked = token(&v);
    let q = format!("scope=read:agents&workspace={}", w.ws_a);
    assert_eq!(verify(&app, &leaked, &q).await, 200);
    assert_eq!(
        introspect(&app, &checker, &csecret, &leaked).await["active"],
        true
    );
    // The secret leaked: the admin rotates it.
    let v = ok(
        &app,
        Method::POST,
        &format!("/api/v1/service-accounts/{sid}/secret"),
        &w.wa,
        None,
    )
    .await;
    let fresh_secret = v["client_secret"].as_str().unwrap().to_string();
    assert_eq!(client_token(&app, &sid, &secret, None).await.0, 401);
    // Its token goes with it: forward auth (also a reused answer), introspection, the API.
    assert_eq!(
        verify(&app, &leaked, &q).await,
        401,
        "verify after rotation"
    );
    assert_eq!(
        introspect(&app, &checker, &csecret, &leaked).await["active"],
        false
    );
    let (s, _) = call(&app, Method::GET, "/api/v1/users", &leaked, None).await;
    assert_eq!(s, 401, "bearer after rotation");
    // Tokens from the new secret work.
    let (s, v) = client_token(&app, &sid, &fresh_secret, None).await;
    assert_eq!(s, 200, "{v}");
    let wide = token(&v);
    assert_eq!(verify(&app, &wide, &q).await, 200);
    // Narrowing ends them too, so widening again does not revive them.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{sid}"),
        &w.wa,
        Some(json!({"scopes": ["read:agents"]})),
    )
    .await;
    assert_eq!(verify(&app, &wide, &q).await, 401, "verify after narrowing");
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{sid}"),
        &w.wa,
        Some(json!({"scopes": ["read:agents", "read:analytics"]})),
    )
    .await;
    let qa = format!("scope=read:analytics&workspace={}", w.ws_a);
    assert_eq!(
        verify(&app, &wide, &qa).await,
        401,
        "not revived by widening"
    );
    // A rename changes nothing for tokens.
    let (_, v) = client_token(&app, &sid, &fresh_secret, None).await;
    let now = token(&v);
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{sid}"),
        &w.wa,
        Some(json!({"name": "worker-2"})),
    )
    .await;
    assert_eq!(verify(&app, &now, &qa).await, 200);
    // The rotation is audited.
    let ev = app
        .audit(&w.owner, "action=service_account.secret_rotate")
        .await;
    assert_eq!(ev.len(), 1);
}
