//! Links between an IdP identity (connection and subject) and a Gatehouse
//! user: the stored record, and an admin's explicit link and unlink.

use serde::{Deserialize, Serialize};

use crate::access::{Actor, ClientKind, Permission, Principal, Resource, Rights};
use crate::audit::{self, Outcome};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::{self, Role, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table};

use super::{Failure, SsoSettings, get, is_excluded, parse_id, settings};

/// `connection \0 blind index of the subject`: some IdPs use the e-mail
/// address as the subject, and none may appear in the file in the clear.
pub(super) fn link_key(svc: &Service, conn: &str, subject: &str) -> Result<Vec<u8>> {
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
pub(super) fn refuse_email_link(s: &SsoSettings, user: &User, subject: &str) -> Failure {
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

/// An admin's explicit link of an existing user to an identity at a
/// connection (the IdP's subject: the refused sign-in's audit event names
/// it). The owner and SSO-excluded users are never linked; an identity
/// already linked to another user must be unlinked first. Needs
/// `manage:security` on the platform, the authority to link that user
/// (`guard_link_authority`) and a recent sign-in. The link remembers its
/// maker and what the user holds now (`standing`); linking an identity
/// already linked to the same user writes both anew, which re-approves a
/// link that needed it. Audited.
pub fn link_user(
    svc: &Service,
    actor: &Actor,
    user: &UserId,
    connection: &str,
    subject: &str,
) -> Result<()> {
    authorize_linking(svc, actor)?;
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
    let lk = link_key(svc, connection, subject)?;
    write_admin_link(svc, actor, user, connection, lk, Some(subject))
}

/// Re-approves one of a user's links as the console lists it (`reference`:
/// `LinkInfo::reference`), without its subject: what linking the identity
/// again does (`link_user`), with the same checks.
pub fn reapprove_link(
    svc: &Service,
    actor: &Actor,
    user: &UserId,
    connection: &str,
    reference: &str,
) -> Result<()> {
    authorize_linking(svc, actor)?;
    let connection =
        parse_id(connection).map_err(|_| Error::invalid("connection", "is not a connection id"))?;
    let index = hex::decode(reference.trim())
        .ok()
        .filter(|i| i.len() == 32)
        .ok_or(Error::NotFound("SSO link"))?;
    let mut lk = connection.as_bytes().to_vec();
    lk.push(0);
    lk.extend_from_slice(&index);
    if svc
        .store
        .read()?
        .get::<String>(Table::SsoLinks, &lk)?
        .is_none_or(|v| Link::decode(&v).user != user.as_str())
    {
        return Err(Error::NotFound("SSO link"));
    }
    write_admin_link(svc, actor, user, connection, lk, None)
}

/// `manage:security` and `admin:users` on the platform (each refusal
/// audited) and a recent sign-in: what making or re-approving a link takes
/// before anything is looked at.
fn authorize_linking(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    // A link is a way into the account: `admin:users` too (audited when refused).
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    actor.require_recent(svc)
}

/// Writes an admin's link at `lk` (made by the actor, with what the user
/// holds now), after the rules on the user: `guard_link_authority`, never an
/// SSO-excluded user or the owner, never one's own, never an identity linked
/// to another user. `subject` is named in the audit event when known.
fn write_admin_link(
    svc: &Service,
    actor: &Actor,
    user: &UserId,
    connection: &str,
    lk: Vec<u8>,
    subject: Option<&str>,
) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let mut tx = svc.store.write()?;
    let conn =
        get(&tx, connection).map_err(|_| Error::invalid("connection", "no such connection"))?;
    let u = identity::get(&tx, user)?;
    guard_link_authority(svc, by, &u)?;
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
        svc,
        by,
        &u,
        "SSO links",
        "Another administrator links your account to an identity provider.",
    )?;
    let before = tx
        .get::<String>(Table::SsoLinks, &lk)?
        .map(|v| Link::decode(&v));
    let mut reapproved = false;
    match &before {
        Some(l) if l.user == u.id.as_str() => {
            reapproved = standing(svc, &tx, l, &u)? == Standing::NeedsReapproval;
        }
        Some(_) => {
            return Err(Error::Conflict(
                "This identity is linked to another user; delete that link first.".into(),
            ));
        }
        None => {}
    }
    let made = Made {
        by: LinkMaker::of(by),
        at: svc.now(),
        rights: Rights::of(svc, &u)?,
    };
    tx.put(
        Table::SsoLinks,
        &lk,
        &Link::encode(Some(LinkVia::Admin), &u.id, made)?,
    )?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("sso.link", Outcome::Success)
            .target(u.id.as_str())
            .details(
                serde_json::json!({"connection": conn.id, "subject": subject, "via": "admin",
                "role": u.role.as_str(), "reapproved": reapproved}),
            ),
    )?;
    tx.commit()
}

