//! Single sign-on: connections to customers' identity providers, the SSO
//! status (enabled, enforcement, test group, excluded users) with its rollout
//! rules, sign-ins in flight, and turning a verified IdP identity into a
//! Gatehouse user (linked by the IdP's subject, just-in-time by verified
//! e-mail). Protocols live in submodules: `oidc`, and `saml` and `wsfed`
//! over our own `xmldsig`.

pub mod oidc;
pub mod saml;
pub mod wsfed;
pub mod xml_budget;
pub mod xmldsig;

use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::audit::{self, NewEvent, Outcome, Source};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::{self, Email, Role, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Saml,
    Oidc,
    Wsfed,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Saml => "saml",
            Protocol::Oidc => "oidc",
            Protocol::Wsfed => "wsfed",
        }
    }
}

/// A provider preset: labels, defaults and help in the IdP's own words.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preset {
    pub protocol: Protocol,
    pub provider: &'static str,
    pub label: &'static str,
    /// The issuer every connection of this preset uses (Google), if fixed.
    pub fixed_issuer: Option<&'static str>,
    pub issuer_label: &'static str,
    pub issuer_help: &'static str,
    pub client_id_label: &'static str,
    pub client_secret_label: &'static str,
    /// SAML: the IdP's single sign-on URL and signing certificate, in its words.
    pub sso_url_label: &'static str,
    pub certificate_label: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        protocol: Protocol::Oidc,
        provider: "google",
        label: "Google",
        fixed_issuer: Some("https://accounts.google.com"),
        issuer_label: "Issuer",
        issuer_help: "Always https://accounts.google.com. Create an OAuth client ID of type \
                      \"Web application\" in the Google Cloud console.",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "okta",
        label: "Okta",
        fixed_issuer: None,
        issuer_label: "Issuer URI (authorization server)",
        issuer_help: "From Security → API → Authorization Servers, e.g. \
                      https://your-org.okta.com/oauth2/default. Create an OIDC \"Web Application\" app integration.",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "azure",
        label: "Azure AD / Entra ID",
        fixed_issuer: None,
        issuer_label: "Issuer (OpenID Connect metadata document without /.well-known/…)",
        issuer_help: "https://login.microsoftonline.com/{Directory (tenant) ID}/v2.0. Register an \
                      application; add the redirect URI under Authentication → Web.",
        client_id_label: "Application (client) ID",
        client_secret_label: "Client secret value",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "ping",
        label: "Ping Identity",
        fixed_issuer: None,
        issuer_label: "Issuer",
        issuer_help: "PingOne: https://auth.pingone.com/{environment ID}/as (Applications → \
                      Configuration → Issuer).",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "other",
        label: "Other OpenID provider",
        fixed_issuer: None,
        issuer_label: "Issuer URL",
        issuer_help: "The provider's issuer; Gatehouse reads {issuer}/.well-known/openid-configuration.",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    saml_preset(
        "okta",
        "Okta",
        "Identity Provider Issuer",
        "Okta Single Sign-On URL",
        "X.509 Certificate",
        "Okta admin → Applications → your SAML app → Sign On → View SAML setup instructions.",
    ),
    saml_preset(
        "onelogin",
        "OneLogin",
        "Issuer URL",
        "SAML 2.0 Endpoint (HTTP)",
        "X.509 Certificate",
        "OneLogin → Applications → your app → SSO tab.",
    ),
    saml_preset(
        "azure",
        "Azure AD / Entra ID",
        "Microsoft Entra Identifier",
        "Login URL",
        "Certificate (Base64)",
        "Enterprise applications → your app → Single sign-on → Set up (section 3 and 4).",
    ),
    saml_preset(
        "google",
        "Google Workspace",
        "Entity ID",
        "SSO URL",
        "Certificate",
        "Admin console → Apps → Web and mobile apps → Add custom SAML app → Google IdP information.",
    ),
    saml_preset(
        "ping",
        "Ping Identity",
        "Issuer",
        "Single Signon Service",
        "Signing Certificate",
        "PingOne → Applications → your SAML app → Configuration.",
    ),
    wsfed_preset(
        "azure",
        "Azure AD / ADFS",
        "WS-Federation sign-on endpoint",
        "ADFS: https://adfs.example.com/adfs/ls/ ; Entra ID: https://login.microsoftonline.com/{tenant}/wsfed. \
         Or import the federation metadata (…/FederationMetadata/2007-06/FederationMetadata.xml).",
    ),
    wsfed_preset(
        "other",
        "Other WS-Federation IdP",
        "Sign-on endpoint URL",
        "Or import the IdP's federation metadata document from a URL or an uploaded file.",
    ),
    saml_preset(
        "other",
        "Other SAML IdP",
        "IdP entity ID (Issuer)",
        "IdP single sign-on URL (HTTP-Redirect)",
        "IdP signing certificate (PEM)",
        "Or import the IdP's metadata from a URL or an uploaded XML file.",
    ),
];

const fn wsfed_preset(
    provider: &'static str,
    label: &'static str,
    sso_url_label: &'static str,
    help: &'static str,
) -> Preset {
    Preset {
        protocol: Protocol::Wsfed,
        provider,
        label,
        fixed_issuer: None,
        issuer_label: "Issuer (the IdP's entity ID)",
        issuer_help: help,
        client_id_label: "",
        client_secret_label: "",
        sso_url_label,
        certificate_label: "Token-signing certificate (PEM)",
    }
}

const fn saml_preset(
    provider: &'static str,
    label: &'static str,
    issuer_label: &'static str,
    sso_url_label: &'static str,
    certificate_label: &'static str,
    help: &'static str,
) -> Preset {
    Preset {
        protocol: Protocol::Saml,
        provider,
        label,
        fixed_issuer: None,
        issuer_label,
        issuer_help: help,
        client_id_label: "",
        client_secret_label: "",
        sso_url_label,
        certificate_label,
    }
}

pub fn preset(protocol: Protocol, provider: &str) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .find(|p| p.protocol == protocol && p.provider == provider)
}

/// IdP attribute value → Gatehouse role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    pub value: String,
    pub role: Role,
}

/// The outcome of the last "Test connection" run.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestResult {
    pub at: Timestamp,
    pub ok: bool,
    /// The validation error in plain words, when it failed.
    pub error: Option<String>,
    /// What the IdP asserted (and the role it maps to), when it succeeded.
    #[schema(value_type = Object)]
    pub claims: serde_json::Value,
    pub by: String,
}

