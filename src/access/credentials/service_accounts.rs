//! Service accounts: a client id + secret, traded for access tokens, with their
//! scopes and IP allowlists.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::secret::{CLIENT_SECRET_PREFIX, generate_secret, well_formed};
use super::{check_workspace, res};
use crate::access::{
    Actor, Client, ClientKind, PermSet, Permission, Principal, Scopes, check_grantable, clean_name,
    new_id, parse_id, record_change, snapshot,
};
use crate::audit::{self, Outcome, Source};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::service::Service;
use crate::store::{Reader, Table};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    /// Calls from other addresses are refused.
    #[default]
    Block,
    /// Calls from other addresses go through and are audited.
    Warn,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// Also the OAuth `client_id`.
    pub id: String,
    /// `None`: a platform-level account (created by platform admins only).
    pub workspace: Option<WorkspaceId>,
    pub name: String,
    pub description: String,
    pub scopes: Vec<String>,
    pub ip_allowlist: Vec<String>,
    pub ip_mode: IpMode,
    secret_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The account's "tokens valid after" epoch: every access token carries
    /// the epoch current when it was signed (claim `tva`), and one below this
    /// is refused. Moved by a secret rotation and by narrowing the scopes, so
    /// tokens minted with a leaked secret end with it. Absent (0) in accounts
    /// stored before it existed.
    #[serde(default)]
    pub tokens_epoch: u64,
    /// Disabled: no token is issued for it and every token it holds is
    /// refused (`disable_service_account` also moves `tokens_epoch`, so
    /// enabling it again revives none of them). Absent (false) in accounts
    /// stored before it existed.
    #[serde(default)]
    pub disabled: bool,
}

impl ServiceAccount {
    /// Every permission its scopes hold, whole or narrowed (what granting
    /// or taking them is checked against).
    pub fn scope_set(&self) -> PermSet {
        self.scopes().any()
    }
    /// Its scopes as granted, narrowed ones included.
    pub fn scopes(&self) -> Scopes {
        Scopes::parse_names("scopes", &self.scopes).unwrap_or_default()
    }
    /// No allowlist: every address.
    pub fn ip_allowed(&self, ip: Option<IpAddr>) -> bool {
        if self.ip_allowlist.is_empty() {
            return true;
        }
        let Some(ip) = ip else { return false };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.ip_allowlist
            .iter()
            .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
            .any(|n| n.contains(&ip))
    }
}

fn parse_allowlist(list: &[String]) -> Result<Vec<String>> {
    list.iter()
        .map(|c| {
            let c = c.trim();
            let net = c
                .parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    Error::invalid(
                        "ip_allowlist",
                        format!(
                            "\"{c}\" is not an IPv4/IPv6 CIDR such as 10.0.0.0/8 or 2001:db8::/32"
                        ),
                    )
                })?;
            Ok(net.trunc().to_string())
        })
        .collect()
}

/// Whether `after` accepts a call from some address `before` refused: the
/// list removed or widened, or blocking turned into warning.
fn loosens_ip_rules(before: &ServiceAccount, after: &ServiceAccount) -> bool {
    if before.ip_allowlist.is_empty() {
        return false;
    }
    if before.ip_mode == IpMode::Block && after.ip_mode != IpMode::Block {
        return true;
    }
    let nets = |l: &[String]| -> Vec<ipnet::IpNet> {
        l.iter()
            .filter_map(|c| c.parse::<ipnet::IpNet>().ok())
            .collect()
    };
    let old = nets(&before.ip_allowlist);
    after.ip_allowlist.is_empty()
        || nets(&after.ip_allowlist)
            .iter()
            .any(|n| !old.iter().any(|o| o.contains(n)))
}

pub struct NewServiceAccount<'a> {
    pub workspace: Option<&'a WorkspaceId>,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub scopes: &'a [String],
    pub ip_allowlist: &'a [String],
    pub ip_mode: IpMode,
}

