//! The temporary-password step of a password sign-in: a user whose password
//! an administrator set as temporary (`User::must_change_password`) gets no
//! session or token at sign-in, only a one-time, short-lived step token that
//! opens "choose a new password" (`complete`), which replaces the password,
//! clears the flag, ends everything else the user holds and signs them in.

use super::{Channel, Grant, finish_login, mfa::MfaMethod, onetime, password::Password};
use crate::audit::{self, NewEvent, Outcome, Source};
use crate::error::{Error, Result};
use crate::identity::{self, PasswordOf, User};
use crate::service::Service;
use crate::store::WriteTx;

/// How long the step token lives (the time to choose a password).
pub const STEP_TTL_SECS: i64 = 600;

/// The refusal of an API sign-in while the flag is set: no tokens until a
/// new password is chosen in the console.
pub fn api_refusal(svc: &Service) -> Error {
    Error::Forbidden(format!(
        "An administrator set a temporary password for this account: sign in at {}/login in a browser to choose a new password. No tokens are issued until then.",
        svc.public_url()
    ))
}

/// The refusal of a step token that is unknown, spent, expired or revoked.
pub fn step_gone() -> Error {
    Error::Unauthenticated(
        "The sign-in step expired or is unknown; sign in again with your password.".into(),
    )
}

/// A sign-in whose password (and `mfa` factor) was right, for a user who must
/// change their password: on the browser channel a step token (audited as
/// `auth.password` with `password_change_required`), on the API a refusal
/// (audited as a denied `auth.login`). In `tx`; the caller commits.
pub(super) fn start(
    svc: &Service,
    tx: &mut WriteTx<'_>,
    user: User,
    src: &Source,
    channel: Channel,
    mfa: Option<MfaMethod>,
) -> Result<std::result::Result<(User, Grant), Error>> {
    let now = svc.now();
    let ev = NewEvent::new(
        if channel == Channel::Api {
            "auth.login"
        } else {
            "auth.password"
        },
        if channel == Channel::Api {
            Outcome::Denied
        } else {
            Outcome::Success
        },
    )
    .actor(user.email.as_str(), Some(user.id.as_str().into()))
    .target(user.id.as_str());
    if channel == Channel::Api {
        audit::record(
            tx,
            now,
            src,
            ev.details(serde_json::json!({"reason": "password_change_required", "channel": "api"})),
        )?;
        return Ok(Err(api_refusal(svc)));
    }
    let epoch = crate::tokens::valid_after(tx, &user.id)?.epoch;
    let step_token = onetime::issue(
        tx,
        onetime::Purpose::PasswordChange {
            user_id: user.id.clone(),
            epoch,
            mfa,
        },
        now,
        STEP_TTL_SECS,
    )?;
    audit::record(
        tx,
        now,
        src,
        ev.details(serde_json::json!({
            "channel": "browser",
            "mfa": mfa.map(MfaMethod::as_str),
            "password_change_required": true,
        })),
    )?;
    Ok(Ok((user, Grant::PasswordChange { step_token })))
}

/// The user of a live step token, or `step_gone`.
fn step_user(
    r: &impl crate::store::Reader,
    token: &str,
    now: crate::clock::Timestamp,
) -> Result<(identity::UserId, u64, Option<MfaMethod>)> {
    match onetime::check(r, token, now) {
        Ok(onetime::Purpose::PasswordChange {
            user_id,
            epoch,
            mfa,
        }) => Ok((user_id, epoch, mfa)),
        _ => Err(step_gone()),
    }
}

/// Whether `token` is a live step (for the page that asks for the password).
pub fn step_live(svc: &Service, token: &str) -> Result<bool> {
    Ok(step_user(&svc.store.read()?, token, svc.now()).is_ok())
}

/// Completes the step: `new` must pass the password rules and differ from
/// the temporary password. Then, in one transaction, the token is spent, the
/// password replaced, the flag cleared, every other session, refresh token
/// and access token of the user ended, the change audited
/// (`user.password_change`, `temporary_replaced`) and a browser session
/// started. A refused password leaves the step usable; a step revoked since
/// (an administrator's reset, "end sessions", disabling) is refused.
pub async fn complete(
    svc: &Service,
    token: &str,
    new: Password,
    src: &Source,
) -> Result<(User, Grant)> {
    let (user_id, epoch, mfa) = step_user(&svc.store.read()?, token, svc.now())?;
    let user = identity::get(&svc.store.read()?, &user_id)?;
    if !user.must_change_password || user.disabled {
        return Err(step_gone());
    }
    identity::check_password_policy(
        new.expose(),
        &user.email,
        svc.settings.password.min_length,
        PasswordOf::Own,
    )?;
    if svc
        .hasher
        .verify(&new, user.password_hash.as_deref())
        .await?
    {
        return Err(Error::invalid(
            "password",
            "must differ from the temporary password an administrator set",
        ));
    }
    let hash = svc.hasher.hash(new).await?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    // Everything is checked again in the writing transaction: the step may
    // have been spent, revoked or the flag cleared while the hash ran.
    let live = step_user(&tx, token, now).ok();
    let before = identity::get(&tx, &user_id)?;
    let reason = if live
        .as_ref()
        .is_none_or(|(u, e, _)| *u != user_id || *e != epoch)
    {
        Some("unknown_step")
    } else if epoch != crate::tokens::valid_after(&tx, &user_id)?.epoch {
        Some("revoked_step")
    } else if before.disabled {
        Some("user_disabled")
    } else if !before.must_change_password {
        Some("no_change_required")
    } else if !crate::rollout::password_allowed(&tx, &before)? {
        Some("sso_required")
    } else {
        None
    };
    if let Some(reason) = reason {
        if live.is_some() {
            onetime::consume(&mut tx, token, now)?;
        }
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("user.password_change", Outcome::Failure)
                .actor(before.email.as_str(), Some(before.id.as_str().into()))
                .target(before.id.as_str())
                .details(serde_json::json!({"reason": reason, "temporary_replaced": false})),
        )?;
        tx.commit()?;
        return Err(if reason == "sso_required" {
            super::sso_required()
        } else {
            step_gone()
        });
    }
    onetime::consume(&mut tx, token, now)?;
    let mut after = before.clone();
    after.password_hash = Some(hash);
    after.must_change_password = false;
    after.updated_at = now;
    identity::save(svc, &mut tx, &before, &after)?;
    super::revoke::end_everything(&mut tx, &user_id, now, super::revoke::Sessions::End)?;
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new("user.password_change", Outcome::Success)
            .actor(after.email.as_str(), Some(after.id.as_str().into()))
            .target(after.id.as_str())
            .details(serde_json::json!({"temporary_replaced": true})),
    )?;
    let r = finish_login(svc, &mut tx, after, src, Channel::Browser, mfa, None)?;
    tx.commit()?;
    Ok(r)
}
