//! Second factors: authenticator apps (TOTP, RFC 6238) and one-time recovery
//! codes, plus the short-lived challenge that sits between a correct password
//! and a completed sign-in. A TOTP step accepted once is never accepted again.
//! E-mail and SMS codes: 6 digits, 10 minutes, single use, resend throttled.

use serde::{Deserialize, Serialize};
use totp_rs::{Builder, Secret, Totp};

use crate::access::{Actor, Principal};
use crate::audit::{self, NewEvent, Outcome, Source};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::{self, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

pub use crate::principal::MfaMethod;

pub const CHALLENGE_TTL_SECS: i64 = 300;
const RECOVERY_CODES: usize = 10;
const ENROLL_TTL_SECS: i64 = 900;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MfaState {
    totp: Option<TotpMethod>,
    pending_totp: Option<PendingTotp>,
    /// Each unused recovery code: `k1:` + HMAC-SHA256 (hex) under the index
    /// key (see `keyed_code_hash`), or, from before, its bare SHA-256 (hex).
    recovery: Vec<String>,
    #[serde(default)]
    email: Option<Timestamp>,
    #[serde(default)]
    sms: Option<SmsMethod>,
    /// An e-mail or SMS enrollment waiting for its code.
    #[serde(default)]
    pending_code: Option<SentCode>,
    /// An e-mail or SMS code sent to confirm a sensitive action.
    #[serde(default)]
    reauth_code: Option<SentCode>,
    /// E-mail and SMS codes sent in the last 24 hours: the per-user throttle
    /// and daily caps (see `reserve_in`), whichever sign-in step (mfa_token)
    /// asked for them.
    #[serde(default)]
    sends: Vec<SendRecord>,
}

/// One code sent (or being sent) to the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SendRecord {
    method: MfaMethod,
    /// `sign_in`, `enroll` or `reauth`: each has its own 30-second throttle.
    purpose: String,
    at: Timestamp,
    /// For `sign_in` sends: the asking address's rate-limit bucket (IPv4 as
    /// is, IPv6 by network), which has its own cap and throttle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    /// Names the reservation, so a failed delivery can give it back.
    id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SmsMethod {
    phone: String,
    created_at: Timestamp,
}

/// A code sent by e-mail or SMS (records are sealed, so the code is stored as is).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SentCode {
    method: MfaMethod,
    code: String,
    /// The phone number an SMS enrollment is for.
    phone: Option<String>,
    expires_at: Timestamp,
    /// Wrong codes tried against it; an enrollment code burns after `MAX_CODE_ATTEMPTS`.
    #[serde(default)]
    attempts: u32,
    /// An enrollment started with a proof (password and a current factor):
    /// needed to finish it once any factor is active (see `prove_addition`).
    #[serde(default)]
    proved: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TotpMethod {
    secret: String,
    created_at: Timestamp,
    /// The last accepted time step: this and older codes are refused.
    last_step: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingTotp {
    secret: String,
    created_at: Timestamp,
    /// Wrong codes tried; the enrollment is dropped after `MAX_CODE_ATTEMPTS`.
    #[serde(default)]
    attempts: u32,
    /// Started with a proof (see `SentCode::proved`).
    #[serde(default)]
    proved: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Challenge {
    user_id: UserId,
    expires_at: Timestamp,
    /// The user's tokens-valid-after epoch when the password step passed: a
    /// revocation since (password reset, "end sessions", SSO enforcement)
    /// moved it, and the step can no longer be finished.
    #[serde(default)]
    epoch: u64,
    /// The e-mail or SMS code sent for this sign-in, if one was asked for.
    #[serde(default)]
    code: Option<SentCode>,
}

/// What a user has set up, for listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaSummary {
    pub totp: bool,
    pub totp_since: Option<Timestamp>,
    pub email: bool,
    /// The SMS number, masked.
    pub sms: Option<String>,
    pub recovery_codes_remaining: usize,
    #[schema(value_type = Vec<String>)]
    pub methods: Vec<MfaMethod>,
}

fn state(r: &impl Reader, user: &UserId) -> Result<MfaState> {
    Ok(r.get(Table::Mfa, user.as_str().as_bytes())?
        .unwrap_or_default())
}

fn totp_for(secret_b32: &str, account: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret_b32)
        .map_err(|_| Error::Integrity("stored TOTP secret".into()))?;
    Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some("Gatehouse"))
        .build()
        .map_err(|e| Error::internal_caused("totp", e))
}

/// A recovery code as typed: letters and digits only, lower case.
/// The method a typed code is for: a recovery code (16 base32 characters,
/// usually in four dash-separated groups; never all digits like the other
/// methods' codes) is recognised by its shape whichever method was picked,
/// so a user who types one under "Authenticator app" is not refused.
pub fn method_for_code<'a>(picked: &'a str, code: &str) -> &'a str {
    let n = normal_code(code);
    if n.len() == 16 && n.chars().any(|c| c.is_ascii_alphabetic()) {
        "recovery_code"
    } else {
        picked
    }
}

fn normal_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

/// How recovery codes were stored before they were keyed: unsalted SHA-256
/// (hex). Still accepted, so existing codes keep working until replaced.
fn legacy_code_hash(code: &str) -> String {
    hex::encode(crypto::sha256(normal_code(code).as_bytes()))
}

const KEYED_PREFIX: &str = "k1:";

/// A recovery code as stored: HMAC-SHA256 under the installation's index
/// key, bound to the user, so a copy of the records confirms no guess offline.
fn keyed_code_hash(tx: &WriteTx<'_>, user: &UserId, code: &str) -> Result<String> {
    let mac = tx.blind_index(
        "recovery_code",
        &format!("{}\0{}", user.as_str(), normal_code(code)),
    )?;
    Ok(format!("{KEYED_PREFIX}{}", hex::encode(mac)))
}

/// The position of `code` among the user's stored recovery codes.
fn find_recovery(
    tx: &WriteTx<'_>,
    user: &UserId,
    stored: &[String],
    code: &str,
) -> Result<Option<usize>> {
    let keyed = keyed_code_hash(tx, user, code)?;
    let legacy = legacy_code_hash(code);
    Ok(stored.iter().position(|c| {
        let want = if c.starts_with(KEYED_PREFIX) {
            &keyed
        } else {
            &legacy
        };
        crypto::ct_eq(c.as_bytes(), want.as_bytes())
    }))
}

