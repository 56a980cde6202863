//! Sign-in checks for the native SSH gateway: password, then security code, then (for users
//! with TOTP) a verification code. Failures count against the same account and address limits
//! as the web panel, so guessing over SSH and over the web adds up to one lock.
//!
//! The SSH server asks the three questions in separate rounds; only after the last one does it
//! say whether the sign-in worked, so an unknown user name, a wrong password and a wrong
//! security code all look the same to the client.

use std::net::IpAddr;

use app::api::ApiError;
use tracing::info;

use super::{Auth, ServiceError, account_subject, password};
use crate::storage::UserRow;

/// Why an SSH sign-in was refused. The text is shown to the person in their SSH client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshSignInError {
    #[error("Sign-in failed: the user name, password or security code is not right.")]
    InvalidCredentials,
    #[error("That verification code is not valid.")]
    InvalidTotpCode,
    #[error("Too many failed attempts. Sign-in is locked; try again in {minutes} minute(s).")]
    LockedOut { minutes: u64 },
    #[error(
        "Your account has no password or no security code yet. Set both in the web panel under Account, then connect again."
    )]
    SecretsMissing,
    #[error("The gateway could not check your sign-in. Try again later.")]
    Internal,
}

impl From<ApiError> for SshSignInError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::LockedOut { minutes } => SshSignInError::LockedOut { minutes },
            ApiError::InvalidTotpCode => SshSignInError::InvalidTotpCode,
            ApiError::InvalidCredentials => SshSignInError::InvalidCredentials,
            _ => SshSignInError::Internal,
        }
    }
}

impl From<ServiceError> for SshSignInError {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

/// The outcome of the password and security-code rounds.
#[derive(Debug, Clone)]
pub enum FirstFactors {
    /// Signed in; no TOTP on this account.
    Done(Box<UserRow>),
    /// Signed in without the verification code, on the strength of a live SAML web session
    /// (its hash): the SSH connection lasts only as long as that session.
    DoneBySamlSession(Box<UserRow>, String),
    /// Right so far; ask for the verification code next.
    NeedsTotp(Box<UserRow>),
}

impl Auth {
    /// Checks the password and the security code given to the SSH server by `login` (a user
    /// name or email) from `ip`.
    pub async fn ssh_first_factors(
        &self,
        login: &str,
        password_given: &str,
        security_code: &str,
        ip: IpAddr,
    ) -> Result<FirstFactors, SshSignInError> {
        let login = login.trim();
        if login.is_empty()
            || login.len() > 320
            || password_given.len() > password::MAX_SECRET_LEN
            || security_code.len() > password::MAX_SECRET_LEN
        {
            return Err(SshSignInError::InvalidCredentials);
        }
        let (user, subject) = self.login_subject(login).await?;
        self.check_locks(&subject, ip).await?;

        // Both hashes are checked even when the first fails, so timing tells nothing.
        let password_hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
        let code_hash = user.as_ref().and_then(|u| u.security_code_hash.as_deref());
        let password_ok = password::verify(password_given, password_hash).await;
        let code_ok = password::verify(security_code, code_hash).await;

        let user = match user {
            Some(u) if password_ok && code_ok && u.is_active() => u,
            // An account without a password (made by single sign-on), or the right password on
            // one without a security code: say what to do. This tells that such an account
            // exists, which is the price of a useful answer for SSO users.
            Some(u)
                if u.is_active()
                    && (password_hash.is_none() || (password_ok && code_hash.is_none())) =>
            {
                return Err(SshSignInError::SecretsMissing);
            }
            _ => {
                return Err(self
                    .fail(&subject, ip, ApiError::InvalidCredentials)
                    .await
                    .into());
            }
        };
        self.storage
            .clear_failures(&subject)
            .await
            .map_err(ServiceError::from)?;
        if user.totp_secret.is_some() {
            if let Some(session) = self.ssh_totp_skip_session(&user).await? {
                self.ssh_signed_in(&user, ip, "password+security_code+saml_session")
                    .await?;
                return Ok(FirstFactors::DoneBySamlSession(Box::new(user), session));
            }
            return Ok(FirstFactors::NeedsTotp(Box::new(user)));
        }
        self.ssh_signed_in(&user, ip, "password+security_code")
            .await?;
        Ok(FirstFactors::Done(Box::new(user)))
    }

    /// Checks the verification code of a user who passed [`Auth::ssh_first_factors`].
    pub async fn ssh_totp(
        &self,
        user: &UserRow,
        code: &str,
        ip: IpAddr,
    ) -> Result<UserRow, SshSignInError> {
        let subject = account_subject(user.id);
        self.check_locks(&subject, ip).await?;
        // Read again: the account may have been disabled or reset in between.
        let fresh = self
            .storage
            .user_by_id(user.id)
            .await
            .map_err(ServiceError::from)?
            .filter(|u| u.is_active())
            .ok_or(SshSignInError::InvalidCredentials)?;
        if fresh.totp_secret.is_none() {
            return Err(SshSignInError::InvalidCredentials);
        }
        if !self.consume_totp(&fresh, code).await? {
            return Err(self
                .fail(&subject, ip, ApiError::InvalidTotpCode)
                .await
                .into());
        }
        self.storage
            .clear_failures(&subject)
            .await
            .map_err(ServiceError::from)?;
        self.ssh_signed_in(&fresh, ip, "password+security_code+totp")
            .await?;
        Ok(fresh)
    }

    /// The web session (its hash) that lets the verification code be skipped, if any: the
    /// administrator turned on "skip two-factor authentication for SAML" and the user holds a
    /// live web session that was signed in through the identity provider (which did its own
    /// second factor). The SSH connection then depends on that session: the gateway ends it
    /// when the session ends.
    pub async fn ssh_totp_skip_session(
        &self,
        user: &UserRow,
    ) -> Result<Option<String>, ServiceError> {
        if !crate::settings::get_bool(&self.storage, crate::settings::SAML_SKIP_2FA).await? {
            return Ok(None);
        }
        Ok(self
            .storage
            .newest_live_saml_session(user.id, self.idle_cutoff().await?)
            .await?)
    }

    /// Web sessions last seen before this moment have expired for idleness.
    pub async fn idle_cutoff(&self) -> Result<i64, ServiceError> {
        let idle =
            crate::settings::get_i64(&self.storage, crate::settings::SESSION_IDLE_MINUTES).await?;
        Ok(crate::storage::now() - idle * 60)
    }

    /// Records a sign-in that a browser approved (see [`crate::ssh_approval`]).
    pub async fn ssh_approved_sign_in(
        &self,
        user: &UserRow,
        ip: IpAddr,
    ) -> Result<(), SshSignInError> {
        self.ssh_signed_in(user, ip, "browser_approval").await
    }

    async fn ssh_signed_in(
        &self,
        user: &UserRow,
        ip: IpAddr,
        method: &'static str,
    ) -> Result<(), SshSignInError> {
        self.storage
            .touch_last_login(user.id)
            .await
            .map_err(ServiceError::from)?;
        info!(user = %user.username, client.ip = %ip, method, "signed in over SSH");
        Ok(())
    }
}