/// A connection to one identity provider. Stored sealed as a whole (the
/// client secret included); the secret never leaves the domain.
#[derive(Clone, Serialize, Deserialize)]
pub struct Connection {
    pub id: String,
    pub protocol: Protocol,
    pub provider: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// Accept e-mail addresses the IdP does not mark as verified.
    pub trust_unverified_email: bool,
    /// Create a user at the first sign-in when none has the e-mail address.
    pub jit: bool,
    /// The claim holding groups or roles (e.g. `groups`).
    pub role_attribute: String,
    pub role_rules: Vec<RoleRule>,
    pub default_role: Role,
    pub last_test: Option<TestResult>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// SAML: the IdP's HTTP-Redirect single sign-on URL.
    #[serde(default)]
    pub sso_url: String,
    /// SAML: the IdP's signing certificates (PEM), newest tried first.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// SAML: accept unsolicited (IdP-initiated) responses.
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// SAML: accept rsa-sha1 signatures and SHA-1 digests.
    #[serde(default)]
    pub allow_sha1: bool,
    #[serde(default = "default_skew")]
    pub clock_skew_secs: i64,
    /// WS-Federation: the realm (`wtrealm`) the assertions are for.
    #[serde(default)]
    pub realm: String,
    /// SAML: sign AuthnRequests with the SP key (its certificate is in the SP metadata).
    #[serde(default)]
    pub sign_requests: bool,
    /// E-mail domains whose users may sign in (empty: any). For Google the
    /// `hd` claim must be one of them too, and just-in-time creation stays
    /// off until one is set.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

fn default_skew() -> i64 {
    120
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The role the IdP's attribute values map to (the highest matching rule).
    pub fn mapped_role(&self, values: &[String]) -> Role {
        let mut role = self.default_role;
        for r in &self.role_rules {
            if values.iter().any(|v| v == &r.value) && r.role == Role::Admin {
                role = Role::Admin;
            }
        }
        role
    }
    pub fn tested_ok(&self) -> bool {
        self.last_test.as_ref().is_some_and(|t| t.ok)
    }
}

/// What an admin sends to create or change a connection.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    /// Short slug used in the connection's URLs (`okta`, `google`, …); create only.
    pub id: Option<String>,
    pub protocol: Protocol,
    #[serde(default = "default_provider")]
    pub provider: String,
    pub name: String,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Left out on update: the stored secret is kept.
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub trust_unverified_email: Option<bool>,
    pub jit: Option<bool>,
    pub role_attribute: Option<String>,
    pub role_rules: Option<Vec<RoleRule>>,
    pub default_role: Option<Role>,
    /// SAML: the IdP's single sign-on URL (HTTP-Redirect binding); for
    /// WS-Federation the sign-on endpoint, also accepted as `sign_on_url`.
    #[serde(alias = "sign_on_url")]
    pub sso_url: Option<String>,
    /// SAML: PEM certificates (up to 2 in the console forms, more here).
    pub certificates: Option<Vec<String>>,
    /// SAML: fill issuer, SSO URL and certificates from the IdP's metadata.
    pub metadata_url: Option<String>,
    pub metadata_xml: Option<String>,
    pub allow_idp_initiated: Option<bool>,
    pub allow_sha1: Option<bool>,
    /// SAML: tolerated clock difference (default 120 s).
    pub clock_skew_secs: Option<i64>,
    /// WS-Federation: the realm (`wtrealm`); default `{public_url}/sso/wsfed/{id}`.
    pub realm: Option<String>,
    /// SAML: sign AuthnRequests (the IdP reads the certificate from the SP metadata).
    pub sign_requests: Option<bool>,
    /// E-mail domains whose users may sign in (empty: any). Google: the
    /// Workspace domains (`hd`); needed before `jit` may be on.
    pub allowed_domains: Option<Vec<String>>,
}

fn default_provider() -> String {
    "other".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Everyone may still sign in with e-mail and password.
    Off,
    /// Members of the test group must use SSO.
    TestGroup,
    /// Everyone but the SSO-excluded users must use SSO.
    Enforced,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Off => "off",
            Enforcement::TestGroup => "test_group",
            Enforcement::Enforced => "enforced",
        }
    }
}

/// The SSO status. The owner is always excluded (added on every write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoSettings {
    pub enabled: bool,
    pub enforcement: Enforcement,
    pub test_group: Vec<UserId>,
    pub excluded_users: Vec<UserId>,
}

impl Default for SsoSettings {
    fn default() -> Self {
        SsoSettings {
            enabled: false,
            enforcement: Enforcement::Off,
            test_group: Vec::new(),
            excluded_users: Vec::new(),
        }
    }
}

/// Users are named by id or e-mail address.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoSettingsInput {
    pub enabled: bool,
    pub enforcement: Enforcement,
    #[serde(default)]
    pub test_group: Vec<String>,
    #[serde(default)]
    pub excluded_users: Vec<String>,
}

const SETTINGS_KEY: &[u8] = b"sso";
/// How long a sign-in may stay at the IdP.
pub const PENDING_TTL_SECS: i64 = 600;

pub fn settings(r: &impl Reader) -> Result<SsoSettings> {
    let mut s: SsoSettings = r.get(Table::Policy, SETTINGS_KEY)?.unwrap_or_default();
    if let Some(owner) = r.get::<String>(Table::Meta, b"owner_id")?
        && let Ok(id) = UserId::parse(&owner)
        && !s.excluded_users.contains(&id)
    {
        s.excluded_users.insert(0, id);
    }
    Ok(s)
}

pub fn is_excluded(s: &SsoSettings, user: &User) -> bool {
    user.role == Role::Owner || s.excluded_users.contains(&user.id)
}

/// Whether `user` may still sign in with e-mail and password.
pub fn password_allowed(r: &impl Reader, user: &User) -> Result<bool> {
    let s = settings(r)?;
    if !s.enabled || is_excluded(&s, user) {
        return Ok(true);
    }
    Ok(match s.enforcement {
        Enforcement::Off => true,
        Enforcement::TestGroup => !s.test_group.contains(&user.id),
        Enforcement::Enforced => false,
    })
}

fn resolve_user(svc: &Service, r: &impl Reader, who: &str, field: &'static str) -> Result<User> {
    let who = who.trim();
    let found = if who.starts_with("usr_") {
        UserId::parse(who)
            .ok()
            .and_then(|id| identity::get(r, &id).ok())
    } else {
        match Email::parse(who) {
            Ok(e) => identity::find_by_email(svc, r, &e)?,
            Err(_) => None,
        }
    };
    found.ok_or_else(|| {
        Error::invalid(
            field,
            format!("{who:?} is not a user (give an id or e-mail)"),
        )
    })
}

