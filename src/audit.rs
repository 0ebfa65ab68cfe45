//! The audit log: append-only, hash-chained events written inside the same
//! write transaction as the change they record, plus query and verification,
//! and the buffer that group-commits refused checks (which change nothing, so
//! need no transaction of their own), and each action's category (one table,
//! `CATEGORIES`). It does not deliver events anywhere: the SIEM sinks
//! (`sinks`) read from here after the fact, through `events_after`.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::store::{Reader, Store, Table, WriteTx};

/// Who did it, from where. A domain type: the web layer fills it from the request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Source {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// The event classes compliance teams filter by (issue 15, point 1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Authentication,
    Authorization,
    DataAccess,
    Configuration,
    Security,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Authentication,
        Category::Authorization,
        Category::DataAccess,
        Category::Configuration,
        Category::Security,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::Authorization => "authorization",
            Category::DataAccess => "data_access",
            Category::Configuration => "configuration",
            Category::Security => "security",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Every action Gatehouse writes, with its category: the one table the API,
/// the console, the filters and the sinks use (the README lists the same
/// names; a unit test keeps the two equal). An entry ending in `.` covers
/// every action with that prefix that has no exact entry of its own.
pub const CATEGORIES: &[(&str, Category)] = &[
    ("auth.login", Category::Authentication),
    ("auth.logout", Category::Authentication),
    ("auth.mfa", Category::Authentication),
    ("auth.password", Category::Authentication),
    ("auth.confirm", Category::Authentication),
    ("auth.reauth", Category::Authentication),
    ("auth.refresh", Category::Authentication),
    ("auth.refresh_reuse", Category::Security),
    ("auth.lockout", Category::Security),
    ("session.end", Category::Authentication),
    ("session.end_all", Category::Authentication),
    ("session.end_others", Category::Authentication),
    ("sso.login", Category::Authentication),
    ("sso.test", Category::Authentication),
    ("client.authenticate", Category::Authentication),
    ("mfa.code_sent", Category::Authentication),
    ("mfa.recovery_code_used", Category::Authentication),
    ("setup.link_issued", Category::Authentication),
    ("recover.link_issued", Category::Authentication),
    ("user.password_recovered", Category::Authentication),
    ("access.denied", Category::Authorization),
    ("role.create", Category::Authorization),
    ("role.update", Category::Authorization),
    ("role.delete", Category::Authorization),
    ("group.create", Category::Authorization),
    ("group.update", Category::Authorization),
    ("group.delete", Category::Authorization),
    ("member.add", Category::Authorization),
    ("member.update", Category::Authorization),
    ("member.remove", Category::Authorization),
    ("sso.link", Category::Authorization),
    ("sso.unlink", Category::Authorization),
    ("service_account.ip_not_allowed", Category::Authorization),
    ("backup.create", Category::DataAccess),
    ("config.change", Category::Configuration),
    ("settings.security_change", Category::Configuration),
    ("sso.connection_create", Category::Configuration),
    ("sso.connection_update", Category::Configuration),
    ("sso.connection_delete", Category::Configuration),
    ("sso.settings_change", Category::Configuration),
    ("sso.enforcement_change", Category::Configuration),
    ("workspace.create", Category::Configuration),
    ("workspace.rename", Category::Configuration),
    ("workspace.delete", Category::Configuration),
    ("workspace.session_limits", Category::Configuration),
    ("setup.owner_created", Category::Configuration),
    ("user.create", Category::Configuration),
    ("user.update", Category::Configuration),
    ("user.delete", Category::Configuration),
    ("user.disable", Category::Configuration),
    ("user.enable", Category::Configuration),
    ("user.unlock", Category::Configuration),
    ("user.email_change", Category::Configuration),
    ("audit_sink.create", Category::Configuration),
    ("audit_sink.update", Category::Configuration),
    ("audit_sink.delete", Category::Configuration),
    ("audit_sink.test", Category::Configuration),
    ("user.password_change", Category::Security),
    ("user.password_reset", Category::Security),
    ("mfa.", Category::Security),
    ("api_app.", Category::Security),
    ("api_key.", Category::Security),
    ("service_account.", Category::Security),
    ("widget_key.", Category::Security),
    ("keys.", Category::Security),
    ("signing_key.rotate", Category::Security),
    ("token.revoke", Category::Security),
];

/// The category of `action` (see `CATEGORIES`). An action the table does not
/// know is `security`: an unclassified event is shown where it is looked at most.
pub fn category_of(action: &str) -> Category {
    if let Some((_, c)) = CATEGORIES.iter().find(|(a, _)| *a == action) {
        return *c;
    }
    CATEGORIES
        .iter()
        .filter(|(a, _)| a.ends_with('.') && action.starts_with(a))
        .map(|(a, c)| (a.len(), *c))
        .max_by_key(|(n, _)| *n)
        .map_or(Category::Security, |(_, c)| c)
}

/// A stored event. `hash` = SHA-256(prev_hash ‖ the event without `hash`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: u64,
    pub time: Timestamp,
    /// E-mail or name of the actor; `system` or `cli` for local operations.
    pub actor: String,
    pub actor_id: Option<String>,
    pub action: String,
    /// Derived from `action` (`CATEGORIES`) whenever the event is read;
    /// never stored, so never part of a hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub category: Option<Category>,
    pub target: Option<String>,
    #[schema(value_type = String)]
    pub outcome: Outcome,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The workspace the event belongs to, if any (workspace admins see these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub workspace: Option<WorkspaceId>,
    /// Written with a sealed chain head (see `SEALED_HEAD_KEY`): once an
    /// event says so, a log without a matching sealed head was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub head_sealed: bool,
    /// A refusal still waiting for its group commit (see `DenialBuffer`),
    /// shown to readers as it stands: no id (0) and no hash yet. Never
    /// stored, so never part of a hash.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    pub prev_hash: String,
    pub hash: String,
}

/// What a caller supplies; the log fills in id, time and the chain.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: String,
    pub actor_id: Option<String>,
    pub action: &'static str,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
    pub workspace: Option<WorkspaceId>,
}

