//! The work budget for untrusted XML (SAML responses, WS-Fed results, IdP
//! metadata): a byte scanner that runs before roxmltree and refuses documents
//! whose shape would make parsing expensive, and the bounded pool that runs
//! XML parsing and signature checks off the async workers.
//!
//! Why a pre-scan: roxmltree copies every in-scope namespace into each
//! element that declares one, with a linear duplicate check, so a document
//! with P namespaces in scope costs P² per such element (issue 11, finding
//! 1: 92 KB froze a worker for 10 s); attributes cost A² per element. Its
//! node limit counts neither. The scanner only counts — elements, depth,
//! attributes and `xmlns`/`xmlns:` declarations per element, in scope and in
//! total — while skipping comments, CDATA sections, processing instructions
//! and quoted attribute values; anything it cannot follow (a DTD, an
//! unterminated construct, a stray character in a tag) is refused: when in
//! doubt, it refuses. It is linear in the input and allocates one small stack.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// The limits, far above what real identity providers send.
///
/// Measured maxima (`scripts/bench.sh saml` prints them for the test peers
/// under `xml_budget.shapes`; declarations per element / in scope / in total):
/// - pysaml2 responses (tests/peers/saml_idp.py; Response, Assertion or
///   both signed, 4.7-6.7 KB): 53 elements, depth 7, 4 attributes on an
///   element, declarations 4 / 5 / 8; its metadata: depth 6, 3 / 3 / 3.
/// - npm `wsfed` (SAML 1.1 in an RSTR): depth 8, 5 attributes, 1 / 3 / 3;
///   npm `saml` (SAML 2.0 in an RSTR): depth 8, 3 attributes, 2 / 4 / 5;
///   `wsfed`'s federation metadata: depth 6, 3 attributes, 2 / 4 / 10.
/// - Shibboleth metadata (TestShib's): 6 on the root, 7 / 7 in all, depth 7.
/// - Azure AD responses declare on Response, Issuer, Assertion and
///   Signature (1 / 3 / 4); Okta adds `xmlns:xsi` (and `xs`) on every
///   AttributeValue, so a user with many groups brings one or two
///   declarations per group (Azure stops at 150 groups; Okta sends what the
///   filter lets through); ADFS and Azure federation metadata declare
///   `xmlns:auth` on every offered ClaimType, about 100 in all, 3 / 5 at most.
///
/// The declaration limits are 2 to 3 times the largest counts known
/// (Shibboleth metadata roots with about 11) and 5 times the measured ones,
/// with room for about 1,000 group values; they bound the parser's namespace
/// work by `elements × in scope` and its attribute work by `attributes × per
/// element`. The benchmark (`scripts/bench.sh saml`)
/// prints the cost of documents at every limit against a signed response.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    /// Elements (roxmltree also limits all nodes, text included, to 20,000).
    pub max_elements: usize,
    /// Nesting of elements; the root element is at depth 1.
    pub max_depth: usize,
    /// Attributes on one element, namespace declarations not counted.
    pub max_attributes: usize,
    /// Attributes in the whole document.
    pub max_attributes_total: usize,
    /// Namespace declarations on one element.
    pub max_ns_per_element: usize,
    /// Declarations on an element and all its ancestors (an upper bound of
    /// the namespaces in scope there).
    pub max_ns_in_scope: usize,
    /// Declarations in the whole document.
    pub max_ns_total: usize,
}

pub const LIMITS: Limits = Limits {
    max_bytes: super::xmldsig::MAX_BYTES,
    max_elements: 10_000,
    max_depth: 32,
    max_attributes: 32,
    max_attributes_total: 10_000,
    max_ns_per_element: 24,
    max_ns_in_scope: 32,
    max_ns_total: 2_000,
};

/// No limits: for measuring documents (tests, benchmarks).
pub const UNLIMITED: Limits = Limits {
    max_bytes: usize::MAX,
    max_elements: usize::MAX,
    max_depth: usize::MAX,
    max_attributes: usize::MAX,
    max_attributes_total: usize::MAX,
    max_ns_per_element: usize::MAX,
    max_ns_in_scope: usize::MAX,
    max_ns_total: usize::MAX,
};

