//! The encryption service, wire-compatible with Vault's Transit engine: named
//! keys per workspace (versioned, rotated, trimmed, configured, deleted when
//! allowed), encrypt/decrypt/rewrap with `vault:vN:` ciphertexts (derived
//! keys per context, convergent encryption, associated data, batches with
//! per-item results), data keys, HMAC and random bytes. Key material lives
//! only sealed in the store (`Table::TransitKeys`) and unsealed in this
//! module's cache; it never appears in an answer, a log line or an audit
//! record. It does not speak HTTP (`web::vault::transit` does).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::access::{Actor, Permission};
use crate::clock::Timestamp;
use crate::crypto::{self, AeadAlg};
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::service::Service;
use crate::store::{Reader, Table};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The most items one `batch_input` may hold.
pub const BATCH_MAX: usize = 10_000;
/// The most random bytes one call returns (and the largest data key is 64).
pub const RANDOM_MAX: usize = 128 * 1024;
/// The shortest automatic rotation period Vault accepts (one hour).
const MIN_ROTATE_PERIOD: i64 = 3600;

// ---- keys ----

/// A Transit key type (Vault's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "aes256-gcm96")]
    Aes256Gcm96,
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
    #[serde(rename = "xchacha20-poly1305")]
    XChaCha20Poly1305,
}

impl KeyType {
    fn parse(s: &str) -> Result<KeyType> {
        match s {
            "" | "aes256-gcm96" => Ok(KeyType::Aes256Gcm96),
            "chacha20-poly1305" => Ok(KeyType::ChaCha20Poly1305),
            "xchacha20-poly1305" => Ok(KeyType::XChaCha20Poly1305),
            other => Err(Error::invalid(
                "type",
                format!(
                    "unknown key type {}; use aes256-gcm96 (the default), chacha20-poly1305 or xchacha20-poly1305",
                    echo(other)
                ),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::ChaCha20Poly1305 => "chacha20-poly1305",
            KeyType::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }
    fn aead(self) -> AeadAlg {
        match self {
            KeyType::Aes256Gcm96 => AeadAlg::Aes256Gcm,
            KeyType::ChaCha20Poly1305 => AeadAlg::ChaCha20Poly1305,
            KeyType::XChaCha20Poly1305 => AeadAlg::XChaCha20Poly1305,
        }
    }
}

/// 32 bytes of key material: wiped on drop, never printed, stored (sealed)
/// as base64.
#[derive(Clone)]
struct Material(Zeroizing<Vec<u8>>);

impl Material {
    fn generate() -> Result<Material> {
        let mut k = Zeroizing::new(vec![0u8; 32]);
        crypto::fill_random(&mut k)?;
        Ok(Material(k))
    }
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Material(…)")
    }
}

impl Serialize for Material {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // Only ever written into a sealed table (see `Table::TransitKeys`).
        s.serialize_str(&Zeroizing::new(B64.encode(self.0.as_slice())))
    }
}

impl<'de> Deserialize<'de> for Material {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        B64.decode(s.as_bytes())
            .map(|v| Material(Zeroizing::new(v)))
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyVersion {
    key: Material,
    hmac_key: Material,
    created_at: Timestamp,
}

/// One Transit key of one workspace, every version's material included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransitKey {
    pub name: String,
    pub workspace: WorkspaceId,
    #[serde(rename = "type")]
    pub kind: KeyType,
    pub derived: bool,
    pub convergent: bool,
    pub deletion_allowed: bool,
    /// Seconds; 0: no automatic rotation.
    pub auto_rotate_period: i64,
    pub min_decryption_version: u32,
    pub min_encryption_version: u32,
    pub min_available_version: u32,
    pub latest_version: u32,
    versions: BTreeMap<u32, KeyVersion>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub rotated_at: Timestamp,
}

fn record_key(ws: &WorkspaceId, name: &str) -> Vec<u8> {
    format!("{ws}/{name}").into_bytes()
}

impl TransitKey {
    /// What a key read answers (Vault's fields): never any key material.
    pub fn public(&self) -> Value {
        let keys: Map<String, Value> = self
            .versions
            .iter()
            .map(|(v, k)| (v.to_string(), json!(k.created_at)))
            .collect();
        let mut d = json!({
            "name": self.name,
            "type": self.kind.as_str(),
            "derived": self.derived,
            "deletion_allowed": self.deletion_allowed,
            "exportable": false,
            "allow_plaintext_backup": false,
            "keys": keys,
            "latest_version": self.latest_version,
            "min_available_version": self.min_available_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "supports_encryption": true,
            "supports_decryption": true,
            "supports_derivation": true,
            "supports_signing": false,
            "auto_rotate_period": self.auto_rotate_period,
            "imported_key": false,
            "soft_deleted": false,
        });
        if self.derived {
            d["kdf"] = json!("hkdf_sha256");
            d["convergent_encryption"] = json!(self.convergent);
            if self.convergent {
                d["convergent_encryption_version"] = json!(3);
            }
        }
        d
    }

    fn new_version(&mut self, now: Timestamp) -> Result<u32> {
        let v = self.latest_version + 1;
        self.versions.insert(
            v,
            KeyVersion {
                key: Material::generate()?,
                hmac_key: Material::generate()?,
                created_at: now,
            },
        );
        self.latest_version = v;
        self.rotated_at = now;
        Ok(v)
    }

    fn version(&self, v: u32) -> Result<&KeyVersion> {
        self.versions
            .get(&v)
            .ok_or_else(|| Error::invalid("key_version", "invalid key version"))
    }

    /// The key that encrypts under version `v` for `context`: the version's
    /// own, or (derived keys) HKDF-SHA256 of it with the context as info.
    fn cipher_key(&self, v: u32, context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let base = &self.version(v)?.key.0;
        if !self.derived {
            return Ok(base.clone());
        }
        if context.is_empty() {
            return Err(Error::invalid(
                "context",
                "missing 'context' for key derivation; the key was created using a derived key, \
                 which means additional, per-request information must be included in order to \
                 perform operations with the key",
            ));
        }
        let mut k = Zeroizing::new(vec![0u8; 32]);
        crypto::hkdf_sha256(base, context, &mut k)?;
        Ok(k)
    }

