//! WS-Federation against Auth0's npm `wsfed` (an RSTR with a SAML 1.1
//! assertion) and an RSTR around a SAML 2.0 assertion from npm `saml`
//! (tests/peers/wsfed_idp.mjs): federation metadata import, sign-in through
//! the IdP's form, and refusals of a tampered, unsigned, replayed, expired or
//! foreign-realm token.

use std::process::Command;

use serde_json::{Value, json};

use crate::common::{self, TestApp, browser, plain};
use crate::sso::put_json;

/// The WS-Fed IdP process (its base URL), stopped when dropped.
pub struct WsfedIdp {
    _peer: common::Peer,
    pub base: String,
}

pub fn start_wsfed() -> WsfedIdp {
    let mut cmd = Command::new("node");
    cmd.arg("wsfed_idp.mjs")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers"));
    let peer = common::spawn_peer(
        cmd,
        "WSFED ",
        "the WS-Fed IdP (node and npm ci in tests/peers, which the test command installs)",
    );
    WsfedIdp {
        base: peer.url.clone(),
        _peer: peer,
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `GET /sso/wsfed/adfs/login`: the IdP URL and the `wctx` it carries.
async fn start(app: &TestApp, c: &reqwest::Client) -> (String, String) {
    let r = c
        .get(app.url("/sso/wsfed/adfs/login?rd=/admin/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let url = r.headers()["location"].to_str().unwrap().to_string();
    let u = reqwest::Url::parse(&url).unwrap();
    let q = |k: &str| u.query_pairs().find(|(n, _)| n == k).unwrap().1.to_string();
    assert_eq!(q("wa"), "wsignin1.0");
    assert_eq!(q("wtrealm"), app.url("/sso/wsfed/adfs"));
    assert_eq!(q("wreply"), app.url("/sso/wsfed/adfs/callback"));
    (url, q("wctx"))
}

async fn sign_in(app: &TestApp, c: &reqwest::Client, user: &str) -> reqwest::Response {
    let (url, _) = start(app, c).await;
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let idp = reqwest::Url::parse(&url).unwrap();
    let form: Vec<(String, String)> = ["wtrealm", "wreply", "wctx"]
        .iter()
        .map(|k| (k.to_string(), hidden(&page, k)))
        .chain([("user".to_string(), user.to_string())])
        .collect();
    let html = c
        .post(idp.join("/wsfed/login").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("action=\"").unwrap() + 8;
    let action = &html[start..start + html[start..].find('"').unwrap()];
    assert_eq!(action, app.url("/sso/wsfed/adfs/callback"));
    c.post(action)
        .form(&[
            ("wa", hidden(&html, "wa")),
            ("wresult", hidden(&html, "wresult")),
            ("wctx", hidden(&html, "wctx")),
        ])
        .send()
        .await
        .unwrap()
}

async fn raw(idp: &WsfedIdp, app: &TestApp, user: &str, wctx: &str, realm: &str) -> String {
    plain()
        .get(format!("{}/raw", idp.base))
        .query(&[
            ("user", user),
            ("wtrealm", realm),
            ("wreply", &app.url("/sso/wsfed/adfs/callback")),
            ("wctx", wctx),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn post_result(app: &TestApp, c: &reqwest::Client, wresult: &str, wctx: &str) -> u16 {
    c.post(app.url("/sso/wsfed/adfs/callback"))
        .form(&[("wa", "wsignin1.0"), ("wresult", wresult), ("wctx", wctx)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn last_reason(app: &TestApp, token: &str) -> Value {
    app.audit(token, "action=sso.login&limit=1").await[0]["details"].clone()
}

#[actix_web::test]
async fn wsfed_sign_in_and_refusals() {
    let app = common::spawn().await;
    app.clock
        .advance(gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock) - common::T0);
    let idp = start_wsfed();
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let (s, c) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "adfs", "protocol": "wsfed", "provider": "azure", "name": "Corp ADFS",
               "metadata_url": format!("{}/FederationMetadata/2007-06/FederationMetadata.xml", idp.base),
               "role_rules": [{"value": "gh-admins", "role": "admin"}]}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["issuer"], format!("{}/wsfed", idp.base));
    assert_eq!(c["sso_url"], format!("{}/wsfed", idp.base));
    assert_eq!(c["sign_on_url"], format!("{}/wsfed", idp.base));
    assert_eq!(c["realm"], app.url("/sso/wsfed/adfs"));
    assert_eq!(
        c["sp"]["wsfed_reply_url"],
        app.url("/sso/wsfed/adfs/callback")
    );
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // A SAML 1.1 token from npm wsfed: alice, admin by group.
    let c = browser();
    let r = sign_in(&app, &c, "alice").await;
    assert_eq!(r.status(), 303, "{}", last_reason(&app, &token).await);
    assert_eq!(r.headers()["location"], "/admin/account");
    let me: Value = c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "alice@corp.example");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["name"], "Alice Anders");

    // A SAML 2.0 token in the RSTR (npm saml).
    let r = plain()
        .post(format!("{}/mode", idp.base))
        .json(&json!({"token": "saml20"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = browser();
    let r = sign_in(&app, &c, "bob").await;
    assert_eq!(r.status(), 303, "{}", last_reason(&app, &token).await);
    let me: Value = c
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "bob@corp.example");
    assert_eq!(me["role"], "user");

    let realm = app.url("/sso/wsfed/adfs");
    for token_kind in ["saml11", "saml20"] {
        plain()
            .post(format!("{}/mode", idp.base))
            .json(&json!({"token": token_kind}))
            .send()
            .await
            .unwrap();
        // Tampered: the signed token now names alice.
        let c = browser();
        let (_, wctx) = start(&app, &c).await;
        let x = raw(&idp, &app, "bob", &wctx, &realm)
            .await
            .replace("bob@corp.example", "alice@corp.example");
        assert_eq!(post_result(&app, &c, &x, &wctx).await, 401, "{token_kind}");
        let d = last_reason(&app, &token).await;
        assert_eq!(d["reason"], "bad_signature", "{token_kind}: {d}");

        // Unsigned.
        let (_, wctx) = start(&app, &c).await;
        let mut x = raw(&idp, &app, "bob", &wctx, &realm).await;
        let (a, b) = (
            x.find("<Signature").unwrap(),
            x.find("</Signature>").unwrap(),
        );
        x.replace_range(a..b + "</Signature>".len(), "");
        assert_eq!(post_result(&app, &c, &x, &wctx).await, 401);
        assert_eq!(last_reason(&app, &token).await["reason"], "unsigned");

        // Another realm's token.
        let (_, wctx) = start(&app, &c).await;
        let x = raw(&idp, &app, "bob", &wctx, "https://other.example/app").await;
        assert_eq!(post_result(&app, &c, &x, &wctx).await, 401);
        assert_eq!(last_reason(&app, &token).await["reason"], "wrong_audience");

        // Replayed: the same wctx again, then the same token with a fresh wctx.
        // (Each user as the token format that created them: the formats name
        // bob differently, and another subject is never linked by e-mail.)
        let who = if token_kind == "saml11" {
            "alice"
        } else {
            "bob"
        };
        let (_, wctx) = start(&app, &c).await;
        let x = raw(&idp, &app, who, &wctx, &realm).await;
        assert_eq!(
            post_result(&app, &c, &x, &wctx).await,
            303,
            "{token_kind}: {}",
            last_reason(&app, &token).await
        );
        assert_eq!(post_result(&app, &browser(), &x, &wctx).await, 401);
        assert_eq!(last_reason(&app, &token).await["reason"], "unknown_state");
        // (From the browser that started it: another browser is login CSRF.)
        let (_, fresh) = start(&app, &c).await;
        assert_eq!(post_result(&app, &c, &x, &fresh).await, 401);
        assert_eq!(
            last_reason(&app, &token).await["reason"],
            "replayed_assertion"
        );

        // Expired (the IdP gives 5 minutes; the skew is 2).
        let (_, wctx) = start(&app, &c).await;
        let x = raw(&idp, &app, "bob", &wctx, &realm).await;
        app.clock.advance(8 * 60);
        assert_eq!(post_result(&app, &c, &x, &wctx).await, 401);
        assert_eq!(last_reason(&app, &token).await["reason"], "expired");
        app.clock.advance(-8 * 60);
    }
}
