// Journey: a person registers an SSH public key under Account and then signs in to the SSH
// gateway with it, without password or security code; after removing it the key is refused.
import { expect, test } from "@playwright/test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, RunningServer } from "./support/server";
import { AccountPage, firstSignIn } from "./support/pages";

const NEW_PASSWORD = "admin passphrase for keys";

let server: RunningServer;
let keyDir: string;

test.beforeAll(async () => {
  server = await startServer();
  keyDir = mkdtempSync(join(tmpdir(), "jumpgate-e2e-keys-"));
  for (const name of ["mine", "other"]) {
    const made = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@laptop`, "-f", join(keyDir, name)]);
    expect(made.status).toBe(0);
  }
});

test.afterAll(async () => {
  await server?.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

/** Runs `ssh` with only `key`, no prompts possible; returns status and stderr. */
function sshWithKey(key: string, command: string): { status: number | null; stderr: string } {
  const out = spawnSync(
    "ssh",
    [
      "-F", "/dev/null",
      "-p", String(server.sshPort),
      "-i", join(keyDir, key),
      "-o", "IdentitiesOnly=yes",
      "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null",
      "-o", "LogLevel=ERROR",
      "admin@127.0.0.1",
      command,
    ],
    { encoding: "utf8", timeout: 30_000, env: { PATH: process.env.PATH } },
  );
  return { status: out.status, stderr: out.stderr };
}

test("a registered SSH key signs in to the gateway instead of password and security code", async ({ page }) => {
  await firstSignIn(page, server.url, "admin", server.adminPassword, NEW_PASSWORD);
  const account = new AccountPage(page);
  await account.open(server.url);
  await expect(page.getByTestId("no-ssh-keys")).toBeVisible();

  // Before: the key is refused (BatchMode: no prompts to fall back on).
  expect(sshWithKey("mine", "nosuch").status).toBe(255);

  // A private key pasted by mistake is refused and nothing is stored.
  const form = page.locator("#ssh-key-form");
  await form.getByLabel(/Public key/).fill(readFileSync(join(keyDir, "mine"), "utf8"));
  await form.getByRole("button", { name: "Add key" }).click();
  await expect(form.getByRole("alert")).toContainText(/not an OpenSSH public key|one line/);

  const publicLine = readFileSync(join(keyDir, "mine.pub"), "utf8").trim();
  await form.getByLabel(/Public key/).fill(publicLine);
  await form.getByRole("button", { name: "Add key" }).click();
  await expect(page.getByText("The key has been added.")).toBeVisible();
  const row = page.locator('tr[data-ssh-key="mine@laptop"]');
  await expect(row).toContainText("ssh-ed25519 SHA256:");

  // Signed in with the key: the gateway answers about the server name, not the sign-in.
  const signedIn = sshWithKey("mine", "nosuch");
  expect(signedIn.status).toBe(1);
  expect(signedIn.stderr).toContain("no server called `nosuch` is available to you");
  // Another key still is not accepted.
  expect(sshWithKey("other", "nosuch").status).toBe(255);

  // The same key cannot be registered twice.
  await form.getByLabel(/Public key/).fill(publicLine);
  await form.getByRole("button", { name: "Add key" }).click();
  await expect(form.getByRole("alert")).toContainText(/already registered/);

  // Removing it takes it away at once.
  await page.reload();
  await account.open(server.url);
  await page.locator('tr[data-ssh-key="mine@laptop"]').getByRole("button", { name: "Remove" }).click();
  await expect(page.getByTestId("no-ssh-keys")).toBeVisible();
  expect(sshWithKey("mine", "nosuch").status).toBe(255);
});
