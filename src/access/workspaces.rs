//! Workspaces (tenants), their members, custom roles and groups. Every change
//! is authorized against the workspace it touches and audited with it.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use super::{
    Actor, BuiltinRole, PermSet, Permission, Principal, Resource, check_grantable, check_revocable,
    clean_name, new_id, parse_id, record_change, snapshot,
};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::{self, UserId};
pub use crate::principal::WorkspaceId;
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: Timestamp,
    /// Shorter session limits for this workspace's members (None: the
    /// installation's). A member of several workspaces gets the shortest.
    #[serde(default)]
    pub session: SessionLimits,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionLimits {
    /// Idle timeout in seconds (at least 60).
    pub idle_timeout_secs: Option<i64>,
    /// Absolute lifetime in seconds (at most 30 days).
    pub absolute_lifetime_secs: Option<i64>,
}

impl SessionLimits {
    fn check(self) -> Result<SessionLimits> {
        if self
            .idle_timeout_secs
            .is_some_and(|i| !(60..=30 * 86_400).contains(&i))
        {
            return Err(Error::invalid(
                "idle_timeout_secs",
                "must be at least 60 seconds and at most 30 days, or null for the installation's",
            ));
        }
        if self
            .absolute_lifetime_secs
            .is_some_and(|a| !(60..=30 * 86_400).contains(&a))
        {
            return Err(Error::invalid(
                "absolute_lifetime_secs",
                "must be between 60 seconds and 30 days, or null for the installation's",
            ));
        }
        if let (Some(i), Some(a)) = (self.idle_timeout_secs, self.absolute_lifetime_secs)
            && i > a
        {
            return Err(Error::invalid(
                "idle_timeout_secs",
                "must not be above absolute_lifetime_secs",
            ));
        }
        Ok(self)
    }

    /// Whether these limits let anything live longer than `before` did: a
    /// limit raised or cleared (`None` is the installation's, never shorter).
    fn loosens(&self, before: &SessionLimits) -> bool {
        let longer = |new: Option<i64>, old: Option<i64>| match (new, old) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(n), Some(o)) => n > o,
        };
        longer(self.idle_timeout_secs, before.idle_timeout_secs)
            || longer(self.absolute_lifetime_secs, before.absolute_lifetime_secs)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    pub workspace: WorkspaceId,
    pub user: UserId,
    pub roles: Vec<String>,
    pub added_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomRole {
    pub id: String,
    pub workspace: WorkspaceId,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub created_at: Timestamp,
}

impl CustomRole {
    pub fn permission_set(&self) -> PermSet {
        PermSet::parse_names("permissions", &self.permissions).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub workspace: WorkspaceId,
    pub name: String,
    pub roles: Vec<String>,
    pub members: Vec<UserId>,
    pub created_at: Timestamp,
}

pub fn get(r: &impl Reader, id: &WorkspaceId) -> Result<Workspace> {
    r.get(Table::Workspaces, id.as_str().as_bytes())?
        .ok_or(Error::NotFound("workspace"))
}

/// Workspaces `by` belongs to (platform admins: all).
pub fn list(svc: &Service, by: &Principal) -> Result<Vec<Workspace>> {
    let snap = snapshot(svc)?;
    let all = by.is_platform_admin();
    let mine: Vec<WorkspaceId> = match by {
        Principal::User { user, .. } => snap
            .user_grants
            .get(&user.id)
            .map(|g| g.iter().map(|(w, _, _)| w.clone()).collect())
            .unwrap_or_default(),
        Principal::Client(c) => c.workspace.iter().cloned().collect(),
        Principal::Local(_) => Vec::new(),
    };
    let mut out: Vec<Workspace> = snap
        .workspaces
        .values()
        .filter(|w| {
            all || mine.contains(&w.id) || by.client().is_some_and(|c| c.workspace.is_none())
        })
        .cloned()
        .collect();
    out.sort_by_key(|w| w.name.to_lowercase());
    Ok(out)
}

/// Fetches one workspace `by` may see.
pub fn show(svc: &Service, actor: &Actor, id: &WorkspaceId) -> Result<Workspace> {
    let by = &actor.principal;
    let w = get(&svc.store.read()?, id)?;
    // Any member may see the workspace itself; the check below audits strangers.
    let snap = snapshot(svc)?;
    let member = by.user_id().is_some_and(|u| {
        snap.user_grants
            .get(u)
            .is_some_and(|g| g.iter().any(|(x, _, _)| *x == w.id))
    });
    if !member {
        actor
            .authorize(svc, Permission::ReadAgents, Resource::Workspace(&w.id))
            .or_else(|_| {
                actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(&w.id))
            })?;
    }
    Ok(w)
}

