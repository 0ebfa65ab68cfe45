//! The command line: `serve` and the local admin commands. Admin commands go
//! through the control socket when a server runs on the data directory, and
//! open the data directory themselves when none does.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::ops::{self, Command};
use crate::service::Service;

#[derive(Parser, Debug)]
#[command(
    name = "gatehouse",
    version,
    about = "Sign-in, access control, encryption and audit in one binary"
)]
pub struct Cli {
    /// Data directory (default ./gatehouse-data)
    #[arg(long, global = true, env = "GATEHOUSE_DATA")]
    pub data: Option<PathBuf>,
    /// TOML configuration file
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the server
    Serve {
        /// Address to listen on (default 127.0.0.1:8080)
        #[arg(long, env = "GATEHOUSE_LISTEN")]
        listen: Option<String>,
        /// Allow plain HTTP on a non-loopback address (only behind a TLS proxy)
        #[arg(long)]
        danger_insecure_http: bool,
        /// Obtain the HTTPS certificate for this name from an ACME CA (repeat for more names)
        #[arg(long = "acme-domain", value_name = "NAME")]
        acme_domains: Vec<String>,
        /// ACME account contact, e.g. mailto:ops@example.com (repeatable)
        #[arg(long = "acme-contact", value_name = "URL")]
        acme_contacts: Vec<String>,
    },
    /// Print a new one-time setup link (until the owner exists)
    SetupLink,
    /// Print a one-time password-reset link for a user (e.g. a locked-out admin)
    Recover { email: String },
    /// Data-key status and rotation
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Audit-log verification
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Write a consistent backup of the database (works while serving)
    Backup { file: PathBuf },
    /// Replace the database with a backup (server stopped; same master.key)
    Restore { file: PathBuf },
    /// Configuration
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Key versions and how many records each still seals
    Status,
    /// Make a new data key active and re-seal every record under it
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check the hash chain; exits non-zero at the first broken link
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Validate and print the effective configuration (secrets masked)
    Check,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.public_message_for_operator());
            ExitCode::from(2)
        }
    }
}

fn settings(cli: &Cli) -> Result<Settings> {
    let mut s = Settings::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(d) = &cli.data {
        s.data_dir = d.clone();
    }
    Ok(s)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let mut settings = settings(&cli)?;
    match cli.command {
        Cmd::Serve {
            listen,
            danger_insecure_http,
            acme_domains,
            acme_contacts,
        } => {
            if let Some(l) = listen {
                settings.listen = l;
            }
            if !acme_domains.is_empty() {
                settings.tls.acme.domains = acme_domains;
            }
            if !acme_contacts.is_empty() {
                settings.tls.acme.contact = acme_contacts;
            }
            settings.danger_insecure_http |= danger_insecure_http;
            settings.validate()?;
            let _log = crate::telemetry::init(&settings.log_format);
            crate::app::run_blocking(async move {
                let app = crate::app::Application::build(settings, Arc::new(SystemClock)).await?;
                app.run().await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Config {
            action: ConfigAction::Check,
        } => {
            settings.check_transport()?;
            println!("# configuration is valid\n{}", settings.to_masked_toml());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore { file } => {
            if crate::control::server_running(&settings.data_dir) {
                return Err(Error::Conflict(
                    "Stop `gatehouse serve` before restoring a backup.".into(),
                ));
            }
            let kept = crate::store::Store::restore(&settings.data_dir, &file, SystemClock.now())?;
            println!(
                "Restored {} into {}.",
                file.display(),
                settings.data_dir.display()
            );
            if let Some(k) = kept {
                println!("The previous database was kept as {}.", k.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::SetupLink => admin(&settings, Command::SetupLink),
        Cmd::Recover { email } => admin(&settings, Command::Recover { email }),
        Cmd::Keys {
            action: KeysAction::Status,
        } => admin(&settings, Command::KeysStatus),
        Cmd::Keys {
            action: KeysAction::Rotate,
        } => admin(&settings, Command::KeysRotate),
        Cmd::Audit {
            action: AuditAction::Verify,
        } => admin(&settings, Command::AuditVerify),
        Cmd::Backup { file } => {
            let abs = std::path::absolute(&file)?;
            admin(
                &settings,
                Command::Backup {
                    path: abs.to_string_lossy().into_owned(),
                },
            )
        }
    }
}

/// Draws a one-line progress bar on stderr.
fn progress_bar(done: u64, total: u64) {
    let width = 30u64;
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    eprint!(
        "\r[{}{}] {done}/{total} records re-sealed",
        "#".repeat(filled as usize),
        "-".repeat((width - filled) as usize)
    );
    let _ = std::io::stderr().flush();
    if done >= total {
        eprintln!();
    }
}

fn admin(settings: &Settings, cmd: Command) -> Result<ExitCode> {
    let mut progress = progress_bar;
    let out = match crate::control::call(&settings.data_dir, &cmd, &mut progress)? {
        Some(out) => out,
        None => {
            if !settings.data_dir.join(crate::store::DB_FILE).exists() {
                return Err(Error::NotFound(
                    "Gatehouse data in this directory (start `gatehouse serve` first, or pass --data)",
                ));
            }
            let settings = settings.clone();
            crate::app::run_blocking(async move {
                let svc = Service::open(settings, Arc::new(SystemClock))?;
                tokio::task::spawn_blocking(move || ops::run(&svc, &cmd, &mut progress))
                    .await
                    .map_err(Error::internal_source)?
            })?
        }
    };
    println!("{}", out.text.trim_end());
    Ok(if out.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