/// Creates an account; returns it with its secret (shown this once).
pub fn create_service_account(
    svc: &Service,
    actor: &Actor,
    n: NewServiceAccount<'_>,
) -> Result<(ServiceAccount, String)> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageCredentials, res(n.workspace))?;
    // A new credential is sensitive: the console and the API alike need a recent sign-in.
    actor.require_recent(svc)?;
    let parsed = Scopes::parse_names("scopes", n.scopes)?;
    let scopes = parsed.any();
    super::api_apps::at_least_one_scope(scopes)?;
    check_grantable(svc, by, n.workspace, scopes)?;
    let secret = generate_secret(CLIENT_SECRET_PREFIX)?;
    let now = svc.now();
    let sa = ServiceAccount {
        id: new_id("sa_")?,
        workspace: n.workspace.cloned(),
        name: clean_name("name", n.name)?,
        description: n
            .description
            .unwrap_or("")
            .trim()
            .chars()
            .take(500)
            .collect(),
        scopes: parsed.names(),
        ip_allowlist: parse_allowlist(n.ip_allowlist)?,
        ip_mode: n.ip_mode,
        secret_hash: hex::encode(crypto::sha256(secret.as_bytes())),
        created_at: now,
        updated_at: now,
        tokens_epoch: 0,
        disabled: false,
    };
    let mut tx = svc.store.write()?;
    check_workspace(&tx, n.workspace)?;
    tx.put(Table::ServiceAccounts, sa.id.as_bytes(), &sa)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.create",
        n.workspace,
        &sa.id,
        serde_json::json!({"name": sa.name, "scopes": sa.scopes, "ip_allowlist": sa.ip_allowlist, "ip_mode": sa.ip_mode}),
    )?;
    tx.commit()?;
    Ok((sa, secret))
}