pub fn create(svc: &Service, actor: &Actor, name: &str) -> Result<Workspace> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageWorkspaces, Resource::Platform)?;
    let w = Workspace {
        id: WorkspaceId::generate()?,
        name: clean_name("name", name)?,
        created_at: svc.now(),
        session: SessionLimits::default(),
    };
    let mut tx = svc.store.write()?;
    if tx
        .scan::<Workspace>(Table::Workspaces, b"")?
        .iter()
        .any(|(_, x)| x.name.eq_ignore_ascii_case(&w.name))
    {
        return Err(Error::Conflict(
            "A workspace with this name already exists.".into(),
        ));
    }
    tx.put(Table::Workspaces, w.id.as_bytes(), &w)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "workspace.create",
        &w.id,
        w.id.as_str(),
        serde_json::json!({"name": w.name}),
    )?;
    tx.commit()?;
    Ok(w)
}

pub fn rename(svc: &Service, actor: &Actor, id: &WorkspaceId, name: &str) -> Result<Workspace> {
    update(svc, actor, id, "workspace.rename", |_, w| {
        let name = clean_name("name", name)?;
        let old = std::mem::replace(&mut w.name, name);
        Ok(serde_json::json!({"from": old, "to": w.name}))
    })
}

/// Sets (or with `None`s clears) the workspace's own session limits. They
/// can only shorten the installation's: the shortest of both applies.
pub fn set_session_limits(
    svc: &Service,
    actor: &Actor,
    id: &WorkspaceId,
    limits: SessionLimits,
) -> Result<Workspace> {
    let by = &actor.principal;
    update(svc, actor, id, "workspace.session_limits", |tx, w| {
        // The limits shorten every member's sessions: whoever sets them must
        // hold what each member holds there (a helpdesk does not log its
        // admins out). Read in the write transaction, so a member added or
        // promoted meanwhile is counted.
        let everyone = grants_in(tx, &w.id)?
            .into_values()
            .fold(PermSet::EMPTY, PermSet::union);
        check_revocable(svc, by, Some(&w.id), everyone).map_err(|_| {
            Error::Forbidden(
                "Session limits reach every member of the workspace: only someone holding every \
                 permission its members hold (e.g. a workspace admin) may change them."
                    .into(),
            )
        })?;
        let limits = limits.check()?;
        // Loosening or clearing a limit lengthens every member's sessions
        // and refresh families, a stolen one's too: a recent sign-in.
        if limits.loosens(&w.session) {
            actor.require_recent(svc)?;
        }
        let old = std::mem::replace(&mut w.session, limits);
        Ok(serde_json::json!({"from": old, "to": w.session}))
    })
}

/// One change to a workspace by its admin: `change` edits the record (or
/// refuses, after reading what it needs in the same transaction) and says
/// what changed; the record and its audit event are
/// written in one transaction.
fn update(
    svc: &Service,
    actor: &Actor,
    id: &WorkspaceId,
    action: &'static str,
    change: impl FnOnce(&WriteTx<'_>, &mut Workspace) -> Result<serde_json::Value>,
) -> Result<Workspace> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(id))?;
    let mut tx = svc.store.write()?;
    let mut w = get(&tx, id)?;
    let details = change(&tx, &mut w)?;
    tx.put(Table::Workspaces, w.id.as_bytes(), &w)?;
    record_change(&mut tx, svc, by, src, action, id, id.as_str(), details)?;
    tx.commit()?;
    Ok(w)
}

/// A user leaving a workspace that has session limits (their membership,
/// or the workspace itself; a group seat needs the membership, so leaving a
/// group lifts nothing) lifts those limits off their later sign-ins: doing
/// it to oneself takes a recent sign-in, so a stale or stolen credential
/// cannot buy itself the looser limits. (Live sessions and refresh
/// families keep the limits pinned on them either way: see
/// `authn::session::Session::ends_at`.) Platform admins answer to the
/// installation's limits only, so they lift nothing.
fn leaving_needs_recent<'a>(
    svc: &Service,
    actor: &Actor,
    w: &Workspace,
    mut leavers: impl Iterator<Item = &'a UserId>,
) -> Result<()> {
    if w.session == SessionLimits::default() || actor.principal.is_platform_admin() {
        return Ok(());
    }
    if let Principal::User { user, .. } = &actor.principal
        && leavers.any(|u| u == &user.id)
    {
        actor.require_recent(svc)?;
    }
    Ok(())
}

