//! Authentication: password sign-in (browser session or token pair), sign-out,
//! first-start setup of the owner and owner recovery. Every attempt is audited
//! with its precise reason; callers only ever see "invalid credentials".

pub(crate) mod lockout;
pub(crate) mod mfa;
pub(crate) mod onetime;
pub mod password;
mod policy_change;
pub(crate) mod queries;
pub(crate) mod refresh;
pub mod revoke;
pub mod session;
pub mod temporary;

use std::sync::Arc;

use crate::audit::{self, NewEvent, Outcome, Source};
use crate::error::{Error, Result};
use crate::identity::{self, Email, Role, User, UserId};
use crate::service::Service;
use crate::store::WriteTx;
use password::Password;
pub use policy_change::{may_change_policy, policy_for, update_policy};

/// This module's state in `Service` (`svc.authn`): last sign-ins and lock ends
/// by user, absent ones included, with their tables' generations (see
/// `sign_in_state`), and sessions' last activity between `last_seen` writes
/// (see `session::Activity`).
pub struct Caches {
    sign_ins: crate::store::TableCache<UserId, Option<crate::clock::Timestamp>>,
    locks: crate::store::TableCache<UserId, Option<crate::clock::Timestamp>>,
    activity: session::Activity,
}

impl Caches {
    pub(crate) fn new(now: crate::clock::Timestamp) -> Caches {
        use crate::store::{Table, TableCache};
        Caches {
            sign_ins: TableCache::new(Table::LastSignIns, identity::USER_CACHE_MAX),
            locks: TableCache::new(Table::Lockouts, identity::USER_CACHE_MAX),
            activity: session::Activity::new(now),
        }
    }
}

/// What a successful sign-in yields, depending on the channel.
pub enum Grant {
    Session {
        token: String,
        hash: [u8; 32],
    },
    Tokens(TokenPair),
    /// The password was right; a second factor is due (see `complete_mfa`).
    Mfa {
        mfa_token: String,
        methods: Vec<mfa::MfaMethod>,
    },
    /// The password (and second factor) was right, but it is a temporary
    /// one: a new password is due first (see `temporary::complete`).
    PasswordChange {
        step_token: String,
    },
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Browser,
    Api,
}

/// The user's last sign-in and, if locked at `now`, until when: from memory
/// while neither table has committed a change (an absent record is kept
/// too), so `/api/v1/me` costs no store read.
pub fn sign_in_state(
    svc: &Service,
    id: &UserId,
    now: crate::clock::Timestamp,
) -> Result<(
    Option<crate::clock::Timestamp>,
    Option<crate::clock::Timestamp>,
)> {
    let last = svc
        .authn
        .sign_ins
        .get_or_load(&svc.store, id, |r| identity::last_sign_in(r, id).map(Some))?
        .and_then(|v| *v);
    let locked = svc
        .authn
        .locks
        .get_or_load(&svc.store, id, |r| lockout::lock_end(r, id).map(Some))?
        .and_then(|v| *v)
        .filter(|t| *t > now);
    Ok((last, locked))
}

/// Checks e-mail and password. Unknown, malformed and disabled accounts take
/// the same Argon2 time as a wrong password and get the same answer.
///
/// The outcome is written (a durable commit: audit, lockout, session) on the
/// blocking pool, not on the request worker: under a flood of sign-ins the
/// workers then never wait on an fsync, and token checks keep their latency.
pub async fn login(
    svc: &Arc<Service>,
    email: &str,
    pw: &Password,
    src: &Source,
    channel: Channel,
) -> Result<(User, Grant)> {
    let parsed = Email::parse(email).ok();
    let user = match &parsed {
        Some(e) => identity::find_by_email(svc, &svc.store.read()?, e)?,
        None => None,
    };
    let ok = svc
        .hasher
        .verify(pw, user.as_ref().and_then(|u| u.password_hash.as_deref()))
        .await?;
    let (svc, src) = (svc.clone(), src.clone());
    tokio::task::spawn_blocking(move || record_login(&svc, parsed, user, ok, &src, channel))
        .await
        .map_err(Error::internal_source)?
}

