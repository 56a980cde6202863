//! The gateway's side of SSH connections to targets (russh client): reading and checking the
//! target's host key.
//!
//! What is verified: the target proves possession of the host key it presents (russh checks the
//! key-exchange signature before asking us), and that key must equal the one pinned for the
//! server. A server with no pinned key is trusted on first use and pinned then; a changed key is
//! refused, naming both fingerprints, until an administrator accepts the new one.
//!
//! Known shortcoming: only the host-key scan (`jumpgate server scan`) exists so far. The onward
//! connection that logs in with the stored credential, and pins on its first success, is not
//! written yet; until it is, a server is pinned only when an administrator scans it.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey, PublicKeyOrCertificate};

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
    #[error("the gateway key {path} cannot be {action}: {detail}")]
    GatewayKey {
        path: String,
        action: &'static str,
        detail: String,
    },
}

/// File name of the gateway's own key in the data directory.
pub const GATEWAY_KEY_FILE: &str = "gateway_ed25519";

/// Loads the gateway's own Ed25519 key (used for servers set to `gateway_key`), creating it
/// with mode 0600 on first use. Its public half goes into targets' authorized_keys.
pub fn gateway_key(data_dir: &Path) -> Result<PrivateKey, UpstreamError> {
    let path = data_dir.join(GATEWAY_KEY_FILE);
    let fail = |action: &'static str, detail: String| UpstreamError::GatewayKey {
        path: path.display().to_string(),
        action,
        detail,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return PrivateKey::from_openssh(text).map_err(|e| fail("read", e.to_string())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(fail("read", e.to_string()));
        }
        Err(_) => {}
    }
    let mut key = PrivateKey::random(&mut rand10::rng(), Algorithm::Ed25519)
        .map_err(|e| fail("created", e.to_string()))?;
    key.set_comment("jumpgate-gateway");
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| fail("encoded", e.to_string()))?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .map_err(|e| fail("written", e.to_string()))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| fail("written", e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail("written", e.to_string()))?;
    tracing::info!(fingerprint = %fingerprint(key.public_key()), "created the gateway key");
    Ok(key)
}

/// The gateway key's public half, for a target's authorized_keys.
pub fn gateway_public_line(key: &PrivateKey) -> String {
    key.public_key()
        .to_openssh()
        .unwrap_or_default()
        .trim()
        .to_string()
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
    fn gateway_key_is_created_once_and_kept_private() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let first = gateway_key(dir.path()).map_err(|e| e.to_string())?;
        let again = gateway_key(dir.path()).map_err(|e| e.to_string())?;
        assert_eq!(gateway_public_line(&first), gateway_public_line(&again));
        assert!(gateway_public_line(&first).starts_with("ssh-ed25519 "));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta =
                std::fs::metadata(dir.path().join(GATEWAY_KEY_FILE)).map_err(|e| e.to_string())?;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        Ok(())
    }

    #[test]
    fn pinned_line_round_trips_without_comment() -> Result<(), String> {
        let a = parse_pinned(&format!("{KEY_A} root@host")).ok_or("key")?;
        assert_eq!(openssh_line(&a), KEY_A);
        Ok(())
    }
}
