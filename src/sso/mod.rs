//! Single sign-on: connections to customers' identity providers, the SSO
//! status (enabled, enforcement, test group, excluded users) with its rollout
//! rules, sign-ins in flight, and turning a verified IdP identity into a
//! Gatehouse user (linked by the IdP's subject, just-in-time by verified
//! e-mail). This file holds the types every part shares (`Protocol`,
//! `Failure`, `Identity`, `Finished`) and re-exports the parts, so callers
//! name everything `crate::sso::X`:
//!
//! - `presets`: the provider presets;
//! - `rollout`: the SSO status and its rules (the stored status and the
//!   password sign-in rule live below `authn`, in `crate::rollout`);
//! - `connections` (with `build`, the input checks): connection CRUD;
//! - `pending`: sign-ins in flight and their binding to the browser;
//! - `links`: IdP identity → user links, an admin's link and unlink;
//! - `finish`: the end of a round trip (domain and JIT rules, audit);
//! - `reach`: why an IdP could not be reached, in words.
//!
//! Protocols live in submodules: `oidc`, and `saml` and `wsfed` over our own
//! `xmldsig`.

pub mod oidc;
pub mod saml;
pub mod wsfed;
pub mod xml_budget;
pub mod xmldsig;

mod build;
mod connections;
mod finish;
mod links;
mod pending;
mod presets;
mod reach;
mod rollout;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::User;

/// This module's state in `Service` (`svc.sso`): OpenID provider metadata by
/// connection (see `oidc`) and sign-ins in flight by client (see `pending`).
#[derive(Default)]
pub struct Caches {
    oidc_metadata: oidc::MetadataCache,
    pending: PendingCounts,
}

pub use connections::*;
pub use finish::*;
pub use links::*;
pub use pending::*;
pub use presets::*;
pub use rollout::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Saml,
    Oidc,
    Wsfed,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Saml => "saml",
            Protocol::Oidc => "oidc",
            Protocol::Wsfed => "wsfed",
        }
    }
}

/// How many characters of a value the message carried a failure quotes.
pub const QUOTED_MAX: usize = 64;

/// A value from the message (which anyone may send) as a failure quotes it:
/// control characters dropped, at most `QUOTED_MAX` characters, in quotes.
pub(crate) fn quoted(v: &str) -> String {
    let mut q: String = v
        .chars()
        .filter(|c| !c.is_control())
        .take(QUOTED_MAX + 1)
        .collect();
    if q.chars().count() > QUOTED_MAX {
        q = q.chars().take(QUOTED_MAX).collect::<String>() + "…";
    }
    format!("{q:?}")
}

/// Why a sign-in through the IdP failed: a stable reason for the audit log
/// and words for the admin's test page. Users see only a generic message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
        }
    }
    fn internal(e: Error) -> Failure {
        tracing::error!(error = %e, "sso: internal error");
        Failure::new("internal_error", "internal error; see the server log")
    }
}

/// What the IdP said about the user, after every check passed.
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// Values of the connection's role attribute.
    pub roles: Vec<String>,
    /// Google's `hd` claim: the Workspace domain of the account, if any.
    pub hosted_domain: Option<String>,
}

/// How a finished IdP round trip ends.
pub enum Finished {
    /// A browser session for `user`.
    SignedIn {
        user: User,
        token: String,
        rd: String,
    },
    /// A test run by an admin: recorded on the connection, nobody signed in.
    Tested { connection: String, ok: bool },
}
