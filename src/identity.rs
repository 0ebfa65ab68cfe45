//! Users: e-mail and id types, the password policy, and user records with
//! their blind e-mail index. Checking a password is `authn`; who may change a
//! user is `access`.

use crate::access::{Actor, Permission, Principal, Resource};
use crate::audit::{self, Outcome, Source};
use crate::authn::revoke::Sessions;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

pub use crate::principal::{Email, Role, USER_CACHE_MAX, User, UserId};

const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "password1234",
    "passwordpassword",
    "qwertyuiopas",
    "111111111111",
    "123123123123",
    "iloveyou1234",
    "adminadmin12",
    "administrator",
    "welcome12345",
    "letmein12345",
    "changeme1234",
    "qwerty123456",
    "password123!",
    "1q2w3e4r5t6y",
    "abcdefghijkl",
    "000000000000",
    "passw0rd1234",
    "superman1234",
    "trustno1trustno1",
    "correcthorsebatterystaple",
    "monkeymonkey",
    "dragondragon",
    "football1234",
    "baseball1234",
    "sunshine1234",
    "princess1234",
    "qazwsxedcrfv",
    "zaq12wsxcde3",
];

/// Whose password a policy check is about, so its words speak to the one
/// typing it: the user choosing their own, or an admin setting another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordOf {
    Own,
    Other,
}

/// Length at least `min_len`, not the e-mail address nor containing the part
/// of it before the @ (when that has 4 characters or more), not a common
/// password, at least 4 different characters. Each refusal says which rule,
/// to the user (`Own`) or to the admin setting it for `email` (`Other`).
pub fn check_password_policy(
    pw: &str,
    email: &Email,
    min_len: usize,
    of: PasswordOf,
) -> Result<()> {
    let (subject, their) = match of {
        PasswordOf::Own => (String::from("must"), "your"),
        PasswordOf::Other => (
            format!("the password you set for {} must", email.as_str()),
            "their",
        ),
    };
    let refuse = |rule: String| Err(Error::invalid("password", format!("{subject} {rule}")));
    let n = pw.chars().count();
    if n < min_len {
        return refuse(format!(
            "be at least {min_len} characters long (this one has {n})"
        ));
    }
    if n > 1024 {
        return refuse("be at most 1024 characters long".into());
    }
    let lower = pw.to_lowercase();
    let local = email.as_str().split('@').next().unwrap_or_default();
    if lower == email.as_str() {
        return refuse(format!("not be {their} e-mail address"));
    }
    if local.chars().count() >= 4 && lower.contains(local) {
        return refuse(format!(
            "not contain the part of {their} e-mail address before the @ (\"{local}\")"
        ));
    }
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return refuse(
            "not be on the list of commonly used passwords (like password1234); choose another"
                .into(),
        );
    }
    let distinct: std::collections::HashSet<char> = pw.chars().collect();
    if distinct.len() < 4 {
        return refuse(format!(
            "use at least 4 different characters (this one uses {})",
            distinct.len()
        ));
    }
    Ok(())
}

pub(crate) fn email_index(svc: &Service, email: &Email) -> Result<[u8; 32]> {
    svc.store.blind_index("email", email.as_str())
}

pub fn find_by_email(svc: &Service, r: &impl Reader, email: &Email) -> Result<Option<User>> {
    let idx = email_index(svc, email)?;
    match r.get::<String>(Table::UsersByEmail, &idx)? {
        Some(id) => r.get::<User>(Table::Users, id.as_bytes()),
        None => Ok(None),
    }
}

pub fn get(r: &impl Reader, id: &UserId) -> Result<User> {
    r.get::<User>(Table::Users, id.as_str().as_bytes())?
        .ok_or(Error::NotFound("user"))
}

/// One user, read in its own snapshot.
pub fn find(svc: &Service, id: &UserId) -> Result<User> {
    get(&svc.store.read()?, id)
}

/// The users named by `ids` that exist (and open), in the order named.
pub fn find_many(svc: &Service, ids: &[UserId]) -> Result<Vec<User>> {
    let r = svc.store.read()?;
    Ok(ids.iter().filter_map(|id| get(&r, id).ok()).collect())
}

/// Reads a user through the service's cache. Any committed write to the users
/// table invalidates every cached entry, so a disabled or deleted user is
/// refused on the very next check.
pub fn get_cached(svc: &Service, id: &UserId) -> Result<std::sync::Arc<User>> {
    svc.identity
        .users
        .get_or_load(&svc.store, id, |r| {
            r.get(Table::Users, id.as_str().as_bytes())
        })?
        .ok_or(Error::NotFound("user"))
}

