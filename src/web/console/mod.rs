//! The admin console's pages, one file per page area; this file only
//! registers their routes (in the order they have always had: actix takes
//! the first match).

mod account;
mod audit;
mod clients;
mod dashboard;
mod keys;
mod members;
mod mfa;
mod reauth;
mod secrets;
mod settings;
mod sso;
mod streaming;
mod tls;
mod users;
mod workspace_view;
mod workspaces;

use actix_web::web;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    workspace_routes(cfg);
    sso::routes(cfg);
    cfg.route("/", web::get().to(dashboard::root))
        .route("/admin", web::get().to(dashboard::dashboard))
        .route("/admin/users", web::get().to(users::users))
        .route("/admin/users", web::post().to(users::users_create))
        .route("/admin/users/{id}", web::get().to(users::user_detail))
        .route("/admin/users/{id}", web::post().to(users::user_edit))
        .route(
            "/admin/users/{id}/disable",
            web::post().to(users::user_disable),
        )
        .route(
            "/admin/users/{id}/enable",
            web::post().to(users::user_enable),
        )
        .route(
            "/admin/users/{id}/delete",
            web::get().to(users::user_delete_confirm),
        )
        .route(
            "/admin/users/{id}/delete",
            web::post().to(users::user_delete),
        )
        .route(
            "/admin/users/{id}/password",
            web::post().to(users::user_password),
        )
        .route(
            "/admin/users/{id}/unlock",
            web::post().to(users::user_unlock),
        )
        .route("/admin/account", web::get().to(account::account))
        .route(
            "/admin/account/password",
            web::post().to(account::account_password),
        )
        .route("/admin/account/mfa/totp", web::post().to(mfa::totp_start))
        .route("/admin/account/mfa/totp", web::get().to(mfa::totp_page))
        .route(
            "/admin/account/mfa/totp/confirm",
            web::post().to(mfa::totp_confirm),
        )
        .route(
            "/admin/account/mfa/recovery",
            web::post().to(mfa::recovery_new),
        )
        .route(
            "/admin/account/mfa/email",
            web::post().to(mfa::code_start_email),
        )
        .route(
            "/admin/account/mfa/sms",
            web::post().to(mfa::code_start_sms),
        )
        .route(
            "/admin/account/mfa/code/confirm",
            web::post().to(mfa::code_confirm),
        )
        .route("/admin/account/mfa/remove", web::post().to(mfa::mfa_remove))
        .route(
            "/admin/account/mfa/code",
            web::post().to(mfa::proof_code_send),
        )
        .route(
            "/admin/users/{id}/mfa/reset",
            web::post().to(users::user_mfa_reset),
        )
        .route(
            "/admin/users/{id}/sessions/end",
            web::post().to(users::user_end_sessions),
        )
        .route(
            "/admin/users/{id}/sso-links/reapprove",
            web::post().to(users::user_link_reapprove),
        )
        .route(
            "/admin/account/mfa/required",
            web::get().to(reauth::mfa_required_page),
        )
        .route("/admin/reauth", web::get().to(reauth::reauth_page))
        .route("/admin/reauth", web::post().to(reauth::reauth_post))
        .route("/admin/reauth/send", web::post().to(reauth::reauth_send))
        .route(
            "/admin/settings/audit/streaming",
            web::get().to(streaming::streaming_page),
        )
        .route(
            "/admin/settings/audit/streaming",
            web::post().to(streaming::streaming_create),
        )
        .route(
            "/admin/settings/audit/streaming/{id}",
            web::post().to(streaming::streaming_update),
        )
        .route(
            "/admin/settings/audit/streaming/{id}/delete",
            web::post().to(streaming::streaming_delete),
        )
        .route(
            "/admin/settings/audit/streaming/{id}/test",
            web::post().to(streaming::streaming_test),
        )
        .route(
            "/admin/settings/security",
            web::get().to(settings::settings_page),
        )
        .route(
            "/admin/settings/security",
            web::post().to(settings::settings_post),
        )
        .route(
            "/admin/account/sessions/end-others",
            web::post().to(account::end_other_sessions),
        )
        .route(
            "/admin/account/sessions/{id}/end",
            web::post().to(account::end_session),
        )
        .route("/admin/audit", web::get().to(audit::audit_page))
        .route("/admin/keys", web::get().to(keys::keys_page))
        .route("/admin/settings/tls", web::get().to(tls::tls_page))
        .route(
            "/admin/keys/rotate",
            web::get().to(keys::keys_rotate_confirm),
        )
        .route("/admin/keys/rotate", web::post().to(keys::keys_rotate));
}

