//! Issue 11 attack review r1, findings 3, 7, 5, 11, 10 and the refresh half
//! of 2: every revocation ends sessions, refresh families and access tokens
//! alike (3); a role change that makes MFA required confines what the user
//! holds (7); refused checks coalesce on what the caller cannot vary, within
//! a per-principal budget (5); the sign-in step's code cap is its own and
//! counted per address (11); `config check` shows no SMS gateway secret
//! (10); unknown refresh tokens do not each commit an event (2). Each test
//! sends the attack.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::call;
use crate::common::*;
use gatehouse::clock::Clock;

const PW: &str = "amber-meadow-river-77";

fn tok(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_string()
}

/// What a signed-in user holds: an API token pair and a browser session.
struct Held {
    pair: Value,
    browser: reqwest::Client,
}

async fn hold(app: &TestApp, email: &str) -> Held {
    let pair = app.api_login(email, PW).await;
    let (browser, _) = app.browser_login(email, PW).await;
    Held { pair, browser }
}

async fn refresh(app: &TestApp, pair: &Value) -> (u16, Value) {
    post(
        app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
}

/// (access token, refresh token, browser session) each still open the account.
async fn alive(app: &TestApp, h: &Held) -> (bool, bool, bool) {
    let me = call(app, Method::GET, "/api/v1/me", &tok(&h.pair), None)
        .await
        .0
        == 200;
    // Refreshing spends the token: probe with a copy only when asked to judge.
    let (s, r) = refresh(app, &h.pair).await;
    let refreshed = s == 200 && call(app, Method::GET, "/api/v1/me", &tok(&r), None).await.0 == 200;
    let page = h
        .browser
        .get(app.url("/admin/account"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (me, refreshed, page == 200)
}

async fn enroll_totp(app: &TestApp, token: &str) {
    let (s, body) = post(app, "/api/v1/me/mfa/totp", Some(token), json!({})).await;
    assert_eq!(s, 200, "{body}");
    let secret = body["secret"].as_str().unwrap().to_string();
    let (s, v) = post(
        app,
        "/api/v1/me/mfa/totp/confirm",
        Some(token),
        json!({"code": crate::mfa::oathtool(&secret, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

// ------------------------------------------------------------------ finding 3

/// Every path that takes a user's access away ends all three of what they
/// hold — the access token, the refresh-token family and the browser
/// session. The MFA reset by an administrator used to end only the access
/// tokens: the old refresh token minted a working token and the console
/// session stayed open.
#[actix_web::test]
async fn every_revocation_ends_sessions_refresh_families_and_tokens() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let bob = app.create_user(&owner, "bob@example.com", "user").await;
    let id = bob["id"].as_str().unwrap().to_string();

    // An administrator's MFA reset (finding 3 proper).
    let h = hold(&app, "bob@example.com").await;
    enroll_totp(&app, &tok(&h.pair)).await;
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/mfa/reset"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(alive(&app, &h).await, (false, false, false), "mfa reset");
    let ev = app.audit(&owner, "action=mfa.reset").await;
    assert_eq!(ev.len(), 1, "{ev:?}");

    // The other revocations, each against a fresh sign-in.
    let paths: [(Method, String, Option<Value>); 3] = [
        (
            Method::POST,
            format!("/api/v1/users/{id}/password"),
            Some(json!({"password": PW.to_string() + "-new"})),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{id}/sessions/end"),
            None,
        ),
        (Method::POST, format!("/api/v1/users/{id}/disable"), None),
    ];
    let mut pw = PW.to_string();
    for (m, path, body) in paths {
        let pair = app.api_login("bob@example.com", &pw).await;
        let (browser, _) = app.browser_login("bob@example.com", &pw).await;
        let h = Held { pair, browser };
        let (s, v) = call(&app, m, &path, &owner, body.clone()).await;
        assert!((200..300).contains(&s), "{path}: {s} {v}");
        if body.is_some() {
            pw = PW.to_string() + "-new";
        }
        assert_eq!(alive(&app, &h).await, (false, false, false), "{path}");
    }
    // Deleted (enabled again first, to sign in).
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/enable"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let pair = app.api_login("bob@example.com", &pw).await;
    let (browser, _) = app.browser_login("bob@example.com", &pw).await;
    let h = Held { pair, browser };
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{id}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(alive(&app, &h).await, (false, false, false), "delete");
}

// ------------------------------------------------------------------ finding 7

/// The policy demands MFA of admins; carol (no second factor) is promoted:
/// her old token, refresh token and browser session are confined like a
/// policy change confines them, and the change's event says so.
#[actix_web::test]
async fn a_role_change_that_makes_mfa_required_confines_what_the_user_holds() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let (s, v) = put_policy(&app, &owner, policy("roles", &["admin"])).await;
    assert_eq!(s, 200, "{v}");
    let carol = app.create_user(&owner, "carol@example.com", "user").await;
    let id = carol["id"].as_str().unwrap().to_string();
    let una = app.create_user(&owner, "una@example.com", "user").await;
    let h = hold(&app, "carol@example.com").await;
    let other = hold(&app, "una@example.com").await;
    assert_eq!(
        call(&app, Method::GET, "/api/v1/me", &tok(&h.pair), None)
            .await
            .0,
        200
    );
    let (s, v) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{id}"),
        &owner,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(&app, Method::GET, "/api/v1/users", &tok(&h.pair), None).await;
    assert_eq!(s, 401, "the token signed before the promotion ended");
    let (s, _) = refresh(&app, &h.pair).await;
    assert_eq!(s, 401, "the refresh family ended");
    // The browser session opens enrolment only.
    let r = h.browser.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/admin/account/mfa"),
        "{:?}",
        r.headers()
    );
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let r = h.browser.get(app.url(&to)).send().await.unwrap();
    assert_eq!(r.status(), 200, "enrolment still opens");
    // A fresh sign-in is enrolment-only too.
    let fresh = app.api_login("carol@example.com", PW).await;
    let (s, e) = call(&app, Method::GET, "/api/v1/users", &tok(&fresh), None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("mfa_enrollment_required"))
    );
    let ev = app.audit(&owner, "action=user.update").await;
    assert_eq!(
        ev[0]["details"]["confined_to_mfa_enrollment"], true,
        "{ev:?}"
    );
    // Another update that does not make MFA required confines nothing.
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{}", una["id"].as_str().unwrap()),
        &owner,
        Some(json!({"name": "Una"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(alive(&app, &other).await, (true, true, true));
}

// ----------------------------------------------------------------- finding 10

/// `config check` with an SMS gateway URL carrying credentials in its
/// userinfo and query, and an API key in `sms.fields`: none of them printed;
/// the templates still are.
#[test]
fn config_check_prints_no_sms_gateway_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gatehouse.toml");
    std::fs::write(
        &cfg,
        "[sms]\nurl = \"https://user:pw-SECRET1@sms.example/send?key=SECRETKEY123\"\n\
         [sms.fields]\nTo = \"{to}\"\nBody = \"Code {code}\"\napi_key = \"FIELDSECRET999\"\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GATEHOUSE_DATA", dir.path().join("data"))
        .args(["--config", cfg.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{out}");
    for secret in ["pw-SECRET1", "SECRETKEY123", "FIELDSECRET999", "user:"] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
    assert!(out.contains("https://sms.example"), "{out}");
    assert!(out.contains("Body = \"Code {code}\""), "{out}");
}

// ------------------------------------------------------------------ finding 5

/// 300 refused checks, each naming another made-up workspace: one event, with
/// a count, the first resource, a capped sample of the others and how many
/// more; a refusal in an existing workspace keeps its own event named by the
/// workspace (so its admins still see it).
#[actix_web::test]
async fn denials_naming_made_up_resources_coalesce_into_one_event() {
    let app = spawn().await;
    let w = crate::access::world(&app).await;
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let before = app
        .audit(&w.owner, "action=access.denied&per_page=200")
        .await
        .len();
    for i in 0..300 {
        let r = plain()
            .get(app.url(&format!(
                "/auth/verify?scope=deploy:model&workspace=ws_{i:020x}"
            )))
            .bearer_auth(&w.dev)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = plain()
        .get(app.url(&format!(
            "/auth/verify?scope=deploy:model&workspace={}",
            w.ws_b
        )))
        .bearer_auth(&w.dev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let ev = app
        .audit(
            &w.owner,
            "action=access.denied&actor=dev@example.com&per_page=200",
        )
        .await;
    let all = app
        .audit(&w.owner, "action=access.denied&per_page=200")
        .await;
    // At most one event per background commit (once a second) for 301 refusals.
    assert!(all.len() - before <= 12, "{} events", all.len() - before);
    // Oldest first; the background writer may have committed once between.
    let made_up: Vec<&Value> = ev
        .iter()
        .rev()
        .filter(|e| e["workspace"].is_null())
        .collect();
    assert!(!made_up.is_empty() && made_up.len() <= 11, "{ev:?}");
    let count: u64 = made_up
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, 300, "every refusal stays on the record");
    let d = &made_up[0]["details"];
    assert_eq!(d["permission"], "deploy:model");
    assert_eq!(
        d["resource"], "ws_00000000000000000000",
        "the first one refused is named"
    );
    assert_eq!(d["also"][0]["resource"], "ws_00000000000000000001", "{d}");
    for e in &made_up {
        let d = &e["details"];
        let listed = d["also"].as_array().map_or(0, Vec::len) as u64;
        assert!(listed <= 10, "{d}");
        assert_eq!(
            d["count"].as_u64().unwrap(),
            1 + listed + d["also_unlisted"].as_u64().unwrap_or(0),
            "{d}"
        );
    }
    let real: Vec<&Value> = ev
        .iter()
        .filter(|e| e["workspace"] == w.ws_b.as_str())
        .collect();
    assert_eq!(real.len(), 1, "{ev:?}");
    assert_eq!(real[0]["details"]["count"], 1);
}

// ------------------------------------------- finding 2 (the refresh half)

/// 300 made-up refresh tokens: refused, and recorded as coalesced refusals
/// (a count), not one durable commit and one event each.
#[actix_web::test]
async fn unknown_refresh_tokens_do_not_each_commit_an_event() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let commits = || app.svc.store.generation(gatehouse::store::Table::Audit);
    let before = commits();
    let mut refused = 0;
    for n in 0..300 {
        let (s, _) = post(
            &app,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": format!("ghr_x{n}")}),
        )
        .await;
        assert!(s == 401 || s == 429, "{s}");
        refused += u64::from(s == 401);
    }
    let during = commits() - before;
    assert!(during <= 12, "{during} audit commits for 300 refusals");
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let ev = app
        .audit(&owner, "action=auth.refresh&outcome=failure&per_page=200")
        .await;
    assert!(!ev.is_empty() && ev.len() <= 12, "{} events", ev.len());
    let count: u64 = ev
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, refused, "every refusal is on the record");
    assert!(ev.iter().all(|e| e["details"]["reason"] == "unknown_token"));
}

// ----------------------------------------------------------------- finding 11

/// Someone with the owner's password alone asks the sign-in step for e-mail
/// codes from one address until the cap: the owner still gets sign-in codes
/// from their own address and codes for their own requests.
#[actix_web::test]
async fn the_sign_in_step_cannot_cut_the_user_off_their_codes() {
    let smtp = crate::codes::start_smtp();
    let (port, ca) = (smtp.port, smtp.ca.clone());
    let app = spawn_with(move |s| {
        s.smtp.host = "127.0.0.1".into();
        s.smtp.port = port;
        s.smtp.tls = "starttls".into();
        s.smtp.username = "gatehouse".into();
        s.smtp.password = serde_json::from_value(json!("smtp-secret-1")).unwrap();
        s.smtp.from = "Gatehouse <gatehouse@example.com>".into();
        s.smtp.ca_file = Some(ca);
        s.rate_limit.codes_per_day = 3;
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let token = app.owner_token().await;
    let (s, _) = put_policy(&app, &token, policy_with("off", &[], &["totp", "email"])).await;
    assert_eq!(s, 200);
    let (s, body) = post(&app, "/api/v1/me/mfa/email", Some(&token), json!({})).await;
    assert_eq!(s, 202, "{body}");
    let code = crate::codes::code_in(&smtp.last_message(1));
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/email/confirm",
        Some(&token),
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, 200);
    let send_from = |from: &'static str| {
        let app = &app;
        async move {
            let step: Value = plain()
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", from)
                .json(&json!({"email": OWNER, "password": OWNER_PW}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let r = plain()
                .post(app.url("/api/v1/auth/mfa/send"))
                .header("x-forwarded-for", from)
                .json(&json!({"mfa_token": step["mfa_token"], "method": "email"}))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for _ in 0..3 {
        assert_eq!(send_from("203.0.113.5").await.0, 202);
        app.clock.advance(31);
    }
    let (s, e) = send_from("203.0.113.5").await;
    assert_eq!(s, 409, "{e}");
    assert!(e.to_string().contains("for signing in"), "{e}");
    // The owner, from their own address, signs in with a code…
    assert_eq!(send_from("198.51.100.7").await.0, 202);
    // …and gets a code for their own request (removing a factor, say).
    let (s, e) = post(
        &app,
        "/api/v1/me/mfa/code",
        Some(&token),
        json!({"method": "email"}),
    )
    .await;
    assert_eq!(s, 202, "{e}");
}
