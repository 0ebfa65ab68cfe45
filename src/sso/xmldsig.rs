//! XML signatures as SAML and WS-Federation use them, verified strictly and
//! written here because no pure-Rust XML-DSig crate is solid yet (DESIGN.md):
//! parsing without DTDs, entities or processing instructions, with size,
//! node and depth limits and unique IDs; exclusive C14N 1.0 (with or
//! without comments, with `InclusiveNamespaces`) built from the parser's own
//! names and checked by parsing its output again, so the digest covers
//! exactly what callers read; and one enveloped signature over the very
//! element that carries it, RSA-SHA256/384/512 (SHA-1 only when allowed),
//! SignedInfo verified before any digest work, against the configured
//! certificates only — a certificate inside the message is never trusted.
//! Callers use exactly the element whose signature verified: the defence
//! against signature wrapping.

use roxmltree::{Document, Node, NodeType};

use crate::crypto;

pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

pub const MAX_BYTES: usize = 512 * 1024;
const MAX_NODES: u32 = 20_000;
const MAX_DEPTH: usize = 40;

/// Attributes that carry element IDs in SAML 2.0, SAML 1.1 and WS-Trust.
const ID_ATTRS: &[&str] = &["ID", "AssertionID", "ResponseID", "Id"];

/// Parses a message: no DTD (so no entity expansion beyond XML's own), no
/// processing instructions or comments, bounded in size, nodes and depth,
/// and every ID unique (two elements with one ID is a wrapping attempt).
pub fn parse(xml: &str) -> Result<Document<'_>, String> {
    super::xml_budget::check(xml).map_err(|r| r.message().to_string())?;
    if xml.len() > MAX_BYTES {
        return Err(format!("the message is larger than {MAX_BYTES} bytes"));
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..Default::default()
    };
    let doc = Document::parse_with_options(xml, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => {
            "the message has a DTD (refused: entity attacks)".to_string()
        }
        other => format!("the message is not well-formed XML: {other}"),
    })?;
    let mut ids = std::collections::HashSet::new();
    for n in doc.descendants() {
        match n.node_type() {
            NodeType::PI => return Err("the message has a processing instruction".into()),
            NodeType::Comment => {
                return Err("the message has an XML comment (refused: comment injection)".into());
            }
            NodeType::Element => {
                if n.ancestors().count() > MAX_DEPTH {
                    return Err("the message is nested too deeply".into());
                }
                for a in ID_ATTRS {
                    if let Some(v) = n.attribute(*a)
                        && !ids.insert(v.to_string())
                    {
                        return Err(format!(
                            "the ID {} occurs twice (signature wrapping)",
                            super::quoted(v)
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(doc)
}

/// The largest canonical form computed (exclusive C14N repeats namespace
/// declarations on every element that uses them, so it can outgrow its input).
pub const MAX_CANONICAL: usize = 2 * MAX_BYTES;
/// Real IdPs name a handful (`xs xsi saml`).
const MAX_INCLUSIVE: usize = 64;

/// XML's own whitespace (`S` in the XML 1.0 grammar), the only characters
/// that can end a name inside a tag. Not `char::is_whitespace`: U+1680,
/// U+2000–U+200A, U+3000 and others are whitespace to Rust but legal name
/// characters to XML, and cutting a name there hides the rest of it.
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits on XML whitespace only (a `PrefixList`, a base64 value).
fn xml_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_xml_space).filter(|t| !t.is_empty())
}

/// Whether a namespace name starts with a URI scheme (`urn:`, `http:`…).
fn is_absolute_uri(uri: &str) -> bool {
    uri.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Splits a QName into (prefix, local part).
fn split_qname(qname: &str) -> (Option<&str>, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    }
}

/// A namespace as the parser reports it, the empty name being none.
fn ns_of(uri: Option<&str>) -> Option<&str> {
    uri.filter(|u| !u.is_empty())
}

/// The element's QName exactly as written, and its prefix. The parser keeps
/// only the expanded name, so the QName is read at the element's own range
/// and then must agree with the parser: the local part is the parser's local
/// name, the prefix binds the parser's namespace, and the end tag repeats it.
/// Anything else is refused, never canonicalized by a different reading.
fn element_qname<'a, 'i: 'a>(
    doc: &'a Document<'i>,
    n: Node<'a, 'i>,
) -> Result<(Option<&'i str>, &'i str), String> {
    let input = doc.input_text();
    let range = n.range();
    let tag = input
        .get(range.clone())
        .and_then(|t| t.strip_prefix('<'))
        .ok_or("an element's position is not a tag")?;
    let end = tag
        .find(|c: char| is_xml_space(c) || c == '/' || c == '>')
        .unwrap_or(tag.len());
    let qname = &tag[..end];
    let (prefix, local) = split_qname(qname);
    if local != n.tag_name().name() || prefix == Some("") {
        return Err(format!(
            "the element name {} is not the name the parser read ({})",
            super::quoted(qname),
            super::quoted(n.tag_name().name())
        ));
    }
    let bound = ns_of(n.lookup_namespace_uri(prefix));
    if bound != ns_of(n.tag_name().namespace()) || (prefix.is_some() && bound.is_none()) {
        return Err(format!(
            "the element {} is not in the namespace the parser read",
            super::quoted(qname)
        ));
    }
    if !tag.ends_with("/>") {
        let close = tag.rfind("</").ok_or("an element has no end tag")?;
        let rest = tag[close + 2..]
            .strip_suffix('>')
            .ok_or("an element's end tag is malformed")?;
        if rest.trim_end_matches(is_xml_space) != qname {
            return Err(format!(
                "the end tag of {} is not its start tag's name",
                super::quoted(qname)
            ));
        }
    }
    Ok((prefix, qname))
}

/// An attribute's (prefix, QName) as written, checked against the parser
/// like an element's.
fn attr_qname<'a, 'i: 'a>(
    doc: &'a Document<'i>,
    n: Node<'a, 'i>,
    a: &roxmltree::Attribute<'a, 'i>,
) -> Result<(Option<&'i str>, &'i str), String> {
    let qname = doc
        .input_text()
        .get(a.range_qname())
        .ok_or("an attribute's position is not in the message")?;
    let (prefix, local) = split_qname(qname);
    let bound = match prefix {
        None => None,
        Some("xml") => Some(XML_NS),
        Some("") => None,
        Some(p) => ns_of(n.lookup_namespace_uri(Some(p))),
    };
    if local != a.name() || bound != ns_of(a.namespace()) || (prefix.is_some() && bound.is_none()) {
        return Err(format!(
            "the attribute name {} is not the name the parser read ({})",
            super::quoted(qname),
            super::quoted(a.name())
        ));
    }
    Ok((prefix, qname))
}

fn escape_text(s: &str, out: &mut String) {
    if !s.bytes().any(|b| matches!(b, b'&' | b'<' | b'>' | b'\r')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    if !s
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'"' | b'\t' | b'\n' | b'\r'))
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// How to canonicalize: exclusive C14N 1.0, with or without comments, and
/// the `InclusiveNamespaces` prefixes (`#default` for the default namespace).
#[derive(Debug, Clone, Copy, Default)]
pub struct C14n<'s> {
    pub with_comments: bool,
    pub inclusive: &'s [String],
}

/// Exclusive XML canonicalization 1.0 of `apex`'s subtree, leaving out
/// `exclude` (the enveloped signature). Built from the parser's own names,
/// values and positions; then the canonical form is parsed again and must
/// describe exactly the tree the parser gave (names, namespaces, attributes,
/// text, in order), so what is digested is what the caller reads — a name,
/// value or node the canonical form would not reflect refuses the document.
pub fn exc_c14n(
    doc: &Document<'_>,
    apex: Node<'_, '_>,
    exclude: Option<Node<'_, '_>>,
    opts: C14n<'_>,
) -> Result<String, String> {
    let mut out = String::with_capacity(4096);
    // Namespaces rendered by output ancestors: (prefix, uri), innermost last.
    let mut rendered: Vec<(Option<&str>, &str)> = Vec::new();
    c14n_node(doc, apex, exclude, opts, &mut rendered, &mut out, 0)?;
    check_round_trip(apex, exclude, opts.with_comments, &out)?;
    Ok(out)
}

fn c14n_node<'a, 'i: 'a>(
    doc: &'a Document<'i>,
    n: Node<'a, 'i>,
    exclude: Option<Node<'_, '_>>,
    opts: C14n<'_>,
    rendered: &mut Vec<(Option<&'a str>, &'a str)>,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    if exclude.is_some_and(|x| x == n) {
        return Ok(());
    }
    if out.len() > MAX_CANONICAL {
        return Err(format!(
            "the canonical form is larger than {MAX_CANONICAL} bytes"
        ));
    }
    if depth > MAX_DEPTH * 4 {
        return Err("the message is nested too deeply".into());
    }
    match n.node_type() {
        NodeType::Text => escape_text(n.text().unwrap_or(""), out),
        NodeType::Comment if opts.with_comments => {
            out.push_str("<!--");
            out.push_str(n.text().unwrap_or(""));
            out.push_str("-->");
        }
        NodeType::PI => {
            if let Some(pi) = n.pi() {
                out.push_str("<?");
                out.push_str(pi.target);
                if let Some(v) = pi.value.filter(|v| !v.is_empty()) {
                    out.push(' ');
                    out.push_str(v);
                }
                out.push_str("?>");
            }
        }
        NodeType::Element => {
            let (own, qname) = element_qname(doc, n)?;
            let mut attrs: Vec<(&str, &str, &str, &str)> = Vec::new();
            // Prefixes this element visibly uses, plus the inclusive ones in scope.
            let mut used: Vec<Option<&'a str>> = vec![own];
            for a in n.attributes() {
                let (prefix, q) = attr_qname(doc, n, &a)?;
                if prefix.is_some() {
                    used.push(prefix);
                }
                attrs.push((ns_of(a.namespace()).unwrap_or(""), a.name(), q, a.value()));
            }
            for p in opts.inclusive {
                if p == "#default" {
                    used.push(None);
                } else if let Some(ns) = n.namespaces().find(|ns| ns.name() == Some(p.as_str())) {
                    used.push(ns.name());
                }
            }
            used.sort();
            used.dedup();
            let mut decls: Vec<(Option<&'a str>, &'a str)> = Vec::new();
            for p in used {
                if p == Some("xml") {
                    continue;
                }
                let uri = n.lookup_namespace_uri(p).unwrap_or("");
                let current = rendered
                    .iter()
                    .rev()
                    .find(|(rp, _)| *rp == p)
                    .map(|(_, u)| *u);
                let needed = match (p, current) {
                    // An empty default namespace is declared only to undo one.
                    (None, None) => !uri.is_empty(),
                    (_, Some(c)) => c != uri,
                    (Some(_), None) => true,
                };
                if needed {
                    if !uri.is_empty() && !is_absolute_uri(uri) {
                        return Err(format!(
                            "the namespace {} is a relative URI, which C14N refuses",
                            super::quoted(uri)
                        ));
                    }
                    decls.push((p, uri));
                }
            }
            attrs.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
            out.push('<');
            out.push_str(qname);
            let mark = rendered.len();
            for (p, uri) in &decls {
                match p {
                    None => out.push_str(" xmlns=\""),
                    Some(p) => {
                        out.push_str(" xmlns:");
                        out.push_str(p);
                        out.push_str("=\"");
                    }
                }
                escape_attr(uri, out);
                out.push('"');
                rendered.push((*p, uri));
            }
            for (_, _, q, v) in &attrs {
                out.push(' ');
                out.push_str(q);
                out.push_str("=\"");
                escape_attr(v, out);
                out.push('"');
            }
            out.push('>');
            for c in n.children() {
                c14n_node(doc, c, exclude, opts, rendered, out, depth + 1)?;
            }
            rendered.truncate(mark);
            out.push_str("</");
            out.push_str(qname);
            out.push('>');
        }
        _ => {}
    }
    Ok(())
}

