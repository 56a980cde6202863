//! Password and security-code hashing with Argon2id, and the rules new secrets must meet.
//!
//! Hashing is deliberately slow, so it runs on the blocking thread pool, never on the async
//! executor where it would stall every other connection.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use password_hash::rand_core::OsRng;

/// A hash of a throwaway secret, verified when the user does not exist, so that a missing user
/// costs as much time as a wrong password and timing does not reveal which user names exist.
static DUMMY_HASH: std::sync::LazyLock<Option<String>> =
    std::sync::LazyLock::new(|| hash_blocking("not-a-real-password-but-costs-the-same").ok());

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MIN_SECURITY_CODE_LEN: usize = 6;
/// Bounds the work an attacker can make Argon2 do with one request.
pub const MAX_SECRET_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task did not finish")]
    Join,
}

fn hash_blocking(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

fn verify_blocking(secret: &str, hash: &str) -> bool {
    if secret.len() > MAX_SECRET_LEN {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes a secret with Argon2id and a fresh random salt (PHC string format).
pub async fn hash(secret: &str) -> Result<String, HashError> {
    let secret = zeroize::Zeroizing::new(secret.to_owned());
    tokio::task::spawn_blocking(move || hash_blocking(&secret))
        .await
        .map_err(|_| HashError::Join)?
}

/// Checks `secret` against `hash`. With no hash (unknown user, or no secret set) it still
/// spends the time of one verification and answers false.
pub async fn verify(secret: &str, hash: Option<&str>) -> bool {
    let secret = zeroize::Zeroizing::new(secret.to_owned());
    let hash = hash.map(str::to_owned);
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_blocking(&secret, &h),
        None => {
            if let Some(dummy) = DUMMY_HASH.as_deref() {
                let _ = verify_blocking(&secret, dummy);
            }
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Why a proposed password is refused, in words for the user; `None` when it is acceptable.
pub fn password_problem(new: &str, username: &str, current: Option<&str>) -> Option<String> {
    let chars = new.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Some(format!(
            "The new password is too short: use at least {MIN_PASSWORD_LEN} characters."
        ));
    }
    if new.len() > MAX_SECRET_LEN {
        return Some(format!(
            "The new password is too long: use at most {MAX_SECRET_LEN} bytes."
        ));
    }
    if new.eq_ignore_ascii_case(username) {
        return Some("The new password must not be your user name.".into());
    }
    if current == Some(new) {
        return Some("The new password must differ from the current one.".into());
    }
    None
}

/// Why a proposed security code is refused; `None` when it is acceptable.
pub fn security_code_problem(code: &str, password: &str) -> Option<String> {
    if code.chars().count() < MIN_SECURITY_CODE_LEN {
        return Some(format!(
            "The security code is too short: use at least {MIN_SECURITY_CODE_LEN} characters."
        ));
    }
    if code.len() > MAX_SECRET_LEN {
        return Some(format!(
            "The security code is too long: use at most {MAX_SECRET_LEN} bytes."
        ));
    }
    if code == password {
        return Some("The security code must differ from your password.".into());
    }
    None
}

/// A random password for a new account or a reset, meant to be changed at first sign-in.
pub fn one_time_password() -> String {
    use rand::Rng;
    // No look-alike characters (0/O, 1/l/I): people type this from a console.
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id() {
        let h = hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)).await);
        assert!(!verify("wrong horse battery", Some(&h)).await);
        assert!(!verify("anything", None).await);
        assert!(!verify("x", Some("not a hash")).await);
    }

    #[test]
    fn password_rules_explain_themselves() {
        assert!(
            password_problem("short", "alice", None)
                .unwrap()
                .contains("too short")
        );
        assert!(password_problem("alice12345", "alice12345", None).is_some());
        assert!(password_problem("same-password-1", "a", Some("same-password-1")).is_some());
        assert!(password_problem("a fine passphrase", "alice", Some("old one")).is_none());
    }

    #[test]
    fn security_code_must_differ_from_password() {
        assert!(security_code_problem("12345", "pw").is_some());
        assert!(security_code_problem("same-secret", "same-secret").is_some());
        assert!(security_code_problem("482913", "password").is_none());
    }

    #[test]
    fn one_time_passwords_are_long_and_distinct() {
        let a = one_time_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, one_time_password());
    }
}
