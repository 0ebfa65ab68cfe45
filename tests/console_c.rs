//! Issue 19 points 10 and 11 over HTTP: the audit log names actors and
//! targets and shows details as a small table, the dashboard draws sign-ins
//! and failures as SVG, the SSO page shows only the chosen protocol's fields
//! and refuses a provider of another protocol, and an unreachable identity
//! provider is described (DNS, refused, HTTP status) instead of "Request failed".

use serde_json::json;

use crate::common::{self, OWNER, OWNER_PW, TestApp};

async fn page(c: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let r = c.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn failed_login(app: &TestApp, email: &str) {
    let (_, r) = app.password_step(email, "wrong-password-typed").await;
    assert_eq!(r.status(), 401, "a refused sign-in");
}

/// The `<tr>` of the audit table that mentions `needle`.
fn row_with<'a>(html: &'a str, needle: &str) -> &'a str {
    let at = html
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {html}"));
    let start = html[..at].rfind("<tr>").unwrap();
    let end = at + html[at..].find("</td></tr>\n").unwrap();
    &html[start..end]
}

#[actix_web::test]
async fn the_audit_log_names_actors_and_targets_and_reads_details_as_a_table() {
    let app = common::spawn().await;
    let token = app.owner_token().await;
    let bob = app.create_user(&token, "bob@example.com", "user").await;
    let bob_id = bob["id"].as_str().unwrap().to_string();
    // bob is refused an admin's list three times: one folded denial event.
    let bob_token = app
        .api_login("bob@example.com", "amber-meadow-river-77")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        let r = common::plain()
            .get(app.url("/api/v1/users"))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;

    let (s, html) = page(&c, &app, "/admin/audit?action=user.create").await;
    assert_eq!(s, 200);
    let row = row_with(&html, ">user.create<");
    // The target by e-mail, its id beside it and on hover.
    assert!(
        row.contains(&format!("title=\"{bob_id}\">bob@example.com")),
        "{row}"
    );
    assert!(row.contains(&bob_id));
    assert!(row.contains("<time datetime="), "{row}");
    assert!(row.contains("nowrap"), "dates do not wrap: {row}");
    // The actor by e-mail with the id on hover.
    assert!(row.contains(&format!(">{OWNER}")), "{row}");

    let (_, html) = page(&c, &app, "/admin/audit?action=access.denied").await;
    let row = row_with(&html, ">access.denied<");
    assert!(
        row.contains("<table class=\"kv small\">"),
        "details as a table: {row}"
    );
    assert!(row.contains("<th>count</th><td>3</td>"), "{row}");
    assert!(row.contains("<th>permission</th>"), "{row}");
    assert!(
        row.contains("<th>last at</th><td>20"),
        "times in words: {row}"
    );
    assert!(!row.contains("{&quot;"), "no raw JSON: {row}");
    assert!(!html.contains("{&quot;count"), "no raw JSON anywhere");
}

#[actix_web::test]
async fn the_dashboard_draws_sign_ins_and_failures_of_the_last_day_and_week() {
    let app = common::spawn().await;
    let token = app.owner_token().await;
    app.create_user(&token, "bob@example.com", "user").await;
    failed_login(&app, "bob@example.com").await;
    failed_login(&app, "nobody@example.com").await;
    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    let (s, html) = page(&c, &app, "/admin").await;
    assert_eq!(s, 200);
    // The owner signed in twice (setup's API sign-in and this one) and the
    // two refused sign-ins failed; both charts, drawn as SVG on the server.
    assert!(
        html.contains("<figure class=\"chart\" id=\"chart-24h\">"),
        "{html}"
    );
    assert!(html.contains("<figure class=\"chart\" id=\"chart-7d\">"));
    let sign_ins = |h: &str, title: &str| {
        let at = h.find(&format!("aria-label=\"{title}: ")).unwrap();
        h[at..at + h[at..].find("\" ").unwrap()].to_string()
    };
    let day = sign_ins(&html, "Last 24 hours");
    assert!(day.ends_with("sign-ins, 2 failed"), "{day}");
    assert!(!day.contains(": 0 sign-ins"), "{day}");
    assert_eq!(html.matches("class=\"bar-bad\"").count(), 24 + 7);
    assert!(html.contains("<title>1 failures") || html.contains("<title>2 failures"));
    // No script draws it: the only script is the console's deferred helper.
    assert_eq!(html.matches("<script").count(), 1);

    // Two days later the failures left the last 24 hours, not the week.
    app.clock.advance(2 * 86_400);
    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    let (_, html) = page(&c, &app, "/admin").await;
    assert_eq!(
        sign_ins(&html, "Last 24 hours"),
        "aria-label=\"Last 24 hours: 1 sign-ins, 0 failed"
    );
    assert!(sign_ins(&html, "Last 7 days").ends_with("sign-ins, 2 failed"));
}

