//! The account behind a verified assertion: found by email (case-insensitively), or created
//! when the administrator allows it.

use tracing::info;

use super::IdpConfig;
use super::acs::Verified;
use crate::storage::{NewUser, Storage, StorageError, UserRow};

/// Why a verified person still may not sign in. Shown to them as it reads.
#[derive(Debug, thiserror::Error)]
pub enum AccountRefusal {
    #[error(
        "There is no Jumpgate account for {0}. Ask your Jumpgate administrator to create one \
         (or to turn on automatic account creation)."
    )]
    Unknown(String),
    #[error("Your Jumpgate account is disabled. Ask your Jumpgate administrator.")]
    Disabled,
    #[error(
        "Jumpgate could not look up your account. Try again; if it persists, tell your administrator."
    )]
    Storage(#[from] StorageError),
}

/// Finds or creates the account for `who`.
pub async fn account_for(
    storage: &Storage,
    idp: &IdpConfig,
    who: &Verified,
) -> Result<UserRow, AccountRefusal> {
    if let Some(user) = storage.user_by_email(&who.email).await? {
        if !user.is_active() {
            return Err(AccountRefusal::Disabled);
        }
        return Ok(user);
    }
    if !idp.auto_create_users {
        return Err(AccountRefusal::Unknown(who.email.clone()));
    }
    let wanted = who
        .username
        .clone()
        .unwrap_or_else(|| who.email.split('@').next().unwrap_or_default().to_string());
    let base = username_base(&wanted);
    // Another node may take the same name at the same moment; the unique index decides and
    // the next candidate is tried.
    for n in 1..=1000u32 {
        let candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}{n}")
        };
        if storage.user_by_username(&candidate).await?.is_some() {
            continue;
        }
        let created = storage
            .create_user(&NewUser {
                username: &candidate,
                email: Some(&who.email),
                display_name: who.display_name.as_deref(),
                role: "user",
                origin: "saml",
                password_hash: None,
                must_change_password: false,
            })
            .await;
        match created {
            Ok(id) => {
                info!(user = %candidate, "created a user at their first SAML sign-in");
                return storage
                    .user_by_id(id)
                    .await?
                    .ok_or(AccountRefusal::Unknown(who.email.clone()));
            }
            Err(StorageError::Conflict(_)) => {
                // The email itself may have been taken meanwhile: then that account is theirs.
                if let Some(user) = storage.user_by_email(&who.email).await? {
                    return if user.is_active() {
                        Ok(user)
                    } else {
                        Err(AccountRefusal::Disabled)
                    };
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AccountRefusal::Unknown(who.email.clone()))
}

/// Makes the user's membership of every mapped user group follow the groups in the assertion:
/// added where a value maps to the group, removed where none does. User groups that no mapping
/// names are left as the administrators set them.
pub async fn apply_group_mappings(
    storage: &Storage,
    user: &UserRow,
    idp_groups: &[String],
) -> Result<(), StorageError> {
    let mappings = storage.saml_group_mappings().await?;
    if mappings.is_empty() {
        return Ok(());
    }
    let current = storage.groups_of_user(user.id).await?;
    let mut managed: Vec<i64> = mappings.iter().map(|m| m.user_group_id).collect();
    managed.sort_unstable();
    managed.dedup();
    for group in managed {
        let wanted = mappings
            .iter()
            .any(|m| m.user_group_id == group && idp_groups.contains(&m.idp_value));
        let member = current.contains(&group);
        if wanted && !member {
            storage.add_group_member(group, user.id).await?;
            info!(user = %user.username, group, "added to a user group by a SAML group mapping");
        } else if !wanted && member {
            storage.remove_group_member(group, user.id).await?;
            info!(user = %user.username, group, "removed from a user group by a SAML group mapping");
        }
    }
    Ok(())
}

/// A user name from an email's local part or a username attribute: lower case, only the
/// characters user names allow, at most 56 so a number still fits.
pub fn username_base(wanted: &str) -> String {
    let mut name: String = wanted
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(56)
        .collect();
    name = name.trim_matches(|c| c == '.' || c == '-').to_string();
    if name.is_empty() {
        name = "user".into();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_emails() {
        assert_eq!(username_base("Alice.Smith"), "alice.smith");
        assert_eq!(username_base("bob+test"), "bobtest");
        assert_eq!(username_base("ü"), "user");
        assert_eq!(username_base(&"x".repeat(100)).len(), 56);
        assert!(crate::auth::username_problem(&username_base("a b/c")).is_none());
    }
}

/// Why a group mapping could not be added. Shown to the administrator as it reads.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error(
        "Enter the group value exactly as the identity provider sends it (at most 512 characters)."
    )]
    BadValue,
    #[error("There is no user group {0}.")]
    NoSuchGroup(String),
    #[error("{value} already maps to {group}.")]
    Exists { value: String, group: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Maps the IdP group value `idp_value` (trimmed) to the user group named `user_group`.
pub async fn add_group_mapping(
    storage: &Storage,
    idp_value: &str,
    user_group: &str,
) -> Result<(), MappingError> {
    let value = idp_value.trim();
    if value.is_empty() || value.len() > 512 || value.chars().any(char::is_control) {
        return Err(MappingError::BadValue);
    }
    let group = storage
        .user_group_by_name(user_group)
        .await?
        .ok_or_else(|| MappingError::NoSuchGroup(user_group.to_string()))?;
    if !storage.add_saml_group_mapping(value, group.id).await? {
        return Err(MappingError::Exists {
            value: value.to_string(),
            group: user_group.to_string(),
        });
    }
    Ok(())
}
