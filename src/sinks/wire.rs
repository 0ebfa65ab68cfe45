//! The sinks' wire formats, as their standards and vendors document them:
//! syslog RFC 5424 messages (structured data carrying the event fields) with
//! RFC 6587 octet counting, Splunk HEC event envelopes, Datadog logs intake
//! v2 arrays within its limits, and the webhook's JSON batch with its
//! Stripe-style signature. Pure functions: no I/O (that is `deliver`).

use crate::audit::{Category, Event, Outcome, category_of};
use crate::clock::rfc3339;

use super::Sink;

/// The event as every sink delivers it: its id (for de-duplication) and
/// chain hash included.
pub fn event_json(e: &Event) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "time": rfc3339(e.time),
        "category": e.category.unwrap_or_else(|| category_of(&e.action)),
        "action": e.action,
        "outcome": e.outcome,
        "actor": e.actor,
        "actor_id": e.actor_id,
        "target": e.target,
        "workspace": e.workspace,
        "source_ip": e.source_ip,
        "user_agent": e.user_agent,
        "details": e.details,
        "hash": e.hash,
        "prev_hash": e.prev_hash,
    })
}

/// The host name the events are from (`/proc/sys/kernel/hostname`), or `-`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| (33..=126).contains(&b)))
        .unwrap_or_else(|| "-".into())
}

