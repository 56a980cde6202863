//! One client connection: sign-in by keyboard-interactive prompts, then channels.
//!
//! Sign-in asks `Password:`, then `Security code:`, then `Verification code:` when the account
//! has TOTP, each in its own round so that every client shows them one at a time. A wrong answer
//! is told in the instructions of the next round, which starts again at the password; a refusal
//! that trying again cannot fix (lockout, secrets not set) is told in a last round without
//! prompts, after which the method fails.
//!
//! A public key the person registered under Account replaces the password and the security
//! code; with TOTP on, the key only partly signs in and keyboard-interactive then asks for the
//! verification code alone.
//!
//! With browser approval on (see [`crate::ssh_approval`]), the first round shows a link and a
//! code instead; pressing Enter once the browser approved completes the sign-in, while typing a
//! password there goes on with the usual prompts (for accounts outside single sign-on).
//!
//! The user name may carry a target: `alice:web01` (or `alice@web01`, which scp and sftp can
//! carry) signs in as `alice` and sends every session channel straight to `web01`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{
    self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tracing::{Instrument, Span, info, warn};
use zeroize::Zeroizing;

use super::channel::{self, SessionCtx};
use super::registry::ConnState;
use super::{Shared, relay};
use crate::auth::ssh::{FirstFactors, SshSignInError};
use crate::settings;
use crate::ssh_approval;
use crate::storage::{ApprovalState, UserRow};

/// Wrong answers accepted in one keyboard-interactive exchange before it fails.
const TRIES_PER_EXCHANGE: u32 = 3;

/// Longest user name (with `:target`) taken.
const MAX_USER_LEN: usize = 400;

enum Stage {
    /// Waiting for the password.
    Password,
    /// Waiting for the security code.
    Code { password: Zeroizing<String> },
    /// Waiting for the verification code of a user whose first factors were right.
    Totp { user: Box<UserRow> },
    /// Showing a browser-approval code; Enter checks it, anything else is a password.
    Approval { code_hash: String, how: String },
    /// A final message was shown; the next answer ends the method.
    Refused,
}

pub struct Connection {
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    span: Span,
    stage: Stage,
    wrong: u32,
    /// A user who proved a registered key and still owes the verification code, with the key.
    key_user: Option<(Box<UserRow>, i64)>,
    /// The last user name given and what it was read as (login, target).
    resolved: Option<(String, (String, Option<String>))>,
    signed_in: Option<SignedIn>,
    /// The person denied this connection in the browser: every further method is refused.
    denied: bool,
}

struct SignedIn {
    user: UserRow,
    target: Option<String>,
}

/// User names are refused before any lookup when too long or holding control characters
/// (which would forge log lines and terminal output).
fn acceptable_name(user: &str) -> bool {
    user.len() <= MAX_USER_LEN && !user.contains(char::is_control)
}

/// Splits `alice:web01` into the login and the target.
fn split_user(name: &str) -> (&str, Option<&str>) {
    match name.split_once(':') {
        Some((login, target)) if !target.trim().is_empty() => (login, Some(target.trim())),
        Some((login, _)) => (login, None),
        None => (name, None),
    }
}

fn prompt(text: &'static str, instructions: String) -> Auth {
    Auth::Partial {
        name: Cow::Borrowed(""),
        instructions: Cow::Owned(instructions),
        prompts: Cow::Owned(vec![(Cow::Borrowed(text), false)]),
    }
}

const PASSWORD: &str = "Password: ";
const SECURITY_CODE: &str = "Security code: ";
const VERIFICATION_CODE: &str = "Verification code: ";
const APPROVED: &str = "Press Enter once approved (or type your password): ";

/// How long one Enter waits for the browser before asking again.
const APPROVAL_WAIT: Duration = Duration::from_secs(30);

fn answer(response: Option<Response<'_>>) -> Zeroizing<String> {
    let first = response.and_then(|mut r| r.next());
    Zeroizing::new(
        first
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .unwrap_or_default(),
    )
}

impl Connection {
    pub fn new(shared: Arc<Shared>, conn: Arc<ConnState>, span: Span) -> Self {
        Connection {
            shared,
            conn,
            span,
            stage: Stage::Password,
            wrong: 0,
            key_user: None,
            resolved: None,
            signed_in: None,
            denied: false,
        }
    }