pub type UserCache = crate::store::TableCache<UserId, User>;

/// This module's state in `Service` (`svc.identity`): users by id with the
/// users-table generation they were read at (see `get_cached`).
pub struct Caches {
    users: UserCache,
    counts: UserCountsCache,
}

impl Caches {
    pub(crate) fn new() -> Caches {
        Caches {
            users: crate::store::TableCache::new(Table::Users, USER_CACHE_MAX),
            counts: crate::store::TableCache::new(Table::Users, 1),
        }
    }
}

/// How many users there are, and how many of them are disabled or admins.
pub struct UserCounts {
    pub total: usize,
    pub disabled: usize,
    pub admins: usize,
}

/// The counts, kept while the users table is unchanged (see `user_counts`).
pub type UserCountsCache = crate::store::TableCache<(), UserCounts>;

/// `UserCounts`, counted once per change to the users table (sign-ins are
/// not changes: they live in their own table), so showing them costs a
/// look-up, not a scan of every user.
pub fn user_counts(svc: &Service) -> Result<std::sync::Arc<UserCounts>> {
    svc.identity
        .counts
        .get_or_load(&svc.store, &(), |r| {
            let mut c = UserCounts {
                total: 0,
                disabled: 0,
                admins: 0,
            };
            for (_, u) in r.scan::<User>(Table::Users, b"usr_")? {
                c.total += 1;
                c.disabled += usize::from(u.disabled);
                c.admins += usize::from(u.is_admin());
            }
            Ok(Some(c))
        })?
        .ok_or(Error::NotFound("user"))
}

/// When the user last signed in. Kept in its own table, not in the user
/// record: a sign-in must not count as a change to the identity, which would
/// throw away every cached user and every reused access answer.
pub fn last_sign_in(r: &impl Reader, id: &UserId) -> Result<Option<Timestamp>> {
    r.get(Table::LastSignIns, id.as_str().as_bytes())
}

pub fn stamp_sign_in(tx: &mut WriteTx<'_>, id: &UserId, at: Timestamp) -> Result<()> {
    tx.put(Table::LastSignIns, id.as_str().as_bytes(), &at)
}

pub fn owner_exists(r: &impl Reader) -> Result<bool> {
    Ok(r.get::<String>(Table::Meta, b"owner_id")?.is_some())
}

/// Inserts a new user (password already hashed) with its index, in `tx`.
pub fn insert(svc: &Service, tx: &mut WriteTx<'_>, user: &User) -> Result<()> {
    let idx = email_index(svc, &user.email)?;
    if tx.get::<String>(Table::UsersByEmail, &idx)?.is_some() {
        return Err(Error::Conflict(
            "A user with this e-mail address already exists.".into(),
        ));
    }
    tx.put(Table::UsersByEmail, &idx, &user.id.as_str())?;
    tx.put(Table::Users, user.id.as_str().as_bytes(), user)?;
    if user.role == Role::Owner {
        tx.put(Table::Meta, b"owner_id", &user.id.as_str())?;
    }
    Ok(())
}

/// Writes a changed user, moving the e-mail index if the address changed.
pub fn save(svc: &Service, tx: &mut WriteTx<'_>, before: &User, after: &User) -> Result<()> {
    if before.email != after.email {
        let new_idx = email_index(svc, &after.email)?;
        if tx.get::<String>(Table::UsersByEmail, &new_idx)?.is_some() {
            return Err(Error::Conflict(
                "A user with this e-mail address already exists.".into(),
            ));
        }
        tx.delete(Table::UsersByEmail, &email_index(svc, &before.email)?)?;
        tx.put(Table::UsersByEmail, &new_idx, &after.id.as_str())?;
    }
    tx.put(Table::Users, after.id.as_str().as_bytes(), after)
}

pub struct NewUser {
    pub email: Email,
    pub name: String,
    pub password: crate::authn::password::Password,
    pub role: Role,
}

pub(crate) fn clean_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.chars().count() > 200 || n.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            "name",
            "must be at most 200 characters, without control characters",
        ));
    }
    Ok(n.to_string())
}

