//! Issue 19's first hour, points 5, 6, 8 and 9: credentials need a scope and
//! API apps a name of their own, the copy-once panel says how to use the
//! secret, "Confirm it's you" completes what it interrupted, the workspace
//! page is in tabs, and the navigation says where API keys and encryption
//! keys are. Over HTTP against the running app, then in headless Chromium.

use std::io::{BufRead, BufReader, Write};

use reqwest::Method;
use serde_json::json;

use crate::access::call;
use crate::common::*;

pub async fn get(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn post(c: &reqwest::Client, url: String, form: &[(&str, &str)]) -> reqwest::Response {
    c.post(url).form(form).send().await.unwrap()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

/// A workspace made through the console's form; returns its id.
async fn console_workspace(app: &TestApp, c: &reqwest::Client, csrf: &str, name: &str) -> String {
    let r = post(
        c,
        app.url("/admin/workspaces"),
        &[("csrf_token", csrf), ("name", name), ("join", "1")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.ends_with("?tab=members"), "{to}");
    to["/admin/workspaces/".len()..]
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn credentials_need_a_scope_and_api_apps_a_name_of_their_own() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let (_, ws) = call(
        &app,
        Method::POST,
        "/api/v1/workspaces",
        &owner,
        Some(json!({"name": "Alpha"})),
    )
    .await;
    let ws = ws["id"].as_str().unwrap().to_string();
    // The API: no scopes is a 400 that says what to do.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &owner,
        Some(json!({"workspace": ws, "name": "ci", "scopes": []})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("choose at least one scope"),
        "{v}"
    );
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &owner,
        Some(json!({"workspace": ws, "name": "nightly", "scopes": []})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("scope"));
    // Two apps of one workspace cannot share a name (case aside); another workspace may.
    let body = json!({"workspace": ws, "name": "ci", "scopes": ["read:agents"]});
    let (s, first) = call(&app, Method::POST, "/api/v1/api-apps", &owner, Some(body)).await;
    assert_eq!(s, 201, "{first}");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &owner,
        Some(json!({"workspace": ws, "name": "CI", "scopes": ["read:agents"]})),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists in this workspace"),
        "{v}"
    );
    // Renaming another app onto the name is the same conflict.
    let (_, other) = call(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &owner,
        Some(json!({"workspace": ws, "name": "deploy", "scopes": ["read:agents"]})),
    )
    .await;
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/api-apps/{}", other["id"].as_str().unwrap()),
        &owner,
        Some(json!({"name": "ci"})),
    )
    .await;
    assert_eq!(s, 409);

    // The console says the same in words, and says when an app was made.
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let apps = app.url(&format!("/admin/workspaces/{ws}/apps"));
    let r = post(&c, apps.clone(), &[("csrf_token", &csrf), ("name", "bare")]).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("Choose at least one scope"), "{html}");
    assert!(
        html.contains("id=\"create-app\""),
        "back on the API apps tab"
    );
    let r = post(
        &c,
        apps.clone(),
        &[
            ("csrf_token", &csrf),
            ("name", "ci"),
            ("scope", "read:agents"),
        ],
    )
    .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("already exists"));
    let r = post(
        &c,
        apps,
        &[
            ("csrf_token", &csrf),
            ("name", "pipeline"),
            ("scope", "read:agents"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("tab=apps&created=app_"), "{to}");
    let (_, html) = get(&c, app.url(&to)).await;
    assert!(
        html.contains("API app \u{201c}pipeline\u{201d} created"),
        "{html}"
    );
}

#[actix_web::test]
async fn the_copy_once_panel_has_a_copy_button_and_says_how_to_use_the_secret() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let ws = console_workspace(&app, &c, &csrf, "Support").await;
    let r = post(
        &c,
        app.url(&format!("/admin/workspaces/{ws}/apps")),
        &[
            ("csrf_token", &csrf),
            ("name", "ci"),
            ("scope", "deploy:model"),
        ],
    )
    .await;
    let app_id = location(&r).split("created=").nth(1).unwrap().to_string();
    let r = post(
        &c,
        app.url(&format!("/admin/workspaces/{ws}/apps/{app_id}/keys")),
        &[("csrf_token", &csrf), ("name", "runner")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("?tab=apps&shown="), "{to}");
    let (_, html) = get(&c, app.url(&to)).await;
    assert!(html.contains("id=\"copy-secret\""), "a Copy button");
    let key = html.split("id=\"secret-value\">").nth(1).unwrap();
    let key = &key[..key.find('<').unwrap()];
    assert!(key.starts_with("ghk_"));
    assert!(html.contains(&format!("Authorization: Bearer {key}")));
    // (`&` is escaped as `&#38;` in the page.)
    assert!(
        html.contains(&format!(
            "{}/auth/verify?scope=deploy:model&#38;workspace={ws}",
            app.base
        )),
        "the verify URL, filled in: {html}"
    );
    // A service account's secret: the token URL with its client id.
    let r = post(
        &c,
        app.url(&format!("/admin/workspaces/{ws}/service-accounts")),
        &[
            ("csrf_token", &csrf),
            ("name", "nightly"),
            ("scope", "read:agents"),
        ],
    )
    .await;
    let (_, html) = get(&c, app.url(&location(&r))).await;
    assert!(
        html.contains(&format!("{}/oauth2/token", app.base)),
        "{html}"
    );
    assert!(html.contains("grant_type=client_credentials"));
    let client_id = html.split("-u \"").nth(1).unwrap();
    assert!(client_id.starts_with("sa_"), "{client_id}");
}

#[actix_web::test]
async fn confirm_its_you_says_what_for_and_completes_the_interrupted_action() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let ws = console_workspace(&app, &c, &csrf, "Support").await;
    let r = post(
        &c,
        app.url(&format!("/admin/workspaces/{ws}/apps")),
        &[
            ("csrf_token", &csrf),
            ("name", "ci"),
            ("scope", "read:agents"),
        ],
    )
    .await;
    let app_id = location(&r).split("created=").nth(1).unwrap().to_string();
    // Past the re-authentication window (10 minutes by default).
    app.clock.advance(700);
    let action = format!("/admin/workspaces/{ws}/apps/{app_id}/keys");
    let r = post(
        &c,
        app.url(&action),
        &[
            ("csrf_token", &csrf),
            ("name", "runner"),
            ("client_secret", "do-not-carry-me"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(
        to.starts_with("/admin/reauth?rd=") && to.contains("&resume="),
        "{to}"
    );
    let (s, page) = get(&c, app.url(&to)).await;
    assert_eq!(s, 200);
    assert!(
        page.contains("Confirm your password to create an API key."),
        "{page}"
    );
    assert!(!page.contains("This action changes security settings"));
    assert!(
        page.contains("href=\"/admin/workspaces\" aria-current=\"page\""),
        "the navigation shows the section the user came from"
    );
    let resume = to.split("resume=").nth(1).unwrap();
    let rd = format!("/admin/workspaces/{ws}?tab=apps");
    // A wrong password: the page again, still for the same action.
    let r = post(
        &c,
        app.url("/admin/reauth"),
        &[
            ("csrf_token", &csrf),
            ("password", "not-the-password-1"),
            ("rd", &rd),
            ("resume", resume),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("to create an API key"));
    let r = post(
        &c,
        app.url("/admin/reauth"),
        &[
            ("csrf_token", &csrf),
            ("password", OWNER_PW),
            ("rd", &rd),
            ("resume", resume),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    // The form again, filled in, with a fresh CSRF token and no secret.
    assert!(page.contains(&format!("action=\"{action}\"")), "{page}");
    assert!(page.contains("name=\"name\" value=\"runner\""));
    assert!(!page.contains("do-not-carry-me") && !page.contains(OWNER_PW));
    let fresh = csrf_from(&page);
    let r = post(
        &c,
        app.url(&action),
        &[("csrf_token", &fresh), ("name", "runner")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("shown="), "the key is made: {to}");
    let (_, html) = get(&c, app.url(&to)).await;
    assert!(html.contains("API key runner"), "{html}");
    // A kept form is used once.
    let r = post(
        &c,
        app.url("/admin/reauth"),
        &[
            ("csrf_token", &csrf),
            ("password", OWNER_PW),
            ("rd", &rd),
            ("resume", resume),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), rd);
}

#[actix_web::test]
async fn the_workspace_page_is_in_tabs_and_offers_the_platform_admin_membership() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let (_, list) = get(&c, app.url("/admin/workspaces")).await;
    assert!(list.contains("No workspaces yet"), "{list}");
    assert!(!list.contains("not a member of any workspace"));
    // Created with "add me": the owner is a member, on the members tab.
    let ws = console_workspace(&app, &c, &csrf, "Support").await;
    let (_, html) = get(&c, app.url(&format!("/admin/workspaces/{ws}?tab=members"))).await;
    assert!(html.contains("id=\"member-list\"") && html.contains(OWNER));
    assert!(!html.contains("id=\"join-offer\""));
    for (tab, has, lacks) in [
        ("members", "id=\"add-member\"", "id=\"create-app\""),
        ("roles", "id=\"create-role\"", "id=\"add-member\""),
        ("apps", "id=\"create-app\"", "id=\"create-sa\""),
        ("accounts", "id=\"create-sa\"", "id=\"create-widget\""),
        ("widgets", "id=\"create-widget\"", "id=\"create-role\""),
        ("settings", "id=\"session-limits\"", "id=\"member-list\""),
    ] {
        let (s, html) = get(&c, app.url(&format!("/admin/workspaces/{ws}?tab={tab}"))).await;
        assert_eq!(s, 200);
        assert!(html.contains(has) && !html.contains(lacks), "tab {tab}");
        assert!(
            html.contains(&format!("?tab={tab}\" aria-current=\"page\"")),
            "tab {tab} is marked"
        );
    }
    // Without the tick: not a member, offered to join, and joining works.
    let r = post(
        &c,
        app.url("/admin/workspaces"),
        &[("csrf_token", &csrf), ("name", "Billing")],
    )
    .await;
    let to = location(&r);
    let (_, html) = get(&c, app.url(&to)).await;
    assert!(html.contains("id=\"join-offer\""), "{html}");
    let id = to["/admin/workspaces/".len()..].split('?').next().unwrap();
    let r = post(
        &c,
        app.url(&format!("/admin/workspaces/{id}/members")),
        &[
            ("csrf_token", &csrf),
            ("email", OWNER),
            ("role", "workspace_admin"),
        ],
    )
    .await;
    assert_eq!(location(&r), format!("/admin/workspaces/{id}?tab=members"));
    let (_, html) = get(&c, app.url(&location(&r))).await;
    assert!(!html.contains("id=\"join-offer\"") && html.contains("Workspace Admin"));
}

#[actix_web::test]
async fn navigation_names_encryption_keys_and_api_access_and_shows_signing_keys() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    let (s, html) = get(&c, app.url("/admin/keys")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains(">Encryption keys</a>") && html.contains(">Workspaces &amp; API access</a>")
    );
    let jwks: serde_json::Value = plain()
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let table = &html[html
        .find("id=\"signing-keys\"")
        .expect("signing keys table")..];
    assert!(table.contains(kid) && table.contains("RS256"), "{table}");
    assert!(table.contains("next rotation"), "{table}");
}

/// The walk-through in Chromium. The script asks for the clock to move (to
/// pass the re-authentication window) by printing `ADVANCE <seconds>` and
/// waits for the answer on its stdin.
#[actix_web::test]
async fn first_hour_walk_through_in_chromium() {
    let app = spawn().await;
    app.setup_owner().await;
    let base = app.base.clone();
    let clock = app.clock.clone();
    let out = actix_web::rt::task::spawn_blocking(move || {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let shots = std::env::var("GATEHOUSE_SCREENSHOTS").unwrap_or_default();
        let mut child = std::process::Command::new("node")
            .current_dir(&root)
            .arg("first_hour_b.mjs")
            .arg(&base)
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
            }
            out.push_str(&line);
            out.push('\n');
        }
        let o = child.wait_with_output().unwrap();
        out.push_str(&String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "first_hour_b.mjs:\n{out}");
        out
    })
    .await
    .unwrap();
    assert!(out.contains("first hour (b) walk-through passed"), "{out}");
}

#[actix_web::test]
async fn confirm_its_you_completes_a_security_settings_change() {
    let app = spawn().await;
    app.setup_owner().await;
    let (c, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    app.clock.advance(700);
    let form = [
        ("csrf_token", csrf.as_str()),
        ("mfa_mode", "off"),
        ("idle_minutes", "45"),
        ("absolute_hours", "12"),
        ("reauth_minutes", "10"),
        ("method_totp", "on"),
    ];
    let r = post(&c, app.url("/admin/settings/security"), &form).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    let (_, page) = get(&c, app.url(&to)).await;
    assert!(page.contains("to change the security settings"), "{page}");
    assert!(page.contains("href=\"/admin/settings/security\" aria-current=\"page\""));
    let resume = to.split("resume=").nth(1).unwrap();
    let r = post(
        &c,
        app.url("/admin/reauth"),
        &[
            ("csrf_token", &csrf),
            ("password", OWNER_PW),
            ("rd", "/admin/settings/security"),
            ("resume", resume),
        ],
    )
    .await;
    let page = r.text().await.unwrap();
    assert!(
        page.contains("name=\"idle_minutes\" value=\"45\""),
        "{page}"
    );
    let mut again: Vec<(&str, String)> = vec![("csrf_token", csrf_from(&page))];
    for (k, v) in &form[1..] {
        again.push((k, v.to_string()));
    }
    let r = c
        .post(app.url("/admin/settings/security"))
        .form(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = get(&c, app.url("/admin/settings/security")).await;
    assert!(html.contains("value=\"45\""), "{html}");
}