    /// Reads the user name as login and target: `alice:web01`, or `alice@web01` (the form scp
    /// and sftp can carry, as in `scp f alice@web01@gateway:/tmp/`). A name that is itself a
    /// login (an email address) is not split.
    async fn resolve(&mut self, name: &str) -> (String, Option<String>) {
        if let Some((given, read)) = &self.resolved
            && given == name
        {
            return read.clone();
        }
        let read = match split_user(name) {
            (login, Some(target)) => (login.to_string(), Some(target.to_string())),
            (login, None) => match login.rsplit_once('@') {
                Some((user, target)) if !user.is_empty() && !target.is_empty() => {
                    let is_login = matches!(
                        self.shared.storage().user_by_login(login).await,
                        Ok(Some(_))
                    );
                    if is_login {
                        (login.to_string(), None)
                    } else {
                        (user.to_string(), Some(target.to_string()))
                    }
                }
                _ => (login.to_string(), None),
            },
        };
        self.resolved = Some((name.to_string(), read.clone()));
        read
    }

    /// Shows `message` in a round without prompts; the method fails after it.
    fn refuse(&mut self, message: String) -> Auth {
        self.stage = Stage::Refused;
        Auth::Partial {
            name: Cow::Borrowed(""),
            instructions: Cow::Owned(message),
            prompts: Cow::Owned(Vec::new()),
        }
    }

    /// A wrong answer: ask again from `again`, or give up after too many.
    fn wrong_answer(&mut self, e: SshSignInError, again: Stage) -> Auth {
        self.wrong += 1;
        if self.wrong >= TRIES_PER_EXCHANGE {
            return self.refuse(e.to_string());
        }
        let text = match again {
            Stage::Totp { .. } => VERIFICATION_CODE,
            _ => PASSWORD,
        };
        self.stage = again;
        prompt(text, format!("{e} Try again."))
    }

    /// Completes the sign-in; `web_session` is the web session it relied on, if any.
    async fn finish(
        &mut self,
        user: UserRow,
        target: Option<&str>,
        web_session: Option<String>,
    ) -> Auth {
        let max = settings::get_i64(self.shared.storage(), settings::SSH_MAX_SESSIONS_PER_USER)
            .await
            .unwrap_or(10);
        let open = self.shared.registry.sessions_of(user.id);
        // Two sign-ins racing here may both pass; the limit is a guard against runaway scripts,
        // not an exact quota.
        if i64::try_from(open).unwrap_or(i64::MAX) >= max {
            info!(user = %user.username, open, "refused: too many SSH connections");
            return self.refuse(format!(
                "You already have {open} open gateway connections, the most allowed. Close one and connect again."
            ));
        }
        if let Some(hash) = web_session {
            self.conn.depend_on_web_session(hash);
        }
        self.conn.set_user(user.id, &user.username);
        self.span.record("user", user.username.as_str());
        if let Some(t) = target {
            self.span.record("target", t);
        }
        self.signed_in = Some(SignedIn {
            user,
            target: target.map(str::to_string),
        });
        Auth::Accept
    }

