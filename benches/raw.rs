//! Baselines for scripts/bench.sh: one raw Argon2id hash with the default
//! parameters, and raw RS256 (and ES256, Ed25519) signing with a pre-parsed key; `raw saml`
//! times SAML response verification against raw RSA-2048 verification;
//! `raw xmlbudget` the XML work budget (issue 11): the cost of the most
//! expensive documents that pass the limits against a signed response;
//! `raw xchacha` raw XChaCha20-Poly1305 on 1 KiB and 64 KiB (issue 14).
//! Prints JSON.

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
    // `raw seed DIR KEYS SAS`: fills a stopped server's data directory with API
    // keys and service accounts for the memory figure; prints one key and one
    // service account's credentials as JSON.
    if args.get(1).map(String::as_str) == Some("seed") {
        seed(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap());
        return;
    }
    // `raw dashboard DIR USERS EVENTS`: the console dashboard's figures over
    // USERS users and EVENTS audit events spread over 30 days (issue 12):
    // the old in-handler counting against `overview::overview`.
    if args.get(1).map(String::as_str) == Some("dashboard") {
        dashboard(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap());
        return;
    }
    if args.get(1).map(String::as_str) == Some("xmlbudget") {
        xmlbudget(&args[2], &args[3], &args[4..]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("xchacha") {
        xchacha();
        return;
    }
    if args.get(1).map(String::as_str) == Some("saml") {
        saml(&args[2], &args[3], args[4].parse().unwrap());
        return;
    }
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
    // The same signing on both cores, as the server signs on two workers.
    let n2 = 2000;
    let t2 = Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let mut sig = vec![0u8; pair.public_modulus_len()];
                for i in 0..n2 / 2 {
                    pair.sign(
                        &RSA_PKCS1_SHA256,
                        &rng,
                        format!("m {i}").as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                }
            });
        }
    });
    let signs_per_sec_2 = n2 as f64 / t2.elapsed().as_secs_f64();
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
    // The service-account algorithms, single thread, the same messages.
    let es = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    let t = Instant::now();
    for i in 0..n {
        es.sign(&rng, format!("message {i}").as_bytes()).unwrap();
    }
    let es256_per_sec = n as f64 / t.elapsed().as_secs_f64();
    let ed = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(ed.sign(format!("message {i}").as_bytes()));
    }
    let ed25519_per_sec = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{{\"argon2_ms_median\": {:.3}, \"argon2_pool_verify_ms_median\": {:.3}, \"rs256_signs_per_sec\": {:.0}, \"rs256_signs_per_sec_2_threads\": {:.0}, \"es256_signs_per_sec\": {:.0}, \"ed25519_signs_per_sec\": {:.0}}}",
        median(argon),
        median(pooled),
        signs_per_sec,
        signs_per_sec_2,
        es256_per_sec,
        ed25519_per_sec
    );
}

#[allow(clippy::unwrap_used)]
fn seed(dir: &str, keys: usize, sas: usize) {
    use gatehouse::access::credentials::{self as creds, ApiKey, NewServiceAccount};
    let settings = gatehouse::config::Settings {
        data_dir: dir.into(),
        ..Default::default()
    };
    let svc = gatehouse::service::Service::open(
        settings,
        std::sync::Arc::new(gatehouse::clock::SystemClock),
    )
    .unwrap();
    let by = gatehouse::access::Actor::local("bench");
    let ws = gatehouse::access::workspaces::create(&svc, &by, "bench").unwrap();
    let scopes = vec![
        "read:agents".to_string(),
        "introspect:credentials".to_string(),
    ];
    let app = creds::create_app(&svc, &by, &ws.id, "bench", &scopes[..1]).unwrap();
    let (_, first_key) = creds::create_key(&svc, &by, &app.id, Some("first"), None).unwrap();
    // The rest in batches, straight into the tables (10k commits per figure would take minutes).
    let now = svc.now();
    for chunk in 0..keys.div_ceil(10_000) {
        let mut tx = svc.store.write().unwrap();
        for i in 0..10_000.min(keys - chunk * 10_000) {
            let secret = creds::generate_secret(creds::API_KEY_PREFIX).unwrap();
            let k = ApiKey {
                id: gatehouse::access::new_id("key_").unwrap(),
                app: app.id.clone(),
                workspace: ws.id.clone(),
                name: format!("k{i}"),
                hint: secret[..8].to_string(),
                created_at: now,
                expires_at: None,
                created_by: "bench".into(),
            };
            let hash = gatehouse::crypto::sha256(secret.as_bytes());
            creds::store_key(&mut tx, &hash, &k).unwrap();
        }
        tx.commit().unwrap();
    }
    let mut first_sa = None;
    for i in 0..sas {
        let (sa, secret) = creds::create_service_account(
            &svc,
            &by,
            NewServiceAccount {
                workspace: None,
                name: &format!("sa{i}"),
                description: None,
                scopes: &scopes,
                ip_allowlist: &[],
                ip_mode: Default::default(),
            },
        )
        .unwrap();
        first_sa.get_or_insert((sa.id, secret));
    }
    let (id, secret) = first_sa.unwrap();
    println!(
        "{{\"key\": \"{first_key}\", \"client_id\": \"{id}\", \"client_secret\": \"{secret}\"}}"
    );
}

