//! Each attack is sent and seen refused: forged and expired tokens, foreign
//! keys, moved ciphertexts, enumeration, forged cookies, cross-session CSRF.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::*;
use gatehouse::crypto::b64url;

async fn me_status(app: &TestApp, token: &str) -> u16 {
    plain()
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(
        &gatehouse::crypto::b64url_decode(token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap()
}

#[actix_web::test]
async fn forged_jwts_are_refused() {
    let app = spawn().await;
    let token = app.owner_token().await;
    assert_eq!(me_status(&app, &token).await, 200);
    let claims = claims_of(&token);
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();

    // alg: none, with and without a signature part.
    let none_header = b64url(
        json!({"alg": "none", "typ": "JWT", "kid": kid})
            .to_string()
            .as_bytes(),
    );
    let body = b64url(claims.to_string().as_bytes());
    assert_eq!(
        me_status(&app, &format!("{none_header}.{body}.")).await,
        401
    );
    assert_eq!(me_status(&app, &format!("{none_header}.{body}")).await, 401);

    // HS256 keyed with our own public key (the classic algorithm confusion).
    let public_der = app.svc.signer().public_key_der();
    let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some(kid.clone());
    let hs = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&public_der)).unwrap();
    assert_eq!(me_status(&app, &hs).await, 401);
    let jwks: Value = plain()
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hs2 = jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_secret(jwks.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(me_status(&app, &hs2).await, 401);

    // Unknown kid; payload changed under the original signature.
    let parts: Vec<&str> = token.split('.').collect();
    let other_kid = b64url(
        json!({"alg": "RS256", "typ": "JWT", "kid": "deadbeefdeadbeef"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        me_status(&app, &format!("{other_kid}.{}.{}", parts[1], parts[2])).await,
        401
    );
    let mut evil = claims.clone();
    evil["roles"] = json!(["owner", "admin"]);
    evil["email"] = json!("mallory@example.com");
    assert_eq!(
        me_status(
            &app,
            &format!(
                "{}.{}.{}",
                parts[0],
                b64url(evil.to_string().as_bytes()),
                parts[2]
            )
        )
        .await,
        401
    );
    assert_eq!(me_status(&app, "not.a.jwt").await, 401);

    // Signed by another Gatehouse (a foreign key with the same kid shape).
    let other = spawn().await;
    let foreign = other.owner_token().await;
    assert_eq!(me_status(&app, &foreign).await, 401);

    // Expired: 15 minutes and a second later.
    app.clock.advance(15 * 60 + 1);
    let r = plain()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[actix_web::test]
async fn a_sealed_value_moved_onto_another_record_is_refused() {
    let app = spawn().await;
    let token = app.owner_token().await;
    let a = app.create_user(&token, "alice@example.com", "user").await;
    let b = app.create_user(&token, "bob@example.com", "user").await;
    let (aid, bid) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    app.svc
        .store
        .danger_copy_raw(
            gatehouse::store::Table::Users,
            aid.as_bytes(),
            bid.as_bytes(),
        )
        .unwrap();
    let r = plain()
        .get(app.url(&format!("/api/v1/users/{bid}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("integrity_error"), "{text}");
    assert!(
        !text.contains("alice"),
        "nothing of the moved record is returned: {text}"
    );
    // The untouched record still reads.
    let r = plain()
        .get(app.url(&format!("/api/v1/users/{aid}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[actix_web::test]
async fn the_database_file_does_not_contain_emails_or_names() {
    let app = spawn().await;
    let token = app.owner_token().await;
    app.create_user(&token, "secret.person@example.com", "user")
        .await;
    let bytes = std::fs::read(app.data.join("gatehouse.redb")).unwrap();
    let hay = String::from_utf8_lossy(&bytes);
    for needle in ["secret.person", OWNER, "Olivia Owner", "argon2id"] {
        assert!(
            !hay.contains(needle),
            "{needle} found in plaintext in the database file"
        );
    }
}

#[actix_web::test]
async fn sign_in_does_not_reveal_which_accounts_exist() {
    let app = spawn().await;
    let token = app.owner_token().await;
    app.create_user(&token, "erin@example.com", "user").await;
    let c = plain();
    let mut bodies = Vec::new();
    for email in ["erin@example.com", "nobody@example.com"] {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "wrong-password-000"}))
            .send()
            .await
            .unwrap();
        bodies.push((r.status(), r.text().await.unwrap()));
    }
    assert_eq!(bodies[0], bodies[1]);
    // The console form too (modulo the echoed e-mail and the per-render CSRF token).
    let mut pages = Vec::new();
    for email in ["erin@example.com", "nobody@example.com"] {
        let b = browser();
        let html = b
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let r = b
            .post(app.url("/login"))
            .form(&[
                ("email", email),
                ("password", "wrong-password-000"),
                ("csrf_token", &csrf_from(&html)),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status();
        let page = r.text().await.unwrap().replace(email, "EMAIL");
        let csrf = csrf_from(&page);
        pages.push((status, page.replace(&csrf, "CSRF")));
    }
    assert_eq!(pages[0], pages[1]);
    assert_eq!(pages[0].0, 401);
}

#[actix_web::test]
async fn forged_or_foreign_session_cookies_are_refused() {
    let app = spawn().await;
    app.setup_owner().await;
    let c = plain();
    for cookie in [
        "gh_session=ghs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "gh_session=garbage",
        "gh_session=",
    ] {
        let r = c
            .get(app.url("/admin"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{cookie}");
        assert_eq!(r.headers()["location"], "/login");
        let r = c
            .get(app.url("/api/v1/me"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // A real cookie from another Gatehouse instance means nothing here.
    let other = spawn().await;
    other.setup_owner().await;
    let cookie = other.login_cookie(OWNER, OWNER_PW).await;
    assert_eq!(
        c.get(other.url("/admin"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(app.url("/admin"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
}

#[actix_web::test]
async fn csrf_is_required_and_bound_to_the_session() {
    let app = spawn().await;
    app.setup_owner().await;
    let (alice, alice_csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let (_other, other_csrf) = app.browser_login(OWNER, OWNER_PW).await;
    assert_ne!(alice_csrf, other_csrf);
    let create = |token: &str| {
        alice
            .post(app.url("/admin/users"))
            .form(&[
                ("email", "x1@example.com"),
                ("password", "amber-meadow-river-77"),
                ("role", "user"),
                ("csrf_token", token),
            ])
            .send()
    };
    assert_eq!(create("").await.unwrap().status(), 403);
    assert_eq!(
        create(&other_csrf).await.unwrap().status(),
        403,
        "a token from another session"
    );
    assert_eq!(create(&alice_csrf).await.unwrap().status(), 303);
    // Browser API calls with the cookie need the header.
    let body = json!({"email": "x2@example.com", "password": "amber-meadow-river-77"});
    let r = alice
        .post(app.url("/api/v1/users"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = alice
        .post(app.url("/api/v1/users"))
        .header("x-csrf-token", &other_csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = alice
        .post(app.url("/api/v1/users"))
        .header("x-csrf-token", &alice_csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Sign-in form without its pre-session token.
    let r = browser()
        .post(app.url("/login"))
        .form(&[
            ("email", OWNER),
            ("password", OWNER_PW),
            ("csrf_token", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[actix_web::test]
async fn a_planted_session_id_is_never_adopted_at_sign_in() {
    let app = spawn().await;
    app.setup_owner().await;
    let c = plain();
    let html_resp = c.get(app.url("/login")).send().await.unwrap();
    let pre = html_resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = html_resp.text().await.unwrap();
    let planted = "gh_session=ghs_planted_by_the_attacker_0000000000000000000";
    let r = c
        .post(app.url("/login"))
        .header("cookie", format!("{pre}; {planted}"))
        .form(&[
            ("email", OWNER),
            ("password", OWNER_PW),
            ("csrf_token", &csrf_from(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("gh_session=ghs_"));
    assert!(!set.contains("planted"));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"));
    let r = c
        .get(app.url("/admin"))
        .header("cookie", planted)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}
