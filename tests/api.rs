//! `/api/v1`: programmatic sign-in, refresh rotation, users, audit, keys, errors.

use serde_json::{Value, json};

use crate::common::*;

#[actix_web::test]
async fn health_and_readiness_answer() {
    let app = spawn().await;
    let r = plain().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        plain()
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[actix_web::test]
async fn login_returns_rs256_tokens_that_me_and_jwks_agree_with() {
    let app = spawn().await;
    app.setup_owner().await;
    let pair = app.api_login(OWNER, OWNER_PW).await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert!(pair["refresh_token"].as_str().unwrap().starts_with("ghr_"));
    let access = pair["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwks: Value = plain()
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"].as_str(), header.kid.as_deref());
    let claims: Value = serde_json::from_slice(
        &gatehouse::crypto::b64url_decode(access.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    for c in ["iss", "sub", "aud", "iat", "exp", "jti", "email", "roles"] {
        assert!(claims.get(c).is_some(), "claim {c} missing");
    }
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert_eq!(claims["roles"], json!(["owner"]));
    let me: Value = plain()
        .get(app.url("/api/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], OWNER);
    assert_eq!(me["role"], "owner");
    assert!(me.get("password_hash").is_none());
    let r = plain().get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
}

#[actix_web::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn().await;
    app.setup_owner().await;
    let first = app.api_login(OWNER, OWNER_PW).await;
    let refresh = |t: String| {
        let url = app.url("/api/v1/auth/refresh");
        async move {
            plain()
                .post(url)
                .json(&json!({"refresh_token": t}))
                .send()
                .await
                .unwrap()
        }
    };
    let r1 = refresh(first["refresh_token"].as_str().unwrap().into()).await;
    assert_eq!(r1.status(), 200);
    let second: Value = r1.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // The spent token is refused, and its reuse revokes the family: the newest fails too.
    assert_eq!(
        refresh(first["refresh_token"].as_str().unwrap().into())
            .await
            .status(),
        401
    );
    assert_eq!(
        refresh(second["refresh_token"].as_str().unwrap().into())
            .await
            .status(),
        401
    );
    // A fresh sign-in starts a new, working family.
    let third = app.api_login(OWNER, OWNER_PW).await;
    assert_eq!(
        refresh(third["refresh_token"].as_str().unwrap().into())
            .await
            .status(),
        200
    );
    let token = third["access_token"].as_str().unwrap();
    let reuse = app.audit(token, "action=auth.refresh_reuse").await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0]["outcome"], "denied");
    // Refresh tokens expire after 7 days.
    let fourth = app.api_login(OWNER, OWNER_PW).await;
    app.clock.advance(7 * 86_400 + 1);
    assert_eq!(
        refresh(fourth["refresh_token"].as_str().unwrap().into())
            .await
            .status(),
        401
    );
}

#[actix_web::test]
async fn users_can_be_created_listed_searched_updated_disabled_and_deleted() {
    let app = spawn().await;
    let token = app.owner_token().await;
    for i in 0..7 {
        app.create_user(&token, &format!("user{i}@example.com"), "user")
            .await;
    }
    let bob = app.create_user(&token, "bob@example.org", "admin").await;
    let id = bob["id"].as_str().unwrap();
    let c = plain();
    let list: Value = c
        .get(app.url("/api/v1/users?per_page=3&page=2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 9);
    assert_eq!(list["users"].as_array().unwrap().len(), 3);
    let found: Value = c
        .get(app.url("/api/v1/users?q=example.org"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 1);
    assert_eq!(found["users"][0]["email"], "bob@example.org");
    let got: Value = c
        .get(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["role"], "admin");
    let upd: Value = c
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .json(&json!({"name": "Bob B", "role": "user"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(upd["name"], "Bob B");
    assert_eq!(upd["role"], "user");
    // Disabling ends Bob's refresh tokens and bearer access at once.
    let bob_pair = app
        .api_login("bob@example.org", "amber-meadow-river-77")
        .await;
    // Warm the verified-token and user caches first: disabling must still bite at once.
    let r = c
        .get(app.url("/api/v1/me"))
        .bearer_auth(bob_pair["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(app.url(&format!("/api/v1/users/{id}/disable")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(app.url("/api/v1/me"))
        .bearer_auth(bob_pair["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": bob_pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "bob@example.org", "password": "amber-meadow-river-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        c.post(app.url(&format!("/api/v1/users/{id}/enable")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.api_login("bob@example.org", "amber-meadow-river-77")
        .await;
    // Admin password reset.
    let r = c
        .post(app.url(&format!("/api/v1/users/{id}/password")))
        .bearer_auth(&token)
        .json(&json!({"password": "new-granite-orchard-55"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    app.api_login("bob@example.org", "new-granite-orchard-55")
        .await;
    // Delete, then gone.
    assert_eq!(
        c.delete(app.url(&format!("/api/v1/users/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        c.get(app.url(&format!("/api/v1/users/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The owner is protected.
    let me: Value = c
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = c
        .delete(app.url(&format!("/api/v1/users/{}", me["id"].as_str().unwrap())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // Every change is in the audit log, in one chain.
    let actions: Vec<String> = app
        .audit(&token, "action=user.&per_page=200")
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for a in [
        "user.create",
        "user.update",
        "user.disable",
        "user.enable",
        "user.password_reset",
        "user.delete",
    ] {
        assert!(
            actions.contains(&a.to_string()),
            "{a} not audited: {actions:?}"
        );
    }
    assert!(
        matches!(gatehouse::audit::verify(&app.svc.store.read().unwrap()).unwrap(), Ok(n) if n > 10)
    );
}

#[actix_web::test]
async fn a_plain_user_is_refused_admin_endpoints_and_the_denial_is_audited() {
    let app = spawn().await;
    let token = app.owner_token().await;
    app.create_user(&token, "carol@example.com", "user").await;
    let carol = app
        .api_login("carol@example.com", "amber-meadow-river-77")
        .await;
    let ct = carol["access_token"].as_str().unwrap();
    let c = plain();
    assert_eq!(
        c.get(app.url("/api/v1/me"))
            .bearer_auth(ct)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for (m, p) in [
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/audit"),
        ("POST", "/api/v1/keys/rotate"),
        ("GET", "/api/v1/keys"),
    ] {
        let r = c
            .request(m.parse().unwrap(), app.url(p))
            .bearer_auth(ct)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{m} {p}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "forbidden");
    }
    let denied = app.audit(&token, "action=access.denied").await;
    // Identical refusals (both key calls need manage:keys) are one event with a count.
    let n: u64 = denied
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(n, 4, "{denied:?}");
    assert_eq!(denied[0]["actor"], "carol@example.com");
    assert_eq!(denied[0]["outcome"], "denied");
}

#[actix_web::test]
async fn bad_input_gets_a_4xx_that_says_what_to_fix() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let c = plain();
    let post = |body: String| {
        c.post(app.url("/api/v1/users"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post("{not json".into()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_request"
    );
    let r = post(json!({"password": "x"}).to_string()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email")
    );
    let r = post(json!({"email": "nope", "password": "amber-meadow-river-77"}).to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("email:")
    );
    for (pw, why) in [
        ("short", "at least 12"),
        ("password1234", "commonly used"),
        ("dave@example.com", "e-mail"),
    ] {
        let r = post(json!({"email": "dave@example.com", "password": pw}).to_string())
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let m = r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(m.contains(why), "{pw}: {m}");
    }
    app.create_user(&token, "dave@example.com", "user").await;
    let r =
        post(json!({"email": "DAVE@example.com", "password": "amber-meadow-river-77"}).to_string())
            .await
            .unwrap();
    assert_eq!(r.status(), 409);
    let big = format!(
        "{{\"email\":\"a@b.c\",\"password\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    assert_eq!(post(big).await.unwrap().status(), 413);
    let r = c
        .get(app.url("/api/v1/no-such-thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    let r = c
        .get(app.url("/api/v1/users?per_page=5000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(app.url("/api/v1/audit?since=yesterday"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("since")
    );
    let r = c
        .get(app.url("/api/v1/users/usr_..%2F..%2Fetc"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[actix_web::test]
async fn openapi_document_is_generated_from_the_handlers() {
    let app = spawn().await;
    let doc: Value = plain()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/audit",
        "/api/v1/keys/rotate",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from OpenAPI");
    }
    assert!(doc["components"]["schemas"].get("UserDto").is_some());
}

#[actix_web::test]
async fn sign_ins_are_audited_with_the_precise_reason() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let c = plain();
    for (email, pw) in [
        ("ghost@example.com", "whatever-password-1"),
        (OWNER, "wrong-password-123"),
        ("not-an-email", "x"),
    ] {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let failures = app.audit(&token, "action=auth.login&outcome=failure").await;
    let reasons: Vec<&str> = failures
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["malformed_email", "wrong_password", "unknown_user"]
    );
    // The raw text of a malformed e-mail field is not stored (it may be a password).
    assert_eq!(failures[0]["actor"], "(malformed e-mail)");
    assert!(
        !serde_json::to_string(&failures)
            .unwrap()
            .contains("not-an-email")
    );
    assert!(failures.iter().all(|e| e["source_ip"] == "127.0.0.1"));
    // The setup browser's sign-in (issue 19 point 1) and the API sign-in; was 1.
    let ok = app.audit(&token, "action=auth.login&outcome=success").await;
    assert_eq!(ok.len(), 2);
    let setup = app.audit(&token, "action=setup.").await;
    assert_eq!(setup.len(), 2, "link issued + owner created");
}

#[actix_web::test]
async fn key_rotation_reseals_every_record_while_serving() {
    let app = spawn().await;
    let token = app.owner_token().await;
    for i in 0..30 {
        app.create_user(&token, &format!("k{i}@example.com"), "user")
            .await;
    }
    let c = plain();
    let r = c
        .post(app.url("/api/v1/keys/rotate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["new_version"], 2);
    let mut keys = Value::Null;
    for _ in 0..100 {
        keys = c
            .get(app.url("/api/v1/keys"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if keys[0]["records"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(keys[0]["version"], 1);
    assert_eq!(keys[0]["records"], 0, "{keys}");
    assert_eq!(keys[1]["active"], true);
    assert!(keys[1]["records"].as_u64().unwrap() > 60);
    // Old and new records read back fine, and sign-in works.
    let list: Value = c
        .get(app.url("/api/v1/users?per_page=200"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 31);
    app.api_login("k7@example.com", "amber-meadow-river-77")
        .await;
    assert!(!app.audit(&token, "action=keys.rotate").await.is_empty());
}