impl NewEvent {
    pub fn new(action: &'static str, outcome: Outcome) -> Self {
        NewEvent {
            actor: "anonymous".into(),
            actor_id: None,
            action,
            target: None,
            outcome,
            details: serde_json::Value::Null,
            workspace: None,
        }
    }
    pub fn workspace(mut self, ws: Option<&WorkspaceId>) -> Self {
        self.workspace = ws.cloned();
        self
    }
    pub fn actor(mut self, name: impl Into<String>, id: Option<String>) -> Self {
        self.actor = name.into();
        self.actor_id = id;
        self
    }
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

const HEAD_KEY: &[u8] = b"audit_head";
/// The chain head again, sealed (in the sealed `secrets` table, so only the
/// master key can write it) and rewritten in the same transaction as every
/// event: the plain head in `meta` can be rewound by anyone who can write the
/// file, this one cannot be forged. A cut of the newest events then shows as
/// a sealed head past the log's end, and deleting the sealed head too shows
/// as events that say one was kept. Not detected: putting back an older copy
/// of the whole file (or of the sealed head together with a matching cut) —
/// the log's copies outside this file (exports, SIEM) are the check for that.
const SEALED_HEAD_KEY: &[u8] = b"audit_head_sealed";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn chain_hash(e: &Event) -> Result<String> {
    let mut body = e.clone();
    body.hash = String::new();
    let mut data = e.prev_hash.as_bytes().to_vec();
    data.push(b'\n');
    data.extend_from_slice(&serde_json::to_vec(&body)?);
    Ok(hex::encode(crypto::sha256(&data)))
}

/// Appends an event inside `tx`; it exists only if `tx` commits.
pub fn record(tx: &mut WriteTx<'_>, now: Timestamp, src: &Source, ev: NewEvent) -> Result<u64> {
    let action = ev.action.to_string();
    append(tx, now, src, ev, action)
}

/// `record`, the action given apart (`ev.action` is ignored).
fn append(
    tx: &mut WriteTx<'_>,
    now: Timestamp,
    src: &Source,
    ev: NewEvent,
    action: String,
) -> Result<u64> {
    let plain: Head = tx.get(Table::Meta, HEAD_KEY)?.unwrap_or_default();
    // The sealed head is the authority: after a cut with a rewound plain
    // head, new events continue after the sealed one, so the gap stays
    // visible. A sealed head that is gone (or forged) while the newest event
    // says one was kept is left gone, so `verify` keeps reporting it; a log
    // from before sealed heads starts one.
    let (head, seal) = match tx.get::<Head>(Table::Secrets, SEALED_HEAD_KEY) {
        Ok(Some(h)) => (h, true),
        Ok(None) if plain.seq == 0 => (plain, true),
        Ok(None) => {
            let last: Option<Event> = tx
                .get(Table::Audit, &plain.seq.to_be_bytes())
                .unwrap_or(None);
            let lost = last.is_none_or(|e| e.head_sealed);
            (plain, !lost)
        }
        Err(Error::Integrity(_)) => (plain, false),
        Err(e) => return Err(e),
    };
    let id = head.seq + 1;
    let mut e = Event {
        id,
        time: now,
        actor: ev.actor,
        actor_id: ev.actor_id,
        action,
        category: None,
        target: ev.target,
        outcome: ev.outcome,
        source_ip: src.ip.clone(),
        user_agent: src.user_agent.clone(),
        details: ev.details,
        workspace: ev.workspace,
        head_sealed: true,
        pending: false,
        prev_hash: if head.hash.is_empty() {
            GENESIS.into()
        } else {
            head.hash
        },
        hash: String::new(),
    };
    e.hash = chain_hash(&e)?;
    tx.put(Table::Audit, &id.to_be_bytes(), &e)?;
    let head = Head {
        seq: id,
        hash: e.hash,
    };
    tx.put(Table::Meta, HEAD_KEY, &head)?;
    if seal {
        tx.put(Table::Secrets, SEALED_HEAD_KEY, &head)?;
    }
    Ok(id)
}

// ---- refused checks: coalesced and group-committed ----

/// How often the background writer commits the buffered denials (seconds):
/// the most a crash can lose. Identical denials within one interval become
/// one event with a count.
pub const DENIAL_FLUSH_SECS: u64 = 1;
/// Distinct denials held before the next one commits them at once, so a flood
/// of different denials costs bounded memory (and a commit per this many).
pub const DENIAL_BUFFER_MAX: usize = 1000;

/// Distinct resources (and other varying details) one coalesced denial lists
/// besides its first; the rest are only counted (`details.also_unlisted`).
pub const DENIAL_SAMPLE_MAX: usize = 10;
/// Distinct denial events one principal may add per
/// `DENIAL_BUDGET_WINDOW_SECS`; past it, their refusals fold into one event
/// per window (`details.over_budget`), with a sample and a count. A caller
/// nobody authenticated (the event names no actor id) is budgeted by its
/// address instead (see `BudgetKey`).
pub const DENIAL_BUDGET: u32 = 20;
pub const DENIAL_BUDGET_WINDOW_SECS: i64 = 60;
/// An over-budget event lists its first and its newest this many source
/// addresses (`details.addresses`) and counts the rest.
pub const DENIAL_ADDRESSES_KEPT: usize = 5;
/// Workspaces a principal's over-budget events name a window (one event per
/// workspace and kind, so each workspace's admins see the refusals of their
/// resources in their own log), whatever other workspaces it was refused in
/// first. Past them, one installation-wide event per kind covers the rest
/// and says how many workspaces (`details.workspaces`). A caller nobody
/// authenticated gets `DENIAL_SAMPLE_MAX` per address. Either way what one
/// caller costs a window stays bounded: its budget, these events, and one
/// more per kind. An authenticated principal can only name workspaces that
/// exist (an unknown id is refused before any audit), so the cap is the
/// installation's size up to 10,000, not something a caller chooses: every
/// workspace it was refused in sees its own event (review 7: a cap of 100
/// let a platform client hide refusals from the 101st workspace).
pub const DENIAL_WORKSPACES_MAX: usize = 10_000;
/// Distinct workspaces an installation-wide over-budget event counts (past
/// it, `details.workspaces` is a lower bound), bounding the memory one
/// principal costs a window.
const DENIAL_WORKSPACES_COUNTED: usize = 10_000;

/// Where the over-budget events still held (see `Pending::hold_until`) are
/// saved as they stand, at most once per `DENIAL_FLUSH_SECS` while they
/// change, in the background writer's transaction: a crash then loses at
/// most the last `DENIAL_FLUSH_SECS` of them, as of every other refusal,
/// and the commits stay one per interval. In the sealed table: it names
/// actors and addresses, as the log does.
const HELD_KEY: &[u8] = b"audit_denials_held";

/// A held over-budget event as it would be committed now.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    time: Timestamp,
    src: Source,
    actor: String,
    actor_id: Option<String>,
    action: String,
    target: Option<String>,
    outcome: Outcome,
    details: serde_json::Value,
    workspace: Option<WorkspaceId>,
}

/// Commits, inside `tx`, the over-budget events a crash (or a kill) left
/// saved but uncommitted, each with `details.interrupted` (its count is the
/// one last saved), and forgets them. Called once at start-up.
pub fn recover_held_denials(tx: &mut WriteTx<'_>) -> Result<usize> {
    let Some(held) = tx.get::<Vec<Held>>(Table::Secrets, HELD_KEY)? else {
        return Ok(0);
    };
    for h in &held {
        let mut details = h.details.clone();
        if let serde_json::Value::Object(m) = &mut details {
            m.insert("interrupted".into(), true.into());
        }
        let ev = NewEvent {
            actor: h.actor.clone(),
            actor_id: h.actor_id.clone(),
            action: "",
            target: h.target.clone(),
            outcome: h.outcome,
            details,
            workspace: h.workspace.clone(),
        };
        append(tx, h.time, &h.src, ev, h.action.clone())?;
    }
    tx.delete(Table::Secrets, HELD_KEY)?;
    Ok(held.len())
}

