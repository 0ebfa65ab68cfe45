//! The console's front page: counts and the latest audit events.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::web::AppState;
use crate::web::extract::ConsoleUser;
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
    let o = crate::overview::dashboard(&st.svc, &u.actor(&req))?;
    let page = DashboardPage {
        nav: nav(&u, "dashboard"),
        users_total: o.users.total,
        users_disabled: o.users.disabled,
        admins: o.users.admins,
        failed_logins: o.failed_sign_ins,
        key_version: o.key_version,
        audit_events: o.audit_events,
        rows: o.recent.iter().map(EventRow::from).collect(),
    };
    render(StatusCode::OK, &page)
}