    /// The version to encrypt with: `requested` (0: the latest), within
    /// `min_encryption_version` and what trimming left.
    fn encryption_version(&self, requested: u32) -> Result<u32> {
        let v = if requested == 0 {
            self.latest_version
        } else {
            requested
        };
        if v > self.latest_version {
            return Err(Error::invalid(
                "key_version",
                "requested version for encryption is higher than the latest key version",
            ));
        }
        if v < self.min_encryption_version.max(self.min_available_version) {
            return Err(Error::invalid(
                "key_version",
                "requested version for encryption is less than the minimum encryption key version",
            ));
        }
        Ok(v)
    }

    fn encrypt(
        &self,
        requested: u32,
        context: &[u8],
        aad: &[u8],
        plain: &[u8],
    ) -> Result<(String, u32)> {
        let v = self.encryption_version(requested)?;
        let key = self.cipher_key(v, context)?;
        let alg = self.kind.aead();
        let mut nonce = vec![0u8; alg.nonce_len()];
        if self.convergent {
            // The same plaintext and context give the same ciphertext: the
            // nonce is an HMAC of them under a key of its own.
            let mut nk = Zeroizing::new(vec![0u8; 32]);
            let mut info = b"gatehouse/transit/convergent-nonce\0".to_vec();
            info.extend_from_slice(context);
            crypto::hkdf_sha256(&self.version(v)?.key.0, &info, &mut nk)?;
            let mut data = aad.to_vec();
            data.push(0);
            data.extend_from_slice(plain);
            let mac = crypto::hmac_sha256(&nk, &data);
            nonce.copy_from_slice(&mac[..alg.nonce_len()]);
        } else {
            crypto::fill_random(&mut nonce)?;
        }
        let ct = crypto::aead_seal(alg, &key, &nonce, aad, plain)?;
        let mut out = nonce;
        out.extend_from_slice(&ct);
        Ok((format!("vault:v{v}:{}", B64.encode(&out)), v))
    }

    /// Opens a `vault:vN:` ciphertext; returns the plaintext and its version.
    fn decrypt(
        &self,
        ciphertext: &str,
        context: &[u8],
        aad: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, u32)> {
        let v = parse_versioned("ciphertext", ciphertext)?;
        if v > self.latest_version {
            return Err(Error::invalid(
                "ciphertext",
                "invalid ciphertext: version is too new",
            ));
        }
        if v < self.min_decryption_version.max(self.min_available_version) {
            return Err(Error::invalid(
                "ciphertext",
                "ciphertext or signature version is disallowed by policy (too old)",
            ));
        }
        let body = ciphertext.splitn(3, ':').nth(2).ok_or_else(|| {
            Error::invalid("ciphertext", "invalid ciphertext: wrong number of fields")
        })?;
        let raw = B64.decode(body).map_err(|_| {
            Error::invalid("ciphertext", "invalid ciphertext: could not decode base64")
        })?;
        let alg = self.kind.aead();
        if raw.len() < alg.nonce_len() + crypto::TAG_LEN {
            return Err(Error::invalid(
                "ciphertext",
                "invalid ciphertext: too short",
            ));
        }
        let key = self.cipher_key(v, context)?;
        let (nonce, ct) = raw.split_at(alg.nonce_len());
        let plain = crypto::aead_open(alg, &key, nonce, aad, ct)
            .ok_or_else(|| Error::invalid("ciphertext", "cipher: message authentication failed"))?;
        Ok((plain, v))
    }

    fn hmac(&self, requested: u32, bits: u16, input: &[u8]) -> Result<String> {
        let v = if requested == 0 {
            self.latest_version
        } else {
            requested
        };
        if v > self.latest_version || v < self.min_available_version {
            return Err(Error::invalid("key_version", "invalid key version"));
        }
        if v < self.min_encryption_version {
            return Err(Error::invalid(
                "key_version",
                "cannot use key version below the minimum encryption version",
            ));
        }
        let mac = crypto::hmac_sha2(bits, &self.version(v)?.hmac_key.0, input)
            .ok_or_else(|| Error::internal("hmac size"))?;
        Ok(format!("vault:v{v}:{}", B64.encode(mac)))
    }

    fn verify(&self, bits: u16, input: &[u8], hmac: &str) -> Result<bool> {
        let v = parse_versioned("hmac", hmac)?;
        if v > self.latest_version {
            return Err(Error::invalid(
                "hmac",
                "invalid signature: version is too new",
            ));
        }
        if v < self.min_decryption_version.max(self.min_available_version) {
            return Err(Error::invalid(
                "hmac",
                "ciphertext or signature version is disallowed by policy (too old)",
            ));
        }
        let body = hmac.splitn(3, ':').nth(2).unwrap_or("");
        let given = B64
            .decode(body)
            .map_err(|_| Error::invalid("hmac", "invalid base64 signature value"))?;
        let mac = crypto::hmac_sha2(bits, &self.version(v)?.hmac_key.0, input)
            .ok_or_else(|| Error::internal("hmac size"))?;
        Ok(crypto::ct_eq(&mac, &given))
    }
}

/// The `N` of a `vault:vN:…` value.
fn parse_versioned(field: &'static str, s: &str) -> Result<u32> {
    let what = if field == "hmac" {
        "signature"
    } else {
        "ciphertext"
    };
    let Some(rest) = s.strip_prefix("vault:") else {
        return Err(Error::invalid(field, format!("invalid {what}: no prefix")));
    };
    let mut parts = rest.splitn(2, ':');
    let (Some(ver), Some(_)) = (parts.next(), parts.next()) else {
        return Err(Error::invalid(
            field,
            format!("invalid {what}: wrong number of fields"),
        ));
    };
    ver.strip_prefix('v')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("invalid {what}: version number could not be decoded"),
            )
        })
}

// ---- the cache of unsealed keys ----

/// Keys unsealed once and kept, so an encrypt costs no store read: every
/// commit to `Table::TransitKeys` (create, rotate, config, trim, delete)
/// moves its generation and empties the cache.
#[derive(Default)]
pub struct Cache {
    map: RwLock<(u64, HashMap<Vec<u8>, Arc<TransitKey>>)>,
}

/// Keys held in the cache at most; beyond, it starts over.
const CACHE_MAX: usize = 10_000;