/// What makes two denials the same: what the caller cannot choose freely —
/// action, outcome, actor, the workspace (only an existing one: see
/// `access::audit_denial`), the permission and reason in `details`, and the
/// source address. The resource, target and any other detail vary within
/// one event (a capped sample). The last field marks a principal's
/// over-budget event.
type DenialKey = (
    &'static str,
    &'static str,
    String,
    Option<String>,
    Option<WorkspaceId>,
    String,
    Option<String>,
    bool,
);

struct Pending {
    seq: u64,
    first: Timestamp,
    last: Timestamp,
    count: u64,
    src: Source,
    ev: NewEvent,
    /// What varied from the first denial (distinct, at most `DENIAL_SAMPLE_MAX`).
    also: Vec<serde_json::Value>,
    /// Denials that varied but did not fit in `also`.
    also_unlisted: u64,
    /// An over-budget event waits until its principal's window ends.
    hold_until: Option<Timestamp>,
    /// An over-budget event's source addresses with their counts: the first
    /// `DENIAL_ADDRESSES_KEPT` seen, and the newest `DENIAL_ADDRESSES_KEPT`
    /// others (oldest first, so a prober's newest addresses stay listed
    /// whatever came before), and the denials from addresses not listed.
    addresses: Vec<(String, u64)>,
    recent_addresses: Vec<(String, u64)>,
    addresses_unlisted: u64,
    /// An installation-wide over-budget event: how many workspaces past
    /// `DENIAL_WORKSPACES_MAX` it covers (they see no event of their own).
    workspaces: u64,
}

impl Pending {
    fn note(
        &mut self,
        now: Timestamp,
        varied: serde_json::Value,
        first_varied: &serde_json::Value,
    ) {
        self.count += 1;
        self.last = self.last.max(now);
        if &varied == first_varied || self.also.contains(&varied) {
            return;
        }
        if self.also.len() < DENIAL_SAMPLE_MAX {
            self.also.push(varied);
        } else {
            self.also_unlisted += 1;
        }
    }

    /// The event as it would be committed now: its details with the count,
    /// the time of the last denial, the sample and the addresses.
    fn finished(&self) -> NewEvent {
        let mut ev = self.ev.clone();
        let mut details = match ev.details {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("detail".into(), other);
                m
            }
        };
        details.insert("count".into(), self.count.into());
        details.insert("last_at".into(), self.last.into());
        if !self.also.is_empty() {
            details.insert("also".into(), self.also.clone().into());
        }
        if self.also_unlisted > 0 {
            details.insert("also_unlisted".into(), self.also_unlisted.into());
        }
        if !self.addresses.is_empty() {
            let listed: Vec<serde_json::Value> = self
                .addresses
                .iter()
                .chain(&self.recent_addresses)
                .map(|(a, n)| serde_json::json!({"address": a, "count": n}))
                .collect();
            details.insert("addresses".into(), listed.into());
        }
        if self.addresses_unlisted > 0 {
            details.insert("addresses_unlisted".into(), self.addresses_unlisted.into());
        }
        if self.workspaces > 0 {
            details.insert("workspaces".into(), self.workspaces.into());
        }
        ev.details = serde_json::Value::Object(details);
        ev
    }

    /// What is saved of a held over-budget event (see `HELD_KEY`).
    fn held(&self) -> Held {
        let ev = self.finished();
        Held {
            time: self.first,
            src: self.src.clone(),
            actor: ev.actor,
            actor_id: ev.actor_id,
            action: ev.action.to_string(),
            target: ev.target,
            outcome: ev.outcome,
            details: ev.details,
            workspace: ev.workspace,
        }
    }

    /// What a reader sees of it before its commit (`Event::pending`).
    fn as_event(&self) -> Event {
        let ev = self.finished();
        Event {
            id: 0,
            time: self.first,
            actor: ev.actor,
            actor_id: ev.actor_id,
            action: ev.action.to_string(),
            category: Some(category_of(ev.action)),
            target: ev.target,
            outcome: ev.outcome,
            source_ip: self.src.ip.clone(),
            user_agent: self.src.user_agent.clone(),
            details: ev.details,
            workspace: ev.workspace,
            head_sealed: false,
            pending: true,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// Counts an over-budget denial against its source address.
    fn note_address(&mut self, src: &Source) {
        let ip = src.ip.as_deref().unwrap_or("none");
        if let Some((_, n)) = self.addresses.iter_mut().find(|(a, _)| a == ip) {
            *n += 1;
        } else if self.addresses.len() < DENIAL_ADDRESSES_KEPT {
            self.addresses.push((ip.to_string(), 1));
        } else {
            let seen = match self.recent_addresses.iter().position(|(a, _)| a == ip) {
                Some(i) => self.recent_addresses.remove(i).1,
                None => 0,
            };
            self.recent_addresses.push((ip.to_string(), seen + 1));
            if self.recent_addresses.len() > DENIAL_ADDRESSES_KEPT {
                self.addresses_unlisted += self.recent_addresses.remove(0).1;
            }
        }
    }
}

/// Whose `DENIAL_BUDGET` a denial uses. An authenticated principal's: the
/// event names its id. A caller nobody authenticated (no actor id: an
/// unknown client id, a wrong secret, a made-up token) has only the name it
/// claims, so a name would hand out a fresh budget per made-up name: it uses
/// its address's budget instead, IPv6 by the rate limiter's network (see
/// `ratelimit::bucket_addr`), so decoys at other addresses cannot use up a
/// prober's budget, nor can a prober hide behind them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BudgetKey {
    Principal(String),
    Address(String),
}

impl BudgetKey {
    fn of(ev: &NewEvent, src: &Source, ipv6_prefix: u8) -> BudgetKey {
        match &ev.actor_id {
            Some(id) => BudgetKey::Principal(id.clone()),
            None => BudgetKey::Address(budget_address(src.ip.as_deref(), ipv6_prefix)),
        }
    }
}

/// The address whose budget an anonymous caller uses: IPv4 as is, IPv6 as
/// its network of `ipv6_prefix` bits (`2001:db8:1:2::/64`); an address that
/// does not parse (`unknown`: behind a proxy whose header was unreadable)
/// is its own one budget.
fn budget_address(ip: Option<&str>, ipv6_prefix: u8) -> String {
    let Some(ip) = ip else {
        return "none".into();
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(a) => match crate::ratelimit::bucket_addr(a, ipv6_prefix) {
            v4 @ std::net::IpAddr::V4(_) => v4.to_string(),
            v6 => format!("{v6}/{}", ipv6_prefix.clamp(1, 128)),
        },
        Err(_) => ip.to_string(),
    }
}

