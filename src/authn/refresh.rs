//! Refresh tokens: opaque, stored as SHA-256, rotated on every use. A token
//! presented twice revokes its whole family, the newest member included.

use serde::{Deserialize, Serialize};

use crate::audit::{self, NewEvent, Outcome, Source};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::{self, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshToken {
    family: String,
    user_id: UserId,
    expires_at: Timestamp,
    used: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Family {
    user_id: UserId,
    created_at: Timestamp,
    revoked: bool,
    /// The latest the family may live, fixed when it started (the refresh
    /// lifetime shortened by the user's workspace limits then): loosening a
    /// workspace's limits or leaving it later does not stretch it.
    #[serde(default)]
    ends_at: Option<Timestamp>,
}

fn invalid() -> Error {
    Error::Unauthenticated(
        "The refresh token is invalid, expired or revoked; sign in again.".into(),
    )
}

/// Starts a family of `user` that lives `life` seconds at most, whatever
/// happens to the user's workspace limits later (`family_end`).
pub fn start_family(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    now: Timestamp,
    life: i64,
) -> Result<String> {
    let f = hex::encode(crypto::random_bytes::<16>()?);
    tx.put(
        Table::RefreshFamilies,
        f.as_bytes(),
        &Family {
            user_id: user.clone(),
            created_at: now,
            revoked: false,
            ends_at: Some(now.saturating_add(life)),
        },
    )?;
    Ok(f)
}

/// Issues a token in `family` (a new family living `ttl` at most when `None`).
pub fn issue(
    tx: &mut WriteTx<'_>,
    user: &UserId,
    family: Option<String>,
    now: Timestamp,
    ttl: i64,
) -> Result<String> {
    let family = match family {
        Some(f) => f,
        None => start_family(tx, user, now, ttl)?,
    };
    let token = format!("ghr_{}", crypto::random_token()?);
    let rec = RefreshToken {
        family,
        user_id: user.clone(),
        expires_at: now.saturating_add(ttl),
        used: false,
    };
    tx.put(
        Table::RefreshTokens,
        &crypto::sha256(token.as_bytes()),
        &rec,
    )?;
    Ok(token)
}

/// What a rotation yields.
pub struct Rotated {
    pub user: User,
    /// The next refresh token of the family.
    pub token: String,
    /// When the family's sign-in happened (the access token's `auth_time`).
    pub auth_time: Timestamp,
    /// The user's tokens-valid-after epoch read in the rotation's transaction.
    pub epoch: u64,
}

/// The refresh lifetime for a family of `user` starting now: the configured
/// one, shortened by the session lifetime of any workspace they belong to.
pub(crate) fn family_lifetime(svc: &Service, user: &UserId) -> Result<i64> {
    let ttl = svc.settings.tokens.refresh_ttl_secs;
    let (_, absolute) = crate::access::session_limits(svc, user, ttl, ttl)?;
    Ok(absolute.min(ttl))
}

/// The moment a family ends, whatever its rotations: the end fixed when it
/// started (`Family::ends_at`, moved earlier at each rotation that found
/// stricter limits), or sooner if the user's workspace limits shortened
/// since (`family_lifetime` from the sign-in that started it).
fn family_end(svc: &Service, fam: &Family) -> Result<Timestamp> {
    let now_rule = fam
        .created_at
        .saturating_add(family_lifetime(svc, &fam.user_id)?);
    Ok(fam.ends_at.map_or(now_rule, |e| e.min(now_rule)))
}

/// Spends `token` and returns its user with a fresh token of the same family.
/// Reuse of a spent token revokes the family and is audited. A family lives
/// at most its absolute lifetime (`family_end`): rotation never extends it.
pub fn rotate(svc: &Service, token: &str, src: &Source) -> Result<Rotated> {
    let now = svc.now();
    let hash = crypto::sha256(token.as_bytes());
    let mut tx = svc.store.write()?;
    let fail = |tx: &mut WriteTx<'_>, reason: &str, who: Option<&UserId>| -> Result<()> {
        let mut ev = NewEvent::new("auth.refresh", Outcome::Failure)
            .details(serde_json::json!({"reason": reason}));
        if let Some(u) = who {
            ev = ev.target(u.as_str());
        }
        audit::record(tx, now, src, ev).map(|_| ())
    };
    let Some(mut rec) = tx.get::<RefreshToken>(Table::RefreshTokens, &hash)? else {
        // Anyone can send made-up tokens: the refusal changes nothing, so it
        // joins the group-committed, coalesced refusals (see
        // `access::audit_denial`) instead of a durable commit of its own.
        drop(tx);
        crate::access::defer_event(
            svc,
            src,
            NewEvent::new("auth.refresh", Outcome::Failure)
                .details(serde_json::json!({"reason": "unknown_token"})),
        )?;
        return Err(invalid());
    };
    let mut fam: Family = tx
        .get(Table::RefreshFamilies, rec.family.as_bytes())?
        .ok_or_else(invalid)?;
    if rec.used {
        fam.revoked = true;
        tx.put(Table::RefreshFamilies, rec.family.as_bytes(), &fam)?;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("auth.refresh_reuse", Outcome::Denied)
                .target(rec.user_id.as_str())
                .details(serde_json::json!({"family": rec.family, "action": "family revoked"})),
        )?;
        tx.commit()?;
        return Err(invalid());
    }
    let end = family_end(svc, &fam)?;
    let reason = if fam.revoked {
        Some("family_revoked")
    } else if rec.expires_at <= now {
        Some("expired")
    } else if end <= now {
        Some("family_lifetime_over")
    } else {
        None
    };
    let user = match identity::get(&tx, &rec.user_id) {
        Ok(u) if !u.disabled => Some(u),
        _ => None,
    };
    if let Some(r) = reason.or(if user.is_none() {
        Some("user_disabled_or_deleted")
    } else {
        None
    }) {
        fail(&mut tx, r, Some(&rec.user_id))?;
        tx.commit()?;
        return Err(invalid());
    }
    let user = user.ok_or_else(invalid)?;
    // The end as it stands now is the family's from here on: stricter
    // limits that came to apply since the sign-in (a workspace joined)
    // still hold after the user leaves that workspace again.
    if fam.ends_at != Some(end) {
        fam.ends_at = Some(end);
        tx.put(Table::RefreshFamilies, rec.family.as_bytes(), &fam)?;
    }
    rec.used = true;
    tx.put(Table::RefreshTokens, &hash, &rec)?;
    let next = issue(
        &mut tx,
        &rec.user_id,
        Some(rec.family.clone()),
        now,
        svc.settings.tokens.refresh_ttl_secs.min(end - now),
    )?;
    let epoch = crate::tokens::valid_after(&tx, &rec.user_id)?.epoch;
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new("auth.refresh", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into())),
    )?;
    tx.commit()?;
    Ok(Rotated {
        user,
        token: next,
        auth_time: fam.created_at,
        epoch,
    })
}