/// The new-connection form of the SSO page for `preset`.
fn new_connection_form(html: &str) -> &str {
    let start = html.find("id=\"new-connection\"").unwrap();
    &html[start..start + html[start..].find("</form>").unwrap()]
}

#[actix_web::test]
async fn the_sso_page_shows_only_the_chosen_protocols_fields_and_refuses_a_mismatch() {
    let app = common::spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;

    let (s, html) = page(&c, &app, "/admin/settings/sso?preset=saml:okta").await;
    assert_eq!(s, 200);
    let form = new_connection_form(&html);
    assert!(form.contains("name=\"metadata_url\""), "{form}");
    assert!(form.contains("Okta Single Sign-On URL"), "{form}");
    assert!(
        !form.contains("client_secret"),
        "no OpenID fields for SAML: {form}"
    );
    assert!(form.contains("value=\"saml:okta\""));
    // Each preset is offered once, under its protocol, and says which.
    assert_eq!(html.matches("<option value=\"oidc:google\"").count(), 1);
    assert_eq!(html.matches("<option value=\"saml:google\"").count(), 1);
    assert!(html.contains(">Google (OpenID Connect)</option>"));
    assert!(html.contains(">Google Workspace (SAML 2.0)</option>"));
    assert!(html.contains("<optgroup label=\"SAML 2.0\">"));
    assert!(
        !html.contains("Where to find these"),
        "the old list named Okta twice"
    );

    let (_, html) = page(&c, &app, "/admin/settings/sso?preset=oidc:google").await;
    let form = new_connection_form(&html);
    assert!(form.contains("name=\"client_secret\""), "{form}");
    assert!(
        !form.contains("metadata_url"),
        "no SAML fields for OpenID: {form}"
    );
    assert!(
        !form.contains("name=\"issuer\""),
        "Google's issuer is fixed: {form}"
    );
    assert!(form.contains("https://accounts.google.com"));

    // A SAML protocol sent with the Google OpenID preset is refused, and the
    // form keeps what was typed (never the secret).
    let create = |body: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = app.url("/admin/settings/sso/connections");
        async move {
            let r = c.post(url).form(&body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) = create(vec![
        ("csrf_token", csrf.clone()),
        ("preset", "oidc:google".into()),
        ("protocol", "saml".into()),
        ("id", "gw".into()),
        ("name", "Google".into()),
        ("client_id", "cid-123".into()),
        ("client_secret", "typed-secret-value".into()),
    ])
    .await;
    assert_eq!(s, 400, "{html}");
    assert!(
        html.contains("Google is a provider for OpenID Connect"),
        "{html}"
    );
    assert!(html.contains("value=\"cid-123\""), "kept what was typed");
    assert!(!html.contains("typed-secret-value"), "never the secret");
    let (s, html) = create(vec![
        ("csrf_token", csrf.clone()),
        ("preset", "saml:nope".into()),
        ("id", "x".into()),
        ("name", "X".into()),
    ])
    .await;
    assert_eq!(s, 400);
    assert!(
        html.contains("There is no SAML 2.0 preset named &#34;nope&#34;"),
        "{html}"
    );
    assert!(html.contains("Okta, OneLogin"), "{html}");
    assert!(
        html.contains("value=\"saml:other\""),
        "the form stays on SAML"
    );

    // The chosen preset creates the connection with its protocol.
    let (s, _) = create(vec![
        ("csrf_token", csrf),
        ("preset", "oidc:other".into()),
        ("id", "corp".into()),
        ("name", "Corp".into()),
        ("issuer", "https://idp.corp.example".into()),
        ("client_id", "gatehouse".into()),
        ("client_secret", "s3cret-value".into()),
    ])
    .await;
    assert_eq!(s, 303);
    let (_, html) = page(&c, &app, "/admin/settings/sso").await;
    assert!(
        html.contains("<td>OpenID Connect</td><td>Other OpenID provider</td>"),
        "{html}"
    );
}

#[actix_web::test]
async fn an_unreachable_identity_provider_says_what_failed() {
    let app = common::spawn().await;
    let token = app.owner_token().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let cases = [
        (
            "refused",
            "http://127.0.0.1:1".to_string(),
            "the connection was refused",
        ),
        (
            "nodns",
            "https://gatehouse-test-host.invalid".to_string(),
            "the host name did not resolve (DNS)",
        ),
        ("status", app.url("/no-such-issuer"), "it answered HTTP 404"),
    ];
    for (id, issuer, words) in cases {
        let (s, body) = common::post(
            &app,
            "/api/v1/sso/connections",
            Some(&token),
            json!({"id": id, "protocol": "oidc", "provider": "other", "name": id,
                   "issuer": issuer, "client_id": "a", "client_secret": "b"}),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let r = c
            .post(app.url(&format!("/admin/settings/sso/{id}/test")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
        let html = r.text().await.unwrap();
        assert!(html.contains(words), "{id}: {html}");
        assert!(!html.contains("Request failed"), "{id}: {html}");
        assert!(html.contains("/.well-known/openid-configuration"), "{html}");
    }
    // SAML metadata fetched at creation says the same.
    let (s, body) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "md", "protocol": "saml", "provider": "other", "name": "MD",
               "metadata_url": "http://127.0.0.1:1/metadata"}),
    )
    .await;
    assert_eq!(s, 400);
    let m = body["error"]["message"].as_str().unwrap();
    assert!(m.contains("the connection was refused"), "{m}");
}

#[actix_web::test]
async fn audit_dashboard_and_sso_pages_in_headless_chromium() {
    let app = common::spawn().await;
    // Real time: the browser's cookies and the chart's hours agree with it.
    {
        use gatehouse::clock::Clock;
        app.clock
            .advance(gatehouse::clock::SystemClock.now() - common::T0);
    }
    let token = app.owner_token().await;
    app.create_user(&token, "bob@example.com", "user").await;
    for _ in 0..3 {
        failed_login(&app, "bob@example.com").await;
    }
    let bob = app
        .api_login("bob@example.com", "amber-meadow-river-77")
        .await;
    for _ in 0..3 {
        let r = common::plain()
            .get(app.url("/api/v1/users"))
            .bearer_auth(bob["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let (s, body) = common::post(
        &app,
        "/api/v1/sso/connections",
        Some(&token),
        json!({"id": "down", "protocol": "oidc", "provider": "other", "name": "Down IdP",
               "issuer": "http://127.0.0.1:1", "client_id": "a", "client_secret": "b"}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let out = common::chromium_walk_async("console_c.mjs", vec![app.base.clone()]).await;
    assert!(out.contains("console_c walk-through passed"), "{out}");
}

/// The chart's first read is bounded by the last week's events and later
/// ones read only what is new: a week of 30,000 sign-in events (failures
/// every third) counts exactly, three more count on the next call, and the
/// time each takes is printed (`--nocapture`) as the measurement.
#[actix_web::test]
async fn the_activity_chart_counts_a_busy_week_in_one_bounded_read() {
    use gatehouse::audit::{NewEvent, Outcome, Source};
    let app = common::spawn().await;
    let start = common::T0;
    let n: i64 = 30_000;
    let step = 7 * 86_400 / n;
    let mut i = 0;
    while i < n {
        let mut tx = app.svc.store.write().unwrap();
        for _ in 0..1_000 {
            let outcome = if i % 3 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            let ev = NewEvent::new("auth.login", outcome).actor("bob@example.com", None);
            gatehouse::audit::record(&mut tx, start + i * step, &Source::default(), ev).unwrap();
            i += 1;
        }
        tx.commit().unwrap();
    }
    app.clock.advance(7 * 86_400 - 1);
    let t = std::time::Instant::now();
    let a = gatehouse::overview::activity(&app.svc).unwrap();
    let took = t.elapsed();
    println!("activity over {n} events: {took:?}");
    assert!(a.complete);
    let days: u32 = a.days.iter().map(|b| b.sign_ins + b.failures).sum();
    let hours: u32 = a.hours.iter().map(|b| b.sign_ins + b.failures).sum();
    // Events that fall inside the 7 days counted once each; the 24 hours a
    // seventh of the week, give or take the bucket edges.
    assert!(days <= n as u32 && days >= (n as u32) * 6 / 7, "{days}");
    assert!((3_500..=5_000).contains(&hours), "{hours}");
    let failures: u32 = a.days.iter().map(|b| b.failures).sum();
    assert!((failures as f64 / days as f64 - 1.0 / 3.0).abs() < 0.01);

    // Three more (one failure): the next call reads only those.
    let mut tx = app.svc.store.write().unwrap();
    for outcome in [Outcome::Success, Outcome::Success, Outcome::Failure] {
        let ev = NewEvent::new("auth.login", outcome).actor("bob@example.com", None);
        gatehouse::audit::record(&mut tx, app.svc.now(), &Source::default(), ev).unwrap();
    }
    tx.commit().unwrap();
    let t = std::time::Instant::now();
    let b = gatehouse::overview::activity(&app.svc).unwrap();
    println!("activity again, 3 new events: {:?}", t.elapsed());
    let last = |a: &gatehouse::overview::Activity| *a.hours.last().unwrap();
    assert_eq!(last(&b).sign_ins, last(&a).sign_ins + 2);
    assert_eq!(last(&b).failures, last(&a).failures + 1);
    assert_eq!(
        b.days.iter().map(|b| b.sign_ins + b.failures).sum::<u32>(),
        days + 3
    );
}
