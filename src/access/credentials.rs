//! Programmatic credentials: service accounts (client id + secret, traded for
//! access tokens), API apps with their keys, widget keys, and access-token
//! revocation. Secrets are `gh?_` + 43 base62 characters (256 bits) + a
//! 6-character checksum, so a typo is caught before any look-up and a leak is
//! recognisable; only their SHA-256 is stored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    Client, ClientKind, PermSet, Permission, Principal, Resource, authorize, check_grantable,
    clean_name, new_id, parse_id, record_change, snapshot,
};
use crate::audit::{self, Outcome, Source};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

pub const API_KEY_PREFIX: &str = "ghk_";
pub const CLIENT_SECRET_PREFIX: &str = "ghc_";
pub const WIDGET_KEY_PREFIX: &str = "ghw_";
const RANDOM_LEN: usize = 43;
const CHECK_LEN: usize = 6;
/// The furthest an API key's expiry may lie ahead.
const MAX_KEY_LIFETIME_SECS: i64 = 10 * 366 * 86_400;
const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62_u32(mut v: u32) -> [u8; CHECK_LEN] {
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = B62[(v % 62) as usize];
        v /= 62;
    }
    out
}

fn checksum(body: &str) -> [u8; CHECK_LEN] {
    let h = crypto::sha256(body.as_bytes());
    base62_u32(u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
}

/// A new secret: prefix + 43 random base62 characters + checksum.
pub fn generate_secret(prefix: &str) -> Result<String> {
    let mut s = String::with_capacity(prefix.len() + RANDOM_LEN + CHECK_LEN);
    s.push_str(prefix);
    while s.len() < prefix.len() + RANDOM_LEN {
        for b in crypto::random_bytes::<64>()? {
            // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
            if b < 248 && s.len() < prefix.len() + RANDOM_LEN {
                s.push(B62[(b % 62) as usize] as char);
            }
        }
    }
    let c = checksum(&s);
    s.extend(c.iter().map(|b| *b as char));
    Ok(s)
}

/// Shape and checksum, without touching the store.
pub fn well_formed(prefix: &str, s: &str) -> bool {
    s.len() == prefix.len() + RANDOM_LEN + CHECK_LEN
        && s.starts_with(prefix)
        && s.bytes()
            .skip(prefix.len())
            .all(|b| b.is_ascii_alphanumeric())
        && crypto::ct_eq(
            &checksum(&s[..prefix.len() + RANDOM_LEN]),
            &s.as_bytes()[prefix.len() + RANDOM_LEN..],
        )
}

fn hint(secret: &str) -> String {
    format!("{}…{}", &secret[..4], &secret[secret.len() - 4..])
}

/// The workspace (or platform) a credential is managed in.
fn res(ws: Option<&str>) -> Resource<'_> {
    match ws {
        Some(w) => Resource::Workspace(w),
        None => Resource::Platform,
    }
}

fn check_workspace(r: &impl Reader, ws: Option<&str>) -> Result<()> {
    if let Some(w) = ws {
        super::workspaces::get(r, w)?;
    }
    Ok(())
}

// ---- service accounts ----

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    /// Calls from other addresses are refused.
    #[default]
    Block,
    /// Calls from other addresses go through and are audited.
    Warn,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// Also the OAuth `client_id`.
    pub id: String,
    /// `None`: a platform-level account (created by platform admins only).
    pub workspace: Option<String>,
    pub name: String,
    pub description: String,
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
    pub ip_mode: IpMode,
    secret_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ServiceAccount {
    pub fn scope_set(&self) -> PermSet {
        PermSet::parse_names("scopes", &self.scopes).unwrap_or_default()
    }
    /// No allowlist: every address.
    pub fn ip_allowed(&self, ip: Option<IpAddr>) -> bool {
        if self.ip_allowlist.is_empty() {
            return true;
        }
        let Some(ip) = ip else { return false };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.ip_allowlist
            .iter()
            .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
            .any(|n| n.contains(&ip))
    }
}

