//! Issue 11 attack review R2, findings 1, 3, 5 and 7: each attack sent for
//! real and seen refused — a `manage:security` client repointing an SSO
//! connection that admins are linked at, a helpdesk taking workspace roles
//! away from stronger members, a credentials clerk loosening a stronger
//! service account's IP allowlist, and `POST /workspaces/{id}/users` telling
//! which e-mail addresses exist.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{World, call, client_token, service_account, world};
use crate::common::*;
use crate::sso::put_json;

const PW: &str = "amber-meadow-river-77";

async fn ok(app: &TestApp, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, m, path, token, body).await;
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

async fn verify(app: &TestApp, cred: &str, query: &str) -> u16 {
    plain()
        .get(app.url(&format!("/auth/verify?{query}")))
        .bearer_auth(cred)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A custom role in Alpha with `perms`, made by its workspace admin.
async fn role(app: &TestApp, w: &World, name: &str, perms: &[&str]) -> String {
    id_of(
        &ok(
            app,
            Method::POST,
            "/api/v1/roles",
            &w.wa,
            Some(json!({"name": name, "permissions": perms})),
        )
        .await,
    )
}

/// A new member of Alpha with `roles`; returns (id, token).
async fn member(app: &TestApp, w: &World, email: &str, roles: &[&str]) -> (String, String) {
    let u = app.create_user(&w.owner, email, "user").await;
    let uid = id_of(&u);
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/members/{uid}", w.ws_a),
        &w.owner,
        Some(json!({"roles": roles})),
    )
    .await;
    let t = app.api_login(email, PW).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    (uid, t)
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let me: Value = plain()
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_string()
}

fn refused_take_away(s: u16, v: &Value) {
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("take away"),
        "{v}"
    );
}

// ---- finding 3: taking workspace roles away needs what is taken ----