/// Every user linked at `connection` (each once), disabled ones included
/// (they may be enabled again), and how many links there are.
fn linked_users(r: &impl Reader, connection: &str) -> Result<(Vec<User>, usize)> {
    let mut out: Vec<User> = Vec::new();
    let mut links = 0;
    for (_, v) in r.scan::<String>(Table::SsoLinks, format!("{connection}\0").as_bytes())? {
        links += 1;
        let Ok(id) = UserId::parse(&Link::decode(&v).user) else {
            continue;
        };
        if let Ok(u) = identity::get(r, &id)
            && !out.iter().any(|x| x.id == u.id)
        {
            out.push(u);
        }
    }
    Ok((out, links))
}

/// What a change at a connection does to the users linked there, for
/// [`guard_relinking`]'s refusal.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Relink {
    /// Whom it trusts changed: the new IdP signs in as each of them.
    Trust,
    /// Its role rules changed: each gets another role at the next sign-in.
    Roles,
}

impl Relink {
    fn says(self) -> &'static str {
        match self {
            Relink::Trust => {
                "alters whom the connection trusts (issuer, certificates, URLs, client \
                 credentials, realm or what it accepts), which re-links everyone linked at it"
            }
            Relink::Roles => {
                "changes the role rules (attribute, rules or default role), which give everyone \
                 linked at the connection another role at their next sign-in"
            }
        }
    }
}

/// The one rule for pointing a user's SSO identity at a connection (an
/// explicit link, re-linking everyone at a connection whose trust changes,
/// taking a linked user out of the excluded users): the IdP then signs in as
/// that user, skipping their password and Gatehouse MFA, so only a caller
/// who manages accounts may — `admin:users` on the platform — and only for
/// an account whose credentials they may change (`guard_credentials`: the
/// owner's by the owner, a platform admin's by a platform admin).
/// `manage:security` alone configures connections, never whom they sign in
/// as. No side effects (no denial audit: callers may hold a write
/// transaction; `link_user` audits its own refusal first).
pub(crate) fn guard_link_authority(svc: &Service, by: &Principal, target: &User) -> Result<()> {
    if !crate::access::decide(svc, by, Permission::ManageUsers, Resource::Platform)?.allow {
        return Err(Error::Forbidden(
            "Linking a user to an identity provider lets it sign in as them: it needs the \
             admin:users permission on the platform (manage:security alone does not)."
                .into(),
        ));
    }
    crate::access::guard_credentials(svc, by, target, "SSO links")
}

/// Changing whom a connection trusts re-links everyone linked at it: the new
/// IdP signs in as each of them, whatever their role is then (a user linked
/// today may be promoted tomorrow). Changing its role rules changes each
/// linked user's role at their next sign-in, as an admin changing it would.
/// So a connection with any link makes either change only for a caller who
/// could link each of those users anew and change their role
/// (`guard_link_authority`: the `admin:users` permission on the platform and
/// `guard_credentials` for each; for an admin, a platform admin). A lesser caller is told to unlink them
/// first or to ask a platform admin. No side effects (no denial audit: the
/// caller holds a write transaction).
pub(crate) fn guard_relinking(
    svc: &Service,
    r: &impl Reader,
    by: &Principal,
    connection: &str,
    change: Relink,
) -> Result<()> {
    let (users, links) = linked_users(r, connection)?;
    if links == 0 {
        return Ok(());
    }
    // Links whose users are gone still re-link whoever gets that id: the
    // permission half of the rule applies to them.
    let mut refused = users.is_empty()
        && !crate::access::decide(svc, by, Permission::ManageUsers, Resource::Platform)?.allow;
    for u in &users {
        refused |= guard_link_authority(svc, by, u).is_err();
    }
    if !refused {
        return Ok(());
    }
    let admins: Vec<&str> = users
        .iter()
        .filter(|u| u.role != Role::User)
        .map(|u| u.email.as_str())
        .collect();
    Err(Error::Forbidden(format!(
        "This change {}: {links} link(s) to {} user(s){}. Only a caller who may link each of \
         them (the admin:users permission on the platform; for platform admins, a platform \
         admin; for workspace members, what they hold there too) may make it: unlink them first (DELETE /api/v1/users/{{id}}/sso-links), or ask \
         a platform admin.",
        change.says(),
        users.len(),
        if admins.is_empty() {
            String::new()
        } else {
            format!(", platform admins among them: {}", admins.join(", "))
        },
    )))
}

