//! The encryption keys page: data keys and their rotation, and the
//! token-signing keys (shown only; they rotate on their own schedule).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use crate::clock::rfc3339;
use crate::keys;
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, reauth_gate_for};
use crate::web::html::{ConfirmPage, CsrfForm, Nav, PageResult, nav, redirect, render};
use crate::web::notice::{KeysNotice, Notice, notice_text, notice_url};

// ---------------------------------------------------------------- keys

pub struct KeyRow {
    pub version: u32,
    pub active: bool,
    pub created: String,
    pub records: u64,
}

pub struct SigningRow {
    pub kid: String,
    pub algorithm: &'static str,
    pub created: String,
    pub active: bool,
    /// "next rotation …" for the active key, "retires …" for an older one.
    pub retiring: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
pub(super) struct KeysPage {
    nav: Nav,
    rows: Vec<KeyRow>,
    signing: Vec<SigningRow>,
    total: u64,
    backlog: u64,
    percent: u64,
    notice: Option<String>,
}

pub(super) async fn keys_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<Notice<KeysNotice>>,
) -> PageResult {
    let status = keys::status_for(&st.svc, &u.actor(&req))?;
    let total: u64 = status.iter().map(|k| k.records).sum();
    let backlog: u64 = status.iter().filter(|k| !k.active).map(|k| k.records).sum();
    let rows = status
        .iter()
        .rev()
        .map(|k| KeyRow {
            version: k.version,
            active: k.active,
            created: rfc3339(k.created_at),
            records: k.records,
        })
        .collect();
    let percent = ((total - backlog) * 100).checked_div(total).unwrap_or(100);
    let days = i64::from(st.svc.settings.tokens.signing_key_rotation_days);
    let signing = st
        .svc
        .signer()
        .key_info()
        .into_iter()
        .map(|k| SigningRow {
            retiring: match (k.active, k.retire_at) {
                (_, Some(r)) => format!("retires {}", rfc3339(r)),
                (true, None) if days > 0 => {
                    format!("next rotation {}", rfc3339(k.created_at + days * 86_400))
                }
                _ => "not scheduled".into(),
            },
            kid: k.kid,
            algorithm: k.algorithm,
            created: rfc3339(k.created_at),
            active: k.active,
        })
        .collect();
    render(
        StatusCode::OK,
        &KeysPage {
            nav: nav(&u, "keys"),
            rows,
            signing,
            total,
            backlog,
            percent,
            notice: notice_text(q.notice),
        },
    )
}

pub(super) async fn keys_rotate_confirm(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
) -> PageResult {
    keys::may_rotate(&st.svc, &u.actor(&req))?;
    let p = ConfirmPage {
        nav: nav(&u, "keys"),
        title: "Rotate the data key".into(),
        message: "A new data key becomes active for every new write, and every existing record is re-sealed under it in the background. Sign-in keeps working throughout. Older keys stay available to read records until re-sealing finishes.".into(),
        action: "/admin/keys/rotate".into(),
        button: "Rotate now".into(),
        cancel: "/admin/keys".into(),
    };
    render(StatusCode::OK, &p)
}

pub(super) async fn keys_rotate(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    f: web::Form<CsrfForm>,
) -> PageResult {
    u.check_csrf(&f.csrf_token)?;
    let kept = crate::web::KeptForm {
        action: "/admin/keys/rotate".into(),
        purpose: "to rotate the data key".into(),
        fields: Vec::new(),
        ..Default::default()
    };
    if let Some(r) = reauth_gate_for(&st, &u, "/admin/keys", kept)? {
        return Ok(r);
    }
    keys::start_rotation(&st.svc, &u.actor(&req))?;
    Ok(redirect(&notice_url("/admin/keys", KeysNotice::Rotated)))
}
