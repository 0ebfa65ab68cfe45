//! Issue 11, the fifth attack review (its scripts: reviews/c2 a2, a8, a1,
//! a6, a7): a platform client holding `admin:users` taking a workspace
//! admin's account over (password, e-mail, factors, lock, SSO link,
//! re-enabling, SSO exclusion), an MFA step started before a revocation
//! finished after it, and a stale token loosening a workspace's session
//! limits to stretch a stolen refresh family.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::call;
use crate::authn_sec::enroll_totp;
use crate::common::*;
use crate::f1_sec::sa_token;
use crate::mfa::oathtool;
use crate::sb_sec::{corp, id_of};
use crate::sso::put_json;
use gatehouse::clock::Clock;

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

/// A user with an authenticator; returns (id, TOTP secret).
async fn totp_user(app: &TestApp, owner: &str, email: &str) -> (String, String) {
    let id = id_of(&app.create_user(owner, email, "user").await);
    let t = app.api_login(email, PW).await;
    let (secret, _) = enroll_totp(app, t["access_token"].as_str().unwrap()).await;
    (id, secret)
}

/// Finishes an API sign-in's MFA step with a fresh TOTP code.
async fn finish_api_mfa(app: &TestApp, mfa_token: &Value, secret: &str) -> (u16, Value) {
    app.clock.advance(30);
    post(
        app,
        "/api/v1/auth/mfa",
        None,
        json!({"mfa_token": mfa_token, "method": "totp", "code": oathtool(secret, app.clock.now())}),
    )
    .await
}

