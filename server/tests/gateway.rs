//! The native SSH gateway driven by the real OpenSSH client, relaying to real OpenSSH sshd
//! targets on 127.0.0.1: sign-in prompts, the menu in a terminal, direct exec/scp/sftp with
//! checksums, ProxyJump, host-key pinning and refusal, unreachable targets, limits, and many
//! concurrent sessions from a russh client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::gateway::{Gateway, Person, Terminal, new_key_pair, text, totp_now};
use common::sshd::Sshd;
use jumpgate::inventory::Credential;

/// A gateway with two targets: `web01` (gateway key) and `db01` (a stored private key), both
/// in group `prod`, granted to `alice` (with TOTP) and `bob` (without).
struct Lab {
    gw: Gateway,
    web: Sshd,
    db: Sshd,
    alice: Person,
    bob: Person,
    /// A key the tests themselves may sign in to the targets with (for ProxyJump).
    own_key: std::path::PathBuf,
    _keys: tempfile::TempDir,
}

async fn lab() -> Lab {
    let gw = Gateway::start().await;
    let web = Sshd::start();
    let db = Sshd::start();
    let keys = tempfile::tempdir().unwrap();
    web.authorize(&gw.gateway_public);
    let (db_private, db_public) = new_key_pair(keys.path(), "db_key");
    db.authorize(&db_public);
    let (_own_private, own_public) = new_key_pair(keys.path(), "own_key");
    web.authorize(&own_public);
    db.authorize(&own_public);

    gw.add_server("web01", "prod/web", web.port, Credential::GatewayKey)
        .await;
    gw.add_server(
        "db01",
        "prod/db",
        db.port,
        Credential::PrivateKey {
            key: db_private,
            passphrase: None,
        },
    )
    .await;
    let alice = gw.add_user("alice", true).await;
    let bob = gw.add_user("bob", false).await;
    gw.grant_group("alice", "prod").await;
    gw.grant_group("bob", "prod").await;
    Lab {
        own_key: keys.path().join("own_key"),
        gw,
        web,
        db,
        alice,
        bob,
        _keys: keys,
    }
}

