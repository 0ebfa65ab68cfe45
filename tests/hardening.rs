//! Sign-in hardening: per-account lockout (same answer as a wrong password,
//! doubling, admin unlock, recovery) and per-IP rate limits with trusted proxies.

use serde_json::{Value, json};

use crate::common::*;

async fn attempt(app: &TestApp, email: &str, pw: &str) -> (u16, String) {
    let r = plain()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": pw}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[actix_web::test]
async fn five_failures_lock_the_account_with_the_same_answer_and_locks_double() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let user = app.create_user(&token, "ivan@example.com", "user").await;
    let pw = "amber-meadow-river-77";
    let wrong = attempt(&app, "ivan@example.com", "wrong-password-000").await;
    for _ in 0..4 {
        assert_eq!(
            attempt(&app, "ivan@example.com", "wrong-password-000").await,
            wrong
        );
    }
    // Locked: the right password gets exactly the wrong-password answer.
    assert_eq!(attempt(&app, "ivan@example.com", pw).await, wrong);
    let locks = app.audit(&token, "action=auth.lockout").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0]["target"], user["id"]);
    let reasons: Vec<String> = app
        .audit(&token, "action=auth.login&outcome=failure&per_page=1")
        .await
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, ["account_locked"]);
    let listed: Value = plain()
        .get(app.url(&format!("/api/v1/users/{}", user["id"].as_str().unwrap())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["locked_until"].is_string());
    // 15 minutes later it opens again.
    app.clock.advance(15 * 60 + 1);
    assert_eq!(attempt(&app, "ivan@example.com", pw).await.0, 200);
    // A success resets the count, so a second series locks for 15 minutes again...
    for _ in 0..5 {
        attempt(&app, "ivan@example.com", "wrong-password-000").await;
    }
    app.clock.advance(15 * 60 + 1);
    // ...and a repeat without a success in between doubles: 30 minutes.
    for _ in 0..5 {
        attempt(&app, "ivan@example.com", "wrong-password-000").await;
    }
    app.clock.advance(16 * 60);
    assert_eq!(
        attempt(&app, "ivan@example.com", pw).await.0,
        401,
        "still locked after 16 of 30 minutes"
    );
    // An admin unlocks at once (audited). (The earlier token expired meanwhile.)
    let token = app.api_login(OWNER, OWNER_PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = plain()
        .post(app.url(&format!(
            "/api/v1/users/{}/unlock",
            user["id"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.unwrap()["locked_until"].is_null());
    assert_eq!(attempt(&app, "ivan@example.com", pw).await.0, 200);
    assert_eq!(app.audit(&token, "action=user.unlock").await.len(), 1);
}

#[actix_web::test]
async fn a_locked_owner_recovers_with_the_recovery_link_and_the_console_unlocks() {
    let app = spawn().await;
    let token = app.owner_token().await;
    for _ in 0..5 {
        attempt(&app, OWNER, "wrong-password-000").await;
    }
    assert_eq!(attempt(&app, OWNER, OWNER_PW).await.0, 401);
    let link = gatehouse::authn::recover_link(&app.svc, OWNER, &Default::default()).unwrap();
    let token_part = link.split("token=").nth(1).unwrap().to_string();
    gatehouse::users::recover(
        &app.svc,
        &token_part,
        gatehouse::authn::password::Password::new("fresh-willow-canyon-6"),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(attempt(&app, OWNER, "fresh-willow-canyon-6").await.0, 200);
    // The recovery ended the access token issued before it (issue 11, finding 6).
    assert_eq!(
        plain()
            .get(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let token = app.api_login(OWNER, "fresh-willow-canyon-6").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // The console shows a lock on the user page and lifts it.
    let u = app.create_user(&token, "judy@example.com", "user").await;
    for _ in 0..5 {
        attempt(&app, "judy@example.com", "wrong-password-000").await;
    }
    let (c, csrf) = app.browser_login(OWNER, "fresh-willow-canyon-6").await;
    let id = u["id"].as_str().unwrap();
    let html = c
        .get(app.url(&format!("/admin/users/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // "locked until …" in place of "active" (issue 19 point 4; was "Locked").
    assert!(html.contains("locked until") && html.contains("id=\"unlock\""));
    let r = c
        .post(app.url(&format!("/admin/users/{id}/unlock")))
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        attempt(&app, "judy@example.com", "amber-meadow-river-77")
            .await
            .0,
        200
    );
}

#[actix_web::test]
async fn sign_in_is_rate_limited_per_client_ip_and_spoofed_forwarding_is_ignored() {
    let app = spawn_with(|s| {
        s.rate_limit.auth_per_minute = 6;
        s.rate_limit.auth_burst = 3;
    })
    .await;
    let c = plain();
    let body = json!({"email": "x@example.com", "password": "wrong-password-000"});
    for _ in 0..3 {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "X-Forwarded-For from an untrusted peer does not buy a new bucket"
    );
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limited"
    );
    // The browser form and refresh share the bucket; other endpoints do not.
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("email", "x@example.com"),
            ("password", "x"),
            ("csrf_token", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let r = c
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": "ghr_x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        c.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(c.get(app.url("/login")).send().await.unwrap().status(), 200);
}

#[actix_web::test]
async fn a_trusted_proxy_forwards_the_client_address() {
    let app = spawn_with(|s| {
        s.rate_limit.auth_per_minute = 6;
        s.rate_limit.auth_burst = 2;
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let c = plain();
    let body = json!({"email": "x@example.com", "password": "wrong-password-000"});
    let send = |xff: &'static str| {
        c.post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", xff)
            .json(&body)
            .send()
    };
    assert_eq!(send("203.0.113.7").await.unwrap().status(), 401);
    assert_eq!(send("203.0.113.7").await.unwrap().status(), 401);
    assert_eq!(send("203.0.113.7").await.unwrap().status(), 429);
    // A client cannot prepend its own choice: the right-most untrusted hop counts.
    assert_eq!(send("192.0.2.1, 203.0.113.7").await.unwrap().status(), 429);
    assert_eq!(
        send("203.0.113.8").await.unwrap().status(),
        401,
        "another client has its own bucket"
    );
    // Audit records the forwarded client address.
    let events = gatehouse::audit::query(
        &app.svc.store.read().unwrap(),
        &gatehouse::audit::Filter {
            action: Some("auth.login".into()),
            ..Default::default()
        },
        0,
        1,
    )
    .unwrap()
    .0;
    assert_eq!(events[0].source_ip.as_deref(), Some("203.0.113.8"));
}
