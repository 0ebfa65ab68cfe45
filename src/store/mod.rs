//! The embedded store: redb tables, record encoding, transactions and sealing.
//! Every value in a sealed table is XChaCha20-Poly1305 under the active data key,
//! with AAD binding it to its table and record key. No business rules live here;
//! this is the only module that imports `redb`.

pub(crate) mod keyring;

use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Detail, Error, Result};
use keyring::{Keyring, KeyringRecord};

pub const DB_FILE: &str = "gatehouse.redb";
const SEAL_FORMAT: u8 = 1;
const HEADER_LEN: usize = 5;

/// Writes the `Table` enum, `Table::ALL` and `Table::name` from one list, so a
/// table is added in one place.
macro_rules! tables {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// Every table; `sealed` ones hold only ciphertext.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Table {
            $($(#[$doc])* $variant,)+
        }

        impl Table {
            pub const ALL: &'static [Table] = &[$(Table::$variant,)+];

            pub fn name(self) -> &'static str {
                match self {
                    $(Table::$variant => $name,)+
                }
            }
        }
    };
}

tables! {
    Meta => "meta",
    Users => "users",
    UsersByEmail => "users_by_email",
    Sessions => "sessions",
    SessionsByUser => "sessions_by_user",
    RefreshTokens => "refresh_tokens",
    RefreshFamilies => "refresh_families",
    OneTimeTokens => "one_time_tokens",
    Secrets => "secrets",
    Audit => "audit",
    Lockouts => "lockouts",
    Mfa => "mfa",
    MfaChallenges => "mfa_challenges",
    Policy => "policy",
    Workspaces => "workspaces",
    Members => "members",
    Roles => "roles",
    Groups => "groups",
    ServiceAccounts => "service_accounts",
    ApiApps => "api_apps",
    ApiKeys => "api_keys",
    ApiKeysByApp => "api_keys_by_app",
    WidgetKeys => "widget_keys",
    RevokedTokens => "revoked_tokens",
    KeyUsage => "key_usage",
    SsoConnections => "sso_connections",
    SsoPending => "sso_pending",
    SsoLinks => "sso_links",
    SsoReplay => "sso_replay",
    LastSignIns => "last_sign_ins",
    TokensValidAfter => "tokens_valid_after",
    WorkspaceClaims => "workspace_claims",
    /// Transit keys (their material included), keyed `ws_…/name`.
    TransitKeys => "transit_keys",
    /// KV v2: a path's metadata, keyed by workspace and a blind index of the path.
    KvMeta => "kv_meta",
    /// KV v2: one version's data, keyed like `KvMeta` plus the version.
    KvData => "kv_data",
    /// KV v2: a workspace's engine config.
    KvConfig => "kv_config",
    AuditSinks => "audit_sinks",
    AuditSinkState => "audit_sink_state",
    /// The ACME account key and the certificates it obtained.
    Acme => "acme",
}

impl Table {
    /// Index tables hold blind indexes and ids only; meta holds wrapped keys and counters.
    pub fn sealed(self) -> bool {
        !matches!(
            self,
            Table::Meta | Table::UsersByEmail | Table::SessionsByUser | Table::ApiKeysByApp
        )
    }

    /// Its place in `ALL` (the macro lists both in the same order).
    fn index(self) -> usize {
        self as usize
    }

    fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

fn aad(t: Table, key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(24 + key.len());
    a.extend_from_slice(b"gatehouse/v1/");
    a.extend_from_slice(t.name().as_bytes());
    a.push(0);
    a.extend_from_slice(key);
    a
}

fn db_err(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Storage(Detail::caused(e.to_string(), e))
}

pub struct Store {
    db: Database,
    keyring: RwLock<Keyring>,
    dir: PathBuf,
    /// Bumped after every commit that wrote to the table: lets callers keep
    /// in-memory copies and notice any committed change.
    generations: Vec<AtomicU64>,
}

/// How many records each data-key version still seals.
#[derive(Debug, Clone, Serialize)]
pub struct KeyVersionStatus {
    pub version: u32,
    pub created_at: Timestamp,
    pub active: bool,
    pub records: u64,
}

impl Store {
    /// Opens (or creates) the data directory. Refuses a missing or wrong master
    /// key next to existing data, a database another process holds, and a
    /// damaged file — each with a message that says what to do.
    pub fn open(dir: &Path, now: Timestamp) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Storage(Detail::caused(
                format!("cannot create {}: {e}", dir.display()),
                e,
            ))
        })?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let db_path = dir.join(DB_FILE);
        let fresh = !db_path.exists();
        let master = keyring::load_or_create_master_key(dir, fresh)?;
        if fresh {
            // Owner-only from the start (a racing creator just wins; redb opens it).
            let _ = create_private(&db_path);
        }
        let db = open_db(&db_path)?;
        let _ = std::fs::set_permissions(&db_path, std::fs::Permissions::from_mode(0o600));
        let tx = db.begin_write().map_err(db_err)?;
        for t in Table::ALL {
            tx.open_table(t.def()).map_err(db_err)?;
        }
        let keyring = {
            let mut meta = tx.open_table(Table::Meta.def()).map_err(db_err)?;
            let existing = meta
                .get(&b"keyring"[..])
                .map_err(db_err)?
                .map(|v| v.value().to_vec());
            match existing {
                Some(bytes) => {
                    let rec: KeyringRecord = serde_json::from_slice(&bytes).map_err(|e| {
                        Error::Storage(Detail::caused(format!("keyring record unreadable: {e}"), e))
                    })?;
                    Keyring::unwrap(master, &rec)?
                }
                None => {
                    let k = Keyring::new(master, now)?;
                    let rec = serde_json::to_vec(&k.to_record()?)?;
                    meta.insert(&b"keyring"[..], rec.as_slice())
                        .map_err(db_err)?;
                    k
                }
            }
        };
        tx.commit().map_err(db_err)?;
        Ok(Store {
            db,
            keyring: RwLock::new(keyring),
            dir: dir.to_path_buf(),
            generations: Table::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes whenever a commit that wrote to `t` completes.
    pub fn generation(&self, t: Table) -> u64 {
        self.generations[t.index()].load(Ordering::Acquire)
    }

    fn bump(&self, t: Table) {
        self.generations[t.index()].fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a read transaction opens: the readiness probe.
    pub fn ping(&self) -> Result<()> {
        self.read().map(|_| ())
    }

    pub fn read(&self) -> Result<ReadTx<'_>> {
        Ok(ReadTx {
            tx: self.db.begin_read().map_err(db_err)?,
            store: self,
        })
    }

    pub fn write(&self) -> Result<WriteTx<'_>> {
        Ok(WriteTx {
            tx: self.db.begin_write().map_err(db_err)?,
            store: self,
            pending_keyring: None,
            touched: 0,
        })
    }

    /// HMAC of a normalised value under the index key: equality look-ups on
    /// sealed fields without storing the value.
    pub fn blind_index(&self, domain: &str, value: &str) -> Result<[u8; 32]> {
        let kr = self
            .keyring
            .read()
            .map_err(|_| Error::internal("keyring lock poisoned"))?;
        let mut data = Vec::with_capacity(domain.len() + 1 + value.len());
        data.extend_from_slice(domain.as_bytes());
        data.push(0);
        data.extend_from_slice(value.as_bytes());
        Ok(crypto::hmac_sha256(kr.index_key().expose(), &data))
    }

    fn seal_value(&self, kr: &Keyring, t: Table, key: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        if !t.sealed() {
            return Ok(plain.to_vec());
        }
        let (version, dek) = kr.active();
        let ct = crypto::seal(dek, &aad(t, key), plain)?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.push(SEAL_FORMAT);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_value<T: DeserializeOwned>(&self, t: Table, key: &[u8], stored: &[u8]) -> Result<T> {
        if !t.sealed() {
            return serde_json::from_slice(stored).map_err(|e| {
                Error::Integrity(Detail::caused(
                    format!("{}: undecodable record: {e}", t.name()),
                    e,
                ))
            });
        }
        let (version, ct) = parse_header(stored).ok_or_else(|| {
            Error::Integrity(format!("{}: record has no seal header", t.name()).into())
        })?;
        let kr = self
            .keyring
            .read()
            .map_err(|_| Error::internal("keyring lock poisoned"))?;
        let dek = kr.dek(version).ok_or_else(|| {
            Error::Integrity(
                format!("{}: sealed under unknown key version {version}", t.name()).into(),
            )
        })?;
        let plain = crypto::open(dek, &aad(t, key), ct).map_err(|_| {
            Error::Integrity(
                format!(
                    "{}: record {} failed to open (moved, tampered or foreign)",
                    t.name(),
                    hex::encode(key)
                )
                .into(),
            )
        })?;
        serde_json::from_slice(&plain).map_err(|e| {
            Error::Integrity(Detail::caused(
                format!("{}: undecodable record: {e}", t.name()),
                e,
            ))
        })
    }

    /// The data-key version new writes are sealed under (no table scan).
    pub fn active_key_version(&self) -> Result<u32> {
        Ok(self
            .keyring
            .read()
            .map_err(|_| Error::internal("keyring lock poisoned"))?
            .active_version())
    }

    /// Key versions with the number of records each still seals.
    pub fn key_status(&self) -> Result<Vec<KeyVersionStatus>> {
        let (versions, active) = {
            let kr = self
                .keyring
                .read()
                .map_err(|_| Error::internal("keyring lock poisoned"))?;
            (kr.versions(), kr.active_version())
        };
        let mut counts = std::collections::BTreeMap::<u32, u64>::new();
        let tx = self.db.begin_read().map_err(db_err)?;
        for t in Table::ALL.iter().filter(|t| t.sealed()) {
            let table = tx.open_table(t.def()).map_err(db_err)?;
            for item in table.iter().map_err(db_err)? {
                let (_, v) = item.map_err(db_err)?;
                if let Some((ver, _)) = parse_header(v.value()) {
                    *counts.entry(ver).or_default() += 1;
                }
            }
        }
        Ok(versions
            .into_iter()
            .map(|(version, created_at)| KeyVersionStatus {
                version,
                created_at,
                active: version == active,
                records: counts.get(&version).copied().unwrap_or(0),
            })
            .collect())
    }

    /// Total sealed records, and how many are under a key older than the active one.
    pub fn reseal_backlog(&self) -> Result<(u64, u64)> {
        let status = self.key_status()?;
        let total = status.iter().map(|s| s.records).sum();
        let old = status.iter().filter(|s| !s.active).map(|s| s.records).sum();
        Ok((total, old))
    }

    /// Re-seals up to `max` records of `t` that are under an older key, starting
    /// after `cursor`, in one short transaction. Returns how many were re-sealed
    /// and where to continue (`None` once the table is done).
    pub fn reseal_batch(
        &self,
        t: Table,
        cursor: Option<Vec<u8>>,
        max: usize,
    ) -> Result<(usize, Option<Vec<u8>>)> {
        let tx = self.db.begin_write().map_err(db_err)?;
        let mut done = 0;
        let mut last: Option<Vec<u8>> = None;
        {
            let kr = self
                .keyring
                .read()
                .map_err(|_| Error::internal("keyring lock poisoned"))?;
            let active = kr.active_version();
            let mut table = tx.open_table(t.def()).map_err(db_err)?;
            let mut todo = Vec::new();
            let mut scanned = 0;
            let range = match &cursor {
                Some(c) => table.range::<&[u8]>((
                    std::ops::Bound::Excluded(c.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<&[u8]>(..),
            }
            .map_err(db_err)?;
            for item in range {
                let (k, v) = item.map_err(db_err)?;
                scanned += 1;
                last = Some(k.value().to_vec());
                if let Some((ver, _)) = parse_header(v.value())
                    && ver != active
                {
                    todo.push((k.value().to_vec(), v.value().to_vec()));
                }
                if todo.len() >= max || scanned >= max * 8 {
                    break;
                }
            }
            let finished = last.is_none() || (todo.len() < max && scanned < max * 8);
            for (k, v) in todo {
                let (ver, ct) =
                    parse_header(&v).ok_or_else(|| Error::Integrity("no header".into()))?;
                let dek = kr
                    .dek(ver)
                    .ok_or_else(|| Error::Integrity("unknown key".into()))?;
                let plain = crypto::open(dek, &aad(t, &k), ct)?;
                let sealed = self.seal_value(&kr, t, &k, &plain)?;
                table
                    .insert(k.as_slice(), sealed.as_slice())
                    .map_err(db_err)?;
                done += 1;
            }
            if finished {
                last = None;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok((done, last))
    }

    /// Copies a stored value verbatim onto another key, bypassing sealing.
    /// Exists only so tests can prove that a moved ciphertext is refused.
    #[doc(hidden)]
    pub fn danger_copy_raw(&self, t: Table, from: &[u8], to: &[u8]) -> Result<()> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(t.def()).map_err(db_err)?;
            let v = table
                .get(from)
                .map_err(db_err)?
                .map(|v| v.value().to_vec())
                .ok_or(Error::NotFound("record"))?;
            table.insert(to, v.as_slice()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        self.bump(t);
        Ok(())
    }

    /// A consistent copy of every table, taken from one read snapshot while the
    /// server keeps serving. Written beside `dest` and renamed into place.
    pub fn backup_to(&self, dest: &Path) -> Result<u64> {
        let tmp = dest.with_extension("partial");
        let _ = std::fs::remove_file(&tmp);
        // Owner-only from the first byte: redb fills the empty file in place.
        create_private(&tmp)?;
        let out = Database::create(&tmp).map_err(db_err)?;
        let src = self.db.begin_read().map_err(db_err)?;
        let wtx = out.begin_write().map_err(db_err)?;
        let mut n = 0;
        for t in Table::ALL {
            let from = src.open_table(t.def()).map_err(db_err)?;
            let mut to = wtx.open_table(t.def()).map_err(db_err)?;
            for item in from.iter().map_err(db_err)? {
                let (k, v) = item.map_err(db_err)?;
                to.insert(k.value(), v.value()).map_err(db_err)?;
                n += 1;
            }
        }
        wtx.commit().map_err(db_err)?;
        drop(out);
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, dest)?;
        Ok(n)
    }

    /// Replaces the database in `dir` (server stopped) with a backup, after
    /// checking the backup opens with this directory's master key. The previous
    /// file is kept beside it, never deleted.
    pub fn restore(dir: &Path, backup: &Path, now: Timestamp) -> Result<Option<PathBuf>> {
        let master = keyring::load_or_create_master_key(dir, false)?;
        {
            let db = open_db(backup)?;
            let tx = db.begin_read().map_err(db_err)?;
            let meta = tx.open_table(Table::Meta.def()).map_err(|e| {
                Error::Storage(Detail::caused(
                    format!("{} is not a Gatehouse backup: {e}", backup.display()),
                    e,
                ))
            })?;
            let rec = meta
                .get(&b"keyring"[..])
                .map_err(db_err)?
                .ok_or_else(|| Error::Storage("backup holds no keyring".into()))?;
            let rec: KeyringRecord = serde_json::from_slice(rec.value())?;
            Keyring::unwrap(master, &rec)?;
        }
        let db_path = dir.join(DB_FILE);
        let kept = if db_path.exists() {
            let kept = dir.join(format!("{DB_FILE}.before-restore-{now}"));
            std::fs::rename(&db_path, &kept)?;
            Some(kept)
        } else {
            None
        };
        // Copied into an owner-only file, then renamed into place: the
        // restored data is never readable by others, not even for a moment.
        let tmp = dir.join(format!("{DB_FILE}.restoring"));
        let _ = std::fs::remove_file(&tmp);
        {
            let mut to = create_private(&tmp)?;
            let mut from = std::fs::File::open(backup)?;
            std::io::copy(&mut from, &mut to)?;
            to.sync_all()?;
        }
        std::fs::rename(&tmp, &db_path)?;
        Ok(kept)
    }
}

/// Creates `path` new, readable and writable by the owner only (0600) from
/// the start, whatever the umask.
fn create_private(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    Ok(std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?)
}

fn open_db(path: &Path) -> Result<Database> {
    Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::Storage(
            format!(
                "{} is in use by another Gatehouse process (is `gatehouse serve` already running \
             on this data directory?)",
                path.display()
            )
            .into(),
        ),
        other => Error::Storage(Detail::caused(
            format!(
                "cannot open {}: {other}. The file is damaged or not a Gatehouse database; \
                 restore it with `gatehouse restore BACKUP`",
                path.display()
            ),
            other,
        )),
    })
}

fn parse_header(stored: &[u8]) -> Option<(u32, &[u8])> {
    if stored.len() < HEADER_LEN || stored[0] != SEAL_FORMAT {
        return None;
    }
    let v = u32::from_be_bytes([stored[1], stored[2], stored[3], stored[4]]);
    Some((v, &stored[HEADER_LEN..]))
}

/// Records of one table kept in memory while that table's commit generation
/// is unchanged: any committed write to the table invalidates every entry, so
/// a deleted or changed record is never served from here.
pub struct TableCache<K, V> {
    table: Table,
    max: usize,
    map: RwLock<std::collections::HashMap<K, (u64, std::sync::Arc<V>)>>,
}

impl<K: std::hash::Hash + Eq + Clone, V> TableCache<K, V> {
    pub fn new(table: Table, max: usize) -> Self {
        TableCache {
            table,
            max,
            map: RwLock::new(std::collections::HashMap::new()),
        }
    }

    /// The cached record, or `load` it (from a fresh read) and keep it.
    pub fn get_or_load(
        &self,
        store: &Store,
        key: &K,
        load: impl FnOnce(&ReadTx<'_>) -> Result<Option<V>>,
    ) -> Result<Option<std::sync::Arc<V>>> {
        // Read the generation first: a commit racing the load makes the entry stale, never wrong.
        let generation = store.generation(self.table);
        if let Ok(m) = self.map.read()
            && let Some((g, v)) = m.get(key)
            && *g == generation
        {
            return Ok(Some(v.clone()));
        }
        let Some(v) = load(&store.read()?)? else {
            return Ok(None);
        };
        let v = std::sync::Arc::new(v);
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.max {
                m.clear();
            }
            m.insert(key.clone(), (generation, v.clone()));
        }
        Ok(Some(v))
    }
}

/// Reading, shared by read and write transactions.
pub trait Reader {
    fn get<T: DeserializeOwned>(&self, t: Table, key: &[u8]) -> Result<Option<T>>;
    /// Records whose key starts with `prefix`, in key order.
    fn scan<T: DeserializeOwned>(&self, t: Table, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>>;
    /// Walks records newest-key-first until `f` says stop.
    fn scan_rev<T: DeserializeOwned>(
        &self,
        t: Table,
        f: &mut dyn FnMut(&[u8], T) -> ControlFlow<()>,
    ) -> Result<()>;
    fn count(&self, t: Table) -> Result<u64>;
}

fn get_in<T: DeserializeOwned>(
    store: &Store,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    t: Table,
    key: &[u8],
) -> Result<Option<T>> {
    match table.get(key).map_err(db_err)? {
        Some(v) => store.open_value(t, key, v.value()).map(Some),
        None => Ok(None),
    }
}

fn scan_in<T: DeserializeOwned>(
    store: &Store,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    t: Table,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, T)>> {
    let mut out = Vec::new();
    for item in table.range::<&[u8]>(prefix..).map_err(db_err)? {
        let (k, v) = item.map_err(db_err)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push((
            k.value().to_vec(),
            store.open_value(t, k.value(), v.value())?,
        ));
    }
    Ok(out)
}

fn scan_rev_in<T: DeserializeOwned>(
    store: &Store,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    t: Table,
    f: &mut dyn FnMut(&[u8], T) -> ControlFlow<()>,
) -> Result<()> {
    for item in table.iter().map_err(db_err)?.rev() {
        let (k, v) = item.map_err(db_err)?;
        let rec = store.open_value(t, k.value(), v.value())?;
        if f(k.value(), rec).is_break() {
            break;
        }
    }
    Ok(())
}

pub struct ReadTx<'s> {
    tx: redb::ReadTransaction,
    store: &'s Store,
}

impl ReadTx<'_> {
    fn table(&self, t: Table) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
        self.tx.open_table(t.def()).map_err(db_err)
    }
}

impl Reader for ReadTx<'_> {
    fn get<T: DeserializeOwned>(&self, t: Table, key: &[u8]) -> Result<Option<T>> {
        get_in(self.store, &self.table(t)?, t, key)
    }
    fn scan<T: DeserializeOwned>(&self, t: Table, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>> {
        scan_in(self.store, &self.table(t)?, t, prefix)
    }
    fn scan_rev<T: DeserializeOwned>(
        &self,
        t: Table,
        f: &mut dyn FnMut(&[u8], T) -> ControlFlow<()>,
    ) -> Result<()> {
        scan_rev_in(self.store, &self.table(t)?, t, f)
    }
    fn count(&self, t: Table) -> Result<u64> {
        self.table(t)?.len().map_err(db_err)
    }
}

/// A write transaction. Nothing is visible until `commit`; dropping it aborts.
pub struct WriteTx<'s> {
    tx: redb::WriteTransaction,
    store: &'s Store,
    pending_keyring: Option<Keyring>,
    /// Bit per table written in this transaction.
    touched: u64,
}

