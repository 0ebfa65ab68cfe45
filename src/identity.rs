//! Users: e-mail and id types, the password policy, and user records with
//! their blind e-mail index and their queries. Checking a password is
//! `authn`; who may change a user is `access`; the operations that change
//! users (create, update, delete, set a password) are `users`.

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
    pub password: crate::principal::Password,
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

#[cfg(test)]
mod tests {
    use super::*;

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
