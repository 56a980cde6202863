//! The administrators' inventory in the panel: server groups, servers, user groups and access
//! grants, with the server functions that change them.
//!
//! Signed-in users also read from here the list of servers they may reach.
//!
//! Secrets go one way only: the forms send target passwords and private keys to the server,
//! which seals them in the vault; nothing here ever carries one back.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::codec::GetUrl;

use crate::api::ApiError;

/// A server group in the tree, listed in path order so that parents come before children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// Full path such as `prod/web`.
    pub path: String,
    /// Last part of the path.
    pub name: String,
    /// 0 for a top-level group.
    pub depth: usize,
    /// Servers directly in this group.
    pub servers: usize,
}

/// A server as administrators see it. No secret, only whether one is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub name: String,
    pub group_path: String,
    pub host: String,
    pub port: u16,
    pub login: String,
    pub description: Option<String>,
    /// `password`, `private_key` or `gateway_key`.
    pub auth_kind: String,
    pub has_secret: bool,
    /// SHA256 fingerprint of the pinned host key, as OpenSSH prints it.
    pub host_key_fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroupInfo {
    pub name: String,
    pub description: Option<String>,
    pub members: Vec<String>,
}

/// A grant with names resolved for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    pub id: i64,
    /// `user:NAME` or `user-group:NAME`, as the grant form sends it.
    pub grantee: String,
    /// `group:PATH` or `server:NAME`, as the grant form sends it.
    pub target: String,
}

/// Everything the Servers and Access pages show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub groups: Vec<GroupInfo>,
    pub servers: Vec<ServerInfo>,
    pub user_groups: Vec<UserGroupInfo>,
    pub grants: Vec<GrantInfo>,
    pub usernames: Vec<String>,
    /// The gateway key's public half, for targets set to authenticate with it.
    pub gateway_public_key: String,
}

/// A server as the add and edit forms send it. Secret fields left empty keep what is stored
/// when editing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerForm {
    /// Empty when adding; the server's current name when editing.
    pub original_name: String,
    pub name: String,
    pub group: String,
    pub host: String,
    pub port: String,
    pub login: String,
    pub description: String,
    pub auth_kind: String,
    pub password: String,
    pub private_key: String,
    pub passphrase: String,
}

/// A server the signed-in user may reach, as their own listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachableServer {
    pub name: String,
    pub group_path: String,
    pub description: Option<String>,
}

/// What the browser console's navigator needs: the reachable servers, and the person's
/// favourites and recently used servers (shared with the SSH menu).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NavData {
    pub servers: Vec<crate::nav::NavServer>,
    pub favourites: Vec<String>,
    pub recents: Vec<String>,
}

/// Turns a grant's display form into words: `user:alice` becomes `user alice`.
pub fn describe_ref(value: &str) -> String {
    match value.split_once(':') {
        Some(("user", name)) => format!("user {name}"),
        Some(("user-group", name)) => format!("user group {name}"),
        Some(("group", path)) => format!("server group {path} (and below)"),
        Some(("server", name)) => format!("server {name}"),
        _ => value.to_string(),
    }
}

#[cfg(feature = "ssr")]
pub mod backend {
    //! What the server crate implements for these pages. Every method refuses
    //! non-administrators with [`ApiError::Forbidden`].

    use super::*;
    use crate::api::backend::RequestContext;
    use std::sync::Arc;

