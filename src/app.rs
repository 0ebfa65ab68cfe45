//! Process start-up: bind the listener, open the data directory, create the
//! owner from the bootstrap variables or print the setup link, start the
//! control socket and the HTTP server, and stop gracefully on SIGTERM.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use crate::audit::Source;
use crate::authn::password::Password;
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::identity::{self, Email};
use crate::service::Service;

/// First-start owner from `GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL` and
/// `GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE`.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub email: String,
    pub password_file: PathBuf,
}

impl Bootstrap {
    pub fn from_env() -> Option<Bootstrap> {
        let email = std::env::var("GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL").ok()?;
        let file = std::env::var("GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE").ok()?;
        Some(Bootstrap {
            email,
            password_file: file.into(),
        })
    }
}

/// Runs a future to completion on a fresh actix runtime (the CLI's entry points).
pub fn run_blocking<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

pub struct Application {
    port: u16,
    redirect_port: Option<u16>,
    redirect: Option<actix_web::dev::Server>,
    server: actix_web::dev::Server,
    svc: Arc<Service>,
    socket: PathBuf,
    setup_link: Option<String>,
}

impl Application {
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Application> {
        Self::build_with(settings, clock, Bootstrap::from_env()).await
    }

    pub async fn build_with(
        settings: Settings,
        clock: Arc<dyn Clock>,
        boot: Option<Bootstrap>,
    ) -> Result<Application> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        settings.check_transport()?;
        if crate::control::server_running(&settings.data_dir) {
            return Err(Error::Conflict(format!(
                "another `gatehouse serve` is already running on {}; stop it first",
                settings.data_dir.display()
            )));
        }
        let tls = crate::tls::Tls::new(&settings, clock.now())?;
        let listener = TcpListener::bind(settings.listen_addr()?).map_err(|e| {
            Error::invalid(
                "listen",
                format!("cannot listen on {}: {e}", settings.listen),
            )
        })?;
        let redirect_listener = match settings.http_listen_addr()? {
            Some(a) => Some(TcpListener::bind(a).map_err(|e| {
                Error::invalid("tls.http_listen", format!("cannot listen on {a}: {e}"))
            })?),
            None => None,
        };
        let addr = listener.local_addr()?;
        let svc = Arc::new(Service::open_bound(settings, clock, Some(addr))?);
        let redirect_port = match &redirect_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        if let Some(b) = boot {
            bootstrap_owner(&svc, &b).await?;
        }
        let socket = crate::control::start(svc.clone())?;
        let setup_link = if identity::owner_exists(&svc.store.read()?)? {
            None
        } else {
            let link = crate::authn::setup_link(&svc, &Source::default())?;
            println!(
                "Gatehouse is not set up yet. Open this one-time link (valid 1 hour) to create the owner account:\n\n  {link}\n"
            );
            Some(link)
        };
        if let Some(kid) = svc.rotate_signing_key_if_due()? {
            tracing::info!(%kid, "access-token signing key rotated (schedule)");
        }
        let rustls_config = match &tls {
            Some(t) => {
                svc.set_tls(t.clone());
                if svc.settings.acme_enabled() {
                    crate::tls::acme::load_cached(&svc, t)?;
                    actix_web::rt::spawn(crate::tls::acme::run(svc.clone(), t.clone()));
                } else {
                    spawn_certificate_reload(svc.clone());
                }
                Some(t.server_config()?)
            }
            None => None,
        };
        let server = crate::web::server(svc.clone(), listener, rustls_config)?;
        let redirect = match redirect_listener {
            Some(l) => Some(crate::web::redirect_server(svc.clone(), l)?),
            None => None,
        };
        spawn_housekeeping(svc.clone());
        // Audit streaming runs on its own thread: a sink never shares a
        // runtime with requests (see `sinks::deliver`).
        crate::sinks::deliver::start(&svc)?;
        tracing::info!(%addr, data = %svc.store.dir().display(), "gatehouse listening");
        println!("Gatehouse listening on {}", svc.public_url());
        Ok(Application {
            port: addr.port(),
            redirect_port,
            redirect,
            server,
            svc,
            socket,
            setup_link,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The plain-HTTP redirect listener's port (`tls.http_listen`), if any.
    pub fn redirect_port(&self) -> Option<u16> {
        self.redirect_port
    }

    pub fn service(&self) -> Arc<Service> {
        self.svc.clone()
    }

    pub fn setup_link(&self) -> Option<&str> {
        self.setup_link.as_deref()
    }

    /// Serves until SIGTERM/SIGINT, letting requests in flight finish.
    pub async fn run(self) -> Result<()> {
        let Application {
            server,
            redirect,
            svc,
            socket,
            ..
        } = self;
        let redirect = redirect.map(|r| {
            let handle = r.handle();
            actix_web::rt::spawn(r);
            handle
        });
        let r = server.await;
        if let Some(h) = redirect {
            h.stop(true).await;
        }
        if let Err(e) = crate::access::flush_denials(&svc) {
            tracing::warn!(error = %e, "could not record the buffered access denials at shutdown");
        }
        if let Err(e) = crate::access::credentials::flush_usage(&svc) {
            tracing::warn!(error = %e, "could not record API-key last use at shutdown");
        }
        if let Err(e) = crate::vault::flush_access(&svc, true) {
            tracing::warn!(error = %e, "could not record the counted Vault data accesses at shutdown");
        }
        if let Err(e) = svc.save_rate_limits() {
            tracing::warn!(error = %e, "could not save the rate-limit buckets at shutdown");
        }
        let _ = std::fs::remove_file(&socket);
        tracing::info!("gatehouse stopped");
        r.map_err(Error::from)
    }
}

/// Certificate files: looked at every few seconds and reloaded when they
/// changed, and at once on SIGHUP.
fn spawn_certificate_reload(svc: Arc<Service>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; certificate files are still looked at every few seconds");
            None
        }
    };
    // 0: no watch, SIGHUP only (a day-long tick that never forces a reload).
    let every = match svc.settings.tls.file_check_secs {
        0 => None,
        s => Some(std::time::Duration::from_secs(s)),
    };
    actix_web::rt::spawn(async move {
        let mut tick =
            actix_web::rt::time::interval(every.unwrap_or(std::time::Duration::from_secs(86_400)));
        loop {
            let force = match hup.as_mut() {
                Some(h) => tokio::select! {
                    _ = tick.tick() => false,
                    _ = h.recv() => true,
                },
                None => {
                    tick.tick().await;
                    false
                }
            };
            if every.is_none() && !force {
                continue;
            }
            if force {
                tracing::info!("SIGHUP: reloading the TLS certificate files");
            }
            let s = svc.clone();
            let _ = actix_web::rt::task::spawn_blocking(move || {
                crate::tls::reload(&s, force);
            })
            .await;
        }
    });
}

