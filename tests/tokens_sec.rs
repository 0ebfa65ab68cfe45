//! Issue 11, the token findings: access tokens end when the user's
//! credentials or access change (6, 18), an enrolment-only token opens
//! nothing but enrolment (12), the idle timeout counts from the last request
//! (16), and from 13: refresh families' absolute lifetime, session ownership,
//! audit truncation and strict time values. Each test sends the attack.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{call, world};
use crate::common::*;

const PW: &str = "amber-meadow-river-77";

async fn status(app: &TestApp, m: Method, path: &str, token: &str) -> u16 {
    call(app, m, path, token, None).await.0
}

async fn verify(app: &TestApp, token: &str) -> u16 {
    plain()
        .get(app.url("/auth/verify"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A platform service account allowed to introspect.
async fn checker(app: &TestApp, owner: &str) -> (String, String) {
    crate::access::service_account(
        app,
        owner,
        json!({"name": "checker", "scopes": ["introspect:credentials"]}),
    )
    .await
}

async fn introspect(app: &TestApp, basic: &(String, String), token: &str) -> Value {
    plain()
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&basic.0, Some(&basic.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every check of `token` answers "alive" (`true`) or "ended" (`false`):
/// the API, forward auth and introspection, so the reused answers of the
/// last two are covered too.
async fn token_alive(app: &TestApp, basic: &(String, String), token: &str) -> bool {
    let me = status(app, Method::GET, "/api/v1/me", token).await;
    let v = verify(app, token).await;
    let active = introspect(app, basic, token).await["active"] == true;
    assert!(
        (me == 200) == (v == 200) && (v == 200) == active,
        "the checks disagree: me {me}, verify {v}, introspect {active}"
    );
    me == 200
}

fn tok(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_string()
}

// ------------------------------------------------------------------ finding 6

/// An admin's password reset, an admin's "end sessions", disabling and an
/// MFA reset each end the access tokens already issued; the reused answers
/// of /auth/verify and introspection (warmed first) follow on the very next
/// check, and a fresh sign-in in the same second works.
#[actix_web::test]
async fn access_tokens_end_with_every_credential_or_access_change() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let basic = checker(&app, &owner).await;
    let lee = app.create_user(&owner, "lee@example.com", "user").await;
    let id = lee["id"].as_str().unwrap().to_string();

    // Password reset by an admin.
    let t = tok(&app.api_login("lee@example.com", PW).await);
    assert!(token_alive(&app, &basic, &t).await);
    assert!(token_alive(&app, &basic, &t).await, "reused answers");
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/password"),
        &owner,
        Some(json!({"password": "copper-violet-stream-31"})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    assert!(!token_alive(&app, &basic, &t).await, "reset ends the token");
    let fresh = tok(&app
        .api_login("lee@example.com", "copper-violet-stream-31")
        .await);
    assert!(
        token_alive(&app, &basic, &fresh).await,
        "a sign-in in the same second after the reset works"
    );
    assert!(token_alive(&app, &basic, &owner).await, "others untouched");

    // An admin ends the user's sessions and tokens.
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/sessions/end"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(!token_alive(&app, &basic, &fresh).await);

    // Disabled, then enabled again: the old token stays dead.
    let t = tok(&app
        .api_login("lee@example.com", "copper-violet-stream-31")
        .await);
    assert!(token_alive(&app, &basic, &t).await);
    for action in ["disable", "enable"] {
        let (s, v) = call(
            &app,
            Method::POST,
            &format!("/api/v1/users/{id}/{action}"),
            &owner,
            None,
        )
        .await;
        assert!((200..300).contains(&s), "{action}: {s} {v}");
    }
    assert!(!token_alive(&app, &basic, &t).await, "disable ended it");

    // An MFA reset by an admin.
    let t = tok(&app
        .api_login("lee@example.com", "copper-violet-stream-31")
        .await);
    assert!(token_alive(&app, &basic, &t).await);
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/mfa/reset"),
        &owner,
        None,
    )
    .await;
    assert!((200..300).contains(&s), "{s} {v}");
    assert!(!token_alive(&app, &basic, &t).await, "MFA reset ended it");

    // Each move is in the audit log's event for the change.
    let ev = app.audit(&owner, "action=session.end_all").await;
    assert_eq!(ev.len(), 1);
}

/// `sessions/end` called by the user on themselves ends the calling token
/// too (finding 18's second half), and the console's "end all other
/// sessions" ends the user's access tokens, as its notice now says.
#[actix_web::test]
async fn ending_ones_own_sessions_ends_the_current_token_too() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let basic = checker(&app, &owner).await;
    let lee = app.create_user(&owner, "lee@example.com", "user").await;
    let id = lee["id"].as_str().unwrap().to_string();
    let t = tok(&app.api_login("lee@example.com", PW).await);
    let other = tok(&app.api_login("lee@example.com", PW).await);
    assert!(token_alive(&app, &basic, &t).await);
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/sessions/end"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    assert!(
        !token_alive(&app, &basic, &t).await,
        "the caller's own token"
    );
    assert!(!token_alive(&app, &basic, &other).await);
    // Someone else's: still an admin's business.
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/sessions/end"),
        &tok(&app.api_login(OWNER, OWNER_PW).await),
        None,
    )
    .await;
    assert_eq!(s, 204);
    app.create_user(&owner, "max@example.com", "user").await;
    let max = tok(&app.api_login("max@example.com", PW).await);
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{id}/sessions/end"),
        &max,
        None,
    )
    .await;
    assert_eq!(s, 403, "a user does not end another user's sessions");

    // Console: "End all other sessions".
    let t = tok(&app.api_login("lee@example.com", PW).await);
    let (c, csrf) = app.browser_login("lee@example.com", PW).await;
    assert!(token_alive(&app, &basic, &t).await);
    let r = c
        .post(app.url("/admin/account/sessions/end-others"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(!token_alive(&app, &basic, &t).await);
    let page = c
        .get(app.url("/admin/account?notice=ended_others"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the current session stays");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("access tokens have ended")
    );
}

/// A recovery link (the way back `gatehouse recover` prints) ends the
/// user's access tokens.
#[actix_web::test]
async fn a_recovery_link_ends_access_tokens() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let basic = checker(&app, &owner).await;
    app.create_user(&owner, "lee@example.com", "user").await;
    let t = tok(&app.api_login("lee@example.com", PW).await);
    assert!(token_alive(&app, &basic, &t).await);
    let link = gatehouse::authn::recover_link(
        &app.svc,
        "lee@example.com",
        &gatehouse::audit::Source::default(),
    )
    .unwrap();
    let token = link.split("token=").nth(1).unwrap();
    gatehouse::users::recover(
        &app.svc,
        token,
        gatehouse::authn::password::Password::new("copper-violet-stream-31"),
        &gatehouse::audit::Source::default(),
    )
    .await
    .unwrap();
    assert!(!token_alive(&app, &basic, &t).await, "recovery ended it");
}

// ----------------------------------------------------------------- finding 18

/// MFA becomes required for admins: an admin without a second factor loses
/// the full access their token, refresh family and browser session held; a
/// fresh sign-in yields an enrolment-only token; users the change does not
/// confine keep theirs.
#[actix_web::test]
async fn a_policy_that_confines_users_reaches_their_tokens_and_sessions() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let basic = checker(&app, &owner).await;
    app.create_user(&owner, "lee@example.com", "admin").await;
    app.create_user(&owner, "una@example.com", "user").await;
    let pair = app.api_login("lee@example.com", PW).await;
    let lee = tok(&pair);
    let una = tok(&app.api_login("una@example.com", PW).await);
    let (c, _) = app.browser_login("lee@example.com", PW).await;
    assert_eq!(status(&app, Method::GET, "/api/v1/users", &lee).await, 200);
    assert!(token_alive(&app, &basic, &una).await);
    let (s, v) = put_policy(&app, &owner, policy("roles", &["admin"])).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        status(&app, Method::GET, "/api/v1/users", &lee).await,
        401,
        "the full token issued before the change ended"
    );
    assert!(!token_alive(&app, &basic, &lee).await);
    assert!(token_alive(&app, &basic, &una).await, "not confined");
    // The refresh family ended too (r1 finding 3: confinement is one of the
    // revocations that end everything); a fresh sign-in is enrolment-only.
    let (s, r) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 401, "{r}");
    let r = app.api_login("lee@example.com", PW).await;
    let (s, e) = call(&app, Method::GET, "/api/v1/users", &tok(&r), None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("mfa_enrollment_required"))
    );
    // The browser session opens enrolment only.
    let r = c.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/admin/account/mfa"),
        "{:?}",
        r.headers()
    );
    let ev = app.audit(&owner, "action=settings.security_change").await;
    assert_eq!(ev[0]["details"]["users_confined"], 1, "{ev:?}");
}

