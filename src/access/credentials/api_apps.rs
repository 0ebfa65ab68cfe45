//! API apps and their keys: creation, listing, deletion, RFC 7009 revocation of a
//! key, the key cache and the buffered last-use times.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::check_workspace;
use super::secret::{API_KEY_PREFIX, generate_secret, hint, well_formed};
use crate::access::{
    Actor, PermSet, Permission, Principal, Resource, Scopes, check_grantable, clean_name, new_id,
    parse_id, record_change, snapshot,
};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

/// The furthest an API key's expiry may lie ahead.
const MAX_KEY_LIFETIME_SECS: i64 = 10 * 366 * 86_400;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiApp {
    pub id: String,
    pub workspace: WorkspaceId,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ApiApp {
    /// Every permission its scopes hold, whole or narrowed (what granting
    /// or taking them is checked against).
    pub fn scope_set(&self) -> PermSet {
        self.scopes().any()
    }
    /// Its scopes as granted, narrowed ones included.
    pub fn scopes(&self) -> Scopes {
        Scopes::parse_names("scopes", &self.scopes).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub app: String,
    pub workspace: WorkspaceId,
    pub name: String,
    /// First and last characters, to recognise a key in a list.
    pub hint: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub created_by: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Usage {
    pub at: Timestamp,
    pub ip: Option<IpAddr>,
}

/// Last use of each key since the last flush (a write per check would cap throughput).
pub type UsageCache = HashMap<String, Usage>;

pub fn create_app(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    scopes: &[String],
) -> Result<ApiApp> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageCredentials, Resource::Workspace(ws))?;
    let parsed = Scopes::parse_names("scopes", scopes)?;
    let set = parsed.any();
    at_least_one_scope(set)?;
    check_grantable(svc, by, Some(ws), set)?;
    let now = svc.now();
    let app = ApiApp {
        id: new_id("app_")?,
        workspace: ws.clone(),
        name: clean_name("name", name)?,
        scopes: parsed.names(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = svc.store.write()?;
    check_workspace(&tx, Some(ws))?;
    name_free(&tx, ws, &app.name, None)?;
    tx.put(Table::ApiApps, app.id.as_bytes(), &app)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_app.create",
        Some(ws),
        &app.id,
        serde_json::json!({"name": app.name, "scopes": app.scopes}),
    )?;
    tx.commit()?;
    Ok(app)
}

pub fn apps(svc: &Service, by: &Principal) -> Result<Vec<ApiApp>> {
    let visible = crate::access::workspaces_with(svc, by, Permission::ManageCredentials)?;
    let mut out: Vec<ApiApp> = snapshot(svc)?
        .apps
        .values()
        .filter(|a| visible.contains(&a.workspace))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn get_app(svc: &Service, actor: &Actor, id: &str) -> Result<ApiApp> {
    let id = parse_id("app_", id, "API app")?;
    let app = snapshot(svc)?
        .apps
        .get(id)
        .cloned()
        .ok_or(Error::NotFound("API app"))?;
    actor.authorize(
        svc,
        Permission::ManageCredentials,
        Resource::Workspace(&app.workspace),
    )?;
    Ok(app)
}

/// The app as it stands inside `tx`; gone is `NotFound`.
fn app_in(tx: &WriteTx<'_>, id: &str) -> Result<ApiApp> {
    tx.get::<ApiApp>(Table::ApiApps, id.as_bytes())?
        .ok_or(Error::NotFound("API app"))
}

/// Renames or re-scopes an app; its keys carry the new scopes on the next check.
pub fn update_app(
    svc: &Service,
    actor: &Actor,
    id: &str,
    name: Option<&str>,
    scopes: Option<&[String]>,
) -> Result<ApiApp> {
    let (by, src) = (&actor.principal, &actor.source);
    // Authorizes on the app's workspace, which never changes; the record
    // itself is read inside the write (no lost update, review 4 finding 5).
    let id = get_app(svc, actor, id)?.id;
    let mut tx = svc.store.write()?;
    let mut app = app_in(&tx, &id)?;
    if let Some(n) = name {
        app.name = clean_name("name", n)?;
    }
    if let Some(s) = scopes {
        let new = Scopes::parse_names("scopes", s)?;
        let old = app.scopes();
        check_grantable(svc, by, Some(&app.workspace), new.any())?;
        // Narrowing takes scopes from the app's keys: only what the caller holds.
        crate::access::check_revocable(svc, by, Some(&app.workspace), new.gained_in(&old))?;
        at_least_one_scope(new.any())?;
        // Widening hands every key's holder more: a recent sign-in, like a new key.
        if !old.gained_in(&new).is_empty() {
            actor.require_recent(svc)?;
        }
        app.scopes = new.names();
    }
    app.updated_at = svc.now();
    name_free(&tx, &app.workspace, &app.name, Some(&app.id))?;
    tx.put(Table::ApiApps, app.id.as_bytes(), &app)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_app.update",
        &app.workspace,
        &app.id,
        serde_json::json!({"name": app.name, "scopes": app.scopes}),
    )?;
    tx.commit()?;
    Ok(app)
}

/// A credential with no scope can do nothing: refused, saying what to do.
pub(super) fn at_least_one_scope(set: PermSet) -> Result<()> {
    if set.is_empty() {
        return Err(Error::invalid(
            "scopes",
            "choose at least one scope; a credential without scopes is refused everywhere",
        ));
    }
    Ok(())
}

/// Two apps of one workspace cannot share a name (keys and the audit log
/// name the app): checked in the write transaction, so two creations at once
/// cannot both pass.
fn name_free(tx: &WriteTx<'_>, ws: &WorkspaceId, name: &str, except: Option<&str>) -> Result<()> {
    let taken = tx
        .scan::<ApiApp>(Table::ApiApps, b"")?
        .into_iter()
        .any(|(_, a)| {
            &a.workspace == ws
                && a.name.to_lowercase() == name.to_lowercase()
                && Some(a.id.as_str()) != except
        });
    if taken {
        return Err(Error::Conflict(format!(
            "An API app named \u{201c}{name}\u{201d} already exists in this workspace; choose another name."
        )));
    }
    Ok(())
}

fn app_prefix(app: &str) -> Vec<u8> {
    let mut p = app.as_bytes().to_vec();
    p.push(0);
    p
}

/// The per-app index entry of a key: `app \0 key id` → hex SHA-256 of the key.
fn key_index(app: &str, key_id: &str) -> Vec<u8> {
    let mut idx = app_prefix(app);
    idx.extend_from_slice(key_id.as_bytes());
    idx
}

/// Stores a key record under its hash, with its per-app index entry.
pub fn store_key(tx: &mut WriteTx<'_>, hash: &[u8; 32], key: &ApiKey) -> Result<()> {
    tx.put(Table::ApiKeys, hash, key)?;
    tx.put(
        Table::ApiKeysByApp,
        &key_index(&key.app, &key.id),
        &hex::encode(hash),
    )
}

pub(super) fn remove_app_keys(tx: &mut WriteTx<'_>, app: &str) -> Result<usize> {
    let keys = tx.scan::<String>(Table::ApiKeysByApp, &app_prefix(app))?;
    for (k, hash) in &keys {
        if let Ok(h) = hex::decode(hash) {
            tx.delete(Table::ApiKeys, &h)?;
        }
        tx.delete(Table::ApiKeysByApp, k)?;
    }
    Ok(keys.len())
}

/// Deletes an app and every key it has.
pub fn delete_app(svc: &Service, actor: &Actor, id: &str) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let id = get_app(svc, actor, id)?.id;
    let mut tx = svc.store.write()?;
    let app = app_in(&tx, &id)?;
    // Deleting takes the app's scopes from every key: what narrowing it to nothing needs.
    crate::access::check_revocable(svc, by, Some(&app.workspace), app.scope_set())?;
    let n = remove_app_keys(&mut tx, &app.id)?;
    tx.delete(Table::ApiApps, app.id.as_bytes())?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_app.delete",
        &app.workspace,
        &app.id,
        serde_json::json!({"name": app.name, "keys_removed": n}),
    )?;
    tx.commit()
}

