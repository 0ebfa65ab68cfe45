//! WS-Federation passive requestor: federation metadata import, the
//! `wa=wsignin1.0` redirect with `wtrealm`, `wreply` and `wctx`, and the
//! POSTed `wresult` — an RSTR carrying one SAML 1.1 or SAML 2.0 assertion,
//! whose signature is checked against the metadata's certificates, with the
//! audience (the realm), lifetime and replay checked as for SAML.

use roxmltree::Node;

use super::saml::{self, Expect, child, push_attribute};
use super::xmldsig::{self, text_of};
use super::{Connection, Failure, Finished, Identity, Pending, Protocol};
use crate::audit::Source;
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::service::Service;

const TRUST_2005: &str = "http://schemas.xmlsoap.org/ws/2005/02/trust";
const TRUST_13: &str = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
const SAML1: &str = "urn:oasis:names:tc:SAML:1.0:assertion";
const BEARER1: &str = "urn:oasis:names:tc:SAML:1.0:cm:bearer";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// The realm (`wtrealm`, the assertion's audience) used when none is set.
pub fn default_realm(svc: &Service, id: &str) -> String {
    format!("{}/sso/wsfed/{id}", svc.public_url())
}

/// Entity ID, passive requestor endpoint and signing certificates of a
/// federation metadata document.
pub fn parse_federation_metadata(xml: &str) -> Result<saml::IdpMetadata> {
    let bad = |m: &str| Error::invalid("metadata_xml", m.to_string());
    let doc = xmldsig::parse(xml).map_err(|m| Error::invalid("metadata_xml", m))?;
    let ed = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "EntityDescriptor")
        .ok_or_else(|| bad("no EntityDescriptor"))?;
    let entity_id = ed
        .attribute("entityID")
        .ok_or_else(|| bad("the EntityDescriptor has no entityID"))?
        .to_string();
    let sts = ed
        .children()
        .find(|c| {
            c.is_element()
                && c.tag_name().name() == "RoleDescriptor"
                && c.descendants().any(|d| d.tag_name().name() == "PassiveRequestorEndpoint")
        })
        .ok_or_else(|| bad("no RoleDescriptor with a PassiveRequestorEndpoint: is this WS-Federation metadata?"))?;
    let sso_url = sts
        .descendants()
        .find(|d| d.is_element() && d.tag_name().name() == "PassiveRequestorEndpoint")
        .and_then(|p| {
            p.descendants()
                .find(|d| d.is_element() && d.tag_name().name() == "Address")
        })
        .map(|a| text_of(a).trim().to_string())
        .ok_or_else(|| bad("the PassiveRequestorEndpoint has no Address"))?;
    let certificates: Vec<String> = sts
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "KeyDescriptor")
        .filter(|k| k.attribute("use").is_none_or(|u| u == "signing"))
        .flat_map(|k| {
            k.descendants()
                .filter(|n| n.is_element() && n.tag_name().name() == "X509Certificate")
                .map(|n| saml::pem_of(&text_of(n).split_whitespace().collect::<String>()))
                .collect::<Vec<_>>()
        })
        .collect();
    if certificates.is_empty() {
        return Err(bad("no signing certificate in the federation metadata"));
    }
    Ok(saml::IdpMetadata {
        entity_id,
        sso_url,
        certificates,
    })
}

/// Starts a sign-in (or an admin's test): the IdP URL with `wa=wsignin1.0`
/// and the single-use state in `wctx`, and the value of the binding cookie
/// (the sign-in, sealed; nothing is stored): the answer must bring the state
/// back to the browser whose cookie holds it.
pub fn start(
    svc: &Service,
    id: &str,
    rd: &str,
    test_by: Option<&crate::identity::User>,
    src: &Source,
) -> Result<(String, String)> {
    let conn = super::startable(svc, id, Protocol::Wsfed, test_by.is_some())?;
    let state = super::new_state(svc)?;
    let pending = Pending {
        state: String::new(),
        connection: conn.id.clone(),
        nonce: String::new(),
        pkce_verifier: String::new(),
        rd: rd.to_string(),
        test_by: test_by.map(|u| u.id.clone()),
        created_at: svc.now(),
        client: String::new(),
    };
    let cookie = super::seal_pending(svc, Protocol::Wsfed, &state, pending, src)?;
    let sep = if conn.sso_url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{sep}wa=wsignin1.0&wtrealm={}&wreply={}&wctx={}",
        conn.sso_url,
        super::pct(&conn.realm),
        super::pct(&super::sp_values(svc, id).wsfed_reply_url),
        super::pct(&state)
    );
    Ok((url, cookie))
}

/// The POSTed answer.
pub struct Answer<'a> {
    pub wa: &'a str,
    pub wresult: &'a str,
    pub wctx: &'a str,
    /// This browser's binding cookie: the sign-in it started, sealed.
    pub browser_state: Option<&'a str>,
}

