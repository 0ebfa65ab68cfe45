//! Changing the SSO status (enabled, enforcement, test group, excluded
//! users) under its rollout rules: who must, and who may still not, use SSO.
//! The stored status and the password sign-in rule are `crate::rollout`
//! (below `authn`), re-exported here.

use serde::Deserialize;

use crate::access::{Actor, Permission, Resource};
use crate::audit::{self, Outcome};
use crate::error::{Error, Result};
use crate::identity::{self, Email, Role, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table};

use super::list_in;
pub use crate::rollout::{Enforcement, SsoSettings, is_excluded, password_allowed, settings};
use crate::rollout::{SETTINGS_KEY, password_allowed_by};

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

/// `settings`, read in its own snapshot.
/// The SSO settings, for someone who may manage them (`ManageSecurity`).
pub fn settings_for(svc: &Service, actor: &Actor) -> Result<SsoSettings> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    current_settings(svc)
}

pub fn current_settings(svc: &Service) -> Result<SsoSettings> {
    settings(&svc.store.read()?)
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
    actor: &Actor,
    input: SsoSettingsInput,
) -> Result<(SsoSettings, Vec<String>)> {
    actor.authorize(svc, Permission::ManageSecurity, Resource::Platform)?;
    actor.require_recent(svc)?;
    let (by, src) = (&actor.principal, &actor.source);
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
    // Taking a linked user out of the excluded users revives their links: the
    // IdP then signs them in, and its role rules set their role, as if linked
    // anew (see `guard_relinking`) — whatever their role is now.
    let mut refused: Vec<String> = Vec::new();
    for id in &before.excluded_users {
        if next.excluded_users.contains(id) {
            continue;
        }
        if let Ok(u) = identity::get(&tx, id)
            && super::links::has_links(&tx, &u.id)?
            && !super::links::may_relink(svc, by, &u)?
        {
            refused.push(u.email.as_str().to_string());
        }
    }
    if !refused.is_empty() {
        return Err(Error::Forbidden(format!(
            "Taking a user linked to an identity provider out of the SSO-excluded users revives \
             their links, like linking them anew: only a caller who may link them (the \
             admin:users permission on the platform; for platform admins, a platform admin) may. \
             Linked: {}.",
            refused.join(", ")
        )));
    }
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
    // SSO off: nobody is signed in by an identity provider any more.
    let mut ended = if before.enabled && !next.enabled {
        crate::authn::session::end_sso(&mut tx, crate::authn::session::SsoSessions::All)?
    } else {
        0
    };
    let now = svc.now();
    // Newly SSO-excluded: what their IdP signed them in to ends now, not at
    // its expiry (an excluded user signs in with password and Gatehouse MFA
    // only). SSO sessions are browser sessions only: no refresh family or
    // access token is ever made from one, so there is nothing else to end.
    let mut newly_excluded = Vec::new();
    for id in next
        .excluded_users
        .iter()
        .filter(|id| !before.excluded_users.contains(id))
    {
        let n =
            crate::authn::session::end_sso(&mut tx, crate::authn::session::SsoSessions::User(id))?;
        if n > 0
            && let Ok(u) = identity::get(&tx, id)
        {
            newly_excluded.push(u.email.as_str().to_string());
        }
        ended += n;
    }
    let mut details = details;
    details["sessions_ended"] = ended.into();
    if !newly_excluded.is_empty() {
        details["sessions_ended_for"] = newly_excluded.into();
    }
    // Enforcement that takes password sign-in away from someone takes what
    // their password opened too: password sessions, refresh families and
    // access tokens (all made by a password sign-in); what the IdP started
    // stays.
    let mut lost = Vec::new();
    let mut password_ended = crate::authn::revoke::Ended::default();
    for u in identity::list(&tx, "", 0, usize::MAX)?.0 {
        if password_allowed_by(&before, &u) && !password_allowed_by(&next, &u) {
            let e = crate::authn::revoke::end_everything(
                &mut tx,
                &u.id,
                now,
                crate::authn::revoke::Sessions::EndPasswordMade,
            )?;
            password_ended.sessions += e.sessions;
            password_ended.refresh_families += e.refresh_families;
            lost.push(u.email.as_str().to_string());
        }
    }
    details["password_sign_in_ended"] = serde_json::json!({
        "users": lost.len(),
        "sample": lost.iter().take(50).collect::<Vec<_>>(),
        "sessions": password_ended.sessions,
        "refresh_families": password_ended.refresh_families,
    });
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::access::Principal;
    use crate::clock::FixedClock;
    use crate::config::Settings;
    use crate::sso::{Connection, ConnectionInput, TestResult};

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

    struct World {
        svc: Service,
        owner: User,
        admin: User,
        user: User,
        _dir: tempfile::TempDir,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        let svc = Service::open(settings, Arc::new(FixedClock::new(1_800_000_000))).unwrap();
        let (owner, admin, u) = (
            user("owner@example.com", Role::Owner),
            user("admin2@example.com", Role::Admin),
            user("user@example.com", Role::User),
        );
        let mut tx = svc.store.write().unwrap();
        for x in [&owner, &admin, &u] {
            identity::insert(&svc, &mut tx, x).unwrap();
        }
        tx.put(Table::Meta, b"owner_id", &owner.id.as_str().to_string())
            .unwrap();
        tx.commit().unwrap();
        World {
            svc,
            owner,
            admin,
            user: u,
            _dir: dir,
        }
    }

    fn add_connection(w: &World, id: &str, tested: bool) {
        let input: ConnectionInput = serde_json::from_value(serde_json::json!({
            "protocol": "oidc", "name": id, "issuer": "https://idp.example",
            "client_id": "gh", "client_secret": "s",
        }))
        .unwrap();
        let mut c: Connection = super::super::build::build(id.into(), input, None, 1).unwrap();
        if tested {
            c.last_test = Some(TestResult {
                at: 1,
                ok: true,
                error: None,
                claims: serde_json::Value::Null,
                by: "owner@example.com".into(),
            });
        }
        let mut tx = w.svc.store.write().unwrap();
        tx.put(Table::SsoConnections, id.as_bytes(), &c).unwrap();
        tx.commit().unwrap();
    }

    fn update(w: &World, v: serde_json::Value) -> Result<(SsoSettings, Vec<String>)> {
        update_settings(
            &w.svc,
            &crate::access::Actor::local("test"),
            serde_json::from_value(v).unwrap(),
        )
    }

    fn field_of(r: Result<(SsoSettings, Vec<String>)>) -> &'static str {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn enabling_needs_a_connection_and_a_second_excluded_admin() {
        let w = world();
        let enable = |excluded: &[&str]| {
            update(
                &w,
                serde_json::json!({"enabled": true, "enforcement": "off", "excluded_users": excluded}),
            )
        };
        assert_eq!(field_of(enable(&["admin2@example.com"])), "enabled");
        add_connection(&w, "okta", false);
        // The owner does not count, nor does an ordinary user.
        assert_eq!(field_of(enable(&[])), "excluded_users");
        assert_eq!(
            field_of(enable(&["owner@example.com", "user@example.com"])),
            "excluded_users"
        );
        assert_eq!(field_of(enable(&["nobody@example.com"])), "excluded_users");
        let (s, warnings) = enable(&[w.admin.id.as_str()]).unwrap();
        assert!(s.enabled && warnings.is_empty());
        // The owner is always excluded, first, though nobody named them.
        assert_eq!(s.excluded_users, [w.owner.id.clone(), w.admin.id.clone()]);
    }

    #[test]
    fn enforcing_needs_sso_on_every_connection_tested_and_a_test_group() {
        let w = world();
        add_connection(&w, "okta", true);
        add_connection(&w, "azure", false);
        let go = |v: serde_json::Value| update(&w, v);
        let ex = ["admin2@example.com"];
        assert_eq!(
            field_of(go(
                serde_json::json!({"enabled": false, "enforcement": "enforced"})
            )),
            "enforcement"
        );
        let untested = go(
            serde_json::json!({"enabled": true, "enforcement": "enforced", "excluded_users": ex}),
        );
        match untested {
            Err(Error::Invalid { field, message }) => {
                assert_eq!(field, "enforcement");
                assert!(message.ends_with("not yet: azure"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        add_connection(&w, "azure", true);
        assert_eq!(
            field_of(go(
                serde_json::json!({"enabled": true, "enforcement": "test_group", "excluded_users": ex})
            )),
            "test_group"
        );
        let (s, warnings) = go(serde_json::json!({
            "enabled": true, "enforcement": "test_group", "excluded_users": ex,
            "test_group": ["user@example.com"],
        }))
        .unwrap();
        assert_eq!(s.test_group, std::slice::from_ref(&w.user.id));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("the test group"), "{}", warnings[0]);
        let r = w.svc.store.read().unwrap();
        assert!(!password_allowed(&r, &w.user).unwrap());
        assert!(password_allowed(&r, &w.admin).unwrap());
        assert!(password_allowed(&r, &w.owner).unwrap());
    }

    #[test]
    fn connections_are_offered_and_startable_only_while_sso_is_on_unless_testing() {
        use crate::sso::{Protocol, sign_in_options, startable};
        let w = world();
        add_connection(&w, "okta", false);
        assert!(sign_in_options(&w.svc).unwrap().is_empty());
        assert!(matches!(
            startable(&w.svc, "okta", Protocol::Oidc, false),
            Err(Error::Forbidden(_))
        ));
        assert!(startable(&w.svc, "okta", Protocol::Oidc, true).is_ok());
        // Another protocol's endpoint, or an unknown id, finds nothing.
        assert!(matches!(
            startable(&w.svc, "okta", Protocol::Saml, true),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            startable(&w.svc, "nope", Protocol::Oidc, true),
            Err(Error::NotFound(_))
        ));
        update(
            &w,
            serde_json::json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
        )
        .unwrap();
        let offered = sign_in_options(&w.svc).unwrap();
        assert_eq!(
            offered,
            [("okta".to_string(), "okta".to_string(), Protocol::Oidc)]
        );
        assert!(startable(&w.svc, "okta", Protocol::Oidc, false).is_ok());
    }

    #[test]
    fn the_ops_themselves_refuse_an_actor_without_manage_security() {
        let w = world();
        add_connection(&w, "okta", true);
        let weak = crate::access::Actor::new(
            Principal::User {
                user: Arc::new(w.user.clone()),
                session: None,
            },
            crate::audit::Source::default(),
            Some(w.svc.now()),
        );
        let forbidden =
            |r: Result<()>| matches!(r, Err(Error::Forbidden(m)) if m.contains("manage:security"));
        let input =
            serde_json::from_value(serde_json::json!({"enabled": false, "enforcement": "off"}))
                .unwrap();
        assert!(forbidden(update_settings(&w.svc, &weak, input).map(|_| ())));
        assert!(forbidden(settings_for(&w.svc, &weak).map(|_| ())));
        assert!(forbidden(crate::sso::delete(&w.svc, &weak, "okta")));
        assert!(forbidden(crate::sso::list_for(&w.svc, &weak).map(|_| ())));
        assert!(forbidden(
            crate::sso::connection_for(&w.svc, &weak, "okta").map(|_| ())
        ));
        let create = serde_json::from_value(serde_json::json!({
            "id": "two", "protocol": "oidc", "name": "two", "issuer": "https://idp.example",
            "client_id": "gh", "client_secret": "s",
        }))
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let created = rt.block_on(crate::sso::create(&w.svc, &weak, create));
        assert!(forbidden(created.map(|_| ())));
        assert_eq!(crate::sso::list(&w.svc).unwrap().len(), 1);
    }
}
