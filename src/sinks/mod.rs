//! Audit streaming sinks (SIEM): their stored configuration (credentials
//! sealed, never shown again), the operations that manage them, and each
//! sink's delivery state (durable cursor, counts, last error). The wire
//! formats are `wire`, the background delivery is `deliver`. It does not
//! write the audit log (that is `audit`); it only reads it after the fact, so
//! a sink that is slow, down or hanging never touches a request.

pub mod deliver;
pub mod wire;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::access::{Actor, Permission, Resource};
use crate::audit::{self, Category, Outcome};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::service::Service;
use crate::store::{Reader, Table};

/// A sink credential (HEC token, Datadog API key, webhook secret): stored
/// sealed with the record, accepted on create and update, never shown again.
#[derive(Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Credential(String);

impl Credential {
    /// The credential itself, for the request that carries it to its sink.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(***)")
    }
}

impl Drop for Credential {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Syslog,
    SplunkHec,
    Datadog,
    Webhook,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Syslog => "syslog",
            Kind::SplunkHec => "splunk_hec",
            Kind::Datadog => "datadog",
            Kind::Webhook => "webhook",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
    /// PEM file of the CA that signed the receiver's certificate (TLS);
    /// without it, the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// APP-NAME of each message (default `gatehouse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HecInput {
    /// The collector's base URL (`https://splunk.example:8088`).
    pub url: String,
    /// Write-only: required on create, kept when left out of an update.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub token: Option<Credential>,
    #[serde(default)]
    pub index: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub sourcetype: Option<String>,
    /// Wait for indexer acknowledgement before a batch counts as delivered.
    #[serde(default)]
    pub ack: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatadogInput {
    /// `datadoghq.com` (default), `datadoghq.eu`, `us3.datadoghq.com`, …
    #[serde(default)]
    pub site: Option<String>,
    /// The intake URL itself, instead of the site's.
    #[serde(default)]
    pub url: Option<String>,
    /// Write-only, as `splunk_hec.token`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<Credential>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: String,
    /// Write-only HMAC key of `X-Gatehouse-Signature`, as `splunk_hec.token`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Credential>,
}

/// What `POST` and `PUT /api/v1/audit/sinks` take.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkInput {
    pub name: String,
    pub kind: Kind,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only events of these categories (default: all).
    #[serde(default)]
    pub categories: Option<Vec<Category>>,
    #[serde(default)]
    pub syslog: Option<SyslogConfig>,
    #[serde(default)]
    pub splunk_hec: Option<HecInput>,
    #[serde(default)]
    pub datadog: Option<DatadogInput>,
    #[serde(default)]
    pub webhook: Option<WebhookInput>,
}

fn yes() -> bool {
    true
}

/// A stored sink. Its credentials are in the record, which the sealed
/// `audit_sinks` table seals as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sink {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub enabled: bool,
    pub categories: Vec<Category>,
    pub syslog: Option<SyslogConfig>,
    pub splunk_hec: Option<HecInput>,
    pub datadog: Option<DatadogInput>,
    pub webhook: Option<WebhookInput>,
    /// The HEC request channel (a GUID), fixed for the sink's life.
    pub channel: String,
    /// Bumped by every change, so the delivery restarts with the new settings.
    pub revision: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Sink {
    /// Whether the sink takes events of `c`.
    pub fn wants(&self, c: Category) -> bool {
        self.categories.is_empty() || self.categories.contains(&c)
    }
}

/// A sink's delivery state, kept apart from its settings (the delivery
/// writes it; edits do not touch it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Every event up to this id has been delivered (or is not for the sink).
    pub cursor: u64,
    pub delivered: u64,
    pub last_delivered_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// A sink with its status, as the API and the console show it.
#[derive(Debug, Clone)]
pub struct SinkStatus {
    pub sink: Sink,
    pub state: State,
    /// Events after the cursor not yet delivered (or passed over).
    pub backlog: u64,
}

