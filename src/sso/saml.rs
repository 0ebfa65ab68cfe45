//! SAML 2.0 service provider: SP metadata, SP-initiated sign-in (an
//! HTTP-Redirect AuthnRequest, signed with the SP's own key on connections
//! that ask for it), IdP metadata import, and the HTTP-POST
//! assertion consumer service for SP- and IdP-initiated responses. Checks:
//! the signature (`xmldsig`) on the Response and/or the one Assertion, which
//! must cover the assertion used; Issuer, Destination, Recipient, Audience,
//! InResponseTo, NotBefore / NotOnOrAfter with the connection's clock skew,
//! and a replay cache of assertion IDs until they expire.

use std::sync::Arc;

use roxmltree::Node;

use super::xml_budget;
use super::xmldsig::{self, SigningCert, only_child, text_of};
use super::{Connection, Failure, Finished, Identity, Pending, Protocol};
use crate::audit::Source;
use crate::clock::{Timestamp, parse_time, rfc3339};
use crate::crypto;
use crate::error::{Error, Result};
use crate::service::Service;
use crate::store::{Reader, Table};

pub const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// Attribute names that carry the e-mail address or the display name.
const EMAIL_ATTRS: &[&str] = &[
    "email",
    "mail",
    "emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
];
const NAME_ATTRS: &[&str] = &[
    "displayName",
    "name",
    "cn",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
];

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SP metadata document to upload to the IdP (with the request-signing
/// certificate when the connection signs its AuthnRequests).
pub fn sp_metadata(svc: &Service, conn: &Connection) -> Result<String> {
    let sp = super::sp_values(svc, &conn.id);
    let key = if conn.sign_requests {
        let (_, cert) = sp_signing_key(svc)?;
        let b64: String = cert.lines().filter(|l| !l.starts_with("-----")).collect();
        format!(
            r#"
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{}"><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            xmldsig::DSIG
        )
    } else {
        String::new()
    };
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="{METADATA}" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="true" protocolSupportEnumeration="{PROTOCOL}">{key}
    <md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{POST_BINDING}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = xml_escape(&sp.sp_entity_id),
        acs = xml_escape(&sp.acs_url),
        signed = conn.sign_requests,
    ))
}

const SP_KEY: &[u8] = b"saml_sp_signing_key";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSpKey {
    /// PKCS#8, base64url (sealed with the secrets table).
    pkcs8: String,
    cert_pem: String,
}

/// The SP's AuthnRequest signing key (RSA-2048, PKCS#8) and its self-signed
/// certificate, created at first use and kept sealed in the secrets table.
pub fn sp_signing_key(svc: &Service) -> Result<(Vec<u8>, String)> {
    let decode = |k: StoredSpKey| -> Result<(Vec<u8>, String)> {
        let der =
            crypto::b64url_decode(&k.pkcs8).ok_or_else(|| Error::Integrity("SP key".into()))?;
        Ok((der, k.cert_pem))
    };
    if let Some(k) = svc
        .store
        .read()?
        .get::<StoredSpKey>(Table::Secrets, SP_KEY)?
    {
        return decode(k);
    }
    let mut tx = svc.store.write()?;
    if let Some(k) = tx.get::<StoredSpKey>(Table::Secrets, SP_KEY)? {
        return decode(k);
    }
    use aws_lc_rs::encoding::AsDer;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|e| Error::internal_caused("SP key", e))?;
    let der = pair
        .as_der()
        .map_err(|e| Error::internal_caused("SP key", e))?
        .as_ref()
        .to_vec();
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_slice()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| Error::internal_caused("SP key", e))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::internal_caused("SP certificate", e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Gatehouse SAML service provider");
    let at = |t: Timestamp| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .map_err(|e| Error::internal_caused("SP certificate time", e))
    };
    let now = svc.now();
    params.not_before = at(now - 86_400)?;
    params.not_after = at(now + 10 * 365 * 86_400)?;
    let cert = params
        .self_signed(&signer)
        .map_err(|e| Error::internal_caused("SP certificate", e))?;
    let stored = StoredSpKey {
        pkcs8: crypto::b64url(&der),
        cert_pem: cert.pem(),
    };
    tx.put(Table::Secrets, SP_KEY, &stored)?;
    tx.commit()?;
    decode(stored)
}

