//! The security policy an administrator sets at run time (console and API):
//! who must use a second factor, session lifetimes, the re-authentication
//! window for sensitive actions, and single-session mode. Stored in its own
//! table; defaults come from the configuration file. Operator-level limits
//! (lockout, rate limits) stay in the configuration.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::principal::{MfaMethod, Role, User};
use crate::service::Service;
use crate::store::{Reader, Table};

/// This module's state in `Service` (`svc.policy`): the security policy with
/// the policy-table generation it was read at (see `current`).
#[derive(Default)]
pub struct Cache {
    current: std::sync::RwLock<Option<(u64, SecurityPolicy)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaMode {
    Off,
    /// Everyone must have a second factor.
    All,
    /// Only users with one of `roles`.
    Roles,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPolicy {
    pub mode: MfaMode,
    /// Roles that must use MFA when `mode` is `roles`.
    pub roles: Vec<Role>,
    /// Second factors users may enroll: `totp`, `email`, `sms` (recovery codes come with any).
    /// Kept as the names (stored and sent as they are), so `validate` can
    /// refuse an unknown one in its own words; read them with `allows`.
    pub methods: Vec<String>,
}

impl MfaPolicy {
    /// Whether users may enroll (and use) `method`.
    pub fn allows(&self, method: MfaMethod) -> bool {
        self.methods.iter().any(|m| m == method.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionPolicy {
    pub idle_timeout_secs: i64,
    pub absolute_lifetime_secs: i64,
    /// Sensitive actions need a sign-in (or confirmation) newer than this.
    pub reauth_window_secs: i64,
    /// A new browser sign-in ends the user's other sessions.
    pub single_session: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityPolicy {
    pub mfa: MfaPolicy,
    pub session: SessionPolicy,
}

/// The methods a policy may allow (recovery codes come with any).
pub const METHODS: &[MfaMethod] = &[MfaMethod::Totp, MfaMethod::Email, MfaMethod::Sms];
const KEY: &[u8] = b"security";

impl SecurityPolicy {
    pub fn defaults(svc_settings: &crate::config::Settings) -> SecurityPolicy {
        SecurityPolicy {
            mfa: MfaPolicy {
                mode: MfaMode::Off,
                roles: Vec::new(),
                methods: vec![MfaMethod::Totp.as_str().into()],
            },
            session: SessionPolicy {
                idle_timeout_secs: svc_settings.session.idle_timeout_secs,
                absolute_lifetime_secs: svc_settings.session.absolute_lifetime_secs,
                reauth_window_secs: 600,
                single_session: false,
            },
        }
    }

    /// Whether `user` must have a second factor.
    pub fn mfa_required_for(&self, user: &User) -> bool {
        match self.mfa.mode {
            MfaMode::Off => false,
            MfaMode::All => true,
            MfaMode::Roles => self.mfa.roles.contains(&user.role),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let s = &self.session;
        if s.idle_timeout_secs < 60 || s.absolute_lifetime_secs < s.idle_timeout_secs {
            return Err(Error::invalid(
                "session",
                "idle_timeout_secs must be at least 60 and not above absolute_lifetime_secs",
            ));
        }
        if s.absolute_lifetime_secs > 30 * 86_400 {
            return Err(Error::invalid(
                "session.absolute_lifetime_secs",
                "must be at most 30 days",
            ));
        }
        if !(60..=86_400).contains(&s.reauth_window_secs) {
            return Err(Error::invalid(
                "session.reauth_window_secs",
                "must be between 60 seconds and 1 day",
            ));
        }
        if self.mfa.methods.is_empty() {
            return Err(Error::invalid("mfa.methods", "allow at least one method"));
        }
        if let Some(m) = self
            .mfa
            .methods
            .iter()
            .find(|m| !METHODS.iter().any(|x| x.as_str() == m.as_str()))
        {
            return Err(Error::invalid(
                "mfa.methods",
                format!("{m:?} is not a method; use totp, email or sms"),
            ));
        }
        if self.mfa.mode == MfaMode::Roles && self.mfa.roles.is_empty() {
            return Err(Error::invalid(
                "mfa.roles",
                "name at least one role when mode is \"roles\"",
            ));
        }
        Ok(())
    }
}

/// The policy in force (read through a cache invalidated by any policy write).
pub fn current(svc: &Service) -> Result<SecurityPolicy> {
    let generation = svc.store.generation(Table::Policy);
    if let Ok(c) = svc.policy.current.read()
        && let Some((g, p)) = c.as_ref()
        && *g == generation
    {
        return Ok(p.clone());
    }
    let p = svc
        .store
        .read()?
        .get::<SecurityPolicy>(Table::Policy, KEY)?
        .unwrap_or_else(|| SecurityPolicy::defaults(&svc.settings));
    if let Ok(mut c) = svc.policy.current.write() {
        *c = Some((generation, p.clone()));
    }
    Ok(p)
}

pub fn stored(r: &impl Reader) -> Result<Option<SecurityPolicy>> {
    r.get(Table::Policy, KEY)
}

/// Stores `p` as the policy in force (see `authn::update_policy`, which
/// validates and audits the change).
pub(crate) fn put(tx: &mut crate::store::WriteTx<'_>, p: &SecurityPolicy) -> Result<()> {
    tx.put(Table::Policy, KEY, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Actor, Principal};
    use crate::audit::Source;
    use crate::authn::update_policy as update;
    use crate::identity::{Email, UserId};

    fn settings(dir: &std::path::Path) -> crate::config::Settings {
        let mut s = crate::config::Settings::load(None, Vec::<(String, String)>::new()).unwrap();
        s.data_dir = dir.to_path_buf();
        s.session.idle_timeout_secs = 1800;
        s.session.absolute_lifetime_secs = 43_200;
        s
    }

    fn service(dir: &std::path::Path) -> Service {
        let clock = std::sync::Arc::new(crate::clock::FixedClock::new(1_800_000_000));
        Service::open(settings(dir), clock).unwrap()
    }

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

    fn field_of(r: Result<SecurityPolicy>) -> &'static str {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn defaults_take_session_lifetimes_from_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let p = SecurityPolicy::defaults(&settings(dir.path()));
        assert_eq!(p.mfa.mode, MfaMode::Off);
        assert_eq!(p.mfa.methods, vec!["totp".to_string()]);
        assert!(p.mfa.roles.is_empty());
        assert_eq!(
            (
                p.session.idle_timeout_secs,
                p.session.absolute_lifetime_secs
            ),
            (1800, 43_200)
        );
        assert_eq!(p.session.reauth_window_secs, 600);
        assert!(!p.session.single_session);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn mfa_is_required_by_mode_and_role() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = SecurityPolicy::defaults(&settings(dir.path()));
        let (admin, member) = (
            user("a@example.com", Role::Admin),
            user("u@example.com", Role::User),
        );
        assert!(!p.mfa_required_for(&admin) && !p.mfa_required_for(&member));
        p.mfa.mode = MfaMode::All;
        assert!(p.mfa_required_for(&admin) && p.mfa_required_for(&member));
        p.mfa.mode = MfaMode::Roles;
        p.mfa.roles = vec![Role::Admin, Role::Owner];
        assert!(p.mfa_required_for(&admin) && !p.mfa_required_for(&member));
    }

    #[test]
    fn a_policy_breaking_a_rule_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let by = crate::access::Actor::local("cli");
        let base = current(&svc).unwrap();
        let with = |f: &dyn Fn(&mut SecurityPolicy)| {
            let mut p = base.clone();
            f(&mut p);
            update(&svc, &by, p)
        };
        assert_eq!(
            field_of(with(&|p| p.session.idle_timeout_secs = 59)),
            "session"
        );
        assert_eq!(
            field_of(with(&|p| p.session.absolute_lifetime_secs = 1799)),
            "session"
        );
        assert_eq!(
            field_of(with(&|p| p.session.absolute_lifetime_secs = 30 * 86_400 + 1)),
            "session.absolute_lifetime_secs"
        );
        assert_eq!(
            field_of(with(&|p| p.session.reauth_window_secs = 59)),
            "session.reauth_window_secs"
        );
        assert_eq!(
            field_of(with(&|p| p.session.reauth_window_secs = 86_401)),
            "session.reauth_window_secs"
        );
        assert_eq!(field_of(with(&|p| p.mfa.methods.clear())), "mfa.methods");
        assert_eq!(
            field_of(with(&|p| p.mfa.methods.push("webauthn".into()))),
            "mfa.methods"
        );
        assert_eq!(
            field_of(with(&|p| p.mfa.mode = MfaMode::Roles)),
            "mfa.roles"
        );
        // E-mail codes need [smtp] host, SMS codes [sms] url (neither set here).
        assert_eq!(
            field_of(with(&|p| p.mfa.methods.push("email".into()))),
            "mfa.methods"
        );
        assert_eq!(
            field_of(with(&|p| p.mfa.methods.push("sms".into()))),
            "mfa.methods"
        );
        assert!(stored(&svc.store.read().unwrap()).unwrap().is_none());
        assert_eq!(current(&svc).unwrap(), base);
    }

    #[test]
    fn an_update_replaces_the_defaults_audits_what_changed_and_confines_newly_required_users() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let by = crate::access::Actor::local("cli");
        let (admin, member) = (
            user("a@example.com", Role::Admin),
            user("u@example.com", Role::User),
        );
        let mut tx = svc.store.write().unwrap();
        crate::identity::insert(&svc, &mut tx, &admin).unwrap();
        crate::identity::insert(&svc, &mut tx, &member).unwrap();
        tx.commit().unwrap();
        let epoch = |u: &User| {
            crate::tokens::valid_after(&svc.store.read().unwrap(), &u.id)
                .unwrap()
                .epoch
        };
        let last_change = || {
            let f = crate::audit::Filter {
                action: Some("settings.security_change".into()),
                ..Default::default()
            };
            let (events, _) = crate::audit::query(&svc.store.read().unwrap(), &f, 0, 1).unwrap();
            events.into_iter().next().unwrap().details
        };

        // Only the session part: nobody is confined.
        let mut next = current(&svc).unwrap();
        next.session.single_session = true;
        assert_eq!(update(&svc, &by, next.clone()).unwrap(), next);
        assert_eq!(current(&svc).unwrap(), next);
        let d = last_change();
        assert_eq!(d["changed"], serde_json::json!(["session"]));
        assert_eq!(d["users_confined"], 0);
        assert_eq!(d["before"]["session"]["single_session"], false);
        assert_eq!(d["after"]["session"]["single_session"], true);

        // MFA for admins: the admin (no second factor) is confined, the user is not.
        next.mfa.mode = MfaMode::Roles;
        next.mfa.roles = vec![Role::Admin];
        update(&svc, &by, next.clone()).unwrap();
        let d = last_change();
        assert_eq!(d["changed"], serde_json::json!(["mfa"]));
        assert_eq!(d["users_confined"], 1);
        assert_eq!((epoch(&admin), epoch(&member)), (1, 0));

        // MFA for everyone: only the newly required user is confined again.
        next.mfa.mode = MfaMode::All;
        update(&svc, &by, next.clone()).unwrap();
        assert_eq!(last_change()["users_confined"], 1);
        assert_eq!((epoch(&admin), epoch(&member)), (1, 1));
        assert_eq!(stored(&svc.store.read().unwrap()).unwrap(), Some(next));
    }

    #[test]
    fn the_update_itself_refuses_an_actor_without_manage_security() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let member = user("m@example.com", Role::User);
        let mut tx = svc.store.write().unwrap();
        crate::identity::insert(&svc, &mut tx, &member).unwrap();
        tx.commit().unwrap();
        let weak = Actor::new(
            Principal::User {
                user: std::sync::Arc::new(member),
                session: None,
            },
            Source::default(),
            Some(svc.now()),
        );
        let mut next = current(&svc).unwrap();
        next.session.single_session = true;
        assert!(matches!(
            update(&svc, &weak, next),
            Err(Error::Forbidden(m)) if m.contains("manage:security")
        ));
        assert!(matches!(
            crate::authn::policy_for(&svc, &weak),
            Err(Error::Forbidden(_))
        ));
        assert!(stored(&svc.store.read().unwrap()).unwrap().is_none());
    }
}