/// The audit reason of a document refused by the budget.
pub const REASON: &str = "xml_limits";

/// What a scanned document holds (its maxima).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    pub bytes: usize,
    pub elements: usize,
    pub depth: usize,
    pub attributes: usize,
    pub attributes_total: usize,
    pub ns_per_element: usize,
    pub ns_in_scope: usize,
    pub ns_total: usize,
}

/// Why a document was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over a limit: the document may be well-formed, but too costly.
    OverBudget(String),
    /// Not XML the scanner can follow (so not XML roxmltree would accept
    /// either, or a DTD).
    Malformed(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::OverBudget(m) | Refusal::Malformed(m) => m,
        }
    }
    /// The audit reason: `xml_limits` or `malformed_response`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::OverBudget(_) => REASON,
            Refusal::Malformed(_) => "malformed_response",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Checks `xml` against [`LIMITS`].
pub fn check(xml: &str) -> std::result::Result<Shape, Refusal> {
    scan(xml.as_bytes(), &LIMITS)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

fn find_byte(hay: &[u8], from: usize, b: u8) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&c| c == b)
        .map(|p| from + p)
}

/// Scans `xml` and refuses it at the first limit it passes.
pub fn scan(xml: &[u8], l: &Limits) -> std::result::Result<Shape, Refusal> {
    let over = |m: String| Err(Refusal::OverBudget(m));
    let bad = |m: &str| {
        Err(Refusal::Malformed(format!(
            "the message is not well-formed XML: {m}"
        )))
    };
    let mut s = Shape {
        bytes: xml.len(),
        ..Shape::default()
    };
    if xml.len() > l.max_bytes {
        return over(format!(
            "the message is {} bytes; at most {} are accepted",
            xml.len(),
            l.max_bytes
        ));
    }
    // Declarations on each open element, and their sum (in scope).
    let mut open: Vec<usize> = Vec::new();
    let mut in_scope = 0usize;
    let mut i = 0usize;
    let n = xml.len();
    while let Some(lt) = find_byte(xml, i, b'<') {
        let rest = &xml[lt..];
        if rest.starts_with(b"<!--") {
            let Some(end) = find(xml, lt + 4, b"-->") else {
                return bad("an unterminated comment");
            };
            i = end + 3;
            continue;
        }
        if rest.starts_with(b"<![CDATA[") {
            if open.is_empty() {
                return bad("a CDATA section outside the root element");
            }
            let Some(end) = find(xml, lt + 9, b"]]>") else {
                return bad("an unterminated CDATA section");
            };
            i = end + 3;
            continue;
        }
        if rest.starts_with(b"<!") {
            return Err(Refusal::Malformed(
                "the message has a DTD (refused: entity attacks)".into(),
            ));
        }
        if rest.starts_with(b"<?") {
            let Some(end) = find(xml, lt + 2, b"?>") else {
                return bad("an unterminated processing instruction");
            };
            i = end + 2;
            continue;
        }
        if rest.starts_with(b"</") {
            // An end tag: a name, optional spaces, `>` (no quotes possible).
            let Some(gt) = find_byte(xml, lt + 2, b'>') else {
                return bad("an unterminated end tag");
            };
            if xml[lt + 2..gt]
                .iter()
                .any(|&b| b == b'<' || b == b'"' || b == b'\'')
            {
                return bad("a malformed end tag");
            }
            let Some(d) = open.pop() else {
                return bad("an end tag without its start tag");
            };
            in_scope -= d;
            i = gt + 1;
            continue;
        }
        // A start tag: the name, then attributes up to `>` or `/>`.
        let mut j = lt + 1;
        while j < n
            && !is_space(xml[j])
            && !matches!(xml[j], b'/' | b'>' | b'<' | b'"' | b'\'' | b'=')
        {
            j += 1;
        }
        if j == lt + 1 {
            return bad("a \"<\" that starts no tag");
        }
        s.elements += 1;
        if s.elements > l.max_elements {
            return over(format!(
                "the message has more than {} elements",
                l.max_elements
            ));
        }
        let depth = open.len() + 1;
        s.depth = s.depth.max(depth);
        if depth > l.max_depth {
            return over(format!(
                "elements are nested too deeply (more than {} levels)",
                l.max_depth
            ));
        }
        let (mut attrs, mut decls) = (0usize, 0usize);
        let empty = loop {
            let start = j;
            while j < n && is_space(xml[j]) {
                j += 1;
            }
            match xml.get(j) {
                None => return bad("an unterminated start tag"),
                Some(b'>') => {
                    j += 1;
                    break false;
                }
                Some(b'/') if xml.get(j + 1) == Some(&b'>') => {
                    j += 2;
                    break true;
                }
                _ if j == start => return bad("attributes must be separated by white space"),
                _ => {}
            }
            // An attribute: name S? = S? quoted value.
            let name_start = j;
            while j < n
                && !is_space(xml[j])
                && !matches!(xml[j], b'=' | b'/' | b'>' | b'<' | b'"' | b'\'')
            {
                j += 1;
            }
            let name = &xml[name_start..j];
            if name.is_empty() {
                return bad("a malformed attribute");
            }
            while j < n && is_space(xml[j]) {
                j += 1;
            }
            if xml.get(j) != Some(&b'=') {
                return bad("an attribute without a value");
            }
            j += 1;
            while j < n && is_space(xml[j]) {
                j += 1;
            }
            let q = match xml.get(j) {
                Some(&q @ (b'"' | b'\'')) => q,
                _ => return bad("an attribute value without quotes"),
            };
            let Some(close) = find_byte(xml, j + 1, q) else {
                return bad("an unterminated attribute value");
            };
            if xml[j + 1..close].contains(&b'<') {
                return bad("a \"<\" in an attribute value");
            }
            j = close + 1;
            if name == b"xmlns" || name.starts_with(b"xmlns:") {
                decls += 1;
                s.ns_total += 1;
                s.ns_per_element = s.ns_per_element.max(decls);
                s.ns_in_scope = s.ns_in_scope.max(in_scope + decls);
                if decls > l.max_ns_per_element {
                    return over(format!(
                        "an element declares more than {} namespaces",
                        l.max_ns_per_element
                    ));
                }
                if in_scope + decls > l.max_ns_in_scope {
                    return over(format!(
                        "more than {} namespace declarations are in scope at one element",
                        l.max_ns_in_scope
                    ));
                }
                if s.ns_total > l.max_ns_total {
                    return over(format!(
                        "the message declares more than {} namespaces",
                        l.max_ns_total
                    ));
                }
            } else {
                attrs += 1;
                s.attributes_total += 1;
                s.attributes = s.attributes.max(attrs);
                if attrs > l.max_attributes {
                    return over(format!(
                        "an element has more than {} attributes",
                        l.max_attributes
                    ));
                }
                if s.attributes_total > l.max_attributes_total {
                    return over(format!(
                        "the message has more than {} attributes",
                        l.max_attributes_total
                    ));
                }
            }
        };
        if !empty {
            open.push(decls);
            in_scope += decls;
        }
        i = j;
    }
    if !open.is_empty() {
        return bad("an element is not closed");
    }
    if s.elements == 0 {
        return bad("no element");
    }
    Ok(s)
}

