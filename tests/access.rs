//! Workspaces, roles, service accounts, API keys and the checks the platform
//! calls (`/auth/verify`, `/oauth2/*`, `/api/v1/authorize`), each boundary
//! and attack sent for real.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

pub async fn call(
    app: &TestApp,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = plain().request(m, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn ok(app: &TestApp, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, m, path, token, body).await;
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

pub struct World {
    pub owner: String,
    pub ws_a: String,
    pub ws_b: String,
    /// Workspace admin of A only.
    pub wa: String,
    /// Agent developer in A.
    pub dev: String,
    pub dev_id: String,
}

pub async fn world(app: &TestApp) -> World {
    let owner = app.owner_token().await;
    let ws_a = ok(
        app,
        Method::POST,
        "/api/v1/workspaces",
        &owner,
        Some(json!({"name": "Alpha"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ws_b = ok(
        app,
        Method::POST,
        "/api/v1/workspaces",
        &owner,
        Some(json!({"name": "Beta"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.create_user(&owner, "wa@example.com", "user").await;
    let dev = app.create_user(&owner, "dev@example.com", "user").await;
    ok(
        app,
        Method::POST,
        &format!("/api/v1/workspaces/{ws_a}/members"),
        &owner,
        Some(json!({"email": "wa@example.com", "roles": ["workspace_admin"]})),
    )
    .await;
    ok(
        app,
        Method::POST,
        &format!("/api/v1/workspaces/{ws_a}/members"),
        &owner,
        Some(json!({"email": "dev@example.com", "roles": ["agent_developer"]})),
    )
    .await;
    let tok = |v: Value| v["access_token"].as_str().unwrap().to_string();
    World {
        wa: tok(app
            .api_login("wa@example.com", "amber-meadow-river-77")
            .await),
        dev: tok(app
            .api_login("dev@example.com", "amber-meadow-river-77")
            .await),
        dev_id: dev["id"].as_str().unwrap().to_string(),
        owner,
        ws_a,
        ws_b,
    }
}

async fn verify(app: &TestApp, cred: &str, query: &str) -> reqwest::Response {
    plain()
        .get(app.url(&format!("/auth/verify?{query}")))
        .bearer_auth(cred)
        .send()
        .await
        .unwrap()
}

async fn form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    bearer: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = plain().post(app.url(path)).form(fields);
    if let Some((id, secret)) = basic {
        r = r.basic_auth(id, Some(secret));
    }
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn service_account(app: &TestApp, token: &str, body: Value) -> (String, String) {
    let v = ok(
        app,
        Method::POST,
        "/api/v1/service-accounts",
        token,
        Some(body),
    )
    .await;
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

pub async fn client_token(
    app: &TestApp,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut f = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        f.push(("scope", s));
    }
    form(app, "/oauth2/token", Some((id, secret)), None, &f).await
}

#[actix_web::test]
async fn a_workspace_admin_sees_and_changes_only_their_workspace() {
    let app = spawn().await;
    let w = world(&app).await;
    let list = ok(&app, Method::GET, "/api/v1/workspaces", &w.wa, None).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![w.ws_a.as_str()]);
    // Beta belongs to someone else: members, groups, roles, credentials, audit, the workspace itself.
    let b = &w.ws_b;
    for (m, path, body) in [
        (Method::GET, format!("/api/v1/workspaces/{b}"), None),
        (Method::GET, format!("/api/v1/workspaces/{b}/members"), None),
        (
            Method::POST,
            format!("/api/v1/workspaces/{b}/members"),
            Some(json!({"email": "dev@example.com", "roles": ["user"]})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/workspaces/{b}"),
            Some(json!({"name": "Mine now"})),
        ),
        (
            Method::POST,
            "/api/v1/api-apps".into(),
            Some(json!({"workspace": b, "name": "x", "scopes": ["read:agents"]})),
        ),
        (
            Method::POST,
            "/api/v1/service-accounts".into(),
            Some(json!({"workspace": b, "name": "x", "scopes": ["read:agents"]})),
        ),
        (
            Method::POST,
            "/api/v1/roles".into(),
            Some(json!({"workspace": b, "name": "x", "permissions": ["read:agents"]})),
        ),
        (
            Method::POST,
            "/api/v1/groups".into(),
            Some(json!({"workspace": b, "name": "x"})),
        ),
        (
            Method::POST,
            "/api/v1/widget-keys".into(),
            Some(
                json!({"workspace": b, "name": "x", "bot": "b1", "origins": ["https://a.example"]}),
            ),
        ),
        (Method::GET, format!("/api/v1/audit?workspace={b}"), None),
        // Platform matters are not a workspace admin's either.
        (Method::GET, "/api/v1/users".into(), None),
        (Method::GET, "/api/v1/audit".into(), None),
        (
            Method::POST,
            "/api/v1/workspaces".into(),
            Some(json!({"name": "Gamma"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/workspaces/{}", w.ws_a),
            None,
        ),
    ] {
        let (s, v) = call(&app, m.clone(), &path, &w.wa, body).await;
        assert_eq!(s, 403, "{m} {path}: {v}");
    }
    // Things the owner made in Beta are not listed to Alpha's admin.
    let app_b = ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.owner,
        Some(json!({"workspace": b, "name": "beta-ci", "scopes": ["read:agents"]})),
    )
    .await;
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/api-apps/{}", app_b["id"].as_str().unwrap()),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(s, 403);
    let apps = ok(&app, Method::GET, "/api/v1/api-apps", &w.wa, None).await;
    assert!(apps.as_array().unwrap().is_empty(), "{apps}");
    // In Alpha the admin works, and the audit view is Alpha's events only.
    ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.wa,
        Some(json!({"name": "alpha-ci", "scopes": ["read:agents"]})),
    )
    .await;
    let ev = ok(
        &app,
        Method::GET,
        &format!("/api/v1/audit?workspace={}", w.ws_a),
        &w.wa,
        None,
    )
    .await;
    let events = ev["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["action"] == "api_app.create"));
    assert!(
        events.iter().all(|e| e["workspace"] == w.ws_a.as_str()),
        "{ev}"
    );
    // Each refusal above is in the audit log (identical ones as one event with a count).
    let denied = app.audit(&w.owner, "action=access.denied").await;
    let n: u64 = denied
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum();
    assert!(n >= 10, "{n}");
}

#[actix_web::test]
async fn no_one_grants_more_than_they_hold() {
    let app = spawn().await;
    let w = world(&app).await;
    // Platform permissions never go into a workspace.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &w.wa,
        Some(json!({"name": "x", "scopes": ["manage:keys"]})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // A custom role holding admin:credentials and read:agents only…
    let role = ok(
        &app,
        Method::POST,
        "/api/v1/roles",
        &w.wa,
        Some(json!({"name": "Key keeper", "permissions": ["admin:credentials", "read:agents"]})),
    )
    .await;
    let rid = role["id"].as_str().unwrap();
    ok(
        &app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/members/{}", w.ws_a, w.dev_id),
        &w.wa,
        Some(json!({"roles": [rid]})),
    )
    .await;
    // …lets its holder make apps with those scopes, not with write:agents.
    ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.dev,
        Some(json!({"name": "ok", "scopes": ["read:agents"]})),
    )
    .await;
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.dev,
        Some(json!({"name": "escalate", "scopes": ["write:agents"]})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write:agents")
    );
    // Nor can they hand themselves the workspace admin role.
    let (s, _) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/members/{}", w.ws_a, w.dev_id),
        &w.dev,
        Some(json!({"roles": ["workspace_admin"]})),
    )
    .await;
    assert_eq!(s, 403);
    // Editing the role applies at once; deleting it takes it from its holders.
    let r = verify(
        &app,
        &w.dev,
        &format!("scope=read:agents&workspace={}", w.ws_a),
    )
    .await;
    assert_eq!(r.status(), 200);
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/roles/{rid}"),
        &w.wa,
        Some(json!({"permissions": ["admin:credentials"]})),
    )
    .await;
    let r = verify(
        &app,
        &w.dev,
        &format!("scope=read:agents&workspace={}", w.ws_a),
    )
    .await;
    assert_eq!(r.status(), 403);
    // Groups grant roles to their members.
    ok(
        &app,
        Method::POST,
        "/api/v1/groups",
        &w.wa,
        Some(json!({"name": "Analysts", "roles": ["analyst"], "members": [w.dev_id]})),
    )
    .await;
    let r = verify(
        &app,
        &w.dev,
        &format!("scope=read:analytics&workspace={}", w.ws_a),
    )
    .await;
    assert_eq!(r.status(), 200);
    ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/roles/{rid}"),
        &w.wa,
        None,
    )
    .await;
    let m = ok(
        &app,
        Method::GET,
        &format!("/api/v1/workspaces/{}/members", w.ws_a),
        &w.wa,
        None,
    )
    .await;
    let dev = m
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["user_id"] == w.dev_id.as_str())
        .unwrap();
    assert_eq!(dev["roles"], json!([]));
    // Unknown names are refused by name.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/roles",
        &w.wa,
        Some(json!({"name": "bad", "permissions": ["read:everything"]})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read:everything")
    );
}

#[actix_web::test]
async fn api_keys_are_shown_once_checked_by_checksum_and_die_on_delete() {
    let app = spawn().await;
    let w = world(&app).await;
    let a = ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.wa,
        Some(json!({"name": "ci", "scopes": ["read:agents"]})),
    )
    .await;
    let app_id = a["id"].as_str().unwrap();
    let k = ok(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        Some(json!({"name": "runner"})),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ghk_") && key.len() == 53, "{key}");
    // Never readable again; the database holds no copy of it.
    let list = ok(
        &app,
        Method::GET,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        None,
    )
    .await;
    assert!(list[0].get("key").is_none() && !list.to_string().contains(&key[4..20]));
    let db = std::fs::read(app.data.join("gatehouse.redb")).unwrap();
    assert!(!db.windows(20).any(|x| x == &key.as_bytes()[4..24]));

    let r = verify(
        &app,
        &key,
        &format!("scope=read:agents&workspace={}", w.ws_a),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-workspace"], w.ws_a.as_str());
    assert_eq!(r.headers()["x-gatehouse-scopes"], "read:agents");
    // Scope escalation: a scope the app lacks.
    assert_eq!(verify(&app, &key, "scope=write:agents").await.status(), 403);
    // Cross-workspace: a good key of Alpha at Beta.
    assert_eq!(
        verify(
            &app,
            &key,
            &format!("scope=read:agents&workspace={}", w.ws_b)
        )
        .await
        .status(),
        403
    );
    // A typo (tampered checksum) is refused without a look-up, with words that say so.
    let mut bad = key.clone().into_bytes();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    let (s, v) = call(&app, Method::GET, "/api/v1/workspaces", &bad, None).await;
    assert_eq!(s, 401);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("checksum"),
        "{v}"
    );
    assert_eq!(verify(&app, &bad, "").await.status(), 401);
    // Editing the app's scopes applies to its keys at once.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/api-apps/{app_id}"),
        &w.wa,
        Some(json!({"scopes": ["read:agents", "write:agents"]})),
    )
    .await;
    assert_eq!(verify(&app, &key, "scope=write:agents").await.status(), 200);
    // Last use is shown, and the console warns about recently used keys.
    let list = ok(
        &app,
        Method::GET,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(list[0]["used_recently"], true);
    assert_eq!(list[0]["last_used_ip"], "127.0.0.1");
    // Deleting takes effect on the very next check.
    let key_id = k["id"].as_str().unwrap();
    ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/api-apps/{app_id}/keys/{key_id}"),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(verify(&app, &key, "scope=read:agents").await.status(), 401);
    // Expired keys are refused; deleting an app kills its keys.
    let k2 = ok(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        Some(json!({"expires_at": gatehouse::clock::rfc3339(T0 + 60)})),
    )
    .await;
    let key2 = k2["key"].as_str().unwrap().to_string();
    let k3 = ok(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        None,
    )
    .await;
    let key3 = k3["key"].as_str().unwrap().to_string();
    assert_eq!(verify(&app, &key2, "scope=read:agents").await.status(), 200);
    app.clock.advance(61);
    assert_eq!(verify(&app, &key2, "scope=read:agents").await.status(), 401);
    assert_eq!(verify(&app, &key3, "scope=read:agents").await.status(), 200);
    ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/api-apps/{app_id}"),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(verify(&app, &key3, "scope=read:agents").await.status(), 401);
}

#[actix_web::test]
async fn client_credentials_grant_exactly_the_granted_scopes() {
    let app = spawn().await;
    let w = world(&app).await;
    let (id, secret) = service_account(&app, &w.wa,
        json!({"name": "indexer", "description": "nightly", "scopes": ["read:agents", "read:analytics"]})).await;
    assert!(secret.starts_with("ghc_"));
    let got = ok(
        &app,
        Method::GET,
        &format!("/api/v1/service-accounts/{id}"),
        &w.wa,
        None,
    )
    .await;
    assert!(got.get("client_secret").is_none());
    let (s, t) = client_token(&app, &id, &secret, None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    assert_eq!(t["scope"], "read:agents read:analytics");
    let tok = t["access_token"].as_str().unwrap().to_string();
    // A subset on request; more than granted is invalid_scope.
    let (s, t2) = client_token(&app, &id, &secret, Some("read:agents")).await;
    assert_eq!((s, t2["scope"].as_str()), (200, Some("read:agents")));
    let narrow = t2["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        verify(&app, &narrow, "scope=read:analytics").await.status(),
        403
    );
    let (s, e) = client_token(&app, &id, &secret, Some("read:agents write:agents")).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_scope")));
    // Form-field client authentication works too; a wrong secret does not.
    let (s, _) = form(
        &app,
        "/oauth2/token",
        None,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let wrong = crate::access::flip_last(&secret);
    let (s, e) = client_token(&app, &id, &wrong, None).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
    let (s, e) = form(
        &app,
        "/oauth2/token",
        Some((&id, &secret)),
        None,
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );

    let r = verify(
        &app,
        &tok,
        &format!("scope=read:analytics&workspace={}", w.ws_a),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-user"], id.as_str());
    assert_eq!(
        verify(
            &app,
            &tok,
            &format!("scope=read:agents&workspace={}", w.ws_b)
        )
        .await
        .status(),
        403
    );
    // Narrowing the account's scopes bites on tokens already issued.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{id}"),
        &w.wa,
        Some(json!({"scopes": ["read:agents"]})),
    )
    .await;
    assert_eq!(
        verify(&app, &tok, "scope=read:analytics").await.status(),
        // Narrowing ends the account's tokens (r3 #8), so not 403 but 401.
        401
    );
    // Deleted: its token is refused on the next check, and no new token.
    ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/service-accounts/{id}"),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(verify(&app, &tok, "scope=read:agents").await.status(), 401);
    let (s, _) = client_token(&app, &id, &secret, None).await;
    assert_eq!(s, 401);
}

#[actix_web::test]
async fn ip_allowlists_block_or_warn_and_ignore_spoofed_forwarding_headers() {
    let app = spawn().await;
    let w = world(&app).await;
    let (id, secret) = service_account(&app, &w.wa,
        json!({"name": "locked", "scopes": ["read:agents"], "ip_allowlist": ["10.0.0.0/8", "2001:db8::/32"], "ip_mode": "block"})).await;
    let (s, e) = client_token(&app, &id, &secret, None).await;
    assert_eq!(s, 403, "{e}");
    // X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
    let r = plain()
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .header("x-forwarded-for", "10.1.2.3")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Warn mode lets the call through and audits it.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{id}"),
        &w.wa,
        Some(json!({"ip_mode": "warn"})),
    )
    .await;
    let (s, _) = client_token(&app, &id, &secret, None).await;
    assert_eq!(s, 200);
    let ev = app
        .audit(&w.owner, "action=service_account.ip_not_allowed")
        .await;
    // Identical refusals are one event with a count.
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[0]["outcome"], "success");
    assert_eq!(ev[1]["outcome"], "denied");
    assert_eq!(ev[1]["details"]["count"], 2, "{ev:?}");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &w.wa,
        Some(json!({"name": "bad", "scopes": ["read:agents"], "ip_allowlist": ["10.0.0.0/33"]})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("CIDR"));
}

#[actix_web::test]
async fn introspection_revocation_and_the_one_answer_endpoint() {
    let app = spawn().await;
    let w = world(&app).await;
    // The platform's own checker: a platform-level account with introspect:credentials.
    let (pid, psecret) = service_account(
        &app,
        &w.owner,
        json!({"name": "platform", "scopes": ["introspect:credentials"]}),
    )
    .await;
    // Alpha's checker sees Alpha only.
    let (aid, asecret) = service_account(
        &app,
        &w.wa,
        json!({"name": "alpha-checker", "scopes": ["introspect:credentials"]}),
    )
    .await;
    let (sid, ssecret) = service_account(
        &app,
        &w.wa,
        json!({"name": "worker", "scopes": ["read:agents"]}),
    )
    .await;
    let tok = client_token(&app, &sid, &ssecret, None).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let a = ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.owner,
        Some(json!({"workspace": w.ws_b, "name": "b", "scopes": ["read:agents"]})),
    )
    .await;
    let bkey = ok(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{}/keys", a["id"].as_str().unwrap()),
        &w.owner,
        None,
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, v) = form(
        &app,
        "/oauth2/introspect",
        Some((&pid, &psecret)),
        None,
        &[("token", &tok)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["active"], true);
    assert_eq!(v["scope"], "read:agents");
    assert_eq!(v["client_id"], sid.as_str());
    assert_eq!(v["workspace"], w.ws_a.as_str());
    assert!(v["exp"].as_i64().unwrap() > T0);
    let (_, v) = form(
        &app,
        "/oauth2/introspect",
        Some((&pid, &psecret)),
        None,
        &[("token", &bkey)],
    )
    .await;
    assert_eq!(
        (v["active"].as_bool(), v["token_type"].as_str()),
        (Some(true), Some("api_key"))
    );
    let (_, v) = form(
        &app,
        "/oauth2/introspect",
        Some((&pid, &psecret)),
        None,
        &[("token", &w.dev)],
    )
    .await;
    assert_eq!(
        (v["active"].as_bool(), v["username"].as_str()),
        (Some(true), Some("dev@example.com"))
    );
    // Alpha's checker: Beta's key does not exist for it; Alpha's dev does, with Alpha's scopes.
    let (_, v) = form(
        &app,
        "/oauth2/introspect",
        Some((&aid, &asecret)),
        None,
        &[("token", &bkey)],
    )
    .await;
    assert_eq!(v, json!({"active": false}));
    let (_, v) = form(
        &app,
        "/oauth2/introspect",
        Some((&aid, &asecret)),
        None,
        &[("token", &w.dev)],
    )
    .await;
    assert_eq!(v["workspace"], w.ws_a.as_str());
    assert!(v["scope"].as_str().unwrap().contains("write:agents"));
    // Callers without introspect:credentials, and no caller at all, are refused.
    let (s, _) = form(
        &app,
        "/oauth2/introspect",
        Some((&sid, &ssecret)),
        None,
        &[("token", &tok)],
    )
    .await;
    assert_eq!(s, 403);
    let (s, e) = form(&app, "/oauth2/introspect", None, None, &[("token", &tok)]).await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
    // Garbage is inactive, not an error.
    let (_, v) = form(
        &app,
        "/oauth2/introspect",
        Some((&pid, &psecret)),
        None,
        &[("token", "eyJhbGciOiJub25lIn0.e30.")],
    )
    .await;
    assert_eq!(v, json!({"active": false}));

    // POST /api/v1/authorize: one answer, with the reason.
    let ptoken = client_token(&app, &pid, &psecret, None).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ask = |cred: String, scope: &str, resource: Option<String>| {
        let (app, ptoken) = (&app, ptoken.clone());
        let body = json!({"credential": cred, "scope": scope, "resource": resource});
        async move { ok(app, Method::POST, "/api/v1/authorize", &ptoken, Some(body)).await }
    };
    let v = ask(
        tok.clone(),
        "read:agents",
        Some(format!("{}/agents/a1", w.ws_a)),
    )
    .await;
    assert_eq!(
        (v["allow"].as_bool(), v["sub"].as_str()),
        (Some(true), Some(sid.as_str()))
    );
    let v = ask(tok.clone(), "write:agents", None).await;
    assert_eq!(
        (v["allow"].as_bool(), v["reason"].as_str()),
        (Some(false), Some("scope_missing"))
    );
    let v = ask(tok.clone(), "read:agents", Some(w.ws_b.clone())).await;
    assert_eq!(v["reason"], "wrong_workspace");
    let v = ask(w.dev.clone(), "deploy:model", Some(w.ws_a.clone())).await;
    assert_eq!(v["allow"], true);
    let v = ask(w.dev.clone(), "read:agents", Some(w.ws_b.clone())).await;
    assert_eq!(v["reason"], "not_a_member");
    let v = ask("ghk_nothing".into(), "read:agents", None).await;
    assert_eq!(v["reason"], "invalid_credential");
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/authorize",
        &tok,
        Some(json!({"credential": bkey, "scope": "read:agents"})),
    )
    .await;
    assert_eq!(s, 403, "callers need introspect:credentials");

    // RFC 7009: the service account's token, then the API key.
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&aid, &asecret)),
        None,
        &[("token", &tok)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(verify(&app, &tok, "scope=read:agents").await.status(), 401);
    let (_, v) = form(
        &app,
        "/oauth2/introspect",
        Some((&pid, &psecret)),
        None,
        &[("token", &tok)],
    )
    .await;
    assert_eq!(v["active"], false);
    // Alpha's checker may not revoke Beta's key; the platform checker may.
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&aid, &asecret)),
        None,
        &[("token", &bkey)],
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(verify(&app, &bkey, "scope=read:agents").await.status(), 200);
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&pid, &psecret)),
        None,
        &[("token", &bkey)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(verify(&app, &bkey, "scope=read:agents").await.status(), 401);
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&pid, &psecret)),
        None,
        &[("token", "unknown")],
    )
    .await;
    assert_eq!(s, 200);
    // A user's refresh token: the family dies.
    let pair = app
        .api_login("dev@example.com", "amber-meadow-river-77")
        .await;
    let rt = pair["refresh_token"].as_str().unwrap();
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&pid, &psecret)),
        None,
        &[("token", rt)],
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": rt}),
    )
    .await;
    assert_eq!(s, 401);
    // User access tokens: Alpha's checker may revoke a member's, not the owner's.
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&aid, &asecret)),
        None,
        &[("token", &w.owner)],
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(verify(&app, &w.owner, "").await.status(), 200);
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&aid, &asecret)),
        None,
        &[("token", &w.dev)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(verify(&app, &w.dev, "").await.status(), 401);
    // A platform-level credential is answered for a platform-level caller without a resource.
    let v = ask(ptoken.clone(), "introspect:credentials", None).await;
    assert_eq!(
        (v["allow"].as_bool(), v["reason"].as_str()),
        (Some(true), Some("scope_granted"))
    );
}

