//! The SSO status as stored (enabled, enforcement, test group, excluded
//! users) and the rule it sets for password sign-in: whether a user may still
//! sign in with e-mail and password. Below `authn`, which asks it at sign-in;
//! changing the status and the other rollout rules are `sso`.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::identity::{Role, User, UserId};
use crate::store::{Reader, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Everyone may still sign in with e-mail and password.
    Off,
    /// Members of the test group must use SSO.
    TestGroup,
    /// Everyone but the SSO-excluded users must use SSO.
    Enforced,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Off => "off",
            Enforcement::TestGroup => "test_group",
            Enforcement::Enforced => "enforced",
        }
    }
}

/// The SSO status. The owner is always excluded (added on every write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoSettings {
    pub enabled: bool,
    pub enforcement: Enforcement,
    pub test_group: Vec<UserId>,
    pub excluded_users: Vec<UserId>,
}

impl Default for SsoSettings {
    fn default() -> Self {
        SsoSettings {
            enabled: false,
            enforcement: Enforcement::Off,
            test_group: Vec::new(),
            excluded_users: Vec::new(),
        }
    }
}

/// Where the status is kept in the policy table (`sso::update_settings` writes it).
pub(crate) const SETTINGS_KEY: &[u8] = b"sso";

pub fn settings(r: &impl Reader) -> Result<SsoSettings> {
    let mut s: SsoSettings = r.get(Table::Policy, SETTINGS_KEY)?.unwrap_or_default();
    if let Some(owner) = r.get::<String>(Table::Meta, b"owner_id")?
        && let Ok(id) = UserId::parse(&owner)
        && !s.excluded_users.contains(&id)
    {
        s.excluded_users.insert(0, id);
    }
    Ok(s)
}

pub fn is_excluded(s: &SsoSettings, user: &User) -> bool {
    user.role == Role::Owner || s.excluded_users.contains(&user.id)
}

/// Whether `user` may still sign in with e-mail and password.
pub fn password_allowed(r: &impl Reader, user: &User) -> Result<bool> {
    Ok(password_allowed_by(&settings(r)?, user))
}

/// The rule behind `password_allowed`: while SSO is on, enforcement takes
/// password sign-in away from the test group or from everyone, never from
/// the SSO-excluded users and the owner.
pub(crate) fn password_allowed_by(s: &SsoSettings, user: &User) -> bool {
    if !s.enabled || is_excluded(s, user) {
        return true;
    }
    match s.enforcement {
        Enforcement::Off => true,
        Enforcement::TestGroup => !s.test_group.contains(&user.id),
        Enforcement::Enforced => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Email;

    fn user(email: &str, role: Role) -> User {
        User {
            id: UserId::generate().unwrap(),
            email: Email::parse(email).unwrap(),
            name: String::new(),
            password_hash: None,
            role,
            disabled: false,
            must_change_password: false,
            created_at: 1,
            updated_at: 1,
        }
    }

    fn on(enforcement: Enforcement, test_group: &[&User], excluded: &[&User]) -> SsoSettings {
        SsoSettings {
            enabled: true,
            enforcement,
            test_group: test_group.iter().map(|u| u.id.clone()).collect(),
            excluded_users: excluded.iter().map(|u| u.id.clone()).collect(),
        }
    }

    #[test]
    fn enforcement_takes_passwords_from_whom_it_names_and_never_from_the_excluded() {
        let owner = user("owner@example.com", Role::Owner);
        let admin = user("admin@example.com", Role::Admin);
        let tester = user("tester@example.com", Role::User);
        let other = user("other@example.com", Role::User);
        let everyone = [&owner, &admin, &tester, &other];
        let allowed = |s: &SsoSettings| -> Vec<bool> {
            everyone.iter().map(|u| password_allowed_by(s, u)).collect()
        };
        // Disabled, whatever the enforcement says: everyone keeps passwords.
        let mut off = on(Enforcement::Enforced, &[&tester], &[]);
        off.enabled = false;
        assert_eq!(allowed(&off), [true; 4]);
        assert_eq!(allowed(&on(Enforcement::Off, &[&tester], &[])), [true; 4]);
        // The test group only; the owner never (even when not listed).
        assert_eq!(
            allowed(&on(Enforcement::TestGroup, &[&tester, &owner], &[])),
            [true, true, false, true]
        );
        // Everyone but the excluded and the owner.
        assert_eq!(
            allowed(&on(Enforcement::Enforced, &[], &[&admin])),
            [true, true, false, false]
        );
        assert!(is_excluded(&on(Enforcement::Off, &[], &[]), &owner));
        assert!(!is_excluded(&on(Enforcement::Off, &[], &[]), &admin));
    }
}
