//! Shared page pieces: rendering, redirects, safe `rd` targets, percent
//! handling, the nav bar, list rows, the confirmation page, the
//! MFA method picker, the account page (re-rendered by account and MFA
//! handlers), and the SSO pieces the console and the API both show (IdP
//! certificates with their warnings, which MFA rule is in force).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit;
use crate::authn::{self, mfa::MfaMethod, password::Password};
use crate::clock::{Timestamp, rfc3339};
use crate::error::Error;
use crate::identity::{Role, User};
use crate::sso;
use crate::web::AppState;
use crate::web::error::PageError;
use crate::web::extract::ConsoleUser;

pub(crate) type PageResult = Result<HttpResponse, PageError>;

pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> PageResult {
    let body = t
        .render()
        .map_err(|e| Error::internal_caused("template", e))?;
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

// ---------------------------------------------------------------- failed forms

/// What a page says about a refused request, in words: a validation error
/// (`field: words` in the API) becomes a sentence ("The passwords do not
/// match."); every other error says its public message.
pub(crate) fn words(e: &Error) -> String {
    match e {
        Error::Invalid { field, message } => sentence(field, message),
        other => other.public_message(),
    }
}

/// A validation error as a sentence about its field.
fn sentence(field: &str, message: &str) -> String {
    // Where the generic rule reads badly, the sentence is written out.
    match (field, message) {
        ("password_confirm", _) => return "The passwords do not match.".into(),
        ("mfa.roles", _) => {
            return "Choose at least one role that must use two-factor authentication, or require it for nobody or everyone.".into();
        }
        ("session", m) if m.starts_with("idle_timeout_secs") => {
            return "The idle timeout must be at least 1 minute and not longer than the session lifetime.".into();
        }
        ("mfa.methods", m) if m.starts_with("allow at least") => {
            return "Allow at least one two-factor method.".into();
        }
        _ => {}
    }
    let m = message.trim();
    // A message that goes on from its subject ("must be…", "is required")
    // gets the field's name in front; an imperative or a whole clause
    // ("give at least one…", "\"x\" is not…") stands alone.
    let first = m.split_whitespace().next().unwrap_or("");
    let needs_subject = matches!(
        first,
        "must" | "is" | "are" | "may" | "uses" | "was" | "cannot" | "has" | "needs" | "at" | "too"
    );
    let text = if needs_subject {
        format!("{} {m}", subject(field))
    } else {
        capitalised(m)
    };
    if text.ends_with(['.', '!', '?']) {
        text
    } else {
        format!("{text}.")
    }
}

/// How a sentence names a field.
fn subject(field: &str) -> String {
    let known = match field {
        "password" => "The password",
        "current_password" => "Your current password",
        "email" => "The e-mail address",
        "name" => "The name",
        "role" | "roles" => "The role",
        "scopes" | "scope" => "The scopes",
        "permissions" => "The permissions",
        "ip_allowlist" => "The IP allowlist",
        "origins" => "The allowed origins",
        "bot" => "The bot id",
        "code" => "The code",
        "phone" => "The phone number",
        "method" => "The method",
        "expires_at" => "The expiry date",
        "idle_timeout_secs" | "session" => "The idle timeout",
        "absolute_lifetime_secs" | "session.absolute_lifetime_secs" => "The session lifetime",
        "session.reauth_window_secs" => "The re-authentication window",
        "id" => "The id",
        _ => "",
    };
    if !known.is_empty() {
        return known.into();
    }
    let last = field.rsplit('.').next().unwrap_or(field);
    format!("The {}", last.replace('_', " "))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The form inputs a validation error's field may be about, best first (a
/// domain field is often named differently in the form).
fn inputs_for(field: &'static str) -> Vec<&'static str> {
    let more: &[&'static str] = match field {
        "scopes" => &["scope"],
        "permissions" => &["permission"],
        "roles" => &["role"],
        "members" => &["member"],
        "mfa.roles" => &["role_owner"],
        "mfa.methods" => &["method_totp"],
        "mfa_mode" => &["mfa_mode"],
        "session" | "idle_timeout_secs" => &["idle_minutes"],
        "session.absolute_lifetime_secs" | "absolute_lifetime_secs" => &["absolute_hours"],
        "session.reauth_window_secs" => &["reauth_minutes"],
        "user_id" => &["email"],
        _ => &[],
    };
    let mut v = vec![field];
    v.extend_from_slice(more);
    v
}

/// Renders a page that refuses a posted form: the form the browser sent
/// (the one whose `action` is this request's path) gets back what was typed
/// (`posted`; passwords and hidden fields never) and, for a validation
/// error, the sentence beside the field it is about, marked
/// `aria-invalid`. The page's own alert at the top stays as the summary.
pub(crate) fn render_failed<T: Template>(
    status: StatusCode,
    t: &T,
    req: &HttpRequest,
    e: &Error,
    posted: Option<&[(String, String)]>,
) -> PageResult {
    let body = t
        .render()
        .map_err(|e| Error::internal(format!("template: {e}")))?;
    let field = match e {
        Error::Invalid { field, .. } => Some(*field),
        _ => None,
    };
    let body = mark_form(&body, req.path(), field, &words(e), posted);
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body))
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A start tag's attributes as written (values left escaped).
struct Tag {
    name: String,
    attrs: Vec<(String, Option<String>)>,
}

impl Tag {
    /// Parses `<name a="b" c>` (the whole tag text).
    fn parse(text: &str) -> Option<Tag> {
        let inner = text
            .strip_prefix('<')?
            .trim_end_matches('>')
            .trim_end_matches('/');
        let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        let rest = &inner[name_end..];
        let mut attrs = Vec::new();
        let b = rest.as_bytes();
        let mut i = 0;
        while i < b.len() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
                i += 1;
            }
            let an = rest[start..i].to_ascii_lowercase();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    i += 1;
                    let vs = i;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                    attrs.push((an, Some(rest[vs..i.min(b.len())].to_string())));
                    i += 1;
                } else {
                    let vs = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    attrs.push((an, Some(rest[vs..i].to_string())));
                }
            } else if !an.is_empty() {
                attrs.push((an, None));
            }
        }
        Some(Tag { name, attrs })
    }

    fn get(&self, n: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a == n)
            .and_then(|(_, v)| v.as_deref())
    }

    fn has(&self, n: &str) -> bool {
        self.attrs.iter().any(|(a, _)| a == n)
    }

    /// Sets (Some) or removes (None) an attribute; `Some("")` as a bare flag.
    fn set(&mut self, n: &str, v: Option<String>) {
        self.attrs.retain(|(a, _)| a != n);
        if let Some(v) = v {
            self.attrs
                .push((n.to_string(), if v.is_empty() { None } else { Some(v) }));
        }
    }

    fn write(&self) -> String {
        let mut o = format!("<{}", self.name);
        for (a, v) in &self.attrs {
            match v {
                Some(v) => o.push_str(&format!(" {a}=\"{v}\"")),
                None => o.push_str(&format!(" {a}")),
            }
        }
        o.push('>');
        o
    }
}