/// Ten fresh codes of 80 random bits each (16 base32 characters, shown as
/// four groups), and their keyed hashes.
fn new_recovery_codes(tx: &WriteTx<'_>, user: &UserId) -> Result<(Vec<String>, Vec<String>)> {
    let mut shown = Vec::new();
    let mut hashed = Vec::new();
    for _ in 0..RECOVERY_CODES {
        let b32 = Secret::from(crypto::random_bytes::<10>()?.to_vec())
            .to_base32()
            .to_lowercase();
        let groups: Vec<&str> = (0..4).filter_map(|i| b32.get(i * 4..i * 4 + 4)).collect();
        let code = groups.join("-");
        hashed.push(keyed_code_hash(tx, user, &code)?);
        shown.push(code);
    }
    Ok((shown, hashed))
}

pub fn summary(r: &impl Reader, user: &UserId) -> Result<MfaSummary> {
    let s = state(r, user)?;
    let mut methods = Vec::new();
    if s.totp.is_some() {
        methods.push(MfaMethod::Totp);
    }
    if s.email.is_some() {
        methods.push(MfaMethod::Email);
    }
    if s.sms.is_some() {
        methods.push(MfaMethod::Sms);
    }
    if !methods.is_empty() && !s.recovery.is_empty() {
        methods.push(MfaMethod::RecoveryCode);
    }
    Ok(MfaSummary {
        totp: s.totp.is_some(),
        totp_since: s.totp.as_ref().map(|t| t.created_at),
        email: s.email.is_some(),
        sms: s.sms.as_ref().map(|m| mask_phone(&m.phone)),
        recovery_codes_remaining: s.recovery.len(),
        methods,
    })
}

/// True when signing in needs a second factor.
pub fn required(r: &impl Reader, user: &UserId) -> Result<bool> {
    let s = state(r, user)?;
    Ok(s.totp.is_some() || s.email.is_some() || s.sms.is_some())
}

fn has_factor(s: &MfaState) -> bool {
    s.totp.is_some() || s.email.is_some() || s.sms.is_some()
}

/// Adding a factor beside an active one is a way into the account (the new
/// factor then passes every proof and the sign-in step), so it takes the
/// same proof as removing one: password and a current factor (purpose
/// `mfa.add_method`). The first factor needs none. Returns whether a proof
/// was given, which the pending enrollment keeps.
async fn prove_addition(
    svc: &Service,
    user: &User,
    method: MfaMethod,
    proof: Option<&super::Proof<'_>>,
    src: &Source,
) -> Result<bool> {
    let s = state(&svc.store.read()?, &user.id)?;
    not_enrolled_yet(&s, method)?;
    if !has_factor(&s) {
        return Ok(false);
    }
    let Some(proof) = proof else {
        return Err(addition_needs_proof());
    };
    super::confirm(
        svc,
        user,
        proof,
        super::Need::PasswordAndFactor,
        "mfa.add_method",
        None,
        src,
    )
    .await?;
    Ok(true)
}

fn addition_needs_proof() -> Error {
    Error::invalid(
        "password",
        "adding a second factor beside the one you have needs your password and a current code from it (password, method, code)",
    )
}

/// Finishing an enrollment that was started without a proof while a factor
/// has become active since: refused, the enrollment is dropped.
fn started_unproved() -> Error {
    Error::Conflict(
        "A second factor was set up after this enrollment started; start it again, with your password and a current code.".into(),
    )
}

/// Starts enrolling an authenticator app: a fresh 160-bit secret, active only
/// after `confirm_totp`. Returns the base32 secret and the otpauth URI.
/// Beside an active factor it needs `proof` (see `prove_addition`).
pub async fn start_totp(
    svc: &Service,
    actor: &Actor,
    proof: Option<&super::Proof<'_>>,
) -> Result<(String, String)> {
    actor.require_recent(svc)?;
    let (user, src) = (own_user(actor)?, &actor.source);
    let proved = prove_addition(svc, user, MfaMethod::Totp, proof, src).await?;
    let secret = Secret::from(crypto::random_bytes::<20>()?.to_vec()).to_base32();
    let uri = totp_for(&secret, user.email.as_str())?
        .to_url()
        .map_err(|e| Error::internal_caused("totp url", e))?;
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    not_enrolled_yet(&s, MfaMethod::Totp)?;
    if has_factor(&s) && !proved {
        return Err(addition_needs_proof());
    }
    s.pending_totp = Some(PendingTotp {
        secret: secret.clone(),
        created_at: svc.now(),
        attempts: 0,
        proved,
    });
    tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    tx.commit()?;
    Ok((secret, uri))
}

/// The otpauth URI of a pending enrollment (to show its QR code again).
pub fn pending_uri(svc: &Service, user: &User) -> Result<Option<(String, String)>> {
    let s = state(&svc.store.read()?, &user.id)?;
    match s.pending_totp {
        Some(p) if svc.now() - p.created_at < ENROLL_TTL_SECS => {
            let uri = totp_for(&p.secret, user.email.as_str())?
                .to_url()
                .map_err(|e| Error::internal_caused("totp url", e))?;
            Ok(Some((p.secret, uri)))
        }
        _ => Ok(None),
    }
}

/// Activates the pending secret if `code` is valid now; returns new recovery
/// codes (shown once) when the user had none.
pub fn confirm_totp(svc: &Service, user: &User, code: &str, src: &Source) -> Result<Vec<String>> {
    confirm_totp_upgrading(svc, user, code, src, None)
}

