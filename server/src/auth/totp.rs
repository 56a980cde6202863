//! Time-based one-time passwords (RFC 6238): 6 digits, 30-second steps, SHA-1 (what every
//! authenticator app supports), accepting the previous and next step for clock drift.
//!
//! A code is accepted at most once: callers record the matched step and refuse any step not
//! newer than the last one recorded (see `Storage::consume_totp_step`).

use totp_rs::{Algorithm, Builder, Secret, Totp};

const ISSUER: &str = "Jumpgate";

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("the stored TOTP secret is unusable: {0}")]
    BadSecret(String),
}

fn build(secret_base32: &str, account: &str) -> Result<Totp, TotpError> {
    let secret =
        Secret::try_from_base32(secret_base32).map_err(|e| TotpError::BadSecret(e.to_string()))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| TotpError::BadSecret(e.to_string()))
}

/// A fresh random secret (160 bits), base32-encoded.
pub fn new_secret() -> String {
    Secret::generate().to_base32()
}

/// The `otpauth://` URI and a PNG QR code (base64) for enrolling `secret` in an app.
pub fn enrollment(secret_base32: &str, account: &str) -> Result<(String, String), TotpError> {
    let totp = build(secret_base32, account)?;
    let uri = totp
        .to_url()
        .map_err(|e| TotpError::BadSecret(e.to_string()))?;
    let qr = totp
        .to_qr_base64()
        .map_err(|e| TotpError::BadSecret(e.to_string()))?;
    Ok((uri, qr))
}

/// The time step `code` matches at `unix_time`, if any. Spaces in the code are ignored.
pub fn matching_step(
    secret_base32: &str,
    code: &str,
    unix_time: u64,
) -> Result<Option<i64>, TotpError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = build(secret_base32, "check")?;
    Ok(totp.check(&code, unix_time).map(|s| s as i64))
}

/// The code for `unix_time` (tests and provisioning tools).
pub fn code_at(secret_base32: &str, unix_time: u64) -> Result<String, TotpError> {
    Ok(build(secret_base32, "code")?
        .generate(unix_time)
        .to_string())
}

pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn accepts_current_and_adjacent_steps_only() {
        let s = new_secret();
        let t = 1_700_000_000u64;
        let code = code_at(&s, t).unwrap();
        assert_eq!(matching_step(&s, &code, t).unwrap(), Some((t / 30) as i64));
        assert!(matching_step(&s, &code, t + 30).unwrap().is_some());
        assert!(matching_step(&s, &code, t - 30).unwrap().is_some());
        assert!(matching_step(&s, &code, t + 90).unwrap().is_none());
    }

    #[test]
    fn rejects_malformed_codes() {
        let s = new_secret();
        assert!(matching_step(&s, "12345", 0).unwrap().is_none());
        assert!(matching_step(&s, "abcdef", 0).unwrap().is_none());
        assert!(matching_step(&s, "", 0).unwrap().is_none());
    }

    #[test]
    fn matches_rfc6238_reference_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59: 94287082 (8 digits); the 6-digit code is its tail.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
    }

    #[test]
    fn enrollment_uri_names_issuer_and_account() {
        let (uri, qr) = enrollment(&new_secret(), "alice").unwrap();
        assert!(uri.starts_with("otpauth://totp/Jumpgate:alice?"), "{uri}");
        assert!(!qr.is_empty());
    }
}
