//! Access tokens: JWTs signed with keys parsed once and kept in memory —
//! RS256 for users, RS256, ES256 or EdDSA for service accounts
//! (`tokens.service_account_algorithm`) — verified only with the algorithm
//! of the key their `kid` names. The key pairs are stored sealed in the
//! `secrets` table.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Detail, Error, Result};
use crate::principal::User;
use crate::principal::WorkspaceId;
use crate::store::{Reader, Table, WriteTx};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Client-credentials tokens: the service account, its workspace and the
    /// granted scopes (space-separated catalogue names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub workspace: Option<WorkspaceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Present (true) when the policy demands MFA the user has not set up:
    /// the token opens MFA enrollment only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_enroll: bool,
    /// When the user last proved who they are (OIDC `auth_time`); refresh keeps it.
    #[serde(default)]
    pub auth_time: i64,
    /// The user's tokens-valid-after epoch when this token was signed (see
    /// `ValidAfter`): a token whose epoch is below the user's current one
    /// was ended. Absent (0) in tokens signed before this claim existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tva: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A user's "tokens valid after" mark: every access token signed for the
/// user before `at` (more exactly: carrying an epoch below `epoch`) is
/// refused. Moved by a password change or reset, ending the user's sessions,
/// disabling, an MFA reset and a policy change that confines the user. An
/// epoch rather than a bare time, so a token signed in the same second as
/// the cut is still told apart from one signed just after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidAfter {
    pub at: Timestamp,
    pub epoch: u64,
}

pub type ValidAfterCache = crate::store::TableCache<crate::principal::UserId, ValidAfter>;

/// This module's state in `Service` (`svc.tokens`): users' tokens-valid-after
/// marks, absent ones included (see `valid_after_cached`).
pub struct Cache {
    valid_after: ValidAfterCache,
}

impl Cache {
    pub(crate) fn new() -> Cache {
        Cache {
            valid_after: crate::store::TableCache::new(
                Table::TokensValidAfter,
                crate::principal::USER_CACHE_MAX,
            ),
        }
    }
}

/// The mark in `r` (a sign-in's write transaction reads it here, so the token
/// it signs carries the epoch current in that transaction).
pub fn valid_after(r: &impl Reader, user: &crate::principal::UserId) -> Result<ValidAfter> {
    Ok(
        r.get::<ValidAfter>(Table::TokensValidAfter, user.as_str().as_bytes())?
            .unwrap_or_default(),
    )
}

/// The mark through the service's cache (no store read on the hot path while
/// the table has not committed a change; absent marks are kept too).
pub fn valid_after_cached(
    svc: &crate::service::Service,
    user: &crate::principal::UserId,
) -> Result<ValidAfter> {
    Ok(svc
        .tokens
        .valid_after
        .get_or_load(&svc.store, user, |r| valid_after(r, user).map(Some))?
        .map(|v| *v)
        .unwrap_or_default())
}

/// Ends every access token signed for `user` so far, in `tx`. The table is
/// one of the reused answers' dependencies (`web::verify_cache`), so the next
/// check of any such token is refused.
pub fn end_user_tokens(
    tx: &mut WriteTx<'_>,
    user: &crate::principal::UserId,
    now: Timestamp,
) -> Result<()> {
    let cur = valid_after(tx, user)?;
    let next = ValidAfter {
        at: now,
        epoch: cur.epoch.saturating_add(1),
    };
    tx.put(Table::TokensValidAfter, user.as_str().as_bytes(), &next)
}