/// `confirm_totp`, and on success the console session `session` (its hash)
/// becomes a full one, in the same transaction.
pub fn confirm_totp_upgrading(
    svc: &Service,
    user: &User,
    code: &str,
    src: &Source,
    session: Option<&[u8]>,
) -> Result<Vec<String>> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    not_enrolled_yet(&s, MfaMethod::Totp)?;
    let pending = s
        .pending_totp
        .clone()
        .filter(|p| now - p.created_at < ENROLL_TTL_SECS)
        .ok_or_else(|| {
            Error::invalid(
                "code",
                "no authenticator enrollment is in progress; start again",
            )
        })?;
    if has_factor(&s) && !pending.proved {
        s.pending_totp = None;
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        tx.commit()?;
        return Err(started_unproved());
    }
    let Some(step) =
        totp_for(&pending.secret, user.email.as_str())?.check(code.trim(), now.max(0) as u64)
    else {
        // Counted per enrollment: guessing burns it.
        let attempts = pending.attempts + 1;
        let burnt = attempts >= MAX_CODE_ATTEMPTS;
        s.pending_totp = (!burnt).then_some(PendingTotp {
            attempts,
            ..pending
        });
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        enrollment_failure(&mut tx, user, MfaMethod::Totp, burnt, now, src)?;
        tx.commit()?;
        return Err(if burnt {
            too_many_attempts()
        } else {
            Error::invalid(
                "code",
                "is not the current code of the authenticator app; check the device's clock",
            )
        });
    };
    s.totp = Some(TotpMethod {
        secret: pending.secret,
        created_at: now,
        last_step: step,
    });
    s.pending_totp = None;
    let mut shown = Vec::new();
    if s.recovery.is_empty() {
        let (codes, hashed) = new_recovery_codes(&tx, &user.id)?;
        shown = codes;
        s.recovery = hashed;
    }
    tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new("mfa.totp_enrolled", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str()),
    )?;
    if let Some(h) = session {
        super::session::refresh_auth(&mut tx, h, now, true)?;
    }
    tx.commit()?;
    Ok(shown)
}

/// Replaces the recovery codes; the old set stops working. Recovery codes
/// are a full second factor, so this takes the proof: password and a current
/// factor (purpose `mfa.recovery_regenerate`).
pub async fn regenerate_recovery(
    svc: &Service,
    actor: &Actor,
    proof: &super::Proof<'_>,
) -> Result<Vec<String>> {
    actor.require_recent(svc)?;
    let (user, src) = (own_user(actor)?, &actor.source);
    let no_factor = || Error::Conflict("Set up a second factor first.".into());
    // Refused before the proof, so it spends no code.
    if !has_factor(&state(&svc.store.read()?, &user.id)?) {
        return Err(no_factor());
    }
    super::confirm(
        svc,
        user,
        proof,
        super::Need::PasswordAndFactor,
        "mfa.recovery_regenerate",
        None,
        src,
    )
    .await?;
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    if !has_factor(&s) {
        return Err(no_factor());
    }
    let (codes, hashed) = new_recovery_codes(&tx, &user.id)?;
    s.recovery = hashed;
    tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        NewEvent::new("mfa.recovery_regenerated", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str()),
    )?;
    tx.commit()?;
    Ok(codes)
}

/// Removes one of the user's own methods (`totp`, `email`, `sms`) once they
/// proved it is them: password and a current second factor (`authn::confirm`).
/// Removing the last one is refused while the policy requires MFA for them;
/// it also ends the recovery codes.
pub async fn remove_method(
    svc: &Service,
    actor: &Actor,
    method: MfaMethod,
    proof: &super::Proof<'_>,
) -> Result<()> {
    actor.require_recent(svc)?;
    let (user, src) = (own_user(actor)?, &actor.source);
    // The refusals that need no proof come first, so they spend no code.
    removable(svc, user, &state(&svc.store.read()?, &user.id)?, method)?;
    super::confirm(
        svc,
        user,
        proof,
        super::Need::PasswordAndFactor,
        "mfa.remove_method",
        None,
        src,
    )
    .await?;
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    removable(svc, user, &s, method)?;
    match method {
        MfaMethod::Totp => s.totp = None,
        MfaMethod::Email => s.email = None,
        _ => s.sms = None,
    }
    if s.totp.is_none() && s.email.is_none() && s.sms.is_none() {
        s.recovery.clear();
    }
    tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        NewEvent::new("mfa.method_removed", Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str())
            .details(serde_json::json!({"method": method.as_str()})),
    )?;
    tx.commit()
}

/// Why `method` cannot be removed from `s`, if it cannot.
fn removable(svc: &Service, user: &User, s: &MfaState, method: MfaMethod) -> Result<()> {
    let had = match method {
        MfaMethod::Totp => s.totp.is_some(),
        MfaMethod::Email => s.email.is_some(),
        MfaMethod::Sms => s.sms.is_some(),
        MfaMethod::RecoveryCode => return Err(not_removable()),
    };
    if !had {
        return Err(Error::NotFound("method"));
    }
    let left = [
        s.totp.is_some() && method != MfaMethod::Totp,
        s.email.is_some() && method != MfaMethod::Email,
        s.sms.is_some() && method != MfaMethod::Sms,
    ];
    if !left.contains(&true) && crate::policy::current(svc)?.mfa_required_for(user) {
        return Err(Error::Conflict(
            "This is your last second factor and the security policy requires one: add another first.".into(),
        ));
    }
    Ok(())
}

/// The refusal of a method that cannot be removed (recovery codes, or a name
/// that is no method: the edge refuses those with these words too).
pub fn not_removable() -> Error {
    Error::invalid("method", "must be totp, email or sms")
}

/// The user removes all of their own second factors, once they proved it is
/// them: password and a current second factor (`authn::confirm`).
pub async fn remove_all_own(svc: &Service, actor: &Actor, proof: &super::Proof<'_>) -> Result<()> {
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    let user = own_user(actor)?;
    if crate::policy::current(svc)?.mfa_required_for(user) {
        return Err(own_reset_refused());
    }
    super::confirm(
        svc,
        user,
        proof,
        super::Need::PasswordAndFactor,
        "mfa.remove_all",
        None,
        src,
    )
    .await?;
    clear_factors(svc, by, src, &user.id)
}

fn own_reset_refused() -> Error {
    Error::Conflict(
        "The security policy requires a second factor for you; you cannot remove all of them."
            .into(),
    )
}

