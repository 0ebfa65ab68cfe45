//! Settings → Security → TLS: the certificate being served, its source
//! (files or ACME), renewal, and the last error with the CA's problem
//! document. Shown only: TLS is set in the configuration file.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

use crate::error::Error;
use crate::web::AppState;
use crate::web::api::tls::{TlsDto, dto};
use crate::web::extract::ConsoleUser;
use crate::web::html::{Nav, PageResult, nav, render};

#[derive(Template)]
#[template(path = "settings_tls.html")]
pub(super) struct TlsPage {
    nav: Nav,
    tls: Option<TlsDto>,
}

pub(super) async fn tls_page(
    req: HttpRequest,
    st: web::Data<AppState>,
    u: ConsoleUser,
) -> PageResult {
    let tls = match crate::tls::status_for(&st.svc, &u.actor(&req)) {
        Ok(s) => Some(dto(s)),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    render(
        StatusCode::OK,
        &TlsPage {
            nav: nav(&u, "settings"),
            tls,
        },
    )
}
