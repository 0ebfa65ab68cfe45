//! SAML 2.0 against pysaml2's IdP (tests/peers/saml_idp.py, signing with
//! Debian's xmlsec1): SP- and IdP-initiated sign-in with metadata import,
//! rsa-sha1 refused by default, and the attacks — tampered NameID, removed
//! signature, an unknown key, signature wrapping, expired and not-yet-valid
//! assertions, wrong audience / recipient / destination, replay, a forged
//! InResponseTo, comment injection in the NameID and a DTD.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{self, TestApp, browser, plain};
use crate::sso::{get_json, put_json};

/// pysaml2's IdP process (its base URL), stopped when dropped.
pub struct Idp {
    _peer: common::Peer,
    pub base: String,
}

/// Starts pysaml2's IdP; `key_dir` shares a signing key, `entity` an entity ID.
pub fn start_idp(sp_metadata_url: &str, key_dir: &Path, entity: Option<&str>) -> Idp {
    start_idp_env(sp_metadata_url, key_dir, entity, &[])
}

pub fn start_idp_env(
    sp_metadata_url: &str,
    key_dir: &Path,
    entity: Option<&str>,
    env: &[(&str, &str)],
) -> Idp {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the SAML IdP needs the test venv with pysaml2: run scripts/test.sh"
    );
    let mut cmd = Command::new(python);
    cmd.arg(root.join("tests/peers/saml_idp.py"))
        .arg(sp_metadata_url)
        .arg(key_dir);
    if let Some(e) = entity {
        cmd.arg(e);
    }
    cmd.envs(env.iter().copied());
    let peer = common::spawn_peer(
        cmd,
        "IDP ",
        "the SAML IdP (pysaml2 and xmlsec1, which the test command installs)",
    );
    Idp {
        base: peer.url.clone(),
        _peer: peer,
    }
}

/// A hidden form field's value in an HTML page, entities decoded.
pub(crate) fn value_of(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()]
        .replace("&#x2B;", "+")
        .replace("&#43;", "+")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The ACS URL and SAMLResponse of the IdP's auto-submitting form.
fn auto_post(html: &str) -> (String, String) {
    let start = html.find("action=\"").unwrap() + 8;
    let action = html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&");
    (action, value_of(html, "SAMLResponse"))
}

pub async fn post_acs(
    app: &TestApp,
    c: &reqwest::Client,
    id: &str,
    response: &str,
) -> reqwest::Response {
    c.post(app.url(&format!("/sso/saml/{id}/acs")))
        .form(&[("SAMLResponse", response)])
        .send()
        .await
        .unwrap()
}