fn sha256_of(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_in_a_terminal_opens_a_shell_and_comes_back() {
    let lab = lab().await;
    let client = lab.gw.client(&lab.alice);
    let term = Terminal::start(&client.interactive_command("alice", "-t"), 100, 30);

    // A wrong password is told, and the prompts start again.
    term.wait_for("Password:").await;
    term.type_text("not-the-password");
    term.press(&["Enter"]);
    term.wait_for("Security code:").await;
    term.type_text(&lab.alice.code);
    term.press(&["Enter"]);
    term.wait_for("Try again").await;
    term.wait_for_count("Password:", 2).await;
    term.type_text(&lab.alice.password);
    term.press(&["Enter"]);
    term.wait_for_count("Security code:", 2).await;
    term.type_text(&lab.alice.code);
    term.press(&["Enter"]);
    term.wait_for("Verification code:").await;
    term.type_text(&totp_now(&lab.alice));
    term.press(&["Enter"]);

    // The menu: who is signed in, the groups, the keys.
    let screen = term.wait_for("signed in as alice").await;
    assert!(screen.contains("[prod/]"), "{screen}");
    assert!(screen.contains("Ctrl-D quit"), "{screen}");

    // Into prod, then prod/web: web01 is there.
    term.press(&["Enter"]);
    term.wait_for("[web/]").await;
    term.press(&["Down", "Down"]);
    let screen = term.wait_for(">  [web/]").await;
    assert!(screen.contains("Group: /prod"), "{screen}");
    term.press(&["Enter"]);
    term.wait_for("web01").await;
    // Back out with Left, twice, to the top.
    term.press(&["Left"]);
    term.wait_for("Group: /prod\n").await;
    term.press(&["Left"]);
    term.wait_for("Group: /\n").await;

    // Fuzzy filter from the top: `wb1` finds web01 with its group path.
    term.type_text("wb1");
    let screen = term.wait_for("Filter: wb1").await;
    assert!(screen.contains("web01  (prod/web)"), "{screen}");
    assert!(!screen.contains("db01"), "{screen}");
    term.press(&["Enter"]);

    // A shell on web01 through the gateway.
    term.wait_for("Connecting to web01").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    term.type_text("echo MARK-$((40+2)) $TERM; tty");
    term.press(&["Enter"]);
    // `tty` prints after the echo: wait for its line, so that both are on the screen.
    let screen = term.wait_for("/dev/pts/").await;
    assert!(screen.contains("MARK-42 xterm-256color"), "{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");

    // The target sees window changes.
    term.resize(90, 25);
    tokio::time::sleep(Duration::from_millis(300)).await;
    term.type_text("stty size");
    term.press(&["Enter"]);
    term.wait_for("25 90").await;

    // Exit returns to the menu, with the exit status, and web01 is now recently used.
    term.type_text("exit 7");
    term.press(&["Enter"]);
    let screen = term.wait_for("ended (exit status 7)").await;
    assert!(screen.contains(">~ web01"), "{screen}");
    let user = lab
        .gw
        .storage
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        lab.gw.storage.recents(user.id, 5).await.unwrap(),
        vec!["web01"]
    );

    // Ctrl-F makes web01 a favourite (the cursor is on it, first in the list).
    term.press(&["C-f"]);
    term.wait_for(">* web01").await;
    assert_eq!(
        lab.gw.storage.favourites(user.id).await.unwrap(),
        vec!["web01"]
    );

    // The first connection pinned web01's host key.
    let web01 = lab
        .gw
        .storage
        .server_by_name("web01")
        .await
        .unwrap()
        .unwrap();
    let pinned = web01.host_key.expect("pinned at first connection");
    assert_eq!(
        jumpgate::upstream::parse_pinned(&pinned)
            .unwrap()
            .key_data(),
        jumpgate::upstream::parse_pinned(&lab.web.host_public_key())
            .unwrap()
            .key_data()
    );

    term.press(&["C-d"]);
    term.wait_for("Signed out of Jumpgate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_exec_scp_and_sftp_reach_the_named_server() {
    let lab = lab().await;
    let client = lab.gw.client(&lab.bob);

    // exec: output, exit status and stderr come back.
    let out = client
        .ssh("bob:db01", &["echo out-$((6*7)); echo err >&2; exit 3"])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out-42\n");
    assert!(text(&out.stderr).contains("err"));
    assert_eq!(
        client.prompts(),
        vec!["Password: ", "Security code: "],
        "bob has no TOTP: two prompts"
    );

    // scp up and sftp back down, with a file much larger than any buffer on the way.
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("big.bin");
    let status = std::process::Command::new("head")
        .args(["-c", "24000000", "/dev/urandom"])
        .stdout(std::fs::File::create(&original).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let remote = format!("/tmp/jumpgate-test-{}.bin", std::process::id());
    // scp's own user@host:path form, with the target after an `@`.
    let out = client
        .scp(
            "",
            &[
                original.to_str().unwrap(),
                &format!("bob@web01@127.0.0.1:{remote}"),
            ],
        )
        .await;
    assert!(out.status.success(), "scp: {}", text(&out.stderr));
    let out = client
        .ssh("bob:web01", &[&format!("sha256sum {remote}")])
        .await;
    assert!(text(&out.stdout).starts_with(&sha256_of(&original)));

    let back = dir.path().join("back.bin");
    let out = client
        .sftp(
            "bob:web01",
            &format!("get {remote} {}\nrm {remote}\n", back.display()),
        )
        .await;
    assert!(out.status.success(), "sftp: {}", text(&out.stderr));
    assert_eq!(sha256_of(&back), sha256_of(&original));

    // rsync through the gateway, with this client's ssh options.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/a.txt"), "alpha\n").unwrap();
    std::fs::copy(&original, tree.join("big.bin")).unwrap();
    let remote_dir = format!("/tmp/jumpgate-rsync-{}", std::process::id());
    let out = tokio::process::Command::new("rsync")
        .env("SSH_ASKPASS", client.path("askpass"))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .arg("-a")
        .arg("-e")
        .arg(format!(
            "ssh -F {} -p {} -l bob:web01",
            client.path("config").display(),
            lab.gw.port
        ))
        .arg(format!("{}/", tree.display()))
        .arg(format!("127.0.0.1:{remote_dir}/"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "rsync: {}", text(&out.stderr));
    let out = client
        .ssh(
            "bob:web01",
            &[&format!(
                "cat {remote_dir}/sub/a.txt; sha256sum {remote_dir}/big.bin; rm -r {remote_dir}"
            )],
        )
        .await;
    let listing = text(&out.stdout);
    assert!(listing.starts_with("alpha\n"), "{listing}");
    assert!(listing.contains(&sha256_of(&original)), "{listing}");

    // An email address signs in too, and is not read as a target; one more `@` names it.
    let out = client.ssh("bob@example.test", &["nosuch2"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no server called `nosuch2`"));
    let out = client
        .ssh("bob@example.test@web01", &["echo via-email"])
        .await;
    assert_eq!(text(&out.stdout), "via-email\n", "{}", text(&out.stderr));

    // Unknown and ungranted names get one line and status 1.
    let out = client.ssh("bob:nosuch", &["true"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "jumpgate: no server called `nosuch` is available to you"
    );
    // `ssh gateway web01` without a terminal still reaches web01 (a shell without a pty).
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c").arg(format!(
        "echo 'echo via-menu-name' | SSH_ASKPASS={a} SSH_ASKPASS_REQUIRE=force ssh -F {cfg} -p {p} bob@127.0.0.1 web01",
        a = client.path("askpass").display(),
        cfg = client.path("config").display(),
        p = lab.gw.port
    ));
    let out = c.output().await.unwrap();
    assert_eq!(
        text(&out.stdout),
        "via-menu-name\n",
        "{}",
        text(&out.stderr)
    );

    // sftp without a named server is refused with a hint.
    let out = client.sftp("bob", "pwd\n").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("name the server in the user name"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_keys_and_dead_targets_are_refused_clearly() {
    let mut lab = lab().await;
    let client = lab.gw.client(&lab.bob);
    let out = client.ssh("bob:web01", &["true"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // web01 is reinstalled: the gateway refuses it, naming both fingerprints.
    lab.web.change_host_key();
    let out = client.ssh("bob:web01", &["true"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("host key of web01 has changed"), "{err}");
    assert_eq!(err.matches("SHA256:").count(), 2, "{err}");

    // A target that is down.
    drop(lab.db);
    let out = client.ssh("bob:db01", &["true"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach 127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_jump_reaches_only_granted_servers() {
    let lab = lab().await;
    inventory_only_for_alice(&lab).await;
    let client = lab.gw.client(&lab.bob);
    let jump = |target: &str| jump_through(&lab, &client, target, "echo jumped-$((1+1))");
    let out = jump("web01").output().await.unwrap();
    assert_eq!(text(&out.stdout), "jumped-2\n", "{}", text(&out.stderr));

    // secret01 is granted to alice only; for bob the channel is refused.
    let out = jump("secret01").output().await.unwrap();
    assert!(!out.status.success());
    assert!(!text(&out.stdout).contains("jumped"));
}

/// `ssh root@target command` with the test's own key, through the gateway as bob (ProxyJump).
fn jump_through(
    lab: &Lab,
    client: &common::gateway::Client,
    target: &str,
    command: &str,
) -> tokio::process::Command {
    let mut c = client.command("ssh");
    c.args(["-o", "PubkeyAuthentication=yes", "-o"])
        .arg("PreferredAuthentications=publickey,keyboard-interactive")
        .arg("-i")
        .arg(&lab.own_key)
        .arg("-o")
        .arg(format!(
            "ProxyCommand=ssh -F {} -p {} -W %h:%p bob@127.0.0.1",
            client.path("config").display(),
            lab.gw.port
        ))
        .arg(format!("root@{target}"))
        .arg(command);
    c
}

/// The first line `child` writes to its piped stdout, read byte by byte so that the rest stays
/// in the pipe.
async fn first_line(child: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncReadExt;
    let out = child.stdout.as_mut().unwrap();
    let mut line = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while out.read_exact(&mut byte).await.is_ok() && byte[0] != b'\n' {
            line.push(byte[0]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("a first line within 30 s");
    String::from_utf8_lossy(&line).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_grant_closes_open_sessions_on_the_server() {
    let lab = lab().await;
    let client = lab.gw.client(&lab.bob);
    let started = Instant::now();
    let piped = |mut c: tokio::process::Command| {
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        c.spawn().unwrap()
    };
    let mut direct = client.command("ssh");
    direct
        .arg("-p")
        .arg(lab.gw.port.to_string())
        .arg("bob:web01@127.0.0.1")
        .arg("echo started; sleep 60");
    let mut direct = piped(direct);
    let mut jumped = piped(jump_through(
        &lab,
        &client,
        "web01",
        "echo jumped; sleep 60",
    ));
    // Both are running on web01 once their first line arrives.
    assert_eq!(first_line(&mut direct).await, "started");
    assert_eq!(first_line(&mut jumped).await, "jumped");

    for grant in lab.gw.storage.grants().await.unwrap() {
        lab.gw.storage.remove_grant(grant.id).await.unwrap();
    }
    let wait = |child: tokio::process::Child| async move {
        tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("the session ended after the grant was removed")
            .unwrap()
    };
    let out = wait(direct).await;
    assert_eq!(text(&out.stdout), "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("your access to web01 was revoked"),
        "{}",
        text(&out.stderr)
    );
    let out = wait(jumped).await;
    assert_eq!(text(&out.stdout), "", "{}", text(&out.stderr));
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(50));
}

/// Adds `secret01` in group `restricted`, granted to alice only.
async fn inventory_only_for_alice(lab: &Lab) {
    lab.gw
        .add_server(
            "secret01",
            "restricted",
            lab.web.port,
            Credential::GatewayKey,
        )
        .await;
    lab.gw.grant_group("alice", "restricted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_why_and_lockout_is_shared() {
    let lab = lab().await;
    // Carol has a password but no security code yet.
    let carol = lab.gw.add_user("carol", false).await;
    let carol_row = lab
        .gw
        .storage
        .user_by_username("carol")
        .await
        .unwrap()
        .unwrap();
    lab.gw
        .storage
        .clear_security_code(carol_row.id)
        .await
        .unwrap();
    let out = lab.gw.client(&carol).ssh("carol", &["true"]).await;
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Set both in the web panel under Account"),
        "{}",
        text(&out.stderr)
    );

    // Wrong security codes lock bob out after the configured number of failures, and the web
    // panel's lock is the same one.
    lab.gw.set("lockout.max_failures", "3").await;
    let client = lab.gw.client(&lab.bob);
    client.set_answer("code", "wrong-code");
    let out = client.ssh("bob", &["true"]).await;
    assert_eq!(out.status.code(), Some(255));
    client.set_answer("code", &lab.bob.code);
    let out = client.ssh("bob", &["true"]).await;
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Sign-in is locked"),
        "{}",
        text(&out.stderr)
    );
    use app::api::backend::{Backend, RequestContext};
    let auth = jumpgate::auth::Auth::new(lab.gw.storage.clone(), false, lab.gw.vault.clone());
    let ctx = RequestContext {
        client_ip: "127.0.0.9".parse().unwrap(),
        session_token: None,
        csrf_token: String::new(),
    };
    let web = auth
        .login(&ctx, lab.bob.login.clone(), lab.bob.password.clone())
        .await
        .map(|_| ());
    assert!(
        format!("{web:?}").contains("LockedOut"),
        "the web panel shares the lock: {web:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_their_connections_and_limits_hold() {
    let lab = lab().await;
    lab.gw.set("ssh.max_sessions_per_user", "1").await;
    let client = lab.gw.client(&lab.bob);
    let started = Instant::now();
    let long = {
        let mut c = client.command("ssh");
        c.arg("-p")
            .arg(lab.gw.port.to_string())
            .arg("bob:web01@127.0.0.1")
            .arg("echo started; sleep 60")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    // Wait until the first connection is signed in.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.prompts().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the first connection never signed in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A second connection is over the limit.
    let second = lab.gw.client(&lab.bob);
    let out = second.ssh("bob:web01", &["true"]).await;
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("the most allowed"),
        "{}",
        text(&out.stderr)
    );

    // Disabling bob ends the first one within the watchdog's tick.
    let bob = lab
        .gw
        .storage
        .user_by_username("bob")
        .await
        .unwrap()
        .unwrap();
    lab.gw
        .storage
        .set_user_status(bob.id, "disabled")
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), long.wait_with_output())
        .await
        .expect("the connection ended after the account was disabled")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(50));
    assert_eq!(text(&out.stdout), "started\n");
    assert!(
        text(&out.stderr).contains("Your account was disabled"),
        "{}",
        text(&out.stderr)
    );
}

/// A russh client answering the prompts, for load tests without a terminal.
struct AcceptAny;

impl russh::client::Handler for AcceptAny {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn russh_exec(port: u16, person: &Person, user: &str, command: &str) -> (u32, String) {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let config = Arc::new(russh::client::Config::default());
    let mut handle = russh::client::connect(config, ("127.0.0.1", port), AcceptAny)
        .await
        .unwrap();
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None)
        .await
        .unwrap();
    loop {
        match reply {
            R::Success => break,
            R::Failure { .. } => panic!("sign-in failed for {user}"),
            R::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.prompt.contains("Password") {
                            person.password.clone()
                        } else {
                            person.code.clone()
                        }
                    })
                    .collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await
                    .unwrap();
            }
        }
    }
    let mut channel = handle.channel_open_session().await.unwrap();
    channel.exec(true, command).await.unwrap();
    let mut output = Vec::new();
    let mut status = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => output.extend_from_slice(&data),
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    (status.expect("an exit status"), text(&output))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sessions() {
    let lab = lab().await;
    lab.gw.set("ssh.max_sessions_per_user", "100").await;
    // Argon2 makes each sign-in cost real CPU; the number is what two cores finish quickly.
    const SESSIONS: usize = 24;
    let mut tasks = Vec::new();
    for i in 0..SESSIONS {
        let port = lab.gw.port;
        let bob = lab.bob.clone();
        let target = if i % 2 == 0 { "web01" } else { "db01" };
        tasks.push(tokio::spawn(async move {
            russh_exec(
                port,
                &bob,
                &format!("bob:{target}"),
                &format!("echo session-{i}; head -c 200000 /dev/zero | wc -c"),
            )
            .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let (status, out) = t.await.unwrap();
        assert_eq!(status, 0);
        assert_eq!(out, format!("session-{i}\n200000\n"));
    }
}