/// Creates a user (`admin:users` on the platform): policy, hash (on the
/// blocking pool), insert and audit in one transaction.
pub async fn create(svc: &Service, actor: &Actor, new: NewUser) -> Result<User> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    // An account above `user` is a way to keep what a stolen token holds.
    if new.role != Role::User {
        actor.require_recent(svc)?;
    }
    let (by, src) = (&actor.principal, &actor.source);
    crate::access::check_platform_role_grantable(svc, by, new.role)?;
    let name = clean_name(&new.name)?;
    check_password_policy(
        new.password.expose(),
        &new.email,
        svc.settings.password.min_length,
        PasswordOf::Other,
    )?;
    if find_by_email(svc, &svc.store.read()?, &new.email)?.is_some() {
        return Err(Error::Conflict(
            "A user with this e-mail address already exists.".into(),
        ));
    }
    let hash = svc.hasher.hash(new.password).await?;
    let now = svc.now();
    let user = User {
        id: UserId::generate()?,
        email: new.email,
        name,
        password_hash: Some(hash),
        role: new.role,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let mut tx = svc.store.write()?;
    insert(svc, &mut tx, &user)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("user.create", Outcome::Success)
            .target(user.id.as_str())
            .details(serde_json::json!({"email": user.email.as_str(), "role": user.role.as_str()})),
    )?;
    tx.commit()?;
    Ok(user)
}

/// A page of users matching `q` (substring of e-mail or name), ordered by e-mail.
pub fn list(r: &impl Reader, q: &str, offset: usize, limit: usize) -> Result<(Vec<User>, usize)> {
    let q = q.trim().to_lowercase();
    let mut all: Vec<User> = r
        .scan::<User>(Table::Users, b"usr_")?
        .into_iter()
        .map(|(_, u)| u)
        .filter(|u| {
            q.is_empty() || u.email.as_str().contains(&q) || u.name.to_lowercase().contains(&q)
        })
        .collect();
    all.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
    let total = all.len();
    Ok((all.into_iter().skip(offset).take(limit).collect(), total))
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub email: Option<Email>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// Changes a user (`admin:users` on the platform), with the guards of each
/// field, and audits it in the same transaction.
pub fn update(svc: &Service, actor: &Actor, id: &UserId, up: UserUpdate) -> Result<User> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    // A role or an e-mail address decides who holds the account.
    if up.role.is_some() || up.email.is_some() {
        actor.require_recent(svc)?;
    }
    let (by, src) = (&actor.principal, &actor.source);
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let before = get(&tx, id)?;
    let mut after = before.clone();
    let mut changed = serde_json::Map::new();
    if let Some(n) = up.name {
        after.name = clean_name(&n)?;
        changed.insert("name".into(), true.into());
    }
    if let Some(e) = up.email {
        crate::access::guard_admin_path(by, &before, "e-mail address", OWN_EMAIL)?;
        changed.insert(
            "email".into(),
            serde_json::json!({"from": before.email.as_str(), "to": e.as_str()}),
        );
        after.email = e;
    }
    if let Some(r) = up.role {
        if before.role == Role::Owner {
            return Err(Error::Conflict(
                "The owner's role cannot be changed.".into(),
            ));
        }
        crate::access::check_platform_role_grantable(svc, by, r)?;
        // Taking a platform role away needs the same as giving it, or a
        // demotion would open the account to `guard_credentials`' lesser rule.
        crate::access::check_platform_role_grantable(svc, by, before.role)?;
        changed.insert("role".into(), r.as_str().into());
        after.role = r;
    }
    if let Some(d) = up.disabled {
        if before.role == Role::Owner && d {
            return Err(Error::Conflict("The owner cannot be disabled.".into()));
        }
        if by.user_id() == Some(id) && d {
            return Err(Error::Conflict(
                "You cannot disable your own account.".into(),
            ));
        }
        crate::access::guard_credentials(by, &before, "account")?;
        after.disabled = d;
    }
    after.updated_at = now;
    save(svc, &mut tx, &before, &after)?;
    let action = match up.disabled {
        Some(true) if !before.disabled => "user.disable",
        Some(false) if before.disabled => "user.enable",
        _ => "user.update",
    };
    if after.disabled {
        crate::authn::revoke::end_everything(&mut tx, id, now, Sessions::End)?;
    } else if after.role != before.role {
        // A role the security policy demands MFA for, and no second factor
        // yet: what the user holds is confined like a policy change confines
        // it (sessions open enrollment only; tokens and refresh families end).
        let policy = crate::policy::current(svc)?;
        if policy.mfa_required_for(&after)
            && !policy.mfa_required_for(&before)
            && !crate::authn::mfa::required(&tx, id)?
        {
            crate::authn::revoke::end_everything(&mut tx, id, now, Sessions::ConfineToEnrollment)?;
            changed.insert("confined_to_mfa_enrollment".into(), true.into());
        }
    }
    audit::record(
        &mut tx,
        now,
        src,
        by.event(action, Outcome::Success)
            .target(id.as_str())
            .details(changed.into()),
    )?;
    tx.commit()?;
    Ok(after)
}