/// Refuses to enroll `method` over one that is active: replacing a factor
/// goes remove (with proof of the current one) then add.
fn not_enrolled_yet(s: &MfaState, method: MfaMethod) -> Result<()> {
    let (on, what) = match method {
        MfaMethod::Totp => (s.totp.is_some(), "An authenticator app is"),
        MfaMethod::Email => (s.email.is_some(), "E-mail codes are"),
        _ => (s.sms.is_some(), "SMS codes are"),
    };
    if on {
        return Err(Error::Conflict(format!(
            "{what} already set up: remove it first (with your password and a current code), then add the new one."
        )));
    }
    Ok(())
}

/// Where a user removes their own factors (the admin reset refuses them).
const OWN_FACTORS: &str = "Remove your own under My account (/admin/account) or with DELETE /api/v1/me/mfa, with your password and a current code.";

/// An administrator removes every second factor of another user, who then
/// enrolls again. Never the caller's own (`guard_admin_path`): that is
/// `remove_all_own`, which asks for the proof.
pub fn reset(svc: &Service, actor: &crate::access::Actor, user: &UserId) -> Result<()> {
    actor.authorize(
        svc,
        crate::access::Permission::ManageUsers,
        crate::access::Resource::Platform,
    )?;
    // Resetting someone's factors opens their account to a new enrolment.
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    {
        let r = svc.store.read()?;
        crate::access::guard_admin_path(
            svc,
            by,
            &identity::get(&r, user)?,
            "second factors",
            OWN_FACTORS,
        )?;
    }
    clear_factors(svc, by, src, user)
}

/// The user changing their own second factors: the operations on one's own
/// factors are for users (the same refusal `ApiCaller::user` gives).
fn own_user(actor: &Actor) -> Result<&User> {
    actor.principal.user().ok_or_else(|| {
        Error::Forbidden(
            "This endpoint is for users; service accounts and API keys cannot call it.".into(),
        )
    })
}

/// Removes every second factor of `user` (their own, proved, or an admin's reset).
fn clear_factors(svc: &Service, by: &Principal, src: &Source, user: &UserId) -> Result<()> {
    let mut tx = svc.store.write()?;
    crate::access::guard_credentials(svc, by, &identity::get(&tx, user)?, "second factors")?;
    // Every factor goes; the record of codes sent stays, so a reset does not
    // lift the send throttle or the daily cap.
    let sends = state(&tx, user)?.sends;
    tx.put(
        Table::Mfa,
        user.as_str().as_bytes(),
        &MfaState {
            sends,
            ..Default::default()
        },
    )?;
    let own = by.user_id() == Some(user);
    if !own {
        // Whoever held the old factors may hold sessions, refresh tokens and
        // access tokens signed with them: all of them end.
        crate::authn::revoke::end_everything(
            &mut tx,
            user,
            svc.now(),
            crate::authn::revoke::Sessions::End,
        )?;
    }
    if own
        && let Some(u) = by.user()
        && crate::policy::current(svc)?.mfa_required_for(u)
    {
        return Err(own_reset_refused());
    }
    audit::record(
        &mut tx,
        svc.now(),
        src,
        by.event(
            if own { "mfa.removed" } else { "mfa.reset" },
            Outcome::Success,
        )
        .target(user.as_str()),
    )?;
    tx.commit()
}

/// Checks a second factor outside a sign-in (re-authentication): a TOTP code
/// (same window and replay rules), the e-mail/SMS code sent by
/// `send_reauth_code`, or a recovery code. Each works once. `Ok(false)` when wrong.
pub fn check_code_now(
    tx: &mut WriteTx<'_>,
    user: &User,
    method: MfaMethod,
    code: &str,
    now: Timestamp,
) -> Result<bool> {
    let mut s = state(tx, &user.id)?;
    let ok = match method {
        MfaMethod::Totp => match s.totp.clone() {
            Some(totp) => match totp_for(&totp.secret, user.email.as_str())?
                .check(code.trim(), now.max(0) as u64)
            {
                Some(step) if step > totp.last_step => {
                    s.totp = Some(TotpMethod {
                        last_step: step,
                        ..totp
                    });
                    true
                }
                _ => false,
            },
            None => false,
        },
        MfaMethod::Email | MfaMethod::Sms => match s.reauth_code.take() {
            Some(c)
                if c.method == method
                    && c.expires_at > now
                    && crypto::ct_eq(c.code.as_bytes(), code.trim().as_bytes()) =>
            {
                true
            }
            other => {
                s.reauth_code = other;
                false
            }
        },
        MfaMethod::RecoveryCode => match find_recovery(tx, &user.id, &s.recovery, code)? {
            Some(i) => {
                s.recovery.remove(i);
                true
            }
            None => false,
        },
    };
    if ok {
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    }
    Ok(ok)
}

/// Sends an e-mail or SMS code to confirm a sensitive action (one per 30 s).
pub async fn send_reauth_code(svc: &Service, user: &User, method: MfaMethod) -> Result<()> {
    let now = svc.now();
    let code = six_digits()?;
    let (phone, id) = {
        let mut tx = svc.store.write()?;
        let mut s = state(&tx, &user.id)?;
        let phone = match method {
            MfaMethod::Email if s.email.is_some() => None,
            MfaMethod::Sms if s.sms.is_some() => s.sms.as_ref().map(|m| m.phone.clone()),
            _ => return Err(not_one_of_yours()),
        };
        method_allowed(svc, method)?;
        let id = reserve_send(svc, &mut s, method, "reauth", None, now)?;
        s.reauth_code = Some(SentCode {
            method,
            code: code.clone(),
            phone: None,
            expires_at: now + CODE_TTL_SECS,
            attempts: 0,
            proved: false,
        });
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        tx.commit()?;
        (phone, id)
    };
    deliver_reserved(svc, method, user, phone.as_deref(), &code, id).await
}

/// The refusal of a method the user cannot be sent a code for (not enrolled,
/// not a code method, or a name that is no method: the edge refuses those
/// with these words too).
pub fn not_one_of_yours() -> Error {
    Error::invalid("method", "is not one of your methods")
}

pub const CODE_TTL_SECS: i64 = 600;
pub const RESEND_AFTER_SECS: i64 = 30;

