//! Normalisation, checksums and the chain.

use sha2::{Digest, Sha256};

/// The value the chain starts from: `sha256("stowage-chain-v1")`.
pub fn chain_seed() -> [u8; 32] {
    Sha256::digest(b"stowage-chain-v1").into()
}

/// `sha256(previous ‖ version as 8 bytes big-endian ‖ checksum)`.
pub fn chain_next(previous: &[u8; 32], version: i64, checksum: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(version.to_be_bytes());
    hasher.update(checksum);
    hasher.finalize().into()
}

/// The key a repeatable migration is recorded under: a negative number
/// (versions are never negative) derived from its description, which is
/// what identifies it, as in Flyway.
pub fn repeatable_key(description: &str) -> i64 {
    let digest = Sha256::digest(description.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    -1 - (u64::from_be_bytes(first) >> 2) as i64
}

/// SHA-256 of a normalised text.
pub fn checksum(normalised: &str) -> [u8; 32] {
    Sha256::digest(normalised.as_bytes()).into()
}

/// Remove a UTF-8 BOM and turn CRLF and lone CR into LF.
pub fn normalise(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalise("\u{feff}a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(checksum(&normalise("a\r\n")), checksum("a\n"));
    }

    #[test]
    fn repeatable_keys_are_negative_and_stable() {
        assert!(repeatable_key("") < 0 && repeatable_key("user view") < 0);
        assert_eq!(repeatable_key("user view"), repeatable_key("user view"));
        assert_ne!(repeatable_key("user view"), repeatable_key("user views"));
    }
}
