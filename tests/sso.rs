//! Single sign-on against real OpenID providers on loopback: node
//! `oidc-provider` (OpenID Certified) for the whole code + PKCE flow, and a
//! hostile provider (`tests/peers/oidc_op.mjs hostile`) whose ID tokens are
//! broken on purpose. Also the rollout rules: excluded users, test sign-in
//! before enforcement, password sign-in stopped only under enforcement.

use std::process::Command;

use gatehouse::clock::Clock;
use serde_json::{Value, json};

use crate::common::{self, OWNER, OWNER_PW, TestApp, browser, plain};

const SECRET: &str = "op-client-secret-for-tests-only";

/// A provider process, killed when dropped.
/// An OpenID provider process (its issuer URL), stopped when dropped.
pub struct Op {
    _peer: common::Peer,
    pub issuer: String,
}

pub fn start_op(kind: &str, redirect_uri: &str) -> Op {
    let mut cmd = Command::new("node");
    cmd.arg("oidc_op.mjs")
        .arg(kind)
        .arg(redirect_uri)
        .arg(SECRET)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers"));
    let peer = common::spawn_peer(
        cmd,
        "ISSUER ",
        "the OpenID provider (node and npm ci in tests/peers, which the test command installs)",
    );
    Op {
        issuer: peer.url.clone(),
        _peer: peer,
    }
}

/// The provider signs with the real time: move the test clock there.
fn real_time(app: &TestApp) {
    app.clock
        .advance(gatehouse::clock::SystemClock.now() - common::T0);
}

/// The value of `name="attr"` in one HTML tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = tag.find(&marker)? + marker.len();
    Some(
        tag[start..start + tag[start..].find('"')?]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

/// The first form of a page: its action and fields (login and password filled in).
fn form_of(html: &str, login: &str) -> (String, Vec<(String, String)>) {
    let f = &html[html
        .find("<form")
        .unwrap_or_else(|| panic!("no form in {html}"))..];
    let action = attr(&f[..f.find('>').unwrap()], "action").unwrap();
    let mut fields = Vec::new();
    for part in f.split("<input").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = match name.as_str() {
            "login" => login.to_string(),
            "password" => "any password".to_string(),
            _ => attr(tag, "value").unwrap_or_default(),
        };
        fields.push((name, value));
    }
    (action, fields)
}

/// Drives a browser from the IdP's authorize URL through its login and
/// consent pages until it redirects back to Gatehouse; returns that URL.
pub async fn through_idp(c: &reqwest::Client, start: &str, login: &str, app: &TestApp) -> String {
    let mut url = reqwest::Url::parse(start).unwrap();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..20 {
        if url.as_str().starts_with(&app.base) {
            return url.to_string();
        }
        let r = match form.take() {
            Some(f) => c.post(url.clone()).form(&f).send().await.unwrap(),
            None => c.get(url.clone()).send().await.unwrap(),
        };
        if r.status().is_redirection() {
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            url = url.join(&loc).unwrap();
            continue;
        }
        let status = r.status();
        let html = r.text().await.unwrap();
        assert_eq!(status, 200, "identity provider page: {html}");
        let (action, fields) = form_of(&html, login);
        url = url.join(&action).unwrap();
        form = Some(fields);
    }
    panic!("no redirect back to Gatehouse");
}

