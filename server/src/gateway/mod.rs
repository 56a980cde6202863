//! The native SSH gateway: people connect with their own SSH client (`ssh -p 2222
//! alice@gateway`), answer the password, security-code and verification-code prompts, and get
//! the server menu; or they name a server in the user name (`alice:web01@gateway`) and their
//! shell, command, scp, rsync or sftp goes straight to it.
//!
//! The pieces, in the order a connection meets them:
//! - this module: the listener, the host key, the algorithm lists and the accept loop;
//! - [`connection`]: one russh server handler per TCP connection, doing the sign-in and
//!   accepting channels;
//! - [`channel`]: one task per session channel, deciding between menu, shell, command and
//!   subsystem;
//! - [`menu`]: the full-screen server menu, drawn with ANSI sequences;
//! - [`relay`]: the byte pumps both ways, over a target session opened by [`crate::onward`];
//! - [`registry`]: every open connection, so that limits, idle timeouts, disabled accounts and
//!   ended web sessions (for sign-ins that relied on one) are enforced while connections run.
//!
//! Nothing a person types runs on the gateway itself: a session channel either draws the menu or
//! relays to a target.

mod channel;
mod connection;
mod menu;
mod registry;
mod relay;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::keys::ssh_key::Algorithm;
use russh::{MethodKind, MethodSet, Preferred, SshId, cipher, kex, mac};
use tokio::net::TcpListener;
use tracing::{Instrument, info, warn};

use crate::auth::Auth;
use crate::onward::Onward;
use crate::upstream::{self, UpstreamError};

pub use registry::Registry;

/// File name of the gateway's SSH host key in the data directory.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// How long a client may take from connecting to finishing sign-in (browser approval included).
const LOGIN_GRACE: Duration = Duration::from_secs(120);

/// What the gateway needs from the rest of Jumpgate.
pub struct Deps {
    pub auth: Auth,
    /// Opens sessions on targets (shared with the browser console).
    pub onward: Onward,
    /// The web panel's address, for the links of browser approval.
    pub public_url: url::Url,
}

/// State shared by every connection.
pub(crate) struct Shared {
    auth: Auth,
    onward: Onward,
    registry: Arc<Registry>,
    public_url: url::Url,
}

impl Shared {
    fn storage(&self) -> &crate::storage::Storage {
        self.auth.storage()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    HostKey(#[from] UpstreamError),
    #[error("cannot listen for SSH on ssh.listen = {addr}: {detail}")]
    Listen { addr: SocketAddr, detail: String },
}

/// Loads the host key from the data directory, creating it on first start. Clients remember
/// it, so it must survive restarts and upgrades: back it up with the database.
pub fn host_key(data_dir: &Path) -> Result<PrivateKey, GatewayError> {
    Ok(upstream::load_or_create_ed25519(
        &data_dir.join(HOST_KEY_FILE),
        "jumpgate-host",
    )?)
}

/// The algorithms offered to clients: only those without known weaknesses, in this order of
/// preference (the README lists them for auditors).
///
/// - key exchange: mlkem768x25519-sha256, curve25519-sha256 (and its @libssh.org name),
///   diffie-hellman-group16-sha512, diffie-hellman-group18-sha512;
/// - host key: ssh-ed25519 (known shortcoming: no RSA host key, so clients too old for
///   ed25519, such as PuTTY before 0.68, cannot connect);
/// - ciphers: chacha20-poly1305@openssh.com, aes256-gcm@openssh.com, aes128-gcm@openssh.com,
///   aes256-ctr, aes128-ctr;
/// - MACs (only used with the CTR ciphers): hmac-sha2-512-etm, hmac-sha2-256-etm;
/// - no compression.
pub fn preferred_algorithms() -> Preferred {
    Preferred {
        kex: Cow::Borrowed(&[
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::DH_G16_SHA512,
            kex::DH_G18_SHA512,
            // Not algorithms but protocol extensions negotiated through the same list; without
            // them OpenSSH's strict key exchange (the Terrapin fix) would be off.
            kex::EXTENSION_SUPPORT_AS_SERVER,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        key: Cow::Borrowed(&[Algorithm::Ed25519]),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Borrowed(&[
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_GCM,
            cipher::AES_128_GCM,
            cipher::AES_256_CTR,
            cipher::AES_128_CTR,
        ]),
        mac: Cow::Borrowed(&[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM]),
        compression: Cow::Borrowed(&[russh::compression::NONE]),
    }
}

fn server_config(host_key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: SshId::Standard(Cow::Borrowed("SSH-2.0-Jumpgate")),
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive][..]),
        // Wrong answers are slowed down by the lockout rules and the password hash itself;
        // this only keeps a rejection's timing from telling anything.
        auth_rejection_time: Duration::from_millis(250),
        // OpenSSH first asks with method "none" to learn the methods: answer that at once.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        preferred: preferred_algorithms(),
        // Clients try each key they hold before the prompts, and every refused key counts.
        max_auth_attempts: 12,
        // Idle connections are ended by the registry's watchdog, which knows the setting;
        // this only catches a peer that went silent at the protocol level.
        inactivity_timeout: Some(Duration::from_secs(7 * 24 * 3600)),
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    }
}

/// Binds the SSH listener. Called before anything else starts so that a taken port stops
/// start-up with a clear message.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| GatewayError::Listen {
            addr,
            detail: e.to_string(),
        })
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn run(listener: TcpListener, deps: Deps, host_key: PrivateKey) {
    let fingerprint = upstream::fingerprint(host_key.public_key());
    let config = Arc::new(server_config(host_key));
    let registry = Arc::new(Registry::default());
    let shared = Arc::new(Shared {
        auth: deps.auth,
        onward: deps.onward,
        registry: registry.clone(),
        public_url: deps.public_url,
    });
    tokio::spawn(registry::watchdog(shared.clone(), LOGIN_GRACE));
    if let Ok(addr) = listener.local_addr() {
        info!(address = %addr, host_key = %fingerprint, "SSH gateway listening");
    }

    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                warn!(error = %e, "accepting an SSH connection failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = registry.open(peer);
        let span = tracing::info_span!(
            "ssh",
            conn = conn.id,
            client = %peer,
            user = tracing::field::Empty,
            target = tracing::field::Empty
        );
        let handler = connection::Connection::new(shared.clone(), conn.clone(), span.clone());
        let config = config.clone();
        let registry = registry.clone();
        // Each connection in its own task, so that a slow client (even one that never sends
        // its version line) holds up nobody else.
        tokio::spawn(
            async move {
                // The version exchange happens here; a client that never sends its version
                // line is dropped after the sign-in grace period.
                let started = tokio::time::timeout(
                    LOGIN_GRACE,
                    russh::server::run_stream(config, stream, handler),
                )
                .await
                .unwrap_or(Err(russh::Error::ConnectionTimeout));
                match started {
                    Ok(running) => {
                        conn.set_handle(running.handle());
                        match running.await {
                            Ok(()) => {}
                            Err(e) => info!(reason = %e, "connection ended"),
                        }
                    }
                    Err(e) => info!(reason = %e, "connection failed before the handshake"),
                }
                conn.mark_gone();
                registry.close(conn.id);
                info!("disconnected");
            }
            .instrument(span),
        );
    }
}