/// One principal's use of `DENIAL_BUDGET`.
#[derive(Default)]
struct Budget {
    window_start: Timestamp,
    used: u32,
    /// The workspaces its over-budget events of this window name (at most
    /// `DENIAL_WORKSPACES_MAX`, or `DENIAL_SAMPLE_MAX` for an anonymous
    /// caller: past them, one more per kind names none).
    over_workspaces: HashSet<WorkspaceId>,
    /// The workspaces (per kind of event) that event covers, to count them
    /// (at most `DENIAL_WORKSPACES_COUNTED`).
    unnamed_workspaces: HashSet<(&'static str, WorkspaceId)>,
}

#[derive(Default)]
struct Buffered {
    seq: u64,
    pending: HashMap<DenialKey, Pending>,
    /// The first denial's varying part, per key (to tell repeats of it).
    first_varied: HashMap<DenialKey, serde_json::Value>,
    budgets: HashMap<BudgetKey, Budget>,
    /// The held over-budget events changed since they were last saved
    /// (`HELD_KEY`), and when that was.
    held_dirty: bool,
    held_saved_at: Option<Timestamp>,
}

/// The part of a denial that may vary within one event: its target and
/// every detail but `permission` and `reason`.
fn varying(ev: &NewEvent, with_key_fields: bool) -> serde_json::Value {
    let mut m = match &ev.details {
        serde_json::Value::Object(m) => m.clone(),
        serde_json::Value::Null => serde_json::Map::new(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("detail".into(), other.clone());
            m
        }
    };
    if !with_key_fields {
        m.remove("permission");
        m.remove("reason");
    }
    if let Some(t) = &ev.target {
        m.insert("target".into(), t.clone().into());
    }
    serde_json::Value::Object(m)
}

fn detail_str(ev: &NewEvent, field: &str) -> Option<String> {
    ev.details.get(field).map(|v| match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    })
}

/// Refused checks waiting for their group commit. Every denial stays on the
/// record: each distinct one becomes an event whose `details.count` says how
/// often it happened between `time` and `details.last_at`, listing in
/// `details.also` (up to `DENIAL_SAMPLE_MAX`) the other resources refused
/// alike and counting the rest in `details.also_unlisted`.
#[derive(Default)]
pub struct DenialBuffer {
    inner: Mutex<Buffered>,
    /// Held for a whole flush, so a flush that finds the buffer empty while
    /// another one is still committing waits for that commit, and a reader
    /// (`page`) never sees the log and the buffer in the middle of a flush.
    flushing: Mutex<()>,
}

impl DenialBuffer {
    /// Buffers a denial; returns how many distinct denials are waiting.
    /// `ipv6_prefix` is the network IPv6 callers nobody authenticated are
    /// budgeted by (`rate_limit.ipv6_prefix`).
    pub fn add(&self, now: Timestamp, src: &Source, ev: NewEvent, ipv6_prefix: u8) -> usize {
        let mut key: DenialKey = (
            ev.action,
            ev.outcome.as_str(),
            ev.actor.clone(),
            ev.actor_id.clone(),
            ev.workspace.clone(),
            format!(
                "{}\0{}",
                detail_str(&ev, "permission").unwrap_or_default(),
                detail_str(&ev, "reason").unwrap_or_default()
            ),
            src.ip.clone(),
            false,
        );
        let Ok(mut g) = self.inner.lock() else {
            return 0;
        };
        let b = &mut *g;
        b.seq += 1;
        let seq = b.seq;
        if let Some(p) = b.pending.get_mut(&key) {
            let varied = varying(&ev, false);
            let first = b.first_varied.get(&key).cloned().unwrap_or_default();
            p.note(now, varied, &first);
            return b.pending.len();
        }
        // A new distinct event: within the principal's (or the anonymous
        // caller's address's) budget, or folded into its over-budget event
        // for this window.
        let who = BudgetKey::of(&ev, src, ipv6_prefix);
        let budget = b.budgets.entry(who.clone()).or_insert(Budget {
            window_start: now,
            ..Budget::default()
        });
        if now - budget.window_start >= DENIAL_BUDGET_WINDOW_SECS || now < budget.window_start {
            *budget = Budget {
                window_start: now,
                ..Budget::default()
            };
        }
        // Whether this denial adds a workspace to what an installation-wide
        // over-budget event covers.
        let mut unnamed = false;
        let (varied, ev, hold_until) = if budget.used < DENIAL_BUDGET {
            budget.used += 1;
            (varying(&ev, false), ev, None)
        } else {
            let mut varied = varying(&ev, true);
            if let serde_json::Value::Object(m) = &mut varied {
                m.insert("address".into(), src.ip.clone().into());
                m.insert(
                    "workspace".into(),
                    ev.workspace.clone().map(String::from).into(),
                );
            }
            // One over-budget event per principal (or anonymous address),
            // kind of event and (existing) workspace a window, so the
            // workspace's admins see it: an anonymous caller's names only
            // its address, whatever names it claimed. At most
            // `DENIAL_WORKSPACES_MAX` workspaces a window (so refusals
            // elsewhere first cannot hide those of a workspace from its
            // log below that); past them, one event per kind counts them.
            let named_max = match &who {
                BudgetKey::Principal(_) => DENIAL_WORKSPACES_MAX,
                BudgetKey::Address(_) => DENIAL_SAMPLE_MAX,
            };
            let ws = match &ev.workspace {
                Some(w) if budget.over_workspaces.contains(w) => Some(w.clone()),
                Some(w) if budget.over_workspaces.len() < named_max => {
                    budget.over_workspaces.insert(w.clone());
                    Some(w.clone())
                }
                Some(w) => {
                    unnamed = budget.unnamed_workspaces.len() < DENIAL_WORKSPACES_COUNTED
                        && budget.unnamed_workspaces.insert((ev.action, w.clone()));
                    None
                }
                None => None,
            };
            let (actor, actor_id, address) = match &who {
                BudgetKey::Principal(_) => (ev.actor.clone(), ev.actor_id.clone(), None),
                BudgetKey::Address(a) => ("anonymous".to_string(), None, Some(a.clone())),
            };
            key = (
                ev.action,
                ev.outcome.as_str(),
                actor.clone(),
                actor_id.clone(),
                ws.clone(),
                String::new(),
                address.clone(),
                true,
            );
            let hold = budget
                .window_start
                .saturating_add(DENIAL_BUDGET_WINDOW_SECS);
            let mut details = serde_json::json!({
                "over_budget": true,
                "budget": DENIAL_BUDGET,
                "window_secs": DENIAL_BUDGET_WINDOW_SECS,
                "first": varied.clone(),
            });
            if let Some(a) = &address {
                details["address"] = a.clone().into();
            }
            let over = NewEvent {
                actor,
                actor_id,
                target: None,
                workspace: ws,
                details,
                ..ev
            };
            (varied, over, Some(hold))
        };
        let over = hold_until.is_some();
        b.held_dirty |= over;
        if let Some(p) = b.pending.get_mut(&key) {
            let first = b.first_varied.get(&key).cloned().unwrap_or_default();
            p.note(now, varied, &first);
            if over {
                p.note_address(src);
            }
            p.workspaces += u64::from(unnamed);
            return b.pending.len();
        }
        b.first_varied.insert(key.clone(), varied);
        let anonymous = matches!(who, BudgetKey::Address(_));
        let mut p = Pending {
            seq,
            first: now,
            last: now,
            count: 1,
            // A principal's over-budget event spans its addresses (listed
            // in the details); an anonymous one's is its address's.
            src: match (over, anonymous) {
                (false, _) => src.clone(),
                (true, true) => Source {
                    ip: src.ip.clone(),
                    user_agent: None,
                },
                (true, false) => Source::default(),
            },
            ev,
            also: Vec::new(),
            also_unlisted: 0,
            hold_until,
            addresses: Vec::new(),
            recent_addresses: Vec::new(),
            addresses_unlisted: 0,
            workspaces: u64::from(unnamed),
        };
        if over {
            p.note_address(src);
        }
        b.pending.insert(key, p);
        b.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner
            .lock()
            .map(|g| g.pending.is_empty())
            .unwrap_or(true)
    }

