//! The control socket: `gatehouse.sock` in the data directory (0600), through
//! which local admin commands reach a running server — redb allows one process
//! per database file. One JSON request line in; progress lines and one result out.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::ops::{self, Command, Output};
use crate::service::Service;

pub const SOCKET_FILE: &str = "gatehouse.sock";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Progress { done: u64, total: u64 },
    Done(Output),
    Error { message: String },
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Binds the socket (replacing a stale file: we hold the database lock, so no
/// other server can be behind it) and serves commands until the runtime stops.
pub fn start(svc: Arc<Service>) -> Result<PathBuf> {
    let path = socket_path(svc.store.dir());
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| Error::Storage(format!("cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let svc = svc.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(svc, stream).await {
                    tracing::warn!(error = %e, "control socket client failed");
                }
            });
        }
    });
    Ok(path)
}

async fn handle(svc: Arc<Service>, stream: tokio::net::UnixStream) -> Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    tokio::io::BufReader::new(rd).read_line(&mut line).await?;
    let cmd: Command = match serde_json::from_str(&line) {
        Ok(c) => c,
        Err(e) => {
            let r = Reply::Error {
                message: format!("bad request: {e}"),
            };
            wr.write_all(format!("{}\n", serde_json::to_string(&r)?).as_bytes())
                .await?;
            return Ok(());
        }
    };
    tracing::info!(?cmd, "control socket command");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Reply>();
    let job = tokio::task::spawn_blocking(move || {
        let progress_tx = tx.clone();
        let mut progress = move |done, total| {
            let _ = progress_tx.send(Reply::Progress { done, total });
        };
        let reply = match ops::run(&svc, &cmd, &mut progress) {
            Ok(out) => Reply::Done(out),
            Err(e) => Reply::Error {
                message: e.public_message_for_operator(),
            },
        };
        let _ = tx.send(reply);
    });
    while let Some(r) = rx.recv().await {
        wr.write_all(format!("{}\n", serde_json::to_string(&r)?).as_bytes())
            .await?;
    }
    job.await.map_err(Error::internal)?;
    Ok(())
}

/// Sends `cmd` to a running server. `Ok(None)` when no server listens here.
pub fn call(
    data_dir: &Path,
    cmd: &Command,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<Output>> {
    let path = socket_path(data_dir);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(Error::Storage(format!(
                "cannot reach {}: {e}",
                path.display()
            )));
        }
    };
    stream.write_all(format!("{}\n", serde_json::to_string(cmd)?).as_bytes())?;
    for line in BufReader::new(stream).lines() {
        match serde_json::from_str::<Reply>(&line?)? {
            Reply::Progress { done, total } => on_progress(done, total),
            Reply::Done(out) => return Ok(Some(out)),
            Reply::Error { message } => return Err(Error::Conflict(message)),
        }
    }
    Err(Error::internal(
        "the server closed the control socket without an answer",
    ))
}

/// True when a server answers on the data directory's socket.
pub fn server_running(data_dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket_path(data_dir)).is_ok()
}
