//! The inventory as administrators change it: server groups by path, servers with their
//! credentials (sealed by the vault before they reach storage), user groups and grants.
//! The command line and, later, the panel's admin pages both call these functions, so the
//! validation rules live here once.

use zeroize::Zeroizing;

use crate::storage::{
    GrantTarget, Grantee, NewServer, ServerGroupRow, ServerRow, Storage, StorageError,
};
use crate::upstream::{self, UpstreamError};
use crate::vault::{self, Vault, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no {kind} named `{name}`")]
    NotFound { kind: &'static str, name: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

pub type Result<T> = std::result::Result<T, InventoryError>;

/// How the gateway authenticates to a target.
pub enum Credential {
    /// A password, stored sealed.
    Password(Zeroizing<String>),
    /// A private key in OpenSSH or PEM format, with its passphrase if it has one.
    PrivateKey {
        key: Zeroizing<String>,
        passphrase: Option<Zeroizing<String>>,
    },
    /// The gateway's own key; the target's authorized_keys must list its public half.
    GatewayKey,
}

impl Credential {
    fn kind(&self) -> &'static str {
        match self {
            Credential::Password(_) => "password",
            Credential::PrivateKey { .. } => "private_key",
            Credential::GatewayKey => "gateway_key",
        }
    }
}

/// A server as an administrator describes it.
pub struct ServerSpec<'a> {
    pub name: &'a str,
    pub group_path: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub login: &'a str,
    pub description: Option<&'a str>,
    pub credential: Credential,
}

/// Checks a name people will type in menus and commands.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(InventoryError::Invalid(format!(
            "`{name}` is not a valid {what} name: use 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Checks a user group's name (the same rule as other names people type).
pub fn check_user_group_name(name: &str) -> Result<()> {
    check_name("user group", name)
}

/// Splits and checks a group path such as `prod/web`.
pub fn parse_group_path(path: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = path.trim().trim_matches('/').split('/').collect();
    for p in &parts {
        check_name("server group", p)?;
    }
    Ok(parts)
}

/// Creates the group at `path` and any missing parents; returns the deepest group.
pub async fn ensure_group(storage: &Storage, path: &str) -> Result<ServerGroupRow> {
    let parts = parse_group_path(path)?;
    let mut parent: Option<i64> = None;
    let mut current = String::new();
    let mut last = None;
    for part in parts {
        if !current.is_empty() {
            current.push('/');
        }
        current.push_str(part);
        let group = match storage.server_group_by_path(&current).await? {
            Some(g) => g,
            None => {
                let id = match storage.create_server_group(parent, part, &current).await {
                    Ok(id) => id,
                    // Another node or command created it meanwhile: use theirs.
                    Err(StorageError::Conflict(_)) => storage
                        .server_group_by_path(&current)
                        .await?
                        .map(|g| g.id)
                        .ok_or_else(|| InventoryError::NotFound {
                            kind: "server group",
                            name: current.clone(),
                        })?,
                    Err(e) => return Err(e.into()),
                };
                ServerGroupRow {
                    id,
                    parent_id: parent,
                    name: part.to_string(),
                    path: current.clone(),
                }
            }
        };
        parent = Some(group.id);
        last = Some(group);
    }
    last.ok_or_else(|| InventoryError::Invalid("a server group path must not be empty".into()))
}

/// Checks what an administrator typed about a server; returns the trimmed host and login.
fn check_server<'a>(spec: &ServerSpec<'a>) -> Result<(&'a str, &'a str)> {
    check_name("server", spec.name)?;
    let host = spec.host.trim();
    if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
        return Err(InventoryError::Invalid(format!(
            "`{host}` is not a host name or address"
        )));
    }
    if spec.port == 0 {
        return Err(InventoryError::Invalid(
            "the port must be between 1 and 65535".into(),
        ));
    }
    let login = spec.login.trim();
    if login.is_empty() || login.len() > 64 || login.contains(char::is_whitespace) {
        return Err(InventoryError::Invalid(format!(
            "`{login}` is not a valid login name on the target"
        )));
    }
    Ok((host, login))
}

fn check_credential(credential: &Credential) -> Result<()> {
    match credential {
        Credential::Password(p) if p.is_empty() => Err(InventoryError::Invalid(
            "the target password is empty".into(),
        )),
        Credential::PrivateKey { key, passphrase } => {
            upstream::check_private_key(key, passphrase.as_ref().map(|p| p.as_str()))
                .map_err(InventoryError::Invalid)
        }
        _ => Ok(()),
    }
}