    /// Writes every waiting denial in one transaction, in the order each was
    /// first seen. Returns how many events were written. If the commit
    /// fails, the denials go back into the buffer for the next attempt.
    pub fn flush(&self, store: &Store) -> Result<usize> {
        self.flush_held_until(store, None)
    }

    /// As `flush`, but leaves over-budget events whose window has not ended
    /// at `now` waiting (the background writer's call).
    pub fn flush_due(&self, store: &Store, now: Timestamp) -> Result<usize> {
        self.flush_held_until(store, Some(now))
    }

    /// A page of the log (as `query`) with the refusals still waiting merged
    /// in, newest first and marked `pending` — without committing them: a
    /// read must not end a coalesced event nor release a held over-budget
    /// one early, or whoever may read the log could turn each refusal into
    /// a durable event by reading after it. The snapshot of the log and of
    /// the buffer are taken together (no flush between them), so each
    /// refusal shows exactly once.
    pub fn page(
        &self,
        store: &Store,
        f: &Filter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Event>, bool)> {
        let (since, until) = f.parsed()?;
        let (r, mut waiting) = {
            let _flushing = self.flushing.lock();
            let r = store.read()?;
            let waiting: Vec<(u64, Event)> = match self.inner.lock() {
                Ok(g) => g
                    .pending
                    .values()
                    .map(|p| (p.seq, p.as_event()))
                    .filter(|(_, e)| f.matches(e, since, until))
                    .collect(),
                Err(_) => Vec::new(),
            };
            (r, waiting)
        };
        // Committed in the order first seen, after everything committed.
        waiting.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        let n = waiting.len();
        let mut out: Vec<Event> = waiting
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, e)| e)
            .collect();
        if out.len() == limit && offset + limit < n {
            return Ok((out, true));
        }
        let (committed, more) = query(&r, f, offset.saturating_sub(n), limit - out.len())?;
        out.extend(committed);
        Ok((out, more))
    }

    fn flush_held_until(&self, store: &Store, now: Option<Timestamp>) -> Result<usize> {
        let _flushing = self.flushing.lock();
        // What is left held, to save when it changed (at most once per
        // interval, but always when the held events are all committed).
        let mut held: Option<Vec<Held>> = None;
        let taken: Vec<(DenialKey, Pending, serde_json::Value)> = match self.inner.lock() {
            Ok(mut g) => {
                let b = &mut *g;
                let due: Vec<DenialKey> = b
                    .pending
                    .iter()
                    .filter(|(_, p)| match (now, p.hold_until) {
                        (Some(n), Some(h)) => h <= n,
                        _ => true,
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                if let Some(n) = now {
                    b.budgets
                        .retain(|_, v| n - v.window_start < DENIAL_BUDGET_WINDOW_SECS);
                }
                let taken: Vec<_> = due
                    .into_iter()
                    .filter_map(|k| {
                        let p = b.pending.remove(&k)?;
                        let f = b.first_varied.remove(&k).unwrap_or_default();
                        Some((k, p, f))
                    })
                    .collect();
                b.held_dirty |= taken.iter().any(|(_, p, _)| p.hold_until.is_some());
                let interval_passed = match (now, b.held_saved_at) {
                    (Some(n), Some(at)) => n >= at.saturating_add(DENIAL_FLUSH_SECS as i64),
                    _ => true,
                };
                let still: Vec<Held> = if b.held_dirty {
                    b.pending
                        .values()
                        .filter(|p| p.hold_until.is_some())
                        .map(Pending::held)
                        .collect()
                } else {
                    Vec::new()
                };
                if b.held_dirty && (interval_passed || still.is_empty()) {
                    b.held_dirty = false;
                    b.held_saved_at = now;
                    held = Some(still);
                }
                taken
            }
            Err(_) => return Ok(0),
        };
        if taken.is_empty() && held.is_none() {
            return Ok(0);
        }
        let mut list = taken;
        list.sort_by_key(|(_, p, _)| p.seq);
        let written = (|| -> Result<usize> {
            let mut tx = store.write()?;
            for (_, p, _) in &list {
                record(&mut tx, p.first, &p.src, p.finished())?;
            }
            match &held {
                Some(h) if h.is_empty() => {
                    tx.delete(Table::Secrets, HELD_KEY)?;
                }
                Some(h) => tx.put(Table::Secrets, HELD_KEY, h)?,
                None => {}
            }
            tx.commit()?;
            Ok(list.len())
        })();
        if written.is_err()
            && let Ok(mut g) = self.inner.lock()
        {
            let b = &mut *g;
            b.held_dirty |= held.is_some();
            for (k, p, f) in list {
                match b.pending.get_mut(&k) {
                    Some(q) => {
                        q.count += p.count;
                        q.workspaces += p.workspaces;
                        q.first = q.first.min(p.first);
                        q.seq = q.seq.min(p.seq);
                        q.also_unlisted += p.also_unlisted + p.also.len() as u64;
                        q.addresses_unlisted += p.addresses_unlisted
                            + p.addresses
                                .iter()
                                .chain(&p.recent_addresses)
                                .map(|(_, n)| n)
                                .sum::<u64>();
                    }
                    None => {
                        b.first_varied.insert(k.clone(), f);
                        b.pending.insert(k, p);
                    }
                }
            }
        }
        written
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct Filter {
    /// Substring of the actor's e-mail or id.
    pub actor: Option<String>,
    /// Exact action name, or a prefix ending in `.` (e.g. `user.`).
    pub action: Option<String>,
    /// success, failure or denied.
    pub outcome: Option<String>,
    /// authentication, authorization, data_access, configuration or security.
    pub category: Option<String>,
    /// Earliest time (RFC 3339, e.g. 2026-01-31T12:00:00Z).
    pub since: Option<String>,
    /// Latest time (RFC 3339).
    pub until: Option<String>,
    /// Only events of this workspace (required for workspace admins).
    pub workspace: Option<String>,
}

impl Filter {
    /// `since` and `until` as times; checks `outcome` too.
    fn parsed(&self) -> Result<(Option<Timestamp>, Option<Timestamp>)> {
        let parse = |s: &Option<String>, field: &'static str| -> Result<Option<Timestamp>> {
            match s.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(v) => crate::clock::parse_time(v).map(Some).ok_or_else(|| {
                    Error::invalid(
                        field,
                        "use an RFC 3339 date and time such as 2026-01-31T12:00:00Z",
                    )
                }),
            }
        };
        let (since, until) = (parse(&self.since, "since")?, parse(&self.until, "until")?);
        if let Some(o) = self.outcome.as_deref().filter(|s| !s.is_empty())
            && !matches!(o, "success" | "failure" | "denied")
        {
            return Err(Error::invalid(
                "outcome",
                "must be success, failure or denied",
            ));
        }
        if let Some(c) = self.category.as_deref().filter(|s| !s.is_empty())
            && Category::parse(c).is_none()
        {
            return Err(Error::invalid(
                "category",
                "must be authentication, authorization, data_access, configuration or security",
            ));
        }
        Ok((since, until))
    }

    fn matches(&self, e: &Event, since: Option<Timestamp>, until: Option<Timestamp>) -> bool {
        if let Some(a) = self.actor.as_deref().filter(|s| !s.is_empty()) {
            let a = a.to_lowercase();
            let hit = e.actor.to_lowercase().contains(&a)
                || e.actor_id.as_deref().is_some_and(|id| id.contains(&a));
            if !hit {
                return false;
            }
        }
        if let Some(act) = self.action.as_deref().filter(|s| !s.is_empty()) {
            let hit = if act.ends_with('.') {
                e.action.starts_with(act)
            } else {
                e.action == act
            };
            if !hit {
                return false;
            }
        }
        if let Some(o) = self.outcome.as_deref().filter(|s| !s.is_empty())
            && e.outcome.as_str() != o
        {
            return false;
        }
        if let Some(w) = self.workspace.as_deref().filter(|s| !s.is_empty())
            && e.workspace.as_ref().map(WorkspaceId::as_str) != Some(w)
        {
            return false;
        }
        if let Some(c) = self.category.as_deref().filter(|s| !s.is_empty())
            && category_of(&e.action).as_str() != c
        {
            return false;
        }
        since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time <= u)
    }
}

