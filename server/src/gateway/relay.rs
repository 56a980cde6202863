//! The onward half of a gateway session: checks that the user may reach the server, signs in
//! to it with the stored credential, and moves bytes both ways.
//!
//! Each direction is its own loop, so a slow side only slows its own direction. Data is moved
//! one SSH packet at a time and every write waits for the receiver's window, so memory per
//! session stays bounded however large a transfer is: the slower side's window holds back the
//! faster side's reads, down to its TCP connection.

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf, Sig};
use tracing::{info, warn};

use super::channel::SessionCtx;
use crate::access;
use crate::upstream::{self, UpstreamError};

/// What the client asked to run.
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

/// The client's terminal.
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

/// A signal that ended the program on the target.
#[derive(Debug, Clone)]
pub struct ExitSignal {
    pub name: Sig,
    pub core_dumped: bool,
    pub message: String,
    pub lang: String,
}

/// How a relayed session ended.
#[derive(Debug, Clone, Default)]
pub struct Ended {
    pub status: Option<u32>,
    pub signal: Option<ExitSignal>,
    /// The client closed its side; there is nothing to return to.
    pub client_gone: bool,
}

impl Ended {
    pub fn status(status: u32) -> Self {
        Ended {
            status: Some(status),
            ..Default::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
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

/// Opens `name` for the user in `ctx` and relays until either side ends. With
/// `forward_eof` false (the menu), the target's end of output is not passed on, because the
/// client's channel lives on.
pub async fn run(
    ctx: &SessionCtx,
    name: &str,
    request: Request,
    pty: &mut Option<Pty>,
    rx: &mut ChannelReadHalf,
    tx: &Arc<ChannelWriteHalf<Msg>>,
    forward_eof: bool,
) -> Result<Ended, RelayError> {
    let storage = ctx.shared.storage();
    // Asked again at every connection: grants and the account may have changed since sign-in.
    let user = storage
        .user_by_id(ctx.user.id)
        .await
        .map_err(|_| RelayError::Storage)?
        .filter(|u| u.is_active())
        .ok_or(RelayError::Disabled)?;
    let server = access::reachable_server(storage, &user, name)
        .await
        .map_err(|_| RelayError::Storage)?
        .ok_or_else(|| RelayError::NotGranted(name.to_string()))?;

    let secret = upstream::open_credential(&ctx.shared.vault, &ctx.shared.gateway_key, &server)?;
    let handle = upstream::connect(storage, &server, secret).await?;
    if let Err(e) = storage.touch_recent(user.id, server.id).await {
        warn!(error = %e, "could not record the server as recently used");
    }
    info!(server = %server.name, host = %server.host, port = server.port, login = %server.login, "connected to target");

    let protocol = |e: russh::Error| {
        RelayError::Upstream(UpstreamError::Protocol {
            server: server.name.clone(),
            detail: e.to_string(),
        })
    };
    let target = handle.channel_open_session().await.map_err(protocol)?;
    let mut replies = 1;
    if let Some(p) = pty.as_ref() {
        target
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
    match &request {
        Request::Shell => target.request_shell(true).await,
        Request::Exec(command) => target.exec(true, command.clone()).await,
        Request::Subsystem(name) => target.request_subsystem(true, name.clone()).await,
    }
    .map_err(protocol)?;

    let (mut target_rx, target_tx) = target.split();
    let mut early = Vec::new();
    while replies > 0 {
        match target_rx.wait().await {
            Some(ChannelMsg::Success) => replies -= 1,
            Some(ChannelMsg::Failure) => {
                // A refused terminal still allows the command; a refused request does not.
                if replies == 1 {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "", "en")
                        .await;
                    return Err(RelayError::RequestRefused {
                        server: server.name.clone(),
                        what: request.describe(),
                    });
                }
                replies -= 1;
            }
            Some(msg @ (ChannelMsg::Data { .. } | ChannelMsg::ExtendedData { .. })) => {
                early.push(msg)
            }
            Some(ChannelMsg::Close) | None => {
                return Err(RelayError::RequestRefused {
                    server: server.name.clone(),
                    what: request.describe(),
                });
            }
            Some(_) => {}
        }
    }

    let outbound = tokio::spawn(to_client(early, target_rx, tx.clone(), forward_eof));
    let ended = to_target(rx, &target_tx, pty, outbound).await;
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(ended)
}

/// Client to target, until the target side ends (`outbound` finishes) or the client leaves.
async fn to_target(
    rx: &mut ChannelReadHalf,
    target: &ChannelWriteHalf<client::Msg>,
    pty: &mut Option<Pty>,
    mut outbound: tokio::task::JoinHandle<Ended>,
) -> Ended {
    let finished = |r: Result<Ended, tokio::task::JoinError>| r.unwrap_or_default();
    loop {
        let msg = tokio::select! {
            r = &mut outbound => return finished(r),
            msg = rx.wait() => msg,
        };
        let sent = match msg {
            Some(ChannelMsg::Data { data }) => {
                tokio::select! {
                    r = &mut outbound => return finished(r),
                    sent = target.data_bytes(data) => sent,
                }
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                tokio::select! {
                    r = &mut outbound => return finished(r),
                    sent = target.extended_data_bytes(ext, data) => sent,
                }
            }
            Some(ChannelMsg::Eof) => target.eof().await,
            Some(ref change @ ChannelMsg::WindowChange { .. }) => match WindowSize::of(change) {
                Some(size) => {
                    if let Some(p) = pty.as_mut() {
                        p.resize(size);
                    }
                    target
                        .window_change(size.cols, size.rows, size.pix_width, size.pix_height)
                        .await
                }
                None => Ok(()),
            },
            Some(ChannelMsg::Signal { signal }) => target.signal(signal).await,
            Some(ChannelMsg::Close) | None => {
                outbound.abort();
                return Ended {
                    client_gone: true,
                    ..Default::default()
                };
            }
            Some(_) => Ok(()),
        };
        if sent.is_err() {
            // The target side is closing; its task reports how it ended.
            return finished(outbound.await);
        }
    }
}

/// Target to client, until the target closes the channel.
async fn to_client(
    early: Vec<ChannelMsg>,
    mut target: ChannelReadHalf,
    tx: Arc<ChannelWriteHalf<Msg>>,
    forward_eof: bool,
) -> Ended {
    let mut ended = Ended::default();
    let mut pending = early.into_iter();
    loop {
        let msg = match pending.next() {
            Some(m) => Some(m),
            None => target.wait().await,
        };
        let sent = match msg {
            Some(ChannelMsg::Data { data }) => tx.data_bytes(data).await,
            Some(ChannelMsg::ExtendedData { data, ext }) => tx.extended_data_bytes(ext, data).await,
            Some(ChannelMsg::Eof) if forward_eof => tx.eof().await,
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                ended.status = Some(exit_status);
                Ok(())
            }
            Some(ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            }) => {
                ended.signal = Some(ExitSignal {
                    name: signal_name,
                    core_dumped,
                    message: error_message,
                    lang: lang_tag,
                });
                Ok(())
            }
            Some(ChannelMsg::Close) | None => return ended,
            Some(_) => Ok(()),
        };
        if sent.is_err() {
            ended.client_gone = true;
            return ended;
        }
    }
}

/// How long a forwarded TCP connection may take to open.
const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `direct-tcpip` channel (`ssh -J alice@gateway bob@web01`): allowed only to a server the
/// user may reach, named by its Jumpgate name or by its own host and port. The person signs in
/// to the target themselves; the gateway only carries the bytes.
pub async fn forward_tcp(
    ctx: SessionCtx,
    host: String,
    port: u32,
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
) {
    let storage = ctx.shared.storage();
    let user = match storage.user_by_id(ctx.user.id).await {
        Ok(Some(u)) if u.is_active() => u,
        _ => {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
    };
    let servers = access::reachable_servers(storage, &user)
        .await
        .unwrap_or_default();
    let server = servers
        .into_iter()
        .find(|s| s.name == host || (s.host == host && u32::try_from(s.port).ok() == Some(port)));
    let Some(server) = server else {
        info!(host = %host, port, "refused forwarding to a server that is not granted");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        return;
    };
    let port = u16::try_from(server.port).unwrap_or(22);
    let connect = tokio::net::TcpStream::connect((server.host.as_str(), port));
    let stream = match tokio::time::timeout(FORWARD_CONNECT_TIMEOUT, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            info!(server = %server.name, error = %e, "forwarding: target unreachable");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
        Err(_) => {
            info!(server = %server.name, "forwarding: target did not answer");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    reply.accept().await;
    if let Err(e) = storage.touch_recent(user.id, server.id).await {
        warn!(error = %e, "could not record the server as recently used");
    }
    info!(server = %server.name, "forwarding a TCP connection (ProxyJump)");
    let mut stream = stream;
    let mut ssh = channel.into_stream();
    match tokio::io::copy_bidirectional(&mut ssh, &mut stream).await {
        Ok((up, down)) => {
            info!(server = %server.name, bytes_up = up, bytes_down = down, "forwarding ended")
        }
        Err(e) => info!(server = %server.name, error = %e, "forwarding ended"),
    }
}
