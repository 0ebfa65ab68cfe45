//! Second factors: authenticator apps (TOTP, RFC 6238) and one-time recovery
//! codes, plus the short-lived challenge that sits between a correct password
//! and a completed sign-in. A TOTP step accepted once is never accepted again.
//! E-mail and SMS codes: 6 digits, 10 minutes, single use, resend throttled.

use serde::{Deserialize, Serialize};
use totp_rs::{Builder, Secret, Totp};

use crate::access::Principal;
use crate::audit::{self, NewEvent, Outcome, Source};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::identity::{self, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table, WriteTx};

pub const CHALLENGE_TTL_SECS: i64 = 300;
const RECOVERY_CODES: usize = 10;
const ENROLL_TTL_SECS: i64 = 900;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MfaState {
    totp: Option<TotpMethod>,
    pending_totp: Option<PendingTotp>,
    /// SHA-256 (hex) of each unused recovery code.
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SmsMethod {
    phone: String,
    created_at: Timestamp,
}

/// A code sent by e-mail or SMS (records are sealed, so the code is stored as is).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SentCode {
    method: String,
    code: String,
    /// The phone number an SMS enrollment is for.
    phone: Option<String>,
    expires_at: Timestamp,
    sent_at: Timestamp,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Challenge {
    user_id: UserId,
    expires_at: Timestamp,
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
    pub methods: Vec<&'static str>,
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
        .map_err(|e| Error::internal(format!("totp: {e}")))
}

fn hash_code(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    hex::encode(crypto::sha256(normal.as_bytes()))
}

fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>)> {
    let mut shown = Vec::new();
    for _ in 0..RECOVERY_CODES {
        let b = crypto::random_bytes::<5>()?;
        let h = hex::encode(b);
        shown.push(format!("{}-{}", &h[..5], &h[5..]));
    }
    let hashed = shown.iter().map(|c| hash_code(c)).collect();
    Ok((shown, hashed))
}

