//! Delivery to the sinks, off the request path: one thread with its own
//! runtime runs a task per enabled sink. Each task reads the committed log
//! after its durable cursor, sends a batch (every connect, write and answer
//! bounded by a timeout), and moves the cursor only once the batch got there
//! (at least once: a crash between the two sends that batch again; the event
//! id is for de-duplication). Failures back off exponentially. Nothing here
//! is awaited by a request, and no lock a request takes is held while
//! waiting on a sink, so a sink that is slow, down or hangs costs requests
//! nothing (unlike an audit device that blocks every request, hashicorp/vault#5361).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire;
use super::{Kind, Sink, Transport};
use crate::audit::{self, Event};
use crate::service::Service;
use crate::store::Table;

/// Events one batch reads from the log.
pub const BATCH: usize = 500;
/// How often an idle sink looks for new events.
const POLL: Duration = Duration::from_millis(200);
/// Connecting to a sink (TCP, TLS handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Writing a batch, or waiting for an answer to it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole attempt, acknowledgement included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(45);
/// The longest pause between retries.
const MAX_BACKOFF_SECS: u64 = 30;
/// HEC's smallest default `max_content_length` is 1 MB: stay below it.
const HEC_MAX_BODY: usize = 800 * 1024;
/// Waiting for Splunk's indexer acknowledgement of one batch.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Starts the delivery thread. It ends when the service is dropped.
pub fn start(svc: &Arc<Service>) -> std::io::Result<()> {
    let weak = Arc::downgrade(svc);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("audit-sinks".into())
        .spawn(move || rt.block_on(supervise(weak)))?;
    Ok(())
}

