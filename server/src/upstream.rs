//! The gateway's side of SSH connections to targets (russh client): reading and checking the
//! target's host key.
//!
//! What is verified: the target proves possession of the host key it presents (russh checks the
//! key-exchange signature before asking us), and that key must equal the one pinned for the
//! server. A server with no pinned key is trusted on first use and pinned then; a changed key is
//! refused, naming both fingerprints, until an administrator accepts the new one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

/// How long a host-key scan may take in all.
const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach {target}: {detail}")]
    Unreachable { target: String, detail: String },
    #[error("{target} did not complete the SSH handshake within {secs} s")]
    Timeout { target: String, secs: u64 },
    #[error(
        "{target} presented a certificate instead of a plain host key; certificates are not supported for pinning"
    )]
    Certificate { target: String },
    #[error(
        "the host key of {server} has changed: pinned {pinned}, presented {presented}. \
         If the server was reinstalled, an administrator can accept the new key; otherwise \
         someone may be intercepting the connection"
    )]
    HostKeyChanged {
        server: String,
        pinned: String,
        presented: String,
    },
    #[error("the pinned host key of {server} is unreadable; scan it again")]
    BadPin { server: String },
}

/// The SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A key in OpenSSH `authorized_keys` form, without a comment, for pinning.
pub fn openssh_line(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh().unwrap_or_default().trim().to_string()
}

/// Parses a pinned key line.
pub fn parse_pinned(line: &str) -> Option<PublicKey> {
    PublicKey::from_openssh(line.trim()).ok()
}

/// What comparing a presented key with the pin gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyVerdict {
    /// Same key as pinned.
    Match,
    /// Nothing pinned yet: trust on first use, pin this one.
    FirstUse,
    /// A different key than the pinned one.
    Changed { pinned: String, presented: String },
}

/// Compares `presented` with the pinned key line, if any.
pub fn verdict(
    pinned: Option<&str>,
    presented: &PublicKey,
    server: &str,
) -> Result<HostKeyVerdict, UpstreamError> {
    let Some(line) = pinned else {
        return Ok(HostKeyVerdict::FirstUse);
    };
    let pinned = parse_pinned(line).ok_or_else(|| UpstreamError::BadPin {
        server: server.to_string(),
    })?;
    // Compare key material only; comments are not part of the identity.
    if pinned.key_data() == presented.key_data() {
        Ok(HostKeyVerdict::Match)
    } else {
        Ok(HostKeyVerdict::Changed {
            pinned: fingerprint(&pinned),
            presented: fingerprint(presented),
        })
    }
}

/// Client handler that only records the host key and then declines to go on.
struct KeyRecorder {
    seen: Arc<Mutex<Option<Result<PublicKey, ()>>>>,
}

impl client::Handler for KeyRecorder {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let recorded = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => Ok(key.clone()),
            PublicKeyOrCertificate::Certificate(_) => Err(()),
        };
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(recorded);
        }
        // A scan never authenticates: stop the connection here.
        Ok(false)
    }
}

/// Connects to `host:port`, completes the key exchange and returns the host key presented.
pub async fn scan_host_key(host: &str, port: u16) -> Result<PublicKey, UpstreamError> {
    let target = format!("{host}:{port}");
    let seen = Arc::new(Mutex::new(None));
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(SCAN_TIMEOUT),
        nodelay: true,
        ..Default::default()
    });
    let handler = KeyRecorder { seen: seen.clone() };
    let attempt =
        tokio::time::timeout(SCAN_TIMEOUT, client::connect(config, (host, port), handler)).await;

    let recorded = seen.lock().ok().and_then(|mut s| s.take());
    match (recorded, attempt) {
        (Some(Ok(key)), _) => Ok(key),
        (Some(Err(())), _) => Err(UpstreamError::Certificate { target }),
        (None, Err(_)) => Err(UpstreamError::Timeout {
            target,
            secs: SCAN_TIMEOUT.as_secs(),
        }),
        (None, Ok(Err(e))) => Err(UpstreamError::Unreachable {
            target,
            detail: e.to_string(),
        }),
        (None, Ok(Ok(_))) => Err(UpstreamError::Unreachable {
            target,
            detail: "the server did not present a host key".into(),
        }),
    }
}

/// Checks that `text` is a private key russh can use, opening it with `passphrase`.
pub fn check_private_key(text: &str, passphrase: Option<&str>) -> Result<(), String> {
    russh::keys::decode_secret_key(text, passphrase)
        .map(|_| ())
        .map_err(|e| match e {
            russh::keys::Error::KeyIsEncrypted => {
                "the private key is encrypted: give its passphrase".to_string()
            }
            other => format!("the private key cannot be read ({other}); use OpenSSH or PEM format"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJnPp2RqCn+KQtynQ67rLfdzhKl2YyMtpoDH5HV71IAt";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMZqtAZEcgmVEAV3b5fE7aqzoofM1fnP2CY/4ifyJE56";

    #[test]
    fn verdicts_follow_the_pin() -> Result<(), String> {
        let a = parse_pinned(KEY_A).ok_or("key A")?;
        let b = parse_pinned(KEY_B).ok_or("key B")?;
        assert_eq!(
            verdict(None, &a, "web01").map_err(|e| e.to_string())?,
            HostKeyVerdict::FirstUse
        );
        assert_eq!(
            verdict(Some(KEY_A), &a, "web01").map_err(|e| e.to_string())?,
            HostKeyVerdict::Match
        );
        let changed = verdict(Some(KEY_A), &b, "web01").map_err(|e| e.to_string())?;
        assert_eq!(
            changed,
            HostKeyVerdict::Changed {
                pinned: fingerprint(&a),
                presented: fingerprint(&b)
            }
        );
        assert!(fingerprint(&a).starts_with("SHA256:"));
        assert!(verdict(Some("garbage"), &a, "web01").is_err());
        Ok(())
    }

    #[test]
    fn pinned_line_round_trips_without_comment() -> Result<(), String> {
        let a = parse_pinned(&format!("{KEY_A} root@host")).ok_or("key")?;
        assert_eq!(openssh_line(&a), KEY_A);
        Ok(())
    }
}