    #[async_trait::async_trait]
    pub trait InventoryBackend: Send + Sync + 'static {
        /// The servers the signed-in user may reach (any signed-in user).
        async fn my_servers(&self, ctx: &RequestContext) -> Result<Vec<ReachableServer>, ApiError>;
        /// The console navigator's data (any signed-in user).
        async fn console_nav(&self, ctx: &RequestContext) -> Result<NavData, ApiError>;
        /// Marks or unmarks one of the signed-in user's servers as a favourite.
        async fn set_favourite(
            &self,
            ctx: &RequestContext,
            server: String,
            on: bool,
        ) -> Result<(), ApiError>;
        async fn inventory(&self, ctx: &RequestContext) -> Result<Inventory, ApiError>;
        async fn add_group(&self, ctx: &RequestContext, path: String) -> Result<(), ApiError>;
        async fn delete_group(&self, ctx: &RequestContext, path: String) -> Result<(), ApiError>;
        async fn save_server(&self, ctx: &RequestContext, form: ServerForm)
        -> Result<(), ApiError>;
        async fn delete_server(&self, ctx: &RequestContext, name: String) -> Result<(), ApiError>;
        /// Reads the target's host key; returns a sentence saying what was pinned.
        async fn scan_host_key(
            &self,
            ctx: &RequestContext,
            name: String,
            accept_change: bool,
        ) -> Result<String, ApiError>;
        async fn add_user_group(
            &self,
            ctx: &RequestContext,
            name: String,
            description: String,
        ) -> Result<(), ApiError>;
        async fn delete_user_group(
            &self,
            ctx: &RequestContext,
            name: String,
        ) -> Result<(), ApiError>;
        async fn set_membership(
            &self,
            ctx: &RequestContext,
            group: String,
            username: String,
            member: bool,
        ) -> Result<(), ApiError>;
        async fn add_grant(
            &self,
            ctx: &RequestContext,
            grantee: String,
            target: String,
        ) -> Result<(), ApiError>;
        async fn remove_grant(&self, ctx: &RequestContext, id: i64) -> Result<(), ApiError>;
    }

    pub type SharedInventory = Arc<dyn InventoryBackend>;

    pub fn current() -> Result<(SharedInventory, RequestContext), ApiError> {
        let backend = use_context::<SharedInventory>().ok_or(ApiError::Internal)?;
        let (_, ctx) = crate::api::backend::current()?;
        Ok((backend, ctx))
    }
}

#[server(input = GetUrl, endpoint = "servers")]
pub async fn my_servers() -> Result<Vec<ReachableServer>, ApiError> {
    let (backend, ctx) = backend::current()?;
    backend.my_servers(&ctx).await
}

#[server(input = GetUrl, endpoint = "console/nav")]
pub async fn console_nav() -> Result<NavData, ApiError> {
    let (backend, ctx) = backend::current()?;
    backend.console_nav(&ctx).await
}

#[server(endpoint = "console/favourite")]
pub async fn set_favourite(csrf_token: String, server: String, on: bool) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.set_favourite(&ctx, server, on).await
}

#[server(input = GetUrl, endpoint = "admin/inventory")]
pub async fn admin_inventory() -> Result<Inventory, ApiError> {
    let (backend, ctx) = backend::current()?;
    backend.inventory(&ctx).await
}

#[server(endpoint = "admin/groups/add")]
pub async fn admin_add_group(csrf_token: String, path: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.add_group(&ctx, path).await
}

#[server(endpoint = "admin/groups/delete")]
pub async fn admin_delete_group(csrf_token: String, path: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.delete_group(&ctx, path).await
}

#[server(endpoint = "admin/servers/save")]
pub async fn admin_save_server(csrf_token: String, server: ServerForm) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.save_server(&ctx, server).await
}

#[server(endpoint = "admin/servers/delete")]
pub async fn admin_delete_server(csrf_token: String, name: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.delete_server(&ctx, name).await
}

#[server(endpoint = "admin/servers/scan")]
pub async fn admin_scan_host_key(
    csrf_token: String,
    name: String,
    accept_change: Option<String>,
) -> Result<String, ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend
        .scan_host_key(&ctx, name, accept_change.is_some_and(|v| !v.is_empty()))
        .await
}

#[server(endpoint = "admin/user_groups/add")]
pub async fn admin_add_user_group(
    csrf_token: String,
    name: String,
    description: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.add_user_group(&ctx, name, description).await
}

#[server(endpoint = "admin/user_groups/delete")]
pub async fn admin_delete_user_group(csrf_token: String, name: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.delete_user_group(&ctx, name).await
}

#[server(endpoint = "admin/user_groups/membership")]
pub async fn admin_set_membership(
    csrf_token: String,
    group: String,
    username: String,
    member: bool,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.set_membership(&ctx, group, username, member).await
}

#[server(endpoint = "admin/grants/add")]
pub async fn admin_add_grant(
    csrf_token: String,
    grantee: String,
    target: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.add_grant(&ctx, grantee, target).await
}

#[server(endpoint = "admin/grants/remove")]
pub async fn admin_remove_grant(csrf_token: String, id: i64) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.remove_grant(&ctx, id).await
}
