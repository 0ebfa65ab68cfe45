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

async fn sa_token(app: &TestApp, owner: &str, name: &str, scopes: &[&str]) -> String {
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

    // With no link left, the security client repoints it.
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
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &secbot,
        corp("https://idp-d.example"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}