fn parse_allowlist(list: &[String]) -> Result<Vec<String>> {
    list.iter()
        .map(|c| {
            let c = c.trim();
            let net = c
                .parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    Error::invalid(
                        "ip_allowlist",
                        format!(
                            "\"{c}\" is not an IPv4/IPv6 CIDR such as 10.0.0.0/8 or 2001:db8::/32"
                        ),
                    )
                })?;
            Ok(net.trunc().to_string())
        })
        .collect()
}

pub struct NewServiceAccount<'a> {
    pub workspace: Option<&'a str>,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub scopes: &'a [String],
    pub ip_allowlist: &'a [String],
    pub ip_mode: IpMode,
}

/// Creates an account; returns it with its secret (shown this once).
pub fn create_service_account(
    svc: &Service,
    by: &Principal,
    src: &Source,
    n: NewServiceAccount<'_>,
) -> Result<(ServiceAccount, String)> {
    authorize(
        svc,
        by,
        Permission::ManageCredentials,
        res(n.workspace),
        src,
    )?;
    let scopes = PermSet::parse_names("scopes", n.scopes)?;
    check_grantable(svc, by, n.workspace, scopes)?;
    let secret = generate_secret(CLIENT_SECRET_PREFIX)?;
    let now = svc.now();
    let sa = ServiceAccount {
        id: new_id("sa_")?,
        workspace: n.workspace.map(str::to_string),
        name: clean_name("name", n.name)?,
        description: n
            .description
            .unwrap_or("")
            .trim()
            .chars()
            .take(500)
            .collect(),
        scopes: scopes.names(),
        ip_allowlist: parse_allowlist(n.ip_allowlist)?,
        ip_mode: n.ip_mode,
        secret_hash: hex::encode(crypto::sha256(secret.as_bytes())),
        created_at: now,
        updated_at: now,
    };
    let mut tx = svc.store.write()?;
    check_workspace(&tx, n.workspace)?;
    tx.put(Table::ServiceAccounts, sa.id.as_bytes(), &sa)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.create",
        n.workspace,
        &sa.id,
        serde_json::json!({"name": sa.name, "scopes": sa.scopes, "ip_allowlist": sa.ip_allowlist, "ip_mode": sa.ip_mode}),
    )?;
    tx.commit()?;
    Ok((sa, secret))
}

