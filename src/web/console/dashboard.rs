//! The console's front page: counts and the latest audit events.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::access::Permission;
use crate::audit;
use crate::identity::{self};
use crate::store::Reader;
use crate::web::AppState;
use crate::web::extract::{ConsoleUser, require};
use crate::web::html::{EventRow, Nav, PageResult, nav, redirect, render};

pub(super) async fn root() -> HttpResponse {
    redirect("/admin")
}

// ---------------------------------------------------------------- dashboard

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(super) struct DashboardPage {
    nav: Nav,
    users_total: usize,
    users_disabled: usize,
    admins: usize,
    failed_logins: usize,
    key_version: u32,
    audit_events: u64,
    rows: Vec<EventRow>,
}

pub(super) async fn dashboard(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
) -> PageResult {
    if !u.user.is_admin() {
        return Ok(redirect("/admin/account"));
    }
    require(&st, &req, &u, Permission::ViewConsole)?;
    let r = st.svc.store.read()?;
    let (all, total) = identity::list(&r, "", 0, usize::MAX)?;
    let security = audit::Filter {
        action: Some("auth.".into()),
        ..Default::default()
    };
    let (recent, _) = audit::query(&r, &security, 0, 10)?;
    let since = st.svc.now() - 86_400;
    let failed = audit::Filter {
        action: Some("auth.login".into()),
        outcome: Some("failure".into()),
        since: Some(crate::clock::rfc3339(since)),
        ..Default::default()
    };
    let (failed_rows, _) = audit::query(&r, &failed, 0, 10_000)?;
    let key_version = st.svc.store.active_key_version()?;
    let page = DashboardPage {
        nav: nav(&u, "dashboard"),
        users_total: total,
        users_disabled: all.iter().filter(|u| u.disabled).count(),
        admins: all.iter().filter(|u| u.is_admin()).count(),
        failed_logins: failed_rows.len(),
        key_version,
        audit_events: r.count(crate::store::Table::Audit)?,
        rows: recent.iter().map(EventRow::from).collect(),
    };
    render(StatusCode::OK, &page)
}