fn load(svc: &Service, ws: &WorkspaceId, name: &str) -> Result<Option<Arc<TransitKey>>> {
    let gen_now = svc.store.generation(Table::TransitKeys);
    let rk = record_key(ws, name);
    if let Ok(m) = svc.vault.transit.map.read()
        && m.0 == gen_now
        && let Some(k) = m.1.get(&rk)
    {
        return Ok(Some(k.clone()));
    }
    let Some(k) = svc
        .store
        .read()?
        .get::<TransitKey>(Table::TransitKeys, &rk)?
    else {
        return Ok(None);
    };
    let k = Arc::new(k);
    if let Ok(mut m) = svc.vault.transit.map.write() {
        if m.0 != gen_now || m.1.len() >= CACHE_MAX {
            *m = (gen_now, HashMap::new());
        }
        m.1.insert(rk, k.clone());
    }
    Ok(Some(k))
}

fn not_found() -> Error {
    Error::NotFound("transit key")
}

fn encryption_key_not_found() -> Error {
    Error::invalid("name", "encryption key not found")
}

// ---- reading the request body (Vault's loose JSON types) ----

/// A request body's fields, read the way Vault reads them: numbers may come
/// as strings, booleans as `"true"`/`"false"`; unknown fields are ignored.
pub struct Fields<'a>(pub &'a Map<String, Value>);

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Fields<'a> {
    pub fn of(v: &'a Value) -> Fields<'a> {
        match v.as_object() {
            Some(m) => Fields(m),
            None => Fields(&EMPTY),
        }
    }
    fn has(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| !v.is_null())
    }
    fn str(&self, k: &'static str) -> Result<Option<&'a str>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Error::invalid(k, format!("{k} must be a string"))),
        }
    }
    fn u32(&self, k: &'static str) -> Result<Option<u32>> {
        let bad = || Error::invalid(k, format!("{k} must be a whole number (0 or more)"));
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(bad),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }
    fn bool(&self, k: &'static str) -> Result<Option<bool>> {
        let bad = || Error::invalid(k, format!("{k} must be true or false"));
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" | "" => Ok(Some(false)),
                _ => Err(bad()),
            },
            Some(Value::Number(n)) => Ok(Some(n.as_u64() != Some(0))),
            Some(_) => Err(bad()),
        }
    }
    /// A duration: seconds as a number, or Vault's `90s`, `30m`, `24h`, `7d`.
    fn duration(&self, k: &'static str) -> Result<Option<i64>> {
        let bad = || {
            Error::invalid(
                k,
                format!(
                    "{k} must be a duration: seconds, or a number with s, m, h or d (e.g. 24h)"
                ),
            )
        };
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().filter(|n| *n >= 0).map(Some).ok_or_else(bad),
            Some(Value::String(s)) => parse_duration(s).map(Some).ok_or_else(bad),
            Some(_) => Err(bad()),
        }
    }
    fn batch(&self) -> Result<Option<&'a Vec<Value>>> {
        match self.0.get("batch_input") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) if a.is_empty() => Err(Error::invalid(
                "batch_input",
                "missing batch input to process",
            )),
            Some(Value::Array(a)) if a.len() > BATCH_MAX => Err(Error::invalid(
                "batch_input",
                format!("batch_input holds at most {BATCH_MAX} items"),
            )),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(Error::invalid(
                "batch_input",
                "failed to parse batch input: batch_input must be a list of objects",
            )),
        }
    }
}

fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1),
        (i, 'm') => (&s[..i], 60),
        (i, 'h') => (&s[..i], 3600),
        (i, 'd') => (&s[..i], 86_400),
        _ => (s, 1),
    };
    num.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)?
        .checked_mul(mult)
}

/// A caller-supplied value in an error message: short, one line.
fn echo(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(40).collect();
    clean
}

/// Standard base64 of a field, as Vault encodes `plaintext`, `context`,
/// `input`; a clear 400 naming the field otherwise.
fn b64_field(field: &'static str, s: &str) -> Result<Zeroizing<Vec<u8>>> {
    B64.decode(s.trim()).map(Zeroizing::new).map_err(|_| {
        Error::invalid(
            field,
            format!("{field} must be standard base64 (failed to base64-decode {field})"),
        )
    })
}

// ---- answers ----

/// What an operation answers: Vault's `data` (none: 204), and for a batch
/// with failed items the status Vault gives it (`batch_failed`).
#[derive(Debug)]
pub struct Reply {
    pub data: Option<Value>,
    pub warnings: Vec<String>,
    pub batch_failed: Option<BatchFailure>,
}

/// A batch whose items did not all succeed: 400 (Vault's answer), or
/// `partial_failure_response_code` when some did and it was given.
#[derive(Debug, Clone, Copy)]
pub struct BatchFailure {
    pub any_success: bool,
    pub partial_code: Option<u16>,
}

impl Reply {
    fn data(d: Value) -> Reply {
        Reply {
            data: Some(d),
            warnings: Vec::new(),
            batch_failed: None,
        }
    }
    fn none() -> Reply {
        Reply {
            data: None,
            warnings: Vec::new(),
            batch_failed: None,
        }
    }
}

// ---- key management ----

/// `POST /v1/transit/keys/:name`: creates a key (an existing one is
/// answered as it stands, as Vault does).
pub fn create_key(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    body: &Value,
) -> Result<Reply> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitManage, ws, name)?;
    let f = Fields::of(body);
    let kind = KeyType::parse(f.str("type")?.unwrap_or(""))?;
    let derived = f.bool("derived")?.unwrap_or(false);
    let convergent = f.bool("convergent_encryption")?.unwrap_or(false);
    if f.bool("exportable")?.unwrap_or(false) {
        return Err(Error::invalid(
            "exportable",
            "exportable keys are not offered: key material never leaves Gatehouse",
        ));
    }
    if f.bool("allow_plaintext_backup")?.unwrap_or(false) {
        return Err(Error::invalid(
            "allow_plaintext_backup",
            "plaintext backups are not offered: key material never leaves Gatehouse",
        ));
    }
    if f.has("key_size") {
        return Err(Error::invalid(
            "key_size",
            "key_size is not valid for this key type",
        ));
    }
    let period = rotate_period(f.duration("auto_rotate_period")?.unwrap_or(0))?;
    if convergent && !derived {
        return Err(Error::invalid(
            "convergent_encryption",
            "convergent encryption requires derivation to be enabled",
        ));
    }
    let key = create_in(svc, actor, ws, name, kind, derived, convergent, period)?;
    Ok(Reply::data(key.public()))
}

