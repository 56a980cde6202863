//! A private OpenSSH server on 127.0.0.1 for tests: its own config, host key and port, started
//! and stopped by the test (never the system service).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn keygen(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (openssh-client is installed by scripts/setup.sh)");
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // sshd insists on its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        keygen(&dir.path().join("host_key"));
        let mut sshd = Sshd {
            port: free_port(),
            dir,
            child: None,
        };
        sshd.spawn();
        sshd
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("sshd_config")
    }

    /// The public half of the current host key, as `type base64`.
    pub fn host_public_key(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("host_key.pub")).expect("pub key");
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn spawn(&mut self) {
        let d = self.dir.path().display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nStrictModes no\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\nLogLevel ERROR\n\
             MaxStartups 200\nMaxSessions 200\nSubsystem sftp internal-sftp\n",
            port = self.port
        );
        std::fs::write(self.config_path(), config).expect("sshd_config");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/sbin/sshd starts (openssh-server is installed by scripts/setup.sh)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Lets the holder of `public_line` (an OpenSSH public key) sign in as any account.
    pub fn authorize(&self, public_line: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .expect("authorized_keys");
        writeln!(f, "{}", public_line.trim()).expect("write authorized_keys");
    }

    /// Replaces the host key and restarts on the same port, as a reinstalled server would.
    pub fn change_host_key(&mut self) {
        self.stop();
        keygen(&self.dir.path().join("host_key"));
        self.spawn();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
