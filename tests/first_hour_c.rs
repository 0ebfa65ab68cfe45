//! Issue 19's first hour, points 4 and 6. Point 4's "must change password
//! at next sign-in" (Keycloak's "Temporary"): an administrator's reset can
//! make the password temporary; the next password sign-in gets no session
//! and no token, only a one-time "choose a new password" step, and the API
//! refuses until it is done. The attacks: the step token reused, used after
//! it expired or was revoked, used where another one-time token belongs; the
//! flag cleared by anything but a new password; a session before the new
//! password. Point 6: "Confirm it's you" in the middle of a second-factor or
//! SSO form re-shows it filled in (secrets to retype, named) or completes it.
//! Over HTTP, then in headless Chromium.

use std::io::{BufRead, BufReader, Write};

use gatehouse::clock::Clock;
use reqwest::Method;
use serde_json::{Value, json};

use crate::access::call;
use crate::common::*;
use crate::first_hour_b::{get, location, post as post_form};
use crate::mfa::oathtool;

const DANA: &str = "dana@example.com";
const TEMP: &str = "tide-copper-willow-31";
const CHOSEN: &str = "harbour-lichen-ember-58";
const STEP_COOKIE: &str = "gh_pwstep";

/// An administrator's reset over the API; `temporary` absent when `None`.
async fn reset(app: &TestApp, owner: &str, id: &str, pw: &str, temporary: Option<bool>) -> u16 {
    let mut body = json!({ "password": pw });
    if let Some(t) = temporary {
        body["temporary"] = t.into();
    }
    let (s, v) = call(
        app,
        Method::POST,
        &format!("/api/v1/users/{id}/password"),
        owner,
        Some(body),
    )
    .await;
    assert!(s == 204 || s >= 400, "{s} {v}");
    s
}

