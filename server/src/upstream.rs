//! The gateway's side of SSH connections to targets (russh client): reading and checking the
//! target's host key.
//!
//! What is verified: the target proves possession of the host key it presents (russh checks the
//! key-exchange signature before asking us), and that key must equal the one pinned for the
//! server. A server with no pinned key is trusted on first use and pinned then; a changed key is
//! refused, naming both fingerprints, until an administrator accepts the new one.
//!
//! [`connect`] opens the onward connection that the SSH gateway and the browser console relay
//! to: it checks the host key as above, signs in with the stored credential (opened from the
//! vault only for this) and pins a first-seen key once that sign-in has succeeded.

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
    #[error(
        "{server} refused the gateway's stored credential for login `{login}`; ask an administrator to check it"
    )]
    AuthRejected { server: String, login: String },
    #[error("the stored credential of {server} cannot be used: {detail}")]
    Credential { server: String, detail: String },
    #[error("the SSH connection to {server} failed: {detail}")]
    Protocol { server: String, detail: String },
    #[error("the pinned host key of {server} is unreadable; scan it again")]
    BadPin { server: String },
    #[error("the key file {path} cannot be {action}: {detail}")]
    KeyFile {
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
    load_or_create_ed25519(&data_dir.join(GATEWAY_KEY_FILE), "jumpgate-gateway")
}

/// Reads the OpenSSH private key at `path`, or creates a new Ed25519 key there (mode 0600,
/// written to a temporary file first so that a crash never leaves half a key).
pub fn load_or_create_ed25519(path: &Path, comment: &str) -> Result<PrivateKey, UpstreamError> {
    let fail = |action: &'static str, detail: String| UpstreamError::KeyFile {
        path: path.display().to_string(),
        action,
        detail,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return PrivateKey::from_openssh(text).map_err(|e| fail("read", e.to_string())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(fail("read", e.to_string()));
        }
        Err(_) => {}
    }
    let mut key = PrivateKey::random(&mut rand10::rng(), Algorithm::Ed25519)
        .map_err(|e| fail("created", e.to_string()))?;
    key.set_comment(comment);
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| fail("encoded", e.to_string()))?;
    write_private_file(path, text.as_bytes()).map_err(|e| fail("written", e.to_string()))?;
    tracing::info!(path = %path.display(), fingerprint = %fingerprint(key.public_key()), "created a new key");
    Ok(key)
}

/// Writes a secret file readable by its owner only (mode 0600), through a temporary file and a
/// rename, so that a crash never leaves half a key behind.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
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

/// How long connecting and signing in to a target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What the host-key check decided during a connection.
#[derive(Debug, Default)]
struct Seen {
    /// A key to pin once sign-in succeeds (trust on first use).
    pin: Option<String>,
    /// Why the key was refused.
    refused: Option<UpstreamError>,
}

/// Client handler that checks the target's host key against the pin.
pub struct Verifier {
    server: String,
    pinned: Option<String>,
    seen: Arc<Mutex<Seen>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(_) => return Ok(false),
        };
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            seen.refused = Some(UpstreamError::Certificate {
                target: self.server.clone(),
            });
            return Ok(false);
        };
        match verdict(self.pinned.as_deref(), key, &self.server) {
            Ok(HostKeyVerdict::Match) => Ok(true),
            Ok(HostKeyVerdict::FirstUse) => {
                seen.pin = Some(openssh_line(key));
                Ok(true)
            }
            Ok(HostKeyVerdict::Changed { pinned, presented }) => {
                seen.refused = Some(UpstreamError::HostKeyChanged {
                    server: self.server.clone(),
                    pinned,
                    presented,
                });
                Ok(false)
            }
            Err(e) => {
                seen.refused = Some(e);
                Ok(false)
            }
        }
    }
}

/// An authenticated connection to a target.
pub type TargetHandle = client::Handle<Verifier>;

/// Ends a connection that must not be used.
struct TargetSession;

