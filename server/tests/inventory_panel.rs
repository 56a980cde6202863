//! The Servers and Access pages' backend: administrators only, secrets never returned, edits
//! that keep or replace the stored credential, grants by name, and the Users page's resets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use app::api::backend::{Backend, RequestContext};
use app::api::{ApiError, LoginStep, UserAction};
use app::inventory::ServerForm;
use app::inventory::backend::InventoryBackend;
use jumpgate::access;
use jumpgate::auth::{Auth, session};
use jumpgate::panel::InventoryPanel;
use jumpgate::storage::{NewUser, Storage};
use jumpgate::vault::{self, MasterKey, Vault};

const PASSWORD: &str = "a long enough password";

fn ctx(token: Option<&str>) -> RequestContext {
    RequestContext {
        client_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        session_token: token.map(str::to_owned),
        csrf_token: "csrf".into(),
    }
}

async fn add_user(storage: &Storage, name: &str, role: &str) {
    let hash = jumpgate::auth::password::hash(PASSWORD).await.unwrap();
    storage
        .create_user(&NewUser {
            username: name,
            email: Some(&format!("{name}@example.com")),
            display_name: None,
            role,
            origin: "local",
            password_hash: Some(&hash),
            must_change_password: false,
        })
        .await
        .unwrap();
}

async fn sign_in(auth: &Auth, login: &str) -> RequestContext {
    let (step, cookies) = auth
        .login(&ctx(None), login.into(), PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(step, LoginStep::SignedIn);
    let token = cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{}=", session::SESSION_COOKIE)))
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_string();
    ctx(Some(&token))
}

fn server_form(name: &str, group: &str, password: &str) -> ServerForm {
    ServerForm {
        original_name: String::new(),
        name: name.into(),
        group: group.into(),
        host: "127.0.0.1".into(),
        port: "2022".into(),
        login: "deploy".into(),
        description: "web tier".into(),
        auth_kind: "password".into(),
        password: password.into(),
        ..Default::default()
    }
}

struct Fixture {
    _db: common::TestDb,
    storage: Storage,
    auth: Auth,
    panel: InventoryPanel,
    vault: Arc<Vault>,
    admin: RequestContext,
    alice: RequestContext,
}

async fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for db in common::databases().await {
        let storage = db.storage.clone();
        let vault = Arc::new(Vault::new(&MasterKey::generate()));
        let auth = Auth::new(storage.clone(), false, vault.clone());
        add_user(&storage, "root", "admin").await;
        add_user(&storage, "alice", "user").await;
        let panel = InventoryPanel::new(auth.clone(), vault.clone(), "ssh-ed25519 AAAA".into());
        let admin = sign_in(&auth, "root").await;
        let alice = sign_in(&auth, "alice").await;
        out.push(Fixture {
            _db: db,
            storage,
            auth,
            panel,
            vault,
            admin,
            alice,
        });
    }
    out
}

#[tokio::test]
async fn only_administrators_reach_the_inventory() {
    for f in fixtures().await {
        assert_eq!(f.panel.inventory(&f.alice).await, Err(ApiError::Forbidden));
        assert_eq!(
            f.panel.add_group(&f.alice, "prod".into()).await,
            Err(ApiError::Forbidden)
        );
        assert_eq!(
            f.panel
                .save_server(&f.alice, server_form("web01", "prod", "pw"))
                .await,
            Err(ApiError::Forbidden)
        );
        assert_eq!(
            f.panel.inventory(&ctx(None)).await,
            Err(ApiError::NotSignedIn)
        );
        assert!(f.panel.inventory(&f.admin).await.is_ok());
    }
}

