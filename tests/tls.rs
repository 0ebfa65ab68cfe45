//! TLS (issue 16, points 1–3): the policy seen by `openssl s_client`
//! (versions, suites, HSTS), certificate files reloaded on change and on
//! SIGHUP without dropping connections (bad files refused, the old
//! certificate kept), and ACME against Debian's `pebble` +
//! `pebble-challtestsrv` (TLS-ALPN-01, HTTP-01, renewal, restart, a refusing
//! CA, a hanging and a garbage directory). Every server here is the real
//! binary; every client a real TLS client.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const OWNER: &str = "owner@example.com";
const OWNER_PW: &str = "violet-harbour-lantern-42";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ------------------------------------------------------------ certificates

/// A small CA, and leaves it signs.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A leaf for `names` (DNS names or IP addresses): (chain PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write_private(path: &Path, pem: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, pem).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ------------------------------------------------------------ the server

/// `gatehouse serve` (the binary) with a config file; its stderr is kept.
struct Gate {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gate {
    /// Starts with `config` (TOML, appended to listen/data) on `port`;
    /// waits until it listens.
    fn start(dir: &Path, port: u16, config: &str) -> Gate {
        let pw = dir.join("owner-pw");
        std::fs::write(&pw, OWNER_PW).unwrap();
        let cfg = dir.join("gatehouse.toml");
        std::fs::write(
            &cfg,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n[password]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n{config}",
                dir.join("data")
            ),
        )
        .unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .arg("serve")
            .env("GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", OWNER)
            .env("GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", &pw)
            .env("GATEHOUSE_LOG", "info")
            // The browser tests' own variable; Gatehouse refuses unknown ones.
            .env_remove("GATEHOUSE_SCREENSHOTS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let l = log.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut g = l.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                std::thread::sleep(Duration::from_millis(200));
                panic!("gatehouse exited before listening: {}", log.lock().unwrap());
            }
            if line.starts_with("Gatehouse listening on ") {
                break;
            }
        }
        std::thread::spawn(move || for _ in out.lines() {});
        Gate { child, port, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn hup(&self) {
        let st = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// An HTTPS client that does not check the certificate (what it is, is
    /// checked with openssl), sending `name` as SNI and Host.
    fn client(&self, name: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .resolve(name, ([127, 0, 0, 1], self.port).into())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    fn url(&self, name: &str, path: &str) -> String {
        format!("https://{name}:{}{path}", self.port)
    }

    /// The owner's API token (the owner comes from the bootstrap variables).
    async fn token(&self, name: &str) -> String {
        let r = self
            .client(name)
            .post(self.url(name, "/api/v1/auth/login"))
            .json(&serde_json::json!({"email": OWNER, "password": OWNER_PW}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn status(&self, name: &str, token: &str) -> Value {
        let r = self
            .client(name)
            .get(self.url(name, "/api/v1/tls"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls the TLS status until `f` holds (at most `secs`).
    async fn wait_status(
        &self,
        name: &str,
        token: &str,
        secs: u64,
        what: &str,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status(name, token).await;
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "{what}: not within {secs} s; status {s:#}\nlog:\n{}",
                self.log()
            );
            actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

// ------------------------------------------------------------ openssl

/// `openssl s_client` to the server, with extra arguments; its output and
/// whether the handshake succeeded.
fn s_client(port: u16, args: &[&str]) -> (bool, String) {
    let o = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let t = text(&o);
    (o.status.success() && t.contains("New, TLSv1."), t)
}

/// The SHA-256 fingerprint of the certificate the server hands `name`,
/// and whether it verified against `ca` (if given).
fn served(port: u16, name: &str, ca: Option<&Path>) -> (String, bool, String) {
    let ca_s = ca.map(|c| c.to_str().unwrap().to_string());
    let mut args = vec!["-servername", name, "-showcerts"];
    if let Some(c) = &ca_s {
        args.extend(["-CAfile", c.as_str(), "-verify_return_error"]);
    }
    let (_, out) = s_client(port, &args);
    let mut x = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-ext",
            "subjectAltName",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    x.stdin.take().unwrap().write_all(out.as_bytes()).unwrap();
    let o = x.wait_with_output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    let fp = t
        .lines()
        .find_map(|l| l.split_once("Fingerprint=").map(|(_, f)| f.to_string()))
        .unwrap_or_default();
    let verified = out.contains("Verify return code: 0 (ok)");
    (fp, verified, format!("{t}\n{out}"))
}

// ------------------------------------------------------------ policy

fn files_server(dir: &Path, extra: &str) -> (Gate, Ca) {
    let ca = Ca::new("Test CA");
    let (c, k) = ca.leaf(&["localhost", "127.0.0.1"]);
    write_private(&dir.join("cert.pem"), &c, 0o644);
    write_private(&dir.join("key.pem"), &k, 0o600);
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    let g = Gate::start(
        dir,
        free_port(),
        &format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\n{extra}",
            dir.join("cert.pem"),
            dir.join("key.pem")
        ),
    );
    (g, ca)
}

/// TLS 1.1 refused, 1.2 and 1.3 accepted; only AEAD suites with ECDHE; HSTS
/// on HTTPS answers; with `min_version = "1.3"`, 1.2 is refused too.
#[actix_web::test]
async fn the_tls_policy_as_openssl_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let (g, _) = files_server(dir.path(), "");
    let p = g.port;
    // SECLEVEL=0 so that openssl itself is willing to offer TLS 1.1: the
    // refusal is the server's.
    let (ok, t) = s_client(p, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert!(!ok, "TLS 1.1 accepted: {t}");
    // rustls answers an offer of TLS 1.1 only with a handshake_failure alert.
    assert!(
        t.contains("Protocol  : TLSv1.1") && t.contains("alert handshake failure"),
        "{t}"
    );
    let (ok, t) = s_client(p, &["-tls1_2"]);
    assert!(ok, "{t}");
    assert!(
        t.contains("Protocol  : TLSv1.2") || t.contains("TLSv1.2"),
        "{t}"
    );
    let (ok, t) = s_client(p, &["-tls1_3"]);
    assert!(ok && t.contains("TLSv1.3"), "{t}");
    // No version forced: 1.3 is chosen.
    let (ok, t) = s_client(p, &[]);
    assert!(ok && t.contains("New, TLSv1.3"), "{t}");
    // Old suites are refused one by one: CBC, RSA key exchange, SHA-1.
    for weak in [
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-SHA384",
    ] {
        let (ok, t) = s_client(p, &["-tls1_2", "-cipher", &format!("{weak}:@SECLEVEL=0")]);
        assert!(!ok, "{weak} accepted: {t}");
    }
    // The modern TLS 1.2 suite for this (ECDSA) certificate is accepted.
    for good in [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ] {
        let (ok, t) = s_client(p, &["-tls1_2", "-cipher", good]);
        assert!(ok && t.contains(good), "{t}");
    }
    for good in [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        let (ok, t) = s_client(p, &["-tls1_3", "-ciphersuites", good]);
        assert!(ok && t.contains(good), "{t}");
    }
    // HSTS on HTTPS answers, errors included.
    let c = g.client("localhost");
    for path in ["/healthz", "/login", "/no-such-page"] {
        let r = c.get(g.url("localhost", path)).send().await.unwrap();
        assert_eq!(
            r.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    drop(g);

    let dir = tempfile::tempdir().unwrap();
    let (g, _) = files_server(dir.path(), "min_version = \"1.3\"\nhsts_max_age_secs = 0\n");
    let (ok, t) = s_client(g.port, &["-tls1_2"]);
    assert!(!ok, "TLS 1.2 accepted with min_version 1.3: {t}");
    let (ok, t) = s_client(g.port, &["-tls1_3"]);
    assert!(ok, "{t}");
    let r = g
        .client("localhost")
        .get(g.url("localhost", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("strict-transport-security").is_none());
}

/// Bad policy values are refused at start, naming the key and what to use;
/// a non-loopback address without TLS names both ways to get it.
#[test]
fn bad_tls_settings_are_refused_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(BIN);
        c.arg("serve")
            .args(args)
            .env("GATEHOUSE_DATA", dir.path().join("data"));
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (o.status.code(), text(&o))
    };
    let (code, t) = run(
        &["--listen", "127.0.0.1:0"],
        &[("GATEHOUSE_TLS_MIN_VERSION", "1.1")],
    );
    assert_eq!(code, Some(2));
    assert!(
        t.contains("tls.min_version") && t.contains("\"1.3\""),
        "{t}"
    );
    let (code, t) = run(&["--listen", "0.0.0.0:0"], &[]);
    assert_eq!(code, Some(2));
    assert!(
        t.contains("--acme-domain") && t.contains("tls.cert_file"),
        "{t}"
    );
    let (code, t) = run(
        &["--listen", "127.0.0.1:0", "--acme-domain", "*.example.com"],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(
        t.contains("tls.acme.domains") && t.contains("wildcards"),
        "{t}"
    );
    let (code, t) = run(
        &[
            "--listen",
            "127.0.0.1:0",
            "--acme-domain",
            "gate.example.com",
            "--acme-contact",
            "ops@example.com",
        ],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(t.contains("mailto:"), "{t}");
    let (code, t) = run(
        &[
            "--listen",
            "127.0.0.1:0",
            "--acme-domain",
            "gate.example.com",
        ],
        &[("GATEHOUSE_TLS_ACME_CHALLENGE", "http-01")],
    );
    assert_eq!(code, Some(2));
    assert!(t.contains("tls.http_listen"), "{t}");
}

// ------------------------------------------------------------ reload

/// Replaced certificate files are picked up without a restart; a key that is not the certificate's, and
/// garbage, are refused with a log line and the old certificate keeps
/// serving; a key readable by others is warned about.
#[actix_web::test]
async fn certificate_files_reload_on_change_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (g, ca) = files_server(d, "");
    let ca_file = d.join("ca.pem");
    let (fp1, ok, t) = served(g.port, "localhost", Some(&ca_file));
    assert!(ok && !fp1.is_empty(), "{t}");
    let token = g.token("localhost").await;

    // Not checked here: that a connection opened before the reload keeps
    // answering (an `openssl s_client` kept open across the reload saw
    // "Disconnected"; whether actix or the client closed it is not known —
    // listed as not done in the issue note).

    // New pair, new name.
    let (c2, k2) = ca.leaf(&["localhost", "gate.test"]);
    write_private(&d.join("key.pem"), &k2, 0o600);
    std::fs::write(d.join("cert.pem"), &c2).unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    let s = loop {
        let s = g.status("localhost", &token).await;
        if s["certificate"]["names"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x == "gate.test"))
        {
            break s;
        }
        assert!(Instant::now() < end, "no reload: {s:#}\n{}", g.log());
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(s["last_error"].is_null(), "{s:#}");
    let (fp2, ok, t) = served(g.port, "localhost", Some(&ca_file));
    assert!(ok && fp2 != fp1, "{t}");

    // A key of another certificate: refused, the served one stays.
    let (_, other_key) = ca.leaf(&["localhost"]);
    write_private(&d.join("key.pem"), &other_key, 0o600);
    let s = g
        .wait_status("localhost", &token, 15, "refusal", |s| {
            !s["last_error"].is_null()
        })
        .await;
    let msg = s["last_error"]["message"].as_str().unwrap();
    assert!(msg.contains("do not form a usable pair"), "{msg}");
    assert!(!msg.contains("PRIVATE KEY"), "{msg}");
    assert!(g.log().contains("the previous certificate keeps serving"));
    let (fp, _, _) = served(g.port, "localhost", None);
    assert_eq!(fp, fp2, "the old certificate keeps serving");

    // Garbage in the certificate file: refused the same way.
    write_private(&d.join("key.pem"), &k2, 0o600);
    std::fs::write(d.join("cert.pem"), "garbage\n").unwrap();
    let s = g
        .wait_status("localhost", &token, 15, "garbage refusal", |s| {
            s["last_error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("tls.cert_file"))
        })
        .await;
    assert!(s["certificate"]["names"].to_string().contains("gate.test"));
    let (fp, _, _) = served(g.port, "localhost", None);
    assert_eq!(fp, fp2);

    // Audited: the reload and both refusals.
    let r = g
        .client("localhost")
        .get(g.url("localhost", "/api/v1/audit?action=tls.certificate_refused"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["events"].as_array().unwrap().len() >= 2, "{v:#}");

    // A loosely readable key is served but warned about.
    write_private(&d.join("key.pem"), &k2, 0o644);
    std::fs::write(d.join("cert.pem"), &c2).unwrap();
    g.wait_status("localhost", &token, 15, "recovery", |s| {
        s["last_error"].is_null()
    })
    .await;
    assert!(
        g.log().contains("readable by group or others: chmod 600"),
        "{}",
        g.log()
    );
}

/// With the file watch off (`file_check_secs = 0`), SIGHUP alone reloads.
#[actix_web::test]
async fn sighup_reloads_the_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (g, ca) = files_server(d, "file_check_secs = 0\n");
    let (fp1, _, _) = served(g.port, "localhost", None);
    let (c2, k2) = ca.leaf(&["localhost"]);
    write_private(&d.join("key.pem"), &k2, 0o600);
    std::fs::write(d.join("cert.pem"), &c2).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (fp, _, _) = served(g.port, "localhost", None);
    assert_eq!(fp, fp1, "no watch: nothing changes before SIGHUP");
    g.hup();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let (fp, ok, t) = served(g.port, "localhost", Some(&d.join("ca.pem")));
        if fp != fp1 {
            assert!(ok, "{t}");
            break;
        }
        assert!(Instant::now() < end, "SIGHUP did not reload: {}", g.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(g.log().contains("SIGHUP"), "{}", g.log());
}

// ------------------------------------------------------------ ACME

/// Debian's pebble with pebble-challtestsrv answering every name with
/// 127.0.0.1; its own directory certificate is made here.
struct Pebble {
    children: Vec<Child>,
    dir_url: String,
    /// The root pebble issues under (from `/roots/0`), as a file.
    root: PathBuf,
    /// The root the directory's own certificate chains to.
    dir_ca: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct PebblePorts {
    listen: u16,
    mgmt: u16,
    dns: u16,
    /// Where pebble validates TLS-ALPN-01 and HTTP-01 (Gatehouse's ports).
    tls: u16,
    http: u16,
}

impl PebblePorts {
    fn new(tls: u16, http: u16) -> PebblePorts {
        PebblePorts {
            listen: free_port(),
            mgmt: free_port(),
            dns: free_port(),
            tls,
            http,
        }
    }
}

fn wait_port(port: u16, what: &str) {
    // Pebble makes its RSA issuer keys first: seconds on a busy machine.
    let end = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pebble(dir: &Path, ports: &PebblePorts, validity_secs: u64, blocklist: &[&str]) -> Pebble {
    assert!(
        Path::new("/usr/bin/pebble").exists(),
        "pebble is not installed: scripts/test.sh installs it (apt pebble)"
    );
    let ca = Ca::new("Pebble directory CA");
    let (c, k) = ca.leaf(&["localhost", "127.0.0.1"]);
    std::fs::write(dir.join("pebble-dir.pem"), c).unwrap();
    write_private(&dir.join("pebble-dir.key"), &k, 0o600);
    let dir_ca = dir.join("pebble-dir-ca.pem");
    std::fs::write(&dir_ca, &ca.pem).unwrap();
    let cfg = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{}", ports.listen),
        "managementListenAddress": format!("127.0.0.1:{}", ports.mgmt),
        "certificate": dir.join("pebble-dir.pem"),
        "privateKey": dir.join("pebble-dir.key"),
        "httpPort": ports.http,
        "tlsPort": ports.tls,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "domainBlocklist": blocklist,
        "certificateValidityPeriod": validity_secs,
    }});
    std::fs::write(dir.join("pebble.json"), cfg.to_string()).unwrap();
    let dns = Command::new("pebble-challtestsrv")
        .args(["-dns01", &format!("127.0.0.1:{}", ports.dns)])
        .args([
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-defaultIPv6",
            "",
        ])
        .args(["-management", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .args(["-dnsserver", &format!("127.0.0.1:{}", ports.dns)])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pb = Pebble {
        children: vec![dns, p],
        dir_url: format!("https://127.0.0.1:{}/dir", ports.listen),
        root: dir.join("pebble-root.pem"),
        dir_ca,
    };
    wait_port(ports.listen, "pebble");
    wait_port(ports.mgmt, "pebble management");
    let o = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&pb.dir_ca)
        .arg(format!("https://127.0.0.1:{}/roots/0", ports.mgmt))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&pb.root, &o.stdout).unwrap();
    pb.children.shrink_to_fit();
    pb
}

fn acme_config(p: &Pebble, extra: &str) -> String {
    format!(
        "[tls]\n{extra}\n[tls.acme]\ndomains = [\"app.test\"]\ncontact = [\"mailto:ops@example.com\"]\ndirectory_url = {:?}\nca_file = {:?}\ntimeout_secs = 10\nretry_secs = 2\n",
        p.dir_url, p.dir_ca
    )
}

/// Waits until the server hands out a certificate for `name`; its fingerprint.
fn wait_cert(g: &Gate, name: &str, secs: u64) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let (fp, _, _) = served(g.port, name, None);
        if !fp.is_empty() {
            return fp;
        }
        assert!(
            Instant::now() < end,
            "no certificate for {name} within {secs} s:\n{}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// TLS-ALPN-01 on the HTTPS listener: the certificate is obtained, chains to
/// pebble's root for `app.test`, is shown in the API and on the console's
/// TLS page, is kept sealed (no PEM in the data file), and is served at once
/// after a restart with the CA gone.
#[actix_web::test]
async fn acme_tls_alpn_obtains_serves_and_keeps_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let ports = PebblePorts::new(port, free_port());
    let pb = pebble(d, &ports, 3600, &[]);
    let config = acme_config(&pb, "");
    let g = Gate::start(d, port, &config);
    wait_cert(&g, "app.test", 40);
    let token = g.token("app.test").await;
    let s = g.status("app.test", &token).await;
    assert_eq!(s["source"], "acme");
    assert_eq!(s["certificate"]["names"], serde_json::json!(["app.test"]));
    assert!(
        s["certificate"]["issuer"]
            .as_str()
            .unwrap()
            .contains("Pebble"),
        "{s:#}"
    );
    assert!(!s["acme"]["last_renewal"].is_null(), "{s:#}");
    assert!(!s["acme"]["next_attempt"].is_null(), "{s:#}");
    let (fp, ok, t) = served(port, "app.test", Some(&pb.root));
    assert!(ok, "chain does not verify against pebble's root: {t}");
    assert!(t.contains("DNS:app.test"), "{t}");
    // An untrusting client (no pebble root) does not verify it: the check above can fail.
    let (_, ok, _) = served(port, "app.test", Some(&pb.dir_ca));
    assert!(!ok);
    // The console shows it.
    let c = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("app.test", ([127, 0, 0, 1], port).into())
        .cookie_store(true)
        .build()
        .unwrap();
    let html = c
        .get(g.url("app.test", "/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::common::csrf_from(&html);
    let r = c
        .post(g.url("app.test", "/login"))
        .form(&[
            ("email", OWNER),
            ("password", OWNER_PW),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "signed in and followed to /admin");
    let page = c
        .get(g.url("app.test", "/admin/settings/tls"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("app.test") && page.contains("Pebble"),
        "{page}"
    );
    assert!(
        page.contains("tls-alpn-01") && page.contains(&pb.dir_url),
        "{page}"
    );
    // Sealed at rest: neither the key nor the certificate is readable in the file.
    let db = std::fs::read(d.join("data/gatehouse.redb")).unwrap();
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains("PRIVATE KEY") && !hay.contains("BEGIN CERTIFICATE"));
    // Audited.
    let r = g
        .client("app.test")
        .get(g.url("app.test", "/api/v1/audit?action=tls.certificate_issued"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "{v:#}");

    // Restart with the CA gone: the kept certificate is served at once.
    drop(g);
    drop(pb);
    let g = Gate::start(d, port, &config);
    let (fp2, _, t) = served(port, "app.test", None);
    assert_eq!(fp2, fp, "{t}");
    assert!(
        g.log().contains("serving the kept ACME certificate"),
        "{}",
        g.log()
    );
}

/// A short certificate lifetime: renewed ahead of expiry. Then the CA
/// refuses the name (its problem document shown), then the directory hangs
/// (timeout), then it answers garbage: each time the renewed certificate
/// keeps serving.
#[actix_web::test]
async fn acme_renews_and_failures_keep_the_served_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let ports = PebblePorts::new(port, free_port());
    let pb = pebble(d, &ports, 15, &[]);
    let g = Gate::start(d, port, &acme_config(&pb, ""));
    wait_cert(&g, "app.test", 40);
    let token = g.token("app.test").await;
    let first = g.status("app.test", &token).await;
    let fp1 = first["certificate"]["sha256_fingerprint"].clone();
    // Renewal at two thirds of the 15 s lifetime.
    let renewed = g
        .wait_status("app.test", &token, 40, "renewal", |s| {
            s["certificate"]["sha256_fingerprint"] != fp1
        })
        .await;
    let fp2 = renewed["certificate"]["sha256_fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, ok, t) = served(port, "app.test", Some(&pb.root));
    assert!(ok, "{t}");

    // The CA now refuses the name. The reference is taken with no CA up,
    // so no renewal can slip in between.
    drop(pb);
    let (served_fp, _, _) = served(port, "app.test", None);
    let pb = pebble(d, &ports, 15, &["app.test"]);
    let s = g
        .wait_status("app.test", &token, 40, "refusal", |s| {
            s["last_error"]["problem"]["type"]
                .as_str()
                .is_some_and(|t| t.contains("rejectedIdentifier"))
        })
        .await;
    assert!(
        s["last_error"]["problem"]["detail"].as_str().is_some(),
        "{s:#}"
    );
    let (fp, _, _) = served(port, "app.test", None);
    assert_eq!(fp, served_fp, "the renewed certificate keeps serving");
    let _ = fp2;
    drop(pb);

    // A directory that accepts connections and never answers.
    let hang = std::net::TcpListener::bind(("127.0.0.1", ports.listen)).unwrap();
    let s = g
        .wait_status("app.test", &token, 40, "timeout", |s| {
            s["last_error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("no answer from the ACME CA within 10 s"))
        })
        .await;
    assert!(s["last_error"]["problem"].is_null());
    let (fp, _, _) = served(port, "app.test", None);
    assert_eq!(fp, served_fp);
    drop(hang);

    // A directory answering garbage (openssl's status page).
    let mut garbage = Command::new("openssl")
        .args(["s_server", "-www", "-accept", &ports.listen.to_string()])
        .arg("-cert")
        .arg(d.join("pebble-dir.pem"))
        .arg("-key")
        .arg(d.join("pebble-dir.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(ports.listen, "openssl s_server");
    let s = g
        .wait_status("app.test", &token, 40, "garbage", |s| {
            s["last_error"]["message"]
                .as_str()
                .is_some_and(|m| !m.contains("no answer") && !m.contains("refused"))
        })
        .await;
    let _ = garbage.kill();
    let _ = garbage.wait();
    assert!(
        s["last_error"]["message"].as_str().unwrap().len() > 5,
        "{s:#}"
    );
    let (fp, _, _) = served(port, "app.test", None);
    assert_eq!(fp, served_fp);
    // Failures are audited with the problem document.
    let r = g
        .client("app.test")
        .get(g.url("app.test", "/api/v1/audit?action=tls.acme_failed"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["details"]["problem"]["type"]
                .as_str()
                .is_some_and(|t| t.contains("rejectedIdentifier"))),
        "{v:#}"
    );
}

/// HTTP-01 on the plain-HTTP listener, which otherwise only redirects to
/// the HTTPS public URL.
#[actix_web::test]
async fn acme_http01_on_the_redirect_listener() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let http = free_port();
    let ports = PebblePorts::new(free_port(), http);
    let pb = pebble(d, &ports, 3600, &[]);
    let g = Gate::start(
        d,
        port,
        &acme_config(&pb, &format!("http_listen = \"127.0.0.1:{http}\"")).replace(
            "retry_secs = 2\n",
            "retry_secs = 2\nchallenge = \"http-01\"\n",
        ),
    );
    wait_cert(&g, "app.test", 40);
    let token = g.token("app.test").await;
    let s = g.status("app.test", &token).await;
    assert_eq!(s["acme"]["challenge"], "http-01");
    let (_, ok, t) = served(port, "app.test", Some(&pb.root));
    assert!(ok, "{t}");
    // Everything else on plain HTTP is a redirect to HTTPS, to the public
    // URL, whatever Host the client sent.
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c
        .get(format!("http://127.0.0.1:{http}/admin/users?page=2"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://app.test:{port}/admin/users?page=2").as_str()
    );
    let r = c
        .get(format!(
            "http://127.0.0.1:{http}/.well-known/acme-challenge/nothing-open"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("http://127.0.0.1:{http}/api/v1/tls"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308, "no API on plain HTTP");
}

/// Settings → Security → TLS in headless Chromium (tests/browser/tls.mjs):
/// the served certificate and a refused key file, over HTTPS.
#[actix_web::test]
async fn the_tls_page_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (g, ca) = files_server(d, "");
    let token = g.token("localhost").await;
    let (_, other_key) = ca.leaf(&["localhost"]);
    write_private(&d.join("key.pem"), &other_key, 0o600);
    g.wait_status("localhost", &token, 15, "refusal", |s| {
        !s["last_error"].is_null()
    })
    .await;
    crate::common::chromium_walk_async("tls.mjs", vec![g.url("localhost", "")]).await;
}
