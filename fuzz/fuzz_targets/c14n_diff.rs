//! Differential fuzzing of what a signature covers (issue 11, finding 2):
//! the input is a mutation of one signed SAML Response (seed:
//! fuzz/corpus/c14n_diff/signed-response.xml, signed by xmlsec1 with a
//! fuzz-only key whose certificate is fuzz/keys/fuzz-only.cert.pem). If the
//! mutated document still verifies, the assertion's canonical form and every
//! claim the application reads from it (issuer, NameID, subject
//! confirmation, conditions and audiences, attributes with their values)
//! must be exactly the original's; otherwise a signed assertion was edited
//! and the target panics. Run:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run c14n_diff fuzz/corpus/c14n_diff -- -dict=fuzz/c14n_diff.dict`
#![no_main]

use std::sync::OnceLock;

use gatehouse::sso::xmldsig::{self, C14n, SigningCert};
use libfuzzer_sys::fuzz_target;
use roxmltree::{Document, Node};

const CERT: &str = include_str!("../keys/fuzz-only.cert.pem");
const SEED: &str = include_str!("../corpus/c14n_diff/signed-response.xml");
const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// What the application reads from a verified assertion (the same
/// selections src/sso/saml.rs makes, by local name where it does).
#[derive(Debug, PartialEq, Eq)]
struct Claims {
    canonical: String,
    issuer: Vec<String>,
    name_id: Vec<(Option<String>, String)>,
    confirmations: Vec<Vec<(String, String)>>,
    conditions: Vec<Vec<(String, String)>>,
    audiences: Vec<String>,
    attributes: Vec<(Vec<(String, String)>, Vec<String>)>,
}

fn attrs(n: Node<'_, '_>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = n
        .attributes()
        .map(|a| {
            (
                format!("{}|{}", a.namespace().unwrap_or(""), a.name()),
                a.value().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn named<'a, 'i>(n: Node<'a, 'i>, local: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.descendants()
        .filter(move |c| c.is_element() && c.tag_name().name() == local)
}

/// The verified assertion's claims, or None when the document does not verify.
fn claims(text: &str, cert: &SigningCert) -> Option<Claims> {
    let doc: Document = xmldsig::parse(text).ok()?;
    let resp = doc.root_element();
    if resp.tag_name().namespace() != Some(PROTOCOL) || resp.tag_name().name() != "Response" {
        return None;
    }
    let assertions: Vec<Node> = doc
        .descendants()
        .filter(|n| {
            n.is_element()
                && n.tag_name().namespace() == Some(ASSERTION)
                && n.tag_name().name() == "Assertion"
        })
        .collect();
    let [assertion] = assertions.as_slice() else {
        return None;
    };
    let assertion = *assertion;
    if assertion.parent() != Some(resp) {
        return None;
    }
    let now = cert.not_before + 1;
    xmldsig::verify_enveloped(&doc, assertion, std::slice::from_ref(cert), false, now, 0).ok()?;
    let sig = assertion
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "Signature")?;
    let inclusive = ["xs".to_string()];
    let canonical = xmldsig::exc_c14n(
        &doc,
        assertion,
        Some(sig),
        C14n {
            with_comments: false,
            inclusive: &inclusive,
        },
    )
    .ok()?;
    let text_of = xmldsig::text_of;
    Some(Claims {
        canonical,
        issuer: assertion
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "Issuer")
            .map(|i| text_of(i))
            .collect(),
        name_id: named(assertion, "NameID")
            .map(|n| (n.attribute("Format").map(str::to_string), text_of(n)))
            .collect(),
        confirmations: named(assertion, "SubjectConfirmationData")
            .chain(named(assertion, "SubjectConfirmation"))
            .map(attrs)
            .collect(),
        conditions: named(assertion, "Conditions").map(attrs).collect(),
        audiences: named(assertion, "Audience").map(text_of).collect(),
        attributes: named(assertion, "Attribute")
            .map(|a| {
                (
                    attrs(a),
                    a.children()
                        .filter(|c| c.is_element() && c.tag_name().name() == "AttributeValue")
                        .map(text_of)
                        .collect(),
                )
            })
            .collect(),
    })
}

fn setup() -> &'static (SigningCert, Claims) {
    static ORIGINAL: OnceLock<(SigningCert, Claims)> = OnceLock::new();
    ORIGINAL.get_or_init(|| {
        let cert = xmldsig::parse_certificate(CERT).expect("the fuzz certificate parses");
        let original = claims(SEED, &cert).expect("the seed document verifies");
        (cert, original)
    })
}

fuzz_target!(|data: &[u8]| {
    let (cert, original) = setup();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(mutated) = claims(text, cert) {
        // C14N_DIFF_VERBOSE=1 (e.g. with -runs=0 over a corpus) counts the
        // mutations that still verify: each prints one line.
        if std::env::var_os("C14N_DIFF_VERBOSE").is_some() {
            eprintln!("still verifies: {} bytes", text.len());
        }
        assert_eq!(
            &mutated, original,
            "a mutated document still verifies but says something else"
        );
    }
});