impl TargetSession {
    async fn refuse(handle: &TargetHandle) {
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// The secret the gateway signs in with, opened from the vault.
pub enum TargetSecret {
    Password(zeroize::Zeroizing<String>),
    Key(Box<PrivateKey>),
}

/// Opens the stored credential of `server` for one sign-in.
pub fn open_credential(
    vault: &crate::vault::Vault,
    gateway_key: &PrivateKey,
    server: &crate::storage::ServerRow,
) -> Result<TargetSecret, UpstreamError> {
    let bad = |detail: String| UpstreamError::Credential {
        server: server.name.clone(),
        detail,
    };
    let open = |field: &str,
                sealed: &Option<String>|
     -> Result<Option<zeroize::Zeroizing<String>>, UpstreamError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let bytes = vault
            .open(&crate::vault::secret_context(server.id, field), sealed)
            .map_err(|e| bad(e.to_string()))?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| bad("not text".into()))?;
        Ok(Some(zeroize::Zeroizing::new(text)))
    };
    match server.auth_kind.as_str() {
        "password" => open("secret", &server.secret_sealed)?
            .map(TargetSecret::Password)
            .ok_or_else(|| bad("no password is stored".into())),
        "private_key" => {
            let key = open("secret", &server.secret_sealed)?
                .ok_or_else(|| bad("no private key is stored".into()))?;
            let passphrase = open("passphrase", &server.passphrase_sealed)?;
            russh::keys::decode_secret_key(&key, passphrase.as_ref().map(|p| p.as_str()))
                .map(|k| TargetSecret::Key(Box::new(k)))
                .map_err(|e| bad(e.to_string()))
        }
        "gateway_key" => Ok(TargetSecret::Key(Box::new(gateway_key.clone()))),
        other => Err(bad(format!("unknown kind `{other}`"))),
    }
}

/// Connects to `server`, verifies its host key, signs in with `secret`, and pins a first-seen
/// host key in `storage` once the sign-in has succeeded.
pub async fn connect(
    storage: &crate::storage::Storage,
    server: &crate::storage::ServerRow,
    secret: TargetSecret,
) -> Result<TargetHandle, UpstreamError> {
    let port = u16::try_from(server.port).unwrap_or(22);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = Verifier {
        server: server.name.clone(),
        pinned: server.host_key.clone(),
        seen: seen.clone(),
    };
    let config = Arc::new(client::Config {
        // Idle interactive sessions are kept alive; the gateway's own idle limit ends them.
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    });
    let target = format!("{}:{port}", server.host);
    let attempt = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let mut handle = client::connect(config, (server.host.as_str(), port), handler).await?;
        let result = match &secret {
            TargetSecret::Password(p) => {
                handle
                    .authenticate_password(server.login.clone(), p.as_str())
                    .await?
            }
            TargetSecret::Key(key) => {
                let hash = handle.best_supported_rsa_hash().await?.flatten();
                let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new((**key).clone()), hash);
                handle
                    .authenticate_publickey(server.login.clone(), key)
                    .await?
            }
        };
        Ok::<_, russh::Error>((handle, result.success()))
    })
    .await;

    let refused = seen.lock().ok().and_then(|mut s| s.refused.take());
    if let Some(e) = refused {
        return Err(e);
    }
    let (handle, authenticated) = match attempt {
        Err(_) => {
            return Err(UpstreamError::Timeout {
                target,
                secs: CONNECT_TIMEOUT.as_secs(),
            });
        }
        Ok(Err(russh::Error::IO(e))) => {
            return Err(UpstreamError::Unreachable {
                target,
                detail: e.to_string(),
            });
        }
        Ok(Err(e)) => {
            return Err(UpstreamError::Protocol {
                server: server.name.clone(),
                detail: e.to_string(),
            });
        }
        Ok(Ok(done)) => done,
    };
    if !authenticated {
        return Err(UpstreamError::AuthRejected {
            server: server.name.clone(),
            login: server.login.clone(),
        });
    }
    let pin = seen.lock().ok().and_then(|mut s| s.pin.take());
    if let Some(line) = pin {
        // Only pin when nothing was pinned meanwhile (another session, or an administrator).
        match storage.pin_host_key_if_unset(server.id, &line).await {
            Ok(true) => {
                if let Some(key) = parse_pinned(&line) {
                    tracing::info!(server = %server.name, fingerprint = %fingerprint(&key), "pinned the host key at first connection");
                }
            }
            Ok(false) => {
                // Pinned meanwhile: this connection's key must match what is pinned now.
                let now_pinned = storage
                    .server_by_name(&server.name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| s.host_key);
                let presented = parse_pinned(&line);
                match (now_pinned.as_deref(), presented) {
                    (Some(pinned), Some(presented)) => {
                        if let HostKeyVerdict::Changed { pinned, presented } =
                            verdict(Some(pinned), &presented, &server.name)?
                        {
                            TargetSession::refuse(&handle).await;
                            return Err(UpstreamError::HostKeyChanged {
                                server: server.name.clone(),
                                pinned,
                                presented,
                            });
                        }
                    }
                    _ => {
                        TargetSession::refuse(&handle).await;
                        return Err(UpstreamError::BadPin {
                            server: server.name.clone(),
                        });
                    }
                }
            }
            Err(e) => {
                // Without a stored pin the next connection could not be checked: refuse.
                tracing::warn!(server = %server.name, error = %e, "could not pin the host key");
                TargetSession::refuse(&handle).await;
                return Err(UpstreamError::Protocol {
                    server: server.name.clone(),
                    detail: "the host key could not be recorded; try again".into(),
                });
            }
        }
    }
    Ok(handle)
}