fn rotate_period(p: i64) -> Result<i64> {
    if p != 0 && p < MIN_ROTATE_PERIOD {
        return Err(Error::invalid(
            "auto_rotate_period",
            "auto rotate period must be 0 to disable or at least an hour",
        ));
    }
    Ok(p)
}

#[allow(clippy::too_many_arguments)] // a key's settings, named at the two calls
fn create_in(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    kind: KeyType,
    derived: bool,
    convergent: bool,
    period: i64,
) -> Result<Arc<TransitKey>> {
    let now = svc.now();
    let rk = record_key(ws, name);
    let mut tx = svc.store.write()?;
    crate::access::workspaces::get(&tx, ws)?;
    if let Some(k) = tx.get::<TransitKey>(Table::TransitKeys, &rk)? {
        return Ok(Arc::new(k));
    }
    let mut key = TransitKey {
        name: name.to_string(),
        workspace: ws.clone(),
        kind,
        derived,
        convergent,
        deletion_allowed: false,
        auto_rotate_period: period,
        min_decryption_version: 1,
        min_encryption_version: 0,
        min_available_version: 0,
        latest_version: 0,
        versions: BTreeMap::new(),
        created_at: now,
        updated_at: now,
        rotated_at: now,
    };
    key.new_version(now)?;
    tx.put(Table::TransitKeys, &rk, &key)?;
    crate::access::record_change(
        &mut tx,
        svc,
        &actor.principal,
        &actor.source,
        "transit.key_create",
        ws,
        name,
        json!({"type": kind.as_str(), "derived": derived, "convergent_encryption": convergent, "auto_rotate_period": period}),
    )?;
    tx.commit()?;
    Ok(Arc::new(key))
}

/// `GET /v1/transit/keys/:name`: the key's settings and versions (never its
/// material), for whoever holds any Transit permission on it.
pub fn read_key(svc: &Service, actor: &Actor, ws: &WorkspaceId, name: &str) -> Result<Reply> {
    let name = super::key_name(name)?;
    authorize_any(svc, actor, ws, name)?;
    let key = load(svc, ws, name)?.ok_or_else(not_found)?;
    Ok(Reply::data(key.public()))
}

const ANY_TRANSIT: [Permission; 5] = [
    Permission::TransitManage,
    Permission::TransitEncrypt,
    Permission::TransitDecrypt,
    Permission::TransitRewrap,
    Permission::TransitDatakey,
];

/// Any Transit permission on `name`; refused (and audited) as `transit:manage`.
fn authorize_any(svc: &Service, actor: &Actor, ws: &WorkspaceId, name: &str) -> Result<()> {
    if ANY_TRANSIT
        .iter()
        .any(|p| super::may(svc, actor, *p, ws, name))
    {
        return Ok(());
    }
    super::authorize(svc, actor, Permission::TransitManage, ws, name)
}

/// `LIST /v1/transit/keys`: the names of the workspace's keys the caller
/// holds a Transit permission on (none: 404, as Vault answers an empty list).
pub fn list_keys(svc: &Service, actor: &Actor, ws: &WorkspaceId) -> Result<Reply> {
    let mut prefix = ws.to_string().into_bytes();
    prefix.push(b'/');
    let names: Vec<String> = svc
        .store
        .read()?
        .scan::<TransitKey>(Table::TransitKeys, &prefix)?
        .into_iter()
        .map(|(_, k)| k.name.clone())
        .filter(|n| {
            ANY_TRANSIT
                .iter()
                .any(|p| super::may(svc, actor, *p, ws, n))
        })
        .collect();
    if names.is_empty() {
        // Nothing visible: refuse a caller without any Transit permission
        // (audited), answer others Vault's 404 for an empty list.
        if !ANY_TRANSIT.iter().any(|p| {
            crate::access::decide(
                svc,
                &actor.principal,
                *p,
                crate::access::Resource::Workspace(ws),
            )
            .is_ok_and(|d| d.allow)
        }) && !has_narrowed_transit(actor)
        {
            actor.authorize(
                svc,
                Permission::TransitManage,
                crate::access::Resource::Workspace(ws),
            )?;
        }
        return Err(not_found());
    }
    Ok(Reply::data(json!({ "keys": names })))
}

fn has_narrowed_transit(actor: &Actor) -> bool {
    actor
        .principal
        .client()
        .is_some_and(|c| c.narrowed.iter().any(|(p, _)| ANY_TRANSIT.contains(p)))
}

/// Applies `change` to the stored key inside one write transaction, audits
/// it as `action` with `details`, and answers the key as it now stands.
fn change_key(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    action: &'static str,
    change: impl FnOnce(&mut TransitKey, Timestamp) -> Result<Value>,
) -> Result<Arc<TransitKey>> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitManage, ws, name)?;
    let rk = record_key(ws, name);
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let mut key: TransitKey = tx.get(Table::TransitKeys, &rk)?.ok_or_else(not_found)?;
    let details = change(&mut key, now)?;
    key.updated_at = now;
    tx.put(Table::TransitKeys, &rk, &key)?;
    crate::access::record_change(
        &mut tx,
        svc,
        &actor.principal,
        &actor.source,
        action,
        ws,
        name,
        details,
    )?;
    tx.commit()?;
    Ok(Arc::new(key))
}

/// `POST /v1/transit/keys/:name/rotate`: a new latest version.
pub fn rotate_key(svc: &Service, actor: &Actor, ws: &WorkspaceId, name: &str) -> Result<Reply> {
    let key = change_key(svc, actor, ws, name, "transit.key_rotate", |k, now| {
        let v = k.new_version(now)?;
        Ok(json!({"latest_version": v, "automatic": false}))
    })?;
    Ok(Reply::data(key.public()))
}

