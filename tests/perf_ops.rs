//! The real executable as users run it (issue 18). Its request log, written
//! to a file (not a terminal): one line per request with what an operator
//! needs, no colour codes, nothing secret from the query string or the
//! headers, and the health and readiness probes only when `log_probes` asks
//! for them. And the Argon2 threads' working memory, given back once they
//! have been idle for `password.release_memory_after_secs`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const QUERY_SECRET: &str = "q-secret-7f3a9c1e5b";
const HEADER_SECRET: &str = "h-secret-2d8b4f6a0c";
const SETUP_SECRET: &str = "s-secret-9e1c3a5b7d";

struct Logged {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Logged {
    fn start(data: &Path, env: &[(&str, &str)]) -> Logged {
        let log = data.with_extension("log");
        let file = std::fs::File::create(&log).unwrap();
        let mut c = crate::cli::cmd(data);
        c.args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(file);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let base = loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "server exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            if let Some(url) = line.trim().strip_prefix("Gatehouse listening on ") {
                break url.to_string();
            }
        };
        std::thread::spawn(move || for _ in out.lines() {});
        Logged { child, base, log }
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> (u16, String) {
        let mut r = crate::common::plain().get(format!("{}{path}", self.base));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        let r = r.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        (r.status().as_u16(), id)
    }

    /// The log once a line containing `needle` was written (the log thread
    /// writes shortly after the answer).
    fn log_with(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap();
            if text.contains(needle) || start.elapsed() > Duration::from_secs(10) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_request_line_carries_what_an_operator_needs_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s = Logged::start(&dir.path().join("data"), &[]);
    assert_eq!(s.get("/healthz", None).await.0, 200);
    assert_eq!(s.get("/readyz", None).await.0, 200);
    let setup = format!("/setup?token={SETUP_SECRET}");
    let (_, setup_id) = s.get(&setup, None).await;
    let verify = format!("/auth/verify?scope=read:agents&access_token={QUERY_SECRET}");
    let (status, id) = s.get(&verify, Some(HEADER_SECRET)).await;
    assert_eq!(status, 401);
    let log = s.log_with(&format!("request_id={id} "));
    assert!(log.contains(&setup_id), "{log}");
    // Written to a file: plain text, no colour escapes.
    assert!(!log.contains('\u{1b}'), "colour codes in a file: {log:?}");
    for secret in [QUERY_SECRET, HEADER_SECRET, SETUP_SECRET] {
        assert!(!log.contains(secret), "{secret} logged: {log}");
    }
    let line = log
        .lines()
        .find(|l| l.contains(&format!("request_id={id} ")))
        .unwrap_or_else(|| panic!("no request line for {id}: {log}"));
    for field in [
        "method=GET",
        "path=/auth/verify",
        "query=\"scope=*&access_token=*\"",
        "status=401",
        "client=127.0.0.1",
        " ms=",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    // The probes are not logged by default.
    assert!(!log.contains("path=/healthz"), "{log}");
    assert!(!log.contains("path=/readyz"), "{log}");
}

#[tokio::test]
async fn probes_are_logged_when_configured_also_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = Logged::start(
        &dir.path().join("data"),
        &[
            ("GATEHOUSE_LOG_PROBES", "true"),
            ("GATEHOUSE_LOG_FORMAT", "json"),
        ],
    );
    let (_, id) = s.get("/healthz", None).await;
    let (_, ready_id) = s.get(&format!("/readyz?t={QUERY_SECRET}"), None).await;
    let log = s.log_with(&ready_id);
    assert!(
        !log.contains('\u{1b}') && !log.contains(QUERY_SECRET),
        "{log}"
    );
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of = |id: &str| {
        lines
            .iter()
            .find(|v| v["fields"]["request_id"] == id && v["fields"]["message"] == "http")
            .unwrap_or_else(|| panic!("no request line for {id}: {log}"))["fields"]
            .clone()
    };
    let h = of(&id);
    assert_eq!(
        (&h["method"], &h["path"], &h["status"], &h["client"]),
        (
            &Value::from("GET"),
            &Value::from("/healthz"),
            &Value::from(200),
            &Value::from("127.0.0.1")
        ),
        "{h}"
    );
    assert!(h.get("query").is_none(), "{h}");
    assert_eq!(of(&ready_id)["query"], "t=*");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn argon2_working_memory_is_released_after_the_threads_idle() {
    let dir = tempfile::tempdir().unwrap();
    let s = Logged::start(
        &dir.path().join("data"),
        &[
            // The production cost (the suite's default is lighter), 2 threads.
            ("GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB", "19456"),
            ("GATEHOUSE_PASSWORD_ARGON2_ITERATIONS", "2"),
            ("GATEHOUSE_PASSWORD_HASH_CONCURRENCY", "2"),
            ("GATEHOUSE_PASSWORD_RELEASE_MEMORY_AFTER_SECS", "1"),
        ],
    );
    let pid = s.child.id();
    let idle = rss_kib(pid);
    // A burst of sign-ins (unknown accounts cost the same Argon2 check),
    // four at once for the two threads.
    let login = |_: usize| {
        let url = format!("{}/api/v1/auth/login", s.base);
        async move {
            let r = crate::common::plain()
                .post(url)
                .json(&serde_json::json!({"email": "nobody@example.com", "password": "wrong-password-000"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
    };
    for _ in 0..2 {
        futures_join(login).await;
    }
    let burst = rss_kib(pid);
    assert!(
        burst > idle + 30 * 1024,
        "two threads' 19 MiB each should show: idle {idle} KiB, after the burst {burst} KiB"
    );
    // Released once both threads waited a second (each in turn), and it
    // stays so while nothing happens.
    let start = Instant::now();
    let mut now = burst;
    while now > idle + 8 * 1024 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        now = rss_kib(pid);
    }
    assert!(
        now <= idle + 8 * 1024,
        "idle {idle} KiB, after the burst {burst} KiB, later {now} KiB"
    );
    // The next sign-in allocates again and works.
    futures_join(login).await;
}

/// Runs four `f(i)` at once.
async fn futures_join<F: std::future::Future<Output = ()>>(f: impl Fn(usize) -> F) {
    let (a, b, c, d) = (f(0), f(1), f(2), f(3));
    tokio::join!(a, b, c, d);
}
