//! The JWK Set (`/oauth2/jwks`) and OpenID discovery.

use actix_web::{HttpResponse, web};

use crate::access::Permission;
use crate::web::AppState;

pub(super) async fn jwks(st: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(st.svc.signer().jwks())
}

pub(super) async fn discovery(st: web::Data<AppState>) -> HttpResponse {
    let base = st.svc.public_url();
    HttpResponse::Ok().json(serde_json::json!({
        "issuer": st.svc.signer().issuer(),
        "jwks_uri": format!("{base}/oauth2/jwks"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": Permission::all().map(|p| p.as_str()).collect::<Vec<_>>(),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}
