// Starts a real Jumpgate release binary on a free port with a fresh data directory, and reads
// the first administrator's one-time password from its console output.
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface RunningServer {
  url: string;
  /** The SSH gateway's port on 127.0.0.1. */
  sshPort: number;
  adminPassword: string;
  /** Runs `jumpgate ARGS` on this server's data, as an administrator on its host would. */
  cli(args: string[], input?: string): string;
  /** Everything the server wrote to standard error (its log). */
  log(): string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

export async function startServer(): Promise<RunningServer> {
  const bin = resolve(process.env.JUMPGATE_BIN ?? "target/release/jumpgate");
  const port = await freePort();
  const sshPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "jumpgate-e2e-"));
  const url = `http://127.0.0.1:${port}`;
  let stdout = "";
  let stderr = "";

  const env = {
    PATH: process.env.PATH,
    JUMPGATE_WEB_LISTEN: `127.0.0.1:${port}`,
    JUMPGATE_SSH_LISTEN: `127.0.0.1:${sshPort}`,
    JUMPGATE_STORAGE_DATA_DIR: dataDir,
    JUMPGATE_STORAGE_DATABASE_URL: `sqlite://${dataDir}/jumpgate.db`,
    JUMPGATE_LOG_LEVEL: "debug",
  };
  const child: ChildProcess = spawn(bin, ["serve"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d) => (stdout += d.toString()));
  child.stderr?.on("data", (d) => (stderr += d.toString()));
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`jumpgate exited early (${child.exitCode}):\n${stderr}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok && /password:\s+\S+/.test(stdout)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`jumpgate did not start:\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const adminPassword = /password:\s+(\S+)/.exec(stdout)![1];

  return {
    url,
    sshPort,
    adminPassword,
    cli(args: string[], input?: string) {
      const out = spawnSync(bin, args, { env, input, encoding: "utf8" });
      if (out.status !== 0) throw new Error(`jumpgate ${args.join(" ")} failed: ${out.stderr}`);
      return out.stdout;
    },
    log: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
