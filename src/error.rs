//! The domain error: stable snake_case codes and plain-words messages, no HTTP.
//! `web::error` is the one place that turns these into statuses and bodies.

use std::fmt;

/// The underlying error a `Detail` came from.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What an integrity, storage or internal error says in the log (its words,
/// as before), with the underlying error it came from kept as its `source`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Detail {
    message: String,
    #[source]
    cause: Option<Cause>,
}

impl Detail {
    /// `message` (which may already quote `cause`), keeping `cause` itself.
    pub fn caused(message: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Detail {
            message: message.into(),
            cause: Some(cause.into()),
        }
    }
}

impl From<String> for Detail {
    fn from(message: String) -> Self {
        Detail {
            message,
            cause: None,
        }
    }
}

impl From<&str> for Detail {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// What went wrong, in terms a caller can act on. Its `Display` is
/// `code: words` (the full words for integrity, storage and internal errors);
/// those three keep the error they came from as their `source`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that does not parse or breaks a rule; `field` names what to fix.
    #[error("{}: {}", self.code(), self.public_message())]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Sign-in failed. The caller always sees the same words; the precise
    /// reason goes to the audit log only.
    #[error("{}: {}", self.code(), self.public_message())]
    InvalidCredentials,
    /// A second-factor code that is wrong, expired or already used.
    #[error("{}: {}", self.code(), self.public_message())]
    InvalidCode,
    /// A password-and-code proof failed: one answer whichever half was
    /// wrong, so a token thief does not learn the password alone.
    #[error("{}: {}", self.code(), self.public_message())]
    ProofRefused,
    /// A session, token or link that is missing, expired or revoked.
    #[error("{}: {}", self.code(), self.public_message())]
    Unauthenticated(String),
    /// The security policy requires a second factor and the caller has none yet.
    #[error("{}: {}", self.code(), self.public_message())]
    MfaEnrollmentRequired,
    /// A sensitive action needs a recent password (and code) confirmation.
    #[error("{}: {}", self.code(), self.public_message())]
    ReauthRequired,
    /// The caller is known but lacks the permission.
    #[error("{}: {}", self.code(), self.public_message())]
    Forbidden(String),
    #[error("{}: {}", self.code(), self.public_message())]
    NotFound(&'static str),
    #[error("{}: {}", self.code(), self.public_message())]
    Conflict(String),
    /// The caller has too much in flight (e.g. SSO sign-ins from one address).
    #[error("{}: {}", self.code(), self.public_message())]
    TooMany(String),
    /// A question about a service account with an IP allowlist that does
    /// not say the end client's address (`ip`).
    #[error("{}: {}", self.code(), self.public_message())]
    IpRequired,
    /// A sealed value failed to open: it was tampered with, moved between
    /// records, or sealed under a key this server does not hold.
    #[error("integrity_error: {0}")]
    Integrity(#[source] Detail),
    /// The data directory is unusable (wrong key, corrupt file, locked).
    #[error("storage_error: {0}")]
    Storage(#[source] Detail),
    /// Anything else; logged in full, shown opaque.
    #[error("internal_error: {0}")]
    Internal(#[source] Detail),
    /// The server is too busy (for everyone) for this request now; the
    /// caller may retry shortly. The one 503: it always carries Retry-After.
    #[error("{}: {}", self.code(), self.public_message())]
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
        Error::Internal(context.to_string().into())
    }

    /// An internal error that says `context: cause` (the words
    /// `internal(format!("{context}: {cause}"))` gave) and keeps `cause` as
    /// its source.
    pub fn internal_caused<E>(context: &str, cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Internal(Detail::caused(format!("{context}: {cause}"), cause))
    }

    /// An internal error in the cause's own words (those `internal(cause)`
    /// gave), keeping the cause as its source.
    pub fn internal_source<E>(cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Internal(Detail::caused(cause.to_string(), cause))
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
            Error::IpRequired => "ip_required",
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
            | Error::Unavailable(m) => m.clone(),
            Error::IpRequired => {
                "ip: this service account has an IP allowlist; send the end client's address \
                 (`ip`) to have it checked."
                    .into()
            }
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
            Error::Integrity(m) | Error::Storage(m) | Error::Internal(m) => m.to_string(),
            other => other.public_message(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(Detail::caused(format!("encoding: {e}"), e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(Detail::caused(format!("io: {e}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_words_stay_and_the_cause_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no access");
        let e = Error::Storage(Detail::caused(format!("cannot create /d: {io}"), io));
        assert_eq!(e.to_string(), "storage_error: cannot create /d: no access");
        assert_eq!(
            e.public_message_for_operator(),
            "cannot create /d: no access"
        );
        assert_eq!(
            e.public_message(),
            "Internal error; the server log has the details under this request id."
        );
        let cause = e.source().and_then(|d| d.source());
        let io = cause.and_then(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(|i| i.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );

        let e: Error = std::io::Error::other("disk full").into();
        assert_eq!(e.to_string(), "internal_error: io: disk full");
        assert!(e.source().and_then(|d| d.source()).is_some());
        let e: Error = serde_json::from_str::<u8>("x")
            .map_err(Error::from)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("internal_error: encoding: expected value")
        );
        assert!(e.source().and_then(|d| d.source()).is_some());

        let e = Error::internal("no preset");
        assert_eq!(e.to_string(), "internal_error: no preset");
        assert!(e.source().and_then(|d| d.source()).is_none());
        assert_eq!(
            Error::NotFound("user").to_string(),
            "not_found: user not found."
        );
        assert_eq!(
            Error::invalid("name", "too long").to_string(),
            "invalid_request: name: too long"
        );
        assert_eq!(
            Error::Integrity("sealed value is truncated".into()).to_string(),
            "integrity_error: sealed value is truncated"
        );
    }

    /// The helpers that replaced `internal(format!("…: {e}"))` say the same
    /// words (to the log, the operator and the caller) and keep `e`.
    #[test]
    fn internal_errors_keep_their_cause_and_their_words() {
        let io = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe closed");
        let before = Error::internal(format!("deflate: {}", io()));
        let after = Error::internal_caused("deflate", io());
        assert_eq!(after.to_string(), before.to_string());
        assert_eq!(after.to_string(), "internal_error: deflate: pipe closed");
        assert_eq!(
            after.public_message_for_operator(),
            before.public_message_for_operator()
        );
        assert_eq!(after.public_message(), before.public_message());
        assert!(before.source().and_then(|d| d.source()).is_none());
        let cause = after.source().and_then(|d| d.source());
        assert_eq!(
            cause
                .and_then(|c| c.downcast_ref::<std::io::Error>())
                .map(|i| i.kind()),
            Some(std::io::ErrorKind::BrokenPipe)
        );

        let before = Error::internal(io());
        let after = Error::internal_source(io());
        assert_eq!(after.to_string(), before.to_string());
        assert_eq!(after.to_string(), "internal_error: pipe closed");
        let cause = after.source().and_then(|d| d.source());
        assert!(
            cause
                .and_then(|c| c.downcast_ref::<std::io::Error>())
                .is_some()
        );
    }
}
