//! Access tokens: RS256 JWTs signed with a key parsed once and kept in memory,
//! verified against an explicit algorithm allow-list (RS256 only) and the
//! published key ids. The key pair is stored sealed in the `secrets` table.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
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

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    pkcs8: String,
    created_at: Timestamp,
    /// Set when a newer key took over: kept in the JWKS until then, so tokens
    /// it signed stay verifiable until they expire.
    #[serde(default)]
    retire_at: Option<Timestamp>,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredKeys {
    active: String,
    keys: Vec<StoredKey>,
}

struct LoadedKey {
    kid: String,
    created_at: Timestamp,
    retire_at: Option<Timestamp>,
    pair: KeyPair,
    n: String,
    e: String,
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
    active: usize,
    active_created_at: Timestamp,
    issuer: String,
    audience: String,
    ttl: i64,
}

const SECRET_KEY: &[u8] = b"jwt_signing_keys";

fn load(k: &StoredKey) -> Result<LoadedKey> {
    let der = crypto::b64url_decode(&k.pkcs8)
        .ok_or_else(|| Error::Integrity("signing key encoding".into()))?;
    let pair = KeyPair::from_pkcs8(&der)
        .map_err(|e| Error::Integrity(Detail::caused(format!("signing key: {e}"), e)))?;
    let public = pair.public_key();
    let n = crypto::b64url(public.modulus().big_endian_without_leading_zero());
    let e = crypto::b64url(public.exponent().big_endian_without_leading_zero());
    let decoding = DecodingKey::from_rsa_components(&n, &e)
        .map_err(|e| Error::Internal(Detail::caused(e.to_string(), e)))?;
    Ok(LoadedKey {
        kid: k.kid.clone(),
        created_at: k.created_at,
        retire_at: k.retire_at,
        pair,
        n,
        e,
        decoding,
    })
}

impl Signer {
    /// Loads the signing keys, generating the first RSA-2048 key on first start.
    pub fn load_or_create(
        tx: &mut WriteTx<'_>,
        now: Timestamp,
        issuer: String,
        audience: String,
        ttl: i64,
    ) -> Result<Signer> {
        let stored = match tx.get::<StoredKeys>(Table::Secrets, SECRET_KEY)? {
            Some(s) => s,
            None => {
                let mut s = StoredKeys::default();
                add_key(&mut s, now)?;
                tx.put(Table::Secrets, SECRET_KEY, &s)?;
                s
            }
        };
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
            .position(|k| k.kid == stored.active)
            .ok_or_else(|| Error::Integrity("no active signing key".into()))?;
        Ok(Signer {
            keys,
            active,
            active_created_at: stored.keys[active].created_at,
            issuer,
            audience,
            ttl,
        })
    }

    /// Makes a new key the active one, keeps the previous one published until
    /// its last token expires, and drops keys past that point. Returns the
    /// new signer (the caller swaps it in after committing).
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
        let kid = add_key(&mut stored, now)?;
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
                algorithm: "RS256",
                created_at: k.created_at,
                retire_at: k.retire_at,
                active: i == self.active,
            })
            .collect();
        v.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        v
    }

    pub fn active_kid(&self) -> &str {
        &self.keys[self.active].kid
    }

    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Signs a client-credentials token for a service account, carrying the
    /// account's tokens-valid-after `epoch` (`ServiceAccount::tokens_epoch`).
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
        self.sign_claims(&claims)
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
        self.sign_claims(&claims)
    }

    fn sign_claims(&self, claims: &Claims) -> Result<(String, Timestamp)> {
        let key = &self.keys[self.active];
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key.kid});
        let mut msg = crypto::b64url(&serde_json::to_vec(&header)?);
        msg.push('.');
        msg.push_str(&crypto::b64url(&serde_json::to_vec(claims)?));
        let mut sig = vec![0u8; key.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        key.pair
            .sign(&RSA_PKCS1_SHA256, &rng, msg.as_bytes(), &mut sig)
            .map_err(|_| Error::internal("RSA signing failed"))?;
        msg.push('.');
        msg.push_str(&crypto::b64url(&sig));
        Ok((msg, claims.exp))
    }

    /// Verifies signature (RS256 only, known `kid`), issuer, audience and expiry
    /// against our clock.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims> {
        let bad = |why: &str| Error::Unauthenticated(format!("Invalid access token: {why}."));
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad("algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| bad("unknown key id"))?;
        let mut v = Validation::new(Algorithm::RS256);
        v.algorithms = vec![Algorithm::RS256];
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

    /// The public keys as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "n": k.n, "e": k.e}))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The active public key as PKCS#1 DER (tests use it to forge HS256 tokens).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.keys[self.active].pair.public_key().as_ref().to_vec()
    }
}

fn add_key(s: &mut StoredKeys, now: Timestamp) -> Result<String> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| Error::internal("RSA key generation failed"))?;
    let der = pair
        .as_der()
        .map_err(|_| Error::internal("RSA key export failed"))?;
    let kid = hex::encode(&crypto::sha256(pair.public_key().as_ref())[..8]);
    s.active = kid.clone();
    s.keys.push(StoredKey {
        kid: kid.clone(),
        pkcs8: crypto::b64url(der.as_ref()),
        created_at: now,
        retire_at: None,
    });
    Ok(kid)
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
            add_key(&mut s, NOW).unwrap();
        }
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
            keys: vec![StoredKey {
                kid: a,
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
        let s = Signer::load_or_create(&mut tx, NOW, ISS.into(), AUD.into(), 900).unwrap();
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
}
