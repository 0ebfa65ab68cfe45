//! Cryptographic primitives and nothing else: random bytes, SHA-256, HMAC,
//! constant-time comparison and XChaCha20-Poly1305 with associated data.
//! Which key seals what is decided by `store::keyring`, not here.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Detail, Error, Result};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;

/// 32 bytes of key material, wiped on drop and never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    pub fn generate() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(k.as_mut())?;
        Ok(SecretKey(k))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(SecretKey(Zeroizing::new(arr)))
    }

    /// Raw bytes, for writing the key file or wrapping; callers must not log them.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf)
        .map_err(|e| Error::Internal(Detail::caused(format!("OS random source failed: {e}"), e)))
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    fill_random(&mut b)?;
    Ok(b)
}

/// A random token for URLs and cookies: 32 bytes, base64url without padding.
pub fn random_token() -> Result<String> {
    Ok(b64url(&random_bytes::<32>()?))
}

pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match hmac::Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0u8; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The one constant-time comparison used for tokens, keys and codes.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Encrypts `plaintext` under `key`; output is nonce || ciphertext+tag.
pub fn seal(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let cipher = XChaCha20Poly1305::new_from_slice(key.expose())
        .map_err(|_| Error::internal("bad key length"))?;
    let nonce_bytes = random_bytes::<NONCE_LEN>()?;
    let nonce = chacha20poly1305::XNonce::from(nonce_bytes);
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::internal("encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what `seal` produced; fails if the key, the AAD or a single bit differs.
pub fn open(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(Error::Integrity("sealed value is truncated".into()));
    }
    let cipher = XChaCha20Poly1305::new_from_slice(key.expose())
        .map_err(|_| Error::internal("bad key length"))?;
    let (nonce_bytes, ct) = sealed.split_at(NONCE_LEN);
    let nonce_arr: [u8; NONCE_LEN] = nonce_bytes
        .try_into()
        .map_err(|_| Error::Integrity("bad nonce".into()))?;
    let nonce = chacha20poly1305::XNonce::from(nonce_arr);
    cipher
        .decrypt(&nonce, Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| Error::Integrity("authentication tag mismatch".into()))
}

/// The AEADs the encryption service offers (Vault's Transit key types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadAlg {
    /// AES-256-GCM with a 96-bit random nonce (aws-lc-rs).
    Aes256Gcm,
    /// ChaCha20-Poly1305 with a 96-bit nonce (aws-lc-rs).
    ChaCha20Poly1305,
    /// XChaCha20-Poly1305 with a 192-bit nonce (RustCrypto).
    XChaCha20Poly1305,
}

impl AeadAlg {
    pub fn nonce_len(self) -> usize {
        match self {
            AeadAlg::Aes256Gcm | AeadAlg::ChaCha20Poly1305 => 12,
            AeadAlg::XChaCha20Poly1305 => NONCE_LEN,
        }
    }
}

/// The tag every AEAD above appends.
pub const TAG_LEN: usize = 16;

fn aws_key(alg: AeadAlg, key: &[u8]) -> Result<aws_lc_rs::aead::LessSafeKey> {
    let a = match alg {
        AeadAlg::Aes256Gcm => &aws_lc_rs::aead::AES_256_GCM,
        _ => &aws_lc_rs::aead::CHACHA20_POLY1305,
    };
    aws_lc_rs::aead::UnboundKey::new(a, key)
        .map(aws_lc_rs::aead::LessSafeKey::new)
        .map_err(|_| Error::internal("bad AEAD key length"))
}

/// Encrypts under `key` with the caller's `nonce` (of `alg.nonce_len()`
/// bytes: random, or derived for convergent encryption); returns
/// ciphertext || tag.
pub fn aead_seal(
    alg: AeadAlg,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>> {
    match alg {
        AeadAlg::XChaCha20Poly1305 => {
            let cipher = XChaCha20Poly1305::new_from_slice(key)
                .map_err(|_| Error::internal("bad key length"))?;
            let n: [u8; NONCE_LEN] = nonce
                .try_into()
                .map_err(|_| Error::internal("bad nonce length"))?;
            cipher
                .encrypt(
                    &chacha20poly1305::XNonce::from(n),
                    Payload { msg: plain, aad },
                )
                .map_err(|_| Error::internal("encryption failed"))
        }
        _ => {
            let k = aws_key(alg, key)?;
            let n = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce)
                .map_err(|_| Error::internal("bad nonce length"))?;
            let mut buf = Vec::with_capacity(plain.len() + TAG_LEN);
            buf.extend_from_slice(plain);
            k.seal_in_place_append_tag(n, aws_lc_rs::aead::Aad::from(aad), &mut buf)
                .map_err(|_| Error::internal("encryption failed"))?;
            Ok(buf)
        }
    }
}

