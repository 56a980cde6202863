//! Host-key pinning against a real OpenSSH sshd on 127.0.0.1: trust on first use, a changed key
//! refused with both fingerprints, and an administrator's acceptance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use jumpgate::inventory::{self, Credential, InventoryError, ScanOutcome, ServerSpec};
use jumpgate::upstream::{self, UpstreamError};
use jumpgate::vault::{self, KeySource};
use zeroize::Zeroizing;

fn fingerprint_of(line: &str) -> String {
    upstream::fingerprint(&upstream::parse_pinned(line).unwrap())
}

#[tokio::test]
async fn host_key_is_pinned_on_first_scan_and_a_change_is_refused() {
    let mut sshd = common::sshd::Sshd::start();
    for db in common::databases().await {
        let s = &db.storage;
        let dir = tempfile::tempdir().unwrap();
        let vault = vault::open_at_start(s, &KeySource::File(dir.path().join("vault.key")))
            .await
            .unwrap();
        inventory::ensure_group(s, "lab").await.unwrap();
        inventory::add_server(
            s,
            &vault,
            ServerSpec {
                name: "target1",
                group_path: "lab",
                host: "127.0.0.1",
                port: sshd.port,
                login: "root",
                description: None,
                credential: Credential::Password(Zeroizing::new("unused".into())),
            },
        )
        .await
        .unwrap();

        let original = fingerprint_of(&sshd.host_public_key());
        let first = inventory::scan_host_key(s, "target1", false).await.unwrap();
        assert_eq!(
            first,
            ScanOutcome::Pinned {
                fingerprint: original.clone()
            },
            "{}",
            db.label
        );
        let again = inventory::scan_host_key(s, "target1", false).await.unwrap();
        assert_eq!(
            again,
            ScanOutcome::Unchanged {
                fingerprint: original.clone()
            }
        );

        sshd.change_host_key();
        let changed = fingerprint_of(&sshd.host_public_key());
        let err = inventory::scan_host_key(s, "target1", false)
            .await
            .unwrap_err();
        match &err {
            InventoryError::Upstream(UpstreamError::HostKeyChanged {
                server,
                pinned,
                presented,
            }) => {
                assert_eq!(server, "target1");
                assert_eq!(pinned, &original);
                assert_eq!(presented, &changed);
            }
            other => panic!("expected a host-key change, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&original) && message.contains(&changed),
            "{message}"
        );
        // Still pinned to the old key until someone accepts.
        let row = s.server_by_name("target1").await.unwrap().unwrap();
        assert_eq!(fingerprint_of(row.host_key.as_deref().unwrap()), original);

        let accepted = inventory::scan_host_key(s, "target1", true).await.unwrap();
        assert_eq!(
            accepted,
            ScanOutcome::Replaced {
                old: original,
                new: changed.clone()
            }
        );
        let row = s.server_by_name("target1").await.unwrap().unwrap();
        assert_eq!(fingerprint_of(row.host_key.as_deref().unwrap()), changed);

        // Put the first key back for the next backend's round.
        sshd.change_host_key();
    }
}

#[tokio::test]
async fn scanning_a_closed_port_says_the_target_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = upstream::scan_host_key("127.0.0.1", port)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
}

#[tokio::test]
async fn private_keys_are_checked_when_stored() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "pass phrase", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(upstream::check_private_key(&text, Some("pass phrase")).is_ok());
    let err = upstream::check_private_key(&text, None).unwrap_err();
    assert!(err.contains("passphrase"), "{err}");
    assert!(upstream::check_private_key("ssh-ed25519 AAAA not a private key", None).is_err());
}