/// Deletes a workspace and everything that belongs to it: members, roles,
/// groups, service accounts, API apps and their keys, widget keys.
pub fn delete(svc: &Service, actor: &Actor, id: &WorkspaceId) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageWorkspaces, Resource::Platform)?;
    let mut tx = svc.store.write()?;
    let w = get(&tx, id)?;
    // Deleting removes every member and every credential there: only a
    // caller who could remove each of them directly may (`remove_member`,
    // `delete_service_account`, `delete_app`, `delete_widget_key`).
    let members = grants_in(&tx, id)?;
    leaving_needs_recent(svc, actor, &w, members.keys())?;
    if !members.is_empty() {
        may_remove(svc, by, id, Permission::ManageUsers, "members")?;
        let everyone = members.into_values().fold(PermSet::EMPTY, PermSet::union);
        check_revocable(svc, by, Some(id), everyone)?;
    }
    if let Some(granted) = super::credentials::granted_in_workspace(&tx, id)? {
        may_remove(svc, by, id, Permission::ManageCredentials, "credentials")?;
        check_revocable(svc, by, Some(id), granted)?;
    }
    let mut prefix = id.as_bytes().to_vec();
    prefix.push(0);
    for (k, _) in tx.scan::<Membership>(Table::Members, &prefix)? {
        tx.delete(Table::Members, &k)?;
    }
    for (k, _) in tx.scan::<Timestamp>(Table::WorkspaceClaims, &prefix)? {
        tx.delete(Table::WorkspaceClaims, &k)?;
    }
    for (k, r) in tx.scan::<CustomRole>(Table::Roles, b"")? {
        if r.workspace == *id {
            tx.delete(Table::Roles, &k)?;
        }
    }
    for (k, g) in tx.scan::<Group>(Table::Groups, b"")? {
        if g.workspace == *id {
            tx.delete(Table::Groups, &k)?;
        }
    }
    let removed = super::credentials::delete_all_in_workspace(&mut tx, id)?;
    tx.delete(Table::Workspaces, id.as_bytes())?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "workspace.delete",
        id,
        id.as_str(),
        serde_json::json!({"name": w.name, "credentials_removed": removed}),
    )?;
    tx.commit()
}

/// Refuses unless `by` holds `p` in `ws`, the permission removing `what`
/// one by one needs; decided without a denial audit (the caller holds a
/// write transaction).
fn may_remove(
    svc: &Service,
    by: &Principal,
    ws: &WorkspaceId,
    p: Permission,
    what: &str,
) -> Result<()> {
    if super::decide(svc, by, p, Resource::Workspace(ws))?.allow {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "Deleting the workspace removes its {what}, which needs the {} permission there; \
         remove them first or ask a platform admin.",
        p.as_str()
    )))
}

// ---- members ----

fn member_key(ws: &WorkspaceId, user: &UserId) -> Vec<u8> {
    let mut k = ws.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(user.as_str().as_bytes());
    k
}

/// The one check for handing workspace roles to anyone — a member's roles,
/// a group's roles, or a seat in a group that carries roles: the role ids
/// must exist in `ws` and `by` must hold everything they grant there
/// ("nobody grants what they don't hold"). Returns the ids, deduplicated.
fn check_roles(
    svc: &Service,
    r: &impl Reader,
    by: &Principal,
    ws: &WorkspaceId,
    roles: &[String],
) -> Result<Vec<String>> {
    if roles.is_empty() {
        return Err(Error::invalid(
            "roles",
            "give at least one role (e.g. \"user\")",
        ));
    }
    let (out, perms) = role_permissions(r, ws, roles)?;
    check_grantable(svc, by, Some(ws), perms)?;
    Ok(out)
}