/// The end of the tag that starts at `at` (just past its `>`).
fn tag_end(html: &str, at: usize) -> Option<usize> {
    html[at..].find('>').map(|i| at + i + 1)
}

/// The form the browser sent: the first POST form whose action is `action`
/// (its start and the end of its opening tag).
fn find_form(html: &str, action: &str) -> Option<(usize, usize)> {
    let mut search = 0;
    loop {
        let at = search + html[search..].find("<form")?;
        let end = tag_end(html, at)?;
        if Tag::parse(&html[at..end]).is_some_and(|t| {
            t.get("action") == Some(action)
                && t.get("method")
                    .is_some_and(|m| m.eq_ignore_ascii_case("post"))
        }) {
            return Some((at, end));
        }
        search = end;
    }
}

/// Renders a page (200) that shows a form "Confirm it's you" interrupted
/// (`resumed`, see `KeptForm::reshow`) again: filled in with what was kept
/// (never a secret), folded sections opened, and a notice at its top that
/// says what submitting it finishes and which secret fields to retype.
pub(crate) fn render_resumed<T: Template>(
    t: &T,
    resumed: Option<&crate::web::KeptForm>,
) -> PageResult {
    let body = t
        .render()
        .map_err(|e| Error::internal(format!("template: {e}")))?;
    let body = match resumed {
        Some(k) => resume_form(&body, k),
        None => body,
    };
    Ok(HttpResponse::build(StatusCode::OK)
        .content_type(ContentType::html())
        .body(body))
}