/// Service accounts in the workspaces (or platform) `by` manages credentials for.
pub fn service_accounts(svc: &Service, by: &Principal) -> Result<Vec<ServiceAccount>> {
    let visible = crate::access::workspaces_with(svc, by, Permission::ManageCredentials)?;
    let snap = snapshot(svc)?;
    let mut out: Vec<ServiceAccount> = snap
        .service_accounts
        .values()
        .filter(|s| match &s.workspace {
            Some(w) => visible.contains(w),
            None => by.is_platform_admin(),
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn get_service_account(svc: &Service, actor: &Actor, id: &str) -> Result<ServiceAccount> {
    let id = parse_id("sa_", id, "service account")?;
    let sa = snapshot(svc)?
        .service_accounts
        .get(id)
        .cloned()
        .ok_or(Error::NotFound("service account"))?;
    actor.authorize(
        svc,
        Permission::ManageCredentials,
        res(sa.workspace.as_ref()),
    )?;
    Ok(sa)
}

pub struct ServiceAccountUpdate<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub scopes: Option<&'a [String]>,
    pub ip_allowlist: Option<&'a [String]>,
    pub ip_mode: Option<IpMode>,
}

/// The account as it stands inside `tx` (a change reads it there, not from
/// the access snapshot, so two concurrent writes never restore each other's
/// old record: issue 11, review 4, finding 5); gone is `NotFound`.
fn current_in(r: &impl Reader, id: &str) -> Result<ServiceAccount> {
    r.get::<ServiceAccount>(Table::ServiceAccounts, id.as_bytes())?
        .ok_or(Error::NotFound("service account"))
}

/// Edits an account; narrowed scopes bite on the very next check of its
/// tokens. Widening its scopes or loosening its allowlist hands the holder
/// of its secret more: a recent sign-in, like a new secret.
pub fn update_service_account(
    svc: &Service,
    actor: &Actor,
    id: &str,
    u: ServiceAccountUpdate<'_>,
) -> Result<ServiceAccount> {
    let (by, src) = (&actor.principal, &actor.source);
    let id = get_service_account(svc, actor, id)?.id;
    // Read again in the write transaction: a disable, rotation or narrowing
    // committed meanwhile is kept, not overwritten by an older copy.
    let mut tx = svc.store.write()?;
    let mut sa = current_in(&tx, &id)?;
    if let Some(n) = u.name {
        sa.name = clean_name("name", n)?;
    }
    if let Some(d) = u.description {
        sa.description = d.trim().chars().take(500).collect();
    }
    let ws = sa.workspace.clone();
    let mut widens = false;
    if let Some(s) = u.scopes {
        let new = Scopes::parse_names("scopes", s)?;
        let old = sa.scopes();
        check_grantable(svc, by, ws.as_ref(), new.any())?;
        widens = !old.gained_in(&new).is_empty();
        // Narrowing takes scopes away: only from an account no stronger than the caller.
        let taken = new.gained_in(&old);
        crate::access::check_revocable(svc, by, ws.as_ref(), taken)?;
        super::api_apps::at_least_one_scope(new.any())?;
        // Tokens minted with the wider scopes end (a later widening must not revive them).
        if !taken.is_empty() {
            sa.tokens_epoch = sa.tokens_epoch.saturating_add(1);
        }
        sa.scopes = new.names();
    }
    let before = sa.clone();
    if let Some(l) = u.ip_allowlist {
        sa.ip_allowlist = parse_allowlist(l)?;
    }
    if let Some(m) = u.ip_mode {
        sa.ip_mode = m;
    }
    // A looser allowlist lets the account's secret and tokens work from more
    // places, as a new secret would: the same check as a rotation.
    let loosens = loosens_ip_rules(&before, &sa);
    if loosens {
        check_grantable(svc, by, ws.as_ref(), before.scope_set()).map_err(|_| {
            Error::Forbidden(
                "Loosening a service account's IP allowlist (removing or widening it, or block → \
                 warn) needs every scope the account holds, like rotating its secret."
                    .into(),
            )
        })?;
    }
    if widens || loosens {
        actor.require_recent(svc)?;
    }
    sa.updated_at = svc.now();
    tx.put(Table::ServiceAccounts, sa.id.as_bytes(), &sa)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.update",
        sa.workspace.as_ref(),
        &sa.id,
        serde_json::json!({"name": sa.name, "scopes": sa.scopes, "ip_allowlist": sa.ip_allowlist, "ip_mode": sa.ip_mode}),
    )?;
    tx.commit()?;
    Ok(sa)
}

/// Replaces the secret; the old one and every token minted so far stop
/// working at once. Returns the new one.
pub fn rotate_service_account_secret(svc: &Service, actor: &Actor, id: &str) -> Result<String> {
    let (by, src) = (&actor.principal, &actor.source);
    let id = get_service_account(svc, actor, id)?.id;
    // A new credential is sensitive: the console and the API alike need a recent sign-in.
    actor.require_recent(svc)?;
    let secret = generate_secret(CLIENT_SECRET_PREFIX)?;
    let mut tx = svc.store.write()?;
    let mut sa = current_in(&tx, &id)?;
    // A new secret hands its holder the account's scopes: the same check as granting them.
    check_grantable(svc, by, sa.workspace.as_ref(), sa.scope_set())?;
    sa.secret_hash = hex::encode(crypto::sha256(secret.as_bytes()));
    // Tokens minted with the old (perhaps leaked) secret end with it.
    sa.tokens_epoch = sa.tokens_epoch.saturating_add(1);
    sa.updated_at = svc.now();
    tx.put(Table::ServiceAccounts, sa.id.as_bytes(), &sa)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.secret_rotate",
        sa.workspace.as_ref(),
        &sa.id,
        serde_json::Value::Null,
    )?;
    tx.commit()?;
    Ok(secret)
}

/// Disables an account: every token it holds is refused from the next check
/// on (its `tokens_epoch` moves), and `client_credentials` issues none until
/// it is enabled again. It takes away every scope the account holds, so it
/// needs what deleting it needs (`check_revocable`), and a recent sign-in.
/// Audited; disabling a disabled account changes nothing.
pub fn disable_service_account(svc: &Service, actor: &Actor, id: &str) -> Result<ServiceAccount> {
    set_disabled(svc, actor, id, true)
}

/// Enables a disabled account: new tokens can be had with its secret again;
/// those it held when disabled stay ended. It hands the secret's holder the
/// account's scopes back, so it needs what rotating the secret needs
/// (`check_grantable`), and a recent sign-in. Audited.
pub fn enable_service_account(svc: &Service, actor: &Actor, id: &str) -> Result<ServiceAccount> {
    set_disabled(svc, actor, id, false)
}

