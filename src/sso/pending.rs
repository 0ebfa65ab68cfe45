//! Sign-ins in flight: the connection a sign-in starts through, the
//! pending state between the start and the IdP's answer, and its binding
//! to the browser that started it.
//!
//! Starting a sign-in writes nothing (issue 11, residual of finding 13: an
//! open endpoint that writes a record per call can be made to fill the
//! store and refuse everyone). The pending state travels sealed in the
//! binding cookie (`gh_sso` / `gh_sso_post`): XChaCha20-Poly1305 under a key
//! derived for this purpose alone, with the cookie and the connection as
//! associated data. The `state` sent to the IdP carries a MAC, so an answer
//! can be told apart as issued here without a record. Single use: a sign-in
//! whose IdP answer passed every check is recorded as spent (`finish`, in
//! its own transaction), until it would have expired anyway.

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

/// A sign-in sent to the IdP, sealed into the browser's binding cookie.
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The `state` (OIDC), request ID (SAML `InResponseTo`) or `wctx`
    /// (WS-Federation) the IdP's answer must bring back; empty for an
    /// IdP-initiated SAML response.
    #[serde(default)]
    pub state: String,
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
/// (their start times), for the per-address cap (a start costs randomness,
/// sealing and, for signed SAML requests, a signature). In memory only;
/// there is no global cap, so nobody's starts can refuse anyone else's.
#[derive(Default)]
pub struct PendingCounts {
    by_client: std::sync::Mutex<std::collections::HashMap<String, Vec<Timestamp>>>,
}

/// Beyond this many clients with sign-ins in flight, the per-address counts
/// start over rather than grow (memory stays bounded; nobody is refused).
const MAX_COUNTED_CLIENTS: usize = 100_000;

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
            if m.len() > MAX_COUNTED_CLIENTS {
                m.clear();
            }
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

/// The key the binding cookies are sealed under: derived from the store's
/// index key for this purpose alone.
fn binding_key(svc: &Service) -> Result<crypto::SecretKey> {
    let k = svc.store.blind_index("sso_binding_key", "v1")?;
    crypto::SecretKey::from_slice(&k).ok_or_else(|| Error::internal("binding key length"))
}

/// The associated data of a binding cookie: the cookie (by protocol; the
/// `__Host-` prefix is transport) and the connection it was started for.
fn binding_aad(protocol: Protocol, connection: &str) -> Vec<u8> {
    let cookie = match protocol {
        Protocol::Oidc => "gh_sso",
        Protocol::Saml | Protocol::Wsfed => "gh_sso_post",
    };
    format!(
        "gatehouse sso binding v1\0{cookie}\0{}\0{connection}",
        protocol.as_str()
    )
    .into_bytes()
}

/// A fresh state for the IdP to bring back: 20 random bytes and a 10-byte
/// MAC over them, in hex (SAML prefixes `_` to make it an XML ID).
pub(crate) fn new_state(svc: &Service) -> Result<String> {
    let r = hex::encode(crypto::random_bytes::<20>()?);
    let tag = svc.store.blind_index("sso_state", &r)?;
    Ok(format!("{r}{}", hex::encode(&tag[..10])))
}

/// Whether `state` was made by `new_state` here (the MAC holds).
fn issued_here(svc: &Service, state: &str) -> bool {
    let s = state.strip_prefix('_').unwrap_or(state);
    if s.len() != 60 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let (r, tag) = s.split_at(40);
    svc.store
        .blind_index("sso_state", r)
        .is_ok_and(|t| crypto::ct_eq(hex::encode(&t[..10]).as_bytes(), tag.as_bytes()))
}

/// A spent sign-in, keyed by the SHA-256 of its state, kept until it would
/// have expired anyway. (Records from versions that stored every pending
/// sign-in read as spent: they were never finished by this version.)
#[derive(Serialize, Deserialize)]
struct Spent {
    created_at: Timestamp,
}

fn spent_key(state: &str) -> [u8; 32] {
    crypto::sha256(state.as_bytes())
}

/// Seals a sign-in just started into the value of its binding cookie. Nothing
/// is written; the only limit is per address (`limits.sso_pending_per_client`
/// within `PENDING_TTL_SECS`: 429), so no one can refuse anyone else's start.
pub(crate) fn seal_pending(
    svc: &Service,
    protocol: Protocol,
    state: &str,
    mut p: Pending,
    src: &Source,
) -> Result<String> {
    let now = svc.now();
    p.client = client_key(src);
    p.state = state.to_string();
    if !svc
        .sso
        .pending
        .reserve(&p.client, now, svc.settings.limits.sso_pending_per_client)
    {
        return Err(Error::TooMany(format!(
            "Too many single sign-ins were started from your address; finish one, or try again \
             in {} minutes.",
            PENDING_TTL_SECS / 60
        )));
    }
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(&p)?);
    let sealed = crypto::seal(
        &binding_key(svc)?,
        &binding_aad(protocol, &p.connection),
        &plain,
    )?;
    Ok(crypto::b64url(&sealed))
}

