//! Read-only views of a user's sign-in state for the console and the API: lock
//! state, last sign-in, sessions and second factors, each read in one snapshot.
//! The `_for` queries are the admin's views: they take the actor and check
//! `ManageUsers` themselves, before the id from the URL is parsed.

use crate::access::{Actor, Permission, Resource};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::identity::{self, User, UserId};
use crate::service::Service;
use crate::store::Reader;

use super::{lockout, mfa, session};

/// A user's lock end and last sign-in, as the user lists show them.
pub struct UserStatus {
    pub locked_until: Option<Timestamp>,
    pub last_sign_in: Option<Timestamp>,
}

fn status_in(r: &impl Reader, id: &UserId, now: Timestamp) -> Result<UserStatus> {
    Ok(UserStatus {
        locked_until: lockout::locked_until(r, id, now)?,
        last_sign_in: identity::last_sign_in(r, id)?,
    })
}

/// Whether setup is done (an owner exists): a spent setup link then says to
/// sign in, not to ask for a new link.
pub fn owner_exists(svc: &Service) -> Result<bool> {
    identity::owner_exists(&svc.store.read()?)
}

/// A user's status, read in its own snapshot.
pub fn status(svc: &Service, id: &UserId) -> Result<UserStatus> {
    status_in(&svc.store.read()?, id, svc.now())
}

/// One user with its status.
pub fn user(svc: &Service, id: &UserId) -> Result<(User, UserStatus)> {
    let r = svc.store.read()?;
    let u = identity::get(&r, id)?;
    let s = status_in(&r, id, svc.now())?;
    Ok((u, s))
}

/// User administration's reads need `ManageUsers` on the platform.
fn authorize_admin(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    Ok(())
}

/// One user with its status by its id from a URL path, for someone who may
/// manage users.
pub fn user_for(svc: &Service, actor: &Actor, id: &str) -> Result<(User, UserStatus)> {
    authorize_admin(svc, actor)?;
    user(svc, &UserId::parse(id)?)
}

/// `users`, for someone who may manage users; `paging` (offset and limit) is
/// checked after the permission.
pub fn users_for(
    svc: &Service,
    actor: &Actor,
    q: &str,
    paging: impl FnOnce() -> Result<(usize, usize)>,
) -> Result<(Vec<(User, UserStatus)>, usize)> {
    authorize_admin(svc, actor)?;
    let (offset, limit) = paging()?;
    users(svc, q, offset, limit)
}

/// A page of users matching `q` (see `identity::list`), each with its status,
/// and the number of matches; one snapshot for the page and every status.
pub fn users(
    svc: &Service,
    q: &str,
    offset: usize,
    limit: usize,
) -> Result<(Vec<(User, UserStatus)>, usize)> {
    let r = svc.store.read()?;
    let now = svc.now();
    let (list, total) = identity::list(&r, q, offset, limit)?;
    let rows = list
        .into_iter()
        .map(|u| {
            let s = status_in(&r, &u.id, now)?;
            Ok((u, s))
        })
        .collect::<Result<_>>()?;
    Ok((rows, total))
}

/// The admin's view of one user: the user, its status and how many sessions it holds.
pub fn user_page(svc: &Service, id: &UserId) -> Result<(User, UserStatus, usize)> {
    let r = svc.store.read()?;
    let u = identity::get(&r, id)?;
    let sessions = session::list_for_user(&r, id)?.len();
    let s = status_in(&r, id, svc.now())?;
    Ok((u, s, sessions))
}

/// `user_page` by the user's id from a URL path, for someone who may manage users.
pub fn user_page_for(svc: &Service, actor: &Actor, id: &str) -> Result<(User, UserStatus, usize)> {
    authorize_admin(svc, actor)?;
    user_page(svc, &UserId::parse(id)?)
}

/// A user's second factors.
pub fn mfa_summary(svc: &Service, id: &UserId) -> Result<mfa::MfaSummary> {
    mfa::summary(&svc.store.read()?, id)
}

/// What the account page shows of one's own sign-in state.
pub struct Account {
    pub sessions: Vec<([u8; 32], session::Session)>,
    pub mfa: mfa::MfaSummary,
    pub last_sign_in: Option<Timestamp>,
}

/// The account page's sessions, second factors and last sign-in.
pub fn account(svc: &Service, id: &UserId) -> Result<Account> {
    let r = svc.store.read()?;
    Ok(Account {
        sessions: session::list_for_user(&r, id)?,
        mfa: mfa::summary(&r, id)?,
        last_sign_in: identity::last_sign_in(&r, id)?,
    })
}
