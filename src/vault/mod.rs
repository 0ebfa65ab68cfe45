//! The Vault-compatible services' shared domain: which workspace a caller's
//! keys and secrets live in (its namespace), the permission checks narrowed
//! to one Transit key or one secrets path, the names those take, and the
//! per-minute aggregation of data-access audit events (encrypt, decrypt,
//! read), so that audit never costs a commit per call. The services
//! themselves are `transit` (encryption) and `kv` (the secrets store); HTTP
//! is `web::vault`'s.

pub mod kv;
pub mod transit;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::access::{self, Actor, Permission, Principal, Resource};
use crate::audit::{self, NewEvent, Outcome, Source};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::service::Service;

/// This module's state in `Service` (`svc.vault`): data-access counts
/// waiting for their per-minute commit, and the Transit key cache.
pub struct Caches {
    access: Mutex<HashMap<AccessKey, AccessCount>>,
    pub(crate) transit: transit::Cache,
}

impl Caches {
    pub(crate) fn new() -> Caches {
        Caches {
            access: Mutex::new(HashMap::new()),
            transit: transit::Cache::default(),
        }
    }
}

/// The workspace `actor`'s Vault calls act in: a workspace-bound client's
/// own (a different `requested` one is refused), else the workspace named
/// in `requested` (the `X-Vault-Namespace` header), else a user's only
/// workspace. Platform admins and platform-level clients must name one.
pub fn namespace(svc: &Service, actor: &Actor, requested: Option<&str>) -> Result<WorkspaceId> {
    let requested = requested.map(str::trim).filter(|s| !s.is_empty());
    let named = match requested {
        Some(r) => Some(WorkspaceId::parse(r.trim_matches('/')).map_err(|_| {
            Error::invalid(
                "namespace",
                "X-Vault-Namespace must be a workspace id (ws_…)",
            )
        })?),
        None => None,
    };
    match &actor.principal {
        Principal::Client(c) => match (&c.workspace, named) {
            (Some(mine), Some(n)) if *mine != n => Err(Error::Forbidden(
                "This credential belongs to another workspace than the namespace named.".into(),
            )),
            (Some(mine), _) => Ok(mine.clone()),
            (None, Some(n)) => Ok(n),
            (None, None) => Err(namespace_required()),
        },
        Principal::User { user, .. } => match named {
            Some(n) => Ok(n),
            None if actor.principal.is_platform_admin() => Err(namespace_required()),
            None => {
                let snap = access::snapshot(svc)?;
                let mut mine = snap
                    .user_grants
                    .get(&user.id)
                    .into_iter()
                    .flatten()
                    .map(|(w, _, _)| w.clone());
                match (mine.next(), mine.next()) {
                    (Some(w), None) => Ok(w),
                    _ => Err(namespace_required()),
                }
            }
        },
        Principal::Local(_) => named.ok_or_else(namespace_required),
    }
}

fn namespace_required() -> Error {
    Error::invalid(
        "namespace",
        "name the workspace in the X-Vault-Namespace header (its id, ws_…)",
    )
}

/// Checks `p` on the Transit key or secret path `name` in `ws` (a narrowed
/// scope must cover it); a refusal is audited and answered `Forbidden`.
pub fn authorize(
    svc: &Service,
    actor: &Actor,
    p: Permission,
    ws: &WorkspaceId,
    name: &str,
) -> Result<()> {
    actor.authorize(
        svc,
        p,
        Resource::Named {
            workspace: ws,
            name,
        },
    )?;
    Ok(())
}

/// The same check without a denial record: for filtering a list to what the
/// caller may see.
pub fn may(svc: &Service, actor: &Actor, p: Permission, ws: &WorkspaceId, name: &str) -> bool {
    access::decide(
        svc,
        &actor.principal,
        p,
        Resource::Named {
            workspace: ws,
            name,
        },
    )
    .is_ok_and(|d| d.allow)
}

/// A Transit key name from a URL: 1 to 128 of `A-Z a-z 0-9 - _ .`.
pub fn key_name(raw: &str) -> Result<&str> {
    if access::catalogue::valid_key_name(raw) {
        Ok(raw)
    } else {
        Err(Error::invalid(
            "name",
            "a key name is 1 to 128 letters, digits, - _ . (not . or ..)",
        ))
    }
}

