//! Who may use the web panel: sign-in with password and TOTP, web sessions, lockout, and the
//! account changes a user makes for themselves.
//!
//! What is verified here: passwords and security codes against Argon2id hashes, TOTP codes
//! (each accepted once), session tokens against their stored SHA-256, session lifetimes, and
//! the per-account and per-address failure counters. What is trusted: the client address the
//! HTTP layer reports, and the CSRF check the HTTP layer has already made.

mod admin;
pub mod password;
pub mod session;
pub mod ssh;
mod ssh_keys;
pub mod totp;

use std::net::IpAddr;
use std::time::Duration;

use app::api::backend::{Backend, RequestContext, SetCookie};
use app::api::{
    ApiError, AuthMethod, LoginStep, Me, SessionInfo, SshKeySummary, TotpEnrollment, UserAction,
    UserSummary,
};
use tracing::{error, info, warn};

use crate::settings::{self, SettingsError};
use crate::storage::{self, Storage, StorageError, UserRow};
pub use session::{CookieNames, SessionState};

/// How long the gap between a right password and the TOTP code may be.
const TOTP_STEP_SECONDS: i64 = 5 * 60;

/// Errors from the services below the panel; all become [`ApiError::Internal`] for the user and
/// are logged with their detail.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Hash(#[from] password::HashError),
    #[error(transparent)]
    Totp(#[from] totp::TotpError),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        error!(error = %e, "request failed inside the server");
        ApiError::Internal
    }
}

/// The panel's authentication service. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    storage: Storage,
    cookies: CookieNames,
    /// Seals TOTP secrets at rest.
    vault: std::sync::Arc<crate::vault::Vault>,
}

/// A signed-in session with its user.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: SessionState,
    pub user: UserRow,
}

impl Auth {
    pub fn new(
        storage: Storage,
        secure_cookies: bool,
        vault: std::sync::Arc<crate::vault::Vault>,
    ) -> Self {
        Auth {
            storage,
            cookies: CookieNames::new(secure_cookies),
            vault,
        }
    }

