//! Turning an admin's `ConnectionInput` (and the stored connection, on
//! update) into a validated `Connection`.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::identity::Role;

use super::connections::default_skew;
use super::{
    Connection, ConnectionInput, PRESETS, Preset, Protocol, RoleRule, check_url, preset, xmldsig,
};

/// Validates `input` against the connection it replaces (`existing`, on
/// update) in a fixed order, so the first mistake is the one reported.
pub(super) fn build(
    id: String,
    mut input: ConnectionInput,
    existing: Option<&Connection>,
    now: Timestamp,
) -> Result<Connection> {
    if let Some(e) = existing
        && e.protocol != input.protocol
    {
        return Err(Error::invalid(
            "protocol",
            "cannot change a connection's protocol; create a new connection",
        ));
    }
    let p = preset_for(&input)?;
    let name = crate::access::clean_name("name", &input.name)?;
    // SAML and WS-Federation share the IdP fields: entity ID, sign-on URL, certificates.
    let saml = input.protocol != Protocol::Oidc;
    let issuer = issuer(p, &input, existing, saml)?;
    let realm = if input.protocol == Protocol::Wsfed {
        realm(&input, existing)?
    } else {
        String::new()
    };
    let (mut client_id, mut client_secret, mut scopes) = (String::new(), String::new(), Vec::new());
    let (mut sso_url, mut certificates) = (String::new(), Vec::new());
    if saml {
        (sso_url, certificates) = saml_idp(&mut input, existing, now)?;
    } else {
        (client_id, client_secret, scopes) = oidc_client(&mut input, existing)?;
    }
    let (role_rules, default_role, role_attribute) = roles(&mut input, existing)?;
    let clock_skew_secs = input
        .clock_skew_secs
        .or(existing.map(|e| e.clock_skew_secs))
        .unwrap_or_else(default_skew);
    if !(0..=600).contains(&clock_skew_secs) {
        return Err(Error::invalid(
            "clock_skew_secs",
            "must be 0 to 600 seconds",
        ));
    }
    let allowed_domains = match input.allowed_domains.take() {
        Some(list) => clean_domains(list)?,
        None => existing
            .map(|e| e.allowed_domains.clone())
            .unwrap_or_default(),
    };
    let google = p.provider == "google" && input.protocol == Protocol::Oidc;
    let jit = jit(&input, existing, google, &allowed_domains)?;
    // A changed identity provider must be tested again.
    let last_test = existing
        .filter(|e| {
            e.issuer == issuer
                && e.client_id == client_id
                && e.sso_url == sso_url
                && e.certificates == certificates
                && e.realm == realm
        })
        .and_then(|e| e.last_test.clone());
    Ok(Connection {
        id,
        protocol: input.protocol,
        provider: p.provider.to_string(),
        name,
        issuer,
        client_id,
        client_secret,
        scopes,
        trust_unverified_email: input
            .trust_unverified_email
            .or(existing.map(|e| e.trust_unverified_email))
            .unwrap_or(false),
        jit,
        allowed_domains,
        role_attribute,
        role_rules,
        default_role,
        last_test,
        created_at: existing.map(|e| e.created_at).unwrap_or(now),
        updated_at: now,
        sso_url,
        certificates,
        allow_idp_initiated: input
            .allow_idp_initiated
            .or(existing.map(|e| e.allow_idp_initiated))
            .unwrap_or(false),
        allow_sha1: input
            .allow_sha1
            .or(existing.map(|e| e.allow_sha1))
            .unwrap_or(false),
        clock_skew_secs,
        realm,
        sign_requests: input
            .sign_requests
            .or(existing.map(|e| e.sign_requests))
            .unwrap_or(false)
            && input.protocol == Protocol::Saml,
        // Who set the trust is the caller's to record (`create`, `update`).
        trust_by: existing.and_then(|e| e.trust_by.clone()),
    })
}

