//! One-time links: the first-start setup link and the `recover` reset link.
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
    Recover { user_id: UserId },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OneTime {
    purpose: Purpose,
    expires_at: Timestamp,
}

/// Issues a link token; any earlier token of the same kind (and user) stops working.
pub fn issue(tx: &mut WriteTx<'_>, purpose: Purpose, now: Timestamp, ttl: i64) -> Result<String> {
    for (k, old) in tx.scan::<OneTime>(Table::OneTimeTokens, b"")? {
        if old.purpose == purpose || old.expires_at <= now {
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
