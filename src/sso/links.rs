//! Links between an IdP identity (connection and subject) and a Gatehouse
//! user: the stored record, and an admin's explicit link and unlink.

use crate::access::{Actor, Permission, Principal, Resource};
use crate::audit::{self, Outcome};
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
/// (`guard_link_authority`) and a recent sign-in. Audited.
pub fn link_user(
    svc: &Service,
    actor: &Actor,
    user: &UserId,
    connection: &str,
    subject: &str,
) -> Result<()> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    // A link is a way into the account: `admin:users` too (audited when refused).
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
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

/// Every user linked at `connection` (each once), disabled ones included
/// (they may be enabled again), and how many links there are.
fn linked_users(r: &impl Reader, connection: &str) -> Result<(Vec<User>, usize)> {
    let mut out: Vec<User> = Vec::new();
    let mut links = 0;
    for (_, v) in r.scan::<String>(Table::SsoLinks, format!("{connection}\0").as_bytes())? {
        links += 1;
        let Ok(id) = UserId::parse(Link::decode(&v).user) else {
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
    if linked.as_deref().map(|v| Link::decode(v).user) != Some(user.as_str()) {
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

/// How a link between an IdP identity and a user was made, kept in the link
/// record as `admin:` or `jit:` before the user id. Records without it were
/// written by versions that also linked by e-mail, so a link into an
/// administrator counts only when it says `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkVia {
    Admin,
    Jit,
}

pub(super) struct Link<'a> {
    pub(super) user: &'a str,
    pub(super) via: Option<LinkVia>,
}

impl<'a> Link<'a> {
    pub(super) fn encode(via: LinkVia, user: &UserId) -> String {
        let tag = match via {
            LinkVia::Admin => "admin",
            LinkVia::Jit => "jit",
        };
        format!("{tag}:{}", user.as_str())
    }

    pub(super) fn decode(v: &'a str) -> Link<'a> {
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