/// Our login → the IdP's form as `user` in browser `c`: the IdP's answer
/// page (its auto-POST to the ACS), not yet posted.
pub(crate) async fn idp_answer(app: &TestApp, c: &reqwest::Client, user: &str) -> String {
    let r = c
        .get(app.url("/sso/saml/acme/login?rd=/admin/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let idp_url = r.headers()["location"].to_str().unwrap().to_string();
    let page = c.get(&idp_url).send().await.unwrap().text().await.unwrap();
    let idp = reqwest::Url::parse(&idp_url).unwrap();
    let r = c
        .post(idp.join("/sso/login").unwrap())
        .form(&[
            ("SAMLRequest", value_of(&page, "SAMLRequest")),
            ("RelayState", String::new()),
            ("SigAlg", value_of(&page, "SigAlg")),
            ("Signature", value_of(&page, "Signature")),
            ("user", user.to_string()),
        ])
        .send()
        .await
        .unwrap();
    r.text().await.unwrap()
}

/// SP-initiated: our login → the IdP's form as `user` → its POST to the ACS.
pub async fn sign_in(app: &TestApp, c: &reqwest::Client, user: &str) -> reqwest::Response {
    let html = idp_answer(app, c, user).await;
    let (acs, response) = auto_post(&html);
    assert_eq!(acs, app.url("/sso/saml/acme/acs"));
    c.post(acs)
        .form(&[("SAMLResponse", response.as_str())])
        .send()
        .await
        .unwrap()
}

pub async fn raw(idp: &Idp, user: &str) -> String {
    plain()
        .get(format!("{}/raw?user={user}", idp.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn idp_mode(idp: &Idp, mode: Value) {
    let r = plain()
        .post(format!("{}/mode", idp.base))
        .json(&mode)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn b64d(s: &str) -> String {
    use base64::Engine;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

fn b64e(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Gatehouse at the real time with the SAML connection `acme`, imported
/// from the IdP's metadata; SSO enabled with a second excluded admin.
pub async fn saml_app(keys: &Path) -> (TestApp, Idp, String) {
    saml_app_with(keys, |_| {}).await
}

/// `saml_app` with changed settings.
pub async fn saml_app_with(
    keys: &Path,
    f: impl FnOnce(&mut gatehouse::config::Settings),
) -> (TestApp, Idp, String) {
    let app = common::spawn_with(f).await;
    app.clock
        .advance(gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock) - common::T0);
    let idp = start_idp(&app.url("/sso/saml/acme/metadata"), keys, None);
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let (s, c) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "acme", "protocol": "saml", "provider": "okta", "name": "Acme SAML",
               "metadata_url": format!("{}/metadata", idp.base),
               "role_rules": [{"value": "gh-admins", "role": "admin"}]}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["issuer"], format!("{}/metadata", idp.base));
    assert_eq!(c["sso_url"], format!("{}/sso/redirect", idp.base));
    assert_eq!(c["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(c["sp"]["acs_url"], app.url("/sso/saml/acme/acs"));
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (app, idp, token)
}

async fn last_failure(app: &TestApp, token: &str) -> Value {
    app.audit(token, "action=sso.login&limit=1").await[0].clone()
}

async fn set_connection(app: &TestApp, token: &str, extra: Value) {
    let (_, mut c) = get_json(app, "/api/v1/sso/connections/acme", token).await;
    let mut body = json!({"protocol": "saml", "provider": c["provider"], "name": c["name"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, v) = put_json(app, "/api/v1/sso/connections/acme", token, body).await;
    assert_eq!(s, 200, "{v}");
    c = v;
    let _ = c;
}

#[actix_web::test]
async fn saml_sign_in_through_pysaml2() {
    let keys = tempfile::tempdir().unwrap();
    let (app, idp, token) = saml_app(keys.path()).await;
    // The SP metadata pysaml2 read.
    let md = plain()
        .get(app.url("/sso/saml/acme/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.contains(&app.url("/sso/saml/acme/acs")) && md.contains("entityID="));

    // SP-initiated, Response and Assertion signed rsa-sha256: alice, admin by group.
    let c = browser();
    let r = sign_in(&app, &c, "alice").await;
    assert_eq!(r.status(), 303, "{}", last_failure(&app, &token).await);
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

    // Only the assertion signed, then only the response: both accepted.
    for sign in ["assertion", "response"] {
        idp_mode(&idp, json!({"sign": sign})).await;
        let c = browser();
        let r = sign_in(&app, &c, "bob").await;
        assert_eq!(r.status(), 303, "{sign}: {}", r.text().await.unwrap());
    }
    idp_mode(&idp, json!({"sign": "both"})).await;

    // IdP-initiated: refused until the connection allows it.
    let html = plain()
        .get(format!("{}/initiate?user=bob", idp.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, unsolicited) = auto_post(&html);
    let c = browser();
    assert_eq!(post_acs(&app, &c, "acme", &unsolicited).await.status(), 401);
    assert_eq!(
        last_failure(&app, &token).await["details"]["reason"],
        "unsolicited_response"
    );
    set_connection(&app, &token, json!({"allow_idp_initiated": true})).await;
    let r = post_acs(&app, &c, "acme", &raw(&idp, "bob").await).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin");

    // pysaml2's default rsa-sha1: refused unless the connection allows SHA-1.
    idp_mode(&idp, json!({"alg": "sha1"})).await;
    let c = browser();
    assert_eq!(sign_in(&app, &c, "bob").await.status(), 401);
    let ev = last_failure(&app, &token).await;
    assert_eq!(ev["details"]["reason"], "bad_signature", "{ev}");
    assert!(ev["details"]["message"].as_str().unwrap().contains("SHA-1"));
    set_connection(&app, &token, json!({"allow_sha1": true})).await;
    assert_eq!(sign_in(&app, &browser(), "bob").await.status(), 303);
}

#[actix_web::test]
async fn saml_attacks_are_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (app, idp, token) = saml_app(keys.path()).await;
    set_connection(&app, &token, json!({"allow_idp_initiated": true})).await;
    let attempt = |xml: String| {
        let app = &app;
        async move {
            let c = browser();
            let r = post_acs(app, &c, "acme", &b64e(&xml)).await;
            let status = r.status().as_u16();
            let signed_in = c.get(app.url("/api/v1/me")).send().await.unwrap().status() == 200;
            (status, signed_in)
        }
    };
    let refused = |what: &'static str, reason: &'static str, words: &'static str| {
        let (app, token) = (&app, &token);
        move |(status, signed_in): (u16, bool)| async move {
            assert_eq!(status, 401, "{what} was accepted");
            assert!(!signed_in, "{what} signed someone in");
            let ev = last_failure(app, token).await;
            assert_eq!(ev["details"]["reason"], reason, "{what}: {ev}");
            let msg = ev["details"]["message"].as_str().unwrap();
            assert!(msg.contains(words), "{what}: {msg}");
        }
    };
    // The untouched response works (so each refusal below is the attack's doing).
    let good = b64d(&raw(&idp, "bob").await);
    assert_eq!(attempt(good.clone()).await, (303, true));

    // Tampered NameID (the signed assertion now says alice).
    let x = b64d(&raw(&idp, "bob").await).replace(">bob@corp.example</", ">alice@corp.example</");
    refused("tampered NameID", "bad_signature", "digest")(attempt(x).await).await;

    // Removed signatures.
    let mut x = b64d(&raw(&idp, "bob").await);
    while let (Some(a), Some(b)) = (x.find("<ns2:Signature"), x.find("</ns2:Signature>")) {
        x.replace_range(a..b + "</ns2:Signature>".len(), "");
    }
    refused("unsigned response", "unsigned", "signed")(attempt(x).await).await;

    // Comment injection in the NameID: c14n drops comments, so the signature
    // would still verify over "bob@corp.example.evil"; the parser refuses.
    let x = b64d(&raw(&idp, "bob").await)
        .replace(">bob@corp.example<", ">bob@corp.example<!---->.evil<");
    refused("comment in NameID", "malformed_response", "comment")(attempt(x).await).await;

    // A DTD with an entity.
    let x = b64d(&raw(&idp, "bob").await).replacen(
        "<?xml version=\"1.0\"?>",
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e \"alice@corp.example\">]>",
        1,
    );
    refused("DTD", "malformed_response", "DTD")(attempt(x).await).await;

    // Wrapping 1: a second, unsigned assertion beside the signed one.
    let x = b64d(&raw(&idp, "bob").await);
    let a = x.find("<ns1:Assertion").unwrap();
    let mut evil = x[a..x.find("</ns1:Assertion>").unwrap() + 16]
        .replace("bob@corp.example", "alice@corp.example")
        .replacen("ID=\"", "ID=\"evil-", 1);
    let (s1, s2) = (
        evil.find("<ns2:Signature").unwrap(),
        evil.find("</ns2:Signature>").unwrap(),
    );
    evil.replace_range(s1..s2 + "</ns2:Signature>".len(), "");
    let mut w = x.clone();
    w.insert_str(a, &evil);
    refused("a second assertion", "assertion_count", "2 assertions")(attempt(w).await).await;

    // Wrapping 2: the signed assertion moved under an extension element and an
    // evil copy (same ID, signature kept) put in its place.
    let x = b64d(&raw(&idp, "bob").await);
    let (a, b) = (
        x.find("<ns1:Assertion").unwrap(),
        x.find("</ns1:Assertion>").unwrap() + 16,
    );
    let signed = &x[a..b];
    let evil = signed.replace("bob@corp.example", "alice@corp.example");
    let w = format!(
        "{}{}<ns0:Extensions>{}</ns0:Extensions>{}",
        &x[..a],
        evil,
        signed,
        &x[b..]
    );
    refused("assertion moved, evil copy", "malformed_response", "twice")(attempt(w).await).await;

    // Wrapping 3: only the Response is signed, and its ID no longer is the
    // one the signature references.
    idp_mode(&idp, json!({"sign": "response"})).await;
    let x = b64d(&raw(&idp, "bob").await);
    let id_at = x.find(" ID=\"").unwrap() + 5;
    let mut w = x.clone();
    w.insert_str(id_at, "evil-");
    refused("response ID swapped", "bad_signature", "references")(attempt(w).await).await;
    idp_mode(&idp, json!({"sign": "both"})).await;

    // Replay: the same assertion twice.
    let x = b64d(&raw(&idp, "bob").await);
    assert_eq!(attempt(x.clone()).await, (303, true));
    refused("replayed assertion", "replayed_assertion", "already used")(attempt(x).await).await;

    // A forged InResponseTo.
    let x = b64d(
        &plain()
            .get(format!("{}/raw?user=bob&in_response_to=_forged", idp.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    refused(
        "forged InResponseTo",
        "unknown_in_response_to",
        "InResponseTo",
    )(attempt(x).await)
    .await;

    // Expired and not yet valid (the IdP gives 5 minutes; the default skew is 2).
    let x = b64d(&raw(&idp, "bob").await);
    app.clock.advance(8 * 60);
    refused("expired assertion", "expired", "expired")(attempt(x).await).await;
    app.clock.advance(-8 * 60);
    let x = b64d(&raw(&idp, "bob").await);
    app.clock.advance(-5 * 60);
    refused("future assertion", "not_yet_valid", "valid only from")(attempt(x).await).await;
    app.clock.advance(5 * 60);

    // A signature by a key the connection does not trust: another IdP key.
    let other_keys = tempfile::tempdir().unwrap();
    let issuer = format!("{}/metadata", idp.base);
    let impostor = start_idp(
        &app.url("/sso/saml/acme/metadata"),
        other_keys.path(),
        Some(&issuer),
    );
    let x = b64d(&raw(&impostor, "bob").await);
    refused("unknown key", "bad_signature", "does not verify")(attempt(x).await).await;

    // Signed by the right key for another SP: wrong audience, destination, recipient.
    let dir = tempfile::tempdir().unwrap();
    let sp_md = |entity: &str, acs: &str| {
        let p = dir.path().join(format!("{}.xml", entity.len() + acs.len()));
        std::fs::write(
            &p,
            format!(
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>"#
            ),
        )
        .unwrap();
        format!("file://{}", p.display())
    };
    let acs = app.url("/sso/saml/acme/acs");
    let entity = app.url("/sso/saml/acme/metadata");
    let other_sp = start_idp(
        &sp_md("https://other-sp.example/sp", &acs),
        keys.path(),
        Some(&issuer),
    );
    let x = b64d(&raw(&other_sp, "bob").await);
    refused("another SP's audience", "wrong_audience", "not this SP")(attempt(x).await).await;
    let elsewhere = start_idp(
        &sp_md(&entity, "https://other-sp.example/acs"),
        keys.path(),
        Some(&issuer),
    );
    let x = b64d(&raw(&elsewhere, "bob").await);
    refused(
        "another ACS (destination)",
        "wrong_destination",
        "addressed to",
    )(attempt(x).await)
    .await;
    // With only the assertion signed, an attacker may rewrite the Destination;
    // the signed Recipient still gives it away.
    idp_mode(&elsewhere, json!({"sign": "assertion"})).await;
    let x = b64d(&raw(&elsewhere, "bob").await).replace(
        "Destination=\"https://other-sp.example/acs\"",
        &format!("Destination=\"{acs}\""),
    );
    assert!(x.contains(&format!("Destination=\"{acs}\"")));
    refused("another ACS (recipient)", "wrong_recipient", "Recipient")(attempt(x).await).await;
}

/// Headless Chromium from the real sign-in page through pysaml2's IdP
/// (tests/browser/saml.mjs); the README's test command installs both.
#[actix_web::test]
async fn saml_sign_in_from_the_sign_in_page_in_headless_chromium() {
    let app = common::spawn().await;
    app.clock
        .advance(gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock) - common::T0);
    let keys = tempfile::tempdir().unwrap();
    let idp = start_idp(&app.url("/sso/saml/acme/metadata"), keys.path(), None);
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let out =
        common::chromium_walk_async("saml.mjs", vec![app.base.clone(), idp.base.clone()]).await;
    let logins = app.audit(&token, "action=auth.login&limit=20").await;
    assert!(
        logins
            .iter()
            .any(|e| e["actor"] == "bob@corp.example" && e["details"]["sso"] == "acme"),
        "{out}"
    );
    let tests = app.audit(&token, "action=sso.test").await;
    assert_eq!(tests[0]["outcome"], "success", "{out}");
}

/// Certificates: an expired one is refused with words, one expiring within 30
/// days is accepted with a warning, and bad PEM says which certificate.
/// (The test clock stands at 2027-01-15; the vectors are in tests/peers/certs.)
#[actix_web::test]
async fn idp_certificates_expired_expiring_and_malformed() {
    let app = common::spawn().await;
    let token = app.owner_token().await;
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/certs");
    let pem = |f: &str| std::fs::read_to_string(certs.join(f)).unwrap();
    let body = |c: Vec<String>| {
        json!({"id": "acme", "protocol": "saml", "name": "Acme", "issuer": "https://idp.example/entity",
               "sso_url": "https://idp.example/sso", "certificates": c})
    };
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        body(vec![pem("expired-2026-01-01.pem")]),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        body(vec![
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----".into(),
        ]),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("certificate 1"),
        "{v}"
    );
    let (s, v) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        body(vec![
            pem("expired-2026-01-01.pem"),
            pem("valid-until-2027-01-25.pem"),
        ]),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let warnings: Vec<String> = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["warning"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(warnings[0].starts_with("expired"), "{warnings:?}");
    assert!(warnings[1].starts_with("expires in 9 days"), "{warnings:?}");
}

/// Signed AuthnRequests: pysaml2 told to demand them refuses our unsigned
/// request and a request whose signature was removed, and accepts the one
/// signed with the key whose certificate the SP metadata now carries.
#[actix_web::test]
async fn saml_signed_authn_requests_verify_at_pysaml2() {
    let app = common::spawn().await;
    app.clock
        .advance(gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock) - common::T0);
    let keys = tempfile::tempdir().unwrap();
    let idp = start_idp_env(
        &app.url("/sso/saml/acme/metadata"),
        keys.path(),
        None,
        &[("WANT_SIGNED_REQUESTS", "1")],
    );
    let token = app.owner_token().await;
    app.create_user(&token, "admin2@example.com", "admin").await;
    let (s, c) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "acme", "protocol": "saml", "provider": "other", "name": "Acme SAML",
               "metadata_url": format!("{}/metadata", idp.base)}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let md = |app: &TestApp| {
        let url = app.url("/sso/saml/acme/metadata");
        async move { plain().get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(md(&app).await.contains("AuthnRequestsSigned=\"false\""));
    let (s, _) = put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200);
    // Unsigned: the IdP reads our metadata (no certificate) and refuses.
    let c = browser();
    let r = c.get(app.url("/sso/saml/acme/login")).send().await.unwrap();
    let unsigned = r.headers()["location"].to_str().unwrap().to_string();
    assert!(!unsigned.contains("Signature="));
    let r = c.get(&unsigned).send().await.unwrap();
    assert_ne!(r.status(), 200, "pysaml2 accepted an unsigned request");

    // Signing on: a fresh IdP reads the metadata with our certificate.
    set_connection(&app, &token, json!({"sign_requests": true})).await;
    let meta = md(&app).await;
    assert!(
        meta.contains("AuthnRequestsSigned=\"true\"") && meta.contains("X509Certificate"),
        "{meta}"
    );
    let issuer = format!("{}/metadata", idp.base);
    drop(idp);
    let idp = start_idp_env(
        &app.url("/sso/saml/acme/metadata"),
        keys.path(),
        Some(&issuer),
        &[("WANT_SIGNED_REQUESTS", "1")],
    );
    set_connection(
        &app,
        &token,
        json!({"sso_url": format!("{}/sso/redirect", idp.base)}),
    )
    .await;
    let c = browser();
    let r = sign_in(&app, &c, "alice").await;
    assert_eq!(r.status(), 303, "{}", last_failure(&app, &token).await);
    // The same request with its signature cut off is refused.
    let r = c.get(app.url("/sso/saml/acme/login")).send().await.unwrap();
    let signed = r.headers()["location"].to_str().unwrap().to_string();
    assert!(signed.contains("&SigAlg=") && signed.contains("&Signature="));
    let cut = &signed[..signed.find("&Signature=").unwrap()];
    assert_ne!(c.get(cut).send().await.unwrap().status(), 200);
    let ok = c.get(&signed).send().await.unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
}