fn six_digits() -> Result<String> {
    loop {
        let n = u32::from_be_bytes(crypto::random_bytes::<4>()?);
        // Rejection sampling keeps every code equally likely.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

fn parse_phone(raw: &str) -> Result<String> {
    let p: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = p.strip_prefix('+').unwrap_or("");
    if digits.len() < 8 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            "phone",
            "use the international format, e.g. +4915112345678",
        ));
    }
    Ok(p)
}

fn mask_phone(p: &str) -> String {
    let keep = p.len().saturating_sub(3);
    format!("{}{}", "•".repeat(keep.min(8)), &p[keep..])
}

/// The method may be used: allowed by the policy and deliverable.
fn method_allowed(svc: &Service, method: MfaMethod) -> Result<()> {
    let policy = crate::policy::current(svc)?;
    if !policy.mfa.allows(method) {
        return Err(Error::Forbidden(format!(
            "The security policy does not allow the {method} method."
        )));
    }
    let configured = match method {
        MfaMethod::Email => crate::notify::email_configured(&svc.settings.smtp),
        MfaMethod::Sms => crate::notify::sms_configured(&svc.settings.sms),
        _ => true,
    };
    if !configured {
        return Err(Error::Conflict(format!(
            "The {method} method is not configured on this server."
        )));
    }
    Ok(())
}

async fn deliver(
    svc: &Service,
    method: MfaMethod,
    user: &User,
    phone: Option<&str>,
    code: &str,
) -> Result<()> {
    match method {
        MfaMethod::Email => {
            let body = format!(
                "Your Gatehouse code is {code}\n\nIt works once, for 10 minutes. If you did not try to sign in, \
                 change your password and tell your administrator."
            );
            crate::notify::send_email(
                &svc.settings.smtp,
                user.email.as_str(),
                "Your Gatehouse code",
                &body,
            )
            .await
        }
        MfaMethod::Sms => {
            crate::notify::send_sms(&svc.settings.sms, phone.unwrap_or_default(), code).await
        }
        _ => Err(Error::invalid("method", "must be email or sms")),
    }
}

/// Wrong codes an enrollment (e-mail, SMS or authenticator) takes before it
/// is dropped and must be started again.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

const DAY_SECS: i64 = 86_400;

fn too_many_attempts() -> Error {
    Error::invalid(
        "code",
        "was wrong too many times, so this enrollment ended; start it again for a new code",
    )
}

/// Audits a wrong enrollment code (`burnt`: the enrollment ended with it).
fn enrollment_failure(
    tx: &mut WriteTx<'_>,
    user: &User,
    method: MfaMethod,
    burnt: bool,
    now: Timestamp,
    src: &Source,
) -> Result<()> {
    audit::record(
        tx,
        now,
        src,
        NewEvent::new("mfa.enroll", Outcome::Failure)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str())
            .details(serde_json::json!({
                "method": method.as_str(),
                "reason": if burnt { "too_many_attempts" } else { "wrong_code" },
            })),
    )?;
    Ok(())
}

/// How many times `rate_limit.codes_per_day` the sign-in step may send a
/// user, summed over every address (each address gets the plain cap).
pub const SIGN_IN_CAP_FACTOR: usize = 3;