/// Creates a key for an app; returns it with the secret (shown this once).
pub fn create_key(
    svc: &Service,
    actor: &Actor,
    app_id: &str,
    name: Option<&str>,
    expires_at: Option<Timestamp>,
) -> Result<(ApiKey, String)> {
    let (by, src) = (&actor.principal, &actor.source);
    let app = get_app(svc, actor, app_id)?;
    // A new credential is sensitive: the console and the API alike need a recent sign-in.
    actor.require_recent(svc)?;
    // A new key hands its holder the app's scopes: the same check as granting them.
    check_grantable(svc, by, Some(&app.workspace), app.scope_set())?;
    let now = svc.now();
    if expires_at.is_some_and(|e| e <= now) {
        return Err(Error::invalid("expires_at", "must be in the future"));
    }
    if expires_at.is_some_and(|e| e > now.saturating_add(MAX_KEY_LIFETIME_SECS)) {
        return Err(Error::invalid(
            "expires_at",
            "must be at most 10 years ahead; leave it out for a key that does not expire",
        ));
    }
    let secret = generate_secret(API_KEY_PREFIX)?;
    let key = ApiKey {
        id: new_id("key_")?,
        app: app.id.clone(),
        workspace: app.workspace.clone(),
        name: match name {
            Some(n) if !n.trim().is_empty() => clean_name("name", n)?,
            _ => String::new(),
        },
        hint: hint(&secret),
        created_at: now,
        expires_at,
        created_by: actor_name(by),
    };
    let hash = crypto::sha256(secret.as_bytes());
    let mut tx = svc.store.write()?;
    store_key(&mut tx, &hash, &key)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_key.create",
        &app.workspace,
        &key.id,
        serde_json::json!({"app": app.id, "name": key.name, "expires_at": key.expires_at}),
    )?;
    tx.commit()?;
    Ok((key, secret))
}

