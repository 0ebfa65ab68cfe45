//! Settings: an optional TOML file, then `GATEHOUSE_*` environment overrides,
//! then command-line flags. Unknown keys and unknown `GATEHOUSE_*` variables are
//! refused by name. Secrets in settings are masked when printed.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on. Non-loopback needs TLS or `danger_insecure_http`.
    pub listen: String,
    /// Folder holding `gatehouse.redb`, `master.key` and the control socket.
    pub data_dir: PathBuf,
    /// The URL users reach Gatehouse at; used for links and as the token issuer.
    pub public_url: Option<String>,
    /// `text` or `json`.
    pub log_format: String,
    /// Log requests to the health and readiness probes (`/healthz`,
    /// `/readyz`) like any other; off by default.
    pub log_probes: bool,
    /// Serve plain HTTP on a non-loopback address. Only behind a TLS proxy.
    pub danger_insecure_http: bool,
    pub tls: TlsSettings,
    pub password: PasswordSettings,
    pub session: SessionSettings,
    pub tokens: TokenSettings,
    pub limits: LimitSettings,
    pub lockout: LockoutSettings,
    pub rate_limit: RateLimitSettings,
    pub network: NetworkSettings,
    pub smtp: SmtpSettings,
    pub sms: SmsSettings,
}

/// A secret in the configuration: never printed (`config check` shows
/// `********`), never logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"********\""
        })
    }
}

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // Masked, so printing or snapshotting the settings never shows it,
        // nor anything that confirms a guess (an unkeyed hash would): only
        // whether it is set. Changes are noticed by a keyed fingerprint in
        // the configuration snapshot (`service::record_config_change`).
        s.serialize_str(if self.0.is_empty() {
            ""
        } else {
            "******** (set)"
        })
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(SecretString)
    }
}

/// Outgoing mail for e-mail codes. Empty `host` turns e-mail codes off.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `starttls`, `implicit` (TLS from the first byte) or `danger_plaintext`.
    pub tls: String,
    pub username: String,
    pub password: SecretString,
    /// Sender, e.g. `Gatehouse <gatehouse@example.com>`.
    pub from: String,
    /// An extra CA certificate (PEM) to trust for the SMTP server, besides the system's.
    pub ca_file: Option<PathBuf>,
}

impl Settings {
    /// Every value printed masked, by its key (for keyed change
    /// fingerprints): the secrets, the SMS gateway URL and the SMS field
    /// values that are not templates (see `SmsSettings`).
    pub fn secrets(&self) -> Vec<(String, &str)> {
        let mut out = vec![
            ("smtp.password".to_string(), self.smtp.password.expose()),
            ("sms.secret".to_string(), self.sms.secret.expose()),
            ("sms.url".to_string(), self.sms.url.as_str()),
        ];
        for (k, v) in &self.sms.fields {
            if shown_sms_field(v) != v {
                out.push((format!("sms.fields.{k}"), v.as_str()));
            }
        }
        out
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: 587,
            tls: "starttls".into(),
            username: String::new(),
            password: SecretString::default(),
            from: "Gatehouse <gatehouse@localhost>".into(),
            ca_file: None,
        }
    }
}

/// An HTTP SMS gateway for SMS codes. Empty `url` turns SMS codes off. The
/// default fields are Twilio's (`To`, `From`, `Body`); `{to}` and `{code}` are
/// replaced in every field value.
///
/// Printed (`config check`, `Debug`, the configuration snapshot) with the URL
/// cut to scheme and host — credentials in its userinfo, path or query are
/// not shown — and every field value masked but the templates (values naming
/// `{to}` or `{code}`): gateways take API keys in either place.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    #[serde(serialize_with = "serialize_shown_url")]
    pub url: String,
    pub method: String,
    /// `form` (application/x-www-form-urlencoded) or `json`.
    pub format: String,
    #[serde(serialize_with = "serialize_shown_fields")]
    pub fields: std::collections::BTreeMap<String, String>,
    /// `none`, `basic` (username + secret) or `bearer` (secret).
    pub auth: String,
    pub username: String,
    pub secret: SecretString,
}

/// An SMS gateway URL as printed: `scheme://host[:port]`, with a note when
/// anything (userinfo, path, query) was left out.
pub fn shown_sms_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.is_empty() {
            String::new()
        } else {
            "(not shown: not an absolute URL)".into()
        };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let cut = host.len() != authority.len() || !matches!(&rest[end..], "" | "/");
    let mut shown = format!("{scheme}://{host}");
    if cut {
        shown.push_str(" (credentials, path and query not shown)");
    }
    shown
}

/// An SMS field value as printed: templates (naming `{to}` or `{code}`) and
/// empty values as they are, anything else masked.
pub fn shown_sms_field(value: &str) -> &str {
    if value.is_empty() || value.contains("{to}") || value.contains("{code}") {
        value
    } else {
        "******** (set)"
    }
}

fn serialize_shown_url<S: serde::Serializer>(
    url: &str,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&shown_sms_url(url))
}