/// Keeps one task per enabled sink, restarting it when its settings change.
async fn supervise(weak: Weak<Service>) {
    let mut tasks: HashMap<String, (u64, tokio::task::JoinHandle<()>)> = HashMap::new();
    let mut seen = u64::MAX;
    loop {
        let Some(svc) = weak.upgrade() else {
            for (_, (_, t)) in tasks.drain() {
                t.abort();
            }
            return;
        };
        let g = svc.store.generation(Table::AuditSinks);
        if g != seen {
            match svc.store.read().and_then(|r| super::all(&r)) {
                Ok(list) => {
                    seen = g;
                    let wanted: HashMap<String, Sink> = list
                        .into_iter()
                        .filter(|s| s.enabled)
                        .map(|s| (s.id.clone(), s))
                        .collect();
                    tasks.retain(|id, (rev, t)| {
                        let keep = wanted.get(id).is_some_and(|s| s.revision == *rev);
                        if !keep {
                            t.abort();
                        }
                        keep
                    });
                    for (id, s) in wanted {
                        if let std::collections::hash_map::Entry::Vacant(v) = tasks.entry(id) {
                            let rev = s.revision;
                            v.insert((rev, tokio::spawn(run_sink(weak.clone(), s))));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "audit sinks: cannot read the sinks"),
            }
        }
        drop(svc);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.saturating_sub(1).min(5)).min(MAX_BACKOFF_SECS))
}

/// One sink's loop: read after the cursor, send, move the cursor.
async fn run_sink(weak: Weak<Service>, sink: Sink) {
    let host = wire::hostname();
    let client = http_client();
    let mut failures = 0u32;
    let mut last_saved_error: Option<String> = None;
    loop {
        let Some(svc) = weak.upgrade() else { return };
        let read = svc.store.read().and_then(|r| {
            let st = super::state_of(&r, &sink.id)?;
            let events = audit::events_after(&r, st.cursor, BATCH)?;
            Ok((st, events))
        });
        let (_state, events) = match read {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(sink = %sink.id, error = %e, "audit sink: cannot read the log");
                drop(svc);
                tokio::time::sleep(backoff(3)).await;
                continue;
            }
        };
        let Some(last) = events.last().map(|e| e.id) else {
            drop(svc);
            tokio::time::sleep(POLL).await;
            continue;
        };
        let wanted: Vec<Event> = events
            .into_iter()
            .filter(|e| sink.wants(audit::category_of(&e.action)))
            .collect();
        if wanted.is_empty() {
            if let Err(e) = super::save_state(&svc, &sink.id, |s| s.cursor = s.cursor.max(last)) {
                tracing::warn!(sink = %sink.id, error = %e, "audit sink: cannot save its cursor");
            }
            continue;
        }
        let now = svc.now();
        let sent = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            send_prefix(&client, &sink, &host, now, &wanted),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        match sent {
            Ok(n) => {
                let upto = if n >= wanted.len() {
                    last
                } else {
                    wanted[n.max(1) - 1].id
                };
                failures = 0;
                last_saved_error = None;
                let r = super::save_state(&svc, &sink.id, |s| {
                    s.cursor = s.cursor.max(upto);
                    s.delivered += n as u64;
                    s.last_delivered_at = Some(now);
                    s.last_error = None;
                });
                if let Err(e) = r {
                    tracing::warn!(sink = %sink.id, error = %e, "audit sink: cannot save its cursor");
                }
            }
            Err(msg) => {
                failures = failures.saturating_add(1);
                // One write per distinct error (and every tenth retry), so a
                // sink that stays down does not cost a commit per attempt.
                if last_saved_error.as_deref() != Some(&msg) || failures.is_multiple_of(10) {
                    tracing::warn!(sink = %sink.id, error = %msg, "audit sink: delivery failed; retrying");
                    let m = msg.clone();
                    let r = super::save_state(&svc, &sink.id, |s| {
                        s.last_error = Some(m);
                        s.last_error_at = Some(now);
                    });
                    if r.is_ok() {
                        last_saved_error = Some(msg);
                    }
                }
                drop(svc);
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(IO_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Sends `events` now (the console's test button), all or nothing.
pub async fn send_batch(sink: &Sink, host: &str, now: i64, events: &[Event]) -> Result<(), String> {
    let client = http_client();
    let mut rest = events;
    while !rest.is_empty() {
        let n = tokio::time::timeout(ATTEMPT_TIMEOUT, send_prefix(&client, sink, host, now, rest))
            .await
            .unwrap_or_else(|_| Err("timed out".into()))?;
        rest = &rest[n.clamp(1, rest.len())..];
    }
    Ok(())
}

/// Sends the first events of `events` that fit one request of the sink's
/// kind; returns how many were delivered (at least one when `Ok`).
async fn send_prefix(
    client: &reqwest::Client,
    sink: &Sink,
    host: &str,
    now: i64,
    events: &[Event],
) -> Result<usize, String> {
    match sink.kind {
        Kind::Syslog => send_syslog(sink, host, events).await,
        Kind::SplunkHec => send_hec(client, sink, host, events).await,
        Kind::Datadog => send_datadog(client, sink, host, events).await,
        Kind::Webhook => send_webhook(client, sink, now, events).await,
    }
}

async fn timed<T>(
    what: &str,
    d: Duration,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(d, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out after {} s", d.as_secs())),
    }
}

async fn send_syslog(sink: &Sink, host: &str, events: &[Event]) -> Result<usize, String> {
    let Some(c) = &sink.syslog else {
        return Err("no syslog settings".into());
    };
    let app = c.app_name.as_deref().unwrap_or("gatehouse");
    let pid = std::process::id();
    let addr = timed(
        "resolving the host",
        CONNECT_TIMEOUT,
        tokio::net::lookup_host((c.host.as_str(), c.port)),
    )
    .await?
    .next()
    .ok_or_else(|| format!("{} does not resolve", c.host))?;
    match c.transport {
        Transport::Udp => {
            // RFC 5426: one message per datagram, nothing confirms it.
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = timed("udp", IO_TIMEOUT, tokio::net::UdpSocket::bind(bind)).await?;
            for e in events {
                let m = wire::syslog_message(e, app, host, pid);
                timed("sending", IO_TIMEOUT, sock.send_to(m.as_bytes(), addr)).await?;
            }
            Ok(events.len())
        }
        Transport::Tcp => {
            let mut s = timed(
                "connecting",
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect(addr),
            )
            .await?;
            write_and_confirm(&mut s, app, host, pid, events).await
        }
        Transport::Tls => {
            let config = tls_config(c.ca_file.as_deref())?;
            let name = rustls::pki_types::ServerName::try_from(c.host.clone())
                .map_err(|e| format!("{}: not a TLS server name ({e})", c.host))?;
            let tcp = timed(
                "connecting",
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect(addr),
            )
            .await?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let mut s = timed(
                "TLS handshake",
                CONNECT_TIMEOUT,
                connector.connect(name, tcp),
            )
            .await?;
            write_and_confirm(&mut s, app, host, pid, events).await
        }
    }
}

/// Writes the batch octet-counted, closes our side and waits for the
/// receiver to close its own: a receiver closes after reading everything
/// we sent, so only then does the batch count as delivered (syslog has no
/// acknowledgement). A reset, or a receiver that never reads, is a failure.
async fn write_and_confirm<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    app: &str,
    host: &str,
    pid: u32,
    events: &[Event],
) -> Result<usize, String> {
    let mut buf = Vec::new();
    for e in events {
        buf.extend_from_slice(&wire::octet_frame(&wire::syslog_message(e, app, host, pid)));
    }
    timed("writing", IO_TIMEOUT, s.write_all(&buf)).await?;
    timed("closing", IO_TIMEOUT, s.shutdown()).await?;
    let mut sink = [0u8; 512];
    loop {
        match tokio::time::timeout(IO_TIMEOUT, s.read(&mut sink)).await {
            Ok(Ok(0)) => return Ok(events.len()),
            Ok(Ok(_)) => continue,
            // The peer closed the TCP connection without a TLS close_notify
            // after reading ours: it read everything before it.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(events.len());
            }
            Ok(Err(e)) => return Err(format!("the receiver dropped the connection: {e}")),
            Err(_) => {
                return Err(format!(
                    "the receiver did not take the batch within {} s",
                    IO_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

fn tls_config(ca_file: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            let pem = std::fs::read(f).map_err(|e| format!("ca_file {f}: {e}"))?;
            for c in wire::pem_certificates(&pem) {
                roots.add(c).map_err(|e| format!("ca_file {f}: {e}"))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A short, credential-free account of a failed HTTP request.
fn http_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

async fn answer_text(r: reqwest::Response) -> String {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    format!("HTTP {status}: {body}")
}

fn hec_endpoint(base: &str, path: &str) -> String {
    let base = base
        .trim_end_matches('/')
        .trim_end_matches("/services/collector/event")
        .trim_end_matches("/services/collector");
    format!("{base}{path}")
}

async fn send_hec(
    client: &reqwest::Client,
    sink: &Sink,
    host: &str,
    events: &[Event],
) -> Result<usize, String> {
    let Some(c) = &sink.splunk_hec else {
        return Err("no splunk_hec settings".into());
    };
    let token = c.token.as_ref().map(|t| t.expose()).unwrap_or_default();
    // As many events as fit one request under HEC's body limit.
    let mut n = 0;
    let mut size = 0;
    for e in events {
        let one = wire::hec_body(sink, host, std::slice::from_ref(e)).len();
        if n > 0 && size + one > HEC_MAX_BODY {
            break;
        }
        size += one;
        n += 1;
    }
    let body = wire::hec_body(sink, host, &events[..n]);
    let mut req = client
        .post(hec_endpoint(&c.url, "/services/collector/event"))
        .header("Authorization", format!("Splunk {token}"))
        .header("Content-Type", "application/json")
        .body(body);
    if c.ack {
        req = req.header("X-Splunk-Request-Channel", &sink.channel);
    }
    let r = req.send().await.map_err(http_error)?;
    if !r.status().is_success() {
        return Err(answer_text(r).await);
    }
    if !c.ack {
        return Ok(n);
    }
    let answer: serde_json::Value = r.json().await.map_err(http_error)?;
    let Some(ack_id) = answer.get("ackId").and_then(|v| v.as_u64()) else {
        return Err(
            "HEC answered without an ackId: turn on indexer acknowledgement for the token, or \
             set ack to false"
                .into(),
        );
    };
    let deadline = tokio::time::Instant::now() + ACK_WAIT;
    loop {
        let r = client
            .post(hec_endpoint(&c.url, "/services/collector/ack"))
            .header("Authorization", format!("Splunk {token}"))
            .header("X-Splunk-Request-Channel", &sink.channel)
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"acks": [ack_id]}).to_string())
            .send()
            .await
            .map_err(http_error)?;
        if !r.status().is_success() {
            return Err(answer_text(r).await);
        }
        let v: serde_json::Value = r.json().await.map_err(http_error)?;
        if v["acks"][ack_id.to_string()] == serde_json::Value::Bool(true) {
            return Ok(n);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "Splunk did not acknowledge batch {ack_id} within {} s",
                ACK_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn send_datadog(
    client: &reqwest::Client,
    sink: &Sink,
    host: &str,
    events: &[Event],
) -> Result<usize, String> {
    let Some(c) = &sink.datadog else {
        return Err("no datadog settings".into());
    };
    let (body, n) = wire::datadog_body(host, events);
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body)
            .and_then(|_| enc.finish())
            .map_err(|e| format!("gzip: {e}"))?
    };
    let r = client
        .post(wire::datadog_url(sink))
        .header(
            "DD-API-KEY",
            c.api_key.as_ref().map(|k| k.expose()).unwrap_or_default(),
        )
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gz)
        .send()
        .await
        .map_err(http_error)?;
    if !r.status().is_success() {
        return Err(answer_text(r).await);
    }
    Ok(n)
}

async fn send_webhook(
    client: &reqwest::Client,
    sink: &Sink,
    now: i64,
    events: &[Event],
) -> Result<usize, String> {
    let Some(c) = &sink.webhook else {
        return Err("no webhook settings".into());
    };
    let n = events.len().min(wire::WEBHOOK_MAX_EVENTS);
    let body = wire::webhook_body(&events[..n]);
    let secret = c.secret.as_ref().map(|s| s.expose()).unwrap_or_default();
    let r = client
        .post(&c.url)
        .header("Content-Type", "application/json")
        .header(
            "X-Gatehouse-Signature",
            wire::webhook_signature(secret, now, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(http_error)?;
    if !r.status().is_success() {
        return Err(answer_text(r).await);
    }
    Ok(n)
}