/// A secrets path from a URL, normalised the way narrowed scopes are
/// (`access::catalogue::normalise_path`): `..`, `.`, empty segments and
/// percent-encoded characters (encoded slashes) are refused, not resolved.
pub fn secret_path(raw: &str) -> Result<String> {
    access::catalogue::normalise_path(raw).map_err(|m| Error::invalid("path", m))
}

// ---- data-access audit, aggregated per minute ----

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AccessKey {
    actor: String,
    actor_id: Option<String>,
    workspace: WorkspaceId,
    /// The audit action, e.g. `transit.encrypt`, `secrets.read`.
    action: &'static str,
    /// The key name or secret path.
    target: String,
    minute: i64,
}

#[derive(Debug, Clone)]
struct AccessCount {
    count: u64,
    failed: u64,
    source: Source,
}

/// Distinct (caller, key or path, operation, minute) entries held at most
/// before a commit is forced.
pub const ACCESS_BUFFER_MAX: usize = 10_000;

/// Counts one data access (`items` of them for a batch, `failed` of those
/// refused as bad input) for its per-minute audit event. Nothing of the
/// data (plaintext, ciphertext, key material) is recorded: who, where,
/// which key or path, which operation and how many.
pub fn note_access(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    action: &'static str,
    target: &str,
    items: u64,
    failed: u64,
) -> Result<()> {
    let ev = actor.principal.event(action, Outcome::Success);
    let key = AccessKey {
        actor: ev.actor,
        actor_id: ev.actor_id,
        workspace: ws.clone(),
        action,
        target: target.to_string(),
        minute: svc.now().div_euclid(60),
    };
    let full = {
        let mut m = svc
            .vault
            .access
            .lock()
            .map_err(|_| Error::internal("vault access buffer lock poisoned"))?;
        let e = m.entry(key).or_insert_with(|| AccessCount {
            count: 0,
            failed: 0,
            source: actor.source.clone(),
        });
        e.count = e.count.saturating_add(items);
        e.failed = e.failed.saturating_add(failed);
        m.len() >= ACCESS_BUFFER_MAX
    };
    if full {
        flush_access(svc, true)?;
    }
    Ok(())
}

/// Commits the counted data accesses as one audit event each, in one
/// transaction: those of minutes that have ended, or all of them (`all`: at
/// shutdown, or when the buffer is full). Returns how many events.
pub fn flush_access(svc: &Service, all: bool) -> Result<usize> {
    let now_minute = svc.now().div_euclid(60);
    let taken: Vec<(AccessKey, AccessCount)> = {
        let mut m = svc
            .vault
            .access
            .lock()
            .map_err(|_| Error::internal("vault access buffer lock poisoned"))?;
        if m.is_empty() {
            return Ok(0);
        }
        let keys: Vec<AccessKey> = m
            .keys()
            .filter(|k| all || k.minute < now_minute)
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| m.remove(&k).map(|v| (k, v)))
            .collect()
    };
    if taken.is_empty() {
        return Ok(0);
    }
    let n = taken.len();
    let mut tx = svc.store.write()?;
    for (k, v) in &taken {
        let minute: Timestamp = k.minute * 60;
        let ev = NewEvent::new(k.action, Outcome::Success)
            .actor(k.actor.clone(), k.actor_id.clone())
            .workspace(Some(&k.workspace))
            .target(k.target.clone())
            .details(serde_json::json!({
                "count": v.count,
                "failed": v.failed,
                "minute": minute,
                "aggregated": true,
            }));
        audit::record(&mut tx, svc.now(), &v.source, ev)?;
    }
    if let Err(e) = tx.commit() {
        // Put them back for the next attempt, so no count is lost.
        if let Ok(mut m) = svc.vault.access.lock() {
            for (k, v) in taken {
                let e = m.entry(k).or_insert(AccessCount {
                    count: 0,
                    failed: 0,
                    source: v.source.clone(),
                });
                e.count = e.count.saturating_add(v.count);
                e.failed = e.failed.saturating_add(v.failed);
            }
        }
        return Err(e);
    }
    Ok(n)
}

/// Whether data-access counts wait for their commit.
pub fn access_buffered(svc: &Service) -> bool {
    svc.vault
        .access
        .lock()
        .map(|m| !m.is_empty())
        .unwrap_or(false)
}
