//! Issue 11 attack review R3, findings 1 and 2: a `manage:security` client
//! repointing a connection that plain users are linked at (each would be
//! signed in by the new IdP), and SSO revocations (unlink, connection
//! deleted or its trust changed, SSO off) that left the sessions the IdP
//! had made alive — against pysaml2's IdP.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{call, client_token, service_account};
use crate::common::*;
use crate::saml::{saml_app, sign_in};
use crate::sso::put_json;

fn pem() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/certs/valid-until-2027-01-25.pem"),
    )
    .unwrap()
}

fn corp(issuer: &str) -> Value {
    json!({"protocol": "saml", "name": "Corp", "issuer": issuer,
           "sso_url": format!("{issuer}/sso"), "certificates": [pem()]})
}

pub(crate) async fn sa_token(app: &TestApp, owner: &str, name: &str, scopes: &[&str]) -> String {
    let (id, secret) = service_account(app, owner, json!({"name": name, "scopes": scopes})).await;
    client_token(app, &id, &secret, None).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn r3_finding1_repointing_a_connection_needs_whoever_could_link_every_linked_user() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, "admin2@example.com", "admin").await;
    let bob = app.create_user(&owner, "bob@corp.example", "user").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut conn = corp("https://idp-a.example");
    conn["id"] = json!("corp");
    let (s, v) = post(&app, "/api/v1/sso/connections", Some(&owner), conn).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{bob}/sso-links"),
        Some(&owner),
        json!({"connection": "corp", "subject": "bob@corp.example"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // A security client that may not link bob may not make another IdP
    // sign in as him either (he is only a user today: an admin tomorrow).
    let secbot = sa_token(&app, &owner, "secbot", &["manage:security"]).await;
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &secbot,
        corp("https://idp-b.example"),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("1 link(s)") && msg.contains("unlink"), "{v}");
    assert!(!msg.contains("bob@corp.example"), "{v}");
    let (_, c) = crate::sso::get_json(&app, "/api/v1/sso/connections/corp", &owner).await;
    assert_eq!(c["issuer"], "https://idp-a.example", "{c}");
    // The console's form goes through the same domain operation; so does a
    // change that does not touch trust, which stays allowed.
    let mut renamed = corp("https://idp-a.example");
    renamed["name"] = json!("Corp SSO");
    let (s, v) = put_json(&app, "/api/v1/sso/connections/corp", &secbot, renamed).await;
    assert_eq!(s, 200, "{v}");

    // A platform client holding admin:users could link bob itself: it may.
    let helpdesk = sa_token(
        &app,
        &owner,
        "helpdesk",
        &["manage:security", "admin:users"],
    )
    .await;
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &helpdesk,
        corp("https://idp-b.example"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Not once an admin is linked there: that takes a platform admin.
    let (s, v) = post(
        &app,
        "/api/v1/users",
        Some(&owner),
        json!({"email": "carol@corp.example", "password": "amber-meadow-river-77", "role": "admin"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let carol = v["id"].as_str().unwrap().to_string();
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{carol}/sso-links"),
        Some(&owner),
        json!({"connection": "corp", "subject": "carol@corp.example"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &helpdesk,
        corp("https://idp-c.example"),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 link(s)"),
        "{v}"
    );
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &owner,
        corp("https://idp-c.example"),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // With no link left, the security client repoints it — with
    // just-in-time creation off, which only admin:users may keep on while
    // re-pointing (r4 finding 1).
    for (u, sub) in [(&bob, "bob@corp.example"), (&carol, "carol@corp.example")] {
        let (s, v) = call(
            &app,
            Method::DELETE,
            &format!("/api/v1/users/{u}/sso-links"),
            &owner,
            Some(json!({"connection": "corp", "subject": sub})),
        )
        .await;
        assert!((200..300).contains(&s), "{s} {v}");
    }
    let (s, v) = put_json(&app, "/api/v1/sso/connections/corp", &secbot, {
        let mut c = corp("https://idp-d.example");
        c["jit"] = json!(false);
        c
    })
    .await;
    assert_eq!(s, 200, "{v}");
}

pub(crate) async fn me(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub(crate) async fn signed_in(app: &TestApp, user: &str) -> reqwest::Client {
    let c = browser();
    let r = sign_in(app, &c, user).await;
    assert_eq!(r.status(), 303, "{user}: {}", r.text().await.unwrap());
    assert_eq!(me(app, &c).await, 200);
    c
}

#[actix_web::test]
async fn r3_finding2_sso_revocations_end_the_sessions_the_idp_made() {
    let keys = tempfile::tempdir().unwrap();
    let (app, _idp, owner) = saml_app(keys.path()).await;
    // A password session, which no SSO revocation touches.
    let (admin2, _) = app
        .browser_login("admin2@example.com", "amber-meadow-river-77")
        .await;

    // Unlink: that user's sessions from that connection end, no one else's.
    let bob_c = signed_in(&app, "bob").await;
    let alice_c = signed_in(&app, "alice").await;
    let link = app.audit(&owner, "action=sso.link&limit=10").await;
    let bob_link = link
        .iter()
        .find(|e| e["details"]["subject"].as_str() == Some("bob@corp.example"))
        .unwrap_or_else(|| panic!("{link:?}"));
    let bob = bob_link["target"].as_str().unwrap().to_string();
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{bob}/sso-links"),
        &owner,
        Some(json!({"connection": "acme", "subject": "bob@corp.example"})),
    )
    .await;
    assert!((200..300).contains(&s), "{s} {v}");
    assert_eq!(me(&app, &bob_c).await, 401);
    assert_eq!(me(&app, &alice_c).await, 200);
    assert_eq!(me(&app, &admin2).await, 200);
    let ev = &app.audit(&owner, "action=sso.unlink&limit=1").await[0];
    assert_eq!(ev["details"]["sessions_ended"], 1, "{ev}");

    // A trust change: every session from the connection ends.
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{bob}/sso-links"),
        Some(&owner),
        json!({"connection": "acme", "subject": "bob@corp.example"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let bob_c = signed_in(&app, "bob").await;
    let (_, c) = crate::sso::get_json(&app, "/api/v1/sso/connections/acme", &owner).await;
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/acme",
        &owner,
        json!({"protocol": "saml", "provider": c["provider"], "name": c["name"], "allow_sha1": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(me(&app, &bob_c).await, 401);
    assert_eq!(me(&app, &alice_c).await, 401);
    assert_eq!(me(&app, &admin2).await, 200);
    // A change that does not touch trust ends nothing.
    let bob_c = signed_in(&app, "bob").await;
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/acme",
        &owner,
        json!({"protocol": "saml", "provider": c["provider"], "name": "Acme SSO"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(me(&app, &bob_c).await, 200);

    // SSO off: every SSO session ends.
    let alice_c = signed_in(&app, "alice").await;
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": false, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(me(&app, &bob_c).await, 401);
    assert_eq!(me(&app, &alice_c).await, 401);
    assert_eq!(me(&app, &admin2).await, 200);

    // Deleting the connection (SSO on, another connection left).
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let bob_c = signed_in(&app, "bob").await;
    let mut other = corp("https://idp-b.example");
    other["id"] = json!("other");
    let (s, v) = post(&app, "/api/v1/sso/connections", Some(&owner), other).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &app,
        Method::DELETE,
        "/api/v1/sso/connections/acme",
        &owner,
        None,
    )
    .await;
    assert!((200..300).contains(&s), "{s} {v}");
    assert_eq!(me(&app, &bob_c).await, 401);
    assert_eq!(me(&app, &admin2).await, 200);
    let ev = &app
        .audit(&owner, "action=sso.connection_delete&limit=1")
        .await[0];
    assert_eq!(ev["details"]["sessions_ended"], 1, "{ev}");
}
