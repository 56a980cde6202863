//! The web panel's server functions and the types they exchange.
//!
//! Each function here runs on the server; the browser calls it through Leptos's generated
//! client. The bodies only translate between HTTP and the [`backend::Backend`] that the server
//! crate provides, so this crate never learns how users or sessions are stored.
//!
//! Every state-changing function takes a `csrf_token` argument. The server checks it against the
//! visitor's CSRF cookie in a middleware before any server function runs; the argument exists so
//! that forms carry the token in the request body.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use server_fn::codec::{GetUrl, JsonEncoding};
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// Name of the form field (and `X-CSRF-Token` header alternative) that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// How the current web session was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Password,
    Saml,
}

/// What the panel and `GET /api/me` know about the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: String,
    pub auth_method: AuthMethod,
    pub must_change_password: bool,
    pub totp_enabled: bool,
    pub has_security_code: bool,
}

/// The visitor's state as the panel needs it to render any page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Token every state-changing request must carry.
    pub csrf_token: String,
    /// The signed-in user, when the session is complete.
    pub user: Option<Me>,
    /// The password was right and the session waits for a TOTP code.
    pub awaiting_totp: bool,
}

/// What happened after the password step of a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginStep {
    /// Signed in; the session cookie is set.
    SignedIn,
    /// The password was right; a TOTP code is needed to finish.
    TotpRequired,
}

/// Material for enrolling an authenticator app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrollment {
    /// Base32 secret, for typing into an app by hand.
    pub secret: String,
    /// `otpauth://totp/...` URI, which the QR code encodes.
    pub uri: String,
    /// PNG of the QR code, base64-encoded, for an `<img src="data:...">`.
    pub qr_png_base64: String,
}

/// An SSH public key registered under Account, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeySummary {
    pub id: i64,
    pub name: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// Key type, such as `ssh-ed25519`.
    pub algorithm: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A user as the administrators' user list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: String,
    pub status: String,
    pub origin: String,
    pub totp_enabled: bool,
    pub has_security_code: bool,
    /// Unix seconds of the last sign-in.
    pub last_login_at: Option<i64>,
}

/// What an administrator can do to another user's account with one button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserAction {
    /// Clears the security code; the user sets a new one under Account before the next SSH login.
    ResetSecurityCode,
    /// Turns TOTP off; the user enrols an authenticator again under Account.
    ResetTotp,
    /// Deletes the account with its sessions, memberships and grants.
    Delete,
}

impl UserAction {
    pub fn as_str(self) -> &'static str {
        match self {
            UserAction::ResetSecurityCode => "reset_security_code",
            UserAction::ResetTotp => "reset_totp",
            UserAction::Delete => "delete",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            UserAction::ResetSecurityCode,
            UserAction::ResetTotp,
            UserAction::Delete,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// Errors the panel shows to a person. Each message says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    #[error("You are not signed in. Sign in and try again.")]
    NotSignedIn,
    #[error("Sign-in failed: the user name, email or password is not right.")]
    InvalidCredentials,
    #[error("Too many failed attempts. Sign-in is locked; try again in {minutes} minute(s).")]
    LockedOut { minutes: u64 },
    #[error(
        "That verification code is not valid. Enter the current code from your authenticator app."
    )]
    InvalidTotpCode,
    #[error("Your sign-in took too long. Start again with your password.")]
    SignInExpired,
    #[error("You must change your password before doing anything else.")]
    PasswordChangeRequired,
    #[error("The current password is not right.")]
    WrongCurrentPassword,
    #[error("{0}")]
    Invalid(String),
    #[error("This form has expired. Reload the page and try again.")]
    CsrfRejected,
    #[error("You are not allowed to do that.")]
    Forbidden,
    #[error(
        "Something went wrong on the server. Try again; if it persists, ask an administrator to check the log."
    )]
    Internal,
    #[error("Could not reach the server ({0}). Check your connection and try again.")]
    Transport(String),
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::Transport(value.to_string())
    }
}

#[cfg(feature = "ssr")]
pub mod backend {
    //! The contract between the panel's server functions and the server crate.

    use super::*;
    use std::net::IpAddr;
    use std::sync::Arc;

    /// What the HTTP layer learned about a request before any handler ran.
    #[derive(Debug, Clone)]
    pub struct RequestContext {
        /// The peer address (the gateway does not trust forwarding headers by default).
        pub client_ip: IpAddr,
        /// The raw session token from the cookie, if any. Only the backend interprets it.
        pub session_token: Option<String>,
        /// The CSRF token that state-changing requests must echo.
        pub csrf_token: String,
    }

