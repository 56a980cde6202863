//! Rows of the inventory: user groups, server groups, servers, grants and the vault's key check.
//! Secrets arrive here already sealed by the vault; this module never sees plaintext.

use sqlx::Row;

use super::{Result, Storage, StorageError, is_unique_violation, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserGroupRow {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerGroupRow {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: i64,
    pub name: String,
    pub group_id: i64,
    pub host: String,
    pub port: i64,
    pub login: String,
    pub description: Option<String>,
    pub auth_kind: String,
    pub secret_sealed: Option<String>,
    pub passphrase_sealed: Option<String>,
    pub host_key: Option<String>,
}

/// A server to create; its secrets are sealed separately once its id is known.
#[derive(Debug, Clone)]
pub struct NewServer<'a> {
    pub name: &'a str,
    pub group_id: i64,
    pub host: &'a str,
    pub port: u16,
    pub login: &'a str,
    pub description: Option<&'a str>,
    pub auth_kind: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: i64,
    pub user_id: Option<i64>,
    pub user_group_id: Option<i64>,
    pub server_group_id: Option<i64>,
    pub server_id: Option<i64>,
}

/// Who receives a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    User(i64),
    UserGroup(i64),
}

/// What a grant opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantTarget {
    ServerGroup(i64),
    Server(i64),
}

const SERVER_COLUMNS: &str = "id, name, group_id, host, port, login, description, auth_kind, \
     secret_sealed, passphrase_sealed, host_key";

pub(super) fn conflict(e: sqlx::Error, what: &'static str) -> StorageError {
    if is_unique_violation(&e) {
        StorageError::Conflict(what)
    } else {
        e.into()
    }
}

impl Storage {
    // --- vault key check ---------------------------------------------------------------------