/// What the role ids grant together in `ws`; an unknown id is refused by name.
fn role_permissions(
    r: &impl Reader,
    ws: &WorkspaceId,
    roles: &[String],
) -> Result<(Vec<String>, PermSet)> {
    let mut out = Vec::new();
    let mut perms = PermSet::EMPTY;
    for id in roles {
        let id = id.trim();
        let set = match BuiltinRole::parse(id) {
            Some(BuiltinRole::PlatformAdmin) => {
                return Err(Error::invalid(
                    "roles",
                    "platform_admin is not a workspace role; make the user an admin instead",
                ));
            }
            Some(b) => b.permissions(),
            None => {
                let r: Option<CustomRole> = if super::valid_id("rol_", id) {
                    r.get(Table::Roles, id.as_bytes())?
                } else {
                    None
                };
                match r {
                    Some(r) if r.workspace == *ws => r.permission_set(),
                    _ => {
                        return Err(Error::invalid(
                            "roles",
                            format!(
                                "unknown role \"{id}\" in this workspace; GET /api/v1/roles lists them"
                            ),
                        ));
                    }
                }
            }
        };
        perms = perms.union(set);
        if !out.iter().any(|x: &String| x == id) {
            out.push(id.to_string());
        }
    }
    Ok((out, perms))
}

/// What each member holds in `ws` (directly and through groups), read in
/// the caller's transaction so that a change can be compared before/after.
fn grants_in(r: &impl Reader, ws: &WorkspaceId) -> Result<HashMap<UserId, PermSet>> {
    let mut cache: HashMap<String, PermSet> = HashMap::new();
    let mut out: HashMap<UserId, PermSet> = HashMap::new();
    let mut prefix = ws.as_bytes().to_vec();
    prefix.push(0);
    for (_, m) in r.scan::<Membership>(Table::Members, &prefix)? {
        let p = held_through(r, ws, &m.roles, &mut cache)?;
        let e = out.entry(m.user).or_default();
        *e = e.union(p);
    }
    for (_, g) in r.scan::<Group>(Table::Groups, b"")? {
        if g.workspace != *ws {
            continue;
        }
        let p = held_through(r, ws, &g.roles, &mut cache)?;
        for u in g.members {
            let e = out.entry(u).or_default();
            *e = e.union(p);
        }
    }
    Ok(out)
}

/// What stored role ids grant in `ws`, as the access snapshot counts them
/// (an id that no longer exists grants nothing).
fn held_through(
    r: &impl Reader,
    ws: &WorkspaceId,
    ids: &[String],
    cache: &mut HashMap<String, PermSet>,
) -> Result<PermSet> {
    let mut set = PermSet::EMPTY;
    for id in ids {
        let p = match BuiltinRole::parse(id) {
            Some(BuiltinRole::PlatformAdmin) => PermSet::workspace_all(),
            Some(b) => b.permissions(),
            None => match cache.get(id) {
                Some(p) => *p,
                None => {
                    let role: Option<CustomRole> = if super::valid_id("rol_", id) {
                        r.get(Table::Roles, id.as_bytes())?
                    } else {
                        None
                    };
                    let p = role
                        .filter(|c| c.workspace == *ws)
                        .map(|c| c.permission_set())
                        .unwrap_or_default();
                    cache.insert(id.clone(), p);
                    p
                }
            },
        };
        set = set.union(p);
    }
    Ok(set)
}

/// After a change in `tx`: refuses it (the caller then drops `tx`) unless
/// `by` holds every permission some member of `ws` lost by it.
fn check_taken(
    svc: &Service,
    r: &impl Reader,
    by: &Principal,
    ws: &WorkspaceId,
    before: &HashMap<UserId, PermSet>,
) -> Result<()> {
    let after = grants_in(r, ws)?;
    let taken = before.iter().fold(PermSet::EMPTY, |t, (u, b)| {
        t.union(b.minus(after.get(u).copied().unwrap_or_default()))
    });
    check_revocable(svc, by, Some(ws), taken)
}