/// Replaces the SSO status, after the rollout rules: enabling needs a
/// connection and a second excluded admin besides the owner; enforcement
/// needs a successful test sign-in through every connection. Returns the
/// settings in force and warnings for the admin.
pub fn update_settings(
    svc: &Service,
    by: &Principal,
    src: &Source,
    input: SsoSettingsInput,
) -> Result<(SsoSettings, Vec<String>)> {
    let mut tx = svc.store.write()?;
    let resolve = |list: &[String], field| -> Result<Vec<User>> {
        let mut out: Vec<User> = Vec::new();
        for w in list {
            let u = resolve_user(svc, &tx, w, field)?;
            if !out.iter().any(|x| x.id == u.id) {
                out.push(u);
            }
        }
        Ok(out)
    };
    let excluded = resolve(&input.excluded_users, "excluded_users")?;
    let test_group = resolve(&input.test_group, "test_group")?;
    let mut next = SsoSettings {
        enabled: input.enabled,
        enforcement: input.enforcement,
        test_group: test_group.iter().map(|u| u.id.clone()).collect(),
        excluded_users: excluded
            .iter()
            .filter(|u| u.role != Role::Owner)
            .map(|u| u.id.clone())
            .collect(),
    };
    let connections = list_in(&tx)?;
    if next.enabled {
        if connections.is_empty() {
            return Err(Error::invalid(
                "enabled",
                "add an SSO connection before enabling SSO",
            ));
        }
        let admins = excluded
            .iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .count();
        if admins == 0 {
            return Err(Error::invalid(
                "excluded_users",
                "enabling SSO needs at least one SSO-excluded admin besides the owner, so that \
                 someone can still sign in with a password if the identity provider fails",
            ));
        }
    }
    if next.enforcement != Enforcement::Off {
        if !next.enabled {
            return Err(Error::invalid(
                "enforcement",
                "enable SSO before enforcing it",
            ));
        }
        let untested: Vec<&str> = connections
            .iter()
            .filter(|c| !c.tested_ok())
            .map(|c| c.id.as_str())
            .collect();
        if !untested.is_empty() {
            return Err(Error::invalid(
                "enforcement",
                format!(
                    "run a successful test sign-in (Test connection) through every connection first; \
                     not yet: {}",
                    untested.join(", ")
                ),
            ));
        }
        if next.enforcement == Enforcement::TestGroup && next.test_group.is_empty() {
            return Err(Error::invalid(
                "test_group",
                "name at least one user who must use SSO",
            ));
        }
    }
    let before = settings(&tx)?;
    let emails = |ids: &[UserId]| -> Vec<String> {
        ids.iter()
            .filter_map(|id| identity::get(&tx, id).ok())
            .map(|u| u.email.as_str().to_string())
            .collect()
    };
    let mut fallback: Vec<UserId> = before
        .excluded_users
        .iter()
        .filter(|id| identity::get(&tx, id).is_ok_and(|u| u.role == Role::Owner))
        .cloned()
        .collect();
    fallback.extend(next.excluded_users.iter().cloned());
    let details = serde_json::json!({
        "enabled": next.enabled,
        "enforcement": next.enforcement.as_str(),
        "test_group": emails(&next.test_group),
        "excluded_users": emails(&next.excluded_users),
        "before": {"enabled": before.enabled, "enforcement": before.enforcement.as_str()},
    });
    let mut warnings = Vec::new();
    if next.enabled && next.enforcement != Enforcement::Off {
        warnings.push(format!(
            "Password sign-in now stops for {}. The fallback: SSO-excluded users ({}) keep \
             signing in with e-mail and password at /login, and `gatehouse recover EMAIL` on the \
             server resets the owner's password.",
            if next.enforcement == Enforcement::Enforced {
                "everyone who is not SSO-excluded"
            } else {
                "the test group"
            },
            emails(&fallback).join(", ")
        ));
    }
    tx.put(Table::Policy, SETTINGS_KEY, &next)?;
    let now = svc.now();
    audit::record(
        &mut tx,
        now,
        src,
        by.event("sso.settings_change", Outcome::Success)
            .details(details),
    )?;
    if before.enforcement != next.enforcement {
        audit::record(
            &mut tx,
            now,
            src,
            by.event("sso.enforcement_change", Outcome::Success)
                .details(serde_json::json!({"from": before.enforcement.as_str(), "to": next.enforcement.as_str()})),
        )?;
    }
    tx.commit()?;
    next = settings(&svc.store.read()?)?;
    Ok((next, warnings))
}

// ---- connections ----

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses a connection id from a URL path; anything malformed is not found.
pub fn parse_id(s: &str) -> Result<&str> {
    if valid_slug(s) {
        Ok(s)
    } else {
        Err(Error::NotFound("connection"))
    }
}

pub(crate) fn check_url(field: &'static str, raw: &str) -> Result<String> {
    let u = raw.trim().trim_end_matches('/').to_string();
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| u.starts_with(p) && matches!(u.as_bytes().get(p.len()), None | Some(b':' | b'/')));
    if !(u.starts_with("https://") || loopback) || u.len() > 500 || u.contains(char::is_whitespace)
    {
        return Err(Error::invalid(
            field,
            "must be an https:// URL (plain http only on loopback)",
        ));
    }
    Ok(u)
}

