//! Persistence through sqlx on SQLite (embedded, the default) or PostgreSQL (several nodes).
//!
//! One set of queries serves both: they use `$N` parameters, which both engines accept, and only
//! 64-bit integers, text and NULL, which sqlx's `Any` driver maps the same way on both.
//! Migrations are embedded per backend and applied at start; a failed migration stops start-up.
//!
//! This module knows rows, not rules: who may sign in, and when, is decided in `auth`.

mod inventory;
mod navigation;
mod saml;
mod ssh_approvals;
mod ssh_keys;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the database is unavailable or refused the query: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "applying database migrations failed: {0}. Jumpgate will not start on a half-migrated database; restore a backup or fix the cause and start again"
    )]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// Rows changed under an operation that needed them unchanged; running it again helps.
    #[error("{0}")]
    ChangedMeanwhile(&'static str),
}

pub type Result<T> = std::result::Result<T, StorageError>;

pub use inventory::{
    GrantRow, GrantTarget, Grantee, NewServer, ServerGroupRow, ServerRow, UserGroupRow,
};
pub use saml::{GroupMappingRow, OpenRequest, SamlSubject};
pub use ssh_approvals::{ApprovalRow, ApprovalState};
pub use ssh_keys::SshKeyRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A user's stored TOTP values, each sealed by the vault (or, from before sealing, base32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpValues {
    pub user_id: i64,
    pub active: Option<String>,
    pub pending: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: String,
    pub status: String,
    pub origin: String,
    pub password_hash: Option<String>,
    pub must_change_password: i64,
    pub security_code_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub totp_pending_secret: Option<String>,
    pub totp_last_step: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub role: &'a str,
    pub origin: &'a str,
    pub password_hash: Option<&'a str>,
    pub must_change_password: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: i64,
    pub stage: String,
    pub auth_method: String,
    pub client_ip: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailureRow {
    pub subject: String,
    pub failures: i64,
    pub window_start: i64,
    pub locked_until: i64,
}

const USER_COLUMNS: &str = "id, username, email, display_name, role, status, origin, \
     password_hash, must_change_password, security_code_hash, totp_secret, totp_pending_secret, \
     totp_last_step, created_at, updated_at, last_login_at";

#[derive(Clone)]
pub struct Storage {
    pool: AnyPool,
    kind: DbKind,
}

