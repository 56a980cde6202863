//! The credential vault: target passwords, private keys and passphrases, and TOTP secrets,
//! encrypted at rest.
//!
//! Secrets are sealed with XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`) under a 256-bit
//! master key. The key lives in a file in the data directory, created with mode 0600 on first
//! start, or comes from configuration (`vault.master_key`, i.e. `JUMPGATE_VAULT_MASTER_KEY`).
//!
//! What is verified: every sealed value carries a random nonce and is bound to the record it
//! belongs to (associated data such as `server:7:password`), so a value copied onto another
//! record does not open. A check value in the database, sealed under the same key, is opened at
//! start: a wrong or missing key stops Jumpgate before anything is written with it.
//! What is trusted: the file system permissions of the key file.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// Prefix of a sealed value; a new format gets a new prefix so old values stay readable.
const FORMAT: &str = "v1:";
const CHECK_CONTEXT: &[u8] = b"jumpgate-vault-check";
const CHECK_PLAINTEXT: &[u8] = b"jumpgate vault key check";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the vault master key does not match this database: the secrets stored here were sealed with another key. \
         Restore the right key file ({path}) or set vault.master_key to the key used before; nothing was changed"
    )]
    WrongKey { path: String },
    #[error(
        "the database holds sealed secrets but the vault master key file {path} is missing. \
         Restore it from your backup (or set vault.master_key); Jumpgate will not start without it"
    )]
    MissingKey { path: String },
    #[error(
        "the vault master key in {origin} is malformed: expected 32 bytes in base64 ({detail})"
    )]
    BadKey { origin: String, detail: String },
    #[error("cannot {action} the vault key file {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "a stored secret could not be opened (record {context}): it is damaged or was sealed under another key"
    )]
    Unseal { context: String },
    #[error("sealing a secret failed")]
    Seal,
}

/// A master key in memory; wiped when dropped and never printed.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<hidden>)")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        MasterKey(bytes)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, VaultError> {
        let bad = |detail: String| VaultError::BadKey {
            origin: origin.to_string(),
            detail,
        };
        let decoded = Zeroizing::new(B64.decode(text.trim()).map_err(|e| bad(e.to_string()))?);
        let array: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("found {} bytes", decoded.len())))?;
        Ok(MasterKey(Zeroizing::new(array)))
    }

    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.0.as_ref()))
    }
}

/// Seals and opens secrets under one master key.
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(<key hidden>)")
    }
}

impl Vault {
    pub fn new(key: &MasterKey) -> Self {
        Vault {
            cipher: XChaCha20Poly1305::new(key.0.as_ref().into()),
        }
    }

    /// Seals `plaintext` for the record named by `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, VaultError> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Seal)?;
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{FORMAT}{}", B64.encode(out)))
    }

    /// Opens a value sealed for `context`. Fails closed on any mismatch.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let fail = || VaultError::Unseal {
            context: context.to_string(),
        };
        let body = sealed.strip_prefix(FORMAT).ok_or_else(fail)?;
        let raw = B64.decode(body).map_err(|_| fail())?;
        if raw.len() < 24 + 16 {
            return Err(fail());
        }
        let (nonce, ciphertext) = raw.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| fail())
    }

    /// The value stored in the database to recognise this key later.
    pub fn check_value(&self) -> Result<String, VaultError> {
        self.seal(
            std::str::from_utf8(CHECK_CONTEXT).unwrap_or_default(),
            CHECK_PLAINTEXT,
        )
    }

    /// True when `check` was made by [`Vault::check_value`] under this vault's key.
    pub fn matches(&self, check: &str) -> bool {
        self.open(
            std::str::from_utf8(CHECK_CONTEXT).unwrap_or_default(),
            check,
        )
        .map(|p| p.as_slice() == CHECK_PLAINTEXT)
        .unwrap_or(false)
    }
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A key file (created on first use when allowed).
    File(PathBuf),
    /// The key itself, from configuration.
    Inline(String),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::File(p) => p.display().to_string(),
            KeySource::Inline(_) => "vault.master_key".into(),
        }
    }
}