/// Where a send is asked from, as the per-address cap counts it: the
/// address's rate-limit bucket (IPv6 by `rate_limit.ipv6_prefix` network).
fn send_addr(svc: &Service, src: &Source) -> String {
    src.ip
        .as_deref()
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .map(|ip| {
            crate::ratelimit::bucket_addr(ip, svc.settings.rate_limit.ipv6_prefix).to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Reserves a send of `method` for `purpose` in the user's record (see
/// `reserve_in`). `addr` is the asking address for the pre-auth sign-in
/// step (`send_addr`), `None` for the signed-in user's own sends.
fn reserve_send(
    svc: &Service,
    s: &mut MfaState,
    method: MfaMethod,
    purpose: &str,
    addr: Option<String>,
    now: Timestamp,
) -> Result<u64> {
    let id = u64::from_be_bytes(crypto::random_bytes::<8>()?);
    let cap = svc.settings.rate_limit.codes_per_day as usize;
    reserve_in(s, method, purpose, addr, cap, now, id)?;
    Ok(id)
}

/// The send rules. Refused within 30 s of the last send of the same method
/// and purpose (for the sign-in step: from the same address), or once a cap
/// of the last 24 hours is reached. The caps are separate, so someone holding
/// only the password cannot use up the user's codes: the signed-in user's
/// own sends (enrollment, re-authentication) count `cap` a method among
/// themselves; the sign-in step counts `cap` a method per asking address and
/// `SIGN_IN_CAP_FACTOR × cap` over all addresses.
fn reserve_in(
    s: &mut MfaState,
    method: MfaMethod,
    purpose: &str,
    addr: Option<String>,
    cap: usize,
    now: Timestamp,
    id: u64,
) -> Result<()> {
    s.sends.retain(|r| now - r.at < DAY_SECS && r.at <= now);
    let sign_in = purpose == "sign_in";
    let same_step = |r: &&SendRecord| {
        r.method == method && r.purpose == purpose && (!sign_in || r.addr == addr)
    };
    if let Some(last) = s.sends.iter().filter(same_step).map(|r| r.at).max()
        && now - last < RESEND_AFTER_SECS
    {
        return Err(Error::Conflict(format!(
            "A code was just sent; wait {} s before asking for another.",
            RESEND_AFTER_SECS - (now - last)
        )));
    }
    let by = if method == MfaMethod::Sms {
        "SMS"
    } else {
        "e-mail"
    };
    let of_method = || s.sends.iter().filter(|r| r.method == method);
    let reached = if sign_in {
        of_method()
            .filter(|r| r.purpose == "sign_in" && r.addr == addr)
            .count()
            >= cap
            || of_method().filter(|r| r.purpose == "sign_in").count()
                >= cap.saturating_mul(SIGN_IN_CAP_FACTOR)
    } else {
        of_method().filter(|r| r.purpose != "sign_in").count() >= cap
    };
    if reached {
        return Err(Error::Conflict(format!(
            "The daily limit of {cap} codes by {by} {} is reached; use another method or try again tomorrow.",
            if sign_in {
                "for signing in"
            } else {
                "for your account's own requests"
            }
        )));
    }
    s.sends.push(SendRecord {
        method,
        purpose: purpose.into(),
        at: now,
        addr: if sign_in { addr } else { None },
        id,
    });
    Ok(())
}

/// Delivers a reserved code; a delivery that failed gives its reservation
/// back, so it neither starts the throttle nor counts towards the cap.
async fn deliver_reserved(
    svc: &Service,
    method: MfaMethod,
    user: &User,
    phone: Option<&str>,
    code: &str,
    id: u64,
) -> Result<()> {
    let sent = deliver(svc, method, user, phone, code).await;
    if sent.is_err() {
        let mut tx = svc.store.write()?;
        let mut s = state(&tx, &user.id)?;
        s.sends.retain(|r| r.id != id);
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        tx.commit()?;
    }
    sent
}

/// Starts enrolling e-mail or SMS codes: sends a code to the account's
/// e-mail address, or to `phone`. Beside an active factor it needs `proof`
/// (see `prove_addition`).
pub async fn start_code_enrollment(
    svc: &Service,
    actor: &Actor,
    method: MfaMethod,
    phone: Option<&str>,
    proof: Option<&super::Proof<'_>>,
) -> Result<()> {
    actor.require_recent(svc)?;
    let (user, src) = (own_user(actor)?, &actor.source);
    if !matches!(method, MfaMethod::Email | MfaMethod::Sms) {
        return Err(Error::invalid("method", "must be email or sms"));
    }
    method_allowed(svc, method)?;
    let phone = match method {
        MfaMethod::Sms => Some(parse_phone(phone.unwrap_or(""))?),
        _ => None,
    };
    let proved = prove_addition(svc, user, method, proof, src).await?;
    let now = svc.now();
    let code = six_digits()?;
    let id = {
        let mut tx = svc.store.write()?;
        let mut s = state(&tx, &user.id)?;
        not_enrolled_yet(&s, method)?;
        if has_factor(&s) && !proved {
            return Err(addition_needs_proof());
        }
        let id = reserve_send(svc, &mut s, method, "enroll", None, now)?;
        s.pending_code = Some(SentCode {
            method,
            code: code.clone(),
            phone: phone.clone(),
            expires_at: now + CODE_TTL_SECS,
            attempts: 0,
            proved,
        });
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        tx.commit()?;
        id
    };
    deliver_reserved(svc, method, user, phone.as_deref(), &code, id).await
}

/// Activates e-mail or SMS codes with the code that was sent; returns new
/// recovery codes (shown once) when the user had none.
pub fn confirm_code_enrollment(
    svc: &Service,
    user: &User,
    method: MfaMethod,
    code: &str,
    src: &Source,
) -> Result<Vec<String>> {
    confirm_code_enrollment_upgrading(svc, user, method, code, src, None)
}

/// `confirm_code_enrollment`, and on success the console session `session`
/// (its hash) becomes a full one, in the same transaction.
pub fn confirm_code_enrollment_upgrading(
    svc: &Service,
    user: &User,
    method: MfaMethod,
    code: &str,
    src: &Source,
    session: Option<&[u8]>,
) -> Result<Vec<String>> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    not_enrolled_yet(&s, method)?;
    let pending = s
        .pending_code
        .clone()
        .filter(|p| p.method == method && p.expires_at > now)
        .ok_or_else(|| {
            Error::invalid(
                "code",
                "no code is waiting for this method (or it expired); send a new one",
            )
        })?;
    if has_factor(&s) && !pending.proved {
        s.pending_code = None;
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        tx.commit()?;
        return Err(started_unproved());
    }
    if !crypto::ct_eq(pending.code.as_bytes(), code.trim().as_bytes()) {
        // Counted per code: guessing burns it.
        let attempts = pending.attempts + 1;
        let burnt = attempts >= MAX_CODE_ATTEMPTS;
        s.pending_code = (!burnt).then_some(SentCode {
            attempts,
            ..pending
        });
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        enrollment_failure(&mut tx, user, method, burnt, now, src)?;
        tx.commit()?;
        return Err(if burnt {
            too_many_attempts()
        } else {
            Error::invalid("code", "is not the code that was sent")
        });
    }
    match method {
        MfaMethod::Email => s.email = Some(now),
        _ => {
            s.sms = Some(SmsMethod {
                phone: pending.phone.clone().unwrap_or_default(),
                created_at: now,
            })
        }
    }
    s.pending_code = None;
    let mut shown = Vec::new();
    if s.recovery.is_empty() {
        let (codes, hashed) = new_recovery_codes(&tx, &user.id)?;
        shown = codes;
        s.recovery = hashed;
    }
    tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    let action = if method == MfaMethod::Email {
        "mfa.email_enrolled"
    } else {
        "mfa.sms_enrolled"
    };
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new(action, Outcome::Success)
            .actor(user.email.as_str(), Some(user.id.as_str().into()))
            .target(user.id.as_str()),
    )?;
    if let Some(h) = session {
        super::session::refresh_auth(&mut tx, h, now, true)?;
    }
    tx.commit()?;
    Ok(shown)
}

/// During sign-in: sends a fresh e-mail or SMS code for the challenge.
pub async fn send_challenge_code(
    svc: &Service,
    mfa_token: &str,
    method: MfaMethod,
    src: &Source,
) -> Result<()> {
    let now = svc.now();
    let key = crypto::sha256(mfa_token.as_bytes());
    let code = six_digits()?;
    let (user, phone, id) = {
        let mut tx = svc.store.write()?;
        let mut ch: Challenge = tx
            .get::<Challenge>(Table::MfaChallenges, &key)?
            .filter(|c| c.expires_at > now)
            .ok_or_else(challenge_gone)?;
        let user = identity::get(&tx, &ch.user_id)?;
        let mut s = state(&tx, &user.id)?;
        let phone = match method {
            MfaMethod::Email if s.email.is_some() => None,
            MfaMethod::Sms if s.sms.is_some() => s.sms.as_ref().map(|m| m.phone.clone()),
            _ => return Err(not_a_sign_in_method()),
        };
        method_allowed(svc, method)?;
        // Throttled per user, not per mfa_token: a fresh sign-in step each
        // time must not buy a fresh allowance.
        let id = reserve_send(
            svc,
            &mut s,
            method,
            "sign_in",
            Some(send_addr(svc, src)),
            now,
        )?;
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        ch.code = Some(SentCode {
            method,
            code: code.clone(),
            phone: None,
            expires_at: now + CODE_TTL_SECS,
            attempts: 0,
            proved: false,
        });
        tx.put(Table::MfaChallenges, &key, &ch)?;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("mfa.code_sent", Outcome::Success)
                .actor(user.email.as_str(), Some(user.id.as_str().into()))
                .target(user.id.as_str())
                .details(serde_json::json!({"method": method.as_str()})),
        )?;
        tx.commit()?;
        (user, phone, id)
    };
    deliver_reserved(svc, method, &user, phone.as_deref(), &code, id).await
}