    /// The base32 TOTP secret in `sealed`, one of `user_id`'s stored TOTP values. A plain value
    /// (written by an older version during a rolling upgrade, or brought back by a restore) is
    /// read as it is; the next start seals it.
    fn open_totp(
        &self,
        user_id: i64,
        sealed: &str,
    ) -> Result<zeroize::Zeroizing<String>, ServiceError> {
        if !crate::vault::is_sealed(sealed) {
            return Ok(zeroize::Zeroizing::new(sealed.to_string()));
        }
        let plain = self
            .vault
            .open(&crate::vault::totp_context(user_id), sealed)?;
        let text = std::str::from_utf8(&plain).map_err(|_| crate::vault::VaultError::Unseal {
            context: crate::vault::totp_context(user_id),
        })?;
        Ok(zeroize::Zeroizing::new(text.to_string()))
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn cookies(&self) -> &CookieNames {
        &self.cookies
    }

    /// Creates the first administrator when there are no users at all. Returns the one-time
    /// password to show on the console, or `None` when users already exist.
    pub async fn ensure_first_admin(&self) -> Result<Option<String>, ServiceError> {
        if self.storage.count_users().await? > 0 {
            return Ok(None);
        }
        let otp = password::one_time_password();
        let hash = password::hash(&otp).await?;
        self.storage
            .create_user(&storage::NewUser {
                username: "admin",
                email: None,
                display_name: Some("Administrator"),
                role: "admin",
                origin: "local",
                password_hash: Some(&hash),
                must_change_password: true,
            })
            .await?;
        info!(user = "admin", "created the first administrator");
        Ok(Some(otp))
    }

    /// Gives `username` a new one-time password that must be changed at the next sign-in,
    /// clears its lock and ends its sessions. For recovery from the host.
    pub async fn reset_password(&self, username: &str) -> Result<Option<String>, ServiceError> {
        let Some(user) = self.storage.user_by_username(username).await? else {
            return Ok(None);
        };
        let otp = password::one_time_password();
        let hash = password::hash(&otp).await?;
        self.storage.set_password_hash(user.id, &hash, true).await?;
        self.storage
            .clear_failures(&account_subject(user.id))
            .await?;
        self.storage.delete_user_sessions(user.id, None).await?;
        info!(user = %user.username, "password reset from the host");
        Ok(Some(otp))
    }

    /// The complete, live session behind `token`, if there is one.
    pub async fn authenticate(
        &self,
        token: Option<&str>,
    ) -> Result<Option<Authenticated>, ServiceError> {
        match self.resolve(token).await? {
            Some((session, user)) if session.is_active() => {
                Ok(Some(Authenticated { session, user }))
            }
            _ => Ok(None),
        }
    }

    /// Looks a session up and enforces its lifetimes; an expired one is deleted.
    async fn resolve(
        &self,
        token: Option<&str>,
    ) -> Result<Option<(SessionState, UserRow)>, ServiceError> {
        let Some(token) = token else {
            return Ok(None);
        };
        let id_hash = session::hash_token(token);
        let Some(row) = self.storage.session(&id_hash).await? else {
            return Ok(None);
        };
        let now = storage::now();
        let idle = settings::get_i64(&self.storage, settings::SESSION_IDLE_MINUTES).await? * 60;
        if row.expires_at <= now || row.last_seen_at + idle <= now {
            self.storage.delete_session(&id_hash).await?;
            return Ok(None);
        }
        let Some(user) = self.storage.user_by_id(row.user_id).await? else {
            return Ok(None);
        };
        if !user.is_active() {
            self.storage.delete_user_sessions(user.id, None).await?;
            return Ok(None);
        }
        // Writing on every request would make SQLite the bottleneck; a minute of precision is
        // plenty for an idle timeout measured in minutes.
        if now - row.last_seen_at >= 60 {
            self.storage.touch_session(&id_hash, now).await?;
        }
        Ok(Some((SessionState::from_row(row), user)))
    }

    /// The user a typed login names, and the subject its failures count under. Unknown names
    /// count under their own subject, so probing names locks the same way as guessing
    /// passwords and the answer never reveals whether a name exists.
    async fn login_subject(&self, login: &str) -> Result<(Option<UserRow>, String), ServiceError> {
        let user = self.storage.user_by_login(login).await?;
        let subject = match &user {
            Some(u) => account_subject(u.id),
            None => format!("login:{}", login.to_lowercase()),
        };
        Ok((user, subject))
    }

    /// Checks a TOTP code for `user` and marks its time step used, so it is accepted once.
    async fn consume_totp(&self, user: &UserRow, code: &str) -> Result<bool, ServiceError> {
        let Some(sealed) = user.totp_secret.as_deref() else {
            return Ok(false);
        };
        let secret = self.open_totp(user.id, sealed)?;
        match totp::matching_step(&secret, code.trim(), totp::unix_time())? {
            Some(step) => Ok(self.storage.consume_totp_step(user.id, step).await?),
            None => Ok(false),
        }
    }

    async fn lock_remaining(&self, subject: &str) -> Result<Option<i64>, ServiceError> {
        let now = storage::now();
        Ok(self
            .storage
            .failure(subject)
            .await?
            .map(|f| f.locked_until - now)
            .filter(|left| *left > 0))
    }

    /// Refuses early when the account or the client address is locked.
    async fn check_locks(&self, subject: &str, ip: IpAddr) -> Result<(), ApiError> {
        for s in [subject.to_string(), ip_subject(ip)] {
            if let Some(left) = self.lock_remaining(&s).await? {
                return Err(ApiError::LockedOut {
                    minutes: ((left + 59) / 60).max(1) as u64,
                });
            }
        }
        Ok(())
    }

    /// Counts a failure against the account and the address, waits a little longer after each
    /// one (so guessing slows down before the lock), and says what the user should be told.
    async fn fail(&self, subject: &str, ip: IpAddr, error: ApiError) -> ApiError {
        match self.record_failures(subject, ip).await {
            Ok((failures, locked_for)) => {
                warn!(subject = %subject, client.ip = %ip, failures, "sign-in failure");
                if let Some(left) = locked_for {
                    warn!(subject = %subject, client.ip = %ip, "locked after repeated failures");
                    return ApiError::LockedOut {
                        minutes: ((left + 59) / 60).max(1) as u64,
                    };
                }
                let delay_ms = (failures.saturating_sub(2)).clamp(0, 4) as u64 * 500;
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                error
            }
            Err(e) => e.into(),
        }
    }

    async fn record_failures(
        &self,
        subject: &str,
        ip: IpAddr,
    ) -> Result<(i64, Option<i64>), ServiceError> {
        let s = &self.storage;
        let now = storage::now();
        let window = settings::get_i64(s, settings::LOCKOUT_WINDOW_MINUTES).await? * 60;
        let lock = settings::get_i64(s, settings::LOCKOUT_DURATION_MINUTES).await? * 60;
        let per_account = settings::get_i64(s, settings::LOCKOUT_MAX_FAILURES).await?;
        let per_ip = settings::get_i64(s, settings::LOCKOUT_MAX_FAILURES_PER_IP).await?;
        let account = s
            .record_failure(subject, now, window, per_account, lock)
            .await?;
        let address = s
            .record_failure(&ip_subject(ip), now, window, per_ip, lock)
            .await?;
        let locked = [account.locked_until, address.locked_until]
            .into_iter()
            .map(|until| until - now)
            .filter(|left| *left > 0)
            .max();
        Ok((account.failures, locked))
    }

    /// Starts a new session (a new token every time: the id changes at sign-in).
    async fn start_session(
        &self,
        user: &UserRow,
        stage: session::Stage,
        ip: IpAddr,
    ) -> Result<(String, SetCookie), ServiceError> {
        self.start_session_via(user, stage, ip, "password").await
    }

    /// Starts a fully signed-in session for a person the identity provider vouched for (as
    /// `subject`, when the assertion named one), and records the sign-in. Returns the cookies to
    /// set.
    pub async fn start_saml_session(
        &self,
        user: &UserRow,
        ip: IpAddr,
        subject: Option<&storage::SamlSubject>,
    ) -> Result<Vec<SetCookie>, ServiceError> {
        let (token, cookie) = self
            .start_session_via(user, session::Stage::Active, ip, "saml")
            .await?;
        // Single logout finds the session by the IdP's subject, and names it to the IdP.
        if let Some(subject) = subject {
            self.storage
                .link_saml_session(&session::hash_token(&token), subject)
                .await?;
        }
        self.storage.touch_last_login(user.id).await?;
        info!(user = %user.username, client.ip = %ip, method = "saml", "signed in");
        Ok(vec![cookie, self.cookies.fresh_csrf_cookie()])
    }

    async fn start_session_via(
        &self,
        user: &UserRow,
        stage: session::Stage,
        ip: IpAddr,
        method: &str,
    ) -> Result<(String, SetCookie), ServiceError> {
        let now = storage::now();
        let lifetime = match stage {
            session::Stage::AwaitingTotp => TOTP_STEP_SECONDS,
            session::Stage::Active => {
                settings::get_i64(&self.storage, settings::SESSION_ABSOLUTE_HOURS).await? * 3600
            }
        };
        let token = session::new_token();
        self.storage
            .insert_session(&storage::SessionRow {
                id_hash: session::hash_token(&token),
                user_id: user.id,
                stage: stage.as_str().into(),
                auth_method: method.into(),
                client_ip: ip.to_string(),
                created_at: now,
                last_seen_at: now,
                expires_at: now + lifetime,
            })
            .await?;
        let cookie = self.cookies.session_cookie(&token);
        Ok((token, cookie))
    }

    async fn end_session(&self, token: Option<&str>) -> Result<(), ServiceError> {
        if let Some(t) = token {
            self.storage.delete_session(&session::hash_token(t)).await?;
        }
        Ok(())
    }

    /// The signed-in user for an account change; refuses while a forced password change is
    /// pending unless `allow_forced` is set.
    async fn require_user(
        &self,
        ctx: &RequestContext,
        allow_forced: bool,
    ) -> Result<Authenticated, ApiError> {
        let auth = self
            .authenticate(ctx.session_token.as_deref())
            .await?
            .ok_or(ApiError::NotSignedIn)?;
        if !allow_forced && auth.user.must_change_password != 0 {
            return Err(ApiError::PasswordChangeRequired);
        }
        Ok(auth)
    }

    /// The signed-in user (with no password change pending), or `NotSignedIn`.
    pub async fn require_signed_in(&self, ctx: &RequestContext) -> Result<Authenticated, ApiError> {
        self.require_user(ctx, false).await
    }

    /// The signed-in administrator, or `Forbidden`.
    pub async fn require_admin(&self, ctx: &RequestContext) -> Result<Authenticated, ApiError> {
        let auth = self.require_user(ctx, false).await?;
        if auth.user.role != "admin" {
            warn!(user = %auth.user.username, "refused an administrator action");
            return Err(ApiError::Forbidden);
        }
        Ok(auth)
    }

    async fn target_user(&self, username: &str) -> Result<UserRow, ApiError> {
        self.storage
            .user_by_username(username)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ApiError::Invalid(format!("There is no user named {username}.")))
    }

