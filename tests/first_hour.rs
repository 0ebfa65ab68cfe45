//! Issue 19's first hour in the console (points 1–4 and 7): setup signs the
//! owner in, errors in words beside their field, failed forms keep what was
//! typed, the user page, and the second-factor step.

use crate::common::*;

async fn page(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Point 1: setup ends signed in on the dashboard; the used link says to sign
/// in or use gatehouse recover (setup-link refuses once an owner exists).
#[actix_web::test]
async fn setup_signs_the_owner_in_and_a_used_link_says_what_to_do() {
    let app = spawn().await;
    let link = app.setup_link.clone().unwrap();
    let c = browser();
    let (_, html) = page(&c, link.clone()).await;
    let token = link.split("token=").nth(1).unwrap();
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("token", token),
            ("email", OWNER),
            ("name", "Olivia Owner"),
            ("password", OWNER_PW),
            ("password_confirm", OWNER_PW),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin");
    let (status, html) = page(&c, app.url("/admin")).await;
    assert_eq!(status, 200, "the browser that ran setup is signed in");
    assert!(html.contains("Dashboard") && html.contains(OWNER));

    let (status, html) = page(&browser(), link).await;
    assert_eq!(status, 403);
    assert!(html.contains("already used or expired"), "{html}");
    assert!(html.contains("gatehouse recover") && html.contains("href=\"/login\""));
    assert!(
        !html.contains("setup-link"),
        "setup-link refuses now: {html}"
    );
    assert!(!html.contains('`'), "no literal backticks: {html}");
    // A reset link that is gone says the same, without backticks.
    let (status, html) = page(&browser(), app.url("/recover?token=nope")).await;
    assert_eq!(status, 403);
    assert!(html.contains("password-reset link") && !html.contains('`'));
}

/// Point 1: before setup, a wrong link points to gatehouse setup-link.
#[actix_web::test]
async fn a_bad_setup_link_before_setup_points_to_setup_link() {
    let app = spawn().await;
    let (status, html) = page(&browser(), app.url("/setup?token=nope")).await;
    assert_eq!(status, 403);
    assert!(html.contains("gatehouse setup-link") && !html.contains('`'));
}

/// Point 2: a validation error is a sentence, shown beside its field.
#[actix_web::test]
async fn a_validation_error_is_a_sentence_beside_its_field() {
    let app = spawn().await;
    let link = app.setup_link.clone().unwrap();
    let c = browser();
    let (_, html) = page(&c, link.clone()).await;
    let token = link.split("token=").nth(1).unwrap();
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("token", token),
            ("email", OWNER),
            ("name", "Olivia Owner"),
            ("password", OWNER_PW),
            ("password_confirm", "something-else-entirely"),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("The passwords do not match."), "{html}");
    assert!(!html.contains("password_confirm:"), "no field path: {html}");
    let at = html.find(r#"name="password_confirm""#).unwrap();
    let beside = &html[at..];
    assert!(
        beside[..beside.find("</label>").unwrap()].contains("class=\"field-error\""),
        "the sentence sits in the field's label: {beside}"
    );
    assert!(beside[..beside.find('>').unwrap()].contains("aria-invalid=\"true\""));
    assert!(
        html.contains(OWNER) && html.contains("Olivia Owner"),
        "kept"
    );
    assert!(!html.contains(OWNER_PW), "a password is never given back");
}

/// Point 3: the service-account form keeps name, scopes and allowlist on a
/// bad CIDR; so does the API app form on a bad name.
#[actix_web::test]
async fn a_failed_workspace_form_keeps_what_was_typed() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let r = c
        .post(app.url("/admin/workspaces"))
        .form(&[("name", "Support"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The new workspace's page (on its members tab): the path without the query.
    let ws = r.headers()["location"].to_str().unwrap();
    let ws = ws.split('?').next().unwrap().to_string();
    let r = c
        .post(app.url(&format!("{ws}/service-accounts")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "nightly-export"),
            ("description", "exports at 2am"),
            ("scope", "read:agents"),
            ("ip_allowlist", "10.0.0.0/8\n300.1.2.3/8"),
            ("ip_mode", "warn"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    let form = &html[html.find(r#"id="create-sa""#).unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(form.contains(r#"value="nightly-export""#), "{form}");
    assert!(form.contains(r#"value="exports at 2am""#));
    assert!(form.contains(r#"value="read:agents" checked"#));
    assert!(!form.contains(r#"value="deploy:model" checked"#));
    assert!(form.contains("10.0.0.0/8\n300.1.2.3/8</textarea>"));
    assert!(form.contains(r#"<option value="warn" selected>"#));
    assert!(form.contains("The IP allowlist") || form.contains("is not an IPv4/IPv6 CIDR"));
    assert!(form.contains("class=\"field-error\""), "{form}");
    assert!(!html.contains("ip_allowlist:"), "no field path");
    // The API app form: an over-long name, the ticked scopes stay.
    let long = "n".repeat(101);
    let r = c
        .post(app.url(&format!("{ws}/apps")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", long.as_str()),
            ("scope", "deploy:model"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    let form = &html[html.find(r#"id="create-app""#).unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(form.contains(&format!(r#"value="{long}""#)), "{form}");
    assert!(form.contains(r#"value="deploy:model" checked"#));
    assert!(
        form.contains("The name must be 1 to 100 characters."),
        "{form}"
    );
}

fn user_id_in(list: &str, email: &str) -> String {
    let table = &list[list.find("id=\"users\"").unwrap()..];
    let at = list.len() - table.len() + table.find(email).unwrap();
    let before = &list[..at];
    let s = before.rfind("/admin/users/").unwrap() + "/admin/users/".len();
    before[s..s + 24].to_string()
}

/// Point 4: one "End all sessions", name and role edited on the page, a
/// locked user says so in the list and on the page, and one's own page has
/// no reset or unlock (they answer 403 there).
#[actix_web::test]
async fn the_user_page_edits_name_and_role_and_shows_a_lock() {
    let app = spawn().await;
    let token = app.owner_token().await;
    app.create_user(&token, "gina@example.com", "user").await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let (_, list) = page(&c, app.url("/admin/users")).await;
    let id = user_id_in(&list, "gina@example.com");
    let (_, html) = page(&c, app.url(&format!("/admin/users/{id}"))).await;
    assert_eq!(html.matches("End all sessions").count(), 1, "{html}");
    assert!(html.contains("id=\"reset-password\""));

    let r = c
        .post(app.url(&format!("/admin/users/{id}")))
        .form(&[
            ("name", "Gina Analyst"),
            ("role", "admin"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = page(&c, app.url(&to)).await;
    assert!(
        html.contains("Changes saved.") && html.contains("Gina Analyst"),
        "{html}"
    );
    assert!(html.contains(r#"<option value="admin" selected>"#));
    // A bad name: the sentence, and what was typed stays.
    let long = "x".repeat(201);
    let r = c
        .post(app.url(&format!("/admin/users/{id}")))
        .form(&[
            ("name", long.as_str()),
            ("role", "admin"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("The name must be at most 200 characters"),
        "{html}"
    );
    assert!(html.contains(&format!(r#"value="{long}""#)));

    // Five wrong passwords lock the account: the list and the page say so.
    for _ in 0..5 {
        let (_, r) = app
            .password_step("gina@example.com", "wrong-password-000")
            .await;
        assert_eq!(r.status(), 401);
    }
    let (_, list) = page(&c, app.url("/admin/users")).await;
    let row = &list[list.find("gina@example.com").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("locked until") && !row.contains(">active<"),
        "{row}"
    );
    let (_, html) = page(&c, app.url(&format!("/admin/users/{id}"))).await;
    assert!(html.contains("locked until") && html.contains("id=\"unlock\""));

    // One's own page: no password reset, no unlock.
    let own = user_id_in(&list, OWNER);
    let (_, html) = page(&c, app.url(&format!("/admin/users/{own}"))).await;
    assert!(!html.contains("id=\"reset-password\"") && !html.contains("id=\"unlock\""));
    assert!(html.contains("href=\"/admin/account\""));
}

/// Point 7: the second-factor step takes a recovery code whichever method is
/// picked, and mentions no sent code when no sending method is on.
#[actix_web::test]
async fn the_mfa_step_recognises_a_recovery_code_and_promises_no_sent_code() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let (s, body) = post(
        &app,
        "/api/v1/me/mfa/totp",
        Some(&token),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let secret = body["secret"].as_str().unwrap().to_string();
    let (s, codes) = post(
        &app,
        "/api/v1/me/mfa/totp/confirm",
        Some(&token),
        serde_json::json!({"code": crate::mfa::oathtool(&secret, gatehouse::clock::Clock::now(&app.clock))}),
    )
    .await;
    assert_eq!(s, 200);
    let code = codes["recovery_codes"][0].as_str().unwrap().to_string();
    let (c, r) = app.password_step(OWNER, OWNER_PW).await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&c, app.url("/login/mfa")).await;
    assert!(
        !html.contains("sent to you"),
        "no sending method is on: {html}"
    );
    let r = c
        .post(app.url("/login/mfa"))
        .form(&[
            ("code", code.as_str()),
            ("method", "totp"),
            ("rd", "/admin"),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/admin/account?notice=recovery_used")
    );
}

/// The Chromium walk-through of the same points, with screenshots.
#[actix_web::test]
async fn the_first_hour_in_headless_chromium() {
    let app = spawn().await;
    let link = app.setup_link.clone().unwrap();
    let now = gatehouse::clock::Clock::now(&app.clock).to_string();
    chromium_walk_async("first_hour.mjs", vec![app.base.clone(), link, now]).await;
}
