//! Random identifiers. Every id carries 128 random bits, so ids are unguessable as well as unique
//! (deletion-request confirmation codes rely on that).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// 16 random bytes from the OS generator.
pub fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system random generator failed");
    bytes
}

/// `prefix` + `_` + 32 lowercase hex characters (128 random bits).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(random_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_unique() {
        let a = new_id("ten");
        let b = new_id("ten");
        assert!(a.starts_with("ten_"));
        assert_eq!(a.len(), 4 + 32);
        assert_ne!(a, b);
    }
}