/// The preset the input names for its protocol.
fn preset_for(input: &ConnectionInput) -> Result<&'static Preset> {
    preset(input.protocol, &input.provider).ok_or_else(|| {
        Error::invalid(
            "provider",
            format!(
                "unknown provider for {}; use one of: {}",
                input.protocol.as_str(),
                PRESETS
                    .iter()
                    .filter(|p| p.protocol == input.protocol)
                    .map(|p| p.provider)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// The issuer: fixed by the preset, the SAML entity ID, or the OIDC issuer URL.
fn issuer(
    p: &Preset,
    input: &ConnectionInput,
    existing: Option<&Connection>,
    saml: bool,
) -> Result<String> {
    Ok(match (p.fixed_issuer, input.issuer.as_deref(), existing) {
        (Some(fixed), _, _) => fixed.to_string(),
        (None, Some(i), _) if saml && !i.trim().is_empty() && i.len() <= 500 => {
            i.trim().to_string()
        }
        (None, Some(i), _) if !saml => check_url("issuer", i)?,
        (None, None, Some(e)) => e.issuer.clone(),
        _ => {
            return Err(Error::invalid(
                "issuer",
                if saml {
                    "is required: the IdP's entity ID (or import its metadata)"
                } else {
                    "is required"
                },
            ));
        }
    })
}

/// WS-Federation: the realm (`wtrealm`) the IdP knows Gatehouse by.
fn realm(input: &ConnectionInput, existing: Option<&Connection>) -> Result<String> {
    let realm = input
        .realm
        .clone()
        .filter(|r| !r.trim().is_empty())
        .or(existing.map(|e| e.realm.clone()))
        .unwrap_or_default()
        .trim()
        .to_string();
    if realm.is_empty() || realm.len() > 500 {
        return Err(Error::invalid(
            "realm",
            "is required (at most 500 characters): the wtrealm the IdP knows Gatehouse by",
        ));
    }
    Ok(realm)
}

/// SAML and WS-Federation: the IdP's sign-on URL and its signing
/// certificates (1 to 10, at least one not expired).
fn saml_idp(
    input: &mut ConnectionInput,
    existing: Option<&Connection>,
    now: Timestamp,
) -> Result<(String, Vec<String>)> {
    let sso_url = match (input.sso_url.as_deref(), existing) {
        (Some(u), _) if !u.trim().is_empty() => check_url("sso_url", u)?,
        (_, Some(e)) => e.sso_url.clone(),
        _ => {
            return Err(Error::invalid(
                "sso_url",
                "is required: the IdP's single sign-on URL (or import its metadata)",
            ));
        }
    };
    let mut certificates = input
        .certificates
        .take()
        .filter(|c| !c.is_empty())
        .or(existing.map(|e| e.certificates.clone()))
        .unwrap_or_default();
    certificates.retain(|c| !c.trim().is_empty());
    if certificates.is_empty() || certificates.len() > 10 {
        return Err(Error::invalid(
            "certificates",
            "give 1 to 10 IdP signing certificates (PEM), or import the IdP's metadata",
        ));
    }
    let mut valid = 0;
    for (i, pem) in certificates.iter().enumerate() {
        let c = xmldsig::parse_certificate(pem)
            .map_err(|m| Error::invalid("certificates", format!("certificate {}: {m}", i + 1)))?;
        if c.not_after > now {
            valid += 1;
        }
    }
    if valid == 0 {
        return Err(Error::invalid(
            "certificates",
            "every certificate has expired; add the IdP's current signing certificate",
        ));
    }
    Ok((sso_url, certificates))
}

/// OIDC: the client id, the client secret (kept when left out on update)
/// and the scopes (`openid` always among them).
fn oidc_client(
    input: &mut ConnectionInput,
    existing: Option<&Connection>,
) -> Result<(String, String, Vec<String>)> {
    let client_id = match (input.client_id.as_deref(), existing) {
        (Some(c), _) if !c.trim().is_empty() && c.len() <= 300 => c.trim().to_string(),
        (Some(_), _) => {
            return Err(Error::invalid(
                "client_id",
                "is required (at most 300 characters)",
            ));
        }
        (None, Some(e)) => e.client_id.clone(),
        (None, None) => return Err(Error::invalid("client_id", "is required")),
    };
    let client_secret = match (input.client_secret.take(), existing) {
        (Some(s), _) if !s.is_empty() && s.len() <= 1000 => s,
        (Some(s), Some(e)) if s.is_empty() => e.client_secret.clone(),
        (None, Some(e)) => e.client_secret.clone(),
        _ => {
            return Err(Error::invalid(
                "client_secret",
                "is required: Gatehouse is a confidential client",
            ));
        }
    };
    let mut scopes = input
        .scopes
        .take()
        .or(existing.map(|e| e.scopes.clone()))
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    scopes.retain(|s| !s.trim().is_empty());
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
    {
        return Err(Error::invalid(
            "scopes",
            format!("{bad:?} is not a valid scope"),
        ));
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    Ok((client_id, client_secret, scopes))
}

/// The role mapping: rules, default role (never the owner) and the
/// attribute the rules read.
fn roles(
    input: &mut ConnectionInput,
    existing: Option<&Connection>,
) -> Result<(Vec<RoleRule>, Role, String)> {
    let role_rules = input
        .role_rules
        .take()
        .or(existing.map(|e| e.role_rules.clone()))
        .unwrap_or_default();
    if role_rules.iter().any(|r| r.role == Role::Owner) {
        return Err(Error::invalid(
            "role_rules",
            "the owner role cannot be given by an IdP; map to \"admin\" or \"user\"",
        ));
    }
    let default_role = input
        .default_role
        .or(existing.map(|e| e.default_role))
        .unwrap_or(Role::User);
    if default_role == Role::Owner {
        return Err(Error::invalid(
            "default_role",
            "must be \"admin\" or \"user\"",
        ));
    }
    let role_attribute = input
        .role_attribute
        .take()
        .or(existing.map(|e| e.role_attribute.clone()))
        .unwrap_or_else(|| "groups".into())
        .trim()
        .to_string();
    Ok((role_rules, default_role, role_attribute))
}

/// Just-in-time creation: on unless said otherwise, except through Google
/// without allowed domains (refused when asked for, turned off when kept).
fn jit(
    input: &ConnectionInput,
    existing: Option<&Connection>,
    google: bool,
    allowed_domains: &[String],
) -> Result<bool> {
    Ok(match input.jit.or(existing.map(|e| e.jit)) {
        Some(true) if google && allowed_domains.is_empty() => {
            if input.jit == Some(true) {
                return Err(Error::invalid(
                    "jit",
                    "just-in-time creation through Google needs allowed_domains (your Google \
                     Workspace domains): otherwise anyone with a Google account could sign in",
                ));
            }
            false
        }
        Some(j) => j,
        None => !google,
    })
}

/// Allowed domains: lower-case DNS names, without `@`, at most 50.
fn clean_domains(list: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for d in list {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        if d.is_empty() {
            continue;
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if d.len() > 253 || !d.contains('.') || !d.split('.').all(label_ok) {
            return Err(Error::invalid(
                "allowed_domains",
                format!("{d:?} is not a domain name (e.g. \"example.com\")"),
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.len() > 50 {
        return Err(Error::invalid("allowed_domains", "at most 50 domains"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sso::TestResult;

    fn input(v: serde_json::Value) -> ConnectionInput {
        let mut base = serde_json::json!({
            "protocol": "oidc", "name": "Okta", "issuer": "https://idp.example",
            "client_id": "gatehouse", "client_secret": "s3cret",
        });
        if let (Some(b), Some(extra)) = (base.as_object_mut(), v.as_object()) {
            for (k, x) in extra {
                b.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn made(v: serde_json::Value) -> Connection {
        build("okta".into(), input(v), None, 100).unwrap()
    }

    fn refused(v: serde_json::Value, existing: Option<&Connection>) -> &'static str {
        match build("okta".into(), input(v), existing, 100) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn rule(value: &str, role: Role) -> RoleRule {
        RoleRule {
            value: value.into(),
            role,
        }
    }

    #[test]
    fn the_default_role_is_user_and_never_the_owner() {
        let c = made(serde_json::json!({}));
        assert_eq!(c.default_role, Role::User);
        assert_eq!(c.role_attribute, "groups");
        assert_eq!(
            made(serde_json::json!({"default_role": "admin"})).default_role,
            Role::Admin
        );
        assert_eq!(
            refused(serde_json::json!({"default_role": "owner"}), None),
            "default_role"
        );
        // Kept from the stored connection when left out on update.
        let admin = made(serde_json::json!({"default_role": "admin"}));
        let kept = build(
            "okta".into(),
            input(serde_json::json!({})),
            Some(&admin),
            200,
        )
        .unwrap();
        assert_eq!(kept.default_role, Role::Admin);
    }

    #[test]
    fn role_rules_never_give_the_owner_and_only_raise_to_admin() {
        assert_eq!(
            refused(
                serde_json::json!({"role_rules": [{"value": "root", "role": "owner"}]}),
                None
            ),
            "role_rules"
        );
        let mut c = made(serde_json::json!({}));
        c.role_rules = vec![rule("admins", Role::Admin), rule("staff", Role::User)];
        assert_eq!(c.mapped_role(&[]), Role::User);
        assert_eq!(c.mapped_role(&["staff".into()]), Role::User);
        assert_eq!(c.mapped_role(&["admins".into()]), Role::Admin);
        assert_eq!(
            c.mapped_role(&["staff".into(), "admins".into()]),
            Role::Admin
        );
        // Values match exactly: no case folding, no prefixes.
        assert_eq!(c.mapped_role(&["Admins".into()]), Role::User);
        assert_eq!(c.mapped_role(&["admins-x".into()]), Role::User);
        // A rule to `user` does not lower an admin default: the highest wins.
        c.default_role = Role::Admin;
        assert_eq!(c.mapped_role(&["staff".into()]), Role::Admin);
    }

    #[test]
    fn jit_is_on_by_default_except_through_google_without_domains() {
        assert!(made(serde_json::json!({})).jit);
        assert!(!made(serde_json::json!({"jit": false})).jit);
        let google = serde_json::json!({"provider": "google"});
        let g = made(google.clone());
        assert!(!g.jit, "Google starts with just-in-time creation off");
        assert_eq!(g.issuer, "https://accounts.google.com", "fixed issuer");
        assert_eq!(
            refused(serde_json::json!({"provider": "google", "jit": true}), None),
            "jit"
        );
        let with_domains = made(serde_json::json!({
            "provider": "google", "jit": true, "allowed_domains": ["@Corp.Example"],
        }));
        assert!(with_domains.jit);
        assert_eq!(with_domains.allowed_domains, ["corp.example"]);
        // Taking the domains away later turns it off rather than failing.
        let kept = build(
            "okta".into(),
            input(serde_json::json!({"provider": "google", "allowed_domains": []})),
            Some(&with_domains),
            200,
        )
        .unwrap();
        assert!(!kept.jit);
    }

    #[test]
    fn a_connection_keeps_its_protocol_and_a_changed_idp_is_tested_again() {
        let mut c = made(serde_json::json!({}));
        assert_eq!(c.scopes, ["openid", "email", "profile"]);
        assert_eq!(
            made(serde_json::json!({"scopes": ["email"]})).scopes,
            ["openid", "email"]
        );
        c.last_test = Some(TestResult {
            at: 1,
            ok: true,
            error: None,
            claims: serde_json::Value::Null,
            by: "owner@example.com".into(),
        });
        assert_eq!(
            refused(serde_json::json!({"protocol": "saml"}), Some(&c)),
            "protocol"
        );
        let same = build("okta".into(), input(serde_json::json!({})), Some(&c), 200).unwrap();
        assert!(same.tested_ok());
        assert_eq!(same.created_at, c.created_at);
        let moved = build(
            "okta".into(),
            input(serde_json::json!({"issuer": "https://other.example"})),
            Some(&c),
            200,
        )
        .unwrap();
        assert!(!moved.tested_ok(), "a new issuer needs a new test");
        // The stored secret is kept when the update leaves it out or empty.
        let mut keep = input(serde_json::json!({"client_secret": ""}));
        keep.client_secret = Some(String::new());
        assert_eq!(
            build("okta".into(), keep, Some(&c), 200)
                .unwrap()
                .client_secret,
            "s3cret"
        );
        assert_eq!(
            refused(serde_json::json!({"provider": "nope"}), None),
            "provider"
        );
    }
}