/// Signs an HTTP-Redirect query (`SAMLRequest=…&SigAlg=…`) with RSA-SHA256.
fn sign_query(svc: &Service, query: &str) -> Result<String> {
    use base64::Engine;
    let (der, _) = sp_signing_key(svc)?;
    let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| Error::internal_caused("SP key", e))?;
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        query.as_bytes(),
        &mut sig,
    )
    .map_err(|e| Error::internal_caused("signing the AuthnRequest", e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sig))
}

/// What IdP metadata says: entity ID, HTTP-Redirect SSO URL, signing certificates.
#[derive(Debug, Clone, PartialEq)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub certificates: Vec<String>,
}

pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata> {
    let bad = |m: String| Error::invalid("metadata_xml", m);
    let doc = xmldsig::parse(xml).map_err(bad)?;
    let root = doc.root_element();
    let ed = if root.tag_name().name() == "EntityDescriptor" {
        root
    } else {
        root.descendants()
            .find(|n| {
                n.is_element()
                    && n.tag_name().name() == "EntityDescriptor"
                    && n.children()
                        .any(|c| c.tag_name().name() == "IDPSSODescriptor")
            })
            .ok_or_else(|| bad("no EntityDescriptor with an IDPSSODescriptor".into()))?
    };
    let entity_id = ed
        .attribute("entityID")
        .ok_or_else(|| bad("the EntityDescriptor has no entityID".into()))?
        .to_string();
    let idp = ed
        .children()
        .find(|c| {
            c.is_element()
                && c.tag_name().namespace() == Some(METADATA)
                && c.tag_name().name() == "IDPSSODescriptor"
        })
        .ok_or_else(|| bad("no IDPSSODescriptor: is this the IdP's metadata?".into()))?;
    let sso_url = idp
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "SingleSignOnService")
        .find(|c| c.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|c| c.attribute("Location"))
        .ok_or_else(|| bad("no SingleSignOnService with the HTTP-Redirect binding".into()))?
        .to_string();
    let certificates: Vec<String> = idp
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "KeyDescriptor")
        .filter(|k| k.attribute("use").is_none_or(|u| u == "signing"))
        .flat_map(|k| {
            k.descendants()
                .filter(|n| n.is_element() && n.tag_name().name() == "X509Certificate")
                .map(|n| text_of(n).split_whitespace().collect::<String>())
                .collect::<Vec<_>>()
        })
        .map(|b64| pem_of(&b64))
        .collect();
    if certificates.is_empty() {
        return Err(bad("no signing certificate in the IdP's metadata".into()));
    }
    Ok(IdpMetadata {
        entity_id,
        sso_url,
        certificates,
    })
}

pub(crate) fn pem_of(b64: &str) -> String {
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Fills the issuer, SSO URL and certificates of `input` from its SAML or
/// WS-Federation metadata (the uploaded XML, or fetched from the URL) where
/// they were not given.
pub async fn import_metadata(svc: &Service, input: &mut super::ConnectionInput) -> Result<()> {
    let xml = match (input.metadata_xml.take(), input.metadata_url.take()) {
        (Some(x), _) if !x.trim().is_empty() => x,
        (_, Some(u)) if !u.trim().is_empty() => {
            let url = super::check_url("metadata_url", &u)?;
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| Error::internal_caused("http client", e))?;
            let resp = client.get(&url).send().await.map_err(|e| {
                Error::invalid(
                    "metadata_url",
                    format!(
                        "could not fetch the metadata from {url}: {}",
                        super::reach::describe(&e, 10)
                    ),
                )
            })?;
            if !resp.status().is_success() {
                return Err(Error::invalid(
                    "metadata_url",
                    format!("the metadata URL {url} answered HTTP {}", resp.status()),
                ));
            }
            read_bounded(resp).await?
        }
        _ => return Ok(()),
    };
    // Bounded before parsing, and parsed off the async workers.
    let wsfed = input.protocol == Protocol::Wsfed;
    let md = svc
        .xml_pool
        .run(move || {
            xml_budget::check(&xml).map_err(|r| Error::invalid("metadata_xml", r.message()))?;
            if wsfed {
                super::wsfed::parse_federation_metadata(&xml)
            } else {
                parse_idp_metadata(&xml)
            }
        })
        .await??;
    if input.issuer.as_deref().is_none_or(|i| i.trim().is_empty()) {
        input.issuer = Some(md.entity_id);
    }
    if input.sso_url.as_deref().is_none_or(|i| i.trim().is_empty()) {
        input.sso_url = Some(md.sso_url);
    }
    if input.certificates.as_ref().is_none_or(|c| c.is_empty()) {
        input.certificates = Some(md.certificates);
    }
    Ok(())
}

