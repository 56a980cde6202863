//! A running SSH gateway for tests, on a free port of 127.0.0.1, over its own SQLite database,
//! plus the real OpenSSH client to drive it: non-interactively through an askpass program that
//! answers the sign-in prompts, and interactively inside tmux.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jumpgate::auth::{Auth, password, totp};
use jumpgate::inventory::{self, Credential, ServerSpec};
use jumpgate::storage::{GrantTarget, Grantee, NewUser, Storage};
use jumpgate::vault::{self, KeySource, Vault};
use jumpgate::{gateway, upstream};
use tokio::process::Command;
use zeroize::Zeroizing;

/// The panel address the gateway names in its approval links. Tests take the code from the
/// link and open it on their own panel server, whose port is not known yet when the gateway
/// starts.
pub const PANEL_URL: &str = "https://jumpgate.test/";

pub struct Gateway {
    pub port: u16,
    pub storage: Storage,
    pub vault: Arc<Vault>,
    /// The gateway key's public half, for targets' authorized_keys.
    pub gateway_public: String,
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A person's answers to the sign-in prompts.
#[derive(Clone)]
pub struct Person {
    pub login: String,
    pub password: String,
    pub code: String,
    pub totp_secret: Option<String>,
}

impl Gateway {
    pub async fn start() -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/gw.db", dir.path().display());
        let storage = Storage::open(&url).await.unwrap();
        let vault = vault::open_at_start(&storage, &KeySource::File(dir.path().join("vault.key")))
            .await
            .unwrap();
        let gateway_key = upstream::gateway_key(dir.path()).unwrap();
        let host_key = gateway::host_key(dir.path()).unwrap();
        let listener = gateway::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let vault = Arc::new(vault);
        let gateway_public = upstream::gateway_public_line(&gateway_key);
        let task = tokio::spawn(gateway::run(
            listener,
            gateway::Deps {
                auth: Auth::new(storage.clone(), false, vault.clone()),
                onward: jumpgate::onward::Onward {
                    storage: storage.clone(),
                    vault: vault.clone(),
                    gateway_key: Arc::new(gateway_key),
                },
                public_url: PANEL_URL.parse().unwrap(),
            },
            host_key,
        ));
        Gateway {
            port,
            storage,
            vault,
            gateway_public,
            dir,
            task,
        }
    }

    /// Creates a user with a password, a security code and, when `with_totp`, a TOTP secret.
    pub async fn add_user(&self, login: &str, with_totp: bool) -> Person {
        let password = format!("pw-{login}-Correct-Horse-42");
        let code = format!("code-{login}-7731");
        let hash = password::hash(&password).await.unwrap();
        let id = self
            .storage
            .create_user(&NewUser {
                username: login,
                email: Some(&format!("{login}@example.test")),
                display_name: None,
                role: "user",
                origin: "local",
                password_hash: Some(&hash),
                must_change_password: false,
            })
            .await
            .unwrap();
        let code_hash = password::hash(&code).await.unwrap();
        self.storage
            .set_security_code_hash(id, &code_hash)
            .await
            .unwrap();
        let totp_secret = if with_totp {
            let secret = totp::new_secret();
            let sealed = self
                .vault
                .seal(&vault::totp_context(id), secret.as_bytes())
                .unwrap();
            self.storage.enable_totp(id, &sealed, 0).await.unwrap();
            Some(secret)
        } else {
            None
        };
        Person {
            login: login.to_string(),
            password,
            code,
            totp_secret,
        }
    }

    /// Adds `name` in `group` at 127.0.0.1:`port`, signing in as root with `credential`.
    pub async fn add_server(&self, name: &str, group: &str, port: u16, credential: Credential) {
        inventory::ensure_group(&self.storage, group).await.unwrap();
        inventory::add_server(
            &self.storage,
            &self.vault,
            ServerSpec {
                name,
                group_path: group,
                host: "127.0.0.1",
                port,
                login: "root",
                description: Some("test target"),
                credential,
            },
        )
        .await
        .unwrap();
    }

    pub async fn grant_group(&self, login: &str, group: &str) {
        let user = self.storage.user_by_username(login).await.unwrap().unwrap();
        let group = self
            .storage
            .server_group_by_path(group)
            .await
            .unwrap()
            .unwrap();
        self.storage
            .add_grant(Grantee::User(user.id), GrantTarget::ServerGroup(group.id))
            .await
            .unwrap();
    }

    pub async fn set(&self, key: &str, value: &str) {
        jumpgate::settings::set(&self.storage, key, value)
            .await
            .unwrap();
    }

    /// The OpenSSH client, answering `person`'s prompts by itself.
    pub fn client(&self, person: &Person) -> Client {
        Client::new(self.port, person)
    }
}

