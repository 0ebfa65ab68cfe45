//! Issue 19, points 12–18: what an operator or client meets in the first hour
//! at the API, the protocol endpoints and the command line — OAuth errors as
//! RFC 6749 §5.2 JSON whatever the body, 405 with `Allow`, messages that echo
//! the unknown name, password rules that say what they check, config errors
//! naming key and line, `--listen localhost:…`, plain logs off a terminal.

use serde_json::Value;

use crate::common::*;

/// Sends `body` with `content_type` (none when `None`) to an OAuth endpoint.
async fn oauth_post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let mut rb = plain().post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{path} answered {status} {ct}: {text}"));
    (status, ct, v)
}

#[actix_web::test]
async fn oauth_endpoints_answer_every_error_as_oauth_json() {
    let app = spawn().await;
    let big = vec![b'a'; 70 * 1024];
    let huge = vec![b'a'; 300 * 1024];
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
            (
                Some("application/json"),
                br#"{"grant_type":"client_credentials"}"#.to_vec(),
                400,
                "x-www-form-urlencoded",
            ),
            (
                None,
                b"grant_type=client_credentials".to_vec(),
                400,
                "x-www-form-urlencoded",
            ),
            (
                Some("text/plain"),
                b"token=x".to_vec(),
                400,
                "x-www-form-urlencoded",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                b"token=%ff%fe&\xff".to_vec(),
                400,
                "malformed",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                big.clone(),
                413,
                "larger than the limit",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                huge.clone(),
                413,
                "larger than the limit",
            ),
        ];
        for (ct, body, status, says) in cases {
            let (s, got_ct, v) = oauth_post(&app, path, ct, body).await;
            assert_eq!(s, status, "{path} {ct:?}: {v}");
            assert!(
                got_ct.starts_with("application/json"),
                "{path} {ct:?}: {got_ct}"
            );
            assert_eq!(v["error"], "invalid_request", "{path} {ct:?}: {v}");
            let d = v["error_description"].as_str().unwrap();
            assert!(d.contains(says), "{path} {ct:?}: {d}");
        }
    }
}

#[actix_web::test]
async fn the_api_says_to_send_json_when_the_content_type_is_missing_or_wrong() {
    let app = spawn().await;
    let body = r#"{"email":"a@example.com","password":"x"}"#;
    // None: 400 like any missing input; another type: 415.
    for (ct, status, code) in [
        (None, 400, "invalid_request"),
        (Some("text/plain"), 415, "unsupported_media_type"),
        (
            Some("application/x-www-form-urlencoded"),
            415,
            "unsupported_media_type",
        ),
    ] {
        let mut rb = plain().post(app.url("/api/v1/auth/login")).body(body);
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), status, "{ct:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("Content-Type: application/json"), "{m}");
    }
}

