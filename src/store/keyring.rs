//! The keyring: the master key (KEK) from `master.key`, the data keys (DEKs)
//! it wraps, and the blind-index key. Owns key files and wrapping; it does not
//! decide which records to seal (that is `store`) or when to rotate (`keys`).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::crypto::{self, SecretKey};
use crate::error::{Detail, Error, Result};

pub const MASTER_KEY_FILE: &str = "master.key";

/// Keys in memory. Cloned only to prepare a rotation inside a transaction.
#[derive(Clone)]
pub struct Keyring {
    master: SecretKey,
    deks: BTreeMap<u32, (SecretKey, Timestamp)>,
    active: u32,
    index_key: SecretKey,
}

/// The stored form: every key wrapped by the master key.
#[derive(Serialize, Deserialize)]
pub struct KeyringRecord {
    pub format: u32,
    pub active: u32,
    pub deks: Vec<DekRecord>,
    pub index_key: String,
}

#[derive(Serialize, Deserialize)]
pub struct DekRecord {
    pub version: u32,
    pub created_at: Timestamp,
    pub wrapped: String,
}

fn dek_aad(version: u32) -> Vec<u8> {
    format!("gatehouse/kek/dek/{version}").into_bytes()
}
const INDEX_AAD: &[u8] = b"gatehouse/kek/index";

impl Keyring {
    pub fn new(master: SecretKey, now: Timestamp) -> Result<Self> {
        let mut deks = BTreeMap::new();
        deks.insert(1, (SecretKey::generate()?, now));
        Ok(Keyring {
            master,
            deks,
            active: 1,
            index_key: SecretKey::generate()?,
        })
    }

    /// Unwraps every stored key; a different master key fails here, before any
    /// request is served.
    pub fn unwrap(master: SecretKey, rec: &KeyringRecord) -> Result<Self> {
        let mismatch = || {
            Error::Storage(
                "master.key does not match this database: the data keys cannot be unwrapped. \
                 Put back the master.key that belongs to this data directory."
                    .into(),
            )
        };
        let unwrap_one = |b64: &str, aad: &[u8]| -> Result<SecretKey> {
            let bytes = crypto::b64url_decode(b64).ok_or_else(mismatch)?;
            let raw = crypto::open(&master, aad, &bytes).map_err(|_| mismatch())?;
            SecretKey::from_slice(&raw).ok_or_else(mismatch)
        };
        let mut deks = BTreeMap::new();
        for d in &rec.deks {
            deks.insert(
                d.version,
                (unwrap_one(&d.wrapped, &dek_aad(d.version))?, d.created_at),
            );
        }
        if !deks.contains_key(&rec.active) {
            return Err(Error::Storage(
                "keyring names an active key it does not hold".into(),
            ));
        }
        let index_key = unwrap_one(&rec.index_key, INDEX_AAD)?;
        Ok(Keyring {
            master,
            deks,
            active: rec.active,
            index_key,
        })
    }

    pub fn to_record(&self) -> Result<KeyringRecord> {
        let mut deks = Vec::new();
        for (v, (k, created_at)) in &self.deks {
            let wrapped = crypto::seal(&self.master, &dek_aad(*v), k.expose())?;
            deks.push(DekRecord {
                version: *v,
                created_at: *created_at,
                wrapped: crypto::b64url(&wrapped),
            });
        }
        let index = crypto::seal(&self.master, INDEX_AAD, self.index_key.expose())?;
        Ok(KeyringRecord {
            format: 1,
            active: self.active,
            deks,
            index_key: crypto::b64url(&index),
        })
    }

    /// Adds a new data key and makes it the one used for new writes.
    pub fn rotated(&self, now: Timestamp) -> Result<Keyring> {
        let mut next = self.clone();
        let v = self.deks.keys().next_back().copied().unwrap_or(0) + 1;
        next.deks.insert(v, (SecretKey::generate()?, now));
        next.active = v;
        Ok(next)
    }

    pub fn active(&self) -> (u32, &SecretKey) {
        let key = &self.deks[&self.active].0;
        (self.active, key)
    }

    pub fn dek(&self, version: u32) -> Option<&SecretKey> {
        self.deks.get(&version).map(|(k, _)| k)
    }

    pub fn versions(&self) -> Vec<(u32, Timestamp)> {
        self.deks.iter().map(|(v, (_, t))| (*v, *t)).collect()
    }

    pub fn active_version(&self) -> u32 {
        self.active
    }

    pub fn index_key(&self) -> &SecretKey {
        &self.index_key
    }
}

/// Reads `master.key`, or creates it (0600) when `may_create` — only ever for a
/// data directory without a database, so a key is never created over data.
pub fn load_or_create_master_key(dir: &Path, may_create: bool) -> Result<SecretKey> {
    let path = dir.join(MASTER_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(path = %path.display(), "master.key is readable by others; chmod 600 it");
            }
            SecretKey::from_slice(&bytes).ok_or_else(|| {
                Error::Storage(format!(
                    "{} must hold exactly 32 bytes (it holds {}); it is not a Gatehouse master key",
                    path.display(),
                    bytes.len()
                ).into())
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !may_create {
                return Err(Error::Storage(format!(
                    "{} is missing but {} holds data: refusing to start. Restore the master.key \
                     that belongs to this data (a new key would make every record unreadable).",
                    path.display(),
                    dir.display()
                ).into()));
            }
            let key = SecretKey::generate()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| {
                    Error::Storage(Detail::caused(
                        format!("cannot create {}: {e}", path.display()),
                        e,
                    ))
                })?;
            f.write_all(key.expose())?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(Error::Storage(Detail::caused(
            format!("cannot read {}: {e}", path.display()),
            e,
        ))),
    }
}