fn set_disabled(svc: &Service, actor: &Actor, id: &str, disabled: bool) -> Result<ServiceAccount> {
    let (by, src) = (&actor.principal, &actor.source);
    let id = get_service_account(svc, actor, id)?.id;
    actor.require_recent(svc)?;
    let mut tx = svc.store.write()?;
    let mut sa = current_in(&tx, &id)?;
    let ws = sa.workspace.clone();
    if disabled {
        crate::access::check_revocable(svc, by, ws.as_ref(), sa.scope_set())?;
    } else {
        check_grantable(svc, by, ws.as_ref(), sa.scope_set())?;
    }
    if sa.disabled == disabled {
        return Ok(sa);
    }
    sa.disabled = disabled;
    if disabled {
        sa.tokens_epoch = sa.tokens_epoch.saturating_add(1);
    }
    sa.updated_at = svc.now();
    tx.put(Table::ServiceAccounts, sa.id.as_bytes(), &sa)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        if disabled {
            "service_account.disable"
        } else {
            "service_account.enable"
        },
        ws.as_ref(),
        &sa.id,
        serde_json::json!({"name": sa.name}),
    )?;
    tx.commit()?;
    Ok(sa)
}

/// Deletes an account; its tokens are refused on the very next check.
pub fn delete_service_account(svc: &Service, actor: &Actor, id: &str) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let id = get_service_account(svc, actor, id)?.id;
    let mut tx = svc.store.write()?;
    let sa = current_in(&tx, &id)?;
    // Deleting takes away every scope the account holds: what narrowing it to
    // nothing needs.
    crate::access::check_revocable(svc, by, sa.workspace.as_ref(), sa.scope_set())?;
    tx.delete(Table::ServiceAccounts, sa.id.as_bytes())?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "service_account.delete",
        sa.workspace.as_ref(),
        &sa.id,
        serde_json::json!({"name": sa.name}),
    )?;
    tx.commit()
}

/// How much of a client id that names no account the audit log keeps.
pub const CLAIMED_ID_MAX: usize = 64;

/// Client authentication for the token, introspection and revocation
/// endpoints. A wrong id or secret gets one answer; the reason is audited.
pub fn authenticate_client(
    svc: &Service,
    client_id: &str,
    secret: &str,
    src: &Source,
) -> Result<ServiceAccount> {
    // Nobody was authenticated: the caller is anonymous (budgeted by its
    // address, see `access::defer_event`); the id it claimed is only a
    // detail, cut short, and an existing account it named is the target.
    let fail = |reason: &str, target: Option<&str>| -> Result<ServiceAccount> {
        let claimed: String = client_id
            .chars()
            .filter(|c| !c.is_control())
            .take(CLAIMED_ID_MAX)
            .collect();
        let mut ev = audit::NewEvent::new("client.authenticate", Outcome::Failure)
            .details(serde_json::json!({"reason": reason, "client_id": claimed}));
        if let Some(t) = target {
            ev = ev.target(t);
        }
        // Coalesced and group-committed like every refused check.
        crate::access::defer_event(svc, src, ev)?;
        Err(Error::Unauthenticated(
            "Invalid client id or secret.".into(),
        ))
    };
    if !well_formed(CLIENT_SECRET_PREFIX, secret) {
        return fail("malformed_secret", None);
    }
    let snap = snapshot(svc)?;
    let Some(sa) = snap.service_accounts.get(client_id) else {
        return fail("unknown_client", None);
    };
    let given = hex::encode(crypto::sha256(secret.as_bytes()));
    if !crypto::ct_eq(given.as_bytes(), sa.secret_hash.as_bytes()) {
        return fail("wrong_secret", Some(&sa.id));
    }
    if sa.disabled {
        return fail("disabled", Some(&sa.id));
    }
    Ok(sa.clone())
}

