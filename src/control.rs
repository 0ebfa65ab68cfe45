//! The control socket: `gatehouse.sock` in the data directory (0600), through
//! which local admin commands reach a running server — redb allows one process
//! per database file. One JSON request line in; progress lines and one result out.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::error::{Detail, Error, Result};
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
///
/// The socket is bound inside a fresh owner-only (0700) directory, made 0600
/// there and only then renamed into place, so there is no moment at which
/// another user could connect; the umask (process-wide) is left alone.
/// Every connection's peer must run as the server's own user (SO_PEERCRED).
pub fn start(svc: Arc<Service>) -> Result<PathBuf> {
    let path = socket_path(svc.store.dir());
    let listener = bind_private(&path)?;
    let own_uid = rustix::process::getuid().as_raw();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            if let Err(refused) = peer_allowed(&stream, own_uid) {
                tracing::warn!(%refused, "control socket connection refused");
                tokio::spawn(async move {
                    let mut stream = stream;
                    let r = Reply::Error { message: refused };
                    if let Ok(line) = serde_json::to_string(&r) {
                        let _ = stream.write_all(format!("{line}\n").as_bytes()).await;
                    }
                });
                continue;
            }
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

/// Binds `path` without a window: in a new 0700 directory beside it, chmod
/// 0600, then renamed over any stale socket.
fn bind_private(path: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::DirBuilderExt;
    let parent = path
        .parent()
        .ok_or_else(|| Error::Storage(format!("{} has no folder", path.display()).into()))?;
    let nonce = hex::encode(crate::crypto::random_bytes::<6>()?);
    let private = parent.join(format!(".control-{nonce}"));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| {
            Error::Storage(Detail::caused(
                format!("cannot create {}: {e}", private.display()),
                e,
            ))
        })?;
    let inner = private.join(SOCKET_FILE);
    let bound = tokio::net::UnixListener::bind(&inner)
        .map_err(|e| {
            Error::Storage(Detail::caused(
                format!("cannot bind {}: {e}", path.display()),
                e,
            ))
        })
        .and_then(|l| {
            std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&inner, path)?;
            Ok(l)
        });
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&private);
    bound
}

/// The peer must be this server's own user; root is not let in either.
fn peer_allowed(stream: &tokio::net::UnixStream, own_uid: u32) -> std::result::Result<(), String> {
    match stream.peer_cred() {
        Ok(c) if c.uid() == own_uid => Ok(()),
        Ok(c) => Err(format!(
            "the control socket serves only uid {own_uid} (the server's user); this peer is uid {}",
            c.uid()
        )),
        Err(e) => Err(format!("cannot read the peer's credentials: {e}")),
    }
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
    job.await.map_err(Error::internal_source)?;
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
            return Err(Error::Storage(Detail::caused(
                format!("cannot reach {}: {e}", path.display()),
                e,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_owner_only_when_it_appears_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_FILE);
        std::fs::write(&path, b"stale").unwrap();
        let listener = bind_private(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            [std::ffi::OsString::from(SOCKET_FILE)],
            "no helper folder left"
        );
        let client = tokio::net::UnixStream::connect(&path).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let me = rustix::process::getuid().as_raw();
        assert!(peer_allowed(&server, me).is_ok());
        let refused = peer_allowed(&server, me.wrapping_add(1)).unwrap_err();
        assert!(refused.contains(&format!("uid {me}")), "{refused}");
        drop(client);
    }
}