/// `?resumed=H` on a page "Confirm it's you" returns to (see `render_resumed`).
#[derive(serde::Deserialize)]
pub(crate) struct ResumedQuery {
    pub resumed: Option<String>,
}

/// How the page names a secret field the user retypes.
fn retype_label(field: &str) -> String {
    match field {
        "password" | "current_password" => "your password".into(),
        "code" => "a current code".into(),
        f => format!("the {}", f.replace('_', " ")),
    }
}

fn resume_form(html: &str, k: &crate::web::KeptForm) -> String {
    let html = mark_form(html, &k.action, None, "", Some(&k.fields));
    let Some((form_start, open_end)) = find_form(&html, &k.action) else {
        return html;
    };
    let mut say = format!("Signed in again \u{2014} submit this form {}.", k.purpose);
    if !k.retype.is_empty() {
        let names: Vec<String> = k.retype.iter().map(|f| retype_label(f)).collect();
        say.push_str(&format!(
            " Retype {}: secrets are never kept; everything else is as you left it.",
            names.join(" and ")
        ));
    }
    let mut out = html.clone();
    out.insert_str(
        open_end,
        &format!(
            "<p class=\"notice resumed-notice\" role=\"status\" id=\"resumed\">{}</p>",
            esc(&say)
        ),
    );
    // A form folded inside <details> is opened, so it shows.
    if let Some(d) = html[..form_start].rfind("<details")
        && !html[d..form_start].contains("</details>")
        && let Some(de) = tag_end(&html, d)
        && let Some(mut t) = Tag::parse(&html[d..de])
    {
        t.set("open", Some(String::new()));
        out.replace_range(d..de, &t.write());
    }
    out
}

/// A form's fields as posted, from its typed form (strings and numbers;
/// absent boxes are absent), to keep it across "Confirm it's you".
pub(crate) fn form_fields(f: &impl serde::Serialize) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(m)) = serde_json::to_value(f) else {
        return Vec::new();
    };
    m.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Number(n) => Some((k, n.to_string())),
            _ => None,
        })
        .collect()
}