/// `POST /v1/transit/keys/:name/config`.
pub fn configure_key(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    body: &Value,
) -> Result<Reply> {
    let f = Fields::of(body);
    let min_dec = f.u32("min_decryption_version")?;
    let min_enc = f.u32("min_encryption_version")?;
    let deletion = f.bool("deletion_allowed")?;
    let period = f
        .duration("auto_rotate_period")?
        .map(rotate_period)
        .transpose()?;
    if f.bool("exportable")?.unwrap_or(false) {
        return Err(Error::invalid(
            "exportable",
            "exportable keys are not offered: key material never leaves Gatehouse",
        ));
    }
    if f.bool("allow_plaintext_backup")?.unwrap_or(false) {
        return Err(Error::invalid(
            "allow_plaintext_backup",
            "plaintext backups are not offered: key material never leaves Gatehouse",
        ));
    }
    let mut warnings = Vec::new();
    let key = change_key(svc, actor, ws, name, "transit.key_config", |k, _| {
        let mut details = Map::new();
        if let Some(mut d) = min_dec {
            if d == 0 {
                d = 1;
                warnings
                    .push("transit key numbering starts at 1; forcing minimum to 1".to_string());
            }
            if d > k.latest_version {
                return Err(Error::invalid(
                    "min_decryption_version",
                    format!(
                        "cannot set min decryption version of {d}, latest key version is {}",
                        k.latest_version
                    ),
                ));
            }
            if d < k.min_available_version {
                return Err(Error::invalid(
                    "min_decryption_version",
                    "min decryption version should not be less then min available version",
                ));
            }
            details.insert(
                "min_decryption_version".into(),
                json!({"from": k.min_decryption_version, "to": d}),
            );
            k.min_decryption_version = d;
        }
        if let Some(e) = min_enc {
            if e > k.latest_version {
                return Err(Error::invalid(
                    "min_encryption_version",
                    format!(
                        "cannot set min encryption version of {e}, latest key version is {}",
                        k.latest_version
                    ),
                ));
            }
            if e != 0 && e < k.min_available_version {
                return Err(Error::invalid(
                    "min_encryption_version",
                    "min encryption version should not be less than min available version",
                ));
            }
            details.insert(
                "min_encryption_version".into(),
                json!({"from": k.min_encryption_version, "to": e}),
            );
            k.min_encryption_version = e;
        }
        if k.min_encryption_version > 0 && k.min_encryption_version < k.min_decryption_version {
            return Err(Error::invalid(
                "min_encryption_version",
                format!(
                    "cannot set min encryption/decryption values; min encryption version of {} must be greater than or equal to min decryption version of {}",
                    k.min_encryption_version, k.min_decryption_version
                ),
            ));
        }
        if let Some(d) = deletion {
            details.insert("deletion_allowed".into(), json!(d));
            k.deletion_allowed = d;
        }
        if let Some(p) = period {
            details.insert("auto_rotate_period".into(), json!(p));
            k.auto_rotate_period = p;
        }
        Ok(Value::Object(details))
    })?;
    let mut r = Reply::data(key.public());
    r.warnings = warnings;
    Ok(r)
}

/// `POST /v1/transit/keys/:name/trim`: destroys the versions below
/// `min_available_version` (their ciphertexts can never be opened again).
pub fn trim_key(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    body: &Value,
) -> Result<Reply> {
    let f = Fields::of(body);
    let Some(min) = f.u32("min_available_version")? else {
        return Err(Error::invalid(
            "min_available_version",
            "missing min_available_version",
        ));
    };
    let key = change_key(svc, actor, ws, name, "transit.key_trim", |k, _| {
        if min == 0 {
            return Err(Error::invalid(
                "min_available_version",
                "minimum available version should be positive",
            ));
        }
        if min < k.min_available_version {
            return Err(Error::invalid(
                "min_available_version",
                "minimum available version cannot be decremented",
            ));
        }
        if k.min_encryption_version == 0 {
            return Err(Error::invalid(
                "min_available_version",
                "minimum available version cannot be set when minimum encryption version is not set",
            ));
        }
        if min > k.min_encryption_version {
            return Err(Error::invalid(
                "min_available_version",
                "minimum available version cannot be greater than minmum encryption version",
            ));
        }
        if min > k.min_decryption_version {
            return Err(Error::invalid(
                "min_available_version",
                "minimum available version cannot be greater than minimum decryption version",
            ));
        }
        let before = k.versions.len();
        k.versions.retain(|v, _| *v >= min);
        k.min_available_version = min;
        Ok(json!({"min_available_version": min, "versions_destroyed": before - k.versions.len()}))
    })?;
    Ok(Reply::data(key.public()))
}

/// `DELETE /v1/transit/keys/:name`: only once `deletion_allowed` is set.
pub fn delete_key(svc: &Service, actor: &Actor, ws: &WorkspaceId, name: &str) -> Result<Reply> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitManage, ws, name)?;
    let rk = record_key(ws, name);
    let mut tx = svc.store.write()?;
    let key: TransitKey = tx.get(Table::TransitKeys, &rk)?.ok_or_else(not_found)?;
    if !key.deletion_allowed {
        return Err(Error::invalid(
            "deletion_allowed",
            "deletion is not allowed for this key; set deletion_allowed to true in the key's config first",
        ));
    }
    tx.delete(Table::TransitKeys, &rk)?;
    crate::access::record_change(
        &mut tx,
        svc,
        &actor.principal,
        &actor.source,
        "transit.key_delete",
        ws,
        name,
        json!({"versions_destroyed": key.versions.len()}),
    )?;
    tx.commit()?;
    Ok(Reply::none())
}

/// Rotates every key whose `auto_rotate_period` has passed since its last
/// rotation (the housekeeping job's call); returns how many.
pub fn rotate_due(svc: &Service) -> Result<usize> {
    let now = svc.now();
    let due: Vec<(Vec<u8>, TransitKey)> = svc
        .store
        .read()?
        .scan::<TransitKey>(Table::TransitKeys, b"")?
        .into_iter()
        .filter(|(_, k)| k.auto_rotate_period > 0 && now - k.rotated_at >= k.auto_rotate_period)
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let mut tx = svc.store.write()?;
    let mut n = 0;
    for (rk, _) in due {
        let Some(mut k) = tx.get::<TransitKey>(Table::TransitKeys, &rk)? else {
            continue;
        };
        if k.auto_rotate_period == 0 || now - k.rotated_at < k.auto_rotate_period {
            continue;
        }
        let v = k.new_version(now)?;
        k.updated_at = now;
        tx.put(Table::TransitKeys, &rk, &k)?;
        crate::audit::record(
            &mut tx,
            now,
            &crate::audit::Source::default(),
            crate::audit::NewEvent::new("transit.key_rotate", crate::audit::Outcome::Success)
                .actor("system", None)
                .workspace(Some(&k.workspace))
                .target(k.name.clone())
                .details(json!({"latest_version": v, "automatic": true})),
        )?;
        n += 1;
    }
    tx.commit()?;
    Ok(n)
}