fn build(
    id: String,
    input: ConnectionInput,
    existing: Option<&Connection>,
    now: Timestamp,
) -> Result<Connection> {
    if let Some(e) = existing
        && e.protocol != input.protocol
    {
        return Err(Error::invalid(
            "protocol",
            "cannot change a connection's protocol; create a new connection",
        ));
    }
    let p = preset(input.protocol, &input.provider).ok_or_else(|| {
        Error::invalid(
            "provider",
            format!(
                "unknown provider for {}; use one of: {}",
                input.protocol.as_str(),
                PRESETS
                    .iter()
                    .filter(|p| p.protocol == input.protocol)
                    .map(|p| p.provider)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let name = crate::access::clean_name("name", &input.name)?;
    // SAML and WS-Federation share the IdP fields: entity ID, sign-on URL, certificates.
    let saml = input.protocol != Protocol::Oidc;
    let issuer = match (p.fixed_issuer, input.issuer.as_deref(), existing) {
        (Some(fixed), _, _) => fixed.to_string(),
        (None, Some(i), _) if saml && !i.trim().is_empty() && i.len() <= 500 => {
            i.trim().to_string()
        }
        (None, Some(i), _) if !saml => check_url("issuer", i)?,
        (None, None, Some(e)) => e.issuer.clone(),
        _ => {
            return Err(Error::invalid(
                "issuer",
                if saml {
                    "is required: the IdP's entity ID (or import its metadata)"
                } else {
                    "is required"
                },
            ));
        }
    };
    let (mut client_id, mut client_secret, mut scopes) = (String::new(), String::new(), Vec::new());
    let (mut sso_url, mut certificates, mut realm) = (String::new(), Vec::new(), String::new());
    if input.protocol == Protocol::Wsfed {
        realm = input
            .realm
            .clone()
            .filter(|r| !r.trim().is_empty())
            .or(existing.map(|e| e.realm.clone()))
            .unwrap_or_default()
            .trim()
            .to_string();
        if realm.is_empty() || realm.len() > 500 {
            return Err(Error::invalid(
                "realm",
                "is required (at most 500 characters): the wtrealm the IdP knows Gatehouse by",
            ));
        }
    }
    if saml {
        sso_url = match (input.sso_url.as_deref(), existing) {
            (Some(u), _) if !u.trim().is_empty() => check_url("sso_url", u)?,
            (_, Some(e)) => e.sso_url.clone(),
            _ => {
                return Err(Error::invalid(
                    "sso_url",
                    "is required: the IdP's single sign-on URL (or import its metadata)",
                ));
            }
        };
        certificates = input
            .certificates
            .filter(|c| !c.is_empty())
            .or(existing.map(|e| e.certificates.clone()))
            .unwrap_or_default();
        certificates.retain(|c| !c.trim().is_empty());
        if certificates.is_empty() || certificates.len() > 10 {
            return Err(Error::invalid(
                "certificates",
                "give 1 to 10 IdP signing certificates (PEM), or import the IdP's metadata",
            ));
        }
        let mut valid = 0;
        for (i, pem) in certificates.iter().enumerate() {
            let c = xmldsig::parse_certificate(pem).map_err(|m| {
                Error::invalid("certificates", format!("certificate {}: {m}", i + 1))
            })?;
            if c.not_after > now {
                valid += 1;
            }
        }
        if valid == 0 {
            return Err(Error::invalid(
                "certificates",
                "every certificate has expired; add the IdP's current signing certificate",
            ));
        }
    } else {
        client_id = match (input.client_id.as_deref(), existing) {
            (Some(c), _) if !c.trim().is_empty() && c.len() <= 300 => c.trim().to_string(),
            (Some(_), _) => {
                return Err(Error::invalid(
                    "client_id",
                    "is required (at most 300 characters)",
                ));
            }
            (None, Some(e)) => e.client_id.clone(),
            (None, None) => return Err(Error::invalid("client_id", "is required")),
        };
        client_secret = match (input.client_secret, existing) {
            (Some(s), _) if !s.is_empty() && s.len() <= 1000 => s,
            (Some(s), Some(e)) if s.is_empty() => e.client_secret.clone(),
            (None, Some(e)) => e.client_secret.clone(),
            _ => {
                return Err(Error::invalid(
                    "client_secret",
                    "is required: Gatehouse is a confidential client",
                ));
            }
        };
        scopes = input
            .scopes
            .or(existing.map(|e| e.scopes.clone()))
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
        scopes.retain(|s| !s.trim().is_empty());
        if let Some(bad) = scopes
            .iter()
            .find(|s| s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        {
            return Err(Error::invalid(
                "scopes",
                format!("{bad:?} is not a valid scope"),
            ));
        }
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
    }
    let role_rules = input
        .role_rules
        .or(existing.map(|e| e.role_rules.clone()))
        .unwrap_or_default();
    if role_rules.iter().any(|r| r.role == Role::Owner) {
        return Err(Error::invalid(
            "role_rules",
            "the owner role cannot be given by an IdP; map to \"admin\" or \"user\"",
        ));
    }
    let default_role = input
        .default_role
        .or(existing.map(|e| e.default_role))
        .unwrap_or(Role::User);
    if default_role == Role::Owner {
        return Err(Error::invalid(
            "default_role",
            "must be \"admin\" or \"user\"",
        ));
    }
    let role_attribute = input
        .role_attribute
        .or(existing.map(|e| e.role_attribute.clone()))
        .unwrap_or_else(|| "groups".into())
        .trim()
        .to_string();
    let clock_skew_secs = input
        .clock_skew_secs
        .or(existing.map(|e| e.clock_skew_secs))
        .unwrap_or_else(default_skew);
    if !(0..=600).contains(&clock_skew_secs) {
        return Err(Error::invalid(
            "clock_skew_secs",
            "must be 0 to 600 seconds",
        ));
    }
    let allowed_domains = match input.allowed_domains {
        Some(list) => clean_domains(list)?,
        None => existing
            .map(|e| e.allowed_domains.clone())
            .unwrap_or_default(),
    };
    let google = p.provider == "google" && input.protocol == Protocol::Oidc;
    let jit = match input.jit.or(existing.map(|e| e.jit)) {
        Some(true) if google && allowed_domains.is_empty() => {
            if input.jit == Some(true) {
                return Err(Error::invalid(
                    "jit",
                    "just-in-time creation through Google needs allowed_domains (your Google \
                     Workspace domains): otherwise anyone with a Google account could sign in",
                ));
            }
            false
        }
        Some(j) => j,
        None => !google,
    };
    // A changed identity provider must be tested again.
    let last_test = existing
        .filter(|e| {
            e.issuer == issuer
                && e.client_id == client_id
                && e.sso_url == sso_url
                && e.certificates == certificates
                && e.realm == realm
        })
        .and_then(|e| e.last_test.clone());
    Ok(Connection {
        id,
        protocol: input.protocol,
        provider: p.provider.to_string(),
        name,
        issuer,
        client_id,
        client_secret,
        scopes,
        trust_unverified_email: input
            .trust_unverified_email
            .or(existing.map(|e| e.trust_unverified_email))
            .unwrap_or(false),
        jit,
        allowed_domains,
        role_attribute,
        role_rules,
        default_role,
        last_test,
        created_at: existing.map(|e| e.created_at).unwrap_or(now),
        updated_at: now,
        sso_url,
        certificates,
        allow_idp_initiated: input
            .allow_idp_initiated
            .or(existing.map(|e| e.allow_idp_initiated))
            .unwrap_or(false),
        allow_sha1: input
            .allow_sha1
            .or(existing.map(|e| e.allow_sha1))
            .unwrap_or(false),
        clock_skew_secs,
        realm,
        sign_requests: input
            .sign_requests
            .or(existing.map(|e| e.sign_requests))
            .unwrap_or(false)
            && input.protocol == Protocol::Saml,
    })
}

/// Allowed domains: lower-case DNS names, without `@`, at most 50.
fn clean_domains(list: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for d in list {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if d.is_empty() {
            continue;
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if d.len() > 253 || !d.contains('.') || !d.split('.').all(label_ok) {
            return Err(Error::invalid(
                "allowed_domains",
                format!("{d:?} is not a domain name (e.g. \"example.com\")"),
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.len() > 50 {
        return Err(Error::invalid("allowed_domains", "at most 50 domains"));
    }
    Ok(out)
}

fn list_in(r: &impl Reader) -> Result<Vec<Connection>> {
    Ok(r.scan::<Connection>(Table::SsoConnections, b"")?
        .into_iter()
        .map(|(_, c)| c)
        .collect())
}

pub fn list(svc: &Service) -> Result<Vec<Connection>> {
    list_in(&svc.store.read()?)
}

pub fn get(r: &impl Reader, id: &str) -> Result<Connection> {
    r.get::<Connection>(Table::SsoConnections, id.as_bytes())?
        .ok_or(Error::NotFound("connection"))
}

/// What changed, for the audit log (never the secret itself).
fn change_details(c: &Connection, secret_changed: bool) -> serde_json::Value {
    serde_json::json!({
        "protocol": c.protocol.as_str(), "provider": c.provider, "name": c.name,
        "issuer": c.issuer, "client_id": c.client_id, "scopes": c.scopes,
        "jit": c.jit, "trust_unverified_email": c.trust_unverified_email,
        "role_attribute": c.role_attribute, "role_rules": c.role_rules,
        "default_role": c.default_role.as_str(), "client_secret_changed": secret_changed,
        "sso_url": c.sso_url, "certificates": c.certificates.len(),
        "allow_idp_initiated": c.allow_idp_initiated, "allow_sha1": c.allow_sha1,
        "clock_skew_secs": c.clock_skew_secs, "realm": c.realm, "sign_requests": c.sign_requests,
        "allowed_domains": c.allowed_domains,
    })
}

pub async fn create(
    svc: &Service,
    by: &Principal,
    src: &Source,
    mut input: ConnectionInput,
) -> Result<Connection> {
    if input.protocol != Protocol::Oidc {
        saml::import_metadata(svc, &mut input).await?;
    }
    let id = input.id.take().unwrap_or_default();
    if input.protocol == Protocol::Wsfed
        && input.realm.as_deref().is_none_or(|r| r.trim().is_empty())
        && valid_slug(&id)
    {
        input.realm = Some(wsfed::default_realm(svc, &id));
    }
    if !valid_slug(&id) {
        return Err(Error::invalid(
            "id",
            "must be 1–40 lower-case letters, digits or dashes, starting with a letter or digit (e.g. \"okta\")",
        ));
    }
    let now = svc.now();
    let c = build(id, input, None, now)?;
    grants_only_what_caller_holds(svc, by, &c)?;
    let mut tx = svc.store.write()?;
    if tx
        .get::<Connection>(Table::SsoConnections, c.id.as_bytes())?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "A connection with the id {:?} exists already.",
            c.id
        )));
    }
    tx.put(Table::SsoConnections, c.id.as_bytes(), &c)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("sso.connection_create", Outcome::Success)
            .target(c.id.clone())
            .details(change_details(&c, true)),
    )?;
    tx.commit()?;
    Ok(c)
}

pub async fn update(
    svc: &Service,
    by: &Principal,
    src: &Source,
    id: &str,
    mut input: ConnectionInput,
) -> Result<Connection> {
    if input.protocol != Protocol::Oidc {
        saml::import_metadata(svc, &mut input).await?;
    }
    if input.id.as_deref().is_some_and(|i| i != id) {
        return Err(Error::invalid(
            "id",
            "a connection's id cannot change; create a new connection",
        ));
    }
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let before = get(&tx, id)?;
    let secret_changed = input
        .client_secret
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    let c = build(id.to_string(), input, Some(&before), now)?;
    grants_only_what_caller_holds(svc, by, &c)?;
    tx.put(Table::SsoConnections, c.id.as_bytes(), &c)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("sso.connection_update", Outcome::Success)
            .target(c.id.clone())
            .details(change_details(&c, secret_changed)),
    )?;
    tx.commit()?;
    oidc::forget_metadata(svc, id);
    Ok(c)
}

pub fn delete(svc: &Service, by: &Principal, src: &Source, id: &str) -> Result<()> {
    let mut tx = svc.store.write()?;
    get(&tx, id)?;
    if settings(&tx)?.enabled && list_in(&tx)?.len() == 1 {
        return Err(Error::Conflict(
            "This is the last SSO connection and SSO is enabled: disable SSO first.".into(),
        ));
    }
    tx.delete(Table::SsoConnections, id.as_bytes())?;
    for (k, _) in tx.scan::<String>(Table::SsoLinks, format!("{id}\0").as_bytes())? {
        tx.delete(Table::SsoLinks, &k)?;
    }
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("sso.connection_delete", Outcome::Success)
            .target(id.to_string()),
    )?;
    tx.commit()?;
    oidc::forget_metadata(svc, id);
    Ok(())
}

/// The values an admin pastes into the IdP for a connection id.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SpValues {
    pub sp_entity_id: String,
    pub acs_url: String,
    pub acs_url_idp_initiated: String,
    pub sp_metadata_url: String,
    pub oidc_redirect_uri: String,
    pub oidc_login_url: String,
    pub wsfed_reply_url: String,
}

pub fn sp_values(svc: &Service, id: &str) -> SpValues {
    let base = svc.public_url();
    SpValues {
        sp_entity_id: format!("{base}/sso/saml/{id}/metadata"),
        acs_url: format!("{base}/sso/saml/{id}/acs"),
        acs_url_idp_initiated: format!("{base}/sso/saml/{id}/acs"),
        sp_metadata_url: format!("{base}/sso/saml/{id}/metadata"),
        oidc_redirect_uri: format!("{base}/sso/oidc/{id}/callback"),
        oidc_login_url: format!("{base}/sso/oidc/{id}/login"),
        wsfed_reply_url: format!("{base}/sso/wsfed/{id}/callback"),
    }
}

/// Connections offered on the sign-in page (none while SSO is disabled).
pub fn sign_in_options(svc: &Service) -> Result<Vec<(String, String, Protocol)>> {
    let r = svc.store.read()?;
    if !settings(&r)?.enabled {
        return Ok(Vec::new());
    }
    Ok(list_in(&r)?
        .into_iter()
        .map(|c| (c.id, c.name, c.protocol))
        .collect())
}

// ---- sign-ins in flight ----

/// The connection a sign-in starts through: it must exist with `protocol`,
/// and SSO must be enabled unless an admin is testing it.
pub(crate) fn startable(
    svc: &Service,
    id: &str,
    protocol: Protocol,
    testing: bool,
) -> Result<Connection> {
    let r = svc.store.read()?;
    let conn = get(&r, id)?;
    if conn.protocol != protocol {
        return Err(Error::NotFound("connection"));
    }
    if !testing && !settings(&r)?.enabled {
        return Err(Error::Forbidden(
            "Single sign-on is not enabled; sign in with your e-mail and password.".into(),
        ));
    }
    Ok(conn)
}

/// Percent-encodes all but RFC 3986's unreserved characters: the query
/// values sent to an IdP (a signed SAML query is verified exactly as sent).
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A sign-in sent to the IdP, keyed by the SHA-256 of its `state`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    pub connection: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub rd: String,
    /// Set when an admin runs "Test connection": nobody is signed in.
    pub test_by: Option<UserId>,
    pub created_at: Timestamp,
    /// Who started it (`client_key`), for the per-address cap.
    #[serde(default)]
    pub client: String,
}

/// Sign-ins started by each client within the last `PENDING_TTL_SECS`
/// (their start times), for the per-address cap. In memory: a start whose
/// commit failed ages out with the others; after a restart the global cap
/// still holds and the stored ones expire within 10 minutes.
#[derive(Default)]
pub struct PendingCounts {
    by_client: std::sync::Mutex<std::collections::HashMap<String, Vec<Timestamp>>>,
    /// When expired sign-ins were last swept because the store was full.
    last_sweep: std::sync::atomic::AtomicI64,
}

impl PendingCounts {
    /// Counts a start by `client` at `now`; `false` when it has too many.
    fn reserve(&self, client: &str, now: Timestamp, max: usize) -> bool {
        let Ok(mut m) = self.by_client.lock() else {
            return false;
        };
        if m.len() > 10_000 {
            m.retain(|_, v| {
                v.retain(|t| now - t <= PENDING_TTL_SECS);
                !v.is_empty()
            });
        }
        let v = m.entry(client.to_string()).or_default();
        v.retain(|t| now - t <= PENDING_TTL_SECS);
        if v.len() >= max {
            return false;
        }
        v.push(now);
        true
    }

    /// A sign-in of `client` started at `at` came back (or was refused).
    fn release(&self, client: &str, at: Timestamp) {
        if let Ok(mut m) = self.by_client.lock()
            && let Some(v) = m.get_mut(client)
        {
            if let Some(i) = v.iter().position(|t| *t == at) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                m.remove(client);
            }
        }
    }
}

