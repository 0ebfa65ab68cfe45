//! Per-account lockout: failed password attempts within a window lock the
//! account for a while, doubling on repeat. State lives in the store, so it
//! survives restarts. Callers answer a locked account exactly like a wrong
//! password; only the audit log says which it was.

use serde::{Deserialize, Serialize};

use crate::audit::{self, Outcome};
use crate::clock::Timestamp;
use crate::config::LockoutSettings;
use crate::error::Result;
use crate::identity::UserId;
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LockState {
    /// Failure times still inside the window.
    pub failures: Vec<Timestamp>,
    pub locked_until: Option<Timestamp>,
    /// Locks since the last successful sign-in (each doubles the next).
    pub locks: u32,
}

/// When the account is locked, until when.
pub fn locked_until(r: &impl Reader, user: &UserId, now: Timestamp) -> Result<Option<Timestamp>> {
    Ok(lock_end(r, user)?.filter(|t| *t > now))
}

/// The end of the account's last lock, past or not.
pub fn lock_end(r: &impl Reader, user: &UserId) -> Result<Option<Timestamp>> {
    Ok(
        r.get::<LockState>(Table::Lockouts, user.as_str().as_bytes())?
            .and_then(|s| s.locked_until),
    )
}

/// Records a failed attempt; returns the lock's end if this attempt locked the account.
pub fn record_failure(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    now: Timestamp,
    cfg: &LockoutSettings,
) -> Result<Option<Timestamp>> {
    let key = user.as_str().as_bytes();
    let mut s: LockState = tx.get(Table::Lockouts, key)?.unwrap_or_default();
    s.failures.retain(|t| now - t < cfg.window_secs);
    s.failures.push(now);
    let mut locked = None;
    if s.failures.len() >= cfg.max_failures {
        let factor = 1i64.checked_shl(s.locks.min(30)).unwrap_or(i64::MAX);
        let secs = cfg.lock_secs.saturating_mul(factor).min(cfg.max_lock_secs);
        s.locked_until = Some(now + secs);
        s.locks += 1;
        s.failures.clear();
        locked = s.locked_until;
    }
    tx.put(Table::Lockouts, key, &s)?;
    Ok(locked)
}

/// A successful sign-in forgets past failures and locks.
pub fn clear(tx: &mut WriteTx<'_>, user: &UserId) -> Result<()> {
    tx.delete(Table::Lockouts, user.as_str().as_bytes())?;
    Ok(())
}

/// Where a locked user goes instead of unlocking themselves.
const OWN_LOCK: &str = "Another administrator can lift it, or it ends by itself; an owner who cannot wait runs the gatehouse recover command on the server.";

/// An administrator lifts another user's lock (audited). Whoever could lift
/// a lock could keep guessing that account's password, so it is guarded like
/// the password itself (`guard_admin_path`): never one's own lock, the
/// owner's only by the owner, a platform admin's only by a platform admin.
pub fn unlock(svc: &Service, actor: &crate::access::Actor, user: &UserId) -> Result<bool> {
    actor.authorize(
        svc,
        crate::access::Permission::ManageUsers,
        crate::access::Resource::Platform,
    )?;
    // It re-opens password guessing on the account: a recent sign-in.
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let target = crate::identity::get(&tx, user)?;
    crate::access::guard_admin_path(svc, by, &target, "lock", OWN_LOCK)?;
    let was = locked_until(&tx, user, now)?;
    clear(&mut tx, user)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("user.unlock", Outcome::Success)
            .target(user.as_str())
            .details(serde_json::json!({"was_locked": was.is_some()})),
    )?;
    tx.commit()?;
    Ok(was.is_some())
}