async fn group_for(storage: &Storage, path: &str) -> Result<ServerGroupRow> {
    storage
        .server_group_by_path(path.trim().trim_matches('/'))
        .await?
        .ok_or_else(|| InventoryError::NotFound {
            kind: "server group",
            name: path.to_string(),
        })
}

/// Seals the credential's secrets, bound to the server's id, and stores them.
async fn store_credential(
    storage: &Storage,
    vault: &Vault,
    server_id: i64,
    credential: &Credential,
) -> Result<()> {
    let (secret, passphrase) = match credential {
        Credential::Password(p) => (Some(p.as_bytes()), None),
        Credential::PrivateKey { key, passphrase } => (
            Some(key.as_bytes()),
            passphrase.as_ref().map(|p| p.as_bytes()),
        ),
        Credential::GatewayKey => (None, None),
    };
    let sealed_secret = secret
        .map(|s| vault.seal(&vault::secret_context(server_id, "secret"), s))
        .transpose()?;
    let sealed_passphrase = passphrase
        .map(|s| vault.seal(&vault::secret_context(server_id, "passphrase"), s))
        .transpose()?;
    storage
        .set_server_secrets(
            server_id,
            sealed_secret.as_deref(),
            sealed_passphrase.as_deref(),
        )
        .await?;
    Ok(())
}

async fn server_named(storage: &Storage, name: &str) -> Result<ServerRow> {
    storage
        .server_by_name(name)
        .await?
        .ok_or_else(|| InventoryError::NotFound {
            kind: "server",
            name: name.to_string(),
        })
}

/// Adds a server in an existing group, sealing its credential under the vault.
pub async fn add_server(
    storage: &Storage,
    vault: &Vault,
    spec: ServerSpec<'_>,
) -> Result<ServerRow> {
    let (host, login) = check_server(&spec)?;
    check_credential(&spec.credential)?;
    let group = group_for(storage, spec.group_path).await?;

    let id = storage
        .create_server(&NewServer {
            name: spec.name,
            group_id: group.id,
            host,
            port: spec.port,
            login,
            description: spec.description,
            auth_kind: spec.credential.kind(),
        })
        .await?;

    // Sealed after the row exists, because the sealing binds each value to the server's id.
    if let Err(e) = store_credential(storage, vault, id, &spec.credential).await {
        // Leave no server behind that looks configured but has no credential.
        let _ = storage.delete_server(id).await;
        return Err(e);
    }
    server_named(storage, spec.name).await
}

/// Changes the server now called `current_name`. With `replace_credential` false the stored
/// credential stays as it is (and `spec.credential` only has to name the same kind); secrets are
/// never read back, only replaced.
pub async fn update_server(
    storage: &Storage,
    vault: &Vault,
    current_name: &str,
    spec: ServerSpec<'_>,
    replace_credential: bool,
) -> Result<ServerRow> {
    let existing = server_named(storage, current_name).await?;
    let (host, login) = check_server(&spec)?;
    let kind = spec.credential.kind();
    if replace_credential {
        check_credential(&spec.credential)?;
    } else if kind != existing.auth_kind && kind != "gateway_key" {
        return Err(InventoryError::Invalid(format!(
            "switching `{}` to {} needs the new secret",
            existing.name,
            kind.replace('_', " ")
        )));
    }
    let group = group_for(storage, spec.group_path).await?;
    storage
        .update_server(
            existing.id,
            &NewServer {
                name: spec.name,
                group_id: group.id,
                host,
                port: spec.port,
                login,
                description: spec.description,
                auth_kind: kind,
            },
        )
        .await?;
    if replace_credential || kind == "gateway_key" {
        store_credential(storage, vault, existing.id, &spec.credential).await?;
    }
    server_named(storage, spec.name).await
}

/// Deletes a server group that holds no groups and no servers.
pub async fn delete_group(storage: &Storage, path: &str) -> Result<()> {
    let group = group_for(storage, path).await?;
    let groups = storage.server_groups().await?;
    let servers = storage.servers().await?;
    if groups.iter().any(|g| g.parent_id == Some(group.id))
        || servers.iter().any(|s| s.group_id == group.id)
    {
        return Err(InventoryError::Invalid(format!(
            "server group `{}` is not empty: move or delete its servers and groups first",
            group.path
        )));
    }
    storage.delete_server_group(group.id).await?;
    Ok(())
}

