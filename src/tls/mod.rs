//! TLS for the HTTPS listener: the rustls configuration with the TLS policy
//! (versions, suites), the certificate resolver that serves the current
//! certificate (from files, reloaded on change or SIGHUP, or from ACME) and
//! TLS-ALPN-01 challenge certificates, and the status shown to admins. It
//! neither listens nor speaks HTTP (`web`, `app` do); ordering certificates
//! from an ACME CA is `acme`.

pub mod acme;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::Serialize;

use crate::access::{Actor, Permission, Resource};
use crate::clock::Timestamp;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::service::Service;

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// AEAD suites with forward secrecy only: TLS 1.3's three, and TLS 1.2's
/// ECDHE with AES-GCM or ChaCha20-Poly1305 (no CBC, no RSA key exchange,
/// no SHA-1). Named here so a change of the library's defaults cannot
/// widen them.
fn modern_provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::aws_lc_rs::default_provider()
    }
}

/// Serves the current certificate, or, to an ACME validator that offers only
/// `acme-tls/1`, the challenge certificate for the name it asks.
#[derive(Default)]
struct Resolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let only_acme = hello.alpn().is_some_and(|a| {
            let v: Vec<&[u8]> = a.collect();
            v == [ACME_TLS_ALPN]
        });
        if only_acme {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self.challenges.read().ok()?.get(&name).cloned();
        }
        self.current.read().ok()?.clone()
    }
}

/// What the served certificate says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub sha256_fingerprint: String,
}

/// A failed load or renewal: when, what, and the CA's problem document
/// (RFC 8555 §6.7) when the CA sent one.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub at: Timestamp,
    pub message: String,
    pub problem: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AcmeStatus {
    pub directory_url: String,
    pub domains: Vec<String>,
    pub challenge: String,
    pub last_renewal: Option<Timestamp>,
    pub next_attempt: Option<Timestamp>,
}

/// The TLS page and `GET /api/v1/tls`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `files` or `acme`.
    pub source: &'static str,
    pub min_version: String,
    pub hsts_max_age_secs: u64,
    pub certificate: Option<CertInfo>,
    /// When the served certificate was put in place.
    pub loaded_at: Option<Timestamp>,
    pub acme: Option<AcmeStatus>,
    pub last_error: Option<Failure>,
}

/// Size and modification time of the two files, to notice a change.
type Stamp = Option<(i64, i64, u64, i64, i64, u64)>;

pub struct Tls {
    resolver: Arc<Resolver>,
    files: Option<(PathBuf, PathBuf)>,
    stamp: Mutex<Stamp>,
    status: RwLock<Status>,
    /// HTTP-01 answers: token → key authorization.
    http01: RwLock<HashMap<String, String>>,
    min_version: String,
}

