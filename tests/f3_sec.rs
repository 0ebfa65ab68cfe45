//! r3 finding 6: a workspace's own audit log does not tell which e-mail
//! addresses have an account (findings 4 and 5 wait on branch sec-f3).

use reqwest::Method;
use serde_json::json;

use crate::access::{call, world};
use crate::common::*;

#[actix_web::test]
async fn finding6_the_workspace_log_does_not_tell_which_addresses_exist() {
    let app = spawn().await;
    let w = world(&app).await;
    let members = format!("/api/v1/workspaces/{}/members", w.ws_a);
    for email in [OWNER, "ghost@example.com"] {
        let (s, _) = call(
            &app,
            Method::POST,
            &members,
            &w.wa,
            Some(json!({"email": email, "roles": ["user"]})),
        )
        .await;
        assert_eq!(s, 404, "{email}");
    }
    let mine = app
        .audit(&w.wa, &format!("workspace={}&per_page=200", w.ws_a))
        .await;
    assert!(
        !mine
            .iter()
            .any(|e| e["details"]["reason"] == "user_not_claimable"),
        "{mine:?}"
    );
    let platform = app.audit(&w.owner, "action=access.denied").await;
    let ev = platform
        .iter()
        .find(|e| e["details"]["reason"] == "user_not_claimable")
        .unwrap_or_else(|| panic!("{platform:?}"));
    assert!(ev["workspace"].is_null(), "{ev}");
    assert_eq!(ev["details"]["resource"], w.ws_a.as_str(), "{ev}");
}
