//! Fuzzes what an identity provider's message reaches first: the hardened XML
//! parser, exclusive C14N of every element, enveloped-signature verification
//! of every element that carries a signature, and IdP / federation metadata
//! parsing. None may panic, and no input may verify against the fixed
//! certificate (nobody but its holder can sign). Run: `cargo fuzz run saml_xml`
//! (seed corpus: fuzz/corpus/saml_xml).
#![no_main]

use gatehouse::sso::{saml, wsfed, xmldsig};
use libfuzzer_sys::fuzz_target;

const CERT: &str = include_str!("../../tests/peers/certs/valid-until-2027-01-25.pem");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = saml::parse_idp_metadata(text);
    let _ = wsfed::parse_federation_metadata(text);
    let Ok(doc) = xmldsig::parse(text) else {
        return;
    };
    let cert = xmldsig::parse_certificate(CERT).expect("the fixed certificate parses");
    let now = cert.not_before + 1;
    for el in doc.descendants().filter(|n| n.is_element()) {
        let inclusive = ["#default".to_string()];
        let opts = xmldsig::C14n {
            with_comments: false,
            inclusive: &inclusive,
        };
        let _ = xmldsig::exc_c14n(&doc, el, None, opts);
        if el.children().any(|c| c.tag_name().name() == "Signature") {
            assert!(
                xmldsig::verify_enveloped(&doc, el, std::slice::from_ref(&cert), true, now, 0).is_err(),
                "a signature verified without the private key"
            );
        }
    }
});