/// The second half of `login`: the password check's outcome, recorded.
fn record_login(
    svc: &Service,
    parsed: Option<Email>,
    user: Option<User>,
    ok: bool,
    src: &Source,
    channel: Channel,
) -> Result<(User, Grant)> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    // Checked after the hash so a locked account costs the same time.
    let locked = match &user {
        Some(u) => lockout::locked_until(&tx, &u.id, now)?,
        None => None,
    };
    let reason = match &user {
        None if parsed.is_none() => Some("malformed_email"),
        None => Some("unknown_user"),
        Some(u) => {
            password_verdict(locked.is_some(), u, ok).or(u.disabled.then_some("user_disabled"))
        }
    };
    let channel_name = if channel == Channel::Browser {
        "browser"
    } else {
        "api"
    };
    if let Some(reason) = reason {
        // Only a well-formed address is recorded: people sometimes type their
        // password into the e-mail field, and that must not land in the log.
        let actor = match &parsed {
            Some(e) => e.as_str().to_string(),
            None => "(malformed e-mail)".to_string(),
        };
        let mut ev = NewEvent::new("auth.login", Outcome::Failure)
            .actor(actor, None)
            .details(serde_json::json!({"reason": reason, "channel": channel_name}));
        if let Some(u) = &user {
            ev = ev.target(u.id.as_str());
            ev.actor_id = Some(u.id.as_str().into());
        }
        audit::record(&mut tx, now, src, ev)?;
        if let (Some(u), "wrong_password") = (&user, reason) {
            note_failure(svc, &mut tx, u, now, src)?;
        }
        tx.commit()?;
        return Err(Error::InvalidCredentials);
    }
    let user = user.ok_or(Error::InvalidCredentials)?;
    // The password was right, so saying why does not reveal the account.
    if !crate::rollout::password_allowed(&tx, &user)? {
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("auth.login", Outcome::Denied)
                .actor(user.email.as_str(), Some(user.id.as_str().into()))
                .target(user.id.as_str())
                .details(serde_json::json!({"reason": "sso_required", "channel": channel_name})),
        )?;
        tx.commit()?;
        return Err(sso_required());
    }
    // A temporary password opens no tokens: the API says so before a code
    // is asked for (the password was right, so this reveals nothing).
    if user.must_change_password && channel == Channel::Api {
        let refused = temporary::start(svc, &mut tx, user, src, channel, None)?;
        tx.commit()?;
        return refused;
    }
    if mfa::required(&tx, &user.id)? {
        // Lockout is not cleared here: only a complete sign-in clears it, so a
        // known password cannot reset the count of wrong codes.
        let mfa_token = mfa::issue_challenge(&mut tx, &user.id, now)?;
        let methods = mfa::summary(&tx, &user.id)?.methods;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("auth.password", Outcome::Success)
                .actor(user.email.as_str(), Some(user.id.as_str().into()))
                .target(user.id.as_str())
                .details(serde_json::json!({"channel": channel_name, "mfa_required": true})),
        )?;
        tx.commit()?;
        return Ok((user, Grant::Mfa { mfa_token, methods }));
    }
    if user.must_change_password {
        let r = temporary::start(svc, &mut tx, user, src, channel, None)?;
        tx.commit()?;
        return r;
    }
    let r = finish_login(svc, &mut tx, user, src, channel, None, None)?;
    tx.commit()?;
    Ok(r)
}

/// The refusal of a password sign-in (or its second step) for a user SSO is
/// enforced on.
pub(crate) fn sso_required() -> Error {
    Error::Forbidden(
        "Your organisation signs in with single sign-on: use the single sign-on button on the sign-in page."
            .into(),
    )
}

