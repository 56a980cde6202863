//! Rows for single sign-on: outstanding sign-in requests and the replay cache. The rules
//! (lifetimes, what a replay is) are the `saml` module's.

use sqlx::Row;

use super::{Result, Storage, is_unique_violation, now};

/// A sign-in request still waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    pub return_to: String,
    /// The administrator who asked for a test sign-in, when it is one.
    pub test_for_user: Option<i64>,
    /// SHA-256 (hex) of the secret in the starting browser's cookie; `None` for requests
    /// stored before browsers were bound, which no answer can satisfy.
    pub browser_hash: Option<String>,
}

/// A mapping from an IdP group value to a user group.
#[derive(Debug, Clone)]
pub struct GroupMappingRow {
    pub id: i64,
    pub idp_value: String,
    pub user_group_id: i64,
    pub user_group: String,
}

impl Storage {
    pub async fn insert_saml_request(
        &self,
        id: &str,
        return_to: &str,
        test_for_user: Option<i64>,
        browser_hash: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO saml_requests (id, return_to, created_at, test_for_user, browser_hash) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(return_to)
        .bind(now())
        .bind(test_for_user)
        .bind(browser_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An unconsumed request created after `since`.
    pub async fn open_saml_request(&self, id: &str, since: i64) -> Result<Option<OpenRequest>> {
        let row = sqlx::query(
            "SELECT return_to, test_for_user, browser_hash FROM saml_requests \
             WHERE id = $1 AND consumed_at IS NULL AND created_at >= $2",
        )
        .bind(id)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(OpenRequest {
                return_to: r.try_get("return_to")?,
                test_for_user: r.try_get("test_for_user")?,
                browser_hash: r.try_get("browser_hash")?,
            }),
            None => None,
        })
    }

