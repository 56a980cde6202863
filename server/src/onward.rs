//! Opening a session on a target for a person: the one path that the SSH gateway and the
//! browser console both take, so that the access check, the stored credential, the host-key
//! pin and the terminal request are the same whichever door someone came through.

use std::sync::Arc;

use russh::client;
use russh::keys::PrivateKey;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tracing::{info, warn};

use crate::access;
use crate::storage::{ServerRow, Storage};
use crate::upstream::{self, TargetHandle, UpstreamError};
use crate::vault::Vault;

/// How long a target may take to answer the terminal and shell/exec/subsystem requests.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// What opening sessions needs: storage for the access rule and pins, and the secrets.
#[derive(Clone)]
pub struct Onward {
    pub storage: Storage,
    pub vault: Arc<Vault>,
    /// The key the gateway signs in with when a server is set to use it.
    pub gateway_key: Arc<PrivateKey>,
}

/// What the person asked to run on the target.
#[derive(Debug, Clone)]
pub enum Request {
    Shell,
    Exec(Vec<u8>),
    Subsystem(String),
}

impl Request {
    /// For logs: the kind of request, never the command line (it may hold secrets).
    pub fn describe(&self) -> String {
        match self {
            Request::Shell => "shell".into(),
            Request::Exec(_) => "exec".into(),
            Request::Subsystem(name) => format!("subsystem {name}"),
        }
    }
}

/// The person's terminal.
#[derive(Debug, Clone)]
pub struct Pty {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub pix_width: u32,
    pub pix_height: u32,
    pub modes: Vec<(russh::Pty, u32)>,
}

impl Pty {
    /// A terminal of `term` type, `cols` x `rows`, with the target's default modes.
    pub fn new(term: &str, cols: u32, rows: u32) -> Self {
        Pty {
            term: term.to_string(),
            cols,
            rows,
            pix_width: 0,
            pix_height: 0,
            modes: Vec::new(),
        }
    }

    pub fn resize(&mut self, size: WindowSize) {
        self.cols = size.cols;
        self.rows = size.rows;
        self.pix_width = size.pix_width;
        self.pix_height = size.pix_height;
    }
}

/// A terminal size, from a window-change request.
#[derive(Debug, Clone, Copy)]
pub struct WindowSize {
    pub cols: u32,
    pub rows: u32,
    pub pix_width: u32,
    pub pix_height: u32,
}

impl WindowSize {
    /// The new size if `msg` is a window change.
    pub fn of(msg: &ChannelMsg) -> Option<Self> {
        match *msg {
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                pix_width,
                pix_height,
            } => Some(WindowSize {
                cols: col_width,
                rows: row_height,
                pix_width,
                pix_height,
            }),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no server called `{0}` is available to you")]
    NotGranted(String),
    #[error("your account is disabled")]
    Disabled,
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("{server} refused to start the {what}")]
    RequestRefused { server: String, what: String },
    #[error("the gateway could not look up the server; try again later")]
    Storage,
}

/// A started session on a target.
pub struct TargetSession {
    pub server: ServerRow,
    /// Keeps the connection; [`TargetSession::close`] ends it.
    pub handle: TargetHandle,
    pub rx: ChannelReadHalf,
    pub tx: ChannelWriteHalf<client::Msg>,
    /// Output that arrived before the request was confirmed, to pass on first.
    pub early: Vec<ChannelMsg>,
}

impl TargetSession {
    pub async fn close(handle: &TargetHandle) {
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Whether `user_id` may still reach `server_id` (the account active, the grant in place).
pub async fn still_allowed(storage: &Storage, user_id: i64, server_id: i64) -> bool {
    let user = match storage.user_by_id(user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return false,
        // A failed read is not proof of a deleted account; the next check decides.
        Err(_) => return true,
    };
    match access::reachable_servers(storage, &user).await {
        Ok(servers) => servers.iter().any(|s| s.id == server_id),
        // A failed read is not proof of a revoked grant; the next check decides.
        Err(_) => true,
    }
}

/// Opens `name` for `user_id`: asks the access rule again (the account and grants may have
/// changed since sign-in), signs in with the stored credential, checks the pinned host key,
/// requests the terminal when there is one, and starts `request`.
pub async fn open(
    onward: &Onward,
    user_id: i64,
    name: &str,
    pty: Option<&Pty>,
    request: &Request,
) -> Result<TargetSession, OpenError> {
    let storage = &onward.storage;
    let user = storage
        .user_by_id(user_id)
        .await
        .map_err(|_| OpenError::Storage)?
        .filter(|u| u.is_active())
        .ok_or(OpenError::Disabled)?;
    let server = access::reachable_server(storage, &user, name)
        .await
        .map_err(|_| OpenError::Storage)?
        .ok_or_else(|| OpenError::NotGranted(name.to_string()))?;

    let secret = upstream::open_credential(&onward.vault, &onward.gateway_key, &server)?;
    let handle = upstream::connect(storage, &server, secret).await?;
    if let Err(e) = storage.touch_recent(user.id, server.id).await {
        warn!(error = %e, "could not record the server as recently used");
    }
    info!(server = %server.name, host = %server.host, port = server.port, login = %server.login, "connected to target");

    let protocol = |e: russh::Error| {
        OpenError::Upstream(UpstreamError::Protocol {
            server: server.name.clone(),
            detail: e.to_string(),
        })
    };
    let refused = || OpenError::RequestRefused {
        server: server.name.clone(),
        what: request.describe(),
    };
    let channel = handle.channel_open_session().await.map_err(protocol)?;
    let mut replies = 1;
    if let Some(p) = pty {
        channel
            .request_pty(
                true,
                &p.term,
                p.cols,
                p.rows,
                p.pix_width,
                p.pix_height,
                &p.modes,
            )
            .await
            .map_err(protocol)?;
        replies += 1;
    }
    match request {
        Request::Shell => channel.request_shell(true).await,
        Request::Exec(command) => channel.exec(true, command.clone()).await,
        Request::Subsystem(name) => channel.request_subsystem(true, name.clone()).await,
    }
    .map_err(protocol)?;

    let (mut rx, tx) = channel.split();
    let mut early = Vec::new();
    // A target that signs in but never answers the request must not hold the session forever.
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    while replies > 0 {
        let Ok(msg) = tokio::time::timeout_at(deadline, rx.wait()).await else {
            TargetSession::close(&handle).await;
            return Err(refused());
        };
        match msg {
            Some(ChannelMsg::Success) => replies -= 1,
            Some(ChannelMsg::Failure) => {
                // A refused terminal still allows the command; a refused request does not.
                if replies == 1 {
                    TargetSession::close(&handle).await;
                    return Err(refused());
                }
                replies -= 1;
            }
            Some(msg @ (ChannelMsg::Data { .. } | ChannelMsg::ExtendedData { .. })) => {
                early.push(msg)
            }
            Some(ChannelMsg::Close) | None => {
                TargetSession::close(&handle).await;
                return Err(refused());
            }
            Some(_) => {}
        }
    }
    Ok(TargetSession {
        server,
        handle,
        rx,
        tx,
        early,
    })
}
