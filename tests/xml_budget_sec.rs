//! Issue 11, finding 1: the XML work budget at every XML entry point (SAML
//! ACS, WS-Fed callback, IdP metadata import) — the issue's namespace
//! document and its variants refused before parsing with a 400 and the audit
//! reason `xml_limits`; `/healthz` answering while attacks are in flight; a
//! saturated XML pool answering 503 with Retry-After. Finding 13 (first
//! bullet): an assertion signed by the IdP with a second, foreign
//! AudienceRestriction is refused.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, TestApp, plain};

fn b64e(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn b64d(s: &str) -> String {
    use base64::Engine;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

/// The issue's document: `<r xmlns:a0='u' … xmlns:a3999='u'>` +
/// `<b xmlns:c='u'/>` × 400 + `</r>` (92 KB).
fn issue_document() -> String {
    let mut x = String::from("<r");
    for i in 0..4000 {
        x.push_str(&format!(" xmlns:a{i}='u'"));
    }
    x.push('>');
    x.push_str(&"<b xmlns:c='u'/>".repeat(400));
    x.push_str("</r>");
    x
}

fn decls(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!(" xmlns:{prefix}{i}='u'")).collect()
}

/// Variants of the attack, each over one limit: (what, document, words of the message).
fn variants() -> Vec<(&'static str, String, &'static str)> {
    let samlp = "xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'";
    vec![
        (
            "the issue's document",
            issue_document(),
            "declares more than 24 namespaces",
        ),
        (
            "namespaces spread over nested elements",
            format!(
                "<samlp:Response {samlp}><e{}><f{}><g{}/></f></e></samlp:Response>",
                decls("a", 20),
                decls("b", 20),
                decls("c", 20)
            ),
            "in scope",
        ),
        (
            "namespaces spread over many siblings",
            format!(
                "<samlp:Response {samlp}>{}</samlp:Response>",
                format!("<e{}/>", decls("a", 8)).repeat(251)
            ),
            "declares more than 2000 namespaces",
        ),
        (
            "deep nesting",
            format!("{}{}", "<e>".repeat(1000), "</e>".repeat(1000)),
            "nested too deeply (more than 32 levels)",
        ),
        (
            "many attributes on one element",
            format!(
                "<samlp:Response {samlp}{}/>",
                (0..2000).map(|i| format!(" a{i}='v'")).collect::<String>()
            ),
            "more than 32 attributes",
        ),
        (
            "declarations after a comment",
            format!(
                "<samlp:Response {samlp}><!-- <x xmlns:y='u'/> --><e{}/></samlp:Response>",
                decls("a", 400)
            ),
            "declares more than 24 namespaces",
        ),
        (
            "declarations after CDATA",
            format!(
                "<samlp:Response {samlp}><![CDATA[ <x> ]]><e{}/></samlp:Response>",
                decls("a", 400)
            ),
            "declares more than 24 namespaces",
        ),
        (
            "declarations after a quoted '>' and a PI",
            format!(
                "<?xml version='1.0'?><samlp:Response {samlp} v='>'><?pi x?><e{}/></samlp:Response>",
                decls("a", 400)
            ),
            "declares more than 24 namespaces",
        ),
    ]
}

/// Gatehouse with a SAML connection `acme` and a WS-Fed connection `adfs`
/// (certificates from tests/peers/certs; nothing here gets as far as a
/// signature), SSO enabled.
async fn app_with_connections() -> (TestApp, String) {
    let app = common::spawn().await;
    let token = app.owner_token().await;
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/certs");
    let pem = std::fs::read_to_string(certs.join("valid-until-2027-01-25.pem")).unwrap();
    for (id, protocol) in [("acme", "saml"), ("adfs", "wsfed")] {
        let (s, v) = common::post(
            &app,
            "/api/v1/sso/connections",
            Some(&token),
            json!({"id": id, "protocol": protocol, "name": id, "issuer": "https://idp.example/entity",
                   "sso_url": "https://idp.example/sso", "certificates": [pem],
                   "allow_idp_initiated": true}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    (app, token)
}

async fn post_acs(app: &TestApp, xml: &str) -> (u16, String) {
    let r = plain()
        .post(app.url("/sso/saml/acme/acs"))
        .form(&[("SAMLResponse", b64e(xml))])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post_wsfed(app: &TestApp, xml: &str) -> (u16, String) {
    let r = plain()
        .post(app.url("/sso/wsfed/adfs/callback"))
        .form(&[("wa", "wsignin1.0"), ("wresult", xml), ("wctx", "whatever")])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn last_failure(app: &TestApp, token: &str) -> Value {
    app.audit(token, "action=sso.login&limit=1").await[0]["details"].clone()
}

#[actix_web::test]
async fn namespace_attacks_are_refused_before_parsing_at_acs_and_wsfed() {
    let (app, token) = app_with_connections().await;
    for (what, xml, words) in variants() {
        for (endpoint, (status, body)) in [
            ("ACS", post_acs(&app, &xml).await),
            ("WS-Fed", post_wsfed(&app, &xml).await),
        ] {
            assert_eq!(status, 400, "{endpoint}, {what}: {body}");
            assert!(
                body.contains("refused") && body.contains(words),
                "{endpoint}, {what}: {body}"
            );
            let d = last_failure(&app, &token).await;
            assert_eq!(d["reason"], "xml_limits", "{endpoint}, {what}: {d}");
            assert!(
                d["message"].as_str().unwrap().contains(words),
                "{endpoint}, {what}: {d}"
            );
        }
    }
    // A document within the limits goes on to the parser and the checks.
    let (status, _) = post_acs(&app, "<r xmlns:a='u'><b xmlns:c='u'/></r>").await;
    assert_eq!(status, 401);
    assert_eq!(
        last_failure(&app, &token).await["reason"],
        "malformed_response"
    );
    // A DTD is still the parser's refusal (401, malformed_response).
    let (status, _) = post_acs(&app, "<!DOCTYPE r [<!ENTITY e 'x'>]><r>&e;</r>").await;
    assert_eq!(status, 401);
    let d = last_failure(&app, &token).await;
    assert_eq!(d["reason"], "malformed_response");
    assert!(d["message"].as_str().unwrap().contains("DTD"), "{d}");
}

#[actix_web::test]
async fn metadata_import_is_bounded_too() {
    let app = common::spawn().await;
    let token = app.owner_token().await;
    // The issue's document is over the JSON body limit; its shape in small.
    let xml = format!(
        "<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata'{}>{}</md:EntityDescriptor>",
        decls("a", 300),
        "<b xmlns:c='u'/>".repeat(50)
    );
    for protocol in ["saml", "wsfed"] {
        let (s, v) = common::post(
            &app,
            "/api/v1/sso/connections",
            Some(&token),
            json!({"id": "meta", "protocol": protocol, "name": "Meta", "metadata_xml": xml}),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.starts_with("metadata_xml:") && m.contains("declares more than 24 namespaces"),
            "{m}"
        );
    }
}

/// Before the fix two of these requests froze both workers for about 20 s.
#[actix_web::test]
async fn healthz_answers_while_attacks_are_in_flight() {
    let (app, _token) = app_with_connections().await;
    let xml = issue_document();
    // Six of the issue's documents, half to each endpoint, and the most
    // expensive documents that pass the limits (to the ACS).
    let mut docs: Vec<(bool, String)> = (0..6).map(|i| (i % 2 == 0, xml.clone())).collect();
    docs.extend(
        gatehouse::sso::xml_budget::samples::all()
            .into_iter()
            .map(|(_, x)| (true, x)),
    );
    let started = Instant::now();
    let attacks: Vec<_> = docs
        .into_iter()
        .map(|(acs, x)| {
            let (url, form): (String, Vec<(&str, String)>) = if acs {
                (
                    app.url("/sso/saml/acme/acs"),
                    vec![("SAMLResponse", b64e(&x))],
                )
            } else {
                (
                    app.url("/sso/wsfed/adfs/callback"),
                    vec![
                        ("wa", "wsignin1.0".into()),
                        ("wresult", x),
                        ("wctx", "w".into()),
                    ],
                )
            };
            tokio::spawn(async move {
                let r = plain().post(url).form(&form).send().await.unwrap();
                r.status().as_u16()
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = plain()
            .get(app.url("/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("/healthz did not answer within 5 s");
        assert_eq!(r.status(), 200);
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for a in attacks {
        let s = a.await.unwrap();
        // 413: the text sample, base64 and form-encoded, is over the form limit.
        assert!(matches!(s, 400 | 401 | 413 | 503), "{s}");
    }
    assert!(
        worst < Duration::from_secs(1),
        "/healthz took {worst:?} while attacks were in flight"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the attacks took {:?}",
        started.elapsed()
    );
}

/// With every XML permit taken, the ACS waits briefly, then answers 503
/// with Retry-After (and /healthz still answers).
#[actix_web::test]
async fn a_saturated_xml_pool_answers_503_with_retry_after() {
    let (app, _token) = app_with_connections().await;
    let pool = &app.svc.xml_pool;
    let mut release = Vec::new();
    let mut held = Vec::new();
    for _ in 0..pool.capacity() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        release.push(tx);
        let svc = app.svc.clone();
        held.push(tokio::spawn(async move {
            svc.xml_pool.run(move || rx.recv().is_ok()).await.unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let r = plain()
        .post(app.url("/sso/saml/acme/acs"))
        .form(&[("SAMLResponse", b64e("<r/>"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert!(r.text().await.unwrap().contains("busy"));
    let h = plain().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    for tx in release {
        tx.send(()).unwrap();
    }
    for h in held {
        assert!(h.await.unwrap());
    }
    let r = plain()
        .post(app.url("/sso/saml/acme/acs"))
        .form(&[("SAMLResponse", b64e("<r/>"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Re-signs the (only) signature template of `xml` with the IdP key in
/// `keys` (xmlsec1, as pysaml2 itself does), after the test edited it.
fn resign(xml: &str, keys: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.xml"), dir.path().join("out.xml"));
    std::fs::write(&input, xml).unwrap();
    let key = format!(
        "{},{}",
        keys.join("idp.key").display(),
        keys.join("idp.crt").display()
    );
    let out = std::process::Command::new("xmlsec1")
        .args(["--sign", "--privkey-pem", &key])
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        ])
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .expect("xmlsec1 (installed by scripts/test.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(output).unwrap()
}

/// Finding 13: an assertion signed by the IdP whose Conditions carry our
/// audience in one AudienceRestriction and a foreign one in a second is
/// refused (each restriction must hold; they were OR-ed).
#[actix_web::test]
async fn a_second_audience_restriction_for_another_sp_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (app, idp, token) = crate::saml::saml_app(keys.path()).await;
    let (_, c) = crate::sso::get_json(&app, "/api/v1/sso/connections/acme", &token).await;
    let (s, v) = crate::sso::put_json(
        &app,
        "/api/v1/sso/connections/acme",
        &token,
        json!({"protocol": "saml", "provider": c["provider"], "name": c["name"],
               "allow_idp_initiated": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    crate::saml::idp_mode(&idp, json!({"sign": "assertion"})).await;
    let post = |xml: String| {
        let app = &app;
        async move {
            let c = common::browser();
            let r = crate::saml::post_acs(app, &c, "acme", &b64e(&xml)).await;
            r.status().as_u16()
        }
    };
    let fresh = || async { b64d(&crate::saml::raw(&idp, "bob").await) };
    let close = "</ns1:AudienceRestriction>";
    // Re-signed unchanged: accepted (so the refusal below is the restriction's doing).
    let x = fresh().await;
    assert!(x.contains(close), "{x}");
    assert_eq!(post(resign(&x, keys.path())).await, 303);
    // Our audience, then a foreign restriction; and the other way round.
    let foreign = "<ns1:AudienceRestriction><ns1:Audience>https://other-sp.example/sp</ns1:Audience></ns1:AudienceRestriction>";
    for first in [false, true] {
        let x = fresh().await;
        let x = if first {
            let at = x.find("<ns1:AudienceRestriction").unwrap();
            format!("{}{foreign}{}", &x[..at], &x[at..])
        } else {
            x.replacen(close, &format!("{close}{foreign}"), 1)
        };
        assert_eq!(x.matches("<ns1:AudienceRestriction>").count(), 2, "{x}");
        assert_eq!(
            post(resign(&x, keys.path())).await,
            401,
            "foreign first: {first}"
        );
        let d = last_failure(&app, &token).await;
        assert_eq!(d["reason"], "wrong_audience", "{d}");
        assert!(
            d["message"]
                .as_str()
                .unwrap()
                .contains("https://other-sp.example/sp"),
            "{d}"
        );
    }
}