/// Whether `by` may link `user` anew and change their role: what reviving
/// their links (taking them out of the SSO-excluded users) needs.
pub(crate) fn may_relink(svc: &Service, by: &Principal, user: &User) -> Result<bool> {
    Ok(guard_link_authority(svc, by, user).is_ok())
}

/// Deleting a connection removes every link at it: only a caller who may
/// remove each of them directly (`unlink_user`: `guard_credentials` for its
/// user) may. No side effects, like `guard_relinking`.
pub(crate) fn guard_unlinking(
    svc: &Service,
    r: &impl Reader,
    by: &Principal,
    connection: &str,
) -> Result<()> {
    let (users, _) = linked_users(r, connection)?;
    let refused: Vec<&str> = users
        .iter()
        .filter(|u| crate::access::guard_credentials(svc, by, u, "SSO links").is_err())
        .map(|u| u.email.as_str())
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "Deleting the connection removes the SSO links of users whose links only a platform \
         admin (or, for the owner, the owner; for a workspace member, someone holding what they \
         hold there) may remove: {}. Ask a platform admin.",
        refused.join(", ")
    )))
}

/// Whether `user` is linked at any connection.
pub(crate) fn has_links(r: &impl Reader, user: &UserId) -> Result<bool> {
    Ok(r.scan::<String>(Table::SsoLinks, b"")?
        .iter()
        .any(|(_, v)| Link::decode(v).user == user.as_str()))
}

/// Removes a user's link to an identity at a connection (`manage:security`
/// on the platform and a recent sign-in). Audited.
pub fn unlink_user(
    svc: &Service,
    actor: &Actor,
    user: &UserId,
    connection: &str,
    subject: &str,
) -> Result<()> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    let mut tx = svc.store.write()?;
    crate::access::guard_credentials(svc, by, &identity::get(&tx, user)?, "SSO links")?;
    let lk = link_key(svc, connection, subject.trim())?;
    let linked = tx.get::<String>(Table::SsoLinks, &lk)?;
    if linked.as_deref().map(|v| Link::decode(v).user).as_deref() != Some(user.as_str()) {
        return Err(Error::NotFound("SSO link"));
    }
    tx.delete(Table::SsoLinks, &lk)?;
    // What the IdP signed in through this link ends with it (SSO sessions
    // are browser sessions only: no refresh token or access token is made
    // from one).
    let ended = crate::authn::session::end_sso(
        &mut tx,
        crate::authn::session::SsoSessions::UserAt(user, connection),
    )?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("sso.unlink", Outcome::Success)
            .target(user.as_str())
            .details(serde_json::json!({"connection": connection, "subject": subject.trim(), "sessions_ended": ended})),
    )?;
    tx.commit()
}

/// How a link between an IdP identity and a user was made. Records without
/// it were written by versions that also linked by e-mail, so a link into an
/// administrator counts only when it says `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum LinkVia {
    Admin,
    Jit,
}

/// Whose authority a link stands on: who made it (an admin's explicit link),
/// or who last set the trust of the connection that made it just in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum LinkMaker {
    User(UserId),
    ServiceAccount(String),
    /// A local operator (the CLI, the control socket).
    Local,
    /// Nobody known: a link written before links named their maker, or made
    /// just in time at a connection whose trust was set before connections
    /// named who set it. It vouches for nothing beyond what the user held.
    Unknown,
}