pub fn members(svc: &Service, actor: &Actor, ws: &WorkspaceId) -> Result<Vec<Membership>> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(ws))?;
    let r = svc.store.read()?;
    get(&r, ws)?;
    let mut prefix = ws.as_bytes().to_vec();
    prefix.push(0);
    Ok(r.scan::<Membership>(Table::Members, &prefix)?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

/// Creates a new user straight into workspace `ws` (a workspace admin's way
/// to add people): platform role `user` only, with the given workspace
/// roles. The user, the membership and both audit records are written in one
/// transaction, the records tagged with the workspace so its admins see them.
///
/// Platform-level callers get the user back (`Some`), or a conflict when the
/// address exists. Callers below platform level get `None` whatever
/// happened, so the answer tells nothing about which addresses exist: a new
/// address becomes a user and member; an existing account the workspace may
/// claim (`claim`) is added as a member with these roles if it is not one
/// yet (its password untouched); any other existing account is left alone
/// (audited as `user_not_claimable`). The password is hashed either way.
pub async fn create_member(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    new: identity::NewUser,
    roles: &[String],
) -> Result<Option<(identity::User, Membership)>> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(ws))?;
    // Roles are a grant that outlives the token: a recent sign-in.
    if !roles.is_empty() {
        actor.require_recent(svc)?;
    }
    if new.role != identity::Role::User {
        return Err(Error::Forbidden(
            "Users created in a workspace get the platform role \"user\"; a platform admin makes admins."
                .into(),
        ));
    }
    let name = identity::clean_name(&new.name)?;
    identity::check_password_policy(
        new.password.expose(),
        &new.email,
        svc.settings.password.min_length,
        identity::PasswordOf::Other,
    )?;
    let (roles, existing) = {
        let r = svc.store.read()?;
        get(&r, ws)?;
        let roles = check_roles(svc, &r, by, ws, roles)?;
        let existing = identity::find_by_email(svc, &r, &new.email)?;
        let member = match &existing {
            Some(u) => r
                .get::<Membership>(Table::Members, &member_key(ws, &u.id))?
                .is_some(),
            None => false,
        };
        (roles, existing.map(|u| (u, member)))
    };
    if let Some((u, member)) = existing {
        if by.is_platform_level() {
            return Err(Error::Conflict(
                "A user with this e-mail address exists already: add them as a member instead."
                    .into(),
            ));
        }
        // As long as a new user's creation takes.
        svc.hasher.hash(new.password).await?;
        if !member {
            match set_member(svc, actor, ws, &u.id, &roles) {
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(None);
    }
    let hash = svc.hasher.hash(new.password).await?;
    let now = svc.now();
    let user = identity::User {
        id: UserId::generate()?,
        email: new.email,
        name,
        password_hash: Some(hash),
        role: identity::Role::User,
        disabled: false,
        must_change_password: false,
        created_at: now,
        updated_at: now,
    };
    let mut tx = svc.store.write()?;
    get(&tx, ws)?;
    identity::insert(svc, &mut tx, &user)?;
    let m = Membership {
        workspace: ws.clone(),
        user: user.id.clone(),
        roles,
        added_at: now,
    };
    tx.put(Table::Members, &member_key(ws, &user.id), &m)?;
    tx.put(Table::WorkspaceClaims, &member_key(ws, &user.id), &now)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "user.create",
        ws,
        user.id.as_str(),
        serde_json::json!({"email": user.email.as_str(), "role": "user", "via": "workspace"}),
    )?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "member.add",
        ws,
        user.id.as_str(),
        serde_json::json!({"email": user.email.as_str(), "roles": m.roles, "previous": null}),
    )?;
    tx.commit()?;
    Ok(by.is_platform_level().then_some((user, m)))
}

/// Whether workspace `ws` may take `user` in: a platform admin (or a
/// platform-level client) places anyone, and the placement is remembered; a
/// workspace's own admin adds only users the workspace created or a platform
/// admin placed in it, never a platform admin or the owner. A refusal answers
/// exactly like an unknown user, so it tells nothing about who exists.
fn claim(
    svc: &Service,
    tx: &mut WriteTx<'_>,
    by: &Principal,
    ws: &WorkspaceId,
    user: &identity::User,
) -> Result<bool> {
    let key = member_key(ws, &user.id);
    if by.is_platform_level() {
        tx.put(Table::WorkspaceClaims, &key, &svc.now())?;
        return Ok(true);
    }
    let claimed = tx.get::<Timestamp>(Table::WorkspaceClaims, &key)?.is_some();
    Ok(claimed && !user.is_admin())
}

/// Adds the user with this e-mail address to `ws` (or replaces their roles
/// there). An unknown address and a user the workspace may not claim get the
/// same answer.
pub fn add_member_by_email(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    email: &identity::Email,
    roles: &[String],
) -> Result<Membership> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(ws))?;
    let user =
        identity::find_by_email(svc, &svc.store.read()?, email)?.ok_or(Error::NotFound("user"))?;
    set_member(svc, actor, ws, &user.id, roles)
}