/// The per-address cap's key: the address (IPv6 by its /64, which one host
/// usually holds whole), or `unknown`.
fn client_key(src: &Source) -> String {
    use std::net::IpAddr;
    match src.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => v6.to_canonical().to_string(),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

/// Stores a sign-in just started, keyed by the SHA-256 of its `state`,
/// within the caps (`limits.sso_pending_*`; `/sso/*/login` is open to anyone
/// and each start is a record): too many from the caller's address is 429,
/// too many in all (after sweeping expired ones) is 503.
fn save_pending(svc: &Service, state: &str, mut p: Pending, src: &Source) -> Result<()> {
    let now = svc.now();
    let limits = &svc.settings.limits;
    p.client = client_key(src);
    let mut tx = svc.store.write()?;
    if tx.count(Table::SsoPending)? >= limits.sso_pending_max {
        // Sweep at most once a minute: a full store must not make every
        // start scan it.
        let last = svc
            .sso_pending
            .last_sweep
            .load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 60 {
            svc.sso_pending
                .last_sweep
                .store(now, std::sync::atomic::Ordering::Relaxed);
            purge_in(&mut tx, now)?;
        }
        if tx.count(Table::SsoPending)? >= limits.sso_pending_max {
            tracing::warn!("sso: too many sign-ins in flight");
            return Err(Error::Busy(
                "Too many single sign-ins are in progress right now; try again in a few minutes."
                    .into(),
            ));
        }
    }
    if !svc
        .sso_pending
        .reserve(&p.client, now, limits.sso_pending_per_client)
    {
        return Err(Error::TooMany(format!(
            "Too many single sign-ins were started from your address; finish one, or try again \
             in {} minutes.",
            PENDING_TTL_SECS / 60
        )));
    }
    tx.put(Table::SsoPending, &crypto::sha256(state.as_bytes()), &p)?;
    tx.commit()
}

/// Whether the state the browser's cookie holds is `state`: a sign-in is
/// finished only in the browser that started it.
pub(crate) fn bound_to_browser(browser_state: Option<&str>, state: &str) -> bool {
    browser_state.is_some_and(|b| !b.is_empty() && crypto::ct_eq(b.as_bytes(), state.as_bytes()))
}

pub(crate) fn not_this_browser() -> Failure {
    Failure::new(
        "state_mismatch",
        "the answer is for a sign-in this browser did not start (its cookie is missing or \
         holds another sign-in): possibly login CSRF",
    )
}

/// `take_pending`, only in the browser whose cookie holds `state`. An answer
/// for a sign-in another browser started (login CSRF) is refused and that
/// browser's pending sign-in is left alone; an unknown state says so first.
pub(crate) fn take_bound_pending(
    svc: &Service,
    state: &str,
    browser_state: Option<&str>,
    connection: &str,
) -> Result<Pending, Failure> {
    let known = svc
        .store
        .read()
        .and_then(|r| r.get::<Pending>(Table::SsoPending, &crypto::sha256(state.as_bytes())))
        .map_err(Failure::internal)?
        .is_some();
    if known && !bound_to_browser(browser_state, state) {
        return Err(not_this_browser());
    }
    take_pending(svc, state, connection)
}

/// Takes (and deletes, committed at once) the pending sign-in of `state`:
/// a state works once, whatever happens next.
fn take_pending(svc: &Service, state: &str, connection: &str) -> Result<Pending, Failure> {
    let key = crypto::sha256(state.as_bytes());
    let mut tx = svc.store.write().map_err(Failure::internal)?;
    let p = tx
        .get::<Pending>(Table::SsoPending, &key)
        .map_err(Failure::internal)?;
    tx.delete(Table::SsoPending, &key)
        .map_err(Failure::internal)?;
    tx.commit().map_err(Failure::internal)?;
    if let Some(p) = &p {
        svc.sso_pending.release(&p.client, p.created_at);
    }
    let p = p.ok_or_else(|| {
        Failure::new(
            "unknown_state",
            "the sign-in was not started here, was already completed, or expired",
        )
    })?;
    if p.connection != connection {
        return Err(Failure::new(
            "wrong_connection",
            "the answer arrived at another connection's callback",
        ));
    }
    if svc.now() - p.created_at > PENDING_TTL_SECS {
        return Err(Failure::new(
            "expired_state",
            "the sign-in took longer than 10 minutes at the identity provider",
        ));
    }
    Ok(p)
}

/// Deletes sign-ins that never came back.
pub fn purge_expired(svc: &Service) -> Result<usize> {
    let mut tx = svc.store.write()?;
    let n = purge_in(&mut tx, svc.now())?;
    tx.commit()?;
    Ok(n)
}

fn purge_in(tx: &mut WriteTx<'_>, now: Timestamp) -> Result<usize> {
    let old: Vec<Vec<u8>> = tx
        .scan::<Pending>(Table::SsoPending, b"")?
        .into_iter()
        .filter(|(_, p)| now - p.created_at > PENDING_TTL_SECS)
        .map(|(k, _)| k)
        .collect();
    for k in &old {
        tx.delete(Table::SsoPending, k)?;
    }
    Ok(old.len())
}

/// Why a sign-in through the IdP failed: a stable reason for the audit log
/// and words for the admin's test page. Users see only a generic message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
        }
    }
    fn internal(e: Error) -> Failure {
        tracing::error!(error = %e, "sso: internal error");
        Failure::new("internal_error", "internal error; see the server log")
    }
}