pub fn summary(r: &impl Reader, user: &UserId) -> Result<MfaSummary> {
    let s = state(r, user)?;
    let mut methods = Vec::new();
    if s.totp.is_some() {
        methods.push("totp");
    }
    if s.email.is_some() {
        methods.push("email");
    }
    if s.sms.is_some() {
        methods.push("sms");
    }
    if !methods.is_empty() && !s.recovery.is_empty() {
        methods.push("recovery_code");
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

/// Starts enrolling an authenticator app: a fresh 160-bit secret, active only
/// after `confirm_totp`. Returns the base32 secret and the otpauth URI.
pub fn start_totp(svc: &Service, user: &User) -> Result<(String, String)> {
    let secret = Secret::from(crypto::random_bytes::<20>()?.to_vec()).to_base32();
    let uri = totp_for(&secret, user.email.as_str())?
        .to_url()
        .map_err(|e| Error::internal(format!("totp url: {e}")))?;
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    s.pending_totp = Some(PendingTotp {
        secret: secret.clone(),
        created_at: svc.now(),
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
                .map_err(|e| Error::internal(format!("totp url: {e}")))?;
            Ok(Some((p.secret, uri)))
        }
        _ => Ok(None),
    }
}

/// Activates the pending secret if `code` is valid now; returns new recovery
/// codes (shown once) when the user had none.
pub fn confirm_totp(svc: &Service, user: &User, code: &str, src: &Source) -> Result<Vec<String>> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
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
    let step = totp_for(&pending.secret, user.email.as_str())?
        .check(code.trim(), now.max(0) as u64)
        .ok_or_else(|| {
            Error::invalid(
                "code",
                "is not the current code of the authenticator app; check the device's clock",
            )
        })?;
    s.totp = Some(TotpMethod {
        secret: pending.secret,
        created_at: now,
        last_step: step,
    });
    s.pending_totp = None;
    let mut shown = Vec::new();
    if s.recovery.is_empty() {
        let (codes, hashed) = new_recovery_codes()?;
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
    tx.commit()?;
    Ok(shown)
}

/// Replaces the recovery codes; the old set stops working.
pub fn regenerate_recovery(svc: &Service, user: &User, src: &Source) -> Result<Vec<String>> {
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    if s.totp.is_none() && s.email.is_none() && s.sms.is_none() {
        return Err(Error::Conflict("Set up a second factor first.".into()));
    }
    let (codes, hashed) = new_recovery_codes()?;
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

/// Removes one of the user's own methods (`totp`, `email`, `sms`). Removing
/// the last one is refused while the policy requires MFA for them.
pub fn remove_method(svc: &Service, user: &User, method: &str, src: &Source) -> Result<()> {
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
    let had = match method {
        "totp" => s.totp.take().is_some(),
        "email" => s.email.take().is_some(),
        "sms" => s.sms.take().is_some(),
        _ => return Err(Error::invalid("method", "must be totp, email or sms")),
    };
    if !had {
        return Err(Error::NotFound("method"));
    }
    let none_left = s.totp.is_none() && s.email.is_none() && s.sms.is_none();
    if none_left && crate::policy::current(svc)?.mfa_required_for(user) {
        return Err(Error::Conflict(
            "This is your last second factor and the security policy requires one: add another first.".into(),
        ));
    }
    if none_left {
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
            .details(serde_json::json!({"method": method})),
    )?;
    tx.commit()
}

/// Removes every second factor of `user` (their own choice, or an admin's reset).
pub fn reset(svc: &Service, by: &Principal, src: &Source, user: &UserId) -> Result<()> {
    let mut tx = svc.store.write()?;
    crate::access::guard_credentials(by, &identity::get(&tx, user)?, "second factors")?;
    tx.delete(Table::Mfa, user.as_str().as_bytes())?;
    let own = by.user_id() == Some(user);
    if own
        && let Some(u) = by.user()
        && crate::policy::current(svc)?.mfa_required_for(u)
    {
        return Err(Error::Conflict(
            "The security policy requires a second factor for you; you cannot remove all of them."
                .into(),
        ));
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
    method: &str,
    code: &str,
    now: Timestamp,
) -> Result<bool> {
    let mut s = state(tx, &user.id)?;
    let ok = match method {
        "totp" => match s.totp.clone() {
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
        "email" | "sms" => match s.reauth_code.take() {
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
        "recovery_code" => {
            let h = hash_code(code);
            match s
                .recovery
                .iter()
                .position(|c| crypto::ct_eq(c.as_bytes(), h.as_bytes()))
            {
                Some(i) => {
                    s.recovery.remove(i);
                    true
                }
                None => false,
            }
        }
        _ => false,
    };
    if ok {
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    }
    Ok(ok)
}

/// Sends an e-mail or SMS code to confirm a sensitive action (one per 30 s).
pub async fn send_reauth_code(svc: &Service, user: &User, method: &str) -> Result<()> {
    let now = svc.now();
    let code = six_digits()?;
    let phone = {
        let mut tx = svc.store.write()?;
        let mut s = state(&tx, &user.id)?;
        let phone = match method {
            "email" if s.email.is_some() => None,
            "sms" if s.sms.is_some() => s.sms.as_ref().map(|m| m.phone.clone()),
            _ => return Err(Error::invalid("method", "is not one of your methods")),
        };
        method_allowed(svc, method)?;
        throttle(s.reauth_code.as_ref(), method, now)?;
        s.reauth_code = Some(SentCode {
            method: method.into(),
            code: code.clone(),
            phone: None,
            expires_at: now + CODE_TTL_SECS,
            sent_at: now,
        });
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        tx.commit()?;
        phone
    };
    deliver(svc, method, user, phone.as_deref(), &code).await
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
fn method_allowed(svc: &Service, method: &str) -> Result<()> {
    let policy = crate::policy::current(svc)?;
    if !policy.mfa.methods.iter().any(|m| m == method) {
        return Err(Error::Forbidden(format!(
            "The security policy does not allow the {method} method."
        )));
    }
    let configured = match method {
        "email" => crate::notify::email_configured(&svc.settings.smtp),
        "sms" => crate::notify::sms_configured(&svc.settings.sms),
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
    method: &str,
    user: &User,
    phone: Option<&str>,
    code: &str,
) -> Result<()> {
    match method {
        "email" => {
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
        "sms" => crate::notify::send_sms(&svc.settings.sms, phone.unwrap_or_default(), code).await,
        _ => Err(Error::invalid("method", "must be email or sms")),
    }
}

fn throttle(sent: Option<&SentCode>, method: &str, now: Timestamp) -> Result<()> {
    if let Some(c) = sent
        && c.method == method
        && now - c.sent_at < RESEND_AFTER_SECS
    {
        return Err(Error::Conflict(format!(
            "A code was just sent; wait {} s before asking for another.",
            RESEND_AFTER_SECS - (now - c.sent_at)
        )));
    }
    Ok(())
}

/// Starts enrolling e-mail or SMS codes: sends a code to the account's
/// e-mail address, or to `phone`.
pub async fn start_code_enrollment(
    svc: &Service,
    user: &User,
    method: &str,
    phone: Option<&str>,
) -> Result<()> {
    if !matches!(method, "email" | "sms") {
        return Err(Error::invalid("method", "must be email or sms"));
    }
    method_allowed(svc, method)?;
    let phone = match method {
        "sms" => Some(parse_phone(phone.unwrap_or(""))?),
        _ => None,
    };
    let now = svc.now();
    let code = six_digits()?;
    {
        let mut tx = svc.store.write()?;
        let mut s = state(&tx, &user.id)?;
        throttle(s.pending_code.as_ref(), method, now)?;
        s.pending_code = Some(SentCode {
            method: method.into(),
            code: code.clone(),
            phone: phone.clone(),
            expires_at: now + CODE_TTL_SECS,
            sent_at: now,
        });
        tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
        tx.commit()?;
    }
    deliver(svc, method, user, phone.as_deref(), &code).await
}

/// Activates e-mail or SMS codes with the code that was sent; returns new
/// recovery codes (shown once) when the user had none.
pub fn confirm_code_enrollment(
    svc: &Service,
    user: &User,
    method: &str,
    code: &str,
    src: &Source,
) -> Result<Vec<String>> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let mut s = state(&tx, &user.id)?;
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
    if !crypto::ct_eq(pending.code.as_bytes(), code.trim().as_bytes()) {
        return Err(Error::invalid("code", "is not the code that was sent"));
    }
    match method {
        "email" => s.email = Some(now),
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
        let (codes, hashed) = new_recovery_codes()?;
        shown = codes;
        s.recovery = hashed;
    }
    tx.put(Table::Mfa, user.id.as_str().as_bytes(), &s)?;
    let action = if method == "email" {
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
    tx.commit()?;
    Ok(shown)
}

/// During sign-in: sends a fresh e-mail or SMS code for the challenge.
pub async fn send_challenge_code(
    svc: &Service,
    mfa_token: &str,
    method: &str,
    src: &Source,
) -> Result<()> {
    let now = svc.now();
    let key = crypto::sha256(mfa_token.as_bytes());
    let code = six_digits()?;
    let (user, phone) = {
        let mut tx = svc.store.write()?;
        let mut ch: Challenge = tx
            .get::<Challenge>(Table::MfaChallenges, &key)?
            .filter(|c| c.expires_at > now)
            .ok_or_else(challenge_gone)?;
        let user = identity::get(&tx, &ch.user_id)?;
        let s = state(&tx, &user.id)?;
        let phone = match method {
            "email" if s.email.is_some() => None,
            "sms" if s.sms.is_some() => s.sms.as_ref().map(|m| m.phone.clone()),
            _ => {
                return Err(Error::invalid(
                    "method",
                    "is not one of your sign-in methods",
                ));
            }
        };
        method_allowed(svc, method)?;
        throttle(ch.code.as_ref(), method, now)?;
        ch.code = Some(SentCode {
            method: method.into(),
            code: code.clone(),
            phone: None,
            expires_at: now + CODE_TTL_SECS,
            sent_at: now,
        });
        tx.put(Table::MfaChallenges, &key, &ch)?;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("mfa.code_sent", Outcome::Success)
                .actor(user.email.as_str(), Some(user.id.as_str().into()))
                .target(user.id.as_str())
                .details(serde_json::json!({"method": method})),
        )?;
        tx.commit()?;
        (user, phone)
    };
    deliver(svc, method, &user, phone.as_deref(), &code).await
}

/// Methods users may enroll now: allowed by the policy and deliverable here.
pub fn available_methods(svc: &Service) -> Result<Vec<&'static str>> {
    let policy = crate::policy::current(svc)?;
    Ok(crate::policy::METHODS
        .iter()
        .copied()
        .filter(|m| policy.mfa.methods.iter().any(|x| x == m) && method_allowed(svc, m).is_ok())
        .collect())
}

/// The second factors a pending sign-in may use (for the code page).
pub fn challenge_methods(svc: &Service, mfa_token: &str) -> Result<Vec<&'static str>> {
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
    tx.put(
        Table::MfaChallenges,
        &crypto::sha256(token.as_bytes()),
        &Challenge {
            user_id: user.clone(),
            expires_at: now + CHALLENGE_TTL_SECS,
            code: None,
        },
    )?;
    Ok(token)
}

fn challenge_gone() -> Error {
    Error::Unauthenticated(
        "The sign-in step expired or is unknown; sign in again with your password.".into(),
    )
}

/// Accepted: the user, the method used and, for a recovery code, how many remain.
/// Refused: the user if the challenge named one, and the precise reason for the audit log.
pub type Verdict =
    std::result::Result<(User, &'static str, Option<usize>), (Option<User>, &'static str)>;

/// Checks the second factor for a challenge. On success the challenge is
/// spent (inside `tx`) and the user returned; on failure the attempt counts
/// towards the account lockout. Returns the method used.
pub fn verify(
    tx: &mut WriteTx<'_>,
    mfa_token: &str,
    method: &str,
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
    if crate::authn::lockout::locked_until(tx, &user.id, now)?.is_some() {
        return Ok(Err((Some(user), "account_locked")));
    }
    let mut s = state(tx, &user.id)?;
    let outcome: std::result::Result<(&'static str, Option<usize>), &'static str> = match method {
        "totp" => match s.totp.clone() {
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
                    Ok(("totp", None))
                }
                None => Err("wrong_code"),
            },
        },
        "email" | "sms" => {
            let enrolled = if method == "email" {
                s.email.is_some()
            } else {
                s.sms.is_some()
            };
            let used: &'static str = if method == "email" { "email" } else { "sms" };
            match ch.code.as_ref().filter(|c| c.method == method) {
                _ if !enrolled => Err("method_not_enrolled"),
                None => Err("no_code_sent"),
                Some(c) if c.expires_at <= now => Err("expired_code"),
                Some(c) if crypto::ct_eq(c.code.as_bytes(), code.trim().as_bytes()) => {
                    Ok((used, None))
                }
                Some(_) => Err("wrong_code"),
            }
        }
        "recovery_code" => {
            let h = hash_code(code);
            match s
                .recovery
                .iter()
                .position(|c| crypto::ct_eq(c.as_bytes(), h.as_bytes()))
            {
                Some(i) => {
                    s.recovery.remove(i);
                    Ok(("recovery_code", Some(s.recovery.len())))
                }
                None => Err("wrong_recovery_code"),
            }
        }
        _ => {
            return Err(Error::invalid(
                "method",
                "must be totp, email, sms or recovery_code",
            ));
        }
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