/// A token-signing key's algorithm, fixed for the key's life: a token is
/// verified only with the algorithm its key was made for. User tokens are
/// always RS256; service-account tokens use
/// `tokens.service_account_algorithm`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSA-2048, PKCS#1 v1.5 with SHA-256.
    #[default]
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    /// The JOSE name (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// From the JOSE name, exactly as written.
    pub fn from_name(s: &str) -> Option<SigningAlg> {
        SigningAlg::ALL.into_iter().find(|a| a.name() == s)
    }

    fn jwt(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// Absent in keys stored before other algorithms existed: RS256.
    #[serde(default)]
    alg: SigningAlg,
    pkcs8: String,
    created_at: Timestamp,
    /// Set when a newer key took over: kept in the JWKS until then, so tokens
    /// it signed stay verifiable until they expire.
    #[serde(default)]
    retire_at: Option<Timestamp>,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredKeys {
    /// The RS256 key signing user tokens (and service-account tokens when
    /// their algorithm is RS256).
    active: String,
    /// The key signing service-account tokens when their algorithm is not
    /// RS256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_active: Option<String>,
    keys: Vec<StoredKey>,
}

enum Pair {
    Rsa(KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct LoadedKey {
    kid: String,
    alg: SigningAlg,
    created_at: Timestamp,
    retire_at: Option<Timestamp>,
    pair: Pair,
    /// The JWS header of tokens it signs, base64url, followed by a dot.
    header: String,
    /// The public key as a JWK.
    jwk: serde_json::Value,
    decoding: DecodingKey,
}

/// What the console shows of a token-signing key (public facts only).
pub struct SigningKeyInfo {
    pub kid: String,
    pub algorithm: &'static str,
    pub created_at: Timestamp,
    /// When it leaves the JWKS (set once a newer key took over).
    pub retire_at: Option<Timestamp>,
    pub active: bool,
}

pub struct Signer {
    keys: Vec<LoadedKey>,
    /// The RS256 key signing user tokens.
    active: usize,
    /// The key signing service-account tokens (`active` when RS256).
    service: usize,
    service_alg: SigningAlg,
    active_created_at: Timestamp,
    issuer: String,
    audience: String,
    ttl: i64,
    jwks: serde_json::Value,
}

const SECRET_KEY: &[u8] = b"jwt_signing_keys";

fn load(k: &StoredKey) -> Result<LoadedKey> {
    let der = crypto::b64url_decode(&k.pkcs8)
        .ok_or_else(|| Error::Integrity("signing key encoding".into()))?;
    let bad_key = |e: aws_lc_rs::error::KeyRejected| {
        Error::Integrity(Detail::caused(format!("signing key: {e}"), e))
    };
    let jwt_err =
        |e: jsonwebtoken::errors::Error| Error::Internal(Detail::caused(e.to_string(), e));
    let (pair, mut jwk, decoding) = match k.alg {
        SigningAlg::RS256 => {
            let pair = KeyPair::from_pkcs8(&der).map_err(bad_key)?;
            let public = pair.public_key();
            let n = crypto::b64url(public.modulus().big_endian_without_leading_zero());
            let e = crypto::b64url(public.exponent().big_endian_without_leading_zero());
            let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(jwt_err)?;
            let jwk = serde_json::json!({"kty": "RSA", "n": n, "e": e});
            (Pair::Rsa(pair), jwk, decoding)
        }
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                .map_err(bad_key)?;
            // Uncompressed point: 0x04 || x || y.
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(Error::Integrity("signing key: not a P-256 point".into()));
            }
            let (x, y) = (crypto::b64url(&point[1..33]), crypto::b64url(&point[33..]));
            let decoding = DecodingKey::from_ec_components(&x, &y).map_err(jwt_err)?;
            let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
            (Pair::Ec(pair), jwk, decoding)
        }
        SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(bad_key)?;
            let x = crypto::b64url(pair.public_key().as_ref());
            let decoding = DecodingKey::from_ed_components(&x).map_err(jwt_err)?;
            let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x});
            (Pair::Ed(pair), jwk, decoding)
        }
    };
    jwk["use"] = "sig".into();
    jwk["alg"] = k.alg.name().into();
    jwk["kid"] = k.kid.as_str().into();
    let header = serde_json::json!({"alg": k.alg.name(), "typ": "JWT", "kid": k.kid});
    let mut header = crypto::b64url(&serde_json::to_vec(&header)?);
    header.push('.');
    Ok(LoadedKey {
        kid: k.kid.clone(),
        alg: k.alg,
        created_at: k.created_at,
        retire_at: k.retire_at,
        pair,
        header,
        jwk,
        decoding,
    })
}

