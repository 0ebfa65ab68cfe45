//! Service-account tokens signed with ES256 or EdDSA
//! (`tokens.service_account_algorithm`): user tokens stay RS256, the JWKS
//! publishes every key with its `alg`, a real verifier (node `jose`) accepts
//! the tokens from the JWKS, a key never verifies another algorithm's header,
//! and rotation renews both keys while the old ones verify until they retire.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::{base64url, call, client_token, flip_last, service_account};
use crate::common::*;
use gatehouse::clock::Clock;

fn header(token: &str) -> Value {
    serde_json::from_slice(&base64url(token.split('.').next().unwrap())).unwrap()
}

/// `token` with its header replaced by `h`.
fn with_header(token: &str, h: Value) -> String {
    use base64::Engine;
    let rest = token.split_once('.').unwrap().1;
    let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.to_string());
    format!("{h}.{rest}")
}

async fn jwks(app: &TestApp) -> Vec<Value> {
    plain()
        .get(app.url("/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["keys"]
        .as_array()
        .unwrap()
        .clone()
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

/// node `jose` verifying `token` against our JWKS URL.
async fn jose(app: &TestApp, token: &str) -> Value {
    let args = vec![
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peers/verify_jwt.mjs")
            .display()
            .to_string(),
        app.url("/oauth2/jwks"),
        app.svc.signer().issuer().to_string(),
        app.svc.settings.tokens.audience.clone(),
        token.to_string(),
        app.clock.now().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[actix_web::test]
async fn service_tokens_use_the_configured_algorithm_and_only_their_keys() {
    for (alg, kty) in [("EdDSA", "OKP"), ("ES256", "EC")] {
        let app = spawn_with(|s| s.tokens.service_account_algorithm = alg.into()).await;
        let owner = app.owner_token().await;
        assert_eq!(header(&owner)["alg"], "RS256", "user tokens stay RS256");
        let (id, secret) = service_account(
            &app,
            &owner,
            json!({"name": "svc", "scopes": ["introspect:credentials"]}),
        )
        .await;
        let (s, v) = client_token(&app, &id, &secret, None).await;
        assert_eq!(s, 200, "{v}");
        let token = v["access_token"].as_str().unwrap().to_string();
        let h = header(&token);
        assert_eq!(h["alg"], alg);
        let keys = jwks(&app).await;
        assert_eq!(keys.len(), 2, "{keys:?}");
        let key = keys.iter().find(|k| k["kid"] == h["kid"]).unwrap();
        assert_eq!((&key["alg"], &key["kty"]), (&json!(alg), &json!(kty)));
        assert!(
            keys.iter()
                .any(|k| k["alg"] == "RS256" && k["kid"] == header(&owner)["kid"])
        );
        assert!(key.get("d").is_none(), "no private part published");

        // Our checks and a real verifier accept it.
        assert_eq!(verify(&app, &token).await, 200);
        let (st, intro) = {
            let r = plain()
                .post(app.url("/oauth2/introspect"))
                .basic_auth(&id, Some(&secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };
        assert_eq!((st, &intro["active"]), (200, &json!(true)), "{intro}");
        let j = jose(&app, &token).await;
        assert_eq!((&j["ok"], &j["alg"]), (&json!(true), &json!(alg)), "{j}");
        assert_eq!(jose(&app, &owner).await["alg"], "RS256");

        // Attacks: the header switched to the other algorithm for the same
        // key (either way round), a flipped signature, HMAC with the key.
        let rsa_kid = header(&owner)["kid"].clone();
        let forged = [
            with_header(
                &token,
                json!({"alg": "RS256", "typ": "JWT", "kid": h["kid"]}),
            ),
            with_header(&owner, json!({"alg": alg, "typ": "JWT", "kid": rsa_kid})),
            with_header(
                &owner,
                json!({"alg": "RS256", "typ": "JWT", "kid": h["kid"]}),
            ),
            with_header(
                &token,
                json!({"alg": "HS256", "typ": "JWT", "kid": h["kid"]}),
            ),
            with_header(
                &token,
                json!({"alg": "none", "typ": "JWT", "kid": h["kid"]}),
            ),
            flip_last(&token),
        ];
        for f in &forged {
            assert_eq!(verify(&app, f).await, 401, "{}", header(f));
            let (s, _) = call(&app, Method::GET, "/api/v1/workspaces", f, None).await;
            assert_eq!(s, 401);
        }

        // Rotation renews both keys; the old ones keep verifying.
        let (s, v) = call(
            &app,
            Method::POST,
            "/api/v1/keys/signing/rotate",
            &owner,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let keys = jwks(&app).await;
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert_eq!(keys.iter().filter(|k| k["alg"] == alg).count(), 2);
        let (_, v) = client_token(&app, &id, &secret, None).await;
        let fresh = v["access_token"].as_str().unwrap().to_string();
        assert_eq!(header(&fresh)["alg"], alg);
        assert_ne!(header(&fresh)["kid"], h["kid"]);
        assert_eq!(verify(&app, &fresh).await, 200);
        assert_eq!(
            verify(&app, &token).await,
            200,
            "the previous key verifies until it retires"
        );
        assert_eq!(jose(&app, &fresh).await["ok"], true);
    }
}

#[test]
fn an_unknown_service_account_algorithm_is_refused_by_name() {
    let e = gatehouse::config::Settings::load(
        None,
        [(
            "GATEHOUSE_TOKENS_SERVICE_ACCOUNT_ALGORITHM".to_string(),
            "HS256".to_string(),
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tokens.service_account_algorithm"), "{e}");
    assert!(e.contains("EdDSA"), "{e}");
}