// ----------------------------------------------------------------- finding 12

/// An enrolment-only token of an admin (who would otherwise hold
/// introspect:credentials) is refused as the caller of introspection and
/// revocation, and as the subject it is inactive.
#[actix_web::test]
async fn an_enrolment_only_token_cannot_call_introspection_or_revocation() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, "lee@example.com", "admin").await;
    app.create_user(&owner, "una@example.com", "user").await;
    let una = app.api_login("una@example.com", PW).await;
    assert_eq!(
        put_policy(&app, &owner, policy("roles", &["admin"]))
            .await
            .0,
        200
    );
    let lee = tok(&app.api_login("lee@example.com", PW).await);
    assert_eq!(
        status(&app, Method::GET, "/api/v1/me", &lee).await,
        200,
        "enrolment-only"
    );
    for (path, field) in [
        ("/oauth2/introspect", tok(&una)),
        ("/oauth2/revoke", tok(&una)),
        (
            "/oauth2/revoke",
            una["refresh_token"].as_str().unwrap().to_string(),
        ),
    ] {
        let r = plain()
            .post(app.url(path))
            .bearer_auth(&lee)
            .form(&[("token", field.as_str())])
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(s, 403, "{path}: {body}");
        assert_eq!(body["error"], "access_denied", "{body}");
    }
    // Una's tokens survived the attempts.
    assert_eq!(
        status(&app, Method::GET, "/api/v1/me", &tok(&una)).await,
        200
    );
    let (s, _) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": una["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 200);
    // The owner's checker sees Lee's token as inactive.
    let basic = checker(&app, &owner).await;
    assert_eq!(introspect(&app, &basic, &lee).await["active"], false);
    assert_eq!(verify(&app, &lee).await, 401);
    let (s, v) = post(
        &app,
        "/api/v1/authorize",
        Some(&owner),
        json!({"credential": lee, "scope": "read:agents"}),
    )
    .await;
    assert_eq!((s, &v["allow"]), (200, &json!(false)), "{v}");
}