fn serialize_shown_fields<S: serde::Serializer>(
    fields: &std::collections::BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(fields.iter().map(|(k, v)| (k, shown_sms_field(v))))
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: std::collections::BTreeMap<&str, &str> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), shown_sms_field(v)))
            .collect();
        f.debug_struct("SmsSettings")
            .field("url", &shown_sms_url(&self.url))
            .field("method", &self.method)
            .field("format", &self.format)
            .field("fields", &fields)
            .field("auth", &self.auth)
            .field("username", &self.username)
            .field("secret", &self.secret)
            .finish()
    }
}

impl Default for SmsSettings {
    fn default() -> Self {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("To".into(), "{to}".into());
        fields.insert("From".into(), String::new());
        fields.insert("Body".into(), "Your Gatehouse code is {code}".into());
        SmsSettings {
            url: String::new(),
            method: "POST".into(),
            format: "form".into(),
            fields,
            auth: "basic".into(),
            username: String::new(),
            secret: SecretString::default(),
        }
    }
}

/// Per-account lockout after repeated failed sign-ins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutSettings {
    /// Failures within `window_secs` that lock the account.
    pub max_failures: usize,
    pub window_secs: i64,
    /// First lock; each further lock without a successful sign-in between doubles it.
    pub lock_secs: i64,
    pub max_lock_secs: i64,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            max_failures: 5,
            window_secs: 900,
            lock_secs: 900,
            max_lock_secs: 86_400,
        }
    }
}

/// The default network size IPv6 addresses are aggregated by (see `ratelimit`).
pub const IPV6_PREFIX: u8 = 64;

/// Per-client-IP token buckets on the sign-in endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Sustained requests per minute per client IP on /login and /api/v1/auth/*.
    pub auth_per_minute: u32,
    /// Requests allowed at once before the rate applies.
    pub auth_burst: u32,
    /// Failed client authentications per minute per client IP at /oauth2/token,
    /// /oauth2/introspect and /oauth2/revoke (successful calls are not counted).
    pub client_auth_failures_per_minute: u32,
    pub client_auth_failures_burst: u32,
    /// IPv6 clients share one bucket per network of this many bits (1–128;
    /// 64 by default, since one host is routinely given a whole /64).
    pub ipv6_prefix: u8,
    /// E-mail or SMS codes sent to one user per method in 24 hours (sign-in,
    /// enrollment and re-authentication together); at most one per 30 s.
    pub codes_per_day: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            auth_per_minute: 60,
            auth_burst: 20,
            client_auth_failures_per_minute: 10,
            client_auth_failures_burst: 20,
            ipv6_prefix: IPV6_PREFIX,
            codes_per_day: 20,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// Proxies (CIDRs) whose X-Forwarded-For is believed; from anyone else it is ignored.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Oldest TLS version accepted: `1.2` or `1.3` (1.3 is always preferred).
    pub min_version: String,
    /// `Strict-Transport-Security: max-age` on HTTPS responses; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// A plain-HTTP listener (`0.0.0.0:80`) that only redirects to HTTPS and
    /// answers ACME HTTP-01 challenges.
    pub http_listen: Option<String>,
    /// How often the certificate files are looked at for a change (0: only
    /// on SIGHUP).
    pub file_check_secs: u64,
    pub acme: AcmeSettings,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            cert_file: None,
            key_file: None,
            min_version: "1.2".into(),
            hsts_max_age_secs: 365 * 24 * 3600,
            http_listen: None,
            file_check_secs: 5,
            acme: AcmeSettings::default(),
        }
    }
}

/// Let's Encrypt's production directory, the default ACME CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Automatic certificates from an ACME CA (on when `domains` is not empty).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeSettings {
    /// DNS names the certificate is for; the first is its subject.
    pub domains: Vec<String>,
    /// Account contacts (`mailto:ops@example.com`).
    pub contact: Vec<String>,
    pub directory_url: String,
    /// PEM root(s) to trust for a private ACME CA's directory, instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `tls-alpn-01` (on the HTTPS listener) or `http-01` (needs `tls.http_listen`).
    pub challenge: String,
    /// One attempt to order a certificate (directory, order, validation,
    /// download) is abandoned after this long.
    pub timeout_secs: u64,
    /// After a failed attempt, the next one waits this long.
    pub retry_secs: u64,
}

