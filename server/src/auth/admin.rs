//! What administrators do to other users' accounts from the panel: list, create, edit,
//! disable, reset secrets, delete. Every method checks the caller is an administrator first.

use app::api::backend::RequestContext;
use app::api::{ApiError, UserAction, UserSummary};
use tracing::info;

use super::{Auth, ServiceError, password, summary, username_problem};
use crate::storage::{self, StorageError};

/// Checks an email address typed by an administrator (SAML matching relies on it).
fn email_problem(email: &str) -> Option<String> {
    let bad = !email.contains('@') || email.len() > 254 || email.contains(char::is_whitespace);
    bad.then(|| format!("`{email}` is not an email address."))
}

fn role_problem(role: &str) -> Option<String> {
    (!matches!(role, "admin" | "user")).then(|| "The role must be admin or user.".to_string())
}

impl Auth {
    pub(super) async fn list_users(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<UserSummary>, ApiError> {
        self.require_admin(ctx).await?;
        let users = self.storage.users().await.map_err(ServiceError::from)?;
        Ok(users.iter().map(summary).collect())
    }

    pub(super) async fn create_user_as_admin(
        &self,
        ctx: &RequestContext,
        username: String,
        email: Option<String>,
        role: String,
    ) -> Result<String, ApiError> {
        let admin = self.require_admin(ctx).await?;
        let username = username.trim().to_string();
        if let Some(problem) = username_problem(&username) {
            return Err(ApiError::Invalid(problem));
        }
        if let Some(problem) = role_problem(&role) {
            return Err(ApiError::Invalid(problem));
        }
        if let Some(problem) = email.as_deref().and_then(email_problem) {
            return Err(ApiError::Invalid(problem));
        }
        let otp = password::one_time_password();
        let hash = password::hash(&otp).await.map_err(ServiceError::from)?;
        let created = self
            .storage
            .create_user(&storage::NewUser {
                username: &username,
                email: email.as_deref(),
                display_name: None,
                role: &role,
                origin: "local",
                password_hash: Some(&hash),
                must_change_password: true,
            })
            .await;
        match created {
            Ok(_) => {}
            Err(StorageError::Conflict(_)) => {
                return Err(ApiError::Invalid(
                    "A user with that name or email already exists.".into(),
                ));
            }
            Err(e) => return Err(ServiceError::from(e).into()),
        }
        info!(admin = %admin.user.username, user = %username, role = %role, "user created");
        Ok(otp)
    }

    pub(super) async fn set_user_enabled(
        &self,
        ctx: &RequestContext,
        username: String,
        enabled: bool,
    ) -> Result<(), ApiError> {
        let admin = self.require_admin(ctx).await?;
        let target = self.target_user(&username).await?;
        if target.id == admin.user.id && !enabled {
            return Err(ApiError::Invalid(
                "You cannot disable your own account.".into(),
            ));
        }
        let status = if enabled { "active" } else { "disabled" };
        self.storage
            .set_user_status(target.id, status)
            .await
            .map_err(ServiceError::from)?;
        info!(admin = %admin.user.username, user = %target.username, status, "user status changed");
        Ok(())
    }

    pub(super) async fn reset_password_as_admin(
        &self,
        ctx: &RequestContext,
        username: String,
    ) -> Result<String, ApiError> {
        let admin = self.require_admin(ctx).await?;
        let target = self.target_user(&username).await?;
        let otp = self
            .reset_password(&target.username)
            .await?
            .ok_or_else(|| ApiError::Invalid(format!("There is no user named {username}.")))?;
        info!(admin = %admin.user.username, user = %target.username, "password reset by an administrator");
        Ok(otp)
    }

    pub(super) async fn update_user_as_admin(
        &self,
        ctx: &RequestContext,
        username: String,
        email: Option<String>,
        display_name: Option<String>,
        role: String,
    ) -> Result<(), ApiError> {
        let admin = self.require_admin(ctx).await?;
        let target = self.target_user(&username).await?;
        if let Some(problem) = role_problem(&role) {
            return Err(ApiError::Invalid(problem));
        }
        if let Some(problem) = email.as_deref().and_then(email_problem) {
            return Err(ApiError::Invalid(problem));
        }
        if target.id == admin.user.id && role != "admin" {
            return Err(ApiError::Invalid(
                "You cannot take the administrator role from yourself.".into(),
            ));
        }
        if display_name
            .as_ref()
            .is_some_and(|d| d.chars().count() > 128)
        {
            return Err(ApiError::Invalid(
                "The display name is too long (at most 128 characters).".into(),
            ));
        }
        match self
            .storage
            .update_user_profile(target.id, email.as_deref(), display_name.as_deref(), &role)
            .await
        {
            Ok(()) => {}
            Err(StorageError::Conflict(_)) => {
                return Err(ApiError::Invalid(
                    "Another user already has that email address.".into(),
                ));
            }
            Err(e) => return Err(ServiceError::from(e).into()),
        }
        info!(admin = %admin.user.username, user = %target.username, role = %role, "user edited");
        Ok(())
    }

    pub(super) async fn user_action_as_admin(
        &self,
        ctx: &RequestContext,
        username: String,
        action: UserAction,
    ) -> Result<(), ApiError> {
        let admin = self.require_admin(ctx).await?;
        let target = self.target_user(&username).await?;
        let storage = &self.storage;
        match action {
            UserAction::ResetSecurityCode => storage.clear_security_code(target.id).await,
            UserAction::ResetTotp => storage.disable_totp(target.id).await,
            UserAction::Delete => {
                if target.id == admin.user.id {
                    return Err(ApiError::Invalid(
                        "You cannot delete your own account.".into(),
                    ));
                }
                storage.delete_user(target.id).await.map(|_| ())
            }
        }
        .map_err(ServiceError::from)?;
        info!(admin = %admin.user.username, user = %target.username, action = action.as_str(), "account changed by an administrator");
        Ok(())
    }
}
