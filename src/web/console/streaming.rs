//! Settings → Audit → Streaming: the audit sinks with their delivery status
//! at a glance, the add / edit form, delete, and "Send test event". Plain
//! forms; the rules are the domain's `sinks` module.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Category;
use crate::clock::rfc3339;
use crate::error::Error;
use crate::sinks::{
    self, Credential, DatadogInput, HecInput, Kind, SinkInput, SinkStatus, SyslogConfig, Transport,
    WebhookInput,
};
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, reauth_gate};
use crate::web::html::{Nav, PageResult, nav, redirect, render, words};

const PAGE: &str = "/admin/settings/audit/streaming";

/// One row of the sink table.
pub struct SinkRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub destination: String,
    pub enabled: bool,
    pub categories: String,
    pub backlog: u64,
    pub delivered: u64,
    pub last_delivered: String,
    pub last_error: String,
}

/// The add / edit form's values (never a credential).
#[derive(Default)]
pub struct FormValues {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub categories: Vec<&'static str>,
    pub transport: String,
    pub host: String,
    pub port: String,
    pub ca_file: String,
    pub app_name: String,
    pub hec_url: String,
    pub hec_index: String,
    pub hec_source: String,
    pub hec_sourcetype: String,
    pub hec_ack: bool,
    pub dd_site: String,
    pub dd_url: String,
    pub webhook_url: String,
    /// Whether the sink being edited holds a credential already.
    pub credential_set: bool,
}

#[derive(Template)]
#[template(path = "audit_streaming.html")]
pub(super) struct StreamingPage {
    nav: Nav,
    rows: Vec<SinkRow>,
    form: FormValues,
    all_categories: Vec<&'static str>,
    notice: Option<String>,
    error: Option<String>,
}

fn destination(s: &SinkStatus) -> String {
    let k = &s.sink;
    match k.kind {
        Kind::Syslog => k.syslog.as_ref().map_or_else(String::new, |c| {
            let t = match c.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
                Transport::Tls => "tls",
            };
            format!("{t}://{}:{}", c.host, c.port)
        }),
        Kind::SplunkHec => k
            .splunk_hec
            .as_ref()
            .map_or_else(String::new, |c| c.url.clone()),
        Kind::Datadog => sinks::wire::datadog_url(k),
        Kind::Webhook => k
            .webhook
            .as_ref()
            .map_or_else(String::new, |c| c.url.clone()),
    }
}

fn row(s: &SinkStatus) -> SinkRow {
    SinkRow {
        id: s.sink.id.clone(),
        name: s.sink.name.clone(),
        kind: s.sink.kind.as_str(),
        destination: destination(s),
        enabled: s.sink.enabled,
        categories: if s.sink.categories.is_empty() {
            "all".into()
        } else {
            s.sink
                .categories
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
        backlog: s.backlog,
        delivered: s.state.delivered,
        last_delivered: s
            .state
            .last_delivered_at
            .map(rfc3339)
            .unwrap_or_else(|| "never".into()),
        last_error: s.state.last_error.clone().unwrap_or_default(),
    }
}

fn values_of(s: &SinkStatus) -> FormValues {
    let k = &s.sink;
    let mut f = FormValues {
        id: k.id.clone(),
        name: k.name.clone(),
        kind: k.kind.as_str().into(),
        enabled: k.enabled,
        categories: k.categories.iter().map(|c| c.as_str()).collect(),
        transport: "tcp".into(),
        ..FormValues::default()
    };
    if let Some(c) = &k.syslog {
        f.transport = match c.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
        .into();
        f.host = c.host.clone();
        f.port = c.port.to_string();
        f.ca_file = c.ca_file.clone().unwrap_or_default();
        f.app_name = c.app_name.clone().unwrap_or_default();
    }
    if let Some(c) = &k.splunk_hec {
        f.hec_url = c.url.clone();
        f.hec_index = c.index.clone().unwrap_or_default();
        f.hec_source = c.source.clone().unwrap_or_default();
        f.hec_sourcetype = c.sourcetype.clone().unwrap_or_default();
        f.hec_ack = c.ack;
        f.credential_set = c.token.is_some();
    }
    if let Some(c) = &k.datadog {
        f.dd_site = c.site.clone().unwrap_or_default();
        f.dd_url = c.url.clone().unwrap_or_default();
        f.credential_set = c.api_key.is_some();
    }
    if let Some(c) = &k.webhook {
        f.webhook_url = c.url.clone();
        f.credential_set = c.secret.is_some();
    }
    f
}

fn page(
    st: &AppState,
    req: &HttpRequest,
    u: &ConsoleUser,
    edit: Option<&str>,
    form: Option<FormValues>,
    notice: Option<String>,
    error: Option<String>,
) -> PageResult {
    let list = sinks::list_for(&st.svc, &u.actor(req))?;
    // A refused form is a bad request; a failed test delivery is not.
    let refused = error.is_some() && form.is_some();
    let form = match (form, edit) {
        (Some(f), _) => f,
        (None, Some(id)) => list
            .iter()
            .find(|s| s.sink.id == id)
            .map(values_of)
            .ok_or(Error::NotFound("sink"))?,
        (None, None) => FormValues {
            enabled: true,
            kind: "syslog".into(),
            transport: "tcp".into(),
            ..FormValues::default()
        },
    };
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(
        status,
        &StreamingPage {
            nav: nav(u, "settings"),
            rows: list.iter().map(row).collect(),
            form,
            all_categories: Category::ALL.iter().map(|c| c.as_str()).collect(),
            notice,
            error,
        },
    )
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    edit: Option<String>,
    notice: Option<String>,
}

pub(super) async fn streaming_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<PageQuery>,
) -> PageResult {
    let notice = match q.notice.as_deref() {
        Some("created") => Some("Sink added. Its delivery starts with the event of its creation."),
        Some("saved") => Some("Sink saved."),
        Some("deleted") => Some("Sink deleted."),
        _ => None,
    };
    page(
        &st,
        &req,
        &u,
        q.edit.as_deref(),
        None,
        notice.map(str::to_string),
        None,
    )
}

