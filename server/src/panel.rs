//! The panel's Servers and Access pages on the server side: turns their forms into calls to
//! [`crate::inventory`] and storage, for administrators only.
//!
//! The same validation as the command line applies, because both go through
//! [`crate::inventory`]. Secrets arrive in form fields, are sealed at once and never returned.

use std::collections::HashMap;
use std::sync::Arc;

use app::api::ApiError;
use app::api::backend::RequestContext;
use app::inventory::backend::InventoryBackend;
use app::inventory::{
    GrantInfo, GroupInfo, Inventory, NavData, ReachableServer, ServerForm, ServerInfo,
    UserGroupInfo,
};
use app::nav::NavServer;
use tracing::{error, info};
use zeroize::Zeroizing;

use crate::access;
use crate::auth::Auth;
use crate::inventory::{self, Credential, InventoryError, ScanOutcome, ServerSpec};
use crate::storage::{GrantTarget, Grantee, StorageError};
use crate::upstream;
use crate::vault::Vault;

/// The inventory pages' backend.
#[derive(Clone)]
pub struct InventoryPanel {
    auth: Auth,
    vault: Arc<Vault>,
    gateway_public_key: String,
}

impl InventoryPanel {
    pub fn new(auth: Auth, vault: Arc<Vault>, gateway_public_key: String) -> Self {
        InventoryPanel {
            auth,
            vault,
            gateway_public_key,
        }
    }
}

/// Puts the first letter in upper case and ends with a full stop: inventory messages are
/// written for the command line's one-line style.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

impl From<InventoryError> for ApiError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Invalid(_)
            | InventoryError::NotFound { .. }
            | InventoryError::Upstream(_)
            | InventoryError::Storage(StorageError::Conflict(_)) => {
                ApiError::Invalid(sentence(&e.to_string()))
            }
            InventoryError::Storage(_) | InventoryError::Vault(_) => {
                error!(error = %e, "inventory change failed inside the server");
                ApiError::Internal
            }
        }
    }
}

fn internal(e: StorageError) -> ApiError {
    InventoryError::from(e).into()
}

/// Reads the credential fields of a server form. `None` means "keep what is stored".
fn credential_from(form: &ServerForm) -> Result<(Credential, bool), ApiError> {
    let password = Zeroizing::new(form.password.clone());
    let key = Zeroizing::new(form.private_key.trim().to_string());
    let passphrase = Some(Zeroizing::new(form.passphrase.clone())).filter(|p| !p.is_empty());
    match form.auth_kind.as_str() {
        "password" => {
            let given = !password.is_empty();
            Ok((Credential::Password(password), given))
        }
        "private_key" => {
            let given = !key.is_empty();
            Ok((Credential::PrivateKey { key, passphrase }, given))
        }
        "gateway_key" => Ok((Credential::GatewayKey, true)),
        other => Err(ApiError::Invalid(format!(
            "`{other}` is not a way to sign in to a target: choose password, private key or the gateway key."
        ))),
    }
}

fn parse_port(text: &str) -> Result<u16, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(22);
    }
    text.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::Invalid(format!("`{text}` is not a port: use 1 to 65535.")))
}

#[async_trait::async_trait]
impl InventoryBackend for InventoryPanel {
    async fn my_servers(&self, ctx: &RequestContext) -> Result<Vec<ReachableServer>, ApiError> {
        let me = self.auth.require_signed_in(ctx).await?;
        let servers = access::reachable_with_paths(self.auth.storage(), &me.user)
            .await
            .map_err(internal)?;
        Ok(servers
            .into_iter()
            .map(|(s, group_path)| ReachableServer {
                group_path,
                name: s.name,
                description: s.description,
            })
            .collect())
    }

    async fn console_nav(&self, ctx: &RequestContext) -> Result<NavData, ApiError> {
        let me = self.auth.require_signed_in(ctx).await?;
        let storage = self.auth.storage();
        let servers = access::reachable_with_paths(storage, &me.user)
            .await
            .map_err(internal)?;
        let favourites = storage.favourites(me.user.id).await.map_err(internal)?;
        let recents = storage
            .recents(me.user.id, app::nav::RECENTS_SHOWN as i64)
            .await
            .map_err(internal)?;
        Ok(NavData {
            servers: servers
                .into_iter()
                .map(|(s, group_path)| NavServer {
                    name: s.name,
                    group_path,
                    description: s.description,
                })
                .collect(),
            favourites,
            recents,
        })
    }