impl Default for AcmeSettings {
    fn default() -> Self {
        AcmeSettings {
            domains: Vec::new(),
            contact: Vec::new(),
            directory_url: LETS_ENCRYPT.into(),
            ca_file: None,
            challenge: "tls-alpn-01".into(),
            timeout_secs: 90,
            retry_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub min_length: usize,
    /// Concurrent Argon2 computations; 0 means one per CPU core.
    pub hash_concurrency: usize,
    /// An Argon2 thread idle this long frees its working memory
    /// (`argon2_memory_kib`); 0 keeps it for the process's life.
    pub release_memory_after_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    pub idle_timeout_secs: i64,
    pub absolute_lifetime_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub audience: String,
    /// Access-token signing keys rotate when the active one is this old (0: never).
    pub signing_key_rotation_days: u32,
    /// The algorithm of client-credentials (service-account) tokens:
    /// `RS256`, `ES256` or `EdDSA`. User tokens are always RS256.
    pub service_account_algorithm: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub json_body_bytes: usize,
    pub form_body_bytes: usize,
    /// SSO sign-ins in flight at once (each start at `/sso/*/login` is stored).
    pub sso_pending_max: u64,
    /// SSO sign-ins started from one address (IPv6: one /64) within 10 minutes.
    pub sso_pending_per_client: usize,
    /// The largest request body the Vault-compatible services (`/v1/...`)
    /// accept (Vault's `max_request_size`); larger ones get 413.
    pub vault_request_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./gatehouse-data"),
            public_url: None,
            log_format: "text".into(),
            log_probes: false,
            danger_insecure_http: false,
            tls: TlsSettings::default(),
            password: PasswordSettings::default(),
            session: SessionSettings::default(),
            tokens: TokenSettings::default(),
            limits: LimitSettings::default(),
            lockout: LockoutSettings::default(),
            rate_limit: RateLimitSettings::default(),
            network: NetworkSettings::default(),
            smtp: SmtpSettings::default(),
            sms: SmsSettings::default(),
        }
    }
}