/// Sinks one installation may have: each is a task and a connection.
pub const MAX_SINKS: usize = 20;

fn authorize(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    Ok(())
}

/// Whether `actor` may manage sinks (`manage:security` on the platform).
pub fn may_manage(svc: &Service, actor: &Actor) -> Result<()> {
    authorize(svc, actor)
}

fn parse_id(id: &str) -> Result<&str> {
    let ok =
        id.len() == 20 && id.starts_with("snk_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(id)
    } else {
        Err(Error::NotFound("sink"))
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> Error {
    Error::invalid(field, message)
}

/// A URL a sink may post to: http or https with a host.
fn check_url(field: &'static str, url: &str) -> Result<()> {
    let u = reqwest::Url::parse(url.trim())
        .map_err(|e| bad(field, format!("must be an http(s) URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad(field, "must be an http:// or https:// URL with a host"));
    }
    Ok(())
}

fn credential(
    field: &'static str,
    given: Option<Credential>,
    kept: Option<Credential>,
) -> Result<Credential> {
    match given.filter(|c| !c.0.trim().is_empty()).or(kept) {
        Some(c) if c.0.len() <= 4096 => Ok(c),
        Some(_) => Err(bad(field, "is longer than 4096 characters")),
        None => Err(bad(
            field,
            "is required (it is never shown again once saved)",
        )),
    }
}

/// Checks `input` and builds the record; `old` keeps what an update leaves out.
fn build(
    input: SinkInput,
    old: Option<&Sink>,
    id: String,
    channel: String,
    now: Timestamp,
) -> Result<Sink> {
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad("name", "must be 1–100 characters"));
    }
    let given = [
        (Kind::Syslog, input.syslog.is_some()),
        (Kind::SplunkHec, input.splunk_hec.is_some()),
        (Kind::Datadog, input.datadog.is_some()),
        (Kind::Webhook, input.webhook.is_some()),
    ];
    for (k, present) in given {
        if present && k != input.kind {
            return Err(bad(
                "kind",
                format!(
                    "is {} but the body has a \"{}\" object; send only the kind's own settings",
                    input.kind.as_str(),
                    k.as_str()
                ),
            ));
        }
    }
    let same_kind = old.filter(|o| o.kind == input.kind);
    let mut sink = Sink {
        id,
        name,
        kind: input.kind,
        enabled: input.enabled,
        categories: input.categories.unwrap_or_default(),
        syslog: None,
        splunk_hec: None,
        datadog: None,
        webhook: None,
        channel,
        revision: old.map_or(1, |o| o.revision + 1),
        created_at: old.map_or(now, |o| o.created_at),
        updated_at: now,
    };
    let missing = |k: Kind| {
        bad(
            "kind",
            format!("a {} sink needs its \"{}\" object", k.as_str(), k.as_str()),
        )
    };
    match input.kind {
        Kind::Syslog => {
            let c = input.syslog.ok_or_else(|| missing(Kind::Syslog))?;
            if c.host.trim().is_empty() || c.host.len() > 253 {
                return Err(bad("syslog.host", "must be a host name or an IP address"));
            }
            if c.port == 0 {
                return Err(bad("syslog.port", "must be 1–65535"));
            }
            if let Some(a) = &c.app_name
                && (a.is_empty() || a.len() > 48 || !a.bytes().all(|b| (33..=126).contains(&b)))
            {
                return Err(bad(
                    "syslog.app_name",
                    "must be 1–48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
                ));
            }
            if let Some(f) = &c.ca_file {
                if c.transport != Transport::Tls {
                    return Err(bad("syslog.ca_file", "is only used with transport \"tls\""));
                }
                let pem = std::fs::read(f)
                    .map_err(|e| bad("syslog.ca_file", format!("cannot read {f}: {e}")))?;
                if wire::pem_certificates(&pem).is_empty() {
                    return Err(bad(
                        "syslog.ca_file",
                        format!("{f} holds no PEM certificate"),
                    ));
                }
            }
            sink.syslog = Some(SyslogConfig {
                host: c.host.trim().to_string(),
                ..c
            });
        }
        Kind::SplunkHec => {
            let c = input.splunk_hec.ok_or_else(|| missing(Kind::SplunkHec))?;
            check_url("splunk_hec.url", &c.url)?;
            let kept = same_kind.and_then(|o| o.splunk_hec.as_ref()?.token.clone());
            let token = credential("splunk_hec.token", c.token.clone(), kept)?;
            sink.splunk_hec = Some(HecInput {
                url: c.url.trim().trim_end_matches('/').to_string(),
                token: Some(token),
                ..c
            });
        }
        Kind::Datadog => {
            let c = input.datadog.ok_or_else(|| missing(Kind::Datadog))?;
            if let Some(u) = &c.url {
                check_url("datadog.url", u)?;
            }
            if let Some(s) = &c.site
                && (s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
            {
                return Err(bad(
                    "datadog.site",
                    "must be a Datadog site such as datadoghq.com or datadoghq.eu",
                ));
            }
            let kept = same_kind.and_then(|o| o.datadog.as_ref()?.api_key.clone());
            let key = credential("datadog.api_key", c.api_key.clone(), kept)?;
            sink.datadog = Some(DatadogInput {
                api_key: Some(key),
                ..c
            });
        }
        Kind::Webhook => {
            let c = input.webhook.ok_or_else(|| missing(Kind::Webhook))?;
            check_url("webhook.url", &c.url)?;
            let kept = same_kind.and_then(|o| o.webhook.as_ref()?.secret.clone());
            let secret = credential("webhook.secret", c.secret.clone(), kept)?;
            if secret.0.len() < 16 {
                return Err(bad("webhook.secret", "must be at least 16 characters"));
            }
            sink.webhook = Some(WebhookInput {
                url: c.url.trim().to_string(),
                secret: Some(secret),
            });
        }
    }
    Ok(sink)
}

/// What the audit event of a change says: the settings, never a credential.
fn change_details(s: &Sink, credential_changed: bool) -> serde_json::Value {
    let target = match s.kind {
        Kind::Syslog => s.syslog.as_ref().map(|c| {
            let t = match c.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
                Transport::Tls => "tls",
            };
            format!("{t}://{}:{}", c.host, c.port)
        }),
        Kind::SplunkHec => s.splunk_hec.as_ref().map(|c| c.url.clone()),
        Kind::Datadog => Some(wire::datadog_url(s)),
        Kind::Webhook => s.webhook.as_ref().map(|c| c.url.clone()),
    };
    serde_json::json!({
        "name": s.name, "kind": s.kind.as_str(), "enabled": s.enabled,
        "categories": s.categories, "destination": target,
        "credential_changed": credential_changed,
    })
}

fn state_of(r: &impl Reader, id: &str) -> Result<State> {
    Ok(r.get(Table::AuditSinkState, id.as_bytes())?
        .unwrap_or_default())
}

fn status_in(r: &impl Reader, sink: Sink) -> Result<SinkStatus> {
    let state = state_of(r, &sink.id)?;
    let last = audit::last_id(r)?;
    Ok(SinkStatus {
        backlog: last.saturating_sub(state.cursor),
        sink,
        state,
    })
}

/// Every sink (oldest first), for the delivery.
pub fn all(r: &impl Reader) -> Result<Vec<Sink>> {
    let mut v: Vec<Sink> = r
        .scan::<Sink>(Table::AuditSinks, b"")?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(v)
}

/// Every sink with its status, for someone who may manage them.
pub fn list_for(svc: &Service, actor: &Actor) -> Result<Vec<SinkStatus>> {
    authorize(svc, actor)?;
    let r = svc.store.read()?;
    all(&r)?.into_iter().map(|s| status_in(&r, s)).collect()
}

/// One sink with its status, by its id from a URL path.
pub fn get_for(svc: &Service, actor: &Actor, id: &str) -> Result<SinkStatus> {
    authorize(svc, actor)?;
    let r = svc.store.read()?;
    let s = r
        .get::<Sink>(Table::AuditSinks, parse_id(id)?.as_bytes())?
        .ok_or(Error::NotFound("sink"))?;
    status_in(&r, s)
}

fn authorize_change(svc: &Service, actor: &Actor) -> Result<()> {
    authorize(svc, actor)?;
    actor.require_recent(svc)
}

/// Adds a sink. Its delivery starts with its own `audit_sink.create` event:
/// it streams what happens from now on, not the log's past.
pub fn create(svc: &Service, actor: &Actor, input: SinkInput) -> Result<SinkStatus> {
    authorize_change(svc, actor)?;
    let id = format!("snk_{}", hex::encode(crate::crypto::random_bytes::<8>()?));
    let channel = wire::guid(&crate::crypto::random_bytes::<16>()?);
    let now = svc.now();
    let sink = build(input, None, id, channel, now)?;
    let mut tx = svc.store.write()?;
    if all(&tx)?.len() >= MAX_SINKS {
        return Err(Error::Conflict(format!(
            "At most {MAX_SINKS} sinks; delete one first."
        )));
    }
    tx.put(Table::AuditSinks, sink.id.as_bytes(), &sink)?;
    let ev_id = audit::record(
        &mut tx,
        now,
        &actor.source,
        actor
            .principal
            .event("audit_sink.create", Outcome::Success)
            .target(sink.id.clone())
            .details(change_details(&sink, true)),
    )?;
    let state = State {
        cursor: ev_id - 1,
        ..State::default()
    };
    tx.put(Table::AuditSinkState, sink.id.as_bytes(), &state)?;
    let st = status_in(&tx, sink)?;
    tx.commit()?;
    Ok(st)
}

/// Replaces a sink's settings; credentials left out are kept. Its cursor
/// stays where it is.
pub fn update(svc: &Service, actor: &Actor, id: &str, input: SinkInput) -> Result<SinkStatus> {
    authorize_change(svc, actor)?;
    let id = parse_id(id)?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let old: Sink = tx
        .get(Table::AuditSinks, id.as_bytes())?
        .ok_or(Error::NotFound("sink"))?;
    let changed = [
        input.splunk_hec.as_ref().is_some_and(|c| c.token.is_some()),
        input.datadog.as_ref().is_some_and(|c| c.api_key.is_some()),
        input.webhook.as_ref().is_some_and(|c| c.secret.is_some()),
    ]
    .contains(&true);
    let sink = build(input, Some(&old), old.id.clone(), old.channel.clone(), now)?;
    tx.put(Table::AuditSinks, sink.id.as_bytes(), &sink)?;
    audit::record(
        &mut tx,
        now,
        &actor.source,
        actor
            .principal
            .event("audit_sink.update", Outcome::Success)
            .target(sink.id.clone())
            .details(change_details(&sink, changed || old.kind != sink.kind)),
    )?;
    let st = status_in(&tx, sink)?;
    tx.commit()?;
    Ok(st)
}

/// Deletes a sink and its delivery state.
pub fn delete(svc: &Service, actor: &Actor, id: &str) -> Result<()> {
    authorize_change(svc, actor)?;
    let id = parse_id(id)?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let old: Sink = tx
        .get(Table::AuditSinks, id.as_bytes())?
        .ok_or(Error::NotFound("sink"))?;
    tx.delete(Table::AuditSinks, id.as_bytes())?;
    tx.delete(Table::AuditSinkState, id.as_bytes())?;
    audit::record(
        &mut tx,
        now,
        &actor.source,
        actor
            .principal
            .event("audit_sink.delete", Outcome::Success)
            .target(old.id.clone())
            .details(serde_json::json!({"name": old.name, "kind": old.kind.as_str()})),
    )?;
    tx.commit()?;
    Ok(())
}

/// What a test delivery found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    pub delivered: bool,
    /// The id of the `audit_sink.test` event that was sent.
    pub event_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes an `audit_sink.test` event and sends that event to the sink at
/// once (bounded by the delivery's timeouts), saying whether it arrived. The
/// event is in the log, so the stream delivers it again in its turn: a
/// receiver de-duplicating by event id sees it once.
pub async fn send_test(svc: &Service, actor: &Actor, id: &str) -> Result<TestResult> {
    authorize_change(svc, actor)?;
    let id = parse_id(id)?;
    let now = svc.now();
    let (sink, event) = {
        let mut tx = svc.store.write()?;
        let sink: Sink = tx
            .get(Table::AuditSinks, id.as_bytes())?
            .ok_or(Error::NotFound("sink"))?;
        let ev_id = audit::record(
            &mut tx,
            now,
            &actor.source,
            actor
                .principal
                .event("audit_sink.test", Outcome::Success)
                .target(sink.id.clone())
                .details(serde_json::json!({"name": sink.name, "kind": sink.kind.as_str()})),
        )?;
        let ev = audit::events_after(&tx, ev_id - 1, 1)?;
        tx.commit()?;
        (sink, ev)
    };
    let res = deliver::send_batch(&sink, &wire::hostname(), now, &event).await;
    Ok(TestResult {
        delivered: res.is_ok(),
        event_id: event.first().map_or(0, |e| e.id),
        error: res.err(),
    })
}

/// Records the result of one delivery attempt (the delivery's only write).
pub(crate) fn save_state(svc: &Service, id: &str, f: impl FnOnce(&mut State)) -> Result<()> {
    let mut tx = svc.store.write()?;
    // A sink deleted meanwhile keeps no state.
    if tx.get::<Sink>(Table::AuditSinks, id.as_bytes())?.is_none() {
        return Ok(());
    }
    let mut st = state_of(&tx, id)?;
    f(&mut st);
    tx.put(Table::AuditSinkState, id.as_bytes(), &st)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: Kind) -> SinkInput {
        SinkInput {
            name: "siem".into(),
            kind,
            enabled: true,
            categories: None,
            syslog: None,
            splunk_hec: None,
            datadog: None,
            webhook: None,
        }
    }

    #[test]
    fn credentials_are_write_only_and_kept_on_update() {
        let mut i = input(Kind::Webhook);
        i.webhook = Some(WebhookInput {
            url: "https://siem.example/hook".into(),
            secret: Some(Credential("0123456789abcdef-secret".into())),
        });
        let s = build(i, None, "snk_0".into(), "c".into(), 1).unwrap();
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        let mut again = input(Kind::Webhook);
        again.webhook = Some(WebhookInput {
            url: "https://siem.example/other".into(),
            secret: None,
        });
        let t = build(again, Some(&s), s.id.clone(), "c".into(), 2).unwrap();
        let w = t.webhook.unwrap();
        assert_eq!(w.secret.unwrap().expose(), "0123456789abcdef-secret");
        assert_eq!(t.revision, 2);
        // A new sink without its credential is refused, naming the field.
        let mut none = input(Kind::SplunkHec);
        none.splunk_hec = Some(HecInput {
            url: "https://splunk.example:8088".into(),
            token: None,
            index: None,
            source: None,
            sourcetype: None,
            ack: false,
        });
        let e = build(none, None, "snk_1".into(), "c".into(), 1).unwrap_err();
        assert!(e.to_string().contains("splunk_hec.token"), "{e}");
    }

    #[test]
    fn a_kind_without_its_settings_or_with_anothers_is_refused() {
        let e = build(input(Kind::Syslog), None, "x".into(), "c".into(), 1).unwrap_err();
        assert!(e.to_string().contains("\"syslog\" object"), "{e}");
        let mut i = input(Kind::Datadog);
        i.webhook = Some(WebhookInput {
            url: "https://x.example".into(),
            secret: None,
        });
        let e = build(i, None, "x".into(), "c".into(), 1).unwrap_err();
        assert!(e.to_string().contains("webhook"), "{e}");
    }
}
