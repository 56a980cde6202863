//! The browser console's back end: one WebSocket per terminal tab, relayed to a target through
//! [`crate::onward`], as the SSH gateway's sessions are.
//!
//! `GET /api/console/ws?server=NAME&cols=C&rows=R` upgrades to a WebSocket when the request
//! carries a valid web session (no password change pending), an `Origin` header equal to the
//! panel's origin, and names a server the person may reach. Then:
//!
//! - binary frames carry terminal bytes, both ways;
//! - text frames carry JSON control messages. From the browser: `{"type":"resize","cols":C,
//!   "rows":R}` and `{"type":"ack","bytes":N}` (N bytes of output have been drawn). From the
//!   server: `{"type":"connected","server":NAME}` once the shell runs, and `{"type":"closed",
//!   "reason":TEXT,"exit_status":N|null}` before the socket closes.
//!
//! Flow control: the server stops reading the target while more than [`WINDOW`] bytes of output
//! are unacknowledged, so a flood (`yes`) holds the target back instead of filling memory or
//! the browser. The web session stands for the person's second factor: no code is asked here.
//! The account and the grant are checked again every few seconds; losing either ends the
//! console.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use app::api::backend::RequestContext;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::{SinkExt, StreamExt};
use russh::ChannelMsg;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{Instrument, info, warn};

use crate::access;
use crate::http::HttpState;
use crate::onward::{self, OpenError, Pty, Request, TargetSession};

/// Unacknowledged output, in bytes, after which the target is no longer read.
pub const WINDOW: u64 = 256 * 1024;
/// Largest control message or input frame taken from a browser.
const MAX_FRAME: usize = 64 * 1024;
/// How often the account and the grant are checked again.
const RECHECK: Duration = Duration::from_secs(5);
const MAX_COLS: u32 = 1000;
const MAX_ROWS: u32 = 500;

#[derive(Debug, Deserialize)]
pub struct ConsoleQuery {
    server: String,
    cols: Option<u32>,
    rows: Option<u32>,
}

/// Control messages from the browser.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromBrowser {
    Resize { cols: u32, rows: u32 },
    Ack { bytes: u64 },
}

/// Control messages to the browser.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToBrowser<'a> {
    Connected {
        server: &'a str,
    },
    Closed {
        reason: &'a str,
        exit_status: Option<u32>,
    },
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn clamp_size(cols: Option<u32>, rows: Option<u32>) -> (u32, u32) {
    (
        cols.unwrap_or(80).clamp(10, MAX_COLS),
        rows.unwrap_or(24).clamp(4, MAX_ROWS),
    )
}

/// The upgrade request: every check happens before the socket exists.
pub async fn upgrade(
    State(st): State<HttpState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    Query(query): Query<ConsoleQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers always send Origin on WebSocket requests; a missing one is not a browser.
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin != Some(st.public_origin.as_str()) {
        warn!(client.ip = %ctx.client_ip, origin = ?origin, "refused a console WebSocket from a foreign origin");
        return refuse(StatusCode::FORBIDDEN, "foreign origin");
    }
    let signed_in = match st.auth.authenticate(ctx.session_token.as_deref()).await {
        Ok(Some(a)) if a.user.must_change_password == 0 => a,
        Ok(_) => return refuse(StatusCode::UNAUTHORIZED, "not signed in"),
        Err(e) => {
            warn!(error = %e, "console: session lookup failed");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let user = signed_in.user;
    let name = query.server.trim().to_string();
    match access::reachable_server(st.auth.storage(), &user, &name).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return refuse(
                StatusCode::FORBIDDEN,
                &OpenError::NotGranted(name).to_string(),
            );
        }
        Err(e) => {
            warn!(error = %e, "console: access check failed");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    }
    let (cols, rows) = clamp_size(query.cols, query.rows);
    let onward = st.onward.clone();
    let span = tracing::info_span!(
        "console",
        user = %user.username,
        client = %ctx.client_ip,
        target = %name
    );
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            run(
                socket,
                onward,
                user.id,
                name,
                Pty::new("xterm-256color", cols, rows),
            )
            .instrument(span)
        })
}