/// A fixed number of permits for XML work on tokio's blocking threads: the
/// async workers never parse or verify XML, and at most `permits` documents
/// are worked on at once. A request that finds every permit taken waits up
/// to `wait`, then is answered 503 with Retry-After.
pub struct Pool {
    permits: Arc<tokio::sync::Semaphore>,
    capacity: usize,
    wait: Duration,
}

/// Seconds a refused caller is told to wait.
pub const RETRY_AFTER_SECS: u64 = 2;

impl Pool {
    /// Half the cores (at least one): the other half keeps the request
    /// workers answering while a flood of documents is checked.
    pub fn new() -> Pool {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Pool::with(cores.div_ceil(2), Duration::from_secs(2))
    }

    pub fn with(permits: usize, wait: Duration) -> Pool {
        Pool {
            permits: Arc::new(tokio::sync::Semaphore::new(permits.max(1))),
            capacity: permits.max(1),
            wait,
        }
    }

    /// How many documents are worked on at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Runs `f` on a blocking thread once a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let permit = match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(Error::internal("the XML pool is closed")),
            Err(_) => {
                tracing::warn!("XML pool saturated: a request was answered 503");
                return Err(Error::Unavailable(format!(
                    "The server is busy checking other sign-in responses; try again in {RETRY_AFTER_SECS} seconds."
                )));
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| Error::internal_caused("XML work failed", e))
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

/// Documents at the limits (the most expensive shapes that pass), for the
/// benchmark (`benches/raw.rs`, `raw xmlbudget`) and the tests.
pub mod samples {
    use super::LIMITS;

