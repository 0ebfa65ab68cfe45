//! Issue 11, the fifth attack review (its scripts: reviews/c2 a2, a8, a1,
//! a6, a7): a platform client holding `admin:users` taking a workspace
//! admin's account over (password, e-mail, factors, lock, SSO link,
//! re-enabling, SSO exclusion), an MFA step started before a revocation
//! finished after it, and a stale token loosening a workspace's session
//! limits to stretch a stolen refresh family.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::call;
use crate::common::*;
use crate::f1_sec::sa_token;
use crate::sb_sec::{corp, id_of};
use crate::sso::put_json;

const PW: &str = "amber-meadow-river-77";

/// A workspace and its admin (platform role `user`); returns (workspace, admin id).
async fn workspace_with_admin(app: &TestApp, owner: &str, email: &str) -> (String, String) {
    let (s, w) = post(
        app,
        "/api/v1/workspaces",
        Some(owner),
        json!({"name": format!("Ws {email}")}),
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let ws = id_of(&w);
    let wa = id_of(&app.create_user(owner, email, "user").await);
    let (s, v) = post(
        app,
        &format!("/api/v1/workspaces/{ws}/members"),
        Some(owner),
        json!({"user_id": wa, "roles": ["workspace_admin"]}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    (ws, wa)
}

/// a2, a8: a helpdesk client holding `admin:users` (and `manage:security`)
/// but none of a workspace admin's grants could reset their password,
/// e-mail or factors, unlock them, link them to its own IdP, end their
/// sessions, re-enable them, and take them out of the SSO-excluded users —
/// each a way onto (or off) the account. `guard_credentials` now asks for
/// everything the account holds in each of its workspaces.
#[actix_web::test]
async fn finding1_admin_users_alone_does_not_take_over_a_workspace_admin() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, "admin2@example.com", "admin").await;
    let (_ws, wa) = workspace_with_admin(&app, &owner, "wsadmin@example.com").await;
    let plain_user = id_of(&app.create_user(&owner, "plain@example.com", "user").await);
    let (s, v) = post(
        &app,
        "/api/v1/sso/connections",
        Some(&owner),
        corp("https://idp-a.example", json!({"id": "corp"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let helpdesk = sa_token(
        &app,
        &owner,
        "helpdesk",
        &["admin:users", "manage:security"],
    )
    .await;

    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            format!("/api/v1/users/{wa}/password"),
            Some(json!({"password": "helpdesk-owns-this-1"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{wa}"),
            Some(json!({"email": "wsadmin-moved@example.com"})),
        ),
        (Method::POST, format!("/api/v1/users/{wa}/mfa/reset"), None),
        (Method::POST, format!("/api/v1/users/{wa}/unlock"), None),
        (
            Method::POST,
            format!("/api/v1/users/{wa}/sessions/end"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{wa}/sso-links"),
            Some(json!({"connection": "corp", "subject": "bob@corp.example"})),
        ),
        (Method::POST, format!("/api/v1/users/{wa}/disable"), None),
    ];
    for (m, path, body) in attempts {
        let (s, v) = call(&app, m.clone(), &path, &helpdesk, body).await;
        assert_eq!(s, 403, "{m} {path}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("workspace_admin") || msg.contains("do not hold"),
            "{path}: {v}"
        );
    }
    // Nothing changed: the workspace admin signs in with their own password.
    let t = app.api_login("wsadmin@example.com", PW).await;
    assert!(t["access_token"].is_string(), "{t}");

    // Re-enabling gives back what the account holds: the same rule.
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{wa}/disable"),
        Some(&owner),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{wa}/enable"),
        Some(&helpdesk),
        json!({}),
    )
    .await;
    assert_eq!(s, 403, "helpdesk re-enabled a workspace admin: {v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{wa}/enable"),
        Some(&owner),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // Taking a linked workspace admin out of the excluded users revives the link.
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{wa}/sso-links"),
        Some(&owner),
        json!({"connection": "corp", "subject": "wsadmin"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off",
               "excluded_users": ["admin2@example.com", "wsadmin@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &helpdesk,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 403, "helpdesk revived a workspace admin's link: {v}");

    // A user without workspace grants stays the helpdesk's to help.
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{plain_user}/password"),
        Some(&helpdesk),
        json!({"password": "helpdesk-set-this-2"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    // Whoever holds everything the admin holds (a platform admin) may.
    let admin2 = app.api_login("admin2@example.com", PW).await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{wa}/password"),
        Some(admin2["access_token"].as_str().unwrap()),
        json!({"password": "platform-admin-set-3"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
}