fn control(msg: &ToBrowser<'_>) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(msg).unwrap_or_default(),
    ))
}

async fn run(socket: WebSocket, onward: onward::Onward, user_id: i64, name: String, pty: Pty) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let session = match onward::open(&onward, user_id, &name, Some(&pty), &Request::Shell).await {
        Ok(s) => s,
        Err(e) => {
            info!(error = %e, "console session refused");
            let reason = e.to_string();
            let _ = ws_tx
                .send(control(&ToBrowser::Closed {
                    reason: &reason,
                    exit_status: None,
                }))
                .await;
            let _ = ws_tx.send(Message::Close(None)).await;
            return;
        }
    };
    info!("console session opened");
    let TargetSession {
        server,
        handle,
        rx: mut target_rx,
        tx: target_tx,
        early,
    } = session;
    if ws_tx
        .send(control(&ToBrowser::Connected {
            server: &server.name,
        }))
        .await
        .is_err()
    {
        TargetSession::close(&handle).await;
        return;
    }

    let unacked = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Notify::new());

    // Browser to target, in its own task so that a target slow to take input never stops
    // output from flowing (and the other way round).
    let inbound = {
        let unacked = unacked.clone();
        let acked = acked.clone();
        tokio::spawn(
            async move {
                while let Some(Ok(msg)) = ws_rx.next().await {
                    match msg {
                        Message::Binary(data) => {
                            // Waits for the target's window: typing faster than the target
                            // reads holds the browser's socket back, not memory.
                            let sent = target_tx.data_bytes(data).await;
                            if sent.is_err() {
                                break;
                            }
                        }
                        Message::Text(text) => {
                            match serde_json::from_str::<FromBrowser>(text.as_str()) {
                                Ok(FromBrowser::Resize { cols, rows }) => {
                                    let (cols, rows) = clamp_size(Some(cols), Some(rows));
                                    let _ = target_tx.window_change(cols, rows, 0, 0).await;
                                }
                                Ok(FromBrowser::Ack { bytes }) => {
                                    let _ = unacked.fetch_update(
                                        Ordering::AcqRel,
                                        Ordering::Acquire,
                                        |n| Some(n.saturating_sub(bytes)),
                                    );
                                    acked.notify_one();
                                }
                                Err(_) => {
                                    warn!("console: ignored a malformed control message");
                                }
                            }
                        }
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
            }
            .in_current_span(),
        )
    };

    let mut pending = early.into_iter();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    let mut exit_status = None;
    let mut inbound = inbound;
    let reason: String = loop {
        // Output waits while the browser is too far behind; input and checks go on.
        let behind = unacked.load(Ordering::Acquire) >= WINDOW;
        let early = if behind { None } else { pending.next() };
        let msg = match early {
            Some(m) => Some(m),
            None => tokio::select! {
                m = target_rx.wait(), if !behind => m,
                _ = acked.notified(), if behind => continue,
                _ = &mut inbound => break "The browser closed the console.".into(),
                _ = recheck.tick() => {
                    if onward::still_allowed(&onward.storage, user_id, server.id).await {
                        continue;
                    }
                    break "Your access to this server was revoked or your account was disabled.".into();
                }
            },
        };
        let data = match msg {
            Some(ChannelMsg::Data { data }) => data,
            Some(ChannelMsg::ExtendedData { data, .. }) => data,
            Some(ChannelMsg::ExitStatus { exit_status: s }) => {
                exit_status = Some(s);
                continue;
            }
            Some(ChannelMsg::Close) | None => {
                break format!("The session on {} ended.", server.name);
            }
            Some(_) => continue,
        };
        unacked.fetch_add(data.len() as u64, Ordering::AcqRel);
        if ws_tx.send(Message::Binary(data)).await.is_err() {
            break "The browser went away.".into();
        }
    };
    info!(reason = %reason, status = ?exit_status, "console session ended");
    inbound.abort();
    TargetSession::close(&handle).await;
    let _ = ws_tx
        .send(control(&ToBrowser::Closed {
            reason: &reason,
            exit_status,
        }))
        .await;
    let _ = ws_tx
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from_static("session ended"),
        })))
        .await;
}
