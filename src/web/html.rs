//! Shared page pieces: rendering, redirects, safe `rd` targets, percent
//! handling, the nav bar, list rows, the confirmation page, the
//! MFA method picker and the account page (re-rendered by account and MFA
//! handlers).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::audit;
use crate::authn::{self, password::Password};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::{Role, User};
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::extract::ConsoleUser;

pub(crate) type PageResult = Result<HttpResponse, PageError>;

pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> PageResult {
    let body = t
        .render()
        .map_err(|e| Error::internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body))
}

pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

pub(crate) fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

/// The "repeat password" field must match.
pub(crate) fn confirmed(pw: &Password, again: &Password) -> Result<(), Error> {
    if crate::crypto::ct_eq(pw.expose().as_bytes(), again.expose().as_bytes()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "password_confirm",
            "does not match the password",
        ))
    }
}

/// Where to go after signing in (every `rd` parameter): a local path, never
/// an open redirect; anything else goes to `/admin`.
pub(crate) fn safe_rd(rd: Option<&str>) -> String {
    match rd {
        Some(p) if is_local_path(p) => p.to_string(),
        _ => "/admin".to_string(),
    }
}

/// Whether `p` is a same-origin relative reference a browser cannot turn into
/// another host: exactly one leading `/`, then printable ASCII only (no
/// control characters or whitespace, which browsers strip: `/\t/evil` becomes
/// `//evil`) and no backslash (which browsers read as `/`). The same holds
/// after percent-decoding, repeatedly, because a later hop may decode it
/// (`/%2F%2Fevil`, `/%5Cevil`, `/%09/evil`, `/%252F…`).
pub(crate) fn is_local_path(p: &str) -> bool {
    const MAX_LEN: usize = 2048;
    fn plain_ok(b: &[u8]) -> bool {
        b.first() == Some(&b'/')
            && !matches!(b.get(1), Some(b'/' | b'\\'))
            && b.iter().all(|c| c.is_ascii_graphic() && *c != b'\\')
    }
    if p.len() > MAX_LEN {
        return false;
    }
    let mut cur = p.as_bytes().to_vec();
    // Each round removes one layer of encoding; four layers is no real path.
    for _ in 0..4 {
        if !plain_ok(&cur) {
            return false;
        }
        let next = percent_decode(&cur);
        if next == cur {
            return true;
        }
        cur = next;
    }
    false
}

/// One layer of `%XX` decoding; a `%` not followed by two hex digits stays.
pub(crate) fn percent_decode(b: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(b).collect()
}

/// RFC 3986's unreserved characters stay; every other byte becomes `%XX`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A value for a query string (`?rd=…`, filters in links).
pub(crate) fn enc(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The same, keeping `/`.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// A local path handed on as a query value (`/login?rd=…`).
pub(crate) fn enc_path(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED_AND_SLASH).to_string()
}

pub struct Nav {
    pub email: String,
    pub is_admin: bool,
    pub csrf: String,
    pub section: &'static str,
}

pub(crate) fn nav(u: &ConsoleUser, section: &'static str) -> Nav {
    Nav {
        email: u.user.email.as_str().into(),
        is_admin: u.user.is_admin(),
        csrf: u.csrf.clone(),
        section,
    }
}

pub struct MethodOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// The method picker and the "send a code" buttons for a list of methods.
pub(crate) fn method_options(
    methods: &[&'static str],
    selected: &str,
) -> (Vec<MethodOption>, Vec<MethodOption>) {
    let selected = if methods.contains(&selected) {
        selected
    } else {
        methods.first().copied().unwrap_or("")
    };
    let label = |m: &str| match m {
        "totp" => "Authenticator app",
        "email" => "E-mail code",
        "sms" => "SMS code",
        _ => "Recovery code",
    };
    let options = methods
        .iter()
        .map(|m| MethodOption {
            value: m,
            label: label(m),
            selected: *m == selected,
        })
        .collect();
    let sendable = methods
        .iter()
        .filter(|m| matches!(**m, "email" | "sms"))
        .map(|m| MethodOption {
            value: m,
            label: if *m == "email" { "e-mail" } else { "SMS" },
            selected: false,
        })
        .collect();
    (options, sendable)
}

/// `?rd=…&notice=…` on the sign-in and confirm-it's-you pages.
#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    pub(crate) rd: Option<String>,
    #[serde(default, deserialize_with = "crate::web::notice::lenient")]
    pub(crate) notice: Option<crate::web::notice::LoginNotice>,
}

