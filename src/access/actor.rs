//! The actor of a state-changing operation: who (the principal), from where
//! (the request's source) and when they last proved who they are. Every
//! domain operation that changes state takes one and checks it itself, so no
//! caller can reach an operation around its permission check.

use crate::audit::Source;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::service::Service;

use super::{Decision, Permission, Principal, Resource};

/// Who is acting, from where, and when they last signed in or confirmed it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Principal,
    pub source: Source,
    /// When a user last proved who they are (the session's or the token's
    /// `auth_time`); `None` for clients and local operators.
    pub auth_at: Option<Timestamp>,
}

impl Actor {
    /// A user or client acting through a request.
    pub fn new(principal: Principal, source: Source, auth_at: Option<Timestamp>) -> Actor {
        Actor {
            principal,
            source,
            auth_at,
        }
    }

    /// A local operator (the CLI, the control socket, a recovery link).
    pub fn local(name: &'static str) -> Actor {
        Actor {
            principal: Principal::Local(name),
            source: Source::default(),
            auth_at: None,
        }
    }

    /// The one permission check (`access::authorize`): a denial is audited
    /// and answered `Forbidden`.
    pub fn authorize(&self, svc: &Service, p: Permission, res: Resource<'_>) -> Result<Decision> {
        super::authorize(svc, &self.principal, p, res, &self.source)
    }

    /// Sensitive actions need a user's sign-in (or confirmation) newer than
    /// the policy's re-authentication window. Clients (API keys,
    /// service-account tokens) prove their secret on every call or hold a
    /// token of at most 15 minutes, and local operators hold the data
    /// directory, so re-authentication is not theirs to do.
    pub fn require_recent(&self, svc: &Service) -> Result<()> {
        match (&self.principal, self.auth_at) {
            (Principal::User { .. }, Some(at)) => require_recent_auth(svc, at),
            (Principal::User { .. }, None) => Err(Error::ReauthRequired),
            (Principal::Client(_) | Principal::Local(_), _) => Ok(()),
        }
    }
}

/// A proof of identity at `auth_at` is recent enough for a sensitive action.
pub fn require_recent_auth(svc: &Service, auth_at: Timestamp) -> Result<()> {
    let window = crate::policy::current(svc)?.session.reauth_window_secs;
    if svc.now() - auth_at > window {
        return Err(Error::ReauthRequired);
    }
    Ok(())
}