/// Makes `stored` match the configured service-account algorithm: a key of
/// that algorithm (made now when there is none), or none besides RS256. A
/// service key no longer used stays published until its last token expires.
/// Returns whether anything changed.
fn reconcile(
    stored: &mut StoredKeys,
    service_alg: SigningAlg,
    now: Timestamp,
    ttl: i64,
) -> Result<bool> {
    let current = stored
        .service_active
        .as_ref()
        .and_then(|kid| stored.keys.iter().find(|k| &k.kid == kid))
        .map(|k| k.alg);
    if current == Some(service_alg) || (current.is_none() && service_alg == SigningAlg::RS256) {
        return Ok(false);
    }
    if let Some(kid) = stored.service_active.take()
        && let Some(k) = stored.keys.iter_mut().find(|k| k.kid == kid)
        && k.retire_at.is_none()
    {
        k.retire_at = Some(now + ttl);
    }
    if service_alg != SigningAlg::RS256 {
        let k = new_key(service_alg, now)?;
        stored.service_active = Some(k.kid.clone());
        stored.keys.push(k);
    }
    Ok(true)
}

impl Signer {
    /// Loads the signing keys, generating the first RSA-2048 key on first
    /// start, and a key for `service_alg` when service-account tokens use
    /// another algorithm and it has none yet.
    pub fn load_or_create(
        tx: &mut WriteTx<'_>,
        now: Timestamp,
        issuer: String,
        audience: String,
        ttl: i64,
        service_alg: SigningAlg,
    ) -> Result<Signer> {
        let (mut stored, mut changed) = match tx.get::<StoredKeys>(Table::Secrets, SECRET_KEY)? {
            Some(s) => (s, false),
            None => {
                let k = new_key(SigningAlg::RS256, now)?;
                let s = StoredKeys {
                    active: k.kid.clone(),
                    service_active: None,
                    keys: vec![k],
                };
                (s, true)
            }
        };
        changed |= reconcile(&mut stored, service_alg, now, ttl)?;
        if changed {
            tx.put(Table::Secrets, SECRET_KEY, &stored)?;
        }
        Signer::from_stored(&stored, issuer, audience, ttl)
    }

