//! Provider presets: the labels, defaults and help each IdP kind is shown with.

use serde::Serialize;

use super::Protocol;

/// A provider preset: labels, defaults and help in the IdP's own words.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preset {
    pub protocol: Protocol,
    pub provider: &'static str,
    pub label: &'static str,
    /// The issuer every connection of this preset uses (Google), if fixed.
    pub fixed_issuer: Option<&'static str>,
    pub issuer_label: &'static str,
    pub issuer_help: &'static str,
    pub client_id_label: &'static str,
    pub client_secret_label: &'static str,
    /// SAML: the IdP's single sign-on URL and signing certificate, in its words.
    pub sso_url_label: &'static str,
    pub certificate_label: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        protocol: Protocol::Oidc,
        provider: "google",
        label: "Google",
        fixed_issuer: Some("https://accounts.google.com"),
        issuer_label: "Issuer",
        issuer_help: "Always https://accounts.google.com. Create an OAuth client ID of type \
                      \"Web application\" in the Google Cloud console.",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "okta",
        label: "Okta",
        fixed_issuer: None,
        issuer_label: "Issuer URI (authorization server)",
        issuer_help: "From Security → API → Authorization Servers, e.g. \
                      https://your-org.okta.com/oauth2/default. Create an OIDC \"Web Application\" app integration.",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "azure",
        label: "Azure AD / Entra ID",
        fixed_issuer: None,
        issuer_label: "Issuer (OpenID Connect metadata document without /.well-known/…)",
        issuer_help: "https://login.microsoftonline.com/{Directory (tenant) ID}/v2.0. Register an \
                      application; add the redirect URI under Authentication → Web.",
        client_id_label: "Application (client) ID",
        client_secret_label: "Client secret value",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "ping",
        label: "Ping Identity",
        fixed_issuer: None,
        issuer_label: "Issuer",
        issuer_help: "PingOne: https://auth.pingone.com/{environment ID}/as (Applications → \
                      Configuration → Issuer).",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    Preset {
        protocol: Protocol::Oidc,
        provider: "other",
        label: "Other OpenID provider",
        fixed_issuer: None,
        issuer_label: "Issuer URL",
        issuer_help: "The provider's issuer; Gatehouse reads {issuer}/.well-known/openid-configuration.",
        client_id_label: "Client ID",
        client_secret_label: "Client secret",
        sso_url_label: "",
        certificate_label: "",
    },
    saml_preset(
        "okta",
        "Okta",
        "Identity Provider Issuer",
        "Okta Single Sign-On URL",
        "X.509 Certificate",
        "Okta admin → Applications → your SAML app → Sign On → View SAML setup instructions.",
    ),
    saml_preset(
        "onelogin",
        "OneLogin",
        "Issuer URL",
        "SAML 2.0 Endpoint (HTTP)",
        "X.509 Certificate",
        "OneLogin → Applications → your app → SSO tab.",
    ),
    saml_preset(
        "azure",
        "Azure AD / Entra ID",
        "Microsoft Entra Identifier",
        "Login URL",
        "Certificate (Base64)",
        "Enterprise applications → your app → Single sign-on → Set up (section 3 and 4).",
    ),
    saml_preset(
        "google",
        "Google Workspace",
        "Entity ID",
        "SSO URL",
        "Certificate",
        "Admin console → Apps → Web and mobile apps → Add custom SAML app → Google IdP information.",
    ),
    saml_preset(
        "ping",
        "Ping Identity",
        "Issuer",
        "Single Signon Service",
        "Signing Certificate",
        "PingOne → Applications → your SAML app → Configuration.",
    ),
    wsfed_preset(
        "azure",
        "Azure AD / ADFS",
        "WS-Federation sign-on endpoint",
        "ADFS: https://adfs.example.com/adfs/ls/ ; Entra ID: https://login.microsoftonline.com/{tenant}/wsfed. \
         Or import the federation metadata (…/FederationMetadata/2007-06/FederationMetadata.xml).",
    ),
    wsfed_preset(
        "other",
        "Other WS-Federation IdP",
        "Sign-on endpoint URL",
        "Or import the IdP's federation metadata document from a URL or an uploaded file.",
    ),
    saml_preset(
        "other",
        "Other SAML IdP",
        "IdP entity ID (Issuer)",
        "IdP single sign-on URL (HTTP-Redirect)",
        "IdP signing certificate (PEM)",
        "Or import the IdP's metadata from a URL or an uploaded XML file.",
    ),
];

const fn wsfed_preset(
    provider: &'static str,
    label: &'static str,
    sso_url_label: &'static str,
    help: &'static str,
) -> Preset {
    Preset {
        protocol: Protocol::Wsfed,
        provider,
        label,
        fixed_issuer: None,
        issuer_label: "Issuer (the IdP's entity ID)",
        issuer_help: help,
        client_id_label: "",
        client_secret_label: "",
        sso_url_label,
        certificate_label: "Token-signing certificate (PEM)",
    }
}

const fn saml_preset(
    provider: &'static str,
    label: &'static str,
    issuer_label: &'static str,
    sso_url_label: &'static str,
    certificate_label: &'static str,
    help: &'static str,
) -> Preset {
    Preset {
        protocol: Protocol::Saml,
        provider,
        label,
        fixed_issuer: None,
        issuer_label,
        issuer_help: help,
        client_id_label: "",
        client_secret_label: "",
        sso_url_label,
        certificate_label,
    }
}

pub fn preset(protocol: Protocol, provider: &str) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .find(|p| p.protocol == protocol && p.provider == provider)
}