// ---- data operations ----

/// One item of a batch (or the single request): its fields.
struct Item<'a> {
    f: Fields<'a>,
    reference: Option<&'a Value>,
}

fn items<'a>(body: &'a Value) -> Result<(Vec<Item<'a>>, bool)> {
    let f = Fields::of(body);
    match f.batch()? {
        Some(list) => Ok((
            list.iter()
                .map(|v| Item {
                    f: Fields::of(v),
                    reference: v.get("reference"),
                })
                .collect(),
            true,
        )),
        None => Ok((vec![Item { f, reference: None }], false)),
    }
}

fn partial_code(body: &Value) -> Result<Option<u16>> {
    Ok(Fields::of(body)
        .u32("partial_failure_response_code")?
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (1..=599).contains(c)))
}

/// The results of a batch (or of one item): each item's answer or error in
/// input order; a single request with an error is that error.
#[allow(clippy::too_many_arguments)] // the call's parts, named at each operation
fn finish(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    action: &'static str,
    name: &str,
    body: &Value,
    batch: bool,
    refs: Vec<Option<&Value>>,
    results: Vec<Result<Value>>,
) -> Result<Reply> {
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    super::note_access(svc, actor, ws, action, name, results.len() as u64, failed)?;
    if !batch {
        let mut results = results;
        return match results.pop() {
            Some(r) => r.map(Reply::data),
            None => Err(Error::internal("empty batch")),
        };
    }
    let any_success = results.iter().any(Result::is_ok);
    let any_failure = failed > 0;
    let out: Vec<Value> = results
        .into_iter()
        .zip(refs)
        .map(|(r, reference)| {
            let mut v = match r {
                Ok(v) => v,
                Err(e) => json!({"error": item_error(&e)}),
            };
            if let Some(rf) = reference {
                v["reference"] = rf.clone();
            }
            v
        })
        .collect();
    let mut reply = Reply::data(json!({ "batch_results": out }));
    if any_failure {
        reply.batch_failed = Some(BatchFailure {
            any_success,
            partial_code: partial_code(body)?,
        });
    }
    Ok(reply)
}

/// An item's error as Vault words it (no internals: a 5xx is opaque).
fn item_error(e: &Error) -> String {
    match e {
        Error::Invalid { message, .. } => message.clone(),
        Error::Forbidden(m) => m.clone(),
        _ => "internal error".into(),
    }
}

fn context_of(f: &Fields<'_>) -> Result<Zeroizing<Vec<u8>>> {
    match f.str("context")? {
        Some(c) if !c.is_empty() => b64_field("context", c),
        _ => Ok(Zeroizing::new(Vec::new())),
    }
}

fn aad_of<'a>(f: &Fields<'a>) -> Result<&'a [u8]> {
    Ok(f.str("associated_data")?.unwrap_or("").as_bytes())
}

/// `POST /v1/transit/encrypt/:name`. A missing key is created (Vault's
/// upsert) when the caller may manage it; else "encryption key not found".
pub fn encrypt(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    body: &Value,
) -> Result<Reply> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitEncrypt, ws, name)?;
    let (list, batch) = items(body)?;
    if !batch && !list[0].f.has("plaintext") {
        return Err(Error::invalid("plaintext", "missing plaintext to encrypt"));
    }
    let context_set = list.first().is_some_and(|i| {
        i.f.str("context")
            .ok()
            .flatten()
            .is_some_and(|c| !c.is_empty())
    });
    for i in &list {
        let has =
            i.f.str("context")
                .ok()
                .flatten()
                .is_some_and(|c| !c.is_empty());
        if has != context_set {
            return Err(Error::invalid(
                "context",
                "context should be set either in all the request blocks or in none",
            ));
        }
    }
    let key = match load(svc, ws, name)? {
        Some(k) => k,
        None if super::may(svc, actor, Permission::TransitManage, ws, name) => {
            let f = Fields::of(body);
            let kind = KeyType::parse(f.str("type")?.unwrap_or(""))?;
            let convergent = f.bool("convergent_encryption")?.unwrap_or(false);
            if convergent && !context_set {
                return Err(Error::invalid(
                    "context",
                    "convergent encryption requires derivation to be enabled, so context is required",
                ));
            }
            create_in(svc, actor, ws, name, kind, context_set, convergent, 0)?
        }
        None => return Err(encryption_key_not_found()),
    };
    let refs = list.iter().map(|i| i.reference).collect();
    let results = list
        .iter()
        .map(|i| -> Result<Value> {
            let plain = b64_field("plaintext", i.f.str("plaintext")?.unwrap_or(""))?;
            let context = context_of(&i.f)?;
            let v = i.f.u32("key_version")?.unwrap_or(0);
            let (ct, v) = key.encrypt(v, &context, aad_of(&i.f)?, &plain)?;
            Ok(json!({"ciphertext": ct, "key_version": v}))
        })
        .collect();
    finish(
        svc,
        actor,
        ws,
        "transit.encrypt",
        name,
        body,
        batch,
        refs,
        results,
    )
}

fn existing(svc: &Service, ws: &WorkspaceId, name: &str) -> Result<Arc<TransitKey>> {
    load(svc, ws, name)?.ok_or_else(encryption_key_not_found)
}

