//! User administration: creating, changing and deleting users, an admin's
//! password reset, a user's own password and e-mail change, and recovery
//! links: the operations that act with an `Actor`, check `access` guards and
//! end sessions through `authn::revoke`. The records and their queries are
//! `identity`.

use crate::access::{Actor, Permission, Principal, Resource};
use crate::audit::{self, Outcome, Source};
use crate::authn::password::Password;
use crate::authn::revoke::Sessions;
use crate::authn::{confirm_password, lockout, onetime};
use crate::error::{Error, Result};
use crate::identity::{
    Email, NewUser, PasswordOf, Role, User, UserId, check_password_policy, clean_name, email_index,
    find_by_email, get, insert, save,
};
use crate::service::Service;
use crate::store::Table;

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
        must_change_password: false,
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
        crate::access::guard_admin_path(svc, by, &before, "e-mail address", OWN_EMAIL)?;
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
        // Disabling takes away their workspace grants, re-enabling gives them
        // back: either only for what the caller holds (`guard_credentials`).
        crate::access::guard_credentials(svc, by, &before, "account")?;
        if !d && before.disabled {
            // Re-enabling gives back everything the account holds: a recent sign-in.
            actor.require_recent(svc)?;
        }
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
    // Deleting takes away their workspace grants: only what the caller holds
    // (`guard_credentials`).
    crate::access::guard_credentials(svc, by, &user, "account")?;
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
/// (`guard_admin_path`): that is `change_password`, which asks for the
/// current one. `temporary` (Keycloak's "Temporary") makes the user choose
/// a new password at their next password sign-in before anything is given
/// (`authn::temporary`); the recovery link passes `false`, which clears it.
pub async fn set_password(
    svc: &Service,
    actor: &Actor,
    id: &UserId,
    pw: crate::authn::password::Password,
    action: &'static str,
    temporary: bool,
) -> Result<()> {
    actor.authorize(svc, Permission::ManageUsers, Resource::Platform)?;
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    let user = get(&svc.store.read()?, id)?;
    crate::access::guard_admin_path(svc, by, &user, "password", OWN_PASSWORD)?;
    write_password(svc, by, src, id, pw, None, action, temporary).await
}

/// Writes a new password (policy-checked, hashed) and ends the user's
/// sessions, refresh tokens and access tokens, except the session `keep`
/// (the one making the change). Callers have checked who may: an admin
/// (`set_password`), the user with their current password
/// (`change_password`), a recovery link (`recover`). Sets or clears the
/// "must change password" flag as `temporary` says.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_password(
    svc: &Service,
    by: &Principal,
    src: &Source,
    id: &UserId,
    pw: crate::authn::password::Password,
    keep: Option<&[u8]>,
    action: &'static str,
    temporary: bool,
) -> Result<()> {
    let user = get(&svc.store.read()?, id)?;
    crate::access::guard_credentials(svc, by, &user, "password")?;
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
    after.must_change_password = temporary;
    after.updated_at = now;
    save(svc, &mut tx, &before, &after)?;
    crate::authn::revoke::end_everything(&mut tx, id, now, Sessions::except(keep))?;
    crate::authn::lockout::clear(&mut tx, id)?;
    let mut ev = by.event(action, Outcome::Success).target(id.as_str());
    if temporary {
        ev = ev.details(serde_json::json!({"temporary": true}));
    }
    audit::record(&mut tx, now, src, ev)?;
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

/// Uses a recovery link: sets a new password, ends every session, re-enables
/// the account, and spends the link.
pub async fn recover(svc: &Service, token: &str, pw: Password, src: &Source) -> Result<User> {
    let onetime::Purpose::Recover { user_id } =
        onetime::check(&svc.store.read()?, token, svc.now())?
    else {
        return Err(Error::Unauthenticated(
            "This is not a recovery link.".into(),
        ));
    };
    let by = crate::access::Actor::new(Principal::Local("recovery-link"), src.clone(), None);
    set_password(svc, &by, &user_id, pw, "user.password_recovered", false).await?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    onetime::consume(&mut tx, token, now)?;
    let before = get(&tx, &user_id)?;
    let mut after = before.clone();
    after.disabled = false;
    save(svc, &mut tx, &before, &after)?;
    lockout::clear(&mut tx, &user_id)?;
    tx.commit()?;
    Ok(after)
}

/// The signed-in user changes their own password with their current one
/// (`confirm_password`, purpose `password_change`). Every other session,
/// refresh token and access token ends; `keep` (the browser session making
/// the change) stays.
pub async fn change_password(
    svc: &Service,
    actor: &crate::access::Actor,
    current: &Password,
    new: Password,
    keep: Option<&[u8]>,
) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let user = by.user().ok_or_else(|| {
        Error::Forbidden("Only a signed-in user changes their own password.".into())
    })?;
    confirm_password(svc, user, current, "password_change", src).await?;
    write_password(
        svc,
        by,
        src,
        &user.id,
        new,
        keep,
        "user.password_change",
        false,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::find;

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
            must_change_password: false,
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
                true,
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
}