/// Deletes a user (`admin:users` on the platform) and everything they hold,
/// audited in the same transaction.
pub fn delete(svc: &Service, actor: &Actor, id: &UserId) -> Result<()> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    let (by, src) = (&actor.principal, &actor.source);
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let user = get(&tx, id)?;
    if user.role == Role::Owner {
        return Err(Error::Conflict("The owner cannot be deleted.".into()));
    }
    if by.user_id() == Some(id) {
        return Err(Error::Conflict(
            "You cannot delete your own account.".into(),
        ));
    }
    crate::access::guard_credentials(by, &user, "account")?;
    tx.delete(Table::UsersByEmail, &email_index(svc, &user.email)?)?;
    tx.delete(Table::Users, id.as_str().as_bytes())?;
    tx.delete(Table::LastSignIns, id.as_str().as_bytes())?;
    crate::authn::revoke::end_everything(&mut tx, id, now, Sessions::End)?;
    crate::access::workspaces::forget_user(&mut tx, id)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("user.delete", Outcome::Success)
            .target(id.as_str())
            .details(serde_json::json!({"email": user.email.as_str()})),
    )?;
    tx.commit()
}

/// Where a user changes their own e-mail address (the admin path refuses it).
pub const OWN_EMAIL: &str =
    "Change it with POST /api/v1/me/email, with your password and a current code.";
/// Where a user changes their own password (the admin path refuses it).
pub const OWN_PASSWORD: &str = "Change it under My account (/admin/account) or with POST /api/v1/me/password, with your current password.";

/// An administrator (`admin:users` on the platform) sets a new password for
/// another user (policy-checked, hashed) and ends that user's sessions,
/// refresh tokens and access tokens. Never the caller's own
/// (`guard_admin_path`): that is `authn::change_password`, which asks for the
/// current one.
pub async fn set_password(
    svc: &Service,
    actor: &Actor,
    id: &UserId,
    pw: crate::authn::password::Password,
    action: &'static str,
) -> Result<()> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    let user = get(&svc.store.read()?, id)?;
    crate::access::guard_admin_path(by, &user, "password", OWN_PASSWORD)?;
    write_password(svc, by, src, id, pw, None, action).await
}

/// Writes a new password (policy-checked, hashed) and ends the user's
/// sessions, refresh tokens and access tokens, except the session `keep`
/// (the one making the change). Callers have checked who may: an admin
/// (`set_password`), the user with their current password
/// (`authn::change_password`), a recovery link.
pub(crate) async fn write_password(
    svc: &Service,
    by: &Principal,
    src: &Source,
    id: &UserId,
    pw: crate::authn::password::Password,
    keep: Option<&[u8]>,
    action: &'static str,
) -> Result<()> {
    let user = get(&svc.store.read()?, id)?;
    crate::access::guard_credentials(by, &user, "password")?;
    // The user's own choice (their change, a recovery link) or an admin's.
    let of = if by.user_id() == Some(id) || action == "user.password_recovered" {
        PasswordOf::Own
    } else {
        PasswordOf::Other
    };
    check_password_policy(
        pw.expose(),
        &user.email,
        svc.settings.password.min_length,
        of,
    )?;
    let hash = svc.hasher.hash(pw).await?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let before = get(&tx, id)?;
    let mut after = before.clone();
    after.password_hash = Some(hash);
    after.updated_at = now;
    save(svc, &mut tx, &before, &after)?;
    crate::authn::revoke::end_everything(&mut tx, id, now, Sessions::except(keep))?;
    crate::authn::lockout::clear(&mut tx, id)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event(action, Outcome::Success).target(id.as_str()),
    )?;
    tx.commit()
}

