//! The application state every handler gets: the service, the token
//! cache, request ids, rate limits, the answer caches and the copy-once
//! secrets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::clock::Timestamp;
use crate::error::Result;
use crate::service::Service;
use crate::tokens::Claims;
use crate::web::{limits, verify_cache};

/// Bearer tokens already verified, until they expire: an RSA verification per
/// request would otherwise cap the checks the platform makes on every call.
const TOKEN_CACHE_MAX: usize = 50_000;

/// SHA-256 of a verified token → its claims and expiry.
type TokenCache = HashMap<[u8; 32], (Arc<Claims>, Timestamp)>;

pub struct AppState {
    pub svc: Arc<Service>,
    pub tls: bool,
    /// Whether the request log shows the health and readiness probes.
    pub log_probes: bool,
    verified: RwLock<TokenCache>,
    /// Request ids: a random per-process prefix and a counter (no syscall per request).
    request_prefix: String,
    request_counter: AtomicU64,
    pub limits: limits::Limits,
    /// Allowed `/auth/verify` answers for bearer credentials (see `verify_cache`).
    pub verify_cache: verify_cache::VerifyCache,
    /// Active `/oauth2/introspect` answers (see `verify_cache`).
    pub introspect_cache: verify_cache::VerifyCache,
    /// New secrets on their way to the page that shows them once.
    pub secrets_once: SecretsOnce,
    /// Forms interrupted by "Confirm it's you", waiting to be completed.
    pub forms_kept: KeptForms,
}

/// A secret just created (an API key, a client secret) handed from the POST
/// that made it to the GET that shows it: in memory only, for the session
/// that made it, for 5 minutes, and taken on first display.
#[derive(Default)]
pub struct SecretsOnce {
    map: std::sync::Mutex<HashMap<[u8; 32], (Timestamp, LabelledSecret)>>,
}

/// What the copy-once panel shows: a label and the secret (wiped when the
/// entry is taken, expires or is dropped).
type LabelledSecret = (String, zeroize::Zeroizing<String>);

impl SecretsOnce {
    const TTL_SECS: Timestamp = 300;

    fn slot(session: &[u8; 32], handle: &str) -> [u8; 32] {
        let mut d = session.to_vec();
        d.extend_from_slice(handle.as_bytes());
        crate::crypto::sha256(&d)
    }

    /// Keeps `(label, secret)`; returns the handle for the page's URL.
    pub fn put(
        &self,
        session: &[u8; 32],
        value: (String, String),
        now: Timestamp,
    ) -> Result<String> {
        let handle = crate::crypto::random_token()?;
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, (at, _)| now - *at < Self::TTL_SECS);
            m.insert(
                Self::slot(session, &handle),
                (now, (value.0, zeroize::Zeroizing::new(value.1))),
            );
        }
        Ok(handle)
    }

    /// The secret for this session and handle, once.
    pub fn take(
        &self,
        session: &[u8; 32],
        handle: &str,
        now: Timestamp,
    ) -> Option<(String, String)> {
        let mut m = self.map.lock().ok()?;
        let (at, (label, secret)) = m.remove(&Self::slot(session, handle))?;
        (now - at < Self::TTL_SECS).then(|| (label, secret.to_string()))
    }
}

/// A POST that "Confirm it's you" interrupted: where it went, what it was
/// for (shown on the page: "to create an API key") and its fields, without
/// the CSRF token (re-issued when it is completed) and without passwords or
/// other secrets (never carried).
#[derive(Clone, Default)]
pub struct KeptForm {
    pub action: String,
    pub purpose: String,
    pub fields: Vec<(String, String)>,
    /// Shown again, filled in, on its own page (`rd`) instead of sent again:
    /// a form whose secret (a password, a code, a client secret) the user
    /// must retype, so sending it without would only fail.
    pub reshow: bool,
    /// The secret fields it carried, which the user retypes (named on the
    /// page). `KeptForms::put` adds those it drops.
    pub retype: Vec<String>,
}

/// Kept forms, in memory only, for the session that posted them, for 10 minutes.
#[derive(Default)]
pub struct KeptForms {
    map: std::sync::Mutex<HashMap<[u8; 32], (Timestamp, KeptForm)>>,
}

impl KeptForms {
    const TTL_SECS: Timestamp = 600;
    /// Enough for any console form; a session cannot fill memory.
    const MAX: usize = 10_000;

    /// Whether a field may be carried over: not the CSRF token, nothing secret.
    pub fn keepable(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        !(n == "csrf_token"
            || n.contains("password")
            || n.contains("secret")
            || n.contains("token")
            || n == "code")
    }

    /// Keeps `form`; returns the handle for the confirm page's URL.
    pub fn put(&self, session: &[u8; 32], mut form: KeptForm, now: Timestamp) -> Result<String> {
        for (k, v) in &form.fields {
            if !Self::keepable(k) && k != "csrf_token" && !v.is_empty() && !form.retype.contains(k)
            {
                form.retype.push(k.clone());
            }
        }
        form.fields.retain(|(k, _)| Self::keepable(k));
        let handle = crate::crypto::random_token()?;
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, (at, _)| now - *at < Self::TTL_SECS);
            if m.len() < Self::MAX {
                m.insert(SecretsOnce::slot(session, &handle), (now, form));
            }
        }
        Ok(handle)
    }

    /// The kept form, left in place (the confirmation may fail and be retried).
    pub fn peek(&self, session: &[u8; 32], handle: &str, now: Timestamp) -> Option<KeptForm> {
        let m = self.map.lock().ok()?;
        let (at, f) = m.get(&SecretsOnce::slot(session, handle))?;
        (now - *at < Self::TTL_SECS).then(|| f.clone())
    }

    /// The kept form, once.
    pub fn take(&self, session: &[u8; 32], handle: &str, now: Timestamp) -> Option<KeptForm> {
        let mut m = self.map.lock().ok()?;
        let (at, f) = m.remove(&SecretsOnce::slot(session, handle))?;
        (now - at < Self::TTL_SECS).then_some(f)
    }
}

impl AppState {
    pub fn new(svc: Arc<Service>, tls: bool) -> Result<Self> {
        let prefix = hex::encode(crate::crypto::random_bytes::<4>().unwrap_or_default());
        let limits = limits::Limits::new(&svc.settings, svc.clone())?;
        let log_probes = svc.settings.log_probes;
        Ok(AppState {
            svc,
            tls,
            log_probes,
            verified: RwLock::new(HashMap::new()),
            request_prefix: prefix,
            request_counter: AtomicU64::new(0),
            limits,
            verify_cache: Default::default(),
            introspect_cache: Default::default(),
            secrets_once: Default::default(),
            forms_kept: Default::default(),
        })
    }

    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.request_prefix)
    }

    /// Verifies a bearer token, remembering verified tokens until they expire.
    pub fn verify_bearer(&self, token: &str) -> Result<Arc<Claims>> {
        let now = self.svc.now();
        let key = crate::crypto::sha256(token.as_bytes());
        if let Ok(cache) = self.verified.read()
            && let Some((c, exp)) = cache.get(&key)
            && *exp > now
        {
            return Ok(c.clone());
        }
        let claims = Arc::new(self.svc.signer().verify(token, now)?);
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.retain(|_, (_, exp)| *exp > now);
                if cache.len() >= TOKEN_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (claims.clone(), claims.exp));
        }
        Ok(claims)
    }
}
