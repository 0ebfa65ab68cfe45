//! Baselines for scripts/bench.sh: one raw Argon2id hash with the default
//! parameters, and raw RS256 signing with a pre-parsed key. Prints JSON.

use std::time::Instant;

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use gatehouse::authn::password::Hasher;
use gatehouse::config::PasswordSettings;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[allow(clippy::unwrap_used)]
fn main() {
    let hasher = Hasher::new(&PasswordSettings::default()).unwrap();
    // `raw argon2 N`: only N raw hashes, printing the median in ms (for interleaving).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "argon2") {
        let n: usize = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(5);
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            hasher.hash_now(b"violet-harbour-lantern-42").unwrap();
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("{:.3}", median(v));
        return;
    }
    let mut argon = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        hasher.hash_now(b"violet-harbour-lantern-42").unwrap();
        argon.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // The same work through the server's path: the bounded blocking pool.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let phc = hasher.hash_now(b"violet-harbour-lantern-42").unwrap();
    let pw = gatehouse::authn::password::Password::new("violet-harbour-lantern-42");
    let mut pooled = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        assert!(rt.block_on(hasher.verify(&pw, Some(&phc))).unwrap());
        pooled.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut sig = vec![0u8; pair.public_modulus_len()];
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        pair.sign(
            &RSA_PKCS1_SHA256,
            &rng,
            format!("message {i}").as_bytes(),
            &mut sig,
        )
        .unwrap();
    }
    let signs_per_sec = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{{\"argon2_ms_median\": {:.3}, \"argon2_pool_verify_ms_median\": {:.3}, \"rs256_signs_per_sec\": {:.0}}}",
        median(argon),
        median(pooled),
        signs_per_sec
    );
}
