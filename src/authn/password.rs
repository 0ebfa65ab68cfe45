//! Password hashing with Argon2id on a few dedicated threads below the
//! request workers' priority, so a flood of sign-ins never starves the async
//! workers or token checks. The `Password` secret type is `principal`'s
//! (so a user record's input can hold one below `authn`), re-exported here.

use std::sync::{Arc, Mutex};

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::PasswordSettings;
use crate::crypto;
use crate::error::{Error, Result};
pub use crate::principal::Password;

/// Work for the Argon2 threads: a closure given the thread's own working memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

pub struct Hasher {
    params: Params,
    /// To the Argon2 threads (one per permitted concurrent hash): dedicated
    /// threads running below the request workers, each with its own working
    /// memory, reused. Nothing else runs at their priority, so no lock is
    /// ever held by a lowered thread; and a fresh 19 MiB per check would cost
    /// thousands of page faults and, when freed, TLB shoot-downs that
    /// interrupt the request workers on the other cores.
    jobs: std::sync::mpsc::Sender<Job>,
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
            jobs: start_threads(
                n,
                (s.release_memory_after_secs > 0)
                    .then(|| std::time::Duration::from_secs(s.release_memory_after_secs)),
            )?,
            dummy,
        })
    }

    /// Runs `f` on an Argon2 thread (queued while all are busy).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory| {
                let _ = tx.send(f(memory));
            }))
            .map_err(|_| Error::internal("the Argon2 threads have stopped"))?;
        rx.await
            .map_err(|_| Error::internal("an Argon2 computation failed"))
    }

    pub async fn hash(&self, pw: Password) -> Result<String> {
        let params = self.params.clone();
        self.run(move |_| hash_blocking(&params, pw.expose().as_bytes()))
            .await?
    }

    /// True if `pw` matches `phc`. With `None` (unknown user, or no password
    /// set) a dummy hash is checked and the answer is false.
    pub async fn verify(&self, pw: &Password, phc: Option<&str>) -> Result<bool> {
        let (target, real) = match phc {
            Some(h) => (h.to_string(), true),
            None => (self.dummy.clone(), false),
        };
        let pw = pw.clone();
        let ok = self
            .run(move |memory| verify_blocking(memory, pw.expose().as_bytes(), &target))
            .await?;
        Ok(ok && real)
    }

    /// Hash with the configured parameters, synchronously (benchmarks, start-up).
    pub fn hash_now(&self, pw: &[u8]) -> Result<String> {
        hash_blocking(&self.params, pw)
    }
}

/// `n` Argon2 threads taking jobs from one queue; they end when the hasher
/// (the queue's sender) is dropped. A job that panics is caught, so the
/// thread keeps serving (its caller gets an error). A thread that waited
/// `release_after` without a job gives its working memory back (19 MiB
/// with the default parameters); under a steady stream of sign-ins it
/// keeps it, so a flood never pays for the allocation again.
fn start_threads(
    n: usize,
    release_after: Option<std::time::Duration>,
) -> Result<std::sync::mpsc::Sender<Job>> {
    use std::sync::mpsc::RecvTimeoutError;
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n.max(1) {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                below_request_threads();
                let mut memory: Vec<Block> = Vec::new();
                loop {
                    let Ok(r) = rx.lock() else { return };
                    let job = match release_after {
                        Some(d) if !memory.is_empty() => match r.recv_timeout(d) {
                            Ok(j) => Some(j),
                            Err(RecvTimeoutError::Timeout) => None,
                            Err(RecvTimeoutError::Disconnected) => return,
                        },
                        _ => match r.recv() {
                            Ok(j) => Some(j),
                            Err(_) => return,
                        },
                    };
                    drop(r);
                    match job {
                        Some(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                job(&mut memory)
                            }));
                        }
                        // Idle: freed (an mmap of its own, see `working_memory`,
                        // so it leaves the process at once).
                        None => memory = Vec::new(),
                    }
                }
            })
            .map_err(|e| Error::internal_caused("cannot start an Argon2 thread", e))?;
    }
    Ok(tx)
}

/// glibc serves an allocation from its own mapping (returned to the system
/// when freed) only above its mmap threshold, which rises to the size of
/// each such block freed — up to 32 MiB. Reserving more than that (the part
/// beyond `blocks` is never touched, so it costs address space, not memory)
/// keeps the working memory in a mapping of its own, so releasing it always
/// lowers the resident size.
const OWN_MAPPING_BLOCKS: usize = 33 * 1024;

