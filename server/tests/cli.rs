//! The administration commands, run as a script would run them: the real binary, a fresh data
//! directory, secrets on standard input, JSON output and one-line errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `jumpgate ARGS` with `stdin`; returns (exit ok, stdout, stderr).
    fn run(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jumpgate"))
            .args(args)
            .env_clear()
            .env("JUMPGATE_STORAGE_DATA_DIR", self.dir.path())
            .env(
                "JUMPGATE_STORAGE_DATABASE_URL",
                format!("sqlite://{}/jumpgate.db", self.dir.path().display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let (ok, out, err) = self.run(args, stdin);
        assert!(ok, "jumpgate {args:?} failed: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all, "")).unwrap()
    }
}

#[test]
fn provisioning_a_user_a_server_and_a_grant() {
    let env = Env::new();
    env.ok(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        "alice's passphrase\n",
    );
    env.ok(&["group", "add", "prod/web"], "");
    env.ok(
        &[
            "server",
            "add",
            "web01",
            "--group",
            "prod/web",
            "--host",
            "127.0.0.1",
            "--port",
            "2201",
            "--login",
            "deploy",
            "--password-stdin",
        ],
        "target-secret\n",
    );
    env.ok(&["grant", "add", "--user", "alice", "--group", "prod"], "");

    let users = env.json(&["user", "list"]);
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap();
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["role"], "user");

    let servers = env.json(&["server", "list"]);
    assert_eq!(servers[0]["name"], "web01");
    assert_eq!(servers[0]["group"], "prod/web");
    assert_eq!(servers[0]["port"], 2201);
    // Secrets are write-only: no listing shows them.
    assert!(!servers.to_string().contains("target-secret"));

    let grants = env.json(&["grant", "list"]);
    assert_eq!(grants[0]["grantee"]["user"], "alice");
    assert_eq!(grants[0]["target"]["group"], "prod");

    // The vault key was created privately beside the database.
    let key = env.dir.path().join("vault.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let db = std::fs::read(env.dir.path().join("jumpgate.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("target-secret"));

    env.ok(&["vault", "rotate"], "");
    let servers = env.json(&["server", "list"]);
    assert_eq!(servers.as_array().unwrap().len(), 1);
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    let env = Env::new();
    let (ok, _, err) = env.run(&["user", "disable", "nobody"], "");
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no user named `nobody`"), "{err}");

    let (ok, _, err) = env.run(
        &[
            "server",
            "add",
            "x",
            "--group",
            "nowhere",
            "--host",
            "h",
            "--login",
            "u",
            "--password-stdin",
        ],
        "pw\n",
    );
    assert!(!ok);
    assert!(err.contains("no server group named `nowhere`"), "{err}");

    // No secret on standard input: refused, nothing created.
    env.ok(&["group", "add", "prod"], "");
    let (ok, _, err) = env.run(
        &[
            "server",
            "add",
            "x",
            "--group",
            "prod",
            "--host",
            "h",
            "--login",
            "u",
            "--password-stdin",
        ],
        "",
    );
    assert!(
        !ok && err.contains("no target password on standard input"),
        "{err}"
    );
    assert_eq!(env.json(&["server", "list"]).as_array().unwrap().len(), 0);

    // Exactly one credential kind.
    let (ok, _, err) = env.run(
        &[
            "server", "add", "x", "--group", "prod", "--host", "h", "--login", "u",
        ],
        "",
    );
    assert!(!ok && err.contains("--password-stdin"), "{err}");
}

#[test]
fn users_can_be_disabled_enabled_and_given_totp() {
    let env = Env::new();
    let out = env.json(&["user", "add", "bob"]);
    let otp = out["one_time_password"].as_str().unwrap();
    assert_eq!(otp.len(), 20);
    env.ok(&["user", "disable", "bob"], "");
    assert_eq!(env.json(&["user", "list"])[0]["status"], "disabled");
    env.ok(&["user", "enable", "bob"], "");
    let uri = env.ok(&["user", "totp-enroll", "bob"], "");
    assert!(uri.starts_with("otpauth://totp/Jumpgate:bob?"), "{uri}");
    assert_eq!(env.json(&["user", "list"])[0]["totp_enabled"], true);
    // The secret is sealed by the vault at rest: no database file holds it.
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    for file in ["jumpgate.db", "jumpgate.db-wal"] {
        let bytes = std::fs::read(env.dir.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret.trim()),
            "{file} holds the TOTP secret"
        );
    }
    env.ok(&["user", "set-security-code", "bob"], "918273\n");
    assert_eq!(env.json(&["user", "list"])[0]["has_security_code"], true);
    env.ok(&["user", "delete", "bob"], "");
    assert_eq!(env.json(&["user", "list"]).as_array().unwrap().len(), 0);
}

#[test]
fn gateway_key_servers_show_the_key_to_install() {
    let env = Env::new();
    env.ok(&["group", "add", "lab"], "");
    let added = env.json(&[
        "server",
        "add",
        "box1",
        "--group",
        "lab",
        "--host",
        "10.1.2.3",
        "--login",
        "ops",
        "--gateway-key",
    ]);
    let line = added["gateway_public_key"].as_str().unwrap().to_owned();
    assert!(line.starts_with("ssh-ed25519 "), "{line}");
    let shown = env.json(&["server", "gateway-key"]);
    assert_eq!(shown["public_key"], line.as_str());
    assert!(
        shown["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert_eq!(env.json(&["server", "list"])[0]["auth"], "gateway_key");
}