/// The one verdict on a password check of a known user (sign-in and
/// `confirm` alike): the lock first, then the password.
fn password_verdict(locked: bool, user: &User, pw_ok: bool) -> Option<&'static str> {
    if locked {
        Some("account_locked")
    } else if user.password_hash.is_none() {
        Some("no_password_set")
    } else if !pw_ok {
        Some("wrong_password")
    } else {
        None
    }
}

/// Records a failed password or code; locks the account when the count is reached.
fn note_failure(
    svc: &Service,
    tx: &mut WriteTx<'_>,
    u: &User,
    now: crate::clock::Timestamp,
    src: &Source,
) -> Result<()> {
    if let Some(until) = lockout::record_failure(tx, &u.id, now, &svc.settings.lockout)? {
        audit::record(
            tx,
            now,
            src,
            NewEvent::new("auth.lockout", Outcome::Denied)
                .actor("system", None)
                .target(u.id.as_str())
                .details(serde_json::json!({"locked_until": crate::clock::rfc3339(until), "email": u.email.as_str()})),
        )?;
    }
    Ok(())
}

/// Completes a sign-in whose password was right with a second factor. Wrong
/// codes count towards the lockout; the `mfa_token` is single-use. Also returns
/// how many recovery codes remain when one was used. The edge parses
/// `method` (`mfa::MfaMethod::parse`), so an unknown one is refused (400,
/// naming the methods) before anything is read or recorded.
pub fn complete_mfa(
    svc: &Service,
    mfa_token: &str,
    method: mfa::MfaMethod,
    code: &str,
    src: &Source,
    channel: Channel,
) -> Result<(User, Grant, Option<usize>)> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    match mfa::verify(&mut tx, mfa_token, method, code, now)? {
        Ok((user, used, remaining)) => {
            let r = if user.must_change_password {
                // The factor was right (and is spent): the new password is next.
                temporary::start(svc, &mut tx, user, src, channel, Some(used))?
            } else {
                Ok(finish_login(
                    svc,
                    &mut tx,
                    user,
                    src,
                    channel,
                    Some(used),
                    None,
                )?)
            };
            if let (Some(n), Ok((user, _))) = (remaining, &r) {
                audit::record(
                    &mut tx,
                    now,
                    src,
                    NewEvent::new("mfa.recovery_code_used", Outcome::Success)
                        .actor(user.email.as_str(), Some(user.id.as_str().into()))
                        .target(user.id.as_str())
                        .details(serde_json::json!({"remaining": n})),
                )?;
            }
            tx.commit()?;
            r.map(|(user, grant)| (user, grant, remaining))
        }
        Err((user, reason)) => {
            let mut ev = NewEvent::new("auth.mfa", Outcome::Failure)
                .details(serde_json::json!({"reason": reason, "method": method.as_str()}));
            if let Some(u) = &user {
                ev = ev
                    .actor(u.email.as_str(), Some(u.id.as_str().into()))
                    .target(u.id.as_str());
                if matches!(
                    reason,
                    "wrong_code" | "replayed_code" | "wrong_recovery_code" | "expired_code"
                ) {
                    note_failure(svc, &mut tx, u, now, src)?;
                }
            }
            audit::record(&mut tx, now, src, ev)?;
            tx.commit()?;
            Err(match reason {
                "unknown_mfa_token" | "expired_mfa_token" | "revoked_mfa_token" => {
                    mfa::challenge_expired_error()
                }
                "sso_required" => sso_required(),
                _ => Error::InvalidCode,
            })
        }
    }
}

/// Starts a browser session for a user an identity provider vouched for
/// (connection `sso`). The IdP handled their second factor, so Gatehouse's
/// MFA policy does not confine the session to enrollment.
pub fn sso_session(
    svc: &Service,
    tx: &mut WriteTx<'_>,
    user: User,
    src: &Source,
    sso: &str,
) -> Result<(User, String)> {
    match finish_login(svc, tx, user, src, Channel::Browser, None, Some(sso))? {
        (u, Grant::Session { token, .. }) => Ok((u, token)),
        _ => Err(Error::internal("sso sign-in did not yield a session")),
    }
}