impl WriteTx<'_> {
    /// `Store::blind_index`, inside a transaction.
    pub fn blind_index(&self, domain: &str, value: &str) -> Result<[u8; 32]> {
        self.store.blind_index(domain, value)
    }

    fn table(&self, t: Table) -> Result<redb::Table<'_, &'static [u8], &'static [u8]>> {
        self.tx.open_table(t.def()).map_err(db_err)
    }

    pub fn put<T: Serialize>(&mut self, t: Table, key: &[u8], value: &T) -> Result<()> {
        self.touched |= 1 << t.index();
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(value)?);
        let stored = match &self.pending_keyring {
            Some(kr) => self.store.seal_value(kr, t, key, &plain)?,
            None => {
                let kr = self
                    .store
                    .keyring
                    .read()
                    .map_err(|_| Error::internal("keyring lock poisoned"))?;
                self.store.seal_value(&kr, t, key, &plain)?
            }
        };
        self.table(t)?
            .insert(key, stored.as_slice())
            .map_err(db_err)?;
        Ok(())
    }

    pub fn delete(&mut self, t: Table, key: &[u8]) -> Result<bool> {
        self.touched |= 1 << t.index();
        Ok(self.table(t)?.remove(key).map_err(db_err)?.is_some())
    }

    /// Makes a new data key active for every write from now on, this
    /// transaction's included; takes effect in memory only if the commit does.
    pub fn rotate_data_key(&mut self, now: Timestamp) -> Result<u32> {
        let next = {
            let kr = self
                .store
                .keyring
                .read()
                .map_err(|_| Error::internal("keyring lock poisoned"))?;
            kr.rotated(now)?
        };
        let rec = serde_json::to_vec(&next.to_record()?)?;
        self.table(Table::Meta)?
            .insert(&b"keyring"[..], rec.as_slice())
            .map_err(db_err)?;
        let v = next.active_version();
        self.pending_keyring = Some(next);
        Ok(v)
    }

    pub fn commit(self) -> Result<()> {
        let WriteTx {
            tx,
            store,
            pending_keyring,
            touched,
        } = self;
        tx.commit().map_err(db_err)?;
        for t in Table::ALL {
            if touched & (1 << t.index()) != 0 {
                store.bump(*t);
            }
        }
        if let Some(kr) = pending_keyring {
            *store
                .keyring
                .write()
                .map_err(|_| Error::internal("keyring lock poisoned"))? = kr;
        }
        Ok(())
    }
}

