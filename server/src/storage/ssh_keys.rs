//! SSH public keys registered by their owners, for signing in to the SSH gateway.

use sqlx::Row;

use super::inventory::conflict;
use super::{Result, Storage, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SshKeyRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, public_key, fingerprint, created_at, last_used_at";

impl Storage {
    pub async fn ssh_keys_of(&self, user_id: i64) -> Result<Vec<SshKeyRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM user_ssh_keys WHERE user_id = $1 ORDER BY created_at, id"
        );
        Ok(sqlx::query_as::<_, SshKeyRow>(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The key row for `public_key` (OpenSSH form without comment), whoever owns it.
    pub async fn ssh_key_by_public(&self, public_key: &str) -> Result<Option<SshKeyRow>> {
        let sql = format!("SELECT {COLUMNS} FROM user_ssh_keys WHERE public_key = $1");
        Ok(sqlx::query_as::<_, SshKeyRow>(sqlx::AssertSqlSafe(sql))
            .bind(public_key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn add_ssh_key(
        &self,
        user_id: i64,
        name: &str,
        public_key: &str,
        fingerprint: &str,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO user_ssh_keys (user_id, name, public_key, fingerprint, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(public_key)
        .bind(fingerprint)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "an SSH key that is already registered"))?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    /// Deletes key `id` if it belongs to `user_id`.
    pub async fn delete_ssh_key(&self, user_id: i64, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM user_ssh_keys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn touch_ssh_key(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE user_ssh_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