impl Default for PasswordSettings {
    fn default() -> Self {
        // OWASP's first Argon2id recommendation.
        PasswordSettings {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            min_length: 12,
            hash_concurrency: 0,
            release_memory_after_secs: 60,
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout_secs: 30 * 60,
            absolute_lifetime_secs: 12 * 3600,
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 7 * 24 * 3600,
            audience: "gatehouse".into(),
            signing_key_rotation_days: 90,
            service_account_algorithm: "RS256".into(),
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            json_body_bytes: 64 * 1024,
            form_body_bytes: 64 * 1024,
            sso_pending_max: 10_000,
            sso_pending_per_client: 20,
            vault_request_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Every environment variable the settings read, and the key it sets.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("GATEHOUSE_LISTEN", "listen"),
    ("GATEHOUSE_DATA", "data_dir"),
    ("GATEHOUSE_PUBLIC_URL", "public_url"),
    ("GATEHOUSE_LOG_FORMAT", "log_format"),
    ("GATEHOUSE_LOG_PROBES", "log_probes"),
    ("GATEHOUSE_DANGER_INSECURE_HTTP", "danger_insecure_http"),
    ("GATEHOUSE_TLS_CERT_FILE", "tls.cert_file"),
    ("GATEHOUSE_TLS_KEY_FILE", "tls.key_file"),
    ("GATEHOUSE_TLS_MIN_VERSION", "tls.min_version"),
    ("GATEHOUSE_TLS_HSTS_MAX_AGE_SECS", "tls.hsts_max_age_secs"),
    ("GATEHOUSE_TLS_HTTP_LISTEN", "tls.http_listen"),
    ("GATEHOUSE_TLS_FILE_CHECK_SECS", "tls.file_check_secs"),
    ("GATEHOUSE_TLS_ACME_DOMAINS", "tls.acme.domains"),
    ("GATEHOUSE_TLS_ACME_CONTACT", "tls.acme.contact"),
    ("GATEHOUSE_TLS_ACME_DIRECTORY_URL", "tls.acme.directory_url"),
    ("GATEHOUSE_TLS_ACME_CA_FILE", "tls.acme.ca_file"),
    ("GATEHOUSE_TLS_ACME_CHALLENGE", "tls.acme.challenge"),
    ("GATEHOUSE_TLS_ACME_TIMEOUT_SECS", "tls.acme.timeout_secs"),
    ("GATEHOUSE_TLS_ACME_RETRY_SECS", "tls.acme.retry_secs"),
    (
        "GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB",
        "password.argon2_memory_kib",
    ),
    (
        "GATEHOUSE_PASSWORD_ARGON2_ITERATIONS",
        "password.argon2_iterations",
    ),
    (
        "GATEHOUSE_PASSWORD_ARGON2_PARALLELISM",
        "password.argon2_parallelism",
    ),
    ("GATEHOUSE_PASSWORD_MIN_LENGTH", "password.min_length"),
    (
        "GATEHOUSE_PASSWORD_HASH_CONCURRENCY",
        "password.hash_concurrency",
    ),
    (
        "GATEHOUSE_PASSWORD_RELEASE_MEMORY_AFTER_SECS",
        "password.release_memory_after_secs",
    ),
    (
        "GATEHOUSE_SESSION_IDLE_TIMEOUT_SECS",
        "session.idle_timeout_secs",
    ),
    (
        "GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_SECS",
        "session.absolute_lifetime_secs",
    ),
    ("GATEHOUSE_TOKENS_ACCESS_TTL_SECS", "tokens.access_ttl_secs"),
    (
        "GATEHOUSE_TOKENS_REFRESH_TTL_SECS",
        "tokens.refresh_ttl_secs",
    ),
    ("GATEHOUSE_TOKENS_AUDIENCE", "tokens.audience"),
    (
        "GATEHOUSE_TOKENS_SIGNING_KEY_ROTATION_DAYS",
        "tokens.signing_key_rotation_days",
    ),
    (
        "GATEHOUSE_TOKENS_SERVICE_ACCOUNT_ALGORITHM",
        "tokens.service_account_algorithm",
    ),
    ("GATEHOUSE_LIMITS_JSON_BODY_BYTES", "limits.json_body_bytes"),
    ("GATEHOUSE_LIMITS_FORM_BODY_BYTES", "limits.form_body_bytes"),
    ("GATEHOUSE_LIMITS_SSO_PENDING_MAX", "limits.sso_pending_max"),
    (
        "GATEHOUSE_LIMITS_VAULT_REQUEST_BYTES",
        "limits.vault_request_bytes",
    ),
    (
        "GATEHOUSE_LIMITS_SSO_PENDING_PER_CLIENT",
        "limits.sso_pending_per_client",
    ),
    ("GATEHOUSE_LOCKOUT_MAX_FAILURES", "lockout.max_failures"),
    ("GATEHOUSE_LOCKOUT_WINDOW_SECS", "lockout.window_secs"),
    ("GATEHOUSE_LOCKOUT_LOCK_SECS", "lockout.lock_secs"),
    ("GATEHOUSE_LOCKOUT_MAX_LOCK_SECS", "lockout.max_lock_secs"),
    (
        "GATEHOUSE_RATE_LIMIT_AUTH_PER_MINUTE",
        "rate_limit.auth_per_minute",
    ),
    ("GATEHOUSE_RATE_LIMIT_AUTH_BURST", "rate_limit.auth_burst"),
    (
        "GATEHOUSE_RATE_LIMIT_CLIENT_AUTH_FAILURES_PER_MINUTE",
        "rate_limit.client_auth_failures_per_minute",
    ),
    (
        "GATEHOUSE_RATE_LIMIT_CLIENT_AUTH_FAILURES_BURST",
        "rate_limit.client_auth_failures_burst",
    ),
    ("GATEHOUSE_RATE_LIMIT_IPV6_PREFIX", "rate_limit.ipv6_prefix"),
    (
        "GATEHOUSE_RATE_LIMIT_CODES_PER_DAY",
        "rate_limit.codes_per_day",
    ),
    (
        "GATEHOUSE_NETWORK_TRUSTED_PROXIES",
        "network.trusted_proxies",
    ),
    ("GATEHOUSE_SMTP_HOST", "smtp.host"),
    ("GATEHOUSE_SMTP_PORT", "smtp.port"),
    ("GATEHOUSE_SMTP_TLS", "smtp.tls"),
    ("GATEHOUSE_SMTP_USERNAME", "smtp.username"),
    ("GATEHOUSE_SMTP_PASSWORD", "smtp.password"),
    ("GATEHOUSE_SMTP_FROM", "smtp.from"),
    ("GATEHOUSE_SMTP_CA_FILE", "smtp.ca_file"),
    ("GATEHOUSE_SMS_URL", "sms.url"),
    ("GATEHOUSE_SMS_METHOD", "sms.method"),
    ("GATEHOUSE_SMS_FORMAT", "sms.format"),
    ("GATEHOUSE_SMS_AUTH", "sms.auth"),
    ("GATEHOUSE_SMS_USERNAME", "sms.username"),
    ("GATEHOUSE_SMS_SECRET", "sms.secret"),
];

/// Variables read elsewhere (CLI, first start) that are not settings keys.
pub const OTHER_ENV: &[&str] = &[
    "GATEHOUSE_CONFIG",
    "GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL",
    "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE",
    "GATEHOUSE_LOG",
];

impl Settings {
    /// File (if any), then the given environment, validated.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid("config", format!("cannot read {}: {e}", path.display()))
                })?;
                let table = text
                    .parse::<toml::Table>()
                    .map_err(|e| Error::invalid("config", format!("{}: {e}", path.display())))?;
                // The file alone first, from its text: an error names the key
                // and the line it is on.
                if let Err(e) = toml::from_str::<Settings>(&text) {
                    return Err(file_error(path, &text, &e));
                }
                table
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            if !name.starts_with("GATEHOUSE_") || OTHER_ENV.contains(&name.as_str()) {
                continue;
            }
            let Some((_, key)) = ENV_KEYS.iter().find(|(n, _)| *n == name) else {
                return Err(Error::invalid(
                    "environment",
                    format!("unknown variable {name}; see the README for the list"),
                ));
            };
            let v = if key.ends_with("trusted_proxies")
                || *key == "tls.acme.domains"
                || *key == "tls.acme.contact"
            {
                // A comma-separated list.
                toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.into()))
                        .collect(),
                )
            } else {
                env_value(&value)
            };
            // Each variable is checked as it is added, so a wrong type names
            // the variable; a value that reads as a number or a boolean where
            // text is wanted (`GATEHOUSE_TOKENS_AUDIENCE=1234`) is taken as text.
            let before = table.clone();
            set_path(&mut table, key, v.clone());
            if let Err(e) = toml::Value::Table(table.clone()).try_into::<Settings>() {
                let as_text = toml::Value::String(value.clone());
                let mut retry = before;
                set_path(&mut retry, key, as_text.clone());
                if !v.is_str()
                    && toml::Value::Table(retry.clone())
                        .try_into::<Settings>()
                        .is_ok()
                {
                    table = retry;
                } else {
                    return Err(Error::invalid(
                        key,
                        format!(
                            "{} (from the environment variable {name})",
                            plain_type_error(e.message())
                        ),
                    ));
                }
            }
        }
        let settings: Settings =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Error::invalid("config", plain_type_error(e.message()))
                })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<()> {
        self.listen_addr()?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(Error::invalid("log_format", "must be \"text\" or \"json\""));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(Error::invalid(
                "tls",
                "set both cert_file and key_file, or neither",
            ));
        }
        self.validate_tls()?;
        let p = &self.password;
        if p.argon2_memory_kib < 8 * 1024 || p.argon2_iterations == 0 || p.argon2_parallelism == 0 {
            return Err(Error::invalid(
                "password",
                "argon2_memory_kib must be at least 8192 and iterations/parallelism at least 1",
            ));
        }
        if p.min_length < 8 {
            return Err(Error::invalid("password.min_length", "must be at least 8"));
        }
        let s = &self.session;
        if s.idle_timeout_secs <= 0 || s.absolute_lifetime_secs < s.idle_timeout_secs {
            return Err(Error::invalid(
                "session",
                "idle_timeout_secs must be positive and not above absolute_lifetime_secs",
            ));
        }
        // Upper bounds keep every `now + duration` far from overflowing and
        // catch a value given in the wrong unit (milliseconds, say).
        for (field, v, max, what) in [
            (
                "session.absolute_lifetime_secs",
                s.absolute_lifetime_secs,
                MONTH,
                "30 days",
            ),
            (
                "tokens.access_ttl_secs",
                self.tokens.access_ttl_secs,
                DAY,
                "1 day",
            ),
            (
                "tokens.refresh_ttl_secs",
                self.tokens.refresh_ttl_secs,
                90 * DAY,
                "90 days",
            ),
            (
                "lockout.window_secs",
                self.lockout.window_secs,
                MONTH,
                "30 days",
            ),
            (
                "lockout.max_lock_secs",
                self.lockout.max_lock_secs,
                MONTH,
                "30 days",
            ),
        ] {
            if v > max {
                return Err(Error::invalid(
                    field,
                    format!("must be at most {max} seconds ({what}); the value is in seconds"),
                ));
            }
        }
        if self.tokens.access_ttl_secs <= 0 || self.tokens.refresh_ttl_secs <= 0 {
            return Err(Error::invalid("tokens", "lifetimes must be positive"));
        }
        if !matches!(
            self.tokens.service_account_algorithm.as_str(),
            "RS256" | "ES256" | "EdDSA"
        ) {
            return Err(Error::invalid(
                "tokens.service_account_algorithm",
                "must be RS256, ES256 or EdDSA (written exactly so)",
            ));
        }
        let l = &self.lockout;
        if l.max_failures > 100 {
            return Err(Error::invalid(
                "lockout.max_failures",
                "must be at most 100 (each account keeps its failure times until the window passes)",
            ));
        }
        if l.max_failures == 0
            || l.window_secs <= 0
            || l.lock_secs <= 0
            || l.max_lock_secs < l.lock_secs
        {
            return Err(Error::invalid(
                "lockout",
                "max_failures, window_secs and lock_secs must be positive, max_lock_secs at least lock_secs",
            ));
        }
        if self.rate_limit.auth_per_minute == 0 || self.rate_limit.auth_burst == 0 {
            return Err(Error::invalid(
                "rate_limit",
                "auth_per_minute and auth_burst must be at least 1",
            ));
        }
        if !(1..=128).contains(&self.rate_limit.ipv6_prefix) {
            return Err(Error::invalid(
                "rate_limit.ipv6_prefix",
                "must be between 1 and 128 bits (64 groups one IPv6 host's usual /64)",
            ));
        }
        if self.rate_limit.codes_per_day == 0 {
            return Err(Error::invalid(
                "rate_limit.codes_per_day",
                "must be at least 1 (e-mail and SMS codes would never be sent)",
            ));
        }
        self.trusted_proxies()?;
        if !matches!(
            self.smtp.tls.as_str(),
            "starttls" | "implicit" | "danger_plaintext"
        ) {
            return Err(Error::invalid(
                "smtp.tls",
                "must be starttls, implicit or danger_plaintext",
            ));
        }
        if !self.smtp.host.is_empty() && self.smtp.from.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(Error::invalid(
                "smtp.from",
                "must be an address like Gatehouse <gatehouse@example.com>",
            ));
        }
        if !matches!(self.sms.format.as_str(), "form" | "json") {
            return Err(Error::invalid("sms.format", "must be form or json"));
        }
        if !matches!(self.sms.auth.as_str(), "none" | "basic" | "bearer") {
            return Err(Error::invalid("sms.auth", "must be none, basic or bearer"));
        }
        if !(self.sms.url.is_empty()
            || self.sms.url.starts_with("https://")
            || self.sms.url.starts_with("http://"))
        {
            return Err(Error::invalid("sms.url", "must be an http(s) URL"));
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(Error::invalid(
                "public_url",
                "must start with http:// or https://",
            ));
        }
        Ok(())
    }

    /// The address to bind: an `IP:port`, or a `host:port` resolved (IPv4
    /// first, so `localhost:8085` is 127.0.0.1:8085). Anything else is refused
    /// with the form to use.
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        if let Ok(a) = self.listen.parse() {
            return Ok(a);
        }
        let port = self
            .listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let hint = format!("use an IP:port such as 127.0.0.1:{}", port.unwrap_or(8080));
        let Some(_) = port else {
            return Err(Error::invalid(
                "listen",
                format!("{:?} has no port; {hint}", self.listen),
            ));
        };
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = match self.listen.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                return Err(Error::invalid(
                    "listen",
                    format!("{:?} does not resolve ({e}); {hint}", self.listen),
                ));
            }
        };
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| {
                Error::invalid(
                    "listen",
                    format!("{:?} resolves to no address; {hint}", self.listen),
                )
            })
    }

    /// The trusted-proxy networks, parsed (a bare address means that one host).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>> {
        self.network
            .trusted_proxies
            .iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        Error::invalid(
                            "network.trusted_proxies",
                            format!("{s:?} is not an IP address or CIDR"),
                        )
                    })
            })
            .collect()
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.cert_file.is_some() || self.acme_enabled()
    }

    pub fn acme_enabled(&self) -> bool {
        !self.tls.acme.domains.is_empty()
    }

    /// The plain-HTTP redirect listener's address, if one is configured.
    pub fn http_listen_addr(&self) -> Result<Option<SocketAddr>> {
        match &self.tls.http_listen {
            None => Ok(None),
            Some(a) => a.parse().map(Some).map_err(|_| {
                Error::invalid(
                    "tls.http_listen",
                    format!("{a:?} is not an IP:port such as 0.0.0.0:80"),
                )
            }),
        }
    }

    fn validate_tls(&self) -> Result<()> {
        let t = &self.tls;
        if !matches!(t.min_version.as_str(), "1.2" | "1.3") {
            return Err(Error::invalid(
                "tls.min_version",
                format!("{:?} is not offered: use \"1.2\" or \"1.3\"", t.min_version),
            ));
        }
        if t.hsts_max_age_secs > 2 * 365 * 86_400 {
            return Err(Error::invalid(
                "tls.hsts_max_age_secs",
                "must be at most 63072000 (2 years); the value is in seconds",
            ));
        }
        if self.http_listen_addr()?.is_some() && !self.tls_enabled() {
            return Err(Error::invalid(
                "tls.http_listen",
                "redirects to HTTPS: configure TLS (tls.acme.domains or tls.cert_file) first",
            ));
        }
        let a = &t.acme;
        if a.domains.is_empty() {
            return Ok(());
        }
        if t.cert_file.is_some() {
            return Err(Error::invalid(
                "tls.acme.domains",
                "choose ACME or certificate files (tls.cert_file), not both",
            ));
        }
        for d in &a.domains {
            if !valid_dns_name(d) {
                return Err(Error::invalid(
                    "tls.acme.domains",
                    format!(
                        "{d:?} is not a DNS name such as gate.example.com (no wildcards, no IP addresses)"
                    ),
                ));
            }
        }
        for c in &a.contact {
            if !c.starts_with("mailto:") || !c.contains('@') {
                return Err(Error::invalid(
                    "tls.acme.contact",
                    format!("{c:?} must be a mailto: URL such as mailto:ops@example.com"),
                ));
            }
        }
        if !a.directory_url.starts_with("https://") {
            return Err(Error::invalid(
                "tls.acme.directory_url",
                "must be an https:// URL (RFC 8555 requires HTTPS)",
            ));
        }
        match a.challenge.as_str() {
            "tls-alpn-01" => {}
            "http-01" if t.http_listen.is_some() => {}
            "http-01" => {
                return Err(Error::invalid(
                    "tls.acme.challenge",
                    "http-01 is answered on the plain-HTTP listener: set tls.http_listen (e.g. 0.0.0.0:80)",
                ));
            }
            other => {
                return Err(Error::invalid(
                    "tls.acme.challenge",
                    format!("{other:?} is not offered: use tls-alpn-01 or http-01"),
                ));
            }
        }
        if a.timeout_secs == 0 || a.timeout_secs > 3600 || a.retry_secs == 0 {
            return Err(Error::invalid(
                "tls.acme",
                "timeout_secs must be between 1 and 3600, retry_secs at least 1",
            ));
        }
        Ok(())
    }

    /// Refuses plain HTTP on anything but loopback, unless explicitly allowed.
    pub fn check_transport(&self) -> Result<()> {
        let addr = self.listen_addr()?;
        if !addr.ip().is_loopback() && !self.tls_enabled() && !self.danger_insecure_http {
            return Err(Error::invalid(
                "listen",
                format!(
                    "{addr} is not a loopback address: configure TLS, either ACME \
                     (--acme-domain / tls.acme.domains) or certificate files (tls.cert_file and \
                     tls.key_file), or pass --danger-insecure-http if a TLS proxy sits in front"
                ),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets masked (none are held today,
    /// but paths to key material are shown as paths, never contents).
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

const DAY: i64 = 86_400;
const MONTH: i64 = 30 * DAY;

/// A file that does not deserialize: `key: what was wrong (file line N)`,
/// the key found from the error's position (its line and the `[table]`
/// above it).
fn file_error(path: &std::path::Path, text: &str, e: &toml::de::Error) -> Error {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let what = plain_type_error(e.message());
    let Some(span) = e.span() else {
        return Error::invalid("config", format!("{what} ({name})"));
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    let table = text
        .lines()
        .take(line_no)
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && !l.starts_with("[[")).then(|| l.trim_matches(['[', ']', ' ']))
        })
        .last();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let full = match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k.to_string(),
        (Some(t), None) => t.to_string(),
        (None, None) => String::new(),
    };
    // The field names a configuration key when it is one (a `'static` name).
    let field = ENV_KEYS
        .iter()
        .map(|(_, k)| *k)
        .find(|k| *k == full)
        .unwrap_or("config");
    let shown = if field == "config" && !full.is_empty() {
        format!("{full}: {what}")
    } else {
        what
    };
    Error::invalid(field, format!("{shown} ({name} line {line_no})"))
}

/// Serde's "invalid type: string \"twelve\", expected usize" in an operator's
/// words: "expected a whole number, got \"twelve\"".
fn plain_type_error(msg: &str) -> String {
    let body = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "));
    let Some((got, expected)) = body.and_then(|b| b.split_once(", expected ")) else {
        return msg.trim().to_string();
    };
    let expected = match expected.trim() {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number (0 or more)",
        "isize" | "i64" | "i32" | "i16" | "i8" | "an integer" => "a whole number",
        "a boolean" => "true or false",
        "f64" | "f32" => "a number",
        other => other,
    };
    let got = got.trim();
    let got = ["string ", "integer ", "boolean ", "floating point "]
        .iter()
        .find_map(|p| got.strip_prefix(p))
        .map_or(got, |v| v)
        .trim_matches('`');
    format!("expected {expected}, got {got}")
}

/// A DNS name a public CA would issue for: labels of letters, digits and
/// hyphens, at least two of them.
fn valid_dns_name(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fn env_value(raw: &str) -> toml::Value {
    if let Ok(b) = raw.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    toml::Value::String(raw.to_string())
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn printed_settings_say_a_secret_is_set_and_confirm_no_guess() {
        let s = Settings::load(
            None,
            env(&[
                ("GATEHOUSE_SMTP_PASSWORD", "hunter2-smtp"),
                ("GATEHOUSE_SMS_SECRET", "gw-secret"),
            ]),
        )
        .unwrap();
        let printed = toml::to_string(&s).unwrap();
        let h = hex::encode(&crate::crypto::sha256(b"hunter2-smtp")[..4]);
        assert!(!printed.contains(&h), "{printed}");
        assert!(!printed.contains("sha256"));
        assert!(!printed.contains("hunter2") && !printed.contains("gw-secret"));
        assert_eq!(printed.matches("******** (set)").count(), 2, "{printed}");
    }

    #[test]
    fn ipv6_prefix_and_daily_code_cap_are_bounded() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(
            (s.rate_limit.ipv6_prefix, s.rate_limit.codes_per_day),
            (64, 20)
        );
        for (k, v) in [
            ("GATEHOUSE_RATE_LIMIT_IPV6_PREFIX", "0"),
            ("GATEHOUSE_RATE_LIMIT_IPV6_PREFIX", "129"),
            ("GATEHOUSE_RATE_LIMIT_CODES_PER_DAY", "0"),
        ] {
            assert!(Settings::load(None, env(&[(k, v)])).is_err(), "{k}={v}");
        }
        let s = Settings::load(None, env(&[("GATEHOUSE_RATE_LIMIT_IPV6_PREFIX", "56")])).unwrap();
        assert_eq!(s.rate_limit.ipv6_prefix, 56);
    }

    #[test]
    fn defaults_are_safe() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.password.argon2_memory_kib, 19_456);
        assert!(s.check_transport().is_ok());
    }

    #[test]
    fn a_wrong_type_names_the_key_and_the_line_or_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gatehouse.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:1\"\n\n[password]\nargon2_iterations = 2\nmin_length = \"twelve\"\n",
        )
        .unwrap();
        let e = Settings::load(Some(&p), env(&[]))
            .unwrap_err()
            .public_message();
        assert_eq!(
            e,
            "password.min_length: expected a whole number (0 or more), got \"twelve\" \
             (gatehouse.toml line 5)"
        );
        let e = Settings::load(None, env(&[("GATEHOUSE_PASSWORD_MIN_LENGTH", "twelve")]))
            .unwrap_err()
            .public_message();
        assert_eq!(
            e,
            "password.min_length: expected a whole number (0 or more), got \"twelve\" \
             (from the environment variable GATEHOUSE_PASSWORD_MIN_LENGTH)"
        );
        let e = Settings::load(None, env(&[("GATEHOUSE_DANGER_INSECURE_HTTP", "yes")]))
            .unwrap_err()
            .public_message();
        assert!(e.contains("expected true or false, got \"yes\""), "{e}");
        // Text that looks like a number is text where text is wanted.
        let s = Settings::load(None, env(&[("GATEHOUSE_TOKENS_AUDIENCE", "1234")])).unwrap();
        assert_eq!(s.tokens.audience, "1234");
    }

    #[test]
    fn listen_takes_a_host_name_or_says_what_to_use() {
        let with = |l: &str| Settings {
            listen: l.into(),
            ..Default::default()
        };
        assert_eq!(
            with("localhost:8085").listen_addr().unwrap(),
            "127.0.0.1:8085".parse::<SocketAddr>().unwrap()
        );
        assert!(with("localhost:8085").check_transport().is_ok());
        let e = with("localhost")
            .listen_addr()
            .unwrap_err()
            .public_message();
        assert!(
            e.contains("has no port; use an IP:port such as 127.0.0.1:8080"),
            "{e}"
        );
        let e = with("no-such-host.invalid:8085")
            .listen_addr()
            .unwrap_err()
            .public_message();
        assert!(e.contains("use an IP:port such as 127.0.0.1:8085"), "{e}");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let e = Settings::load(Some(&p), env(&[])).unwrap_err().to_string();
        assert!(e.contains("listen_port"), "{e}");
    }

    #[test]
    fn env_overrides_and_unknown_env_is_refused() {
        let s =
            Settings::load(None, env(&[("GATEHOUSE_SESSION_IDLE_TIMEOUT_SECS", "60")])).unwrap();
        assert_eq!(s.session.idle_timeout_secs, 60);
        let e = Settings::load(None, env(&[("GATEHOUSE_LISTNE", "x")])).unwrap_err();
        assert!(e.to_string().contains("GATEHOUSE_LISTNE"));
    }

    #[test]
    fn lockout_failures_are_bounded() {
        let e = Settings::load(None, env(&[("GATEHOUSE_LOCKOUT_MAX_FAILURES", "1000")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 100"), "{e}");
        assert!(Settings::load(None, env(&[("GATEHOUSE_LOCKOUT_MAX_FAILURES", "100")])).is_ok());
    }

    #[test]
    fn secrets_are_masked_when_printed() {
        let s = Settings::load(
            None,
            env(&[("GATEHOUSE_SMTP_PASSWORD", "hunter2-very-secret")]),
        )
        .unwrap();
        assert_eq!(s.smtp.password.expose(), "hunter2-very-secret");
        let shown = s.to_masked_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("********"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn sms_gateway_credentials_in_the_url_and_fields_are_not_printed() {
        let mut s = Settings::default();
        s.sms.url = "https://user:pw-SECRET1@gw.example:8443/send?key=SECRETKEY123".into();
        s.sms
            .fields
            .insert("api_key".into(), "FIELDSECRET999".into());
        let shown = s.to_masked_toml();
        for secret in [
            "pw-SECRET1",
            "user:",
            "SECRETKEY123",
            "FIELDSECRET999",
            "/send",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
            assert!(!format!("{s:?}").contains(secret), "{secret} in Debug");
        }
        assert!(
            shown.contains(
                "url = \"https://gw.example:8443 (credentials, path and query not shown)\""
            ),
            "{shown}"
        );
        assert!(
            shown.contains("Body = \"Your Gatehouse code is {code}\""),
            "{shown}"
        );
        assert!(shown.contains("To = \"{to}\""), "{shown}");
        assert!(shown.contains("api_key = \"******** (set)\""), "{shown}");
        assert_eq!(shown_sms_url("https://gw.example/"), "https://gw.example");
        assert_eq!(shown_sms_url(""), "");
        // Changes to what is masked are still noticed, by fingerprint.
        let keys: Vec<String> = s.secrets().into_iter().map(|(k, _)| k).collect();
        assert!(
            keys.contains(&"sms.url".to_string())
                && keys.contains(&"sms.fields.api_key".to_string())
        );
        assert!(!keys.contains(&"sms.fields.Body".to_string()));
    }

    #[test]
    fn tls_settings_are_checked() {
        let mut s = Settings::default();
        s.tls.min_version = "1.0".into();
        assert!(s.validate().is_err());
        s.tls.min_version = "1.3".into();
        assert!(s.validate().is_ok());
        s.tls.acme.domains = vec!["gate.example.com".into()];
        assert!(s.validate().is_ok());
        assert!(s.tls_enabled());
        s.tls.cert_file = Some("c.pem".into());
        s.tls.key_file = Some("k.pem".into());
        assert!(s.validate().is_err(), "ACME and files at once");
        s.tls.cert_file = None;
        s.tls.key_file = None;
        for bad in [
            "*.example.com",
            "localhost",
            "10.0.0.1",
            "a..b",
            "-a.example.com",
        ] {
            s.tls.acme.domains = vec![bad.into()];
            assert!(s.validate().is_err(), "{bad}");
        }
        s.tls.acme.domains = vec!["gate.example.com".into()];
        s.tls.acme.directory_url = "http://ca.example/dir".into();
        assert!(s.validate().is_err(), "plain-HTTP directory");
    }

    #[test]
    fn non_loopback_plain_http_is_refused() {
        let mut s = Settings {
            listen: "0.0.0.0:8080".into(),
            ..Settings::default()
        };
        assert!(s.check_transport().is_err());
        s.danger_insecure_http = true;
        assert!(s.check_transport().is_ok());
    }
}
