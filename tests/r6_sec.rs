//! Issue 11, review R6 finding 1: an SSO link outliving its maker's
//! authority. A client holding `admin:users` and `manage:security` links a
//! plain user to an IdP it controls (allowed: it may link that user); a real
//! admin later gives the user more (a workspace seat or role, a group, a
//! custom role's edit, the platform admin role) and the client's IdP signed
//! in as that. Now a link remembers who made it and what the user held; a
//! sign-in through it, once the user holds more, needs its maker to pass the
//! linking rule against the user as they are — else an admin with that
//! authority re-links (re-approves) it. Against pysaml2's IdP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::access::call;
use crate::common::*;
use crate::f1_sec::{me, sa_token, signed_in};
use crate::saml::{saml_app, sign_in};
use crate::sb_sec::id_of;
use crate::sso::{get_json, put_json};

/// `call`, asserting a 2xx answer.
async fn ok(app: &TestApp, m: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (s, v) = call(app, m.clone(), path, token, body).await;
    assert!((200..300).contains(&s), "{m} {path}: {s} {v}");
    v
}

/// Re-sets the `acme` connection with `extra` (its other fields kept) as
/// `token`: no role rules, so that platform roles given by an admin stay.
async fn set_acme(app: &TestApp, token: &str, extra: Value) {
    let (_, c) = get_json(app, "/api/v1/sso/connections/acme", token).await;
    let mut body = json!({"protocol": "saml", "provider": c["provider"], "name": c["name"],
                          "role_rules": []});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, v) = put_json(app, "/api/v1/sso/connections/acme", token, body).await;
    assert_eq!(s, 200, "{v}");
}

async fn workspace(app: &TestApp, owner: &str, name: &str) -> String {
    id_of(
        &ok(
            app,
            Method::POST,
            "/api/v1/workspaces",
            owner,
            Some(json!({"name": name})),
        )
        .await,
    )
}

/// The IdP's `user` signs in, and is refused: the link needs re-approval,
/// in words, audited with the reason naming it.
async fn refused_as_stale(app: &TestApp, owner: &str, user: &str) {
    let c = browser();
    let r = sign_in(app, &c, user).await;
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 403, "{user} was signed in: {body}");
    assert!(
        body.contains("An administrator must re-link your account"),
        "{body}"
    );
    assert_eq!(me(app, &c).await, 401);
    let ev = &app.audit(owner, "action=sso.login&limit=1").await[0];
    assert_eq!(ev["outcome"], "failure", "{ev}");
    assert_eq!(ev["details"]["reason"], "link_needs_reapproval", "{ev}");
    assert!(
        ev["details"]["message"]
            .as_str()
            .unwrap()
            .contains("must re-link the account"),
        "{ev}"
    );
}

async fn link(app: &TestApp, token: &str, user: &str, subject: &str) -> (u16, Value) {
    post(
        app,
        &format!("/api/v1/users/{user}/sso-links"),
        Some(token),
        json!({"connection": "acme", "subject": subject}),
    )
    .await
}