impl Tls {
    /// The TLS state for these settings, `None` for plain HTTP. Certificate
    /// files are loaded now: a start with a bad pair is refused.
    pub fn new(s: &Settings, now: Timestamp) -> Result<Option<Arc<Tls>>> {
        if !s.tls_enabled() {
            return Ok(None);
        }
        let files = match (&s.tls.cert_file, &s.tls.key_file) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => None,
        };
        let tls = Tls {
            resolver: Arc::new(Resolver::default()),
            stamp: Mutex::new(files.as_ref().and_then(|(c, k)| stamp(c, k))),
            files,
            status: RwLock::new(Status {
                source: if s.acme_enabled() { "acme" } else { "files" },
                min_version: s.tls.min_version.clone(),
                hsts_max_age_secs: s.tls.hsts_max_age_secs,
                certificate: None,
                loaded_at: None,
                acme: s.acme_enabled().then(|| AcmeStatus {
                    directory_url: s.tls.acme.directory_url.clone(),
                    domains: s.tls.acme.domains.clone(),
                    challenge: s.tls.acme.challenge.clone(),
                    last_renewal: None,
                    next_attempt: None,
                }),
                last_error: None,
            }),
            http01: RwLock::new(HashMap::new()),
            min_version: s.tls.min_version.clone(),
        };
        if let Some((c, k)) = &tls.files {
            let (key, info) = load_files(c, k)?;
            tls.install(key, info, now);
        }
        Ok(Some(Arc::new(tls)))
    }

    /// The rustls configuration: the policy's versions and suites, this
    /// resolver, and `acme-tls/1` among the ALPN protocols (the HTTP server
    /// adds `h2` and `http/1.1` before it).
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        let versions: &[&'static rustls::SupportedProtocolVersion] = if self.min_version == "1.3" {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(modern_provider()))
            .with_protocol_versions(versions)
            .map_err(|e| Error::internal(format!("TLS policy: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        cfg.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Ok(cfg)
    }

    pub fn status(&self) -> Result<Status> {
        self.status
            .read()
            .map(|s| s.clone())
            .map_err(|_| Error::internal("TLS status lock poisoned"))
    }

    /// Whether a certificate is being served at all.
    pub fn has_certificate(&self) -> bool {
        self.resolver
            .current
            .read()
            .map(|c| c.is_some())
            .unwrap_or(false)
    }

    fn install(&self, key: Arc<CertifiedKey>, info: CertInfo, now: Timestamp) {
        if let Ok(mut c) = self.resolver.current.write() {
            *c = Some(key);
        }
        self.update(|s| {
            s.certificate = Some(info);
            s.loaded_at = Some(now);
            s.last_error = None;
        });
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.write() {
            f(&mut s);
        }
    }

    fn record_failure(&self, at: Timestamp, message: String, problem: Option<serde_json::Value>) {
        self.update(|s| {
            s.last_error = Some(Failure {
                at,
                message,
                problem,
            })
        });
    }

    /// Reloads the certificate files when they changed since the last look
    /// (or always, with `force`: SIGHUP). A pair that does not load is
    /// refused with a log line and the status' `last_error`; the certificate
    /// already served stays. Connections open meanwhile are not touched:
    /// only new handshakes see the new certificate.
    pub fn reload_files(&self, now: Timestamp, force: bool) -> Option<Result<()>> {
        let (c, k) = self.files.as_ref()?;
        let new = stamp(c, k);
        {
            let mut last = self.stamp.lock().ok()?;
            if !force && *last == new {
                return None;
            }
            *last = new;
        }
        Some(match load_files(c, k) {
            Ok((key, info)) => {
                tracing::info!(
                    cert = %c.display(),
                    subject = %info.subject,
                    not_after = %crate::clock::rfc3339(info.not_after),
                    "TLS certificate reloaded"
                );
                self.install(key, info, now);
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "new TLS certificate files refused; the previous certificate keeps serving"
                );
                self.record_failure(now, e.to_string(), None);
                Err(e)
            }
        })
    }

    fn add_http01(&self, token: String, key_authorization: String) {
        if let Ok(mut m) = self.http01.write() {
            m.insert(token, key_authorization);
        }
    }

    fn add_alpn_challenge(&self, name: &str, cert: Arc<CertifiedKey>) {
        if let Ok(mut m) = self.resolver.challenges.write() {
            m.insert(name.to_ascii_lowercase(), cert);
        }
    }

    fn clear_challenges(&self) {
        if let Ok(mut m) = self.http01.write() {
            m.clear();
        }
        if let Ok(mut m) = self.resolver.challenges.write() {
            m.clear();
        }
    }

    /// HTTP-01: the key authorization for `token`, if a challenge is open.
    pub fn http01_answer(&self, token: &str) -> Option<String> {
        self.http01.read().ok()?.get(token).cloned()
    }
}

/// Reloads the certificate files if they changed (or always, `force`),
/// auditing a reload and a refused file.
pub fn reload(svc: &Service, force: bool) {
    let Some(tls) = svc.tls() else { return };
    let Some(r) = tls.reload_files(svc.now(), force) else {
        return;
    };
    let (action, outcome, details) = match r {
        Ok(()) => (
            "tls.certificate_reloaded",
            crate::audit::Outcome::Success,
            serde_json::to_value(tls.status().ok().and_then(|s| s.certificate)).unwrap_or_default(),
        ),
        Err(e) => (
            "tls.certificate_refused",
            crate::audit::Outcome::Failure,
            serde_json::json!({"message": e.to_string()}),
        ),
    };
    let rec = (|| -> Result<()> {
        let mut tx = svc.store.write()?;
        crate::audit::record(
            &mut tx,
            svc.now(),
            &crate::audit::Source::default(),
            crate::audit::NewEvent::new(action, outcome)
                .actor("tls", None)
                .details(details),
        )?;
        tx.commit()
    })();
    if let Err(e) = rec {
        tracing::error!(error = %e, "could not record the certificate reload");
    }
}

/// The TLS status for someone who may manage security settings.
pub fn status_for(svc: &Service, actor: &Actor) -> Result<Status> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    match svc.tls() {
        Some(t) => t.status(),
        // Plain HTTP: there is no TLS configuration to show.
        None => Err(Error::NotFound("TLS configuration")),
    }
}