    /// Checks the user's password for an account change, counting failures like a sign-in.
    async fn confirm_password(
        &self,
        ctx: &RequestContext,
        user: &UserRow,
        given: &str,
    ) -> Result<(), ApiError> {
        let subject = account_subject(user.id);
        self.check_locks(&subject, ctx.client_ip).await?;
        if password::verify(given, user.password_hash.as_deref()).await {
            return Ok(());
        }
        Err(self
            .fail(&subject, ctx.client_ip, ApiError::WrongCurrentPassword)
            .await)
    }
}

pub fn me(user: &UserRow, method: AuthMethod) -> Me {
    Me {
        username: user.username.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        role: user.role.clone(),
        auth_method: method,
        must_change_password: user.must_change_password != 0,
        totp_enabled: user.totp_secret.is_some(),
        has_security_code: user.security_code_hash.is_some(),
    }
}

/// Why a proposed user name is refused; `None` when it is acceptable. Names are typed in SSH
/// commands (`ssh alice@gateway`), so they keep to characters every client passes through.
pub fn username_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    (!ok).then(|| {
        format!(
            "`{name}` is not a valid user name: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )
    })
}

fn summary(u: &UserRow) -> UserSummary {
    UserSummary {
        username: u.username.clone(),
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        role: u.role.clone(),
        status: u.status.clone(),
        origin: u.origin.clone(),
        totp_enabled: u.totp_secret.is_some(),
        has_security_code: u.security_code_hash.is_some(),
        last_login_at: u.last_login_at,
    }
}