/// One step of a tree walk, as the caller of the parser sees it.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Start {
        ns: Option<&'a str>,
        name: &'a str,
        attrs: Vec<(Option<&'a str>, &'a str, &'a str)>,
    },
    End,
    Text(String),
    Comment(&'a str),
    Pi(&'a str, &'a str),
}

/// The walk of `n`'s subtree without `exclude`, adjacent text joined.
fn steps<'a>(
    n: Node<'a, '_>,
    exclude: Option<Node<'_, '_>>,
    with_comments: bool,
    out: &mut Vec<Step<'a>>,
) {
    if exclude.is_some_and(|x| x == n) {
        return;
    }
    match n.node_type() {
        NodeType::Element => {
            let mut attrs: Vec<_> = n
                .attributes()
                .map(|a| (ns_of(a.namespace()), a.name(), a.value()))
                .collect();
            attrs.sort();
            out.push(Step::Start {
                ns: ns_of(n.tag_name().namespace()),
                name: n.tag_name().name(),
                attrs,
            });
            for c in n.children() {
                steps(c, exclude, with_comments, out);
            }
            out.push(Step::End);
        }
        NodeType::Text => {
            let t = n.text().unwrap_or("");
            match out.last_mut() {
                _ if t.is_empty() => {}
                Some(Step::Text(s)) => s.push_str(t),
                _ => out.push(Step::Text(t.to_string())),
            }
        }
        NodeType::Comment if with_comments => out.push(Step::Comment(n.text().unwrap_or(""))),
        NodeType::PI => {
            if let Some(pi) = n.pi() {
                out.push(Step::Pi(pi.target, pi.value.unwrap_or("")));
            }
        }
        _ => {}
    }
}