    pub async fn vault_check(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT check_value FROM vault_meta WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<String, _>("check_value")?),
            None => None,
        })
    }

    pub async fn set_vault_check(&self, check: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO vault_meta (id, check_value, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET check_value = excluded.check_value, \
             updated_at = excluded.updated_at",
        )
        .bind(check)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces every sealed value and the key check in one transaction: after a crash either
    /// all secrets are under the old key or all under the new one.
    pub async fn reseal_all(
        &self,
        servers: &[(i64, Option<String>, Option<String>)],
        totp: &[(super::TotpValues, super::TotpValues)],
        check: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // A user who enrols or turns TOTP off meanwhile would be left with a value sealed
        // under the old key: the whole rotation is undone instead, to be run again.
        for (old, new) in totp {
            let done = sqlx::query(
                "UPDATE users SET totp_secret = $1, totp_pending_secret = $2 WHERE id = $3 \
                 AND totp_secret IS NOT DISTINCT FROM $4 \
                 AND totp_pending_secret IS NOT DISTINCT FROM $5",
            )
            .bind(new.active.as_deref())
            .bind(new.pending.as_deref())
            .bind(old.user_id)
            .bind(old.active.as_deref())
            .bind(old.pending.as_deref())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StorageError::ChangedMeanwhile(
                    "a user changed their authenticator app during the rotation; run it again",
                ));
            }
        }
        for (id, secret, passphrase) in servers {
            sqlx::query(
                "UPDATE servers SET secret_sealed = $1, passphrase_sealed = $2 WHERE id = $3",
            )
            .bind(secret.as_deref())
            .bind(passphrase.as_deref())
            .bind(*id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE vault_meta SET check_value = $1, updated_at = $2 WHERE id = 1")
            .bind(check)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- user groups -------------------------------------------------------------------------

    pub async fn create_user_group(&self, name: &str, description: Option<&str>) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO user_groups (name, description, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(description)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "a user group with that name"))?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    pub async fn user_groups(&self) -> Result<Vec<UserGroupRow>> {
        Ok(sqlx::query_as::<_, UserGroupRow>(
            "SELECT id, name, description FROM user_groups ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn user_group_by_name(&self, name: &str) -> Result<Option<UserGroupRow>> {
        Ok(sqlx::query_as::<_, UserGroupRow>(
            "SELECT id, name, description FROM user_groups WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn add_group_member(&self, group_id: i64, user_id: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_group_members (group_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(group_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_group_member(&self, group_id: i64, user_id: i64) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM user_group_members WHERE group_id = $1 AND user_id = $2")
                .bind(group_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ids of the user groups `user_id` belongs to.
    pub async fn groups_of_user(&self, user_id: i64) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT group_id FROM user_group_members WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("group_id")?))
            .collect()
    }

    /// Every (user group id, user id) membership pair.
    pub async fn group_memberships(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT group_id, user_id FROM user_group_members")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("group_id")?,
                    r.try_get::<i64, _>("user_id")?,
                ))
            })
            .collect()
    }

    /// Deletes a user group; its memberships and grants go with it.
    pub async fn delete_user_group(&self, group_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM user_groups WHERE id = $1")
            .bind(group_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // --- server groups -----------------------------------------------------------------------

    pub async fn create_server_group(
        &self,
        parent_id: Option<i64>,
        name: &str,
        path: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO server_groups (parent_id, name, path, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(parent_id)
        .bind(name)
        .bind(path)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "a server group with that path"))?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    pub async fn server_groups(&self) -> Result<Vec<ServerGroupRow>> {
        Ok(sqlx::query_as::<_, ServerGroupRow>(
            "SELECT id, parent_id, name, path FROM server_groups ORDER BY path",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn server_group_by_path(&self, path: &str) -> Result<Option<ServerGroupRow>> {
        Ok(sqlx::query_as::<_, ServerGroupRow>(
            "SELECT id, parent_id, name, path FROM server_groups WHERE path = $1",
        )
        .bind(path)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Deletes an empty server group (the schema refuses one that still holds groups or
    /// servers); grants of it go with it.
    pub async fn delete_server_group(&self, group_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM server_groups WHERE id = $1")
            .bind(group_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // --- servers -----------------------------------------------------------------------------

    pub async fn create_server(&self, s: &NewServer<'_>) -> Result<i64> {
        let now = now();
        let row = sqlx::query(
            "INSERT INTO servers (name, group_id, host, port, login, description, auth_kind, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(s.name)
        .bind(s.group_id)
        .bind(s.host)
        .bind(i64::from(s.port))
        .bind(s.login)
        .bind(s.description)
        .bind(s.auth_kind)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "a server with that name"))?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    pub async fn set_server_secrets(
        &self,
        server_id: i64,
        secret: Option<&str>,
        passphrase: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE servers SET secret_sealed = $1, passphrase_sealed = $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(secret)
        .bind(passphrase)
        .bind(now())
        .bind(server_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn servers(&self) -> Result<Vec<ServerRow>> {
        let sql = format!("SELECT {SERVER_COLUMNS} FROM servers ORDER BY name");
        Ok(sqlx::query_as::<_, ServerRow>(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn server_by_name(&self, name: &str) -> Result<Option<ServerRow>> {
        let sql = format!("SELECT {SERVER_COLUMNS} FROM servers WHERE name = $1");
        Ok(sqlx::query_as::<_, ServerRow>(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Changes a server's description fields. Its secrets change through
    /// [`Storage::set_server_secrets`]; a changed host or port unpins the host key, because the
    /// pin belonged to the old address.
    pub async fn update_server(&self, server_id: i64, s: &NewServer<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE servers SET name = $1, group_id = $2, \
             host_key = CASE WHEN host = $3 AND port = $4 THEN host_key ELSE NULL END, \
             host = $3, port = $4, login = $5, description = $6, auth_kind = $7, updated_at = $8 \
             WHERE id = $9",
        )
        .bind(s.name)
        .bind(s.group_id)
        .bind(s.host)
        .bind(i64::from(s.port))
        .bind(s.login)
        .bind(s.description)
        .bind(s.auth_kind)
        .bind(now())
        .bind(server_id)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, "a server with that name"))?;
        Ok(())
    }

    /// Pins (or with `None`, unpins) the target's host key.
    pub async fn set_host_key(&self, server_id: i64, key: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE servers SET host_key = $1, updated_at = $2 WHERE id = $3")
            .bind(key)
            .bind(now())
            .bind(server_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pins a host key unless one is pinned already; true when this call pinned it.
    pub async fn pin_host_key_if_unset(&self, server_id: i64, key: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE servers SET host_key = $1, updated_at = $2 WHERE id = $3 AND host_key IS NULL",
        )
        .bind(key)
        .bind(now())
        .bind(server_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn delete_server(&self, server_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM servers WHERE id = $1")
            .bind(server_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // --- grants ------------------------------------------------------------------------------

    /// Adds a grant unless the same one exists; returns its id either way.
    pub async fn add_grant(&self, grantee: Grantee, target: GrantTarget) -> Result<i64> {
        let (user, group) = match grantee {
            Grantee::User(id) => (Some(id), None),
            Grantee::UserGroup(id) => (None, Some(id)),
        };
        let (server_group, server) = match target {
            GrantTarget::ServerGroup(id) => (Some(id), None),
            GrantTarget::Server(id) => (None, Some(id)),
        };
        if let Some(existing) = self.grants().await?.into_iter().find(|g| {
            g.user_id == user
                && g.user_group_id == group
                && g.server_group_id == server_group
                && g.server_id == server
        }) {
            return Ok(existing.id);
        }
        let row = sqlx::query(
            "INSERT INTO grants (user_id, user_group_id, server_group_id, server_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user)
        .bind(group)
        .bind(server_group)
        .bind(server)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    pub async fn remove_grant(&self, grant_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM grants WHERE id = $1")
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn grants(&self) -> Result<Vec<GrantRow>> {
        Ok(sqlx::query_as::<_, GrantRow>(
            "SELECT id, user_id, user_group_id, server_group_id, server_id FROM grants ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