#[actix_web::test]
async fn r2_finding3_a_helpdesk_cannot_take_roles_from_stronger_members() {
    let app = spawn().await;
    let w = world(&app).await;
    let wa_id = user_id(&app, &w.wa).await;
    let helpdesk = role(&app, &w, "Helpdesk", &["admin:users"]).await;
    let (_, carol) = member(&app, &w, "carol@example.com", &[&helpdesk]).await;
    let members = format!("/api/v1/workspaces/{}/members", w.ws_a);

    // The review's repro: narrow the workspace admin to helpdesk, then remove them.
    let (s, v) = call(
        &app,
        Method::PUT,
        &format!("{members}/{wa_id}"),
        &carol,
        Some(json!({"roles": [helpdesk]})),
    )
    .await;
    refused_take_away(s, &v);
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("{members}/{wa_id}"),
        &carol,
        None,
    )
    .await;
    refused_take_away(s, &v);
    // Nor the developer's roles, which carol does not hold either.
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("{members}/{}", w.dev_id),
        &carol,
        None,
    )
    .await;
    refused_take_away(s, &v);
    assert_eq!(
        verify(
            &app,
            &w.wa,
            &format!("scope=admin:users&workspace={}", w.ws_a)
        )
        .await,
        200,
        "the workspace admin kept their grant"
    );

    // A role someone holds: neither narrowed nor deleted by her.
    let deployer = role(&app, &w, "Deployer", &["deploy:model", "admin:users"]).await;
    let (dora_id, _) = member(&app, &w, "dora@example.com", &[&deployer]).await;
    let (s, v) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/roles/{deployer}"),
        &carol,
        Some(json!({"permissions": ["admin:users"]})),
    )
    .await;
    refused_take_away(s, &v);
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/roles/{deployer}"),
        &carol,
        None,
    )
    .await;
    refused_take_away(s, &v);

    // A group carrying roles: neither deleted, narrowed nor emptied by her.
    let g = id_of(
        &ok(
            &app,
            Method::POST,
            "/api/v1/groups",
            &w.wa,
            Some(json!({"name": "Ops", "roles": ["agent_developer"], "members": [dora_id]})),
        )
        .await,
    );
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/groups/{g}"),
        &carol,
        None,
    )
    .await;
    refused_take_away(s, &v);
    let (s, v) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{g}"),
        &carol,
        Some(json!({"members": []})),
    )
    .await;
    refused_take_away(s, &v);
    let (s, v) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{g}"),
        &carol,
        Some(json!({"roles": []})),
    )
    .await;
    refused_take_away(s, &v);

    // Session limits reach every member, the workspace admin included.
    let (s, v) = put_json(
        &app,
        &format!("/api/v1/workspaces/{}/session-limits", w.ws_a),
        &carol,
        json!({"idle_timeout_secs": 60, "absolute_lifetime_secs": 120}),
    )
    .await;
    assert_eq!(s, 403, "{v}");

    // Nothing changed; nothing was recorded as done.
    let list = ok(&app, Method::GET, &members, &w.owner, None).await;
    let roles_of = |uid: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == uid)
            .map(|m| m["roles"].clone())
    };
    assert_eq!(roles_of(&wa_id), Some(json!(["workspace_admin"])));
    assert_eq!(roles_of(&w.dev_id), Some(json!(["agent_developer"])));
    assert!(app.audit(&w.owner, "action=member.remove").await.is_empty());

    // What she holds she may take: a fellow helpdesk member, her own roles.
    let (eve_id, _) = member(&app, &w, "eve@example.com", &[&helpdesk]).await;
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("{members}/{eve_id}"),
        &carol,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    // Those who hold it all still do all of it.
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/groups/{g}"),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("{members}/{}", w.dev_id),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = put_json(
        &app,
        &format!("/api/v1/workspaces/{}/session-limits", w.ws_a),
        &w.wa,
        json!({"idle_timeout_secs": 600, "absolute_lifetime_secs": 3600}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

// ---- finding 5: loosening a service account's allowlist needs its scopes ----

#[actix_web::test]
async fn r2_finding5_a_credentials_clerk_cannot_loosen_a_stronger_accounts_allowlist() {
    let app = spawn().await;
    let w = world(&app).await;
    let clerk = role(&app, &w, "Credentials clerk", &["admin:credentials"]).await;
    let (_, dan) = member(&app, &w, "dan@example.com", &[&clerk]).await;
    let sa = ok(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &w.wa,
        Some(
            json!({"workspace": w.ws_a, "name": "deployer", "scopes": ["deploy:model"],
                    "ip_allowlist": ["10.0.0.0/8"], "ip_mode": "block"}),
        ),
    )
    .await;
    let path = format!(
        "/api/v1/service-accounts/{}",
        sa["client_id"].as_str().unwrap()
    );
    for loosen in [
        json!({"ip_allowlist": []}),
        json!({"ip_mode": "warn"}),
        json!({"ip_allowlist": [], "ip_mode": "warn"}),
        json!({"ip_allowlist": ["0.0.0.0/0"]}),
        json!({"ip_allowlist": ["10.0.0.0/8", "203.0.113.0/24"]}),
        json!({"ip_allowlist": ["10.0.0.0/7"]}),
    ] {
        let (s, v) = call(&app, Method::PATCH, &path, &dan, Some(loosen.clone())).await;
        assert_eq!(s, 403, "{loosen}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("IP allowlist"),
            "{v}"
        );
    }
    // Stripping its scopes takes away what dan does not hold.
    let (s, v) = call(
        &app,
        Method::PATCH,
        &path,
        &dan,
        Some(json!({"scopes": []})),
    )
    .await;
    refused_take_away(s, &v);
    let now = ok(&app, Method::GET, &path, &w.wa, None).await;
    assert_eq!(now["ip_allowlist"], json!(["10.0.0.0/8"]));
    assert_eq!(now["ip_mode"], "block");
    assert_eq!(now["scopes"], json!(["deploy:model"]));

    // The same for an API app's scopes.
    let api_app = ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.wa,
        Some(json!({"workspace": w.ws_a, "name": "pipeline", "scopes": ["deploy:model"]})),
    )
    .await;
    let (s, v) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/api-apps/{}", api_app["id"].as_str().unwrap()),
        &dan,
        Some(json!({"scopes": []})),
    )
    .await;
    refused_take_away(s, &v);

    // Tightening and renaming stay his to do.
    let (s, v) = call(
        &app,
        Method::PATCH,
        &path,
        &dan,
        Some(json!({"ip_allowlist": ["10.1.0.0/16"], "name": "deployer-2"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Someone holding the account's scopes loosens it.
    let (s, v) = call(
        &app,
        Method::PATCH,
        &path,
        &w.wa,
        Some(json!({"ip_allowlist": [], "ip_mode": "warn"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

// ---- finding 7: creating a user into a workspace tells nothing about who exists ----

#[actix_web::test]
async fn r2_finding7_creating_a_workspace_user_answers_alike_for_existing_addresses() {
    let app = spawn().await;
    let w = world(&app).await;
    app.create_user(&w.owner, "alice@corp.example", "admin")
        .await;
    app.create_user(&w.owner, "bystander@example.com", "user")
        .await;
    let users = format!("/api/v1/workspaces/{}/users", w.ws_a);
    let body = |email: &str| {
        json!({"email": email, "name": "Someone", "password": "quartz-lagoon-meadow-8",
               "roles": ["user"]})
    };
    let mut answers = Vec::new();
    for email in [
        "alice@corp.example",
        "bystander@example.com",
        OWNER,
        "nobody@example.com",
    ] {
        let (s, v) = post(&app, &users, Some(&w.wa), body(email)).await;
        answers.push((s, v));
    }
    for (s, v) in &answers {
        assert_eq!(*s, 202, "{v}");
        assert_eq!(v, &answers[0].1);
    }
    // The unknown address became a member; nobody else was touched.
    let list = ok(
        &app,
        Method::GET,
        &format!("/api/v1/workspaces/{}/members", w.ws_a),
        &w.owner,
        None,
    )
    .await;
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["email"].as_str())
        .collect();
    assert!(emails.contains(&"nobody@example.com"), "{emails:?}");
    for e in ["alice@corp.example", "bystander@example.com", OWNER] {
        assert!(!emails.contains(&e), "{emails:?}");
    }
    let (s, _) = post(
        &app,
        "/api/v1/auth/login",
        None,
        json!({"email": "bystander@example.com", "password": "quartz-lagoon-meadow-8"}),
    )
    .await;
    assert_ne!(
        s, 200,
        "an existing account's password is never set this way"
    );
    app.api_login("bystander@example.com", PW).await;
    let denied = app.audit(&w.owner, "action=access.denied").await;
    assert!(
        denied
            .iter()
            .any(|e| e["details"]["reason"] == "user_not_claimable"),
        "{denied:?}"
    );

    // An account this workspace created and later removed comes back as a member.
    let nobody = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "nobody@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &app,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/members/{nobody}", w.ws_a),
        &w.wa,
        None,
    )
    .await;
    let (s, v) = post(&app, &users, Some(&w.wa), body("nobody@example.com")).await;
    assert_eq!((s, &v), (202, &answers[0].1));
    assert!(
        crate::access::call(
            &app,
            Method::GET,
            &format!("/api/v1/workspaces/{}/members", w.ws_a),
            &w.owner,
            None
        )
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["email"] == "nobody@example.com")
    );

    // Platform admins see users anyway: they keep the plain answers.
    let (s, v) = post(&app, &users, Some(&w.owner), body("fresh@example.com")).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["roles"], json!(["user"]));
    let (s, _) = post(&app, &users, Some(&w.owner), body("alice@corp.example")).await;
    assert_eq!(s, 409);
}

// ---- finding 1: repointing a connection re-links everyone linked at it ----

pub fn pem() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/certs/valid-until-2027-01-25.pem"),
    )
    .unwrap()
}

pub fn corp(issuer: &str, extra: Value) -> Value {
    let mut b = json!({"protocol": "saml", "name": "Corp", "issuer": issuer,
                       "sso_url": format!("{issuer}/sso"), "certificates": [pem()]});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[actix_web::test]
async fn r2_finding1_a_security_client_cannot_repoint_a_connection_admins_are_linked_at() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let alice = id_of(&app.create_user(&owner, "alice@corp.example", "admin").await);
    app.create_user(&owner, "admin2@example.com", "admin").await;
    let bob = id_of(&app.create_user(&owner, "bob@corp.example", "user").await);
    let (s, v) = post(
        &app,
        "/api/v1/sso/connections",
        Some(&owner),
        corp("https://idp-a.example", json!({"id": "corp"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    for (u, sub) in [(&alice, "alice@corp.example"), (&bob, "bob@corp.example")] {
        let (s, v) = post(
            &app,
            &format!("/api/v1/users/{u}/sso-links"),
            Some(&owner),
            json!({"connection": "corp", "subject": sub}),
        )
        .await;
        assert!((200..300).contains(&s), "{v}");
    }
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let (id, secret) = service_account(
        &app,
        &owner,
        json!({"name": "secbot", "scopes": ["manage:security"]}),
    )
    .await;
    let secbot = client_token(&app, &id, &secret, None).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // It may not link alice itself…
    let (s, _) = post(
        &app,
        &format!("/api/v1/users/{alice}/sso-links"),
        Some(&secbot),
        json!({"connection": "corp", "subject": "alice@corp.example"}),
    )
    .await;
    assert_eq!(s, 403);
    // …nor make the connection trust another IdP, in any of the ways it could.
    for change in [
        corp("https://idp-b.example", json!({})),
        corp(
            "https://idp-a.example",
            json!({"sso_url": "https://idp-b.example/sso"}),
        ),
        corp(
            "https://idp-a.example",
            json!({"allow_idp_initiated": true}),
        ),
        corp("https://idp-a.example", json!({"allow_sha1": true})),
        corp(
            "https://idp-a.example",
            json!({"trust_unverified_email": true}),
        ),
        corp(
            "https://idp-a.example",
            json!({"allowed_domains": ["evil.example"]}),
        ),
    ] {
        let (s, v) = put_json(
            &app,
            "/api/v1/sso/connections/corp",
            &secbot,
            change.clone(),
        )
        .await;
        assert_eq!(s, 403, "{change}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("alice@corp.example"),
            "{v}"
        );
    }
    let c = crate::sso::get_json(&app, "/api/v1/sso/connections/corp", &owner)
        .await
        .1;
    assert_eq!(c["issuer"], "https://idp-a.example", "{c}");
    // What does not change trust stays its to do.
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &secbot,
        corp("https://idp-a.example", json!({"name": "Corp SSO"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Taking alice out of the excluded users would revive her link: the
    // same rule. (admin2 is excluded and has no link: no harm.)
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{alice}/sso-links"),
        Some(&owner),
        json!({"connection": "corp", "subject": "alice-2"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off",
               "excluded_users": ["admin2@example.com", "alice@corp.example"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &secbot,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alice@corp.example"),
        "{v}"
    );

    // Once no admin is linked there, bob's link still stops it: it could
    // not link bob itself either (r3 finding 1: no `admin:users`), and bob
    // may be promoted later. With no link left, it may repoint it.
    for sub in ["alice@corp.example", "alice-2"] {
        let r = plain()
            .delete(app.url(&format!("/api/v1/users/{alice}/sso-links")))
            .bearer_auth(&owner)
            .json(&json!({"connection": "corp", "subject": sub}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &secbot,
        corp("https://idp-b.example", json!({})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let r = plain()
        .delete(app.url(&format!("/api/v1/users/{bob}/sso-links")))
        .bearer_auth(&owner)
        .json(&json!({"connection": "corp", "subject": "bob@corp.example"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // (With just-in-time creation off: only admin:users re-points a JIT
    // connection, r4 finding 1.)
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &secbot,
        corp("https://idp-b.example", json!({"jit": false})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // A platform admin takes her out of the excluded users and repoints
    // whatever is linked.
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off", "excluded_users": ["admin2@example.com"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{alice}/sso-links"),
        Some(&owner),
        json!({"connection": "corp", "subject": "alice@corp.example"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/connections/corp",
        &owner,
        corp("https://idp-c.example", json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}
