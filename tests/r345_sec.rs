//! R3-4 and R3-5: budgets of buffered refusals that callers nobody
//! authenticated cannot dodge. Made-up client ids are one anonymous caller
//! budgeted by its address (IPv6 by /64), so they cannot add events without
//! bound, decoys elsewhere cannot hide a prober, and anonymous SSO failures
//! coalesce like every other refusal, with the text the request carried cut
//! short. An admin's test sign-in still records its result.

use gatehouse::access::flush_due_denials;
use gatehouse::audit::DENIAL_BUDGET;
use serde_json::{Value, json};

use crate::common::{self, OWNER, OWNER_PW, TestApp, browser, plain};

/// The background writer's commit, as often as the test wants it: each one
/// ends a coalesced event, so the next refusal starts a new one.
fn background_commit(app: &TestApp) {
    flush_due_denials(&app.svc).unwrap();
}

/// Client-credentials grant with `id` and `secret`, from `from` (an
/// `X-Forwarded-For` the app trusts) or the loopback address.
async fn token_grant(app: &TestApp, id: &str, secret: &str, from: Option<&str>) -> u16 {
    let mut r = plain()
        .post(app.url("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(f) = from {
        r = r.header("x-forwarded-for", f);
    }
    r.send().await.unwrap().status().as_u16()
}

/// The longest run of `c` in `s`.
fn longest_run(s: &str, c: char) -> usize {
    s.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

/// Every event with `action`, newest first (all pages).
async fn all_events(app: &TestApp, token: &str, action: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let r = plain()
            .get(app.url(&format!(
                "/api/v1/audit?action={action}&per_page=200&page={page}"
            )))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        out.extend(v["events"].as_array().unwrap().iter().cloned());
        if v["more"] != true {
            break;
        }
    }
    out
}

fn count_of(events: &[Value]) -> u64 {
    events
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap_or(0))
        .sum()
}

/// Gatehouse trusting loopback as a proxy, with the failed-client-
/// authentication limiter out of the way (it has its own tests): what is
/// tested here is the audit budget behind it.
async fn app_behind_proxy() -> TestApp {
    common::spawn_with(|s| {
        s.network.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.rate_limit.client_auth_failures_per_minute = 100_000;
        s.rate_limit.client_auth_failures_burst = 100_000;
    })
    .await
}

