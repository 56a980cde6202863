//! SSH public keys that people register under Account, and signing in to the SSH gateway with
//! one. A key replaces the password and the security code; the TOTP step, where enabled, is
//! still asked by the gateway.

use app::api::ApiError;
use app::api::SshKeySummary;
use app::api::backend::RequestContext;
use russh::keys::PublicKey;
use tracing::info;

use super::{Auth, ServiceError};
use crate::storage::{StorageError, UserRow};
use crate::upstream;

/// Longest key name kept.
const MAX_NAME_LEN: usize = 100;
/// Longest public-key line taken (an RSA 16384-bit key is about 2.8 kB).
const MAX_KEY_LEN: usize = 8192;

/// Parses one `authorized_keys`-style line: `type base64 [comment]`.
fn parse_public_key(text: &str) -> Result<PublicKey, ApiError> {
    let line = text.trim();
    if line.is_empty() || line.len() > MAX_KEY_LEN || line.contains('\n') {
        return Err(ApiError::Invalid(
            "Paste one public key on one line, as in ~/.ssh/id_ed25519.pub.".into(),
        ));
    }
    let key = PublicKey::from_openssh(line).map_err(|_| {
        ApiError::Invalid(
            "That is not an OpenSSH public key. Paste the contents of a .pub file, such as ~/.ssh/id_ed25519.pub (never the private key)."
                .into(),
        )
    })?;
    use russh::keys::Algorithm;
    match key.algorithm() {
        Algorithm::Ed25519
        | Algorithm::Ecdsa { .. }
        | Algorithm::SkEd25519
        | Algorithm::SkEcdsaSha2NistP256 => Ok(key),
        Algorithm::Rsa { .. } => {
            let bits = key.key_data().rsa().map(|k| k.key_size()).unwrap_or(0);
            if bits < 2048 {
                return Err(ApiError::Invalid(
                    "RSA keys must have at least 2048 bits. An Ed25519 key (ssh-keygen -t ed25519) is better still.".into(),
                ));
            }
            Ok(key)
        }
        other => Err(ApiError::Invalid(format!(
            "{} keys are not accepted; use Ed25519, ECDSA or RSA (2048 bits or more).",
            other.as_str()
        ))),
    }
}

impl Auth {
    pub(super) async fn list_ssh_keys(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<SshKeySummary>, ApiError> {
        let me = self.require_signed_in(ctx).await?;
        let rows = self
            .storage
            .ssh_keys_of(me.user.id)
            .await
            .map_err(ServiceError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| SshKeySummary {
                id: r.id,
                algorithm: r
                    .public_key
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                name: r.name,
                fingerprint: r.fingerprint,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
            })
            .collect())
    }

    pub(super) async fn register_ssh_key(
        &self,
        ctx: &RequestContext,
        name: String,
        public_key: String,
    ) -> Result<(), ApiError> {
        let me = self.require_signed_in(ctx).await?;
        let key = parse_public_key(&public_key)?;
        let name = match name.trim() {
            "" => key.comment().as_str_lossy().trim().to_string(),
            given => given.to_string(),
        };
        let name = if name.is_empty() {
            "key".to_string()
        } else {
            name
        };
        if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(ApiError::Invalid(format!(
                "The name must be at most {MAX_NAME_LEN} characters, without control characters."
            )));
        }
        let line = upstream::openssh_line(&key);
        let fingerprint = upstream::fingerprint(&key);
        match self
            .storage
            .add_ssh_key(me.user.id, &name, &line, &fingerprint)
            .await
        {
            Ok(_) => {
                info!(user = %me.user.username, %fingerprint, "SSH key registered");
                Ok(())
            }
            Err(StorageError::Conflict(_)) => Err(ApiError::Invalid(
                "That key is already registered. Each key can belong to one account only.".into(),
            )),
            Err(e) => Err(ServiceError::from(e).into()),
        }
    }

    pub(super) async fn remove_ssh_key(
        &self,
        ctx: &RequestContext,
        id: i64,
    ) -> Result<(), ApiError> {
        let me = self.require_signed_in(ctx).await?;
        let removed = self
            .storage
            .delete_ssh_key(me.user.id, id)
            .await
            .map_err(ServiceError::from)?;
        if !removed {
            return Err(ApiError::Invalid(
                "That key is not registered (any more). Reload the page.".into(),
            ));
        }
        info!(user = %me.user.username, key = id, "SSH key removed");
        Ok(())
    }

    /// The active account `login` (user name or email) that registered `key`, if any, with the
    /// key's id. Used by the SSH gateway before and after the client proves it holds the key.
    pub async fn ssh_key_owner(
        &self,
        login: &str,
        key: &PublicKey,
    ) -> Result<Option<(UserRow, i64)>, ServiceError> {
        let line = upstream::openssh_line(key);
        let Some(row) = self.storage.ssh_key_by_public(&line).await? else {
            return Ok(None);
        };
        let Some(user) = self.storage.user_by_login(login.trim()).await? else {
            return Ok(None);
        };
        if user.id != row.user_id || !user.is_active() {
            return Ok(None);
        }
        Ok(Some((user, row.id)))
    }

    /// Records a completed key sign-in (the key's last use and the account's last sign-in).
    pub async fn ssh_key_signed_in(
        &self,
        user: &UserRow,
        key_id: i64,
        ip: std::net::IpAddr,
    ) -> Result<(), ServiceError> {
        self.storage.touch_ssh_key(key_id).await?;
        self.storage.touch_last_login(user.id).await?;
        info!(user = %user.username, client.ip = %ip, method = "publickey", "signed in over SSH");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_parsed_and_weak_ones_refused() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJnPp2RqCn+KQtynQ67rLfdzhKl2YyMtpoDH5HV71IAt me@laptop";
        let key = parse_public_key(ed).ok();
        assert_eq!(
            key.map(|k| k.comment().as_str_lossy().to_string())
                .as_deref(),
            Some("me@laptop")
        );
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key("-----BEGIN OPENSSH PRIVATE KEY-----").is_err());
        assert!(parse_public_key(&format!("{ed}\n{ed}")).is_err());
    }
}