/// Service accounts in the workspaces (or platform) `by` manages credentials for.
pub fn service_accounts(svc: &Service, by: &Principal) -> Result<Vec<ServiceAccount>> {
    let visible = super::workspaces_with(svc, by, Permission::ManageCredentials)?;
    let snap = snapshot(svc)?;
    let mut out: Vec<ServiceAccount> = snap
        .service_accounts
        .values()
        .filter(|s| match &s.workspace {
            Some(w) => visible.contains(w),
            None => by.is_platform_admin(),
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn get_service_account(
    svc: &Service,
    by: &Principal,
    src: &Source,
    id: &str,
) -> Result<ServiceAccount> {
    let id = parse_id("sa_", id, "service account")?;
    let sa = snapshot(svc)?
        .service_accounts
        .get(id)
        .cloned()
        .ok_or(Error::NotFound("service account"))?;
    authorize(
        svc,
        by,
        Permission::ManageCredentials,
        res(sa.workspace.as_deref()),
        src,
    )?;
    Ok(sa)
}

pub struct ServiceAccountUpdate<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub scopes: Option<&'a [String]>,
    pub ip_allowlist: Option<&'a [String]>,
    pub ip_mode: Option<IpMode>,
}

/// Edits an account; narrowed scopes bite on the very next check of its tokens.
pub fn update_service_account(
    svc: &Service,
    by: &Principal,
    src: &Source,
    id: &str,
    u: ServiceAccountUpdate<'_>,
) -> Result<ServiceAccount> {
    let mut sa = get_service_account(svc, by, src, id)?;
    if let Some(n) = u.name {
        sa.name = clean_name("name", n)?;
    }
    if let Some(d) = u.description {
        sa.description = d.trim().chars().take(500).collect();
    }
    if let Some(s) = u.scopes {
        let set = PermSet::parse_names("scopes", s)?;
        check_grantable(svc, by, sa.workspace.as_deref(), set)?;
        sa.scopes = set.names();
    }
    if let Some(l) = u.ip_allowlist {
        sa.ip_allowlist = parse_allowlist(l)?;
    }
    if let Some(m) = u.ip_mode {
        sa.ip_mode = m;
    }
    sa.updated_at = svc.now();
    let mut tx = svc.store.write()?;
    tx.put(Table::ServiceAccounts, sa.id.as_bytes(), &sa)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.update",
        sa.workspace.as_deref(),
        &sa.id,
        serde_json::json!({"name": sa.name, "scopes": sa.scopes, "ip_allowlist": sa.ip_allowlist, "ip_mode": sa.ip_mode}),
    )?;
    tx.commit()?;
    Ok(sa)
}

/// Replaces the secret; the old one stops working at once. Returns the new one.
pub fn rotate_service_account_secret(
    svc: &Service,
    by: &Principal,
    src: &Source,
    id: &str,
) -> Result<String> {
    let mut sa = get_service_account(svc, by, src, id)?;
    // A new secret hands its holder the account's scopes: the same check as granting them.
    check_grantable(svc, by, sa.workspace.as_deref(), sa.scope_set())?;
    let secret = generate_secret(CLIENT_SECRET_PREFIX)?;
    sa.secret_hash = hex::encode(crypto::sha256(secret.as_bytes()));
    sa.updated_at = svc.now();
    let mut tx = svc.store.write()?;
    tx.put(Table::ServiceAccounts, sa.id.as_bytes(), &sa)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.secret_rotate",
        sa.workspace.as_deref(),
        &sa.id,
        serde_json::Value::Null,
    )?;
    tx.commit()?;
    Ok(secret)
}

/// Deletes an account; its tokens are refused on the very next check.
pub fn delete_service_account(svc: &Service, by: &Principal, src: &Source, id: &str) -> Result<()> {
    let sa = get_service_account(svc, by, src, id)?;
    let mut tx = svc.store.write()?;
    tx.delete(Table::ServiceAccounts, sa.id.as_bytes())?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.delete",
        sa.workspace.as_deref(),
        &sa.id,
        serde_json::json!({"name": sa.name}),
    )?;
    tx.commit()
}

/// Client authentication for the token, introspection and revocation
/// endpoints. A wrong id or secret gets one answer; the reason is audited.
pub fn authenticate_client(
    svc: &Service,
    client_id: &str,
    secret: &str,
    src: &Source,
) -> Result<ServiceAccount> {
    let fail = |reason: &str| -> Result<ServiceAccount> {
        // Coalesced and group-committed like every refused check.
        super::defer_event(
            svc,
            src,
            audit::NewEvent::new("client.authenticate", Outcome::Failure)
                .actor(client_id.chars().take(64).collect::<String>(), None)
                .details(serde_json::json!({"reason": reason})),
        )?;
        Err(Error::Unauthenticated(
            "Invalid client id or secret.".into(),
        ))
    };
    if !well_formed(CLIENT_SECRET_PREFIX, secret) {
        return fail("malformed_secret");
    }
    let snap = snapshot(svc)?;
    let Some(sa) = snap.service_accounts.get(client_id) else {
        return fail("unknown_client");
    };
    let given = hex::encode(crypto::sha256(secret.as_bytes()));
    if !crypto::ct_eq(given.as_bytes(), sa.secret_hash.as_bytes()) {
        return fail("wrong_secret");
    }
    Ok(sa.clone())
}