fn actor_name(by: &Principal) -> String {
    match by {
        Principal::User { user, .. } => user.email.as_str().to_string(),
        Principal::Client(c) => c.id.clone(),
        Principal::Local(w) => (*w).to_string(),
    }
}

/// The keys of an app (never their secrets), with their last use.
pub fn keys(svc: &Service, actor: &Actor, app_id: &str) -> Result<Vec<(ApiKey, Option<Usage>)>> {
    let app = get_app(svc, actor, app_id)?;
    let r = svc.store.read()?;
    let pending = svc
        .access
        .key_usage
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (_, hash) in r.scan::<String>(Table::ApiKeysByApp, &app_prefix(&app.id))? {
        let Ok(h) = hex::decode(&hash) else {
            continue;
        };
        if let Some(k) = r.get::<ApiKey>(Table::ApiKeys, &h)? {
            let used = match pending.get(&k.id) {
                Some(u) => Some(*u),
                None => r.get::<Usage>(Table::KeyUsage, k.id.as_bytes())?,
            };
            out.push((k, used));
        }
    }
    out.sort_by_key(|(k, _)| k.created_at);
    Ok(out)
}

/// Deletes a key; it is refused on the very next check.
pub fn delete_key(svc: &Service, actor: &Actor, app_id: &str, key_id: &str) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let app = get_app(svc, actor, app_id)?;
    // Deleting a key takes the app's scopes from its holder.
    crate::access::check_revocable(svc, by, Some(&app.workspace), app.scope_set())?;
    let key_id = parse_id("key_", key_id, "API key")?;
    let idx = key_index(&app.id, key_id);
    let mut tx = svc.store.write()?;
    let hash: String = tx
        .get(Table::ApiKeysByApp, &idx)?
        .ok_or(Error::NotFound("API key"))?;
    if let Ok(h) = hex::decode(&hash) {
        tx.delete(Table::ApiKeys, &h)?;
    }
    tx.delete(Table::ApiKeysByApp, &idx)?;
    tx.delete(Table::KeyUsage, key_id.as_bytes())?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_key.delete",
        &app.workspace,
        key_id,
        serde_json::json!({"app": app.id}),
    )?;
    tx.commit()
}

/// Records a use of API key `id` (buffered; written every 30 s).
pub fn note_key_use(svc: &Service, id: &str, ip: Option<IpAddr>) {
    if let Ok(mut m) = svc.access.key_usage.lock() {
        m.insert(id.to_string(), Usage { at: svc.now(), ip });
    }
}

/// API keys by hash (any committed create or delete invalidates them all,
/// so a deleted key is refused on the very next check).
pub type KeyCache = crate::store::TableCache<[u8; 32], ApiKey>;
pub const KEY_CACHE_MAX: usize = 100_000;

pub(super) fn cached_key(svc: &Service, hash: [u8; 32]) -> Result<Option<Arc<ApiKey>>> {
    svc.access
        .keys
        .get_or_load(&svc.store, &hash, |r| r.get(Table::ApiKeys, &hash))
}

/// Deletes the API key `raw` (RFC 7009 revocation of a key). Returns whether
/// it existed. Holding the key is what justifies revoking it (RFC 7009 §2:
/// whoever holds a token may give it up), so the caller needs only
/// `introspect:credentials` where the key lives, not `admin:credentials`;
/// the audit record names that caller as the actor (`by.event`), and the
/// app and key revoked, so a revocation by a leaked key's finder is told
/// apart from the app owner's delete (review 4, finding 6).
pub fn revoke_key(svc: &Service, actor: &Actor, raw: &str) -> Result<bool> {
    let (by, src) = (&actor.principal, &actor.source);
    if !well_formed(API_KEY_PREFIX, raw) {
        return Ok(false);
    }
    let hash = crypto::sha256(raw.as_bytes());
    let Some(key) = svc.store.read()?.get::<ApiKey>(Table::ApiKeys, &hash)? else {
        return Ok(false);
    };
    actor.authorize(
        svc,
        Permission::IntrospectCredentials,
        Resource::Workspace(&key.workspace),
    )?;
    let idx = key_index(&key.app, &key.id);
    let mut tx = svc.store.write()?;
    tx.delete(Table::ApiKeys, &hash)?;
    tx.delete(Table::ApiKeysByApp, &idx)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_key.revoke",
        &key.workspace,
        &key.id,
        serde_json::json!({"app": key.app}),
    )?;
    tx.commit()?;
    Ok(true)
}

/// Writes the buffered last-use times (called periodically and at shutdown).
pub fn flush_usage(svc: &Service) -> Result<usize> {
    let pending: UsageCache = match svc.access.key_usage.lock() {
        Ok(mut m) => std::mem::take(&mut *m),
        Err(_) => return Ok(0),
    };
    if pending.is_empty() {
        return Ok(0);
    }
    let mut tx = svc.store.write()?;
    for (id, u) in &pending {
        tx.put(Table::KeyUsage, id.as_bytes(), u)?;
    }
    tx.commit()?;
    Ok(pending.len())
}