/// The canonical form, parsed again, must walk exactly like the original.
fn check_round_trip(
    apex: Node<'_, '_>,
    exclude: Option<Node<'_, '_>>,
    with_comments: bool,
    canonical: &str,
) -> Result<(), String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES.saturating_mul(2),
        ..Default::default()
    };
    let again = Document::parse_with_options(canonical, opts)
        .map_err(|e| format!("the canonical form does not parse again ({e}): refused"))?;
    let (mut want, mut got) = (Vec::new(), Vec::new());
    steps(apex, exclude, with_comments, &mut want);
    steps(again.root_element(), None, with_comments, &mut got);
    if want != got {
        let at = want
            .iter()
            .zip(&got)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(got.len()));
        let show = |s: Option<&Step<'_>>| {
            let d = format!("{s:?}");
            d.chars().take(200).collect::<String>()
        };
        return Err(format!(
            "the canonical form does not describe the message as parsed (at step {at}: \
             {} canonicalizes as {}): refused",
            show(want.get(at)),
            show(got.get(at))
        ));
    }
    Ok(())
}

/// The one child element of `n` named `{ns}name`; more than one is refused.
pub fn only_child<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Result<Option<Node<'a, 'i>>, String> {
    let mut it = n.children().filter(|c| {
        c.is_element() && c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name
    });
    let first = it.next();
    if it.next().is_some() {
        return Err(format!("<{name}> occurs more than once"));
    }
    Ok(first)
}