/// Applies an account's IP allowlist: `block` refuses, `warn` audits and lets through.
pub fn check_ip(
    svc: &Service,
    sa: &ServiceAccount,
    ip: Option<IpAddr>,
    src: &Source,
) -> Result<()> {
    if sa.ip_allowed(ip) {
        return Ok(());
    }
    let block = sa.ip_mode == IpMode::Block;
    // Coalesced and group-committed like every refused check.
    crate::access::defer_event(
        svc,
        src,
        audit::NewEvent::new(
            "service_account.ip_not_allowed",
            if block {
                Outcome::Denied
            } else {
                Outcome::Success
            },
        )
        .actor(format!("{} ({})", sa.name, sa.id), Some(sa.id.clone()))
        .workspace(sa.workspace.as_ref())
        .details(serde_json::json!({"ip": ip.map(|i| i.to_string()), "mode": sa.ip_mode})),
    )?;
    if block {
        return Err(Error::Forbidden(
            "This service account may not be used from your address.".into(),
        ));
    }
    Ok(())
}

/// The scopes a client-credentials grant gets: all granted ones, or the
/// requested subset; asking for more is refused (`invalid_scope`).
pub fn grant_scopes(sa: &ServiceAccount, requested: Option<&str>) -> Result<Scopes> {
    let granted = sa.scopes();
    match requested.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(granted),
        Some(r) => {
            let want = Scopes::parse_scope("scope", r)?;
            let more = granted.gained_in(&want);
            if !more.is_empty() {
                let extra: Vec<&str> = more.iter().map(|p| p.as_str()).collect();
                return Err(Error::Forbidden(format!(
                    "Scope not granted to this client: {}.",
                    extra.join(" ")
                )));
            }
            Ok(want)
        }
    }
}

/// Where a presented credential is being used from, for IP allowlists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAddress {
    /// The caller's address.
    Known(IpAddr),
    /// The caller is here, but its address cannot be read (a trusted proxy
    /// forwarded an X-Forwarded-For that does not parse): an allowlist refuses.
    Unreadable,
    /// A service asked about a credential (`authorize`) without saying the
    /// end client's address: an allowlisted account answers `ip_required`.
    Unstated,
    /// The credential is not being used by the caller (introspection of a
    /// token, or its account's list was already checked): nothing to check.
    NotApplicable,
}

impl ClientAddress {
    pub fn ip(self) -> Option<IpAddr> {
        match self {
            ClientAddress::Known(ip) => Some(ip),
            _ => None,
        }
    }
}

/// A service account as a caller holding every scope it holds now, or
/// `None` when it was deleted or is disabled: what re-checking an earlier act
/// of it (an SSO link it made) against its current authority needs.
pub fn service_account_as_caller(svc: &Service, id: &str) -> Result<Option<Principal>> {
    let snap = snapshot(svc)?;
    Ok(snap
        .service_accounts
        .get(id)
        .filter(|sa| !sa.disabled)
        .map(|sa| {
            let scopes = sa.scopes();
            Principal::Client(Arc::new(Client {
                kind: ClientKind::ServiceAccount,
                id: sa.id.clone(),
                name: sa.name.clone(),
                workspace: sa.workspace.clone(),
                scopes: scopes.whole,
                narrowed: scopes.narrowed,
                app: None,
                bot: None,
                origins: Vec::new(),
                exp: None,
            }))
        }))
}

