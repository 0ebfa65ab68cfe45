//! A bare rustls server for scripts/bench_tls.py: the same certificate as
//! Gatehouse, rustls' default configuration, one thread per connection,
//! one fixed HTTP answer, then close. `tls_bare CERT KEY PORT`. The
//! baseline that Gatehouse's TLS handshakes per second are compared with.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[allow(clippy::unwrap_used)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let certs = CertificateDer::pem_file_iter(&args[1])
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&args[2]).unwrap();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cfg = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let l = TcpListener::bind(("127.0.0.1", args[3].parse::<u16>().unwrap())).unwrap();
    println!("listening");
    for s in l.incoming().flatten() {
        let cfg = cfg.clone();
        std::thread::spawn(move || {
            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, s);
            let mut buf = [0u8; 4096];
            // One request (up to its blank line), one answer.
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let body = b"{\"status\":\"ok\"}";
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = tls.write_all(body);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
    }
}
