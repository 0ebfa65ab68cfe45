//! The domain error: stable snake_case codes and plain-words messages, no HTTP.
//! `web::error` is the one place that turns these into statuses and bodies.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug)]
pub enum Error {
    /// Input that does not parse or breaks a rule; `field` names what to fix.
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Sign-in failed. The caller always sees the same words; the precise
    /// reason goes to the audit log only.
    InvalidCredentials,
    /// A second-factor code that is wrong, expired or already used.
    InvalidCode,
    /// A password-and-code proof failed: one answer whichever half was
    /// wrong, so a token thief does not learn the password alone.
    ProofRefused,
    /// A session, token or link that is missing, expired or revoked.
    Unauthenticated(String),
    /// The security policy requires a second factor and the caller has none yet.
    MfaEnrollmentRequired,
    /// A sensitive action needs a recent password (and code) confirmation.
    ReauthRequired,
    /// The caller is known but lacks the permission.
    Forbidden(String),
    NotFound(&'static str),
    Conflict(String),
    /// The caller has too much in flight (e.g. SSO sign-ins from one address).
    TooMany(String),
    /// The server has too much in flight for everyone; try again later.
    Busy(String),
    /// A sealed value failed to open: it was tampered with, moved between
    /// records, or sealed under a key this server does not hold.
    Integrity(String),
    /// The data directory is unusable (wrong key, corrupt file, locked).
    Storage(String),
    /// Anything else; logged in full, shown opaque.
    Internal(String),
    /// The server is too busy for this request now; the caller may retry
    /// shortly (503 with Retry-After).
    Unavailable(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn internal(context: impl fmt::Display) -> Self {
        Error::Internal(context.to_string())
    }

    /// The stable code used in JSON error bodies and audit details.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_request",
            Error::InvalidCredentials => "invalid_credentials",
            Error::InvalidCode => "invalid_code",
            Error::ProofRefused => "invalid_proof",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::MfaEnrollmentRequired => "mfa_enrollment_required",
            Error::ReauthRequired => "reauthentication_required",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::TooMany(_) => "rate_limited",
            Error::Busy(_) => "busy",
            Error::Integrity(_) => "integrity_error",
            Error::Storage(_) => "storage_error",
            Error::Internal(_) => "internal_error",
            Error::Unavailable(_) => "unavailable",
        }
    }

    /// Words safe to show the caller: never a secret, a hash or internals.
    pub fn public_message(&self) -> String {
        match self {
            Error::Invalid { field, message } => format!("{field}: {message}"),
            Error::InvalidCredentials => "Invalid e-mail or password.".into(),
            Error::InvalidCode => "The code is wrong, expired or was already used.".into(),
            Error::ProofRefused => {
                "The password or the code is wrong (or the code was already used).".into()
            }
            Error::Unauthenticated(m)
            | Error::Forbidden(m)
            | Error::Conflict(m)
            | Error::TooMany(m)
            | Error::Busy(m)
            | Error::Unavailable(m) => m.clone(),
            Error::NotFound(what) => format!("{what} not found."),
            Error::MfaEnrollmentRequired => {
                "MFA enrollment required: set up an authenticator app (POST /api/v1/me/mfa/totp) before anything else."
                    .into()
            }
            Error::ReauthRequired => {
                "This action needs a recent sign-in: confirm your password (and code) and try again.".into()
            }
            Error::Integrity(_) => {
                "A stored record failed its integrity check; it was not returned. \
                 An administrator should check the audit log and restore from backup."
                    .into()
            }
            Error::Storage(_) | Error::Internal(_) => {
                "Internal error; the server log has the details under this request id.".into()
            }
        }
    }
}

impl Error {
    /// For local operators (CLI): internal details are theirs to see.
    pub fn public_message_for_operator(&self) -> String {
        match self {
            Error::Integrity(m) | Error::Storage(m) | Error::Internal(m) => m.clone(),
            other => other.public_message(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Integrity(m) | Error::Storage(m) | Error::Internal(m) => {
                write!(f, "{}: {m}", self.code())
            }
            _ => write!(f, "{}: {}", self.code(), self.public_message()),
        }
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("encoding: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(format!("io: {e}"))
    }
}
