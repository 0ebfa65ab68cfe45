//! web
use std::sync::Arc;
pub fn tls_config(_s: &crate::config::Settings) -> crate::error::Result<Option<rustls::ServerConfig>> { Ok(None) }
pub fn server(_svc: Arc<crate::service::Service>, _l: std::net::TcpListener, _t: Option<rustls::ServerConfig>) -> crate::error::Result<actix_web::dev::Server> { todo!() }