impl LinkMaker {
    /// The maker a link made by `p` names.
    pub(crate) fn of(p: &Principal) -> LinkMaker {
        match p {
            Principal::User { user, .. } => LinkMaker::User(user.id.clone()),
            Principal::Client(c) if c.kind == ClientKind::ServiceAccount => {
                LinkMaker::ServiceAccount(c.id.clone())
            }
            // API and widget keys are bound to a workspace: they never hold
            // `admin:users` on the platform, so they make no links.
            Principal::Client(_) => LinkMaker::Unknown,
            Principal::Local(_) => LinkMaker::Local,
        }
    }

    /// The maker as a caller with what it holds now; `None` when it is gone,
    /// disabled or unknown (then it vouches for nothing).
    fn as_caller(&self, svc: &Service, r: &impl Reader) -> Result<Option<Principal>> {
        Ok(match self {
            LinkMaker::User(id) => {
                identity::get(r, id)
                    .ok()
                    .filter(|u| !u.disabled)
                    .map(|u| Principal::User {
                        user: std::sync::Arc::new(u),
                        session: None,
                    })
            }
            LinkMaker::ServiceAccount(id) => {
                crate::access::credentials::service_account_as_caller(svc, id)?
            }
            LinkMaker::Local => Some(Principal::Local("local operator")),
            LinkMaker::Unknown => None,
        })
    }

    /// Who made it, in words for the console.
    fn describe(&self, r: &impl Reader) -> String {
        match self {
            LinkMaker::User(id) => match identity::get(r, id) {
                Ok(u) => u.email.as_str().to_string(),
                Err(_) => format!("a deleted user ({})", id.as_str()),
            },
            LinkMaker::ServiceAccount(id) => format!("service account {id}"),
            LinkMaker::Local => "a local operator".into(),
            LinkMaker::Unknown => "unknown".into(),
        }
    }
}

/// Who made a link, when, and what its user held then.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Made {
    pub(super) by: LinkMaker,
    pub(super) at: Timestamp,
    pub(super) rights: Rights,
}

/// A stored link. Kept as text in `SsoLinks`: today a JSON object; older
/// versions wrote `admin:` or `jit:` before the user id, and the oldest the
/// bare user id (`Link::decode` reads all three).
pub(super) struct Link {
    pub(super) user: String,
    pub(super) via: Option<LinkVia>,
    /// `None` in records written before links remembered their maker.
    pub(super) made: Option<Made>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    /// `None`: an old record's link that did not say how it was made.
    #[serde(default)]
    via: Option<LinkVia>,
    user: UserId,
    #[serde(flatten)]
    made: Made,
}

impl Link {
    pub(super) fn encode(via: Option<LinkVia>, user: &UserId, made: Made) -> Result<String> {
        serde_json::to_string(&Record {
            via,
            user: user.clone(),
            made,
        })
        .map_err(|e| Error::internal_caused("sso link record", e))
    }

    pub(super) fn decode(v: &str) -> Link {
        if v.starts_with('{') {
            return match serde_json::from_str::<Record>(v) {
                Ok(r) => Link {
                    user: r.user.as_str().to_string(),
                    via: r.via,
                    made: Some(r.made),
                },
                // Unreadable: it links nobody (no user has an empty id).
                Err(_) => Link {
                    user: String::new(),
                    via: None,
                    made: None,
                },
            };
        }
        let (user, via) = match v.split_once(':') {
            Some(("admin", u)) => (u, Some(LinkVia::Admin)),
            Some(("jit", u)) => (u, Some(LinkVia::Jit)),
            _ => (v, None),
        };
        Link {
            user: user.to_string(),
            via,
            made: None,
        }
    }
}

/// Where a link stands at a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// It signs the user in.
    Good,
    /// Written before links remembered their maker, into a plain user with
    /// no workspace grant: it signs them in as before, and what they hold now is recorded as what
    /// it vouches for (no maker: anything more needs an admin's re-link).
    Baseline,
    /// The user now holds more than the link's maker could link (or the
    /// maker is gone): it signs nobody in until an admin with that
    /// authority links the identity again.
    NeedsReapproval,
}

