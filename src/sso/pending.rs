//! Sign-ins in flight: the connection a sign-in starts through, the
//! pending record between the start and the IdP's answer, and its binding
//! to the browser that started it.

use serde::{Deserialize, Serialize};

use crate::audit::Source;
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::UserId;
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

use super::{Connection, Failure, Protocol, get, settings};

/// How long a sign-in may stay at the IdP.
pub const PENDING_TTL_SECS: i64 = 600;

/// The connection a sign-in starts through: it must exist with `protocol`,
/// and SSO must be enabled unless an admin is testing it.
pub(crate) fn startable(
    svc: &Service,
    id: &str,
    protocol: Protocol,
    testing: bool,
) -> Result<Connection> {
    let r = svc.store.read()?;
    let conn = get(&r, id)?;
    if conn.protocol != protocol {
        return Err(Error::NotFound("connection"));
    }
    if !testing && !settings(&r)?.enabled {
        return Err(Error::Forbidden(
            "Single sign-on is not enabled; sign in with your e-mail and password.".into(),
        ));
    }
    Ok(conn)
}

/// Percent-encodes all but RFC 3986's unreserved characters: the query
/// values sent to an IdP (a signed SAML query is verified exactly as sent).
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A sign-in sent to the IdP, keyed by the SHA-256 of its `state`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    pub connection: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub rd: String,
    /// Set when an admin runs "Test connection": nobody is signed in.
    pub test_by: Option<UserId>,
    pub created_at: Timestamp,
    /// Who started it (`client_key`), for the per-address cap.
    #[serde(default)]
    pub client: String,
}

/// Sign-ins started by each client within the last `PENDING_TTL_SECS`
/// (their start times), for the per-address cap. In memory: a start whose
/// commit failed ages out with the others; after a restart the global cap
/// still holds and the stored ones expire within 10 minutes.
#[derive(Default)]
pub struct PendingCounts {
    by_client: std::sync::Mutex<std::collections::HashMap<String, Vec<Timestamp>>>,
    /// When expired sign-ins were last swept because the store was full.
    last_sweep: std::sync::atomic::AtomicI64,
}

impl PendingCounts {
    /// Counts a start by `client` at `now`; `false` when it has too many.
    fn reserve(&self, client: &str, now: Timestamp, max: usize) -> bool {
        let Ok(mut m) = self.by_client.lock() else {
            return false;
        };
        if m.len() > 10_000 {
            m.retain(|_, v| {
                v.retain(|t| now - t <= PENDING_TTL_SECS);
                !v.is_empty()
            });
        }
        let v = m.entry(client.to_string()).or_default();
        v.retain(|t| now - t <= PENDING_TTL_SECS);
        if v.len() >= max {
            return false;
        }
        v.push(now);
        true
    }

    /// A sign-in of `client` started at `at` came back (or was refused).
    fn release(&self, client: &str, at: Timestamp) {
        if let Ok(mut m) = self.by_client.lock()
            && let Some(v) = m.get_mut(client)
        {
            if let Some(i) = v.iter().position(|t| *t == at) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                m.remove(client);
            }
        }
    }
}