/// Reads the key file, if it exists.
pub fn read_key_file(path: &Path) -> Result<Option<MasterKey>, VaultError> {
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::parse(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VaultError::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Writes a key file with mode 0600, atomically (a temporary file renamed into place), so that
/// a crash never leaves a half-written key.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    let io = |action: &'static str| {
        let path = path.display().to_string();
        move |source| VaultError::Io {
            action,
            path,
            source,
        }
    };
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io("create"))?;
        file.write_all(key.encode().as_bytes())
            .map_err(io("write"))?;
        file.write_all(b"\n").map_err(io("write"))?;
        file.sync_all().map_err(io("write"))?;
    }
    std::fs::rename(&tmp, path).map_err(io("replace"))
}

/// Opens the vault at start-up, creating the key on the first start of an empty database.
///
/// Refuses, without writing anything, when the database holds a key check that the configured
/// key does not open, or when it holds one and the key file is gone. Finishes a rotation that
/// was interrupted after the database switched to the new key (see [`rotate`]).
/// Also seals TOTP secrets stored in plain base32 by versions before they were sealed.
pub async fn open_at_start(
    storage: &crate::storage::Storage,
    source: &KeySource,
) -> Result<Vault, StartError> {
    let vault = open_key(storage, source).await?;
    seal_plain_totp(storage, &vault).await?;
    Ok(vault)
}

async fn open_key(
    storage: &crate::storage::Storage,
    source: &KeySource,
) -> Result<Vault, StartError> {
    let check = storage.vault_check().await?;

    let key = match source {
        KeySource::Inline(text) => Some(MasterKey::parse(text, "vault.master_key")?),
        KeySource::File(path) => {
            let pending = pending_path(path);
            if let (Some(check), Some(next)) = (&check, read_key_file(&pending)?) {
                if Vault::new(&next).matches(check) {
                    // The database already uses the new key: complete the file swap.
                    std::fs::rename(&pending, path).map_err(|source| VaultError::Io {
                        action: "replace",
                        path: path.display().to_string(),
                        source,
                    })?;
                } else {
                    // The rotation never committed: the old key is still the one.
                    let _ = std::fs::remove_file(&pending);
                }
            }
            read_key_file(path)?
        }
    };

    match (key, check) {
        (Some(key), Some(check)) => {
            let vault = Vault::new(&key);
            if vault.matches(&check) {
                Ok(vault)
            } else {
                Err(VaultError::WrongKey {
                    path: source.describe(),
                }
                .into())
            }
        }
        (Some(key), None) => {
            let vault = Vault::new(&key);
            storage.set_vault_check(&vault.check_value()?).await?;
            Ok(vault)
        }
        (None, Some(_)) => Err(VaultError::MissingKey {
            path: source.describe(),
        }
        .into()),
        (None, None) => {
            let KeySource::File(path) = source else {
                return Err(VaultError::MissingKey {
                    path: source.describe(),
                }
                .into());
            };
            let key = MasterKey::generate();
            write_key_file(path, &key)?;
            let vault = Vault::new(&key);
            storage.set_vault_check(&vault.check_value()?).await?;
            tracing::info!(path = %path.display(), "created the vault master key");
            Ok(vault)
        }
    }
}

