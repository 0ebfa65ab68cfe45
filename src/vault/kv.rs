//! The KV version 2 secrets store, as Vault's `kv-v2` engine defines it: per
//! workspace, paths holding numbered versions of a JSON object, with
//! check-and-set, `max_versions`, `cas_required`, `delete_version_after`,
//! custom metadata, soft delete / undelete / destroy, metadata delete, folder
//! listing and the engine-wide `config`. Values are sealed in the store; the
//! record keys carry the workspace id and a blind index of the path, never
//! the path itself. It does not speak HTTP (that is `web::vault::kv`) and
//! does not decide scopes (that is `access`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::access::{Actor, Permission, Resource};
use crate::audit::{self, Outcome};
use crate::clock::{Timestamp, rfc3339};
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

/// Vault's default when neither the engine nor the key sets `max_versions`.
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// Vault's limits on custom metadata.
const MAX_CUSTOM_KEYS: usize = 64;
const MAX_CUSTOM_KEY_LEN: usize = 128;
const MAX_CUSTOM_VALUE_LEN: usize = 512;
/// The engine config's `delete_version_after` when it is switched off for
/// every key (Vault stores -1s).
const DVA_DISABLED: i64 = -1;

// ---------------------------------------------------------------------------
// Paths

/// A secret's path: `/`-separated segments, none empty, none `.` or `..`, no
/// %-encoding, whitespace or control character, not ending in `/`. Built
/// only by `SecretPath::parse`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretPath(String);

/// A folder to list: `""` (the root) or segments ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder(String);

impl SecretPath {
    /// Parses the raw tail of a request path (still percent-encoded), or a
    /// path typed in the console, normalised as narrowed scopes are
    /// (`vault::secret_path`: `..`, `.`, empty segments, %-encoding and so
    /// encoded slashes are refused, never resolved).
    pub fn parse(raw: &str) -> Result<SecretPath> {
        let p = crate::vault::secret_path(raw)?;
        if p.is_empty() {
            return Err(Error::invalid(
                "path",
                "missing path: name the secret, e.g. webhooks/stripe",
            ));
        }
        if p.ends_with('/') {
            return Err(Error::invalid(
                "path",
                "a secret's path must not end with / (that names a folder: LIST it under metadata/)",
            ));
        }
        Ok(SecretPath(p))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Folder {
    /// Parses the tail of a LIST request: empty for the root; a trailing `/`
    /// is implied, as Vault does for LIST.
    pub fn parse(raw: &str) -> Result<Folder> {
        let p = crate::vault::secret_path(raw)?;
        if p.is_empty() || p.ends_with('/') {
            return Ok(Folder(p));
        }
        Ok(Folder(format!("{p}/")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------
// Durations (Vault's `delete_version_after`)

/// Seconds from what Vault accepts for a duration: a number of seconds (as a
/// number or a string) or a Go duration string (`1h30m`, `45s`, `2d`).
pub fn parse_duration(field: &'static str, v: &Value) -> Result<i64> {
    let bad = || {
        Error::invalid(
            field,
            format!(
                "{field} must be a duration: a number of seconds or a string like 30s, 90m, 1h30m or 7d"
            ),
        )
    };
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(bad),
        Value::String(s) => parse_duration_str(s.trim()).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn parse_duration_str(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" | "us" | "µs" | "ms" => 0.0,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add((n * mult) as i64)?;
    }
    Some(if neg { -total } else { total })
}

/// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `1m30s`, `1h0m0s`.
pub fn format_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, (a % 3600) / 60, a % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

// ---------------------------------------------------------------------------
// Records

/// The engine-wide settings of one workspace's store.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    pub max_versions: u32,
    pub cas_required: bool,
    /// Seconds; 0 unset, `DVA_DISABLED` switched off for every key.
    pub delete_version_after: i64,
}

/// One version's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionMeta {
    pub created: Timestamp,
    /// When it was (or will be) deleted.
    pub deleted: Option<Timestamp>,
    pub destroyed: bool,
}

impl VersionMeta {
    fn deleted_by(&self, now: Timestamp) -> bool {
        self.deleted.is_some_and(|d| d <= now)
    }
}

/// A path's metadata: its versions and per-key settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub path: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub current: u64,
    pub oldest: u64,
    pub max_versions: u32,
    pub cas_required: bool,
    /// Seconds; 0 unset.
    pub delete_version_after: i64,
    pub custom: Option<BTreeMap<String, String>>,
    pub versions: BTreeMap<u64, VersionMeta>,
}

/// A version's data: the JSON object the client wrote. Never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct SecretData(pub Map<String, Value>);

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretData({} keys, values hidden)", self.0.len())
    }
}

impl Meta {
    fn new(path: &SecretPath, now: Timestamp) -> Meta {
        Meta {
            path: path.0.clone(),
            created: now,
            updated: now,
            current: 0,
            oldest: 0,
            max_versions: 0,
            cas_required: false,
            delete_version_after: 0,
            custom: None,
            versions: BTreeMap::new(),
        }
    }

    /// Vault's `validateCheckAndSetOption`.
    fn check_cas(&self, cas: Option<u64>, cfg: &Config) -> Result<()> {
        match cas {
            Some(c) if c != self.current => Err(Error::invalid(
                "options.cas",
                "check-and-set parameter did not match the current version",
            )),
            Some(_) => Ok(()),
            None if cfg.cas_required || self.cas_required => Err(Error::invalid(
                "options.cas",
                "check-and-set parameter required for this call",
            )),
            None => Ok(()),
        }
    }

    /// When a version created (or undeleted) at `at` is deleted: the shorter
    /// of the engine's and the key's `delete_version_after`, if either is set.
    fn deletion_time(&self, at: Timestamp, cfg: &Config) -> Option<Timestamp> {
        if cfg.delete_version_after == DVA_DISABLED {
            return None;
        }
        let (mount, key) = (cfg.delete_version_after, self.delete_version_after);
        let d = match (mount, key) {
            (0, 0) => return None,
            (0, k) => k,
            (m, 0) => m,
            (m, k) => m.min(k),
        };
        Some(at.saturating_add(d))
    }

    /// Adds version `current + 1`; returns the versions dropped past
    /// `max_versions` (the larger of the key's and the engine's, as Vault
    /// does), whose data the caller removes.
    fn add_version(&mut self, now: Timestamp, cfg: &Config) -> (u64, Vec<u64>) {
        self.current += 1;
        let deleted = self.deletion_time(now, cfg);
        self.versions.insert(
            self.current,
            VersionMeta {
                created: now,
                deleted,
                destroyed: false,
            },
        );
        self.updated = now;
        let max = match self.max_versions.max(cfg.max_versions) {
            0 => DEFAULT_MAX_VERSIONS,
            m => m,
        } as u64;
        let mut dropped = Vec::new();
        if self.current - self.oldest >= max {
            let last = self.current - max;
            for v in self.oldest..=last {
                if self.versions.remove(&v).is_some() {
                    dropped.push(v);
                }
            }
            self.oldest = last + 1;
        }
        (self.current, dropped)
    }