/// Newest first; `offset`/`limit` page through the matches. Returns the page and
/// whether more matches follow.
pub fn query(
    r: &impl Reader,
    f: &Filter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Event>, bool)> {
    let (since, until) = f.parsed()?;
    let mut out = Vec::new();
    let mut skipped = 0;
    let mut more = false;
    r.scan_rev(Table::Audit, &mut |_, e: Event| {
        if !f.matches(&e, since, until) {
            return ControlFlow::Continue(());
        }
        if skipped < offset {
            skipped += 1;
            return ControlFlow::Continue(());
        }
        if out.len() == limit {
            more = true;
            return ControlFlow::Break(());
        }
        out.push(shown(e));
        ControlFlow::Continue(())
    })?;
    Ok((out, more))
}

/// A stored event as readers see it: with its category.
fn shown(mut e: Event) -> Event {
    e.category = Some(category_of(&e.action));
    e
}

/// The id of the newest committed event (0 for an empty log).
pub fn last_id(r: &impl Reader) -> Result<u64> {
    let head: Head = r.get(Table::Meta, HEAD_KEY)?.unwrap_or_default();
    Ok(head.seq)
}

/// Up to `limit` committed events after `after`, oldest first, with their
/// categories: what a sink delivers next from its cursor. Ids are dense, so
/// this reads exactly the events asked for, however long the log.
pub fn events_after(r: &impl Reader, after: u64, limit: usize) -> Result<Vec<Event>> {
    let last = last_id(r)?;
    let mut out = Vec::new();
    let mut id = after;
    while out.len() < limit && id < last {
        id += 1;
        if let Some(e) = r.get::<Event>(Table::Audit, &id.to_be_bytes())? {
            out.push(shown(e));
        }
    }
    Ok(out)
}

/// How far back past `since` a count keeps reading: events are appended in
/// time order except for requests that took their time before they committed.
const COUNT_SKEW_SECS: i64 = 300;