    async fn set_favourite(
        &self,
        ctx: &RequestContext,
        server: String,
        on: bool,
    ) -> Result<(), ApiError> {
        let me = self.auth.require_signed_in(ctx).await?;
        let storage = self.auth.storage();
        let row = access::reachable_server(storage, &me.user, &server)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::Invalid(format!("No server called {server} is available to you."))
            })?;
        storage
            .set_favourite(me.user.id, row.id, on)
            .await
            .map_err(internal)
    }

    async fn inventory(&self, ctx: &RequestContext) -> Result<Inventory, ApiError> {
        self.auth.require_admin(ctx).await?;
        let storage = self.auth.storage();
        let groups = storage.server_groups().await.map_err(internal)?;
        let servers = storage.servers().await.map_err(internal)?;
        let users = storage.users().await.map_err(internal)?;
        let user_groups = storage.user_groups().await.map_err(internal)?;
        let memberships = storage.group_memberships().await.map_err(internal)?;
        let grants = storage.grants().await.map_err(internal)?;

        let group_path: HashMap<i64, &str> =
            groups.iter().map(|g| (g.id, g.path.as_str())).collect();
        let server_name: HashMap<i64, &str> =
            servers.iter().map(|s| (s.id, s.name.as_str())).collect();
        let user_name: HashMap<i64, &str> =
            users.iter().map(|u| (u.id, u.username.as_str())).collect();
        let user_group_name: HashMap<i64, &str> = user_groups
            .iter()
            .map(|g| (g.id, g.name.as_str()))
            .collect();

        let group_infos = groups
            .iter()
            .map(|g| GroupInfo {
                path: g.path.clone(),
                name: g.name.clone(),
                depth: g.path.matches('/').count(),
                servers: servers.iter().filter(|s| s.group_id == g.id).count(),
            })
            .collect();
        let server_infos = servers
            .iter()
            .map(|s| ServerInfo {
                name: s.name.clone(),
                group_path: group_path.get(&s.group_id).unwrap_or(&"?").to_string(),
                host: s.host.clone(),
                port: u16::try_from(s.port).unwrap_or(22),
                login: s.login.clone(),
                description: s.description.clone(),
                auth_kind: s.auth_kind.clone(),
                has_secret: s.secret_sealed.is_some(),
                host_key_fingerprint: s
                    .host_key
                    .as_deref()
                    .and_then(upstream::parse_pinned)
                    .map(|k| upstream::fingerprint(&k)),
            })
            .collect();
        let user_group_infos = user_groups
            .iter()
            .map(|g| {
                let mut members: Vec<String> = memberships
                    .iter()
                    .filter(|(group, _)| *group == g.id)
                    .filter_map(|(_, user)| user_name.get(user).map(|n| n.to_string()))
                    .collect();
                members.sort();
                UserGroupInfo {
                    name: g.name.clone(),
                    description: g.description.clone(),
                    members,
                }
            })
            .collect();
        let name_of = |map: &HashMap<i64, &str>, id: i64| map.get(&id).unwrap_or(&"?").to_string();
        let grant_infos = grants
            .iter()
            .map(|g| GrantInfo {
                id: g.id,
                grantee: match (g.user_id, g.user_group_id) {
                    (Some(id), _) => format!("user:{}", name_of(&user_name, id)),
                    (_, Some(id)) => format!("user-group:{}", name_of(&user_group_name, id)),
                    _ => "?".into(),
                },
                target: match (g.server_group_id, g.server_id) {
                    (Some(id), _) => format!("group:{}", name_of(&group_path, id)),
                    (_, Some(id)) => format!("server:{}", name_of(&server_name, id)),
                    _ => "?".into(),
                },
            })
            .collect();

        Ok(Inventory {
            groups: group_infos,
            servers: server_infos,
            user_groups: user_group_infos,
            grants: grant_infos,
            usernames: users.iter().map(|u| u.username.clone()).collect(),
            gateway_public_key: self.gateway_public_key.clone(),
        })
    }

    async fn add_group(&self, ctx: &RequestContext, path: String) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let group = inventory::ensure_group(self.auth.storage(), &path).await?;
        info!(admin = %admin.user.username, group = %group.path, "server group added");
        Ok(())
    }

    async fn delete_group(&self, ctx: &RequestContext, path: String) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        inventory::delete_group(self.auth.storage(), &path).await?;
        info!(admin = %admin.user.username, group = %path, "server group deleted");
        Ok(())
    }

    async fn save_server(&self, ctx: &RequestContext, form: ServerForm) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let (credential, given) = credential_from(&form)?;
        let description = Some(form.description.trim()).filter(|d| !d.is_empty());
        let spec = ServerSpec {
            name: form.name.trim(),
            group_path: &form.group,
            host: &form.host,
            port: parse_port(&form.port)?,
            login: &form.login,
            description,
            credential,
        };
        let storage = self.auth.storage();
        let original = form.original_name.trim();
        if original.is_empty() {
            if !given {
                return Err(ApiError::Invalid(
                    "Give the target's password or private key, or choose the gateway key.".into(),
                ));
            }
            let server = inventory::add_server(storage, &self.vault, spec).await?;
            info!(admin = %admin.user.username, server = %server.name, "server added");
        } else {
            let server =
                inventory::update_server(storage, &self.vault, original, spec, given).await?;
            info!(admin = %admin.user.username, server = %server.name, secret_replaced = given, "server changed");
        }
        Ok(())
    }

    async fn delete_server(&self, ctx: &RequestContext, name: String) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let storage = self.auth.storage();
        let server = storage
            .server_by_name(&name)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::Invalid(format!("There is no server named {name}.")))?;
        storage.delete_server(server.id).await.map_err(internal)?;
        info!(admin = %admin.user.username, server = %name, "server deleted");
        Ok(())
    }

    async fn scan_host_key(
        &self,
        ctx: &RequestContext,
        name: String,
        accept_change: bool,
    ) -> Result<String, ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let outcome = inventory::scan_host_key(self.auth.storage(), &name, accept_change).await?;
        let message = match outcome {
            ScanOutcome::Pinned { fingerprint } => {
                format!("Pinned the host key of {name}: {fingerprint}")
            }
            ScanOutcome::Unchanged { fingerprint } => {
                format!("The host key of {name} is unchanged: {fingerprint}")
            }
            ScanOutcome::Replaced { old, new } => {
                format!("Accepted the new host key of {name}: {new} (was {old})")
            }
        };
        info!(admin = %admin.user.username, server = %name, "{message}");
        Ok(message)
    }

    async fn add_user_group(
        &self,
        ctx: &RequestContext,
        name: String,
        description: String,
    ) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let name = name.trim();
        inventory::check_user_group_name(name)?;
        let description = Some(description.trim()).filter(|d| !d.is_empty());
        self.auth
            .storage()
            .create_user_group(name, description)
            .await
            .map_err(InventoryError::from)?;
        info!(admin = %admin.user.username, user_group = %name, "user group added");
        Ok(())
    }

    async fn delete_user_group(&self, ctx: &RequestContext, name: String) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let storage = self.auth.storage();
        let group = storage
            .user_group_by_name(&name)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::Invalid(format!("There is no user group named {name}.")))?;
        storage
            .delete_user_group(group.id)
            .await
            .map_err(internal)?;
        info!(admin = %admin.user.username, user_group = %name, "user group deleted");
        Ok(())
    }

    async fn set_membership(
        &self,
        ctx: &RequestContext,
        group: String,
        username: String,
        member: bool,
    ) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let storage = self.auth.storage();
        let group_row = storage
            .user_group_by_name(&group)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::Invalid(format!("There is no user group named {group}.")))?;
        let user = storage
            .user_by_username(username.trim())
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::Invalid(format!("There is no user named {username}.")))?;
        if member {
            storage
                .add_group_member(group_row.id, user.id)
                .await
                .map_err(internal)?;
        } else {
            storage
                .remove_group_member(group_row.id, user.id)
                .await
                .map_err(internal)?;
        }
        info!(admin = %admin.user.username, user_group = %group, user = %user.username, member, "membership changed");
        Ok(())
    }

    async fn add_grant(
        &self,
        ctx: &RequestContext,
        grantee: String,
        target: String,
    ) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let (user, user_group) = match grantee.split_once(':') {
            Some(("user", name)) => (Some(name), None),
            Some(("user-group", name)) => (None, Some(name)),
            _ => return Err(ApiError::Invalid("Choose a user or a user group.".into())),
        };
        let (group, server) = match target.split_once(':') {
            Some(("group", path)) => (Some(path), None),
            Some(("server", name)) => (None, Some(name)),
            _ => {
                return Err(ApiError::Invalid(
                    "Choose a server group or a server.".into(),
                ));
            }
        };
        let storage = self.auth.storage();
        let (who, what): (Grantee, GrantTarget) =
            inventory::resolve_grant(storage, user, user_group, group, server).await?;
        storage.add_grant(who, what).await.map_err(internal)?;
        info!(admin = %admin.user.username, grantee = %grantee, target = %target, "access granted");
        Ok(())
    }

    async fn remove_grant(&self, ctx: &RequestContext, id: i64) -> Result<(), ApiError> {
        let admin = self.auth.require_admin(ctx).await?;
        let removed = self
            .auth
            .storage()
            .remove_grant(id)
            .await
            .map_err(internal)?;
        if !removed {
            return Err(ApiError::Invalid(
                "That grant no longer exists; reload the page.".into(),
            ));
        }
        info!(admin = %admin.user.username, grant = id, "access revoked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_sentences() {
        assert_eq!(sentence("there is no server"), "There is no server.");
        assert_eq!(sentence("Done."), "Done.");
    }

    #[test]
    fn ports_default_to_22_and_are_checked() {
        assert_eq!(parse_port(" ").ok(), Some(22));
        assert_eq!(parse_port("2222").ok(), Some(2222));
        assert!(parse_port("0").is_err());
        assert!(parse_port("70000").is_err());
        assert!(parse_port("ssh").is_err());
    }
}
