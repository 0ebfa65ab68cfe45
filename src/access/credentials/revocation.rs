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
    if let Ok(c) = svc.access.revoked.read()
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
    if let Ok(mut c) = svc.access.revoked.write() {
        *c = (g, set);
    }
    Ok(hit)
}

/// Revokes the access token `claims` were read from, on behalf of `caller`: a
/// client may revoke its own tokens; anyone else needs `IntrospectCredentials`
/// on the token's workspace (or the platform), and a user's token also needs
/// the caller to be allowed that user's tokens (see
/// `access::may_revoke_user_tokens`). Revocation and its audit record share
/// one transaction.
pub fn revoke_access_token(
    svc: &Service,
    caller: &crate::access::Principal,
    src: &crate::audit::Source,
    claims: &crate::tokens::Claims,
) -> Result<()> {
    use crate::access::{self, Permission, Resource};
    let res = match &claims.workspace {
        Some(w) => Resource::Workspace(w),
        None if claims.client_id.is_none() => Resource::Any,
        None => Resource::Platform,
    };
    let own = caller
        .client()
        .is_some_and(|c| Some(&c.id) == claims.client_id.as_ref());
    if !own {
        access::authorize(svc, caller, Permission::IntrospectCredentials, res, src)?;
    }
    if claims.client_id.is_none() {
        let uid = crate::identity::UserId::parse(&claims.sub)?;
        if !access::may_revoke_user_tokens(svc, caller, &uid)? {
            return Err(crate::error::Error::Forbidden(
                "The caller may not revoke this user's tokens.".into(),
            ));
        }
    }
    let now = svc.now();
    let mut tx = svc.store.write()?;
    revoke_jti(&mut tx, &claims.jti, claims.exp, now)?;
    crate::audit::record(
        &mut tx,
        now,
        src,
        caller
            .event("token.revoke", crate::audit::Outcome::Success)
            .target(claims.sub.clone())
            .workspace(claims.workspace.as_ref()),
    )?;
    tx.commit()
}
