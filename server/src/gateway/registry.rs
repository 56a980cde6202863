//! Every open gateway connection, and the watchdog that ends the ones that must end: sign-in
//! taking too long, no input for longer than the idle setting, an account that was disabled
//! or deleted while connected, or a web session that the sign-in relied on (browser approval,
//! or the TOTP skip for SAML) having ended.
//!
//! The watchdog reads the account state from storage, so a change made on any node (web panel,
//! `jumpgate user disable`) reaches connections on every node within one tick.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use russh::Disconnect;
use tracing::{info, warn};

use super::Shared;
use crate::settings;

/// How often the watchdog looks.
const TICK: Duration = Duration::from_secs(5);

/// One TCP connection to the gateway.
pub struct ConnState {
    pub id: u64,
    pub peer: SocketAddr,
    opened: Instant,
    /// When the person last sent anything, in milliseconds after `opened`.
    last_input_ms: AtomicU64,
    /// The signed-in user's id and name, once sign-in succeeded.
    user: OnceLock<(i64, String)>,
    /// The web session (its hash) this sign-in relied on, and when the watchdog last marked it
    /// as in use (Unix time).
    web_session: OnceLock<String>,
    web_session_touched: AtomicI64,
    handle: OnceLock<russh::server::Handle>,
    /// Turns true when the connection has ended, so that relays waiting on the client stop.
    gone: tokio::sync::watch::Sender<bool>,
}

impl ConnState {
    /// Notes input from the person, for the idle timeout.
    pub fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_input_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_input_ms.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }

    pub fn set_user(&self, id: i64, name: &str) {
        let _ = self.user.set((id, name.to_string()));
    }

    /// Ties this connection to a web session: when that session ends, so does the connection.
    pub fn depend_on_web_session(&self, id_hash: String) {
        let _ = self.web_session.set(id_hash);
    }

    pub fn user_id(&self) -> Option<i64> {
        self.user.get().map(|(id, _)| *id)
    }

    pub fn set_handle(&self, handle: russh::server::Handle) {
        let _ = self.handle.set(handle);
    }

    /// Notes that the connection has ended.
    pub fn mark_gone(&self) {
        self.gone.send_replace(true);
    }

    /// Watches for the end of the connection (also ends when this state is dropped).
    pub fn gone(&self) -> tokio::sync::watch::Receiver<bool> {
        self.gone.subscribe()
    }

    /// Ends the connection with `reason`, which the client shows to the person.
    async fn end(&self, reason: &str) {
        if let Some(h) = self.handle.get() {
            let _ = h
                .disconnect(Disconnect::ByApplication, reason.to_string(), "en".into())
                .await;
        }
    }
}

#[derive(Default)]
pub struct Registry {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Registry {
    pub fn open(&self, peer: SocketAddr) -> Arc<ConnState> {
        let conn = Arc::new(ConnState {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            peer,
            opened: Instant::now(),
            last_input_ms: AtomicU64::new(0),
            user: OnceLock::new(),
            web_session: OnceLock::new(),
            web_session_touched: AtomicI64::new(0),
            handle: OnceLock::new(),
            gone: tokio::sync::watch::channel(false).0,
        });
        if let Ok(mut map) = self.conns.lock() {
            map.insert(conn.id, conn.clone());
        }
        conn
    }

    pub fn close(&self, id: u64) {
        if let Ok(mut map) = self.conns.lock() {
            map.remove(&id);
        }
    }

    /// Signed-in connections of `user_id`.
    pub fn sessions_of(&self, user_id: i64) -> usize {
        self.snapshot()
            .iter()
            .filter(|c| c.user_id() == Some(user_id))
            .count()
    }

    fn snapshot(&self) -> Vec<Arc<ConnState>> {
        self.conns
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Runs forever, ending connections that must end.
pub(super) async fn watchdog(shared: Arc<Shared>, login_grace: Duration) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let conns = shared.registry.snapshot();
        if conns.is_empty() {
            continue;
        }
        let idle_limit = settings::get_i64(shared.storage(), settings::SSH_IDLE_MINUTES)
            .await
            .unwrap_or(30);
        let idle_limit = Duration::from_secs(u64::try_from(idle_limit).unwrap_or(30) * 60);

        // Accounts that may no longer be connected. A storage error keeps connections open:
        // failing to read is not evidence that an account was disabled.
        let users: HashSet<i64> = conns.iter().filter_map(|c| c.user_id()).collect();
        let mut gone = HashSet::new();
        for id in users {
            match shared.storage().user_by_id(id).await {
                Ok(Some(u)) if u.is_active() => {}
                Ok(_) => {
                    gone.insert(id);
                }
                Err(e) => warn!(error = %e, "could not check accounts of open SSH connections"),
            }
        }

        let ended_sessions = ended_web_sessions(&shared, &conns).await;

        for conn in conns {
            let ended = conn
                .web_session
                .get()
                .is_some_and(|s| ended_sessions.contains(s));
            let reason = match conn.user_id() {
                None if conn.opened.elapsed() > login_grace => {
                    Some("Sign-in took too long. Connect again.")
                }
                None => None,
                Some(id) if gone.contains(&id) => {
                    Some("Your account was disabled. Ask an administrator.")
                }
                Some(_) if ended => Some(
                    "Your web panel session ended (signed out or expired), and this SSH sign-in \
                     relied on it. Sign in to the panel and connect again.",
                ),
                Some(_) if conn.idle_for() > idle_limit => {
                    Some("Disconnected after being idle too long. Connect again.")
                }
                Some(_) => None,
            };
            if let Some(reason) = reason {
                let user = conn.user.get().map(|(_, n)| n.as_str()).unwrap_or("");
                info!(conn = conn.id, client = %conn.peer, user, reason, "ending SSH connection");
                // In its own task: a connection whose event queue is full must not stall the
                // watchdog for everyone else.
                tokio::spawn(async move { conn.end(reason).await });
            }
        }
    }
}

/// The web sessions that connections relied on and that have ended. A session still in use
/// over SSH is marked as seen, so that working in the terminal keeps the panel session from
/// expiring for idleness (its absolute lifetime still applies).
async fn ended_web_sessions(shared: &Shared, conns: &[Arc<ConnState>]) -> HashSet<String> {
    let mut ended = HashSet::new();
    if conns.iter().all(|c| c.web_session.get().is_none()) {
        return ended;
    }
    let cutoff = match shared.auth.idle_cutoff().await {
        Ok(cutoff) => cutoff,
        Err(e) => {
            warn!(error = %e, "could not check web sessions of open SSH connections");
            return ended;
        }
    };
    let now = crate::storage::now();
    for conn in conns {
        let Some(hash) = conn.web_session.get() else {
            continue;
        };
        // As with accounts, a storage error is not evidence that the session ended.
        match shared.storage().web_session_is_live(hash, cutoff).await {
            Ok(true) => {
                let in_use = conn.idle_for() < 2 * TICK;
                let touched = conn.web_session_touched.load(Ordering::Relaxed);
                if in_use && now - touched >= 60 {
                    conn.web_session_touched.store(now, Ordering::Relaxed);
                    if let Err(e) = shared.storage().touch_session(hash, now).await {
                        warn!(error = %e, "could not mark a web session as in use");
                    }
                }
            }
            Ok(false) => {
                ended.insert(hash.clone());
            }
            Err(e) => warn!(error = %e, "could not check a web session of an SSH connection"),
        }
    }
    ended
}
