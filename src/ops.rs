//! Local admin commands (setup-link, recover, keys, audit verify, backup),
//! run the same way whether the CLI opened the data directory itself or the
//! running server executes them for it over the control socket.

use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::audit::{self, NewEvent, Outcome, Source};
use crate::error::{Error, Result};
use crate::service::Service;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    SetupLink,
    Recover { email: String },
    KeysStatus,
    KeysRotate,
    AuditVerify,
    Backup { path: String },
}

/// What a command prints, and whether it succeeded (exit status).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    pub ok: bool,
    pub text: String,
}

pub fn run(svc: &Service, cmd: &Command, progress: &mut dyn FnMut(u64, u64)) -> Result<Output> {
    let src = Source {
        ip: None,
        user_agent: Some("gatehouse-cli".into()),
    };
    let by = Principal::Local("cli");
    let ok = |text: String| Ok(Output { ok: true, text });
    match cmd {
        Command::SetupLink => ok(format!(
            "One-time setup link (valid 1 hour, single use):\n  {}",
            crate::authn::setup_link(svc, &src)?
        )),
        Command::Recover { email } => ok(format!(
            "One-time password reset link for {email} (valid 1 hour, single use):\n  {}",
            crate::authn::recover_link(svc, email, &src)?
        )),
        Command::KeysStatus => {
            let mut s = String::from("version  active  created               records\n");
            for k in crate::keys::status(svc)? {
                s.push_str(&format!(
                    "{:<8} {:<7} {:<21} {}\n",
                    k.version,
                    if k.active { "yes" } else { "" },
                    crate::clock::rfc3339(k.created_at),
                    k.records
                ));
            }
            ok(s)
        }
        Command::KeysRotate => {
            let r = crate::keys::rotate(
                svc,
                &crate::access::Actor::new(by.clone(), src.clone(), None),
                progress,
            )?;
            ok(format!(
                "Data key version {} is active; {} records re-sealed.",
                r.new_version, r.resealed
            ))
        }
        Command::AuditVerify => match audit::verify(&svc.store.read()?)? {
            Ok(n) => ok(format!("OK: {n} audit events, hash chain intact.")),
            Err(broken) => Ok(Output {
                ok: false,
                text: format!("BROKEN: {broken}"),
            }),
        },
        Command::Backup { path } => {
            let p = std::path::Path::new(path);
            if p.exists() {
                return Err(Error::invalid(
                    "FILE",
                    format!("{path} exists; choose a new file name"),
                ));
            }
            let n = svc.store.backup_to(p)?;
            let mut tx = svc.store.write()?;
            audit::record(
                &mut tx,
                svc.now(),
                &src,
                NewEvent::new("backup.create", Outcome::Success)
                    .actor("cli", None)
                    .details(serde_json::json!({"entries": n})),
            )?;
            tx.commit()?;
            ok(format!(
                "Backup written to {path} ({n} entries). It is sealed: keep master.key (separately) to restore it."
            ))
        }
    }
}