/// What the IdP said about the user, after every check passed.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// Values of the connection's role attribute.
    pub roles: Vec<String>,
    /// Google's `hd` claim: the Workspace domain of the account, if any.
    pub hosted_domain: Option<String>,
}

/// How a finished IdP round trip ends.
pub enum Finished {
    /// A browser session for `user`.
    SignedIn {
        user: User,
        token: String,
        rd: String,
    },
    /// A test run by an admin: recorded on the connection, nobody signed in.
    Tested { connection: String, ok: bool },
}

/// Records a failure: audit (the precise reason), and the test result when an
/// admin was testing. Returns what the web layer shows.
pub fn record_failure(
    svc: &Service,
    conn: &str,
    pending: Option<&Pending>,
    f: &Failure,
    src: &Source,
) -> Result<Option<Finished>> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let test_by = pending.and_then(|p| p.test_by.clone());
    let by = match &test_by {
        Some(id) => identity::get(&tx, id).ok(),
        None => None,
    };
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new(
            if test_by.is_some() {
                "sso.test"
            } else {
                "sso.login"
            },
            Outcome::Failure,
        )
        .actor(
            by.as_ref()
                .map(|u| u.email.as_str().to_string())
                .unwrap_or_else(|| "anonymous".into()),
            by.as_ref().map(|u| u.id.as_str().to_string()),
        )
        .target(conn.to_string())
        .details(serde_json::json!({"reason": f.reason, "message": f.message})),
    )?;
    let out = if let (Some(u), Ok(mut c)) = (&by, get(&tx, conn)) {
        c.last_test = Some(TestResult {
            at: now,
            ok: false,
            error: Some(f.message.clone()),
            claims: serde_json::Value::Null,
            by: u.email.as_str().to_string(),
        });
        tx.put(Table::SsoConnections, c.id.as_bytes(), &c)?;
        Some(Finished::Tested {
            connection: conn.to_string(),
            ok: false,
        })
    } else {
        None
    };
    tx.commit()?;
    Ok(out)
}

/// `connection \0 blind index of the subject`: some IdPs use the e-mail
/// address as the subject, and none may appear in the file in the clear.
fn link_key(svc: &Service, conn: &str, subject: &str) -> Result<Vec<u8>> {
    let mut k = conn.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(
        &svc.store
            .blind_index("sso_subject", &format!("{conn}\0{subject}"))?,
    );
    Ok(k)
}

/// Why a sign-in whose e-mail address belongs to an existing, unlinked
/// account is refused; `subject` is named so that an admin can link it.
fn refuse_email_link(s: &SsoSettings, user: &User, subject: &str) -> Failure {
    let subject: String = subject
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if is_excluded(s, user) {
        Failure::new(
            "sso_excluded",
            "a user with this e-mail address exists and is SSO-excluded (or the owner): it is \
             never linked to an identity provider",
        )
    } else if user.role != Role::User {
        Failure::new(
            "privileged_account",
            format!(
                "a user with this e-mail address exists and is an administrator: it is never \
                 linked by e-mail. An admin may link it explicitly (POST \
                 /api/v1/users/{}/sso-links with the subject {subject:?})",
                user.id.as_str()
            ),
        )
    } else {
        Failure::new(
            "link_required",
            format!(
                "a user with this e-mail address exists but is not linked to this identity \
                 provider; an admin links it (POST /api/v1/users/{}/sso-links with the subject \
                 {subject:?})",
                user.id.as_str()
            ),
        )
    }
}

/// Just-in-time creation: as the connection says, except for Google, where
/// anyone with a Google account could sign in: off until the connection
/// names its allowed domains.
pub fn jit_allowed(conn: &Connection) -> bool {
    let google = conn.protocol == Protocol::Oidc && conn.provider == "google";
    conn.jit && (!google || !conn.allowed_domains.is_empty())
}

