//! One-time tokens: the first-start setup link, the `recover` reset link and
//! the "choose a new password" sign-in step after a temporary password.
//! Stored as SHA-256, single use, short-lived.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::UserId;
use crate::store::{Reader, Table, WriteTx};

pub const SETUP_TTL_SECS: i64 = 3600;
pub const RECOVER_TTL_SECS: i64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    Setup,
    Recover {
        user_id: UserId,
    },
    /// A sign-in whose password (and second factor) was right, waiting for
    /// the user to replace a temporary password (`authn::temporary`):
    /// `epoch` is the user's tokens-valid-after epoch when it was issued, so
    /// a revocation since spends it; `mfa` the factor the sign-in used.
    PasswordChange {
        user_id: UserId,
        epoch: u64,
        #[serde(default)]
        mfa: Option<crate::principal::MfaMethod>,
    },
}

impl Purpose {
    /// Whether two purposes hold the same slot: one live token per kind and
    /// user, whatever else they carry.
    fn same_slot(&self, other: &Purpose) -> bool {
        match (self, other) {
            (Purpose::Setup, Purpose::Setup) => true,
            (Purpose::Recover { user_id: a }, Purpose::Recover { user_id: b }) => a == b,
            (
                Purpose::PasswordChange { user_id: a, .. },
                Purpose::PasswordChange { user_id: b, .. },
            ) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OneTime {
    purpose: Purpose,
    expires_at: Timestamp,
}

/// Issues a link token; any earlier token of the same kind (and user) stops working.
pub fn issue(tx: &mut WriteTx<'_>, purpose: Purpose, now: Timestamp, ttl: i64) -> Result<String> {
    for (k, old) in tx.scan::<OneTime>(Table::OneTimeTokens, b"")? {
        if old.purpose.same_slot(&purpose) || old.expires_at <= now {
            tx.delete(Table::OneTimeTokens, &k)?;
        }
    }
    let token = crypto::random_token()?;
    tx.put(
        Table::OneTimeTokens,
        &crypto::sha256(token.as_bytes()),
        &OneTime {
            purpose,
            expires_at: now + ttl,
        },
    )?;
    Ok(token)
}

fn gone() -> Error {
    Error::Unauthenticated(
        "This link is invalid, already used or expired. Ask for a new one on the server: \
         gatehouse setup-link (before setup) or gatehouse recover EMAIL (a password reset)."
            .into(),
    )
}

/// What a live token is for, without spending it.
pub fn check(r: &impl Reader, token: &str, now: Timestamp) -> Result<Purpose> {
    let rec: OneTime = r
        .get(Table::OneTimeTokens, &crypto::sha256(token.as_bytes()))?
        .ok_or_else(gone)?;
    if rec.expires_at <= now {
        return Err(gone());
    }
    Ok(rec.purpose)
}

/// `check` against the live store at the service's clock.
pub fn check_now(svc: &crate::service::Service, token: &str) -> Result<Purpose> {
    check(&svc.store.read()?, token, svc.now())
}

/// Spends a token inside `tx`; it is gone only if `tx` commits.
pub fn consume(tx: &mut WriteTx<'_>, token: &str, now: Timestamp) -> Result<Purpose> {
    let p = check(tx, token, now)?;
    tx.delete(Table::OneTimeTokens, &crypto::sha256(token.as_bytes()))?;
    Ok(p)
}

/// Ends `user`'s pending "choose a new password" step, in `tx` (see
/// `revoke::end_everything`).
pub(crate) fn end_password_steps(tx: &mut WriteTx<'_>, user: &UserId) -> Result<()> {
    for (k, old) in tx.scan::<OneTime>(Table::OneTimeTokens, b"")? {
        if matches!(&old.purpose, Purpose::PasswordChange { user_id, .. } if user_id == user) {
            tx.delete(Table::OneTimeTokens, &k)?;
        }
    }
    Ok(())
}