/// The common end of every successful sign-in: clear the lockout, stamp the
/// user, start a session or issue tokens, audit.
pub(crate) fn finish_login(
    svc: &Service,
    tx: &mut WriteTx<'_>,
    user: User,
    src: &Source,
    channel: Channel,
    mfa_used: Option<mfa::MfaMethod>,
    sso: Option<&str>,
) -> Result<(User, Grant)> {
    let now = svc.now();
    let channel_name = if channel == Channel::Browser {
        "browser"
    } else {
        "api"
    };
    lockout::clear(tx, &user.id)?;
    identity::stamp_sign_in(tx, &user.id, now)?;
    let policy = crate::policy::current(svc)?;
    // Must have MFA, has none: signed in for enrollment only.
    let enroll_only =
        sso.is_none() && policy.mfa_required_for(&user) && !mfa::required(tx, &user.id)?;
    let grant = match channel {
        Channel::Browser => {
            if policy.session.single_session {
                session::end_all_for_user(tx, &user.id)?;
            }
            let limits = session::limits_now(svc, &user.id)?;
            let (token, hash) = match sso {
                Some(c) => {
                    let rights = crate::access::Rights::of(svc, &user)?;
                    session::create_sso(tx, &user.id, now, src, c, rights, limits)?
                }
                None => session::create(tx, &user.id, now, src, enroll_only, None, limits)?,
            };
            Grant::Session { token, hash }
        }
        Channel::Api => Grant::Tokens(issue_pair(svc, tx, &user, None, enroll_only)?),
    };
    audit::record(
        tx,
        now,
        src,
        NewEvent::new("auth.login", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str())
            .details(serde_json::json!({"channel": channel_name, "mfa": mfa_used.map(mfa::MfaMethod::as_str), "sso": sso, "enroll_only": enroll_only})),
    )?;
    Ok((user, grant))
}

fn issue_pair(
    svc: &Service,
    tx: &mut crate::store::WriteTx<'_>,
    user: &User,
    family: Option<String>,
    enroll_only: bool,
) -> Result<TokenPair> {
    let now = svc.now();
    let epoch = crate::tokens::valid_after(tx, &user.id)?.epoch;
    let (access, exp) = svc.signer().sign(user, now, enroll_only, now, epoch)?;
    // The family's end is fixed now, from the user's workspace limits now.
    let family = match family {
        Some(f) => f,
        None => refresh::start_family(tx, &user.id, now, refresh::family_lifetime(svc, &user.id)?)?,
    };
    let refresh = refresh::issue(
        tx,
        &user.id,
        Some(family),
        now,
        svc.settings.tokens.refresh_ttl_secs,
    )?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: exp - now,
    })
}

/// Exchanges a refresh token for a new pair (see `refresh::rotate`).
pub fn refresh_tokens(svc: &Service, token: &str, src: &Source) -> Result<TokenPair> {
    let r = refresh::rotate(svc, token, src)?;
    let (user, next_refresh, auth_time) = (r.user, r.token, r.auth_time);
    let now = svc.now();
    let enroll_only = crate::policy::current(svc)?.mfa_required_for(&user)
        && !mfa::required(&svc.store.read()?, &user.id)?;
    let (access, exp) = svc
        .signer()
        .sign(&user, now, enroll_only, auth_time, r.epoch)?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: next_refresh,
        token_type: "Bearer",
        expires_in: exp - now,
    })
}

pub fn logout(svc: &Service, user: &User, session_hash: &[u8], src: &Source) -> Result<()> {
    let mut tx = svc.store.write()?;
    session::end(&mut tx, &user.id, session_hash)?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        NewEvent::new("auth.logout", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into())),
    )?;
    tx.commit()
}