/// The connection's allowed domains, when it names any: the e-mail address
/// must be in one of them, and for Google the `hd` claim (the Workspace
/// domain) too, since a Google account may carry any address.
pub(crate) fn domain_allowed(conn: &Connection, ident: &Identity) -> Result<(), Failure> {
    if conn.allowed_domains.is_empty() {
        return Ok(());
    }
    let listed = |d: &str| {
        conn.allowed_domains
            .iter()
            .any(|a| a.eq_ignore_ascii_case(d.trim()))
    };
    let email_domain = ident
        .email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d);
    if !email_domain.is_some_and(listed) {
        return Err(Failure::new(
            "domain_not_allowed",
            "the e-mail address is not in one of the connection's allowed domains",
        ));
    }
    if conn.provider == "google"
        && conn.protocol == Protocol::Oidc
        && !ident.hosted_domain.as_deref().is_some_and(listed)
    {
        return Err(Failure::new(
            "domain_not_allowed",
            "the Google account's hosted domain (hd) is not one of the allowed domains",
        ));
    }
    Ok(())
}

/// An admin's explicit link of an existing user to an identity at a
/// connection (the IdP's subject: the refused sign-in's audit event names
/// it). The owner and SSO-excluded users are never linked; an identity
/// already linked to another user must be unlinked first. Audited.
pub fn link_user(
    svc: &Service,
    by: &Principal,
    src: &Source,
    user: &UserId,
    connection: &str,
    subject: &str,
) -> Result<()> {
    let subject = subject.trim();
    if subject.is_empty() || subject.len() > 500 || subject.chars().any(char::is_control) {
        return Err(Error::invalid(
            "subject",
            "give the IdP's subject for the user (1–500 characters, as the refused sign-in's \
             audit event names it)",
        ));
    }
    let connection =
        parse_id(connection).map_err(|_| Error::invalid("connection", "is not a connection id"))?;
    let mut tx = svc.store.write()?;
    let conn =
        get(&tx, connection).map_err(|_| Error::invalid("connection", "no such connection"))?;
    let u = identity::get(&tx, user)?;
    // A link is a way into the account: the same rule as its password.
    crate::access::guard_credentials(by, &u, "SSO links")?;
    if is_excluded(&settings(&tx)?, &u) {
        return Err(Error::Conflict(
            "This user is SSO-excluded (or the owner) and signs in with e-mail, password and \
             Gatehouse MFA only; remove them from the excluded users first."
                .into(),
        ));
    }
    // And never one's own through this path: a stolen token would link the
    // thief's identity, and SSO sign-ins skip Gatehouse MFA.
    crate::access::guard_admin_path(
        by,
        &u,
        "SSO links",
        "Another administrator links your account to an identity provider.",
    )?;
    let lk = link_key(svc, &conn.id, subject)?;
    match tx
        .get::<String>(Table::SsoLinks, &lk)?
        .as_deref()
        .map(Link::decode)
    {
        Some(l) if l.user == u.id.as_str() && l.via == Some(LinkVia::Admin) => return Ok(()),
        Some(l) if l.user == u.id.as_str() => {}
        Some(_) => {
            return Err(Error::Conflict(
                "This identity is linked to another user; delete that link first.".into(),
            ));
        }
        None => {}
    }
    tx.put(Table::SsoLinks, &lk, &Link::encode(LinkVia::Admin, &u.id))?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("sso.link", Outcome::Success)
            .target(u.id.as_str())
            .details(serde_json::json!({"connection": conn.id, "subject": subject, "via": "admin", "role": u.role.as_str()})),
    )?;
    tx.commit()
}

/// Removes a user's link to an identity at a connection. Audited.
pub fn unlink_user(
    svc: &Service,
    by: &Principal,
    src: &Source,
    user: &UserId,
    connection: &str,
    subject: &str,
) -> Result<()> {
    let mut tx = svc.store.write()?;
    crate::access::guard_credentials(by, &identity::get(&tx, user)?, "SSO links")?;
    let lk = link_key(svc, connection, subject.trim())?;
    let linked = tx.get::<String>(Table::SsoLinks, &lk)?;
    if linked.as_deref().map(|v| Link::decode(v).user) != Some(user.as_str()) {
        return Err(Error::NotFound("SSO link"));
    }
    tx.delete(Table::SsoLinks, &lk)?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("sso.unlink", Outcome::Success)
            .target(user.as_str())
            .details(serde_json::json!({"connection": connection, "subject": subject.trim()})),
    )?;
    tx.commit()
}

