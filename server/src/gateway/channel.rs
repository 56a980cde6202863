//! One session channel: waits for the client's request, then runs the menu or relays to a
//! target, and ends the channel with the right exit status.
//!
//! What a request does depends on whether the user name named a target:
//!
//! | request            | `alice@gw`                          | `alice:web01@gw`          |
//! |--------------------|-------------------------------------|---------------------------|
//! | shell              | the server menu (needs a terminal)  | a shell on web01          |
//! | exec `web01`       | a shell on web01 (`ssh -t gw web01`) | the command on web01      |
//! | subsystem (sftp)   | refused: name the server            | the subsystem on web01    |

use std::sync::Arc;

use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tracing::{Instrument, info};

use super::relay::{self, Ended};
use super::{Shared, menu};
use crate::onward::{Pty, Request, WindowSize};
use crate::storage::UserRow;

/// What a channel task knows about its connection.
#[derive(Clone)]
pub struct SessionCtx {
    pub shared: Arc<Shared>,
    pub user: UserRow,
    /// The server named in the user name, if any.
    pub target: Option<String>,
    pub handle: russh::server::Handle,
    /// Turns true when the client's connection has ended.
    pub gone: tokio::sync::watch::Receiver<bool>,
}

/// Exit status for errors the gateway reports itself (unknown server, unreachable target).
pub const EXIT_GATEWAY_ERROR: u32 = 1;

/// Longest server name taken from an exec request.
const MAX_NAME_LEN: usize = 200;

pub async fn run(ctx: SessionCtx, channel: Channel<Msg>) {
    let id = channel.id();
    let (mut rx, tx) = channel.split();
    let tx = Arc::new(tx);
    let mut pty: Option<Pty> = None;

    let request = loop {
        let msg = rx.wait().await;
        if let Some(size) = msg.as_ref().and_then(WindowSize::of) {
            if let Some(p) = pty.as_mut() {
                p.resize(size);
            }
            continue;
        }
        match msg {
            None | Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) => {
                let _ = tx.close().await;
                return;
            }
            Some(ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                pix_width,
                pix_height,
                terminal_modes,
                ..
            }) => {
                pty = Some(Pty {
                    term,
                    cols: col_width,
                    rows: row_height,
                    pix_width,
                    pix_height,
                    modes: terminal_modes,
                });
            }
            Some(ChannelMsg::RequestShell { .. }) => break Request::Shell,
            Some(ChannelMsg::Exec { command, .. }) => break Request::Exec(command),
            Some(ChannelMsg::RequestSubsystem { name, .. }) => break Request::Subsystem(name),
            Some(_) => {}
        }
    };

    let outcome = match (ctx.target.clone(), request) {
        (Some(target), request) => direct(&ctx, &target, request, &mut pty, &mut rx, &tx).await,
        (None, Request::Shell) => match pty.as_mut() {
            Some(p) => {
                let status = menu::run(&ctx, p, &mut rx, &tx).await;
                Ended::status(status)
            }
            None => fail(
                &tx,
                false,
                "the server menu needs a terminal: connect with `ssh -t`, or name a server as in `ssh alice:web01@gateway`",
            )
            .await,
        },
        (None, Request::Exec(command)) => {
            let name = String::from_utf8_lossy(&command).trim().to_string();
            if name.is_empty()
                || name.len() > MAX_NAME_LEN
                || name.contains(|c: char| c.is_whitespace() || c.is_control())
            {
                fail(
                    &tx,
                    pty.is_some(),
                    "give only a server name (`ssh -t alice@gateway web01`), or name the server in the user name to run a command (`ssh alice:web01@gateway 'uptime'`)",
                )
                .await
            } else {
                direct(&ctx, &name, Request::Shell, &mut pty, &mut rx, &tx).await
            }
        }
        (None, Request::Subsystem(name)) => {
            fail(
                &tx,
                pty.is_some(),
                &format!(
                    "name the server in the user name to use the {name} subsystem, as in `sftp alice:web01@gateway`"
                ),
            )
            .await
        }
    };

    match outcome.signal {
        Some(signal) => {
            let _ = ctx
                .handle
                .exit_signal_request(
                    id,
                    signal.name,
                    signal.core_dumped,
                    signal.message,
                    signal.lang,
                )
                .await;
        }
        None => {
            if let Some(status) = outcome.status {
                let _ = tx.exit_status(status).await;
            }
        }
    }
    if !outcome.eof_sent {
        let _ = tx.eof().await;
    }
    let _ = tx.close().await;
}

/// A session that goes straight to `target`.
async fn direct(
    ctx: &SessionCtx,
    target: &str,
    request: Request,
    pty: &mut Option<Pty>,
    rx: &mut russh::ChannelReadHalf,
    tx: &Arc<ChannelWriteHalf<Msg>>,
) -> Ended {
    let span = tracing::info_span!("target", target = %target, request = %request.describe());
    let result = relay::run(ctx, target, request, pty, rx, tx, true)
        .instrument(span.clone())
        .await;
    match result {
        Ok(ended) if ended.revoked => {
            let message = format!(
                "your access to {target} was revoked; the session was closed. Ask an administrator."
            );
            fail(tx, pty.is_some(), &message).await
        }
        Ok(ended) => {
            span.in_scope(|| info!(status = ?ended.status, "target session ended"));
            ended
        }
        Err(e) => {
            span.in_scope(|| info!(error = %e, "target session refused"));
            fail(tx, pty.is_some(), &e.to_string()).await
        }
    }
}

/// Writes `message` to the client's error stream and gives exit status 1.
async fn fail(tx: &ChannelWriteHalf<Msg>, terminal: bool, message: &str) -> Ended {
    let line = if terminal {
        format!("jumpgate: {message}\r\n")
    } else {
        format!("jumpgate: {message}\n")
    };
    let _ = tx.extended_data_bytes(1, line.into_bytes()).await;
    Ended::status(EXIT_GATEWAY_ERROR)
}