// ----------------------------------------------------------------- finding 16

async fn idle_app(idle: i64) -> (TestApp, reqwest::Client) {
    let app = spawn_with(|s| {
        s.session.idle_timeout_secs = idle;
    })
    .await;
    app.setup_owner().await;
    let (c, _) = app.browser_login(OWNER, OWNER_PW).await;
    (app, c)
}

async fn me(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn idle_timeout_counts_from_the_last_request_not_the_last_write() {
    // idle 90 s: requests at 50 s and 100 s keep the session.
    let (app, c) = idle_app(90).await;
    app.clock.advance(50);
    assert_eq!(me(&app, &c).await, 200);
    app.clock.advance(50);
    assert_eq!(me(&app, &c).await, 200, "50 s idle of 90");
    app.clock.advance(90);
    assert_eq!(me(&app, &c).await, 200, "exactly the idle time");
    app.clock.advance(91);
    assert_eq!(me(&app, &c).await, 401, "idle + 1 s");

    // idle 60 s, a request every 15 s: alive for minutes.
    let (app, c) = idle_app(60).await;
    for _ in 0..40 {
        app.clock.advance(15);
        assert_eq!(me(&app, &c).await, 200);
    }
    app.clock.advance(61);
    assert_eq!(me(&app, &c).await, 401, "true idleness of idle + 1 s");

    // Right after sign-in, idle + 1 s ends it too.
    let (app, c) = idle_app(60).await;
    app.clock.advance(61);
    assert_eq!(me(&app, &c).await, 401);
}

// --------------------------------------------------------- 13: session owner

/// User A names user B's session (its hash, as the session list shows it)
/// in the console's end-session form: refused as unknown, B stays signed in.
#[actix_web::test]
async fn a_user_cannot_end_another_users_session() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, "amy@example.com", "user").await;
    app.create_user(&owner, "bob@example.com", "user").await;
    let bob = app.login_cookie("bob@example.com", PW).await;
    let bob_value = bob.split_once('=').unwrap().1;
    let bob_hash = hex::encode(gatehouse::authn::session::hash_token(bob_value));
    let (amy, csrf) = app.browser_login("amy@example.com", PW).await;
    let r = amy
        .post(app.url(&format!("/admin/account/sessions/{bob_hash}/end")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "{}", r.text().await.unwrap());
    let r = plain()
        .get(app.url("/api/v1/me"))
        .header("cookie", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Bob is still signed in");
    // Amy's own session list and session still work.
    assert_eq!(
        amy.get(app.url("/admin/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

// ------------------------------------------------- 13: refresh absolute life

#[actix_web::test]
async fn refresh_families_end_seven_days_after_their_sign_in() {
    let app = spawn().await;
    app.owner_token().await;
    let mut pair = app.api_login(OWNER, OWNER_PW).await;
    // Rotate every 2 days: each token is fresh, the family is not.
    for _ in 0..3 {
        app.clock.advance(2 * 86_400);
        let (s, next) = post(
            &app,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
        assert_eq!(s, 200, "{next}");
        pair = next;
    }
    app.clock.advance(86_400 + 1);
    let (s, v) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 401, "7 days after the sign-in, rotation or not: {v}");
}

#[actix_web::test]
async fn workspace_session_limits_bound_refresh_families() {
    let app = spawn().await;
    let w = world(&app).await;
    let (s, v) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/session-limits", w.ws_a),
        &w.owner,
        Some(json!({"absolute_lifetime_secs": 3600})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut pair = app.api_login("dev@example.com", PW).await;
    let outsider = {
        app.create_user(&w.owner, "out@example.com", "user").await;
        app.api_login("out@example.com", PW).await
    };
    app.clock.advance(1800);
    let (s, next) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 200, "{next}");
    pair = next;
    app.clock.advance(1801);
    let (s, _) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 401, "past Alpha's one-hour lifetime");
    let (s, _) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": outsider["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 200, "the installation's 7 days for others");
}

// ----------------------------------------------------- 13: audit truncation

fn audit_verify(data: &std::path::Path) -> (Option<i32>, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GATEHOUSE_DATA", data)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A data directory with 10 audit events; returns their hashes (oldest first).
fn audited_data_dir(dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
    // The settings the executable will have (defaults), so its start records
    // no configuration change on top of the tampered log.
    let mut s = gatehouse::config::Settings::load(None, Vec::<(String, String)>::new()).unwrap();
    s.data_dir = dir.join("data");
    let data = s.data_dir.clone();
    let svc = gatehouse::service::Service::open(
        s,
        std::sync::Arc::new(gatehouse::clock::FixedClock::new(T0)),
    )
    .unwrap();
    for _ in 0..10 {
        gatehouse::authn::setup_link(&svc, &gatehouse::audit::Source::default()).unwrap();
    }
    let (mut events, _) = gatehouse::audit::query(
        &svc.store.read().unwrap(),
        &gatehouse::audit::Filter::default(),
        0,
        100,
    )
    .unwrap();
    events.reverse();
    assert_eq!(events.len(), 10);
    (data, events.into_iter().map(|e| e.hash).collect())
}

/// Behind Gatehouse's back (server stopped), with write access to the file
/// but not the master key.
fn tamper(data: &std::path::Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::create(data.join("gatehouse.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

fn table(name: &str) -> redb::TableDefinition<'_, &'static [u8], &'static [u8]> {
    redb::TableDefinition::new(name)
}

fn cut_events(tx: &redb::WriteTransaction, from: u64, to: u64) {
    let mut t = tx.open_table(table("audit")).unwrap();
    for id in from..=to {
        assert!(t.remove(&id.to_be_bytes()[..]).unwrap().is_some());
    }
}

/// The plain head rewound to event `seq` (what a careful attacker does).
fn rewind_head(tx: &redb::WriteTransaction, seq: u64, hash: &str) {
    let mut t = tx.open_table(table("meta")).unwrap();
    let v = serde_json::to_vec(&json!({"seq": seq, "hash": hash})).unwrap();
    t.insert(&b"audit_head"[..], v.as_slice()).unwrap();
}

#[test]
fn audit_verify_detects_a_cut_off_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hashes) = audited_data_dir(dir.path());
    let (code, out) = audit_verify(&data);
    assert_eq!(code, Some(0), "{out}");

    // The newest 3 events cut and the plain head rewound to event 7.
    tamper(&data, |tx| {
        cut_events(tx, 8, 10);
        rewind_head(tx, 7, &hashes[6]);
    });
    let (code, out) = audit_verify(&data);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("truncated"), "{out}");
    assert!(out.contains("ends at event 7"), "{out}");
}

#[test]
fn audit_verify_detects_a_cut_that_also_deletes_the_sealed_head() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hashes) = audited_data_dir(dir.path());
    tamper(&data, |tx| {
        cut_events(tx, 9, 10);
        rewind_head(tx, 8, &hashes[7]);
        let mut t = tx.open_table(table("secrets")).unwrap();
        assert!(t.remove(&b"audit_head_sealed"[..]).unwrap().is_some());
    });
    let (code, out) = audit_verify(&data);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("truncated"), "{out}");
    assert!(out.contains("sealed chain head is missing"), "{out}");
}