/// 16 random bytes as a version-4 GUID (Splunk's request channel).
pub fn guid(b: &[u8; 16]) -> String {
    let mut b = *b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The certificates of a PEM file.
pub fn pem_certificates(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

// ---- syslog (RFC 5424, RFC 6587, RFC 5425) ----

/// The SD-ID of the event's structured data. 32473 is the private
/// enterprise number RFC 5612 reserves for documentation and examples.
pub const SD_ID: &str = "gatehouse@32473";
/// Facility 13, "log audit" (RFC 5424 table 1).
const FACILITY: u8 = 13;

/// An SD-PARAM value with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
pub fn sd_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn severity(e: &Event) -> u8 {
    match (e.outcome, category_of(&e.action)) {
        (Outcome::Success, Category::Security) => 5,
        (Outcome::Success, _) => 6,
        _ => 4,
    }
}

/// A printable-ASCII header field of at most `max` characters, `-` if empty.
fn header_field(v: &str, max: usize) -> String {
    let s: String = v
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if s.is_empty() { "-".into() } else { s }
}

/// One RFC 5424 message: `<PRI>1 TIME HOST APP PROCID MSGID [SD] BOM MSG`.
/// MSGID is the action; the structured data carries the event's fields
/// (`details` as compact JSON); MSG is a line in words.
pub fn syslog_message(e: &Event, app: &str, host: &str, pid: u32) -> String {
    let pri = u16::from(FACILITY) * 8 + u16::from(severity(e));
    let mut sd = format!("[{SD_ID}");
    let mut param = |k: &str, v: &str| {
        sd.push_str(&format!(" {k}=\"{}\"", sd_escape(v)));
    };
    param("id", &e.id.to_string());
    param(
        "category",
        e.category
            .unwrap_or_else(|| category_of(&e.action))
            .as_str(),
    );
    param("action", &e.action);
    param("outcome", e.outcome.as_str());
    param("actor", &e.actor);
    if let Some(v) = &e.actor_id {
        param("actor_id", v);
    }
    if let Some(v) = &e.target {
        param("target", v);
    }
    if let Some(v) = &e.workspace {
        param("workspace", v.as_str());
    }
    if let Some(v) = &e.source_ip {
        param("source_ip", v);
    }
    if let Some(v) = &e.user_agent {
        param("user_agent", v);
    }
    if !e.details.is_null() {
        param("details", &e.details.to_string());
    }
    param("hash", &e.hash);
    sd.push(']');
    let mut msg = format!("{} {} by {}", e.action, e.outcome.as_str(), e.actor);
    if let Some(t) = &e.target {
        msg.push_str(&format!(" on {t}"));
    }
    // RFC 5424: MSG is UTF-8 when it starts with the BOM; a newline inside
    // would end the message for a receiver that frames by lines.
    let msg = msg.replace(['\n', '\r'], " ");
    format!(
        "<{pri}>1 {} {} {} {pid} {} {sd} \u{feff}{msg}",
        rfc3339(e.time),
        header_field(host, 255),
        header_field(app, 48),
        header_field(&e.action, 32),
    )
}

/// RFC 6587 §3.4.1 octet counting (also RFC 5425's framing): `LEN SP MSG`.
pub fn octet_frame(msg: &str) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

// ---- Splunk HTTP Event Collector ----

/// The batch body: the events' envelopes concatenated, as HEC takes them.
pub fn hec_body(sink: &Sink, host: &str, events: &[Event]) -> String {
    let cfg = sink.splunk_hec.as_ref();
    let mut body = String::new();
    for e in events {
        let mut env = serde_json::json!({
            "time": e.time,
            "host": host,
            "source": cfg.and_then(|c| c.source.clone()).unwrap_or_else(|| "gatehouse".into()),
            "sourcetype": cfg
                .and_then(|c| c.sourcetype.clone())
                .unwrap_or_else(|| "gatehouse:audit".into()),
            "event": event_json(e),
        });
        if let Some(i) = cfg.and_then(|c| c.index.clone()) {
            env["index"] = i.into();
        }
        body.push_str(&env.to_string());
    }
    body
}

// ---- Datadog logs intake v2 ----

/// Datadog's documented limits per request.
pub const DD_MAX_ENTRIES: usize = 1000;
pub const DD_MAX_PAYLOAD: usize = 5 * 1024 * 1024;
pub const DD_MAX_LOG: usize = 1024 * 1024;

pub fn datadog_url(sink: &Sink) -> String {
    let c = sink.datadog.as_ref();
    if let Some(u) = c.and_then(|c| c.url.clone()) {
        return u;
    }
    let site = c
        .and_then(|c| c.site.clone())
        .unwrap_or_else(|| "datadoghq.com".into());
    format!("https://http-intake.logs.{site}/api/v2/logs")
}

/// One log entry: the event as the message, tags for the facets.
fn dd_entry(e: &Event, host: &str) -> serde_json::Value {
    let category = e.category.unwrap_or_else(|| category_of(&e.action));
    let mut ev = event_json(e);
    let mut message = ev.to_string();
    // Datadog truncates a log over 1 MB; the details go first, so the
    // event's id and fields still arrive whole.
    if message.len() > DD_MAX_LOG - 4096 {
        ev["details"] = serde_json::json!({"truncated": true, "size": message.len()});
        message = ev.to_string();
    }
    serde_json::json!({
        "ddsource": "gatehouse",
        "service": "gatehouse",
        "hostname": host,
        "ddtags": format!(
            "category:{},action:{},outcome:{}",
            category.as_str(),
            e.action,
            e.outcome.as_str()
        ),
        "message": message,
    })
}

/// The JSON array for the first events that fit Datadog's limits (at most
/// `DD_MAX_ENTRIES`, at most `DD_MAX_PAYLOAD` uncompressed), and how many
/// events it holds (at least one).
pub fn datadog_body(host: &str, events: &[Event]) -> (Vec<u8>, usize) {
    let mut body = b"[".to_vec();
    let mut n = 0;
    for e in events.iter().take(DD_MAX_ENTRIES) {
        let entry = dd_entry(e, host).to_string();
        if n > 0 && body.len() + entry.len() + 2 > DD_MAX_PAYLOAD {
            break;
        }
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(entry.as_bytes());
        n += 1;
    }
    body.push(b']');
    (body, n)
}

// ---- webhook ----

/// The most events one webhook batch carries.
pub const WEBHOOK_MAX_EVENTS: usize = 500;

/// `{"events": [...]}`.
pub fn webhook_body(events: &[Event]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = events.iter().map(event_json).collect();
    serde_json::json!({ "events": list })
        .to_string()
        .into_bytes()
}

/// `X-Gatehouse-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
pub fn webhook_signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let mac = crate::crypto::hmac_sha256(secret.as_bytes(), &signed);
    format!("t={t},v1={}", hex::encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: u64, action: &str, target: &str) -> Event {
        Event {
            id,
            time: 1_790_000_000,
            actor: "alice@example.com".into(),
            actor_id: Some("usr_1".into()),
            action: action.into(),
            category: None,
            target: Some(target.into()),
            outcome: Outcome::Success,
            source_ip: Some("192.0.2.7".into()),
            user_agent: None,
            details: serde_json::json!({"name": "a\"b]c\\d"}),
            workspace: None,
            head_sealed: true,
            pending: false,
            prev_hash: "00".into(),
            hash: "ab".into(),
        }
    }

    #[test]
    fn syslog_messages_follow_rfc5424_and_escape_sd_values() {
        let m = syslog_message(&ev(7, "user.create", "usr_2"), "gatehouse", "box", 42);
        // facility 13 (log audit) * 8 + informational (6)
        assert!(
            m.starts_with("<110>1 2026-09-21T14:13:20Z box gatehouse 42 user.create [gatehouse@32473 id=\"7\" category=\"configuration\""),
            "{m}"
        );
        assert!(
            m.contains(r#"details="{\"name\":\"a\\\"b\]c\\\\d\"}""#),
            "{m}"
        );
        assert!(m.ends_with("] \u{feff}user.create success by alice@example.com on usr_2"));
        assert_eq!(sd_escape(r#"a"b]c\d"#), r#"a\"b\]c\\d"#);
        let f = octet_frame("héllo");
        assert_eq!(f, "6 héllo".as_bytes());
    }

    #[test]
    fn webhook_signatures_are_hmac_of_timestamp_dot_body() {
        // HMAC-SHA256("key", "1.{}") computed independently.
        let sig = webhook_signature("key", 1, b"{}");
        let mac = crate::crypto::hmac_sha256(b"key", b"1.{}");
        assert_eq!(sig, format!("t=1,v1={}", hex::encode(mac)));
    }

    #[test]
    fn datadog_batches_keep_within_the_entry_limit() {
        let events: Vec<Event> = (1..=1500).map(|i| ev(i, "auth.login", "x")).collect();
        let (body, n) = datadog_body("h", &events);
        assert_eq!(n, DD_MAX_ENTRIES);
        let v: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(v.len(), DD_MAX_ENTRIES);
        assert_eq!(
            v[0]["ddtags"],
            "category:authentication,action:auth.login,outcome:success"
        );
        let msg: serde_json::Value =
            serde_json::from_str(v[0]["message"].as_str().unwrap()).unwrap();
        assert_eq!(msg["id"], 1);
        // One huge event: its details are cut, not the event.
        let mut big = ev(1, "auth.login", "x");
        big.details = serde_json::json!({"blob": "x".repeat(2 * DD_MAX_LOG)});
        let (body, n) = datadog_body("h", &[big]);
        assert_eq!(n, 1);
        assert!(body.len() < DD_MAX_LOG);
    }

    #[test]
    fn guids_are_version_4() {
        let g = guid(&[0xff; 16]);
        assert_eq!(g, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }
}
