//! The end of an IdP round trip: the allowed-domain and just-in-time rules,
//! finding / linking / creating the user, and recording failures.

use crate::audit::{self, NewEvent, Outcome, Source};
use crate::error::Result;
use crate::identity::{self, Email, Role, User, UserId};
use crate::service::Service;
use crate::store::{Reader, Table};

use super::links::{
    Link, LinkMaker, LinkVia, Made, Standing, link_key, refuse_email_link, refuse_stale_link,
    standing,
};
use super::{
    Connection, Failure, Finished, Identity, Pending, Protocol, TestResult, get, is_excluded,
    settings,
};
use crate::access::Rights;

/// How much of a failure's message the audit log keeps for a sign-in nobody
/// tests: what the request carried (an IdP error text, a SAML value) is cut
/// shorter where it is quoted; this bounds the whole.
pub const FAILURE_MESSAGE_MAX: usize = 300;

/// A failure's message as recorded: control characters dropped, at most
/// `max` characters.
pub(crate) fn bounded(message: &str, max: usize) -> String {
    message
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// Records a failure: audit (the precise reason), and the test result when an
/// admin was testing. Returns what the web layer shows.
///
/// An admin's test writes its result to the connection, with its event, in
/// one transaction. Anyone else's failure changes nothing and anyone can
/// cause one, so it joins the coalesced, group-committed refusals
/// (`access::defer_event`: one event per reason, address and commit, within
/// the address's budget) with its message bounded (`FAILURE_MESSAGE_MAX`).
pub fn record_failure(
    svc: &Service,
    conn: &str,
    pending: Option<&Pending>,
    f: &Failure,
    src: &Source,
) -> Result<Option<Finished>> {
    let test_by = pending.and_then(|p| p.test_by.clone());
    let action = if test_by.is_some() {
        "sso.test"
    } else {
        "sso.login"
    };
    let by = match &test_by {
        Some(id) => identity::get(&svc.store.read()?, id).ok(),
        None => None,
    };
    let Some(u) = by else {
        crate::access::defer_event(
            svc,
            src,
            NewEvent::new(action, Outcome::Failure)
                .target(conn.to_string())
                .details(serde_json::json!({
                    "reason": f.reason,
                    "message": bounded(&f.message, FAILURE_MESSAGE_MAX),
                })),
        )?;
        return Ok(None);
    };
    let now = svc.now();
    let mut tx = svc.store.write()?;
    audit::record(
        &mut tx,
        now,
        src,
        NewEvent::new(action, Outcome::Failure)
            .actor(u.email.as_str(), Some(u.id.as_str().to_string()))
            .target(conn.to_string())
            .details(serde_json::json!({"reason": f.reason, "message": f.message})),
    )?;
    let out = if let Ok(mut c) = get(&tx, conn) {
        c.last_test = Some(TestResult {
            at: now,
            ok: false,
            error: Some(f.message.clone()),
            claims: serde_json::Value::Null,
            by: u.email.as_str().to_string(),
        });
        tx.put(Table::SsoConnections, c.id.as_bytes(), &c)?;
        Some(Finished::Tested {
            connection: conn.to_string(),
            ok: false,
        })
    } else {
        None
    };
    tx.commit()?;
    Ok(out)
}

/// Just-in-time creation: as the connection says, except for Google, where
/// anyone with a Google account could sign in: off until the connection
/// names its allowed domains.
pub fn jit_allowed(conn: &Connection) -> bool {
    let google = conn.protocol == Protocol::Oidc && conn.provider == "google";
    conn.jit && (!google || !conn.allowed_domains.is_empty())
}

/// The connection's allowed domains, when it names any: the e-mail address
/// must be in one of them, and for Google the `hd` claim (the Workspace
/// domain) too, since a Google account may carry any address.
pub(crate) fn domain_allowed(conn: &Connection, ident: &Identity) -> Result<(), Failure> {
    if conn.allowed_domains.is_empty() {
        return Ok(());
    }
    let listed = |d: &str| {
        conn.allowed_domains
            .iter()
            .any(|a| a.eq_ignore_ascii_case(d.trim()))
    };
    let email_domain = ident
        .email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d);
    if !email_domain.is_some_and(listed) {
        return Err(Failure::new(
            "domain_not_allowed",
            "the e-mail address is not in one of the connection's allowed domains",
        ));
    }
    if conn.provider == "google"
        && conn.protocol == Protocol::Oidc
        && !ident.hosted_domain.as_deref().is_some_and(listed)
    {
        return Err(Failure::new(
            "domain_not_allowed",
            "the Google account's hosted domain (hd) is not one of the allowed domains",
        ));
    }
    Ok(())
}

