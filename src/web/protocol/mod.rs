//! Endpoints other parties call: sign-in pages (login, MFA step, logout,
//! setup, recovery), OAuth 2.0, forward-auth verify and its answer cache, the
//! SSO browser endpoints, and discovery/JWKS. This file only registers their
//! routes.

mod discovery;
mod login;
mod oauth2;
mod setup;
mod sso;
mod verify;
pub mod verify_cache;

use actix_web::web;

pub(crate) use verify::check_credential;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/jwks", web::get().to(discovery::jwks))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(discovery::discovery),
        )
        .route("/oauth2/token", web::post().to(oauth2::token))
        .route("/oauth2/introspect", web::post().to(oauth2::introspect))
        .route("/oauth2/revoke", web::post().to(oauth2::revoke))
        .route("/auth/verify", web::get().to(verify::verify))
        .route("/auth/verify", web::head().to(verify::verify));
    sso::routes(cfg);
    cfg.route("/login", web::get().to(login::login_page))
        .route("/login", web::post().to(login::login_post))
        .route("/login/mfa", web::get().to(login::mfa_page))
        .route("/login/mfa", web::post().to(login::mfa_post))
        .route("/login/mfa/send", web::post().to(login::mfa_send))
        .route(
            "/login/password",
            web::get().to(login::password_step_page_get),
        )
        .route("/login/password", web::post().to(login::password_step_post))
        .route("/logout", web::post().to(login::logout))
        .route("/setup", web::get().to(setup::setup_page))
        .route("/setup", web::post().to(setup::setup_post))
        .route("/recover", web::get().to(setup::recover_page))
        .route("/recover", web::post().to(setup::recover_post));
}
