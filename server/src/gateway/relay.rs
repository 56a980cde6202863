//! The onward half of a gateway session: opens the target through [`crate::onward`] (access
//! check, stored credential, pinned host key) and moves bytes both ways, until either side ends
//! or the user may no longer reach the server.
//!
//! Each direction is its own loop, so a slow side only slows its own direction. Data is moved
//! one SSH packet at a time and every write waits for the receiver's window, so memory per
//! session stays bounded however large a transfer is: the slower side's window holds back the
//! faster side's reads, down to its TCP connection.
//!
//! Known shortcoming: russh's session loop stops reading its socket while a channel's queue is
//! full, and window adjustments arrive on that same socket. When both directions are saturated
//! at once (a multi-megabyte upload that the target echoes back, as `cat` does) the client and
//! target connections can end up waiting on each other. One-way bulk transfers (scp, sftp,
//! rsync) are not affected. The remedy planned is a stall timeout per direction. A client that
//! leaves ends its relays at once (the connection's `gone` signal), whatever the target does.

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::sync::watch;
use tracing::{info, warn};

use super::channel::SessionCtx;
use crate::access;
use crate::onward::{self, OpenError, Pty, Request, TargetSession, WindowSize};

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
    /// The target's end of output was passed on already.
    pub eof_sent: bool,
    /// Closed by Jumpgate because the user may no longer reach the server.
    pub revoked: bool,
}

impl Ended {
    pub fn status(status: u32) -> Self {
        Ended {
            status: Some(status),
            ..Default::default()
        }
    }
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
) -> Result<Ended, OpenError> {
    let session = onward::open(
        &ctx.shared.onward,
        ctx.user.id,
        name,
        pty.as_ref(),
        &request,
    )
    .await?;
    let TargetSession {
        server,
        handle,
        rx: target_rx,
        tx: target_tx,
        early,
    } = session;
    let outbound = tokio::spawn(to_client(
        early,
        target_rx,
        tx.clone(),
        forward_eof,
        ctx.gone.clone(),
    ));
    let stop_outbound = outbound.abort_handle();
    let ended = tokio::select! {
        ended = to_target(rx, &target_tx, pty, outbound, ctx.gone.clone()) => ended,
        () = revoked(ctx, server.id) => {
            stop_outbound.abort();
            info!(server = %server.name, "closing a target session: access revoked");
            Ended {
                revoked: true,
                ..Default::default()
            }
        }
    };
    TargetSession::close(&handle).await;
    Ok(ended)
}

/// Returns once the user may no longer reach `server_id` (grant removed, server moved out of
/// the granted groups or deleted). The account being disabled ends the whole connection
/// elsewhere (the registry's watchdog); this closes just the session on that server.
async fn revoked(ctx: &SessionCtx, server_id: i64) {
    let mut tick = tokio::time::interval(RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if !onward::still_allowed(&ctx.shared.onward.storage, ctx.user.id, server_id).await {
            return;
        }
    }
}

/// Client to target, until the target side ends (`outbound` finishes) or the client leaves.
async fn to_target(
    rx: &mut ChannelReadHalf,
    target: &ChannelWriteHalf<client::Msg>,
    pty: &mut Option<Pty>,
    mut outbound: tokio::task::JoinHandle<Ended>,
    mut gone: watch::Receiver<bool>,
) -> Ended {
    let finished = |r: Result<Ended, tokio::task::JoinError>| r.unwrap_or_default();
    let left = |outbound: &tokio::task::JoinHandle<Ended>| {
        outbound.abort();
        Ended {
            client_gone: true,
            ..Default::default()
        }
    };
    loop {
        let msg = tokio::select! {
            r = &mut outbound => return finished(r),
            _ = client_left(&mut gone) => return left(&outbound),
            msg = rx.wait() => msg,
        };
        let sent = match msg {
            Some(ChannelMsg::Data { data }) => {
                tokio::select! {
                    r = &mut outbound => return finished(r),
                    _ = client_left(&mut gone) => return left(&outbound),
                    sent = target.data_bytes(data) => sent,
                }
            }
            Some(ChannelMsg::ExtendedData { data, ext }) => {
                tokio::select! {
                    r = &mut outbound => return finished(r),
                    _ = client_left(&mut gone) => return left(&outbound),
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
            Some(ChannelMsg::Close) | None => return left(&outbound),
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
    mut gone: watch::Receiver<bool>,
) -> Ended {
    let mut ended = Ended::default();
    let mut pending = early.into_iter();
    loop {
        let msg = match pending.next() {
            Some(m) => Some(m),
            None => target.wait().await,
        };
        let sent = match msg {
            Some(ChannelMsg::Data { data }) => tokio::select! {
                sent = tx.data_bytes(data) => sent,
                _ = client_left(&mut gone) => Err(russh::Error::Disconnect),
            },
            Some(ChannelMsg::ExtendedData { data, ext }) => tokio::select! {
                sent = tx.extended_data_bytes(ext, data) => sent,
                _ = client_left(&mut gone) => Err(russh::Error::Disconnect),
            },
            Some(ChannelMsg::Eof) if forward_eof => {
                ended.eof_sent = true;
                tx.eof().await
            }
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

/// Resolves once the client's connection has ended.
async fn client_left(gone: &mut watch::Receiver<bool>) {
    // An error means the connection's state is gone, which is an ending too.
    let _ = gone.wait_for(|ended| *ended).await;
}

/// How often an open session checks that its user may still reach the server.
const RECHECK: Duration = Duration::from_secs(5);

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
    let storage = &ctx.shared.onward.storage;
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
        info!(host = ?host, port, "refused forwarding to a server that is not granted");
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
    let copied = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut ssh, &mut stream) => Some(copied),
        () = revoked(&ctx, server.id) => None,
    };
    match copied {
        Some(Ok((up, down))) => {
            info!(server = %server.name, bytes_up = up, bytes_down = down, "forwarding ended")
        }
        Some(Err(e)) => info!(server = %server.name, error = %e, "forwarding ended"),
        None => info!(server = %server.name, "forwarding closed: access revoked"),
    }
}