    fn decls(prefix: &str, n: usize) -> String {
        (0..n)
            .map(|i| format!(" xmlns:{prefix}{i}='urn:x:{i}'"))
            .collect()
    }

    /// Namespaces: the most declared on the root, the rest of the in-scope
    /// limit but one on its child, every further declaration the total
    /// allows on its own element (the in-scope limit reached
    /// there: the parser copies them all), and the rest of the element
    /// budget named with the prefix the parser finds last in scope.
    pub fn namespaces() -> String {
        let per = LIMITS.max_ns_per_element;
        let inner = LIMITS.max_ns_in_scope - per - 1;
        let mut x = format!("<a0:r{}><b0:c{}>", decls("a", per), decls("b", inner));
        let last = format!("a{}", per - 1);
        let spare = LIMITS.max_ns_total - per - inner;
        for i in 0..spare {
            x.push_str(&format!("<{last}:e {last}:x='1' xmlns:z{i}='u'/>"));
        }
        let rest = LIMITS.max_elements - 2 - spare;
        for _ in 0..rest {
            x.push_str(&format!("<{last}:e {last}:x='1'/>"));
        }
        x.push_str("</b0:c></a0:r>");
        x
    }

    /// Attributes: elements with the most attributes each, until the total,
    /// all prefixed, with long names differing only at the end.
    pub fn attributes() -> String {
        let mut x = format!("<r{}>", decls("p", 8));
        let per = LIMITS.max_attributes;
        for _ in 0..LIMITS.max_attributes_total / per {
            x.push_str("<e");
            for i in 0..per {
                x.push_str(&format!(" p{}:an_attribute_name_{i:02}='v'", i % 8));
            }
            x.push_str("/>");
        }
        x.push_str("</r>");
        x
    }

    /// Depth: chains as deep as allowed until the element limit.
    pub fn depth() -> String {
        let d = LIMITS.max_depth - 1;
        let mut x = String::from("<r>");
        let mut n = 1;
        while n + d <= LIMITS.max_elements {
            x.push_str(&"<e>".repeat(d));
            x.push_str(&"</e>".repeat(d));
            n += d;
        }
        x.push_str("</r>");
        x
    }

    /// Text: character references and escapes up to the size limit.
    pub fn text() -> String {
        let unit = "&#x41;&amp;&lt;";
        let n = (LIMITS.max_bytes - 100) / unit.len();
        format!("<r><t>{}</t></r>", unit.repeat(n))
    }