/// The refill and the field's sentence, applied to the posted form in `html`
/// (see `render_failed`). A page without that form comes back unchanged.
fn mark_form(
    html: &str,
    action: &str,
    field: Option<&'static str>,
    text: &str,
    posted: Option<&[(String, String)]>,
) -> String {
    let Some((form_start, form_open_end)) = find_form(html, action) else {
        return html.to_string();
    };
    let form_end = html[form_open_end..]
        .find("</form>")
        .map_or(html.len(), |i| form_open_end + i);
    // Edits as (start, end, replacement), applied back to front.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let wanted = field.map(inputs_for).unwrap_or_default();
    let mut placed: Option<(usize, usize)> = None; // (rank, insert position)
    let value_of = |name: &str| -> Option<&str> {
        posted?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let ticked = |name: &str, value: &str| -> bool {
        posted.is_some_and(|p| p.iter().any(|(k, v)| k == name && v == value))
    };
    let mut i = form_open_end;
    while i < form_end {
        let Some(lt) = html[i..form_end].find('<') else {
            break;
        };
        let at = i + lt;
        let Some(end) = tag_end(html, at) else {
            break;
        };
        let raw = &html[at..end];
        let is = |n: &str| {
            raw.len() > n.len() + 1
                && raw[1..].to_ascii_lowercase().starts_with(n)
                && raw.as_bytes()[n.len() + 1].is_ascii_whitespace()
        };
        if !(is("input") || is("textarea") || is("select")) {
            i = end;
            continue;
        }
        let Some(mut tag) = Tag::parse(raw) else {
            i = end;
            continue;
        };
        let name = tag.get("name").unwrap_or("").to_string();
        let kind = tag.get("type").unwrap_or("text").to_ascii_lowercase();
        let rank = wanted.iter().position(|w| *w == name);
        let mut after = end; // where the sentence goes for this element
        let mut changed = false;
        match tag.name.as_str() {
            "input" => {
                if posted.is_some() && !tag.has("disabled") {
                    match kind.as_str() {
                        "password" | "hidden" | "submit" | "button" | "file" => {}
                        "checkbox" | "radio" => {
                            let v = tag.get("value").unwrap_or("on").to_string();
                            let on = ticked(&name, &unescape(&v));
                            tag.set("checked", on.then(String::new));
                            changed = true;
                        }
                        _ => {
                            if let Some(v) = value_of(&name) {
                                tag.set("value", Some(esc(v)));
                                changed = true;
                            }
                        }
                    }
                }
                if matches!(kind.as_str(), "checkbox" | "radio") {
                    // The sentence goes after the group, not inside one box.
                    after = html[end..form_end]
                        .find("</fieldset>")
                        .or_else(|| html[end..form_end].find("</label>"))
                        .map_or(end, |j| end + j);
                }
            }
            "textarea" => {
                let close = html[end..form_end]
                    .find("</textarea>")
                    .map_or(end, |j| end + j);
                if let Some(v) = value_of(&name) {
                    edits.push((end, close, esc(v)));
                }
                after = close + "</textarea>".len();
            }
            _ => {
                // select: the option posted is the one selected.
                let close = html[end..form_end]
                    .find("</select>")
                    .map_or(end, |j| end + j);
                if let Some(v) = value_of(&name) {
                    let mut j = end;
                    while let Some(k) = html[j..close].find("<option") {
                        let o = j + k;
                        let Some(oe) = tag_end(html, o) else { break };
                        if let Some(mut ot) = Tag::parse(&html[o..oe]) {
                            let ov = ot.get("value").map(unescape).unwrap_or_default();
                            ot.set("selected", (ov == v).then(String::new));
                            edits.push((o, oe, ot.write()));
                        }
                        j = oe;
                    }
                }
                after = close + "</select>".len();
            }
        }
        if let Some(r) = rank
            && placed.is_none_or(|(best, _)| r < best)
        {
            placed = Some((r, after));
            tag.set("aria-invalid", Some("true".into()));
            tag.set("aria-describedby", Some("field-error".into()));
            changed = true;
        }
        if changed {
            edits.push((at, end, tag.write()));
        }
        i = end;
    }
    // Only the best-ranked element keeps its aria marks.
    if let Some((_, pos)) = placed {
        edits.push((
            pos,
            pos,
            format!(
                "<small class=\"field-error\" id=\"field-error\">{}</small>",
                esc(text)
            ),
        ));
    }
    // A form folded inside <details> is opened, so its error shows.
    if field.is_some()
        && let Some(d) = html[..form_start].rfind("<details")
        && !html[d..form_start].contains("</details>")
        && let Some(de) = tag_end(html, d)
        && let Some(mut t) = Tag::parse(&html[d..de])
    {
        t.set("open", Some(String::new()));
        edits.push((d, de, t.write()));
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = html.to_string();
    for (s, e, r) in edits {
        out.replace_range(s..e, &r);
    }
    out
}

/// Undoes askama's escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
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

/// The method picker and the "send a code" buttons for a list of methods
/// (`selected` when it is one of them, else the first).
pub(crate) fn method_options(
    methods: &[MfaMethod],
    selected: Option<MfaMethod>,
) -> (Vec<MethodOption>, Vec<MethodOption>) {
    let selected = selected
        .filter(|m| methods.contains(m))
        .or_else(|| methods.first().copied());
    let label = |m: MfaMethod| match m {
        MfaMethod::Totp => "Authenticator app",
        MfaMethod::Email => "E-mail code",
        MfaMethod::Sms => "SMS code",
        MfaMethod::RecoveryCode => "Recovery code",
    };
    let options = methods
        .iter()
        .map(|&m| MethodOption {
            value: m.as_str(),
            label: label(m),
            selected: Some(m) == selected,
        })
        .collect();
    let sendable = methods
        .iter()
        .filter(|m| matches!(**m, MfaMethod::Email | MfaMethod::Sms))
        .map(|&m| MethodOption {
            value: m.as_str(),
            label: if m == MfaMethod::Email {
                "e-mail"
            } else {
                "SMS"
            },
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

// ---------------------------------------------------------------- SSO, on pages and in the API

/// An IdP certificate as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDto {
    pub pem: String,
    pub subject: String,
    pub not_after: String,
    /// Expired, or expiring within 30 days.
    pub warning: Option<String>,
}

pub fn certificate_dtos(now: Timestamp, pems: &[String]) -> Vec<CertificateDto> {
    pems.iter()
        .map(|pem| match sso::xmldsig::parse_certificate(pem) {
            Ok(c) => CertificateDto {
                pem: pem.clone(),
                subject: c.subject,
                not_after: crate::clock::rfc3339(c.not_after),
                warning: if c.not_after <= now {
                    Some("expired: signatures by it are refused".into())
                } else if c.not_after - now < 30 * 86_400 {
                    Some(format!(
                        "expires in {} days: add the IdP's next certificate",
                        (c.not_after - now) / 86_400
                    ))
                } else {
                    None
                },
            },
            Err(m) => CertificateDto {
                pem: pem.clone(),
                subject: String::new(),
                not_after: String::new(),
                warning: Some(m),
            },
        })
        .collect()
}

/// Which MFA rule is in force, for the console and the API.
pub fn mfa_scope(s: &sso::SsoSettings) -> &'static str {
    if s.enabled {
        "SSO is enabled: sign-ins through the identity provider use the IdP's own MFA; \
         Gatehouse's MFA policy applies to password sign-ins (SSO-excluded users, and anyone \
         still allowed a password)."
    } else {
        "SSO is disabled: Gatehouse's MFA policy applies to every user."
    }
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
    /// While the account is locked after failed sign-ins: until when.
    pub locked_until: Option<String>,
    /// An administrator set a temporary password, not yet replaced.
    pub must_change_password: bool,
}

impl UserRow {
    /// The same row, with the lock's end when the account is locked.
    pub(crate) fn locked(mut self, until: Option<crate::clock::Timestamp>) -> Self {
        self.locked_until = until.map(rfc3339);
        self
    }

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
            locked_until: None,
            must_change_password: u.must_change_password,
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
    /// The action's category (`audit::CATEGORIES`).
    pub category: &'static str,
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
    /// A refusal waiting for its group commit (`audit::Event::pending`):
    /// no id yet, labelled "pending".
    pub pending: bool,
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
            category: crate::audit::category_of(&e.action).as_str(),
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
                .map(|w| {
                    names
                        .get(w.as_str())
                        .cloned()
                        .unwrap_or_else(|| w.to_string())
                })
                .unwrap_or_default(),
            pending: e.pending,
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
        can_email: available.contains(&MfaMethod::Email),
        can_sms: available.contains(&MfaMethod::Sms),
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
    fn validation_errors_read_as_sentences() {
        let w = |f, m: &str| words(&Error::invalid(f, m.to_string()));
        assert_eq!(
            w("password_confirm", "does not match the password"),
            "The passwords do not match."
        );
        assert_eq!(
            w("password", "must be at least 12 characters long"),
            "The password must be at least 12 characters long."
        );
        assert_eq!(
            w("roles", "give at least one role (e.g. \"user\")"),
            "Give at least one role (e.g. \"user\")."
        );
        assert!(
            w("mfa.roles", "name at least one role when mode is \"roles\"")
                .starts_with("Choose at least one role")
        );
        assert_eq!(w("email", "is required"), "The e-mail address is required.");
        assert!(!w("ip_allowlist", "\"10.0.0.0/33\" is not a CIDR").contains("ip_allowlist:"));
    }

    #[test]
    fn a_failed_form_gets_back_what_was_typed_and_the_sentence_beside_its_field() {
        let html = r#"<form method="post" action="/other"><input type="text" name="name"></form>
<details class="panel"><summary>Edit</summary>
<form method="post" action="/x" class="stack">
<input type="hidden" name="csrf_token" value="t">
<label>Name <input type="text" name="name" required></label>
<label>Password <input type="password" name="password"></label>
<fieldset><legend>Scopes</legend><label class="check"><input type="checkbox" name="scope" value="a:b"> a</label><label class="check"><input type="checkbox" name="scope" value="c:d" checked> c</label></fieldset>
<label>IPs <textarea name="ip_allowlist" rows="2"></textarea></label>
<select name="ip_mode"><option value="block" selected>b</option><option value="warn">w</option></select>
</form></details>"#;
        let posted: Vec<(String, String)> = [
            ("csrf_token", "zzz"),
            ("name", "ci <bot>"),
            ("password", "secret-pw"),
            ("scope", "a:b"),
            ("ip_allowlist", "10.0.0.0/33"),
            ("ip_mode", "warn"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let out = mark_form(
            html,
            "/x",
            Some("ip_allowlist"),
            "The IP allowlist is bad.",
            Some(&posted),
        );
        let (other, form) = out.split_at(out.find("<details").unwrap());
        assert!(
            !other.contains("ci &lt;bot&gt;"),
            "only the posted form: {other}"
        );
        assert!(
            form.contains(r#"name="name" required value="ci &lt;bot&gt;""#),
            "{form}"
        );
        assert!(!form.contains("secret-pw") && form.contains(r#"value="t""#));
        assert!(
            form.contains(r#"value="a:b" checked"#) && !form.contains(r#"value="c:d" checked"#)
        );
        assert!(form.contains(">10.0.0.0/33</textarea><small class=\"field-error\" id=\"field-error\">The IP allowlist is bad.</small>"), "{form}");
        assert!(form.contains(r#"<textarea name="ip_allowlist" rows="2" aria-invalid="true""#));
        assert!(
            form.contains(r#"<option value="warn" selected>"#)
                && !form.contains(r#"value="block" selected"#)
        );
        assert!(form.starts_with("<details class=\"panel\" open>"), "{form}");
        // A checkbox group's sentence goes after the group.
        let out = mark_form(html, "/x", Some("scopes"), "Pick one.", None);
        assert!(out.contains("c</label><small class=\"field-error\" id=\"field-error\">Pick one.</small></fieldset>"), "{out}");
        // No such form: unchanged.
        assert_eq!(
            mark_form(html, "/nope", Some("name"), "x", Some(&posted)),
            html
        );
    }

    #[test]
    fn percent_handling_matches_the_hand_written_encoders() {
        assert_eq!(enc("a-b_c.d~e/f g?é%"), "a-b_c.d~e%2Ff%20g%3F%C3%A9%25");
        assert_eq!(enc_path("/a b/c?d"), "/a%20b/c%3Fd");
        assert_eq!(percent_decode(b"%41%4a%zz%4"), b"AJ%zz%4".to_vec());
    }
}