pub fn set_member(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    user: &UserId,
    roles: &[String],
) -> Result<Membership> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(ws))?;
    // Roles are a grant that outlives the token: a recent sign-in.
    if !roles.is_empty() {
        actor.require_recent(svc)?;
    }
    let mut tx = svc.store.write()?;
    get(&tx, ws)?;
    let u = identity::get(&tx, user)?;
    let key = member_key(ws, user);
    let before: Option<Membership> = tx.get(Table::Members, &key)?;
    let claimable = claim(svc, &mut tx, by, ws, &u)?;
    if before.is_none() && !claimable {
        drop(tx);
        // On the platform's log only, not the workspace's: its admins would
        // otherwise read there which addresses have an account (an unknown
        // address records nothing, a new one `user.create`), while platform
        // admins, who may see every account, still learn of the attempt.
        super::defer_event(
            svc,
            src,
            by.event("access.denied", crate::audit::Outcome::Denied)
                .details(serde_json::json!({
                    "permission": Permission::ManageUsers.as_str(),
                    "reason": "user_not_claimable",
                    "resource": ws,
                })),
        )?;
        return Err(Error::NotFound("user"));
    }
    let roles = check_roles(svc, &tx, by, ws, roles)?;
    let m = Membership {
        workspace: ws.clone(),
        user: user.clone(),
        roles,
        added_at: before.as_ref().map(|b| b.added_at).unwrap_or(svc.now()),
    };
    let grants = grants_in(&tx, ws)?;
    tx.put(Table::Members, &key, &m)?;
    check_taken(svc, &tx, by, ws, &grants)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        if before.is_some() {
            "member.update"
        } else {
            "member.add"
        },
        ws,
        user.as_str(),
        serde_json::json!({"email": u.email.as_str(), "roles": m.roles, "previous": before.map(|b| b.roles)}),
    )?;
    tx.commit()?;
    Ok(m)
}

pub fn remove_member(svc: &Service, actor: &Actor, ws: &WorkspaceId, user: &UserId) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(ws))?;
    let mut tx = svc.store.write()?;
    let w = get(&tx, ws)?;
    leaving_needs_recent(svc, actor, &w, std::iter::once(user))?;
    let grants = grants_in(&tx, ws)?;
    if !tx.delete(Table::Members, &member_key(ws, user))? {
        return Err(Error::NotFound("member"));
    }
    for (k, mut g) in tx.scan::<Group>(Table::Groups, b"")? {
        if g.workspace == *ws && g.members.contains(user) {
            g.members.retain(|m| m != user);
            tx.put(Table::Groups, &k, &g)?;
        }
    }
    check_taken(svc, &tx, by, ws, &grants)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "member.remove",
        ws,
        user.as_str(),
        serde_json::Value::Null,
    )?;
    tx.commit()
}

/// Called when a user is deleted: drops their memberships, group seats and
/// the workspaces' claims on them.
pub fn forget_user(tx: &mut WriteTx<'_>, user: &UserId) -> Result<()> {
    for (k, m) in tx.scan::<Membership>(Table::Members, b"")? {
        if &m.user == user {
            tx.delete(Table::Members, &k)?;
        }
    }
    for (k, _) in tx.scan::<Timestamp>(Table::WorkspaceClaims, b"")? {
        if k.ends_with(&[b"\0", user.as_str().as_bytes()].concat()) {
            tx.delete(Table::WorkspaceClaims, &k)?;
        }
    }
    for (k, mut g) in tx.scan::<Group>(Table::Groups, b"")? {
        if g.members.contains(user) {
            g.members.retain(|m| m != user);
            tx.put(Table::Groups, &k, &g)?;
        }
    }
    Ok(())
}

// ---- custom roles ----

/// Built-in roles, then the custom roles of the workspaces `by` administers.
pub fn roles(svc: &Service, by: &Principal, ws: Option<&WorkspaceId>) -> Result<Vec<CustomRole>> {
    let visible = super::workspaces_with(svc, by, Permission::ManageUsers)?;
    let snap = snapshot(svc)?;
    let mut out: Vec<CustomRole> = snap
        .roles
        .values()
        .filter(|r| visible.contains(&r.workspace) && ws.is_none_or(|w| *w == r.workspace))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The workspace a new role or group goes to: the one named, or the actor's
/// only workspace where it may manage users (`access::resolve_workspace`).
/// The create itself checks the permission there.
pub fn workspace_for_new(svc: &Service, actor: &Actor, named: Option<&str>) -> Result<WorkspaceId> {
    super::resolve_workspace(svc, &actor.principal, Permission::ManageUsers, named)
}

pub fn create_role(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    description: &str,
    permissions: &[String],
) -> Result<CustomRole> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(ws))?;
    // A role is a grant to whoever gets it: a recent sign-in.
    actor.require_recent(svc)?;
    let set = PermSet::parse_names("permissions", permissions)?;
    if set.is_empty() {
        return Err(Error::invalid(
            "permissions",
            "give at least one permission from the catalogue",
        ));
    }
    check_grantable(svc, by, Some(ws), set)?;
    let r = CustomRole {
        id: new_id("rol_")?,
        workspace: ws.clone(),
        name: clean_name("name", name)?,
        description: description.trim().chars().take(500).collect(),
        permissions: set.names(),
        created_at: svc.now(),
    };
    let mut tx = svc.store.write()?;
    get(&tx, ws)?;
    tx.put(Table::Roles, r.id.as_bytes(), &r)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "role.create",
        ws,
        &r.id,
        serde_json::json!({"name": r.name, "permissions": r.permissions}),
    )?;
    tx.commit()?;
    Ok(r)
}

