//! SSO connections: their stored shape, what an admin sends, and the
//! create / update / delete / list operations (audited).

use serde::{Deserialize, Serialize};

use crate::access::{Actor, Permission, Principal, Resource};
use crate::audit::{self, Outcome};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::Role;
use crate::service::Service;
use crate::store::{Reader, Table};

use super::build::build;
use super::{Protocol, oidc, saml, settings, wsfed};

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
    /// Who last set whom it trusts (created it, changed its trust or turned
    /// just-in-time creation on): the maker of the links it makes just in
    /// time (`links::standing`). `None` in connections stored before it.
    #[serde(default)]
    pub trust_by: Option<super::links::LinkMaker>,
}

pub(super) fn default_skew() -> i64 {
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

pub(crate) fn list_in(r: &impl Reader) -> Result<Vec<Connection>> {
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

/// One connection, read in its own snapshot.
pub fn connection(svc: &Service, id: &str) -> Result<Connection> {
    get(&svc.store.read()?, id)
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

/// Connections are managed with `ManageSecurity` on the platform; changing
/// one needs, for a user, a recent sign-in too.
fn authorize_change(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    actor.require_recent(svc)
}

/// Whether `actor` may manage SSO at all (`ManageSecurity` on the platform),
/// before the recent sign-in a change needs: the console's forms show a
/// caller without it 403 rather than sending them to re-authenticate.
pub fn may_manage(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    Ok(())
}

/// The provider presets, for someone who may manage connections.
pub fn presets_for(svc: &Service, actor: &Actor) -> Result<&'static [super::Preset]> {
    may_manage(svc, actor)?;
    Ok(super::PRESETS)
}

/// Every connection, for someone who may manage them.
pub fn list_for(svc: &Service, actor: &Actor) -> Result<Vec<Connection>> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    list(svc)
}

/// One connection by its id from a URL path, for someone who may manage it.
pub fn connection_for(svc: &Service, actor: &Actor, id: &str) -> Result<Connection> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    connection(svc, parse_id(id)?)
}