/// a6: the attacker (password and factor) holds an API MFA step; the admin
/// resets the password, or ends the user's sessions. The held step was
/// still finished into fresh tokens. Both revocations now end it.
#[actix_web::test]
async fn finding2_a_held_mfa_step_dies_with_a_password_reset_or_end_sessions() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let (dave, secret) = totp_user(&app, &owner, "dave@example.com").await;

    let step = app.api_login("dave@example.com", PW).await;
    assert!(step["mfa_token"].is_string(), "{step}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{dave}/password"),
        Some(&owner),
        json!({"password": "a-brand-new-pass-42"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = finish_api_mfa(&app, &step["mfa_token"], &secret).await;
    assert_eq!(s, 401, "the held step outlived the password reset: {v}");
    assert!(v.get("access_token").is_none(), "{v}");

    let step = app
        .api_login("dave@example.com", "a-brand-new-pass-42")
        .await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{dave}/sessions/end"),
        Some(&owner),
        json!({}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = finish_api_mfa(&app, &step["mfa_token"], &secret).await;
    assert_eq!(s, 401, "the held step outlived end sessions: {v}");

    // The console's MFA step (its cookie) likewise.
    let (b, r) = app
        .password_step("dave@example.com", "a-brand-new-pass-42")
        .await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/login/mfa"), "{location}");
    let page = b
        .get(app.url("/login/mfa"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{dave}/sessions/end"),
        Some(&owner),
        json!({}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    app.clock.advance(30);
    let r = b
        .post(app.url("/login/mfa"))
        .form(&[
            ("code", oathtool(&secret, app.clock.now()).as_str()),
            ("method", "totp"),
            ("csrf_token", &csrf_from(&page)),
        ])
        .send()
        .await
        .unwrap();
    let to = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    assert_ne!(
        to.as_deref(),
        Some("/admin"),
        "the held console step signed in"
    );
    assert!(to.unwrap_or_default().starts_with("/login"));
    let me = b.get(app.url("/api/v1/me")).send().await.unwrap().status();
    assert_eq!(me.as_u16(), 401);

    // Control: a step started after the revocation still completes.
    let step = app
        .api_login("dave@example.com", "a-brand-new-pass-42")
        .await;
    let (s, v) = finish_api_mfa(&app, &step["mfa_token"], &secret).await;
    assert_eq!(s, 200, "{v}");
}

/// a1: carl's password step (MFA pending) was started before the owner
/// enforced SSO on him, and finished after it into fresh tokens.
#[actix_web::test]
async fn finding2_a_held_mfa_step_dies_when_sso_takes_password_sign_in_away() {
    use gatehouse::store::Table;

    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, "admin2@example.com", "admin").await;
    let (_, secret) = totp_user(&app, &owner, "carl@example.com").await;
    let (s, v) = post(
        &app,
        "/api/v1/sso/connections",
        Some(&owner),
        corp("https://idp-a.example", json!({"id": "corp"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    {
        // A successful test sign-in through the IdP (what enforcement waits for).
        let mut tx = app.svc.store.write().unwrap();
        let mut c = gatehouse::sso::get(&tx, "corp").unwrap();
        c.last_test = Some(gatehouse::sso::TestResult {
            at: T0,
            ok: true,
            error: None,
            claims: json!({}),
            by: OWNER.into(),
        });
        tx.put(Table::SsoConnections, b"corp", &c).unwrap();
        tx.commit().unwrap();
    }
    let settings = |enforcement: &str| json!({"enabled": true, "enforcement": enforcement, "excluded_users": ["admin2@example.com"]});
    let (s, v) = put_json(&app, "/api/v1/sso/settings", &owner, settings("off")).await;
    assert_eq!(s, 200, "{v}");
    let step = app.api_login("carl@example.com", PW).await;
    assert!(step["mfa_token"].is_string(), "{step}");
    let (s, v) = put_json(&app, "/api/v1/sso/settings", &owner, settings("enforced")).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = finish_api_mfa(&app, &step["mfa_token"], &secret).await;
    assert!(
        s == 401 || s == 403,
        "the held step outlived SSO enforcement: {s} {v}"
    );
    assert!(v.get("access_token").is_none(), "{v}");
}

async fn set_limits(
    app: &TestApp,
    ws: &str,
    token: &str,
    idle: Value,
    absolute: Value,
) -> (u16, Value) {
    put_json(
        app,
        &format!("/api/v1/workspaces/{ws}/session-limits"),
        token,
        json!({"idle_timeout_secs": idle, "absolute_lifetime_secs": absolute}),
    )
    .await
}

async fn rotate(app: &TestApp, refresh: &str) -> (u16, Value) {
    post(
        app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await
}

/// a7: a workspace admin's stolen pair, past the re-authentication window:
/// the stale access token cleared the workspace's session limits and so
/// stretched the stolen refresh family past its 120 s. Loosening now needs a
/// recent sign-in, and a family's end is fixed when it starts: a later
/// loosening (or leaving the workspace) does not stretch it.
#[actix_web::test]
async fn finding3_a_stale_token_cannot_loosen_session_limits_to_stretch_a_family() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let mut p = policy("off", &[]);
    p["session"]["reauth_window_secs"] = json!(60);
    let (s, v) = put_policy(&app, &owner, p).await;
    assert_eq!(s, 200, "{v}");
    let (ws, _) = workspace_with_admin(&app, &owner, "limadmin@example.com").await;
    let (s, v) = set_limits(&app, &ws, &owner, json!(120), json!(120)).await;
    assert_eq!(s, 200, "{v}");
    let pair = app.api_login("limadmin@example.com", PW).await;
    let stale = pair["access_token"].as_str().unwrap().to_string();
    let mut refresh = pair["refresh_token"].as_str().unwrap().to_string();
    app.clock.advance(66);

    // Control: the same or tighter limits need no fresh sign-in.
    let (s, v) = set_limits(&app, &ws, &stale, json!(120), json!(120)).await;
    assert_eq!(s, 200, "{v}");
    for (idle, absolute) in [
        (json!(null), json!(null)),
        (json!(120), json!(3600)),
        (json!(null), json!(120)),
    ] {
        let (s, v) = set_limits(&app, &ws, &stale, idle.clone(), absolute.clone()).await;
        assert_ne!(
            s, 200,
            "a stale token loosened the limits to {idle}/{absolute}: {v}"
        );
        assert_eq!(v["error"]["code"], "reauthentication_required", "{v}");
    }

    // Whoever may loosen them (a fresh sign-in) does: the family started
    // under the 120 s limit still ends at 120 s.
    let fresh = app.api_login(OWNER, OWNER_PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = set_limits(&app, &ws, &fresh, json!(null), json!(null)).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = rotate(&app, &refresh).await;
    assert_eq!(s, 200, "{v}");
    refresh = v["refresh_token"].as_str().unwrap().to_string();
    app.clock.advance(64);
    let (s, v) = rotate(&app, &refresh).await;
    assert_eq!(
        s, 401,
        "the family outlived the limit it started under: {v}"
    );
    // A family started now has the installation's lifetime.
    let pair = app.api_login("limadmin@example.com", PW).await;
    let (s, v) = rotate(&app, pair["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{v}");
}