/// A service account's access token → the client, with the token's scopes
/// narrowed to what the account holds now, after its IP allowlist was held
/// against `addr`. `tva` is the token's epoch (claim `tva`): one below the
/// account's `tokens_epoch` was ended by a rotation or a narrowing.
pub fn principal_from_client_token(
    svc: &Service,
    client_id: &str,
    scope: &str,
    exp: i64,
    tva: u64,
    addr: ClientAddress,
    src: &Source,
) -> Result<Principal> {
    let snap = snapshot(svc)?;
    let sa = snap
        .service_accounts
        .get(client_id)
        .ok_or_else(|| Error::Unauthenticated("The token's service account was deleted.".into()))?;
    if sa.disabled {
        return Err(Error::Unauthenticated(
            "The token's service account is disabled.".into(),
        ));
    }
    if tva < sa.tokens_epoch {
        return Err(Error::Unauthenticated(
            "The access token has ended (its service account's secret was rotated or its scopes \
             narrowed, or it was disabled); request a new one."
                .into(),
        ));
    }
    match addr {
        ClientAddress::Known(ip) => check_ip(svc, sa, Some(ip), src)?,
        ClientAddress::Unreadable => check_ip(svc, sa, None, src)?,
        ClientAddress::Unstated if !sa.ip_allowlist.is_empty() => return Err(Error::IpRequired),
        ClientAddress::Unstated | ClientAddress::NotApplicable => {}
    }
    let scopes = sa
        .scopes()
        .intersect(&Scopes::parse_scope("scope", scope).unwrap_or_default());
    Ok(Principal::Client(Arc::new(Client {
        kind: ClientKind::ServiceAccount,
        id: sa.id.clone(),
        name: sa.name.clone(),
        workspace: sa.workspace.clone(),
        scopes: scopes.whole,
        narrowed: scopes.narrowed,
        app: None,
        bot: None,
        origins: Vec::new(),
        exp: Some(exp),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_match_ipv4_ipv6_and_mapped_addresses() {
        let mut sa = ServiceAccount {
            id: "sa_x".into(),
            workspace: None,
            name: "x".into(),
            description: String::new(),
            scopes: vec![],
            ip_allowlist: parse_allowlist(&["10.1.0.0/16".into(), "2001:db8::/32".into()])
                .unwrap_or_default(),
            ip_mode: IpMode::Block,
            secret_hash: String::new(),
            created_at: 0,
            updated_at: 0,
            tokens_epoch: 0,
            disabled: false,
        };
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert!(sa.ip_allowed(ip("10.1.2.3")));
        assert!(sa.ip_allowed(ip("::ffff:10.1.2.3")));
        assert!(sa.ip_allowed(ip("2001:db8::1")));
        assert!(!sa.ip_allowed(ip("10.2.0.1")));
        assert!(!sa.ip_allowed(None));
        sa.ip_allowlist.clear();
        assert!(sa.ip_allowed(None));
        assert!(parse_allowlist(&["10.0.0.0/33".into()]).is_err());
    }

    #[test]
    fn loosening_is_any_address_newly_let_through() {
        let sa = |list: &[&str], mode: IpMode| ServiceAccount {
            id: "sa_x".into(),
            workspace: None,
            name: "x".into(),
            description: String::new(),
            scopes: vec![],
            ip_allowlist: list.iter().map(|c| c.to_string()).collect(),
            ip_mode: mode,
            secret_hash: String::new(),
            created_at: 0,
            updated_at: 0,
            tokens_epoch: 0,
            disabled: false,
        };
        let before = sa(&["10.0.0.0/8", "2001:db8::/32"], IpMode::Block);
        let loosens = |list: &[&str], mode| loosens_ip_rules(&before, &sa(list, mode));
        assert!(loosens(&[], IpMode::Block));
        assert!(loosens(&["10.0.0.0/8", "2001:db8::/32"], IpMode::Warn));
        assert!(loosens(&["0.0.0.0/0"], IpMode::Block));
        assert!(loosens(&["10.0.0.0/7"], IpMode::Block));
        assert!(loosens(&["10.0.0.0/8", "192.0.2.0/24"], IpMode::Block));
        // Same, narrower, fewer: not looser.
        assert!(!loosens(&["10.0.0.0/8", "2001:db8::/32"], IpMode::Block));
        assert!(!loosens(&["10.1.0.0/16"], IpMode::Block));
        assert!(!loosens(&["2001:db8:1::/48"], IpMode::Block));
        // No list before: every address already passed.
        let open = sa(&[], IpMode::Block);
        assert!(!loosens_ip_rules(&open, &sa(&[], IpMode::Warn)));
        // Warn → block tightens.
        let warn = sa(&["10.0.0.0/8"], IpMode::Warn);
        assert!(!loosens_ip_rules(
            &warn,
            &sa(&["10.0.0.0/8"], IpMode::Block)
        ));
    }
}