    fn from_stored(
        stored: &StoredKeys,
        issuer: String,
        audience: String,
        ttl: i64,
    ) -> Result<Signer> {
        let keys = stored.keys.iter().map(load).collect::<Result<Vec<_>>>()?;
        let active = keys
            .iter()
            .position(|k| k.kid == stored.active && k.alg == SigningAlg::RS256)
            .ok_or_else(|| Error::Integrity("no active signing key".into()))?;
        let service = match &stored.service_active {
            Some(kid) => keys
                .iter()
                .position(|k| &k.kid == kid)
                .ok_or_else(|| Error::Integrity("no active service-account signing key".into()))?,
            None => active,
        };
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()
        });
        Ok(Signer {
            active_created_at: keys[active].created_at,
            service_alg: keys[service].alg,
            keys,
            active,
            service,
            issuer,
            audience,
            ttl,
            jwks,
        })
    }

    /// Makes new keys the active ones (RS256, and the service-account
    /// algorithm's when it is another), keeps the previous ones published
    /// until their last token expires, and drops keys past that point.
    /// Returns the new signer (the caller swaps it in after committing) and
    /// the new RS256 key's id.
    pub fn rotate(&self, tx: &mut WriteTx<'_>, now: Timestamp) -> Result<(Signer, String)> {
        let mut stored: StoredKeys = tx
            .get(Table::Secrets, SECRET_KEY)?
            .ok_or_else(|| Error::Integrity("signing keys missing".into()))?;
        let retire = now + self.ttl;
        for k in &mut stored.keys {
            if k.retire_at.is_none() {
                k.retire_at = Some(retire);
            }
        }
        stored.keys.retain(|k| k.retire_at.is_none_or(|r| r > now));
        let rsa = new_key(SigningAlg::RS256, now)?;
        let kid = rsa.kid.clone();
        stored.active = kid.clone();
        stored.keys.push(rsa);
        stored.service_active = None;
        if self.service_alg != SigningAlg::RS256 {
            let k = new_key(self.service_alg, now)?;
            stored.service_active = Some(k.kid.clone());
            stored.keys.push(k);
        }
        tx.put(Table::Secrets, SECRET_KEY, &stored)?;
        let s = Signer::from_stored(
            &stored,
            self.issuer.clone(),
            self.audience.clone(),
            self.ttl,
        )?;
        Ok((s, kid))
    }

    /// When the active key was made (for scheduled rotation).
    pub fn active_created_at(&self) -> Timestamp {
        self.active_created_at
    }

    /// The published keys, newest first.
    pub fn key_info(&self) -> Vec<SigningKeyInfo> {
        let mut v: Vec<SigningKeyInfo> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| SigningKeyInfo {
                kid: k.kid.clone(),
                algorithm: k.alg.name(),
                created_at: k.created_at,
                retire_at: k.retire_at,
                active: i == self.active || i == self.service,
            })
            .collect();
        v.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        v
    }

    /// The key id signing user tokens (RS256).
    pub fn active_kid(&self) -> &str {
        &self.keys[self.active].kid
    }

    /// The key id signing service-account tokens, and its algorithm.
    pub fn service_key(&self) -> (&str, SigningAlg) {
        let k = &self.keys[self.service];
        (&k.kid, k.alg)
    }

    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Signs a client-credentials token for a service account, carrying the
    /// account's tokens-valid-after `epoch` (`ServiceAccount::tokens_epoch`),
    /// with the service-account key (`tokens.service_account_algorithm`).
    pub fn sign_client(
        &self,
        client_id: &str,
        workspace: Option<&WorkspaceId>,
        scope: String,
        now: Timestamp,
        epoch: u64,
    ) -> Result<(String, Timestamp)> {
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: client_id.to_string(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl,
            jti: hex::encode(crypto::random_bytes::<16>()?),
            email: String::new(),
            roles: Vec::new(),
            client_id: Some(client_id.to_string()),
            workspace: workspace.cloned(),
            scope: Some(scope),
            mfa_enroll: false,
            auth_time: now,
            tva: epoch,
        };
        self.sign_claims(&self.keys[self.service], &claims)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs an access token for `user` carrying its tokens-valid-after
    /// `epoch` (read in the transaction that issues it); returns it with its expiry.
    pub fn sign(
        &self,
        user: &User,
        now: Timestamp,
        mfa_enroll: bool,
        auth_time: Timestamp,
        epoch: u64,
    ) -> Result<(String, Timestamp)> {
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: user.id.as_str().to_string(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl,
            jti: hex::encode(crypto::random_bytes::<16>()?),
            email: user.email.as_str().to_string(),
            roles: vec![user.role.as_str().to_string()],
            client_id: None,
            workspace: None,
            scope: None,
            mfa_enroll,
            auth_time,
            tva: epoch,
        };
        self.sign_claims(&self.keys[self.active], &claims)
    }

    fn sign_claims(&self, key: &LoadedKey, claims: &Claims) -> Result<(String, Timestamp)> {
        let mut msg = String::with_capacity(640);
        msg.push_str(&key.header);
        msg.push_str(&crypto::b64url(&serde_json::to_vec(claims)?));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let failed = |_: aws_lc_rs::error::Unspecified| Error::internal("token signing failed");
        let sig = match &key.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, msg.as_bytes(), &mut sig)
                    .map_err(failed)?;
                sig
            }
            Pair::Ec(pair) => pair
                .sign(&rng, msg.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(msg.as_bytes()).as_ref().to_vec(),
        };
        msg.push('.');
        msg.push_str(&crypto::b64url(&sig));
        Ok((msg, claims.exp))
    }

    /// Verifies signature (a known `kid`, with exactly that key's algorithm),
    /// issuer, audience and expiry against our clock.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims> {
        let bad = |why: &str| Error::Unauthenticated(format!("Invalid access token: {why}."));
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        if !SigningAlg::ALL.iter().any(|a| a.jwt() == header.alg) {
            return Err(bad("algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| bad("unknown key id"))?;
        // A key verifies only the algorithm it was made for: an RS256 header
        // naming an Ed25519 key (or the reverse) is refused before any check.
        let alg = key.alg.jwt();
        if header.alg != alg {
            return Err(bad("algorithm not allowed"));
        }
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against the injected clock.
        v.validate_exp = false;
        v.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => bad("bad signature"),
                K::InvalidIssuer => bad("wrong issuer"),
                K::InvalidAudience => bad("wrong audience"),
                K::InvalidAlgorithm => bad("algorithm not allowed"),
                _ => bad("malformed"),
            }
        })?;
        if data.claims.exp <= now {
            return Err(bad("expired"));
        }
        if data.claims.iat > now + 60 {
            return Err(bad("issued in the future"));
        }
        Ok(data.claims)
    }

    /// The public keys as a JWK Set: every key still published, each with
    /// its `alg`.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// The active public key as PKCS#1 DER (tests use it to forge HS256 tokens).
    pub fn public_key_der(&self) -> Vec<u8> {
        match &self.keys[self.active].pair {
            Pair::Rsa(p) => p.public_key().as_ref().to_vec(),
            Pair::Ec(p) => p.public_key().as_ref().to_vec(),
            Pair::Ed(p) => p.public_key().as_ref().to_vec(),
        }
    }
}