pub async fn create(
    svc: &Service,
    actor: &Actor,
    mut input: ConnectionInput,
) -> Result<Connection> {
    authorize_change(svc, actor)?;
    let (by, src) = (&actor.principal, &actor.source);
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
    let mut c = build(id, input, None, now)?;
    c.trust_by = Some(super::links::LinkMaker::of(by));
    grants_only_what_caller_holds(svc, by, &c)?;
    guard_jit(svc, by, &c, None, true)?;
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

/// Replaces a connection's fields; `id` is as the URL path gives it.
pub async fn update(
    svc: &Service,
    actor: &Actor,
    id: &str,
    mut input: ConnectionInput,
) -> Result<Connection> {
    authorize_change(svc, actor)?;
    let id = parse_id(id)?;
    let (by, src) = (&actor.principal, &actor.source);
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
    // Role rules reach every linked user at their next sign-in, demoting or
    // promoting them: the same as changing each of their roles, so the same
    // rule as a trust change (whoever could administer every linked user).
    if mapping_changed(&before, &c) {
        super::links::guard_relinking(svc, &tx, by, &c.id, super::links::Relink::Roles)?;
    }
    let trust = trust_changed(&before, &c, secret_changed);
    let mut ended = 0;
    if trust {
        // Every link at the connection now trusts what the new settings
        // trust: the same as linking each of those users anew.
        super::links::guard_relinking(svc, &tx, by, &c.id, super::links::Relink::Trust)?;
        // And what the old trust signed in ends with it.
        ended = crate::authn::session::end_sso(
            &mut tx,
            crate::authn::session::SsoSessions::Connection(&c.id),
        )?;
    }
    guard_jit(svc, by, &c, Some(&before), trust)?;
    let mut c = c;
    c.trust_by = if trust || (c.jit && !before.jit) {
        Some(super::links::LinkMaker::of(by))
    } else {
        before.trust_by.clone()
    };
    tx.put(Table::SsoConnections, c.id.as_bytes(), &c)?;
    let mut details = change_details(&c, secret_changed);
    details["sessions_ended"] = ended.into();
    audit::record(
        &mut tx,
        now,
        src,
        by.event("sso.connection_update", Outcome::Success)
            .target(c.id.clone())
            .details(details),
    )?;
    tx.commit()?;
    oidc::forget_metadata(svc, id);
    Ok(c)
}

/// Deletes a connection and its links; `id` is as the URL path gives it.
pub fn delete(svc: &Service, actor: &Actor, id: &str) -> Result<()> {
    authorize_change(svc, actor)?;
    let id = parse_id(id)?;
    let (by, src) = (&actor.principal, &actor.source);
    let mut tx = svc.store.write()?;
    get(&tx, id)?;
    if settings(&tx)?.enabled && list_in(&tx)?.len() == 1 {
        return Err(Error::Conflict(
            "This is the last SSO connection and SSO is enabled: disable SSO first.".into(),
        ));
    }
    // Deleting removes every link: what unlinking each user directly needs.
    super::links::guard_unlinking(svc, &tx, by, id)?;
    tx.delete(Table::SsoConnections, id.as_bytes())?;
    for (k, _) in tx.scan::<String>(Table::SsoLinks, format!("{id}\0").as_bytes())? {
        tx.delete(Table::SsoLinks, &k)?;
    }
    let ended = crate::authn::session::end_sso(
        &mut tx,
        crate::authn::session::SsoSessions::Connection(id),
    )?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("sso.connection_delete", Outcome::Success)
            .target(id.to_string())
            .details(serde_json::json!({"sessions_ended": ended})),
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

/// Whether an edit changes whom the connection believes: the IdP's identity
/// and keys (issuer, certificates, URLs, client id and secret, realm,
/// protocol and provider) or how much of its word is taken (IdP-initiated
/// responses, SHA-1, unverified e-mail, allowed domains, clock skew).
pub(crate) fn trust_changed(before: &Connection, after: &Connection, secret_changed: bool) -> bool {
    secret_changed
        || before.protocol != after.protocol
        || before.provider != after.provider
        || before.issuer != after.issuer
        || before.certificates != after.certificates
        || before.sso_url != after.sso_url
        || before.client_id != after.client_id
        || before.client_secret != after.client_secret
        || before.realm != after.realm
        || before.allow_idp_initiated != after.allow_idp_initiated
        || before.allow_sha1 != after.allow_sha1
        || before.trust_unverified_email != after.trust_unverified_email
        || before.allowed_domains != after.allowed_domains
        || after.clock_skew_secs > before.clock_skew_secs
}

/// Whether an edit changes the role a linked user gets at their next sign-in:
/// role rules apply to existing users only while there is at least one, and
/// then the attribute, the rules and the default role decide together.
pub(crate) fn mapping_changed(before: &Connection, after: &Connection) -> bool {
    fn mapping(c: &Connection) -> Option<(&String, &Vec<RoleRule>, Role)> {
        (!c.role_rules.is_empty()).then_some((&c.role_attribute, &c.role_rules, c.default_role))
    }
    mapping(before) != mapping(after)
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

/// Just-in-time creation makes accounts (and links them) for whoever the
/// IdP vouches for, and an account made today may be the one a workspace
/// adds by its address tomorrow: creating users is `admin:users` business
/// (issue 11, review 4, finding 1). So a caller without it may not create a
/// connection with JIT on (the default for most presets: they set
/// `"jit": false`), turn it on, or change whom a JIT connection trusts. No
/// side effects (no denial audit: `update` holds a write transaction).
fn guard_jit(
    svc: &Service,
    by: &Principal,
    c: &Connection,
    before: Option<&Connection>,
    trust_changed: bool,
) -> Result<()> {
    let turns_on = before.is_none_or(|b| !b.jit);
    if !super::finish::jit_allowed(c) || !(turns_on || trust_changed) {
        return Ok(());
    }
    if crate::access::decide(svc, by, Permission::ManageUsers, Resource::Platform)?.allow {
        return Ok(());
    }
    Err(Error::Forbidden(
        "Just-in-time provisioning creates users for whoever the identity provider vouches for: \
         creating or re-pointing a connection with it on needs the admin:users permission on the \
         platform. Set \"jit\": false, or ask a platform admin."
            .into(),
    ))
}