/// The body of a metadata response, refused past the XML size limit
/// without reading further.
async fn read_bounded(mut resp: reqwest::Response) -> Result<String> {
    let max = xml_budget::LIMITS.max_bytes;
    let read_err = |e: reqwest::Error| {
        Error::invalid(
            "metadata_url",
            format!(
                "could not read the metadata: {}",
                super::reach::describe(&e, 10)
            ),
        )
    };
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(read_err)? {
        if body.len() + chunk.len() > max {
            return Err(Error::invalid(
                "metadata_url",
                format!("the metadata is larger than {max} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| Error::invalid("metadata_url", "the metadata is not UTF-8"))
}

/// Parses the connection's certificates, newest first.
pub fn certificates(conn: &Connection) -> std::result::Result<Vec<SigningCert>, String> {
    let mut certs = conn
        .certificates
        .iter()
        .map(|p| xmldsig::parse_certificate(p))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    certs.sort_by_key(|c| std::cmp::Reverse(c.not_before));
    Ok(certs)
}

fn deflate_b64(xml: &str) -> Result<String> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(xml.as_bytes())
        .and_then(|_| enc.finish())
        .map(|bytes| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .map_err(|e| Error::internal_caused("deflate", e))
}

/// Starts an SP-initiated sign-in (or an admin's test): the IdP URL with a
/// deflated AuthnRequest whose ID the answer must carry as InResponseTo, and
/// the value of the binding cookie (the sign-in with that ID, sealed;
/// nothing is stored) so that only the browser that started the sign-in
/// can finish it.
pub fn start(
    svc: &Service,
    id: &str,
    rd: &str,
    test_by: Option<&crate::identity::User>,
    src: &Source,
) -> Result<(String, String)> {
    let conn = super::startable(svc, id, Protocol::Saml, test_by.is_some())?;
    let sp = super::sp_values(svc, id);
    let request_id = format!("_{}", super::new_state(svc)?);
    let now = svc.now();
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="{request_id}" Version="2.0" IssueInstant="{t}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="{POST_BINDING}"><saml:Issuer>{entity}</saml:Issuer><samlp:NameIDPolicy Format="{EMAIL_FORMAT}" AllowCreate="true"/></samlp:AuthnRequest>"#,
        t = rfc3339(now),
        dest = xml_escape(&conn.sso_url),
        acs = xml_escape(&sp.acs_url),
        entity = xml_escape(&sp.sp_entity_id),
    );
    let pending = Pending {
        state: String::new(),
        connection: conn.id.clone(),
        nonce: String::new(),
        pkce_verifier: String::new(),
        rd: rd.to_string(),
        test_by: test_by.map(|u| u.id.clone()),
        created_at: now,
        client: String::new(),
    };
    let cookie = super::seal_pending(svc, Protocol::Saml, &request_id, pending, src)?;
    let sep = if conn.sso_url.contains('?') { '&' } else { '?' };
    let mut query = format!("SAMLRequest={}", super::pct(&deflate_b64(&xml)?));
    if conn.sign_requests {
        // The HTTP-Redirect binding signs the query string itself.
        query.push_str(&format!("&SigAlg={}", super::pct(RSA_SHA256)));
        let sig = sign_query(svc, &query)?;
        query.push_str(&format!("&Signature={}", super::pct(&sig)));
    }
    Ok((format!("{}{sep}{query}", conn.sso_url), cookie))
}

pub(crate) fn child<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> std::result::Result<Option<Node<'a, 'i>>, Failure> {
    only_child(n, ns, name).map_err(|m| Failure::new("malformed_response", m))
}

pub(crate) fn time_attr(
    n: Node<'_, '_>,
    name: &str,
) -> std::result::Result<Option<Timestamp>, Failure> {
    match n.attribute(name) {
        None => Ok(None),
        Some(v) => parse_time(v).map(Some).ok_or_else(|| {
            Failure::new(
                "malformed_response",
                format!("{name} {} is not a time", super::quoted(v)),
            )
        }),
    }
}

/// [`acs`] on the XML pool: parsing and signature checks never run on an
/// async worker; a saturated pool answers `Error::Unavailable` (503).
pub async fn acs_pooled(
    svc: &Arc<Service>,
    id: &str,
    saml_response: String,
    browser_state: Option<String>,
    src: Source,
) -> Result<std::result::Result<Finished, Failure>> {
    let (svc2, id) = (svc.clone(), id.to_string());
    svc.xml_pool
        .run(move || acs(&svc2, &id, &saml_response, browser_state.as_deref(), &src))
        .await?
}

/// Consumes a POSTed `SAMLResponse`; `browser_state` is this browser's
/// binding cookie (an answer to a request is accepted only there).
/// `Err` is a failure already audited (and recorded on the connection when
/// an admin was testing).
pub fn acs(
    svc: &Service,
    id: &str,
    saml_response: &str,
    browser_state: Option<&str>,
    src: &Source,
) -> Result<std::result::Result<Finished, Failure>> {
    let conn = super::get(&svc.store.read()?, id)?;
    if conn.protocol != Protocol::Saml {
        return Err(Error::NotFound("connection"));
    }
    let mut pending = None;
    let outcome =
        consume(svc, &conn, saml_response, browser_state, &mut pending).and_then(|ident| {
            match &pending {
                Some(p) => super::finish(svc, &conn, p, ident, src).map_err(Failure::internal)?,
                None => Err(Failure::internal(Error::internal("no pending sign-in"))),
            }
        });
    match outcome {
        Ok(done) => Ok(Ok(done)),
        Err(f) => match super::record_failure(svc, id, pending.as_ref(), &f, src)? {
            Some(tested) => Ok(Ok(tested)),
            None => Ok(Err(f)),
        },
    }
}

fn consume(
    svc: &Service,
    conn: &Connection,
    saml_response: &str,
    browser_state: Option<&str>,
    pending_out: &mut Option<Pending>,
) -> std::result::Result<Identity, Failure> {
    use base64::Engine;
    let malformed = |m: &str| Failure::new("malformed_response", m.to_string());
    let clean: String = saml_response
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if clean.len() > xmldsig::MAX_BYTES * 4 / 3 + 4 {
        return Err(malformed("the SAMLResponse is too large"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|_| malformed("the SAMLResponse is not base64"))?;
    let xml = String::from_utf8(raw).map_err(|_| malformed("the SAMLResponse is not UTF-8"))?;
    xml_budget::check(&xml).map_err(|r| Failure::new(r.reason(), r.message()))?;
    let doc = xmldsig::parse(&xml).map_err(|m| Failure::new("malformed_response", m))?;
    let resp = doc.root_element();
    if resp.tag_name().namespace() != Some(PROTOCOL) || resp.tag_name().name() != "Response" {
        return Err(malformed("the message is not a SAML 2.0 Response"));
    }
    let sp = super::sp_values(svc, &conn.id);
    let now = svc.now();
    let skew = conn.clock_skew_secs;

    // Who asked: an SP-initiated request (its pending entry, spent now) or nobody.
    let in_response_to = resp.attribute("InResponseTo");
    match in_response_to {
        Some(irt) => {
            let p = super::take_bound_pending(svc, Protocol::Saml, irt, browser_state, &conn.id)
                .map_err(|f| {
                if f.reason == "unknown_state" {
                    Failure::new(
                        "unknown_in_response_to",
                        "InResponseTo names no sign-in started here (replayed, expired or forged)",
                    )
                } else {
                    f
                }
            })?;
            *pending_out = Some(p);
        }
        None if conn.allow_idp_initiated => {
            let p = Pending {
                state: String::new(),
                connection: conn.id.clone(),
                nonce: String::new(),
                pkce_verifier: String::new(),
                rd: "/admin".into(),
                test_by: None,
                created_at: now,
                client: String::new(),
            };
            *pending_out = Some(p);
        }
        None => {
            return Err(Failure::new(
                "unsolicited_response",
                "an IdP-initiated (unsolicited) response, which this connection does not allow",
            ));
        }
    };

    let status = child(resp, PROTOCOL, "Status")?
        .and_then(|s| only_child(s, PROTOCOL, "StatusCode").ok().flatten())
        .and_then(|c| c.attribute("Value"));
    if status != Some(SUCCESS) {
        return Err(Failure::new(
            "idp_error",
            format!(
                "the IdP answered with status {}",
                super::quoted(status.unwrap_or("(none)"))
            ),
        ));
    }
    if let Some(iss) = child(resp, ASSERTION, "Issuer")?
        && text_of(iss).trim() != conn.issuer
    {
        return Err(Failure::new(
            "wrong_issuer",
            format!(
                "the Response's issuer is {}, not {:?}",
                super::quoted(text_of(iss).trim()),
                conn.issuer
            ),
        ));
    }
    match resp.attribute("Destination") {
        Some(d) if d == sp.acs_url => {}
        Some(d) => {
            return Err(Failure::new(
                "wrong_destination",
                format!(
                    "the Response is addressed to {}, not this ACS ({})",
                    super::quoted(d),
                    sp.acs_url
                ),
            ));
        }
        None => {
            return Err(Failure::new(
                "wrong_destination",
                "the Response has no Destination",
            ));
        }
    }
    if doc
        .descendants()
        .any(|n| n.is_element() && n.tag_name().name() == "EncryptedAssertion")
    {
        return Err(Failure::new(
            "encrypted_assertion",
            "encrypted assertions are not supported yet; turn assertion encryption off at the IdP",
        ));
    }
    // Exactly one assertion, a direct child of the Response: any other is a wrapping attempt.
    let assertions: Vec<Node> = doc
        .descendants()
        .filter(|n| {
            n.is_element()
                && n.tag_name().namespace() == Some(ASSERTION)
                && n.tag_name().name() == "Assertion"
        })
        .collect();
    let [assertion] = assertions.as_slice() else {
        return Err(Failure::new(
            "assertion_count",
            format!(
                "the Response carries {} assertions; exactly one is accepted",
                assertions.len()
            ),
        ));
    };
    let assertion = *assertion;
    if assertion.parent() != Some(resp) {
        return Err(Failure::new(
            "assertion_position",
            "the assertion is not a direct child of the Response (signature wrapping)",
        ));
    }

    // Signatures: at least one, every one present valid, and one covering the assertion.
    let certs = certificates(conn).map_err(|m| Failure::new("bad_certificate", m))?;
    let resp_signed = child(resp, xmldsig::DSIG, "Signature")?.is_some();
    let assertion_signed = child(assertion, xmldsig::DSIG, "Signature")?.is_some();
    if !resp_signed && !assertion_signed {
        return Err(Failure::new(
            "unsigned",
            "neither the Response nor the Assertion is signed",
        ));
    }
    for (signed, el, what) in [
        (resp_signed, resp, "Response"),
        (assertion_signed, assertion, "Assertion"),
    ] {
        if signed {
            xmldsig::verify_enveloped(&doc, el, &certs, conn.allow_sha1, now, skew)
                .map_err(|m| Failure::new("bad_signature", format!("{what} signature: {m}")))?;
        }
    }

    saml2_assertion(
        svc,
        conn,
        assertion,
        &Expect {
            audience: &sp.sp_entity_id,
            recipient: Some(&sp.acs_url),
            in_response_to,
        },
    )
}

/// What a SAML 2.0 assertion must be addressed to.
pub(crate) struct Expect<'a> {
    pub audience: &'a str,
    /// The ACS (SAML) or reply URL (WS-Fed) the bearer confirmation names.
    pub recipient: Option<&'a str>,
    pub in_response_to: Option<&'a str>,
}

/// Checks a SAML 2.0 assertion whose signature (or its Response's) was
/// verified: issuer, bearer confirmation, times, audience, replay; then reads
/// the identity from NameID and attributes.
pub(crate) fn saml2_assertion(
    svc: &Service,
    conn: &Connection,
    assertion: Node<'_, '_>,
    expect: &Expect<'_>,
) -> std::result::Result<Identity, Failure> {
    let malformed = |m: &str| Failure::new("malformed_response", m.to_string());
    let now = svc.now();
    let skew = conn.clock_skew_secs;
    // The assertion itself.
    let a_issuer = child(assertion, ASSERTION, "Issuer")?
        .map(|i| text_of(i).trim().to_string())
        .unwrap_or_default();
    if a_issuer != conn.issuer {
        return Err(Failure::new(
            "wrong_issuer",
            format!(
                "the assertion's issuer is {}, not {:?}",
                super::quoted(&a_issuer),
                conn.issuer
            ),
        ));
    }
    let subject = child(assertion, ASSERTION, "Subject")?
        .ok_or_else(|| malformed("the assertion has no Subject"))?;
    let name_id = child(subject, ASSERTION, "NameID")?
        .ok_or_else(|| malformed("the Subject has no NameID"))?;
    if name_id.children().any(|c| c.is_element()) {
        return Err(malformed("the NameID has child elements"));
    }
    let name_id_value = text_of(name_id).trim().to_string();
    if name_id_value.is_empty() {
        return Err(malformed("the NameID is empty"));
    }
    let bearer = subject
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "SubjectConfirmation")
        .find(|c| c.attribute("Method") == Some(BEARER))
        .ok_or_else(|| malformed("no bearer SubjectConfirmation"))?;
    let scd = child(bearer, ASSERTION, "SubjectConfirmationData")?
        .ok_or_else(|| malformed("no SubjectConfirmationData"))?;
    if let Some(r) = expect.recipient
        && scd.attribute("Recipient") != Some(r)
    {
        return Err(Failure::new(
            "wrong_recipient",
            format!(
                "the assertion's Recipient is {}, not this ACS",
                super::quoted(scd.attribute("Recipient").unwrap_or(""))
            ),
        ));
    }
    if scd.attribute("InResponseTo") != expect.in_response_to {
        return Err(Failure::new(
            "in_response_to_mismatch",
            "the assertion's InResponseTo differs from the Response's",
        ));
    }
    let scd_until = time_attr(scd, "NotOnOrAfter")?
        .ok_or_else(|| malformed("the SubjectConfirmationData has no NotOnOrAfter"))?;
    if now >= scd_until + skew {
        return Err(Failure::new(
            "expired",
            format!("the assertion expired at {}", rfc3339(scd_until)),
        ));
    }
    let conditions = child(assertion, ASSERTION, "Conditions")?
        .ok_or_else(|| malformed("the assertion has no Conditions"))?;
    let until = check_conditions(
        conditions,
        "AudienceRestriction",
        expect.audience,
        Some(scd_until),
        now,
        skew,
    )?;
    let assertion_id = assertion
        .attribute("ID")
        .ok_or_else(|| malformed("the assertion has no ID"))?;
    remember_assertion(svc, &conn.issuer, assertion_id, until.max(scd_until) + skew)?;

    // Attributes.
    let mut attrs: Vec<(String, Vec<String>)> = Vec::new();
    for st in assertion
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "AttributeStatement")
    {
        for a in st
            .children()
            .filter(|c| c.is_element() && c.tag_name().name() == "Attribute")
        {
            // Either name may be what the admin maps (`Name` or `FriendlyName`).
            let names = [a.attribute("Name"), a.attribute("FriendlyName")];
            push_attribute(
                &mut attrs,
                a,
                names.into_iter().flatten().map(str::to_string),
            );
        }
    }
    Ok(identity(
        conn,
        name_id_value,
        name_id.attribute("Format") == Some(EMAIL_FORMAT),
        &attrs,
    ))
}

/// Checks `<Conditions>` (SAML 2.0, or SAML 1.1 with `restriction` =
/// `AudienceRestrictionCondition`): NotBefore and NotOnOrAfter with `skew`
/// (`fallback_until` when NotOnOrAfter is absent; without one it is
/// required), and `audience` among the Audience values of every
/// restriction element. Returns the end of validity.
pub(crate) fn check_conditions(
    conditions: Node<'_, '_>,
    restriction: &str,
    audience: &str,
    fallback_until: Option<Timestamp>,
    now: Timestamp,
    skew: i64,
) -> std::result::Result<Timestamp, Failure> {
    if let Some(nb) = time_attr(conditions, "NotBefore")?
        && now + skew < nb
    {
        return Err(Failure::new(
            "not_yet_valid",
            format!("the assertion is valid only from {}", rfc3339(nb)),
        ));
    }
    let until = time_attr(conditions, "NotOnOrAfter")?
        .or(fallback_until)
        .ok_or_else(|| Failure::new("malformed_response", "the Conditions have no NotOnOrAfter"))?;
    if now >= until + skew {
        return Err(Failure::new(
            "expired",
            format!("the assertion expired at {}", rfc3339(until)),
        ));
    }
    // Every restriction must be met (SAML core 2.5.1.4; SAML 1.1 2.3.2.1.3):
    // each one names us among its audiences. None at all is refused too.
    let restrictions: Vec<Vec<String>> = conditions
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == restriction)
        .map(|r| {
            r.children()
                .filter(|c| c.is_element() && c.tag_name().name() == "Audience")
                .map(|a| text_of(a).trim().to_string())
                .collect()
        })
        .collect();
    if restrictions.is_empty() {
        return Err(Failure::new(
            "wrong_audience",
            format!("the assertion names no audience, so it is not for this SP ({audience})"),
        ));
    }
    if let Some(unmet) = restrictions
        .iter()
        .find(|auds| !auds.iter().any(|a| a == audience))
    {
        let what = if restrictions.len() > 1 {
            "one of its audience restrictions is"
        } else {
            "the assertion is"
        };
        return Err(Failure::new(
            "wrong_audience",
            format!(
                "{what} for {}, not this SP ({audience})",
                super::quoted(&unmet.join(", "))
            ),
        ));
    }
    Ok(until)
}

/// Records an attribute's values under each of its names.
pub(crate) fn push_attribute(
    attrs: &mut Vec<(String, Vec<String>)>,
    a: Node<'_, '_>,
    names: impl Iterator<Item = String>,
) {
    let values: Vec<String> = a
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "AttributeValue")
        .map(|v| text_of(v).trim().to_string())
        .collect();
    for n in names {
        attrs.push((n, values.clone()));
    }
}

/// The identity in a verified assertion: e-mail from an e-mail-format
/// subject or the usual attributes, display name, and role values.
pub(crate) fn identity(
    conn: &Connection,
    subject: String,
    subject_is_email: bool,
    attrs: &[(String, Vec<String>)],
) -> Identity {
    let first = |names: &[&str]| {
        attrs
            .iter()
            .find(|(n, v)| names.iter().any(|x| x.eq_ignore_ascii_case(n)) && !v.is_empty())
            .map(|(_, v)| v[0].clone())
    };
    let email = if subject_is_email {
        Some(subject.clone())
    } else {
        first(EMAIL_ATTRS)
    };
    let roles: Vec<String> = attrs
        .iter()
        .find(|(n, _)| *n == conn.role_attribute)
        .map(|(_, v)| v.iter().take(200).cloned().collect())
        .unwrap_or_default();
    Identity {
        subject,
        // SAML has no "verified" flag: an address the IdP signs is its word.
        email_verified: email.as_ref().map(|_| true),
        email,
        name: first(NAME_ATTRS),
        roles,
        hosted_domain: None,
    }
}

/// Records an assertion ID until it expires; a second use is a replay.
pub(crate) fn remember_assertion(
    svc: &Service,
    issuer: &str,
    id: &str,
    until: Timestamp,
) -> std::result::Result<(), Failure> {
    let key = crypto::sha256(format!("{issuer}\0{id}").as_bytes());
    let mut tx = svc.store.write().map_err(Failure::internal)?;
    if let Some(t) = tx
        .get::<Timestamp>(Table::SsoReplay, &key)
        .map_err(Failure::internal)?
        && t > svc.now()
    {
        return Err(Failure::new(
            "replayed_assertion",
            "this assertion was already used",
        ));
    }
    tx.put(Table::SsoReplay, &key, &until)
        .map_err(Failure::internal)?;
    tx.commit().map_err(Failure::internal)
}

/// Deletes replay-cache entries past their assertion's expiry.
pub fn purge_replay_cache(svc: &Service) -> Result<usize> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let old: Vec<Vec<u8>> = tx
        .scan::<Timestamp>(Table::SsoReplay, b"")?
        .into_iter()
        .filter(|(_, t)| *t <= now)
        .map(|(k, _)| k)
        .collect();
    for k in &old {
        tx.delete(Table::SsoReplay, k)?;
    }
    tx.commit()?;
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 13: with two restrictions, both must name us (they were OR-ed).
    #[test]
    fn every_audience_restriction_must_hold() {
        let check = |restriction: &str, ns: &str, body: &str| {
            let xml = format!(
                r#"<c:Conditions xmlns:c="{ns}" NotOnOrAfter="2030-01-01T00:00:00Z">{body}</c:Conditions>"#
            );
            let doc = roxmltree::Document::parse(&xml).unwrap();
            check_conditions(doc.root_element(), restriction, "https://sp/me", None, 0, 0)
                .map(|_| ())
                .map_err(|f| (f.reason, f.message))
        };
        for (restriction, ns) in [
            ("AudienceRestriction", ASSERTION),
            (
                "AudienceRestrictionCondition",
                "urn:oasis:names:tc:SAML:1.0:assertion",
            ),
        ] {
            let r = |auds: &[&str]| {
                let a: String = auds
                    .iter()
                    .map(|a| format!("<c:Audience>{a}</c:Audience>"))
                    .collect();
                format!("<c:{restriction}>{a}</c:{restriction}>")
            };
            let ok = |body: String| assert_eq!(check(restriction, ns, &body), Ok(()), "{body}");
            ok(r(&["https://sp/me"]));
            ok(r(&["https://other", "https://sp/me"]));
            ok(format!(
                "{}{}",
                r(&["https://sp/me"]),
                r(&["https://sp/me", "x"])
            ));
            for body in [
                format!("{}{}", r(&["https://sp/me"]), r(&["https://other"])),
                format!("{}{}", r(&["https://other"]), r(&["https://sp/me"])),
                format!("{}{}", r(&["https://sp/me"]), r(&[])),
                r(&["https://other"]),
                String::new(),
            ] {
                let (reason, msg) = check(restriction, ns, &body).unwrap_err();
                assert_eq!(reason, "wrong_audience", "{body}");
                assert!(msg.contains("this SP"), "{msg}");
            }
        }
    }

    #[test]
    fn idp_metadata_gives_entity_sso_url_and_certificates() {
        let xml = format!(
            r#"<md:EntityDescriptor xmlns:md="{METADATA}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/meta">
<md:IDPSSODescriptor protocolSupportEnumeration="{PROTOCOL}">
<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
MIIB
BBBB</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleSignOnService Binding="{POST_BINDING}" Location="https://idp.example/post"/>
<md:SingleSignOnService Binding="{REDIRECT_BINDING}" Location="https://idp.example/redirect"/>
</md:IDPSSODescriptor></md:EntityDescriptor>"#
        );
        let md = parse_idp_metadata(&xml).unwrap();
        assert_eq!(md.entity_id, "https://idp.example/meta");
        assert_eq!(md.sso_url, "https://idp.example/redirect");
        assert_eq!(md.certificates.len(), 1);
        assert!(md.certificates[0].contains("MIIBBBBB"));
        assert!(parse_idp_metadata("<x/>").is_err());
    }
}