/// `POST /v1/transit/decrypt/:name`.
pub fn decrypt(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    body: &Value,
) -> Result<Reply> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitDecrypt, ws, name)?;
    let (list, batch) = items(body)?;
    if !batch && list[0].f.str("ciphertext")?.is_none_or(str::is_empty) {
        return Err(Error::invalid(
            "ciphertext",
            "missing ciphertext to decrypt",
        ));
    }
    let key = existing(svc, ws, name)?;
    let refs = list.iter().map(|i| i.reference).collect();
    let results = list
        .iter()
        .map(|i| -> Result<Value> {
            let ct = i.f.str("ciphertext")?.unwrap_or("");
            if ct.is_empty() {
                return Err(Error::invalid(
                    "ciphertext",
                    "missing ciphertext to decrypt",
                ));
            }
            let context = context_of(&i.f)?;
            let (plain, _) = key.decrypt(ct, &context, aad_of(&i.f)?)?;
            Ok(json!({"plaintext": B64.encode(plain.as_slice())}))
        })
        .collect();
    finish(
        svc,
        actor,
        ws,
        "transit.decrypt",
        name,
        body,
        batch,
        refs,
        results,
    )
}

/// `POST /v1/transit/rewrap/:name`: decrypts and encrypts again under the
/// latest (or `key_version`) version; the plaintext never leaves.
pub fn rewrap(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    body: &Value,
) -> Result<Reply> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitRewrap, ws, name)?;
    let (list, batch) = items(body)?;
    if !batch && list[0].f.str("ciphertext")?.is_none_or(str::is_empty) {
        return Err(Error::invalid("ciphertext", "missing ciphertext to rewrap"));
    }
    let key = existing(svc, ws, name)?;
    let refs = list.iter().map(|i| i.reference).collect();
    let results = list
        .iter()
        .map(|i| -> Result<Value> {
            let ct = i.f.str("ciphertext")?.unwrap_or("");
            if ct.is_empty() {
                return Err(Error::invalid("ciphertext", "missing ciphertext to rewrap"));
            }
            let context = context_of(&i.f)?;
            let aad = aad_of(&i.f)?;
            let (plain, _) = key.decrypt(ct, &context, aad)?;
            let v = i.f.u32("key_version")?.unwrap_or(0);
            let (ct, v) = key.encrypt(v, &context, aad, &plain)?;
            Ok(json!({"ciphertext": ct, "key_version": v}))
        })
        .collect();
    finish(
        svc,
        actor,
        ws,
        "transit.rewrap",
        name,
        body,
        batch,
        refs,
        results,
    )
}

/// `POST /v1/transit/datakey/:kind/:name`: a new random key of `bits`
/// (128, 256 or 512), encrypted under the named key; `plaintext` also
/// returns it in the clear, `wrapped` does not.
pub fn datakey(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    kind: &str,
    name: &str,
    body: &Value,
) -> Result<Reply> {
    let name = super::key_name(name)?;
    let with_plain = match kind {
        "plaintext" => true,
        "wrapped" => false,
        _ => {
            return Err(Error::invalid(
                "plaintext",
                "the data key type is plaintext or wrapped (datakey/plaintext/:name or datakey/wrapped/:name)",
            ));
        }
    };
    super::authorize(svc, actor, Permission::TransitDatakey, ws, name)?;
    let f = Fields::of(body);
    let bits = f.u32("bits")?.unwrap_or(256);
    if !matches!(bits, 128 | 256 | 512) {
        return Err(Error::invalid(
            "bits",
            "invalid bits value; use 128, 256 or 512",
        ));
    }
    let key = existing(svc, ws, name)?;
    let context = context_of(&f)?;
    let mut raw = Zeroizing::new(vec![0u8; bits as usize / 8]);
    crypto::fill_random(&mut raw)?;
    let encoded = Zeroizing::new(B64.encode(raw.as_slice()));
    let v = f.u32("key_version")?.unwrap_or(0);
    let (ct, v) = key.encrypt(v, &context, aad_of(&f)?, encoded.as_bytes())?;
    super::note_access(svc, actor, ws, "transit.datakey", name, 1, 0)?;
    let mut d = json!({"ciphertext": ct, "key_version": v});
    if with_plain {
        d["plaintext"] = json!(encoded.as_str());
    }
    Ok(Reply::data(d))
}

/// The HMAC size of a Vault algorithm name (`sha2-256` the default).
fn hmac_bits(body: &Fields<'_>, path_alg: Option<&str>) -> Result<u16> {
    let alg = match path_alg {
        Some(a) => Some(a),
        None => body.str("algorithm")?.or(body.str("hash_algorithm")?),
    };
    match alg.unwrap_or("sha2-256") {
        "" | "sha2-256" => Ok(256),
        "sha2-384" => Ok(384),
        "sha2-512" => Ok(512),
        other => Err(Error::invalid(
            "algorithm",
            format!(
                "unsupported algorithm {}; use sha2-256 (the default), sha2-384 or sha2-512",
                echo(other)
            ),
        )),
    }
}

/// `POST /v1/transit/hmac/:name(/:algorithm)`.
pub fn hmac(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    algorithm: Option<&str>,
    body: &Value,
) -> Result<Reply> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitEncrypt, ws, name)?;
    let bits = hmac_bits(&Fields::of(body), algorithm)?;
    let (list, batch) = items(body)?;
    if !batch && !list[0].f.has("input") {
        return Err(Error::invalid("input", "missing input for HMAC"));
    }
    let key = existing(svc, ws, name)?;
    let top_version = Fields::of(body).u32("key_version")?.unwrap_or(0);
    let refs = list.iter().map(|i| i.reference).collect();
    let results = list
        .iter()
        .map(|i| -> Result<Value> {
            let input = b64_field("input", i.f.str("input")?.unwrap_or(""))?;
            let v = i.f.u32("key_version")?.unwrap_or(top_version);
            Ok(json!({"hmac": key.hmac(v, bits, &input)?}))
        })
        .collect();
    finish(
        svc,
        actor,
        ws,
        "transit.hmac",
        name,
        body,
        batch,
        refs,
        results,
    )
}