#[tokio::test]
async fn servers_are_added_edited_and_never_show_their_secret() {
    for f in fixtures().await {
        f.panel
            .add_group(&f.admin, "prod/web".into())
            .await
            .unwrap();
        f.panel
            .save_server(
                &f.admin,
                server_form("web01", "prod/web", "target-secret-1"),
            )
            .await
            .unwrap();

        let inv = f.panel.inventory(&f.admin).await.unwrap();
        let paths: Vec<_> = inv.groups.iter().map(|g| g.path.as_str()).collect();
        assert_eq!(paths, ["prod", "prod/web"]);
        assert_eq!(inv.groups[1].depth, 1);
        let web01 = &inv.servers[0];
        assert_eq!(
            (web01.name.as_str(), web01.port, web01.has_secret),
            ("web01", 2022, true)
        );
        let shown = serde_json::to_string(&inv).unwrap();
        assert!(!shown.contains("target-secret-1"), "secret leaked: {shown}");

        // An edit without a secret keeps the stored one; a changed address drops the pin.
        let row = f.storage.server_by_name("web01").await.unwrap().unwrap();
        f.storage
            .set_host_key(row.id, Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJnPp2RqCn+KQtynQ67rLfdzhKl2YyMtpoDH5HV71IAt"))
            .await
            .unwrap();
        let mut edit = server_form("web-01", "prod", "");
        edit.original_name = "web01".into();
        f.panel.save_server(&f.admin, edit.clone()).await.unwrap();
        let row = f.storage.server_by_name("web-01").await.unwrap().unwrap();
        assert!(row.host_key.is_some(), "same host and port keep the pin");
        let sealed = row.secret_sealed.clone().unwrap();
        let opened = f
            .vault
            .open(&vault::secret_context(row.id, "secret"), &sealed)
            .unwrap();
        assert_eq!(opened.as_slice(), b"target-secret-1");

        // Replacing the secret, and moving the server, which unpins its key.
        edit.original_name = "web-01".into();
        edit.password = "target-secret-2".into();
        edit.port = "2200".into();
        f.panel.save_server(&f.admin, edit.clone()).await.unwrap();
        let row = f.storage.server_by_name("web-01").await.unwrap().unwrap();
        assert!(row.host_key.is_none(), "a new address must be pinned again");
        let opened = f
            .vault
            .open(
                &vault::secret_context(row.id, "secret"),
                row.secret_sealed.as_deref().unwrap(),
            )
            .unwrap();
        assert_eq!(opened.as_slice(), b"target-secret-2");

        // Switching to a private key needs the key; the gateway key needs nothing.
        edit.password.clear();
        edit.auth_kind = "private_key".into();
        let err = f
            .panel
            .save_server(&f.admin, edit.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Invalid(ref m) if m.contains("needs the new secret")),
            "{err:?}"
        );
        edit.auth_kind = "gateway_key".into();
        f.panel.save_server(&f.admin, edit.clone()).await.unwrap();
        let row = f.storage.server_by_name("web-01").await.unwrap().unwrap();
        assert_eq!(row.auth_kind, "gateway_key");
        assert!(row.secret_sealed.is_none());

        // Bad input gets a sentence and changes nothing.
        let mut bad = server_form("db 01", "prod", "pw");
        let err = f
            .panel
            .save_server(&f.admin, bad.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Invalid(ref m) if m.contains("not a valid server name")),
            "{err:?}"
        );
        bad.name = "db01".into();
        bad.port = "99999".into();
        assert!(f.panel.save_server(&f.admin, bad.clone()).await.is_err());
        bad.port = "22".into();
        bad.group = "nowhere".into();
        let err = f
            .panel
            .save_server(&f.admin, bad.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Invalid(ref m) if m.contains("no server group named")),
            "{err:?}"
        );
        bad.group = "prod".into();
        bad.password.clear();
        assert!(f.panel.save_server(&f.admin, bad).await.is_err());
        assert!(f.storage.server_by_name("db01").await.unwrap().is_none());

        // A group with servers is not deleted; an empty one is.
        let err = f
            .panel
            .delete_group(&f.admin, "prod".into())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Invalid(ref m) if m.contains("not empty")),
            "{err:?}"
        );
        f.panel
            .delete_group(&f.admin, "prod/web".into())
            .await
            .unwrap();
        f.panel
            .delete_server(&f.admin, "web-01".into())
            .await
            .unwrap();
        f.panel.delete_group(&f.admin, "prod".into()).await.unwrap();
        assert!(f.panel.inventory(&f.admin).await.unwrap().groups.is_empty());
    }
}

