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
