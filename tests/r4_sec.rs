//! Issue 11, the fourth attack review (its scripts: reviews/c attack1, 3, 4,
//! 6, 25): a `manage:security` client linking plain users to its own IdP,
//! SSO exclusion leaving IdP-made sessions alive, stale tokens granting and
//! re-enabling, `admin:users` alone taking workspace admins' grants away by
//! disabling or deleting them, lost updates of credentials, roles and apps
//! racing a rotation or a delete, and who an RFC 7009 key revocation names.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{call, client_token, service_account};
use crate::common::*;
use crate::f1_sec::{me, sa_token, signed_in};
use crate::saml::{post_acs, raw, saml_app, sign_in, start_idp};
use crate::sso::put_json;

const PW: &str = "amber-meadow-river-77";

fn refused_for(v: &Value, needle: &str) {
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(needle), "not about {needle}: {v}");
}

/// attack1: a platform client holding `manage:security` only made its own
/// connection (IdP-initiated allowed), linked a plain user to it and signed
/// in as them. Pointing a user's SSO identity anywhere is `admin:users`
/// business (the rule `guard_relinking` applies), and so is a connection
/// that creates users just in time.
#[actix_web::test]
async fn finding1_a_security_client_cannot_link_users_to_its_own_idp() {
    let keys = tempfile::tempdir().unwrap();
    let evil_keys = tempfile::tempdir().unwrap();
    let (app, _idp, owner) = saml_app(keys.path()).await;
    let bob = app.create_user(&owner, "bob@corp.example", "user").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let evil_idp = start_idp(&app.url("/sso/saml/evil/metadata"), evil_keys.path(), None);
    let secbot = sa_token(&app, &owner, "secbot", &["manage:security"]).await;
    let evil = |extra: Value| {
        let mut c = json!({"id": "evil", "protocol": "saml", "provider": "okta", "name": "Evil",
               "metadata_url": format!("{}/metadata", evil_idp.base), "allow_idp_initiated": true});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // Just-in-time creation (on by default) makes accounts: admin:users.
    let (s, v) = post(
        &app,
        "/api/v1/sso/connections",
        Some(&secbot),
        evil(json!({})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    refused_for(&v, "admin:users");
    let (s, v) = post(
        &app,
        "/api/v1/sso/connections",
        Some(&secbot),
        evil(json!({"jit": false})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let mut on = evil(json!({"jit": true}));
    on.as_object_mut().unwrap().remove("id");
    let (s, v) = put_json(&app, "/api/v1/sso/connections/evil", &secbot, on).await;
    assert_eq!(s, 403, "{v}");
    refused_for(&v, "admin:users");

    // The link itself: refused, and the IdP's word opens nothing.
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{bob}/sso-links"),
        Some(&secbot),
        json!({"connection": "evil", "subject": "bob@corp.example"}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    refused_for(&v, "admin:users");
    let c = browser();
    post_acs(&app, &c, "evil", &raw(&evil_idp, "bob").await).await;
    assert_ne!(
        me(&app, &c).await,
        200,
        "the attacker's IdP signed in as bob"
    );

    // Whoever holds admin:users too may link a plain user (not an admin).
    let helpdesk = sa_token(
        &app,
        &owner,
        "helpdesk",
        &["manage:security", "admin:users"],
    )
    .await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{bob}/sso-links"),
        Some(&helpdesk),
        json!({"connection": "evil", "subject": "bob@corp.example"}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let admin2 = app.audit(&owner, "action=user.create&limit=50").await;
    let admin2 = admin2
        .iter()
        .find(|e| e["details"]["email"] == "admin2@example.com")
        .unwrap()["target"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{admin2}/sso-links"),
        Some(&helpdesk),
        json!({"connection": "evil", "subject": "admin2@example.com"}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
}

/// attack25: adding a user to `excluded_users` left the sessions their IdP
/// had made alive. They end in the same transaction, audited.
#[actix_web::test]
async fn finding2_excluding_a_user_ends_their_idp_made_sessions() {
    let keys = tempfile::tempdir().unwrap();
    let (app, _idp, owner) = saml_app(keys.path()).await;
    let bob_c = signed_in(&app, "bob").await;
    let alice_c = signed_in(&app, "alice").await;
    let (s, v) = put_json(
        &app,
        "/api/v1/sso/settings",
        &owner,
        json!({"enabled": true, "enforcement": "off",
               "excluded_users": ["admin2@example.com", "bob@corp.example"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        me(&app, &bob_c).await,
        401,
        "bob's IdP-made session outlived his exclusion"
    );
    assert_eq!(me(&app, &alice_c).await, 200, "only the newly excluded");
    let ev = &app
        .audit(&owner, "action=sso.settings_change&limit=1")
        .await[0];
    assert_eq!(ev["details"]["sessions_ended"], 1, "{ev}");
    let r = sign_in(&app, &browser(), "bob").await;
    assert_ne!(
        r.status(),
        303,
        "an excluded user signed in through the IdP"
    );
}

/// attack3: a platform admin's token past the re-authentication window still
/// granted, widened and re-enabled. Each such operation checks the recent
/// sign-in itself; what only narrows or renames stays possible.
#[actix_web::test]
async fn finding3_a_stale_token_cannot_grant_widen_or_re_enable() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let mut p = policy("off", &[]);
    p["session"]["reauth_window_secs"] = json!(60);
    let (s, v) = put_policy(&app, &owner, p).await;
    assert_eq!(s, 200, "{v}");
    let ok = |(s, v): (u16, Value)| {
        assert!((200..300).contains(&s), "{s} {v}");
        v
    };
    let ws = ok(post(
        &app,
        "/api/v1/workspaces",
        Some(&owner),
        json!({"name": "Alpha"}),
    )
    .await)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let victim = id(&app
        .create_user(&owner, "victim-admin@example.com", "admin")
        .await);
    ok(post(
        &app,
        &format!("/api/v1/users/{victim}/disable"),
        Some(&owner),
        json!({}),
    )
    .await);
    let m = id(&app.create_user(&owner, "m@example.com", "user").await);
    let m2 = id(&app.create_user(&owner, "m2@example.com", "user").await);
    let other = id(&app.create_user(&owner, "other@example.com", "user").await);
    ok(post(
        &app,
        &format!("/api/v1/workspaces/{ws}/members"),
        Some(&owner),
        json!({"user_id": m, "roles": ["user"]}),
    )
    .await);
    let (sa, _) = service_account(
        &app,
        &owner,
        json!({"name": "low", "scopes": ["read:agents"], "workspace": ws, "ip_allowlist": ["10.9.9.9/32"]}),
    )
    .await;
    let app_id = id(&ok(post(
        &app,
        "/api/v1/api-apps",
        Some(&owner),
        json!({"workspace": ws, "name": "app", "scopes": ["read:agents"]}),
    )
    .await));
    let role = id(&ok(post(
        &app,
        "/api/v1/roles",
        Some(&owner),
        json!({"workspace": ws, "name": "reader", "permissions": ["read:agents"]}),
    )
    .await));
    let group = id(&ok(post(
        &app,
        "/api/v1/groups",
        Some(&owner),
        json!({"workspace": ws, "name": "g"}),
    )
    .await));

    // The thief's copy of the owner's token, 66 s old: valid, not recent.
    app.clock.advance(66);
    let attempts: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/users"),
            json!({"email": "backdoor@example.com", "password": PW, "name": "B", "roles": ["workspace_admin"]}),
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/members"),
            json!({"user_id": m2, "roles": ["workspace_admin"]}),
        ),
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/members/{m}"),
            json!({"roles": ["workspace_admin"]}),
        ),
        (
            Method::POST,
            "/api/v1/groups".into(),
            json!({"workspace": ws, "name": "g2", "roles": [role]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/groups/{group}"),
            json!({"roles": [role]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/groups/{group}"),
            json!({"members": [m]}),
        ),
        (
            Method::POST,
            "/api/v1/roles".into(),
            json!({"workspace": ws, "name": "all", "permissions": ["admin:credentials", "admin:users"]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/roles/{role}"),
            json!({"permissions": ["read:agents", "admin:credentials"]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/service-accounts/{sa}"),
            json!({"scopes": ["read:agents", "admin:credentials"]}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/service-accounts/{sa}"),
            json!({"ip_allowlist": []}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/api-apps/{app_id}"),
            json!({"scopes": ["read:agents", "deploy:model"]}),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{victim}/enable"),
            json!({}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{victim}"),
            json!({"disabled": false}),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{victim}/unlock"),
            json!({}),
        ),
    ];
    for (m, path, body) in attempts {
        let (s, v) = call(&app, m.clone(), &path, &owner, Some(body.clone())).await;
        assert_eq!(s, 403, "{m} {path} {body}: {v}");
        assert_eq!(
            v["error"]["code"], "reauthentication_required",
            "{m} {path}: {v}"
        );
    }
    let (_, u) = call(
        &app,
        Method::GET,
        &format!("/api/v1/users/{victim}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(u["disabled"], true, "{u}");
    let (_, s) = call(
        &app,
        Method::GET,
        &format!("/api/v1/service-accounts/{sa}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s["scopes"], json!(["read:agents"]), "{s}");
    assert_eq!(s["ip_allowlist"], json!(["10.9.9.9/32"]), "{s}");

    // What takes away or only renames needs no fresh sign-in.
    for (m, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/service-accounts/{sa}"),
            json!({"description": "renamed"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/roles/{role}"),
            json!({"name": "readers"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/groups/{group}"),
            json!({"name": "g-renamed"}),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{other}/disable"),
            json!({}),
        ),
    ] {
        let (s, v) = call(&app, m.clone(), &path, &owner, Some(body)).await;
        assert!((200..300).contains(&s), "{m} {path}: {s} {v}");
    }
}

/// attack4: a helpdesk client holding `admin:users` alone disabled and
/// deleted another workspace's admin, taking their workspace grants away.
#[actix_web::test]
async fn finding4_disabling_or_deleting_a_user_takes_only_what_the_caller_holds() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let (s, w) = post(
        &app,
        "/api/v1/workspaces",
        Some(&owner),
        json!({"name": "Gamma"}),
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let ws = w["id"].as_str().unwrap().to_string();
    let wa2 = app
        .create_user(&owner, "wsadmin2@example.com", "user")
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = post(
        &app,
        &format!("/api/v1/workspaces/{ws}/members"),
        Some(&owner),
        json!({"user_id": wa2, "roles": ["workspace_admin"]}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
    let plain_user = app.create_user(&owner, "plain@example.com", "user").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let helpdesk = sa_token(&app, &owner, "helpdesk", &["admin:users"]).await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{wa2}/disable"),
        Some(&helpdesk),
        json!({}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    refused_for(&v, "take away");
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{wa2}"),
        &helpdesk,
        None,
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (_, u) = call(
        &app,
        Method::GET,
        &format!("/api/v1/users/{wa2}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(u["disabled"], false, "{u}");
    let (s, v) = call(
        &app,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/members"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.to_string().contains(&wa2), "{v}");
    // A user without workspace grants: still the helpdesk's to disable.
    let (s, v) = post(
        &app,
        &format!("/api/v1/users/{plain_user}/disable"),
        Some(&helpdesk),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The owner holds everything.
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{wa2}"),
        &owner,
        None,
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
}

/// attack6: a PATCH racing a secret rotation or a delete wrote back the
/// record it had read before, restoring the old secret or the deleted
/// account. Every read-modify-write of a record now reads it inside its
/// write transaction.
#[actix_web::test]
async fn finding5_a_patch_racing_a_rotation_or_a_delete_loses_nothing() {
    // Every old secret tried is a failed client authentication: room for them.
    let app = spawn_with(|s| {
        s.rate_limit.client_auth_failures_burst = 1000;
        s.rate_limit.client_auth_failures_per_minute = 1000;
    })
    .await;
    let owner = app.owner_token().await;
    let (_, w) = post(
        &app,
        "/api/v1/workspaces",
        Some(&owner),
        json!({"name": "Race"}),
    )
    .await;
    let ws = w["id"].as_str().unwrap().to_string();
    let desc = "x".repeat(400);
    for i in 0..30 {
        let (sa, old) = service_account(
            &app,
            &owner,
            json!({"name": format!("r{i}"), "scopes": ["read:agents"], "workspace": ws}),
        )
        .await;
        let path = format!("/api/v1/service-accounts/{sa}");
        let rotate = format!("{path}/secret");
        let (patched, rotated) = tokio::join!(
            call(
                &app,
                Method::PATCH,
                &path,
                &owner,
                Some(json!({"description": desc}))
            ),
            call(&app, Method::POST, &rotate, &owner, None),
        );
        assert_eq!(patched.0, 200, "{}", patched.1);
        assert_eq!(rotated.0, 200, "{}", rotated.1);
        let new = rotated.1["client_secret"].as_str().unwrap();
        assert_eq!(
            client_token(&app, &sa, new, None).await.0,
            200,
            "iteration {i}: new secret"
        );
        assert_ne!(
            client_token(&app, &sa, &old, None).await.0,
            200,
            "iteration {i}: old secret"
        );

        let (sa, old) = service_account(
            &app,
            &owner,
            json!({"name": format!("d{i}"), "scopes": ["read:agents"], "workspace": ws}),
        )
        .await;
        let path = format!("/api/v1/service-accounts/{sa}");
        let (_, deleted) = tokio::join!(
            call(
                &app,
                Method::PATCH,
                &path,
                &owner,
                Some(json!({"description": desc}))
            ),
            call(&app, Method::DELETE, &path, &owner, None),
        );
        assert!((200..300).contains(&deleted.0), "{}", deleted.1);
        assert_ne!(
            client_token(&app, &sa, &old, None).await.0,
            200,
            "iteration {i}: deleted"
        );
        assert_eq!(call(&app, Method::GET, &path, &owner, None).await.0, 404);

        // The same for a role and an API app.
        for (create, body) in [
            (
                "/api/v1/roles",
                json!({"workspace": ws, "name": format!("role{i}"), "permissions": ["read:agents"]}),
            ),
            (
                "/api/v1/api-apps",
                json!({"workspace": ws, "name": format!("app{i}"), "scopes": ["read:agents"]}),
            ),
        ] {
            let (s, v) = post(&app, create, Some(&owner), body).await;
            assert_eq!(s, 201, "{v}");
            let path = format!("{create}/{}", v["id"].as_str().unwrap());
            let (_, deleted) = tokio::join!(
                call(
                    &app,
                    Method::PATCH,
                    &path,
                    &owner,
                    Some(json!({"name": format!("n{i}")}))
                ),
                call(&app, Method::DELETE, &path, &owner, None),
            );
            assert!((200..300).contains(&deleted.0), "{}", deleted.1);
            assert_eq!(
                call(&app, Method::GET, &path, &owner, None).await.0,
                404,
                "iteration {i}: {path} came back"
            );
        }
    }
}

/// RFC 7009: whoever holds an API key may revoke it; the audit record names
/// the client that did.
#[actix_web::test]
async fn finding6_a_key_revocation_names_who_revoked_it() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let (_, w) = post(
        &app,
        "/api/v1/workspaces",
        Some(&owner),
        json!({"name": "Keys"}),
    )
    .await;
    let ws = w["id"].as_str().unwrap().to_string();
    let (_, a) = post(
        &app,
        "/api/v1/api-apps",
        Some(&owner),
        json!({"workspace": ws, "name": "app", "scopes": ["read:agents"]}),
    )
    .await;
    let app_id = a["id"].as_str().unwrap().to_string();
    let (s, k) = post(
        &app,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        Some(&owner),
        json!({"name": "k"}),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    let (pid, psecret) = service_account(
        &app,
        &owner,
        json!({"name": "checker", "scopes": ["introspect:credentials"]}),
    )
    .await;
    let r = plain()
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&pid, Some(&psecret))
        .form(&[("token", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = &app.audit(&owner, "action=api_key.revoke&limit=1").await[0];
    assert_eq!(ev["actor_id"], pid, "{ev}");
    assert!(ev["actor"].as_str().unwrap().contains("checker"), "{ev}");
    assert_eq!(ev["target"], k["id"], "{ev}");
}
