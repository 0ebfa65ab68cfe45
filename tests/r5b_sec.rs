//! R5b: the denial buffer (issue 11). Reading the audit log does not commit
//! the waiting refusals (so a reader cannot turn each refusal into a
//! durable event), a crash loses at most the last second of refusals held
//! past a principal's budget, and over-budget events keep their workspace
//! and the newest addresses.

use serde_json::{Value, json};

use crate::access::{client_token, service_account};
use crate::common::{self, TestApp, plain, spawn};

/// A GET with a bearer token: its status and body.
async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let r = plain()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A new workspace's id.
async fn workspace(app: &TestApp, owner: &str, name: &str) -> String {
    let (s, v) = common::post(
        app,
        "/api/v1/workspaces",
        Some(owner),
        json!({"name": name}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// A service account (`body`) and an access token for it: (client id, token).
async fn client(app: &TestApp, owner: &str, body: Value) -> (String, String) {
    let (id, secret) = service_account(app, owner, body).await;
    let (s, t) = client_token(app, &id, &secret, None).await;
    assert_eq!(s, 200, "{t}");
    (id, t["access_token"].as_str().unwrap().to_string())
}

/// The committed `access.denied` events of `actor`, after the buffer's own commit.
async fn committed_denials(app: &TestApp, owner: &str, actor: &str) -> Vec<Value> {
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let ev = app
        .audit(
            owner,
            &format!("action=access.denied&actor={actor}&per_page=200"),
        )
        .await;
    assert!(ev.iter().all(|e| e["pending"].is_null()), "{ev:?}");
    ev
}

fn total(events: &[Value]) -> u64 {
    events
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum()
}

/// Finding 1: a client with only `read:audit` on its own workspace
/// alternates refused calls and a one-event read of its workspace's log,
/// 300 times. Each read used to commit the whole buffer: 600 durable events.
/// Now a read commits only what is within the principal's budget
/// (`audit::DENIAL_BUDGET` distinct events a window); past it the
/// principal's over-budget event waits for its window's end and reads show it
/// as it stands (`pending`): at most the budget and one over-budget event per
/// window, however often the log is read.
#[actix_web::test]
async fn finding1_reading_the_log_does_not_split_coalesced_refusals() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let ws = workspace(&app, &owner, "Tenant").await;
    let (cid, tb) = client(
        &app,
        &owner,
        json!({"workspace": ws, "name": "tenantbot", "scopes": ["read:audit"]}),
    )
    .await;
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let commits = || app.svc.store.generation(gatehouse::store::Table::Audit);
    let before = commits();
    let started = std::time::Instant::now();
    let members = format!("/api/v1/workspaces/{ws}/members");
    let read = format!("/api/v1/audit?workspace={ws}&per_page=1");
    let mut seen_pending = 0;
    for _ in 0..300 {
        assert_eq!(get(&app, "/api/v1/users", &tb).await.0, 403);
        assert_eq!(get(&app, &members, &tb).await.0, 403);
        let (s, v) = get(&app, &read, &tb).await;
        assert_eq!(s, 200, "{v}");
        // The workspace's view shows its refusal at once, still waiting
        // (unless the background writer committed it just now).
        let e = &v["events"][0];
        assert_eq!(e["workspace"], ws.as_str(), "{e}");
        assert_eq!(e["actor_id"], cid.as_str(), "{e}");
        if e["pending"] == true {
            assert_eq!((&e["id"], &e["hash"]), (&json!(0), &json!("")), "{e}");
            seen_pending += 1;
        }
    }
    let secs = started.elapsed().as_secs();
    let during = commits() - before;
    let windows = secs / gatehouse::audit::DENIAL_BUDGET_WINDOW_SECS as u64 + 1;
    let budget = u64::from(gatehouse::audit::DENIAL_BUDGET);
    // Reads commit at most the budget a window; the background writer and
    // the held events' save add at most one commit a second each.
    assert!(
        during <= windows * budget + 2 * (secs + 2),
        "{during} audit commits in {secs} s"
    );
    let ev = committed_denials(&app, &owner, &cid).await;
    eprintln!("600 refusals, 300 reads in {secs} s: {} events", ev.len());
    assert!(
        ev.len() as u64 <= windows * (budget + 2),
        "{} events",
        ev.len()
    );
    assert_eq!(total(&ev), 600, "every refusal is on the record");
    assert!(
        seen_pending >= 200,
        "{seen_pending} reads saw the refusal waiting"
    );
    let n = gatehouse::audit::verify(&app.svc.store.read().unwrap())
        .unwrap()
        .unwrap();
    assert!(n > 2);
}

/// `method path` with a bearer token against the real executable.
async fn call_server(
    s: &crate::cli::Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = plain().request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn owner_login(s: &crate::cli::Server) -> String {
    let r = plain()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"email": common::OWNER, "password": common::OWNER_PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// Finding 2: a platform client without `read:audit` is refused the log of
/// 25 workspaces (25 distinct refusals: 20 within its budget, the rest held
/// in its over-budget event until the minute ends) and then 30 more times;
/// the server is killed (SIGKILL) 3 s later. The held refusals used to be
/// lost; now they were saved with the background writer's commit and are
/// written at the next start, marked `interrupted`.
#[actix_web::test]
async fn finding2_a_kill_does_not_lose_held_over_budget_refusals() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = crate::cli::Server::start(&data, &[]);
    let link = s.setup_link.clone().expect("setup link");
    crate::cli::setup_via_link(&s, &link).await;
    let owner = owner_login(&s).await;
    let mut spaces = Vec::new();
    for n in 0..25 {
        let (st, v) = call_server(
            &s,
            Method::POST,
            "/api/v1/workspaces",
            &owner,
            Some(json!({"name": format!("W{n}")})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        spaces.push(v["id"].as_str().unwrap().to_string());
    }
    let (st, v) = call_server(
        &s,
        Method::POST,
        "/api/v1/service-accounts",
        &owner,
        Some(json!({"name": "prober", "scopes": ["read:agents"]})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let cid = v["client_id"].as_str().unwrap().to_string();
    let r = plain()
        .post(s.url("/oauth2/token"))
        .basic_auth(&cid, v["client_secret"].as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    let tk = t["access_token"].as_str().unwrap().to_string();
    let refuse = |ws: &str| format!("/api/v1/audit?workspace={ws}");
    for ws in &spaces {
        assert_eq!(
            call_server(&s, Method::GET, &refuse(ws), &tk, None).await.0,
            403
        );
    }
    for n in 0..30 {
        let ws = &spaces[20 + n % 5];
        assert_eq!(
            call_server(&s, Method::GET, &refuse(ws), &tk, None).await.0,
            403
        );
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    drop(s); // SIGKILL
    let s = crate::cli::Server::start(&data, &[]);
    let owner = owner_login(&s).await;
    let (st, v) = call_server(
        &s,
        Method::GET,
        &format!("/api/v1/audit?action=access.denied&actor={cid}&per_page=200"),
        &owner,
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let ev = v["events"].as_array().unwrap();
    assert_eq!(
        total(ev),
        55,
        "every refusal survives the kill ({} events)",
        ev.len()
    );
    let over: Vec<&Value> = ev
        .iter()
        .filter(|e| e["details"]["over_budget"] == true)
        .collect();
    assert!(!over.is_empty(), "{ev:?}");
    assert!(
        over.iter()
            .all(|e| e["details"]["interrupted"] == true && e["pending"].is_null()),
        "{over:?}"
    );
}

/// Finding 3: a workspace-bound client is refused in its workspace from 40
/// addresses (behind a trusted proxy), then from a prober's: past its budget
/// the refusals fold into one over-budget event, which used to name no
/// workspace (so the workspace's own view never showed it) and list only
/// the first 10 addresses (hiding the prober's). It names the workspace and
/// lists the first and the newest addresses now.
#[actix_web::test]
async fn finding3_over_budget_events_keep_their_workspace_and_newest_addresses() {
    let app = common::spawn_with(|s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let owner = app.owner_token().await;
    let ws = workspace(&app, &owner, "Tenant").await;
    let (cid, tb) = client(
        &app,
        &owner,
        json!({"workspace": ws, "name": "tenantbot", "scopes": ["read:audit"]}),
    )
    .await;
    let members = app.url(&format!("/api/v1/workspaces/{ws}/members"));
    let prober = "192.0.2.99";
    let from: Vec<String> = (0..40)
        .map(|n| format!("10.7.0.{n}"))
        .chain([prober.to_string()])
        .collect();
    for ip in &from {
        let r = plain()
            .get(&members)
            .bearer_auth(&tb)
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let view = format!("workspace={ws}&action=access.denied&actor={cid}&per_page=200");
    let ev = app.audit(&tb, &view).await;
    assert_eq!(total(&ev), 41, "the workspace's view counts every refusal");
    let over: Vec<&Value> = ev
        .iter()
        .filter(|e| e["details"]["over_budget"] == true)
        .collect();
    assert_eq!(over.len(), 1, "{ev:?}");
    assert_eq!(over[0]["workspace"], ws.as_str());
    let d = &over[0]["details"];
    assert_eq!(
        d["count"],
        41 - u64::from(gatehouse::audit::DENIAL_BUDGET),
        "{d}"
    );
    let listed: Vec<&str> = d["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(listed.first(), Some(&"10.7.0.20"), "{d}");
    assert_eq!(listed.last(), Some(&prober), "the prober stays listed: {d}");
    assert_eq!(listed.len(), 10, "{d}");
    assert_eq!(d["addresses_unlisted"], 11, "{d}");
    // Committed, it is the same event in the same view.
    let committed = committed_denials(&app, &owner, &cid).await;
    assert_eq!(total(&committed), 41);
    let ev = app.audit(&tb, &view).await;
    assert_eq!(total(&ev), 41);
}