/// Ends one of `user`'s sessions, by the hex of its hash (as listed to them).
pub fn end_session(svc: &Service, user: &User, hash_hex: &str, src: &Source) -> Result<()> {
    let hash = hex::decode(hash_hex).map_err(|_| Error::NotFound("session"))?;
    let mut tx = svc.store.write()?;
    if !session::end(&mut tx, &user.id, &hash)? {
        return Err(Error::NotFound("session"));
    }
    audit::record(
        &mut tx,
        svc.now(),
        src,
        NewEvent::new("session.end", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str()),
    )?;
    tx.commit()
}

/// Issues a fresh setup link, unless an owner exists already.
pub fn setup_link(svc: &Service, src: &Source) -> Result<String> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    if identity::owner_exists(&tx)? {
        return Err(Error::Conflict(
            "Setup is complete: an owner exists. Use `gatehouse recover EMAIL` instead.".into(),
        ));
    }
    let token = onetime::issue(
        &mut tx,
        onetime::Purpose::Setup,
        now,
        onetime::SETUP_TTL_SECS,
    )?;
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new("setup.link_issued", Outcome::Success).actor("system", None),
    )?;
    tx.commit()?;
    Ok(format!("{}/setup?token={token}", svc.public_url()))
}

/// Creates the owner from the bootstrap variables (no link, no session).
pub async fn create_owner(
    svc: &Service,
    token: Option<&str>,
    email: Email,
    name: String,
    pw: Password,
    src: &Source,
) -> Result<User> {
    Ok(owner(svc, token, email, name, pw, src, false).await?.0)
}

/// Creates the owner from a setup link and signs them in in the same
/// transaction (the password was just chosen, so it is as good as a
/// sign-in): the browser lands on the console, not on an empty sign-in form.
pub async fn setup_owner(
    svc: &Service,
    token: &str,
    email: Email,
    name: String,
    pw: Password,
    src: &Source,
) -> Result<(User, Grant)> {
    let (user, grant) = owner(svc, Some(token), email, name, pw, src, true).await?;
    let grant = grant.ok_or_else(|| Error::internal("setup without a session"))?;
    Ok((user, grant))
}

/// The owner's creation; the token, when given, is spent in the same
/// transaction, and so is the browser session when `sign_in` asks for one.
async fn owner(
    svc: &Service,
    token: Option<&str>,
    email: Email,
    name: String,
    pw: Password,
    src: &Source,
    sign_in: bool,
) -> Result<(User, Option<Grant>)> {
    if let Some(t) = token
        && onetime::check(&svc.store.read()?, t, svc.now())? != onetime::Purpose::Setup
    {
        return Err(Error::Unauthenticated("This is not a setup link.".into()));
    }
    identity::check_password_policy(
        pw.expose(),
        &email,
        svc.settings.password.min_length,
        identity::PasswordOf::Own,
    )?;
    let hash = svc.hasher.hash(pw).await?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    if identity::owner_exists(&tx)? {
        return Err(Error::Conflict(
            "Setup is complete: an owner exists already.".into(),
        ));
    }
    if let Some(t) = token
        && onetime::consume(&mut tx, t, now)? != onetime::Purpose::Setup
    {
        return Err(Error::Unauthenticated("This is not a setup link.".into()));
    }
    let user = User {
        id: UserId::generate()?,
        email,
        name: name.trim().chars().take(200).collect(),
        password_hash: Some(hash),
        role: Role::Owner,
        disabled: false,
        must_change_password: false,
        created_at: now,
        updated_at: now,
    };
    identity::insert(svc, &mut tx, &user)?;
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new("setup.owner_created", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str())
            .details(serde_json::json!({"via": if token.is_some() { "setup_link" } else { "bootstrap_env" }})),
    )?;
    let out = if sign_in {
        let (user, grant) = finish_login(svc, &mut tx, user, src, Channel::Browser, None, None)?;
        (user, Some(grant))
    } else {
        (user, None)
    };
    tx.commit()?;
    Ok(out)
}