/// The form as posted: every kind's fields, of which the chosen kind's count.
#[derive(Deserialize)]
pub(super) struct SinkForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    enabled: Option<String>,
    cat_authentication: Option<String>,
    cat_authorization: Option<String>,
    cat_data_access: Option<String>,
    cat_configuration: Option<String>,
    cat_security: Option<String>,
    #[serde(default)]
    transport: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    ca_file: String,
    #[serde(default)]
    app_name: String,
    #[serde(default)]
    hec_url: String,
    #[serde(default)]
    hec_token: String,
    #[serde(default)]
    hec_index: String,
    #[serde(default)]
    hec_source: String,
    #[serde(default)]
    hec_sourcetype: String,
    hec_ack: Option<String>,
    #[serde(default)]
    dd_site: String,
    #[serde(default)]
    dd_url: String,
    #[serde(default)]
    dd_api_key: String,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    webhook_secret: String,
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

fn cred(s: &str) -> Option<Credential> {
    opt(s).and_then(|v| serde_json::from_value(serde_json::Value::String(v)).ok())
}

impl SinkForm {
    fn categories(&self) -> Vec<Category> {
        [
            (&self.cat_authentication, Category::Authentication),
            (&self.cat_authorization, Category::Authorization),
            (&self.cat_data_access, Category::DataAccess),
            (&self.cat_configuration, Category::Configuration),
            (&self.cat_security, Category::Security),
        ]
        .into_iter()
        .filter(|(v, _)| v.is_some())
        .map(|(_, c)| c)
        .collect()
    }

    fn input(&self) -> Result<SinkInput, Error> {
        let kind = match self.kind.as_str() {
            "syslog" => Kind::Syslog,
            "splunk_hec" => Kind::SplunkHec,
            "datadog" => Kind::Datadog,
            "webhook" => Kind::Webhook,
            _ => {
                return Err(Error::invalid(
                    "kind",
                    "choose syslog, Splunk HEC, Datadog or webhook",
                ));
            }
        };
        let mut i = SinkInput {
            name: self.name.clone(),
            kind,
            enabled: self.enabled.is_some(),
            categories: Some(self.categories()),
            syslog: None,
            splunk_hec: None,
            datadog: None,
            webhook: None,
        };
        match kind {
            Kind::Syslog => {
                let transport = match self.transport.as_str() {
                    "udp" => Transport::Udp,
                    "tls" => Transport::Tls,
                    _ => Transport::Tcp,
                };
                let port = self.port.trim().parse::<u16>().map_err(|_| {
                    Error::invalid("syslog.port", "must be a port number (1–65535)")
                })?;
                i.syslog = Some(SyslogConfig {
                    transport,
                    host: self.host.clone(),
                    port,
                    ca_file: opt(&self.ca_file),
                    app_name: opt(&self.app_name),
                });
            }
            Kind::SplunkHec => {
                i.splunk_hec = Some(HecInput {
                    url: self.hec_url.clone(),
                    token: cred(&self.hec_token),
                    index: opt(&self.hec_index),
                    source: opt(&self.hec_source),
                    sourcetype: opt(&self.hec_sourcetype),
                    ack: self.hec_ack.is_some(),
                })
            }
            Kind::Datadog => {
                i.datadog = Some(DatadogInput {
                    site: opt(&self.dd_site),
                    url: opt(&self.dd_url),
                    api_key: cred(&self.dd_api_key),
                })
            }
            Kind::Webhook => {
                i.webhook = Some(WebhookInput {
                    url: self.webhook_url.clone(),
                    secret: cred(&self.webhook_secret),
                })
            }
        }
        Ok(i)
    }