    pub fn all() -> Vec<(&'static str, String)> {
        vec![
            ("namespaces", namespaces()),
            ("attributes", attributes()),
            ("depth", depth()),
            ("text", text()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(x: &str) -> Shape {
        scan(x.as_bytes(), &UNLIMITED).unwrap()
    }

    fn over(x: &str) -> String {
        match check(x) {
            Err(Refusal::OverBudget(m)) => m,
            other => panic!("not refused as over budget: {other:?}"),
        }
    }

    fn malformed(x: &str) -> String {
        match check(x) {
            Err(Refusal::Malformed(m)) => m,
            other => panic!("not refused as malformed: {other:?}"),
        }
    }

    /// The issue's document: 4,000 declarations on the root, 400 children
    /// declaring one more each.
    pub fn issue_attack() -> String {
        let mut x = String::from("<r");
        for i in 0..4000 {
            x.push_str(&format!(" xmlns:a{i}='u'"));
        }
        x.push('>');
        for _ in 0..400 {
            x.push_str("<b xmlns:c='u'/>");
        }
        x.push_str("</r>");
        x
    }

    #[test]
    fn counts_what_it_sees() {
        let s = shape(
            r#"<?xml version="1.0"?><a xmlns="u1" xmlns:p='u2' x="1"><b p:y="2" z = '3'><c xmlns:q="u3"/></b><d/></a>"#,
        );
        assert_eq!(
            s,
            Shape {
                bytes: s.bytes,
                elements: 4,
                depth: 3,
                attributes: 2,
                attributes_total: 3,
                ns_per_element: 2,
                ns_in_scope: 3,
                ns_total: 3,
            }
        );
    }

    #[test]
    fn in_scope_ends_with_the_element() {
        // Siblings each declaring 2: never more than 2 + the root's 1 in scope.
        let mut x = String::from("<r xmlns:a='u'>");
        for i in 0..10 {
            x.push_str(&format!("<e{i} xmlns:b='u' xmlns:c='u'><f/></e{i}>"));
        }
        x.push_str("</r>");
        let s = shape(&x);
        assert_eq!((s.ns_in_scope, s.ns_total, s.depth), (3, 21, 3));
    }

    #[test]
    fn refuses_the_issue_document() {
        let m = over(&issue_attack());
        assert!(m.contains("declares more than 24 namespaces"), "{m}");
    }

    #[test]
    fn refuses_namespaces_spread_over_elements() {
        // In scope: 20 on the root, 20 on a child (each under the per-element limit).
        let decl = |p: &str| {
            (0..20)
                .map(|i| format!(" xmlns:{p}{i}='u'"))
                .collect::<String>()
        };
        let x = format!("<r{}><c{}/></r>", decl("a"), decl("b"));
        assert!(over(&x).contains("in scope"));
        // In total: many siblings, each with few.
        let mut x = String::from("<r>");
        for _ in 0..401 {
            x.push_str("<c xmlns:a='u' xmlns:b='u' xmlns:c='u' xmlns:d='u' xmlns:e='u'/>");
        }
        x.push_str("</r>");
        assert!(over(&x).contains("declares more than 2000"));
        // Default-namespace declarations count too.
        let x = format!("<r>{}</r>", "<c xmlns='u'/>".repeat(2001));
        assert!(over(&x).contains("declares more than 2000"));
    }

    #[test]
    fn refuses_depth_attributes_and_elements() {
        let x = format!("{}{}", "<a>".repeat(33), "</a>".repeat(33));
        assert!(over(&x).contains("nested too deeply (more than 32"));
        assert!(check(&format!("{}{}", "<a>".repeat(32), "</a>".repeat(32))).is_ok());
        let attrs: String = (0..33).map(|i| format!(" a{i}='v'")).collect();
        assert!(over(&format!("<r{attrs}/>")).contains("more than 32 attributes"));
        let x = format!(
            "<r>{}</r>",
            "<e a='1' b='2' c='3' d='4' e='5'/>".repeat(2001)
        );
        assert!(over(&x).contains("more than 10000 attributes"));
        let x = format!("<r>{}</r>", "<e/>".repeat(10_000));
        assert!(over(&x).contains("more than 10000 elements"));
        let x = format!("<r>{}</r>", " ".repeat(LIMITS.max_bytes));
        assert!(over(&x).contains("bytes"));
    }

    #[test]
    fn declarations_hidden_in_comments_cdata_pis_and_values_are_not_markup() {
        // What is inside them is not counted (roxmltree does not parse it either) ...
        let hidden = "<c xmlns:a='u'/>".repeat(500);
        for x in [
            format!("<r><!--{hidden}--></r>"),
            format!("<r><![CDATA[{hidden}]]></r>"),
            format!("<?pi {hidden}?><r/>"),
            format!("<r v=\"{}\"/>", hidden.replace('<', "&lt;")),
            format!("<r v='{}'/>", "xmlns:a=\"u\" >".repeat(500)),
        ] {
            let s = shape(&x);
            assert_eq!(s.ns_total, 0, "{x:.60}");
            assert!(check(&x).is_ok());
        }
        // ... but declarations after them are.
        let decls: String = (0..33).map(|i| format!(" xmlns:a{i}='u'")).collect();
        for pre in [
            "<!-- > <x> -->",
            "<![CDATA[ <x> ]]>",
            "<?pi ?>",
            "<!-- -- -->",
            "<x v='>'/>",
        ] {
            let x = format!("<r>{pre}<e{decls}/></r>");
            assert!(over(&x).contains("declares more than 24"), "{pre}");
        }
        // A comment cannot end early on `--` or `->`, a CDATA section on `]]`.
        let x = format!("<r><!-- -> --!> --><e{decls}/></r>");
        assert!(over(&x).contains("declares"));
        let x = format!("<r><![CDATA[ ]] ]>]]><e{decls}/></r>");
        assert!(over(&x).contains("declares"));
    }

    #[test]
    fn refuses_what_it_cannot_follow() {
        for (x, words) in [
            ("<!DOCTYPE r []><r/>", "DTD"),
            ("<r><!ENTITY e 'x'></r>", "DTD"),
            ("<r><!-- x </r>", "comment"),
            ("<r><![CDATA[ x </r>", "CDATA"),
            ("<![CDATA[x]]><r/>", "CDATA"),
            ("<?xml version='1.0'<r/>", "processing instruction"),
            ("<r a='1'b='2'/>", "white space"),
            ("<r a=1/>", "quotes"),
            ("<r a/>", "without a value"),
            ("<r a='1/>", "unterminated"),
            ("<r a='<'/>", "attribute value"),
            ("<r", "unterminated start tag"),
            ("<r>", "not closed"),
            ("</r>", "without its start tag"),
            ("<r></r></r>", "without its start tag"),
            ("< r/>", "starts no tag"),
            ("<r>x < y</r>", "starts no tag"),
            ("<r></r", "unterminated end tag"),
            ("<r></r a='>'>", "end tag"),
            ("", "no element"),
            ("just text", "no element"),
            ("<r =''/>", "attribute"),
        ] {
            let m = malformed(x);
            assert!(m.contains(words), "{x}: {m}");
        }
    }

    #[test]
    fn accepts_what_real_idps_send() {
        // Azure-like: xmlns on Response, Assertion and Signature.
        let x = r#"<samlp:Response ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" Destination="https://sp/acs" InResponseTo="_r" xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">https://sts</Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><Assertion ID="_b" IssueInstant="2026-01-01T00:00:00Z" Version="2.0" xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><Issuer>https://sts</Issuer><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></SignedInfo></Signature><AttributeStatement><Attribute Name="mail"><AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">a@b</AttributeValue></Attribute></AttributeStatement></Assertion></samlp:Response>"#;
        let s = check(x).unwrap();
        assert_eq!((s.ns_in_scope, s.ns_total, s.depth), (4, 6, 5));
    }

    #[test]
    fn the_samples_are_at_the_limits_and_parse() {
        for (name, x) in samples::all() {
            let s = check(&x).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(x.len() <= LIMITS.max_bytes, "{name}");
            crate::sso::xmldsig::parse(&x).unwrap_or_else(|e| panic!("{name}: {e}"));
            match name {
                "namespaces" => {
                    assert_eq!(s.ns_in_scope, LIMITS.max_ns_in_scope);
                    assert_eq!(s.ns_total, LIMITS.max_ns_total);
                    assert_eq!(s.elements, LIMITS.max_elements);
                }
                "attributes" => {
                    assert_eq!(s.attributes, LIMITS.max_attributes);
                    assert!(
                        s.attributes_total > LIMITS.max_attributes_total - LIMITS.max_attributes
                    );
                }
                "depth" => assert_eq!(s.depth, LIMITS.max_depth),
                _ => assert!(s.bytes > LIMITS.max_bytes - 200),
            }
        }
    }

    #[tokio::test]
    async fn a_saturated_pool_answers_busy() {
        let pool = Arc::new(Pool::with(1, Duration::from_millis(50)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let p = pool.clone();
        let first = tokio::spawn(async move { p.run(move || rx.recv().is_ok()).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        match pool.run(|| 1).await {
            Err(Error::Unavailable(m)) => assert!(m.contains("busy"), "{m}"),
            other => panic!("{other:?}"),
        }
        tx.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert_eq!(pool.run(|| 2).await.unwrap(), 2);
    }
}
