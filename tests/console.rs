//! The console and its sign-in, setup and recovery pages, as plain HTML forms.

use crate::common::*;

async fn page(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[actix_web::test]
async fn setup_link_creates_the_owner_once() {
    let app = spawn().await;
    let link = app.setup_link.clone().unwrap();
    app.setup_owner().await;
    let (status, html) = page(&browser(), link).await;
    assert_eq!(status, 403, "a used setup link is refused");
    assert!(html.contains("already used or expired"));
    // And the owner can sign in, landing on the dashboard.
    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    let (status, html) = page(&c, app.url("/admin")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Dashboard") && html.contains(OWNER));
}

#[actix_web::test]
async fn setup_link_expires_after_an_hour_and_setup_enforces_the_password_policy() {
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
            ("password", "short"),
            ("password_confirm", "short"),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("at least 12 characters"));
    app.clock.advance(3601);
    assert_eq!(page(&browser(), link).await.0, 403);
}

#[actix_web::test]
async fn console_pages_work_as_plain_forms() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    // Create a user with a bad password: the form says why and keeps the input.
    let r = c
        .post(app.url("/admin/users"))
        .form(&[
            ("email", "frank@example.com"),
            ("name", "Frank"),
            ("password", "password1234"),
            ("role", "user"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("commonly used") && html.contains("frank@example.com"));
    let r = c
        .post(app.url("/admin/users"))
        .form(&[
            ("email", "frank@example.com"),
            ("name", "Frank"),
            ("password", "quartz-lagoon-meadow-8"),
            ("role", "user"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = page(&c, app.url("/admin/users?q=frank")).await;
    assert!(html.contains("frank@example.com"));
    // With HX-Request the list handler returns only the table.
    let frag = c
        .get(app.url("/admin/users?q=frank"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(frag.contains("frank@example.com") && !frag.contains("<html"));
    // Audit log shows the creation; filters work.
    let (_, html) = page(&c, app.url("/admin/audit?action=user.create")).await;
    assert!(html.contains("user.create") && html.contains("frank@example.com"));
    let (_, html) = page(&c, app.url("/admin/audit?outcome=failure")).await;
    assert!(!html.contains("user.create"));
    // Delete asks first (a page), then deletes on POST.
    let id_start = html.len();
    let _ = id_start;
    let list = c
        .get(app.url("/admin/users?q=frank"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = list.split("/admin/users/").nth(1).unwrap()[..24].to_string();
    let (status, confirm) = page(&c, app.url(&format!("/admin/users/{id}/delete"))).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Delete frank@example.com?"));
    let r = c
        .post(app.url(&format!("/admin/users/{id}/delete")))
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        page(&c, app.url(&format!("/admin/users/{id}"))).await.0,
        404
    );
    // Keys page and the other pages render; every page carries a strict CSP.
    for p in [
        "/admin",
        "/admin/keys",
        "/admin/account",
        "/admin/audit",
        "/admin/keys/rotate",
    ] {
        let r = c.get(app.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("frame-ancestors 'none'")
                && csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
        );
        assert!(
            !r.text().await.unwrap().contains("<script>"),
            "no inline script on {p}"
        );
    }
    // Unknown page: an HTML 404.
    let r = c.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("There is no page at this address")
    );
}

#[actix_web::test]
async fn sessions_end_on_sign_out_idle_timeout_and_lifetime() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let r = c
        .post(app.url("/logout"))
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(c.get(app.url("/admin")).send().await.unwrap().status(), 303);

    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    app.clock.advance(29 * 60);
    assert_eq!(c.get(app.url("/admin")).send().await.unwrap().status(), 200);
    app.clock.advance(29 * 60);
    assert_eq!(
        c.get(app.url("/admin")).send().await.unwrap().status(),
        200,
        "activity keeps it alive"
    );
    app.clock.advance(31 * 60);
    assert_eq!(
        c.get(app.url("/admin")).send().await.unwrap().status(),
        303,
        "idle for 31 minutes"
    );

    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    for _ in 0..25 {
        app.clock.advance(29 * 60);
        let _ = c.get(app.url("/admin")).send().await.unwrap();
    }
    assert_eq!(
        c.get(app.url("/admin")).send().await.unwrap().status(),
        303,
        "absolute lifetime of 12 hours"
    );
}

#[actix_web::test]
async fn my_account_lists_and_ends_other_sessions_and_changes_the_password() {
    let app = spawn().await;
    app.setup_owner().await;
    let (other, _) = app.browser_login(OWNER, OWNER_PW).await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let (_, html) = page(&c, app.url("/admin/account")).await;
    assert!(html.contains("this session"));
    // The browser that ran setup is signed in too (issue 19 point 1; was 1).
    assert_eq!(
        html.matches("/end\"").count(),
        2,
        "two other sessions to end"
    );
    let r = c
        .post(app.url("/admin/account/sessions/end-others"))
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        other.get(app.url("/admin")).send().await.unwrap().status(),
        303
    );
    let r = c
        .post(app.url("/admin/account/password"))
        .form(&[
            ("current_password", "wrong-one-123456"),
            ("password", "new-coral-summit-31"),
            ("password_confirm", "new-coral-summit-31"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(app.url("/admin/account/password"))
        .form(&[
            ("current_password", OWNER_PW),
            ("password", "new-coral-summit-31"),
            ("password_confirm", "new-coral-summit-31"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        c.get(app.url("/admin")).send().await.unwrap().status(),
        200,
        "the changing session stays"
    );
    app.browser_login(OWNER, "new-coral-summit-31").await;
}

#[actix_web::test]
async fn a_plain_user_only_reaches_their_own_account() {
    let app = spawn().await;
    let token = app.owner_token().await;
    app.create_user(&token, "gina@example.com", "user").await;
    let (c, _) = app
        .browser_login("gina@example.com", "amber-meadow-river-77")
        .await;
    let r = c.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/account");
    for p in ["/admin/users", "/admin/audit", "/admin/keys"] {
        assert_eq!(c.get(app.url(p)).send().await.unwrap().status(), 403, "{p}");
    }
    let (_, html) = page(&c, app.url("/admin/account")).await;
    assert!(html.contains("gina@example.com") && !html.contains("href=\"/admin/users\""));
}

#[actix_web::test]
async fn recovery_link_resets_the_password_once() {
    let app = spawn().await;
    app.setup_owner().await;
    let src = gatehouse::audit::Source::default();
    let link = gatehouse::authn::recover_link(&app.svc, OWNER, &src).unwrap();
    let path = link.trim_start_matches(&app.base).to_string();
    let c = browser();
    let (status, html) = page(&c, app.url(&path)).await;
    assert_eq!(status, 200);
    let token = path.split("token=").nth(1).unwrap();
    let r = c
        .post(app.url("/recover"))
        .form(&[
            ("token", token),
            ("password", "fresh-willow-canyon-6"),
            ("password_confirm", "fresh-willow-canyon-6"),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    app.browser_login(OWNER, "fresh-willow-canyon-6").await;
    assert_eq!(page(&browser(), app.url(&path)).await.0, 403, "single use");
}