#[actix_web::test]
async fn a_wrong_method_on_a_known_path_is_405_with_allow() {
    let app = spawn().await;
    let c = plain();
    // (method, path, Allow, the error's shape)
    let cases = [
        ("GET", "/oauth2/token", "POST", "oauth"),
        ("PUT", "/oauth2/introspect", "POST", "oauth"),
        ("DELETE", "/api/v1/users", "GET, POST", "api"),
        (
            "PUT",
            "/api/v1/users/usr_0123456789abcdef0123",
            "GET, PATCH, DELETE",
            "api",
        ),
        ("POST", "/api/v1/me", "GET", "api"),
        ("DELETE", "/api/v1/sso/settings", "GET, PUT", "api"),
        ("POST", "/.well-known/openid-configuration", "GET", "api"),
        ("DELETE", "/login", "GET, POST", "page"),
        ("GET", "/logout", "POST", "page"),
        ("POST", "/admin/audit", "GET", "page"),
        ("PATCH", "/admin/users", "GET, POST", "page"),
        ("GET", "/sso/saml/okta/acs", "POST", "page"),
    ];
    for (method, path, allow, shape) in cases {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = c.request(m, app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
        let text = r.text().await.unwrap();
        match shape {
            "oauth" => {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["error"], "invalid_request", "{v}");
                assert!(
                    v["error_description"]
                        .as_str()
                        .unwrap()
                        .contains("use POST")
                );
            }
            "api" => {
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path}: {text}"));
                assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
            }
            _ => assert!(
                text.contains("is not served at this address"),
                "{method} {path}: {text}"
            ),
        }
    }
    // Unknown paths stay 404, and the right method still works.
    let r = c
        .delete(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[actix_web::test]
async fn an_unknown_permission_is_echoed_back() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let check = |v: &Value, want: &str| {
        let m = v["error"]["message"]
            .as_str()
            .or(v["error_description"].as_str())
            .unwrap_or_else(|| panic!("{v}"))
            .to_string();
        assert!(m.contains(want), "{m}");
        assert!(!m.chars().any(char::is_control), "{m:?}");
        m
    };
    let (s, v) = post(
        &app,
        "/api/v1/authorize",
        Some(&token),
        serde_json::json!({"credential": token, "scope": "raed:agents"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    check(&v, "unknown permission `raed:agents`");
    // A long name with control characters comes back short and clean.
    let evil = format!("raed:agents\u{1b}[2J\r\nX-Injected: 1{}", "z".repeat(400));
    let (s, v) = post(
        &app,
        "/api/v1/service-accounts",
        Some(&token),
        serde_json::json!({"name": "bot", "scopes": ["read:agents", evil]}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let m = check(&v, "unknown permission `raed:agents[2JX-Injected: 1zzz");
    assert!(m.len() < 200, "{m}");
    // Forward auth says the same.
    let r = plain()
        .get(app.url("/auth/verify?scope=raed:agents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("unknown permission `raed:agents`"), "{text}");
}

#[actix_web::test]
async fn the_password_rule_says_what_it_checks_and_to_whom() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let alice = app.create_user(&token, "alice@example.com", "user").await;
    let id = alice["id"].as_str().unwrap();
    let msg = |v: &Value| v["error"]["message"].as_str().unwrap().to_string();
    // The admin setting alice's password is told it is alice's e-mail.
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{id}/password"),
        Some(&token),
        serde_json::json!({"password": "my-alice-secret-99"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        msg(&v),
        "password: the password you set for alice@example.com must not contain the part of \
         their e-mail address before the @ (\"alice\")"
    );
    let (s, v) = post(
        &app,
        "/api/v1/users",
        Some(&token),
        serde_json::json!({"email": "bob@example.com", "password": "short", "role": "user"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        msg(&v).starts_with(
            "password: the password you set for bob@example.com must be at least 12 characters"
        ),
        "{v}"
    );
    // Alice choosing her own is spoken to directly.
    let at = app
        .api_login("alice@example.com", "amber-meadow-river-77")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = post(
        &app,
        "/api/v1/me/password",
        Some(&at),
        serde_json::json!({"current_password": "amber-meadow-river-77", "password": "Alice-Wonderland-7"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        msg(&v),
        "password: must not contain the part of your e-mail address before the @ (\"alice\")"
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// `gatehouse serve` with `args`, stopped once it printed where it listens
/// (or exited); returns its stdout and stderr.
fn serve_once(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    use std::io::{BufRead, BufReader};
    let mut c = std::process::Command::new(BIN);
    c.arg("serve")
        .args(args)
        .env("GATEHOUSE_DATA", dir.join("data"))
        .env("GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB", "8192")
        .env_remove("GATEHOUSE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut out = String::new();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("Gatehouse listening on ") {
            break;
        }
    }
    // SIGTERM, for a graceful stop.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let o = child.wait_with_output().unwrap();
    out.push_str(&String::from_utf8_lossy(&o.stdout));
    (out, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn listen_takes_localhost_and_logs_are_plain_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = serve_once(dir.path(), &["--listen", "localhost:0"], &[]);
    assert!(
        out.contains("Gatehouse listening on http://127.0.0.1:"),
        "{out}\n{err}"
    );
    // Not a terminal: no colour codes; actix's start-up lines wait for debug.
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("gatehouse listening"), "{err}");
    for noise in [" workers", "Actix runtime found", "starting service"] {
        assert!(!err.contains(noise), "{noise}: {err}");
    }
    let (_, err) = serve_once(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[("GATEHOUSE_LOG", "debug")],
    );
    // Logged while building, before "listening" (the later ones may not have
    // been written when the server is stopped).
    assert!(
        err.contains("INFO actix_server::builder: starting"),
        "{err}"
    );
    // A listen address that is no address says what to use.
    let o = std::process::Command::new(BIN)
        .args(["serve", "--listen", "localhost"])
        .env("GATEHOUSE_DATA", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("use an IP:port such as 127.0.0.1:8080"), "{e}");
}

#[test]
fn a_config_value_of_the_wrong_type_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gatehouse.toml");
    std::fs::write(
        &cfg,
        "# Gatehouse\nlisten = \"127.0.0.1:0\"\n\n[password]\nargon2_iterations = 2\n\nmin_length = \"twelve\"\n",
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(BIN);
        c.args(args).env("GATEHOUSE_DATA", dir.path().join("data"));
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, e) = run(&["--config", cfg.to_str().unwrap(), "config", "check"], &[]);
    assert_eq!(code, Some(2), "{e}");
    assert!(
        e.contains(
            "password.min_length: expected a whole number (0 or more), got \"twelve\" \
             (gatehouse.toml line 7)"
        ),
        "{e}"
    );
    let (code, e) = run(
        &["config", "check"],
        &[("GATEHOUSE_LOCKOUT_MAX_FAILURES", "five")],
    );
    assert_eq!(code, Some(2), "{e}");
    assert!(
        e.contains("lockout.max_failures: expected")
            && e.contains(
                "got \"five\" (from the environment variable GATEHOUSE_LOCKOUT_MAX_FAILURES)"
            ),
        "{e}"
    );
}
