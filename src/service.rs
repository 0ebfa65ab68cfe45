//! The running Gatehouse, independent of HTTP: settings, store, clock, the
//! password hasher and the token signer. Shared by the web layer, the control
//! socket and local CLI commands.

use std::sync::Arc;

use crate::authn::password::Hasher;
use crate::clock::{Clock, Timestamp};
use crate::config::Settings;
use crate::crypto::{self, SecretKey};
use crate::error::{Error, Result};
use crate::store::{Reader, Store, Table};
use crate::tokens::Signer;

pub struct Service {
    pub settings: Settings,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    /// Swapped whole when the signing key rotates; see `signer()`.
    signer: std::sync::RwLock<Arc<Signer>>,
    /// HMAC key binding CSRF tokens to a session or a pre-session cookie.
    pub csrf_key: SecretKey,
    /// Each domain module's state, owned and reached into only by that module
    /// (fields private to it): users, sign-in state and session activity,
    /// valid-after marks, the security policy, the access view with API keys,
    /// revocations and buffered refusals, SSO metadata and pending sign-ins,
    /// the dashboard's sign-in counts, and the per-IP rate-limit buckets.
    pub(crate) identity: crate::identity::Caches,
    pub(crate) authn: crate::authn::Caches,
    pub(crate) tokens: crate::tokens::Cache,
    pub(crate) policy: crate::policy::Cache,
    pub(crate) access: crate::access::Caches,
    pub(crate) sso: crate::sso::Caches,
    pub(crate) overview: crate::overview::Cache,
    pub(crate) ratelimit: crate::ratelimit::Limits,
    /// Transit keys unsealed and data-access counts waiting (see `vault`).
    pub(crate) vault: crate::vault::Caches,
    /// Permits for parsing and verifying XML off the async workers (see `sso::xml_budget`).
    pub xml_pool: crate::sso::xml_budget::Pool,
    /// The address actually bound (differs from `settings.listen` for port 0).
    bound: Option<std::net::SocketAddr>,
    /// The HTTPS listener's certificates and their status (set by the server).
    tls: std::sync::OnceLock<Arc<crate::tls::Tls>>,
}

impl Drop for Service {
    /// The last chance for buffered refusals (a CLI command, a test, a server
    /// that stopped without its shutdown path).
    fn drop(&mut self) {
        if let Err(e) = crate::access::flush_denials(self) {
            tracing::warn!(error = %e, "could not record the buffered access denials");
        }
        if let Err(e) = crate::vault::flush_access(self, true) {
            tracing::warn!(error = %e, "could not record the counted Vault data accesses");
        }
    }
}

impl Service {
    pub fn open(settings: Settings, clock: Arc<dyn Clock>) -> Result<Service> {
        Self::open_bound(settings, clock, None)
    }

    /// Opens for a server bound to `bound`, which fills in the public URL when
    /// none is configured.
    pub fn open_bound(
        settings: Settings,
        clock: Arc<dyn Clock>,
        bound: Option<std::net::SocketAddr>,
    ) -> Result<Service> {
        let now = clock.now();
        let store = Store::open(&settings.data_dir, now)?;
        let hasher = Hasher::new(&settings.password)?;
        let issuer = public_url(&settings, bound);
        let mut tx = store.write()?;
        let signer = Signer::load_or_create(
            &mut tx,
            now,
            issuer,
            settings.tokens.audience.clone(),
            settings.tokens.access_ttl_secs,
            crate::tokens::SigningAlg::from_name(&settings.tokens.service_account_algorithm)
                .ok_or_else(|| {
                    Error::invalid(
                        "tokens.service_account_algorithm",
                        "must be RS256, ES256 or EdDSA",
                    )
                })?,
        )?;
        let csrf_key = match tx.get::<String>(Table::Secrets, b"csrf_key")? {
            Some(k) => crypto::b64url_decode(&k)
                .and_then(|b| SecretKey::from_slice(&b))
                .ok_or_else(|| Error::Integrity("csrf key".into()))?,
            None => {
                let k = SecretKey::generate()?;
                tx.put(Table::Secrets, b"csrf_key", &crypto::b64url(k.expose()))?;
                k
            }
        };
        // Over-budget refusals a crash left saved but uncommitted.
        crate::audit::recover_held_denials(&mut tx)?;
        record_config_change(&mut tx, &settings, now)?;
        tx.commit()?;
        let ratelimit = crate::ratelimit::Limits::load(&settings.rate_limit, &store.read()?, now)?;
        Ok(Service {
            settings,
            store,
            clock,
            hasher,
            signer: std::sync::RwLock::new(Arc::new(signer)),
            csrf_key,
            identity: crate::identity::Caches::new(),
            authn: crate::authn::Caches::new(now),
            tokens: crate::tokens::Cache::new(),
            policy: Default::default(),
            access: crate::access::Caches::new(),
            sso: Default::default(),
            overview: Default::default(),
            xml_pool: Default::default(),
            vault: crate::vault::Caches::new(),
            ratelimit,
            bound,
            tls: std::sync::OnceLock::new(),
        })
    }