/// `GET /sso/{proto}/{id}/login` in `c`: the IdP URL it sends the browser to.
pub async fn sso_start(app: &TestApp, c: &reqwest::Client, id: &str) -> String {
    let r = c
        .get(app.url(&format!("/sso/oidc/{id}/login?rd=/admin/account")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    r.headers()["location"].to_str().unwrap().to_string()
}

pub async fn put_json(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = plain()
        .put(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn get_json(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let r = plain()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Gatehouse at the real time with an owner, a second admin and the
/// connection `corp` to the provider at `issuer`; SSO not yet enabled.
pub(crate) async fn with_connection(kind: &str) -> (TestApp, Op, String) {
    let app = common::spawn().await;
    real_time(&app);
    let op = start_op(kind, &app.url("/sso/oidc/corp/callback"));
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let (s, c) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "corp", "protocol": "oidc", "provider": "other", "name": "Corp IdP",
               "issuer": op.issuer, "client_id": "gatehouse", "client_secret": SECRET,
               "scopes": ["openid", "email", "profile", "groups"],
               "role_rules": [{"value": "gh-admins", "role": "admin"}]}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["client_secret_set"], true);
    assert!(c.get("client_secret").is_none(), "the secret never leaves");
    assert_eq!(
        c["sp"]["oidc_redirect_uri"],
        app.url("/sso/oidc/corp/callback")
    );
    (app, op, token)
}

pub(crate) async fn enable(app: &TestApp, token: &str, enforcement: &str) -> (u16, Value) {
    let test_group: &[&str] = if enforcement == "test_group" {
        &["bob@corp.example"]
    } else {
        &[]
    };
    put_json(
        app,
        "/api/v1/sso/settings",
        token,
        json!({"enabled": true, "enforcement": enforcement,
               "excluded_users": ["admin2@example.com"], "test_group": test_group}),
    )
    .await
}

/// The events with `action`, newest first.
async fn events(app: &TestApp, token: &str, action: &str) -> Vec<Value> {
    app.audit(token, &format!("action={action}&limit=50")).await
}

async fn me(app: &TestApp, c: &reqwest::Client) -> Value {
    let r = c.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[actix_web::test]
async fn oidc_sign_in_through_oidc_provider() {
    let (app, _op, token) = with_connection("real").await;
    // Disabled: no button, and the login endpoint refuses.
    let page = browser()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Sign in with Corp IdP"));
    let r = browser()
        .get(app.url("/sso/oidc/corp/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (s, v) = enable(&app, &token, "off").await;
    assert_eq!(s, 200, "{v}");
    let page = browser()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/sso/oidc/corp/login?rd="), "{page}");

    // alice: just-in-time user, admin through the group mapping, PKCE S256.
    let c = browser();
    let idp = sso_start(&app, &c, "corp").await;
    assert!(idp.starts_with(&_op.issuer));
    assert!(idp.contains("code_challenge_method=S256"), "{idp}");
    assert!(idp.contains("nonce="));
    let back = through_idp(&c, &idp, "alice", &app).await;
    let r = c.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["location"], "/admin/account");
    let who = me(&app, &c).await;
    assert_eq!(who["email"], "alice@corp.example");
    assert_eq!(who["role"], "admin");
    assert_eq!(who["name"], "Alice Anders");

    // The same answer again (a replayed callback) is refused: the cookie
    // is gone, and even with it put back, the state was spent.
    let r = c.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let state = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let r = plain()
        .get(&back)
        .header("cookie", format!("gh_sso={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // bob: a plain user; a second sign-in finds the linked account.
    for _ in 0..2 {
        let c = browser();
        let idp = sso_start(&app, &c, "corp").await;
        let back = through_idp(&c, &idp, "bob", &app).await;
        assert_eq!(c.get(&back).send().await.unwrap().status(), 303);
        let who = me(&app, &c).await;
        assert_eq!(who["email"], "bob@corp.example");
        assert_eq!(who["role"], "user");
    }
    let (_, users) = get_json(&app, "/api/v1/users?q=bob", &token).await;
    assert_eq!(users["total"], 1, "{users}");

    // carol's ID token has no e-mail: Gatehouse asks userinfo.
    let c = browser();
    let idp = sso_start(&app, &c, "corp").await;
    let back = through_idp(&c, &idp, "carol", &app).await;
    assert_eq!(c.get(&back).send().await.unwrap().status(), 303);
    assert_eq!(me(&app, &c).await["email"], "carol@corp.example");

    // mallory's address is not verified: refused, the reason audited.
    let c = browser();
    let idp = sso_start(&app, &c, "corp").await;
    let back = through_idp(&c, &idp, "mallory", &app).await;
    let r = c.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(!body.contains("verified"), "users get a generic message");
    assert_eq!(
        c.get(app.url("/api/v1/me")).send().await.unwrap().status(),
        401
    );

    let fails = events(&app, &token, "sso.login").await;
    let reasons: Vec<&str> = fails
        .iter()
        .filter_map(|e| e["details"]["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"email_not_verified"), "{reasons:?}");
    assert!(reasons.contains(&"unknown_state"), "{reasons:?}");
    let logins = events(&app, &token, "auth.login").await;
    assert!(
        logins
            .iter()
            .any(|e| e["details"]["sso"] == "corp" && e["actor"] == "alice@corp.example"),
        "{logins:?}"
    );
    let created = events(&app, &token, "user.create").await;
    assert!(
        created
            .iter()
            .any(|e| e["actor"] == "sso:corp" && e["details"]["email"] == "bob@corp.example")
    );
    // Nothing personal of the IdP's in the clear in the database file.
    let db = std::fs::read(app.data.join("gatehouse.redb")).unwrap();
    for needle in ["alice@corp.example", SECRET] {
        assert!(
            !db.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} found in the database file"
        );
    }
}

#[actix_web::test]
async fn oidc_state_code_and_browser_binding() {
    let (app, _op, token) = with_connection("real").await;
    assert_eq!(enable(&app, &token, "off").await.0, 200);

    // Login CSRF: the victim's browser gets the attacker's callback URL.
    let attacker = browser();
    let idp = sso_start(&app, &attacker, "corp").await;
    let back = through_idp(&attacker, &idp, "bob", &app).await;
    let victim = browser();
    assert_eq!(victim.get(&back).send().await.unwrap().status(), 401);
    assert_eq!(
        victim
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // ... and that did not spend the attacker's own sign-in.
    assert_eq!(attacker.get(&back).send().await.unwrap().status(), 303);

    // A forged state with this browser's cookie: refused.
    let c = browser();
    let idp = sso_start(&app, &c, "corp").await;
    let back = through_idp(&c, &idp, "bob", &app).await;
    let forged = back.replace("state=", "state=x");
    assert_eq!(c.get(&forged).send().await.unwrap().status(), 401);

    // A used code with a fresh, valid state: the provider refuses it.
    let used_code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let c2 = browser();
    let idp = sso_start(&app, &c2, "corp").await;
    let fresh = through_idp(&c2, &idp, "bob", &app).await;
    let mut u = reqwest::Url::parse(&fresh).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                used_code.clone()
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(c2.get(u.as_str()).send().await.unwrap().status(), 401);

    // The IdP's own error is refused too (and says which).
    let c3 = browser();
    let idp = sso_start(&app, &c3, "corp").await;
    let state = reqwest::Url::parse(&idp)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let r = c3
        .get(app.url(&format!(
            "/sso/oidc/corp/callback?state={state}&error=access_denied&error_description=no"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let reasons: Vec<String> = events(&app, &token, "sso.login")
        .await
        .iter()
        .filter_map(|e| e["details"]["reason"].as_str().map(str::to_string))
        .collect();
    for want in ["state_mismatch", "code_exchange_failed", "idp_error"] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }
}

#[actix_web::test]
async fn oidc_id_token_attacks_are_refused() {
    let (app, op, token) = with_connection("hostile").await;
    assert_eq!(enable(&app, &token, "off").await.0, 200);
    let mode = |m: &'static str| {
        let url = format!("{}/mode", op.issuer);
        async move {
            let r = plain()
                .post(url)
                .json(&json!({"mode": m}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    // The harness can succeed: a valid token signs eve in.
    mode("valid").await;
    let c = browser();
    let idp = sso_start(&app, &c, "corp").await;
    let back = through_idp(&c, &idp, "eve", &app).await;
    assert_eq!(c.get(&back).send().await.unwrap().status(), 303);
    assert_eq!(me(&app, &c).await["email"], "eve@corp.example");

    for (m, words) in [
        ("wrong_nonce", "nonce"),
        ("no_nonce", "nonce"),
        ("wrong_iss", "issuer"),
        ("wrong_aud", "audience"),
        ("expired", "xpired"),
        ("alg_none", ""),
        ("hs256", ""),
        ("unknown_key", "ignature"),
    ] {
        mode(m).await;
        let c = browser();
        let idp = sso_start(&app, &c, "corp").await;
        let back = through_idp(&c, &idp, "eve", &app).await;
        let r = c.get(&back).send().await.unwrap();
        assert_eq!(r.status(), 401, "{m} accepted");
        assert_eq!(
            c.get(app.url("/api/v1/me")).send().await.unwrap().status(),
            401,
            "{m} signed someone in"
        );
        let ev = events(&app, &token, "sso.login").await;
        let last = &ev[0];
        assert_eq!(last["outcome"], "failure", "{m}: {last}");
        assert_eq!(last["details"]["reason"], "id_token_invalid", "{m}: {last}");
        let msg = last["details"]["message"].as_str().unwrap();
        assert!(msg.contains(words), "{m}: {msg}");
    }

    // The provider rotates its signing key: Gatehouse reads the JWKS again
    // once instead of refusing until its copy expires.
    mode("rotated").await;
    let c = browser();
    let idp = sso_start(&app, &c, "corp").await;
    let back = through_idp(&c, &idp, "eve", &app).await;
    assert_eq!(c.get(&back).send().await.unwrap().status(), 303);
    assert_eq!(me(&app, &c).await["email"], "eve@corp.example");
}

#[actix_web::test]
async fn sso_rollout_rules_test_sign_in_and_enforcement() {
    let app = common::spawn().await;
    real_time(&app);
    let op = start_op("real", &app.url("/sso/oidc/corp/callback"));
    let token = app.owner_token().await;
    // Nothing to enable yet.
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connection")
    );
    // An unknown provider preset is refused in words.
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "s", "protocol": "oidc", "provider": "nope", "name": "S"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown provider")
    );
    let (s, _) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "Bad Id", "protocol": "oidc", "name": "x", "issuer": op.issuer, "client_id": "a", "client_secret": "b"}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "corp", "protocol": "oidc", "name": "Corp IdP", "issuer": op.issuer,
               "client_id": "gatehouse", "client_secret": SECRET}),
    )
    .await;
    assert_eq!(s, 201);
    // Enabling needs a second excluded admin besides the owner.
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("excluded admin"),
        "{v}"
    );
    app.create_user(&token, "admin2@example.com", "admin").await;
    let bob = app.create_user(&token, "bob@corp.example", "user").await;
    let carl = app.create_user(&token, "carl@example.com", "user").await;
    let (s, v) = enable(&app, &token, "off").await;
    assert_eq!(s, 200, "{v}");
    let owner_id = v["excluded_users"][0].as_str().unwrap().to_string();
    assert_eq!(
        v["emails"][&owner_id], OWNER,
        "the owner is always excluded"
    );
    // Enforcement before any test sign-in: refused, naming the connection.
    let (s, v) = enable(&app, &token, "enforced").await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("corp"));

    // A user may not change SSO.
    let bob_token = app
        .api_login("bob@corp.example", "amber-meadow-river-77")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = enable(&app, &bob_token, "off").await;
    assert_eq!(s, 403);

    // Test connection from the console: a real sign-in that signs nobody in.
    let (admin, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let r = admin
        .post(app.url("/admin/settings/sso/corp/test"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let idp = attr(&html[html.find("id=\"to-idp\"").unwrap()..], "href").unwrap();
    let back = through_idp(&admin, &idp, "bob", &app).await;
    let r = admin.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/admin/settings/sso/corp?notice=tested"
    );
    // Still the owner in this browser; the page shows what the IdP asserted.
    assert_eq!(me(&app, &admin).await["email"], OWNER);
    let page = admin
        .get(app.url("/admin/settings/sso/corp?notice=tested"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("bob@corp.example") && page.contains("passed"),
        "{page}"
    );
    let (_, c) = get_json(&app, "/api/v1/sso/connections/corp", &token).await;
    assert_eq!(c["last_test"]["ok"], true, "{c}");
    assert_eq!(c["last_test"]["claims"]["email"], "bob@corp.example");

    // The MFA settings page says which rule is in force.
    let page = admin
        .get(app.url("/admin/settings/security"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("SSO is enabled"), "{page}");

    // Test group: bob must use SSO, carl may still use his password.
    let (s, v) = enable(&app, &token, "test_group").await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("admin2@example.com")
    );
    let (_, r) = app
        .password_step("bob@corp.example", "amber-meadow-river-77")
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("single sign-on"));
    let (_, r) = app
        .password_step("carl@example.com", "amber-meadow-river-77")
        .await;
    assert_eq!(r.status(), 303);

    // Enforced: only the excluded users keep their passwords.
    let (s, v) = enable(&app, &token, "enforced").await;
    assert_eq!(s, 200, "{v}");
    let r = plain()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "carl@example.com", "password": "amber-meadow-river-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A wrong password still gets the usual answer (no hint that SSO applies).
    let (_, r) = app
        .password_step("carl@example.com", "wrong-password-here")
        .await;
    assert_eq!(r.status(), 401);
    for (who, pw) in [
        (OWNER, OWNER_PW),
        ("admin2@example.com", "amber-meadow-river-77"),
    ] {
        let (_, r) = app.password_step(who, pw).await;
        assert_eq!(r.status(), 303, "{who} is excluded");
    }
    // SSO still signs bob in, once an admin has linked his existing account
    // (sign-ins never link one by e-mail).
    let (s, v) = common::post(
        &app,
        &format!("/api/v1/users/{}/sso-links", bob["id"].as_str().unwrap()),
        Some(&token),
        json!({"connection": "corp", "subject": "bob"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let c = browser();
    let idp = sso_start(&app, &c, "corp").await;
    let back = through_idp(&c, &idp, "bob", &app).await;
    assert_eq!(c.get(&back).send().await.unwrap().status(), 303);
    assert_eq!(me(&app, &c).await["id"], bob["id"]);
    let _ = carl;

    // The last connection cannot go while SSO is on.
    let r = plain()
        .delete(app.url("/api/v1/sso/connections/corp"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let changes = events(&app, &token, "sso.enforcement_change").await;
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["details"]["to"], "enforced");
    assert!(!events(&app, &token, "sso.test").await.is_empty());
}

/// Headless Chromium through the SSO pages and the provider's own pages
/// (tests/browser/sso.mjs); the README's test command installs both.
#[actix_web::test]
async fn sso_pages_in_headless_chromium() {
    let app = common::spawn().await;
    real_time(&app);
    let op = start_op("real", &app.url("/sso/oidc/corp/callback"));
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let out =
        common::chromium_walk_async("sso.mjs", vec![app.base.clone(), op.issuer.clone()]).await;
    // The walk-through really signed alice in through the provider.
    let logins = events(&app, &token, "auth.login").await;
    assert!(
        logins
            .iter()
            .any(|e| e["actor"] == "alice@corp.example" && e["details"]["sso"] == "corp"),
        "{out}"
    );
}