pub fn get_role(svc: &Service, actor: &Actor, id: &str) -> Result<CustomRole> {
    let id = parse_id("rol_", id, "role")?;
    let r: CustomRole = svc
        .store
        .read()?
        .get(Table::Roles, id.as_bytes())?
        .ok_or(Error::NotFound("role"))?;
    actor.authorize(
        svc,
        Permission::ManageUsers,
        Resource::Workspace(&r.workspace),
    )?;
    Ok(r)
}

/// Changes a role's name or permissions; members holding it get the change at once.
pub fn update_role(
    svc: &Service,
    actor: &Actor,
    id: &str,
    name: Option<&str>,
    permissions: Option<&[String]>,
) -> Result<CustomRole> {
    let (by, src) = (&actor.principal, &actor.source);
    // Authorizes on the role's workspace (which never changes); the record is
    // read inside the write, so a concurrent delete is not undone (review 4,
    // finding 5).
    let id = get_role(svc, actor, id)?.id;
    if permissions.is_some() {
        // It reaches everyone holding the role at once: a recent sign-in.
        actor.require_recent(svc)?;
    }
    let mut tx = svc.store.write()?;
    let mut r: CustomRole = tx
        .get(Table::Roles, id.as_bytes())?
        .ok_or(Error::NotFound("role"))?;
    if let Some(n) = name {
        r.name = clean_name("name", n)?;
    }
    if let Some(p) = permissions {
        let set = PermSet::parse_names("permissions", p)?;
        check_grantable(svc, by, Some(&r.workspace), set)?;
        r.permissions = set.names();
    }
    let grants = grants_in(&tx, &r.workspace)?;
    tx.put(Table::Roles, r.id.as_bytes(), &r)?;
    check_taken(svc, &tx, by, &r.workspace, &grants)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "role.update",
        &r.workspace,
        &r.id,
        serde_json::json!({"name": r.name, "permissions": r.permissions}),
    )?;
    tx.commit()?;
    Ok(r)
}

/// Deletes a role and takes it from every member and group that had it.
pub fn delete_role(svc: &Service, actor: &Actor, id: &str) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let r = get_role(svc, actor, id)?;
    let mut tx = svc.store.write()?;
    let grants = grants_in(&tx, &r.workspace)?;
    let mut prefix = r.workspace.as_bytes().to_vec();
    prefix.push(0);
    for (k, mut m) in tx.scan::<Membership>(Table::Members, &prefix)? {
        if m.roles.contains(&r.id) {
            m.roles.retain(|x| *x != r.id);
            tx.put(Table::Members, &k, &m)?;
        }
    }
    for (k, mut g) in tx.scan::<Group>(Table::Groups, b"")? {
        if g.roles.contains(&r.id) {
            g.roles.retain(|x| *x != r.id);
            tx.put(Table::Groups, &k, &g)?;
        }
    }
    tx.delete(Table::Roles, r.id.as_bytes())?;
    check_taken(svc, &tx, by, &r.workspace, &grants)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "role.delete",
        &r.workspace,
        &r.id,
        serde_json::json!({"name": r.name}),
    )?;
    tx.commit()
}

// ---- groups ----