async fn flag(app: &TestApp, owner: &str, id: &str) -> Value {
    let (s, v) = call(
        app,
        Method::GET,
        &format!("/api/v1/users/{id}"),
        owner,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["must_change_password"].clone()
}

/// The value `name` is set to in a response, if set to something.
fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .filter_map(|h| h.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// The API's sign-in: status and answer.
async fn api_sign_in(app: &TestApp, email: &str, pw: &str) -> (u16, Value) {
    post(
        app,
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": pw}),
    )
    .await
}

/// Dana, created by the owner, with a temporary password set over the API.
async fn dana_with_temporary(app: &TestApp, owner: &str) -> String {
    let u = app.create_user(owner, DANA, "user").await;
    let id = u["id"].as_str().unwrap().to_string();
    assert_eq!(reset(app, owner, &id, TEMP, Some(true)).await, 204);
    id
}

/// Dana's password step in a fresh browser: the browser, where it was sent
/// and the step token it holds.
async fn step(app: &TestApp) -> (reqwest::Client, String, String) {
    let (c, r) = app.password_step(DANA, TEMP).await;
    assert_eq!(r.status(), 303);
    assert!(
        cookie(&r, "gh_session").is_none(),
        "no session before the new password"
    );
    let token = cookie(&r, STEP_COOKIE).expect("the step cookie");
    (c, location(&r), token)
}

/// Posts the step's form with the step token `token` in a cookie-less client.
async fn submit(app: &TestApp, token: &str, pw: &str, again: &str) -> reqwest::Response {
    let c = plain();
    let page = c.get(app.url("/login")).send().await.unwrap();
    let pre = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = csrf_from(&page.text().await.unwrap());
    c.post(app.url("/login/password"))
        .header("cookie", format!("{pre}; {STEP_COOKIE}={token}"))
        .form(&[
            ("password", pw),
            ("password_confirm", again),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_temporary_password_asks_for_a_new_one_before_any_session_or_token() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let u = app.create_user(&owner, DANA, "user").await;
    let id = u["id"].as_str().unwrap().to_string();
    // The API's reset stays what it was unless asked: not temporary.
    assert_eq!(
        reset(&app, &owner, &id, "plain-reset-pass-11", None).await,
        204
    );
    assert_eq!(flag(&app, &owner, &id).await, false);
    app.api_login(DANA, "plain-reset-pass-11").await;
    assert_eq!(reset(&app, &owner, &id, TEMP, Some(true)).await, 204);
    assert_eq!(flag(&app, &owner, &id).await, true);
    let ev = app
        .audit(&owner, "action=user.password_reset&limit=1")
        .await;
    assert_eq!(ev[0]["details"]["temporary"], true, "{ev:?}");

    // The API hands out no tokens, and says where to go.
    let (s, v) = api_sign_in(&app, DANA, TEMP).await;
    assert_eq!(s, 403, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("temporary password") && msg.contains("/login"),
        "{msg}"
    );
    assert!(v.get("access_token").is_none() && v.get("mfa_token").is_none());
    // A wrong password still gets the one answer for everything.
    assert_eq!(api_sign_in(&app, DANA, "not-the-password-9").await.0, 401);

    // The browser: no session, a step that opens nothing else.
    let (c, to, _) = step(&app).await;
    assert!(to.starts_with("/login/password?rd="), "{to}");
    let r = c.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 303, "the step cookie is no session");
    assert!(location(&r).starts_with("/login"));
    let (s, page) = get(&c, app.url("/admin/account")).await;
    assert_ne!(s, 200, "{page}");
    let (s, page) = get(&c, app.url(&to)).await;
    assert_eq!(s, 200);
    assert!(page.contains("Choose a new password"), "{page}");
    let csrf = csrf_from(&page);
    let form = |pw: &'static str, again: &'static str| {
        [
            ("password", pw),
            ("password_confirm", again),
            ("csrf_token", csrf.as_str()),
            ("rd", "/admin"),
        ]
    };
    // The rules apply: not the temporary one, repeated, long enough.
    let r = post_form(&c, app.url("/login/password"), &form(TEMP, TEMP)).await;
    assert_eq!(r.status(), 400);
    assert!(cookie(&r, "gh_session").is_none());
    let html = r.text().await.unwrap();
    assert!(
        html.contains("must differ from the temporary password"),
        "{html}"
    );
    let r = post_form(
        &c,
        app.url("/login/password"),
        &form(CHOSEN, "harbour-lichen"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("The passwords do not match.")
    );
    let r = post_form(&c, app.url("/login/password"), &form("short", "short")).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("at least 12 characters"));
    assert_eq!(flag(&app, &owner, &id).await, true);

    // The new password: signed in, the flag gone, audited.
    let r = post_form(&c, app.url("/login/password"), &form(CHOSEN, CHOSEN)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin");
    assert!(cookie(&r, "gh_session").is_some());
    let (s, page) = get(&c, app.url("/admin/account")).await;
    assert_eq!(s, 200);
    assert!(page.contains(DANA));
    assert_eq!(flag(&app, &owner, &id).await, false);
    let ev = app
        .audit(&owner, "action=user.password_change&limit=1")
        .await;
    assert_eq!(ev[0]["outcome"], "success", "{ev:?}");
    assert_eq!(ev[0]["details"]["temporary_replaced"], true);
    assert_eq!(ev[0]["target"], id.as_str());
    let ev = app.audit(&owner, "action=auth.password&limit=1").await;
    assert_eq!(ev[0]["details"]["password_change_required"], true, "{ev:?}");
    // The temporary password is over; the chosen one works everywhere.
    assert_eq!(api_sign_in(&app, DANA, TEMP).await.0, 401);
    let (s, v) = api_sign_in(&app, DANA, CHOSEN).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["access_token"].is_string());
}

#[actix_web::test]
async fn the_step_token_is_single_use_bound_to_its_user_and_expires() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let id = dana_with_temporary(&app, &owner).await;

    // Used once: the same token again is refused, and signs nobody in.
    let (_, _, token) = step(&app).await;
    let r = submit(&app, &token, CHOSEN, CHOSEN).await;
    assert_eq!(r.status(), 303);
    assert!(cookie(&r, "gh_session").is_some());
    let r = submit(
        &app,
        &token,
        "another-choice-pass-77",
        "another-choice-pass-77",
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).starts_with("/login?notice="),
        "{}",
        location(&r)
    );
    assert!(cookie(&r, "gh_session").is_none());
    assert_eq!(api_sign_in(&app, DANA, CHOSEN).await.0, 200);
    assert_eq!(
        api_sign_in(&app, DANA, "another-choice-pass-77").await.0,
        401
    );

    // A newer step ends the older one.
    assert_eq!(reset(&app, &owner, &id, TEMP, Some(true)).await, 204);
    let (_, _, older) = step(&app).await;
    let (_, _, newer) = step(&app).await;
    let r = submit(&app, &older, CHOSEN, CHOSEN).await;
    assert!(location(&r).starts_with("/login?notice="));
    assert!(cookie(&r, "gh_session").is_none());

    // Revoked: an administrator's "end sessions" (or a new reset) ends it.
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/sessions/end"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let r = submit(&app, &newer, CHOSEN, CHOSEN).await;
    assert!(location(&r).starts_with("/login?notice="));
    assert!(cookie(&r, "gh_session").is_none());
    assert_eq!(flag(&app, &owner, &id).await, true);

    // Bound to its kind: a recovery link's token is no step token, and a
    // step token is no recovery link.
    let link = gatehouse::authn::recover_link(&app.svc, DANA, &Default::default()).unwrap();
    let recovery = link.split("token=").nth(1).unwrap().to_string();
    let r = submit(&app, &recovery, CHOSEN, CHOSEN).await;
    assert!(location(&r).starts_with("/login?notice="));
    assert!(cookie(&r, "gh_session").is_none());
    let (_, _, token) = step(&app).await;
    let c = browser();
    let (s, html) = get(&c, app.url(&format!("/recover?token={token}"))).await;
    assert_ne!(s, 200, "{html}");
    let (_, login) = get(&c, app.url("/login")).await;
    let r = post_form(
        &c,
        app.url("/recover"),
        &[
            ("token", &token),
            ("password", CHOSEN),
            ("password_confirm", CHOSEN),
            ("csrf_token", &csrf_from(&login)),
        ],
    )
    .await;
    assert_ne!(r.status(), 303, "a step token is no recovery link");
    assert_eq!(flag(&app, &owner, &id).await, true);
    // Bound to its user: Dana's step changes Dana's password, nobody else's,
    // and signs in Dana.
    let erin = app.create_user(&owner, "erin@example.com", "user").await;
    let erin_id = erin["id"].as_str().unwrap().to_string();
    assert_eq!(
        reset(&app, &owner, &erin_id, "copper-lantern-fox-88", Some(true)).await,
        204
    );
    let r = submit(&app, &token, CHOSEN, CHOSEN).await;
    assert_eq!(r.status(), 303);
    let session = cookie(&r, "gh_session").unwrap();
    let me: Value = plain()
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("gh_session={session}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], DANA, "{me}");
    assert_eq!(flag(&app, &owner, &erin_id).await, true);
    assert_eq!(api_sign_in(&app, "erin@example.com", CHOSEN).await.0, 401);

    // Expired: past its ten minutes the step is refused and the flag stays.
    let (c, r) = app
        .password_step("erin@example.com", "copper-lantern-fox-88")
        .await;
    assert_eq!(r.status(), 303);
    let late = cookie(&r, STEP_COOKIE).unwrap();
    app.clock.advance(601);
    let (s, _) = get(&c, app.url("/login/password")).await;
    assert_eq!(s, 303, "an expired step shows no form");
    let r = submit(&app, &late, CHOSEN, CHOSEN).await;
    assert!(location(&r).starts_with("/login?notice="));
    assert!(cookie(&r, "gh_session").is_none());
    let owner = app.api_login(OWNER, OWNER_PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(flag(&app, &owner, &erin_id).await, true);
}

#[actix_web::test]
async fn only_a_new_password_clears_the_flag() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let id = dana_with_temporary(&app, &owner).await;
    // The user record's API does not take it.
    let (s, v) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{id}"),
        &owner,
        Some(json!({"must_change_password": false})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // Neither unlocking, ending sessions, nor disabling and enabling does.
    for path in ["unlock", "sessions/end", "disable", "enable"] {
        let (s, v) = call(
            &app,
            Method::POST,
            &format!("/api/v1/users/{id}/{path}"),
            &owner,
            None,
        )
        .await;
        assert!(s == 200 || s == 204, "{path}: {s} {v}");
        assert_eq!(flag(&app, &owner, &id).await, true, "{path}");
    }
    // The user's own change needs a token, and the temporary password gets none.
    assert_eq!(api_sign_in(&app, DANA, TEMP).await.0, 403);
    // A password an administrator sets without the box clears it...
    assert_eq!(reset(&app, &owner, &id, TEMP, Some(false)).await, 204);
    assert_eq!(flag(&app, &owner, &id).await, false);
    assert_eq!(api_sign_in(&app, DANA, TEMP).await.0, 200);
    // ...and so does the recovery link's.
    assert_eq!(reset(&app, &owner, &id, TEMP, Some(true)).await, 204);
    let link = gatehouse::authn::recover_link(&app.svc, DANA, &Default::default()).unwrap();
    let c = browser();
    let (s, html) = get(&c, link.clone()).await;
    assert_eq!(s, 200);
    let r = post_form(
        &c,
        app.url("/recover"),
        &[
            ("token", link.split("token=").nth(1).unwrap()),
            ("password", CHOSEN),
            ("password_confirm", CHOSEN),
            ("csrf_token", &csrf_from(&html)),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(flag(&app, &owner, &id).await, false);
    assert_eq!(api_sign_in(&app, DANA, CHOSEN).await.0, 200);
}

#[actix_web::test]
async fn the_new_password_comes_after_the_second_factor() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let u = app.create_user(&owner, DANA, "user").await;
    let id = u["id"].as_str().unwrap().to_string();
    let dana = app.api_login(DANA, "amber-meadow-river-77").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, body) = post(&app, "/api/v1/me/mfa/totp", Some(&dana), json!({})).await;
    assert_eq!(s, 200, "{body}");
    let secret = body["secret"].as_str().unwrap().to_string();
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/totp/confirm",
        Some(&dana),
        json!({"code": oathtool(&secret, app.clock.now())}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(reset(&app, &owner, &id, TEMP, Some(true)).await, 204);
    // The API refuses at the password, before a code is spent.
    assert_eq!(api_sign_in(&app, DANA, TEMP).await.0, 403);
    app.clock.advance(30);
    let (c, r) = app.password_step(DANA, TEMP).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/login/mfa"));
    let (_, page) = get(&c, app.url(&location(&r))).await;
    let r = post_form(
        &c,
        app.url("/login/mfa"),
        &[
            ("code", &oathtool(&secret, app.clock.now())),
            ("method", "totp"),
            ("csrf_token", &csrf_from(&page)),
            ("rd", "/admin"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(
        location(&r).starts_with("/login/password"),
        "{}",
        location(&r)
    );
    assert!(cookie(&r, "gh_session").is_none());
    let (_, page) = get(&c, app.url(&location(&r))).await;
    let r = post_form(
        &c,
        app.url("/login/password"),
        &[
            ("password", CHOSEN),
            ("password_confirm", CHOSEN),
            ("csrf_token", &csrf_from(&page)),
            ("rd", "/admin"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(cookie(&r, "gh_session").is_some());
    let ev = app.audit(&owner, "action=auth.login&limit=1").await;
    assert_eq!(ev[0]["outcome"], "success", "{ev:?}");
    assert_eq!(ev[0]["details"]["mfa"], "totp", "{ev:?}");
}

#[actix_web::test]
async fn the_console_reset_is_temporary_by_default_and_the_lists_say_so() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let u = app.create_user(&owner, DANA, "user").await;
    let id = u["id"].as_str().unwrap().to_string();
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let page_url = app.url(&format!("/admin/users/{id}"));
    let (_, html) = get(&c, page_url.clone()).await;
    assert!(
        html.contains("name=\"temporary\" value=\"on\" checked"),
        "ticked by default: {html}"
    );
    assert!(html.contains("User must change password at next sign-in"));
    assert!(!html.contains("must change password</span>"));
    // Unticked: a plain reset.
    let action = app.url(&format!("/admin/users/{id}/password"));
    let r = post_form(
        &c,
        action.clone(),
        &[("csrf_token", &csrf), ("password", TEMP)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(flag(&app, &owner, &id).await, false);
    // Ticked: temporary, and the page and the list say so.
    let r = post_form(
        &c,
        action,
        &[
            ("csrf_token", &csrf),
            ("password", TEMP),
            ("temporary", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, html) = get(&c, app.url(&location(&r))).await;
    assert!(html.contains("Temporary password set"), "{html}");
    assert!(html.contains("must change password</span>"), "{html}");
    assert_eq!(flag(&app, &owner, &id).await, true);
    let (_, list) = get(&c, app.url("/admin/users")).await;
    assert!(list.contains("must change password</span>"), "{list}");
}

/// "Confirm it's you" interrupting a form that carried a password and a
/// code: after the confirmation the account page shows the form again with
/// its method kept, nothing secret, and a notice naming what to retype.
#[actix_web::test]
async fn confirm_its_you_reshows_a_second_factor_form_to_retype_its_secrets() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let (s, body) = post(&app, "/api/v1/me/mfa/totp", Some(&owner), json!({})).await;
    assert_eq!(s, 200);
    let secret = body["secret"].as_str().unwrap().to_string();
    let code = oathtool(&secret, app.clock.now());
    let (s, _) = post(
        &app,
        "/api/v1/me/mfa/totp/confirm",
        Some(&owner),
        json!({ "code": code }),
    )
    .await;
    assert_eq!(s, 200);
    app.clock.advance(30);
    let (c, r) = app.password_step(OWNER, OWNER_PW).await;
    let (_, page) = get(&c, app.url(&location(&r))).await;
    let r = post_form(
        &c,
        app.url("/login/mfa"),
        &[
            ("code", &oathtool(&secret, app.clock.now())),
            ("method", "totp"),
            ("csrf_token", &csrf_from(&page)),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, page) = get(&c, app.url("/admin/account")).await;
    let csrf = csrf_from(&page);
    app.clock.advance(700);
    let r = post_form(
        &c,
        app.url("/admin/account/mfa/recovery"),
        &[
            ("csrf_token", &csrf),
            ("current_password", OWNER_PW),
            ("method", "recovery_code"),
            ("code", "1111-2222-3333-4444"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("&resume="), "{to}");
    let (_, page) = get(&c, app.url(&to)).await;
    assert!(page.contains("to make new recovery codes"), "{page}");
    let resume = to.split("resume=").nth(1).unwrap();
    let r = post_form(
        &c,
        app.url("/admin/reauth"),
        &[
            ("csrf_token", &csrf),
            ("password", OWNER_PW),
            ("method", "totp"),
            ("code", &oathtool(&secret, app.clock.now())),
            ("rd", "/admin/account"),
            ("resume", resume),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert!(back.starts_with("/admin/account?resumed="), "{back}");
    let (s, page) = get(&c, app.url(&back)).await;
    assert_eq!(s, 200);
    assert!(
        page.contains("Signed in again \u{2014} submit this form to make new recovery codes. Retype your password and a current code"),
        "{page}"
    );
    assert!(
        page.contains("<option value=\"recovery_code\" selected>"),
        "{page}"
    );
    assert!(!page.contains(OWNER_PW) && !page.contains("1111-2222-3333-4444"));
    // Shown once: the same address again is the plain page.
    let (_, again) = get(&c, app.url(&back)).await;
    assert!(!again.contains("Signed in again"));
}

#[actix_web::test]
async fn first_hour_c_walk_through_in_chromium() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let u = app.create_user(&owner, DANA, "user").await;
    let id = u["id"].as_str().unwrap().to_string();
    let base = app.base.clone();
    let clock = app.clock.clone();
    let out = actix_web::rt::task::spawn_blocking(move || {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let shots = std::env::var("GATEHOUSE_SCREENSHOTS").unwrap_or_default();
        let mut child = std::process::Command::new("node")
            .current_dir(&root)
            .arg("first_hour_c.mjs")
            .arg(&base)
            .arg(&id)
            .arg(&shots)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut out = String::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ADVANCE ") {
                clock.advance(n.trim().parse().unwrap());
                writeln!(stdin, "ok").unwrap();
            } else if let Some(secret) = line.strip_prefix("TOTP ") {
                writeln!(stdin, "{}", oathtool(secret.trim(), clock.now())).unwrap();
            }
            out.push_str(&line);
            out.push('\n');
        }
        let o = child.wait_with_output().unwrap();
        out.push_str(&String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "first_hour_c.mjs:\n{out}");
        out
    })
    .await
    .unwrap();
    assert!(out.contains("first hour (c) walk-through passed"), "{out}");
}
