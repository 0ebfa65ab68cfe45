//! The encryption service (`/v1/transit/`, Vault's Transit wire protocol):
//! hvac, the real Python Vault client, end to end against the real binary
//! (logs, audit and data directory checked for plaintext and key material
//! afterwards), and the attacks and bad input of issue 14 sent raw.

use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// The credential `token` (an API key or token) calling Vault path `path`.
pub async fn vault(
    base: &str,
    m: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = plain()
        .request(m, format!("{base}{path}"))
        .header("X-Vault-Token", token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A new API app in `ws` with `scopes`, and one key of it.
pub async fn api_key(base: &str, admin: &str, ws: &str, scopes: &[&str]) -> String {
    let c = plain();
    let a: Value = c
        .post(format!("{base}/api/v1/api-apps"))
        .bearer_auth(admin)
        .json(&json!({"workspace": ws, "name": format!("app {}", scopes.join(" ")), "scopes": scopes}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = a["id"].as_str().unwrap_or_else(|| panic!("{a}"));
    let k: Value = c
        .post(format!("{base}/api/v1/api-apps/{id}/keys"))
        .bearer_auth(admin)
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    k["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{k}"))
        .to_string()
}

pub async fn workspace(base: &str, owner: &str, name: &str) -> String {
    let v: Value = plain()
        .post(format!("{base}/api/v1/workspaces"))
        .bearer_auth(owner)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

const ALL_TRANSIT: [&str; 5] = [
    "transit:encrypt",
    "transit:decrypt",
    "transit:rewrap",
    "transit:datakey",
    "transit:manage",
];

/// hvac against `gatehouse serve` (the real binary, debug logs on): every
/// step of `tests/peers/transit_hvac.py` passes; afterwards neither the
/// logs, nor any audit record, nor the data directory holds the plaintext
/// or a key's material, and the data accesses were counted in aggregated
/// events, not one per call.
#[actix_web::test]
async fn hvac_drives_transit_end_to_end_and_nothing_leaks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "hvac needs the test venv: run scripts/test.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, OWNER_PW).unwrap();
    let log = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("GATEHOUSE_DATA", dir.path().join("data"))
        .env("GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB", "8192")
        .env("GATEHOUSE_PASSWORD_ARGON2_ITERATIONS", "1")
        .env("GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", OWNER)
        .env("GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", &pw)
        .env("GATEHOUSE_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = {
        use std::io::BufRead;
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut lines = out.lines();
        let base = loop {
            let l = lines.next().expect("server exited").unwrap();
            if let Some(u) = l.trim().strip_prefix("Gatehouse listening on ") {
                break u.to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        base
    };
    let login: Value = plain()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": OWNER, "password": OWNER_PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = login["access_token"].as_str().unwrap().to_string();
    let ws = workspace(&base, &owner, "Agents").await;
    let key = api_key(&base, &owner, &ws, &ALL_TRANSIT).await;
    let secret = "tangerine-submarine-0417-plaintext";
    let o = Command::new(&python)
        .arg(root.join("tests/peers/transit_hvac.py"))
        .args([&base, &key, secret])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success() && out.contains("all ok"), "{out}\n{err}");
    for s in [
        "keys",
        "encrypt_decrypt",
        "associated_data",
        "rotate_rewrap",
        "min_decryption_version",
        "batch",
        "datakey",
        "hmac",
        "random",
        "derived",
        "trim",
        "delete",
        "bad_token",
    ] {
        assert!(out.contains(&format!("ok {s}\n")), "{s}: {out}");
    }
    // SIGTERM: a graceful stop commits the counted data accesses.
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("/v1/transit/encrypt/conversations"), "{logs}");
    assert!(!logs.contains(secret) && !logs.contains(&b64(secret.as_bytes())));
    let data = std::fs::read(dir.path().join("data/gatehouse.redb")).unwrap();
    let has = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
    assert!(!has(secret.as_bytes()) && !has(b64(secret.as_bytes()).as_bytes()));
    assert!(
        !has(b"\"versions\"") && !has(b"hmac_key"),
        "key records are sealed"
    );

    // Read the audit log through a second start (the same data directory).
    let mut s = test_settings(dir.path());
    s.data_dir = dir.path().join("data");
    let svc = gatehouse::service::Service::open(
        s,
        std::sync::Arc::new(gatehouse::clock::FixedClock::new(T0)),
    )
    .unwrap();
    let (events, _) =
        gatehouse::audit::query(&svc.store.read().unwrap(), &Default::default(), 0, 10_000)
            .unwrap();
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(secret) && !all.contains(&b64(secret.as_bytes())));
    let count = |action: &str| events.iter().filter(|e| e.action == action).count();
    for a in [
        "transit.key_create",
        "transit.key_rotate",
        "transit.key_config",
        "transit.key_trim",
        "transit.key_delete",
    ] {
        assert!(count(a) >= 1, "{a} audited: {all}");
    }
    let enc: Vec<&gatehouse::audit::Event> = events
        .iter()
        .filter(|e| e.action == "transit.encrypt" && e.target.as_deref() == Some("conversations"))
        .collect();
    let calls: u64 = enc
        .iter()
        .map(|e| e.details["count"].as_u64().unwrap())
        .sum();
    // The script encrypts with "conversations" well over a dozen times
    // (batches count each item), all within a minute or two: a handful of
    // aggregated events, not one per call.
    assert!(calls >= 15, "{calls}: {enc:?}");
    assert!(enc.len() <= 3, "aggregated per minute: {}", enc.len());
    assert!(enc.iter().all(|e| e.details["aggregated"] == true
        && e.workspace.as_ref().map(|w| w.to_string()) == Some(ws.clone())));
}

/// The attacks of issue 14 on Transit, each sent raw.
#[actix_web::test]
async fn transit_refuses_the_attacks_and_bad_input() {
    let app = spawn_with(|s| s.limits.vault_request_bytes = 64 * 1024).await;
    let owner = app.owner_token().await;
    let base = app.base.clone();
    let ws_a = workspace(&base, &owner, "A").await;
    let ws_b = workspace(&base, &owner, "B").await;
    let a = api_key(&base, &owner, &ws_a, &ALL_TRANSIT).await;
    let b = api_key(&base, &owner, &ws_b, &ALL_TRANSIT).await;
    let enc_only = api_key(&base, &owner, &ws_a, &["transit:encrypt"]).await;
    let narrowed = api_key(
        &base,
        &owner,
        &ws_a,
        &[
            "transit:encrypt:conversations",
            "transit:decrypt:conversations",
        ],
    )
    .await;
    let pt = b64(b"the-plaintext-nobody-may-see");
    for t in [&a, &b] {
        let (s, v) = vault(
            &base,
            Method::POST,
            "/v1/transit/keys/conversations",
            t,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    vault(&base, Method::POST, "/v1/transit/keys/other", &a, None).await;
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/conversations",
        &a,
        Some(json!({"plaintext": pt})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ct = v["data"]["ciphertext"].as_str().unwrap().to_string();
    assert!(!v.to_string().contains(&pt));

    // Workspace A's ciphertext given to B's same-named key fails.
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/decrypt/conversations",
        &b,
        Some(json!({"ciphertext": ct})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["errors"][0]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{v}"
    );
    // …and to A's other key.
    let (s, _) = vault(
        &base,
        Method::POST,
        "/v1/transit/decrypt/other",
        &a,
        Some(json!({"ciphertext": ct})),
    )
    .await;
    assert_eq!(s, 400);

    // Its version or body edited fails (no plaintext comes back).
    vault(
        &base,
        Method::POST,
        "/v1/transit/keys/conversations/rotate",
        &a,
        None,
    )
    .await;
    let body = ct.strip_prefix("vault:v1:").unwrap();
    let mut raw = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    raw[0] ^= 1;
    for edited in [
        format!("vault:v2:{body}"),
        format!("vault:v3:{body}"),
        format!("vault:v0:{body}"),
        format!("vault:v1:{}", b64(&raw)),
        format!("vault:v1:{}", &body[4..]),
    ] {
        let (s, v) = vault(
            &base,
            Method::POST,
            "/v1/transit/decrypt/conversations",
            &a,
            Some(json!({"ciphertext": edited})),
        )
        .await;
        assert_eq!(s, 400, "{edited}: {v}");
        assert!(v["data"].is_null() && !v["errors"][0].as_str().unwrap().is_empty());
    }

    // An encrypt-only caller cannot decrypt, rewrap, or make data keys.
    for (path, body) in [
        (
            "/v1/transit/decrypt/conversations",
            json!({"ciphertext": ct}),
        ),
        (
            "/v1/transit/rewrap/conversations",
            json!({"ciphertext": ct}),
        ),
        ("/v1/transit/datakey/plaintext/conversations", json!({})),
        ("/v1/transit/keys/conversations/rotate", json!({})),
    ] {
        let (s, v) = vault(&base, Method::POST, path, &enc_only, Some(body)).await;
        assert_eq!(s, 403, "{path}: {v}");
        assert!(
            v["errors"][0]
                .as_str()
                .unwrap()
                .contains("permission denied"),
            "{v}"
        );
    }
    let (s, _) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/conversations",
        &enc_only,
        Some(json!({"plaintext": pt})),
    )
    .await;
    assert_eq!(s, 200);

    // A scope narrowed to one key works there and nowhere else.
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/decrypt/conversations",
        &narrowed,
        Some(json!({"ciphertext": ct})),
    )
    .await;
    assert_eq!(
        (s, v["data"]["plaintext"].as_str()),
        (200, Some(pt.as_str())),
        "{v}"
    );
    for path in [
        "/v1/transit/encrypt/other",
        "/v1/transit/encrypt/conversations2",
        "/v1/transit/encrypt/Conversations",
        "/v1/transit/keys/conversations/rotate",
    ] {
        let (s, v) = vault(
            &base,
            Method::POST,
            path,
            &narrowed,
            Some(json!({"plaintext": pt})),
        )
        .await;
        assert_eq!(s, 403, "{path}: {v}");
    }
    // Its listing shows only its key.
    let (s, v) = vault(
        &base,
        Method::GET,
        "/v1/transit/keys?list=true",
        &narrowed,
        None,
    )
    .await;
    assert_eq!(
        (s, v["data"]["keys"].clone()),
        (200, json!(["conversations"])),
        "{v}"
    );
    let (_, v) = vault(&base, Method::GET, "/v1/transit/keys?list=true", &a, None).await;
    assert_eq!(v["data"]["keys"], json!(["conversations", "other"]));
    // The refusals were audited (as access denials).
    let denied = app.audit(&owner, "action=access.denied").await;
    assert!(
        denied
            .iter()
            .any(|e| e["details"]["reason"] == "outside_narrowed_scope"),
        "{denied:?}"
    );

    // Oversize bodies get 413 (limit configured to 64 KiB here).
    let big = "A".repeat(80 * 1024);
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/conversations",
        &a,
        Some(json!({"plaintext": big})),
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert!(
        v["errors"][0]
            .as_str()
            .unwrap()
            .contains("vault_request_bytes")
    );

    // Malformed base64 is a clear 400.
    for (path, body, words) in [
        (
            "/v1/transit/encrypt/conversations",
            json!({"plaintext": "%%%"}),
            "plaintext must be standard base64",
        ),
        (
            "/v1/transit/encrypt/conversations",
            json!({"plaintext": pt, "context": "%%%"}),
            "context must be standard base64",
        ),
        (
            "/v1/transit/decrypt/conversations",
            json!({"ciphertext": "vault:v1:%%%"}),
            "could not decode base64",
        ),
        (
            "/v1/transit/decrypt/conversations",
            json!({"ciphertext": "nonsense"}),
            "no prefix",
        ),
        (
            "/v1/transit/hmac/conversations",
            json!({"input": "%%%"}),
            "input must be standard base64",
        ),
        (
            "/v1/transit/encrypt/conversations",
            json!({}),
            "missing plaintext",
        ),
        (
            "/v1/transit/encrypt/conversations",
            json!({"plaintext": 5}),
            "plaintext must be a string",
        ),
        (
            "/v1/transit/keys/x",
            json!({"type": "rsa-4096"}),
            "unknown key type",
        ),
        ("/v1/transit/random/0", json!({}), "between 1 and"),
        ("/v1/transit/random/8", json!({"format": "base32"}), "hex"),
    ] {
        let (s, v) = vault(&base, Method::POST, path, &a, Some(body.clone())).await;
        assert_eq!(s, 400, "{path} {body}: {v}");
        let m = v["errors"][0].as_str().unwrap_or("");
        assert!(m.contains(words), "{path} {body}: {m}");
    }
    let (s, v) = plain()
        .post(format!("{base}/v1/transit/encrypt/conversations"))
        .header("X-Vault-Token", &a)
        .body("{not json")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(s, 400, "{:?}", v.text().await);

    // No credential, a bad one, a key name that is a path: refused.
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/conversations",
        "",
        Some(json!({"plaintext": pt})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, _) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/..%2fother",
        &a,
        Some(json!({"plaintext": pt})),
    )
    .await;
    assert_eq!(s, 400);
    // Unknown paths and methods answer in Vault's envelope.
    let (s, v) = vault(&base, Method::POST, "/v1/transit/nothing", &a, None).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["errors"].is_array());
    let (s, v) = vault(
        &base,
        Method::GET,
        "/v1/transit/encrypt/conversations",
        &a,
        None,
    )
    .await;
    assert_eq!(s, 405, "{v}");
    // A missing key reads as Vault's 404 with no errors; decrypting with it is a 400.
    let (s, v) = vault(&base, Method::GET, "/v1/transit/keys/missing", &a, None).await;
    assert_eq!((s, v), (404, json!({"errors": []})));
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/decrypt/missing",
        &a,
        Some(json!({"ciphertext": ct})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // An encrypt-only caller cannot create a key by encrypting with it (no upsert).
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/fresh",
        &enc_only,
        Some(json!({"plaintext": pt})),
    )
    .await;
    assert_eq!(
        (s, v["errors"][0].as_str()),
        (400, Some("encryption key not found")),
        "{v}"
    );

    // Nothing in any answer or audit record carries the plaintext.
    let events = app.audit(&owner, "per_page=200").await;
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(&pt) && !all.contains("the-plaintext-nobody-may-see"));
    let db = std::fs::read(app.data.join("gatehouse.redb")).unwrap();
    assert!(!db.windows(pt.len()).any(|w| w == pt.as_bytes()));
}