/// The one rule for a link at a sign-in, whatever raised the user's rights
/// since it was made (a platform role, a workspace seat or role, a group, a
/// custom role's edit, the connection's role rules): when `user` — as the
/// sign-in would make them, `role` being the role it gives — holds more than
/// when the link was made, its maker must still pass `guard_link_authority`
/// against them now. Read-only.
pub(super) fn standing(
    svc: &Service,
    r: &impl Reader,
    link: &Link,
    user: &User,
) -> Result<Standing> {
    let Some(made) = &link.made else {
        // Written before links remembered their maker: nobody knows who
        // made it, so it vouches only for a plain user with no workspace
        // grant (review 7: a workspace admin keeps platform role `user`, and
        // an old link planted by a helpdesk client would have been baselined
        // with the admin seat it was never allowed to link).
        let plain = Rights {
            role: Role::User,
            workspaces: Vec::new(),
        };
        return Ok(if Rights::of(svc, user)?.exceed(&plain) {
            Standing::NeedsReapproval
        } else {
            Standing::Baseline
        });
    };
    if !Rights::of(svc, user)?.exceed(&made.rights) {
        return Ok(Standing::Good);
    }
    Ok(match made.by.as_caller(svc, r)? {
        Some(by) if guard_link_authority(svc, &by, user).is_ok() => Standing::Good,
        _ => Standing::NeedsReapproval,
    })
}

/// The refusal of a sign-in through a link that needs re-approval: the
/// words say what the user and the admin do.
pub const STALE_LINK: &str = "link_needs_reapproval";

pub(super) fn refuse_stale_link(user: &User) -> Failure {
    Failure::new(
        STALE_LINK,
        format!(
            "the identity is linked to {}, who now holds more than whoever linked it may link \
             (a role, workspace or group was given after the link was made): an administrator \
             who may link this user must re-link the account (the console's user page, or POST \
             /api/v1/users/{}/sso-links)",
            user.email.as_str(),
            user.id.as_str()
        ),
    )
}

/// One of a user's links as the console's user page lists it.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub connection: String,
    pub connection_name: String,
    /// `admin` or `jit` (empty: an old record that does not say).
    pub via: &'static str,
    pub made_by: String,
    pub made_at: Option<Timestamp>,
    pub needs_reapproval: bool,
    /// Names the link to `reapprove_link` without the subject (which is
    /// stored only as a blind index): the key's index part, in hex.
    pub reference: String,
}