/// The per-address cap's key: the address (IPv6 by its /64, which one host
/// usually holds whole), or `unknown`.
fn client_key(src: &Source) -> String {
    use std::net::IpAddr;
    match src.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => v6.to_canonical().to_string(),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

/// Stores a sign-in just started, keyed by the SHA-256 of its `state`,
/// within the caps (`limits.sso_pending_*`; `/sso/*/login` is open to anyone
/// and each start is a record): too many from the caller's address is 429,
/// too many in all (after sweeping expired ones) is 503.
pub(crate) fn save_pending(svc: &Service, state: &str, mut p: Pending, src: &Source) -> Result<()> {
    let now = svc.now();
    let limits = &svc.settings.limits;
    p.client = client_key(src);
    let mut tx = svc.store.write()?;
    if tx.count(Table::SsoPending)? >= limits.sso_pending_max {
        // Sweep at most once a minute: a full store must not make every
        // start scan it.
        let last = svc
            .sso_pending
            .last_sweep
            .load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 60 {
            svc.sso_pending
                .last_sweep
                .store(now, std::sync::atomic::Ordering::Relaxed);
            purge_in(&mut tx, now)?;
        }
        if tx.count(Table::SsoPending)? >= limits.sso_pending_max {
            tracing::warn!("sso: too many sign-ins in flight");
            return Err(Error::Busy(
                "Too many single sign-ins are in progress right now; try again in a few minutes."
                    .into(),
            ));
        }
    }
    if !svc
        .sso_pending
        .reserve(&p.client, now, limits.sso_pending_per_client)
    {
        return Err(Error::TooMany(format!(
            "Too many single sign-ins were started from your address; finish one, or try again \
             in {} minutes.",
            PENDING_TTL_SECS / 60
        )));
    }
    tx.put(Table::SsoPending, &crypto::sha256(state.as_bytes()), &p)?;
    tx.commit()
}

/// Whether the state the browser's cookie holds is `state`: a sign-in is
/// finished only in the browser that started it.
pub(crate) fn bound_to_browser(browser_state: Option<&str>, state: &str) -> bool {
    browser_state.is_some_and(|b| !b.is_empty() && crypto::ct_eq(b.as_bytes(), state.as_bytes()))
}

pub(crate) fn not_this_browser() -> Failure {
    Failure::new(
        "state_mismatch",
        "the answer is for a sign-in this browser did not start (its cookie is missing or \
         holds another sign-in): possibly login CSRF",
    )
}

/// `take_pending`, only in the browser whose cookie holds `state`. An answer
/// for a sign-in another browser started (login CSRF) is refused and that
/// browser's pending sign-in is left alone; an unknown state says so first.
pub(crate) fn take_bound_pending(
    svc: &Service,
    state: &str,
    browser_state: Option<&str>,
    connection: &str,
) -> Result<Pending, Failure> {
    let known = svc
        .store
        .read()
        .and_then(|r| r.get::<Pending>(Table::SsoPending, &crypto::sha256(state.as_bytes())))
        .map_err(Failure::internal)?
        .is_some();
    if known && !bound_to_browser(browser_state, state) {
        return Err(not_this_browser());
    }
    take_pending(svc, state, connection)
}

/// Takes (and deletes, committed at once) the pending sign-in of `state`:
/// a state works once, whatever happens next.
pub(crate) fn take_pending(
    svc: &Service,
    state: &str,
    connection: &str,
) -> Result<Pending, Failure> {
    let key = crypto::sha256(state.as_bytes());
    let mut tx = svc.store.write().map_err(Failure::internal)?;
    let p = tx
        .get::<Pending>(Table::SsoPending, &key)
        .map_err(Failure::internal)?;
    tx.delete(Table::SsoPending, &key)
        .map_err(Failure::internal)?;
    tx.commit().map_err(Failure::internal)?;
    if let Some(p) = &p {
        svc.sso_pending.release(&p.client, p.created_at);
    }
    let p = p.ok_or_else(|| {
        Failure::new(
            "unknown_state",
            "the sign-in was not started here, was already completed, or expired",
        )
    })?;
    if p.connection != connection {
        return Err(Failure::new(
            "wrong_connection",
            "the answer arrived at another connection's callback",
        ));
    }
    if svc.now() - p.created_at > PENDING_TTL_SECS {
        return Err(Failure::new(
            "expired_state",
            "the sign-in took longer than 10 minutes at the identity provider",
        ));
    }
    Ok(p)
}

/// Deletes sign-ins that never came back.
pub fn purge_expired(svc: &Service) -> Result<usize> {
    let mut tx = svc.store.write()?;
    let n = purge_in(&mut tx, svc.now())?;
    tx.commit()?;
    Ok(n)
}

fn purge_in(tx: &mut WriteTx<'_>, now: Timestamp) -> Result<usize> {
    let old: Vec<Vec<u8>> = tx
        .scan::<Pending>(Table::SsoPending, b"")?
        .into_iter()
        .filter(|(_, p)| now - p.created_at > PENDING_TTL_SECS)
        .map(|(k, _)| k)
        .collect();
    for k in &old {
        tx.delete(Table::SsoPending, k)?;
    }
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let src = |ip: &str| Source {
            ip: Some(ip.into()),
            user_agent: None,
        };
        assert_eq!(
            client_key(&src("2001:db8:1:2::1")),
            client_key(&src("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(&src("2001:db8:1:2::1")),
            client_key(&src("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(&src("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(client_key(&src("unknown")), "unknown");
    }
}