/// (a), (b), (d), (e) and the other raising paths: a workspace seat, a
/// group, a custom role's edit, the platform role. Each is refused at the
/// sign-in while the user holds more than the helpdesk could link; taking it
/// away again restores the link, and the owner's re-link re-approves it.
#[actix_web::test]
async fn r6_finding1_a_clients_link_signs_in_nobody_once_the_user_holds_more() {
    let keys = tempfile::tempdir().unwrap();
    let (app, _idp, owner) = saml_app(keys.path()).await;
    set_acme(&app, &owner, json!({})).await;
    let ws = workspace(&app, &owner, "Alpha").await;
    let helpdesk = sa_token(
        &app,
        &owner,
        "helpdesk",
        &["admin:users", "manage:security"],
    )
    .await;
    let alice = id_of(&app.create_user(&owner, "alice@corp.example", "user").await);
    let (s, v) = link(&app, &helpdesk, &alice, "alice@corp.example").await;
    assert_eq!(s, 204, "{v}");
    // (d) Nothing given since: the link signs her in.
    let early = signed_in(&app, "alice").await;

    // (a) A workspace admin now: more than the helpdesk may link.
    let member = format!("/api/v1/workspaces/{ws}/members/{alice}");
    ok(
        &app,
        Method::PUT,
        &member,
        &owner,
        Some(json!({"roles": ["workspace_admin"]})),
    )
    .await;
    refused_as_stale(&app, &owner, "alice").await;
    // And the session the IdP made before does not carry the seat: it ended.
    assert_eq!(me(&app, &early).await, 401);
    // The rule reads what she holds now: without the seat, the link works again.
    ok(&app, Method::DELETE, &member, &owner, None).await;
    signed_in(&app, "alice").await;

    // A custom role's edit. A seat granting `admin:users` only, which the
    // helpdesk holds too: it could link her as she is, so the link stands;
    // re-linked, the link records it. Once the role grants more, it does not.
    let rid = id_of(
        &ok(
            &app,
            Method::POST,
            "/api/v1/roles",
            &owner,
            Some(json!({"workspace": ws, "name": "Helpers", "permissions": ["admin:users"]})),
        )
        .await,
    );
    ok(
        &app,
        Method::PUT,
        &member,
        &owner,
        Some(json!({"roles": [rid]})),
    )
    .await;
    signed_in(&app, "alice").await;
    let (s, v) = link(&app, &helpdesk, &alice, "alice@corp.example").await;
    assert_eq!(s, 204, "the helpdesk holds what she holds: {v}");
    signed_in(&app, "alice").await;
    // A seat in a group carrying a role (she is a member: the seat above).
    let g = id_of(
        &ok(
            &app,
            Method::POST,
            "/api/v1/groups",
            &owner,
            Some(
                json!({"workspace": ws, "name": "Builders", "roles": ["agent_developer"],
                        "members": [alice]}),
            ),
        )
        .await,
    );
    refused_as_stale(&app, &owner, "alice").await;
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/groups/{g}"),
        &owner,
        Some(json!({"members": []})),
    )
    .await;
    signed_in(&app, "alice").await;

    // The custom role grants more now.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/roles/{rid}"),
        &owner,
        Some(json!({"permissions": ["admin:users", "admin:credentials"]})),
    )
    .await;
    refused_as_stale(&app, &owner, "alice").await;
    // The helpdesk cannot re-approve what it could not link.
    let (s, v) = link(&app, &helpdesk, &alice, "alice@corp.example").await;
    assert_eq!(s, 403, "{v}");
    refused_as_stale(&app, &owner, "alice").await;
    ok(&app, Method::DELETE, &member, &owner, None).await;
    signed_in(&app, "alice").await;

    // (b) The platform admin role.
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{alice}"),
        &owner,
        Some(json!({"role": "admin"})),
    )
    .await;
    refused_as_stale(&app, &owner, "alice").await;

    // (e) The owner may link her: their re-link re-approves the link, audited.
    let (s, v) = link(&app, &owner, &alice, "alice@corp.example").await;
    assert_eq!(s, 204, "{v}");
    let ev = &app.audit(&owner, "action=sso.link&limit=1").await[0];
    assert_eq!(ev["details"]["reapproved"], true, "{ev}");
    assert_eq!(ev["target"], alice.as_str(), "{ev}");
    let c = signed_in(&app, "alice").await;
    let (_, m) = {
        let r = c.get(app.url("/api/v1/me")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(m["role"], "admin", "{m}");
    // A link the owner made stands while the owner may link her.
    ok(
        &app,
        Method::PUT,
        &member,
        &owner,
        Some(json!({"roles": ["workspace_admin"]})),
    )
    .await;
    signed_in(&app, "alice").await;
    // A platform admin gains nothing by a seat: her session stays.
    assert_eq!(me(&app, &c).await, 200);
}

/// (c) A user made just in time at a connection whose trust the helpdesk
/// set is linked on its authority: promoted, they are refused until an
/// admin re-approves the link (here from the console's user page, which
/// marks it). At the owner's connection a promoted JIT user still signs in.
/// Links an older version wrote keep working for plain users, and stop once
/// the user holds more.
#[actix_web::test]
async fn r6_finding1_jit_and_old_links_need_reapproval_once_the_user_holds_more() {
    let keys = tempfile::tempdir().unwrap();
    let (app, _idp, owner) = saml_app(keys.path()).await;
    let ws = workspace(&app, &owner, "Alpha").await;
    let helpdesk = sa_token(
        &app,
        &owner,
        "helpdesk",
        &["admin:users", "manage:security"],
    )
    .await;

    // At the owner's connection: JIT, promoted, still signed in.
    set_acme(&app, &owner, json!({})).await;
    signed_in(&app, "alice").await;
    let alice = app.audit(&owner, "action=user.create&limit=1").await[0]["target"]
        .as_str()
        .unwrap()
        .to_string();
    let seat = |u: &str| format!("/api/v1/workspaces/{ws}/members/{u}");
    ok(
        &app,
        Method::PUT,
        &seat(&alice),
        &owner,
        Some(json!({"roles": ["workspace_admin"]})),
    )
    .await;
    signed_in(&app, "alice").await;

    // The helpdesk may not re-point a connection a workspace admin is
    // linked at: the owner unlinks her. Re-pointing it, the helpdesk then
    // vouches for the users it makes just in time.
    let (s, v) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/users/{alice}/sso-links"),
        &owner,
        Some(json!({"connection": "acme", "subject": "alice@corp.example"})),
    )
    .await;
    assert!((200..300).contains(&s), "{s} {v}");
    set_acme(&app, &helpdesk, json!({"allow_sha1": true})).await;
    signed_in(&app, "bob").await;
    let bob = app.audit(&owner, "action=user.create&limit=1").await[0]["target"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(bob, alice);
    ok(
        &app,
        Method::PUT,
        &seat(&bob),
        &owner,
        Some(json!({"roles": ["workspace_admin"]})),
    )
    .await;
    refused_as_stale(&app, &owner, "bob").await;

    // The console's user page marks the link; its button re-approves it
    // (the owner may link bob).
    let (console, csrf) = app.browser_login(OWNER, OWNER_PW).await;
    let page = console
        .get(app.url(&format!("/admin/users/{bob}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("needs re-approval"), "{page}");
    assert!(page.contains("created just in time"), "{page}");
    assert!(page.contains("service account"), "{page}");
    let reference = crate::saml::value_of(&page, "reference");
    // A forged reference names no link.
    let r = console
        .post(app.url(&format!("/admin/users/{bob}/sso-links/reapprove")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("connection", "acme"),
            ("reference", &"00".repeat(32)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(reference.len(), 64, "{reference}");
    refused_as_stale(&app, &owner, "bob").await;
    // The owner presses Re-approve in headless Chromium.
    chromium_walk_async("link.mjs", vec![app.base.clone(), bob.clone()]).await;
    signed_in(&app, "bob").await;
    let page = console
        .get(app.url(&format!("/admin/users/{bob}?notice=link_reapproved")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("needs re-approval"), "{page}");
    assert!(page.contains("SSO link approved again"), "{page}");

    // Links an older version wrote (`admin:` + the user id): a plain user
    // signs in as before, and the link then vouches for what they held.
    let carol = id_of(&app.create_user(&owner, "carol@corp.example", "user").await);
    let old_link = |user: &str, subject: &str| {
        let mut key = b"acme\0".to_vec();
        key.extend_from_slice(
            &app.svc
                .store
                .blind_index("sso_subject", &format!("acme\0{subject}"))
                .unwrap(),
        );
        let mut tx = app.svc.store.write().unwrap();
        tx.put(
            gatehouse::store::Table::SsoLinks,
            &key,
            &format!("admin:{user}"),
        )
        .unwrap();
        tx.commit().unwrap();
    };
    // pysaml2's alice stands for carol now.
    old_link(&carol, "alice@corp.example");
    signed_in(&app, "alice").await;
    let (_, m) = get_json(&app, &format!("/api/v1/users/{carol}"), &owner).await;
    assert_eq!(m["email"], "carol@corp.example", "{m}");
    ok(
        &app,
        Method::PUT,
        &seat(&carol),
        &owner,
        Some(json!({"roles": ["analyst"]})),
    )
    .await;
    refused_as_stale(&app, &owner, "alice").await;
    // Review 7: an old link into a user who already holds a seat is not
    // baselined with it (nobody knows who made it).
    old_link(&carol, "alice@corp.example");
    refused_as_stale(&app, &owner, "alice").await;
    // An old link into an administrator opens nothing until re-approved.
    ok(&app, Method::DELETE, &seat(&carol), &owner, None).await;
    old_link(&carol, "alice@corp.example");
    ok(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{carol}"),
        &owner,
        Some(json!({"role": "admin"})),
    )
    .await;
    refused_as_stale(&app, &owner, "alice").await;
    let (s, v) = link(&app, &owner, &carol, "alice@corp.example").await;
    assert_eq!(s, 204, "{v}");
    signed_in(&app, "alice").await;
}
