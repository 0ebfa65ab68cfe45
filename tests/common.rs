//! Spawning Gatehouse for a test, and the HTTP helpers every area uses.

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse::app::Application;
use gatehouse::clock::FixedClock;
use gatehouse::config::Settings;
use gatehouse::service::Service;
use serde_json::Value;

pub const OWNER: &str = "owner@example.com";
pub const OWNER_PW: &str = "violet-harbour-lantern-42";
pub const T0: i64 = 1_800_000_000;

pub struct TestApp {
    pub base: String,
    pub clock: FixedClock,
    pub svc: Arc<Service>,
    pub setup_link: Option<String>,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

/// Lighter Argon2 so the suite stays quick; the production defaults have their own unit test.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        ..Default::default()
    };
    s.password.argon2_memory_kib = 8192;
    s.password.argon2_iterations = 1;
    // Tests sign in often from one address; the limiter has its own tests.
    s.rate_limit.auth_per_minute = 100_000;
    s.rate_limit.auth_burst = 100_000;
    s
}

pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(f: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut s = test_settings(dir.path());
    f(&mut s);
    let data = s.data_dir.clone();
    let clock = FixedClock::new(T0);
    let app = Application::build_with(s, Arc::new(clock.clone()), None)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let svc = app.service();
    let setup_link = app.setup_link().map(str::to_string);
    actix_web::rt::spawn(app.run());
    TestApp {
        base,
        clock,
        svc,
        setup_link,
        data,
        _dir: dir,
    }
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first `name="csrf_token"` field in a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in page: {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Completes setup through the real pages; returns the browser used.
    pub async fn setup_owner(&self) -> reqwest::Client {
        let c = browser();
        let link = self.setup_link.clone().expect("setup link");
        let page = c.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let token = link.split("token=").nth(1).unwrap().to_string();
        let r = c
            .post(self.url("/setup"))
            .form(&[
                ("token", token.as_str()),
                ("email", OWNER),
                ("name", "Olivia Owner"),
                ("password", OWNER_PW),
                ("password_confirm", OWNER_PW),
                ("csrf_token", &csrf_from(&html)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        c
    }

    /// Submits the /login form in a fresh browser; returns it and the answer
    /// (a redirect to /admin, or to /login/mfa when a second factor is due).
    pub async fn password_step(
        &self,
        email: &str,
        pw: &str,
    ) -> (reqwest::Client, reqwest::Response) {
        let c = browser();
        let html = c
            .get(self.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = c
            .post(self.url("/login"))
            .form(&[
                ("email", email),
                ("password", pw),
                ("csrf_token", &csrf_from(&html)),
            ])
            .send()
            .await
            .unwrap();
        (c, r)
    }

    /// Signs in through the /login form; returns the browser and the console's CSRF token.
    pub async fn browser_login(&self, email: &str, pw: &str) -> (reqwest::Client, String) {
        let (c, r) = self.password_step(email, pw).await;
        assert_eq!(r.status(), 303, "login failed");
        assert_eq!(r.headers()["location"], "/admin");
        let html = c
            .get(self.url("/admin/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_from(&html);
        (c, csrf)
    }

    /// Signs in through the form and returns the `name=value` of the session cookie.
    pub async fn login_cookie(&self, email: &str, pw: &str) -> String {
        let c = plain();
        let page = c.get(self.url("/login")).send().await.unwrap();
        let pre = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let html = page.text().await.unwrap();
        let r = c
            .post(self.url("/login"))
            .header("cookie", &pre)
            .form(&[
                ("email", email),
                ("password", pw),
                ("csrf_token", &csrf_from(&html)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    pub async fn api_login(&self, email: &str, pw: &str) -> Value {
        let r = plain()
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Owner set up and signed in over the API; returns the access token.
    pub async fn owner_token(&self) -> String {
        self.setup_owner().await;
        self.api_login(OWNER, OWNER_PW).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn create_user(&self, token: &str, email: &str, role: &str) -> Value {
        let r = plain()
            .post(self.url("/api/v1/users"))
            .bearer_auth(token)
            .json(&serde_json::json!({"email": email, "password": "amber-meadow-river-77", "name": "Test User", "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn audit(&self, token: &str, query: &str) -> Vec<Value> {
        let r = plain()
            .get(self.url(&format!("/api/v1/audit?{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["events"].as_array().unwrap().clone()
    }
}

/// POST a JSON body (with an optional bearer token); the status and the JSON answer.
pub async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = plain().post(app.url(path)).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A security policy with default session settings.
pub fn policy_with(mode: &str, roles: &[&str], methods: &[&str]) -> Value {
    serde_json::json!({
        "mfa": {"mode": mode, "roles": roles, "methods": methods},
        "session": {"idle_timeout_secs": 1800, "absolute_lifetime_secs": 43200, "reauth_window_secs": 600, "single_session": false}
    })
}

/// A TOTP-only policy.
pub fn policy(mode: &str, roles: &[&str]) -> Value {
    policy_with(mode, roles, &["totp"])
}

pub async fn put_policy(app: &TestApp, token: &str, policy: Value) -> (u16, Value) {
    let r = plain()
        .put(app.url("/api/v1/settings/security"))
        .bearer_auth(token)
        .json(&policy)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A third-party peer (an IdP on loopback) started by a test; killed when dropped.
pub struct Peer {
    child: std::process::Child,
    /// What it printed after its `prefix`: the URL it listens at.
    pub url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits for its `PREFIX url` line; `what` says what is
/// missing when it exits first.
pub fn spawn_peer(mut cmd: std::process::Command, prefix: &str, what: &str) -> Peer {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{what}: exited before listening"))
            .unwrap();
        if let Some(u) = line.strip_prefix(prefix) {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Peer { child, url }
}

/// Runs a headless-Chromium walk-through: `node tests/browser/SCRIPT ARGS…
/// SCREENSHOT_DIR` (the directory from `GATEHOUSE_SCREENSHOTS`, or empty).
/// Fails the test with the script's output unless it passed; returns the
/// output. Needs Debian's chromium and `npm ci` in tests/browser, which the
/// README's test command installs.
pub fn chromium_walk(script: &str, args: &[&str]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        root.join("node_modules/playwright-core").exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs chromium and playwright-core: run scripts/test.sh, which installs them"
    );
    let shots = std::env::var("GATEHOUSE_SCREENSHOTS").unwrap_or_default();
    let o = std::process::Command::new("node")
        .current_dir(&root)
        .arg(script)
        .args(args)
        .arg(&shots)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{script}:\n{out}");
    out
}

/// `chromium_walk` from an async test: off the runtime, so the server the
/// script talks to keeps serving.
pub async fn chromium_walk_async(script: &'static str, args: Vec<String>) -> String {
    actix_web::rt::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        chromium_walk(script, &args)
    })
    .await
    .unwrap()
}