/// A one-time password-reset link for `email` (local operators only).
pub fn recover_link(svc: &Service, email: &str, src: &Source) -> Result<String> {
    let email = Email::parse(email)?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let user = identity::find_by_email(svc, &tx, &email)?.ok_or(Error::NotFound("user"))?;
    let token = onetime::issue(
        &mut tx,
        onetime::Purpose::Recover {
            user_id: user.id.clone(),
        },
        now,
        onetime::RECOVER_TTL_SECS,
    )?;
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new("recover.link_issued", Outcome::Success)
            .actor("cli", None)
            .target(user.id.as_str()),
    )?;
    tx.commit()?;
    Ok(format!("{}/recover?token={token}", svc.public_url()))
}

/// What a signed-in user offers to prove it is them before a sensitive step.
pub struct Proof<'a> {
    pub password: &'a Password,
    /// Which second factor `code` is from; the first enrolled one when
    /// absent. Parsed at the boundary (`mfa::MfaMethod::parse_opt`), so an
    /// unknown name never reaches the check or the audit log.
    pub method: Option<mfa::MfaMethod>,
    pub code: Option<&'a str>,
}

/// How much a step needs: the password alone (changing it), or the password
/// and a current second factor whenever the user has one enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Password,
    PasswordAndFactor,
}

/// The words for a signed-in user whose account is locked.
pub fn locked_error() -> Error {
    Error::Forbidden(
        "Your account is locked after too many failed attempts; try again later or ask an administrator to unlock it."
            .into(),
    )
}

fn code_missing_error() -> Error {
    Error::invalid(
        "code",
        "a current code from one of your second factors is needed too",
    )
}