/// `raw saml RESPONSE.xml CERT.pem SECONDS`: how many times a second one
/// signed SAML response is parsed and every signature in it verified (what
/// the ACS does before its checks), against raw RSA-2048 PKCS#1 SHA-256
/// verifications of one signature, alternating in 0.5 s rounds.
#[allow(clippy::unwrap_used)]
fn saml(response: &str, cert: &str, seconds: f64) {
    use gatehouse::sso::xmldsig;
    let xml = std::fs::read_to_string(response).unwrap();
    let certs = vec![xmldsig::parse_certificate(&std::fs::read_to_string(cert).unwrap()).unwrap()];
    let now = certs[0].not_before + 60;
    let verify_all = || {
        let doc = xmldsig::parse(&xml).unwrap();
        let mut n = 0;
        for el in doc.descendants().filter(|e| {
            e.is_element()
                && e.children()
                    .any(|c| c.is_element() && c.tag_name().name() == "Signature")
        }) {
            xmldsig::verify_enveloped(&doc, el, &certs, false, now, 0).unwrap();
            n += 1;
        }
        n
    };
    let signatures = verify_all();
    // A raw verification with a key of the same size.
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let msg = b"the canonical SignedInfo of a SAML response, more or less this long........";
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
    use aws_lc_rs::signature::KeyPair as _;
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref().to_vec(),
    );
    let (mut n_saml, mut t_saml, mut n_raw, mut t_raw) = (0u64, 0f64, 0u64, 0f64);
    let rounds = (seconds / 0.5).ceil() as usize;
    for _ in 0..rounds {
        let t = Instant::now();
        while t.elapsed().as_secs_f64() < 0.25 {
            verify_all();
            n_saml += 1;
        }
        t_saml += t.elapsed().as_secs_f64();
        let t = Instant::now();
        while t.elapsed().as_secs_f64() < 0.25 {
            public.verify(msg, &sig).unwrap();
            n_raw += 1;
        }
        t_raw += t.elapsed().as_secs_f64();
    }
    let saml_per_s = n_saml as f64 / t_saml;
    let raw_per_s = n_raw as f64 / t_raw;
    println!(
        "{{\"response_bytes\": {}, \"signatures\": {signatures}, \"responses_verified_per_sec\": {saml_per_s:.0}, \"raw_rsa2048_verifies_per_sec\": {raw_per_s:.0}, \"ratio\": {:.3}, \"ratio_per_signature\": {:.3}}}",
        xml.len(),
        saml_per_s / raw_per_s,
        saml_per_s * signatures as f64 / raw_per_s
    );
}