/// Opens what `aead_seal` produced; `None` when the key, nonce, AAD or a
/// single bit differs.
pub fn aead_open(
    alg: AeadAlg,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    match alg {
        AeadAlg::XChaCha20Poly1305 => {
            let cipher = XChaCha20Poly1305::new_from_slice(key).ok()?;
            let n: [u8; NONCE_LEN] = nonce.try_into().ok()?;
            cipher
                .decrypt(
                    &chacha20poly1305::XNonce::from(n),
                    Payload { msg: sealed, aad },
                )
                .ok()
                .map(Zeroizing::new)
        }
        _ => {
            let k = aws_key(alg, key).ok()?;
            let n = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut buf = Zeroizing::new(sealed.to_vec());
            let len = k
                .open_in_place(n, aws_lc_rs::aead::Aad::from(aad), &mut buf)
                .ok()?
                .len();
            buf.truncate(len);
            Some(buf)
        }
    }
}

/// HKDF-SHA256 (RFC 5869) with an empty salt: `out.len()` bytes from `ikm`
/// bound to `info`.
pub fn hkdf_sha256(ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<()> {
    struct Len(usize);
    impl aws_lc_rs::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let info = [info];
    aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, &[])
        .extract(ikm)
        .expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::internal("key derivation failed"))
}

/// HMAC with SHA-256, SHA-384 or SHA-512 (`bits`); `None` for another size.
pub fn hmac_sha2(bits: u16, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    macro_rules! mac {
        ($d:ty) => {{
            let mut m = hmac::Hmac::<$d>::new_from_slice(key).ok()?;
            m.update(data);
            Some(m.finalize().into_bytes().to_vec())
        }};
    }
    match bits {
        256 => mac!(Sha256),
        384 => mac!(sha2::Sha384),
        512 => mac!(sha2::Sha512),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_aead_round_trips_and_refuses_a_flipped_bit() {
        for alg in [
            AeadAlg::Aes256Gcm,
            AeadAlg::ChaCha20Poly1305,
            AeadAlg::XChaCha20Poly1305,
        ] {
            let key = [7u8; 32];
            let nonce = vec![1u8; alg.nonce_len()];
            let mut ct = aead_seal(alg, &key, &nonce, b"ad", b"hello").unwrap();
            assert_eq!(ct.len(), 5 + TAG_LEN);
            assert_eq!(
                aead_open(alg, &key, &nonce, b"ad", &ct).unwrap().as_slice(),
                b"hello"
            );
            assert!(aead_open(alg, &key, &nonce, b"ax", &ct).is_none());
            ct[0] ^= 1;
            assert!(aead_open(alg, &key, &nonce, b"ad", &ct).is_none());
        }
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        hkdf_sha256(b"k", b"ctx1", &mut a).unwrap();
        hkdf_sha256(b"k", b"ctx2", &mut b).unwrap();
        assert_ne!(a, b);
        assert_eq!(hmac_sha2(256, b"k", b"d").unwrap().len(), 32);
        assert_eq!(hmac_sha2(512, b"k", b"d").unwrap().len(), 64);
        assert!(hmac_sha2(1, b"k", b"d").is_none());
    }

    #[test]
    fn seal_open_round_trip() {
        let k = SecretKey::generate().unwrap();
        let s = seal(&k, b"users/1", b"hello").unwrap();
        assert_eq!(open(&k, b"users/1", &s).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn open_refuses_other_aad_key_or_flipped_bit() {
        let k = SecretKey::generate().unwrap();
        let s = seal(&k, b"users/1", b"hello").unwrap();
        assert!(open(&k, b"users/2", &s).is_err());
        assert!(open(&SecretKey::generate().unwrap(), b"users/1", &s).is_err());
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(open(&k, b"users/1", &t).is_err());
        assert!(open(&k, b"users/1", &s[..10]).is_err());
    }

    #[test]
    fn ct_eq_compares_length_and_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn secret_key_debug_hides_bytes() {
        let k = SecretKey::generate().unwrap();
        assert_eq!(format!("{k:?}"), "SecretKey(…)");
    }
}