fn required<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Result<Node<'a, 'i>, String> {
    only_child(n, ns, name)?.ok_or_else(|| format!("<{name}> is missing"))
}

/// All text of an element (every text node, so a split value cannot hide).
pub fn text_of(n: Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect::<String>()
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let clean: String = xml_tokens(s).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|_| "a base64 value in the signature does not decode".to_string())
}

/// A signing certificate of the identity provider.
#[derive(Clone)]
pub struct SigningCert {
    /// The RSA public key (PKCS#1) from the certificate.
    pub public_key: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub subject: String,
}

/// Reads a PEM certificate (or the bare base64 of one, as metadata carries it).
pub fn parse_certificate(pem: &str) -> Result<SigningCert, String> {
    use x509_cert::der::Decode;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = b64(&body).map_err(|_| "the certificate is not PEM or base64".to_string())?;
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let spki = &tbs.subject_public_key_info;
    if spki.algorithm.oid.to_string() != "1.2.840.113549.1.1.1" {
        return Err("the certificate's key is not RSA".into());
    }
    let public_key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the certificate's key does not parse")?
        .to_vec();
    let when = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
    Ok(SigningCert {
        public_key,
        not_before: when(&tbs.validity.not_before),
        not_after: when(&tbs.validity.not_after),
        subject: tbs.subject.to_string(),
    })
}