/// The one check of a signed-in user's password (and second factor) before a
/// sensitive step: `purpose` names the step in the audit log. The lock is
/// checked first, so a locked account spends no code and runs no Argon2; a
/// missing code is refused next, before the password is tried (it says
/// nothing about the password and records nothing); a code is only tried
/// after a right password, so a wrong guess spends none. When a factor is
/// due, a wrong password and a wrong code get the same answer
/// (`Error::ProofRefused`): the caller never learns the password alone.
/// Every refusal after that is audited with its precise reason
/// (`auth.confirm`, or `auth.reauth` for `purpose == "reauth"`; only bounded
/// values are recorded) and, unless the account was already locked, counts
/// towards the lockout, like a failed sign-in. The per-address limit is the
/// request edge's (`web::limits::is_auth_endpoint` lists every endpoint that
/// ends here). On success with `session`, that session's `auth_at` is
/// refreshed in the same transaction.
pub async fn confirm(
    svc: &Service,
    user: &User,
    proof: &Proof<'_>,
    need: Need,
    purpose: &'static str,
    session: Option<&[u8]>,
    src: &Source,
) -> Result<()> {
    let (locked_now, enrolled) = {
        let r = svc.store.read()?;
        (
            lockout::locked_until(&r, &user.id, svc.now())?.is_some(),
            !mfa::summary(&r, &user.id)?.methods.is_empty(),
        )
    };
    if !locked_now
        && need == Need::PasswordAndFactor
        && enrolled
        && proof.code.is_none_or(|c| c.trim().is_empty())
    {
        return Err(code_missing_error());
    }
    let pw_ok = !locked_now
        && svc
            .hasher
            .verify(proof.password, user.password_hash.as_deref())
            .await?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let locked = locked_now || lockout::locked_until(&tx, &user.id, now)?.is_some();
    let methods = mfa::summary(&tx, &user.id)?.methods;
    let factor = need == Need::PasswordAndFactor && !methods.is_empty();
    let method = proof
        .method
        .or_else(|| methods.first().copied())
        .unwrap_or(mfa::MfaMethod::Totp);
    let reason = if locked {
        Some("account_locked")
    } else if factor && proof.code.is_none_or(|c| c.trim().is_empty()) {
        // A factor was enrolled between the two reads: whatever the password.
        Some("code_missing")
    } else if let Some(r) = password_verdict(false, user, pw_ok) {
        Some(r)
    } else if factor
        && !(methods.contains(&method)
            && mfa::check_code_now(&mut tx, user, method, proof.code.unwrap_or(""), now)?)
    {
        Some("wrong_code")
    } else {
        None
    };
    let action = if purpose == "reauth" {
        "auth.reauth"
    } else {
        "auth.confirm"
    };
    let outcome = if reason.is_some() {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let ev = NewEvent::new(action, outcome)
        .actor(user.email.as_str(), Some(user.id.as_str().into()))
        .target(user.id.as_str())
        .details(serde_json::json!({
            "reason": reason,
            "purpose": purpose,
            "method": if factor { Some(method.as_str()) } else { None },
        }));
    match reason {
        Some("account_locked") => {}
        Some(_) => note_failure(svc, &mut tx, user, now, src)?,
        None => {
            if let Some(h) = session {
                session::refresh_auth(&mut tx, h, now, false)?;
            }
        }
    }
    audit::record(&mut tx, now, src, ev)?;
    tx.commit()?;
    match reason {
        None => Ok(()),
        Some("account_locked") => Err(locked_error()),
        Some("code_missing") => Err(code_missing_error()),
        // One answer for either half when a factor was due.
        Some(_) if factor => Err(Error::ProofRefused),
        Some(_) => Err(Error::invalid("password", "is not your current password")),
    }
}

/// Confirms the signed-in user again (password, and a code when they have a
/// second factor) before a sensitive action; refreshes the session's `auth_at`.
/// Failures count towards the lockout (see `confirm`).
pub async fn reauthenticate(
    svc: &Service,
    user: &User,
    session_hash: &[u8],
    pw: &Password,
    method: Option<mfa::MfaMethod>,
    code: Option<&str>,
    src: &Source,
) -> Result<()> {
    let proof = Proof {
        password: pw,
        method,
        code,
    };
    confirm(
        svc,
        user,
        &proof,
        Need::PasswordAndFactor,
        "reauth",
        Some(session_hash),
        src,
    )
    .await
}

/// The user's own "end all other sessions": every other browser session,
/// every refresh-token family and every access token end (audited).
pub fn end_other_sessions(
    svc: &Service,
    actor: &crate::access::Actor,
    keep: &[u8],
) -> Result<usize> {
    let (by, src) = (&actor.principal, &actor.source);
    let user = by
        .user_id()
        .ok_or_else(|| Error::Forbidden("Only a signed-in user ends their sessions.".into()))?;
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let n = revoke::end_everything(&mut tx, user, now, revoke::Sessions::EndExcept(keep))?.sessions;
    audit::record(
        &mut tx,
        now,
        src,
        by.event("session.end_others", Outcome::Success)
            .target(user.as_str())
            .details(serde_json::json!({"ended": n, "tokens_ended": true})),
    )?;
    tx.commit()?;
    Ok(n)
}

/// Every session, refresh-token family and access token of a user end
/// (an administrator's "end sessions", or the user's own over the API).
pub fn end_user_sessions(
    svc: &Service,
    actor: &crate::access::Actor,
    user: &UserId,
) -> Result<usize> {
    if actor.principal.user_id() != Some(user) {
        actor.authorize(
            svc,
            crate::access::Permission::ManageUsers,
            crate::access::Resource::Platform,
        )?;
    }
    end_sessions_of(svc, actor, user)
}

/// An administrator's end-all (`admin:users` on the platform, their own
/// account included): the console's admin page for a user, which never
/// had the self-service exemption of `end_user_sessions`.
pub fn admin_end_user_sessions(
    svc: &Service,
    actor: &crate::access::Actor,
    user: &UserId,
) -> Result<usize> {
    actor.authorize(
        svc,
        crate::access::Permission::ManageUsers,
        crate::access::Resource::Platform,
    )?;
    end_sessions_of(svc, actor, user)
}

fn end_sessions_of(svc: &Service, actor: &crate::access::Actor, user: &UserId) -> Result<usize> {
    let (by, src) = (&actor.principal, &actor.source);
    let mut tx = svc.store.write()?;
    crate::access::guard_credentials(svc, by, &identity::get(&tx, user)?, "sessions")?;
    let n = revoke::end_everything(&mut tx, user, svc.now(), revoke::Sessions::End)?.sessions;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event("session.end_all", Outcome::Success)
            .target(user.as_str())
            .details(serde_json::json!({"ended": n})),
    )?;
    tx.commit()?;
    Ok(n)
}