/// [`callback`] on the XML pool (see `saml::acs_pooled`).
pub async fn callback_pooled(
    svc: &std::sync::Arc<Service>,
    id: &str,
    wa: String,
    wresult: String,
    wctx: String,
    browser_state: Option<String>,
    src: Source,
) -> Result<std::result::Result<Finished, Failure>> {
    let (svc2, id) = (svc.clone(), id.to_string());
    svc.xml_pool
        .run(move || {
            let answer = Answer {
                wa: &wa,
                wresult: &wresult,
                wctx: &wctx,
                browser_state: browser_state.as_deref(),
            };
            callback(&svc2, &id, answer, &src)
        })
        .await?
}

/// Consumes a `wresult`. `Err` is a failure already audited (and recorded
/// on the connection when an admin was testing).
pub fn callback(
    svc: &Service,
    id: &str,
    answer: Answer<'_>,
    src: &Source,
) -> Result<std::result::Result<Finished, Failure>> {
    let conn = super::get(&svc.store.read()?, id)?;
    if conn.protocol != Protocol::Wsfed {
        return Err(Error::NotFound("connection"));
    }
    let mut pending = None;
    let outcome = consume(svc, &conn, &answer, &mut pending).and_then(|ident| match &pending {
        Some(p) => super::finish(svc, &conn, p, ident, src).map_err(Failure::internal)?,
        None => Err(Failure::internal(Error::internal("no pending sign-in"))),
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
    answer: &Answer<'_>,
    pending_out: &mut Option<Pending>,
) -> std::result::Result<Identity, Failure> {
    let malformed = |m: &str| Failure::new("malformed_response", m.to_string());
    if answer.wa != "wsignin1.0" {
        return Err(malformed("wa is not wsignin1.0"));
    }
    // Bounded before anything else is done with it.
    super::xml_budget::check(answer.wresult).map_err(|r| Failure::new(r.reason(), r.message()))?;
    *pending_out = Some(super::take_bound_pending(
        svc,
        Protocol::Wsfed,
        answer.wctx,
        answer.browser_state,
        &conn.id,
    )?);
    let doc = xmldsig::parse(answer.wresult).map_err(|m| Failure::new("malformed_response", m))?;
    let root = doc.root_element();
    let is_trust =
        |n: Node<'_, '_>| matches!(n.tag_name().namespace(), Some(TRUST_2005 | TRUST_13));
    let rstr = if is_trust(root) && root.tag_name().name() == "RequestSecurityTokenResponse" {
        root
    } else if is_trust(root) && root.tag_name().name() == "RequestSecurityTokenResponseCollection" {
        let mut it = root.children().filter(|c| c.is_element());
        match (it.next(), it.next()) {
            (Some(r), None)
                if is_trust(r) && r.tag_name().name() == "RequestSecurityTokenResponse" =>
            {
                r
            }
            _ => {
                return Err(malformed(
                    "the collection must hold exactly one RequestSecurityTokenResponse",
                ));
            }
        }
    } else {
        return Err(malformed(
            "wresult is not a WS-Trust RequestSecurityTokenResponse",
        ));
    };
    let now = svc.now();
    let skew = conn.clock_skew_secs;
    // Optional envelope checks: lifetime and the realm it applies to.
    if let Some(lt) = rstr
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "Lifetime")
        && let Some(exp) = lt
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == "Expires")
        && let Some(t) = crate::clock::parse_time(text_of(exp).trim())
        && now >= t + skew
    {
        return Err(Failure::new(
            "expired",
            format!("the token response expired at {}", rfc3339(t)),
        ));
    }
    if let Some(addr) = rstr
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "AppliesTo")
        .and_then(|a| {
            a.descendants()
                .find(|d| d.is_element() && d.tag_name().name() == "Address")
        })
        && text_of(addr).trim() != conn.realm
    {
        return Err(Failure::new(
            "wrong_audience",
            format!(
                "the token applies to {}, not this realm ({})",
                super::quoted(text_of(addr).trim()),
                conn.realm
            ),
        ));
    }
    let rst = rstr
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "RequestedSecurityToken")
        .ok_or_else(|| malformed("no RequestedSecurityToken"))?;
    // Exactly one assertion in the whole message, as the token itself.
    let assertions: Vec<Node> = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Assertion")
        .collect();
    let [assertion] = assertions.as_slice() else {
        return Err(Failure::new(
            "assertion_count",
            format!(
                "the message carries {} assertions; exactly one is accepted",
                assertions.len()
            ),
        ));
    };
    let assertion = *assertion;
    if assertion.parent() != Some(rst) {
        return Err(Failure::new(
            "assertion_position",
            "the assertion is not the requested security token (signature wrapping)",
        ));
    }
    if child(assertion, xmldsig::DSIG, "Signature")?.is_none() {
        return Err(Failure::new("unsigned", "the assertion is not signed"));
    }
    let certs = saml::certificates(conn).map_err(|m| Failure::new("bad_certificate", m))?;
    xmldsig::verify_enveloped(&doc, assertion, &certs, conn.allow_sha1, now, skew)
        .map_err(|m| Failure::new("bad_signature", format!("Assertion signature: {m}")))?;
    let reply = super::sp_values(svc, &conn.id).wsfed_reply_url;
    match assertion.tag_name().namespace() {
        Some(saml::ASSERTION) => saml::saml2_assertion(
            svc,
            conn,
            assertion,
            &Expect {
                audience: &conn.realm,
                recipient: Some(&reply),
                in_response_to: None,
            },
        ),
        Some(SAML1) => saml11_assertion(svc, conn, assertion),
        _ => Err(malformed(
            "the token is neither a SAML 1.1 nor a SAML 2.0 assertion",
        )),
    }
}

