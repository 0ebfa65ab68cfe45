//! The real executable: serve, the local admin commands over the control
//! socket, refusal of unusable data directories, bootstrap, SIGTERM, backup
//! and restore.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

use crate::common::{OWNER, OWNER_PW, csrf_from};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

pub(crate) fn cmd(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GATEHOUSE_DATA", data)
        .env("GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB", "8192")
        .env("GATEHOUSE_PASSWORD_ARGON2_ITERATIONS", "1")
        .env("GATEHOUSE_RATE_LIMIT_AUTH_BURST", "10000");
    c
}

fn run(data: &Path, args: &[&str]) -> Output {
    cmd(data).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) struct Server {
    child: Child,
    base: String,
    pub(crate) setup_link: Option<String>,
}

impl Server {
    pub(crate) fn start(data: &Path, env: &[(&str, &str)]) -> Server {
        let mut c = cmd(data);
        c.args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut setup_link = None;
        let base = loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("server exited before listening: {err}");
            }
            if let Some(l) = line.trim().strip_prefix("http") {
                setup_link = Some(format!("http{l}"));
            }
            if let Some(url) = line.trim().strip_prefix("Gatehouse listening on ") {
                break url.to_string();
            }
        };
        std::thread::spawn(move || for _ in out.lines() {});
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(err).lines() {});
        Server {
            child,
            base,
            setup_link,
        }
    }

    pub(crate) fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    /// SIGTERM, then wait: a graceful stop exits 0.
    fn stop(mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let code = self.child.wait().unwrap();
        assert!(code.success(), "graceful stop exits 0, got {code:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn setup_via_link(s: &Server, link: &str) {
    let c = crate::common::browser();
    let html = c.get(link).send().await.unwrap().text().await.unwrap();
    let token = link.split("token=").nth(1).unwrap();
    let r = c
        .post(s.url("/setup"))
        .form(&[
            ("token", token),
            ("email", OWNER),
            ("password", OWNER_PW),
            ("password_confirm", OWNER_PW),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

async fn api_login(s: &Server, email: &str, pw: &str) -> reqwest::StatusCode {
    crate::common::plain()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": pw}))
        .send()
        .await
        .unwrap()
        .status()
}

#[actix_web::test]
async fn serve_admin_commands_sigterm_backup_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    let meta = std::fs::metadata(data.join("master.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    // A setup link from the CLI (over the socket) replaces the printed one.
    let printed = s.setup_link.clone().unwrap();
    let o = run(&data, &["setup-link"]);
    assert!(o.status.success(), "{}", text(&o));
    let link = text(&o)
        .lines()
        .find_map(|l| l.trim().strip_prefix("http").map(|r| format!("http{r}")))
        .unwrap();
    assert_ne!(link, printed);
    assert_eq!(
        crate::common::browser()
            .get(&printed)
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "older link stops working"
    );
    setup_via_link(&s, &link).await;
    assert_eq!(api_login(&s, OWNER, OWNER_PW).await, 200);

    // A second server on the same directory is refused; the first keeps serving.
    let o = run(&data, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already running"), "{}", text(&o));
    assert_eq!(
        crate::common::plain()
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Local admin commands while serving.
    let o = run(&data, &["keys", "rotate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("version 2 is active"));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("records re-sealed"),
        "progress bar on stderr"
    );
    let o = run(&data, &["keys", "status"]);
    let st = text(&o);
    let v1 = st.lines().find(|l| l.starts_with("1 ")).unwrap();
    assert!(v1.trim_end().ends_with(" 0"), "{st}");
    let o = run(&data, &["audit", "verify"]);
    assert!(
        o.status.success() && text(&o).starts_with("OK"),
        "{}",
        text(&o)
    );
    let o = run(&data, &["recover", OWNER]);
    assert!(o.status.success() && text(&o).contains("/recover?token="));
    let backup = dir.path().join("backup.redb");
    let o = run(&data, &["backup", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    // SIGTERM: graceful stop, nothing lost.
    s.stop();
    let s = Server::start(&data, &[]);
    assert!(s.setup_link.is_none());
    assert_eq!(api_login(&s, OWNER, OWNER_PW).await, 200);
    drop(s);

    // Restore onto a fresh directory with the same master key.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::copy(data.join("master.key"), fresh.join("master.key")).unwrap();
    let o = run(&fresh, &["restore", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let s = Server::start(&fresh, &[]);
    assert_eq!(api_login(&s, OWNER, OWNER_PW).await, 200);
    drop(s);
    // A different master key cannot restore it.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("master.key"), [9u8; 32]).unwrap();
    let o = run(&other, &["restore", backup.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("does not match"), "{}", text(&o));
}

fn refused(data: &Path, expect: &str) {
    let o = run(data, &["serve", "--listen", "127.0.0.1:0"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(expect), "expected {expect:?} in: {t}");
    assert!(!t.contains("panicked"), "{t}");
}

fn prepared_data_dir(root: &Path) -> PathBuf {
    let data = root.join("data");
    drop(Server::start(&data, &[]));
    data
}

#[test]
fn unusable_data_directories_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared_data_dir(dir.path());
    let key = std::fs::read(data.join("master.key")).unwrap();

    std::fs::remove_file(data.join("master.key")).unwrap();
    refused(&data, "master.key is missing");
    assert!(
        !data.join("master.key").exists(),
        "no new key over existing data"
    );

    std::fs::write(data.join("master.key"), [1u8; 32]).unwrap();
    refused(&data, "does not match this database");
    std::fs::write(data.join("master.key"), b"short").unwrap();
    refused(&data, "exactly 32 bytes");
    std::fs::write(data.join("master.key"), &key).unwrap();

    let db = data.join("gatehouse.redb");
    let good = std::fs::read(&db).unwrap();
    std::fs::write(&db, &good[..good.len() / 3]).unwrap();
    refused(&data, "damaged");
    let mut garbage = good.clone();
    for b in garbage.iter_mut().take(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &garbage).unwrap();
    refused(&data, "damaged");
    std::fs::write(&db, &good).unwrap();
    drop(Server::start(&data, &[]));
}

#[test]
fn plain_http_off_loopback_and_unknown_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = run(&data, &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--danger-insecure-http"), "{}", text(&o));
    assert!(!data.exists(), "nothing created before refusing");
    let o = cmd(&data)
        .args(["config", "check"])
        .env("GATEHOUSE_LISTEN", "0.0.0.0:8080")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let o = cmd(&data)
        .args(["config", "check"])
        .env("GATEHOUSE_LISTEN", "0.0.0.0:8080")
        .env("GATEHOUSE_DANGER_INSECURE_HTTP", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("listen = \"0.0.0.0:8080\""));
    let cfg = dir.path().join("gatehouse.toml");
    std::fs::write(
        &cfg,
        "[session]\nidle_timeout_secs = 60\nidle_timeuot = 5\n",
    )
    .unwrap();
    let o = run(
        &data,
        &["--config", cfg.to_str().unwrap(), "config", "check"],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("idle_timeuot"), "{}", text(&o));
}

#[actix_web::test]
async fn bootstrap_variables_create_the_owner_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, format!("{OWNER_PW}\n")).unwrap();
    let env = [
        ("GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", OWNER),
        (
            "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE",
            pwfile.to_str().unwrap(),
        ),
    ];
    let s = Server::start(&data, &env);
    assert!(
        s.setup_link.is_none(),
        "no setup link once the owner exists"
    );
    assert_eq!(api_login(&s, OWNER, OWNER_PW).await, 200);
    drop(s);
    std::fs::write(&pwfile, "another-password-entirely-1\n").unwrap();
    let s = Server::start(&data, &env);
    assert_eq!(
        api_login(&s, OWNER, OWNER_PW).await,
        200,
        "ignored once an owner exists"
    );
    let me: Value = crate::common::plain()
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["status"], "ok");
}

#[test]
fn audit_verify_finds_the_first_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared_data_dir(dir.path());
    drop(Server::start(&data, &[]));
    let o = run(&data, &["setup-link"]);
    assert!(o.status.success());
    let o = run(&data, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    // Remove event 2 behind Gatehouse's back.
    {
        let db = redb::Database::create(data.join("gatehouse.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("audit");
            let mut t = tx.open_table(def).unwrap();
            assert!(t.remove(&2u64.to_be_bytes()[..]).unwrap().is_some());
        }
        tx.commit().unwrap();
    }
    let o = run(&data, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("BROKEN: event 2 is missing"),
        "{}",
        text(&o)
    );
}

/// Headless Chromium through the real pages (tests/browser/console.mjs).
/// Needs Debian's chromium and `npm install` in tests/browser — the README's
/// test command installs both.
#[test]
fn console_walkthrough_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let link = s.setup_link.clone().unwrap();
    crate::common::chromium_walk("console.mjs", &[&s.base, &link]);
}

#[test]
fn a_configuration_change_between_starts_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared_data_dir(dir.path());
    drop(Server::start(&data, &[]));
    drop(Server::start(
        &data,
        &[("GATEHOUSE_SESSION_IDLE_TIMEOUT_SECS", "600")],
    ));
    // The event is sealed; read it through the library with the data directory's key.
    let store = gatehouse::store::Store::open(&data, 0).unwrap();
    let r = store.read().unwrap();
    let filter = gatehouse::audit::Filter {
        action: Some("config.change".into()),
        ..Default::default()
    };
    let (events, _) = gatehouse::audit::query(&r, &filter, 0, 10).unwrap();
    assert_eq!(events.len(), 1, "one change: the idle timeout");
    assert_eq!(
        events[0].details["changed"],
        json!(["session.idle_timeout_secs"])
    );
}

/// TLS from certificate files (openssl and curl are test tools only: the
/// binary itself links rustls). Session cookies get `Secure` and `__Host-`.
#[test]
fn serves_https_from_certificate_files_with_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", text(&st));
    let env = [
        ("GATEHOUSE_TLS_CERT_FILE", cert.to_str().unwrap()),
        ("GATEHOUSE_TLS_KEY_FILE", key.to_str().unwrap()),
    ];
    let s = Server::start(&dir.path().join("data"), &env);
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    let o = Command::new("curl")
        .args(["-sS", "-i", "--cacert"])
        .arg(&cert)
        .arg(s.url("/login"))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success() && t.starts_with("HTTP/"), "{t}");
    let cookie = t
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: gh_csrf="))
        .unwrap_or_default();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{t}"
    );
    // A plain-HTTP request to the TLS port does not get a page.
    let o = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(s.url("/healthz").replace("https", "http"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&o.stdout), "200");
    // A mismatched key is refused at start with a clear message.
    let other_key = dir.path().join("other.pem");
    let st = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&other_key)
        .arg("2048")
        .output()
        .unwrap();
    assert!(st.status.success());
    let o = cmd(&dir.path().join("data2"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("GATEHOUSE_TLS_CERT_FILE", &cert)
        .env("GATEHOUSE_TLS_KEY_FILE", &other_key)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("do not form a usable pair"),
        "{}",
        text(&o)
    );
}

/// The sign-in rate limit survives a restart: the buckets are saved at a
/// graceful stop and read back at start.
#[actix_web::test]
async fn the_sign_in_rate_limit_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [
        ("GATEHOUSE_RATE_LIMIT_AUTH_PER_MINUTE", "1"),
        ("GATEHOUSE_RATE_LIMIT_AUTH_BURST", "2"),
    ];
    let attempt = |s: &Server| {
        let url = s.url("/api/v1/auth/login");
        async move {
            crate::common::plain()
                .post(url)
                .json(&serde_json::json!({"email": "x@example.com", "password": "wrong-password-000"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let s = Server::start(&data, &env);
    assert_eq!(attempt(&s).await, 401);
    assert_eq!(attempt(&s).await, 401);
    assert_eq!(attempt(&s).await, 429);
    s.stop();
    let s = Server::start(&data, &env);
    assert_eq!(
        attempt(&s).await,
        429,
        "a restart handed out a fresh allowance"
    );
}
