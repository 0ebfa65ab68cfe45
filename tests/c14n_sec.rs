//! Issue 11, findings 2 and 11: the exclusive C14N behind XML signatures.
//! Assertions signed by xmlsec1 (libxml2's C14N, an independent signer) with
//! a throw-away key, then edited the way the reviewer did: a signed
//! `<saml:Attribute>` renamed with a character that is whitespace to Rust
//! but a legal XML name character, so the application no longer sees it.
//! Also: SignedInfo's signature is checked before any digest work, and our
//! canonical form agrees byte for byte with libxml2's on a corpus
//! (tests/c14n_corpus, reference: tests/c14n_corpus/reference_c14n.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use gatehouse::sso::xmldsig::{self, C14n};
use serde_json::{Value, json};

use crate::common::{self, TestApp, browser};

const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const IDP: &str = "https://idp.c14n.test/metadata";

/// Every character that is whitespace to `char::is_whitespace` but not to
/// XML, and the two of them that XML allows inside names (U+1680, U+180E is
/// not whitespace to Rust any more but was once, and is a NameChar).
const UNICODE_SPACES: &[char] = &[
    '\u{1680}', '\u{180E}', '\u{0085}', '\u{00A0}', '\u{2000}', '\u{2001}', '\u{2002}', '\u{2003}',
    '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}', '\u{200A}', '\u{2028}',
    '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

/// A throw-away IdP key and certificate (valid from now for two days; the
/// connection's clock skew covers the seconds until first use).
pub(crate) struct Signer {
    dir: tempfile::TempDir,
    cert_pem: String,
}

impl Signer {
    pub(crate) fn new() -> Signer {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
            .args(["-subj", "/CN=c14n-test-idp", "-days", "2"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .output()
            .expect("openssl (the test command installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cert_pem = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
        Signer { dir, cert_pem }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Signs the template's `ds:Signature` (inside the Assertion) with xmlsec1.
    fn sign(&self, template: &str) -> String {
        std::fs::write(self.path("tmpl.xml"), template).unwrap();
        let keys = format!(
            "{},{}",
            self.path("key.pem").display(),
            self.path("cert.pem").display()
        );
        let out = Command::new("xmlsec1")
            .args(["--sign", "--privkey-pem", &keys])
            .args(["--id-attr:ID", &format!("{ASSERTION_NS}:Assertion")])
            .arg("--output")
            .arg(self.path("signed.xml"))
            .arg(self.path("tmpl.xml"))
            .output()
            .expect("xmlsec1 (the test command installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(self.path("signed.xml")).unwrap()
    }
}

/// `t` as RFC 3339 UTC (civil date: Howard Hinnant's algorithm).
fn rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn real_now() -> i64 {
    gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock)
}

/// An IdP-initiated Response (unsigned) around an Assertion to be signed,
/// with `attrs` in this order and an InclusiveNamespaces list (`xs`).
fn template(acs: &str, audience: &str, id: &str, attrs: &[(&str, &str)]) -> String {
    let now = real_now();
    let (issued, until) = (rfc3339(now - 5), rfc3339(now + 300));
    let attributes: String = attrs
        .iter()
        .map(|(n, v)| {
            format!(
                r#"<saml:Attribute Name="{n}"><saml:AttributeValue xsi:type="xs:string">{v}</saml:AttributeValue></saml:Attribute>"#
            )
        })
        .collect();
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="{ASSERTION_NS}" ID="r-{id}" Version="2.0" IssueInstant="{issued}" Destination="{acs}"><saml:Issuer>{IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="{id}" Version="2.0" IssueInstant="{issued}"><saml:Issuer>{IDP}</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="xs"/></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">user-{id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{issued}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AttributeStatement>{attributes}</saml:AttributeStatement></saml:Assertion></samlp:Response>"##
    )
}

/// Renames the first `<saml:Attribute>` (start and end tag) to `name`.
fn rename_first_attribute(xml: &str, name: &str) -> String {
    let start = xml.find("<saml:Attribute Name=").unwrap();
    let end = start + xml[start..].find("</saml:Attribute>").unwrap();
    let mut out = String::new();
    out.push_str(&xml[..start]);
    out.push_str(&format!("<{name}"));
    out.push_str(&xml[start + "<saml:Attribute".len()..end]);
    out.push_str(&format!("</{name}>"));
    out.push_str(&xml[end + "</saml:Attribute>".len()..]);
    out
}

fn b64e(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Gatehouse at the real time with SAML connection `c14n` trusting the
/// signer's certificate, IdP-initiated allowed; users mallory2 and admin (a
/// platform admin, SSO-excluded: the break-glass account) exist.
pub(crate) async fn app_with_connection(signer: &Signer) -> (TestApp, String) {
    // Each attempt comes from its own address (`attempt`): its refusal is
    // then its own event, not coalesced with or budgeted against the others.
    let app = common::spawn_with(|s| s.network.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    app.clock
        .advance(gatehouse::clock::Clock::now(&gatehouse::clock::SystemClock) - common::T0);
    let token = app.owner_token().await;
    let mallory = app.create_user(&token, "mallory2@corp.test", "user").await;
    app.create_user(&token, "admin@corp.test", "admin").await;
    let (s, c) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "c14n", "protocol": "saml", "provider": "other", "name": "C14N IdP",
               "issuer": IDP, "sso_url": "https://idp.c14n.test/sso",
               "certificates": [signer.cert_pem], "allow_idp_initiated": true}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    // Sign-ins never link an existing account by e-mail (finding 7): an admin
    // links mallory2 to the subject of the untouched assertion ("a-good").
    let (s, v) = common::post(
        &app,
        &format!(
            "/api/v1/users/{}/sso-links",
            mallory["id"].as_str().unwrap()
        ),
        Some(&token),
        json!({"connection": "c14n", "subject": "user-a-good"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = crate::sso::put_json(
        &app,
        "/api/v1/sso/settings",
        &token,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin@corp.test"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (app, token)
}

/// POSTs the response in a fresh browser, from an address of its own (a new
/// `X-Forwarded-For` each time): (status, e-mail signed in as).
async fn attempt(app: &TestApp, xml: &str) -> (u16, Option<String>) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let c = browser();
    let r = c
        .post(app.url("/sso/saml/c14n/acs"))
        .header("x-forwarded-for", format!("10.14.{}.{}", n / 256, n % 256))
        .form(&[("SAMLResponse", b64e(xml))])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let me = c.get(app.url("/api/v1/me")).send().await.unwrap();
    let who = if me.status() == 200 {
        let v: Value = me.json().await.unwrap();
        v["email"].as_str().map(str::to_string)
    } else {
        None
    };
    (status, who)
}

#[actix_web::test]
async fn signed_attribute_renamed_with_unicode_whitespace_is_refused() {
    let signer = Signer::new();
    let (app, token) = app_with_connection(&signer).await;
    let acs = app.url("/sso/saml/c14n/acs");
    let audience = app.url("/sso/saml/c14n/metadata");
    let attrs = [("email", "mallory2@corp.test"), ("mail", "admin@corp.test")];

    // Untouched, the signed assertion signs mallory2 in (the setup is right).
    let xml = signer.sign(&template(&acs, &audience, "a-good", &attrs));
    assert_eq!(
        attempt(&app, &xml).await,
        (303, Some("mallory2@corp.test".into()))
    );

    // The reviewer's attack and its variants: the first Attribute renamed
    // in its start and end tags; nobody may be signed in, admin least of all.
    for (i, c) in UNICODE_SPACES.iter().enumerate() {
        for name in [
            format!("saml:Attribute{c}x"),
            format!("saml:Attribute{c}"),
            format!("saml{c}x:Attribute"),
        ] {
            let signed = signer.sign(&template(&acs, &audience, &format!("a-{i}"), &attrs));
            let edited = rename_first_attribute(&signed, &name);
            // Prefix edits need the prefix declared to be well-formed at all.
            let edited = if name.starts_with("saml:") {
                edited
            } else {
                edited.replacen(
                    "<saml:Assertion ",
                    &format!("<saml:Assertion xmlns:saml{c}x=\"{ASSERTION_NS}\" "),
                    1,
                )
            };
            let (status, who) = attempt(&app, &edited).await;
            let u = *c as u32;
            assert_eq!(status, 401, "U+{u:04X} in {name:?} was accepted");
            assert_eq!(who, None, "U+{u:04X} in {name:?} signed someone in");
            // Why: a name character is now covered by the digest; any other
            // makes the message ill-formed.
            let ev = &app.audit(&token, "action=sso.login&limit=1").await[0];
            let (reason, msg) = (
                ev["details"]["reason"].as_str().unwrap_or(""),
                ev["details"]["message"].as_str().unwrap_or(""),
            );
            if matches!(c, '\u{1680}' | '\u{180E}') {
                assert_eq!(reason, "bad_signature", "U+{u:04X} {name:?}: {msg}");
                assert!(msg.contains("digest"), "U+{u:04X} {name:?}: {msg}");
            } else {
                assert_eq!(reason, "malformed_response", "U+{u:04X} {name:?}: {msg}");
            }
        }
    }
}

/// Finding 11: SignedInfo is verified first; an edited digest value or
/// InclusiveNamespaces list fails as a bad signature before any digest is
/// computed, and only a genuine SignedInfo leads to the digest check.
#[test]
fn signed_info_is_verified_before_any_digest_work() {
    let signer = Signer::new();
    let cert = xmldsig::parse_certificate(&signer.cert_pem).unwrap();
    let now = real_now();
    let verify = |xml: &str| -> Result<(), String> {
        let doc = xmldsig::parse(xml)?;
        let a = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "Assertion")
            .unwrap();
        xmldsig::verify_enveloped(&doc, a, std::slice::from_ref(&cert), false, now, 0).map(|_| ())
    };
    let attrs = [("email", "mallory2@corp.test")];
    let xml = signer.sign(&template("https://sp/acs", "https://sp/md", "s1", &attrs));
    verify(&xml).unwrap();

    // Content changed: SignedInfo verifies, then the digest says so.
    let e = verify(&xml.replace("mallory2@", "mallory3@")).unwrap_err();
    assert!(e.contains("digest"), "{e}");

    // SignedInfo changed (digest value; inclusive prefixes; both with the
    // content changed to match): refused as a bad signature, first.
    let dv_at = xml.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
    let mut forged = xml.clone();
    forged.replace_range(dv_at..dv_at + 4, "AAAA");
    let e = verify(&forged).unwrap_err();
    assert!(e.contains("does not verify"), "{e}");
    let e = verify(
        &xml.replace("PrefixList=\"xs\"", "PrefixList=\"xs xsi saml\"")
            .replace("mallory2@", "mallory3@"),
    )
    .unwrap_err();
    assert!(e.contains("does not verify"), "{e}");

    // Only the two transforms, exclusive C14N, one InclusiveNamespaces.
    for (from, to, words) in [
        (
            "xml-exc-c14n#\"><ec:",
            "xml-exc-c14n#WithComments\"><ec:",
            "does not verify",
        ),
        (
            "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
            "",
            "transforms",
        ),
        (
            "PrefixList=\"xs\"/>",
            "PrefixList=\"xs\"/><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"xsi\"/>",
            "InclusiveNamespaces",
        ),
        (
            "xmldsig#enveloped-signature\"/>",
            "xmldsig#enveloped-signature\"/><ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/>",
            "transforms",
        ),
    ] {
        assert!(xml.contains(from), "{from}");
        let e = verify(&xml.replacen(from, to, 1)).unwrap_err();
        assert!(e.contains(words), "{from} → {to}: {e}");
    }
}

/// Exclusive C14N straight from the signed documents: every Unicode space
/// in an element name, prefix or attribute name either makes the document
/// ill-formed or is part of the canonical name (so the digest covers it).
#[test]
fn unicode_whitespace_in_names_is_canonicalized_or_refused() {
    for c in UNICODE_SPACES {
        for xml in [
            format!(
                r#"<r><saml:Attribute{c}x xmlns:saml="urn:s" Name="email">v</saml:Attribute{c}x></r>"#
            ),
            format!(r#"<r><a{c}b x="1">v</a{c}b></r>"#),
            format!(r#"<r><a N{c}ame="email">v</a></r>"#),
            format!(r#"<r xmlns:p{c}q="urn:p"><p{c}q:a>v</p{c}q:a></r>"#),
        ] {
            let Ok(doc) = xmldsig::parse(&xml) else {
                continue; // not a name character: ill-formed, refused by the parser
            };
            let out = xmldsig::exc_c14n(&doc, doc.root_element(), None, C14n::default())
                .unwrap_or_else(|e| panic!("{xml:?}: {e}"));
            let inner = doc.root_element().first_element_child().unwrap();
            assert!(
                out.contains(inner.tag_name().name()),
                "U+{:04X}: {out:?} lost the name {:?}",
                *c as u32,
                inner.tag_name().name()
            );
            for a in inner.attributes() {
                assert!(out.contains(a.name()), "{out:?} lost {:?}", a.name());
            }
        }
    }
}

/// The corpus case, as tests/c14n_corpus/cases.json lists it.
#[derive(serde::Deserialize)]
struct Case {
    name: String,
    file: String,
    apex: usize,
    comments: bool,
    inclusive: Vec<String>,
    /// Refused on purpose (by our parser or canonicalizer): words of the error.
    refused: Option<String>,
}

/// Our canonical form of a corpus case (the parser without our message
/// limits, which refuse comments and PIs before any C14N).
fn ours(dir: &Path, case: &Case) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(dir.join(&case.file)).map_err(|e| e.to_string())?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => "the document has a DTD".to_string(),
        e => format!("not well-formed: {e}"),
    })?;
    let apex = doc
        .descendants()
        .filter(|n| n.is_element())
        .nth(case.apex)
        .ok_or("no such element")?;
    xmldsig::exc_c14n(
        &doc,
        apex,
        None,
        C14n {
            with_comments: case.comments,
            inclusive: &case.inclusive,
        },
    )
    .map(String::into_bytes)
}

#[test]
fn exclusive_c14n_agrees_with_libxml2_on_the_corpus() {
    use base64::Engine;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/c14n_corpus");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the differential C14N test needs the test venv with lxml: run scripts/test.sh"
    );
    let out = Command::new(&python)
        .arg(dir.join("reference_c14n.py"))
        .arg(dir.join("cases.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reference_c14n.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    let (mut agreed, mut refused) = (0, 0);
    for case in &cases {
        let theirs = &reference[&case.name];
        let mine = ours(&dir, case);
        match (&case.refused, &mine) {
            (Some(words), Err(e)) if e.contains(words.as_str()) => {
                refused += 1;
                continue;
            }
            (Some(words), _) => {
                failures.push(format!(
                    "{}: expected a refusal ({words}), got {mine:?}",
                    case.name
                ));
                continue;
            }
            (None, _) => {}
        }
        match (mine, theirs.get("ok").and_then(Value::as_str)) {
            (Ok(m), Some(t)) => {
                let t = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
                if m == t {
                    agreed += 1;
                } else {
                    failures.push(format!(
                        "{} ({}):\n  ours:    {}\n  libxml2: {}",
                        case.name,
                        theirs["oracle"],
                        String::from_utf8_lossy(&m),
                        String::from_utf8_lossy(&t)
                    ));
                }
            }
            (m, _) => failures.push(format!("{}: ours {m:?}, libxml2 {theirs}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("c14n corpus: {agreed} agree byte for byte, {refused} refused on purpose");
}