fn pending_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// Errors of start-up and rotation, which touch both the key and the database.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// Re-encrypts every stored secret under a new master key and returns it.
///
/// Order matters so that no crash loses a secret: the new key is written beside the old one
/// first (`vault.key.new`), then every secret and the key check change in one database
/// transaction, then the new file replaces the old. Start-up completes or discards a
/// half-finished rotation. With an inline key, the caller must publish the returned key.
///
/// Known shortcoming: a running server (every node of a site) keeps the old key in memory until
/// restarted: until then it cannot open what was re-sealed, and a TOTP enrolment it seals
/// meanwhile will not open under the new key (the person enrols again). The command says to
/// restart right after rotating.
pub async fn rotate(
    storage: &crate::storage::Storage,
    source: &KeySource,
    current: &Vault,
) -> Result<MasterKey, StartError> {
    let next_key = MasterKey::generate();
    let next = Vault::new(&next_key);

    let mut resealed = Vec::new();
    for server in storage.servers().await? {
        let reseal = |field: &str, sealed: &Option<String>| -> Result<Option<String>, VaultError> {
            match sealed {
                Some(value) => {
                    let context = secret_context(server.id, field);
                    let plain = current.open(&context, value)?;
                    next.seal(&context, &plain).map(Some)
                }
                None => Ok(None),
            }
        };
        resealed.push((
            server.id,
            reseal("secret", &server.secret_sealed)?,
            reseal("passphrase", &server.passphrase_sealed)?,
        ));
    }

    let mut totp = Vec::new();
    for old in storage.totp_values().await? {
        let context = totp_context(old.user_id);
        // A plain value from before sealing is sealed on the way.
        let reseal = |stored: &Option<String>| -> Result<Option<String>, VaultError> {
            match stored {
                Some(value) if is_sealed(value) => next
                    .seal(&context, &current.open(&context, value)?)
                    .map(Some),
                Some(plain) => next.seal(&context, plain.as_bytes()).map(Some),
                None => Ok(None),
            }
        };
        let new = crate::storage::TotpValues {
            user_id: old.user_id,
            active: reseal(&old.active)?,
            pending: reseal(&old.pending)?,
        };
        totp.push((old, new));
    }

    if let KeySource::File(path) = source {
        write_key_file(&pending_path(path), &next_key)?;
    }
    storage
        .reseal_all(&resealed, &totp, &next.check_value()?)
        .await?;
    if let KeySource::File(path) = source {
        std::fs::rename(pending_path(path), path).map_err(|source| VaultError::Io {
            action: "replace",
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(next_key)
}

/// The associated data binding a sealed value to its server and field.
pub fn secret_context(server_id: i64, field: &str) -> String {
    format!("server:{server_id}:{field}")
}

/// The associated data binding a sealed TOTP secret to its user. The pending secret of an
/// enrolment and the active one share it, so that confirming moves the sealed value as it is.
pub fn totp_context(user_id: i64) -> String {
    format!("user:{user_id}:totp")
}

/// Whether `value` is sealed (rather than a plain value from before sealing).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(FORMAT)
}

/// Seals every TOTP secret still stored in plain base32, so that a copy of the database no
/// longer reveals them. A value that changes meanwhile is left for the next start.
async fn seal_plain_totp(
    storage: &crate::storage::Storage,
    vault: &Vault,
) -> Result<(), StartError> {
    let mut sealed = 0;
    for old in storage.totp_values().await? {
        let context = totp_context(old.user_id);
        let seal = |value: &Option<String>| -> Result<Option<String>, VaultError> {
            match value {
                Some(v) if !is_sealed(v) => vault.seal(&context, v.as_bytes()).map(Some),
                other => Ok(other.clone()),
            }
        };
        let new = crate::storage::TotpValues {
            user_id: old.user_id,
            active: seal(&old.active)?,
            pending: seal(&old.pending)?,
        };
        if new != old && storage.replace_totp_values(&old, &new).await? {
            sealed += 1;
        }
    }
    if sealed > 0 {
        tracing::info!(
            users = sealed,
            "sealed TOTP secrets stored before they were encrypted"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn round_trip_and_binding_to_the_record() {
        let vault = Vault::new(&MasterKey::generate());
        let sealed = vault.seal("server:1:password", b"hunter22").unwrap();
        assert!(!sealed.contains("hunter22"));
        assert_eq!(
            vault.open("server:1:password", &sealed).unwrap().as_slice(),
            b"hunter22"
        );
        // Moved onto another record, it does not open.
        assert!(vault.open("server:2:password", &sealed).is_err());
        // Each sealing uses a fresh nonce.
        assert_ne!(
            sealed,
            vault.seal("server:1:password", b"hunter22").unwrap()
        );
    }

    #[test]
    fn another_key_or_tampering_is_refused() {
        let a = Vault::new(&MasterKey::generate());
        let b = Vault::new(&MasterKey::generate());
        let sealed = a.seal("ctx", b"secret").unwrap();
        assert!(b.open("ctx", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(a.open("ctx", &tampered).is_err());
        assert!(a.open("ctx", "v1:").is_err());
        assert!(a.open("ctx", "garbage").is_err());
        assert!(a.matches(&a.check_value().unwrap()));
        assert!(!b.matches(&a.check_value().unwrap()));
    }

    #[test]
    fn key_file_is_private_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.key");
        let key = MasterKey::generate();
        write_key_file(&path, &key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = read_key_file(&path).unwrap().unwrap();
        assert_eq!(back.encode().as_str(), key.encode().as_str());
        assert!(read_key_file(&dir.path().join("none")).unwrap().is_none());
        assert!(MasterKey::parse("c2hvcnQ=", "test").is_err());
    }
}