/// Checks a verified SAML 1.1 assertion (issuer, times, audience, bearer,
/// replay) and reads the identity from its attribute statement.
fn saml11_assertion(
    svc: &Service,
    conn: &Connection,
    assertion: Node<'_, '_>,
) -> std::result::Result<Identity, Failure> {
    let malformed = |m: &str| Failure::new("malformed_response", m.to_string());
    let now = svc.now();
    let skew = conn.clock_skew_secs;
    let issuer = assertion.attribute("Issuer").unwrap_or("");
    if issuer != conn.issuer {
        return Err(Failure::new(
            "wrong_issuer",
            format!(
                "the assertion's issuer is {}, not {:?}",
                super::quoted(issuer),
                conn.issuer
            ),
        ));
    }
    let conditions = child(assertion, SAML1, "Conditions")?
        .ok_or_else(|| malformed("the assertion has no Conditions"))?;
    let until = saml::check_conditions(
        conditions,
        "AudienceRestrictionCondition",
        &conn.realm,
        None,
        now,
        skew,
    )?;
    let statement = child(assertion, SAML1, "AttributeStatement")?
        .ok_or_else(|| malformed("the assertion has no AttributeStatement"))?;
    let subject = child(statement, SAML1, "Subject")?
        .ok_or_else(|| malformed("the attribute statement has no Subject"))?;
    let bearer = subject
        .descendants()
        .filter(|d| d.is_element() && d.tag_name().name() == "ConfirmationMethod")
        .any(|m| text_of(m).trim() == BEARER1);
    if !bearer {
        return Err(malformed("the subject has no bearer confirmation"));
    }
    let name_id = child(subject, SAML1, "NameIdentifier")?
        .ok_or_else(|| malformed("the Subject has no NameIdentifier"))?;
    let subject_value = text_of(name_id).trim().to_string();
    if subject_value.is_empty() || name_id.children().any(|c| c.is_element()) {
        return Err(malformed(
            "the NameIdentifier is empty or has child elements",
        ));
    }
    let id = assertion
        .attribute("AssertionID")
        .ok_or_else(|| malformed("the assertion has no AssertionID"))?;
    saml::remember_assertion(svc, &conn.issuer, id, until + skew)?;
    let mut attrs = Vec::new();
    for a in statement
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Attribute")
    {
        let name = a.attribute("AttributeName").unwrap_or("").to_string();
        let full = match a.attribute("AttributeNamespace") {
            Some(ns) => format!("{}/{name}", ns.trim_end_matches('/')),
            None => name.clone(),
        };
        push_attribute(&mut attrs, a, [name, full].into_iter());
    }
    Ok(saml::identity(
        conn,
        subject_value,
        name_id.attribute("Format") == Some(EMAIL_FORMAT),
        &attrs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federation_metadata_gives_entity_endpoint_and_certificate() {
        let xml = r#"<EntityDescriptor entityID="https://sts.example/adfs" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
<RoleDescriptor xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" xsi:type="fed:SecurityTokenServiceType">
<KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>MIIC
AAAA</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
<fed:PassiveRequestorEndpoint><EndpointReference xmlns="http://www.w3.org/2005/08/addressing"><Address>https://sts.example/adfs/ls/</Address></EndpointReference></fed:PassiveRequestorEndpoint>
</RoleDescriptor></EntityDescriptor>"#;
        let md = parse_federation_metadata(xml).unwrap();
        assert_eq!(md.entity_id, "https://sts.example/adfs");
        assert_eq!(md.sso_url, "https://sts.example/adfs/ls/");
        assert!(md.certificates[0].contains("MIICAAAA"));
        assert!(parse_federation_metadata("<EntityDescriptor entityID=\"x\"/>").is_err());
    }
}
