//! Data-key rotation and status: a new data key becomes active at once, then
//! every record under an older key is re-sealed in short batches while the
//! server keeps serving. Wrapping and sealing themselves live in `store`.

use serde::Serialize;

use crate::access::Principal;
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

/// Rotates, then re-seals; `progress(done, total)` after every batch.
pub fn rotate(
    svc: &Service,
    by: &Principal,
    src: &Source,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RotationReport> {
    let new_version = begin_rotation(svc, by, src)?;
    finish_rotation(svc, by, src, new_version, progress)
}

/// Makes a new data key active (audited); records are re-sealed by `finish_rotation`.
pub fn begin_rotation(svc: &Service, by: &Principal, src: &Source) -> Result<u32> {
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
pub fn start_rotation(svc: &std::sync::Arc<Service>, by: Principal, src: Source) -> Result<u32> {
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
pub fn finish_rotation(
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
