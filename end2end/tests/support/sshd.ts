// A private OpenSSH server on 127.0.0.1 for browser tests: its own config, host key and port,
// started and stopped by the test (never the system service).
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./server";

export class Sshd {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private dir: string,
  ) {}

  static async start(): Promise<Sshd> {
    const dir = mkdtempSync(join(tmpdir(), "jumpgate-e2e-sshd-"));
    // sshd insists on its privilege-separation directory.
    mkdirSync("/run/sshd", { recursive: true });
    const sshd = new Sshd(await freePort(), dir);
    sshd.keygen();
    await sshd.spawn();
    return sshd;
  }

  /** SHA256 fingerprint of the current host key, as OpenSSH prints it. */
  fingerprint(): string {
    const out = spawnSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(this.dir, "host_key.pub")]);
    const match = /(SHA256:\S+)/.exec(out.stdout.toString());
    if (!match) throw new Error(`ssh-keygen -l failed: ${out.stderr}`);
    return match[1];
  }

  /** Lets the holder of `publicLine` (an OpenSSH public key) sign in as any account. */
  authorize(publicLine: string) {
    appendFileSync(join(this.dir, "authorized_keys"), `${publicLine.trim()}\n`);
  }

  /** Replaces the host key and restarts on the same port, as a reinstalled server would. */
  async changeHostKey() {
    await this.stop();
    this.keygen();
    await this.spawn();
  }

  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
    child.kill("SIGTERM");
    await exited;
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private keygen() {
    const key = join(this.dir, "host_key");
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    const out = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    if (out.status !== 0) throw new Error(`ssh-keygen failed: ${out.stderr}`);
  }

  private async spawn() {
    const d = this.dir;
    const config = join(d, "sshd_config");
    writeFileSync(
      config,
      [
        `Port ${this.port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${d}/host_key`,
        `PidFile ${d}/sshd.pid`,
        `AuthorizedKeysFile ${d}/authorized_keys`,
        "UsePAM no",
        "StrictModes no",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    this.child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], { stdio: "ignore" });
    const deadline = Date.now() + 10_000;
    while (!(await listening(this.port))) {
      if (Date.now() > deadline) throw new Error("sshd did not start listening");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      ok(true);
    });
    socket.once("error", () => ok(false));
  });
}
