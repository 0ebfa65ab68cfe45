//! The secret format of every credential: `gh?_` + 43 base62 characters (256
//! bits) + a 6-character checksum, so a typo is caught before any look-up and a
//! leak is recognisable; only their SHA-256 is stored.

use crate::crypto;
use crate::error::Result;

pub const API_KEY_PREFIX: &str = "ghk_";
pub const CLIENT_SECRET_PREFIX: &str = "ghc_";
pub const WIDGET_KEY_PREFIX: &str = "ghw_";
const RANDOM_LEN: usize = 43;
const CHECK_LEN: usize = 6;
const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62_u32(mut v: u32) -> [u8; CHECK_LEN] {
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = B62[(v % 62) as usize];
        v /= 62;
    }
    out
}

fn checksum(body: &str) -> [u8; CHECK_LEN] {
    let h = crypto::sha256(body.as_bytes());
    base62_u32(u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
}

/// A new secret: prefix + 43 random base62 characters + checksum.
pub fn generate_secret(prefix: &str) -> Result<String> {
    let mut s = String::with_capacity(prefix.len() + RANDOM_LEN + CHECK_LEN);
    s.push_str(prefix);
    while s.len() < prefix.len() + RANDOM_LEN {
        for b in crypto::random_bytes::<64>()? {
            // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
            if b < 248 && s.len() < prefix.len() + RANDOM_LEN {
                s.push(B62[(b % 62) as usize] as char);
            }
        }
    }
    let c = checksum(&s);
    s.extend(c.iter().map(|b| *b as char));
    Ok(s)
}

/// Shape and checksum, without touching the store.
pub fn well_formed(prefix: &str, s: &str) -> bool {
    s.len() == prefix.len() + RANDOM_LEN + CHECK_LEN
        && s.starts_with(prefix)
        && s.bytes()
            .skip(prefix.len())
            .all(|b| b.is_ascii_alphanumeric())
        && crypto::ct_eq(
            &checksum(&s[..prefix.len() + RANDOM_LEN]),
            &s.as_bytes()[prefix.len() + RANDOM_LEN..],
        )
}

pub fn hint(secret: &str) -> String {
    format!("{}…{}", &secret[..4], &secret[secret.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_a_checksum_that_catches_typos() {
        let k = generate_secret(API_KEY_PREFIX).unwrap_or_default();
        assert_eq!(k.len(), 53);
        assert!(well_formed(API_KEY_PREFIX, &k));
        let mut typo = k.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(!well_formed(
            API_KEY_PREFIX,
            &String::from_utf8(typo).unwrap_or_default()
        ));
        assert!(!well_formed(WIDGET_KEY_PREFIX, &k));
    }
}