/// Checks that `pw` is the user's current password (for changing it), through
/// `confirm`: counted, limited and audited like every password check.
pub async fn confirm_password(
    svc: &Service,
    user: &User,
    pw: &Password,
    purpose: &'static str,
    src: &Source,
) -> Result<()> {
    let proof = Proof {
        password: pw,
        method: None,
        code: None,
    };
    confirm(svc, user, &proof, Need::Password, purpose, None, src)
        .await
        .map_err(|e| match e {
            Error::Invalid {
                field: "password",
                message,
            } => Error::Invalid {
                field: "current_password",
                message,
            },
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Actor, Principal};
    use crate::identity::{Email, Role};

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

    /// Unlock, MFA reset and ending a user's sessions check `admin:users`
    /// themselves; only the API's end-all spares the user's own account.
    #[test]
    fn the_admin_operations_refuse_an_actor_without_admin_users() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = crate::config::Settings::load(None, Vec::<(String, String)>::new()).unwrap();
        s.data_dir = dir.path().to_path_buf();
        let clock = std::sync::Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        let svc = Service::open(s, clock).unwrap();
        let (weak, target) = (
            user("weak@example.com", Role::User),
            user("target@example.com", Role::User),
        );
        let mut tx = svc.store.write().unwrap();
        identity::insert(&svc, &mut tx, &weak).unwrap();
        identity::insert(&svc, &mut tx, &target).unwrap();
        tx.commit().unwrap();
        let actor = Actor::new(
            Principal::User {
                user: std::sync::Arc::new(weak.clone()),
                session: None,
            },
            Source::default(),
            Some(svc.now()),
        );
        let refused = |r: Result<()>| match r {
            Err(Error::Forbidden(m)) => assert!(m.contains("admin:users"), "{m}"),
            other => panic!("not refused: {other:?}"),
        };
        refused(lockout::unlock(&svc, &actor, &target.id).map(|_| ()));
        refused(mfa::reset(&svc, &actor, &target.id));
        refused(end_user_sessions(&svc, &actor, &target.id).map(|_| ()));
        refused(admin_end_user_sessions(&svc, &actor, &target.id).map(|_| ()));
        refused(admin_end_user_sessions(&svc, &actor, &weak.id).map(|_| ()));
        assert_eq!(end_user_sessions(&svc, &actor, &weak.id).unwrap(), 0);

        // The operations on one's own factors check the recent sign-in
        // themselves, before the proof is looked at.
        let stale = Actor {
            auth_at: Some(0),
            ..actor
        };
        let pw = Password::new("violet-harbour-lantern");
        let proof = Proof {
            password: &pw,
            method: None,
            code: Some("000000"),
        };
        let reauth = |r: Result<()>| assert!(matches!(r, Err(Error::ReauthRequired)), "{r:?}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            reauth(mfa::remove_all_own(&svc, &stale, &proof).await);
            reauth(mfa::remove_method(&svc, &stale, mfa::MfaMethod::Totp, &proof).await);
            reauth(
                mfa::regenerate_recovery(&svc, &stale, &proof)
                    .await
                    .map(|_| ()),
            );
            reauth(
                mfa::start_totp(&svc, &stale, Some(&proof))
                    .await
                    .map(|_| ()),
            );
            reauth(
                mfa::start_code_enrollment(&svc, &stale, mfa::MfaMethod::Email, None, Some(&proof))
                    .await,
            );
        });
    }
}