/// The refusal of a method the pending sign-in cannot be sent a code for
/// (the edge refuses a name that is no method with these words too).
pub fn not_a_sign_in_method() -> Error {
    Error::invalid("method", "is not one of your sign-in methods")
}

/// Methods users may enroll now: allowed by the policy and deliverable here.
pub fn available_methods(svc: &Service) -> Result<Vec<MfaMethod>> {
    let policy = crate::policy::current(svc)?;
    Ok(crate::policy::METHODS
        .iter()
        .copied()
        .filter(|&m| policy.mfa.allows(m) && method_allowed(svc, m).is_ok())
        .collect())
}

/// The second factors a pending sign-in may use (for the code page).
pub fn challenge_methods(svc: &Service, mfa_token: &str) -> Result<Vec<MfaMethod>> {
    let r = svc.store.read()?;
    let ch: Challenge = r
        .get::<Challenge>(Table::MfaChallenges, &crypto::sha256(mfa_token.as_bytes()))?
        .filter(|c| c.expires_at > svc.now())
        .ok_or_else(challenge_gone)?;
    Ok(summary(&r, &ch.user_id)?.methods)
}

/// Opens a challenge after a correct password; the token grants nothing but
/// completing this sign-in within 5 minutes.
pub fn issue_challenge(tx: &mut WriteTx<'_>, user: &UserId, now: Timestamp) -> Result<String> {
    let token = format!("ghm_{}", crypto::random_token()?);
    let epoch = crate::tokens::valid_after(tx, user)?.epoch;
    tx.put(
        Table::MfaChallenges,
        &crypto::sha256(token.as_bytes()),
        &Challenge {
            user_id: user.clone(),
            expires_at: now + CHALLENGE_TTL_SECS,
            epoch,
            code: None,
        },
    )?;
    Ok(token)
}

/// Ends every pending sign-in step (`mfa_token`, the console's MFA cookie)
/// of `user`, in `tx`: a revocation (`revoke::end_everything`) must not
/// leave a password step started before it to be finished after it. Expired
/// steps of anyone go too. Returns how many of `user`'s ended.
pub(crate) fn end_challenges(tx: &mut WriteTx<'_>, user: &UserId, now: Timestamp) -> Result<usize> {
    let mut n = 0;
    for (k, ch) in tx.scan::<Challenge>(Table::MfaChallenges, b"")? {
        if &ch.user_id == user || ch.expires_at <= now {
            tx.delete(Table::MfaChallenges, &k)?;
            n += usize::from(&ch.user_id == user);
        }
    }
    Ok(n)
}

fn challenge_gone() -> Error {
    Error::Unauthenticated(
        "The sign-in step expired or is unknown; sign in again with your password.".into(),
    )
}

/// Accepted: the user, the method used and, for a recovery code, how many remain.
/// Refused: the user if the challenge named one, and the precise reason for the audit log.
pub type Verdict =
    std::result::Result<(User, MfaMethod, Option<usize>), (Option<User>, &'static str)>;

/// Checks the second factor for a challenge. On success the challenge is
/// spent (inside `tx`) and the user returned; on failure the attempt counts
/// towards the account lockout. Returns the method used.
pub fn verify(
    tx: &mut WriteTx<'_>,
    mfa_token: &str,
    method: MfaMethod,
    code: &str,
    now: Timestamp,
) -> Result<Verdict> {
    let key = crypto::sha256(mfa_token.as_bytes());
    let Some(ch) = tx.get::<Challenge>(Table::MfaChallenges, &key)? else {
        return Ok(Err((None, "unknown_mfa_token")));
    };
    if ch.expires_at <= now {
        tx.delete(Table::MfaChallenges, &key)?;
        return Ok(Err((None, "expired_mfa_token")));
    }
    let user = identity::get(tx, &ch.user_id)?;
    if user.disabled {
        return Ok(Err((Some(user), "user_disabled")));
    }
    // Revoked since the password step (a reset, "end sessions"): spent.
    if ch.epoch != crate::tokens::valid_after(tx, &user.id)?.epoch {
        tx.delete(Table::MfaChallenges, &key)?;
        return Ok(Err((Some(user), "revoked_mfa_token")));
    }
    // Password sign-in taken away since (SSO enforced on them): spent.
    if !crate::rollout::password_allowed(tx, &user)? {
        tx.delete(Table::MfaChallenges, &key)?;
        return Ok(Err((Some(user), "sso_required")));
    }
    if crate::authn::lockout::locked_until(tx, &user.id, now)?.is_some() {
        return Ok(Err((Some(user), "account_locked")));
    }
    let mut s = state(tx, &user.id)?;
    let outcome: std::result::Result<(MfaMethod, Option<usize>), &'static str> = match method {
        MfaMethod::Totp => match s.totp.clone() {
            None => Err("method_not_enrolled"),
            Some(totp) => match totp_for(&totp.secret, user.email.as_str())?
                .check(code.trim(), now.max(0) as u64)
            {
                Some(step) if step <= totp.last_step => Err("replayed_code"),
                Some(step) => {
                    s.totp = Some(TotpMethod {
                        last_step: step,
                        ..totp
                    });
                    Ok((MfaMethod::Totp, None))
                }
                None => Err("wrong_code"),
            },
        },
        MfaMethod::Email | MfaMethod::Sms => {
            let enrolled = if method == MfaMethod::Email {
                s.email.is_some()
            } else {
                s.sms.is_some()
            };
            match ch.code.as_ref().filter(|c| c.method == method) {
                _ if !enrolled => Err("method_not_enrolled"),
                None => Err("no_code_sent"),
                Some(c) if c.expires_at <= now => Err("expired_code"),
                Some(c) if crypto::ct_eq(c.code.as_bytes(), code.trim().as_bytes()) => {
                    Ok((method, None))
                }
                Some(_) => Err("wrong_code"),
            }
        }
        MfaMethod::RecoveryCode => match find_recovery(tx, &user.id, &s.recovery, code)? {
            Some(i) => {
                s.recovery.remove(i);
                Ok((MfaMethod::RecoveryCode, Some(s.recovery.len())))
            }
            None => Err("wrong_recovery_code"),
        },
    };
    match outcome {
        Ok((m, remaining)) => {
            tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
            // Single use: the challenge (and any code sent for it) is spent.
            tx.delete(Table::MfaChallenges, &key)?;
            Ok(Ok((user, m, remaining)))
        }
        Err(reason) => Ok(Err((Some(user), reason))),
    }
}

