//! Certificates from an ACME CA (RFC 8555) for the HTTPS listener, with
//! `instant-acme`: the account and every certificate it obtains are kept in
//! the store's sealed `acme` table; the cached certificate is served at once
//! after a restart; a new one is ordered when a third of the served one's
//! lifetime is left. Challenges are answered by TLS-ALPN-01 (RFC 8737) on the
//! HTTPS listener itself or by HTTP-01 on the plain-HTTP listener. A failed
//! attempt is logged, audited and shown with the CA's problem document, and
//! the certificate already served stays. No HTTP serving here.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, Problem, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use super::{Tls, certified_key};
use crate::audit::{self, NewEvent, Outcome, Source};
use crate::clock::Timestamp;
use crate::config::AcmeSettings;
use crate::error::Result;
use crate::service::Service;
use crate::store::{Reader, Table};

const ACCOUNT_KEY: &[u8] = b"account";
const CERT_KEY: &[u8] = b"certificate";
/// The longest the loop sleeps before looking at the schedule again.
const MAX_SLEEP_SECS: i64 = 3600;

/// The ACME account for one directory (its key is in the credentials).
#[derive(Serialize, Deserialize)]
struct AccountRecord {
    directory_url: String,
    credentials: serde_json::Value,
}

/// A certificate obtained, with its private key (PEM).
#[derive(Serialize, Deserialize)]
struct CertRecord {
    directory_url: String,
    domains: Vec<String>,
    chain_pem: String,
    key_pem: String,
    issued_at: Timestamp,
}

/// What went wrong, with the CA's problem document when it sent one.
struct Failure {
    message: String,
    problem: Option<serde_json::Value>,
}

impl From<instant_acme::Error> for Failure {
    fn from(e: instant_acme::Error) -> Self {
        match e {
            instant_acme::Error::Api(p) => Failure {
                message: format!("the CA refused: {p}"),
                problem: Some(problem_json(&p)),
            },
            other => Failure {
                message: other.to_string(),
                problem: None,
            },
        }
    }
}

impl From<crate::error::Error> for Failure {
    fn from(e: crate::error::Error) -> Self {
        Failure {
            message: e.to_string(),
            problem: None,
        }
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        problem: None,
    }
}

