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

/// Starts a session; returns the cookie value (shown to the browser only) and its hash.
pub fn create(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    now: Timestamp,
    src: &Source,
    enroll_only: bool,
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
    let Some(s) = r.get::<Session>(Table::Sessions, &hash)? else {
        return Ok(None);
    };
    let cfg = crate::policy::current(svc)?.session;
    let (idle, absolute) = crate::access::session_limits(
        svc,
        &s.user_id,
        cfg.idle_timeout_secs,
        cfg.absolute_lifetime_secs,
    )?;
    if now - s.last_seen > idle || now - s.created_at > absolute {
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
    if now - s.last_seen >= TOUCH_EVERY_SECS {
        let mut tx = svc.store.write()?;
        let mut s2 = s.clone();
        s2.last_seen = now;
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

pub fn end(tx: &mut WriteTx<'_>, user: &UserId, hash: &[u8]) -> Result<bool> {
    tx.delete(Table::SessionsByUser, &by_user_key(user, hash))?;
    tx.delete(Table::Sessions, hash)
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