    /// Enter was pressed on the approval prompt: wait a while for the browser's decision.
    async fn approval(
        &mut self,
        login: &str,
        target: Option<&str>,
        code_hash: String,
        how: String,
    ) -> Auth {
        let storage = self.shared.storage();
        let state = match ssh_approval::wait(storage, &code_hash, APPROVAL_WAIT).await {
            Ok(state) => state,
            Err(e) => {
                warn!(error = %e, "could not read a browser approval");
                return self.refuse(SshSignInError::Internal.to_string());
            }
        };
        let (user_id, session_hash) = match state {
            ApprovalState::Taken {
                user_id,
                session_hash,
            } => (user_id, session_hash),
            ApprovalState::Pending => {
                self.stage = Stage::Approval {
                    code_hash,
                    how: how.clone(),
                };
                return prompt(APPROVED, format!("Not approved yet.\n{how}"));
            }
            ApprovalState::Denied => {
                info!(login, client = %self.conn.peer, "SSH sign-in denied in the browser");
                self.denied = true;
                return self.refuse("The sign-in was denied in the browser.".into());
            }
            ApprovalState::Gone => {
                return self.refuse(
                    "The approval code expired or was already used. Connect again for a new one."
                        .into(),
                );
            }
        };
        // The page checked that the approver owns the login; the account is read again here in
        // case it was disabled or renamed in between.
        let user = match (
            storage.user_by_id(user_id).await,
            storage.user_by_login(login).await,
        ) {
            (Ok(Some(approver)), Ok(Some(named)))
                if approver.id == named.id && approver.is_active() =>
            {
                approver
            }
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "could not read the approving account");
                return self.refuse(SshSignInError::Internal.to_string());
            }
            _ => {
                warn!(
                    login,
                    "a browser approval no longer matches an active account"
                );
                return self
                    .refuse("The approving account is not this login, or it was disabled.".into());
            }
        };
        if let Err(e) = self
            .shared
            .auth
            .ssh_approved_sign_in(&user, self.conn.peer.ip())
            .await
        {
            return self.refuse(e.to_string());
        }
        self.finish(user, target, Some(session_hash)).await
    }

    fn session_ctx(&self, session: &Session) -> Option<SessionCtx> {
        let signed_in = self.signed_in.as_ref()?;
        Some(SessionCtx {
            shared: self.shared.clone(),
            user: signed_in.user.clone(),
            target: signed_in.target.clone(),
            handle: session.handle(),
            gone: self.conn.gone(),
        })
    }
}