/// "Send me a code" on the MFA step and the confirm-it's-you page.
#[derive(Deserialize)]
pub(crate) struct SendForm {
    pub(crate) method: String,
    pub(crate) csrf_token: String,
    pub(crate) rd: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf_token: String,
}

// ---------------------------------------------------------------- rows

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: &'static str,
    pub disabled: bool,
    pub is_owner: bool,
    pub created: String,
    pub last_login: String,
}

impl UserRow {
    /// A user's row, with their last sign-in (kept apart from the record).
    pub(crate) fn new(u: &User, last_sign_in: Option<crate::clock::Timestamp>) -> Self {
        UserRow {
            id: u.id.as_str().into(),
            email: u.email.as_str().into(),
            name: u.name.clone(),
            role: u.role.as_str(),
            disabled: u.disabled,
            is_owner: u.role == Role::Owner,
            created: rfc3339(u.created_at),
            last_login: last_sign_in.map(rfc3339).unwrap_or_else(|| "never".into()),
        }
    }
}

pub struct EventRow {
    pub id: u64,
    pub time: String,
    /// The actor's e-mail or name; its id on hover.
    pub actor: String,
    pub actor_id: String,
    pub action: String,
    /// The target's name where one is known, else its id; the id on hover.
    pub target: String,
    pub target_id: String,
    pub outcome: &'static str,
    pub ip: String,
    /// `details` as label → readable value, in the event's order: the
    /// first `DETAILS_SHOWN` shown, the rest folded (`more`).
    pub details: Vec<(String, String)>,
    pub more: Vec<(String, String)>,
    /// The workspace's name, if the event belongs to one.
    pub workspace: String,
}

/// Details a row shows before folding the rest under "more".
const DETAILS_SHOWN: usize = 6;
/// How much of one detail value a row shows.
const DETAIL_MAX: usize = 240;

impl EventRow {
    /// Rows for a page of events, with the names of the ids they carry.
    pub fn rows(st: &AppState, events: &[audit::Event]) -> Result<Vec<EventRow>, Error> {
        let names = crate::overview::names(&st.svc, events)?;
        Ok(events.iter().map(|e| EventRow::new(e, &names)).collect())
    }

    fn new(e: &audit::Event, names: &std::collections::HashMap<String, String>) -> Self {
        let target_id = e.target.clone().unwrap_or_default();
        let mut details = detail_rows(&e.details);
        // Folding just one row would hide less than its summary line takes.
        let more = if details.len() > DETAILS_SHOWN + 1 {
            details.split_off(DETAILS_SHOWN)
        } else {
            Vec::new()
        };
        let actor_id = e.actor_id.clone().unwrap_or_default();
        EventRow {
            id: e.id,
            time: rfc3339(e.time),
            actor: match names.get(&actor_id) {
                Some(n) if e.actor.starts_with("usr_") || e.actor.is_empty() => n.clone(),
                _ => e.actor.clone(),
            },
            actor_id,
            action: e.action.clone(),
            target: names
                .get(&target_id)
                .cloned()
                .unwrap_or_else(|| target_id.clone()),
            target_id,
            outcome: e.outcome.as_str(),
            ip: e.source_ip.clone().unwrap_or_default(),
            details,
            more,
            workspace: e
                .workspace
                .as_ref()
                .map(|w| names.get(w).cloned().unwrap_or_else(|| w.clone()))
                .unwrap_or_default(),
        }
    }
}

/// `details` as rows a person reads: `last_at: 1800000000` becomes
/// "last at" → "2027-01-15T08:00:00Z", a list of objects (a folded denial's
/// `also`) becomes "target usr_…; target usr_…", and so on.
fn detail_rows(d: &serde_json::Value) -> Vec<(String, String)> {
    match d {
        serde_json::Value::Null => Vec::new(),
        // Empty values say nothing: left out.
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
            .map(|(k, v)| (k.replace('_', " "), cut(detail_value(k, v))))
            .collect(),
        other => vec![("detail".into(), cut(detail_value("", other)))],
    }
}

