//! Why an identity provider could not be reached, in words an operator can
//! act on: the host name did not resolve (DNS), the connection was refused,
//! nothing answered in time, TLS failed, or the HTTP status it answered. It
//! only describes errors; fetching is done where metadata is read (`oidc`,
//! `saml`).

use std::error::Error as StdError;

/// Describes a failed request to an IdP: what failed first, then the
/// underlying error's own words (its source chain, without repeats).
pub(crate) fn describe(e: &(dyn StdError + 'static), timeout_secs: u64) -> String {
    let chain = chain(e);
    let lower = chain.to_lowercase();
    let what = if let Some(r) = find::<reqwest::Error>(e)
        && r.is_timeout()
    {
        format!("no answer within {timeout_secs} seconds (timed out)")
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no such host")
    {
        "the host name did not resolve (DNS)".to_string()
    } else if let Some(kind) = io_kind(e) {
        use std::io::ErrorKind as K;
        match kind {
            K::ConnectionRefused => {
                "the connection was refused (nothing listens on that host and port)".to_string()
            }
            K::ConnectionReset | K::ConnectionAborted => "the connection was reset".to_string(),
            K::TimedOut => format!("no answer within {timeout_secs} seconds (timed out)"),
            K::HostUnreachable | K::NetworkUnreachable => "the host is unreachable".to_string(),
            _ => "the request failed".to_string(),
        }
    } else if find::<rustls::Error>(e).is_some()
        || lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
    {
        "the TLS handshake failed".to_string()
    } else if let Some(r) = find::<reqwest::Error>(e)
        && let Some(s) = r.status()
    {
        format!("it answered HTTP {s}")
    } else {
        "the request failed".to_string()
    };
    format!("{what}: {chain}")
}

/// The error and its sources, joined by ": ", each message once (a wrapper
/// often repeats its source's words).
pub(crate) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let m = err.to_string();
        if !m.is_empty() && !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

fn io_kind(e: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    find::<std::io::Error>(e).map(std::io::Error::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, std::io::Error);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn a_refused_connection_is_named_with_the_underlying_words() {
        let e = Wrap(
            "error sending request",
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused"),
        );
        let d = describe(&e, 10);
        assert!(d.starts_with("the connection was refused"), "{d}");
        assert!(
            d.ends_with("error sending request: Connection refused"),
            "{d}"
        );
    }

    #[test]
    fn a_dns_failure_is_named() {
        let e = Wrap(
            "client error (Connect)",
            std::io::Error::other("dns error: failed to lookup address information"),
        );
        assert!(describe(&e, 10).starts_with("the host name did not resolve (DNS)"));
    }

    #[test]
    fn repeated_words_appear_once() {
        let e = Wrap("tcp connect error: x", std::io::Error::other("x"));
        assert_eq!(chain(&e), "tcp connect error: x");
    }
}