/// What a host-key scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    /// No key was pinned; this one now is.
    Pinned { fingerprint: String },
    /// The pinned key is the one presented.
    Unchanged { fingerprint: String },
    /// The key differed and the administrator accepted the new one.
    Replaced { old: String, new: String },
}

/// Reads the server's host key and pins it if none is pinned. A changed key is refused unless
/// `accept_change` is set (an administrator's decision after checking the new fingerprint).
pub async fn scan_host_key(
    storage: &Storage,
    name: &str,
    accept_change: bool,
) -> Result<ScanOutcome> {
    let server = server_named(storage, name).await?;
    let port = u16::try_from(server.port).unwrap_or(22);
    let key = upstream::scan_host_key(&server.host, port).await?;
    let line = upstream::openssh_line(&key);
    let presented = upstream::fingerprint(&key);
    match upstream::verdict(server.host_key.as_deref(), &key, &server.name) {
        Ok(upstream::HostKeyVerdict::Match) => Ok(ScanOutcome::Unchanged {
            fingerprint: presented,
        }),
        Ok(upstream::HostKeyVerdict::FirstUse) => {
            storage.set_host_key(server.id, Some(&line)).await?;
            Ok(ScanOutcome::Pinned {
                fingerprint: presented,
            })
        }
        Ok(upstream::HostKeyVerdict::Changed { pinned, presented }) => {
            if !accept_change {
                return Err(upstream::UpstreamError::HostKeyChanged {
                    server: server.name,
                    pinned,
                    presented,
                }
                .into());
            }
            storage.set_host_key(server.id, Some(&line)).await?;
            Ok(ScanOutcome::Replaced {
                old: pinned,
                new: presented,
            })
        }
        // An unreadable pin is replaced only on an explicit decision, like a changed key.
        Err(e) if !accept_change => Err(e.into()),
        Err(_) => {
            storage.set_host_key(server.id, Some(&line)).await?;
            Ok(ScanOutcome::Pinned {
                fingerprint: presented,
            })
        }
    }
}

/// Resolves the names in a grant command.
pub async fn resolve_grant(
    storage: &Storage,
    user: Option<&str>,
    user_group: Option<&str>,
    group_path: Option<&str>,
    server: Option<&str>,
) -> Result<(Grantee, GrantTarget)> {
    let grantee = match (user, user_group) {
        (Some(name), None) => Grantee::User(
            storage
                .user_by_username(name)
                .await?
                .ok_or_else(|| InventoryError::NotFound {
                    kind: "user",
                    name: name.to_string(),
                })?
                .id,
        ),
        (None, Some(name)) => Grantee::UserGroup(
            storage
                .user_group_by_name(name)
                .await?
                .ok_or_else(|| InventoryError::NotFound {
                    kind: "user group",
                    name: name.to_string(),
                })?
                .id,
        ),
        _ => {
            return Err(InventoryError::Invalid(
                "name exactly one of --user or --user-group".into(),
            ));
        }
    };
    let target = match (group_path, server) {
        (Some(path), None) => GrantTarget::ServerGroup(
            storage
                .server_group_by_path(path.trim().trim_matches('/'))
                .await?
                .ok_or_else(|| InventoryError::NotFound {
                    kind: "server group",
                    name: path.to_string(),
                })?
                .id,
        ),
        (None, Some(name)) => GrantTarget::Server(
            storage
                .server_by_name(name)
                .await?
                .ok_or_else(|| InventoryError::NotFound {
                    kind: "server",
                    name: name.to_string(),
                })?
                .id,
        ),
        _ => {
            return Err(InventoryError::Invalid(
                "name exactly one of --group or --server".into(),
            ));
        }
    };
    Ok((grantee, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_are_checked_part_by_part() {
        assert_eq!(parse_group_path("prod/web").ok(), Some(vec!["prod", "web"]));
        assert_eq!(parse_group_path("/prod/").ok(), Some(vec!["prod"]));
        assert!(parse_group_path("prod//web").is_err());
        assert!(parse_group_path("pro d").is_err());
        assert!(parse_group_path("").is_err());
    }
}