/// Fresh working memory of `blocks` Argon2 blocks (1 KiB each).
fn working_memory(blocks: usize) -> Vec<Block> {
    let mut v = Vec::with_capacity(blocks.max(OWN_MAPPING_BLOCKS));
    v.resize(blocks, Block::default());
    v
}

/// Runs the calling (Argon2) thread at nice 19: under a flood of sign-ins
/// the scheduler then prefers the request workers (a nice-19 thread weighs
/// 15 against a request thread's 1024; nice 10, 110, still let /me's p99
/// double), so token checks keep their latency while Argon2 uses whatever
/// CPU is left. Only the dedicated Argon2 threads are lowered.
fn below_request_threads() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!(error = %e, "could not lower the Argon2 thread's priority");
    }
}

/// Checks `pw` against a PHC string with the thread's working memory (the
/// argon2 crate's own verification, minus the allocation): same algorithm,
/// version, parameters and salt, constant-time comparison of the output.
fn verify_blocking(mem: &mut Vec<Block>, pw: &[u8], phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&h.salt, &h.hash) else {
        return false;
    };
    let (Ok(alg), Ok(params)) = (
        Algorithm::try_from(h.algorithm.as_str()),
        Params::try_from(&h),
    ) else {
        return false;
    };
    let Ok(version) = h.version.map_or(Ok(Version::default()), Version::try_from) else {
        return false;
    };
    let blocks = params.block_count();
    // Grown for a hash of higher cost (an older or imported one). Between
    // checks the memory holds the last check's blocks (never the password);
    // the next check overwrites them.
    if mem.len() < blocks {
        *mem = Vec::new();
        *mem = working_memory(blocks);
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(alg, version, params)
        .hash_password_into_with_memory(pw, salt, &mut out, &mut mem[..blocks])
        .is_ok()
        && crypto::ct_eq(&out, expected.as_bytes())
}

fn hash_blocking(params: &Params, pw: &[u8]) -> Result<String> {
    let salt = crypto::random_bytes::<16>()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    PasswordHasher::<PasswordHash>::hash_password_with_salt(&argon, pw, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal_caused("argon2", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn light() -> PasswordSettings {
        PasswordSettings {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            hash_concurrency: 2,
            ..PasswordSettings::default()
        }
    }

    #[tokio::test]
    async fn pooled_verification_matches_the_crate_and_refuses_the_rest() {
        let h = Hasher::new(&light()).unwrap();
        let right = Password::new("violet-harbour-lantern-42");
        let phc = h.hash(right.clone()).await.unwrap();
        for _ in 0..3 {
            assert!(h.verify(&right, Some(&phc)).await.unwrap());
            assert!(
                !h.verify(&Password::new("violet-harbour-lantern-43"), Some(&phc))
                    .await
                    .unwrap()
            );
        }
        // A hash made elsewhere with a larger cost (its buffer is replaced), and
        // one of argon2i: each verified with its own parameters.
        for (alg, m) in [(Algorithm::Argon2id, 4096), (Algorithm::Argon2i, 2048)] {
            let params = Params::new(m, 2, 1, None).unwrap();
            let argon = Argon2::new(alg, Version::V0x13, params);
            let other = PasswordHasher::<PasswordHash>::hash_password_with_salt(
                &argon,
                b"amber-meadow-river-77",
                b"0123456789abcdef",
            )
            .unwrap()
            .to_string();
            assert!(
                h.verify(&Password::new("amber-meadow-river-77"), Some(&other))
                    .await
                    .unwrap()
            );
            assert!(!h.verify(&right, Some(&other)).await.unwrap());
            // A tampered output no longer verifies.
            let mut bad = other.clone();
            let last = bad.pop().unwrap();
            bad.push(if last == 'A' { 'B' } else { 'A' });
            assert!(
                !h.verify(&Password::new("amber-meadow-river-77"), Some(&bad))
                    .await
                    .unwrap()
            );
        }
        assert!(!h.verify(&right, Some("not a hash")).await.unwrap());
        assert!(
            !h.verify(&right, None).await.unwrap(),
            "the dummy never says yes"
        );
    }
}