/// Revokes every refresh-token family of a user (password change, disable, delete).
pub fn revoke_all_for_user(tx: &mut WriteTx<'_>, user: &UserId) -> Result<usize> {
    let mut n = 0;
    for (k, mut f) in tx.scan::<Family>(Table::RefreshFamilies, b"")? {
        if &f.user_id == user && !f.revoked {
            f.revoked = true;
            tx.put(Table::RefreshFamilies, &k, &f)?;
            n += 1;
        }
    }
    Ok(n)
}

/// RFC 7009 revocation of a refresh token: revokes its whole family when
/// the actor may revoke the token's user's tokens
/// (`access::may_revoke_user_tokens`: platform-level callers any user's, a
/// workspace-bound caller only its members'). Unknown tokens are not an error.
pub fn revoke_token(svc: &Service, actor: &crate::access::Actor, token: &str) -> Result<bool> {
    let (by, src) = (&actor.principal, &actor.source);
    let hash = crypto::sha256(token.as_bytes());
    let mut tx = svc.store.write()?;
    let Some(rec) = tx.get::<RefreshToken>(Table::RefreshTokens, &hash)? else {
        return Ok(false);
    };
    if !crate::access::may_revoke_user_tokens(svc, by, &rec.user_id)? {
        return Err(Error::Forbidden(
            "The caller may not revoke this user's tokens.".into(),
        ));
    }
    let Some(mut fam) = tx.get::<Family>(Table::RefreshFamilies, rec.family.as_bytes())? else {
        return Ok(false);
    };
    fam.revoked = true;
    tx.put(Table::RefreshFamilies, rec.family.as_bytes(), &fam)?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("token.revoke", Outcome::Success)
            .target(rec.user_id.as_str())
            .details(serde_json::json!({"kind": "refresh_token", "family": rec.family})),
    )?;
    tx.commit()?;
    Ok(true)
}
