//! The SSO status (enabled, enforcement, test group, excluded users) and
//! its rollout rules: who must, and who may still not, use SSO.

use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::audit::{self, Outcome, Source};
use crate::error::{Error, Result};
use crate::identity::{self, Email, Role, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table};

use super::list_in;

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

/// Users are named by id or e-mail address.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoSettingsInput {
    pub enabled: bool,
    pub enforcement: Enforcement,
    #[serde(default)]
    pub test_group: Vec<String>,
    #[serde(default)]
    pub excluded_users: Vec<String>,
}

const SETTINGS_KEY: &[u8] = b"sso";

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
    let s = settings(r)?;
    if !s.enabled || is_excluded(&s, user) {
        return Ok(true);
    }
    Ok(match s.enforcement {
        Enforcement::Off => true,
        Enforcement::TestGroup => !s.test_group.contains(&user.id),
        Enforcement::Enforced => false,
    })
}

fn resolve_user(svc: &Service, r: &impl Reader, who: &str, field: &'static str) -> Result<User> {
    let who = who.trim();
    let found = if who.starts_with("usr_") {
        UserId::parse(who)
            .ok()
            .and_then(|id| identity::get(r, &id).ok())
    } else {
        match Email::parse(who) {
            Ok(e) => identity::find_by_email(svc, r, &e)?,
            Err(_) => None,
        }
    };
    found.ok_or_else(|| {
        Error::invalid(
            field,
            format!("{who:?} is not a user (give an id or e-mail)"),
        )
    })
}

/// Replaces the SSO status, after the rollout rules: enabling needs a
/// connection and a second excluded admin besides the owner; enforcement
/// needs a successful test sign-in through every connection. Returns the
/// settings in force and warnings for the admin.
pub fn update_settings(
    svc: &Service,
    by: &Principal,
    src: &Source,
    input: SsoSettingsInput,
) -> Result<(SsoSettings, Vec<String>)> {
    let mut tx = svc.store.write()?;
    let resolve = |list: &[String], field| -> Result<Vec<User>> {
        let mut out: Vec<User> = Vec::new();
        for w in list {
            let u = resolve_user(svc, &tx, w, field)?;
            if !out.iter().any(|x| x.id == u.id) {
                out.push(u);
            }
        }
        Ok(out)
    };
    let excluded = resolve(&input.excluded_users, "excluded_users")?;
    let test_group = resolve(&input.test_group, "test_group")?;
    let mut next = SsoSettings {
        enabled: input.enabled,
        enforcement: input.enforcement,
        test_group: test_group.iter().map(|u| u.id.clone()).collect(),
        excluded_users: excluded
            .iter()
            .filter(|u| u.role != Role::Owner)
            .map(|u| u.id.clone())
            .collect(),
    };
    let connections = list_in(&tx)?;
    if next.enabled {
        if connections.is_empty() {
            return Err(Error::invalid(
                "enabled",
                "add an SSO connection before enabling SSO",
            ));
        }
        let admins = excluded
            .iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .count();
        if admins == 0 {
            return Err(Error::invalid(
                "excluded_users",
                "enabling SSO needs at least one SSO-excluded admin besides the owner, so that \
                 someone can still sign in with a password if the identity provider fails",
            ));
        }
    }
    if next.enforcement != Enforcement::Off {
        if !next.enabled {
            return Err(Error::invalid(
                "enforcement",
                "enable SSO before enforcing it",
            ));
        }
        let untested: Vec<&str> = connections
            .iter()
            .filter(|c| !c.tested_ok())
            .map(|c| c.id.as_str())
            .collect();
        if !untested.is_empty() {
            return Err(Error::invalid(
                "enforcement",
                format!(
                    "run a successful test sign-in (Test connection) through every connection first; \
                     not yet: {}",
                    untested.join(", ")
                ),
            ));
        }
        if next.enforcement == Enforcement::TestGroup && next.test_group.is_empty() {
            return Err(Error::invalid(
                "test_group",
                "name at least one user who must use SSO",
            ));
        }
    }
    let before = settings(&tx)?;
    let emails = |ids: &[UserId]| -> Vec<String> {
        ids.iter()
            .filter_map(|id| identity::get(&tx, id).ok())
            .map(|u| u.email.as_str().to_string())
            .collect()
    };
    let mut fallback: Vec<UserId> = before
        .excluded_users
        .iter()
        .filter(|id| identity::get(&tx, id).is_ok_and(|u| u.role == Role::Owner))
        .cloned()
        .collect();
    fallback.extend(next.excluded_users.iter().cloned());
    let details = serde_json::json!({
        "enabled": next.enabled,
        "enforcement": next.enforcement.as_str(),
        "test_group": emails(&next.test_group),
        "excluded_users": emails(&next.excluded_users),
        "before": {"enabled": before.enabled, "enforcement": before.enforcement.as_str()},
    });
    let mut warnings = Vec::new();
    if next.enabled && next.enforcement != Enforcement::Off {
        warnings.push(format!(
            "Password sign-in now stops for {}. The fallback: SSO-excluded users ({}) keep \
             signing in with e-mail and password at /login, and `gatehouse recover EMAIL` on the \
             server resets the owner's password.",
            if next.enforcement == Enforcement::Enforced {
                "everyone who is not SSO-excluded"
            } else {
                "the test group"
            },
            emails(&fallback).join(", ")
        ));
    }
    tx.put(Table::Policy, SETTINGS_KEY, &next)?;
    let now = svc.now();
    audit::record(
        &mut tx,
        now,
        src,
        by.event("sso.settings_change", Outcome::Success)
            .details(details),
    )?;
    if before.enforcement != next.enforcement {
        audit::record(
            &mut tx,
            now,
            src,
            by.event("sso.enforcement_change", Outcome::Success)
                .details(serde_json::json!({"from": before.enforcement.as_str(), "to": next.enforcement.as_str()})),
        )?;
    }
    tx.commit()?;
    next = settings(&svc.store.read()?)?;
    Ok((next, warnings))
}