    pub async fn saml_group_mappings(&self) -> Result<Vec<GroupMappingRow>> {
        let rows = sqlx::query(
            "SELECT m.id, m.idp_value, m.user_group_id, g.name FROM saml_group_mappings m \
             JOIN user_groups g ON g.id = m.user_group_id ORDER BY m.idp_value, g.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GroupMappingRow {
                    id: r.try_get("id")?,
                    idp_value: r.try_get("idp_value")?,
                    user_group_id: r.try_get("user_group_id")?,
                    user_group: r.try_get("name")?,
                })
            })
            .collect()
    }

    /// False when the same mapping exists already.
    pub async fn add_saml_group_mapping(
        &self,
        idp_value: &str,
        user_group_id: i64,
    ) -> Result<bool> {
        let result = sqlx::query(
            "INSERT INTO saml_group_mappings (idp_value, user_group_id) VALUES ($1, $2)",
        )
        .bind(idp_value)
        .bind(user_group_id)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_saml_group_mapping(&self, id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM saml_group_mappings WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn save_saml_test_result(&self, user_id: i64, result_json: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO saml_test_results (user_id, tested_at, result) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET tested_at = $2, result = $3",
        )
        .bind(user_id)
        .bind(now())
        .bind(result_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// (tested_at, result JSON) of `user_id`'s last test sign-in.
    pub async fn saml_test_result(&self, user_id: i64) -> Result<Option<(i64, String)>> {
        let row = sqlx::query("SELECT tested_at, result FROM saml_test_results WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("tested_at")?, r.try_get("result")?)),
            None => None,
        })
    }

    /// Marks a request answered. False when another response consumed it first.
    pub async fn consume_saml_request(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE saml_requests SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an accepted assertion ID. False when it was seen before (a replay).
    pub async fn remember_assertion(&self, id: &str, expires_at: i64) -> Result<bool> {
        let result =
            sqlx::query("INSERT INTO saml_seen_assertions (id, expires_at) VALUES ($1, $2)")
                .bind(id)
                .bind(expires_at)
                .execute(&self.pool)
                .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops requests older than `request_cutoff` and assertions expired before `now`.
    pub async fn prune_saml(&self, request_cutoff: i64, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM saml_requests WHERE created_at < $1")
            .bind(request_cutoff)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM saml_seen_assertions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM saml_logout_requests WHERE created_at < $1")
            .bind(request_cutoff)
            .execute(&self.pool)
            .await?;
        // Links of panel sessions that ended (signed out, expired, purged).
        sqlx::query(
            "DELETE FROM saml_sessions WHERE session_hash NOT IN (SELECT id_hash FROM web_sessions)",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Finds a user by email, compared without regard to case.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<super::UserRow>> {
        self.one_user(
            "email_lower = $1",
            super::Value::Text(&email.to_lowercase()),
        )
        .await
    }

    /// The last metadata refresh: (attempted_at, succeeded_at, error).
    pub async fn saml_refresh_state(&self) -> Result<Option<(i64, Option<i64>, Option<String>)>> {
        let row = sqlx::query(
            "SELECT attempted_at, succeeded_at, error FROM saml_metadata_refresh WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get("attempted_at")?,
                r.try_get("succeeded_at")?,
                r.try_get("error")?,
            )),
            None => None,
        })
    }

    /// Records a refresh attempt: `error` is None on success.
    pub async fn record_saml_refresh(&self, error: Option<&str>) -> Result<()> {
        let at = now();
        let succeeded = error.is_none().then_some(at);
        sqlx::query(
            "INSERT INTO saml_metadata_refresh (id, attempted_at, succeeded_at, error) \
             VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET attempted_at = $1, \
             succeeded_at = COALESCE($2, saml_metadata_refresh.succeeded_at), error = $3",
        )
        .bind(at)
        .bind(succeeded)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The IdP's subject of a panel session, for single logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlSubject {
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
}

impl Storage {
    /// Notes which IdP subject a new panel session belongs to.
    pub async fn link_saml_session(&self, session_hash: &str, subject: &SamlSubject) -> Result<()> {
        sqlx::query(
            "INSERT INTO saml_sessions (session_hash, name_id, name_id_format, session_index, \
             created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session_hash)
        .bind(&subject.name_id)
        .bind(&subject.name_id_format)
        .bind(&subject.session_index)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn saml_subject(&self, session_hash: &str) -> Result<Option<SamlSubject>> {
        let row = sqlx::query(
            "SELECT name_id, name_id_format, session_index FROM saml_sessions \
             WHERE session_hash = $1",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(SamlSubject {
                name_id: r.try_get("name_id")?,
                name_id_format: r.try_get("name_id_format")?,
                session_index: r.try_get("session_index")?,
            }),
            None => None,
        })
    }

    /// Ends every panel session signed in as this IdP subject (all of them when `session_index`
    /// is `None`, else only that IdP session's). Returns how many ended.
    pub async fn end_saml_sessions(
        &self,
        name_id: &str,
        session_index: Option<&str>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // A link without a session index (the assertion had none) matches any index.
        let done = sqlx::query(
            "DELETE FROM web_sessions WHERE id_hash IN (SELECT session_hash FROM saml_sessions \
             WHERE name_id = $1 AND ($2 IS NULL OR session_index IS NULL OR session_index = $2))",
        )
        .bind(name_id)
        .bind(session_index)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM saml_sessions WHERE name_id = $1 \
             AND ($2 IS NULL OR session_index IS NULL OR session_index = $2)",
        )
        .bind(name_id)
        .bind(session_index)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_saml_logout_request(&self, id: &str) -> Result<()> {
        sqlx::query("INSERT INTO saml_logout_requests (id, created_at) VALUES ($1, $2)")
            .bind(id)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks our logout request answered. False when it is unknown, older than `since`, or was
    /// answered before.
    pub async fn consume_saml_logout_request(&self, id: &str, since: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE saml_logout_requests SET consumed_at = $1 \
             WHERE id = $2 AND consumed_at IS NULL AND created_at >= $3",
        )
        .bind(now())
        .bind(id)
        .bind(since)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
