//! Who is acting and what they may do: the one `authorize` check used by the
//! console, the API and the local admin socket. It does not authenticate
//! (that is `authn`); it decides and audits denials.

use crate::audit::{self, NewEvent, Outcome, Source};
use crate::error::{Error, Result};
use crate::identity::{User, UserId};
use crate::service::Service;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A signed-in user; `session` is the hash of the browser session id, if any.
    User {
        user: std::sync::Arc<User>,
        session: Option<[u8; 32]>,
    },
    /// A local operator with access to the data directory (CLI, control socket).
    Local(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ViewConsole,
    ManageUsers,
    ReadAudit,
    ManageKeys,
    ManageSecurity,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewConsole => "console:view",
            Permission::ManageUsers => "admin:users",
            Permission::ReadAudit => "read:audit",
            Permission::ManageKeys => "manage:keys",
            Permission::ManageSecurity => "manage:security",
        }
    }
}

impl Principal {
    pub fn user(&self) -> Option<&User> {
        match self {
            Principal::User { user, .. } => Some(user),
            Principal::Local(_) => None,
        }
    }
    pub fn user_id(&self) -> Option<&UserId> {
        self.user().map(|u| &u.id)
    }
    /// An audit event with this principal as the actor.
    pub fn event(&self, action: &'static str, outcome: Outcome) -> NewEvent {
        match self {
            Principal::User { user, .. } => NewEvent::new(action, outcome)
                .actor(user.email.as_str(), Some(user.id.as_str().to_string())),
            Principal::Local(who) => NewEvent::new(action, outcome).actor(*who, None),
        }
    }
    fn allows(&self, p: Permission) -> bool {
        match self {
            Principal::Local(_) => true,
            // The foundation has two levels: admins (owner included) may do
            // everything listed here, other users only their own account.
            Principal::User { user, .. } => {
                let _ = p;
                user.is_admin() && !user.disabled
            }
        }
    }
}

/// The single permission check. A denial is audited and answered `Forbidden`.
pub fn authorize(svc: &Service, who: &Principal, p: Permission, src: &Source) -> Result<()> {
    if who.allows(p) {
        return Ok(());
    }
    let mut tx = svc.store.write()?;
    audit::record(
        &mut tx,
        svc.now(),
        src,
        who.event("access.denied", Outcome::Denied)
            .details(serde_json::json!({"permission": p.as_str()})),
    )?;
    tx.commit()?;
    Err(Error::Forbidden(format!(
        "You do not have the {} permission.",
        p.as_str()
    )))
}