fn account_subject(user_id: i64) -> String {
    format!("account:{user_id}")
}

fn ip_subject(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

#[async_trait::async_trait]
impl Backend for Auth {
    async fn session_info(&self, ctx: &RequestContext) -> Result<SessionInfo, ApiError> {
        let resolved = self.resolve(ctx.session_token.as_deref()).await?;
        let (user, awaiting_totp) = match resolved {
            Some((s, u)) if s.is_active() => (Some(me(&u, s.auth_method)), false),
            Some(_) => (None, true),
            None => (None, false),
        };
        Ok(SessionInfo {
            csrf_token: ctx.csrf_token.clone(),
            user,
            awaiting_totp,
        })
    }

    async fn login(
        &self,
        ctx: &RequestContext,
        login: String,
        password: String,
    ) -> Result<(LoginStep, Vec<SetCookie>), ApiError> {
        let login = login.trim();
        if login.is_empty() || password.is_empty() {
            return Err(ApiError::Invalid(
                "Enter your user name or email and your password.".into(),
            ));
        }
        if login.len() > 320 || password.len() > password::MAX_SECRET_LEN {
            return Err(ApiError::InvalidCredentials);
        }

        let (user, subject) = self.login_subject(login).await?;
        self.check_locks(&subject, ctx.client_ip).await?;

        let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let right = password::verify(&password, hash).await;
        let user = match user {
            Some(u) if right && u.is_active() => u,
            _ => {
                return Err(self
                    .fail(&subject, ctx.client_ip, ApiError::InvalidCredentials)
                    .await);
            }
        };
        // With single sign-on on, the password form stays open only for administrators: it is
        // the way back in when the identity provider is down or misconfigured.
        if user.role != "admin"
            && settings::get(&self.storage, settings::WEB_AUTH)
                .await
                .map_err(ServiceError::from)?
                == "saml"
        {
            return Err(ApiError::Invalid(
                "This panel signs people in through the company's identity provider. Open the \
                 panel's address and sign in there."
                    .into(),
            ));
        }

        self.storage
            .clear_failures(&subject)
            .await
            .map_err(ServiceError::from)?;
        self.end_session(ctx.session_token.as_deref()).await?;

        if user.totp_secret.is_some() {
            let (_, cookie) = self
                .start_session(&user, session::Stage::AwaitingTotp, ctx.client_ip)
                .await?;
            info!(user = %user.username, client.ip = %ctx.client_ip, "password accepted, awaiting TOTP code");
            return Ok((LoginStep::TotpRequired, vec![cookie]));
        }

        let (_, cookie) = self
            .start_session(&user, session::Stage::Active, ctx.client_ip)
            .await?;
        self.storage
            .touch_last_login(user.id)
            .await
            .map_err(ServiceError::from)?;
        info!(user = %user.username, client.ip = %ctx.client_ip, method = "password", "signed in");
        Ok((
            LoginStep::SignedIn,
            vec![cookie, self.cookies.fresh_csrf_cookie()],
        ))
    }

    async fn login_totp(
        &self,
        ctx: &RequestContext,
        code: String,
    ) -> Result<Vec<SetCookie>, ApiError> {
        let pending = self.resolve(ctx.session_token.as_deref()).await?;
        let Some((state, user)) = pending.filter(|(s, _)| !s.is_active()) else {
            return Err(ApiError::SignInExpired);
        };
        let subject = account_subject(user.id);
        self.check_locks(&subject, ctx.client_ip).await?;

        if user.totp_secret.is_none() {
            return Err(ApiError::SignInExpired);
        }
        if !self.consume_totp(&user, &code).await? {
            return Err(self
                .fail(&subject, ctx.client_ip, ApiError::InvalidTotpCode)
                .await);
        }

        self.storage
            .clear_failures(&subject)
            .await
            .map_err(ServiceError::from)?;
        self.storage
            .delete_session(&state.id_hash)
            .await
            .map_err(ServiceError::from)?;
        let (_, cookie) = self
            .start_session(&user, session::Stage::Active, ctx.client_ip)
            .await?;
        self.storage
            .touch_last_login(user.id)
            .await
            .map_err(ServiceError::from)?;
        info!(user = %user.username, client.ip = %ctx.client_ip, method = "password+totp", "signed in");
        Ok(vec![cookie, self.cookies.fresh_csrf_cookie()])
    }

    async fn logout(&self, ctx: &RequestContext) -> Result<Vec<SetCookie>, ApiError> {
        if let Some(auth) = self.authenticate(ctx.session_token.as_deref()).await? {
            info!(user = %auth.user.username, "signed out");
        }
        self.end_session(ctx.session_token.as_deref()).await?;
        Ok(vec![
            self.cookies.expired_session_cookie(),
            self.cookies.fresh_csrf_cookie(),
        ])
    }

    async fn change_password(
        &self,
        ctx: &RequestContext,
        current: String,
        new: String,
    ) -> Result<(), ApiError> {
        let auth = self.require_user(ctx, true).await?;
        let user = &auth.user;
        self.confirm_password(ctx, user, &current).await?;
        if let Some(problem) = password::password_problem(&new, &user.username, Some(&current)) {
            return Err(ApiError::Invalid(problem));
        }
        let hash = password::hash(&new).await.map_err(ServiceError::from)?;
        self.storage
            .set_password_hash(user.id, &hash, false)
            .await
            .map_err(ServiceError::from)?;
        // Someone who knew the old password keeps no session with it.
        self.storage
            .delete_user_sessions(user.id, Some(&auth.session.id_hash))
            .await
            .map_err(ServiceError::from)?;
        info!(user = %user.username, "password changed");
        Ok(())
    }

    async fn set_security_code(
        &self,
        ctx: &RequestContext,
        current_password: String,
        code: String,
    ) -> Result<(), ApiError> {
        let auth = self.require_user(ctx, false).await?;
        let user = &auth.user;
        self.confirm_password(ctx, user, &current_password).await?;
        if let Some(problem) = password::security_code_problem(&code, &current_password) {
            return Err(ApiError::Invalid(problem));
        }
        let hash = password::hash(&code).await.map_err(ServiceError::from)?;
        self.storage
            .set_security_code_hash(user.id, &hash)
            .await
            .map_err(ServiceError::from)?;
        info!(user = %user.username, "security code set");
        Ok(())
    }

    async fn totp_begin(&self, ctx: &RequestContext) -> Result<TotpEnrollment, ApiError> {
        let auth = self.require_user(ctx, false).await?;
        let user = &auth.user;
        if user.totp_secret.is_some() {
            return Err(ApiError::Invalid(
                "Two-factor authentication is already on. Turn it off first to enrol a new app."
                    .into(),
            ));
        }
        let secret = totp::new_secret();
        let (uri, qr_png_base64) =
            totp::enrollment(&secret, &user.username).map_err(ServiceError::from)?;
        let sealed = self
            .vault
            .seal(&crate::vault::totp_context(user.id), secret.as_bytes())
            .map_err(ServiceError::from)?;
        self.storage
            .set_totp_pending(user.id, Some(&sealed))
            .await
            .map_err(ServiceError::from)?;
        Ok(TotpEnrollment {
            secret,
            uri,
            qr_png_base64,
        })
    }

    async fn totp_confirm(&self, ctx: &RequestContext, code: String) -> Result<(), ApiError> {
        let auth = self.require_user(ctx, false).await?;
        let user = &auth.user;
        let Some(sealed) = user.totp_pending_secret.as_deref() else {
            return Err(ApiError::Invalid(
                "There is no enrolment in progress. Press \"Set up authenticator app\" first."
                    .into(),
            ));
        };
        let subject = account_subject(user.id);
        self.check_locks(&subject, ctx.client_ip).await?;
        let secret = self.open_totp(user.id, sealed)?;
        let step =
            totp::matching_step(&secret, &code, totp::unix_time()).map_err(ServiceError::from)?;
        let Some(step) = step else {
            return Err(self
                .fail(&subject, ctx.client_ip, ApiError::InvalidTotpCode)
                .await);
        };
        // Sealed for this user already: it moves from pending to active as it is.
        self.storage
            .enable_totp(user.id, sealed, step)
            .await
            .map_err(ServiceError::from)?;
        info!(user = %user.username, "TOTP enabled");
        Ok(())
    }

    async fn totp_disable(&self, ctx: &RequestContext, password: String) -> Result<(), ApiError> {
        let auth = self.require_user(ctx, false).await?;
        let user = &auth.user;
        self.confirm_password(ctx, user, &password).await?;
        self.storage
            .disable_totp(user.id)
            .await
            .map_err(ServiceError::from)?;
        info!(user = %user.username, "TOTP disabled");
        Ok(())
    }

    async fn ssh_keys(&self, ctx: &RequestContext) -> Result<Vec<SshKeySummary>, ApiError> {
        self.list_ssh_keys(ctx).await
    }

    async fn add_ssh_key(
        &self,
        ctx: &RequestContext,
        name: String,
        public_key: String,
    ) -> Result<(), ApiError> {
        self.register_ssh_key(ctx, name, public_key).await
    }

    async fn delete_ssh_key(&self, ctx: &RequestContext, id: i64) -> Result<(), ApiError> {
        self.remove_ssh_key(ctx, id).await
    }

    async fn admin_users(&self, ctx: &RequestContext) -> Result<Vec<UserSummary>, ApiError> {
        self.list_users(ctx).await
    }

    async fn admin_create_user(
        &self,
        ctx: &RequestContext,
        username: String,
        email: Option<String>,
        role: String,
    ) -> Result<String, ApiError> {
        self.create_user_as_admin(ctx, username, email, role).await
    }

    async fn admin_set_enabled(
        &self,
        ctx: &RequestContext,
        username: String,
        enabled: bool,
    ) -> Result<(), ApiError> {
        self.set_user_enabled(ctx, username, enabled).await
    }

    async fn admin_reset_password(
        &self,
        ctx: &RequestContext,
        username: String,
    ) -> Result<String, ApiError> {
        self.reset_password_as_admin(ctx, username).await
    }

    async fn admin_update_user(
        &self,
        ctx: &RequestContext,
        username: String,
        email: Option<String>,
        display_name: Option<String>,
        role: String,
    ) -> Result<(), ApiError> {
        self.update_user_as_admin(ctx, username, email, display_name, role)
            .await
    }

    async fn admin_user_action(
        &self,
        ctx: &RequestContext,
        username: String,
        action: UserAction,
    ) -> Result<(), ApiError> {
        self.user_action_as_admin(ctx, username, action).await
    }
}