/// The current verification code of `person`.
pub fn totp_now(person: &Person) -> String {
    let secret = person.totp_secret.as_deref().expect("a TOTP secret");
    totp::code_at(secret, totp::unix_time()).unwrap()
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

/// OpenSSH's `ssh`, `scp` and `sftp` pointed at the gateway, with an askpass program answering
/// the prompts from files (so a test can change the answers). The browser-approval prompt waits
/// (up to 100 s) for the file `approval` to appear, as a person waits to press Enter, and takes
/// it away: each answer is given once.
pub struct Client {
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Client {
    fn new(port: u16, person: &Person) -> Client {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("password"), &person.password).unwrap();
        std::fs::write(d.join("code"), &person.code).unwrap();
        script(
            &d.join("askpass"),
            &format!(
                "#!/bin/sh\n\
                 echo \"$1\" >> {d}/prompts\n\
                 case \"$1\" in\n\
                 *approved*) n=0; while [ ! -e {d}/approval ] && [ $n -lt 500 ]; do sleep 0.2; n=$((n+1)); done; cat {d}/approval; rm -f {d}/approval ;;\n\
                 *Password*) cat {d}/password ;;\n\
                 *Security*) cat {d}/code ;;\n\
                 *Verification*) cat {d}/totp ;;\n\
                 *) exit 1 ;;\n\
                 esac\n",
                d = d.display()
            ),
        );
        std::fs::write(
            d.join("config"),
            format!(
                "Host *\n\
                 \x20 StrictHostKeyChecking accept-new\n\
                 \x20 UserKnownHostsFile {d}/known_hosts\n\
                 \x20 GlobalKnownHostsFile /dev/null\n\
                 \x20 PreferredAuthentications keyboard-interactive\n\
                 \x20 PubkeyAuthentication no\n\
                 \x20 IdentitiesOnly yes\n\
                 \x20 LogLevel INFO\n\
                 \x20 ConnectTimeout 15\n\
                 \x20 ServerAliveInterval 0\n",
                d = d.display()
            ),
        )
        .unwrap();
        Client { port, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn set_answer(&self, which: &str, value: &str) {
        std::fs::write(self.path(which), value).unwrap();
    }

    /// The prompts the askpass program was asked, in order, without the `(user@host) ` that
    /// OpenSSH puts before each.
    pub fn prompts(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("prompts"))
            .unwrap_or_default()
            .lines()
            .map(|l| match l.split_once(") ") {
                Some((_, rest)) if l.starts_with('(') => rest.to_string(),
                _ => l.to_string(),
            })
            .collect()
    }

    /// `program` (ssh, scp, sftp) with this client's askpass and configuration file.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SSH_ASKPASS", self.path("askpass"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env_remove("SSH_AUTH_SOCK")
            .arg("-F")
            .arg(self.path("config"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// `ssh -p PORT USER@127.0.0.1 ARGS...`
    pub async fn ssh(&self, user: &str, args: &[&str]) -> Output {
        let mut c = self.command("ssh");
        c.arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .args(args);
        run(c).await
    }

    /// `scp -P PORT [-o User=USER] ARGS...`; an empty `user` leaves it to the remote paths.
    pub async fn scp(&self, user: &str, args: &[&str]) -> Output {
        let mut c = self.command("scp");
        c.arg("-P").arg(self.port.to_string());
        if !user.is_empty() {
            c.arg("-o").arg(format!("User={user}"));
        }
        c.args(args);
        run(c).await
    }

    /// `sftp -P PORT -o User=USER 127.0.0.1` with `batch` on standard input (`-b` would set
    /// BatchMode, which turns the sign-in prompts off).
    pub async fn sftp(&self, user: &str, batch: &str) -> Output {
        let file = self.path("sftp-batch");
        std::fs::write(&file, batch).unwrap();
        let mut c = self.command("sftp");
        c.arg("-P")
            .arg(self.port.to_string())
            .arg("-o")
            .arg(format!("User={user}"))
            .arg("127.0.0.1")
            .stdin(std::fs::File::open(&file).unwrap());
        run(c).await
    }

    /// An `ssh` command for a terminal (tmux), with this client's configuration.
    pub fn interactive_command(&self, user: &str, extra: &str) -> String {
        format!(
            "ssh -F {} -p {} {extra} {user}@127.0.0.1",
            self.path("config").display(),
            self.port
        )
    }
}

async fn run(mut c: Command) -> Output {
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the OpenSSH client runs (openssh-client is installed by scripts/setup.sh)");
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the OpenSSH client finished within two minutes")
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A terminal for the OpenSSH client: a tmux session on a private socket.
pub struct Terminal {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Terminal {
    /// Starts `command` in a `cols` x `rows` terminal.
    pub fn start(command: &str, cols: u16, rows: u16) -> Terminal {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let status = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t", "-x"])
            .arg(cols.to_string())
            .arg("-y")
            .arg(rows.to_string())
            .arg(format!("env TERM=xterm-256color {command}"))
            .env_remove("TMUX")
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux runs (installed by scripts/setup.sh)");
        assert!(status.success(), "tmux did not start");
        let t = Terminal { socket, _dir: dir };
        t.tmux(&["set-option", "-t", "t", "remain-on-exit", "on"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        text(&out.stdout)
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `Down`, `C-d`, ...).
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen shows `needle`; fails with the screen when it does not.
    pub async fn wait_for(&self, needle: &str) -> String {
        self.wait_for_count(needle, 1).await
    }

    /// Waits until the screen shows `needle` at least `count` times.
    pub async fn wait_for_count(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.matches(needle).count() >= count {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {needle:?}; it shows:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// Credential for a target: the gateway's own key.
pub fn gateway_key_credential() -> Credential {
    Credential::GatewayKey
}

/// A fresh private key in OpenSSH format and its public line.
pub fn new_key_pair(dir: &Path, name: &str) -> (Zeroizing<String>, String) {
    let path = dir.join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let private = Zeroizing::new(std::fs::read_to_string(&path).unwrap());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (private, public.trim().to_string())
}
