//! Native SSH sign-in approved in a browser, for people who sign in through SAML and have no
//! password or security code of their own.
//!
//! With `saml.ssh_browser_approval` on, the gateway's keyboard-interactive round shows a link
//! and a short code instead of asking for the password. The person opens the link in a browser
//! signed in to the panel through SAML (or is sent through the identity provider first), checks
//! the client address and time, and approves; pressing Enter in the SSH client then completes
//! the sign-in. A request:
//! - belongs to the login typed in the SSH client: only that account's SAML web session can
//!   approve or deny it;
//! - expires after [`LIFETIME_SECONDS`] and is taken by exactly one SSH connection;
//! - ties the SSH connection to the approving web session: signing out of the panel (or that
//!   session ending any other way) ends the connection, as does disabling the account.
//!
//! Requests live in the database, so the SSH connection and the browser may reach different
//! nodes. Only the code's SHA-256 is stored.

pub mod web;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::storage::{ApprovalState, Storage, StorageError, now};

/// How long a code may wait for its approval. Shorter than the gateway's sign-in grace, so an
/// approval never outlives the connection that asked for it.
pub const LIFETIME_SECONDS: i64 = 110;

/// Letters and digits that are hard to confuse and cannot spell words.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ23456789";
const CODE_LEN: usize = 8;

/// How often a waiting connection looks at its request.
const POLL: Duration = Duration::from_millis(500);

/// A request just opened for an SSH connection.
pub struct Opened {
    /// The code as shown, `BCDF-2345`.
    pub code: String,
    pub code_hash: String,
    /// The page that approves this code.
    pub url: String,
    /// The page where a code can be typed.
    pub entry_url: String,
}

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The code in canonical form (upper case, no separators), or `None` when `input` cannot be one.
pub fn normalize(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// `BCDF2345` as people read it: `BCDF-2345`.
pub fn display(code: &str) -> String {
    let (a, b) = code.split_at(code.len() / 2);
    format!("{a}-{b}")
}

pub fn hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// True when the administrator turned browser approval on. A database error counts as "off",
/// which leaves the password prompts.
pub async fn enabled(storage: &Storage) -> bool {
    crate::settings::get_bool(storage, crate::settings::SAML_SSH_BROWSER_APPROVAL)
        .await
        .unwrap_or(false)
}

/// Opens a request for `login` (and `target`, when the user name named one) from `ip`.
/// `public_url` is the panel's address, which the links are built on.
pub async fn open(
    storage: &Storage,
    public_url: &url::Url,
    login: &str,
    target: Option<&str>,
    ip: IpAddr,
) -> Result<Opened, StorageError> {
    let code = new_code();
    let code_hash = hash(&code);
    storage
        .insert_ssh_approval(
            &code_hash,
            login,
            target,
            &ip.to_string(),
            now() + LIFETIME_SECONDS,
        )
        .await?;
    let base = public_url.as_str().trim_end_matches('/');
    let shown = display(&code);
    Ok(Opened {
        url: format!("{base}{}/{shown}", app::paths::SSH_APPROVE),
        entry_url: format!("{base}{}", app::paths::SSH_APPROVE),
        code: shown,
        code_hash,
    })
}

/// Waits up to `up_to` for the request to be decided. An approval is taken (marked used) by
/// this call; `Pending` means it is still open after waiting.
pub async fn wait(
    storage: &Storage,
    code_hash: &str,
    up_to: Duration,
) -> Result<ApprovalState, StorageError> {
    let started = Instant::now();
    loop {
        let state = storage.take_ssh_approval(code_hash).await?;
        if state != ApprovalState::Pending || started.elapsed() >= up_to {
            return Ok(state);
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_however_they_are_typed() {
        for _ in 0..50 {
            let code = new_code();
            assert_eq!(normalize(&code).as_deref(), Some(code.as_str()));
            let shown = display(&code);
            assert_eq!(shown.len(), CODE_LEN + 1);
            assert_eq!(normalize(&shown).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalize(&format!(" {} ", shown.to_lowercase())).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(normalize("BCDF-234"), None, "too short");
        assert_eq!(normalize("BCDF-23456"), None, "too long");
        assert_eq!(normalize("BCDF-2341"), None, "1 is not in the alphabet");
        assert_eq!(normalize("BCDF-234É"), None);
        assert_eq!(normalize("../../etc"), None);
    }

    #[test]
    fn the_hash_is_of_the_canonical_code() {
        assert_eq!(
            normalize("bcdf-2345").as_deref().map(hash),
            Some(hash("BCDF2345"))
        );
        assert_ne!(hash("BCDF2345"), hash("BCDF2346"));
    }
}
