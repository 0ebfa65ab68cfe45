//! Data-key rotation and status: a new data key becomes active at once, then
//! every record under an older key is re-sealed in short batches while the
//! server keeps serving. Wrapping and sealing themselves live in `store`.

use serde::Serialize;

use crate::access::{Actor, Permission, Principal, Resource};
use crate::audit::{self, Outcome, Source};
use crate::error::Result;
use crate::service::Service;
use crate::store::{KeyVersionStatus, Table};

pub const BATCH: usize = 500;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotationReport {
    pub new_version: u32,
    pub resealed: u64,
}

pub fn status(svc: &Service) -> Result<Vec<KeyVersionStatus>> {
    svc.store.key_status()
}

/// The key versions for someone who may manage keys (`ManageKeys`).
pub fn status_for(svc: &Service, actor: &Actor) -> Result<Vec<KeyVersionStatus>> {
    actor.authorize(svc, Permission::ManageKeys, Resource::Platform)?;
    status(svc)
}

/// Rotates, then re-seals; `progress(done, total)` after every batch (the
/// CLI's rotation, which waits for the end).
pub fn rotate(
    svc: &Service,
    actor: &Actor,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RotationReport> {
    authorize_rotation(svc, actor)?;
    let new_version = begin_rotation(svc, &actor.principal, &actor.source)?;
    finish_rotation(svc, &actor.principal, &actor.source, new_version, progress)
}

/// Whether `actor` may rotate keys at all (`ManageKeys` on the platform),
/// before the recent sign-in is asked for: the confirmation page shows a
/// caller without it 403 rather than sending them to re-authenticate.
pub fn may_rotate(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageKeys, Resource::Platform)?;
    Ok(())
}

/// Rotating a key needs `ManageKeys` on the platform and, for a user, a
/// recent sign-in.
fn authorize_rotation(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageKeys, Resource::Platform)?;
    actor.require_recent(svc)
}

/// Makes a new data key active (audited); records are re-sealed by `finish_rotation`.
fn begin_rotation(svc: &Service, by: &Principal, src: &Source) -> Result<u32> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let new_version = tx.rotate_data_key(now)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("keys.rotate", Outcome::Success)
            .details(serde_json::json!({"new_version": new_version})),
    )?;
    tx.commit()?;
    Ok(new_version)
}

/// Rotates now and re-seals on the blocking pool, for the console and the API
/// (which answer before the re-sealing ends); returns the new version.
pub fn start_rotation(svc: &std::sync::Arc<Service>, actor: &Actor) -> Result<u32> {
    authorize_rotation(svc, actor)?;
    let (by, src) = (actor.principal.clone(), actor.source.clone());
    let v = begin_rotation(svc, &by, &src)?;
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = finish_rotation(&svc, &by, &src, v, &mut |_, _| {}) {
            tracing::error!(error = %e, "re-sealing after rotation failed; run `gatehouse keys rotate` again");
        }
    });
    Ok(v)
}

/// Re-seals everything under older keys, then records completion.
fn finish_rotation(
    svc: &Service,
    by: &Principal,
    src: &Source,
    new_version: u32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RotationReport> {
    let resealed = reseal_all(svc, progress)?;
    let mut tx = svc.store.write()?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("keys.reseal_complete", Outcome::Success)
            .details(serde_json::json!({"version": new_version, "records": resealed})),
    )?;
    tx.commit()?;
    Ok(RotationReport {
        new_version,
        resealed,
    })
}

/// Rotates the access-token signing key now (`ManageKeys`, a recent sign-in);
/// the previous key stays in the JWKS until its last token expires.
pub fn rotate_signing(svc: &Service, actor: &Actor) -> Result<String> {
    authorize_rotation(svc, actor)?;
    svc.rotate_signing_key(&actor.principal, &actor.source, "on_demand")
}

/// Re-seals every record still under an older key. Safe to run again after an
/// interruption: it only touches what is left.
pub fn reseal_all(svc: &Service, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
    let (_, total) = svc.store.reseal_backlog()?;
    let mut done = 0u64;
    let mut reported = 0u64;
    progress(0, total);
    for t in Table::ALL.iter().copied().filter(|t| t.sealed()) {
        let mut cursor = None;
        loop {
            let (n, next) = svc.store.reseal_batch(t, cursor, BATCH)?;
            done += n as u64;
            if n > 0 {
                reported = done.min(total);
                progress(reported, total);
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    if reported != total && total > 0 {
        progress(total, total);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Email, UserId};
    use crate::principal::{Role, User};

    #[test]
    fn rotation_itself_refuses_an_actor_without_manage_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::config::Settings::load(None, Vec::<(String, String)>::new()).unwrap();
        s.data_dir = dir.path().to_path_buf();
        let clock = std::sync::Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        let svc = std::sync::Arc::new(Service::open(s, clock).unwrap());
        let member = User {
            id: UserId::generate().unwrap(),
            email: Email::parse("m@example.com").unwrap(),
            name: String::new(),
            password_hash: None,
            role: Role::User,
            disabled: false,
            must_change_password: false,
            created_at: 0,
            updated_at: 0,
        };
        let weak = Actor::new(
            Principal::User {
                user: std::sync::Arc::new(member),
                session: None,
            },
            Source::default(),
            Some(svc.now()),
        );
        let before = status(&svc).unwrap();
        let kid = svc.signer().active_kid().to_string();
        let forbidden = |r: Result<()>| matches!(r, Err(crate::error::Error::Forbidden(_)));
        assert!(forbidden(start_rotation(&svc, &weak).map(|_| ())));
        assert!(forbidden(rotate(&svc, &weak, &mut |_, _| {}).map(|_| ())));
        assert!(forbidden(rotate_signing(&svc, &weak).map(|_| ())));
        assert!(forbidden(status_for(&svc, &weak).map(|_| ())));
        assert_eq!(status(&svc).unwrap().len(), before.len());
        assert_eq!(svc.signer().active_kid(), kid);
        // A local operator passes the same check.
        assert!(rotate(&svc, &Actor::local("cli"), &mut |_, _| {}).is_ok());
        assert_eq!(status(&svc).unwrap().len(), before.len() + 1);
    }
}