/// `POST /v1/transit/verify/:name(/:algorithm)`: checks an `hmac`.
pub fn verify(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    algorithm: Option<&str>,
    body: &Value,
) -> Result<Reply> {
    let name = super::key_name(name)?;
    super::authorize(svc, actor, Permission::TransitEncrypt, ws, name)?;
    let bits = hmac_bits(&Fields::of(body), algorithm)?;
    let (list, batch) = items(body)?;
    if !batch {
        if !list[0].f.has("input") {
            return Err(Error::invalid("input", "missing input"));
        }
        if list[0].f.has("signature") {
            return Err(Error::invalid(
                "signature",
                "this key signs nothing: verify an hmac",
            ));
        }
        if !list[0].f.has("hmac") {
            return Err(Error::invalid("hmac", "missing hmac"));
        }
    }
    let key = existing(svc, ws, name)?;
    let refs = list.iter().map(|i| i.reference).collect();
    let results = list
        .iter()
        .map(|i| -> Result<Value> {
            let input = b64_field("input", i.f.str("input")?.unwrap_or(""))?;
            let mac = i.f.str("hmac")?.unwrap_or("");
            Ok(json!({"valid": key.verify(bits, &input, mac)?}))
        })
        .collect();
    finish(
        svc,
        actor,
        ws,
        "transit.verify",
        name,
        body,
        batch,
        refs,
        results,
    )
}

/// `POST /v1/transit/random(/:source)(/:bytes)`: `bytes` (default 32, at
/// most `RANDOM_MAX`) from the OS, as `base64` (default) or `hex`.
pub fn random(url_bytes: Option<&str>, source: Option<&str>, body: &Value) -> Result<Reply> {
    let f = Fields::of(body);
    let n = match url_bytes {
        Some(b) => b
            .parse::<u32>()
            .map_err(|_| Error::invalid("bytes", "bytes in the URL must be a number"))?,
        None => f.u32("bytes")?.unwrap_or(32),
    };
    if n == 0 || n as usize > RANDOM_MAX {
        return Err(Error::invalid(
            "bytes",
            format!("the number of bytes must be between 1 and {RANDOM_MAX}"),
        ));
    }
    match source.or(f.str("source")?).unwrap_or("platform") {
        "" | "platform" | "all" => {}
        other => {
            return Err(Error::invalid(
                "source",
                format!("unsupported entropy source {}; use platform", echo(other)),
            ));
        }
    }
    let mut buf = Zeroizing::new(vec![0u8; n as usize]);
    crypto::fill_random(&mut buf)?;
    let out = match f.str("format")?.unwrap_or("base64") {
        "" | "base64" => B64.encode(buf.as_slice()),
        "hex" => hex::encode(buf.as_slice()),
        other => {
            return Err(Error::invalid(
                "format",
                format!(
                    "unsupported encoding format {}; must be \"hex\" or \"base64\"",
                    echo(other)
                ),
            ));
        }
    };
    Ok(Reply::data(json!({"random_bytes": out})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: KeyType, derived: bool, convergent: bool) -> TransitKey {
        let mut k = TransitKey {
            name: "k".into(),
            workspace: WorkspaceId::parse("ws_0123456789abcdef0123").unwrap(),
            kind,
            derived,
            convergent,
            deletion_allowed: false,
            auto_rotate_period: 0,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            latest_version: 0,
            versions: BTreeMap::new(),
            created_at: 0,
            updated_at: 0,
            rotated_at: 0,
        };
        k.new_version(0).unwrap();
        k
    }

    #[test]
    fn every_key_type_round_trips_with_vault_prefixes() {
        for kind in [
            KeyType::Aes256Gcm96,
            KeyType::ChaCha20Poly1305,
            KeyType::XChaCha20Poly1305,
        ] {
            let mut k = key(kind, false, false);
            let (ct, v) = k.encrypt(0, b"", b"ad", b"secret").unwrap();
            assert!(ct.starts_with("vault:v1:"), "{ct}");
            assert_eq!(v, 1);
            assert_eq!(k.decrypt(&ct, b"", b"ad").unwrap().0.as_slice(), b"secret");
            assert!(k.decrypt(&ct, b"", b"other").is_err());
            // An empty plaintext is a valid plaintext.
            let (e, _) = k.encrypt(0, b"", b"", b"").unwrap();
            assert!(k.decrypt(&e, b"", b"").unwrap().0.is_empty());
            k.new_version(1).unwrap();
            // Editing the version makes the tag fail, never another plaintext.
            let edited = ct.replacen("vault:v1:", "vault:v2:", 1);
            assert!(k.decrypt(&edited, b"", b"ad").is_err());
            k.min_decryption_version = 2;
            let m = k.decrypt(&ct, b"", b"ad").unwrap_err().to_string();
            assert!(m.contains("too old"), "{m}");
        }
    }

    #[test]
    fn derived_keys_need_their_context_and_convergent_ones_repeat() {
        let k = key(KeyType::Aes256Gcm96, true, true);
        assert!(k.encrypt(0, b"", b"", b"x").is_err());
        let (a, _) = k.encrypt(0, b"ctx", b"", b"x").unwrap();
        let (b, _) = k.encrypt(0, b"ctx", b"", b"x").unwrap();
        let (c, _) = k.encrypt(0, b"ctx2", b"", b"x").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(k.decrypt(&a, b"ctx2", b"").is_err());
        assert_eq!(k.decrypt(&a, b"ctx", b"").unwrap().0.as_slice(), b"x");
        let plain = key(KeyType::Aes256Gcm96, false, false);
        let (x, _) = plain.encrypt(0, b"", b"", b"x").unwrap();
        let (y, _) = plain.encrypt(0, b"", b"", b"x").unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn malformed_ciphertexts_are_refused_with_vaults_words() {
        let k = key(KeyType::Aes256Gcm96, false, false);
        for (ct, words) in [
            ("abc", "no prefix"),
            ("vault:v1", "wrong number of fields"),
            ("vault:vx:AAAA", "could not be decoded"),
            ("vault:v1:***", "could not decode base64"),
            ("vault:v9:AAAA", "too new"),
        ] {
            let m = k.decrypt(ct, b"", b"").unwrap_err().to_string();
            assert!(m.contains(words), "{ct}: {m}");
        }
        let mac = k.hmac(0, 256, b"data").unwrap();
        assert!(k.verify(256, b"data", &mac).unwrap());
        assert!(!k.verify(256, b"datb", &mac).unwrap());
        assert!(!k.verify(512, b"data", &mac).unwrap());
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn key_material_never_shows_in_public_or_debug_output() {
        let k = key(KeyType::Aes256Gcm96, false, false);
        let secret = B64.encode(k.versions[&1].key.0.as_slice());
        assert!(!k.public().to_string().contains(&secret));
        assert!(!format!("{k:?}").contains(&secret));
    }
}
