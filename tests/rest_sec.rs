//! The revocation classes left open after the third review, each attack sent
//! for real and seen refused: a `manage:security` client demoting linked
//! users through a connection's role rules, reviving a linked plain user's
//! links by taking them out of the SSO-excluded users, deleting a connection
//! admins are linked at, a workspace deletion that removes members and
//! credentials the caller could not remove one by one; a service account that
//! can be disabled; session limits checked against the members of the same
//! transaction; and enforcing SSO ending what the lost passwords opened.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{call, client_token, service_account, world};
use crate::common::*;
use crate::f4_sec::{custom_holder, introspect, verify};
use crate::sb_sec::{corp, id_of};
use crate::sso::put_json;

const PW: &str = "amber-meadow-river-77";

async fn ok(app: &TestApp, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, m, path, token, body).await;
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_string()
}

/// A platform-level service account with `scopes`, made by the owner; its token.
async fn platform_client(app: &TestApp, owner: &str, name: &str, scopes: &[&str]) -> String {
    let (id, secret) = service_account(app, owner, json!({"name": name, "scopes": scopes})).await;
    token(&client_token(app, &id, &secret, None).await.1)
}

/// The SAML connection `corp` (made by the owner), with `links` as (user id, subject).
async fn corp_with_links(app: &TestApp, owner: &str, links: &[(&str, &str)]) {
    let (s, v) = post(
        app,
        "/api/v1/sso/connections",
        Some(owner),
        corp("https://idp-a.example", json!({"id": "corp"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    for (u, sub) in links {
        link(app, owner, u, sub).await;
    }
}

async fn link(app: &TestApp, owner: &str, user: &str, subject: &str) {
    let (s, v) = post(
        app,
        &format!("/api/v1/users/{user}/sso-links"),
        Some(owner),
        json!({"connection": "corp", "subject": subject}),
    )
    .await;
    assert!((200..300).contains(&s), "{v}");
}

async fn unlink(app: &TestApp, owner: &str, user: &str, subject: &str) {
    let r = plain()
        .delete(app.url(&format!("/api/v1/users/{user}/sso-links")))
        .bearer_auth(owner)
        .json(&json!({"connection": "corp", "subject": subject}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// `/auth/verify` with a browser session cookie (`name=value`).
async fn by_cookie(app: &TestApp, cookie: &str) -> u16 {
    plain()
        .get(app.url("/auth/verify"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn forbidden_naming(s: u16, v: &Value, who: &str) {
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(who),
        "{v}"
    );
}

// ---- 1: role rules reach every linked user ----

#[actix_web::test]
async fn role_rules_edits_need_whoever_could_change_each_linked_users_role() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let alice = id_of(&app.create_user(&owner, "alice@corp.example", "admin").await);
    let bob = id_of(&app.create_user(&owner, "bob@corp.example", "user").await);
    corp_with_links(&app, &owner, &[(&alice, "alice"), (&bob, "bob")]).await;
    let secbot = platform_client(&app, &owner, "secbot", &["manage:security"]).await;
    let usersbot = platform_client(
        &app,
        &owner,
        "usersbot",
        &["manage:security", "admin:users"],
    )
    .await;
    let conn = "/api/v1/sso/connections/corp";
    let rules = |extra: Value| corp("https://idp-a.example", extra);

    // The attack: a rule nobody matches maps everyone to the default role
    // `user`, so alice (an admin) would be demoted at her next sign-in.
    let demote = rules(json!({"role_rules": [{"value": "nobody", "role": "user"}]}));
    let (s, v) = put_json(&app, conn, &secbot, demote.clone()).await;
    forbidden_naming(s, &v, "alice@corp.example");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("role rules"),
        "{v}"
    );
    // admin:users is not enough while a platform admin is linked there.
    let (s, v) = put_json(&app, conn, &usersbot, demote.clone()).await;
    forbidden_naming(s, &v, "alice@corp.example");
    // Promotion: rules that can give admin need a platform admin, linked or not.
    let promote = rules(json!({"role_rules": [{"value": "staff", "role": "admin"}]}));
    for t in [&secbot, &usersbot] {
        let (s, v) = put_json(&app, conn, t, promote.clone()).await;
        assert_eq!(s, 403, "{v}");
    }
    let c = crate::sso::get_json(&app, conn, &owner).await.1;
    assert_eq!(c["role_rules"], json!([]), "{c}");
    // Without rules the attribute decides nothing for existing users: no check.
    let (s, v) = put_json(
        &app,
        conn,
        &secbot,
        rules(json!({"role_attribute": "roles"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // With alice unlinked, bob (a plain user) is left: admin:users may
    // change his role, manage:security alone may not.
    unlink(&app, &owner, &alice, "alice").await;
    let (s, v) = put_json(&app, conn, &secbot, demote.clone()).await;
    forbidden_naming(s, &v, "1 user(s)");
    let (s, v) = put_json(&app, conn, &usersbot, demote.clone()).await;
    assert_eq!(s, 200, "{v}");
    // Changing the attribute under rules is the same change.
    let (s, v) = put_json(
        &app,
        conn,
        &secbot,
        rules(json!({"role_rules": [{"value": "nobody", "role": "user"}], "role_attribute": "groups"})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    // A platform admin may do all of it.
    link(&app, &owner, &alice, "alice").await;
    let (s, v) = put_json(&app, conn, &owner, promote).await;
    assert_eq!(s, 200, "{v}");
}

// ---- 2: taking any linked user out of the excluded users ----

#[actix_web::test]
async fn taking_a_linked_plain_user_out_of_the_excluded_users_needs_whoever_could_link_them() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, "admin2@example.com", "admin").await;
    let bob = id_of(&app.create_user(&owner, "bob@corp.example", "user").await);
    corp_with_links(&app, &owner, &[(&bob, "bob")]).await;
    let settings = "/api/v1/sso/settings";
    let excluded =
        |who: &[&str]| json!({"enabled": true, "enforcement": "off", "excluded_users": who});
    let (s, v) = put_json(
        &app,
        settings,
        &owner,
        excluded(&["admin2@example.com", "bob@corp.example"]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Linked, then excluded: the link opens nothing while he is.
    let secbot = platform_client(&app, &owner, "secbot", &["manage:security"]).await;
    // The attack: taking bob out revives his link; secbot could not link him itself.
    let (s, v) = put_json(&app, settings, &secbot, excluded(&["admin2@example.com"])).await;
    forbidden_naming(s, &v, "bob@corp.example");
    let (_, v) = crate::sso::get_json(&app, settings, &owner).await;
    assert_eq!(v["excluded_users"].as_array().unwrap().len(), 3, "{v}");
    // Whoever may link bob (admin:users on the platform) may.
    let usersbot = platform_client(
        &app,
        &owner,
        "usersbot",
        &["manage:security", "admin:users"],
    )
    .await;
    let (s, v) = put_json(&app, settings, &usersbot, excluded(&["admin2@example.com"])).await;
    assert_eq!(s, 200, "{v}");
}

// ---- 3: deleting removes what the caller must be able to remove directly ----

#[actix_web::test]
async fn deleting_a_connection_needs_whoever_could_unlink_each_user() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let alice = id_of(&app.create_user(&owner, "alice@corp.example", "admin").await);
    let bob = id_of(&app.create_user(&owner, "bob@corp.example", "user").await);
    corp_with_links(&app, &owner, &[(&alice, "alice"), (&bob, "bob")]).await;
    let secbot = platform_client(&app, &owner, "secbot", &["manage:security"]).await;
    let (s, v) = call(
        &app,
        Method::DELETE,
        "/api/v1/sso/connections/corp",
        &secbot,
        None,
    )
    .await;
    forbidden_naming(s, &v, "alice@corp.example");
    assert_eq!(
        crate::sso::get_json(&app, "/api/v1/sso/connections/corp", &owner)
            .await
            .0,
        200
    );
    // It may unlink bob, so the connection may go once alice's link is gone.
    unlink(&app, &owner, &alice, "alice").await;
    let (s, v) = call(
        &app,
        Method::DELETE,
        "/api/v1/sso/connections/corp",
        &secbot,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
}

#[actix_web::test]
async fn deleting_a_workspace_needs_whoever_could_remove_each_member_and_credential() {
    let app = spawn().await;
    let w = world(&app).await;
    let wsbot = platform_client(&app, &w.owner, "wsbot", &["admin:workspaces"]).await;
    // An empty workspace: nothing but the workspace goes.
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}", w.ws_b),
        &wsbot,
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    // The attack: Alpha's admin and developer, and a deployer account, would go with it.
    let (sa, sa_secret) = service_account(
        &app,
        &w.wa,
        json!({"name": "deployer", "scopes": ["deploy:model"]}),
    )
    .await;
    let alpha = format!("/api/v1/workspaces/{}", w.ws_a);
    let (s, v) = call(&app, Method::DELETE, &alpha, &wsbot, None).await;
    forbidden_naming(s, &v, "admin:users");
    // admin:users and every member permission, but not the credentials'.
    let everything = [
        "admin:workspaces",
        "admin:users",
        "admin:credentials",
        "read:agents",
        "write:agents",
        "use:agents",
        "read:conversations",
        "read:analytics",
        "read:audit",
        "introspect:credentials",
        "deploy:tool",
        "undeploy:tool",
        "deploy:model",
        "undeploy:model",
        "import:model",
        "export:model",
        "import:tool",
        "export:tool",
        "deploy:guardrails",
        "undeploy:guardrails",
        "read:connections",
        "manage:connections",
        "transit:encrypt",
        "transit:decrypt",
        "transit:rewrap",
        "transit:datakey",
        "transit:manage",
        "secrets:read",
        "secrets:write",
        "secrets:admin",
    ];
    let no_creds: Vec<&str> = everything
        .iter()
        .copied()
        .filter(|p| *p != "admin:credentials")
        .collect();
    let strong = platform_client(&app, &w.owner, "strong", &no_creds).await;
    let (s, v) = call(&app, Method::DELETE, &alpha, &strong, None).await;
    forbidden_naming(s, &v, "admin:credentials");
    // Everything is still there: the members and the account's token.
    assert_eq!(
        ok(
            &app,
            Method::GET,
            &format!("{alpha}/members"),
            &w.owner,
            None
        )
        .await
        .as_array()
        .unwrap()
        .len(),
        2
    );
    let t = token(&client_token(&app, &sa, &sa_secret, None).await.1);
    assert_eq!(verify(&app, &t, "").await, 200);
    // Whoever could remove each of them may delete it.
    let all = platform_client(&app, &w.owner, "all", &everything).await;
    let (s, v) = call(&app, Method::DELETE, &alpha, &all, None).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(verify(&app, &t, "").await, 401);
}

// ---- 4: a service account can be disabled ----

#[actix_web::test]
async fn a_disabled_service_account_gets_no_token_and_its_tokens_stop() {
    let app = spawn().await;
    let w = world(&app).await;
    let (id, secret) = service_account(
        &app,
        &w.wa,
        json!({"name": "reader", "scopes": ["read:agents"]}),
    )
    .await;
    let (checker, checker_secret) = service_account(
        &app,
        &w.wa,
        json!({"name": "checker", "scopes": ["introspect:credentials"]}),
    )
    .await;
    let t1 = token(&client_token(&app, &id, &secret, None).await.1);
    assert_eq!(verify(&app, &t1, "scope=read:agents").await, 200);
    let sa = format!("/api/v1/service-accounts/{id}");

    // Who may not delete it may not disable it (it takes every scope away).
    let dan = custom_holder(&app, &w, "dan@example.com", &["admin:credentials"]).await;
    let (s, v) = call(&app, Method::POST, &format!("{sa}/disable"), &dan, None).await;
    assert_eq!(s, 403, "{v}");
    assert!(v.to_string().contains("read:agents"), "{v}");
    // A stolen token past the re-authentication window may not either.
    app.clock.advance(11 * 60);
    let (s, v) = call(&app, Method::POST, &format!("{sa}/disable"), &w.wa, None).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "reauthentication_required", "{v}");
    app.clock.advance(-(11 * 60));

    let v = ok(&app, Method::POST, &format!("{sa}/disable"), &w.wa, None).await;
    assert_eq!(v["disabled"], true, "{v}");
    assert!(v.get("client_secret").is_none(), "{v}");
    // Its token stops at once, everywhere, and it gets no new one.
    assert_eq!(verify(&app, &t1, "scope=read:agents").await, 401);
    let (s, _) = call(&app, Method::GET, "/api/v1/workspaces", &t1, None).await;
    assert_eq!(s, 401);
    assert_eq!(
        introspect(&app, &checker, &checker_secret, &t1).await["active"],
        false
    );
    let (s, v) = client_token(&app, &id, &secret, None).await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"], "invalid_client", "{v}");
    // Nor may it authenticate to the introspection endpoint itself.
    let r = plain()
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", t1.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Enabled again: its secret gets new tokens; the old one stays ended.
    let v = ok(&app, Method::POST, &format!("{sa}/enable"), &w.wa, None).await;
    assert_eq!(v["disabled"], false, "{v}");
    assert_eq!(verify(&app, &t1, "scope=read:agents").await, 401);
    let t2 = token(&client_token(&app, &id, &secret, None).await.1);
    assert_eq!(verify(&app, &t2, "scope=read:agents").await, 200);

    // The console's button is the same operation.
    let (c, _) = app.browser_login("wa@example.com", PW).await;
    let html = c
        .get(app.url(&format!("/admin/workspaces/{}?tab=accounts", w.ws_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = format!("/admin/workspaces/{}/service-accounts/{id}/disable", w.ws_a);
    assert!(html.contains(&form), "no Disable button");
    let r = c
        .post(app.url(&form))
        .form(&[("csrf_token", csrf_from(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(verify(&app, &t2, "scope=read:agents").await, 401);
    let html = c
        .get(app.url(&format!("/admin/workspaces/{}?tab=accounts", w.ws_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "/admin/workspaces/{}/service-accounts/{id}/enable",
            w.ws_a
        )),
        "no Enable button"
    );
    let disabled = app.audit(&w.owner, "action=service_account.disable").await;
    assert_eq!(disabled.len(), 2, "{disabled:?}");
    assert_eq!(disabled[0]["target"], id.as_str(), "{disabled:?}");
    let enabled = app.audit(&w.owner, "action=service_account.enable").await;
    assert_eq!(enabled.len(), 1, "{enabled:?}");
}

// ---- 5: session limits count the members of their own transaction ----

#[actix_web::test]
async fn session_limits_check_the_members_in_the_write_transaction() {
    use gatehouse::access::workspaces::{Membership, WorkspaceId};
    use gatehouse::identity::UserId;
    use gatehouse::store::Table;

    let app = spawn().await;
    let owner = app.owner_token().await;
    let ws = id_of(
        &ok(
            &app,
            Method::POST,
            "/api/v1/workspaces",
            &owner,
            Some(json!({"name": "Gamma"})),
        )
        .await,
    );
    let helpdesk = id_of(
        &ok(
            &app,
            Method::POST,
            "/api/v1/roles",
            &owner,
            Some(json!({"workspace": ws, "name": "Helpdesk", "permissions": ["admin:users", "use:agents"]})),
        )
        .await,
    );
    let carol = id_of(&app.create_user(&owner, "carol@example.com", "user").await);
    let bob = id_of(&app.create_user(&owner, "bob@example.com", "user").await);
    for (u, roles) in [(&carol, json!([helpdesk])), (&bob, json!(["user"]))] {
        ok(
            &app,
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/members/{u}"),
            &owner,
            Some(json!({"roles": roles})),
        )
        .await;
    }
    let carol_token = token(&app.api_login("carol@example.com", PW).await);
    let limits = format!("/api/v1/workspaces/{ws}/session-limits");
    let body = json!({"idle_timeout_secs": 60, "absolute_lifetime_secs": 120});
    // Alone with a plain user, carol may set them.
    ok(&app, Method::PUT, &limits, &carol_token, Some(body.clone())).await;

    // The race: bob is made workspace admin in a transaction that commits
    // while carol's change waits for the store; her check must see him.
    let mut tx = app.svc.store.write().unwrap();
    let mut key = ws.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(bob.as_bytes());
    tx.put(
        Table::Members,
        &key,
        &Membership {
            workspace: WorkspaceId::parse(&ws).unwrap(),
            user: UserId::parse(&bob).unwrap(),
            roles: vec!["workspace_admin".into()],
            added_at: T0,
        },
    )
    .unwrap();
    let url = app.url(&limits);
    let t = carol_token.clone();
    let pending = actix_web::rt::spawn(async move {
        let r = plain()
            .put(url)
            .bearer_auth(t)
            .json(&json!({"idle_timeout_secs": 90, "absolute_lifetime_secs": 120}))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    });
    actix_web::rt::time::sleep(std::time::Duration::from_millis(700)).await;
    tx.commit().unwrap();
    let (s, v) = pending.await.unwrap();
    assert_eq!(s, 403, "carol changed the limits of a workspace admin: {v}");
    let got = ok(
        &app,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(got["session"]["idle_timeout_secs"], 60, "{got}");
}

// ---- 6: enforcing SSO ends what the lost passwords opened ----

#[actix_web::test]
async fn enforcing_sso_ends_the_password_sessions_of_whom_it_takes_passwords_from() {
    use gatehouse::store::Table;

    let app = spawn().await;
    let owner = app.owner_token().await;
    app.create_user(&owner, "admin2@example.com", "admin").await;
    app.create_user(&owner, "carl@example.com", "user").await;
    let dora = id_of(&app.create_user(&owner, "dora@example.com", "user").await);
    corp_with_links(&app, &owner, &[(&dora, "dora")]).await;
    // A successful test sign-in through the IdP (what enforcement waits for),
    // and a session dora's IdP started.
    let dora_sso = {
        let mut tx = app.svc.store.write().unwrap();
        let mut c = gatehouse::sso::get(&tx, "corp").unwrap();
        c.last_test = Some(gatehouse::sso::TestResult {
            at: T0,
            ok: true,
            error: None,
            claims: json!({}),
            by: OWNER.into(),
        });
        tx.put(Table::SsoConnections, b"corp", &c).unwrap();
        let (cookie, _) = gatehouse::authn::session::create(
            &mut tx,
            &gatehouse::identity::UserId::parse(&dora).unwrap(),
            T0,
            &Default::default(),
            false,
            Some("corp"),
            gatehouse::authn::session::limits_now(
                &app.svc,
                &gatehouse::identity::UserId::parse(&dora).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        tx.commit().unwrap();
        format!("gh_session={cookie}")
    };
    let settings = |enforcement: &str| json!({"enabled": true, "enforcement": enforcement, "excluded_users": ["admin2@example.com"]});
    let (s, v) = put_json(&app, "/api/v1/sso/settings", &owner, settings("off")).await;
    assert_eq!(s, 200, "{v}");
    // carl and dora sign in with their passwords while they still may;
    // admin2 (excluded) too.
    let carl_cookie = app.login_cookie("carl@example.com", PW).await;
    let carl_api = app.api_login("carl@example.com", PW).await;
    let dora_cookie = app.login_cookie("dora@example.com", PW).await;
    let admin2_cookie = app.login_cookie("admin2@example.com", PW).await;
    for c in [&carl_cookie, &dora_cookie, &admin2_cookie, &dora_sso] {
        assert_eq!(by_cookie(&app, c).await, 200, "{c}");
    }
    assert_eq!(verify(&app, &token(&carl_api), "").await, 200);

    let (s, v) = put_json(&app, "/api/v1/sso/settings", &owner, settings("enforced")).await;
    assert_eq!(s, 200, "{v}");
    // What carl's and dora's passwords opened ends; dora's IdP session stays,
    // and so does whatever the excluded admin holds.
    assert_eq!(
        by_cookie(&app, &carl_cookie).await,
        401,
        "carl's password session"
    );
    assert_eq!(
        by_cookie(&app, &dora_cookie).await,
        401,
        "dora's password session"
    );
    assert_eq!(
        verify(&app, &token(&carl_api), "").await,
        401,
        "carl's access token"
    );
    let (s, v) = post(
        &app,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": carl_api["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 401, "carl's refresh token: {v}");
    assert_eq!(by_cookie(&app, &dora_sso).await, 200, "dora's SSO session");
    assert_eq!(
        by_cookie(&app, &admin2_cookie).await,
        200,
        "the excluded admin"
    );
    assert_eq!(verify(&app, &owner, "").await, 200, "the owner");
    let ev = app
        .audit(&owner, "action=sso.settings_change&limit=1")
        .await;
    assert_eq!(
        ev[0]["details"]["password_sign_in_ended"]["users"], 2,
        "{ev:?}"
    );
}
