//! Attack review of issue 11 (r1 findings 1, 4, 6, 9; r2 finding 6): a
//! stolen token or session never changes its own account through the
//! administrators' paths (password, e-mail, unlock, factor reset), and the
//! self-service paths take the proof (password and a current code):
//! recovery codes, a second factor beside the first, the e-mail address.
//! Unlocking is guarded like the password. A wrong password and a wrong
//! code get one answer, and an unknown method is a 400 before anything is
//! checked or recorded.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::call;
use crate::authn_sec::{access, enroll_totp};
use crate::common::*;
use crate::mfa::oathtool;
use gatehouse::clock::Clock;

const IVAN: &str = "ivan@example.com";
const PW: &str = "amber-meadow-river-77";

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn me_id(app: &TestApp, token: &str) -> String {
    let (s, me) = call(app, Method::GET, "/api/v1/me", token, None).await;
    assert_eq!(s, 200);
    me["id"].as_str().unwrap().to_string()
}

/// A fresh TOTP code (the clock moves one step, so it was never used).
fn fresh(app: &TestApp, secret: &str) -> String {
    app.clock.advance(30);
    oathtool(secret, app.clock.now())
}

/// Signs a TOTP user in through the console's two steps; the browser and its CSRF token.
async fn console_mfa_login(
    app: &TestApp,
    email: &str,
    pw: &str,
    secret: &str,
) -> (reqwest::Client, String) {
    let (c, r) = app.password_step(email, pw).await;
    assert_eq!(r.status(), 303);
    let html = c
        .get(app.url("/login/mfa"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = fresh(app, secret);
    let r = c
        .post(app.url("/login/mfa"))
        .form(&[
            ("method", "totp"),
            ("code", code.as_str()),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = c
        .get(app.url("/admin/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (c, csrf_from(&html))
}

type Bodies = Arc<Mutex<Vec<String>>>;

/// An SMS gateway on loopback that keeps each request body.
async fn sms_gateway() -> (String, Bodies) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let bodies: Bodies = Arc::default();
    let b2 = bodies.clone();
    let srv = HttpServer::new(move || {
        let b = b2.clone();
        App::new().default_service(web::to(move |body: web::Bytes| {
            let b = b.clone();
            async move {
                b.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                HttpResponse::Created().json(json!({"sid": "SM1"}))
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = srv.addrs()[0].port();
    actix_web::rt::spawn(srv.run());
    (
        format!("http://127.0.0.1:{port}/2010-04-01/Accounts/AC1/Messages.json"),
        bodies,
    )
}

fn last_sms_code(bodies: &Bodies) -> String {
    let body = bodies.lock().unwrap().last().unwrap().clone();
    let i = body.find("code+is+").unwrap() + "code+is+".len();
    body[i..i + 6].to_string()
}

// ------------------------------------------------------------------ r1 1

#[actix_web::test]
async fn a_stolen_token_cannot_change_its_own_account_through_the_admin_paths() {
    let app = spawn().await;
    let first = app.owner_token().await;
    let (secret, codes) = enroll_totp(&app, &first).await;
    // The thief holds a token from a complete sign-in (password and TOTP).
    let stolen = app.api_login_mfa(&secret).await;
    let me = me_id(&app, &stolen).await;
    let u = format!("/api/v1/users/{me}");
    for (m, path, body, hint) in [
        (
            Method::POST,
            format!("{u}/password"),
            Some(json!({"password": "taken-over-password-1"})),
            "/api/v1/me/password",
        ),
        (
            Method::PATCH,
            u.clone(),
            Some(json!({"email": "thief@evil.example"})),
            "/api/v1/me/email",
        ),
        (Method::POST, format!("{u}/unlock"), None, "ends by itself"),
        (
            Method::POST,
            format!("{u}/mfa/reset"),
            None,
            "DELETE /api/v1/me/mfa",
        ),
    ] {
        let (s, v) = call(&app, m.clone(), &path, &stolen, body).await;
        assert_eq!(s, 403, "{m} {path}: {v}");
        assert!(message(&v).contains("your own account"), "{v}");
        assert!(message(&v).contains(hint), "{m} {path}: {v}");
    }
    // New recovery codes need the proof: none, the password alone, a wrong code.
    let rc = "/api/v1/me/mfa/recovery-codes";
    assert_eq!(post(&app, rc, Some(&stolen), json!({})).await.0, 400);
    let (s, v) = post(&app, rc, Some(&stolen), json!({"password": OWNER_PW})).await;
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).contains("code"), "{v}");
    let (s, _) = post(
        &app,
        rc,
        Some(&stolen),
        json!({"password": OWNER_PW, "method": "totp", "code": "000000"}),
    )
    .await;
    assert_eq!(s, 401);
    // Nothing changed: the password, the e-mail, the factor and the codes.
    let step = app.api_login(OWNER, OWNER_PW).await;
    let (s, v) = post(
        &app,
        "/api/v1/auth/mfa",
        None,
        json!({"mfa_token": step["mfa_token"], "method": "recovery_code", "code": codes[0]}),
    )
    .await;
    assert_eq!(s, 200, "the victim's recovery codes still work: {v}");
    let (s, v) = call(&app, Method::GET, "/api/v1/me/mfa", &stolen, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["methods"], json!(["totp", "recovery_code"]));

    // The self-service paths work with the proof.
    let (s, v) = post(
        &app,
        rc,
        Some(&stolen),
        json!({"password": OWNER_PW, "method": "totp", "code": fresh(&app, &secret)}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["recovery_codes"].as_array().unwrap().len(), 10);
    let email = "/api/v1/me/email";
    let (s, _) = post(
        &app,
        email,
        Some(&stolen),
        json!({"email": "thief@evil.example", "password": OWNER_PW}),
    )
    .await;
    assert_eq!(s, 400, "the e-mail address needs a current code too");
    // Whether an address is taken is told only after the proof.
    app.create_user(&stolen, "taken@example.com", "user").await;
    let (s, v) = post(
        &app,
        email,
        Some(&stolen),
        json!({"email": "taken@example.com", "password": OWNER_PW}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = post(
        &app,
        email,
        Some(&stolen),
        json!({"email": "taken@example.com", "password": OWNER_PW, "code": fresh(&app, &secret)}),
    )
    .await;
    assert_eq!(s, 409);
    let (s, v) = post(
        &app,
        email,
        Some(&stolen),
        json!({"email": "olivia@example.com", "password": OWNER_PW, "code": fresh(&app, &secret)}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["email"], "olivia@example.com");
    let changed = app.audit(&stolen, "action=user.email_change").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["details"]["to"], "olivia@example.com");
    let (s, _) = post(
        &app,
        "/api/v1/me/password",
        Some(&stolen),
        json!({"current_password": "not-the-password-1", "password": "fresh-willow-canyon-6"}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = post(
        &app,
        "/api/v1/me/password",
        Some(&stolen),
        json!({"current_password": OWNER_PW, "password": "fresh-willow-canyon-6"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    app.api_login("olivia@example.com", "fresh-willow-canyon-6")
        .await;
}

#[actix_web::test]
async fn the_consoles_admin_forms_refuse_ones_own_account_and_new_codes_take_the_proof() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let adm = app.create_user(&owner, "adm@example.com", "admin").await;
    let id = adm["id"].as_str().unwrap();
    let (c, csrf) = app.browser_login("adm@example.com", PW).await;
    for (path, extra) in [
        ("password", Some(("password", "taken-over-password-1"))),
        ("unlock", None),
        ("mfa/reset", None),
    ] {
        let mut f = vec![("csrf_token", csrf.as_str())];
        f.extend(extra);
        let r = c
            .post(app.url(&format!("/admin/users/{id}/{path}")))
            .form(&f)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    app.api_login("adm@example.com", PW).await;

    let token = access(&app.api_login("adm@example.com", PW).await);
    let (secret, _) = enroll_totp(&app, &token).await;
    let (c, csrf) = console_mfa_login(&app, "adm@example.com", PW, &secret).await;
    let new_codes = |f: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf_token", csrf.clone())];
        form.extend(f);
        c.post(app.url("/admin/account/mfa/recovery"))
            .form(&form)
            .send()
    };
    let r = new_codes(vec![]).await.unwrap();
    assert_eq!(r.status(), 400, "a fresh session alone is no proof");
    assert!(!r.text().await.unwrap().contains("id=\"recovery-codes\""));
    let r = new_codes(vec![
        ("current_password", PW.into()),
        ("method", "totp".into()),
        ("code", "000000".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let r = new_codes(vec![
        ("current_password", PW.into()),
        ("method", "totp".into()),
        ("code", fresh(&app, &secret)),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("id=\"recovery-codes\""));
    let proved = app
        .audit(&owner, "action=auth.confirm&outcome=success")
        .await;
    assert!(
        proved
            .iter()
            .any(|e| e["details"]["purpose"] == "mfa.recovery_regenerate")
    );
}

// ------------------------------------------------------------------ r2 6

async fn locked(app: &TestApp, token: &str, id: &str) -> bool {
    let (s, v) = call(
        app,
        Method::GET,
        &format!("/api/v1/users/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!(s, 200);
    !v["locked_until"].is_null()
}

#[actix_web::test]
async fn unlocking_is_guarded_like_the_password() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let owner_id = me_id(&app, &owner).await;
    let carol = app.create_user(&owner, "carol@example.com", "admin").await;
    let carol_id = carol["id"].as_str().unwrap().to_string();
    let carol_tok = access(&app.api_login("carol@example.com", PW).await);
    let (s, sa) = call(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &owner,
        Some(json!({"name": "hr-sync", "scopes": ["admin:users"]})),
    )
    .await;
    assert_eq!(s, 201, "{sa}");
    let (_, v) = crate::access::client_token(
        &app,
        sa["client_id"].as_str().unwrap(),
        sa["client_secret"].as_str().unwrap(),
        None,
    )
    .await;
    let bot = access(&v);
    for email in [OWNER, "carol@example.com"] {
        for _ in 0..6 {
            let r = plain()
                .post(app.url("/api/v1/auth/login"))
                .json(&json!({"email": email, "password": "wrong-password-000"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
    }
    assert!(locked(&app, &owner, &owner_id).await);
    // Neither a client holding admin:users nor an admin lifts the owner's lock.
    for who in [&bot, &carol_tok] {
        let (s, v) = call(
            &app,
            Method::POST,
            &format!("/api/v1/users/{owner_id}/unlock"),
            who,
            None,
        )
        .await;
        assert_eq!(s, 403, "{v}");
    }
    assert!(locked(&app, &owner, &owner_id).await, "still locked");
    // Only a platform admin lifts an admin's; nobody their own.
    let carol_unlock = format!("/api/v1/users/{carol_id}/unlock");
    assert_eq!(
        call(&app, Method::POST, &carol_unlock, &bot, None).await.0,
        403
    );
    assert_eq!(
        call(&app, Method::POST, &carol_unlock, &carol_tok, None)
            .await
            .0,
        403
    );
    assert!(locked(&app, &owner, &carol_id).await);
    let (s, v) = call(&app, Method::POST, &carol_unlock, &owner, None).await;
    assert_eq!(s, 200);
    assert!(v["locked_until"].is_null());
    let unlocks = app.audit(&owner, "action=user.unlock").await;
    assert_eq!(unlocks.len(), 1);
    assert_eq!(unlocks[0]["target"], carol_id);
}

// ------------------------------------------------------------------ r1 4

#[actix_web::test]
async fn a_second_factor_beside_the_first_takes_the_password_and_a_current_code() {
    let (url, bodies) = sms_gateway().await;
    let app = spawn_with(move |s| {
        s.sms.url = url;
        s.sms.username = "AC1".into();
        s.sms.secret = serde_json::from_value(json!("twilio-token")).unwrap();
    })
    .await;
    let owner = app.owner_token().await;
    assert_eq!(
        put_policy(&app, &owner, policy_with("off", &[], &["totp", "sms"]))
            .await
            .0,
        200
    );
    app.create_user(&owner, IVAN, "user").await;
    let token = access(&app.api_login(IVAN, PW).await);
    // The first factor needs no proof.
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/sms",
        Some(&token),
        json!({"phone": "+4915112345678"}),
    )
    .await;
    assert_eq!(s, 202);
    let code = last_sms_code(&bodies);
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/sms/confirm",
        Some(&token),
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, 200);
    // The thief with the token tries to add their own authenticator.
    let totp = "/api/v1/me/mfa/totp";
    let (s, v) = post(&app, totp, Some(&token), json!({})).await;
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).contains("password"), "{v}");
    let (s, v) = post(&app, totp, Some(&token), json!({"password": PW})).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = post(
        &app,
        totp,
        Some(&token),
        json!({"password": PW, "method": "sms", "code": "000000"}),
    )
    .await;
    assert_eq!(s, 401);
    let (_, v) = call(&app, Method::GET, "/api/v1/me/mfa", &token, None).await;
    assert_eq!(v["methods"], json!(["sms", "recovery_code"]));
    // With a code sent to the current factor it works.
    assert_eq!(
        post(
            &app,
            "/api/v1/me/mfa/code",
            Some(&token),
            json!({"method": "sms"})
        )
        .await
        .0,
        202
    );
    let (s, e) = post(
        &app,
        totp,
        Some(&token),
        json!({"password": PW, "method": "sms", "code": last_sms_code(&bodies)}),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    let secret = e["secret"].as_str().unwrap().to_string();
    let (s, v) = post(
        &app,
        "/api/v1/me/mfa/totp/confirm",
        Some(&token),
        json!({"code": oathtool(&secret, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let added = app
        .audit(&owner, "action=auth.confirm&outcome=success")
        .await;
    assert!(
        added
            .iter()
            .any(|e| e["details"]["purpose"] == "mfa.add_method")
    );

    // An enrollment started before the first factor cannot be finished beside it.
    app.create_user(&owner, "june@example.com", "user").await;
    let june = access(&app.api_login("june@example.com", PW).await);
    let (s, e) = post(&app, totp, Some(&june), json!({})).await;
    assert_eq!(s, 200);
    let early = e["secret"].as_str().unwrap().to_string();
    app.clock.advance(31);
    assert_eq!(
        post(
            &app,
            "/api/v1/me/mfa/sms",
            Some(&june),
            json!({"phone": "+4915100000001"})
        )
        .await
        .0,
        202
    );
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/sms/confirm",
        Some(&june),
        json!({"code": last_sms_code(&bodies)}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = post(
        &app,
        "/api/v1/me/mfa/totp/confirm",
        Some(&june),
        json!({"code": oathtool(&early, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let (_, v) = call(&app, Method::GET, "/api/v1/me/mfa", &june, None).await;
    assert_eq!(v["methods"], json!(["sms", "recovery_code"]));

    // SMS beside an authenticator: the same rule.
    app.create_user(&owner, "kai@example.com", "user").await;
    let kai = access(&app.api_login("kai@example.com", PW).await);
    enroll_totp(&app, &kai).await;
    let (s, v) = post(
        &app,
        "/api/v1/me/mfa/sms",
        Some(&kai),
        json!({"phone": "+4915100000002"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
}

// ------------------------------------------------------------------ r1 9

#[actix_web::test]
async fn a_wrong_password_and_a_wrong_code_get_one_answer() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, IVAN, "user").await;
    let token = access(&app.api_login(IVAN, PW).await);
    let (secret, _) = enroll_totp(&app, &token).await;
    let path = "/api/v1/me/mfa/methods/totp";
    let good = fresh(&app, &secret);
    let (s1, wrong_pw) = call(
        &app,
        Method::DELETE,
        path,
        &token,
        Some(json!({"password": "not-the-password-1", "method": "totp", "code": good})),
    )
    .await;
    let (s2, wrong_code) = call(
        &app,
        Method::DELETE,
        path,
        &token,
        Some(json!({"password": PW, "method": "totp", "code": "000000"})),
    )
    .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_pw, wrong_code, "one answer for either half");
    // Without a code, the right and a wrong password get the same 400.
    let (s1, a) = call(
        &app,
        Method::DELETE,
        path,
        &token,
        Some(json!({"password": PW})),
    )
    .await;
    let (s2, b) = call(
        &app,
        Method::DELETE,
        path,
        &token,
        Some(json!({"password": "not-the-password-1"})),
    )
    .await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(a, b);
    // The log keeps the precise reasons; both count towards the lockout.
    let fails = app
        .audit(&owner, "action=auth.confirm&outcome=failure&per_page=100")
        .await;
    let mut reasons: Vec<&str> = fails
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["wrong_code", "wrong_password"]);
    // The console's re-authentication says the same for either half.
    let (c, csrf) = console_mfa_login(&app, IVAN, PW, &secret).await;
    let reauth = |pw: &'static str, code: String| {
        c.post(app.url("/admin/reauth"))
            .form(&[
                ("password", pw.to_string()),
                ("method", "totp".into()),
                ("code", code),
                ("csrf_token", csrf.clone()),
            ])
            .send()
    };
    let code = fresh(&app, &secret);
    let a = reauth("not-the-password-1", code).await.unwrap();
    let b = reauth(PW, "000000".into()).await.unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (401, 401));
    let words = Value::String("The password or the code is wrong".into());
    let (ta, tb) = (a.text().await.unwrap(), b.text().await.unwrap());
    assert!(ta.contains(words.as_str().unwrap()) && tb.contains(words.as_str().unwrap()));
}

// ------------------------------------------------------------------ r1 6

#[actix_web::test]
async fn an_unknown_method_is_refused_before_anything_is_checked_or_recorded() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, IVAN, "user").await;
    let token = access(&app.api_login(IVAN, PW).await);
    let (secret, _) = enroll_totp(&app, &token).await;
    let huge = "m".repeat(60_000);
    let proof = json!({"password": PW, "method": huge, "code": "123456"});
    for _ in 0..8 {
        for (m, path) in [
            (Method::DELETE, "/api/v1/me/mfa/methods/totp"),
            (Method::DELETE, "/api/v1/me/mfa"),
            (Method::POST, "/api/v1/me/mfa/recovery-codes"),
        ] {
            let r = plain()
                .request(m.clone(), app.url(path))
                .bearer_auth(&token)
                .json(&proof)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{m} {path}");
            let text = r.text().await.unwrap();
            assert!(
                text.len() < 400,
                "the answer does not echo it: {}",
                text.len()
            );
            assert!(text.contains("totp, email, sms, recovery_code"), "{text}");
        }
    }
    // The sign-in step, anonymously, with any token: the same.
    let step = app.api_login(IVAN, PW).await;
    for t in [step["mfa_token"].as_str().unwrap(), "ghm_unknown"] {
        let (s, v) = post(
            &app,
            "/api/v1/auth/mfa",
            None,
            json!({"mfa_token": t, "method": huge, "code": "123456"}),
        )
        .await;
        assert_eq!(s, 400, "{v}");
    }
    // And the console's re-authentication form.
    let (c, csrf) = console_mfa_login(&app, IVAN, PW, &secret).await;
    let r = c
        .post(app.url("/admin/reauth"))
        .form(&[
            ("password", PW),
            ("method", huge.as_str()),
            ("code", "123456"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for action in ["auth.confirm", "auth.reauth", "auth.mfa"] {
        let ev = app.audit(&owner, &format!("action={action}")).await;
        assert!(ev.is_empty(), "{action}: nothing recorded: {}", ev.len());
    }
    // Nothing counted either: the right proof still works.
    let (s, v) = call(
        &app,
        Method::DELETE,
        "/api/v1/me/mfa/methods/totp",
        &token,
        Some(json!({"password": PW, "method": "totp", "code": fresh(&app, &secret)})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    // What a refusal records is bounded.
    let (secret, _) = enroll_totp(&app, &token).await;
    let _ = secret;
    let (s, _) = call(
        &app,
        Method::DELETE,
        "/api/v1/me/mfa",
        &token,
        Some(json!({"password": PW, "method": "recovery_code", "code": "x".repeat(60_000)})),
    )
    .await;
    assert_eq!(s, 401);
    let ev = app
        .audit(&owner, "action=auth.confirm&outcome=failure")
        .await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["details"]["method"], "recovery_code");
    assert!(ev[0].to_string().len() < 1000, "{}", ev[0]);
}

/// The same class through SSO links: an admin's token links its own account
/// to an identity the thief controls (SSO sign-ins skip Gatehouse MFA).
#[actix_web::test]
async fn a_stolen_admin_token_cannot_link_its_own_account_to_an_identity_provider() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let adm = app.create_user(&owner, "adm@example.com", "admin").await;
    let adm_id = adm["id"].as_str().unwrap().to_string();
    let other = app.create_user(&owner, "bob@example.com", "user").await;
    let stolen = access(&app.api_login("adm@example.com", PW).await);
    let cert = include_str!("../fuzz/keys/fuzz-only.cert.pem");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/sso/connections",
        &stolen,
        Some(
            json!({"id": "evil", "protocol": "saml", "provider": "other", "name": "X",
                    "issuer": "https://idp.evil.test", "sso_url": "https://idp.evil.test/sso",
                    "certificates": [cert]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let link = json!({"connection": "evil", "subject": "thief"});
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{adm_id}/sso-links"),
        &stolen,
        Some(link.clone()),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(message(&v).contains("your own account"), "{v}");
    // Linking someone else, and another admin linking this one, still work.
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{}/sso-links", other["id"].as_str().unwrap()),
        &stolen,
        Some(json!({"connection": "evil", "subject": "bob"})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{adm_id}/sso-links"),
        &owner,
        Some(link),
    )
    .await;
    assert_eq!(s, 204, "{v}");
}