/// Median milliseconds of `f` over about `budget` seconds (at least 5 runs).
#[allow(clippy::unwrap_used)]
fn time_ms(budget: f64, mut f: impl FnMut()) -> f64 {
    let mut v = Vec::new();
    let start = Instant::now();
    while v.len() < 5 || start.elapsed().as_secs_f64() < budget {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(v)
}

/// `raw xmlbudget TYPICAL.xml CERT.pem [OTHER.xml…]`: the shape of each real
/// document (what the limits are measured against); the median time of the
/// ACS's XML work on TYPICAL (budget check, parse, every signature
/// verified); and of each document at the limits (budget check, parse,
/// exclusive C14N of the whole document — the digest work an unsigned
/// document can cause), as a ratio to the typical one; and how long the
/// issue's document takes to be refused.
#[allow(clippy::unwrap_used)]
fn xmlbudget(typical: &str, cert: &str, others: &[String]) {
    use gatehouse::sso::{xml_budget, xmldsig};
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let mut shapes = Vec::new();
    for p in std::iter::once(typical.to_string()).chain(others.iter().cloned()) {
        let s = xml_budget::scan(read(&p).as_bytes(), &xml_budget::UNLIMITED).unwrap();
        let name = std::path::Path::new(&p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        shapes.push(format!(
            "\"{name}\": {{\"bytes\": {}, \"elements\": {}, \"depth\": {}, \"attributes_per_element\": {}, \"attributes\": {}, \"ns_per_element\": {}, \"ns_in_scope\": {}, \"ns_total\": {}}}",
            s.bytes, s.elements, s.depth, s.attributes, s.attributes_total, s.ns_per_element, s.ns_in_scope, s.ns_total
        ));
    }
    let xml = read(typical);
    let certs = vec![xmldsig::parse_certificate(&read(cert)).unwrap()];
    let now = certs[0].not_before + 60;
    let typical_ms = time_ms(2.0, || {
        xml_budget::check(&xml).unwrap();
        let doc = xmldsig::parse(&xml).unwrap();
        for el in doc.descendants().filter(|e| {
            e.is_element()
                && e.children()
                    .any(|c| c.is_element() && c.tag_name().name() == "Signature")
        }) {
            xmldsig::verify_enveloped(&doc, el, &certs, false, now, 0).unwrap();
        }
    });
    let mut worst = Vec::new();
    let mut max_ratio = 0f64;
    for (name, doc) in xml_budget::samples::all() {
        let check_ms = time_ms(1.0, || {
            xml_budget::check(&doc).unwrap();
        });
        let ms = time_ms(2.0, || {
            xml_budget::check(&doc).unwrap();
            let d = xmldsig::parse(&doc).unwrap();
            let c = xmldsig::exc_c14n(&d, d.root_element(), None, xmldsig::C14n::default());
            assert!(c.is_ok_and(|c| !c.is_empty()));
        });
        max_ratio = max_ratio.max(ms / typical_ms);
        worst.push(format!(
            "\"{name}\": {{\"bytes\": {}, \"check_ms\": {check_ms:.3}, \"check_parse_c14n_ms\": {ms:.3}, \"ratio_to_typical\": {:.1}}}",
            doc.len(),
            ms / typical_ms
        ));
    }
    let mut attack = String::from("<r");
    for i in 0..4000 {
        attack.push_str(&format!(" xmlns:a{i}='u'"));
    }
    attack.push('>');
    attack.push_str(&"<b xmlns:c='u'/>".repeat(400));
    attack.push_str("</r>");
    let refuse_ms = time_ms(1.0, || {
        assert!(xml_budget::check(&attack).is_err());
    });
    // What the same document cost before the budget: roxmltree alone, once.
    let t = Instant::now();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 20_000,
        ..Default::default()
    };
    let _ = roxmltree::Document::parse_with_options(&attack, opts);
    let unguarded_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{{\"shapes\": {{{}}}, \"typical_signed_response_ms\": {typical_ms:.3}, \"at_the_limits\": {{{}}}, \"worst_ratio\": {max_ratio:.1}, \"issue_document_refused_ms\": {refuse_ms:.4}, \"issue_document_unguarded_parse_ms\": {unguarded_ms:.0}}}",
        shapes.join(", "),
        worst.join(", ")
    );
}

#[allow(clippy::unwrap_used)]
fn dashboard(dir: &str, users: usize, events: usize) {
    use gatehouse::audit::{self, Filter, NewEvent, Outcome};
    use gatehouse::identity::{self, Email, Role, User, UserId};
    use gatehouse::store::{Reader, Table};
    let settings = gatehouse::config::Settings {
        data_dir: dir.into(),
        ..Default::default()
    };
    let svc = gatehouse::service::Service::open(
        settings,
        std::sync::Arc::new(gatehouse::clock::SystemClock),
    )
    .unwrap();
    let now = svc.now();
    let src = audit::Source::default();
    let mut tx = svc.store.write().unwrap();
    for i in 0..users {
        let u = User {
            id: UserId::generate().unwrap(),
            email: Email::parse(&format!("user{i}@example.com")).unwrap(),
            name: format!("User {i}"),
            password_hash: None,
            role: if i % 20 == 0 { Role::Admin } else { Role::User },
            disabled: i % 7 == 0,
            must_change_password: false,
            created_at: now,
            updated_at: now,
        };
        identity::insert(&svc, &mut tx, &u).unwrap();
    }
    let span = 30 * 86_400;
    for i in 0..events {
        let at = now - span + (span * i as i64) / events.max(1) as i64;
        let ev = if i % 10 == 0 {
            NewEvent::new("auth.login", Outcome::Failure)
        } else {
            NewEvent::new("user.update", Outcome::Success)
        };
        audit::record(&mut tx, at, &src, ev).unwrap();
    }
    tx.commit().unwrap();
    let before = || {
        let r = svc.store.read().unwrap();
        let (all, total) = identity::list(&r, "", 0, usize::MAX).unwrap();
        let security = Filter {
            action: Some("auth.".into()),
            ..Default::default()
        };
        let (recent, _) = audit::query(&r, &security, 0, 10).unwrap();
        let failed = Filter {
            action: Some("auth.login".into()),
            outcome: Some("failure".into()),
            since: Some(gatehouse::clock::rfc3339(svc.now() - 86_400)),
            ..Default::default()
        };
        let (failed_rows, _) = audit::query(&r, &failed, 0, 10_000).unwrap();
        (
            total,
            all.iter().filter(|u| u.disabled).count(),
            all.iter().filter(|u| u.is_admin()).count(),
            failed_rows.len(),
            r.count(Table::Audit).unwrap(),
            recent.len(),
        )
    };
    let after = || {
        let o = gatehouse::overview::overview(&svc).unwrap();
        (
            o.users.total,
            o.users.disabled,
            o.users.admins,
            o.failed_sign_ins,
            o.audit_events,
            o.recent.len(),
        )
    };
    assert_eq!(before(), after(), "the same figures");
    let time = |f: &dyn Fn() -> (usize, usize, usize, usize, u64, usize)| {
        let mut v = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            std::hint::black_box(f());
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        median(v)
    };
    let (b, a) = (time(&before), time(&after));
    println!(
        "{{\"users\": {users}, \"events\": {events}, \"before_ms\": {b:.3}, \"after_ms\": {a:.3}, \"ratio\": {:.1}}}",
        b / a
    );
}

/// Raw XChaCha20-Poly1305 seal and open of 1 KiB and 64 KiB, one thread:
/// the in-process ceiling Transit's HTTP figures are compared with.
#[allow(clippy::unwrap_used)]
fn xchacha() {
    use gatehouse::crypto::{AeadAlg, aead_open, aead_seal};
    let key = [7u8; 32];
    let nonce = [1u8; 24];
    let mut out = serde_json::Map::new();
    for (size, label) in [(1024usize, "1k"), (65536, "64k")] {
        let plain = vec![0x5au8; size];
        let n = if size == 1024 { 200_000 } else { 5_000 };
        let t = Instant::now();
        let mut ct = Vec::new();
        for _ in 0..n {
            ct = aead_seal(AeadAlg::XChaCha20Poly1305, &key, &nonce, b"", &plain).unwrap();
        }
        let enc = n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..n {
            aead_open(AeadAlg::XChaCha20Poly1305, &key, &nonce, b"", &ct).unwrap();
        }
        let dec = n as f64 / t.elapsed().as_secs_f64();
        out.insert(format!("encrypt_{label}_per_sec"), enc.into());
        out.insert(format!("decrypt_{label}_per_sec"), dec.into());
    }
    println!("{}", serde_json::Value::Object(out));
}