/// What a verified signature used (for audit details).
#[derive(Debug, Clone)]
pub struct Verified {
    pub algorithm: &'static str,
}

/// Verifies the enveloped `<ds:Signature>` child of `el` against the
/// certificates (valid at `now`, give or take `skew` seconds before their
/// start, tried in the order given). The reference must point at `el`
/// itself by its ID, with exactly the enveloped-signature and exclusive C14N
/// transforms. SignedInfo's signature is checked first: nothing the
/// signature does not cover (the reference's transforms and their
/// `InclusiveNamespaces`) drives any digest work before it verified.
pub fn verify_enveloped(
    doc: &Document<'_>,
    el: Node<'_, '_>,
    certs: &[SigningCert],
    allow_sha1: bool,
    now: i64,
    skew: i64,
) -> Result<Verified, String> {
    let sig = required(el, DSIG, "Signature")?;
    let si = required(sig, DSIG, "SignedInfo")?;
    let parts: Vec<Node> = si.children().filter(|c| c.is_element()).collect();
    let [cm, sm, reference] = parts.as_slice() else {
        return Err(
            "SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference".into(),
        );
    };
    for (node, name) in [
        (cm, "CanonicalizationMethod"),
        (sm, "SignatureMethod"),
        (reference, "Reference"),
    ] {
        if node.tag_name().namespace() != Some(DSIG) || node.tag_name().name() != name {
            return Err(
                if name == "Reference" && node.tag_name().name() == "Reference" {
                    "the signature has more than one reference".into()
                } else {
                    format!(
                        "SignedInfo holds <{}> where <{name}> belongs",
                        node.tag_name().name()
                    )
                },
            );
        }
    }
    let (si_comments, si_inclusive) = c14n_method(*cm, "canonicalization")?;
    let (alg, name): (&'static aws_lc_rs::signature::RsaParameters, &'static str) =
        match sm.attribute("Algorithm").unwrap_or("") {
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => (
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                "rsa-sha256",
            ),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => (
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA384,
                "rsa-sha384",
            ),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => (
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA512,
                "rsa-sha512",
            ),
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1" if allow_sha1 => (
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                "rsa-sha1",
            ),
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1" => {
                return Err(
                    "the signature uses SHA-1 (rsa-sha1), which this connection does not allow"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "signature algorithm {} is not accepted",
                    super::quoted(other)
                ));
            }
        };
    let id = ID_ATTRS
        .iter()
        .find_map(|a| el.attribute(*a))
        .ok_or("the signed element has no ID")?;
    if reference.attribute("URI") != Some(&format!("#{id}")) {
        return Err(format!(
            "the signature references {}, not the element that carries it ({})",
            super::quoted(reference.attribute("URI").unwrap_or("")),
            super::quoted(&format!("#{id}"))
        ));
    }
    // Exactly: Transforms (enveloped-signature, then exclusive C14N),
    // DigestMethod, DigestValue.
    let rparts: Vec<Node> = reference.children().filter(|c| c.is_element()).collect();
    let [ts, dm, dv] = rparts.as_slice() else {
        return Err(
            "the reference must hold Transforms, DigestMethod and DigestValue, in that order"
                .into(),
        );
    };
    for (node, name) in [
        (ts, "Transforms"),
        (dm, "DigestMethod"),
        (dv, "DigestValue"),
    ] {
        if node.tag_name().namespace() != Some(DSIG) || node.tag_name().name() != name {
            return Err(
                "the reference must hold Transforms, DigestMethod and DigestValue, in that order"
                    .into(),
            );
        }
    }
    let transforms: Vec<Node> = ts.children().filter(|c| c.is_element()).collect();
    let bad_transforms =
        || "the reference must use the enveloped-signature and exclusive C14N transforms";
    let [t1, t2] = transforms.as_slice() else {
        return Err(bad_transforms().into());
    };
    for t in [t1, t2] {
        if t.tag_name().namespace() != Some(DSIG) || t.tag_name().name() != "Transform" {
            return Err(bad_transforms().into());
        }
    }
    match t1.attribute("Algorithm").unwrap_or("") {
        ENVELOPED if !t1.children().any(|c| c.is_element()) => {}
        ENVELOPED => return Err(bad_transforms().into()),
        other if [EXC_C14N, EXC_C14N_COMMENTS].contains(&other) => {
            return Err(bad_transforms().into());
        }
        other => {
            return Err(format!(
                "transform {} is not accepted",
                super::quoted(other)
            ));
        }
    }
    let (comments, inclusive) = c14n_method(*t2, "transform")?;
    let digest_alg = match dm.attribute("Algorithm").unwrap_or("") {
        "http://www.w3.org/2001/04/xmlenc#sha256" => &aws_lc_rs::digest::SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => &aws_lc_rs::digest::SHA384,
        "http://www.w3.org/2001/04/xmlenc#sha512" => &aws_lc_rs::digest::SHA512,
        "http://www.w3.org/2000/09/xmldsig#sha1" if allow_sha1 => {
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY
        }
        "http://www.w3.org/2000/09/xmldsig#sha1" => {
            return Err("the digest uses SHA-1, which this connection does not allow".into());
        }
        other => {
            return Err(format!(
                "digest algorithm {} is not accepted",
                super::quoted(other)
            ));
        }
    };
    let expected = b64(&text_of(*dv))?;
    let value = b64(&text_of(required(sig, DSIG, "SignatureValue")?))?;
    let usable: Vec<&SigningCert> = certs
        .iter()
        .filter(|c| c.not_before <= now + skew && now < c.not_after)
        .collect();
    if usable.is_empty() {
        return Err("no configured IdP certificate is valid now (expired or not yet valid)".into());
    }
    // 1. SignedInfo, signed by a configured key.
    let signed_info = exc_c14n(
        doc,
        si,
        None,
        C14n {
            with_comments: si_comments,
            inclusive: &si_inclusive,
        },
    )?;
    let signed = usable.iter().any(|c| {
        aws_lc_rs::signature::UnparsedPublicKey::new(alg, &c.public_key)
            .verify(signed_info.as_bytes(), &value)
            .is_ok()
    });
    if !signed {
        return Err("the signature does not verify with any configured IdP certificate".into());
    }
    // 2. Only now the digest of the element, as the signed transforms say.
    let canonical = exc_c14n(
        doc,
        el,
        Some(sig),
        C14n {
            with_comments: comments,
            inclusive: &inclusive,
        },
    )?;
    let actual = aws_lc_rs::digest::digest(digest_alg, canonical.as_bytes());
    if !crypto::ct_eq(actual.as_ref(), &expected) {
        return Err("the digest does not match: the signed element was changed".into());
    }
    Ok(Verified { algorithm: name })
}