    /// The TLS state of the running server (none for plain HTTP or a CLI command).
    pub fn tls(&self) -> Option<&Arc<crate::tls::Tls>> {
        self.tls.get()
    }

    pub(crate) fn set_tls(&self, tls: Arc<crate::tls::Tls>) {
        let _ = self.tls.set(tls);
    }

    /// The current token signer (cheap: one reference-count increment).
    pub fn signer(&self) -> Arc<Signer> {
        match self.signer.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Rotates the access-token signing key: a new key signs from now on, the
    /// previous one stays in the JWKS until its last token has expired.
    pub fn rotate_signing_key(
        &self,
        by: &crate::access::Principal,
        src: &crate::audit::Source,
        reason: &'static str,
    ) -> Result<String> {
        let now = self.now();
        let current = self.signer();
        let mut tx = self.store.write()?;
        let (next, kid) = current.rotate(&mut tx, now)?;
        crate::audit::record(
            &mut tx,
            now,
            src,
            by.event("signing_key.rotate", crate::audit::Outcome::Success)
                .target(kid.clone())
                .details(serde_json::json!({
                    "reason": reason,
                    "previous": current.active_kid(),
                    "service_account_key": next.service_key().0,
                    "service_account_algorithm": next.service_key().1.name(),
                })),
        )?;
        tx.commit()?;
        if let Ok(mut s) = self.signer.write() {
            *s = Arc::new(next);
        }
        Ok(kid)
    }

    /// Rotates when the active key is older than the configured period.
    pub fn rotate_signing_key_if_due(&self) -> Result<Option<String>> {
        let days = self.settings.tokens.signing_key_rotation_days;
        if days == 0 || self.now() - self.signer().active_created_at() < days as i64 * 86_400 {
            return Ok(None);
        }
        self.rotate_signing_key(
            &crate::access::Principal::Local("system"),
            &crate::audit::Source::default(),
            "schedule",
        )
        .map(Some)
    }

    /// Writes the rate-limit buckets that changed (every 30 s, and at shutdown).
    pub fn save_rate_limits(&self) -> Result<()> {
        let now = self.now();
        let mut tx = self.store.write()?;
        if self.ratelimit.save(&mut tx, now)? {
            tx.commit()?;
        }
        Ok(())
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn public_url(&self) -> String {
        public_url(&self.settings, self.bound)
    }
}

/// Configuration lives in a file and the environment, so a change shows up at
/// start: compare with the last start's effective settings and audit the
/// difference (key names only).
fn record_config_change(
    tx: &mut crate::store::WriteTx<'_>,
    settings: &Settings,
    now: Timestamp,
) -> Result<()> {
    let mut current = flatten(&serde_json::to_value(settings)?);
    // A secret's change is noticed through a fingerprint keyed by the index
    // key: nothing in the snapshot confirms a guessed secret offline.
    for (key, secret) in settings.secrets() {
        if !secret.is_empty() {
            let mac = tx.blind_index("config_secret", &format!("{key}\0{secret}"))?;
            current.insert(
                format!("{key}.fingerprint"),
                serde_json::Value::String(hex::encode(&mac[..8])),
            );
        }
    }
    let previous: Option<std::collections::BTreeMap<String, serde_json::Value>> =
        tx.get(Table::Meta, b"config_snapshot")?;
    let changed: Vec<String> = match &previous {
        None => Vec::new(),
        Some(prev) => current
            .keys()
            .chain(prev.keys())
            .filter(|k| current.get(*k) != prev.get(*k))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    if previous.is_some() && changed.is_empty() {
        return Ok(());
    }
    tx.put(Table::Meta, b"config_snapshot", &current)?;
    if previous.is_some() {
        let ev = crate::audit::NewEvent::new("config.change", crate::audit::Outcome::Success)
            .actor("system", None)
            .details(serde_json::json!({"changed": changed}));
        crate::audit::record(tx, now, &crate::audit::Source::default(), ev)?;
    }
    Ok(())
}

fn flatten(v: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    if let serde_json::Value::Object(map) = v {
        for (k, val) in map {
            match val {
                serde_json::Value::Object(_) => {
                    for (k2, v2) in flatten(val) {
                        out.insert(format!("{k}.{k2}"), v2);
                    }
                }
                other => {
                    out.insert(k.clone(), other.clone());
                }
            }
        }
    }
    out
}

fn public_url(s: &Settings, bound: Option<std::net::SocketAddr>) -> String {
    match &s.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let scheme = if s.tls_enabled() { "https" } else { "http" };
            // An ACME certificate is for its names, not for the address.
            if let Some(d) = s.tls.acme.domains.first() {
                let port = bound.map(|a| a.port()).unwrap_or(443);
                return match port {
                    443 => format!("https://{d}"),
                    p => format!("https://{d}:{p}"),
                };
            }
            match bound {
                Some(a) => format!("{scheme}://{a}"),
                None => format!("{scheme}://{}", s.listen),
            }
        }
    }
}