pub fn challenge_expired_error() -> Error {
    challenge_gone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: UserId::generate().unwrap(),
            email: crate::identity::Email::parse("kim@example.com").unwrap(),
            name: "Kim".into(),
            password_hash: None,
            role: crate::identity::Role::User,
            disabled: false,
            must_change_password: false,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn a_recovery_code_is_recognised_by_its_shape() {
        assert_eq!(
            method_for_code("totp", "abcd-efgh-2345-6723"),
            "recovery_code"
        );
        assert_eq!(
            method_for_code("email", "ABCD EFGH 2345 6723"),
            "recovery_code"
        );
        assert_eq!(method_for_code("totp", "123456"), "totp");
        assert_eq!(method_for_code("sms", "12345678"), "sms");
        assert_eq!(method_for_code("totp", "1234567890123456"), "totp");
    }

    #[test]
    fn recovery_codes_carry_80_bits_are_stored_keyed_and_old_ones_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), 1).unwrap();
        let u = user();
        let mut tx = store.write().unwrap();
        let (shown, stored) = new_recovery_codes(&tx, &u.id).unwrap();
        assert_eq!(shown.len(), RECOVERY_CODES);
        for c in &shown {
            // Four groups of four base32 characters: 16 × 5 = 80 bits.
            assert_eq!(c.len(), 19, "{c}");
            assert_eq!(normal_code(c).len(), 16);
        }
        for (c, h) in shown.iter().zip(&stored) {
            assert!(h.starts_with(KEYED_PREFIX));
            assert_ne!(h.as_str(), legacy_code_hash(c), "not a bare SHA-256");
        }
        // Bound to the user: another user's record does not match it.
        let other = user();
        assert_ne!(
            keyed_code_hash(&tx, &other.id, &shown[0]).unwrap(),
            stored[0]
        );
        // A record from before (unkeyed) keeps working, once, beside new ones.
        let old_code = "ab12c-34de5";
        let state = MfaState {
            recovery: vec![legacy_code_hash(old_code), stored[0].clone()],
            totp: None,
            ..Default::default()
        };
        tx.put(Table::Mfa, u.id.as_str().as_bytes(), &state)
            .unwrap();
        assert!(check_code_now(&mut tx, &u, MfaMethod::RecoveryCode, "AB12C-34DE5", 5).unwrap());
        assert!(!check_code_now(&mut tx, &u, MfaMethod::RecoveryCode, old_code, 5).unwrap());
        assert!(
            check_code_now(
                &mut tx,
                &u,
                MfaMethod::RecoveryCode,
                &shown[0].to_uppercase(),
                5
            )
            .unwrap()
        );
        assert!(!check_code_now(&mut tx, &u, MfaMethod::RecoveryCode, &shown[1], 5).unwrap());
        tx.commit().unwrap();
    }

    #[test]
    fn the_sign_in_step_cannot_use_up_the_users_own_codes() {
        let mut s = MfaState::default();
        let a = Some("203.0.113.5".to_string());
        let b = Some("198.51.100.7".to_string());
        let mut t = 1_000;
        // Someone with the password alone, from one address: 3 codes, then the cap.
        for _ in 0..3 {
            reserve_in(
                &mut s,
                MfaMethod::Email,
                "sign_in",
                a.clone(),
                3,
                t,
                t as u64,
            )
            .unwrap();
            t += RESEND_AFTER_SECS;
        }
        let e = reserve_in(&mut s, MfaMethod::Email, "sign_in", a.clone(), 3, t, 1).unwrap_err();
        assert!(e.to_string().contains("for signing in"), "{e}");
        // The user, from their own address, still signs in, re-authenticates
        // and enrolls; and the same-address throttle does not hold them up.
        reserve_in(&mut s, MfaMethod::Email, "sign_in", b.clone(), 3, t, 2).unwrap();
        reserve_in(&mut s, MfaMethod::Email, "reauth", None, 3, t, 3).unwrap();
        reserve_in(&mut s, MfaMethod::Email, "enroll", None, 3, t, 4).unwrap();
        // Over every address the sign-in step has a bound too.
        for n in 0..5 {
            let c = Some(format!("192.0.2.{n}"));
            let _ = reserve_in(&mut s, MfaMethod::Email, "sign_in", c, 3, t, 10 + n);
        }
        let sign_ins = s.sends.iter().filter(|r| r.purpose == "sign_in").count();
        assert_eq!(sign_ins, 3 * SIGN_IN_CAP_FACTOR);
        // The account's own requests keep their cap among themselves.
        for n in 0..3 {
            let _ = reserve_in(
                &mut s,
                MfaMethod::Email,
                "reauth",
                None,
                3,
                t + 100 * (n + 1),
                50,
            );
        }
        let own = s.sends.iter().filter(|r| r.purpose != "sign_in").count();
        assert_eq!(own, 3);
        // A day later all are free again.
        reserve_in(
            &mut s,
            MfaMethod::Email,
            "sign_in",
            a,
            3,
            t + DAY_SECS + 1,
            99,
        )
        .unwrap();
    }
}
