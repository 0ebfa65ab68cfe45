//! Issue 11, authentication findings: every password check counts, is
//! limited and audited (19); removing or replacing a factor needs the
//! password and a current factor (20, 21); a locked account spends nothing
//! (23); code sends are throttled per user with a daily cap (15); the
//! per-address limits cover every code and password endpoint and IPv6
//! networks (22).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::common::*;
use crate::mfa::oathtool;
use gatehouse::clock::Clock;

const IVAN: &str = "ivan@example.com";
const IVAN_PW: &str = "amber-meadow-river-77";

/// A DELETE with a JSON body and a bearer token.
async fn delete(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = plain()
        .delete(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub(crate) fn access(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_string()
}

/// Enrolls an authenticator for the token's user; returns the secret and recovery codes.
pub(crate) async fn enroll_totp(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let (s, e) = post(app, "/api/v1/me/mfa/totp", Some(token), json!({})).await;
    assert_eq!(s, 200, "{e}");
    let secret = e["secret"].as_str().unwrap().to_string();
    let (s, body) = post(
        app,
        "/api/v1/me/mfa/totp/confirm",
        Some(token),
        json!({"code": oathtool(&secret, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

/// Signs a TOTP user in over the API with a fresh code (the clock moves a step).
async fn totp_login(app: &TestApp, email: &str, pw: &str, secret: &str) -> String {
    let step = app.api_login(email, pw).await;
    app.clock.advance(30);
    let (s, body) = post(
        app,
        "/api/v1/auth/mfa",
        None,
        json!({"mfa_token": step["mfa_token"], "method": "totp", "code": oathtool(secret, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    access(&body)
}

// ------------------------------------------------------------------ 19

#[actix_web::test]
async fn confirming_the_password_locks_is_rate_limited_and_audited() {
    let app = spawn_with(|s| {
        s.rate_limit.auth_per_minute = 6;
        s.rate_limit.auth_burst = 30;
    })
    .await;
    let owner = app.owner_token().await;
    let ivan = app.create_user(&owner, IVAN, "user").await;
    let stolen = access(&app.api_login(IVAN, IVAN_PW).await);
    let mut statuses = Vec::new();
    for i in 0..40 {
        let (s, _) = delete(
            &app,
            "/api/v1/me/mfa",
            &stolen,
            json!({"password": format!("guess-number-{i:04}")}),
        )
        .await;
        statuses.push(s);
    }
    assert_eq!(&statuses[..5], &[400; 5], "wrong password: {statuses:?}");
    let locked = statuses.iter().position(|s| *s == 403).unwrap();
    assert_eq!(locked, 5, "locked after lockout.max_failures: {statuses:?}");
    let limited = statuses.iter().position(|s| *s == 429).unwrap();
    assert!(
        statuses[limited..].iter().all(|s| *s == 429),
        "429 once over the per-address limit: {statuses:?}"
    );
    assert!(limited <= 30, "{statuses:?}");

    let fails = app
        .audit(&owner, "action=auth.confirm&outcome=failure&per_page=100")
        .await;
    let reasons: Vec<&str> = fails
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "wrong_password").count(),
        5
    );
    assert!(reasons.contains(&"account_locked"));
    assert!(fails.iter().all(|e| e["target"] == ivan["id"]));
    assert!(
        fails
            .iter()
            .all(|e| e["details"]["purpose"] == "mfa.remove_all")
    );
    let locks = app.audit(&owner, "action=auth.lockout").await;
    assert_eq!(locks.len(), 1);

    // Once the address may try again, the right password is still refused: locked.
    app.clock.advance(120);
    let (s, body) = delete(
        &app,
        "/api/v1/me/mfa",
        &stolen,
        json!({"password": IVAN_PW}),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locked")
    );
    // And sign-in shares the same lock.
    let r = plain()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": IVAN, "password": IVAN_PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[actix_web::test]
async fn the_console_password_change_counts_towards_the_lockout() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, IVAN, "user").await;
    let (c, csrf) = app.browser_login(IVAN, IVAN_PW).await;
    let change = |current: &'static str| {
        c.post(app.url("/admin/account/password"))
            .form(&[
                ("current_password", current),
                ("password", "new-coral-summit-31"),
                ("password_confirm", "new-coral-summit-31"),
                ("csrf_token", &csrf),
            ])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(change("wrong-one-123456").await.unwrap().status(), 400);
    }
    assert_eq!(
        change(IVAN_PW).await.unwrap().status(),
        403,
        "locked: the right password no longer works"
    );
    let fails = app
        .audit(&owner, "action=auth.confirm&outcome=failure&per_page=100")
        .await;
    assert_eq!(fails.len(), 6);
    assert!(
        fails
            .iter()
            .all(|e| e["details"]["purpose"] == "password_change")
    );
}

// ------------------------------------------------------------------ 20, 21

#[actix_web::test]
async fn removing_one_factor_needs_the_password_and_a_current_code() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, IVAN, "user").await;
    let token = access(&app.api_login(IVAN, IVAN_PW).await);
    let (secret, _) = enroll_totp(&app, &token).await;
    let path = "/api/v1/me/mfa/methods/totp";
    let r = plain()
        .delete(app.url(path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no proof at all");
    let (s, body) = delete(&app, path, &token, json!({"password": IVAN_PW})).await;
    assert_eq!(s, 400, "password alone: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("code"));
    app.clock.advance(30);
    let code = oathtool(&secret, app.clock.now());
    let (s, _) = delete(
        &app,
        path,
        &token,
        json!({"password": "not-the-password-1", "method": "totp", "code": code}),
    )
    .await;
    // One answer for either half (attack review r1 9): 401 like a wrong code.
    assert_eq!(s, 401, "wrong password");
    let (s, _) = delete(
        &app,
        path,
        &token,
        json!({"password": IVAN_PW, "method": "totp", "code": "000000"}),
    )
    .await;
    assert_eq!(s, 401, "wrong code");
    let (s, body) = delete(
        &app,
        path,
        &token,
        json!({"password": IVAN_PW, "method": "totp", "code": code}),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    let removed = app.audit(&owner, "action=mfa.method_removed").await;
    assert_eq!(removed.len(), 1);
    // The wrong tries were counted like wrong sign-ins.
    let fails = app
        .audit(&owner, "action=auth.confirm&outcome=failure&per_page=100")
        .await;
    let reasons: Vec<&str> = fails
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    // A missing code is refused before the password is tried (r1 9), so it
    // is neither counted nor recorded.
    assert_eq!(reasons, ["wrong_code", "wrong_password"]);

    // Removing everything at once asks for the same proof.
    let token = access(&app.api_login(IVAN, IVAN_PW).await);
    let (secret, _) = enroll_totp(&app, &token).await;
    let (s, _) = delete(&app, "/api/v1/me/mfa", &token, json!({"password": IVAN_PW})).await;
    assert_eq!(s, 400);
    app.clock.advance(30);
    let (s, _) = delete(
        &app,
        "/api/v1/me/mfa",
        &token,
        json!({"password": IVAN_PW, "code": oathtool(&secret, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 204);
}

#[actix_web::test]
async fn the_console_removes_factors_only_with_a_current_code() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, IVAN, "user").await;
    let (c, csrf) = app.browser_login(IVAN, IVAN_PW).await;
    let token = access(&app.api_login(IVAN, IVAN_PW).await);
    let (secret, _) = enroll_totp(&app, &token).await;
    let r = c
        .post(app.url("/admin/account/mfa/remove"))
        .form(&[("current_password", IVAN_PW), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the password alone is not enough");
    app.clock.advance(30);
    let code = oathtool(&secret, app.clock.now());
    let r = c
        .post(app.url("/admin/account/mfa/remove"))
        .form(&[
            ("current_password", IVAN_PW),
            ("method", "totp"),
            ("code", &code),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/account?notice=mfa_off");
}

#[actix_web::test]
async fn a_second_authenticator_does_not_silently_replace_the_first() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, IVAN, "user").await;
    let victim = access(&app.api_login(IVAN, IVAN_PW).await);
    let (secret, _) = enroll_totp(&app, &victim).await;
    // The thief with a fresh token tries to move the factor to their device.
    let stolen = totp_login(&app, IVAN, IVAN_PW, &secret).await;
    let (s, body) = post(&app, "/api/v1/me/mfa/totp", Some(&stolen), json!({})).await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("remove it first")
    );
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/totp/confirm",
        Some(&stolen),
        json!({"code": "123456"}),
    )
    .await;
    assert_eq!(s, 409, "nor by confirming an older enrollment");
    // The victim's authenticator still signs in.
    totp_login(&app, IVAN, IVAN_PW, &secret).await;
    // Remove (with proof), then add: the replacement path.
    app.clock.advance(30);
    let (s, _) = delete(
        &app,
        "/api/v1/me/mfa/methods/totp",
        &stolen,
        json!({"password": IVAN_PW, "code": oathtool(&secret, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = post(&app, "/api/v1/me/mfa/totp", Some(&stolen), json!({})).await;
    assert_eq!(s, 200);
}

// ------------------------------------------------------------------ 23

#[actix_web::test]
async fn a_locked_account_spends_no_recovery_code_on_a_refused_reauthentication() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let ivan = app.create_user(&owner, IVAN, "user").await;
    let (c, csrf) = app.browser_login(IVAN, IVAN_PW).await;
    let token = access(&app.api_login(IVAN, IVAN_PW).await);
    let (_, codes) = enroll_totp(&app, &token).await;
    for _ in 0..5 {
        let r = plain()
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": IVAN, "password": "wrong-password-000"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let reauth = || {
        c.post(app.url("/admin/reauth"))
            .form(&[
                ("password", IVAN_PW),
                ("method", "recovery_code"),
                ("code", codes[0].as_str()),
                ("csrf_token", &csrf),
                ("rd", "/admin/account"),
            ])
            .send()
    };
    let r = reauth().await.unwrap();
    assert_eq!(r.status(), 401, "locked: refused");
    assert!(r.text().await.unwrap().contains("locked"));
    let r = plain()
        .post(app.url(&format!(
            "/api/v1/users/{}/unlock",
            ivan["id"].as_str().unwrap()
        )))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reauth().await.unwrap();
    assert_eq!(r.status(), 303, "the same recovery code still works");
    let me: Value = plain()
        .get(app.url("/api/v1/me/mfa"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["recovery_codes_remaining"], 9);
}

// ------------------------------------------------------------------ 15

type Bodies = Arc<std::sync::Mutex<Vec<String>>>;

/// An SMS gateway on loopback that fails while `failing` is set; counts deliveries.
async fn flaky_gateway() -> (String, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let (url, failing, delivered, _) = flaky_gateway_with_bodies().await;
    (url, failing, delivered)
}

/// `flaky_gateway`, also keeping each delivered request body.
async fn flaky_gateway_with_bodies() -> (String, Arc<AtomicBool>, Arc<AtomicUsize>, Bodies) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let failing = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicUsize::new(0));
    let bodies: Bodies = Arc::default();
    let (f2, d2, b2) = (failing.clone(), delivered.clone(), bodies.clone());
    let srv = HttpServer::new(move || {
        let (f, d, b) = (f2.clone(), d2.clone(), b2.clone());
        App::new().default_service(web::to(move |body: web::Bytes| {
            let (f, d, b) = (f.clone(), d.clone(), b.clone());
            async move {
                if f.load(Ordering::SeqCst) {
                    HttpResponse::ServiceUnavailable().finish()
                } else {
                    d.fetch_add(1, Ordering::SeqCst);
                    b.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                    HttpResponse::Created().json(json!({"sid": "SM1"}))
                }
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = srv.addrs()[0].port();
    actix_web::rt::spawn(srv.run());
    (
        format!("http://127.0.0.1:{port}/2010-04-01/Accounts/AC1/Messages.json?key=gw-key-123"),
        failing,
        delivered,
        bodies,
    )
}

/// The six-digit code in the last SMS the gateway received.
fn last_sms_code(bodies: &Bodies) -> String {
    let body = bodies.lock().unwrap().last().unwrap().clone();
    let i = body.find("code+is+").unwrap() + "code+is+".len();
    body[i..i + 6].to_string()
}

#[actix_web::test]
async fn an_sms_only_user_proves_a_current_factor_with_a_code_sent_for_it() {
    let (url, _, _, bodies) = flaky_gateway_with_bodies().await;
    let app = spawn_with(move |s| {
        s.sms.url = url;
        s.sms.username = "AC1".into();
        s.sms.secret = serde_json::from_value(json!("twilio-token")).unwrap();
    })
    .await;
    let token = app.owner_token().await;
    assert_eq!(
        put_policy(&app, &token, policy_with("off", &[], &["sms"]))
            .await
            .0,
        200
    );
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/sms",
        Some(&token),
        json!({"phone": "+4915112345678"}),
    )
    .await;
    assert_eq!(s, 202);
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/sms/confirm",
        Some(&token),
        json!({"code": last_sms_code(&bodies)}),
    )
    .await;
    assert_eq!(s, 200);
    // A second SMS enrollment (another phone) is refused too: remove first.
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/sms",
        Some(&token),
        json!({"phone": "+4915199999999"}),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/code",
        Some(&token),
        json!({"method": "sms"}),
    )
    .await;
    assert_eq!(s, 202);
    let (s, body) = delete(
        &app,
        "/api/v1/me/mfa/methods/sms",
        &token,
        json!({"password": OWNER_PW, "method": "sms", "code": last_sms_code(&bodies)}),
    )
    .await;
    assert_eq!(s, 204, "{body}");
}

async fn sign_in_step(app: &TestApp) -> String {
    let step = app.api_login(OWNER, OWNER_PW).await;
    step["mfa_token"].as_str().unwrap().to_string()
}

async fn send(app: &TestApp, mfa_token: &str, method: &str) -> (u16, Value) {
    post(
        app,
        "/api/v1/auth/mfa/send",
        None,
        json!({"mfa_token": mfa_token, "method": method}),
    )
    .await
}

#[actix_web::test]
async fn fresh_sign_in_steps_do_not_buy_fresh_email_sends() {
    let smtp = crate::codes::start_smtp();
    let (port, ca) = (smtp.port, smtp.ca.clone());
    let app = spawn_with(move |s| {
        s.smtp.host = "127.0.0.1".into();
        s.smtp.port = port;
        s.smtp.username = "gatehouse".into();
        s.smtp.password = serde_json::from_value(json!("smtp-secret-1")).unwrap();
        s.smtp.ca_file = Some(ca);
        s.rate_limit.codes_per_day = 4;
    })
    .await;
    let token = app.owner_token().await;
    assert_eq!(
        put_policy(&app, &token, policy_with("off", &[], &["email"]))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&app, "/api/v1/me/mfa/email", Some(&token), json!({}))
            .await
            .0,
        202
    );
    let code = crate::codes::code_in(&smtp.last_message(1));
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/email/confirm",
        Some(&token),
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, 200);
    // The flood: four sign-ins, each asking for a code at once.
    let mut answers = Vec::new();
    for _ in 0..4 {
        let t = sign_in_step(&app).await;
        answers.push(send(&app, &t, "email").await.0);
    }
    assert_eq!(
        answers,
        [202, 409, 409, 409],
        "one e-mail per 30 s per user"
    );
    smtp.last_message(2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        std::fs::read_dir(&smtp.inbox)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml"))
            .count(),
        2,
        "only the enrollment code and one sign-in code were sent"
    );
    // The sign-in step's daily cap (4 here) holds across steps and time; the
    // enrollment code is the account's own and counts apart (r1 finding 11).
    for _ in 0..3 {
        app.clock.advance(31);
        let t = sign_in_step(&app).await;
        assert_eq!(send(&app, &t, "email").await.0, 202);
    }
    app.clock.advance(31);
    let t = sign_in_step(&app).await;
    let (s, body) = send(&app, &t, "email").await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily limit")
    );
    // A day later the cap is lifted.
    app.clock.advance(86_400);
    let t = sign_in_step(&app).await;
    assert_eq!(send(&app, &t, "email").await.0, 202);
}

#[actix_web::test]
async fn a_failed_sms_send_does_not_start_the_throttle() {
    let (url, failing, delivered) = flaky_gateway().await;
    let app = spawn_with(move |s| {
        s.sms.url = url;
        s.sms.username = "AC1".into();
        s.sms.secret = serde_json::from_value(json!("twilio-token")).unwrap();
    })
    .await;
    let token = app.owner_token().await;
    assert_eq!(
        put_policy(&app, &token, policy_with("off", &[], &["sms"]))
            .await
            .0,
        200
    );
    failing.store(true, Ordering::SeqCst);
    let (s, body) = post(
        &app,
        "/api/v1/me/mfa/sms",
        Some(&token),
        json!({"phone": "+4915112345678"}),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be sent")
    );
    failing.store(false, Ordering::SeqCst);
    let (s, body) = post(
        &app,
        "/api/v1/me/mfa/sms",
        Some(&token),
        json!({"phone": "+4915112345678"}),
    )
    .await;
    assert_eq!(s, 202, "the retry is not told a code was just sent: {body}");
    assert_eq!(delivered.load(Ordering::SeqCst), 1);
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/sms",
        Some(&token),
        json!({"phone": "+4915112345678"}),
    )
    .await;
    assert_eq!(s, 409, "a delivered one does");
}

// ------------------------------------------------------------------ 22

#[actix_web::test]
async fn ipv6_clients_are_limited_per_64_behind_a_trusted_proxy() {
    let app = spawn_with(|s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.rate_limit.auth_per_minute = 6;
        s.rate_limit.auth_burst = 3;
    })
    .await;
    let c = plain();
    let body = json!({"email": "x@example.com", "password": "wrong-password-000"});
    let try_from = |ip: String| {
        c.post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&body)
            .send()
    };
    for i in 1..=3 {
        let r = try_from(format!("2001:db8:7:7::{i:x}")).await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = try_from("2001:db8:7:7:dead:beef:0:1".into()).await.unwrap();
    assert_eq!(r.status(), 429, "another address of the same /64");
    let r = try_from("2001:db8:7:8::1".into()).await.unwrap();
    assert_eq!(r.status(), 401, "the next /64 is another client");
}

#[actix_web::test]
async fn code_endpoints_are_under_the_per_address_limit() {
    let app = spawn_with(|s| {
        s.rate_limit.auth_per_minute = 6;
        s.rate_limit.auth_burst = 12;
    })
    .await;
    let token = app.owner_token().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    // The enrollment confirmation over the API...
    let mut last = 0;
    for _ in 0..12 {
        last = post(
            &app,
            "/api/v1/me/mfa/totp/confirm",
            Some(&token),
            json!({"code": "000000"}),
        )
        .await
        .0;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    // ...and the console's re-authentication share the address's bucket.
    let r = c
        .post(app.url("/admin/reauth"))
        .form(&[
            ("password", OWNER_PW),
            ("csrf_token", csrf.as_str()),
            ("rd", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let r = c
        .post(app.url("/login/mfa"))
        .form(&[("code", "000000"), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

#[actix_web::test]
async fn an_enrollment_code_burns_after_five_wrong_tries() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let (s, e) = post(&app, "/api/v1/me/mfa/totp", Some(&token), json!({})).await;
    assert_eq!(s, 200);
    let secret = e["secret"].as_str().unwrap().to_string();
    let right = oathtool(&secret, app.clock.now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let (s, _) = post(
            &app,
            "/api/v1/me/mfa/totp/confirm",
            Some(&token),
            json!({"code": wrong}),
        )
        .await;
        assert_eq!(s, 400);
    }
    let (s, body) = post(
        &app,
        "/api/v1/me/mfa/totp/confirm",
        Some(&token),
        json!({"code": right}),
    )
    .await;
    assert_eq!(s, 400, "the enrollment is gone: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("start"));
    let burnt = app
        .audit(&token, "action=mfa.enroll&outcome=failure&per_page=10")
        .await;
    assert_eq!(burnt[0]["details"]["reason"], "too_many_attempts");
}
