//! Attack review of the issue-11 repairs (r3 finding 3): a stolen token past
//! the recent-sign-in window cannot mint a second administrator or take over
//! another account through the admin paths — creating an account above
//! `user`, setting someone's password, resetting their factors and changing
//! their role or e-mail all need a sign-in within the window, checked by the
//! domain operation itself (console and API alike).

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::call;
use crate::common::*;

const PW: &str = "amber-meadow-river-77";

#[actix_web::test]
async fn a_token_past_the_reauth_window_cannot_make_an_admin_or_take_over_an_account() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    // The shortest window the policy allows.
    let mut p = policy("off", &[]);
    p["session"]["reauth_window_secs"] = json!(60);
    let (s, v) = put_policy(&app, &owner, p).await;
    assert_eq!(s, 200, "{v}");
    let alice = app.create_user(&owner, "alice@example.com", "admin").await;
    let alice = alice["id"].as_str().unwrap().to_string();
    let bob = app.create_user(&owner, "bob@example.com", "user").await;
    let bob = bob["id"].as_str().unwrap().to_string();
    // The thief's copy of the owner's token, 66 s old: still valid, no longer recent.
    app.clock.advance(66);
    let stale = owner.as_str();
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(
                json!({"email": "helper@example.com", "password": PW, "name": "Helper", "role": "admin"}),
            ),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{alice}/password"),
            Some(json!({"password": "thief-chosen-passphrase-99"})),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{alice}/mfa/reset"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{bob}"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{alice}"),
            Some(json!({"email": "thief@example.net"})),
        ),
    ];
    for (m, path, body) in &attempts {
        let (s, v) = call(&app, m.clone(), path, stale, body.clone()).await;
        assert_eq!(s, 403, "{m} {path}: {v}");
        assert_eq!(
            v["error"]["code"], "reauthentication_required",
            "{m} {path}: {v}"
        );
    }
    // Nothing changed: alice's password still works, bob is still a user, no helper exists.
    app.api_login("alice@example.com", "amber-meadow-river-77")
        .await;
    let fresh = app.api_login(OWNER, OWNER_PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = call(
        &app,
        Method::GET,
        &format!("/api/v1/users/{bob}"),
        &fresh,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["role"], "user", "{v}");
    let (_, list) = call(&app, Method::GET, "/api/v1/users", &fresh, None).await;
    assert!(!list.to_string().contains("helper@example.com"), "{list}");
    // A fresh sign-in does them; a plain user account needs no fresh sign-in.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/users",
        stale,
        Some(
            json!({"email": "plain@example.com", "password": PW, "name": "Plain", "role": "user"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    for (m, path, body) in &attempts {
        let (s, v) = call(&app, m.clone(), path, &fresh, body.clone()).await;
        assert!(s < 300, "{m} {path}: {s} {v}");
    }
}
