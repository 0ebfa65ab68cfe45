//! Changing the security policy at run time: validated, audited, and applied
//! to the sessions and tokens of users it newly confines (MFA becomes
//! required and they have none). The policy record itself is `policy`'s;
//! this lives in `authn` because the change ends authn's sessions.

use crate::access::{Actor, Permission, Resource};
use crate::audit::{self, Outcome};
use crate::error::{Error, Result};
use crate::policy::{SecurityPolicy, stored};
use crate::principal::{MfaMethod, User};
use crate::service::Service;
use crate::store::{Reader, Table};

/// The policy in force, for someone who may manage it (`ManageSecurity`).
/// (Here rather than in `policy`, which `access` reads below it.)
pub fn policy_for(svc: &Service, actor: &Actor) -> Result<SecurityPolicy> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    crate::policy::current(svc)
}

/// Whether `actor` may change the policy at all (`ManageSecurity` on the
/// platform), before the recent sign-in `update_policy` needs: the console's
/// form shows a caller without it 403 rather than sending them to
/// re-authenticate.
pub fn may_change_policy(svc: &Service, actor: &Actor) -> Result<()> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    Ok(())
}

/// Replaces the policy (validated), auditing which parts changed. Needs
/// `ManageSecurity` on the platform and, for a user, a recent sign-in.
pub fn update_policy(svc: &Service, actor: &Actor, next: SecurityPolicy) -> Result<SecurityPolicy> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
    next.validate()?;
    for (m, ok, what) in [
        (
            MfaMethod::Email,
            crate::notify::email_configured(&svc.settings.smtp),
            "[smtp] host",
        ),
        (
            MfaMethod::Sms,
            crate::notify::sms_configured(&svc.settings.sms),
            "[sms] url",
        ),
    ] {
        if next.mfa.allows(m) && !ok {
            return Err(Error::invalid(
                "mfa.methods",
                format!("{m} codes need {what} in the configuration first"),
            ));
        }
    }
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let before = stored(&tx)?.unwrap_or_else(|| SecurityPolicy::defaults(&svc.settings));
    let mut changed = Vec::new();
    if before.mfa != next.mfa {
        changed.push("mfa");
    }
    if before.session != next.session {
        changed.push("session");
    }
    crate::policy::put(&mut tx, &next)?;
    let confined = if before.mfa != next.mfa {
        confine_newly_required(&mut tx, &before, &next, by.user_id(), now)?
    } else {
        0
    };
    audit::record(
        &mut tx,
        now,
        src,
        by.event("settings.security_change", Outcome::Success)
            .details(serde_json::json!({"changed": changed, "before": before, "after": next, "users_confined": confined})),
    )?;
    tx.commit()?;
    Ok(next)
}

/// Users the new policy confines — MFA becomes required for them and they
/// have no second factor — lose what they held under the old one: their
/// access tokens and refresh-token families end (their next sign-in yields
/// an enrollment-only token) and their password sessions open enrollment
/// only (`authn::revoke::end_everything`). The administrator making the
/// change (who has just re-authenticated to make it) keeps the session or
/// token they made it with; their next sign-in is confined like everyone's.
/// Returns how many users.
fn confine_newly_required(
    tx: &mut crate::store::WriteTx<'_>,
    before: &SecurityPolicy,
    next: &SecurityPolicy,
    actor: Option<&crate::principal::UserId>,
    now: crate::clock::Timestamp,
) -> Result<usize> {
    let mut n = 0;
    for (_, u) in tx.scan::<User>(Table::Users, b"usr_")? {
        if Some(&u.id) != actor
            && next.mfa_required_for(&u)
            && !before.mfa_required_for(&u)
            && !super::mfa::required(tx, &u.id)?
        {
            super::revoke::end_everything(
                tx,
                &u.id,
                now,
                super::revoke::Sessions::ConfineToEnrollment,
            )?;
            n += 1;
        }
    }
    Ok(n)
}