/// Applies an account's IP allowlist: `block` refuses, `warn` audits and lets through.
pub fn check_ip(
    svc: &Service,
    sa: &ServiceAccount,
    ip: Option<IpAddr>,
    src: &Source,
) -> Result<()> {
    if sa.ip_allowed(ip) {
        return Ok(());
    }
    let block = sa.ip_mode == IpMode::Block;
    // Coalesced and group-committed like every refused check.
    super::defer_event(
        svc,
        src,
        audit::NewEvent::new(
            "service_account.ip_not_allowed",
            if block {
                Outcome::Denied
            } else {
                Outcome::Success
            },
        )
        .actor(format!("{} ({})", sa.name, sa.id), Some(sa.id.clone()))
        .workspace(sa.workspace.as_deref())
        .details(serde_json::json!({"ip": ip.map(|i| i.to_string()), "mode": sa.ip_mode})),
    )?;
    if block {
        return Err(Error::Forbidden(
            "This service account may not be used from your address.".into(),
        ));
    }
    Ok(())
}

/// The scopes a client-credentials grant gets: all granted ones, or the
/// requested subset; asking for more is refused (`invalid_scope`).
pub fn grant_scopes(sa: &ServiceAccount, requested: Option<&str>) -> Result<PermSet> {
    let granted = sa.scope_set();
    match requested.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(granted),
        Some(r) => {
            let want = PermSet::parse_scope("scope", r)?;
            if !want.is_subset(granted) {
                let extra: Vec<&str> = want
                    .iter()
                    .filter(|p| !granted.contains(*p))
                    .map(|p| p.as_str())
                    .collect();
                return Err(Error::Forbidden(format!(
                    "Scope not granted to this client: {}.",
                    extra.join(" ")
                )));
            }
            Ok(want)
        }
    }
}

