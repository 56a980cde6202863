//! The identity provider's signing certificates: parsing PEM or bare base64 (as metadata
//! carries them), a canonical stored form, and expiry dates for the upkeep warnings.
//!
//! Several certificates are trusted at once, so an IdP can publish its next certificate before
//! it starts signing with it and a rollover needs no coordinated change here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::x509::X509;
use sha2::{Digest, Sha256};

/// Most certificates one configuration may hold; metadata with more is suspicious.
const MAX_CERTIFICATES: usize = 8;

/// One trusted certificate, summarised for the settings page and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    /// Unix seconds.
    pub not_after: i64,
    /// SHA-256 of the DER bytes, colon-separated hex, as `openssl x509 -fingerprint` shows it.
    pub sha256: String,
}

/// Parses every certificate in `text`: PEM blocks, or bare base64 DER blocks separated by
/// blank lines or whitespace (the form inside `<ds:X509Certificate>`).
pub fn parse_all(text: &str) -> Result<Vec<X509>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let certs = if text.contains("-----BEGIN") {
        X509::stack_from_pem(text.as_bytes())
            .map_err(|_| "the PEM text does not hold a readable X.509 certificate".to_string())?
    } else {
        let mut out = Vec::new();
        for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
            out.push(from_base64(block)?);
        }
        out
    };
    if certs.is_empty() {
        return Err("no certificate found (expected PEM `-----BEGIN CERTIFICATE-----`)".into());
    }
    if certs.len() > MAX_CERTIFICATES {
        return Err(format!("more than {MAX_CERTIFICATES} certificates"));
    }
    Ok(certs)
}

/// One certificate from base64 DER, whitespace ignored.
pub fn from_base64(b64: &str) -> Result<X509, String> {
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "a certificate is not valid base64".to_string())?;
    X509::from_der(&der).map_err(|_| "a certificate is not a readable X.509 certificate".into())
}

/// The stored form of a certificate list: PEM blocks, in the given order. Empty stays empty.
pub fn canonical_pem_bundle(text: &str) -> Result<String, String> {
    let certs = parse_all(text)?;
    let mut out = String::new();
    for cert in &certs {
        let pem = cert
            .to_pem()
            .map_err(|_| "a certificate could not be written as PEM".to_string())?;
        out.push_str(&String::from_utf8_lossy(&pem));
    }
    Ok(out)
}

/// The DER bytes of each certificate, as the signature check wants them.
pub fn der_all(text: &str) -> Result<Vec<Vec<u8>>, String> {
    parse_all(text)?
        .iter()
        .map(|c| c.to_der().map_err(|_| "unreadable certificate".to_string()))
        .collect()
}

/// Whole days from `now` until `not_after`; negative once expired.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

/// A Unix time as a calendar date (UTC), for messages.
pub fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| unix.to_string())
}

pub fn summarise(text: &str) -> Result<Vec<CertSummary>, String> {
    parse_all(text)?.iter().map(summary).collect()
}

fn summary(cert: &X509) -> Result<CertSummary, String> {
    let der = cert.to_der().map_err(|_| "unreadable certificate")?;
    let subject = cert
        .subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|_| "clock error")?;
    let diff = epoch
        .diff(cert.not_after())
        .map_err(|_| "unreadable expiry date")?;
    let not_after = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    let sha256 = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(CertSummary {
        subject,
        not_after,
        sha256,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;

    pub(crate) fn self_signed(cn: &str, days: u32) -> X509 {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(days).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    #[test]
    fn pem_and_bare_base64_give_the_same_bundle() {
        let a = self_signed("idp-a", 30);
        let b = self_signed("idp-b", 400);
        let pem = format!(
            "{}{}",
            String::from_utf8(a.to_pem().unwrap()).unwrap(),
            String::from_utf8(b.to_pem().unwrap()).unwrap()
        );
        let bare = format!(
            "{}\n\n{}",
            STANDARD.encode(a.to_der().unwrap()),
            STANDARD.encode(b.to_der().unwrap())
        );
        assert_eq!(
            canonical_pem_bundle(&pem).unwrap(),
            canonical_pem_bundle(&bare).unwrap()
        );
        let s = summarise(&pem).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].subject, "CN=idp-a");
        let now = crate::storage::now();
        assert!((s[0].not_after - now - 30 * 86_400).abs() < 120);
        assert_eq!(s[0].sha256.len(), 32 * 3 - 1);
    }

    #[test]
    fn rubbish_is_refused_and_empty_stays_empty() {
        assert!(canonical_pem_bundle("hello").is_err());
        assert!(
            canonical_pem_bundle("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert_eq!(canonical_pem_bundle("  ").unwrap(), "");
    }
}
