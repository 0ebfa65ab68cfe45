//! The shared vocabulary of users, below every domain module: the e-mail,
//! user-id and workspace-id types, the built-in roles, the kinds of second
//! factor, the user record (re-exported by `identity`, which owns their
//! storage and rules; `MfaMethod` by `authn::mfa`) and the `Password` secret
//! type (re-exported by `authn::password`, which hashes and checks it).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};

/// How many entries a per-user cache holds (users, sign-in state, valid-after marks).
pub const USER_CACHE_MAX: usize = 100_000;

/// A password in memory: wiped on drop, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(Password::new)
    }
}

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(Zeroizing::new(s.into()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// A normalised e-mail address (trimmed, lower-case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email> {
        let s = raw.trim().to_lowercase();
        let bad = |why: &str| Err(Error::invalid("email", why.to_string()));
        if s.is_empty() {
            return bad("is required");
        }
        if s.len() > 254 {
            return bad("is longer than 254 characters");
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return bad("must not contain spaces, control characters or angle brackets");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("must look like name@example.com");
        };
        if local.is_empty() || local.len() > 64 || domain.is_empty() || local.contains('@') {
            return bad("must look like name@example.com");
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return bad("has an invalid domain");
        }
        Ok(Email(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Email::parse(&s)
    }
}
impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}
impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `usr_` + 20 hex characters. Parsed from URL paths before any look-up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Result<UserId> {
        Ok(UserId(format!(
            "usr_{}",
            hex::encode(crypto::random_bytes::<10>()?)
        )))
    }
    pub fn parse(s: &str) -> Result<UserId> {
        let ok = s.len() == 24
            && s.starts_with("usr_")
            && s[4..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(UserId(s.to_string()))
        } else {
            Err(Error::NotFound("user"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for UserId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        UserId::parse(&s)
    }
}
impl From<UserId> for String {
    fn from(u: UserId) -> String {
        u.0
    }
}

/// A workspace id: `ws_` + 20 hex characters. Parsed from paths, forms and
/// resource strings before any look-up; a malformed one is simply not found
/// (the answer `access::parse_id("ws_", …)` gave). Stored and sent as the
/// bare string (`serde(transparent)`), so records and JSON are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    pub fn generate() -> Result<WorkspaceId> {
        Ok(WorkspaceId(format!(
            "ws_{}",
            hex::encode(crypto::random_bytes::<10>()?)
        )))
    }
    /// Whether `s` is a well-formed workspace id.
    pub fn valid(s: &str) -> bool {
        s.len() == 23
            && s.starts_with("ws_")
            && s[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
    pub fn parse(s: &str) -> Result<WorkspaceId> {
        if WorkspaceId::valid(s) {
            Ok(WorkspaceId(s.to_string()))
        } else {
            Err(Error::NotFound("workspace"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The id as a store key (or key prefix).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}
impl std::fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl From<WorkspaceId> for String {
    fn from(w: WorkspaceId) -> String {
        w.0
    }
}
impl std::borrow::Borrow<str> for WorkspaceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Built-in roles of the foundation. Workspaces and custom roles come later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Created at setup; always present, cannot be deleted or disabled.
    Owner,
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "owner" => Err(Error::invalid(
                "role",
                "the owner role is given only at setup",
            )),
            _ => Err(Error::invalid("role", "must be \"admin\" or \"user\"")),
        }
    }
}

/// A kind of second factor, as named on the wire (`totp`, `email`, `sms`,
/// `recovery_code`). Parsed before anything is checked or recorded, so an
/// unknown name is a 400 listing these and never lands in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethod {
    Totp,
    Email,
    Sms,
    RecoveryCode,
}

impl MfaMethod {
    pub const ALL: [MfaMethod; 4] = [
        MfaMethod::Totp,
        MfaMethod::Email,
        MfaMethod::Sms,
        MfaMethod::RecoveryCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MfaMethod::Totp => "totp",
            MfaMethod::Email => "email",
            MfaMethod::Sms => "sms",
            MfaMethod::RecoveryCode => "recovery_code",
        }
    }

    pub fn parse(raw: &str) -> Result<MfaMethod> {
        MfaMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == raw.trim())
            .ok_or_else(|| {
                Error::invalid("method", "must be one of totp, email, sms, recovery_code")
            })
    }

    /// The method named exactly `raw` (no trimming), if any: for the edges
    /// that refuse an unknown name with their own words.
    pub fn from_wire(raw: &str) -> Option<MfaMethod> {
        MfaMethod::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// An optional method field: absent or empty is `None`.
    pub fn parse_opt(raw: Option<&str>) -> Result<Option<MfaMethod>> {
        match raw.map(str::trim) {
            None | Some("") => Ok(None),
            Some(m) => MfaMethod::parse(m).map(Some),
        }
    }
}

impl std::fmt::Display for MfaMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user record. Stored sealed as a whole; `password_hash` never leaves the
/// domain (the DTOs in `web` do not carry it).
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: Role,
    pub disabled: bool,
    /// An administrator set a temporary password: the next password sign-in
    /// asks for a new one before any session or token is given (Keycloak's
    /// "Temporary"). Records written before it existed decode as `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub must_change_password: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn is_admin(&self) -> bool {
        matches!(self.role, Role::Owner | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_only_their_own_names() {
        for m in MfaMethod::ALL {
            assert_eq!(MfaMethod::parse(m.as_str()).unwrap(), m);
        }
        assert_eq!(MfaMethod::parse(" sms ").unwrap(), MfaMethod::Sms);
        assert_eq!(MfaMethod::parse_opt(None).unwrap(), None);
        assert_eq!(MfaMethod::parse_opt(Some("")).unwrap(), None);
        for bad in ["TOTP", "recovery", "sms\0", &"m".repeat(60_000)] {
            let e = MfaMethod::parse(bad).unwrap_err().public_message();
            assert!(e.contains("totp, email, sms, recovery_code"), "{e}");
            assert!(e.len() < 100, "the answer does not echo the input");
        }
    }

    #[test]
    fn workspace_ids_parse_only_their_own_shape() {
        let id = WorkspaceId::generate().unwrap();
        assert_eq!(WorkspaceId::parse(id.as_str()).unwrap(), id);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{id}\""),
            "stored and sent as the bare string"
        );
        for bad in [
            "",
            "ws_",
            "ws_0123456789ABCDEF0123",
            "ws_0123456789abcdef012",
            "ws_0123456789abcdef01234",
            "wsx0123456789abcdef0123",
            "usr_0123456789abcdef0123",
        ] {
            assert!(
                matches!(WorkspaceId::parse(bad), Err(Error::NotFound("workspace"))),
                "{bad:?}"
            );
        }
    }
}