/// A user's SSO links, for someone who may manage users on the platform,
/// each marked when it needs re-approval (`standing`, with the role the
/// user holds now).
pub fn user_links(svc: &Service, actor: &Actor, user: &UserId) -> Result<Vec<LinkInfo>> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    let r = svc.store.read()?;
    let u = identity::get(&r, user)?;
    let mut out = Vec::new();
    for (k, v) in r.scan::<String>(Table::SsoLinks, b"")? {
        let l = Link::decode(&v);
        if l.user != u.id.as_str() {
            continue;
        }
        let Some(zero) = k.iter().position(|b| *b == 0) else {
            continue;
        };
        let connection = String::from_utf8_lossy(&k[..zero]).into_owned();
        let connection_name = get(&r, &connection).map(|c| c.name).unwrap_or_default();
        let standing = standing(svc, &r, &l, &u)?;
        out.push(LinkInfo {
            connection_name,
            connection,
            via: match l.via {
                Some(LinkVia::Admin) => "admin",
                Some(LinkVia::Jit) => "jit",
                None => "",
            },
            made_by: l
                .made
                .as_ref()
                .map_or_else(|| "unknown".into(), |m| m.by.describe(&r)),
            made_at: l.made.as_ref().map(|m| m.at),
            needs_reapproval: standing == Standing::NeedsReapproval,
            reference: hex::encode(&k[zero + 1..]),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod link_tests {
    use super::*;
    use crate::access::WorkspaceRights;
    use crate::principal::WorkspaceId;

    fn rights(role: Role, ws: &[(&str, &[&str])]) -> Rights {
        Rights {
            role,
            workspaces: ws
                .iter()
                .map(|(w, p)| WorkspaceRights {
                    workspace: WorkspaceId::parse(w).unwrap_or_else(|_| unreachable!()),
                    permissions: p.iter().map(|x| x.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn links_say_how_they_were_made_and_old_ones_say_nothing() {
        let u = UserId::parse("usr_0123456789abcdef0123").unwrap_or_else(|_| unreachable!());
        let made = Made {
            by: LinkMaker::ServiceAccount("sa_x".into()),
            at: 7,
            rights: rights(Role::User, &[("ws_0123456789abcdef0123", &["use:agents"])]),
        };
        let admin = Link::encode(Some(LinkVia::Admin), &u, made.clone()).unwrap();
        let d = Link::decode(&admin);
        assert_eq!((d.user.as_str(), d.via), (u.as_str(), Some(LinkVia::Admin)));
        let m = d.made.unwrap();
        assert_eq!(
            (m.by, m.at, m.rights),
            (made.by.clone(), 7, made.rights.clone())
        );
        let jit = Link::encode(Some(LinkVia::Jit), &u, made).unwrap();
        assert_eq!(Link::decode(&jit).via, Some(LinkVia::Jit));
        // Records from before this version: a tag and the user id, or the
        // bare user id; neither names a maker.
        let tagged = Link::decode("admin:usr_0123456789abcdef0123");
        assert_eq!(
            (tagged.user.as_str(), tagged.via),
            (u.as_str(), Some(LinkVia::Admin))
        );
        assert!(tagged.made.is_none());
        let old = Link::decode(u.as_str());
        assert_eq!((old.user.as_str(), old.via), (u.as_str(), None));
        assert!(old.made.is_none());
        // An unreadable record links nobody.
        assert_eq!(Link::decode("{not json").user, "");
    }

    #[test]
    fn rights_exceed_by_role_or_by_any_workspace_permission() {
        let ws = "ws_0123456789abcdef0123";
        let other = "ws_aaaaaaaaaaaaaaaaaaaa";
        let then = rights(Role::User, &[(ws, &["use:agents", "read:audit"])]);
        assert!(!then.exceed(&then));
        assert!(!rights(Role::User, &[]).exceed(&then));
        assert!(!rights(Role::User, &[(ws, &["use:agents"])]).exceed(&then));
        assert!(rights(Role::Admin, &[]).exceed(&then));
        assert!(rights(Role::User, &[(ws, &["use:agents", "admin:users"])]).exceed(&then));
        assert!(rights(Role::User, &[(other, &["use:agents"])]).exceed(&then));
        assert!(!rights(Role::Admin, &[]).exceed(&rights(Role::Admin, &[])));
        assert!(rights(Role::Owner, &[]).exceed(&rights(Role::Admin, &[])));
        // A platform admin holds everything: a seat adds nothing.
        assert!(!rights(Role::Admin, &[(ws, &["admin:users"])]).exceed(&rights(Role::Admin, &[])));
        // A name the catalogue no longer knows is not held.
        assert!(!rights(Role::User, &[(ws, &["gone:perm"])]).exceed(&rights(Role::User, &[])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Email;

    /// Linking and unlinking check `manage:security` themselves, before
    /// anything about the connection or the subject is looked at.
    #[test]
    fn link_and_unlink_refuse_an_actor_without_manage_security() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::config::Settings::load(None, Vec::<(String, String)>::new()).unwrap();
        s.data_dir = dir.path().to_path_buf();
        let clock = std::sync::Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        let svc = Service::open(s, clock).unwrap();
        let weak = User {
            id: UserId::generate().unwrap(),
            email: Email::parse("weak@example.com").unwrap(),
            name: String::new(),
            password_hash: None,
            role: Role::User,
            disabled: false,
            must_change_password: false,
            created_at: 0,
            updated_at: 0,
        };
        let target = UserId::generate().unwrap();
        let actor = Actor::new(
            Principal::User {
                user: std::sync::Arc::new(weak),
                session: None,
            },
            crate::audit::Source::default(),
            Some(svc.now()),
        );
        let refused = |r: Result<()>| match r {
            Err(Error::Forbidden(m)) => assert!(m.contains("manage:security"), "{m}"),
            other => panic!("not refused: {other:?}"),
        };
        refused(link_user(&svc, &actor, &target, "conn", "subject"));
        refused(unlink_user(&svc, &actor, &target, "conn", "subject"));
    }
}