// ---- API apps and keys ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiApp {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ApiApp {
    pub fn scope_set(&self) -> PermSet {
        PermSet::parse_names("scopes", &self.scopes).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub app: String,
    pub workspace: String,
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
    by: &Principal,
    src: &Source,
    ws: &str,
    name: &str,
    scopes: &[String],
) -> Result<ApiApp> {
    let ws = parse_id("ws_", ws, "workspace")?;
    authorize(
        svc,
        by,
        Permission::ManageCredentials,
        Resource::Workspace(ws),
        src,
    )?;
    let set = PermSet::parse_names("scopes", scopes)?;
    check_grantable(svc, by, Some(ws), set)?;
    let now = svc.now();
    let app = ApiApp {
        id: new_id("app_")?,
        workspace: ws.to_string(),
        name: clean_name("name", name)?,
        scopes: set.names(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = svc.store.write()?;
    check_workspace(&tx, Some(ws))?;
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
    let visible = super::workspaces_with(svc, by, Permission::ManageCredentials)?;
    let mut out: Vec<ApiApp> = snapshot(svc)?
        .apps
        .values()
        .filter(|a| visible.contains(&a.workspace))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn get_app(svc: &Service, by: &Principal, src: &Source, id: &str) -> Result<ApiApp> {
    let id = parse_id("app_", id, "API app")?;
    let app = snapshot(svc)?
        .apps
        .get(id)
        .cloned()
        .ok_or(Error::NotFound("API app"))?;
    authorize(
        svc,
        by,
        Permission::ManageCredentials,
        Resource::Workspace(&app.workspace),
        src,
    )?;
    Ok(app)
}

/// Renames or re-scopes an app; its keys carry the new scopes on the next check.
pub fn update_app(
    svc: &Service,
    by: &Principal,
    src: &Source,
    id: &str,
    name: Option<&str>,
    scopes: Option<&[String]>,
) -> Result<ApiApp> {
    let mut app = get_app(svc, by, src, id)?;
    if let Some(n) = name {
        app.name = clean_name("name", n)?;
    }
    if let Some(s) = scopes {
        let set = PermSet::parse_names("scopes", s)?;
        check_grantable(svc, by, Some(&app.workspace), set)?;
        app.scopes = set.names();
    }
    app.updated_at = svc.now();
    let mut tx = svc.store.write()?;
    tx.put(Table::ApiApps, app.id.as_bytes(), &app)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_app.update",
        app.workspace.as_str(),
        &app.id,
        serde_json::json!({"name": app.name, "scopes": app.scopes}),
    )?;
    tx.commit()?;
    Ok(app)
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

fn remove_app_keys(tx: &mut WriteTx<'_>, app: &str) -> Result<usize> {
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
pub fn delete_app(svc: &Service, by: &Principal, src: &Source, id: &str) -> Result<()> {
    let app = get_app(svc, by, src, id)?;
    let mut tx = svc.store.write()?;
    let n = remove_app_keys(&mut tx, &app.id)?;
    tx.delete(Table::ApiApps, app.id.as_bytes())?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "api_app.delete",
        app.workspace.as_str(),
        &app.id,
        serde_json::json!({"name": app.name, "keys_removed": n}),
    )?;
    tx.commit()
}

/// Creates a key for an app; returns it with the secret (shown this once).
pub fn create_key(
    svc: &Service,
    by: &Principal,
    src: &Source,
    app_id: &str,
    name: Option<&str>,
    expires_at: Option<Timestamp>,
) -> Result<(ApiKey, String)> {
    let app = get_app(svc, by, src, app_id)?;
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
        app.workspace.as_str(),
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
pub fn keys(
    svc: &Service,
    by: &Principal,
    src: &Source,
    app_id: &str,
) -> Result<Vec<(ApiKey, Option<Usage>)>> {
    let app = get_app(svc, by, src, app_id)?;
    let r = svc.store.read()?;
    let pending = svc.key_usage.lock().map(|m| m.clone()).unwrap_or_default();
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
pub fn delete_key(
    svc: &Service,
    by: &Principal,
    src: &Source,
    app_id: &str,
    key_id: &str,
) -> Result<()> {
    let app = get_app(svc, by, src, app_id)?;
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
        app.workspace.as_str(),
        key_id,
        serde_json::json!({"app": app.id}),
    )?;
    tx.commit()
}

// ---- widget keys ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WidgetKey {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub bot: String,
    pub origins: Vec<String>,
    pub hint: String,
    pub created_at: Timestamp,
}

fn parse_origin(o: &str) -> Result<String> {
    let o = o.trim().trim_end_matches('/');
    let bad = || {
        Error::invalid(
            "origins",
            format!("\"{o}\" is not a web origin such as https://shop.example.com"),
        )
    };
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "https" | "http")
        || rest.is_empty()
        || rest.contains('/')
        || rest.contains('@')
        || rest.contains(char::is_whitespace)
    {
        return Err(bad());
    }
    Ok(o.to_ascii_lowercase())
}

pub fn create_widget_key(
    svc: &Service,
    by: &Principal,
    src: &Source,
    ws: &str,
    name: &str,
    bot: &str,
    origins: &[String],
) -> Result<(WidgetKey, String)> {
    let ws = parse_id("ws_", ws, "workspace")?;
    authorize(
        svc,
        by,
        Permission::ManageCredentials,
        Resource::Workspace(ws),
        src,
    )?;
    check_grantable(
        svc,
        by,
        Some(ws),
        [Permission::UseAgents].into_iter().collect(),
    )?;
    if !super::valid_bot_id(bot.trim()) {
        return Err(Error::invalid(
            "bot",
            "must be the bot's id: letters, digits, - _ . (up to 100; not . or ..)",
        ));
    }
    if origins.is_empty() {
        return Err(Error::invalid(
            "origins",
            "give at least one web origin the widget runs on",
        ));
    }
    let secret = generate_secret(WIDGET_KEY_PREFIX)?;
    let w = WidgetKey {
        id: new_id("wgt_")?,
        workspace: ws.to_string(),
        name: clean_name("name", name)?,
        bot: bot.trim().to_string(),
        origins: origins
            .iter()
            .map(|o| parse_origin(o))
            .collect::<Result<_>>()?,
        hint: hint(&secret),
        created_at: svc.now(),
    };
    let mut tx = svc.store.write()?;
    check_workspace(&tx, Some(ws))?;
    tx.put(Table::WidgetKeys, &crypto::sha256(secret.as_bytes()), &w)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "widget_key.create",
        Some(ws),
        &w.id,
        serde_json::json!({"name": w.name, "bot": w.bot, "origins": w.origins}),
    )?;
    tx.commit()?;
    Ok((w, secret))
}

pub fn widget_keys(svc: &Service, by: &Principal) -> Result<Vec<WidgetKey>> {
    let visible = super::workspaces_with(svc, by, Permission::ManageCredentials)?;
    let mut out: Vec<WidgetKey> = svc
        .store
        .read()?
        .scan::<WidgetKey>(Table::WidgetKeys, b"")?
        .into_iter()
        .map(|(_, w)| w)
        .filter(|w| visible.contains(&w.workspace))
        .collect();
    out.sort_by_key(|w| w.created_at);
    Ok(out)
}

pub fn delete_widget_key(svc: &Service, by: &Principal, src: &Source, id: &str) -> Result<()> {
    let id = parse_id("wgt_", id, "widget key")?;
    let (k, w) = svc
        .store
        .read()?
        .scan::<WidgetKey>(Table::WidgetKeys, b"")?
        .into_iter()
        .find(|(_, w)| w.id == id)
        .ok_or(Error::NotFound("widget key"))?;
    authorize(
        svc,
        by,
        Permission::ManageCredentials,
        Resource::Workspace(&w.workspace),
        src,
    )?;
    let mut tx = svc.store.write()?;
    tx.delete(Table::WidgetKeys, &k)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "widget_key.delete",
        w.workspace.as_str(),
        &w.id,
        serde_json::json!({"name": w.name, "bot": w.bot}),
    )?;
    tx.commit()
}

