//! Protocol endpoints other services read: the JWK Set and OpenID discovery.

use actix_web::{HttpResponse, web};

use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth2/jwks", web::get().to(jwks)).route(
        "/.well-known/openid-configuration",
        web::get().to(discovery),
    );
}

async fn jwks(st: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(st.svc.signer().jwks())
}

async fn discovery(st: web::Data<AppState>) -> HttpResponse {
    let base = st.svc.public_url();
    HttpResponse::Ok().json(serde_json::json!({
        "issuer": st.svc.signer().issuer(),
        "jwks_uri": format!("{base}/oauth2/jwks"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint": format!("{base}/api/v1/auth/login"),
    }))
}