/// Opens a binding cookie's value for `connection`; `None` when it is not
/// one sealed here for that connection and protocol (edited, moved, forged).
pub fn open_binding(
    svc: &Service,
    protocol: Protocol,
    connection: &str,
    value: &str,
) -> Option<Pending> {
    let sealed = crypto::b64url_decode(value)?;
    let key = binding_key(svc).ok()?;
    let plain = crypto::open(&key, &binding_aad(protocol, connection), &sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

pub(crate) fn not_this_browser() -> Failure {
    Failure::new(
        "state_mismatch",
        "the answer is for a sign-in this browser did not start (its cookie is missing or \
         holds another sign-in): possibly login CSRF",
    )
}

fn unknown_state() -> Failure {
    Failure::new(
        "unknown_state",
        "the sign-in was not started here, was already completed, or expired",
    )
}

/// The pending sign-in of `state`, from the binding cookie of the browser
/// that started it. A state not issued here or already spent is unknown; an
/// answer whose browser holds no cookie for it (login CSRF), or a cookie
/// edited or moved from another connection, is not this browser's; an old
/// one has expired. Nothing is written: the sign-in is spent by `finish`.
pub(crate) fn take_bound_pending(
    svc: &Service,
    protocol: Protocol,
    state: &str,
    browser_cookie: Option<&str>,
    connection: &str,
) -> Result<Pending, Failure> {
    if !issued_here(svc, state) || is_spent(svc, state)? {
        return Err(unknown_state());
    }
    let p = browser_cookie
        .filter(|c| !c.is_empty())
        .and_then(|c| open_binding(svc, protocol, connection, c))
        .filter(|p| crypto::ct_eq(p.state.as_bytes(), state.as_bytes()))
        .ok_or_else(not_this_browser)?;
    svc.sso.pending.release(&p.client, p.created_at);
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

fn is_spent(svc: &Service, state: &str) -> Result<bool, Failure> {
    let r = svc.store.read().map_err(Failure::internal)?;
    Ok(r.get::<Spent>(Table::SsoPending, &spent_key(state))
        .map_err(Failure::internal)?
        .is_some())
}

/// Spends the sign-in `p` in `tx` (the transaction that finishes it): `false`
/// when another answer spent it first. IdP-initiated answers have no state
/// (their assertion IDs have their own replay cache).
pub(crate) fn spend(tx: &mut WriteTx<'_>, p: &Pending) -> Result<bool> {
    if p.state.is_empty() {
        return Ok(true);
    }
    let key = spent_key(&p.state);
    if tx.get::<Spent>(Table::SsoPending, &key)?.is_some() {
        return Ok(false);
    }
    tx.put(
        Table::SsoPending,
        &key,
        &Spent {
            created_at: p.created_at,
        },
    )?;
    Ok(true)
}

/// The failure of an answer that lost the race to spend its sign-in.
pub(crate) fn already_spent() -> Failure {
    unknown_state()
}

/// Deletes spent sign-ins that would have expired by now.
pub fn purge_expired(svc: &Service) -> Result<usize> {
    let mut tx = svc.store.write()?;
    let now = svc.now();
    let old: Vec<Vec<u8>> = tx
        .scan::<Spent>(Table::SsoPending, b"")?
        .into_iter()
        .filter(|(_, p)| now - p.created_at > PENDING_TTL_SECS)
        .map(|(k, _)| k)
        .collect();
    for k in &old {
        tx.delete(Table::SsoPending, k)?;
    }
    tx.commit()?;
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

    #[test]
    fn the_binding_opens_only_for_its_cookie_and_connection_and_states_carry_a_mac() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        let clock = std::sync::Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        let svc = Service::open(settings, clock).unwrap();
        let state = new_state(&svc).unwrap();
        assert!(issued_here(&svc, &state));
        assert!(issued_here(&svc, &format!("_{state}")), "as a SAML ID");
        let mut forged = state.clone().into_bytes();
        forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
        assert!(!issued_here(&svc, &String::from_utf8(forged).unwrap()));
        assert!(!issued_here(&svc, "_forged"));
        let p = Pending {
            state: String::new(),
            connection: "acme".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            rd: "/admin/users".into(),
            test_by: None,
            created_at: svc.now(),
            client: String::new(),
        };
        let src = Source {
            ip: Some("192.0.2.1".into()),
            user_agent: None,
        };
        let cookie = seal_pending(&svc, Protocol::Saml, &state, p, &src).unwrap();
        let back = open_binding(&svc, Protocol::Saml, "acme", &cookie).unwrap();
        assert_eq!(
            (back.state.as_str(), back.rd.as_str()),
            (state.as_str(), "/admin/users")
        );
        assert_eq!(back.client, "192.0.2.1");
        assert!(open_binding(&svc, Protocol::Saml, "acme2", &cookie).is_none());
        assert!(open_binding(&svc, Protocol::Wsfed, "acme", &cookie).is_none());
        assert!(open_binding(&svc, Protocol::Oidc, "acme", &cookie).is_none());
        assert!(open_binding(&svc, Protocol::Saml, "acme", &cookie[1..]).is_none());
        assert!(open_binding(&svc, Protocol::Saml, "acme", &state).is_none());
    }
}