impl Storage {
    /// Connects, creating the SQLite file and its directory when needed, and applies migrations.
    pub async fn open(database_url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();

        let kind = if database_url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else {
            DbKind::Postgres
        };

        let url = match kind {
            DbKind::Sqlite => prepare_sqlite_url(database_url)?,
            DbKind::Postgres => database_url.to_string(),
        };

        let pool = AnyPoolOptions::new()
            .max_connections(match kind {
                // SQLite has one writer at a time; a few readers beside it are plenty.
                DbKind::Sqlite => 4,
                DbKind::Postgres => 10,
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if kind == DbKind::Sqlite {
                        // Per connection: enforce foreign keys, wait for the writer instead of
                        // failing at once with SQLITE_BUSY.
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;

        if kind == DbKind::Sqlite {
            // Persistent in the file: readers no longer block the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }

        match kind {
            DbKind::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            DbKind::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }

        Ok(Storage { pool, kind })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Answers whether the database responds, for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // --- users -------------------------------------------------------------------------------

    pub async fn count_users(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    pub async fn create_user(&self, user: &NewUser<'_>) -> Result<i64> {
        let now = now();
        let email = user.email.map(str::trim).filter(|e| !e.is_empty());
        let email_lower = email.map(str::to_lowercase);
        let result = sqlx::query(
            "INSERT INTO users (username, email, email_lower, display_name, role, origin, \
             password_hash, must_change_password, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(user.username)
        .bind(email)
        .bind(email_lower)
        .bind(user.display_name)
        .bind(user.role)
        .bind(user.origin)
        .bind(user.password_hash)
        .bind(i64::from(user.must_change_password))
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => Ok(row.try_get::<i64, _>("id")?),
            Err(e) if is_unique_violation(&e) => {
                Err(StorageError::Conflict("a user with that name or email"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn one_user(&self, clause: &str, value: Value<'_>) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}");
        let query = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql));
        let query = match value {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v.to_string()),
        };
        Ok(query.fetch_optional(&self.pool).await?)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>> {
        self.one_user("id = $1", Value::Int(id)).await
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>> {
        self.one_user("username = $1", Value::Text(username)).await
    }

    /// Finds a user by user name, or by email compared without regard to case.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<UserRow>> {
        if let Some(u) = self.user_by_username(login).await? {
            return Ok(Some(u));
        }
        self.one_user("email_lower = $1", Value::Text(&login.to_lowercase()))
            .await
    }

    pub async fn set_password_hash(
        &self,
        user_id: i64,
        hash: &str,
        must_change: bool,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(hash)
        .bind(i64::from(must_change))
        .bind(now())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_security_code_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET security_code_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_totp_pending(&self, user_id: i64, secret: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE users SET totp_pending_secret = $1, updated_at = $2 WHERE id = $3")
            .bind(secret)
            .bind(now())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes `secret` the active TOTP secret, remembering `step` as already used.
    pub async fn enable_totp(&self, user_id: i64, secret: &str, step: i64) -> Result<()> {
        sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_pending_secret = NULL, totp_last_step = $2, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(secret)
        .bind(step)
        .bind(now())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every user's stored TOTP values (active, pending), for the vault's re-sealing.
    pub async fn totp_values(&self) -> Result<Vec<TotpValues>> {
        let rows = sqlx::query(
            "SELECT id, totp_secret, totp_pending_secret FROM users \
             WHERE totp_secret IS NOT NULL OR totp_pending_secret IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TotpValues {
                    user_id: r.try_get("id")?,
                    active: r.try_get("totp_secret")?,
                    pending: r.try_get("totp_pending_secret")?,
                })
            })
            .collect()
    }

    /// Replaces a user's TOTP values with `new` if they are still `old`; false when they changed
    /// meanwhile (the user enrolled or turned TOTP off), in which case nothing is written.
    pub async fn replace_totp_values(&self, old: &TotpValues, new: &TotpValues) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_pending_secret = $2 WHERE id = $3 \
             AND totp_secret IS NOT DISTINCT FROM $4 AND totp_pending_secret IS NOT DISTINCT FROM $5",
        )
        .bind(new.active.as_deref())
        .bind(new.pending.as_deref())
        .bind(old.user_id)
        .bind(old.active.as_deref())
        .bind(old.pending.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn disable_totp(&self, user_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now())
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records TOTP `step` as used. Returns false when that step (or a later one) was already
    /// used: the check and the update are one statement, so two nodes cannot both accept it.
    pub async fn consume_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        Ok(sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Sets `active` or `disabled`; disabling also ends the user's web sessions.
    pub async fn set_user_status(&self, user_id: i64, status: &str) -> Result<()> {
        sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if status != "active" {
            self.delete_user_sessions(user_id, None).await?;
        }
        Ok(())
    }

    /// Changes the fields an administrator edits. An empty email clears it.
    pub async fn update_user_profile(
        &self,
        user_id: i64,
        email: Option<&str>,
        display_name: Option<&str>,
        role: &str,
    ) -> Result<()> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        let done = sqlx::query(
            "UPDATE users SET email = $1, email_lower = $2, display_name = $3, role = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(email)
        .bind(email.map(str::to_lowercase))
        .bind(display_name)
        .bind(role)
        .bind(now())
        .bind(user_id)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StorageError::Conflict("a user with that email"))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_user(&self, user_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn clear_security_code(&self, user_id: i64) -> Result<()> {
        sqlx::query("UPDATE users SET security_code_hash = NULL, updated_at = $1 WHERE id = $2")
            .bind(now())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn touch_last_login(&self, user_id: i64) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now())
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // --- web sessions ------------------------------------------------------------------------

    pub async fn insert_session(&self, s: &SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, stage, auth_method, client_ip, \
             created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id_hash)
        .bind(s.user_id)
        .bind(&s.stage)
        .bind(&s.auth_method)
        .bind(&s.client_ip)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as::<_, SessionRow>(
            "SELECT id_hash, user_id, stage, auth_method, client_ip, created_at, last_seen_at, \
             expires_at FROM web_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn touch_session(&self, id_hash: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every web session of a user, except `keep` when given.
    pub async fn delete_user_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_expired_sessions(&self, now: i64, idle_cutoff: i64) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                .bind(now)
                .bind(idle_cutoff)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    // --- sign-in failures --------------------------------------------------------------------

    pub async fn failure(&self, subject: &str) -> Result<Option<FailureRow>> {
        Ok(sqlx::query_as::<_, FailureRow>(
            "SELECT subject, failures, window_start, locked_until FROM auth_failures WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Counts one failure for `subject` and returns the new state. A count older than `window`
    /// seconds starts again from one; reaching `threshold` sets a lock of `lock_secs`.
    pub async fn record_failure(
        &self,
        subject: &str,
        at: i64,
        window: i64,
        threshold: i64,
        lock_secs: i64,
    ) -> Result<FailureRow> {
        // One upsert, so concurrent failures on several nodes all count.
        let row = sqlx::query_as::<_, FailureRow>(
            "INSERT INTO auth_failures (subject, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN 1 >= $4 THEN $2 + $5 ELSE 0 END) \
             ON CONFLICT (subject) DO UPDATE SET \
               failures = CASE WHEN auth_failures.window_start <= $2 - $3 THEN 1 \
                               ELSE auth_failures.failures + 1 END, \
               window_start = CASE WHEN auth_failures.window_start <= $2 - $3 THEN $2 \
                                   ELSE auth_failures.window_start END, \
               locked_until = CASE WHEN (CASE WHEN auth_failures.window_start <= $2 - $3 THEN 1 \
                                              ELSE auth_failures.failures + 1 END) >= $4 \
                                   THEN $2 + $5 ELSE auth_failures.locked_until END \
             RETURNING subject, failures, window_start, locked_until",
        )
        .bind(subject)
        .bind(at)
        .bind(window)
        .bind(threshold)
        .bind(lock_secs)
        .fetch_one(&self.pool)
        .await?;
        Ok(row)
    }

    pub async fn clear_failures(&self, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM auth_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // --- settings ----------------------------------------------------------------------------

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row: Option<AnyRow> = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<String, _>("value")?),
            None => None,
        })
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn all_settings(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT key, value FROM settings ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("key")?,
                    r.try_get::<String, _>("value")?,
                ))
            })
            .collect()
    }
}

enum Value<'a> {
    Int(i64),
    Text(&'a str),
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                // The Any driver does not always carry the error kind through.
                || db.message().contains("UNIQUE constraint failed")
                || db.message().contains("duplicate key value")
        }
        _ => false,
    }
}

/// Turns `sqlite://PATH` into a URL that creates the file when missing, after creating its
/// directory.
fn prepare_sqlite_url(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path != ":memory:"
        && let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StorageError::Directory {
            path: parent.display().to_string(),
            source,
        })?;
    }
    // Validate early so a malformed URL fails with sqlx's message, not at first query.
    let _ = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    Ok(match query {
        Some(q) if q.contains("mode=") => url.to_string(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    })
}