/// Periodic work: refused checks are group-committed every second; API-key
/// last-use times and the rate-limit buckets are written every 30 s; SSO
/// sign-ins that never came back and expired SAML assertion IDs are purged
/// every 10 minutes; the signing
/// key is checked for its scheduled rotation every hour.
fn spawn_housekeeping(svc: Arc<Service>) {
    // Refused checks: one group commit per interval (see `access::audit_denial`).
    let s = svc.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(
            crate::audit::DENIAL_FLUSH_SECS,
        ));
        loop {
            tick.tick().await;
            if !crate::access::denials_buffered(&s) {
                continue;
            }
            let s = s.clone();
            let _ = actix_web::rt::task::spawn_blocking(move || {
                if let Err(e) = crate::access::flush_due_denials(&s) {
                    tracing::warn!(error = %e, "could not record the buffered access denials");
                }
            })
            .await;
        }
    });
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(30));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n += 1;
            let s = svc.clone();
            let _ = actix_web::rt::task::spawn_blocking(move || {
                if let Err(e) = crate::access::credentials::flush_usage(&s) {
                    tracing::warn!(error = %e, "could not record API-key last use");
                }
                // Data-access counts of minutes that ended (see `vault::note_access`).
                if crate::vault::access_buffered(&s)
                    && let Err(e) = crate::vault::flush_access(&s, false)
                {
                    tracing::warn!(error = %e, "could not record the counted Vault data accesses");
                }
                if n.is_multiple_of(120)
                    && let Err(e) = crate::vault::transit::rotate_due(&s)
                {
                    tracing::warn!(error = %e, "could not rotate the Transit keys that were due");
                }
                if let Err(e) = s.save_rate_limits() {
                    tracing::warn!(error = %e, "could not save the rate-limit buckets");
                }
                if n.is_multiple_of(20)
                    && let Err(e) = crate::sso::purge_expired(&s)
                        .and_then(|_| crate::sso::saml::purge_replay_cache(&s))
                {
                    tracing::warn!(error = %e, "could not purge expired SSO sign-ins");
                }
                if n.is_multiple_of(120) {
                    match s.rotate_signing_key_if_due() {
                        Ok(Some(kid)) => {
                            tracing::info!(%kid, "access-token signing key rotated (schedule)")
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "scheduled signing-key rotation failed")
                        }
                    }
                }
            })
            .await;
        }
    });
}

async fn bootstrap_owner(svc: &Service, b: &Bootstrap) -> Result<()> {
    if identity::owner_exists(&svc.store.read()?)? {
        tracing::info!("GATEHOUSE_BOOTSTRAP_ADMIN_* ignored: an owner exists already");
        return Ok(());
    }
    let email = Email::parse(&b.email)?;
    let raw = std::fs::read_to_string(&b.password_file).map_err(|e| {
        Error::invalid(
            "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE",
            format!("cannot read {}: {e}", b.password_file.display()),
        )
    })?;
    let pw = Password::new(raw.trim_end_matches(['\n', '\r']));
    let src = Source {
        ip: None,
        user_agent: Some("bootstrap".into()),
    };
    let user = crate::authn::create_owner(svc, None, email, "Owner".into(), pw, &src).await?;
    tracing::info!(
        user = user.id.as_str(),
        "owner created from bootstrap variables"
    );
    Ok(())
}
