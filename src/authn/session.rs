//! Browser sessions: a random id in the cookie, only its SHA-256 stored, with
//! idle and absolute expiry. Cookie attributes are the web layer's business.

use serde::{Deserialize, Serialize};

use crate::audit::Source;
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::Result;
use crate::identity::{self, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

/// Do not write `last_seen` more often than this: no durable commit per request.
const TOUCH_EVERY_SECS: i64 = 60;

/// Sessions' real last activity, kept in memory between the writes that
/// `TOUCH_EVERY_SECS` spares, so the idle timeout counts from the last
/// request and never from the last write. Complete for every request served
/// since `since` (process start, or the last time the map was emptied): a
/// stored `last_seen` at or after `since` with no entry here is exact; an
/// older one may lag the truth by up to `TOUCH_EVERY_SECS`, and the idle
/// check then grants that slack rather than end a session early.
pub struct Activity {
    inner: std::sync::Mutex<ActivityMap>,
}

struct ActivityMap {
    since: Timestamp,
    seen: std::collections::HashMap<[u8; 32], Timestamp>,
}

const ACTIVITY_MAX: usize = 100_000;

impl Activity {
    pub fn new(now: Timestamp) -> Activity {
        Activity {
            inner: std::sync::Mutex::new(ActivityMap {
                since: now,
                seen: std::collections::HashMap::new(),
            }),
        }
    }

    /// The last activity of session `hash` whose stored `last_seen` is
    /// `stored`, and the slack the idle check must allow.
    fn last(&self, hash: &[u8; 32], stored: Timestamp) -> (Timestamp, i64) {
        let Ok(m) = self.inner.lock() else {
            return (stored, TOUCH_EVERY_SECS);
        };
        match m.seen.get(hash) {
            Some(t) => (stored.max(*t), 0),
            None if stored >= m.since => (stored, 0),
            None => (stored, TOUCH_EVERY_SECS),
        }
    }

    fn note(&self, hash: [u8; 32], now: Timestamp) {
        if let Ok(mut m) = self.inner.lock() {
            if m.seen.len() >= ACTIVITY_MAX && !m.seen.contains_key(&hash) {
                m.seen.clear();
                m.since = now;
            }
            m.seen.insert(hash, now);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    /// When the user last proved who they are (for re-authentication windows).
    pub auth_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Signed in, but the policy demands a second factor first: only
    /// enrollment pages open.
    #[serde(default)]
    pub enroll_only: bool,
    /// Started by a single sign-on: the identity provider handled the second
    /// factor, so Gatehouse's MFA policy does not confine it.
    #[serde(default)]
    pub sso: bool,
    /// The connection whose identity provider started it (`sso`), so that
    /// revoking that trust ends it. Records from before this field say none.
    #[serde(default)]
    pub sso_connection: Option<String>,
    /// The latest the session may live: fixed at sign-in from the strictest
    /// limits that applied then (the installation's, shortened by the
    /// user's workspaces') and only ever moved earlier, when stricter limits
    /// come to apply. Leaving a workspace, losing a group seat or a
    /// workspace's deletion therefore never stretches it. Records from
    /// before this field are pinned at their next request.
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
    /// The idle timeout in seconds, fixed and shortened the same way.
    #[serde(default)]
    pub idle_secs: Option<i64>,
    /// What the user held when the identity provider signed them in (`sso`):
    /// the session ends once they hold more, so the next sign-in asks their
    /// link again (`sso::links::standing`). None in older records.
    #[serde(default)]
    pub sso_rights: Option<crate::access::Rights>,
}

/// The limits a session of `user` gets now: (idle, absolute) in seconds,
/// the installation's shortened by those of the user's workspaces.
pub fn limits_now(svc: &Service, user: &UserId) -> Result<(i64, i64)> {
    let cfg = crate::policy::current(svc)?.session;
    crate::access::session_limits(svc, user, cfg.idle_timeout_secs, cfg.absolute_lifetime_secs)
}

impl Session {
    /// Pins the stricter of the session's own limits and `(idle, absolute)`
    /// (the limits that apply now); whether anything moved. Never loosens.
    fn pin(&mut self, (idle, absolute): (i64, i64)) -> bool {
        let end = self.created_at.saturating_add(absolute);
        let ends_at = self.ends_at.map_or(end, |e| e.min(end));
        let idle_secs = self.idle_secs.map_or(idle, |i| i.min(idle));
        let moved = self.ends_at != Some(ends_at) || self.idle_secs != Some(idle_secs);
        self.ends_at = Some(ends_at);
        self.idle_secs = Some(idle_secs);
        moved
    }
}

pub fn hash_token(token: &str) -> [u8; 32] {
    crypto::sha256(token.as_bytes())
}

fn by_user_key(user: &UserId, hash: &[u8]) -> Vec<u8> {
    let mut k = user.as_str().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(hash);
    k
}

/// Starts a session whose limits are `limits` (`limits_now` at sign-in:
/// fixed from then on, see `Session::ends_at`); returns the cookie value
/// (shown to the browser only) and its hash.
pub fn create(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    now: Timestamp,
    src: &Source,
    enroll_only: bool,
    sso: Option<&str>,
    limits: (i64, i64),
) -> Result<(String, [u8; 32])> {
    start(
        tx,
        user,
        now,
        src,
        enroll_only,
        sso.map(|c| (c, None)),
        limits,
    )
}

/// Starts a session an identity provider signed `user` in to through
/// `connection`, holding `rights` (what the user holds now): it ends once
/// they hold more (`lookup`).
pub fn create_sso(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    now: Timestamp,
    src: &Source,
    connection: &str,
    rights: crate::access::Rights,
    limits: (i64, i64),
) -> Result<(String, [u8; 32])> {
    start(
        tx,
        user,
        now,
        src,
        false,
        Some((connection, Some(rights))),
        limits,
    )
}

fn start(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    now: Timestamp,
    src: &Source,
    enroll_only: bool,
    sso: Option<(&str, Option<crate::access::Rights>)>,
    (idle, absolute): (i64, i64),
) -> Result<(String, [u8; 32])> {
    let token = format!("ghs_{}", crypto::random_token()?);
    let hash = hash_token(&token);
    let s = Session {
        user_id: user.clone(),
        created_at: now,
        last_seen: now,
        auth_at: now,
        ip: src.ip.clone(),
        user_agent: src
            .user_agent
            .as_ref()
            .map(|u| u.chars().take(256).collect()),
        enroll_only,
        sso: sso.is_some(),
        sso_connection: sso.as_ref().map(|(c, _)| c.to_string()),
        sso_rights: sso.and_then(|(_, r)| r),
        ends_at: Some(now.saturating_add(absolute)),
        idle_secs: Some(idle),
    };
    tx.put(Table::Sessions, &hash, &s)?;
    tx.put(Table::SessionsByUser, &by_user_key(user, &hash), &true)?;
    Ok((token, hash))
}

/// The live session and its user for a cookie value, or `None` if unknown,
/// expired (idle or absolute) or the user is disabled.
pub fn lookup(svc: &Service, token: &str) -> Result<Option<([u8; 32], Session, User)>> {
    if !token.starts_with("ghs_") || token.len() > 100 {
        return Ok(None);
    }
    let hash = hash_token(token);
    let now = svc.now();
    let r = svc.store.read()?;
    let Some(mut s) = r.get::<Session>(Table::Sessions, &hash)? else {
        return Ok(None);
    };
    // The limits that apply now (an admin's tightening takes effect at
    // once) pinned onto the session's own: whatever applied at sign-in or
    // at any request since still holds after the user left the workspace.
    let moved = s.pin(limits_now(svc, &s.user_id)?);
    let (ends_at, idle) = (
        s.ends_at.unwrap_or(Timestamp::MIN),
        s.idle_secs.unwrap_or(0),
    );
    let (last, slack) = svc.authn.activity.last(&hash, s.last_seen);
    if now - last > idle.saturating_add(slack) || now > ends_at {
        drop(r);
        let mut tx = svc.store.write()?;
        end(&mut tx, &s.user_id, &hash)?;
        tx.commit()?;
        return Ok(None);
    }
    let user = match identity::get(&r, &s.user_id) {
        Ok(u) if !u.disabled => u,
        _ => return Ok(None),
    };
    drop(r);
    // An identity provider's session holds what the link vouched for when
    // it started: given more since (a role, a seat, a group), the user signs
    // in again, and the link is asked whether its maker could link them now.
    // A session an identity provider started before sessions recorded
    // that vouches for a plain user with no workspace grant only (review 7).
    let plain = crate::access::Rights {
        role: crate::principal::Role::User,
        workspaces: Vec::new(),
    };
    let then = match (&s.sso_rights, s.sso) {
        (Some(then), _) => Some(then),
        (None, true) => Some(&plain),
        (None, false) => None,
    };
    if let Some(then) = then
        && crate::access::holds_more_than(svc, &user, then)?
    {
        let mut tx = svc.store.write()?;
        end(&mut tx, &s.user_id, &hash)?;
        tx.commit()?;
        return Ok(None);
    }
    svc.authn.activity.note(hash, now);
    if moved || now - s.last_seen >= TOUCH_EVERY_SECS {
        let mut tx = svc.store.write()?;
        // As it stands in this transaction: a concurrent sign-out is not
        // undone, a concurrent re-authentication not lost.
        let Some(mut s2) = tx.get::<Session>(Table::Sessions, &hash)? else {
            return Ok(None);
        };
        s2.pin((idle, ends_at.saturating_sub(s2.created_at)));
        if now - s2.last_seen >= TOUCH_EVERY_SECS {
            s2.last_seen = now;
        }
        tx.put(Table::Sessions, &hash, &s2)?;
        tx.commit()?;
        return Ok(Some((hash, s2, user)));
    }
    Ok(Some((hash, s, user)))
}

/// Marks a session as fully signed in (second factor enrolled) and/or
/// re-authenticated now.
pub fn refresh_auth(
    tx: &mut WriteTx<'_>,
    hash: &[u8],
    now: Timestamp,
    enrolled: bool,
) -> Result<()> {
    if let Some(mut s) = tx.get::<Session>(Table::Sessions, hash)? {
        s.auth_at = now;
        if enrolled {
            s.enroll_only = false;
        }
        tx.put(Table::Sessions, hash, &s)?;
    }
    Ok(())
}

/// A policy change now demands a second factor `user` has not set up: their
/// password sessions open MFA enrollment only from the next request on
/// (single sign-on sessions are the identity provider's business). Returns
/// how many sessions were confined.
pub fn confine_to_enrollment(tx: &mut WriteTx<'_>, user: &UserId) -> Result<usize> {
    let mut n = 0;
    for (hash, mut s) in list_for_user(tx, user)? {
        if s.sso || s.enroll_only {
            continue;
        }
        s.enroll_only = true;
        tx.put(Table::Sessions, &hash, &s)?;
        n += 1;
    }
    Ok(n)
}

/// `user` may no longer sign in with a password (SSO is enforced on them):
/// the sessions a password started end, those an identity provider started
/// stay. Returns how many ended.
pub fn end_password_made(tx: &mut WriteTx<'_>, user: &UserId) -> Result<usize> {
    let mut n = 0;
    for (hash, s) in list_for_user(tx, user)? {
        if !s.sso && end(tx, user, &hash)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Ends session `hash` if it is one of `user`'s; `false` (nothing changed)
/// when it is unknown or another user's, so no caller can end a session it
/// does not own by naming its hash.
pub fn end(tx: &mut WriteTx<'_>, user: &UserId, hash: &[u8]) -> Result<bool> {
    match tx.get::<Session>(Table::Sessions, hash)? {
        Some(s) if &s.user_id == user => {
            tx.delete(Table::SessionsByUser, &by_user_key(user, hash))?;
            tx.delete(Table::Sessions, hash)
        }
        _ => Ok(false),
    }
}

/// Ends the session a browser held before signing in again (`token` is its
/// cookie), if it is `user`'s; in its own transaction.
pub fn end_previous(svc: &Service, user: &UserId, token: &str) -> Result<()> {
    let mut tx = svc.store.write()?;
    end(&mut tx, user, &hash_token(token))?;
    tx.commit()
}

pub fn list_for_user(r: &impl Reader, user: &UserId) -> Result<Vec<([u8; 32], Session)>> {
    let mut prefix = user.as_str().as_bytes().to_vec();
    prefix.push(0);
    let mut out = Vec::new();
    for (k, _) in r.scan::<bool>(Table::SessionsByUser, &prefix)? {
        let Ok(hash) = <[u8; 32]>::try_from(&k[prefix.len()..]) else {
            continue;
        };
        if let Some(s) = r.get::<Session>(Table::Sessions, &hash)? {
            out.push((hash, s));
        }
    }
    out.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
    Ok(out)
}

/// Which single sign-on sessions [`end_sso`] ends.
#[derive(Debug, Clone, Copy)]
pub enum SsoSessions<'a> {
    /// Every session an identity provider started (SSO turned off).
    All,
    /// Every session started through this connection (deleted, or its trust
    /// changed).
    Connection(&'a str),
    /// This user's sessions started through this connection (a link removed).
    UserAt(&'a UserId, &'a str),
    /// This user's sessions started through any connection (made SSO-excluded).
    User(&'a UserId),
}

/// Ends the single sign-on sessions `which` names, in `tx`; returns how many.
/// A session recorded before sessions named their connection counts as one
/// from every connection: it cannot be told apart, and ending it only asks
/// for a new sign-in.
pub fn end_sso(tx: &mut WriteTx<'_>, which: SsoSessions<'_>) -> Result<usize> {
    let from =
        |s: &Session, conn: &str| s.sso && s.sso_connection.as_deref().is_none_or(|c| c == conn);
    let doomed: Vec<([u8; 32], UserId)> = match which {
        SsoSessions::UserAt(user, conn) => list_for_user(tx, user)?
            .into_iter()
            .filter(|(_, s)| from(s, conn))
            .map(|(h, s)| (h, s.user_id))
            .collect(),
        SsoSessions::User(user) => list_for_user(tx, user)?
            .into_iter()
            .filter(|(_, s)| s.sso)
            .map(|(h, s)| (h, s.user_id))
            .collect(),
        _ => tx
            .scan::<Session>(Table::Sessions, b"")?
            .into_iter()
            .filter(|(_, s)| match which {
                SsoSessions::Connection(conn) => from(s, conn),
                _ => s.sso,
            })
            .filter_map(|(k, s)| {
                <[u8; 32]>::try_from(k.as_slice())
                    .ok()
                    .map(|h| (h, s.user_id))
            })
            .collect(),
    };
    let mut n = 0;
    for (hash, user) in doomed {
        if end(tx, &user, &hash)? {
            n += 1;
        }
    }
    Ok(n)
}

pub fn end_all_for_user(tx: &mut WriteTx<'_>, user: &UserId) -> Result<usize> {
    end_all_for_user_except(tx, user, None)
}

pub fn end_all_for_user_except(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    keep: Option<&[u8]>,
) -> Result<usize> {
    let mut n = 0;
    for (hash, _) in list_for_user(tx, user)? {
        if keep.is_some_and(|k| k == hash) {
            continue;
        }
        end(tx, user, &hash)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_recorded_before_their_connection_was_kept_still_read() {
        let old = serde_json::json!({
            "user_id": "usr_0123456789abcdef0123", "created_at": 1, "last_seen": 1,
            "auth_at": 1, "ip": null, "user_agent": null, "sso": true,
        });
        let s: Session = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.sso && s.sso_connection.is_none());
    }
}