/// Ends a verified round trip: records a test, or finds / links / creates
/// the user and starts their session. One transaction, audited.
pub fn finish(
    svc: &Service,
    conn: &Connection,
    pending: &Pending,
    ident: Identity,
    src: &Source,
) -> Result<Result<Finished, Failure>> {
    let now = svc.now();
    let mut tx = svc.store.write()?;
    let s = settings(&tx)?;
    let mapped = conn.mapped_role(&ident.roles);
    // Single use: the first answer to pass every check spends the sign-in.
    if !super::spend(&mut tx, pending)? {
        return Ok(Err(super::already_spent()));
    }
    if let Some(tester) = &pending.test_by {
        let by = identity::get(&tx, tester)?;
        let mut c = get(&tx, &conn.id)?;
        let claims = serde_json::json!({
            "subject": ident.subject, "email": ident.email, "email_verified": ident.email_verified,
            "name": ident.name, conn.role_attribute.clone(): ident.roles, "mapped_role": mapped.as_str(),
        });
        c.last_test = Some(TestResult {
            at: now,
            ok: true,
            error: None,
            claims: claims.clone(),
            by: by.email.as_str().to_string(),
        });
        tx.put(Table::SsoConnections, c.id.as_bytes(), &c)?;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("sso.test", Outcome::Success)
                .actor(by.email.as_str(), Some(by.id.as_str().into()))
                .target(conn.id.clone())
                .details(claims),
        )?;
        tx.commit()?;
        return Ok(Ok(Finished::Tested {
            connection: conn.id.clone(),
            ok: true,
        }));
    }
    if !s.enabled {
        return Ok(Err(Failure::new(
            "sso_disabled",
            "single sign-on is disabled",
        )));
    }
    if let Err(f) = domain_allowed(conn, &ident) {
        return Ok(Err(f));
    }
    let lk = link_key(svc, &conn.id, &ident.subject)?;
    let link = tx.get::<String>(Table::SsoLinks, &lk)?;
    let link = link.as_deref().map(Link::decode);
    let linked = match &link {
        Some(l) => UserId::parse(&l.user)
            .ok()
            .and_then(|id| identity::get(&tx, &id).ok()),
        None => None,
    };
    // A link into an administrator counts only when an admin made it: links
    // made before this version may come from the old linking by e-mail.
    if let (Some(l), Some(u)) = (&link, &linked)
        && u.role != Role::User
        && l.via.is_none()
    {
        return Ok(Err(Failure::new(
            "privileged_account",
            "this identity was linked to an administrator by an older version (possibly by \
             e-mail); an admin must link it again (POST /api/v1/users/{id}/sso-links)",
        )));
    }
    let mut created = false;
    let user = match linked {
        Some(u) => u,
        None => {
            let Some(raw) = ident.email.as_deref() else {
                return Ok(Err(Failure::new(
                    "no_email",
                    "the identity provider sent no e-mail address (request the email scope)",
                )));
            };
            let Ok(email) = Email::parse(raw) else {
                return Ok(Err(Failure::new(
                    "malformed_email",
                    "the identity provider's e-mail address does not parse",
                )));
            };
            if ident.email_verified != Some(true) && !conn.trust_unverified_email {
                return Ok(Err(Failure::new(
                    "email_not_verified",
                    "the identity provider does not say the e-mail address is verified",
                )));
            }
            let user = match identity::find_by_email(svc, &tx, &email)? {
                // An existing account is never taken over by an e-mail
                // address alone: the IdP's word would replace its password
                // and MFA. An admin links it explicitly (`link_user`).
                Some(u) => return Ok(Err(refuse_email_link(&s, &u, &ident.subject))),
                None if jit_allowed(conn) => {
                    let u = User {
                        id: UserId::generate()?,
                        email,
                        name: ident
                            .name
                            .clone()
                            .unwrap_or_default()
                            .chars()
                            .filter(|c| !c.is_control())
                            .take(200)
                            .collect(),
                        password_hash: None,
                        role: mapped,
                        disabled: false,
                        must_change_password: false,
                        created_at: now,
                        updated_at: now,
                    };
                    identity::insert(svc, &mut tx, &u)?;
                    created = true;
                    audit::record(
                        &mut tx,
                        now,
                        src,
                        NewEvent::new("user.create", Outcome::Success)
                            .actor(format!("sso:{}", conn.id), None)
                            .target(u.id.as_str())
                            .details(serde_json::json!({"email": u.email.as_str(), "role": u.role.as_str(), "via": "sso_jit"})),
                    )?;
                    u
                }
                None => {
                    return Ok(Err(Failure::new(
                        "no_account",
                        "no Gatehouse user has this e-mail address and just-in-time provisioning is off",
                    )));
                }
            };
            // Made just in time: on the authority of whoever set the
            // connection's trust, for what the user holds now.
            let made = Made {
                by: conn.trust_by.clone().unwrap_or(LinkMaker::Unknown),
                at: now,
                rights: Rights::of(svc, &user)?,
            };
            tx.put(
                Table::SsoLinks,
                &lk,
                &Link::encode(Some(LinkVia::Jit), &user.id, made)?,
            )?;
            audit::record(
                &mut tx,
                now,
                src,
                NewEvent::new("sso.link", Outcome::Success)
                    .actor(format!("sso:{}", conn.id), None)
                    .target(user.id.as_str())
                    .details(serde_json::json!({"connection": conn.id, "subject": ident.subject, "via": "sso_jit"})),
            )?;
            user
        }
    };
    if user.disabled {
        return Ok(Err(Failure::new("user_disabled", "the user is disabled")));
    }
    // A link made before a user became SSO-excluded (or the owner) opens nothing:
    // excluded users keep their password and Gatehouse MFA.
    if is_excluded(&s, &user) {
        return Ok(Err(Failure::new(
            "sso_excluded",
            "the user is SSO-excluded (or the owner) and signs in with e-mail, password and \
             Gatehouse MFA only",
        )));
    }
    let remaps = !created && !conn.role_rules.is_empty() && user.role != mapped;
    // The link vouches for what its maker could link: if the user now holds
    // more (however it was given), its maker must still be able to link
    // them as this sign-in would make them (with the mapped role).
    if let (false, Some(l)) = (created, &link) {
        let mut as_signed_in = user.clone();
        if remaps {
            as_signed_in.role = mapped;
        }
        match standing(svc, &tx, l, &as_signed_in)? {
            Standing::Good => {}
            Standing::NeedsReapproval => return Ok(Err(refuse_stale_link(&user))),
            Standing::Baseline => {
                let made = Made {
                    by: LinkMaker::Unknown,
                    at: now,
                    rights: Rights::of(svc, &as_signed_in)?,
                };
                tx.put(Table::SsoLinks, &lk, &Link::encode(l.via, &user.id, made)?)?;
            }
        }
    }
    let mut user = user;
    if remaps {
        let before = user.clone();
        user.role = mapped;
        user.updated_at = now;
        identity::save(svc, &mut tx, &before, &user)?;
        audit::record(
            &mut tx,
            now,
            src,
            NewEvent::new("user.update", Outcome::Success)
                .actor(format!("sso:{}", conn.id), None)
                .target(user.id.as_str())
                .details(serde_json::json!({"role": {"from": before.role.as_str(), "to": mapped.as_str()}, "via": "sso_role_mapping"})),
        )?;
    }
    let (user, token) = crate::authn::sso_session(svc, &mut tx, user, src, &conn.id)?;
    tx.commit()?;
    Ok(Ok(Finished::SignedIn {
        user,
        token,
        rd: pending.rd.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(email: &str, hd: Option<&str>) -> Identity {
        Identity {
            subject: "s".into(),
            email: Some(email.into()),
            email_verified: Some(true),
            name: None,
            roles: Vec::new(),
            hosted_domain: hd.map(str::to_string),
        }
    }

    fn google(domains: &[&str]) -> Connection {
        Connection {
            id: "google".into(),
            protocol: Protocol::Oidc,
            provider: "google".into(),
            name: "Google".into(),
            issuer: "https://accounts.google.com".into(),
            client_id: String::new(),
            client_secret: String::new(),
            scopes: Vec::new(),
            trust_unverified_email: false,
            jit: true,
            role_attribute: String::new(),
            role_rules: Vec::new(),
            default_role: Role::User,
            last_test: None,
            created_at: 0,
            updated_at: 0,
            sso_url: String::new(),
            certificates: Vec::new(),
            allow_idp_initiated: false,
            allow_sha1: false,
            clock_skew_secs: 120,
            realm: String::new(),
            sign_requests: false,
            allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
            trust_by: None,
        }
    }

    #[test]
    fn google_checks_the_hosted_domain_and_needs_domains_for_jit() {
        assert!(!jit_allowed(&google(&[])));
        let c = google(&["corp.example"]);
        assert!(jit_allowed(&c));
        assert!(domain_allowed(&c, &ident("a@corp.example", Some("corp.example"))).is_ok());
        assert!(domain_allowed(&c, &ident("a@CORP.example", Some("corp.example"))).is_ok());
        // A consumer Google account with a corp address: no hd.
        assert!(domain_allowed(&c, &ident("a@corp.example", None)).is_err());
        assert!(domain_allowed(&c, &ident("a@corp.example", Some("evil.example"))).is_err());
        assert!(domain_allowed(&c, &ident("a@evil.example", Some("corp.example"))).is_err());
        assert!(domain_allowed(&c, &ident("a@sub.corp.example", Some("corp.example"))).is_err());
        let mut other = google(&["corp.example"]);
        other.provider = "okta".into();
        assert!(domain_allowed(&other, &ident("a@corp.example", None)).is_ok());
        assert!(domain_allowed(&google(&[]), &ident("a@x.example", None)).is_ok());
    }
}