    /// A cookie the backend wants the response to set (already formatted as a header value).
    pub type SetCookie = String;

    /// Services behind the web panel, implemented by the server crate.
    #[async_trait::async_trait]
    pub trait Backend: Send + Sync + 'static {
        async fn session_info(&self, ctx: &RequestContext) -> Result<SessionInfo, ApiError>;
        async fn login(
            &self,
            ctx: &RequestContext,
            login: String,
            password: String,
        ) -> Result<(LoginStep, Vec<SetCookie>), ApiError>;
        async fn login_totp(
            &self,
            ctx: &RequestContext,
            code: String,
        ) -> Result<Vec<SetCookie>, ApiError>;
        async fn logout(&self, ctx: &RequestContext) -> Result<Vec<SetCookie>, ApiError>;
        async fn change_password(
            &self,
            ctx: &RequestContext,
            current: String,
            new: String,
        ) -> Result<(), ApiError>;
        async fn set_security_code(
            &self,
            ctx: &RequestContext,
            current_password: String,
            code: String,
        ) -> Result<(), ApiError>;
        async fn totp_begin(&self, ctx: &RequestContext) -> Result<TotpEnrollment, ApiError>;
        async fn totp_confirm(&self, ctx: &RequestContext, code: String) -> Result<(), ApiError>;
        async fn totp_disable(
            &self,
            ctx: &RequestContext,
            password: String,
        ) -> Result<(), ApiError>;
        /// The signed-in user's SSH public keys.
        async fn ssh_keys(&self, ctx: &RequestContext) -> Result<Vec<SshKeySummary>, ApiError>;
        /// Registers a public key (OpenSSH one-line form) for the signed-in user.
        async fn add_ssh_key(
            &self,
            ctx: &RequestContext,
            name: String,
            public_key: String,
        ) -> Result<(), ApiError>;
        async fn delete_ssh_key(&self, ctx: &RequestContext, id: i64) -> Result<(), ApiError>;

        // Administrators only; others get `ApiError::Forbidden`.
        async fn admin_users(&self, ctx: &RequestContext) -> Result<Vec<UserSummary>, ApiError>;
        /// Creates a local user and returns the one-time password to hand over.
        async fn admin_create_user(
            &self,
            ctx: &RequestContext,
            username: String,
            email: Option<String>,
            role: String,
        ) -> Result<String, ApiError>;
        async fn admin_set_enabled(
            &self,
            ctx: &RequestContext,
            username: String,
            enabled: bool,
        ) -> Result<(), ApiError>;
        /// Gives a user a new one-time password (returned) that must be changed at sign-in.
        async fn admin_reset_password(
            &self,
            ctx: &RequestContext,
            username: String,
        ) -> Result<String, ApiError>;
        /// Changes a user's email, display name and role.
        async fn admin_update_user(
            &self,
            ctx: &RequestContext,
            username: String,
            email: Option<String>,
            display_name: Option<String>,
            role: String,
        ) -> Result<(), ApiError>;
        /// One of the [`UserAction`]s on another user.
        async fn admin_user_action(
            &self,
            ctx: &RequestContext,
            username: String,
            action: UserAction,
        ) -> Result<(), ApiError>;
    }

    /// The backend as the server crate provides it to Leptos's context.
    pub type SharedBackend = Arc<dyn Backend>;

    /// Fetches the backend and the request context inside a server function.
    pub fn current() -> Result<(SharedBackend, RequestContext), ApiError> {
        let backend = use_context::<SharedBackend>().ok_or(ApiError::Internal)?;
        let parts = use_context::<http::request::Parts>().ok_or(ApiError::Internal)?;
        let ctx = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or(ApiError::Internal)?;
        Ok((backend, ctx))
    }

    /// Adds the backend's cookies to the server function's response.
    pub fn set_cookies(cookies: Vec<SetCookie>) {
        let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
            return;
        };
        for cookie in cookies {
            if let Ok(value) = http::HeaderValue::from_str(&cookie) {
                response.append_header(http::header::SET_COOKIE, value);
            }
        }
    }
}

#[server(input = GetUrl, endpoint = "session")]
pub async fn get_session() -> Result<SessionInfo, ApiError> {
    let (backend, ctx) = backend::current()?;
    backend.session_info(&ctx).await
}

#[server(endpoint = "login")]
pub async fn login(
    csrf_token: String,
    login: String,
    password: String,
) -> Result<LoginStep, ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    let (step, cookies) = backend.login(&ctx, login, password).await?;
    backend::set_cookies(cookies);
    Ok(step)
}