/// An exclusive C14N method (a `CanonicalizationMethod` or a `Transform`):
/// whether with comments, and its `InclusiveNamespaces` prefixes. Any other
/// algorithm, or any other child, is refused.
fn c14n_method(m: Node<'_, '_>, what: &str) -> Result<(bool, Vec<String>), String> {
    let comments = match m.attribute("Algorithm").unwrap_or("") {
        EXC_C14N => false,
        EXC_C14N_COMMENTS => true,
        other => {
            return Err(format!(
                "{what} {} is not accepted (only exclusive C14N)",
                super::quoted(other)
            ));
        }
    };
    let kids: Vec<Node> = m.children().filter(|c| c.is_element()).collect();
    let inclusive = match kids.as_slice() {
        [] => Vec::new(),
        [i] if i.tag_name().namespace() == Some(EXC_C14N)
            && i.tag_name().name() == "InclusiveNamespaces"
            && !i.children().any(|c| c.is_element()) =>
        {
            let mut list: Vec<String> = xml_tokens(i.attribute("PrefixList").unwrap_or(""))
                .map(str::to_string)
                .collect();
            list.sort();
            list.dedup();
            if list.len() > MAX_INCLUSIVE {
                return Err(format!(
                    "the InclusiveNamespaces list names more than {MAX_INCLUSIVE} prefixes"
                ));
            }
            list
        }
        _ => {
            return Err(format!(
                "the exclusive C14N {what} may hold only one InclusiveNamespaces"
            ));
        }
    };
    Ok((comments, inclusive))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, inclusive: &[&str]) -> String {
        let doc = parse(xml).unwrap();
        let inc: Vec<String> = inclusive.iter().map(|s| s.to_string()).collect();
        exc_c14n(
            &doc,
            doc.root_element(),
            None,
            C14n {
                with_comments: false,
                inclusive: &inc,
            },
        )
        .unwrap()
    }

    #[test]
    fn exclusive_c14n_renders_only_used_namespaces_sorted() {
        // Unused declarations vanish, attributes sort by (namespace, name),
        // empty elements get end tags, and values are escaped.
        assert_eq!(
            c14n(
                r#"<a:e xmlns:a="urn:a" xmlns:b="urn:b" xmlns:z="urn:z" z:y="1" b="2" a="&amp;&quot;"><c/></a:e>"#,
                &[]
            ),
            r#"<a:e xmlns:a="urn:a" xmlns:z="urn:z" a="&amp;&quot;" b="2" z:y="1"><c></c></a:e>"#
        );
        // A child does not repeat what its output ancestor declared; a
        // redeclared default is undone with xmlns="".
        assert_eq!(
            c14n(
                r#"<r xmlns="urn:d"><p:x xmlns:p="urn:p"><y xmlns=""/></p:x></r>"#,
                &[]
            ),
            r#"<r xmlns="urn:d"><p:x xmlns:p="urn:p"><y xmlns=""></y></p:x></r>"#
        );
        // The inclusive prefix list keeps a declaration that is not used.
        assert_eq!(
            c14n(r#"<e xmlns:k="urn:k" xmlns:u="urn:u">t&lt;</e>"#, &["k"]),
            r#"<e xmlns:k="urn:k">t&lt;</e>"#
        );
    }

    /// Expected outputs computed by libxml2 (lxml `method="c14n", exclusive=True`),
    /// an independent implementation; the first is RFC 3741's own example (2.2).
    const VECTORS: &[(&str, &str, &[&str], &str)] = &[
        (
            r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n0:local>"#,
            "elem2",
            &[],
            r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#,
        ),
        (
            r#"<n2:pdu xmlns:n1="http://example.com" xmlns:n2="http://foo.example" xml:lang="fr" xml:space="retain"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n2:pdu>"#,
            "elem2",
            &[],
            r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#,
        ),
        (
            r#"<r xmlns="urn:d" xmlns:a="urn:a"><a:x b="1" a:c="2" xmlns:z="urn:z"><y xmlns=""><z:w/></y></a:x></r>"#,
            "r",
            &[],
            r#"<r xmlns="urn:d"><a:x xmlns:a="urn:a" b="1" a:c="2"><y xmlns=""><z:w xmlns:z="urn:z"></z:w></y></a:x></r>"#,
        ),
        (
            r#"<r xmlns="urn:d" xmlns:a="urn:a"><a:x b="1" a:c="2" xmlns:z="urn:z"><y xmlns=""><z:w/></y></a:x></r>"#,
            "x",
            &[],
            r#"<a:x xmlns:a="urn:a" b="1" a:c="2"><y><z:w xmlns:z="urn:z"></z:w></y></a:x>"#,
        ),
        (
            r#"<e xmlns:k="urn:k" xmlns:u="urn:u" xmlns="urn:def"><f k:a="&#x9;tab&#xA;nl&#xD;cr &amp; &lt; &gt; &quot;">t&#xD;&amp;&lt;&gt;"'<![CDATA[<cdata&>]]></f></e>"#,
            "e",
            &["u"],
            r#"<e xmlns="urn:def" xmlns:u="urn:u"><f xmlns:k="urn:k" k:a="&#x9;tab&#xA;nl&#xD;cr &amp; &lt; > &quot;">t&#xD;&amp;&lt;&gt;"'&lt;cdata&amp;&gt;</f></e>"#,
        ),
        (
            r#"<e xmlns:k="urn:k" xmlns:u="urn:u" xmlns="urn:def"><f><g/></f></e>"#,
            "f",
            &["#default", "k"],
            r#"<f xmlns="urn:def" xmlns:k="urn:k"><g></g></f>"#,
        ),
        (
            r#"<a:e xmlns:a="urn:a" xmlns:b="urn:b" b:z="1" a:z="2" z="3" b:a="4"><a:e2 xmlns:a="urn:a2"/></a:e>"#,
            "e",
            &[],
            r#"<a:e xmlns:a="urn:a" xmlns:b="urn:b" z="3" a:z="2" b:a="4" b:z="1"><a:e2 xmlns:a="urn:a2"></a:e2></a:e>"#,
        ),
        (
            r#"<s:Envelope xmlns:s="urn:s" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Body><v xsi:type="xs:string" xmlns:xs="http://www.w3.org/2001/XMLSchema">x</v>
  <w>  spaced  </w></s:Body></s:Envelope>"#,
            "Body",
            &[],
            r#"<s:Body xmlns:s="urn:s"><v xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">x</v>
  <w>  spaced  </w></s:Body>"#,
        ),
    ];

    #[test]
    fn exclusive_c14n_matches_libxml2_vectors() {
        for (xml, apex, inclusive, want) in VECTORS {
            let doc = parse(xml).unwrap();
            let node = doc
                .descendants()
                .find(|n| n.is_element() && n.tag_name().name() == *apex)
                .unwrap();
            let inc: Vec<String> = inclusive.iter().map(|s| s.to_string()).collect();
            let opts = C14n {
                with_comments: false,
                inclusive: &inc,
            };
            assert_eq!(exc_c14n(&doc, node, None, opts).unwrap(), *want, "{xml}");
        }
    }

    #[test]
    fn names_end_only_at_xml_whitespace() {
        // U+1680 is whitespace to Rust and a name character to XML: the old
        // reading cut the name there and hid the rest from the digest.
        let xml = "<saml:A xmlns:saml=\"urn:s\"><saml:Attribute\u{1680}x Name=\"email\">v</saml:Attribute\u{1680}x></saml:A>";
        assert_eq!(c14n(xml, &[]), xml);
        // The safety net: a canonical form that would not say what the parser
        // read (here, the old cut name) is refused.
        let doc = parse(xml).unwrap();
        let e = check_round_trip(
            doc.root_element(),
            None,
            false,
            r#"<saml:A xmlns:saml="urn:s"><saml:Attribute Name="email">v</saml:Attribute></saml:A>"#,
        )
        .unwrap_err();
        assert!(e.contains("does not describe"), "{e}");
        // Names the parser reads differently from their bytes are refused.
        assert!(parse("<:a/>").is_err() || c14n_err("<:a/>").contains("parser"));
    }

    fn c14n_err(xml: &str) -> String {
        let doc = parse(xml).unwrap();
        exc_c14n(&doc, doc.root_element(), None, C14n::default()).unwrap_err()
    }

    #[test]
    fn hostile_documents_are_refused() {
        assert!(
            parse(r#"<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>"#)
                .unwrap_err()
                .contains("DTD")
        );
        assert!(parse("<r><?pi x?></r>").unwrap_err().contains("processing"));
        assert!(
            parse("<r><n>a<!---->b</n></r>")
                .unwrap_err()
                .contains("comment")
        );
        assert!(
            parse(r#"<r><a ID="x"/><b ID="x"/></r>"#)
                .unwrap_err()
                .contains("twice")
        );
        let deep = format!("{}{}", "<a>".repeat(60), "</a>".repeat(60));
        assert!(parse(&deep).unwrap_err().contains("deeply"));
        assert_eq!(
            text_of(parse("<n>a<b>c</b>d</n>").unwrap().root_element()),
            "acd"
        );
    }
}