#[tokio::test]
async fn grants_and_user_groups_by_name_take_effect_at_once() {
    for f in fixtures().await {
        f.panel
            .add_group(&f.admin, "prod/web".into())
            .await
            .unwrap();
        f.panel.add_group(&f.admin, "stage".into()).await.unwrap();
        f.panel
            .save_server(&f.admin, server_form("web01", "prod/web", "pw"))
            .await
            .unwrap();
        f.panel
            .save_server(&f.admin, server_form("stage01", "stage", "pw"))
            .await
            .unwrap();
        let alice = f.storage.user_by_username("alice").await.unwrap().unwrap();
        let reachable = |f: &Fixture| {
            let storage = f.storage.clone();
            let alice = alice.clone();
            async move {
                access::reachable_servers(&storage, &alice)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
            }
        };
        assert!(reachable(&f).await.is_empty());

        // Through a user group granted the parent group.
        f.panel
            .add_user_group(&f.admin, "web-team".into(), "web people".into())
            .await
            .unwrap();
        f.panel
            .set_membership(&f.admin, "web-team".into(), "alice".into(), true)
            .await
            .unwrap();
        f.panel
            .add_grant(&f.admin, "user-group:web-team".into(), "group:prod".into())
            .await
            .unwrap();
        assert_eq!(reachable(&f).await, ["web01"]);

        // A direct grant of one server.
        f.panel
            .add_grant(&f.admin, "user:alice".into(), "server:stage01".into())
            .await
            .unwrap();
        assert_eq!(reachable(&f).await, ["stage01", "web01"]);

        let inv = f.panel.inventory(&f.admin).await.unwrap();
        assert_eq!(inv.user_groups[0].members, ["alice"]);
        let grants: Vec<_> = inv
            .grants
            .iter()
            .map(|g| format!("{} {}", g.grantee, g.target))
            .collect();
        assert_eq!(
            grants,
            [
                "user-group:web-team group:prod",
                "user:alice server:stage01"
            ]
        );

        // Revoking and leaving the group take effect at the next question.
        f.panel
            .remove_grant(&f.admin, inv.grants[1].id)
            .await
            .unwrap();
        assert_eq!(reachable(&f).await, ["web01"]);
        f.panel
            .set_membership(&f.admin, "web-team".into(), "alice".into(), false)
            .await
            .unwrap();
        assert!(reachable(&f).await.is_empty());

        // Unknown names and malformed references are refused with a sentence.
        for (who, what) in [
            ("user:nobody", "group:prod"),
            ("user:alice", "server:nothing"),
            ("alice", "group:prod"),
            ("user:alice", "prod"),
        ] {
            let err = f
                .panel
                .add_grant(&f.admin, who.into(), what.into())
                .await
                .unwrap_err();
            assert!(matches!(err, ApiError::Invalid(_)), "{who} {what}: {err:?}");
        }
        f.panel
            .delete_user_group(&f.admin, "web-team".into())
            .await
            .unwrap();
        assert!(f.panel.inventory(&f.admin).await.unwrap().grants.is_empty());
    }
}

#[tokio::test]
async fn administrators_edit_users_and_reset_their_second_factors() {
    for f in fixtures().await {
        let alice = f.storage.user_by_username("alice").await.unwrap().unwrap();
        f.storage
            .set_security_code_hash(alice.id, "not-a-real-hash")
            .await
            .unwrap();
        f.storage
            .enable_totp(alice.id, "JBSWY3DPEHPK3PXP", 0)
            .await
            .unwrap();

        let a = &f.auth;
        a.admin_user_action(&f.admin, "alice".into(), UserAction::ResetSecurityCode)
            .await
            .unwrap();
        a.admin_user_action(&f.admin, "alice".into(), UserAction::ResetTotp)
            .await
            .unwrap();
        let row = f.storage.user_by_username("alice").await.unwrap().unwrap();
        assert!(row.security_code_hash.is_none());
        assert!(row.totp_secret.is_none());

        a.admin_update_user(
            &f.admin,
            "alice".into(),
            Some("Alice@Example.org".into()),
            Some("Alice Liddell".into()),
            "admin".into(),
        )
        .await
        .unwrap();
        let row = f
            .storage
            .user_by_login("alice@example.ORG")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.display_name.as_deref(), Some("Alice Liddell"));
        assert_eq!(row.role, "admin");

        // Email clashes, self-demotion and self-deletion are refused.
        let err = a
            .admin_update_user(
                &f.admin,
                "alice".into(),
                Some("ROOT@example.com".into()),
                None,
                "user".into(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Invalid(ref m) if m.contains("email")),
            "{err:?}"
        );
        assert!(
            a.admin_update_user(&f.admin, "root".into(), None, None, "user".into())
                .await
                .is_err()
        );
        assert!(
            a.admin_user_action(&f.admin, "root".into(), UserAction::Delete)
                .await
                .is_err()
        );

        // Alice (now an administrator) was signed in; deleting her ends that session too.
        a.admin_user_action(&f.admin, "alice".into(), UserAction::Delete)
            .await
            .unwrap();
        assert!(f.storage.user_by_username("alice").await.unwrap().is_none());
        assert_eq!(
            f.panel.inventory(&f.alice).await,
            Err(ApiError::NotSignedIn)
        );
    }
}
