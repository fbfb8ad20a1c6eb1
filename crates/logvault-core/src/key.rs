//! API keys: `lv_<key-id>_<secret>`, where the key id is 16 hex digits and the secret is 256
//! random bits in hex. Only SHA-256 of the secret is stored; comparison is constant-time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated key: the full token is shown once and never stored.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The public part, used to find the key.
    pub key_id: String,
    /// The whole bearer token, `lv_<key-id>_<secret>`.
    pub token: String,
    /// SHA-256 of the secret: the only thing stored.
    pub secret_hash: [u8; 32],
}

/// Creates a new random key.
pub fn generate() -> Result<GeneratedKey, getrandom::Error> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let key_id = hex::encode(id);
    let secret_hex = hex::encode(secret);
    Ok(GeneratedKey {
        token: format!("lv_{key_id}_{secret_hex}"),
        secret_hash: hash_secret(&secret_hex),
        key_id,
    })
}

/// Splits a bearer token into `(key_id, secret)` if it has the key shape.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("lv_")?;
    let (key_id, secret) = rest.split_once('_')?;
    let hex_of = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex_of(key_id, 16) && hex_of(secret, 64)).then_some((key_id, secret))
}

/// SHA-256 of the secret part. The secret has 256 bits of entropy, so a plain hash suffices.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time check of a presented secret against a stored hash.
pub fn secret_matches(secret: &str, stored_hash: &[u8]) -> bool {
    bool::from(hash_secret(secret).as_slice().ct_eq(stored_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match() {
        let key = generate().expect("random");
        let (key_id, secret) = parse(&key.token).expect("shape");
        assert_eq!(key_id, key.key_id);
        assert!(secret_matches(secret, &key.secret_hash));
        assert!(!secret_matches(
            &secret.replace('a', "b").replace('0', "1"),
            &key.secret_hash
        ));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let good_id = "0123456789abcdef";
        let good_secret = "a".repeat(64);
        let cases = [
            format!("lv_{good_id}_{good_secret}"),
            format!("LV_{good_id}_{good_secret}"),
            format!("lv_{good_id}{good_secret}"),
            format!("lv_{good_id}_{}", "a".repeat(63)),
            format!("lv_{}_{good_secret}", "0123456789ABCDEF"),
            format!("lv_{good_id}_{good_secret}_"),
            String::new(),
        ];
        let parsed: Vec<bool> = cases.iter().map(|t| parse(t).is_some()).collect();
        assert_eq!(parsed, [true, false, false, false, false, false, false]);
    }
}