/// A platform service account: its id and secret.
async fn target_account(app: &TestApp, token: &str) -> (String, String) {
    let (s, v) = common::post(
        app,
        "/api/v1/service-accounts",
        Some(token),
        json!({"name": "target", "scopes": ["read:agents"]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

/// 200 made-up client ids from one address, a background commit after
/// each: one anonymous caller with one budget, so at most `DENIAL_BUDGET`
/// events and one over-budget event, which counts the rest and names the
/// address; every refusal is on the record.
#[actix_web::test]
async fn made_up_client_ids_do_not_each_get_a_budget() {
    let app = app_behind_proxy().await;
    let owner = app.owner_token().await;
    let (_, secret) = target_account(&app, &owner).await;
    background_commit(&app);
    let long = "sa_".to_string() + &"z".repeat(500);
    for n in 0..200 {
        let id = if n == 0 {
            long.clone()
        } else {
            format!("sa_madeup{n:04}")
        };
        assert_eq!(token_grant(&app, &id, &secret, None).await, 401);
        background_commit(&app);
    }
    let ev = all_events(&app, &owner, "client.authenticate").await;
    assert!(
        ev.len() <= DENIAL_BUDGET as usize + 1,
        "{} events for 200 made-up ids",
        ev.len()
    );
    assert_eq!(count_of(&ev), 200, "every refusal is on the record");
    for e in &ev {
        assert_eq!(e["actor"], "anonymous", "{e}");
        assert!(e["actor_id"].is_null(), "{e}");
        assert!(longest_run(&e.to_string(), 'z') <= 64, "{e}");
    }
    let over: Vec<&Value> = ev
        .iter()
        .filter(|e| e["details"]["over_budget"] == true)
        .collect();
    assert_eq!(over.len(), 1, "{ev:?}");
    let d = &over[0]["details"];
    assert_eq!(d["address"], "127.0.0.1", "{d}");
    assert_eq!(d["count"], 200 - u64::from(DENIAL_BUDGET), "{d}");
    assert_eq!(d["addresses"][0]["address"], "127.0.0.1", "{d}");
    assert_eq!(d["addresses"][0]["count"], d["count"], "{d}");
    // The oldest names the long made-up id, cut short, as a detail.
    let first = &ev[ev.len() - 1]["details"];
    assert_eq!(first["reason"], "unknown_client", "{first}");
    assert_eq!(first["client_id"].as_str().unwrap().chars().count(), 64);
}

/// Decoys at 50 addresses send wrong secrets for an existing account, then
/// a prober does from its own: the prober's refusals are its own events,
/// from its address, and past its budget its own over-budget event names
/// it. Addresses in one IPv6 /64 are one caller.
#[actix_web::test]
async fn decoys_elsewhere_neither_use_up_nor_hide_a_probers_budget() {
    let app = app_behind_proxy().await;
    let owner = app.owner_token().await;
    let (id, _) = target_account(&app, &owner).await;
    // Well-formed but wrong: another account's secret.
    let (_, other) = target_account(&app, &owner).await;
    let wrong = |_: u32| other.clone();
    for round in 0..3 {
        for d in 0..50 {
            let from = format!("10.9.{round}.{d}");
            assert_eq!(token_grant(&app, &id, &wrong(d), Some(&from)).await, 401);
            background_commit(&app);
        }
    }
    let prober = "192.0.2.7";
    for n in 0..(DENIAL_BUDGET + 5) {
        assert_eq!(token_grant(&app, &id, &wrong(n), Some(prober)).await, 401);
        background_commit(&app);
    }
    // One host's /64 is one caller, however many addresses it uses.
    for n in 0..(DENIAL_BUDGET + 10) {
        let from = format!("2001:db8:5:5::{n:x}");
        assert_eq!(token_grant(&app, &id, &wrong(n), Some(&from)).await, 401);
        background_commit(&app);
    }
    let ev = all_events(&app, &owner, "client.authenticate").await;
    let own: Vec<&Value> = ev
        .iter()
        .filter(|e| e["source_ip"] == prober && e["details"]["over_budget"].is_null())
        .collect();
    assert_eq!(own.len(), DENIAL_BUDGET as usize, "{ev:?}");
    for e in &own {
        assert_eq!(e["target"], id.as_str(), "{e}");
        assert_eq!(e["details"]["reason"], "wrong_secret", "{e}");
        assert_eq!(e["actor"], "anonymous", "{e}");
    }
    let over = |addr: &str| -> Vec<&Value> {
        ev.iter()
            .filter(|e| e["details"]["over_budget"] == true && e["details"]["address"] == addr)
            .collect()
    };
    let mine = over(prober);
    assert_eq!(mine.len(), 1, "{ev:?}");
    assert_eq!(mine[0]["details"]["count"], 5, "{}", mine[0]);
    assert_eq!(mine[0]["source_ip"], prober);
    let net = over("2001:db8:5:5::/64");
    assert_eq!(net.len(), 1, "{ev:?}");
    let d = &net[0]["details"];
    assert_eq!(d["count"], 10, "{d}");
    assert_eq!(d["addresses"].as_array().unwrap().len(), 10, "{d}");
    let in_net = ev
        .iter()
        .filter(|e| {
            e["source_ip"]
                .as_str()
                .is_some_and(|s| s.starts_with("2001:db8:5:5:"))
        })
        .count();
    assert_eq!(in_net, DENIAL_BUDGET as usize + 1, "{ev:?}");
    assert_eq!(count_of(&ev), 150 + 25 + 30);
}

/// The sign-in an OIDC start gives: the IdP URL's `state`.
fn state_of(idp_url: &str) -> String {
    reqwest::Url::parse(idp_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string()
}

/// 100 OIDC callbacks from one address, each after a sign-in it started,
/// with an IdP error whose description is long and carries line breaks:
/// bounded events (coalesced, within the address's budget), every one
/// counted, and no event keeps more than 64 characters of the description.
#[actix_web::test]
async fn oidc_error_callbacks_are_coalesced_and_cut_short() {
    let (app, _op, token) = crate::sso::with_connection("real").await;
    assert_eq!(crate::sso::enable(&app, &token, "off").await.0, 200);
    background_commit(&app);
    let description = format!("{}\r\nforged: line{}", "Q".repeat(400), "Q".repeat(100));
    for _ in 0..100 {
        let c = browser();
        let state = state_of(&crate::sso::sso_start(&app, &c, "corp").await);
        let mut u = reqwest::Url::parse(&app.url("/sso/oidc/corp/callback")).unwrap();
        u.query_pairs_mut()
            .append_pair("state", &state)
            .append_pair("error", "access_denied")
            .append_pair("error_description", &description);
        assert_eq!(c.get(u).send().await.unwrap().status(), 401);
        background_commit(&app);
    }
    let ev = all_events(&app, &token, "sso.login").await;
    assert!(
        ev.len() <= DENIAL_BUDGET as usize + 1,
        "{} events",
        ev.len()
    );
    assert_eq!(count_of(&ev), 100, "every failure is on the record");
    for e in &ev {
        let text = e.to_string();
        assert!(longest_run(&text, 'Q') <= 64, "{e}");
        assert!(!text.contains("forged"), "{e}");
        assert!(!text.contains("\\n") && !text.contains("\\r"), "{e}");
    }
    let newest_in_budget = ev
        .iter()
        .find(|e| e["details"]["over_budget"].is_null())
        .unwrap();
    assert_eq!(newest_in_budget["details"]["reason"], "idp_error");
    assert_eq!(newest_in_budget["actor"], "anonymous");
}

/// 100 junk SAML responses to the ACS from one address, each naming a long
/// status of its own making: bounded events, every one counted, no event
/// keeping more than 64 characters of what the message said.
#[actix_web::test]
async fn saml_acs_junk_is_coalesced_and_cut_short() {
    let signer = crate::c14n_sec::Signer::new();
    let (app, token) = crate::c14n_sec::app_with_connection(&signer).await;
    background_commit(&app);
    let junk = format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r1" Version="2.0"><samlp:Status><samlp:StatusCode Value="{}"/></samlp:Status></samlp:Response>"#,
        "Q".repeat(600)
    );
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(junk)
    };
    for _ in 0..100 {
        let r = crate::saml::post_acs(&app, &browser(), "c14n", &b64).await;
        assert_eq!(r.status(), 401);
        background_commit(&app);
    }
    let ev = all_events(&app, &token, "sso.login").await;
    assert!(
        ev.len() <= DENIAL_BUDGET as usize + 1,
        "{} events",
        ev.len()
    );
    assert_eq!(count_of(&ev), 100, "every failure is on the record");
    for e in &ev {
        assert!(longest_run(&e.to_string(), 'Q') <= 64, "{e}");
    }
    assert_eq!(ev[ev.len() - 1]["details"]["reason"], "idp_error");
}

/// An admin's test sign-in that fails still writes its result to the
/// connection and its own `sso.test` event, at once, under the admin's name.
#[actix_web::test]
async fn an_admins_failed_test_sign_in_is_still_recorded() {
    let (app, _op, token) = crate::sso::with_connection("real").await;
    let (admin, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let r = admin
        .post(app.url("/admin/settings/sso/corp/test"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let at = html.find("id=\"to-idp\"").unwrap();
    let href = &html[at..];
    let start = href.find("href=\"").unwrap() + 6;
    let idp = href[start..start + href[start..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let mut u = reqwest::Url::parse(&app.url("/sso/oidc/corp/callback")).unwrap();
    u.query_pairs_mut()
        .append_pair("state", &state_of(&idp))
        .append_pair("error", "access_denied")
        .append_pair("error_description", "the user said no");
    let r = admin.get(u).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/admin/settings/sso/corp?notice=test_failed"
    );
    // On the connection, before any commit of the buffered refusals.
    let (_, c) = crate::sso::get_json(&app, "/api/v1/sso/connections/corp", &token).await;
    assert_eq!(c["last_test"]["ok"], false, "{c}");
    let err = c["last_test"]["error"].as_str().unwrap();
    assert!(err.contains("the user said no"), "{c}");
    assert_eq!(c["last_test"]["by"], OWNER);
    let ev = all_events(&app, &token, "sso.test").await;
    assert_eq!(ev[0]["outcome"], "failure", "{ev:?}");
    assert_eq!(ev[0]["actor"], OWNER, "{ev:?}");
    assert_eq!(ev[0]["details"]["reason"], "idp_error", "{ev:?}");
    assert!(ev[0]["details"].get("count").is_none(), "its own event");
}