#[test]
fn audit_verify_refuses_a_forged_sealed_head() {
    let dir = tempfile::tempdir().unwrap();
    let (data, hashes) = audited_data_dir(dir.path());
    tamper(&data, |tx| {
        cut_events(tx, 10, 10);
        rewind_head(tx, 9, &hashes[8]);
        // Without the master key only a plain (or another record's) value fits.
        let mut t = tx.open_table(table("secrets")).unwrap();
        let v = serde_json::to_vec(&json!({"seq": 9, "hash": hashes[8]})).unwrap();
        t.insert(&b"audit_head_sealed"[..], v.as_slice()).unwrap();
    });
    let (code, out) = audit_verify(&data);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("sealed chain head failed to open"), "{out}");
}

// ------------------------------------------------------- 13: time values

#[actix_web::test]
async fn time_values_are_rfc3339_or_carry_a_unit_and_absurd_ones_are_refused() {
    let app = spawn().await;
    let w = world(&app).await;
    let a = call(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.owner,
        Some(json!({"workspace": w.ws_a, "name": "a", "scopes": ["read:agents"]})),
    )
    .await
    .1;
    let keys = format!("/api/v1/api-apps/{}/keys", a["id"].as_str().unwrap());
    for bad in [
        json!((T0 + 3600).to_string()),
        json!("3600"),
        json!("9223372036854775807"),
        json!("-9223372036854775808"),
        json!("2027-01-31"),
        json!("9999-12-31T23:59:59Z"),
        json!("+10000-01-01T00:00:00Z"),
    ] {
        let (s, v) = call(
            &app,
            Method::POST,
            &keys,
            &w.owner,
            Some(json!({"expires_at": bad})),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("expires_at"),
            "{v}"
        );
    }
    let good = gatehouse::clock::rfc3339(T0 + 3600);
    let (s, v) = call(
        &app,
        Method::POST,
        &keys,
        &w.owner,
        Some(json!({"expires_at": good})),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    // Audit filters.
    for q in [
        "since=1800000000",
        "until=0",
        "since=2026-01-31",
        "until=9223372036854775807",
    ] {
        let (s, v) = call(
            &app,
            Method::GET,
            &format!("/api/v1/audit?{q}"),
            &w.owner,
            None,
        )
        .await;
        assert_eq!(s, 400, "{q}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("RFC 3339"),
            "{v}"
        );
    }
    let (s, _) = call(
        &app,
        Method::GET,
        "/api/v1/audit?since=2020-01-01T00:00:00Z&until=2100-01-01T00:00:00%2B01:00",
        &w.owner,
        None,
    )
    .await;
    assert_eq!(s, 200);

    // Durations: absurd ones get a message, none overflows.
    let limits = format!("/api/v1/workspaces/{}/session-limits", w.ws_a);
    for bad in [
        json!({"idle_timeout_secs": i64::MAX}),
        json!({"absolute_lifetime_secs": i64::MAX}),
        json!({"idle_timeout_secs": i64::MIN}),
        json!({"idle_timeout_secs": "300"}),
        json!({"idle_timeout_secs": 300.5}),
    ] {
        let (s, v) = call(&app, Method::PUT, &limits, &w.owner, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let mut p = policy("off", &[]);
    for (field, v) in [
        ("reauth_window_secs", json!(i64::MAX)),
        ("idle_timeout_secs", json!(i64::MAX)),
        ("absolute_lifetime_secs", json!(i64::MAX)),
        ("idle_timeout_secs", json!("1800")),
    ] {
        let before = p["session"][field].clone();
        p["session"][field] = v.clone();
        let (s, body) = put_policy(&app, &w.owner, p.clone()).await;
        assert_eq!(s, 400, "{field}={v}: {body}");
        p["session"][field] = before;
    }
    assert_eq!(put_policy(&app, &w.owner, p).await.0, 200);
}

#[test]
fn configured_durations_are_bounded() {
    let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    for (k, v) in [
        ("GATEHOUSE_TOKENS_ACCESS_TTL_SECS", "9223372036854775807"),
        ("GATEHOUSE_TOKENS_REFRESH_TTL_SECS", "9223372036854775807"),
        (
            "GATEHOUSE_SESSION_ABSOLUTE_LIFETIME_SECS",
            "9223372036854775807",
        ),
        ("GATEHOUSE_LOCKOUT_MAX_LOCK_SECS", "9223372036854775807"),
        ("GATEHOUSE_LOCKOUT_WINDOW_SECS", "9223372036854775807"),
        ("GATEHOUSE_TOKENS_ACCESS_TTL_SECS", "900000"),
    ] {
        let e = gatehouse::config::Settings::load(None, env(k, v))
            .err()
            .unwrap_or_else(|| panic!("{k}={v} accepted"))
            .to_string();
        assert!(e.contains("at most"), "{k}: {e}");
    }
    assert!(
        gatehouse::config::Settings::load(None, env("GATEHOUSE_TOKENS_ACCESS_TTL_SECS", "3600"))
            .is_ok()
    );
}
