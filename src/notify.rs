//! Outbound messages: e-mail over SMTP (lettre with rustls; STARTTLS or
//! implicit TLS; AUTH) and SMS through a configurable HTTP gateway. Knows how
//! to deliver, not what to say or when (that is `authn::mfa`).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmsSettings, SmtpSettings};
use crate::error::{Error, Result};

pub fn email_configured(cfg: &SmtpSettings) -> bool {
    !cfg.host.is_empty()
}

pub fn sms_configured(cfg: &SmsSettings) -> bool {
    !cfg.url.is_empty()
}

fn delivery(what: &str, e: impl std::fmt::Display) -> Error {
    // The operator sees why in the log; the caller gets "could not send".
    tracing::error!(error = %e, "{what} delivery failed");
    Error::Conflict(format!(
        "The {what} could not be sent; try again later or use another method."
    ))
}

pub async fn send_email(cfg: &SmtpSettings, to: &str, subject: &str, body: &str) -> Result<()> {
    if !email_configured(cfg) {
        return Err(Error::Conflict(
            "E-mail delivery is not configured ([smtp] host).".into(),
        ));
    }
    let from: Mailbox = cfg.from.parse().map_err(|e| delivery("e-mail", e))?;
    let to: Mailbox = to.parse().map_err(|e| delivery("e-mail", e))?;
    let msg = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .body(body.to_string())
        .map_err(|e| delivery("e-mail", e))?;
    let tls = if cfg.tls == "danger_plaintext" {
        Tls::None
    } else {
        let mut b = TlsParameters::builder(cfg.host.clone());
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| delivery("e-mail", format!("{}: {e}", ca.display())))?;
            b = b.add_root_certificate(
                Certificate::from_pem(&pem).map_err(|e| delivery("e-mail", e))?,
            );
        }
        let params = b.build_rustls().map_err(|e| delivery("e-mail", e))?;
        if cfg.tls == "implicit" {
            Tls::Wrapper(params)
        } else {
            Tls::Required(params)
        }
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(15)));
    if !cfg.username.is_empty() {
        t = t.credentials(Credentials::new(
            cfg.username.clone(),
            cfg.password.expose().to_string(),
        ));
    }
    t.build()
        .send(msg)
        .await
        .map_err(|e| delivery("e-mail", e))?;
    Ok(())
}

/// Sends `code` to `to` through the gateway, filling `{to}` and `{code}` in each field.
pub async fn send_sms(cfg: &SmsSettings, to: &str, code: &str) -> Result<()> {
    if !sms_configured(cfg) {
        return Err(Error::Conflict(
            "SMS delivery is not configured ([sms] url).".into(),
        ));
    }
    let fields: std::collections::BTreeMap<&str, String> = cfg
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.replace("{to}", to).replace("{code}", code)))
        .collect();
    let method = reqwest::Method::from_bytes(cfg.method.to_uppercase().as_bytes())
        .map_err(|e| delivery("SMS", e))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| delivery("SMS", e.without_url()))?;
    let mut req = client.request(method, &cfg.url);
    req = if cfg.format == "json" {
        req.json(&fields)
    } else {
        req.form(&fields)
    };
    req = match cfg.auth.as_str() {
        "basic" => req.basic_auth(&cfg.username, Some(cfg.secret.expose())),
        "bearer" => req.bearer_auth(cfg.secret.expose()),
        _ => req,
    };
    // Without the URL: gateways put account ids and keys in it.
    let resp = req
        .send()
        .await
        .map_err(|e| delivery("SMS", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(delivery(
            "SMS",
            format!("gateway answered {}", resp.status()),
        ));
    }
    Ok(())
}
