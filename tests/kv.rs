//! The KV v2 secrets store at `/v1/secret/` (issue 14): hvac, the real
//! Vault client, drives a secret through its whole life (tests/peers/kv_hvac.py);
//! raw HTTP sends the attacks — a narrowed scope reaching outside its prefix
//! (also through `..`, encoded slashes and LIST), another workspace's
//! secrets, missing permissions, bad bodies; the data directory holds no
//! value in the clear; the console's Secrets page shows a value only on an
//! audited Reveal by a holder of `secrets:read`, in headless Chromium too.

use std::io::{Read, Write};
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{self, TestApp, plain};

async fn ok(app: &TestApp, m: Method, path: &str, token: &str, body: Value) -> Value {
    let r = plain()
        .request(m, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

async fn workspace(app: &TestApp, owner: &str, name: &str) -> String {
    ok(
        app,
        Method::POST,
        "/api/v1/workspaces",
        owner,
        json!({"name": name}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An API key of workspace `ws` with `scopes`.
async fn api_key(app: &TestApp, owner: &str, ws: &str, scopes: &[&str]) -> String {
    let a = ok(
        app,
        Method::POST,
        "/api/v1/api-apps",
        owner,
        json!({"name": format!("kv {}", scopes.join(" ")), "workspace": ws, "scopes": scopes}),
    )
    .await;
    let k = ok(
        app,
        Method::POST,
        &format!("/api/v1/api-apps/{}/keys", a["id"].as_str().unwrap()),
        owner,
        json!({"name": "runner"}),
    )
    .await;
    k["key"].as_str().unwrap().to_string()
}

/// A Vault call over HTTP with `X-Vault-Token`: the status and the JSON answer.
async fn vault(
    app: &TestApp,
    m: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = plain()
        .request(Method::from_bytes(m.as_bytes()).unwrap(), app.url(path))
        .header("X-Vault-Token", token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A request written byte for byte (no client normalises its path: `..`
/// and `%2F` arrive as sent); the status and the body.
async fn raw(app: &TestApp, m: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://").to_string();
    let req = format!(
        "{m} {path} HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    actix_web::rt::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    })
    .await
    .unwrap()
}

/// Runs tests/peers/kv_hvac.py off the runtime (the server keeps serving);
/// fails the test with its output unless it printed OK.
async fn hvac(args: Vec<String>) -> String {
    actix_web::rt::task::spawn_blocking(move || {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "the KV tests need the test venv with hvac: run scripts/test.sh"
        );
        let o = std::process::Command::new(python)
            .arg(root.join("tests/peers/kv_hvac.py"))
            .args(&args)
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && out.contains("OK"),
            "hvac {args:?}:\n{out}"
        );
        out
    })
    .await
    .unwrap()
}

/// Whether any file under `dir` contains `needle`, byte for byte (`grep -a -r`).
fn found_in(dir: &Path, needle: &[u8]) -> Option<String> {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let kind = std::fs::symlink_metadata(&p).unwrap().file_type();
        if kind.is_dir() {
            if let Some(f) = found_in(&p, needle) {
                return Some(f);
            }
        } else if kind.is_file()
            && std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        {
            return Some(p.display().to_string());
        }
    }
    None
}

fn all_text(events: &[Value]) -> String {
    serde_json::to_string(events).unwrap()
}

#[actix_web::test]
async fn hvac_drives_a_secret_through_its_whole_life_and_nothing_is_kept_in_the_clear() {
    let app = common::spawn().await;
    let owner = app.owner_token().await;
    let ws = workspace(&app, &owner, "Payments").await;
    let key = api_key(
        &app,
        &owner,
        &ws,
        &["secrets:read", "secrets:write", "secrets:admin"],
    )
    .await;
    let secret = format!("whsec-{}", gatehouse::crypto::random_token().unwrap());
    hvac(vec![
        "full".into(),
        app.base.clone(),
        key.clone(),
        secret.clone(),
    ])
    .await;

    // Changes are audited one by one, reads counted per minute; no value anywhere.
    let events = app.audit(&owner, "action=secrets.").await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "secrets.write",
        "secrets.delete",
        "secrets.undelete",
        "secrets.destroy",
        "secrets.metadata",
        "secrets.metadata_delete",
        "secrets.config",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    let w = events
        .iter()
        .find(|e| e["action"] == "secrets.write")
        .unwrap();
    assert_eq!(w["workspace"], ws.as_str());
    assert!(w["target"].as_str().unwrap().starts_with("secret/"));
    assert!(
        !actions.contains(&"secrets.read"),
        "a read costs no commit of its own"
    );
    gatehouse::vault::flush_access(&app.svc, true).unwrap();
    let reads = app.audit(&owner, "action=secrets.read").await;
    let stripe = reads
        .iter()
        .find(|e| e["target"] == "secret/webhooks/stripe")
        .unwrap_or_else(|| panic!("no aggregated read of webhooks/stripe: {reads:?}"));
    assert!(
        stripe["details"]["count"].as_u64().unwrap() >= 5,
        "{stripe}"
    );
    let everything = app.audit(&owner, "").await;
    assert!(!all_text(&everything).contains(&secret));
    assert!(!all_text(&everything).contains(&key));

    // `grep -a` over the data directory: neither a value nor a path.
    drop(everything);
    assert_eq!(found_in(&app.data, secret.as_bytes()), None);
    assert_eq!(found_in(&app.data, b"webhooks/stripe"), None);
    assert_eq!(
        found_in(&app.data, b"payments"),
        None,
        "custom metadata is sealed too"
    );
}

#[actix_web::test]
async fn scopes_namespaces_and_paths_keep_every_caller_inside_its_own() {
    let app = common::spawn().await;
    let owner = app.owner_token().await;
    let ws_a = workspace(&app, &owner, "Alpha").await;
    let ws_b = workspace(&app, &owner, "Beta").await;
    let full = api_key(&app, &owner, &ws_a, &["secrets:read", "secrets:write"]).await;
    for (path, v) in [
        ("webhooks/stripe", "a-stripe"),
        ("rotating", "a-rotating"),
        ("webhooks-old/x", "a-old"),
    ] {
        let (s, body) = vault(
            &app,
            "POST",
            &format!("/v1/secret/data/{path}"),
            &full,
            Some(json!({"data": {"signing_secret": v}})),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["data"]["version"], 1);
    }

    // A key narrowed to webhooks/ reads and lists inside it, nothing else (hvac).
    let narrow = api_key(&app, &owner, &ws_a, &["secrets:read:webhooks/"]).await;
    hvac(vec!["narrow".into(), app.base.clone(), narrow.clone()]).await;

    // … nor by spelling a path outside it in a way that resolves inside, or the reverse.
    for (m, path) in [
        ("GET", "/v1/secret/data/webhooks/../rotating"),
        ("GET", "/v1/secret/data/webhooks/%2e%2e/rotating"),
        ("GET", "/v1/secret/data/webhooks%2F..%2Frotating"),
        ("GET", "/v1/secret/data/webhooks/%2Fstripe"),
        ("GET", "/v1/secret/data/webhooks//stripe"),
        ("GET", "/v1/secret/data/webhooks/./stripe"),
        ("LIST", "/v1/secret/metadata/webhooks/.."),
        ("GET", "/v1/secret/metadata/webhooks/..?list=true"),
    ] {
        let (s, body) = raw(&app, m, path, &narrow, "").await;
        assert_eq!(s, 400, "{m} {path}: {body}");
        assert!(body.contains("\"errors\""), "{m} {path}: {body}");
        assert!(!body.contains("a-rotating"), "{body}");
    }
    for (m, path) in [
        ("LIST", "/v1/secret/metadata/"),
        ("LIST", "/v1/secret/metadata"),
        ("GET", "/v1/secret/metadata/?list=true"),
        ("LIST", "/v1/secret/metadata/webhooks-old"),
        ("GET", "/v1/secret/data/webhooks-old/x"),
        ("GET", "/v1/secret/data/webhooksx"),
        ("GET", "/v1/secret/config"),
    ] {
        let (s, body) = raw(&app, m, path, &narrow, "").await;
        assert_eq!(s, 403, "{m} {path}: {body}");
        assert!(!body.contains("a-"), "{body}");
    }
    let (s, body) = raw(&app, "LIST", "/v1/secret/metadata/webhooks/", &narrow, "").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"stripe\""), "{body}");

    // Another workspace's key sees its own empty store under the same names.
    let other = api_key(&app, &owner, &ws_b, &["secrets:read", "secrets:write"]).await;
    let (s, body) = vault(&app, "GET", "/v1/secret/data/webhooks/stripe", &other, None).await;
    assert_eq!(s, 404, "{body}");
    assert!(!body.to_string().contains("a-stripe"));
    let (s, _) = vault(&app, "LIST", "/v1/secret/metadata/", &other, None).await;
    assert_eq!(s, 404, "nothing listed in B");
    // … and naming A as its namespace is refused.
    let r = plain()
        .get(app.url("/v1/secret/data/webhooks/stripe"))
        .header("X-Vault-Token", &other)
        .header("X-Vault-Namespace", &ws_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // B writes the same path: A's value is untouched.
    let (s, _) = vault(
        &app,
        "POST",
        "/v1/secret/data/webhooks/stripe",
        &other,
        Some(json!({"data": {"signing_secret": "b-stripe"}})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, a) = vault(&app, "GET", "/v1/secret/data/webhooks/stripe", &full, None).await;
    assert_eq!(a["data"]["data"]["signing_secret"], "a-stripe");
    assert_eq!(a["data"]["metadata"]["version"], 1);

    // Each operation needs its own permission.
    let reader = api_key(&app, &owner, &ws_a, &["secrets:read"]).await;
    let (s, _) = vault(
        &app,
        "POST",
        "/v1/secret/data/rotating",
        &reader,
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    assert_eq!(s, 403, "read cannot write");
    let (s, _) = vault(&app, "DELETE", "/v1/secret/data/rotating", &reader, None).await;
    assert_eq!(s, 403, "read cannot delete");
    for (m, path, body) in [
        (
            "POST",
            "/v1/secret/destroy/rotating",
            json!({"versions": [1]}),
        ),
        ("DELETE", "/v1/secret/metadata/rotating", Value::Null),
        ("POST", "/v1/secret/config", json!({"max_versions": 1})),
    ] {
        let (s, _) = vault(&app, m, path, &full, Some(body)).await;
        assert_eq!(s, 403, "{m} {path}: write is not admin");
    }
    let (s, v) = vault(&app, "GET", "/v1/secret/data/rotating", &full, None).await;
    assert_eq!(
        (s, &v["data"]["data"]["signing_secret"]),
        (200, &json!("a-rotating"))
    );
    let (s, _) = vault(
        &app,
        "GET",
        "/v1/secret/data/rotating",
        "ghk_not_a_key",
        None,
    )
    .await;
    assert_eq!(s, 403, "an unknown token is refused as Vault does");
    let transit_only = api_key(&app, &owner, &ws_a, &["transit:encrypt"]).await;
    let (s, _) = vault(&app, "GET", "/v1/secret/data/rotating", &transit_only, None).await;
    assert_eq!(s, 403);

    // The refusals are audited.
    let denied = app.audit(&owner, "action=access.denied").await;
    assert!(
        all_text(&denied).contains("secrets:read"),
        "{}",
        all_text(&denied)
    );
}

#[actix_web::test]
async fn bad_bodies_and_paths_get_a_clear_400_in_vaults_envelope() {
    let app = common::spawn().await;
    let owner = app.owner_token().await;
    let ws = workspace(&app, &owner, "Alpha").await;
    let key = api_key(
        &app,
        &owner,
        &ws,
        &["secrets:read", "secrets:write", "secrets:admin"],
    )
    .await;
    for (m, path, body, words) in [
        ("POST", "/v1/secret/data/a", "{not json", "JSON"),
        ("POST", "/v1/secret/data/a", r#"{"data": "x"}"#, "data"),
        (
            "POST",
            "/v1/secret/data/a",
            r#"{"options": {}}"#,
            "no data provided",
        ),
        (
            "POST",
            "/v1/secret/data/a",
            r#"{"data": {}, "options": {"cas": "x"}}"#,
            "check-and-set",
        ),
        ("POST", "/v1/secret/data/a/", r#"{"data": {}}"#, "folder"),
        (
            "POST",
            "/v1/secret/delete/a",
            r#"{"versions": []}"#,
            "no version number provided",
        ),
        (
            "POST",
            "/v1/secret/destroy/a",
            r#"{"versions": ["one"]}"#,
            "versions",
        ),
        (
            "POST",
            "/v1/secret/metadata/a",
            r#"{"delete_version_after": "soon"}"#,
            "duration",
        ),
        (
            "POST",
            "/v1/secret/metadata/a",
            r#"{"max_versions": -3}"#,
            "max_versions",
        ),
        (
            "POST",
            "/v1/secret/metadata/a",
            r#"{"custom_metadata": {"k": ""}}"#,
            "custom_metadata validation failed",
        ),
        ("GET", "/v1/secret/data/a?version=x", "", "version"),
        ("GET", "/v1/secret/nonsense/a", "", "secret/"),
    ] {
        let (s, b) = raw(&app, m, path, &key, body).await;
        assert!(
            s == 400 || s == 404 || s == 405,
            "{m} {path} {body}: {s} {b}"
        );
        let v: Value = serde_json::from_str(&b).unwrap_or_else(|_| panic!("{m} {path}: {b}"));
        let errs = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{m} {path}: {b}"));
        assert!(
            errs.iter().any(|e| e.as_str().unwrap().contains(words)),
            "{m} {path} {body}: {b}"
        );
    }
    // A long path, and a data object nobody wrote, stay refused or missing.
    let long = format!("/v1/secret/data/{}", "a".repeat(300));
    let (s, _) = raw(&app, "GET", &long, &key, "").await;
    assert_eq!(s, 400);
    let (s, b) = vault(&app, "GET", "/v1/secret/data/never-written", &key, None).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["errors"], json!([]), "Vault's empty 404: {b}");
}

/// A member with a custom role in `ws`: their browser and console CSRF token.
async fn member_with(
    app: &TestApp,
    owner: &str,
    ws: &str,
    email: &str,
    permissions: &[&str],
) -> (reqwest::Client, String) {
    app.create_user(owner, email, "user").await;
    let role = ok(
        app,
        Method::POST,
        "/api/v1/roles",
        owner,
        json!({"workspace": ws, "name": format!("kv {email}"), "permissions": permissions}),
    )
    .await;
    ok(
        app,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/members"),
        owner,
        json!({"email": email, "roles": [role["id"]]}),
    )
    .await;
    app.browser_login(email, "amber-meadow-river-77").await
}

#[actix_web::test]
async fn the_console_shows_a_value_only_on_an_audited_reveal_by_a_reader() {
    let app = common::spawn().await;
    let owner = app.owner_token().await;
    let ws = workspace(&app, &owner, "Alpha").await;
    let secret = format!("console-{}", gatehouse::crypto::random_token().unwrap());
    let page = format!("/admin/workspaces/{ws}/secrets");

    // A secrets admin who may not read: writes, deletes, destroys; never sees a value.
    let (c, csrf) = member_with(
        &app,
        &owner,
        &ws,
        "keeper@example.com",
        &["secrets:write", "secrets:admin"],
    )
    .await;
    let r = c
        .post(app.url(&page))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("path", "webhooks/stripe"),
            ("data", &format!("{{\"signing_secret\": \"{secret}\"}}")),
            ("cas", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = c
        .get(app.url(&page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("webhooks/stripe") && html.contains("v1"));
    assert!(!html.contains(&secret));
    assert!(
        !html.contains("button.reveal") && !html.contains(">Reveal<"),
        "no Reveal without secrets:read"
    );
    assert!(html.contains("Destroy…"));
    let r = c
        .post(app.url(&format!("{page}/reveal")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("path", "webhooks/stripe"),
            ("version", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.text().await.unwrap().contains(&secret));
    // A second version with check-and-set: a stale cas is refused in words.
    let r = c
        .post(app.url(&page))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("path", "webhooks/stripe"),
            ("data", r#"{"signing_secret": "second"}"#),
            ("cas", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let t = r.text().await.unwrap();
    assert!(t.contains("check-and-set"), "{t}");
    assert!(!t.contains("second"), "the refused value is not shown back");
    // Bad JSON is refused in words; a forged form without the CSRF token is refused.
    let r = c
        .post(app.url(&page))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("path", "x"),
            ("data", "nope"),
            ("cas", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = c
        .post(app.url(&page))
        .form(&[
            ("csrf_token", "forged"),
            ("path", "x"),
            ("data", "{}"),
            ("cas", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A reader reveals: the value appears on that answer only, uncached, and audited.
    let (rc, rcsrf) = member_with(&app, &owner, &ws, "reader@example.com", &["secrets:read"]).await;
    let html = rc
        .get(app.url(&page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&secret));
    assert!(html.contains(">Reveal<"));
    assert!(
        !html.contains("write-secret"),
        "a reader gets no write form"
    );
    let r = rc
        .post(app.url(&format!("{page}/reveal")))
        .form(&[
            ("csrf_token", rcsrf.as_str()),
            ("path", "webhooks/stripe"),
            ("version", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().await.unwrap().contains(&secret));
    let reveals = app.audit(&owner, "action=secrets.reveal").await;
    assert_eq!(reveals.len(), 1, "{reveals:?}");
    assert_eq!(reveals[0]["actor"], "reader@example.com");
    assert_eq!(reveals[0]["target"], "secret/webhooks/stripe");
    assert!(!all_text(&reveals).contains(&secret));
    // The reader may not delete or destroy.
    let r = rc
        .post(app.url(&format!("{page}/delete")))
        .form(&[
            ("csrf_token", rcsrf.as_str()),
            ("path", "webhooks/stripe"),
            ("version", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = rc
        .get(app.url(&format!("{page}/destroy?path=webhooks/stripe&version=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The keeper destroys; the version is gone for everyone.
    let r = c
        .post(app.url(&format!("{page}/destroy?path=webhooks%2Fstripe&version=1")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = rc
        .post(app.url(&format!("{page}/reveal")))
        .form(&[
            ("csrf_token", rcsrf.as_str()),
            ("path", "webhooks/stripe"),
            ("version", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains(&secret));

    // A member of another workspace, and a stranger, get nothing.
    let ws_b = workspace(&app, &owner, "Beta").await;
    let (oc, _) = member_with(&app, &owner, &ws_b, "other@example.com", &["secrets:read"]).await;
    let r = oc.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = plain().get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), 303, "signed out: to the sign-in page");
}

#[actix_web::test]
async fn the_secrets_page_in_headless_chromium() {
    let app = common::spawn().await;
    let owner = app.owner_token().await;
    let ws = workspace(&app, &owner, "Alpha").await;
    let key = api_key(&app, &owner, &ws, &["secrets:write"]).await;
    let secret = format!("chromium-{}", gatehouse::crypto::random_token().unwrap());
    for v in [secret.as_str(), "second-version"] {
        let (s, _) = vault(
            &app,
            "POST",
            "/v1/secret/data/webhooks/stripe",
            &key,
            Some(json!({"data": {"signing_secret": v}})),
        )
        .await;
        assert_eq!(s, 200);
    }
    let out =
        common::chromium_walk_async("secrets.mjs", vec![app.base.clone(), ws.clone(), secret])
            .await;
    assert!(out.contains("secrets walk-through passed"), "{out}");
    assert_eq!(app.audit(&owner, "action=secrets.reveal").await.len(), 1);
}