/// The problem document as the CA sent it (RFC 7807 member names).
fn problem_json(p: &Problem) -> serde_json::Value {
    serde_json::json!({
        "type": p.r#type,
        "detail": p.detail,
        "status": p.status,
        "subproblems": p.subproblems.iter().map(|s| serde_json::json!({
            "type": s.r#type,
            "detail": s.detail,
            "identifier": s.identifier.as_ref().map(|i| i.authorized(false).to_string()),
        })).collect::<Vec<_>>(),
    })
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// Serves the certificate kept from an earlier run, when it is for the
/// configured names and directory and not expired. Returns whether it did.
pub fn load_cached(svc: &Service, tls: &Tls) -> Result<bool> {
    let cfg = &svc.settings.tls.acme;
    let Some(rec) = svc.store.read()?.get::<CertRecord>(Table::Acme, CERT_KEY)? else {
        return Ok(false);
    };
    if rec.directory_url != cfg.directory_url || !same_names(&rec.domains, &cfg.domains) {
        tracing::info!("the kept ACME certificate is for other names or another CA; ordering anew");
        return Ok(false);
    }
    let now = svc.now();
    match certified_key(rec.chain_pem.as_bytes(), rec.key_pem.as_bytes()) {
        Ok((key, info)) if info.not_after > now => {
            tracing::info!(
                names = ?info.names,
                not_after = %crate::clock::rfc3339(info.not_after),
                "serving the kept ACME certificate"
            );
            tls.install(key, info, now);
            tls.update(|s| {
                if let Some(a) = s.acme.as_mut() {
                    a.last_renewal = Some(rec.issued_at);
                }
            });
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(_) => {
            tracing::warn!("the kept ACME certificate does not load; ordering anew");
            Ok(false)
        }
    }
}

/// When the served certificate is due for renewal: once two thirds of its
/// lifetime have passed (at once when none is served).
fn renewal_due(tls: &Tls) -> Option<Timestamp> {
    let s = tls.status().ok()?;
    let c = s.certificate?;
    let life = (c.not_after - c.not_before).max(0);
    Some(c.not_after - life / 3)
}

/// Runs forever: orders a certificate when one is due, retries failures
/// after `retry_secs`.
pub async fn run(svc: Arc<Service>, tls: Arc<Tls>) {
    let cfg = svc.settings.tls.acme.clone();
    loop {
        let now = svc.now();
        let due = if tls.has_certificate() {
            renewal_due(&tls).unwrap_or(now)
        } else {
            now
        };
        if due > now {
            set_next(&tls, due);
            tokio::time::sleep(secs(due - now)).await;
            continue;
        }
        let attempt = tokio::time::timeout(
            Duration::from_secs(cfg.timeout_secs),
            obtain(&svc, &tls, &cfg),
        )
        .await;
        tls.clear_challenges();
        let failure = match attempt {
            Ok(Ok(())) => continue,
            Ok(Err(f)) => f,
            Err(_) => fail(format!(
                "no answer from the ACME CA within {} s (tls.acme.timeout_secs)",
                cfg.timeout_secs
            )),
        };
        let now = svc.now();
        tracing::error!(
            error = %failure.message,
            problem = %failure.problem.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            served = tls.has_certificate(),
            "ACME certificate order failed; the served certificate (if any) stays"
        );
        record(
            &svc,
            "tls.acme_failed",
            Outcome::Failure,
            serde_json::json!({
                "domains": cfg.domains,
                "message": failure.message,
                "problem": failure.problem,
            }),
        );
        tls.record_failure(now, failure.message, failure.problem);
        let next = now + cfg.retry_secs as i64;
        set_next(&tls, next);
        tokio::time::sleep(secs(cfg.retry_secs as i64)).await;
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(s.clamp(1, MAX_SLEEP_SECS) as u64)
}

fn set_next(tls: &Tls, at: Timestamp) {
    tls.update(|s| {
        if let Some(a) = s.acme.as_mut() {
            a.next_attempt = Some(at);
        }
    });
}

/// An audit event of the ACME loop (the platform acts, no user).
fn record(svc: &Service, action: &'static str, outcome: Outcome, details: serde_json::Value) {
    let r = (|| -> Result<()> {
        let mut tx = svc.store.write()?;
        audit::record(
            &mut tx,
            svc.now(),
            &Source::default(),
            NewEvent::new(action, outcome)
                .actor("acme", None)
                .details(details),
        )?;
        tx.commit()
    })();
    if let Err(e) = r {
        tracing::error!(error = %e, action, "could not record the ACME audit event");
    }
}

/// An account builder whose HTTP client trusts `ca_file` (a private CA) or
/// the system's roots.
fn builder(cfg: &AcmeSettings) -> std::result::Result<instant_acme::AccountBuilder, Failure> {
    match &cfg.ca_file {
        Some(p) => Account::builder_with_root(p).map_err(|e| {
            fail(format!(
                "tls.acme.ca_file {}: cannot use it as a root ({e})",
                p.display()
            ))
        }),
        None => Ok(Account::builder()?),
    }
}

/// The account for the configured directory: the kept one, or a new one
/// (kept sealed before it is used).
async fn account(
    svc: &Service,
    cfg: &AcmeSettings,
    fresh: bool,
) -> std::result::Result<Account, Failure> {
    let kept = svc
        .store
        .read()?
        .get::<AccountRecord>(Table::Acme, ACCOUNT_KEY)?;
    let builder = builder(cfg)?;
    if let Some(rec) = kept
        && rec.directory_url == cfg.directory_url
        && !fresh
    {
        let creds: AccountCredentials = serde_json::from_value(rec.credentials)
            .map_err(|e| fail(format!("the kept ACME account does not read back: {e}")))?;
        return Ok(builder.from_credentials(creds).await?);
    }
    let contact: Vec<&str> = cfg.contact.iter().map(String::as_str).collect();
    let (account, creds) = builder
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            cfg.directory_url.clone(),
            None,
        )
        .await?;
    let rec = AccountRecord {
        directory_url: cfg.directory_url.clone(),
        credentials: serde_json::to_value(&creds)
            .map_err(|e| fail(format!("cannot keep the ACME account: {e}")))?,
    };
    let mut tx = svc.store.write()?;
    tx.put(Table::Acme, ACCOUNT_KEY, &rec)?;
    audit::record(
        &mut tx,
        svc.now(),
        &Source::default(),
        NewEvent::new("tls.acme_account_created", Outcome::Success)
            .actor("acme", None)
            .target(account.id().to_string())
            .details(serde_json::json!({"directory_url": cfg.directory_url})),
    )?;
    tx.commit()?;
    Ok(account)
}

/// One order: account, authorizations (challenges answered), finalize,
/// download, keep sealed, serve.
async fn obtain(svc: &Service, tls: &Tls, cfg: &AcmeSettings) -> std::result::Result<(), Failure> {
    let ids: Vec<Identifier> = cfg
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let acct = account(svc, cfg, false).await?;
    let mut order = match acct.new_order(&NewOrder::new(&ids)).await {
        // The CA forgot the kept account (a reset CA): register again.
        Err(instant_acme::Error::Api(p))
            if p.r#type
                .as_deref()
                .is_some_and(|t| t.ends_with(":accountDoesNotExist")) =>
        {
            tracing::warn!("the ACME CA does not know the kept account; registering a new one");
            account(svc, cfg, true)
                .await?
                .new_order(&NewOrder::new(&ids))
                .await?
        }
        r => r?,
    };
    let kind = if cfg.challenge == "http-01" {
        ChallengeType::Http01
    } else {
        ChallengeType::TlsAlpn01
    };
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a = a?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(fail(format!(
                        "the CA's authorization for {} is {other:?}",
                        a.identifier()
                    )));
                }
            }
            let name = a.identifier().to_string();
            let mut ch = a.challenge(kind.clone()).ok_or_else(|| {
                fail(format!(
                    "the CA offers no {} challenge for {name}",
                    cfg.challenge
                ))
            })?;
            let ka = ch.key_authorization();
            if kind == ChallengeType::Http01 {
                tls.add_http01(ch.token.clone(), ka.as_str().to_string());
            } else {
                tls.add_alpn_challenge(&name, challenge_cert(&name, ka.digest().as_ref())?);
            }
            ch.set_ready().await?;
        }
    }
    let status = order.poll_ready(&RetryPolicy::default()).await?;
    if status != OrderStatus::Ready {
        let problem = order.state().error.as_ref().map(problem_json);
        let detail = problem
            .as_ref()
            .and_then(|p| p["detail"].as_str().map(str::to_string))
            .unwrap_or_default();
        return Err(Failure {
            message: format!("the order became {status:?}: {detail}"),
            problem,
        });
    }
    let key_pem = zeroize::Zeroizing::new(order.finalize().await?);
    let chain_pem = order.poll_certificate(&RetryPolicy::default()).await?;
    let (key, info) = certified_key(chain_pem.as_bytes(), key_pem.as_bytes())
        .map_err(|_| fail("the CA's certificate does not load with the key it was ordered for"))?;
    let now = svc.now();
    let rec = CertRecord {
        directory_url: cfg.directory_url.clone(),
        domains: cfg.domains.clone(),
        chain_pem,
        key_pem: key_pem.to_string(),
        issued_at: now,
    };
    let mut tx = svc.store.write()?;
    tx.put(Table::Acme, CERT_KEY, &rec)?;
    audit::record(
        &mut tx,
        now,
        &Source::default(),
        NewEvent::new("tls.certificate_issued", Outcome::Success)
            .actor("acme", None)
            .details(serde_json::json!({
                "names": info.names,
                "issuer": info.issuer,
                "not_after": crate::clock::rfc3339(info.not_after),
                "sha256_fingerprint": info.sha256_fingerprint,
            })),
    )?;
    tx.commit()?;
    tracing::info!(
        names = ?info.names,
        issuer = %info.issuer,
        not_after = %crate::clock::rfc3339(info.not_after),
        "ACME certificate obtained"
    );
    tls.install(key, info, now);
    tls.update(|s| {
        if let Some(a) = s.acme.as_mut() {
            a.last_renewal = Some(now);
        }
    });
    Ok(())
}

/// The self-signed certificate a TLS-ALPN-01 validator expects: the name,
/// and the critical `acmeIdentifier` extension holding SHA-256 of the key
/// authorization (RFC 8737 §3).
fn challenge_cert(
    name: &str,
    digest: &[u8],
) -> std::result::Result<Arc<rustls::sign::CertifiedKey>, Failure> {
    let k = rcgen::KeyPair::generate().map_err(|e| fail(format!("challenge key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])
        .map_err(|e| fail(format!("challenge certificate for {name}: {e}")))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params
        .self_signed(&k)
        .map_err(|e| fail(format!("challenge certificate for {name}: {e}")))?;
    // Not through `certified_key`: webpki (its key check) refuses the
    // critical acmeIdentifier extension that makes this certificate.
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        k.serialize_der(),
    ));
    let signer = super::modern_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| fail(format!("challenge key: {e}")))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}