impl server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        if !acceptable_name(user) || self.denied {
            return Ok(Auth::reject());
        }
        let (login, target) = self.resolve(user).await;
        let (login, target) = (login.as_str(), target.as_deref());
        // A key proved for one login says nothing about another.
        if self
            .key_user
            .as_ref()
            .is_some_and(|(u, _)| u.username != login && u.email.as_deref() != Some(login))
        {
            self.key_user = None;
        }
        let ip = self.conn.peer.ip();
        if response.is_none() {
            // A new exchange (the client's first, or its retry after a failure). How many a
            // connection gets is bounded by the server's `max_auth_attempts`.
            self.wrong = 0;
            if let Some((user, _)) = &self.key_user {
                // The key stood in for password and security code; only the code is left.
                self.stage = Stage::Totp { user: user.clone() };
                return Ok(prompt(VERIFICATION_CODE, String::new()));
            }
            if ssh_approval::enabled(self.shared.storage()).await {
                match ssh_approval::open(
                    self.shared.storage(),
                    &self.shared.public_url,
                    login,
                    target,
                    ip,
                )
                .await
                {
                    Ok(opened) => {
                        let how = format!(
                            "Approve this sign-in in a browser signed in to Jumpgate:\n  {}\n\
                             (or open {} and type {}). The code expires in {} seconds.\n",
                            opened.url,
                            opened.entry_url,
                            opened.code,
                            ssh_approval::LIFETIME_SECONDS
                        );
                        self.stage = Stage::Approval {
                            code_hash: opened.code_hash,
                            how: how.clone(),
                        };
                        return Ok(prompt(APPROVED, how));
                    }
                    Err(e) => {
                        warn!(error = %e, "could not open a browser approval; asking for the password")
                    }
                }
            }
            self.stage = Stage::Password;
            return Ok(prompt(PASSWORD, String::new()));
        }
        let given = answer(response);
        let stage = std::mem::replace(&mut self.stage, Stage::Refused);
        let auth = self.shared.auth.clone();
        let outcome = match stage {
            Stage::Password => {
                self.stage = Stage::Code { password: given };
                prompt(SECURITY_CODE, String::new())
            }
            Stage::Approval { code_hash, how } if given.trim().is_empty() => {
                self.approval(login, target, code_hash, how).await
            }
            Stage::Approval { .. } => {
                // A password instead: on with the usual prompts.
                self.stage = Stage::Code { password: given };
                prompt(SECURITY_CODE, String::new())
            }
            Stage::Code { password } => {
                match auth.ssh_first_factors(login, &password, &given, ip).await {
                    Ok(FirstFactors::Done(user)) => self.finish(*user, target, None).await,
                    Ok(FirstFactors::DoneBySamlSession(user, session)) => {
                        self.finish(*user, target, Some(session)).await
                    }
                    Ok(FirstFactors::NeedsTotp(user)) => {
                        self.stage = Stage::Totp { user };
                        prompt(VERIFICATION_CODE, String::new())
                    }
                    Err(e @ SshSignInError::InvalidCredentials) => {
                        self.wrong_answer(e, Stage::Password)
                    }
                    Err(e) => self.refuse(e.to_string()),
                }
            }
            Stage::Totp { user } => match auth.ssh_totp(&user, &given, ip).await {
                Ok(fresh) => {
                    if let Some((_, key_id)) = &self.key_user
                        && let Err(e) = self.shared.storage().touch_ssh_key(*key_id).await
                    {
                        warn!(error = %e, "could not record the key's use");
                    }
                    self.finish(fresh, target, None).await
                }
                Err(e @ SshSignInError::InvalidTotpCode) => {
                    self.wrong_answer(e, Stage::Totp { user })
                }
                Err(e) => self.refuse(e.to_string()),
            },
            Stage::Refused => Auth::reject(),
        };
        Ok(outcome)
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only keys registered to this login are worth a signature; others fail here cheaply.
        if !acceptable_name(user) || self.denied {
            return Ok(Auth::reject());
        }
        let (login, _) = self.resolve(user).await;
        match self
            .shared
            .auth
            .ssh_key_owner(&login, offer.public_key)
            .await
        {
            Ok(Some(_)) => Ok(Auth::Accept),
            _ => Ok(Auth::reject()),
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !acceptable_name(user) || self.denied {
            return Ok(Auth::reject());
        }
        let (login, target) = self.resolve(user).await;
        let target = target.as_deref();
        let owner = match self.shared.auth.ssh_key_owner(&login, key.public_key).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return Ok(Auth::reject()),
            Err(e) => {
                warn!(error = %e, "could not check an SSH key");
                return Ok(Auth::reject());
            }
        };
        let (user, key_id) = owner;
        let skip_totp = if user.totp_secret.is_some() {
            match self.shared.auth.ssh_totp_skip_session(&user).await {
                Ok(session) => session,
                Err(e) => {
                    warn!(error = %e, "could not check for a SAML web session");
                    None
                }
            }
        } else {
            None
        };
        if user.totp_secret.is_some() && skip_totp.is_none() {
            // Partly signed in: the client goes on with keyboard-interactive, which asks only
            // for the verification code.
            self.key_user = Some((Box::new(user), key_id));
            return Ok(Auth::Reject {
                proceed_with_methods: Some(MethodSet::from(&[MethodKind::KeyboardInteractive][..])),
                partial_success: true,
            });
        }
        if let Err(e) = self
            .shared
            .auth
            .ssh_key_signed_in(&user, key_id, self.conn.peer.ip())
            .await
        {
            warn!(error = %e, "could not record a key sign-in");
        }
        // The public-key method cannot carry a message: a refusal is a plain one here.
        match self.finish(user, target, skip_totp).await {
            Auth::Accept => Ok(Auth::Accept),
            _ => Ok(Auth::reject()),
        }
    }

    async fn data(
        &mut self,
        _channel: ChannelId,
        _data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.conn.touch();
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(ctx) = self.session_ctx(session) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        self.conn.touch();
        tokio::spawn(channel::run(ctx, channel).instrument(self.span.clone()));
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(ctx) = self.session_ctx(session) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let host = host_to_connect.to_string();
        // Checked and connected in a task: the handler must stay free for the other channels.
        tokio::spawn(
            relay::forward_tcp(ctx, host, port_to_connect, channel, reply)
                .instrument(self.span.clone()),
        );
        Ok(())
    }

    // The channel task reads every request too (russh hands both of us each one); the
    // handler only answers them, since the answer must go out before the next message.
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Environment variables are not passed on to targets.
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // Remote forwarding would open a listener on the gateway itself.
        warn!(
            address,
            port = *port,
            "refused a remote port forwarding request"
        );
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_ride_in_the_user_name() {
        assert_eq!(split_user("alice"), ("alice", None));
        assert_eq!(split_user("alice:web01"), ("alice", Some("web01")));
        assert_eq!(split_user("alice:"), ("alice", None));
        assert_eq!(split_user("a@b.c:db:1"), ("a@b.c", Some("db:1")));
    }
}
