//! Programmatic credentials: service accounts (client id + secret, traded for
//! access tokens), API apps with their keys, widget keys, and access-token
//! revocation. Secrets are `gh?_` + 43 base62 characters (256 bits) + a
//! 6-character checksum, so a typo is caught before any look-up and a leak is
//! recognisable; only their SHA-256 is stored.
//!
//! One file per kind (`service_accounts`, `api_apps`, `widget_keys`), the secret
//! format (`secret`) and access-token revocation (`revocation`); this file keeps
//! what they share and re-exports their items, so callers name
//! `crate::access::credentials::X`.

mod api_apps;
mod revocation;
mod secret;
mod service_accounts;
mod widget_keys;

pub use api_apps::*;
pub use revocation::*;
pub use secret::*;
pub use service_accounts::*;
pub use widget_keys::*;

use std::net::IpAddr;
use std::sync::Arc;

use self::api_apps::{cached_key, remove_app_keys};
use crate::access::{
    Actor, Client, ClientKind, PermSet, Permission, Principal, Resource, snapshot,
};
use crate::crypto;
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

/// The workspace a new API app or widget key goes to: the one named, or the
/// actor's only workspace where it may manage credentials
/// (`access::resolve_workspace`). The create itself checks the permission there.
pub fn workspace_for_new(svc: &Service, actor: &Actor, named: Option<&str>) -> Result<WorkspaceId> {
    crate::access::resolve_workspace(svc, &actor.principal, Permission::ManageCredentials, named)
}

/// The same for a service account, which a platform admin who names no
/// workspace creates at the platform level (`None`).
pub fn workspace_for_new_account(
    svc: &Service,
    actor: &Actor,
    named: Option<&str>,
) -> Result<Option<WorkspaceId>> {
    match named.filter(|w| !w.is_empty()) {
        None if actor.principal.is_platform_admin() => Ok(None),
        named => workspace_for_new(svc, actor, named).map(Some),
    }
}

/// The workspace (or platform) a credential is managed in.
pub(super) fn res(ws: Option<&WorkspaceId>) -> Resource<'_> {
    match ws {
        Some(w) => Resource::Workspace(w),
        None => Resource::Platform,
    }
}

pub(super) fn check_workspace(r: &impl Reader, ws: Option<&WorkspaceId>) -> Result<()> {
    if let Some(w) = ws {
        crate::access::workspaces::get(r, w)?;
    }
    Ok(())
}

/// What the credentials of a workspace grant together (its service accounts'
/// and API apps' scopes, `use:agents` for widget keys), or `None` when it has
/// none: what deleting all of them takes away.
pub(super) fn granted_in_workspace(r: &impl Reader, ws: &WorkspaceId) -> Result<Option<PermSet>> {
    let mut set: Option<PermSet> = None;
    let mut add = |p: PermSet| set = Some(set.unwrap_or_default().union(p));
    for (_, sa) in r.scan::<ServiceAccount>(Table::ServiceAccounts, b"")? {
        if sa.workspace.as_ref() == Some(ws) {
            add(sa.scope_set());
        }
    }
    for (_, app) in r.scan::<ApiApp>(Table::ApiApps, b"")? {
        if app.workspace == *ws {
            add(app.scope_set());
        }
    }
    for (_, w) in r.scan::<WidgetKey>(Table::WidgetKeys, b"")? {
        if w.workspace == *ws {
            add([Permission::UseAgents].into_iter().collect());
        }
    }
    Ok(set)
}

/// Removes every credential of a workspace (in the caller's transaction).
pub(super) fn delete_all_in_workspace(tx: &mut WriteTx<'_>, ws: &WorkspaceId) -> Result<usize> {
    let mut n = 0;
    for (k, sa) in tx.scan::<ServiceAccount>(Table::ServiceAccounts, b"")? {
        if sa.workspace.as_ref() == Some(ws) {
            tx.delete(Table::ServiceAccounts, &k)?;
            n += 1;
        }
    }
    for (k, app) in tx.scan::<ApiApp>(Table::ApiApps, b"")? {
        if app.workspace == *ws {
            n += remove_app_keys(tx, &app.id)?;
            tx.delete(Table::ApiApps, &k)?;
            n += 1;
        }
    }
    for (k, w) in tx.scan::<WidgetKey>(Table::WidgetKeys, b"")? {
        if w.workspace == *ws {
            tx.delete(Table::WidgetKeys, &k)?;
            n += 1;
        }
    }
    Ok(n)
}

// ---- checking a presented credential ----

fn bad_key() -> Error {
    Error::Unauthenticated("Invalid, expired or deleted API key.".into())
}

/// An API key or widget key → the client it stands for, with its app's
/// current scopes. The checksum is checked before any look-up.
pub fn principal_from_key(svc: &Service, raw: &str, ip: Option<IpAddr>) -> Result<Principal> {
    let now = svc.now();
    if raw.starts_with(WIDGET_KEY_PREFIX) {
        if !well_formed(WIDGET_KEY_PREFIX, raw) {
            return Err(bad_key());
        }
        let w: WidgetKey = svc
            .store
            .read()?
            .get(Table::WidgetKeys, &crypto::sha256(raw.as_bytes()))?
            .ok_or_else(bad_key)?;
        return Ok(Principal::Client(Arc::new(Client {
            kind: ClientKind::WidgetKey,
            id: w.id,
            name: w.name,
            workspace: Some(w.workspace),
            scopes: [Permission::UseAgents].into_iter().collect(),
            narrowed: Vec::new(),
            app: None,
            bot: Some(w.bot),
            origins: w.origins,
            exp: None,
        })));
    }
    if !well_formed(API_KEY_PREFIX, raw) {
        return Err(Error::Unauthenticated(
            "Malformed API key: it must be ghk_ followed by 49 letters and digits, and its checksum must match (a typo?).".into(),
        ));
    }
    let key = cached_key(svc, crypto::sha256(raw.as_bytes()))?.ok_or_else(bad_key)?;
    if key.expires_at.is_some_and(|e| e <= now) {
        return Err(bad_key());
    }
    let snap = snapshot(svc)?;
    let app = snap.apps.get(&key.app).ok_or_else(bad_key)?;
    let scopes = app.scopes();
    if let Ok(mut m) = svc.access.key_usage.lock() {
        m.insert(key.id.clone(), Usage { at: now, ip });
    }
    Ok(Principal::Client(Arc::new(Client {
        kind: ClientKind::ApiKey,
        id: key.id.clone(),
        name: if key.name.is_empty() {
            app.name.clone()
        } else {
            format!("{} / {}", app.name, key.name)
        },
        workspace: Some(app.workspace.clone()),
        scopes: scopes.whole,
        narrowed: scopes.narrowed,
        app: Some(app.id.clone()),
        bot: None,
        origins: Vec::new(),
        exp: key.expires_at,
    })))
}
