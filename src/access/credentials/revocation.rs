//! Access-token revocation: revoked token ids, kept until the token would have
//! expired, read through an in-memory copy.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

/// Marks an access token's id revoked until the token would have expired.
pub fn revoke_jti(tx: &mut WriteTx<'_>, jti: &str, exp: Timestamp, now: Timestamp) -> Result<()> {
    tx.put(Table::RevokedTokens, jti.as_bytes(), &exp)?;
    // Forget entries whose tokens have expired anyway.
    for (k, e) in tx.scan::<Timestamp>(Table::RevokedTokens, b"")? {
        if e <= now {
            tx.delete(Table::RevokedTokens, &k)?;
        }
    }
    Ok(())
}

/// Whether a token id was revoked; read through an in-memory copy that any
/// committed revocation refreshes.
pub fn is_revoked(svc: &Service, jti: &str) -> Result<bool> {
    let g = svc.store.generation(Table::RevokedTokens);
    if let Ok(c) = svc.revoked_cache.read()
        && c.0 == g
    {
        return Ok(c.1.contains(jti));
    }
    let set: std::collections::HashSet<String> = svc
        .store
        .read()?
        .scan::<Timestamp>(Table::RevokedTokens, b"")?
        .into_iter()
        .filter_map(|(k, _)| String::from_utf8(k).ok())
        .collect();
    let hit = set.contains(jti);
    if let Ok(mut c) = svc.revoked_cache.write() {
        *c = (g, set);
    }
    Ok(hit)
}