/// Removes every credential of a workspace (in the caller's transaction).
pub(super) fn delete_all_in_workspace(tx: &mut WriteTx<'_>, ws: &str) -> Result<usize> {
    let mut n = 0;
    for (k, sa) in tx.scan::<ServiceAccount>(Table::ServiceAccounts, b"")? {
        if sa.workspace.as_deref() == Some(ws) {
            tx.delete(Table::ServiceAccounts, &k)?;
            n += 1;
        }
    }
    for (k, app) in tx.scan::<ApiApp>(Table::ApiApps, b"")? {
        if app.workspace == ws {
            n += remove_app_keys(tx, &app.id)?;
            tx.delete(Table::ApiApps, &k)?;
            n += 1;
        }
    }
    for (k, w) in tx.scan::<WidgetKey>(Table::WidgetKeys, b"")? {
        if w.workspace == ws {
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
    if let Ok(mut m) = svc.key_usage.lock() {
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
        scopes: app.scope_set(),
        app: Some(app.id.clone()),
        bot: None,
        origins: Vec::new(),
        exp: key.expires_at,
    })))
}

/// Records a use of API key `id` (buffered; written every 30 s).
pub fn note_key_use(svc: &Service, id: &str, ip: Option<IpAddr>) {
    if let Ok(mut m) = svc.key_usage.lock() {
        m.insert(id.to_string(), Usage { at: svc.now(), ip });
    }
}

/// API keys by hash (any committed create or delete invalidates them all,
/// so a deleted key is refused on the very next check).
pub type KeyCache = crate::store::TableCache<[u8; 32], ApiKey>;
pub const KEY_CACHE_MAX: usize = 100_000;

fn cached_key(svc: &Service, hash: [u8; 32]) -> Result<Option<Arc<ApiKey>>> {
    svc.key_cache
        .get_or_load(&svc.store, &hash, |r| r.get(Table::ApiKeys, &hash))
}