    fn view(&self, version: u64) -> Option<VersionView> {
        self.versions.get(&version).map(|v| VersionView {
            version,
            created_time: rfc3339(v.created),
            deletion_time: v.deleted.map(rfc3339).unwrap_or_default(),
            destroyed: v.destroyed,
            custom_metadata: self.custom.clone(),
        })
    }

    fn metadata_view(&self) -> MetadataView {
        MetadataView {
            cas_required: self.cas_required,
            created_time: rfc3339(self.created),
            current_version: self.current,
            custom_metadata: self.custom.clone(),
            delete_version_after: format_duration(self.delete_version_after),
            max_versions: self.max_versions,
            oldest_version: self.oldest,
            updated_time: rfc3339(self.updated),
            versions: self
                .versions
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        VersionState {
                            created_time: rfc3339(v.created),
                            deletion_time: v.deleted.map(rfc3339).unwrap_or_default(),
                            destroyed: v.destroyed,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Soft-deletes `versions` (those that exist and are live); true if any changed.
    fn delete(&mut self, versions: &[u64], now: Timestamp) -> bool {
        let mut changed = false;
        for n in versions {
            if let Some(v) = self.versions.get_mut(n)
                && !v.destroyed
                && !v.deleted_by(now)
            {
                v.deleted = Some(now);
                changed = true;
            }
        }
        changed
    }

    fn undelete(&mut self, versions: &[u64], now: Timestamp, cfg: &Config) -> bool {
        let again = self.deletion_time(now, cfg);
        let mut changed = false;
        for n in versions {
            if let Some(v) = self.versions.get_mut(n)
                && !v.destroyed
                && v.deleted.is_some()
            {
                v.deleted = again;
                changed = true;
            }
        }
        changed
    }

    /// Marks `versions` destroyed; returns those whose data to remove.
    fn destroy(&mut self, versions: &[u64]) -> Vec<u64> {
        let mut out = Vec::new();
        for n in versions {
            if let Some(v) = self.versions.get_mut(n)
                && !v.destroyed
            {
                v.destroyed = true;
                out.push(*n);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// What callers get back (Vault's field names)

/// One version as Vault describes it in `data/` answers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionView {
    pub created_time: String,
    pub custom_metadata: Option<BTreeMap<String, String>>,
    /// `""` while live.
    pub deletion_time: String,
    pub destroyed: bool,
    pub version: u64,
}

/// A version in the metadata's `versions` map.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionState {
    pub created_time: String,
    pub deletion_time: String,
    pub destroyed: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MetadataView {
    pub cas_required: bool,
    pub created_time: String,
    pub current_version: u64,
    pub custom_metadata: Option<BTreeMap<String, String>>,
    pub delete_version_after: String,
    pub max_versions: u32,
    pub oldest_version: u64,
    pub updated_time: String,
    pub versions: BTreeMap<String, VersionState>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConfigView {
    pub cas_required: bool,
    pub delete_version_after: String,
    pub max_versions: u32,
}

/// A read's answer: the data, or (404 in Vault's protocol) the metadata of a
/// version that is deleted or destroyed, or nothing at all.
#[derive(Debug)]
pub enum ReadOutcome {
    Found {
        data: SecretData,
        metadata: VersionView,
    },
    Gone(VersionView),
    Missing,
}

// ---------------------------------------------------------------------------
// Requests, parsed from Vault's JSON bodies

/// `POST data/:path`: `{"data": {...}, "options": {"cas": N}}`.
#[derive(Debug)]
pub struct WriteRequest {
    pub data: SecretData,
    pub cas: Option<u64>,
}

impl WriteRequest {
    pub fn from_json(body: &Value) -> Result<WriteRequest> {
        let obj = body
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object: {\"data\": {...}}"))?;
        let data = match obj.get("data") {
            Some(Value::Object(m)) => SecretData(m.clone()),
            Some(Value::Null) | None => {
                return Err(Error::invalid("data", "no data provided"));
            }
            Some(_) => {
                return Err(Error::invalid(
                    "data",
                    "data must be a JSON object of keys and values",
                ));
            }
        };
        Ok(WriteRequest {
            data,
            cas: cas_option(obj)?,
        })
    }
}

/// `options.cas`, weakly decoded as Vault does (a number or a numeric string).
fn cas_option(obj: &Map<String, Value>) -> Result<Option<u64>> {
    let cas = match obj.get("options") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o.get("cas"),
        Some(_) => return Err(Error::invalid("options", "options must be a JSON object")),
    };
    let bad = || Error::invalid("options.cas", "error parsing check-and-set parameter");
    match cas {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// `PATCH data/:path`: a JSON merge patch (RFC 7386) of the current version.
#[derive(Debug)]
pub struct PatchRequest {
    pub patch: Map<String, Value>,
    pub cas: Option<u64>,
}

impl PatchRequest {
    pub fn from_json(body: &Value) -> Result<PatchRequest> {
        let obj = body
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object: {\"data\": {...}}"))?;
        let patch = match obj.get("data") {
            Some(Value::Object(m)) => m.clone(),
            _ => return Err(Error::invalid("data", "no data provided")),
        };
        Ok(PatchRequest {
            patch,
            cas: cas_option(obj)?,
        })
    }
}

/// `versions` of delete, undelete and destroy: a list of integers, or a
/// comma-separated string of them (Vault's `TypeCommaIntSlice`).
pub fn versions_from_json(body: &Value) -> Result<Vec<u64>> {
    let bad = || {
        Error::invalid(
            "versions",
            "versions must be a list of version numbers, e.g. [1, 2]",
        )
    };
    let raw = body.get("versions");
    let out: Vec<u64> = match raw {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_u64().ok_or_else(bad),
                Value::String(s) => s.trim().parse().map_err(|_| bad()),
                _ => Err(bad()),
            })
            .collect::<Result<_>>()?,
        Some(Value::String(s)) => s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse().map_err(|_| bad()))
            .collect::<Result<_>>()?,
        Some(Value::Number(n)) => vec![n.as_u64().ok_or_else(bad)?],
        Some(_) => return Err(bad()),
    };
    if out.is_empty() {
        return Err(Error::invalid("versions", "no version number provided"));
    }
    Ok(out)
}

/// `POST`/`PATCH metadata/:path`: only the fields present change.
#[derive(Debug, Default)]
pub struct MetadataUpdate {
    pub max_versions: Option<u32>,
    pub cas_required: Option<bool>,
    pub delete_version_after: Option<i64>,
    /// For a POST the whole map; for a PATCH, `None` values remove keys.
    pub custom_metadata: Option<BTreeMap<String, Option<String>>>,
}

impl MetadataUpdate {
    pub fn from_json(body: &Value, patch: bool) -> Result<MetadataUpdate> {
        let obj = body
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object"))?;
        let mut up = MetadataUpdate {
            max_versions: max_versions(obj)?,
            cas_required: bool_field(obj, "cas_required")?,
            ..Default::default()
        };
        if let Some(v) = obj.get("delete_version_after").filter(|v| !v.is_null()) {
            let secs = parse_duration("delete_version_after", v)?;
            if secs < 0 {
                return Err(Error::invalid(
                    "delete_version_after",
                    "delete_version_after cannot be negative (0 clears it)",
                ));
            }
            up.delete_version_after = Some(secs);
        }
        match obj.get("custom_metadata") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let s = match v {
                        Value::Null if patch => None,
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        Value::Bool(b) => Some(b.to_string()),
                        _ => {
                            return Err(Error::invalid(
                                "custom_metadata",
                                format!(
                                    "custom_metadata validation failed: the value of {k:?} must be a string"
                                ),
                            ));
                        }
                    };
                    out.insert(k.clone(), s);
                }
                up.custom_metadata = Some(out);
            }
            Some(_) => {
                return Err(Error::invalid(
                    "custom_metadata",
                    "custom_metadata must be a JSON object of string keys and string values",
                ));
            }
        }
        Ok(up)
    }
}

fn max_versions(obj: &Map<String, Value>) -> Result<Option<u32>> {
    let bad = || {
        Error::invalid(
            "max_versions",
            "max_versions must be a whole number from 0 (the default, 10)",
        )
    };
    match obj.get("max_versions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn bool_field(obj: &Map<String, Value>, field: &'static str) -> Result<Option<bool>> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" || s == "0" => Ok(Some(false)),
        _ => Err(Error::invalid(
            field,
            format!("{field} must be true or false"),
        )),
    }
}

/// `POST config`: only the fields present change.
#[derive(Debug, Default)]
pub struct ConfigUpdate {
    pub max_versions: Option<u32>,
    pub cas_required: Option<bool>,
    /// Negative: switched off for every key; 0: cleared.
    pub delete_version_after: Option<i64>,
}

impl ConfigUpdate {
    pub fn from_json(body: &Value) -> Result<ConfigUpdate> {
        let obj = body
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object"))?;
        Ok(ConfigUpdate {
            max_versions: max_versions(obj)?,
            cas_required: bool_field(obj, "cas_required")?,
            delete_version_after: obj
                .get("delete_version_after")
                .filter(|v| !v.is_null())
                .map(|v| parse_duration("delete_version_after", v))
                .transpose()?,
        })
    }
}

fn check_custom(m: &BTreeMap<String, String>) -> Result<()> {
    let fail = |why: String| {
        Err(Error::invalid(
            "custom_metadata",
            format!("custom_metadata validation failed: {why}"),
        ))
    };
    if m.len() > MAX_CUSTOM_KEYS {
        return fail(format!(
            "payload must contain at most {MAX_CUSTOM_KEYS} keys, provided {}",
            m.len()
        ));
    }
    for (k, v) in m {
        if k.is_empty() || k.len() > MAX_CUSTOM_KEY_LEN {
            return fail(format!(
                "length of key {k:?} is {} but must be 0 < len(key) <= {MAX_CUSTOM_KEY_LEN}",
                k.len()
            ));
        }
        if v.is_empty() || v.len() > MAX_CUSTOM_VALUE_LEN {
            return fail(format!(
                "length of value for key {k:?} is {} but must be 0 < len(value) <= {MAX_CUSTOM_VALUE_LEN}",
                v.len()
            ));
        }
        if k.chars().chain(v.chars()).any(char::is_control) {
            return fail(format!(
                "key {k:?} or its value contains unprintable characters"
            ));
        }
    }
    Ok(())
}

/// RFC 7386 merge patch of `target` by `patch`.
fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => {
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(t) = entry {
                    merge_patch(t, p);
                }
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Storage (record keys: workspace id, 0, blind index of the path [, version])

fn meta_key(r: &impl BlindIndex, ws: &WorkspaceId, path: &str) -> Result<Vec<u8>> {
    let mut idx_input = String::with_capacity(ws.as_str().len() + 1 + path.len());
    idx_input.push_str(ws.as_str());
    idx_input.push('\0');
    idx_input.push_str(path);
    let idx = r.index("kv2_path", &idx_input)?;
    let mut k = Vec::with_capacity(ws.as_bytes().len() + 33);
    k.extend_from_slice(ws.as_bytes());
    k.push(0);
    k.extend_from_slice(&idx);
    Ok(k)
}

fn data_key(meta_key: &[u8], version: u64) -> Vec<u8> {
    let mut k = meta_key.to_vec();
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn ws_prefix(ws: &WorkspaceId) -> Vec<u8> {
    let mut k = ws.as_bytes().to_vec();
    k.push(0);
    k
}

/// The store's blind index, from the service or inside a transaction.
trait BlindIndex {
    fn index(&self, domain: &str, value: &str) -> Result<[u8; 32]>;
}

impl BlindIndex for crate::store::Store {
    fn index(&self, domain: &str, value: &str) -> Result<[u8; 32]> {
        self.blind_index(domain, value)
    }
}

impl BlindIndex for WriteTx<'_> {
    fn index(&self, domain: &str, value: &str) -> Result<[u8; 32]> {
        self.blind_index(domain, value)
    }
}

fn load_config(r: &impl Reader, ws: &WorkspaceId) -> Result<Config> {
    Ok(r.get(Table::KvConfig, ws.as_bytes())?.unwrap_or_default())
}

fn load_meta(r: &impl Reader, key: &[u8]) -> Result<Option<Meta>> {
    r.get(Table::KvMeta, key)
}

/// How audit records name a path: under the mount, as Vault clients write it.
fn target(path: &str) -> String {
    format!("secret/{path}")
}

/// Writes the audit event of a change to `path` (or the whole store) into `tx`.
fn audit_change(
    tx: &mut WriteTx<'_>,
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    action: &'static str,
    path: Option<&str>,
    details: Value,
) -> Result<()> {
    let mut ev = actor
        .principal
        .event(action, Outcome::Success)
        .workspace(Some(ws))
        .details(details);
    if let Some(p) = path {
        ev = ev.target(target(p));
    }
    audit::record(tx, svc.now(), &actor.source, ev)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Permission checks

/// What an operation needs: `secrets:read` (data, metadata, list),
/// `secrets:write` (new versions, delete, undelete, per-key settings) or
/// `secrets:admin` (destroy, metadata delete, the engine config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    Admin,
}

impl Need {
    fn permission(self) -> Permission {
        match self {
            Need::Read => Permission::SecretsRead,
            Need::Write => Permission::SecretsWrite,
            Need::Admin => Permission::SecretsAdmin,
        }
    }
}

/// The one check of this module: `need` in `ws`, on `path` (a secret's path,
/// or a folder ending in `/`) which a narrowed scope must cover; `None` is
/// the whole store (the engine config), which no narrowed scope covers.
fn authorize(
    svc: &Service,
    actor: &Actor,
    need: Need,
    ws: &WorkspaceId,
    path: Option<&str>,
) -> Result<()> {
    match path {
        Some(p) => crate::vault::authorize(svc, actor, need.permission(), ws, p),
        None => actor
            .authorize(svc, need.permission(), Resource::Workspace(ws))
            .map(|_| ()),
    }
}

// ---------------------------------------------------------------------------
// Operations

/// `GET data/:path[?version=N]` (0 or absent: the current version).
pub fn read(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    version: Option<u64>,
) -> Result<ReadOutcome> {
    authorize(svc, actor, Need::Read, ws, Some(path.as_str()))?;
    let out = read_unchecked(svc, ws, path, version)?;
    if matches!(out, ReadOutcome::Found { .. }) {
        crate::vault::note_access(svc, actor, ws, "secrets.read", &target(path.as_str()), 1, 0)?;
    }
    Ok(out)
}

fn read_unchecked(
    svc: &Service,
    ws: &WorkspaceId,
    path: &SecretPath,
    version: Option<u64>,
) -> Result<ReadOutcome> {
    let key = meta_key(&svc.store, ws, path.as_str())?;
    let r = svc.store.read()?;
    let Some(meta) = load_meta(&r, &key)? else {
        return Ok(ReadOutcome::Missing);
    };
    let n = version.filter(|v| *v > 0).unwrap_or(meta.current);
    let (Some(vm), Some(view)) = (meta.versions.get(&n), meta.view(n)) else {
        return Ok(ReadOutcome::Missing);
    };
    if vm.destroyed || vm.deleted_by(svc.now()) {
        return Ok(ReadOutcome::Gone(view));
    }
    let data: SecretData = r
        .get(Table::KvData, &data_key(&key, n))?
        .ok_or_else(|| Error::Integrity("kv: version data missing for a live version".into()))?;
    Ok(ReadOutcome::Found {
        data,
        metadata: view,
    })
}

/// `POST data/:path`: a new version.
pub fn write(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    req: WriteRequest,
) -> Result<VersionView> {
    authorize(svc, actor, Need::Write, ws, Some(path.as_str()))?;
    let mut tx = svc.store.write()?;
    let key = meta_key(&tx, ws, path.as_str())?;
    let cfg = load_config(&tx, ws)?;
    let mut meta = load_meta(&tx, &key)?.unwrap_or_else(|| Meta::new(path, svc.now()));
    meta.check_cas(req.cas, &cfg)?;
    let view = put_version(&mut tx, &key, &mut meta, &cfg, svc.now(), &req.data)?;
    audit_change(
        &mut tx,
        svc,
        actor,
        ws,
        "secrets.write",
        Some(path.as_str()),
        serde_json::json!({"version": view.version, "cas": req.cas}),
    )?;
    tx.commit()?;
    Ok(view)
}

fn put_version(
    tx: &mut WriteTx<'_>,
    key: &[u8],
    meta: &mut Meta,
    cfg: &Config,
    now: Timestamp,
    data: &SecretData,
) -> Result<VersionView> {
    let (n, dropped) = meta.add_version(now, cfg);
    tx.put(Table::KvData, &data_key(key, n), data)?;
    for v in dropped {
        tx.delete(Table::KvData, &data_key(key, v))?;
    }
    tx.put(Table::KvMeta, key, meta)?;
    meta.view(n)
        .ok_or_else(|| Error::internal("kv: the version just added is missing"))
}

/// `PATCH data/:path`: merges into the current version, which must be live.
pub fn patch(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    req: PatchRequest,
) -> Result<std::result::Result<VersionView, Option<VersionView>>> {
    authorize(svc, actor, Need::Write, ws, Some(path.as_str()))?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let key = meta_key(&tx, ws, path.as_str())?;
    let cfg = load_config(&tx, ws)?;
    let Some(mut meta) = load_meta(&tx, &key)? else {
        return Ok(Err(None));
    };
    meta.check_cas(req.cas, &cfg)?;
    let cur = meta.current;
    match meta.versions.get(&cur) {
        None => return Ok(Err(None)),
        Some(v) if v.destroyed || v.deleted_by(now) => return Ok(Err(meta.view(cur))),
        Some(_) => {}
    }
    let SecretData(mut data) = tx
        .get(Table::KvData, &data_key(&key, cur))?
        .ok_or_else(|| Error::Integrity("kv: version data missing for a live version".into()))?;
    merge_patch(&mut data, &req.patch);
    let view = put_version(&mut tx, &key, &mut meta, &cfg, now, &SecretData(data))?;
    audit_change(
        &mut tx,
        svc,
        actor,
        ws,
        "secrets.patch",
        Some(path.as_str()),
        serde_json::json!({"version": view.version}),
    )?;
    tx.commit()?;
    Ok(Ok(view))
}

/// Which versions a delete names: `DELETE data/:path` the current one.
#[derive(Debug, Clone)]
pub enum Versions {
    Latest,
    These(Vec<u64>),
}

/// `DELETE data/:path` and `POST delete/:path`: soft delete.
pub fn delete(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    which: Versions,
) -> Result<()> {
    authorize(svc, actor, Need::Write, ws, Some(path.as_str()))?;
    change_versions(svc, actor, ws, path, "secrets.delete", |meta, now, _| {
        let list = match &which {
            Versions::Latest => vec![meta.current],
            Versions::These(v) => v.clone(),
        };
        let changed = meta.delete(&list, now);
        (changed, list, Vec::new())
    })
}

/// `POST undelete/:path`.
pub fn undelete(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    versions: Vec<u64>,
) -> Result<()> {
    authorize(svc, actor, Need::Write, ws, Some(path.as_str()))?;
    change_versions(
        svc,
        actor,
        ws,
        path,
        "secrets.undelete",
        move |meta, now, cfg| {
            let changed = meta.undelete(&versions, now, cfg);
            (changed, versions, Vec::new())
        },
    )
}

/// Whether `actor` may destroy versions of `path` (the console asks before
/// its confirmation page; `destroy` checks again).
pub fn may_destroy(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
) -> Result<()> {
    authorize(svc, actor, Need::Admin, ws, Some(path.as_str()))
}

/// `PUT/POST destroy/:path`: the data of these versions is removed for good.
pub fn destroy(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    versions: Vec<u64>,
) -> Result<()> {
    authorize(svc, actor, Need::Admin, ws, Some(path.as_str()))?;
    change_versions(
        svc,
        actor,
        ws,
        path,
        "secrets.destroy",
        move |meta, _, _| {
            let gone = meta.destroy(&versions);
            (!gone.is_empty(), versions, gone)
        },
    )
}

/// Changes a path's versions with `f` (which answers whether anything
/// changed, the versions named, and those whose data to remove) and audits
/// it; a missing path or a no-op changes nothing, as in Vault (204 either way).
fn change_versions(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    action: &'static str,
    f: impl FnOnce(&mut Meta, Timestamp, &Config) -> (bool, Vec<u64>, Vec<u64>),
) -> Result<()> {
    let mut tx = svc.store.write()?;
    let key = meta_key(&tx, ws, path.as_str())?;
    let cfg = load_config(&tx, ws)?;
    let Some(mut meta) = load_meta(&tx, &key)? else {
        return Ok(());
    };
    let (changed, named, gone) = f(&mut meta, svc.now(), &cfg);
    if !changed {
        return Ok(());
    }
    for v in gone {
        tx.delete(Table::KvData, &data_key(&key, v))?;
    }
    tx.put(Table::KvMeta, &key, &meta)?;
    audit_change(
        &mut tx,
        svc,
        actor,
        ws,
        action,
        Some(path.as_str()),
        serde_json::json!({"versions": named}),
    )?;
    tx.commit()
}

/// `GET metadata/:path`.
pub fn metadata(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
) -> Result<Option<MetadataView>> {
    authorize(svc, actor, Need::Read, ws, Some(path.as_str()))?;
    let key = meta_key(&svc.store, ws, path.as_str())?;
    Ok(load_meta(&svc.store.read()?, &key)?.map(|m| m.metadata_view()))
}

/// `POST metadata/:path` (creates the path's metadata if need be) or
/// `PATCH metadata/:path` (`patch`: the path must exist; custom metadata
/// merges). Answers false for a PATCH of a missing path.
pub fn update_metadata(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    up: MetadataUpdate,
    patch: bool,
) -> Result<bool> {
    authorize(svc, actor, Need::Write, ws, Some(path.as_str()))?;
    let mut tx = svc.store.write()?;
    let key = meta_key(&tx, ws, path.as_str())?;
    let mut meta = match load_meta(&tx, &key)? {
        Some(m) => m,
        None if patch => return Ok(false),
        None => Meta::new(path, svc.now()),
    };
    if let Some(m) = up.max_versions {
        meta.max_versions = m;
    }
    if let Some(c) = up.cas_required {
        meta.cas_required = c;
    }
    if let Some(d) = up.delete_version_after {
        meta.delete_version_after = d;
    }
    if let Some(custom) = &up.custom_metadata {
        let mut next = if patch {
            meta.custom.clone().unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        for (k, v) in custom {
            match v {
                Some(v) => next.insert(k.clone(), v.clone()),
                None => next.remove(k),
            };
        }
        check_custom(&next)?;
        meta.custom = Some(next);
    }
    tx.put(Table::KvMeta, &key, &meta)?;
    audit_change(
        &mut tx,
        svc,
        actor,
        ws,
        "secrets.metadata",
        Some(path.as_str()),
        serde_json::json!({
            "max_versions": up.max_versions,
            "cas_required": up.cas_required,
            "delete_version_after": up.delete_version_after,
            // Names only: custom metadata values are the caller's, not the log's.
            "custom_metadata_keys": up.custom_metadata.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>()),
        }),
    )?;
    tx.commit()?;
    Ok(true)
}

/// `DELETE metadata/:path`: the path, every version and its data.
pub fn delete_metadata(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
) -> Result<()> {
    authorize(svc, actor, Need::Admin, ws, Some(path.as_str()))?;
    let mut tx = svc.store.write()?;
    let key = meta_key(&tx, ws, path.as_str())?;
    let Some(meta) = load_meta(&tx, &key)? else {
        return Ok(());
    };
    for v in meta.versions.keys() {
        tx.delete(Table::KvData, &data_key(&key, *v))?;
    }
    tx.delete(Table::KvMeta, &key)?;
    audit_change(
        &mut tx,
        svc,
        actor,
        ws,
        "secrets.metadata_delete",
        Some(path.as_str()),
        serde_json::json!({"versions": meta.versions.len()}),
    )?;
    tx.commit()
}

/// `LIST metadata/:folder`: the names right under `folder`, folders with a
/// trailing `/`, sorted; `None` when there are none (Vault answers 404).
pub fn list(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    folder: &Folder,
) -> Result<Option<Vec<String>>> {
    authorize(svc, actor, Need::Read, ws, Some(folder.as_str()))?;
    let keys = children(&all_meta(svc, ws)?, folder);
    Ok((!keys.is_empty()).then_some(keys))
}

fn all_meta(svc: &Service, ws: &WorkspaceId) -> Result<Vec<Meta>> {
    Ok(svc
        .store
        .read()?
        .scan::<Meta>(Table::KvMeta, &ws_prefix(ws))?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

fn children(metas: &[Meta], folder: &Folder) -> Vec<String> {
    let mut out = BTreeSet::new();
    for m in metas {
        if let Some(rest) = m.path.strip_prefix(folder.as_str()) {
            match rest.find('/') {
                Some(i) => out.insert(rest[..=i].to_string()),
                None => out.insert(rest.to_string()),
            };
        }
    }
    out.into_iter().collect()
}

/// `GET config`.
pub fn config(svc: &Service, actor: &Actor, ws: &WorkspaceId) -> Result<ConfigView> {
    authorize(svc, actor, Need::Read, ws, None)?;
    let c = load_config(&svc.store.read()?, ws)?;
    Ok(ConfigView {
        cas_required: c.cas_required,
        delete_version_after: format_duration(c.delete_version_after),
        max_versions: c.max_versions,
    })
}

/// `POST config`.
pub fn set_config(svc: &Service, actor: &Actor, ws: &WorkspaceId, up: ConfigUpdate) -> Result<()> {
    authorize(svc, actor, Need::Admin, ws, None)?;
    let mut tx = svc.store.write()?;
    let mut c = load_config(&tx, ws)?;
    if let Some(m) = up.max_versions {
        c.max_versions = m;
    }
    if let Some(b) = up.cas_required {
        c.cas_required = b;
    }
    if let Some(d) = up.delete_version_after {
        c.delete_version_after = if d < 0 { DVA_DISABLED } else { d };
    }
    tx.put(Table::KvConfig, ws.as_bytes(), &c)?;
    audit_change(
        &mut tx,
        svc,
        actor,
        ws,
        "secrets.config",
        None,
        serde_json::json!({
            "max_versions": c.max_versions,
            "cas_required": c.cas_required,
            "delete_version_after": format_duration(c.delete_version_after),
        }),
    )?;
    tx.commit()
}

// ---------------------------------------------------------------------------
// The console's Secrets page

/// One path as the console lists it: no values.
#[derive(Debug, Clone, Serialize)]
pub struct PathSummary {
    pub path: String,
    pub current_version: u64,
    pub versions: Vec<VersionRow>,
    pub updated_time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    pub version: u64,
    pub created_time: String,
    /// live, deleted, destroyed, or `deletes <time>` pending.
    pub state: String,
}

/// The console's Secrets page: the workspace's name, every path with its
/// versions (newest first) and what the caller may do. For a holder of any
/// of the three secrets permissions over the whole store; never a value.
#[derive(Debug, Clone)]
pub struct ConsoleView {
    pub workspace_name: String,
    pub paths: Vec<PathSummary>,
    pub may_read: bool,
    pub may_write: bool,
    pub may_admin: bool,
}

pub fn console_view(svc: &Service, actor: &Actor, ws: &WorkspaceId) -> Result<ConsoleView> {
    let name = crate::access::workspaces::get(&svc.store.read()?, ws)?.name;
    let holds = |n: Need| {
        crate::access::decide(
            svc,
            &actor.principal,
            n.permission(),
            Resource::Workspace(ws),
        )
        .map(|d| d.allow)
    };
    let (may_read, may_write, may_admin) =
        (holds(Need::Read)?, holds(Need::Write)?, holds(Need::Admin)?);
    if !(may_read || may_write || may_admin) {
        // Audited and refused.
        authorize(svc, actor, Need::Read, ws, None)?;
    }
    let now = svc.now();
    let mut paths: Vec<PathSummary> = all_meta(svc, ws)?
        .into_iter()
        .map(|m| PathSummary {
            versions: m
                .versions
                .iter()
                .rev()
                .map(|(n, v)| VersionRow {
                    version: *n,
                    created_time: rfc3339(v.created),
                    state: if v.destroyed {
                        "destroyed".into()
                    } else if v.deleted_by(now) {
                        "deleted".into()
                    } else if let Some(d) = v.deleted {
                        format!("deletes {}", rfc3339(d))
                    } else {
                        "live".into()
                    },
                })
                .collect(),
            current_version: m.current,
            updated_time: rfc3339(m.updated),
            path: m.path,
        })
        .collect();
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ConsoleView {
        workspace_name: name,
        paths,
        may_read,
        may_write,
        may_admin,
    })
}

/// The console's Reveal: one version's data for a holder of `secrets:read`
/// on the path, with an audit event committed before the value is returned,
/// and the page around it (`console_view`).
pub fn reveal(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    path: &SecretPath,
    version: Option<u64>,
) -> Result<(ConsoleView, ReadOutcome)> {
    authorize(svc, actor, Need::Read, ws, Some(path.as_str()))?;
    let out = read_unchecked(svc, ws, path, version)?;
    if let ReadOutcome::Found { metadata, .. } = &out {
        let mut tx = svc.store.write()?;
        audit_change(
            &mut tx,
            svc,
            actor,
            ws,
            "secrets.reveal",
            Some(path.as_str()),
            serde_json::json!({"version": metadata.version}),
        )?;
        tx.commit()?;
    }
    Ok((console_view(svc, actor, ws)?, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::default()
    }

    fn path(s: &str) -> SecretPath {
        SecretPath::parse(s).unwrap()
    }

    #[test]
    fn paths_refuse_dot_segments_encoded_slashes_and_empty_segments() {
        assert_eq!(path("webhooks/stripe").as_str(), "webhooks/stripe");
        for bad in [
            "",
            "a//b",
            "a/",
            "a/../b",
            "..",
            "a/./b",
            "a%2Fb",
            "a%2fb",
            "a%5Cb",
            "a%252Fb",
            "a%2E%2E/b",
            "..%2Fb",
            "a\\b",
            "a%00b",
            "a%20b",
            "a b",
            "a\u{7}b",
        ] {
            let e = SecretPath::parse(bad).err();
            assert!(
                matches!(e, Some(Error::Invalid { field: "path", .. })),
                "{bad:?} accepted"
            );
        }
        assert!(SecretPath::parse(&"a".repeat(300)).is_err());
        assert_eq!(Folder::parse("").unwrap().as_str(), "");
        assert_eq!(Folder::parse("a/b").unwrap().as_str(), "a/b/");
        assert_eq!(Folder::parse("a/b/").unwrap().as_str(), "a/b/");
        for bad in ["a//", "../a", "a/%2F", "a//b/"] {
            assert!(Folder::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations_read_and_print_as_vault_does() {
        let p = |v: Value| parse_duration("d", &v).unwrap();
        assert_eq!(p(serde_json::json!(90)), 90);
        assert_eq!(p(serde_json::json!("90")), 90);
        assert_eq!(p(serde_json::json!("1h30m")), 5400);
        assert_eq!(p(serde_json::json!("2d")), 172_800);
        assert_eq!(p(serde_json::json!("0s")), 0);
        assert_eq!(p(serde_json::json!("-1s")), -1);
        assert_eq!(p(serde_json::json!("1.5h")), 5400);
        assert!(parse_duration("d", &serde_json::json!("1x")).is_err());
        assert!(parse_duration("d", &serde_json::json!("h")).is_err());
        assert!(parse_duration("d", &serde_json::json!(true)).is_err());
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(45), "45s");
        assert_eq!(format_duration(90), "1m30s");
        assert_eq!(format_duration(3600), "1h0m0s");
        assert_eq!(format_duration(-1), "-1s");
        assert_eq!(format_duration(100 * 3600 + 61), "100h1m1s");
    }

    #[test]
    fn versions_count_up_and_old_ones_go_past_max_versions() {
        let mut m = Meta::new(&path("a"), 100);
        let c = cfg();
        for i in 1..=10 {
            let (n, dropped) = m.add_version(100 + i, &c);
            assert_eq!(n, i as u64);
            assert!(
                dropped.is_empty(),
                "nothing dropped up to the default of 10"
            );
        }
        assert_eq!(
            m.oldest, 1,
            "Vault moves oldest_version once the limit is reached"
        );
        let (n, dropped) = m.add_version(200, &c);
        assert_eq!((n, dropped), (11, vec![1]));
        assert_eq!(m.oldest, 2);
        assert_eq!(m.versions.len(), 10);
        // A smaller key setting than the default keeps the larger (Vault: max of the two).
        m.max_versions = 3;
        let c5 = Config {
            max_versions: 5,
            ..cfg()
        };
        let (_, dropped) = m.add_version(201, &c5);
        assert_eq!(dropped, vec![2, 3, 4, 5, 6, 7]);
        assert_eq!(
            m.versions.keys().copied().collect::<Vec<_>>(),
            vec![8, 9, 10, 11, 12]
        );
        assert_eq!(m.oldest, 8);
    }

    #[test]
    fn check_and_set_matches_the_current_version_or_is_refused() {
        let mut m = Meta::new(&path("a"), 1);
        let c = cfg();
        assert!(
            m.check_cas(Some(0), &c).is_ok(),
            "cas 0 writes only a new path"
        );
        m.add_version(2, &c);
        let e = m.check_cas(Some(0), &c).unwrap_err().to_string();
        assert!(
            e.contains("check-and-set parameter did not match the current version"),
            "{e}"
        );
        assert!(m.check_cas(Some(1), &c).is_ok());
        assert!(m.check_cas(Some(2), &c).is_err());
        assert!(m.check_cas(None, &c).is_ok());
        let strict = Config {
            cas_required: true,
            ..cfg()
        };
        let e = m.check_cas(None, &strict).unwrap_err().to_string();
        assert!(
            e.contains("check-and-set parameter required for this call"),
            "{e}"
        );
        m.cas_required = true;
        assert!(
            m.check_cas(None, &c).is_err(),
            "the key's own cas_required counts too"
        );
    }

    #[test]
    fn delete_undelete_destroy_follow_vault() {
        let c = cfg();
        let mut m = Meta::new(&path("a"), 1);
        m.add_version(10, &c);
        m.add_version(11, &c);
        assert!(m.delete(&[1, 7], 20), "an unknown version is ignored");
        assert!(m.versions[&1].deleted_by(20));
        assert!(!m.delete(&[1], 30), "deleting twice changes nothing");
        assert_eq!(m.versions[&1].deleted, Some(20));
        assert!(m.undelete(&[1], 40, &c));
        assert_eq!(m.versions[&1].deleted, None);
        assert_eq!(m.destroy(&[2, 9]), vec![2]);
        assert!(m.destroy(&[2]).is_empty());
        assert!(
            !m.undelete(&[2], 50, &c),
            "a destroyed version stays destroyed"
        );
        assert!(!m.delete(&[2], 50));
        let v = m.view(2).unwrap();
        assert!(v.destroyed);
        assert_eq!(v.deletion_time, "");
    }

    #[test]
    fn delete_version_after_takes_the_shorter_and_can_be_switched_off() {
        let mut m = Meta::new(&path("a"), 1);
        assert_eq!(m.deletion_time(100, &cfg()), None);
        m.delete_version_after = 60;
        assert_eq!(m.deletion_time(100, &cfg()), Some(160));
        let mount = Config {
            delete_version_after: 30,
            ..cfg()
        };
        assert_eq!(m.deletion_time(100, &mount), Some(130));
        let off = Config {
            delete_version_after: DVA_DISABLED,
            ..cfg()
        };
        assert_eq!(m.deletion_time(100, &off), None);
        m.add_version(100, &mount);
        assert!(!m.versions[&1].deleted_by(129));
        assert!(m.versions[&1].deleted_by(130));
        assert_eq!(m.view(1).unwrap().deletion_time, rfc3339(130));
        // Undelete restarts the clock from the undelete.
        m.delete(&[1], 110);
        m.undelete(&[1], 200, &mount);
        assert_eq!(m.versions[&1].deleted, Some(230));
    }

    #[test]
    fn listing_gives_the_next_segment_with_folders_marked() {
        let metas: Vec<Meta> = ["a/b", "a/c/d", "a/c/e", "b", "ab/x"]
            .iter()
            .map(|p| Meta::new(&path(p), 1))
            .collect();
        assert_eq!(
            children(&metas, &Folder::parse("").unwrap()),
            vec!["a/", "ab/", "b"]
        );
        assert_eq!(
            children(&metas, &Folder::parse("a").unwrap()),
            vec!["b", "c/"]
        );
        assert_eq!(
            children(&metas, &Folder::parse("a/c/").unwrap()),
            vec!["d", "e"]
        );
        assert!(children(&metas, &Folder::parse("zz").unwrap()).is_empty());
    }

    #[test]
    fn request_bodies_parse_as_vault_reads_them() {
        let w = WriteRequest::from_json(
            &serde_json::json!({"data": {"k": "v"}, "options": {"cas": "2"}}),
        )
        .unwrap();
        assert_eq!(w.cas, Some(2));
        assert!(WriteRequest::from_json(&serde_json::json!({"options": {}})).is_err());
        assert!(WriteRequest::from_json(&serde_json::json!({"data": "x"})).is_err());
        assert!(
            WriteRequest::from_json(&serde_json::json!({"data": {}, "options": {"cas": -1}}))
                .is_err()
        );
        assert_eq!(
            versions_from_json(&serde_json::json!({"versions": [1, 2]})).unwrap(),
            vec![1, 2]
        );
        assert_eq!(
            versions_from_json(&serde_json::json!({"versions": "1,3"})).unwrap(),
            vec![1, 3]
        );
        let e = versions_from_json(&serde_json::json!({"versions": []}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no version number provided"), "{e}");
        assert!(versions_from_json(&serde_json::json!({"versions": ["x"]})).is_err());
        let up = MetadataUpdate::from_json(
            &serde_json::json!({"max_versions": 3, "delete_version_after": "1h", "custom_metadata": {"owner": "ops", "n": 1}}),
            false,
        )
        .unwrap();
        assert_eq!(up.max_versions, Some(3));
        assert_eq!(up.delete_version_after, Some(3600));
        assert_eq!(up.custom_metadata.unwrap()["n"], Some("1".into()));
        assert!(
            MetadataUpdate::from_json(&serde_json::json!({"delete_version_after": "-1s"}), false)
                .is_err()
        );
        assert!(
            MetadataUpdate::from_json(&serde_json::json!({"max_versions": -1}), false).is_err()
        );
        let c = ConfigUpdate::from_json(
            &serde_json::json!({"delete_version_after": "-1s", "cas_required": true}),
        )
        .unwrap();
        assert_eq!(c.delete_version_after, Some(-1));
        let mut big = BTreeMap::new();
        for i in 0..65 {
            big.insert(format!("k{i}"), "v".into());
        }
        assert!(check_custom(&big).is_err());
        assert!(check_custom(&BTreeMap::from([("k".into(), String::new())])).is_err());
        assert!(check_custom(&BTreeMap::from([("k".into(), "v".into())])).is_ok());
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        let p = serde_json::json!({"a": null, "b": {"c": 9}, "f": "x"});
        merge_patch(t.as_object_mut().unwrap(), p.as_object().unwrap());
        assert_eq!(
            t,
            serde_json::json!({"b": {"c": 9, "d": 3}, "e": 4, "f": "x"})
        );
    }

    #[test]
    fn secret_data_never_prints_its_values() {
        let d = SecretData(
            serde_json::json!({"api_key": "hunter2"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(!format!("{d:?}").contains("hunter2"));
    }

    fn service() -> (tempfile::TempDir, Service, WorkspaceId) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::config::Settings::load(None, Vec::<(String, String)>::new()).unwrap();
        s.data_dir = dir.path().to_path_buf();
        let clock = std::sync::Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        let svc = Service::open(s, clock).unwrap();
        let ws = WorkspaceId::generate().unwrap();
        (dir, svc, ws)
    }

    fn put(
        svc: &Service,
        ws: &WorkspaceId,
        p: &str,
        v: &str,
        cas: Option<u64>,
    ) -> Result<VersionView> {
        let body = serde_json::json!({"data": {"v": v}, "options": {"cas": cas}});
        write(
            svc,
            &Actor::local("test"),
            ws,
            &path(p),
            WriteRequest::from_json(&body).unwrap(),
        )
    }

    fn get(svc: &Service, ws: &WorkspaceId, p: &str, version: Option<u64>) -> ReadOutcome {
        read_unchecked(svc, ws, &path(p), version).unwrap()
    }

    #[test]
    fn a_secret_lives_versions_and_dies_in_the_store() {
        let (_dir, svc, ws) = service();
        let me = Actor::local("test");
        assert_eq!(put(&svc, &ws, "a/b", "one", Some(0)).unwrap().version, 1);
        assert!(
            put(&svc, &ws, "a/b", "lost", Some(0)).is_err(),
            "cas 0 on an existing path"
        );
        assert_eq!(put(&svc, &ws, "a/b", "two", Some(1)).unwrap().version, 2);
        match get(&svc, &ws, "a/b", Some(1)) {
            ReadOutcome::Found { data, metadata } => {
                assert_eq!(data.0["v"], "one");
                assert_eq!(metadata.version, 1);
            }
            other => panic!("{other:?}"),
        }
        delete(&svc, &me, &ws, &path("a/b"), Versions::Latest).unwrap();
        assert!(
            matches!(get(&svc, &ws, "a/b", None), ReadOutcome::Gone(v) if v.version == 2 && !v.deletion_time.is_empty())
        );
        undelete(&svc, &me, &ws, &path("a/b"), vec![2]).unwrap();
        assert!(matches!(
            get(&svc, &ws, "a/b", None),
            ReadOutcome::Found { .. }
        ));
        destroy(&svc, &me, &ws, &path("a/b"), vec![1]).unwrap();
        assert!(matches!(get(&svc, &ws, "a/b", Some(1)), ReadOutcome::Gone(v) if v.destroyed));
        let key = meta_key(&svc.store, &ws, "a/b").unwrap();
        let r = svc.store.read().unwrap();
        assert!(
            r.get::<SecretData>(Table::KvData, &data_key(&key, 1))
                .unwrap()
                .is_none(),
            "destroyed data is gone"
        );
        drop(r);
        assert!(matches!(
            get(&svc, &ws, "a/b", Some(9)),
            ReadOutcome::Missing
        ));
        // Another workspace's same path is another secret.
        let other = WorkspaceId::generate().unwrap();
        assert!(matches!(
            get(&svc, &other, "a/b", None),
            ReadOutcome::Missing
        ));
        assert_eq!(put(&svc, &other, "a/b", "theirs", None).unwrap().version, 1);
        // Listing, then a metadata delete removes everything.
        put(&svc, &ws, "a/c/d", "x", None).unwrap();
        let l = list(&svc, &me, &ws, &Folder::parse("a").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(l, vec!["b", "c/"]);
        delete_metadata(&svc, &me, &ws, &path("a/b")).unwrap();
        assert!(metadata(&svc, &me, &ws, &path("a/b")).unwrap().is_none());
        assert!(matches!(
            get(&svc, &ws, "a/b", Some(2)),
            ReadOutcome::Missing
        ));
        assert!(matches!(
            get(&svc, &other, "a/b", None),
            ReadOutcome::Found { .. }
        ));
    }

    #[test]
    fn the_store_config_applies_to_every_path() {
        let (_dir, svc, ws) = service();
        let me = Actor::local("test");
        let up = ConfigUpdate::from_json(&serde_json::json!({"cas_required": true, "delete_version_after": "10m", "max_versions": 2})).unwrap();
        set_config(&svc, &me, &ws, up).unwrap();
        let c = config(&svc, &me, &ws).unwrap();
        assert_eq!(
            (
                c.cas_required,
                c.delete_version_after.as_str(),
                c.max_versions
            ),
            (true, "10m0s", 2)
        );
        assert!(
            put(&svc, &ws, "p", "1", None).is_err(),
            "cas required by the store"
        );
        let v = put(&svc, &ws, "p", "1", Some(0)).unwrap();
        assert_eq!(v.deletion_time, rfc3339(1_800_000_000 + 600));
        put(&svc, &ws, "p", "2", Some(1)).unwrap();
        put(&svc, &ws, "p", "3", Some(2)).unwrap();
        let m = metadata(&svc, &me, &ws, &path("p")).unwrap().unwrap();
        assert_eq!(m.versions.keys().collect::<Vec<_>>(), vec!["2", "3"]);
        assert_eq!(m.oldest_version, 2);
        let off =
            ConfigUpdate::from_json(&serde_json::json!({"delete_version_after": -1})).unwrap();
        set_config(&svc, &me, &ws, off).unwrap();
        assert_eq!(config(&svc, &me, &ws).unwrap().delete_version_after, "-1s");
        assert_eq!(put(&svc, &ws, "p", "4", Some(3)).unwrap().deletion_time, "");
    }
}