#[actix_web::test]
async fn widget_keys_work_only_for_their_bot_and_origins() {
    let app = spawn().await;
    let w = world(&app).await;
    let k = ok(
        &app,
        Method::POST,
        "/api/v1/widget-keys",
        &w.wa,
        Some(
            json!({"name": "shop", "bot": "support-bot", "origins": ["https://shop.example.com/"]}),
        ),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ghw_"));
    let q = |bot: &str| format!("scope=use:agents&workspace={}&bot={bot}", w.ws_a);
    let with_origin = |path: String, origin: &'static str| {
        plain()
            .get(app.url(&path))
            .bearer_auth(&key)
            .header("origin", origin)
            .send()
    };
    let r = with_origin(
        format!("/auth/verify?{}", q("support-bot")),
        "https://shop.example.com",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = with_origin(
        format!("/auth/verify?{}", q("other-bot")),
        "https://shop.example.com",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = with_origin(
        format!("/auth/verify?{}", q("support-bot")),
        "https://evil.example",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = with_origin(
        format!(
            "/auth/verify?scope=read:agents&workspace={}&bot=support-bot",
            w.ws_a
        ),
        "https://shop.example.com",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = with_origin("/auth/verify".into(), "https://shop.example.com")
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "a widget key is good for its bot's chat only"
    );
    let (s, _) = call(&app, Method::GET, "/api/v1/workspaces", &key, None).await;
    assert_eq!(s, 200, "listing is harmless");
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &key,
        Some(json!({"name": "x", "scopes": ["use:agents"]})),
    )
    .await;
    assert_eq!(s, 403);
    ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/widget-keys/{}", k["id"].as_str().unwrap()),
        &w.wa,
        None,
    )
    .await;
    let r = with_origin(
        format!("/auth/verify?{}", q("support-bot")),
        "https://shop.example.com",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
}

#[actix_web::test]
async fn verify_reads_sessions_roles_and_sends_browsers_to_sign_in() {
    let app = spawn().await;
    let w = world(&app).await;
    // No credential: 401; a browser also gets where to sign in, back to where it was going.
    let r = plain()
        .get(app.url("/auth/verify"))
        .header("accept", "text/html")
        .header("x-original-uri", "/agents/42?tab=chat")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["location"],
        format!("{}/login?rd=/agents/42%3Ftab%3Dchat", app.base).as_str()
    );
    // A browser session works as the credential.
    let (client, _) = app
        .browser_login("dev@example.com", "amber-meadow-river-77")
        .await;
    let r = client
        .get(app.url(&format!(
            "/auth/verify?role=agent_developer&workspace={}",
            w.ws_a
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-email"], "dev@example.com");
    assert_eq!(r.headers()["x-gatehouse-roles"], "agent_developer");
    assert!(
        r.headers()["x-gatehouse-scopes"]
            .to_str()
            .unwrap()
            .contains("deploy:model")
    );
    let r = client
        .get(app.url("/auth/verify?role=analyst"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .get(app.url("/auth/verify?scope=read:analytics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .get(app.url("/auth/verify?scope=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Removing the member takes effect on the next check.
    ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/members/{}", w.ws_a, w.dev_id),
        &w.owner,
        None,
    )
    .await;
    let r = client
        .get(app.url("/auth/verify?scope=read:agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[actix_web::test]
async fn tokens_for_another_audience_are_refused_and_signing_keys_rotate() {
    let app = spawn().await;
    let w = world(&app).await;
    // A token signed with our very key, for another audience.
    let foreign = {
        let mut tx = app.svc.store.write().unwrap();
        let other = gatehouse::tokens::Signer::load_or_create(
            &mut tx,
            T0,
            app.svc.signer().issuer().to_string(),
            "billing".into(),
            900,
            gatehouse::tokens::SigningAlg::RS256,
        )
        .unwrap();
        other
            .sign_client(
                "sa_0000000000000000000000",
                None,
                "read:agents".into(),
                T0,
                0,
            )
            .unwrap()
            .0
    };
    let r = verify(&app, &foreign, "").await;
    assert_eq!(r.status(), 401);
    let (s, v) = call(&app, Method::GET, "/api/v1/workspaces", &foreign, None).await;
    assert_eq!(s, 401);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("audience"),
        "{v}"
    );

    let jwks = |app: &TestApp| {
        let url = app.url("/oauth2/jwks");
        async move {
            plain()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["keys"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(jwks(&app).await, 1);
    let old = w.dev.clone();
    let v = ok(
        &app,
        Method::POST,
        "/api/v1/keys/signing/rotate",
        &w.owner,
        None,
    )
    .await;
    let kid = v["kid"].as_str().unwrap().to_string();
    assert_eq!(
        jwks(&app).await,
        2,
        "the previous key stays until its tokens expire"
    );
    assert_eq!(verify(&app, &old, "").await.status(), 200);
    let fresh = app
        .api_login("dev@example.com", "amber-meadow-river-77")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let header: Value =
        serde_json::from_slice(&base64url(fresh.split('.').next().unwrap())).unwrap();
    assert_eq!(header["kid"], kid.as_str());
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/keys/signing/rotate",
        &w.wa,
        None,
    )
    .await;
    assert_eq!(s, 403);
    // The schedule: 90 days on, the next start rotates, and the first key is gone.
    app.clock.advance(91 * 86_400);
    assert!(app.svc.rotate_signing_key_if_due().unwrap().is_some());
    assert_eq!(jwks(&app).await, 2);
    let owner = app.api_login(OWNER, OWNER_PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.audit(&owner, "action=signing_key.rotate").await.len(),
        2
    );
}

pub fn base64url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// Changes the last character (keeps the shape).
pub fn flip_last(s: &str) -> String {
    let mut b = s.to_string().into_bytes();
    let i = b.len() - 1;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[actix_web::test]
async fn console_workspace_pages_keep_to_the_same_boundaries() {
    let app = spawn().await;
    let w = world(&app).await;
    let (client, _) = app
        .browser_login("wa@example.com", "amber-meadow-river-77")
        .await;
    let page = client
        .get(app.url("/admin/workspaces"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Alpha") && !page.contains("Beta"), "{page}");
    assert!(
        !page.contains("create-workspace"),
        "only platform admins create workspaces"
    );
    let r = client
        .get(app.url(&format!("/admin/workspaces/{}", w.ws_b)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let html = client
        .get(app.url(&format!("/admin/workspaces/{}", w.ws_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The page is in tabs (issue 19 point 8): members first, API apps on their own.
    let apps_tab = client
        .get(app.url(&format!("/admin/workspaces/{}?tab=apps", w.ws_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("dev@example.com") && apps_tab.contains("create-app"));
    // A form posted at Beta with Alpha's admin session is refused (CSRF token valid, permission not).
    let csrf = csrf_from(&html);
    let r = client
        .post(app.url(&format!("/admin/workspaces/{}/apps", w.ws_b)))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "sneaky"),
            ("scope", "read:agents"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Without the CSRF token nothing happens in Alpha either.
    let r = client
        .post(app.url(&format!("/admin/workspaces/{}/apps", w.ws_a)))
        .form(&[("name", "no-token"), ("scope", "read:agents")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(app.url(&format!("/admin/workspaces/{}/apps", w.ws_a)))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "two scopes"),
            ("scope", "read:agents"),
            ("scope", "read:analytics"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let apps = ok(&app, Method::GET, "/api/v1/api-apps", &w.wa, None).await;
    assert_eq!(apps[0]["scopes"], json!(["read:agents", "read:analytics"]));

    // Beta's role and service account, reached through Alpha's page URLs
    // (the workspace in the path is not what decides): each refused, nothing changed.
    let role_b = ok(
        &app,
        Method::POST,
        "/api/v1/roles",
        &w.owner,
        Some(json!({"workspace": w.ws_b, "name": "B role", "permissions": ["read:agents"]})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (sa_b, _) = service_account(
        &app,
        &w.owner,
        json!({"workspace": w.ws_b, "name": "b-sa", "scopes": ["read:agents"]}),
    )
    .await;
    let posts = [
        (
            format!("/admin/workspaces/{}/roles/{role_b}", w.ws_a),
            vec![("name", "taken"), ("permission", "admin:users")],
        ),
        (
            format!("/admin/workspaces/{}/roles/{role_b}/delete", w.ws_a),
            vec![],
        ),
        (
            format!("/admin/workspaces/{}/service-accounts/{sa_b}", w.ws_a),
            vec![
                ("name", "taken"),
                ("scope", "read:agents"),
                ("ip_mode", "warn"),
            ],
        ),
        (
            format!(
                "/admin/workspaces/{}/service-accounts/{sa_b}/secret",
                w.ws_a
            ),
            vec![],
        ),
        (
            format!(
                "/admin/workspaces/{}/service-accounts/{sa_b}/delete",
                w.ws_a
            ),
            vec![],
        ),
        (
            format!("/admin/workspaces/{}/roles", w.ws_b),
            vec![("name", "in B"), ("permission", "read:agents")],
        ),
        (
            format!("/admin/workspaces/{}/widget-keys", w.ws_b),
            vec![
                ("name", "w"),
                ("bot", "b1"),
                ("origins", "https://x.example"),
            ],
        ),
    ];
    for (path, mut fields) in posts {
        fields.push(("csrf_token", csrf.as_str()));
        let r = client
            .post(app.url(&path))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let role = ok(
        &app,
        Method::GET,
        &format!("/api/v1/roles/{role_b}"),
        &w.owner,
        None,
    )
    .await;
    assert_eq!(role["name"], "B role");
    let sa = ok(
        &app,
        Method::GET,
        &format!("/api/v1/service-accounts/{sa_b}"),
        &w.owner,
        None,
    )
    .await;
    assert_eq!(sa["ip_mode"], "block");
    let roles = ok(&app, Method::GET, "/api/v1/roles", &w.owner, None).await;
    let custom = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["builtin"] == false)
        .count();
    assert_eq!(custom, 1, "no role was made in Beta: {roles}");
    // An unknown kind of thing to delete is a 404, not a guess.
    let r = client
        .get(app.url(&format!("/admin/workspaces/{}/users/x/delete", w.ws_a)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Failed client authentications at /oauth2/* are limited per address
/// (successful calls are not counted); the limit comes back with time.
#[actix_web::test]
async fn failed_client_authentication_is_rate_limited_per_address() {
    let app = crate::common::spawn_with(|s| {
        s.rate_limit.client_auth_failures_per_minute = 6;
        s.rate_limit.client_auth_failures_burst = 3;
    })
    .await;
    let owner = app.owner_token().await;
    let (id, secret) = service_account(
        &app,
        &owner,
        json!({"name": "indexer", "scopes": ["read:agents"]}),
    )
    .await;
    // Successes never count.
    for _ in 0..10 {
        assert_eq!(client_token(&app, &id, &secret, None).await.0, 200);
    }
    for _ in 0..3 {
        let (s, e) = client_token(&app, &id, "ghc_wrong", None).await;
        assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
    }
    // Now even the right secret waits, at every OAuth endpoint.
    let r = plain()
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    let (s, _) = form(
        &app,
        "/oauth2/introspect",
        Some((&id, &secret)),
        None,
        &[("token", "x")],
    )
    .await;
    assert_eq!(s, 429);
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&id, &secret)),
        None,
        &[("token", "x")],
    )
    .await;
    assert_eq!(s, 429);
    // Sign-in endpoints have their own buckets.
    assert_eq!(
        crate::common::post(
            &app,
            "/api/v1/auth/login",
            None,
            json!({"email": OWNER, "password": OWNER_PW})
        )
        .await
        .0,
        200
    );
    // One failure's worth comes back every 10 s.
    app.clock.advance(wait as i64);
    assert_eq!(client_token(&app, &id, &secret, None).await.0, 200);
}

/// `/auth/verify` reuses allowed answers for bearer credentials, and every
/// change they depend on still bites on the very next check: a narrowed app,
/// a disabled user, a revoked token, a narrowed service account, a deleted key;
/// and a reused answer still records the key's last use.
/// An API app "ci" (read:agents) made with `token`, and its key "runner":
/// (app id, key id, key).
async fn ci_key(app: &TestApp, token: &str) -> (String, String, String) {
    let a = ok(
        app,
        Method::POST,
        "/api/v1/api-apps",
        token,
        Some(json!({"name": "ci", "scopes": ["read:agents"]})),
    )
    .await;
    let app_id = a["id"].as_str().unwrap().to_string();
    let k = ok(
        app,
        Method::POST,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        token,
        Some(json!({"name": "runner"})),
    )
    .await;
    let id = k["id"].as_str().unwrap().to_string();
    (app_id, id, k["key"].as_str().unwrap().to_string())
}

#[actix_web::test]
async fn reused_verify_answers_follow_every_change() {
    let app = spawn().await;
    let w = world(&app).await;
    let q = format!("scope=read:agents&workspace={}", w.ws_a);
    let (app_id, key_id, key) = ci_key(&app, &w.wa).await;
    for _ in 0..3 {
        let r = verify(&app, &key, &q).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-gatehouse-scopes"], "read:agents");
    }
    // Last use recorded from the reused answers too (written at the next flush).
    app.clock.advance(60);
    assert_eq!(verify(&app, &key, &q).await.status(), 200);
    gatehouse::access::credentials::flush_usage(&app.svc).unwrap();
    let keys = ok(
        &app,
        Method::GET,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        None,
    )
    .await;
    assert!(keys[0]["last_used_at"].is_string(), "{keys}");
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/api-apps/{app_id}"),
        &w.wa,
        Some(json!({"scopes": ["read:analytics"]})),
    )
    .await;
    assert_eq!(verify(&app, &key, &q).await.status(), 403, "narrowed app");

    // A user's token: reused, then the user is disabled.
    let dq = format!("scope=write:agents&workspace={}", w.ws_a);
    assert_eq!(verify(&app, &w.dev, &dq).await.status(), 200);
    assert_eq!(verify(&app, &w.dev, &dq).await.status(), 200);
    let r = plain()
        .post(app.url(&format!("/api/v1/users/{}/disable", w.dev_id)))
        .bearer_auth(&w.owner)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        verify(&app, &w.dev, &dq).await.status(),
        401,
        "disabled user"
    );

    // The workspace admin's token: reused, then revoked.
    assert_eq!(verify(&app, &w.wa, &q).await.status(), 200);
    assert_eq!(verify(&app, &w.wa, &q).await.status(), 200);
    let (id, secret) = service_account(
        &app,
        &w.owner,
        json!({"name": "checker", "scopes": ["introspect:credentials", "read:agents"]}),
    )
    .await;
    let (s, _) = form(
        &app,
        "/oauth2/revoke",
        Some((&id, &secret)),
        None,
        &[("token", &w.wa)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(verify(&app, &w.wa, &q).await.status(), 401, "revoked token");

    // A service account's token: reused, then its scopes narrowed.
    let (t_s, t) = client_token(&app, &id, &secret, None).await;
    assert_eq!(t_s, 200);
    let sa_token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        verify(&app, &sa_token, "scope=read:agents").await.status(),
        200
    );
    assert_eq!(
        verify(&app, &sa_token, "scope=read:agents").await.status(),
        200
    );
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{id}"),
        &w.owner,
        Some(json!({"scopes": ["introspect:credentials"]})),
    )
    .await;
    assert_eq!(
        verify(&app, &sa_token, "scope=read:agents").await.status(),
        // Narrowing ends the account's tokens (r3 #8), so not 403 but 401.
        401,
        "narrowed service account"
    );

    // The key again, with a scope it has, then deleted.
    let aq = format!("scope=read:analytics&workspace={}", w.ws_a);
    assert_eq!(verify(&app, &key, &aq).await.status(), 200);
    let r = plain()
        .delete(app.url(&format!("/api/v1/api-apps/{app_id}/keys/{key_id}")))
        .bearer_auth(&w.owner)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(verify(&app, &key, &aq).await.status(), 401, "deleted key");
    // Expiry is checked on reuse too: a token past its lifetime.
    let (_, t) = client_token(&app, &id, &secret, None).await;
    let short = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        verify(&app, &short, "scope=introspect:credentials")
            .await
            .status(),
        200
    );
    app.clock.advance(901);
    assert_eq!(
        verify(&app, &short, "scope=introspect:credentials")
            .await
            .status(),
        401,
        "expired token"
    );
}

/// A new secret made in the console is shown once on a page reached by a
/// redirect (a reload never re-posts the form), only to the session that
/// made it.
#[actix_web::test]
async fn console_secrets_are_shown_once_after_a_redirect() {
    let app = spawn().await;
    let w = world(&app).await;
    let (client, _) = app
        .browser_login("wa@example.com", "amber-meadow-river-77")
        .await;
    let ws = app.url(&format!("/admin/workspaces/{}", w.ws_a));
    let html = client.get(&ws).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&html);
    let r = client
        .post(app.url(&format!("/admin/workspaces/{}/service-accounts", w.ws_a)))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "nightly"),
            ("scope", "read:agents"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.contains("&shown="), "{to}");
    let page = client
        .get(app.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "id=\"secret-value\">";
    let at = page.find(marker).expect("the secret is shown") + marker.len();
    let secret = &page[at..at + page[at..].find('<').unwrap()];
    assert!(secret.starts_with("ghc_"), "{secret}");
    // A reload shows nothing.
    let again = client
        .get(app.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains(secret) && !again.contains(marker));
    // Another session with the link of a fresh secret gets nothing (and does
    // not spend it); the session that made it still sees it.
    let r = client
        .post(app.url(&format!("/admin/workspaces/{}/service-accounts", w.ws_a)))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "weekly"),
            ("scope", "read:agents"),
        ])
        .send()
        .await
        .unwrap();
    let to2 = r.headers()["location"].to_str().unwrap().to_string();
    let (other, _) = app
        .browser_login("wa@example.com", "amber-meadow-river-77")
        .await;
    let theirs = other
        .get(app.url(&to2))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!theirs.contains(marker));
    let mine = client
        .get(app.url(&to2))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(mine.contains(marker));
}

/// Reused introspection answers follow every change too: a deleted key, a
/// disabled user and a caller that lost `introspect:credentials`.
#[actix_web::test]
async fn reused_introspection_answers_follow_every_change() {
    let app = spawn().await;
    let w = world(&app).await;
    let (id, secret) = service_account(
        &app,
        &w.owner,
        json!({"name": "gateway", "scopes": ["introspect:credentials"]}),
    )
    .await;
    let (app_id, key_id, key) = ci_key(&app, &w.wa).await;
    let ask = |t: String| {
        let (app, id, secret) = (&app, id.clone(), secret.clone());
        async move {
            form(
                app,
                "/oauth2/introspect",
                Some((&id, &secret)),
                None,
                &[("token", &t)],
            )
            .await
        }
    };
    for _ in 0..3 {
        let (s, v) = ask(key.clone()).await;
        assert_eq!((s, v["active"].as_bool()), (200, Some(true)), "{v}");
        assert_eq!(v["token_type"], "api_key");
    }
    // Form fields in the body instead of Basic: the same answer, reused per
    // those bytes; a JSON body gets an OAuth error that says what to send.
    let body = format!("client_id={id}&client_secret={secret}&token={key}");
    for _ in 0..2 {
        let r = plain()
            .post(app.url("/oauth2/introspect"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["active"], true, "{v}");
    }
    // The same bytes sent as another content type are not served the reused answer.
    let r = plain()
        .post(app.url("/oauth2/introspect"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = plain()
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"token": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("x-www-form-urlencoded"),
        "{v}"
    );
    // A wrong caller secret is still refused (the reuse is per caller credential).
    let (s, _) = form(
        &app,
        "/oauth2/introspect",
        Some((&id, "ghc_wrong")),
        None,
        &[("token", &key)],
    )
    .await;
    assert_eq!(s, 401);
    let r = plain()
        .delete(app.url(&format!("/api/v1/api-apps/{app_id}/keys/{key_id}")))
        .bearer_auth(&w.owner)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(ask(key.clone()).await.1["active"], false, "deleted key");
    for _ in 0..2 {
        assert_eq!(ask(w.dev.clone()).await.1["active"], true);
    }
    plain()
        .post(app.url(&format!("/api/v1/users/{}/disable", w.dev_id)))
        .bearer_auth(&w.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(ask(w.dev.clone()).await.1["active"], false, "disabled user");
    assert_eq!(ask(w.wa.clone()).await.1["active"], true);
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{id}"),
        &w.owner,
        Some(json!({"scopes": ["read:agents"]})),
    )
    .await;
    assert_eq!(
        ask(w.wa.clone()).await.0,
        403,
        "the caller lost introspect:credentials"
    );
}

/// A workspace admin creates users into their own workspace only, as plain
/// users; the user signs in at once, and the admin sees the records.
#[actix_web::test]
async fn a_workspace_admin_creates_users_in_their_workspace() {
    let app = spawn().await;
    let w = world(&app).await;
    let body = |email: &str, roles: &[&str]| json!({"email": email, "name": "New Person", "password": "quartz-lagoon-meadow-8", "roles": roles});
    let (s, v) = crate::common::post(
        &app,
        &format!("/api/v1/workspaces/{}/users", w.ws_a),
        Some(&w.wa),
        body("new@example.com", &["analyst"]),
    )
    .await;
    // Below platform level: the same answer whether or not the address
    // existed (R2 finding 7); the members list shows the new member.
    assert_eq!(s, 202, "{v}");
    let list = ok(
        &app,
        Method::GET,
        &format!("/api/v1/workspaces/{}/members", w.ws_a),
        &w.wa,
        None,
    )
    .await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == "new@example.com" && m["roles"] == json!(["analyst"])),
        "{list}"
    );
    let t = app
        .api_login("new@example.com", "quartz-lagoon-meadow-8")
        .await;
    let me: Value = plain()
        .get(app.url("/api/v1/me"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "user");
    // Not in another workspace, not twice, not with a weak password, not by a developer.
    let (s, _) = crate::common::post(
        &app,
        &format!("/api/v1/workspaces/{}/users", w.ws_b),
        Some(&w.wa),
        body("b@example.com", &["user"]),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = crate::common::post(
        &app,
        &format!("/api/v1/workspaces/{}/users", w.ws_a),
        Some(&w.wa),
        body("new@example.com", &["user"]),
    )
    .await;
    assert_eq!(s, 202, "an existing address answers like a new one");
    let (s, v) = crate::common::post(
        &app,
        &format!("/api/v1/workspaces/{}/users", w.ws_a),
        Some(&w.wa),
        json!({"email": "weak@example.com", "password": "short", "roles": ["user"]}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = crate::common::post(
        &app,
        &format!("/api/v1/workspaces/{}/users", w.ws_a),
        Some(&w.dev),
        body("d@example.com", &["user"]),
    )
    .await;
    assert_eq!(s, 403);
    // The records are the workspace's, so its admin sees them.
    let events = app
        .audit(&w.wa, &format!("workspace={}&action=user.create", w.ws_a))
        .await;
    assert!(
        events.iter().any(
            |e| e["details"]["email"] == "new@example.com" && e["workspace"] == w.ws_a.as_str()
        ),
        "{events:?}"
    );

    // The console form does the same.
    let (client, _) = app
        .browser_login("wa@example.com", "amber-meadow-river-77")
        .await;
    let ws = app.url(&format!("/admin/workspaces/{}", w.ws_a));
    let html = client.get(&ws).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("create-member"));
    let r = client
        .post(app.url(&format!("/admin/workspaces/{}/users", w.ws_a)))
        .form(&[
            ("csrf_token", csrf_from(&html).as_str()),
            ("email", "form@example.com"),
            ("name", "Form Person"),
            ("password", "quartz-lagoon-meadow-8"),
            ("role", "user"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = client.get(&ws).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("form@example.com"));
}

/// Headless Chromium through one workspace's access-control pages
/// (tests/browser/access.mjs): rename, members, custom roles, groups, app
/// scopes, service-account edits and secrets, widget keys, and every
/// deletion after its confirmation. The README's test command installs
/// Chromium and playwright-core.
#[actix_web::test]
async fn workspace_access_pages_in_headless_chromium() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let out = chromium_walk_async("access.mjs", vec![app.base.clone()]).await;
    // Each change the pages made went through the audited access functions.
    for action in [
        "workspace.rename",
        "workspace.session_limits",
        "role.create",
        "role.update",
        "role.delete",
        "group.create",
        "group.update",
        "group.delete",
        "api_app.update",
        "api_app.delete",
        "service_account.update",
        "service_account.secret_rotate",
        "service_account.delete",
        "widget_key.create",
        "widget_key.delete",
        "member.remove",
    ] {
        let ev = app.audit(&token, &format!("action={action}&limit=5")).await;
        assert!(!ev.is_empty(), "no {action} event\n{out}");
    }
}

/// A sign-in is recorded (API and console show it) without counting as a
/// change to the identity: the generation that reused `/auth/verify` and
/// introspection answers depend on stays put, so a login flood does not
/// throw every reused answer away. Disabling a user still moves it.
#[actix_web::test]
async fn a_sign_in_is_recorded_without_invalidating_reused_answers() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let u = app.create_user(&owner, "sam@example.com", "user").await;
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(u["last_login_at"], Value::Null);
    let before = gatehouse::web::verify_cache::generation(&app.svc);
    app.clock.advance(5);
    let t = app
        .api_login("sam@example.com", "amber-meadow-river-77")
        .await;
    assert!(t["access_token"].is_string(), "{t}");
    assert_eq!(
        gatehouse::web::verify_cache::generation(&app.svc),
        before,
        "a sign-in changed the identity generation"
    );
    let got = ok(
        &app,
        Method::GET,
        &format!("/api/v1/users/{id}"),
        &owner,
        None,
    )
    .await;
    let me = ok(
        &app,
        Method::GET,
        "/api/v1/me",
        t["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    let at = got["last_login_at"]
        .as_str()
        .expect("last sign-in recorded")
        .to_string();
    assert_eq!(me["last_login_at"], at.as_str());
    assert_eq!(me["locked_until"], Value::Null);
    // /me answers from memory, yet follows a new sign-in and a lock at once.
    let tok = t["access_token"].as_str().unwrap().to_string();
    app.clock.advance(60);
    app.api_login("sam@example.com", "amber-meadow-river-77")
        .await;
    let me2 = ok(&app, Method::GET, "/api/v1/me", &tok, None).await;
    assert_ne!(me2["last_login_at"], me["last_login_at"], "{me2}");
    for _ in 0..5 {
        let r = plain()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "sam@example.com", "password": "wrong-password-000"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let me3 = ok(&app, Method::GET, "/api/v1/me", &tok, None).await;
    assert!(me3["locked_until"].is_string(), "{me3}");
    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    let page = c
        .get(app.url(&format!("/admin/users/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let latest = me2["last_login_at"].as_str().unwrap();
    assert!(
        page.contains(latest),
        "the user page shows the last sign-in"
    );
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/disable"),
        &owner,
        None,
    )
    .await;
    assert_ne!(gatehouse::web::verify_cache::generation(&app.svc), before);
}

/// A workspace's own session limits shorten its members' sessions (only
/// theirs); its admin sets them, nobody else does; bad values get a message.
#[actix_web::test]
async fn workspace_session_limits_shorten_their_members_sessions() {
    let app = spawn().await;
    let w = world(&app).await;
    app.create_user(&w.owner, "out@example.com", "user").await;
    let path = format!("/api/v1/workspaces/{}/session-limits", w.ws_a);
    let (s, v) = call(
        &app,
        Method::PUT,
        &path,
        &w.wa,
        Some(json!({"idle_timeout_secs": 10})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 60"),
        "{v}"
    );
    let (s, _) = call(
        &app,
        Method::PUT,
        &path,
        &w.dev,
        Some(json!({"idle_timeout_secs": 300})),
    )
    .await;
    assert_eq!(s, 403, "a developer does not set them");
    let other = format!("/api/v1/workspaces/{}/session-limits", w.ws_b);
    let (s, _) = call(
        &app,
        Method::PUT,
        &other,
        &w.wa,
        Some(json!({"idle_timeout_secs": 300})),
    )
    .await;
    assert_eq!(s, 403, "Alpha's admin does not set Beta's");
    let v = ok(
        &app,
        Method::PUT,
        &path,
        &w.wa,
        Some(json!({"idle_timeout_secs": 300, "absolute_lifetime_secs": null})),
    )
    .await;
    assert_eq!(v["session"]["idle_timeout_secs"], 300);

    let (member, _) = app
        .browser_login("dev@example.com", "amber-meadow-river-77")
        .await;
    let (outsider, _) = app
        .browser_login("out@example.com", "amber-meadow-river-77")
        .await;
    let me = |c: reqwest::Client| {
        let url = app.url("/api/v1/me");
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    app.clock.advance(200);
    assert_eq!(me(member.clone()).await, 200);
    app.clock.advance(301);
    assert_eq!(me(member.clone()).await, 401, "idle past Alpha's 5 minutes");
    assert_eq!(
        me(outsider.clone()).await,
        200,
        "the installation's 30 minutes still hold"
    );

    // Cleared: the installation's limits again.
    ok(
        &app,
        Method::PUT,
        &path,
        &w.wa,
        Some(json!({"idle_timeout_secs": null, "absolute_lifetime_secs": null})),
    )
    .await;
    let (member, _) = app
        .browser_login("dev@example.com", "amber-meadow-river-77")
        .await;
    app.clock.advance(400);
    assert_eq!(me(member).await, 200);
    let owner = app.api_login(OWNER, OWNER_PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ev = app
        .audit(&owner, "action=workspace.session_limits&limit=5")
        .await;
    assert_eq!(ev.len(), 2, "{ev:?}");
}
