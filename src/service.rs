//! The running Gatehouse, independent of HTTP: settings, store, clock, the
//! password hasher and the token signer. Shared by the web layer, the control
//! socket and local CLI commands.

use std::sync::Arc;

use crate::authn::password::Hasher;
use crate::clock::{Clock, Timestamp};
use crate::config::Settings;
use crate::crypto::{self, SecretKey};
use crate::error::{Error, Result};
use crate::store::{Reader, Store, Table};
use crate::tokens::Signer;

pub struct Service {
    pub settings: Settings,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    pub signer: Signer,
    /// HMAC key binding CSRF tokens to a session or a pre-session cookie.
    pub csrf_key: SecretKey,
}

impl Service {
    pub fn open(settings: Settings, clock: Arc<dyn Clock>) -> Result<Service> {
        let now = clock.now();
        let store = Store::open(&settings.data_dir, now)?;
        let hasher = Hasher::new(&settings.password)?;
        let issuer = public_url(&settings);
        let mut tx = store.write()?;
        let signer = Signer::load_or_create(
            &mut tx,
            now,
            issuer,
            settings.tokens.audience.clone(),
            settings.tokens.access_ttl_secs,
        )?;
        let csrf_key = match tx.get::<String>(Table::Secrets, b"csrf_key")? {
            Some(k) => crypto::b64url_decode(&k)
                .and_then(|b| SecretKey::from_slice(&b))
                .ok_or_else(|| Error::Integrity("csrf key".into()))?,
            None => {
                let k = SecretKey::generate()?;
                tx.put(Table::Secrets, b"csrf_key", &crypto::b64url(k.expose()))?;
                k
            }
        };
        tx.commit()?;
        Ok(Service {
            settings,
            store,
            clock,
            hasher,
            signer,
            csrf_key,
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn public_url(&self) -> String {
        public_url(&self.settings)
    }
}

fn public_url(s: &Settings) -> String {
    match &s.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let scheme = if s.tls_enabled() { "https" } else { "http" };
            format!("{scheme}://{}", s.listen)
        }
    }
}