fn detail_value(key: &str, v: &serde_json::Value) -> String {
    use serde_json::Value as V;
    match v {
        V::Null => "—".into(),
        V::Bool(b) => if *b { "yes" } else { "no" }.into(),
        V::Number(n) => match n.as_i64() {
            // Times are stored as Unix seconds under names ending in `_at`.
            Some(t)
                if (key.ends_with("_at") || key == "until" || key == "since")
                    && t > 1_000_000_000 =>
            {
                rfc3339(t)
            }
            _ => n.to_string(),
        },
        V::String(s) => s.clone(),
        V::Array(a) if a.is_empty() => "none".into(),
        V::Array(a) => a
            .iter()
            .map(|x| match x {
                // A pair such as an address and its count.
                V::Array(p) => p
                    .iter()
                    .map(|y| detail_value("", y))
                    .collect::<Vec<_>>()
                    .join(" × "),
                other => detail_value(key, other),
            })
            .collect::<Vec<_>>()
            .join(if a.iter().any(|x| x.is_object()) {
                "; "
            } else {
                ", "
            }),
        V::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), detail_value(k, v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn cut(s: String) -> String {
    if s.chars().count() <= DETAIL_MAX {
        s
    } else {
        s.chars().take(DETAIL_MAX).collect::<String>() + "…"
    }
}

pub(crate) const PER_PAGE: usize = 25;

#[derive(Template)]
#[template(path = "confirm.html")]
pub(crate) struct ConfirmPage {
    pub nav: Nav,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: String,
    pub cancel: String,
}

pub struct SessionRow {
    pub id: String,
    pub current: bool,
    pub created: String,
    pub last_seen: String,
    pub ip: String,
    pub device: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage {
    nav: Nav,
    me: UserRow,
    can_email: bool,
    can_sms: bool,
    mfa: authn::mfa::MfaSummary,
    mfa_since: String,
    sessions: Vec<SessionRow>,
    notice: Option<String>,
    error: Option<String>,
}

pub(crate) fn account_page(
    st: &AppState,
    u: &ConsoleUser,
    notice: Option<String>,
    error: Option<String>,
) -> Result<AccountPage, Error> {
    let authn::queries::Account {
        sessions: list,
        mfa,
        last_sign_in,
    } = authn::queries::account(&st.svc, &u.user.id)?;
    let available = authn::mfa::available_methods(&st.svc)?;
    let mfa_since = mfa.totp_since.map(rfc3339).unwrap_or_default();
    let sessions = list
        .iter()
        .map(|(h, s)| SessionRow {
            id: hex::encode(h),
            current: *h == u.session_hash,
            created: rfc3339(s.created_at),
            last_seen: rfc3339(s.last_seen),
            ip: s.ip.clone().unwrap_or_default(),
            device: s.user_agent.clone().unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    Ok(AccountPage {
        nav: nav(u, "account"),
        me: UserRow::new(&u.user, last_sign_in),
        mfa,
        mfa_since,
        can_email: available.contains(&"email"),
        can_sms: available.contains(&"sms"),
        sessions,
        notice,
        error,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        for ok in [
            "/admin",
            "/admin/users?q=a%40b",
            "/admin/x#frag",
            "/a%25b",
            "/.//x",
        ] {
            assert!(is_local_path(ok), "{ok:?}");
        }
        for bad in [
            "",
            "admin",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil",
            "/ /evil",
            "/\u{3000}/evil",
            "/%2F%2Fevil",
            "/%5Cevil",
            "/%09/evil",
            "/%252F%252Fevil",
            "/%2525252F%2525252Fevil",
            "https://evil.example",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
            assert_eq!(safe_rd(Some(bad)), "/admin");
        }
        assert!(!is_local_path(&format!("/{}", "a".repeat(3000))));
    }

    #[test]
    fn percent_handling_matches_the_hand_written_encoders() {
        assert_eq!(enc("a-b_c.d~e/f g?é%"), "a-b_c.d~e%2Ff%20g%3F%C3%A9%25");
        assert_eq!(enc_path("/a b/c?d"), "/a%20b/c%3Fd");
        assert_eq!(percent_decode(b"%41%4a%zz%4"), b"AJ%zz%4".to_vec());
    }
}
