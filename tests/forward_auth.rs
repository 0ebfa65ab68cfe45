//! `/auth/verify` behind a real nginx (`auth_request`) in front of a small
//! upstream: the configuration the README shows, exercised end to end.

use std::process::{Child, Command};

use reqwest::Method;
use serde_json::json;

use crate::access::{call, world};
use crate::common::*;

struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nginx_binary() -> &'static str {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("nginx is not installed: scripts/test.sh installs it (apt nginx-light)")
}

/// nginx with the README's forward-auth block, protecting an upstream that
/// echoes the identity headers it receives.
async fn start_nginx(dir: &std::path::Path, gatehouse: &str) -> Nginx {
    let (front, up) = (free_port(), free_port());
    let conf = format!(
        r#"
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{up};
    location / {{ return 200 "upstream user=$http_x_gatehouse_user workspace=$http_x_gatehouse_workspace scopes=$http_x_gatehouse_scopes\n"; }}
  }}
  server {{
    listen 127.0.0.1:{front};
    location = /_gatehouse {{
      internal;
      proxy_pass {gatehouse}/auth/verify?scope=$gh_scope;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    location @gatehouse_login {{
      if ($gh_login = "") {{ return 401; }}
      return 302 $gh_login;
    }}
    location / {{
      set $gh_scope read:agents;
      auth_request /_gatehouse;
      auth_request_set $gh_user $upstream_http_x_gatehouse_user;
      auth_request_set $gh_ws $upstream_http_x_gatehouse_workspace;
      auth_request_set $gh_scopes $upstream_http_x_gatehouse_scopes;
      auth_request_set $gh_login $upstream_http_location;
      error_page 401 = @gatehouse_login;
      proxy_set_header X-Gatehouse-User $gh_user;
      proxy_set_header X-Gatehouse-Workspace $gh_ws;
      proxy_set_header X-Gatehouse-Scopes $gh_scopes;
      proxy_pass http://127.0.0.1:{up};
    }}
    location /deploy/ {{
      set $gh_scope deploy:model;
      auth_request /_gatehouse;
      auth_request_set $gh_user $upstream_http_x_gatehouse_user;
      proxy_set_header X-Gatehouse-User $gh_user;
      proxy_pass http://127.0.0.1:{up};
    }}
  }}
}}
"#,
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let n = Nginx { child, port: front };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", front)).is_ok() {
            return n;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "nginx did not start: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

#[actix_web::test]
async fn nginx_auth_request_lets_in_only_what_the_credential_allows() {
    let app = spawn().await;
    let w = world(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let nginx = start_nginx(dir.path(), &app.base).await;
    let front = |p: &str| format!("http://127.0.0.1:{}{p}", nginx.port);

    let a = call(
        &app,
        Method::POST,
        "/api/v1/api-apps",
        &w.wa,
        Some(json!({"name": "reader", "scopes": ["read:agents"]})),
    )
    .await
    .1;
    let key = call(
        &app,
        Method::POST,
        &format!("/api/v1/api-apps/{}/keys", a["id"].as_str().unwrap()),
        &w.wa,
        None,
    )
    .await
    .1["key"]
        .as_str()
        .unwrap()
        .to_string();

    // An API key with the scope: through, with its identity; a forged identity header is replaced.
    let r = plain()
        .get(front("/agents/7"))
        .bearer_auth(&key)
        .header("x-gatehouse-user", "usr_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.starts_with("upstream user=key_"), "{body}");
    assert!(
        body.contains(&format!("workspace={}", w.ws_a)) && body.contains("scopes=read:agents"),
        "{body}"
    );
    assert!(!body.contains("usr_forged"));
    // Lacking the location's scope: 403 from nginx.
    assert_eq!(
        plain()
            .get(front("/deploy/x"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // An agent developer's token has it.
    let r = plain()
        .get(front("/deploy/x"))
        .bearer_auth(&w.dev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No credential: 401 for programs, a redirect to sign-in (and back) for browsers.
    let r = plain()
        .get(front("/agents/7"))
        .header("x-gatehouse-user", "usr_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = plain()
        .get(front("/agents/7?x=1"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        format!("{}/login?rd=/agents/7%3Fx%3D1", app.base).as_str()
    );
    // A revoked (deleted) key is refused at once, through the proxy too.
    let keys = call(
        &app,
        Method::GET,
        &format!("/api/v1/api-apps/{}/keys", a["id"].as_str().unwrap()),
        &w.wa,
        None,
    )
    .await
    .1;
    call(
        &app,
        Method::DELETE,
        &format!(
            "/api/v1/api-apps/{}/keys/{}",
            a["id"].as_str().unwrap(),
            keys[0]["id"].as_str().unwrap()
        ),
        &w.wa,
        None,
    )
    .await;
    assert_eq!(
        plain()
            .get(front("/agents/7"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}
