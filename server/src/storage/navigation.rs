//! Favourites and recently used servers, per user.

use sqlx::Row;

use super::{Result, Storage, now};

impl Storage {
    /// Names of the user's favourite servers.
    pub async fn favourites(&self, user_id: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT s.name FROM user_favourites f JOIN servers s ON s.id = f.server_id \
             WHERE f.user_id = $1 ORDER BY s.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("name")?))
            .collect()
    }

    pub async fn set_favourite(&self, user_id: i64, server_id: i64, on: bool) -> Result<()> {
        if on {
            sqlx::query(
                "INSERT INTO user_favourites (user_id, server_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, server_id) DO NOTHING",
            )
            .bind(user_id)
            .bind(server_id)
            .bind(now())
            .execute(&self.pool)
            .await?;
        } else {
            sqlx::query("DELETE FROM user_favourites WHERE user_id = $1 AND server_id = $2")
                .bind(user_id)
                .bind(server_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Names of the servers the user opened, most recent first.
    pub async fn recents(&self, user_id: i64, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT s.name FROM user_recents r JOIN servers s ON s.id = r.server_id \
             WHERE r.user_id = $1 ORDER BY r.used_at DESC, s.name LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("name")?))
            .collect()
    }

    pub async fn touch_recent(&self, user_id: i64, server_id: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_recents (user_id, server_id, used_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, server_id) DO UPDATE SET used_at = excluded.used_at",
        )
        .bind(user_id)
        .bind(server_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
