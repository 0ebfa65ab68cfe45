//! The audit log page, with its filters and table fragment.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use crate::audit;
use crate::error::Error;
use crate::web::AppState;
use crate::web::extract::ConsoleUser;
use crate::web::html::{EventRow, Nav, PER_PAGE, PageResult, enc, is_htmx, nav, render};

// ---------------------------------------------------------------- audit

#[derive(Template)]
#[template(path = "audit.html")]
pub(super) struct AuditPageT {
    nav: Nav,
    rows: Vec<EventRow>,
    actor: String,
    action: String,
    outcome: String,
    category: String,
    since: String,
    until: String,
    page: usize,
    more: bool,
    query: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "audit_table.html")]
pub(super) struct AuditTable {
    rows: Vec<EventRow>,
    page: usize,
    more: bool,
    query: String,
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    category: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<usize>,
}

pub(super) async fn audit_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
    q: web::Query<AuditQuery>,
) -> PageResult {
    let q = q.into_inner();
    let filter = audit::Filter {
        actor: q.actor.clone(),
        action: q.action.clone(),
        outcome: q.outcome.clone(),
        category: q.category.clone(),
        since: q.since.clone(),
        until: q.until.clone(),
        workspace: None,
    };
    let page = q.page.unwrap_or(1).max(1);
    let paging = || Ok(((page - 1) * PER_PAGE, PER_PAGE));
    let (rows, more, error) =
        match crate::access::audit_page(&st.svc, &u.actor(&req), &filter, paging) {
            Ok((ev, more)) => (EventRow::rows(&st, &ev)?, more, None),
            Err(e @ Error::Invalid { .. }) => {
                (Vec::new(), false, Some(crate::web::html::words(&e)))
            }
            Err(e) => return Err(e.into()),
        };
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let query = format!(
        "actor={}&action={}&outcome={}&category={}&since={}&until={}",
        enc(&s(&q.actor)),
        enc(&s(&q.action)),
        enc(&s(&q.outcome)),
        enc(&s(&q.category)),
        enc(&s(&q.since)),
        enc(&s(&q.until))
    );
    if is_htmx(&req) && error.is_none() {
        return render(
            StatusCode::OK,
            &AuditTable {
                rows,
                page,
                more,
                query,
            },
        );
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let p = AuditPageT {
        nav: nav(&u, "audit"),
        rows,
        actor: s(&q.actor),
        action: s(&q.action),
        outcome: s(&q.outcome),
        category: s(&q.category),
        since: s(&q.since),
        until: s(&q.until),
        page,
        more,
        query,
        error,
    };
    render(status, &p)
}