    /// What the form shows again after a refusal (credentials never).
    fn values(&self, id: &str, credential_set: bool) -> FormValues {
        FormValues {
            id: id.into(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            enabled: self.enabled.is_some(),
            categories: self.categories().iter().map(|c| c.as_str()).collect(),
            transport: self.transport.clone(),
            host: self.host.clone(),
            port: self.port.clone(),
            ca_file: self.ca_file.clone(),
            app_name: self.app_name.clone(),
            hec_url: self.hec_url.clone(),
            hec_index: self.hec_index.clone(),
            hec_source: self.hec_source.clone(),
            hec_sourcetype: self.hec_sourcetype.clone(),
            hec_ack: self.hec_ack.is_some(),
            dd_site: self.dd_site.clone(),
            dd_url: self.dd_url.clone(),
            webhook_url: self.webhook_url.clone(),
            credential_set,
        }
    }
}

pub(super) async fn streaming_create(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<SinkForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sinks::may_manage(&st.svc, &u.actor(&req))?;
    if let Some(r) = reauth_gate(&st, &u, PAGE)? {
        return Ok(r);
    }
    match f
        .input()
        .and_then(|i| sinks::create(&st.svc, &u.actor(&req), i))
    {
        Ok(_) => Ok(redirect(&format!("{PAGE}?notice=created"))),
        Err(e @ Error::Invalid { .. }) => page(
            &st,
            &req,
            &u,
            None,
            Some(f.values("", false)),
            None,
            Some(words(&e)),
        ),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn streaming_update(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<SinkForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sinks::may_manage(&st.svc, &u.actor(&req))?;
    if let Some(r) = reauth_gate(&st, &u, &format!("{PAGE}?edit={}", id.as_str()))? {
        return Ok(r);
    }
    match f
        .input()
        .and_then(|i| sinks::update(&st.svc, &u.actor(&req), &id, i))
    {
        Ok(_) => Ok(redirect(&format!("{PAGE}?notice=saved"))),
        Err(e @ Error::Invalid { .. }) => page(
            &st,
            &req,
            &u,
            None,
            Some(f.values(&id, true)),
            None,
            Some(words(&e)),
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    csrf_token: String,
}

pub(super) async fn streaming_delete(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfOnly>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sinks::may_manage(&st.svc, &u.actor(&req))?;
    if let Some(r) = reauth_gate(&st, &u, PAGE)? {
        return Ok(r);
    }
    sinks::delete(&st.svc, &u.actor(&req), &id)?;
    Ok(redirect(&format!("{PAGE}?notice=deleted")))
}

pub(super) async fn streaming_test(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    id: web::Path<String>,
    f: web::Form<CsrfOnly>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    sinks::may_manage(&st.svc, &u.actor(&req))?;
    if let Some(r) = reauth_gate(&st, &u, PAGE)? {
        return Ok(r);
    }
    let r = sinks::send_test(&st.svc, &u.actor(&req), &id).await?;
    let (notice, error) = match r.error {
        None => (
            Some(format!(
                "Test event {} delivered to the sink; the stream sends it again in its turn (same id).",
                r.event_id
            )),
            None,
        ),
        Some(e) => (
            None,
            Some(format!("Test event {} not delivered: {e}", r.event_id)),
        ),
    };
    page(&st, &req, &u, None, None, notice, error)
}