pub fn groups(svc: &Service, by: &Principal, ws: Option<&WorkspaceId>) -> Result<Vec<Group>> {
    let visible = super::workspaces_with(svc, by, Permission::ManageUsers)?;
    let mut out: Vec<Group> = svc
        .store
        .read()?
        .scan::<Group>(Table::Groups, b"")?
        .into_iter()
        .map(|(_, g)| g)
        .filter(|g| visible.contains(&g.workspace) && ws.is_none_or(|w| *w == g.workspace))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn get_group(svc: &Service, actor: &Actor, id: &str) -> Result<Group> {
    let id = parse_id("grp_", id, "group")?;
    let g: Group = svc
        .store
        .read()?
        .get(Table::Groups, id.as_bytes())?
        .ok_or(Error::NotFound("group"))?;
    actor.authorize(
        svc,
        Permission::ManageUsers,
        Resource::Workspace(&g.workspace),
    )?;
    Ok(g)
}

/// Members of a group must be members of its workspace.
fn check_group_members(
    r: &impl Reader,
    ws: &WorkspaceId,
    members: &[UserId],
) -> Result<Vec<UserId>> {
    let mut out: Vec<UserId> = Vec::new();
    for u in members {
        if r.get::<Membership>(Table::Members, &member_key(ws, u))?
            .is_none()
        {
            return Err(Error::invalid(
                "members",
                format!(
                    "{} is not a member of this workspace; add them first",
                    u.as_str()
                ),
            ));
        }
        if !out.contains(u) {
            out.push(u.clone());
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)] // create and update share one validation path
pub fn save_group(
    svc: &Service,
    actor: &Actor,
    existing: Option<&str>,
    ws: Option<&WorkspaceId>,
    name: Option<&str>,
    roles: Option<&[String]>,
    members: Option<&[UserId]>,
) -> Result<Group> {
    let (by, src) = (&actor.principal, &actor.source);
    // Roles and seats are grants that outlive the token: a recent sign-in.
    if roles.is_some_and(|r| !r.is_empty()) || members.is_some_and(|m| !m.is_empty()) {
        actor.require_recent(svc)?;
    }
    let mut g = match existing {
        Some(id) => get_group(svc, actor, id)?,
        None => {
            let ws = ws.ok_or(Error::NotFound("workspace"))?;
            actor.authorize(svc, Permission::ManageUsers, Resource::Workspace(ws))?;
            Group {
                id: new_id("grp_")?,
                workspace: ws.clone(),
                name: String::new(),
                roles: Vec::new(),
                members: Vec::new(),
                created_at: svc.now(),
            }
        }
    };
    if let Some(n) = name {
        g.name = clean_name("name", n)?;
    } else if existing.is_none() {
        return Err(Error::invalid("name", "is required"));
    }
    let mut tx = svc.store.write()?;
    get(&tx, &g.workspace)?;
    // The stored group as it stands now (not as read before the write): a
    // concurrent change or delete is neither undone nor revived.
    if existing.is_some() {
        let mut now: Group = tx
            .get(Table::Groups, g.id.as_bytes())?
            .ok_or(Error::NotFound("group"))?;
        if name.is_some() {
            now.name = std::mem::take(&mut g.name);
        }
        g = now;
    }
    let grants = grants_in(&tx, &g.workspace)?;
    if let Some(r) = roles {
        g.roles = if r.is_empty() {
            Vec::new()
        } else {
            check_roles(svc, &tx, by, &g.workspace, r)?
        };
    }
    if let Some(m) = members {
        let before = std::mem::take(&mut g.members);
        g.members = check_group_members(&tx, &g.workspace, m)?;
        // A seat in the group is a grant of its roles: whoever seats anyone
        // (themselves included) must hold what the group's roles grant.
        if !g.roles.is_empty() && g.members.iter().any(|u| !before.contains(u)) {
            check_roles(svc, &tx, by, &g.workspace, &g.roles)?;
        }
    }
    tx.put(Table::Groups, g.id.as_bytes(), &g)?;
    check_taken(svc, &tx, by, &g.workspace, &grants)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        if existing.is_some() {
            "group.update"
        } else {
            "group.create"
        },
        &g.workspace,
        &g.id,
        serde_json::json!({"name": g.name, "roles": g.roles, "members": g.members.len()}),
    )?;
    tx.commit()?;
    Ok(g)
}

pub fn delete_group(svc: &Service, actor: &Actor, id: &str) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let g = get_group(svc, actor, id)?;
    let mut tx = svc.store.write()?;
    let grants = grants_in(&tx, &g.workspace)?;
    tx.delete(Table::Groups, g.id.as_bytes())?;
    check_taken(svc, &tx, by, &g.workspace, &grants)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "group.delete",
        &g.workspace,
        &g.id,
        serde_json::json!({"name": g.name}),
    )?;
    tx.commit()
}