/// The signed-in user changes their own e-mail address, once they proved it
/// is them: password and a current second factor (`authn::confirm`, purpose
/// `user.email_change`) — e-mail codes go to the new address from then on.
/// The sign-in must be recent (`Actor::require_recent`).
pub async fn change_own_email(
    svc: &Service,
    actor: &Actor,
    email: Email,
    proof: &crate::authn::Proof<'_>,
) -> Result<User> {
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    let user = by.user().ok_or_else(|| {
        Error::Forbidden("Only a signed-in user changes their own e-mail address.".into())
    })?;
    // Whether the address is taken is answered only after the proof
    // (by `save`), so a token alone enumerates no addresses.
    crate::authn::confirm(
        svc,
        user,
        proof,
        crate::authn::Need::PasswordAndFactor,
        "user.email_change",
        None,
        src,
    )
    .await?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let before = get(&tx, &user.id)?;
    let mut after = before.clone();
    after.email = email;
    after.updated_at = now;
    save(svc, &mut tx, &before, &after)?;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("user.email_change", Outcome::Success)
            .target(user.id.as_str())
            .details(
                serde_json::json!({"from": before.email.as_str(), "to": after.email.as_str()}),
            ),
    )?;
    tx.commit()?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &std::path::Path) -> Service {
        let mut s = crate::config::Settings::load(None, Vec::<(String, String)>::new()).unwrap();
        s.data_dir = dir.to_path_buf();
        let clock = std::sync::Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        Service::open(s, clock).unwrap()
    }

    fn user(email: &str, role: Role) -> User {
        User {
            id: UserId::generate().unwrap(),
            email: Email::parse(email).unwrap(),
            name: String::new(),
            password_hash: None,
            role,
            disabled: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// The operations check `admin:users` themselves: a caller that skips
    /// the handler's check still cannot create, change, delete or reset.
    #[tokio::test]
    async fn the_operations_refuse_an_actor_without_admin_users() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let (weak, target) = (
            user("weak@example.com", Role::User),
            user("target@example.com", Role::User),
        );
        let mut tx = svc.store.write().unwrap();
        insert(&svc, &mut tx, &weak).unwrap();
        insert(&svc, &mut tx, &target).unwrap();
        tx.commit().unwrap();
        let actor = Actor::new(
            Principal::User {
                user: std::sync::Arc::new(weak),
                session: None,
            },
            Source::default(),
            Some(svc.now()),
        );
        let refused = |r: Result<()>| match r {
            Err(Error::Forbidden(m)) => assert!(m.contains("admin:users"), "{m}"),
            other => panic!("not refused: {other:?}"),
        };
        refused(delete(&svc, &actor, &target.id));
        refused(
            update(
                &svc,
                &actor,
                &target.id,
                UserUpdate {
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .map(|_| ()),
        );
        refused(
            set_password(
                &svc,
                &actor,
                &target.id,
                crate::authn::password::Password::new("violet-harbour-lantern"),
                "user.password_reset",
            )
            .await,
        );
        let new = NewUser {
            email: Email::parse("new@example.com").unwrap(),
            name: String::new(),
            password: crate::authn::password::Password::new("violet-harbour-lantern"),
            role: Role::User,
        };
        refused(create(&svc, &actor, new).await.map(|_| ()));
        let after = find(&svc, &target.id).unwrap();
        assert!(!after.disabled);
        assert!(after.password_hash.is_none());
        assert!(
            find_by_email(
                &svc,
                &svc.store.read().unwrap(),
                &Email::parse("new@example.com").unwrap()
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "@x.org",
            "a@",
            "a b@x.org",
            "a@.x",
            "a@x..org",
            "<a@x.org>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_policy_says_why() {
        let e = Email::parse("alice@example.com").unwrap();
        let msg = |p: &str| {
            check_password_policy(p, &e, 12, PasswordOf::Own)
                .unwrap_err()
                .to_string()
        };
        assert!(msg("short").contains("at least 12 characters long (this one has 5)"));
        assert!(msg("alice@example.com").contains("must not be your e-mail address"));
        assert!(
            msg("my-alice-password").contains(
                "must not contain the part of your e-mail address before the @ (\"alice\")"
            )
        );
        assert!(msg("password1234").contains("commonly used"));
        assert!(msg("aaaaaaaaaaaaaa").contains("at least 4 different characters"));
        assert!(check_password_policy("violet-harbour-lantern", &e, 12, PasswordOf::Own).is_ok());
        let admin = check_password_policy("my-alice-password", &e, 12, PasswordOf::Other)
            .unwrap_err()
            .to_string();
        assert!(
            admin.contains(
                "the password you set for alice@example.com must not contain the part of their \
                 e-mail address before the @"
            ),
            "{admin}"
        );
    }

    #[test]
    fn user_id_parses_only_its_own_shape() {
        let id = UserId::generate().unwrap();
        assert_eq!(UserId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "usr_",
            "usr_../../etc",
            "abc_0123456789abcdef0123",
            "usr_0123456789ABCDEF0123",
        ] {
            assert!(UserId::parse(bad).is_err());
        }
    }
}
