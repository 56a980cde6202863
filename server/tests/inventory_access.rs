//! Server groups, servers, grants and the access rule, with credentials sealed by the vault, on
//! every storage backend under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use jumpgate::access;
use jumpgate::inventory::{self, Credential, InventoryError, ServerSpec};
use jumpgate::storage::{GrantTarget, Grantee, NewUser, Storage};
use jumpgate::vault::{self, KeySource, StartError, Vault, VaultError};
use zeroize::Zeroizing;

async fn add_user(storage: &Storage, name: &str, role: &str) -> i64 {
    storage
        .create_user(&NewUser {
            username: name,
            email: None,
            display_name: None,
            role,
            origin: "local",
            password_hash: None,
            must_change_password: false,
        })
        .await
        .unwrap()
}

fn password(p: &str) -> Credential {
    Credential::Password(Zeroizing::new(p.to_string()))
}

async fn add_server(storage: &Storage, vault: &Vault, name: &str, group: &str) -> i64 {
    inventory::ensure_group(storage, group).await.unwrap();
    inventory::add_server(
        storage,
        vault,
        ServerSpec {
            name,
            group_path: group,
            host: "127.0.0.1",
            port: 22,
            login: "deploy",
            description: None,
            credential: password(&format!("pw-of-{name}")),
        },
    )
    .await
    .unwrap()
    .id
}

async fn names(storage: &Storage, user: &str) -> Vec<String> {
    let u = storage.user_by_username(user).await.unwrap().unwrap();
    access::reachable_servers(storage, &u)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect()
}

#[tokio::test]
async fn users_see_exactly_what_they_are_granted() {
    for db in common::databases().await {
        let s = &db.storage;
        let dir = tempfile::tempdir().unwrap();
        let vault = vault::open_at_start(s, &KeySource::File(dir.path().join("vault.key")))
            .await
            .unwrap();
        add_server(s, &vault, "web01", "prod/web").await;
        add_server(s, &vault, "web02", "prod/web/eu").await;
        add_server(s, &vault, "db01", "prod/db").await;
        let lone = add_server(s, &vault, "stage01", "staging").await;
        add_user(s, "root", "admin").await;
        let alice = add_user(s, "alice", "user").await;
        let bob = add_user(s, "bob", "user").await;
        add_user(s, "carol", "user").await;

        assert_eq!(
            names(s, "root").await,
            ["db01", "stage01", "web01", "web02"],
            "{}",
            db.label
        );
        assert!(
            names(s, "alice").await.is_empty(),
            "nothing before a grant ({})",
            db.label
        );

        // A group grant covers the groups below it.
        let web = s.server_group_by_path("prod/web").await.unwrap().unwrap();
        let g = s
            .add_grant(Grantee::User(alice), GrantTarget::ServerGroup(web.id))
            .await
            .unwrap();
        assert_eq!(names(s, "alice").await, ["web01", "web02"], "{}", db.label);
        // Granting the same thing twice keeps one grant.
        let again = s
            .add_grant(Grantee::User(alice), GrantTarget::ServerGroup(web.id))
            .await
            .unwrap();
        assert_eq!(g, again);

        // Through a user group, and a single server.
        let ops = s.create_user_group("ops", None).await.unwrap();
        s.add_group_member(ops, bob).await.unwrap();
        s.add_grant(Grantee::UserGroup(ops), GrantTarget::Server(lone))
            .await
            .unwrap();
        assert_eq!(names(s, "bob").await, ["stage01"], "{}", db.label);
        assert!(names(s, "carol").await.is_empty(), "{}", db.label);

        // Not granted is indistinguishable from not there.
        let alice_row = s.user_by_username("alice").await.unwrap().unwrap();
        assert!(
            access::reachable_server(s, &alice_row, "db01")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            access::reachable_server(s, &alice_row, "nope")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            access::reachable_server(s, &alice_row, "web02")
                .await
                .unwrap()
                .is_some()
        );

        // Revoking takes effect at the next question; leaving the group too.
        s.remove_grant(g).await.unwrap();
        assert!(names(s, "alice").await.is_empty(), "{}", db.label);
        s.remove_group_member(ops, bob).await.unwrap();
        assert!(names(s, "bob").await.is_empty(), "{}", db.label);

        // A disabled user reaches nothing, even as an administrator.
        let root = s.user_by_username("root").await.unwrap().unwrap();
        s.set_user_status(root.id, "disabled").await.unwrap();
        assert!(names(s, "root").await.is_empty(), "{}", db.label);
    }
}