/// Ends a verified round trip: records a test, or finds / links / creates
/// the user and starts their session. One transaction, audited.
pub fn finish(
    svc: &Service,
    conn: &Connection,
    pending: &Pending,
    ident: Identity,
    src: &Source,
) -> Result<Result<Finished, Failure>> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let s = settings(&tx)?;
    let mapped = conn.mapped_role(&ident.roles);
    if let Some(tester) = &pending.test_by {
        let by = identity::get(&tx, tester)?;
        let mut c = get(&tx, &conn.id)?;
        let claims = serde_json::json!({
            "subject": ident.subject, "email": ident.email, "email_verified": ident.email_verified,
            "name": ident.name, conn.role_attribute.clone(): ident.roles, "mapped_role": mapped.as_str(),
        });
        c.last_test = Some(TestResult {
            at: now,
            ok: true,
            error: None,
            claims: claims.clone(),
            by: by.email.as_str().to_string(),
        });
        tx.put(Table::SsoConnections, c.id.as_bytes(), &c)?;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("sso.test", Outcome::Success)
                .actor(by.email.as_str(), Some(by.id.as_str().into()))
                .target(conn.id.clone())
                .details(claims),
        )?;
        tx.commit()?;
        return Ok(Ok(Finished::Tested {
            connection: conn.id.clone(),
            ok: true,
        }));
    }
    if !s.enabled {
        return Ok(Err(Failure::new(
            "sso_disabled",
            "single sign-on is disabled",
        )));
    }
    if let Err(f) = domain_allowed(conn, &ident) {
        return Ok(Err(f));
    }
    let lk = link_key(svc, &conn.id, &ident.subject)?;
    let link = tx.get::<String>(Table::SsoLinks, &lk)?;
    let link = link.as_deref().map(Link::decode);
    let linked = match &link {
        Some(l) => UserId::parse(l.user)
            .ok()
            .and_then(|id| identity::get(&tx, &id).ok()),
        None => None,
    };
    // A link into an administrator counts only when an admin made it: links
    // made before this version may come from the old linking by e-mail.
    if let (Some(l), Some(u)) = (&link, &linked)
        && u.role != Role::User
        && l.via.is_none()
    {
        return Ok(Err(Failure::new(
            "privileged_account",
            "this identity was linked to an administrator by an older version (possibly by              e-mail); an admin must link it again (POST /api/v1/users/{id}/sso-links)",
        )));
    }
    let mut created = false;
    let user = match linked {
        Some(u) => u,
        None => {
            let Some(raw) = ident.email.as_deref() else {
                return Ok(Err(Failure::new(
                    "no_email",
                    "the identity provider sent no e-mail address (request the email scope)",
                )));
            };
            let Ok(email) = Email::parse(raw) else {
                return Ok(Err(Failure::new(
                    "malformed_email",
                    "the identity provider's e-mail address does not parse",
                )));
            };
            if ident.email_verified != Some(true) && !conn.trust_unverified_email {
                return Ok(Err(Failure::new(
                    "email_not_verified",
                    "the identity provider does not say the e-mail address is verified",
                )));
            }
            let user = match identity::find_by_email(svc, &tx, &email)? {
                // An existing account is never taken over by an e-mail
                // address alone: the IdP's word would replace its password
                // and MFA. An admin links it explicitly (`link_user`).
                Some(u) => return Ok(Err(refuse_email_link(&s, &u, &ident.subject))),
                None if jit_allowed(conn) => {
                    let u = User {
                        id: UserId::generate()?,
                        email,
                        name: ident
                            .name
                            .clone()
                            .unwrap_or_default()
                            .chars()
                            .filter(|c| !c.is_control())
                            .take(200)
                            .collect(),
                        password_hash: None,
                        role: mapped,
                        disabled: false,
                        created_at: now,
                        updated_at: now,
                    };
                    identity::insert(svc, &mut tx, &u)?;
                    created = true;
                    audit::record(
                        &mut tx,
                        now,
                        src,
                        NewEvent::new("user.create", Outcome::Success)
                            .actor(format!("sso:{}", conn.id), None)
                            .target(u.id.as_str())
                            .details(serde_json::json!({"email": u.email.as_str(), "role": u.role.as_str(), "via": "sso_jit"})),
                    )?;
                    u
                }
                None => {
                    return Ok(Err(Failure::new(
                        "no_account",
                        "no Gatehouse user has this e-mail address and just-in-time provisioning is off",
                    )));
                }
            };
            tx.put(Table::SsoLinks, &lk, &Link::encode(LinkVia::Jit, &user.id))?;
            audit::record(
                &mut tx,
                now,
                src,
                NewEvent::new("sso.link", Outcome::Success)
                    .actor(format!("sso:{}", conn.id), None)
                    .target(user.id.as_str())
                    .details(serde_json::json!({"connection": conn.id, "subject": ident.subject, "via": "sso_jit"})),
            )?;
            user
        }
    };
    if user.disabled {
        return Ok(Err(Failure::new("user_disabled", "the user is disabled")));
    }
    // A link made before a user became SSO-excluded (or the owner) opens nothing:
    // excluded users keep their password and Gatehouse MFA.
    if is_excluded(&s, &user) {
        return Ok(Err(Failure::new(
            "sso_excluded",
            "the user is SSO-excluded (or the owner) and signs in with e-mail, password and \
             Gatehouse MFA only",
        )));
    }
    let mut user = user;
    if !created && !conn.role_rules.is_empty() && !is_excluded(&s, &user) && user.role != mapped {
        let before = user.clone();
        user.role = mapped;
        user.updated_at = now;
        identity::save(svc, &mut tx, &before, &user)?;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("user.update", Outcome::Success)
                .actor(format!("sso:{}", conn.id), None)
                .target(user.id.as_str())
                .details(serde_json::json!({"role": {"from": before.role.as_str(), "to": mapped.as_str()}, "via": "sso_role_mapping"})),
        )?;
    }
    let (user, token) = crate::authn::sso_session(svc, &mut tx, user, src, &conn.id)?;
    tx.commit()?;
    Ok(Ok(Finished::SignedIn {
        user,
        token,
        rd: pending.rd.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(email: &str, hd: Option<&str>) -> Identity {
        Identity {
            subject: "s".into(),
            email: Some(email.into()),
            email_verified: Some(true),
            name: None,
            roles: Vec::new(),
            hosted_domain: hd.map(str::to_string),
        }
    }

    fn google(domains: &[&str]) -> Connection {
        Connection {
            id: "google".into(),
            protocol: Protocol::Oidc,
            provider: "google".into(),
            name: "Google".into(),
            issuer: "https://accounts.google.com".into(),
            client_id: String::new(),
            client_secret: String::new(),
            scopes: Vec::new(),
            trust_unverified_email: false,
            jit: true,
            role_attribute: String::new(),
            role_rules: Vec::new(),
            default_role: Role::User,
            last_test: None,
            created_at: 0,
            updated_at: 0,
            sso_url: String::new(),
            certificates: Vec::new(),
            allow_idp_initiated: false,
            allow_sha1: false,
            clock_skew_secs: 120,
            realm: String::new(),
            sign_requests: false,
            allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn google_checks_the_hosted_domain_and_needs_domains_for_jit() {
        assert!(!jit_allowed(&google(&[])));
        let c = google(&["corp.example"]);
        assert!(jit_allowed(&c));
        assert!(domain_allowed(&c, &ident("a@corp.example", Some("corp.example"))).is_ok());
        assert!(domain_allowed(&c, &ident("a@CORP.example", Some("corp.example"))).is_ok());
        // A consumer Google account with a corp address: no hd.
        assert!(domain_allowed(&c, &ident("a@corp.example", None)).is_err());
        assert!(domain_allowed(&c, &ident("a@corp.example", Some("evil.example"))).is_err());
        assert!(domain_allowed(&c, &ident("a@evil.example", Some("corp.example"))).is_err());
        assert!(domain_allowed(&c, &ident("a@sub.corp.example", Some("corp.example"))).is_err());
        let mut other = google(&["corp.example"]);
        other.provider = "okta".into();
        assert!(domain_allowed(&other, &ident("a@corp.example", None)).is_ok());
        assert!(domain_allowed(&google(&[]), &ident("a@x.example", None)).is_ok());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let src = |ip: &str| Source {
            ip: Some(ip.into()),
            user_agent: None,
        };
        assert_eq!(
            client_key(&src("2001:db8:1:2::1")),
            client_key(&src("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(&src("2001:db8:1:2::1")),
            client_key(&src("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(&src("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(client_key(&src("unknown")), "unknown");
    }
}

/// How a link between an IdP identity and a user was made, kept in the link
/// record as `admin:` or `jit:` before the user id. Records without it were
/// written by versions that also linked by e-mail, so a link into an
/// administrator counts only when it says `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkVia {
    Admin,
    Jit,
}

struct Link<'a> {
    user: &'a str,
    via: Option<LinkVia>,
}

impl<'a> Link<'a> {
    fn encode(via: LinkVia, user: &UserId) -> String {
        let tag = match via {
            LinkVia::Admin => "admin",
            LinkVia::Jit => "jit",
        };
        format!("{tag}:{}", user.as_str())
    }

    fn decode(v: &'a str) -> Link<'a> {
        match v.split_once(':') {
            Some(("admin", u)) => Link {
                user: u,
                via: Some(LinkVia::Admin),
            },
            Some(("jit", u)) => Link {
                user: u,
                via: Some(LinkVia::Jit),
            },
            _ => Link { user: v, via: None },
        }
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn links_say_how_they_were_made_and_old_ones_say_nothing() {
        let u = UserId::parse("usr_0123456789abcdef0123").unwrap_or_else(|_| unreachable!());
        let admin = Link::encode(LinkVia::Admin, &u);
        let d = Link::decode(&admin);
        assert_eq!((d.user, d.via), (u.as_str(), Some(LinkVia::Admin)));
        let jit = Link::encode(LinkVia::Jit, &u);
        assert_eq!(Link::decode(&jit).via, Some(LinkVia::Jit));
        // A record from before this version: the bare user id, no provenance.
        let old = Link::decode(u.as_str());
        assert_eq!((old.user, old.via), (u.as_str(), None));
    }
}

/// A connection that maps anyone to `admin` (default role or a role rule)
/// makes platform admins: only a caller who could make one directly may
/// save it (issue 11, finding 14).
fn grants_only_what_caller_holds(svc: &Service, by: &Principal, c: &Connection) -> Result<()> {
    if c.default_role == Role::Admin || c.role_rules.iter().any(|r| r.role == Role::Admin) {
        crate::access::check_platform_role_grantable(svc, by, Role::Admin)?;
    }
    Ok(())
}