/// A service account's access token → the client, with the token's scopes
/// narrowed to what the account holds now.
pub fn principal_from_client_token(
    svc: &Service,
    client_id: &str,
    scope: &str,
    exp: i64,
    ip: Option<IpAddr>,
    src: &Source,
) -> Result<Principal> {
    let snap = snapshot(svc)?;
    let sa = snap
        .service_accounts
        .get(client_id)
        .ok_or_else(|| Error::Unauthenticated("The token's service account was deleted.".into()))?;
    // Unknown address (introspection, or `authorize` without `ip`): nothing to hold against the list.
    if ip.is_some() {
        check_ip(svc, sa, ip, src)?;
    }
    let scopes = PermSet::parse_scope("scope", scope)
        .unwrap_or_default()
        .intersect(sa.scope_set());
    Ok(Principal::Client(Arc::new(Client {
        kind: ClientKind::ServiceAccount,
        id: sa.id.clone(),
        name: sa.name.clone(),
        workspace: sa.workspace.clone(),
        scopes,
        app: None,
        bot: None,
        origins: Vec::new(),
        exp: Some(exp),
    })))
}

pub fn service_account_for(svc: &Service, client_id: &str) -> Result<Option<ServiceAccount>> {
    Ok(snapshot(svc)?.service_accounts.get(client_id).cloned())
}

/// Deletes the API key `raw` (RFC 7009 revocation of a key). Returns whether it existed.
pub fn revoke_key(svc: &Service, by: &Principal, src: &Source, raw: &str) -> Result<bool> {
    if !well_formed(API_KEY_PREFIX, raw) {
        return Ok(false);
    }
    let hash = crypto::sha256(raw.as_bytes());
    let Some(key) = svc.store.read()?.get::<ApiKey>(Table::ApiKeys, &hash)? else {
        return Ok(false);
    };
    authorize(
        svc,
        by,
        Permission::IntrospectCredentials,
        Resource::Workspace(&key.workspace),
        src,
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
        key.workspace.as_str(),
        &key.id,
        serde_json::json!({"app": key.app}),
    )?;
    tx.commit()?;
    Ok(true)
}

/// Writes the buffered last-use times (called periodically and at shutdown).
pub fn flush_usage(svc: &Service) -> Result<usize> {
    let pending: UsageCache = match svc.key_usage.lock() {
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

// ---- access-token revocation ----

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_a_checksum_that_catches_typos() {
        let k = generate_secret(API_KEY_PREFIX).unwrap_or_default();
        assert_eq!(k.len(), 53);
        assert!(well_formed(API_KEY_PREFIX, &k));
        let mut typo = k.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(!well_formed(
            API_KEY_PREFIX,
            &String::from_utf8(typo).unwrap_or_default()
        ));
        assert!(!well_formed(WIDGET_KEY_PREFIX, &k));
    }

    #[test]
    fn allowlists_match_ipv4_ipv6_and_mapped_addresses() {
        let mut sa = ServiceAccount {
            id: "sa_x".into(),
            workspace: None,
            name: "x".into(),
            description: String::new(),
            scopes: vec![],
            ip_allowlist: parse_allowlist(&["10.1.0.0/16".into(), "2001:db8::/32".into()])
                .unwrap_or_default(),
            ip_mode: IpMode::Block,
            secret_hash: String::new(),
            created_at: 0,
            updated_at: 0,
        };
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert!(sa.ip_allowed(ip("10.1.2.3")));
        assert!(sa.ip_allowed(ip("::ffff:10.1.2.3")));
        assert!(sa.ip_allowed(ip("2001:db8::1")));
        assert!(!sa.ip_allowed(ip("10.2.0.1")));
        assert!(!sa.ip_allowed(None));
        sa.ip_allowlist.clear();
        assert!(sa.ip_allowed(None));
        assert!(parse_allowlist(&["10.0.0.0/33".into()]).is_err());
    }
}
