//! Answers of `GET /auth/verify` for bearer credentials, reused while nothing
//! they depend on has changed: keyed by SHA-256 of the credential, the query
//! and the Origin header; an entry is good while the commit generations of
//! the identity, revocation and access tables are the ones it was computed
//! at and its credential has not expired. Only allowed answers that do not
//! depend on the caller's address are kept (no session cookies: a session's
//! idle time must be touched; no service account with an IP allowlist; no
//! widget key), so a deleted key, a disabled user or a narrowed scope is
//! refused on the very next check, as without the cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix_web::http::header::{HeaderName, HeaderValue};

use crate::clock::Timestamp;
use crate::service::Service;
use crate::store::Table;

const MAX_ENTRIES: usize = 50_000;

/// Every table an allowed answer depends on.
const TABLES: &[Table] = &[
    Table::Users,
    Table::RevokedTokens,
    Table::Workspaces,
    Table::Members,
    Table::Roles,
    Table::Groups,
    Table::ServiceAccounts,
    Table::ApiApps,
    Table::ApiKeys,
    Table::ApiKeysByApp,
    Table::WidgetKeys,
];

/// Changes whenever any of the tables above commits (each commit adds one).
pub fn generation(svc: &Service) -> u64 {
    TABLES.iter().map(|t| svc.store.generation(*t)).sum()
}

/// The identity headers of an allowed answer.
pub type Headers = Arc<Vec<(HeaderName, HeaderValue)>>;

pub struct Entry {
    generation: u64,
    exp: Timestamp,
    pub headers: Headers,
    /// The API key whose last use a hit records.
    pub api_key: Option<String>,
}

#[derive(Default)]
pub struct VerifyCache {
    map: RwLock<HashMap<[u8; 32], Entry>>,
}

pub fn key(credential: &str, query: &str, origin: Option<&str>) -> [u8; 32] {
    let mut d = Vec::with_capacity(credential.len() + query.len() + 64);
    d.extend_from_slice(credential.as_bytes());
    d.push(0);
    d.extend_from_slice(query.as_bytes());
    d.push(0);
    d.extend_from_slice(origin.unwrap_or("").as_bytes());
    crate::crypto::sha256(&d)
}

impl VerifyCache {
    /// The kept answer, if it is still good at `generation` and `now`.
    pub fn get(
        &self,
        key: &[u8; 32],
        generation: u64,
        now: Timestamp,
    ) -> Option<(Headers, Option<String>)> {
        let m = self.map.read().ok()?;
        let e = m.get(key)?;
        (e.generation == generation && now < e.exp).then(|| (e.headers.clone(), e.api_key.clone()))
    }

    pub fn put(
        &self,
        key: [u8; 32],
        generation: u64,
        exp: Timestamp,
        headers: Vec<(HeaderName, HeaderValue)>,
        api_key: Option<String>,
    ) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(
                key,
                Entry {
                    generation,
                    exp,
                    headers: Arc::new(headers),
                    api_key,
                },
            );
        }
    }
}