/// One workspace's pages (`workspaces`, `members`, `clients`, `secrets`).
fn workspace_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/admin/workspaces/{id}/secrets",
        web::get().to(secrets::show),
    )
    .route(
        "/admin/workspaces/{id}/secrets",
        web::post().to(secrets::write),
    )
    .route(
        "/admin/workspaces/{id}/secrets/delete",
        web::post().to(secrets::delete),
    )
    .route(
        "/admin/workspaces/{id}/secrets/undelete",
        web::post().to(secrets::undelete),
    )
    .route(
        "/admin/workspaces/{id}/secrets/destroy",
        web::get().to(secrets::destroy_confirm),
    )
    .route(
        "/admin/workspaces/{id}/secrets/destroy",
        web::post().to(secrets::destroy),
    )
    .route(
        "/admin/workspaces/{id}/secrets/reveal",
        web::post().to(secrets::reveal),
    );
    cfg.route("/admin/workspaces", web::get().to(workspaces::list))
        .route("/admin/workspaces", web::post().to(workspaces::create))
        .route("/admin/workspaces/{id}", web::get().to(workspaces::show))
        .route(
            "/admin/workspaces/{id}/rename",
            web::post().to(workspaces::rename),
        )
        .route(
            "/admin/workspaces/{id}/session",
            web::post().to(workspaces::session_limits),
        )
        .route(
            "/admin/workspaces/{id}/delete",
            web::get().to(workspaces::delete_confirm),
        )
        .route(
            "/admin/workspaces/{id}/delete",
            web::post().to(workspaces::delete),
        )
        .route(
            "/admin/workspaces/{id}/members",
            web::post().to(members::add_member),
        )
        .route(
            "/admin/workspaces/{id}/members/{user}/remove",
            web::post().to(members::remove_member),
        )
        .route(
            "/admin/workspaces/{id}/users",
            web::post().to(members::create_member),
        )
        .route(
            "/admin/workspaces/{id}/roles",
            web::post().to(members::save_role),
        )
        .route(
            "/admin/workspaces/{id}/roles/{item}",
            web::post().to(members::save_role),
        )
        .route(
            "/admin/workspaces/{id}/groups",
            web::post().to(members::save_group),
        )
        .route(
            "/admin/workspaces/{id}/groups/{item}",
            web::post().to(members::save_group),
        )
        .route(
            "/admin/workspaces/{id}/apps",
            web::post().to(clients::create_app),
        )
        .route(
            "/admin/workspaces/{id}/apps/{item}",
            web::post().to(clients::update_app),
        )
        .route(
            "/admin/workspaces/{id}/apps/{app}/keys",
            web::post().to(clients::create_key),
        )
        .route(
            "/admin/workspaces/{id}/apps/{app}/keys/{key}/delete",
            web::get().to(clients::key_delete_confirm),
        )
        .route(
            "/admin/workspaces/{id}/apps/{app}/keys/{key}/delete",
            web::post().to(clients::key_delete),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts",
            web::post().to(clients::create_sa),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}",
            web::post().to(clients::update_sa),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}/secret",
            web::get().to(clients::sa_secret_confirm),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}/secret",
            web::post().to(clients::sa_secret),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}/disable",
            web::post().to(clients::sa_disable),
        )
        .route(
            "/admin/workspaces/{id}/service-accounts/{item}/enable",
            web::post().to(clients::sa_enable),
        )
        .route(
            "/admin/workspaces/{id}/widget-keys",
            web::post().to(clients::create_widget),
        )
        .route(
            "/admin/workspaces/{id}/{kind}/{item}/delete",
            web::get().to(clients::item_delete_confirm),
        )
        .route(
            "/admin/workspaces/{id}/{kind}/{item}/delete",
            web::post().to(clients::item_delete),
        );
}
