//! Password hashing with Argon2id on a bounded blocking pool, so a flood of
//! sign-ins never starves the async workers; and the `Password` secret type.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::config::PasswordSettings;
use crate::crypto;
use crate::error::{Error, Result};

/// A password in memory: wiped on drop, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(Password::new)
    }
}

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(Zeroizing::new(s.into()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password: unknown users are checked against it
    /// so they cost the same time as a wrong password.
    dummy: String,
}

impl Hasher {
    pub fn new(s: &PasswordSettings) -> Result<Hasher> {
        let params = Params::new(
            s.argon2_memory_kib,
            s.argon2_iterations,
            s.argon2_parallelism,
            None,
        )
        .map_err(|e| Error::invalid("password", format!("argon2 parameters: {e}")))?;
        let n = if s.hash_concurrency == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            s.hash_concurrency
        };
        let dummy = hash_blocking(&params, crypto::random_token()?.as_bytes())?;
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(n)),
            dummy,
        })
    }

    pub async fn hash(&self, pw: Password) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            below_request_threads();
            hash_blocking(&params, pw.expose().as_bytes())
        })
        .await
        .map_err(Error::internal)?
    }

    /// True if `pw` matches `phc`. With `None` (unknown user, or no password
    /// set) a dummy hash is checked and the answer is false.
    pub async fn verify(&self, pw: &Password, phc: Option<&str>) -> Result<bool> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let (target, real) = match phc {
            Some(h) => (h.to_string(), true),
            None => (self.dummy.clone(), false),
        };
        let pw = pw.clone();
        let ok = tokio::task::spawn_blocking(move || -> bool {
            below_request_threads();
            let Ok(parsed) = PasswordHash::new(&target) else {
                return false;
            };
            Argon2::default()
                .verify_password(pw.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .map_err(Error::internal)?;
        Ok(ok && real)
    }

    /// Hash with the configured parameters, synchronously (benchmarks, start-up).
    pub fn hash_now(&self, pw: &[u8]) -> Result<String> {
        hash_blocking(&self.params, pw)
    }
}

/// Runs the calling (blocking-pool) thread at nice 10, once per thread: under
/// a flood of sign-ins the scheduler then prefers the request workers, so
/// token checks keep their latency while Argon2 uses whatever CPU is left.
/// (Raising a thread's priority again needs privileges, so it stays lowered;
/// the pool's other occasional tasks are background work too.)
fn below_request_threads() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    LOWERED.with(|l| {
        if !l.get() {
            l.set(true);
            let tid = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(tid), 10) {
                tracing::debug!(error = %e, "could not lower the Argon2 thread's priority");
            }
        }
    });
}

fn hash_blocking(params: &Params, pw: &[u8]) -> Result<String> {
    let salt = crypto::random_bytes::<16>()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    PasswordHasher::<PasswordHash>::hash_password_with_salt(&argon, pw, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}
