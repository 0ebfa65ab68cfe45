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
    assert!(!html.contains("setup-link"), "setup-link refuses now: {html}");
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
