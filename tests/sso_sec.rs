//! Issue 11's SSO and web-edge findings, each as the attack it stops: login
//! CSRF through SAML and WS-Federation (finding 3), open redirects after
//! sign-in (4), an unreadable X-Forwarded-For posing as the proxy (5), SSO
//! linking by e-mail into existing and privileged accounts (7), and the
//! unbounded pending SSO sign-ins (13, and its residual: a start writes
//! nothing).

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{self, OWNER, OWNER_PW, TestApp, browser, plain};
use crate::saml::value_of;
use crate::sso::{put_json, start_op, through_idp};

// ---- helpers ----

async fn last_sso_failure(app: &TestApp, token: &str) -> Value {
    app.audit(token, "action=sso.login&limit=1").await[0].clone()
}

async fn me_status(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Through pysaml2 as `user` in browser `c`, started at our login; the
/// SAMLResponse the IdP's form would POST (not posted).
async fn saml_response_for(app: &TestApp, c: &reqwest::Client, user: &str) -> String {
    crate::saml::value_of(&crate::saml::idp_answer(app, c, user).await, "SAMLResponse")
}

/// A SAML connection `acme` whose IdP never answers (nothing listens at its
/// URL), with SSO enabled: enough to start sign-ins. The test clock stands
/// before the certificate's end (tests/peers/certs).
async fn offline_saml_app(f: impl FnOnce(&mut gatehouse::config::Settings)) -> (TestApp, String) {
    let app = common::spawn_with(f).await;
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/certs/valid-until-2027-01-25.pem"),
    )
    .unwrap();
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "acme", "protocol": "saml", "name": "Acme", "issuer": "https://idp.example/entity",
               "sso_url": "https://idp.example/sso", "certificates": [pem]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (app, token)
}

/// Where the sign-in a `/sso/saml/acme/login` answer started leads: read
/// from its sealed binding cookie (nothing is stored at the start).
fn binding_rd(app: &TestApp, r: &reqwest::Response) -> String {
    let value = binding_cookie_of(r).expect("a binding cookie");
    gatehouse::sso::open_binding(&app.svc, gatehouse::sso::Protocol::Saml, "acme", &value)
        .expect("a binding sealed here for acme")
        .rd
}

fn binding_cookie_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("gh_sso_post="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// Sign-ins recorded in the store (only spent ones are, since issue 11's
/// residual of finding 13).
fn stored_sign_ins(app: &TestApp) -> u64 {
    use gatehouse::store::Reader;
    app.svc
        .store
        .read()
        .unwrap()
        .count(gatehouse::store::Table::SsoPending)
        .unwrap()
}

// ---- finding 3: SAML and WS-Federation sign-ins are bound to the browser ----

/// The attacker starts a SAML sign-in, completes it at the real IdP as
/// themselves, and has the victim's browser POST the response: refused
/// (audited as `state_mismatch`) without spending the attacker's own
/// sign-in, which still works in the browser that started it.
#[actix_web::test]
async fn saml_response_posted_from_another_browser_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (app, _idp, token) = crate::saml::saml_app(keys.path()).await;
    let attacker = browser();
    let response = saml_response_for(&app, &attacker, "bob").await;

    let victim = browser();
    // The victim may have a sign-in of their own in flight: still refused.
    let r = victim
        .get(app.url("/sso/saml/acme/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = crate::saml::post_acs(&app, &victim, "acme", &response).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        me_status(&app, &victim).await,
        401,
        "the victim is signed in"
    );
    let ev = last_sso_failure(&app, &token).await;
    assert_eq!(ev["details"]["reason"], "state_mismatch", "{ev}");
    // No cookie at all: refused the same way.
    let r = crate::saml::post_acs(&app, &plain(), "acme", &response).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        last_sso_failure(&app, &token).await["details"]["reason"],
        "state_mismatch"
    );

    // The same response in the browser that started the sign-in passes.
    let r = crate::saml::post_acs(&app, &attacker, "acme", &response).await;
    assert_eq!(r.status(), 303, "{}", last_sso_failure(&app, &token).await);
    assert_eq!(r.headers()["location"], "/admin/account");
    assert_eq!(me_status(&app, &attacker).await, 200);
}