fn stamp(c: &Path, k: &Path) -> Stamp {
    let a = std::fs::metadata(c).ok()?;
    let b = std::fs::metadata(k).ok()?;
    Some((
        a.mtime(),
        a.mtime_nsec(),
        a.len(),
        b.mtime(),
        b.mtime_nsec(),
        b.len(),
    ))
}

/// Loads a PEM chain and its key, refusing a pair that does not match.
/// A key file readable by group or others is served but warned about.
pub fn load_files(cert: &Path, key: &Path) -> Result<(Arc<CertifiedKey>, CertInfo)> {
    let chain = std::fs::read(cert)
        .map_err(|e| Error::invalid("tls.cert_file", format!("{}: {e}", cert.display())))?;
    let key_pem = zeroize::Zeroizing::new(
        std::fs::read(key)
            .map_err(|e| Error::invalid("tls.key_file", format!("{}: {e}", key.display())))?,
    );
    if let Ok(m) = std::fs::metadata(key) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                key = %key.display(),
                mode = %format!("{mode:o}"),
                "the TLS private key file is readable by group or others: chmod 600 it"
            );
        }
    }
    let (ck, info) = certified_key(&chain, &key_pem).map_err(|e| match e {
        PairError::Cert(m) => Error::invalid("tls.cert_file", format!("{}: {m}", cert.display())),
        PairError::Key(m) => Error::invalid("tls.key_file", format!("{}: {m}", key.display())),
        PairError::Pair(m) => Error::invalid(
            "tls",
            format!(
                "{} and {} do not form a usable pair: {m}",
                cert.display(),
                key.display()
            ),
        ),
    })?;
    Ok((ck, info))
}

enum PairError {
    Cert(String),
    Key(String),
    Pair(String),
}

/// A chain and key (both PEM) as a servable certificate.
fn certified_key(
    chain_pem: &[u8],
    key_pem: &[u8],
) -> std::result::Result<(Arc<CertifiedKey>, CertInfo), PairError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| PairError::Cert(format!("not a PEM certificate chain ({e})")))?;
    let Some(leaf) = chain.first() else {
        return Err(PairError::Cert("holds no PEM certificate".into()));
    };
    let info = cert_info(leaf).map_err(PairError::Cert)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| PairError::Key(format!("not a PEM private key ({e})")))?;
    let ck = CertifiedKey::from_der(chain, key, &modern_provider())
        .map_err(|e| PairError::Pair(e.to_string()))?;
    // `from_der` lets a key whose public half it cannot tell through; ask again.
    ck.keys_match()
        .map_err(|e| PairError::Pair(format!("the key is not the certificate's ({e})")))?;
    Ok((Arc::new(ck), info))
}

fn cert_info(der: &CertificateDer<'_>) -> std::result::Result<CertInfo, String> {
    use sha2::Digest;
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    let cert = x509_cert::Certificate::from_der(der.as_ref())
        .map_err(|e| format!("not an X.509 certificate ({e})"))?;
    let tbs = &cert.tbs_certificate;
    let names = match tbs.get::<SubjectAltName>() {
        Ok(Some((_, san))) => san
            .0
            .iter()
            .filter_map(|n| match n {
                GeneralName::DnsName(d) => Some(d.to_string()),
                GeneralName::IpAddress(ip) => ip_text(ip.as_bytes()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs() as Timestamp;
    Ok(CertInfo {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        names,
        not_before: secs(&tbs.validity.not_before),
        not_after: secs(&tbs.validity.not_after),
        sha256_fingerprint: hex::encode(sha2::Sha256::digest(der.as_ref())),
    })
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b)
            .ok()
            .map(|a| std::net::Ipv4Addr::from(a).to_string()),
        16 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|a| std::net::Ipv6Addr::from(a).to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let k = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        (c.pem(), k.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_with_its_names() {
        let (c, k) = pair("gate.example.com");
        let (_, info) = certified_key(c.as_bytes(), k.as_bytes()).ok().unwrap();
        assert_eq!(info.names, vec!["gate.example.com".to_string()]);
        assert!(info.not_after > info.not_before);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (c, _) = pair("a.example.com");
        let (_, k) = pair("a.example.com");
        assert!(matches!(
            certified_key(c.as_bytes(), k.as_bytes()),
            Err(PairError::Pair(_))
        ));
    }

    #[test]
    fn garbage_is_refused_as_cert_or_key() {
        let (c, k) = pair("a.example.com");
        assert!(matches!(
            certified_key(b"garbage", k.as_bytes()),
            Err(PairError::Cert(_))
        ));
        assert!(matches!(
            certified_key(
                c.as_bytes(),
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
            Err(PairError::Key(_) | PairError::Pair(_))
        ));
    }
}