/// A user's own token works too: the workspace is theirs, or the one named
/// by `X-Vault-Namespace` when they (a platform admin) belong to none; a
/// workspace-bound key naming another namespace is refused.
#[actix_web::test]
async fn user_tokens_and_namespaces() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let base = app.base.clone();
    let ws_a = workspace(&base, &owner, "A").await;
    let ws_b = workspace(&base, &owner, "B").await;
    // A platform admin must name the workspace.
    let (s, v) = vault(&base, Method::POST, "/v1/transit/keys/k", &owner, None).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["errors"][0]
            .as_str()
            .unwrap()
            .contains("X-Vault-Namespace")
    );
    let r = plain()
        .post(format!("{base}/v1/transit/keys/k"))
        .bearer_auth(&owner)
        .header("X-Vault-Namespace", &ws_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let key_b = api_key(&base, &owner, &ws_b, &ALL_TRANSIT).await;
    // B's key does not see A's key, and cannot name A's namespace.
    let (s, _) = vault(&base, Method::GET, "/v1/transit/keys/k", &key_b, None).await;
    assert_eq!(s, 404);
    let r = plain()
        .get(format!("{base}/v1/transit/keys/k"))
        .header("X-Vault-Token", &key_b)
        .header("X-Vault-Namespace", &ws_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A workspace admin of A (a user token) works in A without naming it.
    app.create_user(&owner, "wa@example.com", "user").await;
    let r = plain()
        .post(format!("{base}/api/v1/workspaces/{ws_a}/members"))
        .bearer_auth(&owner)
        .json(&json!({"email": "wa@example.com", "roles": ["workspace_admin"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let wa = app
        .api_login("wa@example.com", "amber-meadow-river-77")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/k",
        &wa,
        Some(json!({"plaintext": ""})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // An analyst-like member without transit permissions is refused.
    app.create_user(&owner, "u@example.com", "user").await;
    plain()
        .post(format!("{base}/api/v1/workspaces/{ws_a}/members"))
        .bearer_auth(&owner)
        .json(&json!({"email": "u@example.com", "roles": ["user"]}))
        .send()
        .await
        .unwrap();
    let u = app
        .api_login("u@example.com", "amber-meadow-river-77")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/k",
        &u,
        Some(json!({"plaintext": ""})),
    )
    .await;
    assert_eq!(s, 403);
}

/// Narrowed scopes go through the client-credentials grant too: a service
/// account holding `transit:decrypt:conversations` gets a token for exactly
/// that, and cannot ask for more.
#[actix_web::test]
async fn narrowed_scopes_in_service_account_tokens() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let base = app.base.clone();
    let ws = workspace(&base, &owner, "A").await;
    let admin_key = api_key(&base, &owner, &ws, &ALL_TRANSIT).await;
    vault(
        &base,
        Method::POST,
        "/v1/transit/keys/conversations",
        &admin_key,
        None,
    )
    .await;
    vault(
        &base,
        Method::POST,
        "/v1/transit/keys/other",
        &admin_key,
        None,
    )
    .await;
    let (id, secret) = crate::access::service_account(
        &app,
        &owner,
        json!({"workspace": ws, "name": "reader", "scopes": ["transit:encrypt:conversations", "read:agents"]}),
    )
    .await;
    let (s, v) = crate::access::client_token(&app, &id, &secret, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "read:agents transit:encrypt:conversations");
    let tok = v["access_token"].as_str().unwrap().to_string();
    let (s, _) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/conversations",
        &tok,
        Some(json!({"plaintext": ""})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = vault(
        &base,
        Method::POST,
        "/v1/transit/encrypt/other",
        &tok,
        Some(json!({"plaintext": ""})),
    )
    .await;
    assert_eq!(s, 403);
    for more in [
        "transit:encrypt",
        "transit:encrypt:other",
        "transit:decrypt:conversations",
    ] {
        let (s, v) = crate::access::client_token(&app, &id, &secret, Some(more)).await;
        assert_eq!(s, 400, "{more}: {v}");
    }
    let (s, v) =
        crate::access::client_token(&app, &id, &secret, Some("transit:encrypt:conversations"))
            .await;
    assert_eq!(
        (s, v["scope"].as_str()),
        (200, Some("transit:encrypt:conversations"))
    );
    // A malformed narrowed scope is refused at creation, saying why.
    let (s, v) = call_api(
        &app,
        &owner,
        json!({"workspace": ws, "name": "bad", "scopes": ["transit:decrypt:a/b"]}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("Transit key name"), "{v}");
}

async fn call_api(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    crate::access::call(app, Method::POST, "/api/v1/api-apps", token, Some(body)).await
}