/// A new key of `alg` (RSA-2048, P-256 or Ed25519), stored as PKCS#8.
fn new_key(alg: SigningAlg, now: Timestamp) -> Result<StoredKey> {
    let failed =
        |_: aws_lc_rs::error::Unspecified| Error::internal("signing key generation failed");
    let (der, public): (Vec<u8>, Vec<u8>) = match alg {
        SigningAlg::RS256 => {
            let pair = KeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
            let der = pair.as_der().map_err(failed)?;
            (der.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
        }
        SigningAlg::ES256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
            let der = pair.to_pkcs8v1().map_err(failed)?;
            (der.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
        }
        SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(failed)?;
            let der = pair.to_pkcs8().map_err(failed)?;
            (der.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
        }
    };
    Ok(StoredKey {
        kid: hex::encode(&crypto::sha256(&public)[..8]),
        alg,
        pkcs8: crypto::b64url(&der),
        created_at: now,
        retire_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://auth.example.com";
    const AUD: &str = "agent-platform";
    const NOW: Timestamp = 1_800_000_000;

    fn keys(n: usize) -> StoredKeys {
        let mut s = StoredKeys::default();
        for _ in 0..n {
            let k = new_key(SigningAlg::RS256, NOW).unwrap();
            s.active = k.kid.clone();
            s.keys.push(k);
        }
        s
    }

    /// One RS256 key for users and one `alg` key for service accounts.
    fn keys_with(alg: SigningAlg) -> StoredKeys {
        let mut s = keys(1);
        let changed = reconcile(&mut s, alg, NOW, 900).unwrap();
        assert_eq!(changed, alg != SigningAlg::RS256);
        s
    }

    fn signer(s: &StoredKeys, iss: &str, aud: &str) -> Signer {
        Signer::from_stored(s, iss.into(), aud.into(), 900).unwrap()
    }

    fn refused(r: Result<Claims>) -> String {
        match r {
            Err(Error::Unauthenticated(m)) => m,
            other => format!("not refused as unauthenticated: {other:?}"),
        }
    }

    /// `token` with its header (and nothing else) replaced.
    fn with_header(token: &str, header: serde_json::Value) -> String {
        let rest = token.split_once('.').map(|(_, r)| r).unwrap_or_default();
        format!(
            "{}.{rest}",
            crypto::b64url(&serde_json::to_vec(&header).unwrap())
        )
    }

    #[test]
    fn a_signed_token_verifies_with_its_claims() {
        let s = signer(&keys(1), ISS, AUD);
        // The claim is read back as stored (no format check), as from a record.
        let ws: WorkspaceId = serde_json::from_value("ws_1".into()).unwrap();
        let (token, exp) = s
            .sign_client("sa_1", Some(&ws), "read:agents".into(), NOW, 0)
            .unwrap();
        assert_eq!(exp, NOW + 900);
        let c = s.verify(&token, NOW).unwrap();
        assert_eq!(
            (c.iss.as_str(), c.aud.as_str(), c.sub.as_str()),
            (ISS, AUD, "sa_1")
        );
        assert_eq!((c.iat, c.exp, c.auth_time), (NOW, NOW + 900, NOW));
        assert_eq!(c.client_id.as_deref(), Some("sa_1"));
        assert_eq!(c.workspace.as_ref().map(WorkspaceId::as_str), Some("ws_1"));
        assert_eq!(c.scope.as_deref(), Some("read:agents"));
        assert_eq!(c.jti.len(), 32);
        assert!(c.email.is_empty() && c.roles.is_empty() && !c.mfa_enroll && c.tva == 0);
        let (again, _) = s.sign_client("sa_1", None, String::new(), NOW, 0).unwrap();
        assert_ne!(s.verify(&again, NOW).unwrap().jti, c.jti);
    }

    #[test]
    fn a_token_ends_at_its_expiry_and_is_refused_from_the_future() {
        let s = signer(&keys(1), ISS, AUD);
        let (token, exp) = s.sign_client("sa_1", None, String::new(), NOW, 0).unwrap();
        assert!(s.verify(&token, exp - 1).is_ok());
        assert_eq!(
            refused(s.verify(&token, exp)),
            "Invalid access token: expired."
        );
        // Signed more than a minute ahead of our clock.
        assert!(s.verify(&token, NOW - 60).is_ok());
        assert_eq!(
            refused(s.verify(&token, NOW - 61)),
            "Invalid access token: issued in the future."
        );
    }

    #[test]
    fn another_audience_or_issuer_is_refused() {
        let k = keys(1);
        let (token, _) = signer(&k, ISS, "someone-else")
            .sign_client("sa_1", None, String::new(), NOW, 0)
            .unwrap();
        assert_eq!(
            refused(signer(&k, ISS, AUD).verify(&token, NOW)),
            "Invalid access token: wrong audience."
        );
        let (token, _) = signer(&k, "https://evil.example.com", AUD)
            .sign_client("sa_1", None, String::new(), NOW, 0)
            .unwrap();
        assert_eq!(
            refused(signer(&k, ISS, AUD).verify(&token, NOW)),
            "Invalid access token: wrong issuer."
        );
    }

    #[test]
    fn a_token_naming_another_keys_kid_is_refused() {
        let k = keys(2);
        let (a, b) = (k.keys[0].kid.clone(), k.keys[1].kid.clone());
        assert_eq!(k.active, b);
        let s = signer(&k, ISS, AUD);
        let (token, _) = s.sign_client("sa_1", None, String::new(), NOW, 0).unwrap();
        assert!(s.verify(&token, NOW).is_ok());
        // Signed by key b, claiming to be key a's: checked against a, it fails.
        let moved = with_header(
            &token,
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": a}),
        );
        assert_eq!(
            refused(s.verify(&moved, NOW)),
            "Invalid access token: bad signature."
        );
        let unknown = with_header(
            &token,
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "nope"}),
        );
        assert_eq!(
            refused(s.verify(&unknown, NOW)),
            "Invalid access token: unknown key id."
        );
        let no_kid = with_header(&token, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(
            refused(s.verify(&no_kid, NOW)),
            "Invalid access token: no key id."
        );
        let hs = with_header(
            &token,
            serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": b}),
        );
        assert_eq!(
            refused(s.verify(&hs, NOW)),
            "Invalid access token: algorithm not allowed."
        );
        // A signer holding only key a does not know key b.
        let only_a = StoredKeys {
            active: a.clone(),
            service_active: None,
            keys: vec![StoredKey {
                kid: a,
                alg: SigningAlg::RS256,
                pkcs8: k.keys[0].pkcs8.clone(),
                created_at: NOW,
                retire_at: None,
            }],
        };
        assert_eq!(
            refused(signer(&only_a, ISS, AUD).verify(&token, NOW)),
            "Invalid access token: unknown key id."
        );
    }

    #[test]
    fn after_a_rotation_old_tokens_verify_until_their_key_retires() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), NOW).unwrap();
        let mut tx = store.write().unwrap();
        let s =
            Signer::load_or_create(&mut tx, NOW, ISS.into(), AUD.into(), 900, SigningAlg::RS256)
                .unwrap();
        let old_kid = s.active_kid().to_string();
        let (old, _) = s.sign_client("sa_1", None, String::new(), NOW, 0).unwrap();
        let (s2, new_kid) = s.rotate(&mut tx, NOW + 10).unwrap();
        tx.commit().unwrap();
        assert_ne!(new_kid, old_kid);
        assert_eq!(s2.active_kid(), new_kid);
        assert_eq!(s2.jwks()["keys"].as_array().map(Vec::len), Some(2));
        assert!(s2.verify(&old, NOW + 20).is_ok());
        let (new, _) = s2
            .sign_client("sa_1", None, String::new(), NOW + 20, 0)
            .unwrap();
        assert!(s2.verify(&new, NOW + 20).is_ok());
        // The next rotation, past the old key's retirement, drops it.
        let mut tx = store.write().unwrap();
        let (s3, _) = s2.rotate(&mut tx, NOW + 10 + 901).unwrap();
        tx.commit().unwrap();
        assert_eq!(s3.jwks()["keys"].as_array().map(Vec::len), Some(2));
        assert!(!s3.jwks().to_string().contains(&old_kid));
    }

    /// Each algorithm signs and verifies; a token is checked only with the
    /// algorithm of the key its `kid` names.
    #[test]
    fn each_service_algorithm_signs_and_keys_keep_their_algorithm() {
        for alg in SigningAlg::ALL {
            let k = keys_with(alg);
            let s = signer(&k, ISS, AUD);
            let (token, _) = s.sign_client("sa_1", None, String::new(), NOW, 0).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, alg.jwt());
            assert_eq!(s.verify(&token, NOW).unwrap().sub, "sa_1");
            assert_eq!(s.service_key().1, alg);
            // User tokens stay RS256, with the RS256 key.
            let user = jsonwebtoken::decode_header(user_token(&s)).unwrap();
            assert_eq!(
                (user.alg, user.kid.as_deref()),
                (Algorithm::RS256, Some(s.active_kid()))
            );
            let published: Vec<&str> = s.jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["alg"].as_str().unwrap())
                .collect();
            if alg == SigningAlg::RS256 {
                assert_eq!(published, ["RS256"]);
            } else {
                assert_eq!(published, ["RS256", alg.name()]);
            }
        }
    }

    fn user_token(s: &Signer) -> String {
        let u = User {
            id: crate::identity::UserId::generate().unwrap(),
            email: crate::identity::Email::parse("u@example.com").unwrap(),
            name: String::new(),
            password_hash: None,
            role: crate::principal::Role::User,
            disabled: false,
            created_at: 0,
            updated_at: 0,
            must_change_password: false,
        };
        s.sign(&u, NOW, false, NOW, 0).unwrap().0
    }

    /// The algorithm-confusion attacks: a header naming a key with another
    /// algorithm than the key's, whichever way round, never verifies.
    #[test]
    fn a_header_naming_another_algorithm_than_its_keys_is_refused() {
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA] {
            let k = keys_with(alg);
            let s = signer(&k, ISS, AUD);
            let (service, _) = s.sign_client("sa_1", None, String::new(), NOW, 0).unwrap();
            let (skid, _) = s.service_key();
            let rsa_kid = s.active_kid().to_string();
            let user = user_token(&s);
            let cases = [
                // The service key's token claiming RS256 (same key id).
                with_header(
                    &service,
                    serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": skid}),
                ),
                // A user's RS256 token claiming to be the other algorithm's.
                with_header(
                    &user,
                    serde_json::json!({"alg": alg.name(), "typ": "JWT", "kid": rsa_kid}),
                ),
                // A user's RS256 token sent to the other key, as RS256.
                with_header(
                    &user,
                    serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": skid}),
                ),
                // The service token naming the RSA key under its own algorithm.
                with_header(
                    &service,
                    serde_json::json!({"alg": alg.name(), "typ": "JWT", "kid": rsa_kid}),
                ),
            ];
            for forged in cases {
                assert_eq!(
                    refused(s.verify(&forged, NOW)),
                    "Invalid access token: algorithm not allowed.",
                    "{alg:?}"
                );
            }
            // The right header but the other algorithm's key id of the same
            // type is a bad signature (ES256 token under another ES256 key).
            let other = signer(&keys_with(alg), ISS, AUD);
            let (foreign, _) = other
                .sign_client("sa_1", None, String::new(), NOW, 0)
                .unwrap();
            let moved = with_header(
                &foreign,
                serde_json::json!({"alg": alg.name(), "typ": "JWT", "kid": skid}),
            );
            assert_eq!(
                refused(s.verify(&moved, NOW)),
                "Invalid access token: bad signature."
            );
            // HMAC with the public key as the secret, on the service key.
            let hs = with_header(
                &service,
                serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": skid}),
            );
            assert_eq!(
                refused(s.verify(&hs, NOW)),
                "Invalid access token: algorithm not allowed."
            );
        }
    }

    /// Switching the service-account algorithm makes a key for the new one
    /// and keeps the old one published until its tokens expire; rotation
    /// renews both; switching back to RS256 retires the other key.
    #[test]
    fn rotation_and_switching_cover_every_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), NOW).unwrap();
        let open = |alg: SigningAlg, at: Timestamp| {
            let mut tx = store.write().unwrap();
            let s = Signer::load_or_create(&mut tx, at, ISS.into(), AUD.into(), 900, alg).unwrap();
            tx.commit().unwrap();
            s
        };
        let rs = open(SigningAlg::RS256, NOW);
        assert_eq!(rs.jwks()["keys"].as_array().map(Vec::len), Some(1));
        let ed = open(SigningAlg::EdDSA, NOW + 1);
        let (ed_kid, _) = ed.service_key();
        assert_eq!(ed.active_kid(), rs.active_kid());
        // The same configuration again changes nothing.
        assert_eq!(open(SigningAlg::EdDSA, NOW + 2).service_key().0, ed_kid);
        let (ed_token, _) = ed
            .sign_client("sa_1", None, String::new(), NOW + 2, 0)
            .unwrap();
        // To ES256: a new key; the Ed25519 key still verifies its tokens.
        let es = open(SigningAlg::ES256, NOW + 3);
        assert_eq!(es.service_key().1, SigningAlg::ES256);
        assert!(es.verify(&ed_token, NOW + 4).is_ok());
        assert_eq!(es.jwks()["keys"].as_array().map(Vec::len), Some(3));
        let (es_token, _) = es
            .sign_client("sa_1", None, String::new(), NOW + 4, 0)
            .unwrap();
        // Rotation: a new RS256 and a new ES256 key; all old ones verify.
        let mut tx = store.write().unwrap();
        let (r, new_kid) = es.rotate(&mut tx, NOW + 10).unwrap();
        tx.commit().unwrap();
        assert_ne!(new_kid, rs.active_kid());
        assert_eq!(r.active_kid(), new_kid);
        assert_eq!(r.service_key().1, SigningAlg::ES256);
        assert_ne!(r.service_key().0, es.service_key().0);
        for t in [&ed_token, &es_token] {
            assert!(r.verify(t, NOW + 11).is_ok());
        }
        let infos = r.key_info();
        assert_eq!(infos.iter().filter(|k| k.active).count(), 2);
        assert!(infos.iter().any(|k| k.algorithm == "EdDSA" && !k.active));
        // Back to RS256: no service key; the ES256 one stays until it retires.
        let back = open(SigningAlg::RS256, NOW + 12);
        assert_eq!(back.service_key(), (back.active_kid(), SigningAlg::RS256));
        let (t, _) = back
            .sign_client("sa_1", None, String::new(), NOW + 12, 0)
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&t).unwrap().alg,
            Algorithm::RS256
        );
        let (r_es, _) = r
            .sign_client("sa_1", None, String::new(), NOW + 12, 0)
            .unwrap();
        assert!(back.verify(&r_es, NOW + 13).is_ok());
        // A rotation past every retirement keeps only the new RS256 key
        // and the one it replaced.
        let mut tx = store.write().unwrap();
        let (last, _) = back.rotate(&mut tx, NOW + 2000).unwrap();
        tx.commit().unwrap();
        let algs: Vec<&str> = last.key_info().iter().map(|k| k.algorithm).collect();
        assert_eq!(algs, ["RS256", "RS256"]);
    }
}