#[server(endpoint = "login_totp")]
pub async fn login_totp(csrf_token: String, code: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    let cookies = backend.login_totp(&ctx, code).await?;
    backend::set_cookies(cookies);
    Ok(())
}

#[server(endpoint = "logout")]
pub async fn logout(csrf_token: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    let cookies = backend.logout(&ctx).await?;
    backend::set_cookies(cookies);
    Ok(())
}

#[server(endpoint = "account/password")]
pub async fn change_password(
    csrf_token: String,
    current: String,
    new: String,
    confirm: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    if new != confirm {
        return Err(ApiError::Invalid(
            "The new password and its confirmation differ. Type the same password twice.".into(),
        ));
    }
    let (backend, ctx) = backend::current()?;
    backend.change_password(&ctx, current, new).await
}

#[server(endpoint = "account/security_code")]
pub async fn set_security_code(
    csrf_token: String,
    current_password: String,
    code: String,
    confirm: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    if code != confirm {
        return Err(ApiError::Invalid(
            "The security code and its confirmation differ. Type the same code twice.".into(),
        ));
    }
    let (backend, ctx) = backend::current()?;
    backend
        .set_security_code(&ctx, current_password, code)
        .await
}

#[server(endpoint = "account/totp/begin")]
pub async fn totp_begin(csrf_token: String) -> Result<TotpEnrollment, ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.totp_begin(&ctx).await
}

#[server(endpoint = "account/totp/confirm")]
pub async fn totp_confirm(csrf_token: String, code: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.totp_confirm(&ctx, code).await
}

#[server(endpoint = "account/totp/disable")]
pub async fn totp_disable(csrf_token: String, password: String) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.totp_disable(&ctx, password).await
}

#[server(input = GetUrl, endpoint = "account/ssh_keys")]
pub async fn ssh_keys() -> Result<Vec<SshKeySummary>, ApiError> {
    let (backend, ctx) = backend::current()?;
    backend.ssh_keys(&ctx).await
}

#[server(endpoint = "account/ssh_keys/add")]
pub async fn add_ssh_key(
    csrf_token: String,
    name: String,
    public_key: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.add_ssh_key(&ctx, name, public_key).await
}

#[server(endpoint = "account/ssh_keys/delete")]
pub async fn delete_ssh_key(csrf_token: String, id: i64) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.delete_ssh_key(&ctx, id).await
}

#[server(input = GetUrl, endpoint = "admin/users")]
pub async fn admin_users() -> Result<Vec<UserSummary>, ApiError> {
    let (backend, ctx) = backend::current()?;
    backend.admin_users(&ctx).await
}

#[server(endpoint = "admin/users/create")]
pub async fn admin_create_user(
    csrf_token: String,
    username: String,
    email: String,
    role: String,
) -> Result<String, ApiError> {
    let _ = csrf_token;
    let email = Some(email.trim().to_string()).filter(|e| !e.is_empty());
    let (backend, ctx) = backend::current()?;
    backend.admin_create_user(&ctx, username, email, role).await
}

#[server(endpoint = "admin/users/enabled")]
pub async fn admin_set_enabled(
    csrf_token: String,
    username: String,
    enabled: bool,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.admin_set_enabled(&ctx, username, enabled).await
}

#[server(endpoint = "admin/users/reset_password")]
pub async fn admin_reset_password(
    csrf_token: String,
    username: String,
) -> Result<String, ApiError> {
    let _ = csrf_token;
    let (backend, ctx) = backend::current()?;
    backend.admin_reset_password(&ctx, username).await
}

#[server(endpoint = "admin/users/update")]
pub async fn admin_update_user(
    csrf_token: String,
    username: String,
    email: String,
    display_name: String,
    role: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let email = Some(email.trim().to_string()).filter(|e| !e.is_empty());
    let display_name = Some(display_name.trim().to_string()).filter(|e| !e.is_empty());
    let (backend, ctx) = backend::current()?;
    backend
        .admin_update_user(&ctx, username, email, display_name, role)
        .await
}

#[server(endpoint = "admin/users/action")]
pub async fn admin_user_action(
    csrf_token: String,
    username: String,
    action: String,
) -> Result<(), ApiError> {
    let _ = csrf_token;
    let action = UserAction::parse(&action).ok_or_else(|| {
        ApiError::Invalid(format!("`{action}` is not something this page can do."))
    })?;
    let (backend, ctx) = backend::current()?;
    backend.admin_user_action(&ctx, username, action).await
}
