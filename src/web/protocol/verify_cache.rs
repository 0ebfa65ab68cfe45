//! Answers of `GET /auth/verify` for bearer credentials (and of
//! `POST /oauth2/introspect` for active credentials), reused while nothing
//! they depend on has changed: keyed by SHA-256 of the credential, the query
//! and the Origin header; an entry is good while the commit generations of
//! the identity, revocation and access tables are the ones it was computed
//! at and its credential has not expired. Only allowed answers that do not
//! depend on the caller's address are kept (no session cookies: a session's
//! idle time must be touched; no service account with an IP allowlist; no
//! widget key), so a deleted key, a disabled user or a narrowed scope is
//! refused on the very next check, as without the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::http::header::{HeaderName, HeaderValue};

use crate::clock::Timestamp;

const MAX_ENTRIES: usize = 50_000;

/// Changes whenever a table an allowed answer depends on commits; the list
/// of those tables is `access::DECISION_TABLES`.
pub use crate::access::decision_generation as generation;

/// The identity headers of an allowed answer.
pub type Headers = Vec<(HeaderName, HeaderValue)>;

pub struct Entry {
    generation: u64,
    exp: Timestamp,
    /// `/auth/verify`: the identity headers.
    pub headers: Headers,
    /// `/oauth2/introspect`: the JSON answer.
    pub body: Option<actix_web::web::Bytes>,
    /// The API key whose last use a hit records, at most once a second.
    pub api_key: Option<String>,
    noted: AtomicI64,
}

impl Entry {
    /// Whether a hit at `now` should record the key's use (once a second).
    pub fn note_due(&self, now: Timestamp) -> bool {
        self.noted.swap(now, Ordering::Relaxed) != now
    }
}

/// An answer to keep: its headers or JSON body, until when, and its API key.
pub struct Answer {
    pub exp: Timestamp,
    pub headers: Headers,
    pub body: Option<actix_web::web::Bytes>,
    pub api_key: Option<String>,
}

#[derive(Default)]
pub struct VerifyCache {
    map: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
}

pub fn key(credential: &str, query: &str, origin: Option<&str>) -> [u8; 32] {
    key_of(&[
        credential.as_bytes(),
        query.as_bytes(),
        origin.unwrap_or("").as_bytes(),
    ])
}

/// SHA-256 over the parts, each followed by a length, so no two different
/// lists of parts share a key.
pub fn key_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut d = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for p in parts {
        d.extend_from_slice(p);
        d.extend_from_slice(&(p.len() as u64).to_le_bytes());
    }
    crate::crypto::sha256(&d)
}

impl VerifyCache {
    /// The kept answer, if it is still good at `generation` and `now`.
    pub fn get(&self, key: &[u8; 32], generation: u64, now: Timestamp) -> Option<Arc<Entry>> {
        let m = self.map.read().ok()?;
        let e = m.get(key)?;
        (e.generation == generation && now < e.exp).then(|| e.clone())
    }

    pub fn put(&self, key: [u8; 32], generation: u64, a: Answer) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(
                key,
                Arc::new(Entry {
                    generation,
                    exp: a.exp,
                    headers: a.headers,
                    body: a.body,
                    api_key: a.api_key,
                    noted: AtomicI64::new(Timestamp::MIN),
                }),
            );
        }
    }
}
