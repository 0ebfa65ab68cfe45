//! Issue 11, access findings (14, 8, 9, 17, 10): each attack sent for real
//! and seen refused — escalation through group seats and credentials,
//! workspace admins claiming platform users, admins taking over the owner,
//! resources that smuggle a bot past a widget key's binding, and denials
//! that each cost a durable commit.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{World, call, world};
use crate::common::*;

const PW: &str = "amber-meadow-river-77";

async fn ok(app: &TestApp, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, m, path, token, body).await;
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_string()
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

/// A member of Alpha holding only a custom role with `perms`; returns (id, token).
async fn custom_holder(app: &TestApp, w: &World, email: &str, perms: &[&str]) -> (String, String) {
    let u = app.create_user(&w.owner, email, "user").await;
    let uid = u["id"].as_str().unwrap().to_string();
    let role = ok(
        app,
        Method::POST,
        "/api/v1/roles",
        &w.wa,
        Some(json!({"name": format!("Only {}", perms.join(" ")), "permissions": perms})),
    )
    .await;
    ok(
        app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/members/{uid}", w.ws_a),
        &w.owner,
        Some(json!({"roles": [role["id"]]})),
    )
    .await;
    (uid, token(&app.api_login(email, PW).await))
}

async fn group(app: &TestApp, w: &World, name: &str, roles: &[&str]) -> String {
    ok(
        app,
        Method::POST,
        "/api/v1/groups",
        &w.wa,
        Some(json!({"name": name, "roles": roles, "members": []})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---- finding 14: every way of handing out roles or scopes passes one check ----

#[actix_web::test]
async fn finding14_a_group_seat_grants_only_what_the_seater_holds() {
    let app = spawn().await;
    let w = world(&app).await;
    // Holds admin:users and use:agents through a custom role, nothing else.
    let (hr_id, hr) =
        custom_holder(&app, &w, "hr@example.com", &["admin:users", "use:agents"]).await;
    let builders = group(&app, &w, "Builders", &["agent_developer"]).await;
    let admins = group(&app, &w, "Admins", &["workspace_admin"]).await;
    let users = group(&app, &w, "Users", &["user"]).await;
    let ws = format!("workspace={}", w.ws_a);

    // The reviewers' attack: PATCH the members of a group carrying more than one holds.
    for g in [&builders, &admins] {
        for who in [&hr_id, &w.dev_id] {
            let (s, v) = call(
                &app,
                Method::PATCH,
                &format!("/api/v1/groups/{g}"),
                &hr,
                Some(json!({"members": [who]})),
            )
            .await;
            assert_eq!(s, 403, "seat {who} in {g}: {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("do not hold"),
                "{v}"
            );
        }
    }
    // Creating a group with roles and members at once is the same grant.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/groups",
        &hr,
        Some(json!({"name": "Mine", "roles": ["agent_developer"], "members": [hr_id]})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let hr = token(&app.api_login("hr@example.com", PW).await);
    assert_eq!(
        verify(&app, &hr, &format!("scope=deploy:model&{ws}")).await,
        403
    );
    assert_eq!(
        verify(&app, &hr, &format!("scope=admin:credentials&{ws}")).await,
        403
    );
    // What one holds, one may still hand out; and removing a seat is no grant.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{users}"),
        &hr,
        Some(json!({"members": [hr_id, w.dev_id]})),
    )
    .await;
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{builders}"),
        &w.wa,
        Some(json!({"members": [w.dev_id]})),
    )
    .await;
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{builders}"),
        &hr,
        Some(json!({"members": []})),
    )
    .await;
    // The workspace admin holds it all and seats anyone.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{admins}"),
        &w.wa,
        Some(json!({"members": [w.dev_id]})),
    )
    .await;

    // The console form is the same path.
    let (c, _) = app.browser_login("hr@example.com", PW).await;
    let page = app.url(&format!("/admin/workspaces/{}", w.ws_a));
    let html = c.get(&page).send().await.unwrap().text().await.unwrap();
    let r = c
        .post(app.url(&format!("/admin/workspaces/{}/groups/{builders}", w.ws_a)))
        .form(&[
            ("csrf_token", csrf_from(&html).as_str()),
            ("name", "Builders"),
            ("role", "agent_developer"),
            ("member", hr_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let hr = token(&app.api_login("hr@example.com", PW).await);
    assert_eq!(
        verify(&app, &hr, &format!("scope=deploy:model&{ws}")).await,
        403
    );
}

#[actix_web::test]
async fn finding14_roles_scopes_secrets_and_keys_pass_the_same_check() {
    let app = spawn().await;
    let w = world(&app).await;
    let (_, hr) = custom_holder(&app, &w, "hr@example.com", &["admin:users"]).await;
    let (_, keeper) = custom_holder(&app, &w, "keeper@example.com", &["admin:credentials"]).await;
    // Member roles, new users' roles and custom-role edits (they reach every holder).
    let (s, _) = call(
        &app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/members/{}", w.ws_a, w.dev_id),
        &hr,
        Some(json!({"roles": ["workspace_admin"]})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = post(
        &app,
        &format!("/api/v1/workspaces/{}/users", w.ws_a),
        Some(&hr),
        json!({"email": "sock@example.com", "password": "quartz-lagoon-meadow-8", "roles": ["agent_developer"]}),
    )
    .await;
    assert_eq!(s, 403);
    let roles = ok(&app, Method::GET, "/api/v1/roles", &w.wa, None).await;
    let hr_role = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["permissions"] == json!(["admin:users"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/roles/{hr_role}"),
        &hr,
        Some(json!({"permissions": ["admin:users", "deploy:model"]})),
    )
    .await;
    assert_eq!(s, 403, "widening one's own role");
    // A new secret or key for a credential carrying more than one holds.
    let sa = ok(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &w.wa,
        Some(json!({"name": "deployer", "scopes": ["deploy:model"]})),
    )
    .await;
    let (s, v) = call(
        &app,
        Method::POST,
        &format!(
            "/api/v1/service-accounts/{}/secret",
            sa["client_id"].as_str().unwrap()
        ),
        &keeper,
        None,
    )
    .await;
    assert_eq!(s, 403, "rotating to learn a deploy:model secret: {v}");
    let app_ = ok(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.wa,
        Some(json!({"name": "deploy-ci", "scopes": ["deploy:model"]})),
    )
    .await;
    let app_id = app_["id"].as_str().unwrap();
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &keeper,
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!(s, 403, "a key for a deploy:model app: {v}");
    // The workspace admin holds these and may.
    ok(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{app_id}/keys"),
        &w.wa,
        Some(json!({"name": "ci"})),
    )
    .await;
    // The console's forms for a key and a secret are the same path.
    let (c, _) = app.browser_login("keeper@example.com", PW).await;
    let page = app.url(&format!("/admin/workspaces/{}", w.ws_a));
    let html = c.get(&page).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_from(&html);
    let r = c
        .post(app.url(&format!("/admin/workspaces/{}/apps/{app_id}/keys", w.ws_a)))
        .form(&[("csrf_token", csrf.as_str()), ("name", "mine")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.url(&format!(
            "/admin/workspaces/{}/service-accounts/{}/secret",
            w.ws_a,
            sa["client_id"].as_str().unwrap()
        )))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[actix_web::test]
async fn finding14_a_platform_client_with_admin_users_makes_no_platform_admins() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let sa = ok(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &owner,
        Some(json!({"name": "hr-sync", "scopes": ["admin:users"]})),
    )
    .await;
    let (_, v) = crate::access::client_token(
        &app,
        sa["client_id"].as_str().unwrap(),
        sa["client_secret"].as_str().unwrap(),
        None,
    )
    .await;
    let bot = token(&v);
    let new = |role: &str| json!({"email": format!("{role}@example.com"), "password": PW, "name": "N", "role": role});
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/users",
        &bot,
        Some(new("admin")),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = call(&app, Method::POST, "/api/v1/users", &bot, Some(new("user"))).await;
    assert_eq!(s, 201, "{v}");
    let path = format!("/api/v1/users/{}", v["id"].as_str().unwrap());
    let (s, v) = call(
        &app,
        Method::PATCH,
        &path,
        &bot,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    // A platform admin holds everything and may.
    ok(
        &app,
        Method::PATCH,
        &path,
        &owner,
        Some(json!({"role": "admin"})),
    )
    .await;
}

// ---- finding 8: a workspace admin claims only users the workspace may ----

async fn user_id(app: &TestApp, token: &str) -> String {
    ok(app, Method::GET, "/api/v1/me", token, None).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn finding8_a_workspace_admin_adds_only_users_the_workspace_may_claim() {
    let app = spawn().await;
    let w = world(&app).await;
    let owner_id = user_id(&app, &w.owner).await;
    let plain_id = app.create_user(&w.owner, "plain@example.com", "user").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let adm_id = app.create_user(&w.owner, "adm@example.com", "admin").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let members = format!("/api/v1/workspaces/{}/members", w.ws_a);
    let add = |body: Value| {
        let (app, wa, members) = (&app, w.wa.clone(), members.clone());
        async move { call(app, Method::POST, &members, &wa, Some(body)).await }
    };
    // An unknown address and a refused one get the same status and body.
    let unknown = add(json!({"email": "nobody@example.com", "roles": ["user"]})).await;
    assert_eq!(unknown.0, 404, "{}", unknown.1);
    for email in [
        OWNER,
        "plain@example.com",
        "adm@example.com",
        " Owner@Example.com ",
    ] {
        let got = add(json!({"email": email, "roles": ["user"]})).await;
        assert_eq!(got, unknown, "{email}");
        let got = add(json!({"email": email, "roles": ["bogus_role"]})).await;
        assert_eq!(got, unknown, "{email}, with a bad role");
    }
    let unknown = add(json!({"user_id": "usr_00000000000000000000", "roles": ["user"]})).await;
    assert_eq!(unknown.0, 404);
    for id in [&owner_id, &plain_id, &adm_id] {
        assert_eq!(
            add(json!({"user_id": id, "roles": ["user"]})).await,
            unknown
        );
        let put = call(
            &app,
            Method::PUT,
            &format!("{members}/{id}"),
            &w.wa,
            Some(json!({"roles": ["user"]})),
        )
        .await;
        assert_eq!(put, unknown, "PUT {id}");
    }
    // The console form too.
    let (c, _) = app.browser_login("wa@example.com", PW).await;
    let page = app.url(&format!("/admin/workspaces/{}", w.ws_a));
    for email in [OWNER, "nobody@example.com"] {
        let html = c.get(&page).send().await.unwrap().text().await.unwrap();
        let r = c
            .post(app.url(&format!("/admin/workspaces/{}/members", w.ws_a)))
            .form(&[
                ("csrf_token", csrf_from(&html).as_str()),
                ("email", email),
                ("role", "user"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{email}");
        assert!(
            r.text().await.unwrap().contains("user not found"),
            "{email}"
        );
    }
    let list = ok(&app, Method::GET, &members, &w.wa, None).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&owner_id.as_str()) && !ids.contains(&plain_id.as_str()),
        "{list}"
    );
    // A refusal is on the record for the platform's admins.
    let denied = app.audit(&w.owner, "action=access.denied").await;
    assert!(
        denied
            .iter()
            .any(|e| e["details"]["reason"] == "user_not_claimable"),
        "{denied:?}"
    );

    // Users the workspace created, or a platform admin placed, it may take back.
    let made = post(
        &app,
        &format!("/api/v1/workspaces/{}/users", w.ws_a),
        Some(&w.wa),
        json!({"email": "mine@example.com", "password": "quartz-lagoon-meadow-8", "roles": ["user"]}),
    )
    .await;
    // Below platform level the answer is the same whether or not the
    // address existed (R2 finding 7); the members list names the new user.
    assert_eq!(made.0, 202, "{}", made.1);
    let mine = ok(&app, Method::GET, &members, &w.wa, None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "mine@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &app,
        Method::POST,
        &members,
        &w.owner,
        Some(json!({"email": "plain@example.com", "roles": ["user"]})),
    )
    .await;
    ok(
        &app,
        Method::POST,
        &members,
        &w.owner,
        Some(json!({"email": "adm@example.com", "roles": ["user"]})),
    )
    .await;
    for id in [&mine, &plain_id, &adm_id] {
        ok(
            &app,
            Method::DELETE,
            &format!("{members}/{id}"),
            &w.wa,
            None,
        )
        .await;
    }
    for email in ["mine@example.com", "plain@example.com"] {
        let (s, v) = add(json!({"email": email, "roles": ["analyst"]})).await;
        assert_eq!(s, 201, "{email}: {v}");
    }
    // A platform admin is never the workspace's to claim, even once placed.
    assert_eq!(
        add(json!({"email": "adm@example.com", "roles": ["user"]}))
            .await
            .0,
        404
    );
}

#[actix_web::test]
async fn finding8_workspace_limits_and_service_accounts_stop_at_platform_admins() {
    let app = spawn().await;
    let w = world(&app).await;
    let members = format!("/api/v1/workspaces/{}/members", w.ws_a);
    // A platform admin places the owner and an admin in Alpha (allowed)…
    app.create_user(&w.owner, "adm@example.com", "admin").await;
    for email in [OWNER, "adm@example.com"] {
        ok(
            &app,
            Method::POST,
            &members,
            &w.owner,
            Some(json!({"email": email, "roles": ["user"]})),
        )
        .await;
    }
    // …whose admin then sets the shortest session there is.
    ok(
        &app,
        Method::PUT,
        &format!("/api/v1/workspaces/{}/session-limits", w.ws_a),
        &w.wa,
        Some(json!({"idle_timeout_secs": 60, "absolute_lifetime_secs": 60})),
    )
    .await;
    let (owner_b, _) = app.browser_login(OWNER, OWNER_PW).await;
    let (adm_b, _) = app.browser_login("adm@example.com", PW).await;
    let (dev_b, _) = app.browser_login("dev@example.com", PW).await;
    let me = |c: reqwest::Client| {
        let url = app.url("/api/v1/me");
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    app.clock.advance(120);
    assert_eq!(me(dev_b).await, 401, "a member gets Alpha's limits");
    assert_eq!(me(owner_b).await, 200, "the owner does not");
    assert_eq!(me(adm_b).await, 200, "a platform admin does not");

    // Alpha's token checker may not revoke the owner's or an admin's tokens.
    let sa = ok(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &w.wa,
        Some(json!({"name": "checker", "scopes": ["introspect:credentials"]})),
    )
    .await;
    let (id, secret) = (
        sa["client_id"].as_str().unwrap(),
        sa["client_secret"].as_str().unwrap(),
    );
    let owner = token(&app.api_login(OWNER, OWNER_PW).await);
    let adm = token(&app.api_login("adm@example.com", PW).await);
    for t in [&owner, &adm] {
        let r = plain()
            .post(app.url("/oauth2/revoke"))
            .basic_auth(id, Some(secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(verify(&app, t, "").await, 200);
    }
}

// ---- finding 9: only the owner changes the owner's credentials ----

#[actix_web::test]
async fn finding9_an_admin_cannot_take_the_owner_over() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let owner_id = user_id(&app, &owner).await;
    let u = app.create_user(&owner, "other@example.com", "user").await;
    let other_id = u["id"].as_str().unwrap().to_string();
    app.create_user(&owner, "adm@example.com", "admin").await;
    let adm = token(&app.api_login("adm@example.com", PW).await);
    // A platform-level service account managing users is no owner either.
    let sa = ok(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &owner,
        Some(json!({"name": "hr-sync", "scopes": ["admin:users"]})),
    )
    .await;
    let (_, v) = crate::access::client_token(
        &app,
        sa["client_id"].as_str().unwrap(),
        sa["client_secret"].as_str().unwrap(),
        None,
    )
    .await;
    let bot = token(&v);
    let o = format!("/api/v1/users/{owner_id}");
    for who in [&adm, &bot] {
        for (m, path, body, want) in [
            (
                Method::POST,
                format!("{o}/password"),
                Some(json!({"password": "taken-over-password-1"})),
                403,
            ),
            (Method::POST, format!("{o}/mfa/reset"), None, 403),
            (Method::POST, format!("{o}/sessions/end"), None, 403),
            (
                Method::PATCH,
                o.clone(),
                Some(json!({"email": "mallory@evil.example"})),
                403,
            ),
            (Method::PATCH, o.clone(), Some(json!({"role": "user"})), 409),
            (
                Method::PATCH,
                o.clone(),
                Some(json!({"disabled": true})),
                409,
            ),
            (Method::POST, format!("{o}/disable"), None, 409),
            (Method::DELETE, o.clone(), None, 409),
        ] {
            let (s, v) = call(&app, m.clone(), &path, who, body).await;
            assert_eq!(s, want, "{m} {path}: {v}");
        }
    }
    // Nor does the client take over an admin's account.
    let adm_id = user_id(&app, &adm).await;
    for (m, path, body) in [
        (
            Method::POST,
            format!("/api/v1/users/{adm_id}/password"),
            Some(json!({"password": "taken-over-password-1"})),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{adm_id}/mfa/reset"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{adm_id}"),
            Some(json!({"email": "mallory@evil.example"})),
        ),
    ] {
        let (s, v) = call(&app, m.clone(), &path, &bot, body).await;
        assert_eq!(s, 403, "{m} {path}: {v}");
    }
    // The owner is untouched and signs in as before.
    let me = ok(&app, Method::GET, "/api/v1/me", &owner, None).await;
    assert_eq!(me["email"], OWNER);
    app.api_login(OWNER, OWNER_PW).await;
    // The admin still manages everyone else; the owner their own account.
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/users/{other_id}/password"),
        &adm,
        Some(json!({"password": "fresh-meadow-lantern-9"})),
    )
    .await;
    assert_eq!(s, 204);
    ok(
        &app,
        Method::PATCH,
        &o,
        &owner,
        Some(json!({"name": "Olivia O."})),
    )
    .await;

    // The console's forms are the same path.
    let (c, csrf) = app.browser_login("adm@example.com", PW).await;
    for (path, extra) in [
        ("password", Some(("password", "taken-over-password-1"))),
        ("mfa/reset", None),
        ("sessions/end", None),
    ] {
        let mut f = vec![("csrf_token", csrf.as_str())];
        f.extend(extra);
        let r = c
            .post(app.url(&format!("/admin/users/{owner_id}/{path}")))
            .form(&f)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    app.api_login(OWNER, OWNER_PW).await;
    // `gatehouse recover` stays the local way back (its recovery link).
    let link = gatehouse::authn::recover_link(&app.svc, OWNER, &Default::default()).unwrap();
    let t = link.split("token=").nth(1).unwrap();
    gatehouse::users::recover(
        &app.svc,
        t,
        gatehouse::authn::password::Password::new("recovered-harbour-lantern-7"),
        &Default::default(),
    )
    .await
    .unwrap();
    app.api_login(OWNER, "recovered-harbour-lantern-7").await;
}

// ---- finding 17: one resource grammar for /api/v1/authorize and /auth/verify ----

#[actix_web::test]
async fn finding17_a_widget_key_is_good_for_exactly_its_bot() {
    let app = spawn().await;
    let w = world(&app).await;
    let k = ok(
        &app,
        Method::POST,
        "/api/v1/widget-keys",
        &w.wa,
        Some(json!({"name": "shop", "bot": "bot-1", "origins": ["https://shop.example.com"]})),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let sa = ok(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &w.owner,
        Some(json!({"name": "gateway", "scopes": ["introspect:credentials"]})),
    )
    .await;
    let (_, v) = crate::access::client_token(
        &app,
        sa["client_id"].as_str().unwrap(),
        sa["client_secret"].as_str().unwrap(),
        None,
    )
    .await;
    let checker = token(&v);
    let ws = &w.ws_a;
    let ask = |resource: String| {
        let (app, checker, key) = (&app, checker.clone(), key.clone());
        async move {
            call(
                app,
                Method::POST,
                "/api/v1/authorize",
                &checker,
                Some(json!({"credential": key, "scope": "use:agents", "resource": resource, "origin": "https://shop.example.com"})),
            )
            .await
        }
    };
    let (s, v) = ask(format!("{ws}/bots/bot-1")).await;
    assert_eq!((s, v["allow"].as_bool()), (200, Some(true)), "{v}");
    for tail in [
        "/bots/bot-1/../bot-2",
        "/bots/bot-1/x",
        "/bots/bot-1/",
        "/bots/bot-1/.",
        "/bots/./bot-1",
        "/bots//bot-1",
        "//bots/bot-1",
        "/x/../bots/bot-1",
        "/bots/bot-1%2f..%2fbot-2",
        "/bots/bot-1%2F",
        "/bots%2fbot-1",
        "/bots/bot-1\\..\\bot-2",
        "/bots/bot-1;x",
        "/bots/bot-1?x",
        "/bots/bot-1#x",
        "/bots/bot-1 ",
        "/bots/bot-1\t",
        "/bots/..",
        "/bots",
    ] {
        let (s, v) = ask(format!("{ws}{tail}")).await;
        assert_ne!(v["allow"], true, "{tail:?}: {s} {v}");
        assert!(s == 400 || s == 200, "{tail:?}: {s} {v}");
    }
    for bad in [format!("/{ws}/bots/bot-1"), format!(" {ws}/bots/bot-1")] {
        assert_eq!(ask(bad.clone()).await.0, 400, "{bad:?}");
    }
    // /auth/verify reads its bot through the same type.
    let v = |bot: &str| {
        let url = app.url(&format!(
            "/auth/verify?scope=use:agents&workspace={ws}&bot={bot}"
        ));
        let key = key.clone();
        async move {
            plain()
                .get(url)
                .bearer_auth(key)
                .header("origin", "https://shop.example.com")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(v("bot-1").await, 200);
    for bot in [
        "bot-1/../bot-2",
        "bot-1%2F..%2Fbot-2",
        "bot-1/x",
        "..",
        "bot-1%00",
        "bot-2",
    ] {
        assert_ne!(v(bot).await, 200, "{bot}");
    }
    // Widget keys are not created for a dot segment either.
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/widget-keys",
        &w.wa,
        Some(json!({"name": "dots", "bot": "..", "origins": ["https://shop.example.com"]})),
    )
    .await;
    assert_eq!(s, 400);
}

// ---- finding 10: refusals are coalesced and group-committed ----

/// Access denials of `actor` for `permission`, after the buffered ones are committed.
async fn denials(app: &TestApp, owner: &str, actor: &str, permission: &str) -> Vec<Value> {
    gatehouse::access::flush_denials(&app.svc).unwrap();
    app.audit(
        owner,
        &format!("action=access.denied&actor={actor}&per_page=200"),
    )
    .await
    .into_iter()
    .filter(|e| e["details"]["permission"] == permission)
    .collect()
}

fn total(events: &[Value]) -> u64 {
    events
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum()
}

#[actix_web::test]
async fn finding10_identical_denials_become_one_event_with_a_count() {
    let app = spawn().await;
    let w = world(&app).await;
    let q = format!("scope=read:analytics&workspace={}", w.ws_a);
    gatehouse::access::flush_denials(&app.svc).unwrap();
    let commits = || app.svc.store.generation(gatehouse::store::Table::Audit);
    let before = commits();
    for _ in 0..200 {
        assert_eq!(verify(&app, &w.dev, &q).await, 403);
    }
    // No commit per refusal: the background writer commits once a second.
    let during = commits() - before;
    eprintln!("200 refused checks: {during} audit commits");
    assert!(during <= 50, "{during} commits for 200 refusals");
    let other = format!("scope=manage:connections&workspace={}", w.ws_a);
    assert_eq!(verify(&app, &w.dev, &other).await, 403);
    let same = denials(&app, &w.owner, "dev@example.com", "read:analytics").await;
    eprintln!("200 identical refusals: {} events", same.len());
    assert!(
        !same.is_empty() && same.len() <= 50,
        "{} events for 200 identical denials",
        same.len()
    );
    assert_eq!(total(&same), 200, "every denial stays on the record");
    assert!(
        same.iter()
            .all(|e| e["details"]["reason"] == "permission_missing"
                && e["details"]["resource"] == w.ws_a.as_str()
                && e["outcome"] == "denied")
    );
    let diff = denials(&app, &w.owner, "dev@example.com", "manage:connections").await;
    assert_eq!(diff.len(), 1, "a different denial gets its own event");
    assert_eq!(total(&diff), 1);

    // A public widget key with a wrong Origin, through /auth/verify.
    let k = ok(
        &app,
        Method::POST,
        "/api/v1/widget-keys",
        &w.wa,
        Some(json!({"name": "shop", "bot": "b1", "origins": ["https://shop.example.com"]})),
    )
    .await;
    let key = k["key"].as_str().unwrap();
    let url = app.url(&format!(
        "/auth/verify?scope=use:agents&workspace={}&bot=b1",
        w.ws_a
    ));
    for _ in 0..200 {
        let r = plain()
            .get(&url)
            .bearer_auth(key)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let wid = k["id"].as_str().unwrap();
    let ev = denials(&app, &w.owner, wid, "use:agents").await;
    assert!(!ev.is_empty() && ev.len() <= 50, "{}", ev.len());
    assert_eq!(total(&ev), 200);
    assert!(
        ev.iter()
            .all(|e| e["details"]["reason"] == "origin_not_allowed")
    );
    // The chain still holds.
    let n = gatehouse::audit::verify(&app.svc.store.read().unwrap())
        .unwrap()
        .unwrap();
    assert!(n > 0);
}

/// Attack review of findings 9 and 14: a platform client holding
/// `admin:users` and `manage:security` but not everything cannot demote,
/// disable or delete a platform admin (a demotion would open the account to
/// a password reset), link an IdP identity into one, or save an SSO
/// connection that maps anyone to `admin`.
#[actix_web::test]
async fn a_platform_client_without_everything_cannot_reach_an_admins_account() {
    let app = spawn().await;
    let owner = app.owner_token().await;
    let admin = app
        .create_user(&owner, "second-admin@example.com", "admin")
        .await;
    let admin_path = format!("/api/v1/users/{}", admin["id"].as_str().unwrap());
    let sa = ok(
        &app,
        Method::POST,
        "/api/v1/service-accounts",
        &owner,
        Some(json!({"name": "sec-bot", "scopes": ["admin:users", "manage:security"]})),
    )
    .await;
    let (_, v) = crate::access::client_token(
        &app,
        sa["client_id"].as_str().unwrap(),
        sa["client_secret"].as_str().unwrap(),
        None,
    )
    .await;
    let bot = token(&v);
    for body in [json!({"role": "user"}), json!({"disabled": true})] {
        let (s, v) = call(&app, Method::PATCH, &admin_path, &bot, Some(body.clone())).await;
        assert_eq!(s, 403, "{body}: {v}");
    }
    let (s, v) = call(&app, Method::DELETE, &admin_path, &bot, None).await;
    assert_eq!(s, 403, "{v}");
    let cert = include_str!("../fuzz/keys/fuzz-only.cert.pem");
    let conn = |id: &str, extra: Value| {
        let mut b = json!({"id": id, "protocol": "saml", "provider": "other", "name": "X",
                           "issuer": "https://idp.x.test", "sso_url": "https://idp.x.test/sso",
                           "certificates": [cert]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for extra in [
        json!({"default_role": "admin"}),
        json!({"role_rules": [{"value": "g", "role": "admin"}]}),
    ] {
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/v1/sso/connections",
            &bot,
            Some(conn("x", extra.clone())),
        )
        .await;
        assert_eq!(s, 403, "{extra}: {v}");
    }
    // A connection mapping to plain users is fine, and linking a user works,
    // but linking into the admin does not.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/sso/connections",
        &bot,
        Some(conn("x", json!({}))),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("{admin_path}/sso-links"),
        &bot,
        Some(json!({"connection": "x", "subject": "attacker"})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    // The owner still can.
    let (s, v) = call(
        &app,
        Method::PATCH,
        &admin_path,
        &owner,
        Some(json!({"role": "user"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}
