//! Jumpgate's own SAML signing key: an RSA key and a self-signed certificate in the data
//! directory, created at first start. The certificate goes into the SP metadata so that an IdP
//! that wants signed AuthnRequests can check them; nothing else trusts it, so self-signed is
//! what IdPs expect here.
//!
//! Known shortcoming: there is no rollover command yet. Replacing the key means deleting both
//! files, restarting, and giving every IdP the new metadata at once.

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};

const KEY_FILE: &str = "saml_sp_key.pem";
const CERT_FILE: &str = "saml_sp_cert.pem";
/// Ten years: IdPs pin this certificate, and replacing it means editing every IdP.
const VALID_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
#[error("the SAML signing key file {path} could not be {action}: {detail}")]
pub struct SpKeyError {
    path: String,
    action: &'static str,
    detail: String,
}

pub struct SpKey {
    pub key: PKey<Private>,
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for SpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("SpKey").finish_non_exhaustive()
    }
}

/// Reads the key and certificate from `data_dir`, or creates both (the key with mode 0600).
pub fn load_or_create(data_dir: &Path, common_name: &str) -> Result<SpKey, SpKeyError> {
    let key_path = data_dir.join(KEY_FILE);
    let cert_path = data_dir.join(CERT_FILE);
    let fail = |path: &PathBuf, action: &'static str, detail: String| SpKeyError {
        path: path.display().to_string(),
        action,
        detail,
    };
    if key_path.exists() && cert_path.exists() {
        let key_pem =
            std::fs::read(&key_path).map_err(|e| fail(&key_path, "read", e.to_string()))?;
        let cert_pem =
            std::fs::read(&cert_path).map_err(|e| fail(&cert_path, "read", e.to_string()))?;
        let key = PKey::private_key_from_pem(&key_pem)
            .map_err(|e| fail(&key_path, "read", e.to_string()))?;
        let cert =
            X509::from_pem(&cert_pem).map_err(|e| fail(&cert_path, "read", e.to_string()))?;
        let cert_der = cert
            .to_der()
            .map_err(|e| fail(&cert_path, "read", e.to_string()))?;
        return Ok(SpKey { key, cert_der });
    }
    let created = |e: openssl::error::ErrorStack| fail(&key_path, "created", e.to_string());
    let key = PKey::from_rsa(Rsa::generate(2048).map_err(created)?).map_err(created)?;
    let mut name = X509NameBuilder::new().map_err(created)?;
    name.append_entry_by_text("CN", common_name)
        .map_err(created)?;
    let name = name.build();
    let mut builder = X509::builder().map_err(created)?;
    builder.set_version(2).map_err(created)?;
    let serial = openssl::bn::BigNum::from_u32(rand::random::<u32>() >> 1)
        .and_then(|b| b.to_asn1_integer())
        .map_err(created)?;
    builder.set_serial_number(&serial).map_err(created)?;
    builder.set_subject_name(&name).map_err(created)?;
    builder.set_issuer_name(&name).map_err(created)?;
    builder.set_pubkey(&key).map_err(created)?;
    let not_before = Asn1Time::days_from_now(0).map_err(created)?;
    let not_after = Asn1Time::days_from_now(VALID_DAYS).map_err(created)?;
    builder.set_not_before(&not_before).map_err(created)?;
    builder.set_not_after(&not_after).map_err(created)?;
    builder
        .sign(&key, MessageDigest::sha256())
        .map_err(created)?;
    let cert = builder.build();
    let key_pem = key.private_key_to_pem_pkcs8().map_err(created)?;
    crate::upstream::write_private_file(&key_path, &key_pem)
        .map_err(|e| fail(&key_path, "written", e.to_string()))?;
    let cert_pem = cert.to_pem().map_err(created)?;
    std::fs::write(&cert_path, cert_pem).map_err(|e| fail(&cert_path, "written", e.to_string()))?;
    tracing::info!(path = %key_path.display(), "created Jumpgate's SAML signing key");
    Ok(SpKey {
        key,
        cert_der: cert.to_der().map_err(created)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), "gate.example.com").unwrap();
        let again = load_or_create(dir.path(), "gate.example.com").unwrap();
        assert_eq!(first.cert_der, again.cert_der);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others");
        }
    }
}