impl Reader for WriteTx<'_> {
    fn get<T: DeserializeOwned>(&self, t: Table, key: &[u8]) -> Result<Option<T>> {
        get_in(self.store, &self.table(t)?, t, key)
    }
    fn scan<T: DeserializeOwned>(&self, t: Table, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>> {
        scan_in(self.store, &self.table(t)?, t, prefix)
    }
    fn scan_rev<T: DeserializeOwned>(
        &self,
        t: Table,
        f: &mut dyn FnMut(&[u8], T) -> ControlFlow<()>,
    ) -> Result<()> {
        scan_rev_in(self.store, &self.table(t)?, t, f)
    }
    fn count(&self, t: Table) -> Result<u64> {
        self.table(t)?.len().map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_own_name_and_slot() {
        let mut names = std::collections::HashSet::new();
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
            assert!(names.insert(t.name()), "{} listed twice", t.name());
        }
        assert_eq!(names.len(), 39);
    }

    #[test]
    fn backups_and_restored_files_are_owner_only_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // A stale world-readable `.partial` is replaced, not reused.
        let dest = dir.path().join("backup.redb");
        std::fs::write(dest.with_extension("partial"), b"old").unwrap();
        std::fs::set_permissions(
            dest.with_extension("partial"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let f = create_private(&dir.path().join("fresh")).unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert!(
            create_private(&dir.path().join("fresh")).is_err(),
            "never opens an existing file"
        );
        let data = dir.path().join("data");
        {
            let store = Store::open(&data, 1).unwrap();
            assert_eq!(mode(&data.join(DB_FILE)), 0o600);
            store.backup_to(&dest).unwrap();
        }
        assert_eq!(mode(&dest), 0o600);
        assert!(!dest.with_extension("partial").exists());
        // The backup is world-readable (copied around by hand): the restored file is not.
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::restore(&data, &dest, 2).unwrap();
        assert_eq!(mode(&data.join(DB_FILE)), 0o600);
        assert!(Store::open(&data, 3).is_ok());
    }

    #[test]
    fn sealed_values_are_bound_to_their_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1).unwrap();
        let mut tx = store.write().unwrap();
        tx.put(Table::Users, b"a", &"alice@example.com").unwrap();
        tx.commit().unwrap();
        // Copy a's ciphertext onto b's key, bypassing the sealing API.
        let raw = {
            let r = store.db.begin_read().unwrap();
            let t = r.open_table(Table::Users.def()).unwrap();
            t.get(&b"a"[..]).unwrap().unwrap().value().to_vec()
        };
        let w = store.db.begin_write().unwrap();
        w.open_table(Table::Users.def())
            .unwrap()
            .insert(&b"b"[..], raw.as_slice())
            .unwrap();
        w.commit().unwrap();
        let r = store.read().unwrap();
        assert_eq!(
            r.get::<String>(Table::Users, b"a").unwrap().unwrap(),
            "alice@example.com"
        );
        assert!(matches!(
            r.get::<String>(Table::Users, b"b"),
            Err(Error::Integrity(_))
        ));
    }

    #[test]
    fn rotation_reseals_and_wrong_master_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1).unwrap();
            let mut tx = store.write().unwrap();
            for i in 0..50u32 {
                tx.put(Table::Users, &i.to_be_bytes(), &i).unwrap();
            }
            tx.commit().unwrap();
            let mut tx = store.write().unwrap();
            assert_eq!(tx.rotate_data_key(2).unwrap(), 2);
            tx.commit().unwrap();
            assert_eq!(store.reseal_backlog().unwrap(), (50, 50));
            let mut cursor = None;
            loop {
                let (_, next) = store.reseal_batch(Table::Users, cursor, 7).unwrap();
                if next.is_none() {
                    break;
                }
                cursor = next;
            }
            assert_eq!(store.reseal_backlog().unwrap(), (50, 0));
            let r = store.read().unwrap();
            assert_eq!(
                r.get::<u32>(Table::Users, &7u32.to_be_bytes()).unwrap(),
                Some(7)
            );
        }
        std::fs::write(dir.path().join("master.key"), [7u8; 32]).unwrap();
        let e = Store::open(dir.path(), 3).err().unwrap().to_string();
        assert!(e.contains("does not match"), "{e}");
        std::fs::remove_file(dir.path().join("master.key")).unwrap();
        let e = Store::open(dir.path(), 3).err().unwrap().to_string();
        assert!(e.contains("missing"), "{e}");
        assert!(!dir.path().join("master.key").exists());
    }
}