/// The same attack through WS-Federation's `wctx`.
#[actix_web::test]
async fn wsfed_result_posted_from_another_browser_is_refused() {
    let app = common::spawn().await;
    app.clock
        .advance(gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock) - common::T0);
    let idp = crate::wsfed::start_wsfed();
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let (s, c) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "adfs", "protocol": "wsfed", "provider": "azure", "name": "Corp ADFS",
               "metadata_url": format!("{}/FederationMetadata/2007-06/FederationMetadata.xml", idp.base)}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let (s, _) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200);
    let attacker = browser();
    let r = attacker
        .get(app.url("/sso/wsfed/adfs/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let wctx = loc
        .query_pairs()
        .find(|(k, _)| k == "wctx")
        .unwrap()
        .1
        .to_string();
    let wresult = plain()
        .get(format!("{}/raw", idp.base))
        .query(&[
            ("user", "bob"),
            ("wtrealm", &app.url("/sso/wsfed/adfs")),
            ("wreply", &app.url("/sso/wsfed/adfs/callback")),
            ("wctx", &wctx),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let post = |c: reqwest::Client| {
        let (app, wresult, wctx) = (&app, wresult.clone(), wctx.clone());
        async move {
            c.post(app.url("/sso/wsfed/adfs/callback"))
                .form(&[("wa", "wsignin1.0"), ("wresult", &wresult), ("wctx", &wctx)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let victim = browser();
    assert_eq!(post(victim.clone()).await, 401);
    assert_eq!(me_status(&app, &victim).await, 401);
    assert_eq!(
        last_sso_failure(&app, &token).await["details"]["reason"],
        "state_mismatch"
    );
    assert_eq!(post(attacker.clone()).await, 303);
    assert_eq!(me_status(&app, &attacker).await, 200);
}

// ---- finding 4: open redirects ----

/// Known open-redirect payloads, raw and encoded.
const REDIRECTS: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "/ /evil.example",
    " //evil.example",
    "/\u{0}/evil.example",
    "/\u{3000}/evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5c/evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%0D/evil.example",
    "/%20/evil.example",
    "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example",
    "https://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
];

#[test]
fn redirect_payload_list_is_what_the_tests_send() {
    assert!(REDIRECTS.iter().all(|p| !p.starts_with("/admin")));
}

/// Every `rd` entry point answers every payload with `/admin` (the default),
/// and still honours a real local path.
#[actix_web::test]
async fn open_redirect_payloads_are_refused_at_every_entry_point() {
    let (app, token) = offline_saml_app(|s| s.limits.sso_pending_per_client = 1000).await;
    let good = "/admin/users?q=a%40b";

    // /login?rd= (the page carries rd into its form) and POST /login.
    for rd in REDIRECTS.iter().copied().chain([good]) {
        let want = if rd == good { good } else { "/admin" };
        let c = browser();
        let html = c
            .get(app.url("/login"))
            .query(&[("rd", rd)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(value_of(&html, "rd"), want, "GET /login rd={rd:?}");
        let r = c
            .post(app.url("/login"))
            .form(&[
                ("email", OWNER),
                ("password", OWNER_PW),
                ("csrf_token", &common::csrf_from(&html)),
                ("rd", rd),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], want, "POST /login rd={rd:?}");
    }

    // /sso/saml/{id}/login?rd= (and the same function behind OIDC and WS-Fed):
    // the pending sign-in keeps only a safe path.
    let mut rds = Vec::new();
    for rd in REDIRECTS.iter().copied().chain([good]) {
        let r = plain()
            .get(app.url("/sso/saml/acme/login"))
            .query(&[("rd", rd)])
            .header("x-forwarded-for", "198.51.100.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "rd={rd:?}");
        rds.push(binding_rd(&app, &r));
    }
    assert_eq!(rds.len(), REDIRECTS.len() + 1);
    assert_eq!(rds.iter().filter(|r| *r == good).count(), 1, "{rds:?}");
    assert!(rds.iter().all(|r| r == "/admin" || r == good), "{rds:?}");

    // /admin/reauth?rd= and its POST.
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    for rd in REDIRECTS.iter().copied().chain([good]) {
        let want = if rd == good { good } else { "/admin" };
        let html = c
            .get(app.url("/admin/reauth"))
            .query(&[("rd", rd)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(value_of(&html, "rd"), want, "GET /admin/reauth rd={rd:?}");
        let r = c
            .post(app.url("/admin/reauth"))
            .form(&[("password", OWNER_PW), ("csrf_token", &csrf), ("rd", rd)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "POST /admin/reauth rd={rd:?}");
        assert_eq!(
            r.headers()["location"],
            want,
            "POST /admin/reauth rd={rd:?}"
        );
    }

    // The MFA step: /login/mfa?rd= (half signed in: any gh_mfa cookie shows the page).
    for rd in REDIRECTS.iter().copied().chain([good]) {
        let want = if rd == good { good } else { "/admin" };
        let html = plain()
            .get(app.url("/login/mfa"))
            .query(&[("rd", rd)])
            .header("cookie", "gh_mfa=x")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(value_of(&html, "rd"), want, "GET /login/mfa rd={rd:?}");
    }
    let _ = token;

    // Forward auth's login link: X-Original-URI becomes rd.
    for rd in REDIRECTS {
        let r = plain()
            .get(app.url("/auth/verify"))
            .header("x-original-uri", rd.replace(['\n', '\r', '\u{0}'], ""))
            .send()
            .await;
        let Ok(r) = r else { continue };
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["login_url"],
            app.url("/login?rd=/"),
            "X-Original-URI {rd:?}"
        );
    }
}

// ---- finding 5: X-Forwarded-For that cannot be read ----

/// Behind a trusted proxy (127.0.0.1), a service account allowlisted to the
/// proxy's own address: no header that fails to name the client may make
/// the caller look like the proxy.
#[actix_web::test]
async fn unreadable_forwarded_for_never_looks_like_the_proxy() {
    let app = common::spawn_with(|s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.rate_limit.client_auth_failures_per_minute = 1;
        s.rate_limit.client_auth_failures_burst = 3;
    })
    .await;
    let owner = app.owner_token().await;
    let (id, secret) = crate::access::service_account(
        &app,
        &owner,
        json!({"name": "proxy-only", "scopes": ["introspect:credentials"],
               "ip_allowlist": ["127.0.0.1/32"], "ip_mode": "block"}),
    )
    .await;
    let token = |xff: Vec<&'static str>| {
        let (app, id, secret) = (&app, id.clone(), secret.clone());
        async move {
            let mut r = plain()
                .post(app.url("/oauth2/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")]);
            for h in xff {
                r = r.header("x-forwarded-for", h);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    // The proxy itself (no header, or only trusted hops) is the allowlisted address.
    assert_eq!(token(vec![]).await, 200);
    assert_eq!(token(vec!["127.0.0.1"]).await, 200);
    // A real client behind it is not.
    assert_eq!(token(vec!["203.0.113.9"]).await, 403);
    for xff in [
        vec!["not-an-ip, 203.0.113.9"],
        vec!["203.0.113.9, not-an-ip"],
        vec!["203.0.113.9,"],
        vec![",203.0.113.9"],
        vec![""],
        vec![" , "],
        vec!["unknown"],
        vec!["127.0.0.1:99999"],
        vec!["[::1"],
        vec!["not-an-ip"],
        vec!["not-an-ip", "203.0.113.9"],
        vec!["203.0.113.9", "not-an-ip"],
        vec!["203.0.113.9", "127.0.0.1"],
        vec!["203.0.113.9:4711"],
        vec!["[2001:db8::9]:443"],
        vec!["[2001:db8::9]"],
    ] {
        assert_eq!(token(xff.clone()).await, 403, "X-Forwarded-For {xff:?}");
    }
    // A port on the proxy's own hop is still the proxy.
    assert_eq!(token(vec!["127.0.0.1:4711"]).await, 200);

    // Audit: the unreadable header is attributed to "unknown", never 127.0.0.1.
    let ev = app
        .audit(&owner, "action=service_account.ip_not_allowed&limit=50")
        .await;
    let ips: Vec<&str> = ev
        .iter()
        .filter_map(|e| e["source_ip"].as_str().or(e["ip"].as_str()))
        .collect();
    assert!(ips.contains(&"unknown"), "{ev:?}");
    assert!(!ips.contains(&"127.0.0.1"), "{ips:?}");
    assert!(ips.contains(&"2001:db8::9"), "{ips:?}");

    // Rate limits: failed client authentications with unreadable headers
    // share one "unknown" bucket and leave the proxy's own alone.
    let bad = |xff: &'static str| {
        let app = &app;
        async move {
            plain()
                .post(app.url("/oauth2/token"))
                .basic_auth("sa_nobody", Some("wrong"))
                .header("x-forwarded-for", xff)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for xff in ["garbage-1", "garbage-2, 10.0.0.1", "", "x", "y"] {
        statuses.push(bad(xff).await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(
        token(vec![]).await,
        200,
        "the proxy's own bucket is untouched"
    );
}

// ---- finding 7: no linking by e-mail into existing or privileged accounts ----

/// Gatehouse with the OIDC connection `corp` to node oidc-provider, SSO
/// enabled with admin2 and alice excluded; bob is an administrator and carol
/// a user with a password, all before their first SSO sign-in.
#[actix_web::test]
async fn sso_never_links_existing_accounts_by_email() {
    let app = common::spawn().await;
    app.clock
        .advance(gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock) - common::T0);
    let op = start_op("real", &app.url("/sso/oidc/corp/callback"));
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let alice = app.create_user(&token, "alice@corp.example", "user").await;
    let bob = app.create_user(&token, "bob@corp.example", "admin").await;
    let carol = app.create_user(&token, "carol@corp.example", "user").await;
    let (s, c) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "corp", "protocol": "oidc", "provider": "other", "name": "Corp IdP",
               "issuer": op.issuer, "client_id": "gatehouse", "client_secret": "op-client-secret-for-tests-only",
               "scopes": ["openid", "email", "profile", "groups"]}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off",
               "excluded_users": ["admin2@example.com", "alice@corp.example"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let sign_in = |who: &'static str| {
        let app = &app;
        async move {
            let c = browser();
            let idp = crate::sso::sso_start(app, &c, "corp").await;
            let back = through_idp(&c, &idp, who, app).await;
            let status = c.get(&back).send().await.unwrap().status().as_u16();
            (status, c)
        }
    };
    for (who, reason) in [
        ("alice", "sso_excluded"),
        ("bob", "privileged_account"),
        ("carol", "link_required"),
    ] {
        let (status, c) = sign_in(who).await;
        assert_eq!(status, 401, "{who} was signed in by e-mail");
        assert_eq!(me_status(&app, &c).await, 401);
        let ev = last_sso_failure(&app, &token).await;
        assert_eq!(ev["details"]["reason"], reason, "{who}: {ev}");
    }
    let ev = last_sso_failure(&app, &token).await;
    let msg = ev["details"]["message"].as_str().unwrap();
    assert!(
        msg.contains("\"carol\"") && msg.contains("sso-links"),
        "{msg}"
    );

    // An admin links carol explicitly; then SSO signs carol in.
    let link = |user: &Value, subject: &str| {
        let (app, token, id) = (&app, &token, user["id"].as_str().unwrap().to_string());
        let subject = subject.to_string();
        async move {
            common::post(
                app,
                &format!("/api/v1/users/{id}/sso-links"),
                Some(token.as_str()),
                json!({"connection": "corp", "subject": subject}),
            )
            .await
        }
    };
    let (s, v) = link(&carol, "carol").await;
    assert_eq!(s, 204, "{v}");
    let (status, c) = sign_in("carol").await;
    assert_eq!(status, 303, "{}", last_sso_failure(&app, &token).await);
    let me: Value = c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], carol["id"]);
    let links = app.audit(&token, "action=sso.link&limit=5").await;
    assert_eq!(links[0]["details"]["via"], "admin", "{links:?}");
    // The same identity cannot be linked to a second user.
    let (s, _) = link(&bob, "carol").await;
    assert_eq!(s, 409);
    // Excluded users and the owner are never linked, not even by an admin.
    let (s, v) = link(&alice, "alice").await;
    assert_eq!(s, 409, "{v}");
    let (_, me) = crate::sso::get_json(&app, "/api/v1/me", &token).await;
    let (s, _) = link(&me, "owner-at-idp").await;
    assert_eq!(s, 409);
    // A user cannot link accounts.
    let carol_token = app
        .api_login("carol@corp.example", "amber-meadow-river-77")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = common::post(
        &app,
        &format!("/api/v1/users/{}/sso-links", bob["id"].as_str().unwrap()),
        Some(&carol_token),
        json!({"connection": "corp", "subject": "bob"}),
    )
    .await;
    assert_eq!(s, 403);
    // bob's admin account still signs in with its password.
    let (_, r) = app
        .password_step("bob@corp.example", "amber-meadow-river-77")
        .await;
    assert_eq!(r.status(), 303);
    let _ = bob;
}

/// The same through SAML (pysaml2): alice is an administrator here.
#[actix_web::test]
async fn saml_never_links_an_administrator_by_email() {
    let keys = tempfile::tempdir().unwrap();
    let (app, _idp, token) = crate::saml::saml_app(keys.path()).await;
    app.create_user(&token, "alice@corp.example", "admin").await;
    let c = browser();
    let r = crate::saml::sign_in(&app, &c, "alice").await;
    assert_eq!(r.status(), 401);
    assert_eq!(me_status(&app, &c).await, 401);
    assert_eq!(
        last_sso_failure(&app, &token).await["details"]["reason"],
        "privileged_account"
    );
    // A new user (bob) is still created just in time.
    let c = browser();
    assert_eq!(crate::saml::sign_in(&app, &c, "bob").await.status(), 303);
}

/// The Google preset: just-in-time creation stays off until allowed domains
/// are set; the domains are checked as names.
#[actix_web::test]
async fn google_needs_allowed_domains_before_jit() {
    let app = common::spawn().await;
    let token = app.owner_token().await;
    let body = |extra: Value| {
        let mut b = json!({"id": "google", "protocol": "oidc", "provider": "google", "name": "Google",
                           "client_id": "x.apps.googleusercontent.com", "client_secret": "s"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        body(json!({"jit": true})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed_domains"),
        "{v}"
    );
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        body(json!({"allowed_domains": ["corp example"]})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        body(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["jit"], false, "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/google",
        &token,
        json!({"protocol": "oidc", "provider": "google", "name": "Google", "jit": true,
               "allowed_domains": ["@Corp.Example"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["jit"], true);
    assert_eq!(v["allowed_domains"], json!(["corp.example"]));
}

// ---- finding 13: pending SSO sign-ins are bounded and expire ----

#[actix_web::test]
async fn pending_sso_sign_ins_are_capped_and_expire() {
    let (app, _token) = offline_saml_app(|s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.limits.sso_pending_max = 31;
        s.limits.sso_pending_per_client = 10;
    })
    .await;
    let start = |xff: String| {
        let app = &app;
        async move {
            let r = plain()
                .get(app.url("/sso/saml/acme/login"))
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.text().await.unwrap())
        }
    };
    // Per address: the 11th start from one address is refused with words.
    for _ in 0..10 {
        assert_eq!(start("198.51.100.7".into()).await.0, 302);
    }
    let (s, body) = start("198.51.100.7".into()).await;
    assert_eq!(s, 429, "{body}");
    assert!(body.contains("Too many single sign-ins"), "{body}");
    // One IPv6 host with a /64 is one address.
    for i in 0..10 {
        assert_eq!(start(format!("2001:db8:1:2::{i:x}")).await.0, 302);
    }
    assert_eq!(start("2001:db8:1:2::ffff".into()).await.0, 429);
    // Unreadable headers share one "unknown" address.
    for i in 0..10 {
        assert_eq!(start(format!("garbage-{i}")).await.0, 302);
    }
    assert_eq!(start("more-garbage".into()).await.0, 429);
    // Globally: nothing is stored at a start, so there is nothing for
    // others to fill (the old global cap of 31 answered 503 here).
    assert_eq!(start("192.0.2.54".into()).await.0, 302);
    assert_eq!(start("192.0.2.55".into()).await.0, 302);
    assert_eq!(stored_sign_ins(&app), 0);

    // After 10 minutes the per-address counts have aged out.
    app.clock.advance(gatehouse::sso::PENDING_TTL_SECS + 1);
    assert_eq!(gatehouse::sso::purge_expired(&app.svc).unwrap(), 0);
    assert_eq!(start("198.51.100.7".into()).await.0, 302);
    assert_eq!(start("2001:db8:1:2::1".into()).await.0, 302);
}

/// Issue 11, residual of finding 13: starting a sign-in writes nothing, so
/// thousands of starts from as many IPv6 /64s (each within its per-address
/// cap) refuse nobody, and a normal sign-in still works. The sign-in travels
/// sealed in the binding cookie: edited by one byte, or moved to another
/// connection, it is refused as another browser's; once spent, it is gone.
#[actix_web::test]
async fn mass_sign_in_starts_fill_nothing_and_the_binding_is_sealed() {
    let keys = tempfile::tempdir().unwrap();
    let (app, idp, token) = crate::saml::saml_app_with(keys.path(), |s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        // The old global cap, which the starts below would fill 60 times over.
        s.limits.sso_pending_max = 50;
    })
    .await;
    let starter = plain();
    for i in 0..3000u32 {
        let r = starter
            .get(app.url("/sso/saml/acme/login"))
            .header(
                "x-forwarded-for",
                format!("2001:db8:{:x}:{:x}::1", i / 1000, i % 1000),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "start {i}");
    }
    assert_eq!(stored_sign_ins(&app), 0, "a start writes nothing");

    // A second connection to the same IdP, to move a cookie to.
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "acme2", "protocol": "saml", "provider": "okta", "name": "Acme 2",
               "metadata_url": format!("{}/metadata", idp.base)}),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    // A normal sign-in, its binding cookie read from the browser's jar.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let b = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = saml_response_for(&app, &b, "bob").await;
    let acs: reqwest::Url = app.url("/sso/saml/acme/acs").parse().unwrap();
    let jar_cookies = reqwest::cookie::CookieStore::cookies(&*jar, &acs).unwrap();
    let sealed = jar_cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|kv| kv.strip_prefix("gh_sso_post="))
        .unwrap()
        .to_string();
    let post_with = |id: &'static str, cookie: String| {
        let (app, response) = (&app, response.clone());
        async move {
            plain()
                .post(app.url(&format!("/sso/saml/{id}/acs")))
                .header("cookie", format!("gh_sso_post={cookie}"))
                .form(&[("SAMLResponse", response.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Edited by one byte (at the start, in the middle, at the end): refused.
    for at in [0, sealed.len() / 2, sealed.len() - 1] {
        let mut edited = sealed.clone().into_bytes();
        edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(edited).unwrap();
        assert_eq!(post_with("acme", edited).await, 401, "edited at {at}");
        assert_eq!(
            last_sso_failure(&app, &token).await["details"]["reason"],
            "state_mismatch"
        );
    }
    // Moved to another connection: refused the same way.
    assert_eq!(post_with("acme2", sealed.clone()).await, 401);
    let ev = last_sso_failure(&app, &token).await;
    assert_eq!(ev["details"]["reason"], "state_mismatch", "{ev}");
    assert_eq!(ev["target"], "acme2");
    // The genuine cookie signs in (the refusals spent nothing) ...
    assert_eq!(post_with("acme", sealed.clone()).await, 303);
    assert_eq!(
        stored_sign_ins(&app),
        1,
        "only the finished sign-in is kept"
    );
    // ... once: the same answer with the same cookie again is a replay.
    assert_eq!(post_with("acme", sealed.clone()).await, 401);
    assert_eq!(
        last_sso_failure(&app, &token).await["details"]["reason"],
        "unknown_in_response_to"
    );
    // A sealed sign-in expires like a stored one did: 10 minutes.
    let late = browser();
    let late_response = saml_response_for(&app, &late, "bob").await;
    app.clock.advance(gatehouse::sso::PENDING_TTL_SECS + 1);
    let r = crate::saml::post_acs(&app, &late, "acme", &late_response).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        last_sso_failure(&app, &token).await["details"]["reason"],
        "expired_state"
    );
    // Still nothing stored by starts; the spent record goes after 10 minutes.
    assert_eq!(gatehouse::sso::purge_expired(&app.svc).unwrap(), 1);
    assert_eq!(stored_sign_ins(&app), 0);
}

/// Attack-review finding: a link written by an older version (which linked
/// by e-mail, admins included) must not keep opening an administrator's
/// account; an admin's explicit link does.
#[actix_web::test]
async fn an_old_link_into_an_administrator_opens_nothing_until_an_admin_links_it() {
    let keys = tempfile::tempdir().unwrap();
    let (app, _idp, token) = crate::saml::saml_app(keys.path()).await;
    let alice = app.create_user(&token, "alice@corp.example", "admin").await;
    let alice_id = alice["id"].as_str().unwrap().to_string();
    // The record an older version wrote: the bare user id under the
    // identity's key (pysaml2's NameID is the e-mail address).
    {
        let mut key = b"acme\0".to_vec();
        key.extend_from_slice(
            &app.svc
                .store
                .blind_index("sso_subject", "acme\0alice@corp.example")
                .unwrap(),
        );
        let mut tx = app.svc.store.write().unwrap();
        tx.put(gatehouse::store::Table::SsoLinks, &key, &alice_id)
            .unwrap();
        tx.commit().unwrap();
    }
    let c = browser();
    assert_eq!(crate::saml::sign_in(&app, &c, "alice").await.status(), 401);
    assert_eq!(me_status(&app, &c).await, 401);
    assert_eq!(
        last_sso_failure(&app, &token).await["details"]["reason"],
        "privileged_account"
    );
    // An admin links her explicitly: now SSO signs her in.
    let (s, v) = common::post(
        &app,
        &format!("/api/v1/users/{alice_id}/sso-links"),
        Some(&token),
        json!({"connection": "acme", "subject": "alice@corp.example"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let c = browser();
    assert_eq!(crate::saml::sign_in(&app, &c, "alice").await.status(), 303);
}
