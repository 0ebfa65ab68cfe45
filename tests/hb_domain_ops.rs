//! Domain operations check their own permission: called directly with an
//! actor who lacks it (no handler in between), each one refuses and changes
//! nothing.

use gatehouse::access::credentials::{self as creds, NewServiceAccount};
use gatehouse::access::{Actor, Principal, workspaces as wss};
use gatehouse::audit::Source;
use gatehouse::identity::{self, UserId};

use crate::common::*;

/// A signed-in plain user (no workspace role, no platform permission) who
/// signed in just now, and the app.
async fn weak_actor() -> (TestApp, Actor) {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let v = app.create_user(&owner, "weak@example.com", "user").await;
    let uid = UserId::parse(v["id"].as_str().unwrap()).unwrap();
    let user = identity::get_cached(&app.svc, &uid).unwrap();
    let actor = Actor::new(
        Principal::User {
            user,
            session: None,
        },
        Source::default(),
        Some(app.svc.now()),
    );
    (app, actor)
}

/// Refused as `Forbidden` (the crate's error type is not public: its
/// `Debug` names the variant).
fn forbidden<T, E: std::fmt::Debug>(r: Result<T, E>) -> bool {
    matches!(r, Err(e) if format!("{e:?}").starts_with("Forbidden("))
}

#[actix_web::test]
async fn workspace_ops_refuse_an_actor_without_the_permission() {
    let (app, weak) = weak_actor().await;
    let svc = &app.svc;
    let local = Actor::local("test");
    let ws = wss::create(svc, &local, "Acme").unwrap();
    let before = wss::list(svc, &local.principal).unwrap().len();

    assert!(forbidden(wss::create(svc, &weak, "Mine")));
    assert!(forbidden(wss::rename(svc, &weak, &ws.id, "Taken")));
    assert!(forbidden(wss::delete(svc, &weak, &ws.id)));
    assert!(forbidden(wss::members(svc, &weak, &ws.id)));
    let uid = weak.principal.user_id().unwrap().clone();
    assert!(forbidden(wss::set_member(
        svc,
        &weak,
        &ws.id,
        &uid,
        &["admin".to_string()]
    )));
    assert!(forbidden(wss::create_role(
        svc,
        &weak,
        &ws.id,
        "r",
        "",
        &["manage:users".to_string()]
    )));
    assert!(forbidden(wss::save_group(
        svc,
        &weak,
        None,
        Some(&ws.id),
        Some("g"),
        None,
        None
    )));

    assert_eq!(wss::list(svc, &local.principal).unwrap().len(), before);
    assert_eq!(wss::show(svc, &local, &ws.id).unwrap().name, "Acme");
    assert!(wss::members(svc, &local, &ws.id).unwrap().is_empty());
}

#[actix_web::test]
async fn credential_ops_refuse_an_actor_without_the_permission() {
    let (app, weak) = weak_actor().await;
    let svc = &app.svc;
    let local = Actor::local("test");
    let ws = wss::create(svc, &local, "Acme").unwrap();
    let scopes = ["read:agents".to_string()];
    let a = creds::create_app(svc, &local, &ws.id, "app", &scopes).unwrap();

    assert!(forbidden(creds::create_app(
        svc, &weak, &ws.id, "x", &scopes
    )));
    assert!(forbidden(creds::get_app(svc, &weak, &a.id)));
    assert!(forbidden(creds::delete_app(svc, &weak, &a.id)));
    assert!(forbidden(creds::create_key(
        svc,
        &weak,
        &a.id,
        Some("k"),
        None
    )));
    assert!(forbidden(creds::keys(svc, &weak, &a.id)));
    assert!(forbidden(creds::create_service_account(
        svc,
        &weak,
        NewServiceAccount {
            workspace: Some(&ws.id),
            name: "sa",
            description: None,
            scopes: &scopes,
            ip_allowlist: &[],
            ip_mode: Default::default(),
        },
    )));
    assert!(forbidden(creds::create_widget_key(
        svc,
        &weak,
        &ws.id,
        "w",
        "bot",
        &["https://example.com".to_string()]
    )));

    assert_eq!(creds::get_app(svc, &local, &a.id).unwrap().name, "app");
    assert!(creds::keys(svc, &local, &a.id).unwrap().is_empty());
    assert!(
        creds::service_accounts(svc, &local.principal)
            .unwrap()
            .is_empty()
    );
    assert!(
        creds::widget_keys(svc, &local.principal)
            .unwrap()
            .is_empty()
    );
}

#[actix_web::test]
async fn the_audit_read_refuses_an_actor_without_read_audit() {
    let (app, weak) = weak_actor().await;
    let filter = gatehouse::audit::Filter::default();
    let paged = gatehouse::access::audit_page(&app.svc, &weak, &filter, || Ok((0, 10)));
    assert!(forbidden(paged));
    let local = Actor::local("test");
    let (events, _) =
        gatehouse::access::audit_page(&app.svc, &local, &filter, || Ok((0, 10))).unwrap();
    assert!(!events.is_empty());
}

/// Creating a credential is sensitive whoever calls the operation: the owner
/// themselves, signed in longer ago than the re-authentication window, is
/// sent to confirm it's them (console and API share this check).
#[actix_web::test]
async fn creating_a_credential_needs_a_recent_sign_in_in_the_operation() {
    let (app, _) = weak_actor().await;
    let svc = &app.svc;
    let local = Actor::local("test");
    let ws = wss::create(svc, &local, "Acme").unwrap();
    let token = app.api_login(OWNER, OWNER_PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me: serde_json::Value = plain()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uid = UserId::parse(me["id"].as_str().unwrap()).unwrap();
    let stale = Actor::new(
        Principal::User {
            user: identity::get_cached(&app.svc, &uid).unwrap(),
            session: None,
        },
        Source::default(),
        Some(app.svc.now() - 601),
    );
    let scopes = vec!["use:agents".to_string()];
    let r = creds::create_service_account(
        svc,
        &stale,
        NewServiceAccount {
            workspace: Some(&ws.id),
            name: "sa",
            description: None,
            scopes: &scopes,
            ip_allowlist: &[],
            ip_mode: Default::default(),
        },
    );
    assert!(
        matches!(&r, Err(e) if format!("{e:?}") == "ReauthRequired"),
        "{:?}",
        r.map(|_| ())
    );
    assert!(
        creds::service_accounts(svc, &local.principal)
            .unwrap()
            .is_empty()
    );
}
