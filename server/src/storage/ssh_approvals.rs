//! Rows for SSH sign-ins approved in a browser. The rules (lifetime, who may approve) are the
//! `ssh_approval` module's; these queries only make each step happen at most once, even with
//! several nodes answering.

use sqlx::Row;

use super::{Result, Storage, now};

/// One approval request as the approval page shows it.
#[derive(Debug, Clone)]
pub struct ApprovalRow {
    pub login: String,
    pub target: Option<String>,
    pub client_ip: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub state: String,
}

/// What became of a request, as the waiting SSH connection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    /// Approved and now taken by the caller: the approver and their web session.
    Taken {
        user_id: i64,
        session_hash: String,
    },
    Denied,
    /// Expired, already taken, or never existed.
    Gone,
}

impl Storage {
    pub async fn insert_ssh_approval(
        &self,
        code_hash: &str,
        login: &str,
        target: Option<&str>,
        client_ip: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO ssh_approvals (code_hash, login, target, client_ip, created_at, \
             expires_at, state) VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
        )
        .bind(code_hash)
        .bind(login)
        .bind(target)
        .bind(client_ip)
        .bind(now())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn ssh_approval(&self, code_hash: &str) -> Result<Option<ApprovalRow>> {
        let row = sqlx::query(
            "SELECT login, target, client_ip, created_at, expires_at, state \
             FROM ssh_approvals WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(ApprovalRow {
            login: r.try_get("login")?,
            target: r.try_get("target")?,
            client_ip: r.try_get("client_ip")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            state: r.try_get("state")?,
        }))
    }

    /// Approves or denies a pending, unexpired request. False when it was no longer pending
    /// (decided meanwhile, perhaps on another node) or has expired.
    pub async fn decide_ssh_approval(
        &self,
        code_hash: &str,
        approve: bool,
        user_id: i64,
        session_hash: &str,
    ) -> Result<bool> {
        let at = now();
        let done = sqlx::query(
            "UPDATE ssh_approvals SET state = $1, decided_by = $2, session_hash = $3, \
             decided_at = $4 WHERE code_hash = $5 AND state = 'pending' AND expires_at > $4",
        )
        .bind(if approve { "approved" } else { "denied" })
        .bind(user_id)
        .bind(session_hash)
        .bind(at)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Where a request stands; an approved one is marked used by this call, so exactly one
    /// caller ever gets [`ApprovalState::Taken`].
    pub async fn take_ssh_approval(&self, code_hash: &str) -> Result<ApprovalState> {
        let at = now();
        let taken = sqlx::query(
            "UPDATE ssh_approvals SET state = 'used' WHERE code_hash = $1 AND state = 'approved' \
             AND expires_at > $2 RETURNING decided_by, session_hash",
        )
        .bind(code_hash)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = taken {
            let user_id: Option<i64> = r.try_get("decided_by")?;
            let session_hash: Option<String> = r.try_get("session_hash")?;
            return Ok(match (user_id, session_hash) {
                (Some(user_id), Some(session_hash)) => ApprovalState::Taken {
                    user_id,
                    session_hash,
                },
                _ => ApprovalState::Gone,
            });
        }
        Ok(match self.ssh_approval(code_hash).await? {
            Some(r) if r.expires_at <= at => ApprovalState::Gone,
            Some(r) if r.state == "pending" => ApprovalState::Pending,
            Some(r) if r.state == "denied" => ApprovalState::Denied,
            _ => ApprovalState::Gone,
        })
    }

    /// Forgets requests created before `cutoff`.
    pub async fn prune_ssh_approvals(&self, cutoff: i64) -> Result<()> {
        sqlx::query("DELETE FROM ssh_approvals WHERE created_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest live, fully signed-in SAML web session of a user (its hash), if any.
    pub async fn newest_live_saml_session(
        &self,
        user_id: i64,
        idle_cutoff: i64,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT id_hash FROM web_sessions WHERE user_id = $1 AND auth_method = 'saml' \
             AND stage = 'active' AND expires_at > $2 AND last_seen_at > $3 \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(now())
        .bind(idle_cutoff)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id_hash")?),
            None => None,
        })
    }

    /// True while the web session with this hash is fully signed in and within its lifetimes.
    pub async fn web_session_is_live(&self, id_hash: &str, idle_cutoff: i64) -> Result<bool> {
        Ok(self.session(id_hash).await?.is_some_and(|s| {
            s.stage == "active" && s.expires_at > now() && s.last_seen_at > idle_cutoff
        }))
    }
}