/// How many events match `f` at or after `since` (at most `cap`), reading
/// newest first and stopping once events are older than `since` by more than
/// `COUNT_SKEW_SECS`, so the cost follows the recent events, not the whole log.
/// `f.since` and `f.until` are ignored.
pub fn count_since(r: &impl Reader, f: &Filter, since: Timestamp, cap: usize) -> Result<usize> {
    let mut n = 0;
    r.scan_rev(Table::Audit, &mut |_, e: Event| {
        if e.time < since - COUNT_SKEW_SECS {
            return ControlFlow::Break(());
        }
        if f.matches(&e, Some(since), None) {
            n += 1;
            if n == cap {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(n)
}

/// Walks the whole chain. `Ok(n)` when every link holds and the log ends
/// where its sealed head says; otherwise the first broken link, in words.
pub fn verify(r: &impl Reader) -> Result<Result<u64, String>> {
    let head: Head = r.get(Table::Meta, HEAD_KEY)?.unwrap_or_default();
    let sealed: Option<Head> = match r.get(Table::Secrets, SEALED_HEAD_KEY) {
        Ok(h) => h,
        Err(Error::Integrity(m)) => {
            return Ok(Err(format!("the sealed chain head failed to open: {m}")));
        }
        Err(e) => return Err(e),
    };
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    let mut any_sealed = false;
    let events = match r.scan::<Event>(Table::Audit, b"") {
        Ok(ev) => ev,
        Err(Error::Integrity(m)) => return Ok(Err(format!("an event failed to open: {m}"))),
        Err(e) => return Err(e),
    };
    for (expected_id, (key, e)) in (1u64..).zip(events) {
        if key != e.id.to_be_bytes() || e.id != expected_id {
            return Ok(Err(if e.id > expected_id + 1 {
                format!(
                    "event {expected_id} is missing (found {} next): events {expected_id} to {} \
                     were cut out or the log was truncated before later writes",
                    e.id,
                    e.id - 1
                )
            } else {
                format!("event {expected_id} is missing (found {} next)", e.id)
            }));
        }
        if e.prev_hash != prev {
            return Ok(Err(format!(
                "event {} does not link to event {}",
                e.id,
                e.id - 1
            )));
        }
        if chain_hash(&e)? != e.hash {
            return Ok(Err(format!("event {} was altered (hash mismatch)", e.id)));
        }
        prev = e.hash.clone();
        any_sealed |= e.head_sealed;
        n += 1;
    }
    match &sealed {
        Some(s) if s.seq > n => {
            return Ok(Err(format!(
                "the log was truncated: it ends at event {n} but its sealed head says event {}",
                s.seq
            )));
        }
        Some(s) if s.seq != n || s.hash != prev => {
            return Ok(Err(format!(
                "the log ends at event {n} but its sealed head says event {} (the log was \
                 truncated and rewritten, or the head was replaced)",
                s.seq
            )));
        }
        None if any_sealed => {
            return Ok(Err(format!(
                "the sealed chain head is missing although the events say one was kept: \
                 the log was probably truncated (it now ends at event {n})"
            )));
        }
        _ => {}
    }
    if head.seq != n || (n > 0 && head.hash != prev) {
        return Ok(Err(format!(
            "the log ends at event {n} but its head says {}",
            head.seq
        )));
    }
    Ok(Ok(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(actor: &str, reason: &str) -> NewEvent {
        NewEvent::new("access.denied", Outcome::Denied)
            .actor(actor, Some(actor.into()))
            .details(serde_json::json!({"permission": "read:agents", "reason": reason}))
    }

    /// A store holding `n` events appended one transaction each.
    fn log_of(n: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 0).unwrap();
        for i in 0..n {
            let mut tx = store.write().unwrap();
            let ev = NewEvent::new("user.create", Outcome::Success)
                .actor("admin@example.com", Some("usr_admin".into()))
                .target(format!("usr_{i}"));
            assert_eq!(
                record(&mut tx, 100 + i as i64, &Source::default(), ev).unwrap(),
                i + 1
            );
            tx.commit().unwrap();
        }
        (dir, store)
    }

    fn event(store: &Store, id: u64) -> Event {
        store
            .read()
            .unwrap()
            .get(Table::Audit, &id.to_be_bytes())
            .unwrap()
            .unwrap()
    }

    fn verdict(store: &Store) -> Result<u64, String> {
        verify(&store.read().unwrap()).unwrap()
    }

    #[test]
    fn actions_have_their_category_and_the_readme_lists_the_same_table() {
        assert_eq!(category_of("auth.login"), Category::Authentication);
        assert_eq!(category_of("auth.refresh_reuse"), Category::Security);
        assert_eq!(category_of("mfa.totp_enrolled"), Category::Security);
        assert_eq!(category_of("mfa.code_sent"), Category::Authentication);
        assert_eq!(category_of("role.update"), Category::Authorization);
        assert_eq!(category_of("backup.create"), Category::DataAccess);
        assert_eq!(category_of("no.such_action"), Category::Security);
        let readme = include_str!("../README.md");
        let table = readme
            .split("<!-- categories:begin -->")
            .nth(1)
            .and_then(|t| t.split("<!-- categories:end -->").next())
            .unwrap();
        let mut listed = std::collections::BTreeSet::new();
        for line in table.lines().filter(|l| l.starts_with('|')).skip(2) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let cat = Category::parse(cells[1].trim_matches('`')).unwrap();
            for a in cells[2].split('`').skip(1).step_by(2) {
                listed.insert((a.replace(".*", "."), cat.as_str()));
            }
        }
        let table: std::collections::BTreeSet<(String, &str)> = CATEGORIES
            .iter()
            .map(|(a, c)| (a.to_string(), c.as_str()))
            .collect();
        assert_eq!(listed, table);
    }

    #[test]
    fn appended_events_link_into_one_chain() {
        let (_dir, store) = log_of(3);
        assert_eq!(verdict(&store), Ok(3));
        let (first, second, third) = (event(&store, 1), event(&store, 2), event(&store, 3));
        assert_eq!(first.prev_hash, GENESIS);
        assert_eq!(second.prev_hash, first.hash);
        assert_eq!(third.prev_hash, second.hash);
        assert!(third.head_sealed);
        assert_eq!(chain_hash(&third).unwrap(), third.hash);
        assert_eq!((third.time, third.target.as_deref()), (102, Some("usr_2")));
        // An empty log verifies too.
        assert_eq!(verdict(&log_of(0).1), Ok(0));
    }

    #[test]
    fn an_altered_event_is_found() {
        let (_dir, store) = log_of(3);
        let mut e = event(&store, 2);
        e.actor = "someone-else@example.com".into();
        let mut tx = store.write().unwrap();
        tx.put(Table::Audit, &2u64.to_be_bytes(), &e).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            verdict(&store),
            Err("event 2 was altered (hash mismatch)".into())
        );
    }

    #[test]
    fn a_broken_link_is_found() {
        let (_dir, store) = log_of(3);
        // Rewritten consistently in itself, but no longer after event 1.
        let mut e = event(&store, 2);
        e.prev_hash = GENESIS.into();
        e.hash = chain_hash(&e).unwrap();
        let mut tx = store.write().unwrap();
        tx.put(Table::Audit, &2u64.to_be_bytes(), &e).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            verdict(&store),
            Err("event 2 does not link to event 1".into())
        );
    }

    #[test]
    fn a_missing_event_is_found() {
        let (_dir, store) = log_of(4);
        let mut tx = store.write().unwrap();
        tx.delete(Table::Audit, &2u64.to_be_bytes()).unwrap();
        tx.commit().unwrap();
        assert!(
            verdict(&store)
                .unwrap_err()
                .starts_with("event 2 is missing (found 3 next)")
        );
    }

    #[test]
    fn the_sealed_head_shows_a_cut_of_the_newest_events() {
        let (_dir, store) = log_of(4);
        // Cut events 3 and 4 and rewind the plain head to event 2: the chain
        // itself still holds, the sealed head does not agree.
        let second = event(&store, 2);
        let mut tx = store.write().unwrap();
        tx.delete(Table::Audit, &3u64.to_be_bytes()).unwrap();
        tx.delete(Table::Audit, &4u64.to_be_bytes()).unwrap();
        let rewound = Head {
            seq: 2,
            hash: second.hash.clone(),
        };
        tx.put(Table::Meta, HEAD_KEY, &rewound).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            verdict(&store),
            Err(
                "the log was truncated: it ends at event 2 but its sealed head says event 4".into()
            )
        );
        // New events continue after the sealed head, so the gap stays visible.
        let mut tx = store.write().unwrap();
        let next = NewEvent::new("user.delete", Outcome::Success);
        assert_eq!(record(&mut tx, 200, &Source::default(), next).unwrap(), 5);
        tx.commit().unwrap();
        assert!(
            verdict(&store)
                .unwrap_err()
                .starts_with("event 3 is missing (found 5 next)")
        );
    }

    #[test]
    fn a_deleted_sealed_head_is_found() {
        let (_dir, store) = log_of(2);
        let mut tx = store.write().unwrap();
        tx.delete(Table::Secrets, SEALED_HEAD_KEY).unwrap();
        tx.commit().unwrap();
        assert!(
            verdict(&store).unwrap_err().starts_with(
                "the sealed chain head is missing although the events say one was kept"
            )
        );
    }

    #[test]
    fn identical_denials_coalesce_and_others_keep_their_own_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 0).unwrap();
        let buf = DenialBuffer::default();
        let here = Source {
            ip: Some("192.0.2.1".into()),
            user_agent: None,
        };
        let there = Source {
            ip: Some("192.0.2.2".into()),
            user_agent: None,
        };
        for t in 0..500 {
            buf.add(10 + t, &here, denial("a", "scope_missing"), 64);
        }
        buf.add(20, &there, denial("a", "scope_missing"), 64);
        buf.add(30, &here, denial("b", "scope_missing"), 64);
        buf.add(40, &here, denial("a", "wrong_workspace"), 64);
        let mut other = denial("a", "scope_missing");
        other.outcome = Outcome::Failure;
        assert_eq!(buf.add(50, &here, other, 64), 5);
        assert_eq!(buf.flush(&store).unwrap(), 5);
        assert!(buf.is_empty());
        assert_eq!(buf.flush(&store).unwrap(), 0);
        let r = store.read().unwrap();
        let (events, _) = query(&r, &Filter::default(), 0, 100).unwrap();
        assert_eq!(events.len(), 5);
        // Oldest first in the chain, in the order each was first seen.
        let first = &events[4];
        assert_eq!(
            (
                first.time,
                &first.details["count"],
                &first.details["last_at"]
            ),
            (10, &serde_json::json!(500), &serde_json::json!(509))
        );
        let counts: u64 = events
            .iter()
            .map(|e| e.details["count"].as_u64().unwrap())
            .sum();
        assert_eq!(counts, 504);
        assert_eq!(verify(&r).unwrap(), Ok(5));
    }

    #[test]
    fn denials_varying_what_the_caller_chooses_coalesce_within_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 0).unwrap();
        let buf = DenialBuffer::default();
        let here = Source {
            ip: Some("192.0.2.1".into()),
            user_agent: None,
        };
        // 500 made-up resources: one event, a capped sample and a count.
        for t in 0..500 {
            let mut ev = denial("a", "not_a_member");
            ev.details["resource"] = format!("ws_{t}").into();
            buf.add(10, &here, ev, 64);
        }
        assert_eq!(buf.flush(&store).unwrap(), 1);
        let r = store.read().unwrap();
        let (events, _) = query(&r, &Filter::default(), 0, 100).unwrap();
        let d = &events[0].details;
        assert_eq!((&d["count"], &d["resource"]), (&500.into(), &"ws_0".into()));
        assert_eq!(d["also"].as_array().unwrap().len(), DENIAL_SAMPLE_MAX);
        assert_eq!(d["also_unlisted"], 500 - 1 - DENIAL_SAMPLE_MAX as u64);
        drop(r);
        // 200 source addresses (an IPv6 /64, say): the principal's budget,
        // then one over-budget event held until its window ends.
        for n in 0..200 {
            let src = Source {
                ip: Some(format!("2001:db8::{n:x}")),
                user_agent: None,
            };
            buf.add(100, &src, denial("b", "scope_missing"), 64);
        }
        buf.add(100, &here, denial("c", "scope_missing"), 64);
        assert_eq!(
            buf.flush_due(&store, 101).unwrap(),
            DENIAL_BUDGET as usize + 1
        );
        assert!(!buf.is_empty(), "the over-budget event waits");
        assert_eq!(buf.flush_due(&store, 159).unwrap(), 0);
        assert_eq!(buf.flush_due(&store, 160).unwrap(), 1);
        let r = store.read().unwrap();
        let (events, _) = query(&r, &Filter::default(), 0, 1).unwrap();
        let d = &events[0].details;
        assert_eq!(d["over_budget"], true, "{d}");
        assert_eq!(d["count"], 200 - DENIAL_BUDGET as u64, "{d}");
        assert_eq!(d["first"]["reason"], "scope_missing", "{d}");
        assert_eq!(d["first"]["address"], "2001:db8::14", "{d}");
        assert_eq!(d["also"].as_array().unwrap().len(), DENIAL_SAMPLE_MAX);
        assert_eq!(verify(&r).unwrap(), Ok(1 + DENIAL_BUDGET as u64 + 2));
        // A new window: the budget is back.
        drop(r);
        buf.add(200, &here, denial("b", "scope_missing"), 64);
        assert_eq!(buf.flush_due(&store, 201).unwrap(), 1);
    }

    /// Past its budget, a principal's refusals keep one event per workspace
    /// up to `DENIAL_WORKSPACES_MAX` a window, whichever came first, then
    /// one event naming none that counts the workspaces it covers; a caller
    /// nobody authenticated gets `DENIAL_SAMPLE_MAX` workspaces per address.
    #[test]
    fn over_budget_events_name_each_workspace_up_to_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 0).unwrap();
        let buf = DenialBuffer::default();
        let here = Source {
            ip: Some("192.0.2.1".into()),
            user_agent: None,
        };
        let ws = |n: usize| WorkspaceId::parse(&format!("ws_{n:020x}")).unwrap();
        let n = DENIAL_BUDGET as usize + DENIAL_WORKSPACES_MAX + 7;
        for round in 0..2 {
            for i in 0..n {
                buf.add(
                    10,
                    &here,
                    denial("a", "not_a_member").workspace(Some(&ws(i))),
                    64,
                );
                let mut anon = NewEvent::new("access.denied", Outcome::Denied)
                    .actor("anonymous", None)
                    .workspace(Some(&ws(i)));
                anon.details = serde_json::json!({"reason": format!("r{round}{i}")});
                buf.add(10, &here, anon, 64);
            }
        }
        buf.flush(&store).unwrap();
        let r = store.read().unwrap();
        let mut events = Vec::new();
        loop {
            let (page, _) = query(&r, &Filter::default(), events.len(), 1000).unwrap();
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        let over = |actor: &str| -> Vec<&Event> {
            events
                .iter()
                .filter(|e| e.actor == actor && e.details["over_budget"] == true)
                .collect()
        };
        let mine = over("a");
        let named = mine.iter().filter(|e| e.workspace.is_some()).count();
        assert_eq!(named, DENIAL_WORKSPACES_MAX);
        let wide: Vec<_> = mine.iter().filter(|e| e.workspace.is_none()).collect();
        assert_eq!(wide.len(), 1);
        assert_eq!(wide[0].details["workspaces"], 7, "{}", wide[0].details);
        assert_eq!(wide[0].details["count"], 14, "{}", wide[0].details);
        let anon = over("anonymous");
        let named = anon.iter().filter(|e| e.workspace.is_some()).count();
        assert_eq!(named, DENIAL_SAMPLE_MAX);
        assert_eq!(anon.len(), DENIAL_SAMPLE_MAX + 1);
        let total: u64 = events
            .iter()
            .filter(|e| e.actor == "anonymous")
            .map(|e| e.details["count"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 2 * n as u64, "every refusal counted");
    }
}