#[tokio::test]
async fn credentials_are_sealed_and_bound_to_their_server() {
    for db in common::databases().await {
        let s = &db.storage;
        let dir = tempfile::tempdir().unwrap();
        let vault = vault::open_at_start(s, &KeySource::File(dir.path().join("vault.key")))
            .await
            .unwrap();
        let id = add_server(s, &vault, "web01", "prod").await;
        let row = s.server_by_name("web01").await.unwrap().unwrap();
        let sealed = row.secret_sealed.unwrap();
        assert!(!sealed.contains("pw-of-web01"), "{}", db.label);
        let plain = vault
            .open(&vault::secret_context(id, "secret"), &sealed)
            .unwrap();
        assert_eq!(plain.as_slice(), b"pw-of-web01");
        assert!(
            vault
                .open(&vault::secret_context(id + 1, "secret"), &sealed)
                .is_err()
        );

        // Duplicate names and bad input are refused with a reason, and nothing is half-written.
        let dup = inventory::add_server(
            s,
            &vault,
            ServerSpec {
                name: "web01",
                group_path: "prod",
                host: "10.0.0.1",
                port: 22,
                login: "x",
                description: None,
                credential: password("p"),
            },
        )
        .await;
        assert!(
            matches!(dup, Err(InventoryError::Storage(_))),
            "{}",
            db.label
        );
        let bad_group = inventory::add_server(
            s,
            &vault,
            ServerSpec {
                name: "web09",
                group_path: "nowhere",
                host: "10.0.0.1",
                port: 22,
                login: "x",
                description: None,
                credential: password("p"),
            },
        )
        .await;
        assert!(matches!(bad_group, Err(InventoryError::NotFound { .. })));
        let bad_key = inventory::add_server(
            s,
            &vault,
            ServerSpec {
                name: "web10",
                group_path: "prod",
                host: "10.0.0.1",
                port: 22,
                login: "x",
                description: None,
                credential: Credential::PrivateKey {
                    key: Zeroizing::new("ssh-ed25519 AAAA public key".into()),
                    passphrase: None,
                },
            },
        )
        .await;
        assert!(matches!(bad_key, Err(InventoryError::Invalid(_))));
        assert_eq!(s.servers().await.unwrap().len(), 1, "{}", db.label);
    }
}

#[tokio::test]
async fn wrong_or_missing_master_key_stops_start_up() {
    for db in common::databases().await {
        let s = &db.storage;
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("vault.key");
        let source = KeySource::File(key_path.clone());
        let vault = vault::open_at_start(s, &source).await.unwrap();
        add_server(s, &vault, "web01", "prod").await;
        // Opening again with the same file works.
        vault::open_at_start(s, &source).await.unwrap();

        // Another key: refused, and the database is untouched.
        let other = vault::MasterKey::generate();
        let err = vault::open_at_start(s, &KeySource::Inline(other.encode().to_string()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StartError::Vault(VaultError::WrongKey { .. })),
            "{}",
            db.label
        );

        // The key file gone: refused rather than a new key silently made.
        let saved = std::fs::read_to_string(&key_path).unwrap();
        std::fs::remove_file(&key_path).unwrap();
        let err = vault::open_at_start(s, &source).await.unwrap_err();
        assert!(
            matches!(err, StartError::Vault(VaultError::MissingKey { .. })),
            "{}",
            db.label
        );
        assert!(!key_path.exists());
        std::fs::write(&key_path, saved).unwrap();
        vault::open_at_start(s, &source).await.unwrap();
    }
}

#[tokio::test]
async fn rotation_re_seals_every_secret_under_a_new_key() {
    for db in common::databases().await {
        let s = &db.storage;
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("vault.key");
        let source = KeySource::File(key_path.clone());
        let old = vault::open_at_start(s, &source).await.unwrap();
        let a = add_server(s, &old, "web01", "prod").await;
        let b = add_server(s, &old, "web02", "prod").await;
        let old_file = std::fs::read_to_string(&key_path).unwrap();

        vault::rotate(s, &source, &old).await.unwrap();
        assert_ne!(std::fs::read_to_string(&key_path).unwrap(), old_file);
        assert!(!dir.path().join("vault.key.new").exists());

        let new = vault::open_at_start(s, &source).await.unwrap();
        for (id, name) in [(a, "web01"), (b, "web02")] {
            let row = s.server_by_name(name).await.unwrap().unwrap();
            let sealed = row.secret_sealed.unwrap();
            let plain = new
                .open(&vault::secret_context(id, "secret"), &sealed)
                .unwrap();
            assert_eq!(
                plain.as_slice(),
                format!("pw-of-{name}").as_bytes(),
                "{}",
                db.label
            );
            assert!(
                old.open(&vault::secret_context(id, "secret"), &sealed)
                    .is_err()
            );
        }
        let err = vault::open_at_start(s, &KeySource::Inline(old_file.trim().to_string()))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StartError::Vault(VaultError::WrongKey { .. })
        ));
    }
}
