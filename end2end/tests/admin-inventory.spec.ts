// Journey: an administrator builds the server tree, adds a server with a password that never
// comes back, pins its host key against a real OpenSSH server, sees a changed key refused with
// both fingerprints and accepts it; then grants a user group access and the member's own list
// of servers follows each grant and revocation.
import { expect, test, Page } from "@playwright/test";
import { startServer, RunningServer } from "./support/server";
import { Sshd } from "./support/sshd";
import { firstSignIn, hydrated, openMore } from "./support/pages";

let server: RunningServer;
let sshd: Sshd;

test.beforeAll(async () => {
  server = await startServer();
  sshd = await Sshd.start();
});

test.afterAll(async () => {
  await sshd?.dispose();
  await server?.stop();
});

const TARGET_SECRET = "target-password-never-shown";

async function openServers(page: Page) {
  await page.getByRole("link", { name: "Servers", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Servers", exact: true })).toBeVisible();
  await hydrated(page);
}

test("administrator describes servers and who may reach them", async ({ page, browser }) => {
  await firstSignIn(page, server.url, "admin", server.adminPassword, "the administrator passphrase");
  await openServers(page);

  // The gateway key's public half is there to copy into authorized_keys.
  await expect(page.getByTestId("gateway-key")).toContainText(/^\s*ssh-ed25519 \S+/);

  const groupForm = page.locator("#add-group-form");
  await groupForm.getByLabel(/New group path/).fill("prod/web");
  await groupForm.getByRole("button", { name: "Add group" }).click();
  await expect(page.locator('li[data-group="prod/web"]')).toBeVisible();
  await expect(page.locator('li[data-group="prod"]')).toBeVisible();
  await groupForm.getByLabel(/New group path/).fill("bad path");
  await groupForm.getByRole("button", { name: "Add group" }).click();
  await expect(groupForm.getByRole("alert")).toContainText(/not a valid server group name/);

  const add = page.locator("#add-server-form");
  const fillServer = async (name: string) => {
    await add.getByLabel(/^Name/).fill(name);
    await add.getByLabel("Group").selectOption("prod/web");
    await add.getByLabel("Host").fill("127.0.0.1");
    await add.getByLabel("Port").fill(String(sshd.port));
    await add.getByLabel("Login user on the target").fill("root");
    await add.getByLabel("Description").fill("first web node");
    await add.getByLabel("Target password").fill(TARGET_SECRET);
  };
  // A name people could not type is refused with the reason; nothing is added.
  await fillServer("web 01");
  await add.getByRole("button", { name: "Add server" }).click();
  await expect(add.getByRole("alert")).toContainText(/not a valid server name/);
  await expect(page.locator("tr[data-server]")).toHaveCount(0);

  await fillServer("web01");
  await add.getByRole("button", { name: "Add server" }).click();
  const row = page.locator('tr[data-server="web01"]');
  await expect(row).toContainText(`root@127.0.0.1:${sshd.port}`);
  await expect(row.getByTestId("auth")).toHaveText("password");
  await expect(row.getByTestId("host-key")).toHaveText("not pinned yet");
  // The secret is write-only: neither the page nor its data carry it back.
  expect(await page.content()).not.toContain(TARGET_SECRET);
  const inventory = await page.request.get(`${server.url}/api/admin/inventory`);
  expect(inventory.ok()).toBeTruthy();
  expect(await inventory.text()).not.toContain(TARGET_SECRET);

  // Pinning the host key ahead of the first connection.
  const first = sshd.fingerprint();
  await row.getByRole("button", { name: "Scan host key" }).click();
  await expect(page.getByTestId("scan-result")).toContainText(`Pinned the host key of web01: ${first}`);
  await expect(row.getByTestId("host-key")).toHaveText(first);

  // The target is reinstalled: its new key is refused, naming both fingerprints.
  await sshd.changeHostKey();
  const second = sshd.fingerprint();
  await row.getByRole("button", { name: "Scan host key" }).click();
  const refusal = page.getByRole("alert").first();
  await expect(refusal).toContainText("has changed");
  await expect(refusal).toContainText(first);
  await expect(refusal).toContainText(second);
  await expect(row.getByTestId("host-key")).toHaveText(first);
  await openMore(row);
  await row.getByRole("button", { name: "Accept changed host key" }).click();
  await expect(page.getByTestId("scan-result")).toContainText(`Accepted the new host key of web01: ${second}`);
  await expect(row.getByTestId("host-key")).toHaveText(second);

  // A user who will receive access through a group.
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await hydrated(page);
  const userForm = page.locator("#create-user-form");
  await userForm.getByLabel("User name").fill("alice");
  await userForm.getByRole("button", { name: "Add user" }).click();
  const otp = (await page.getByTestId("new-user-password").textContent())?.trim() ?? "";
  const alice = await (await browser.newContext()).newPage();
  await firstSignIn(alice, server.url, "alice", otp, "alice's own passphrase");
  await expect(alice.getByTestId("no-servers")).toBeVisible();

  await page.getByRole("link", { name: "Access", exact: true }).click();
  await expect(page.getByRole("heading", { name: "Access", exact: true })).toBeVisible();
  await hydrated(page);
  const ugForm = page.locator("#add-user-group-form");
  await ugForm.getByLabel("New user group").fill("web-team");
  await ugForm.getByRole("button", { name: "Add user group" }).click();
  const team = page.locator('[data-user-group="web-team"]');
  await team.locator("select").selectOption("alice");
  await team.getByRole("button", { name: "Add member" }).click();
  await expect(team.locator('li[data-member="alice"]')).toBeVisible();

  const grantForm = page.locator("#add-grant-form");
  await grantForm.getByLabel("Grant").selectOption("user-group:web-team");
  await grantForm.getByLabel("access to").selectOption("group:prod");
  await grantForm.getByRole("button", { name: "Grant access" }).click();
  const grant = page.locator('tr[data-grant="user-group:web-team group:prod"]');
  await expect(grant).toContainText("server group prod (and below)");

  // Nested groups inherit: alice now sees web01, in prod/web.
  await alice.reload();
  await expect(alice.locator('li[data-my-server="web01"]')).toContainText("prod/web");

  // Revoking takes effect at once.
  await grant.getByRole("button", { name: "Revoke" }).click();
  await expect(grant).toHaveCount(0);
  await alice.reload();
  await expect(alice.getByTestId("no-servers")).toBeVisible();

  // Alice is no administrator: the inventory pages and their data are refused.
  await alice.goto(`${server.url}/admin/servers`);
  await expect(alice.getByText("You are not allowed to do that.")).toBeVisible();
  const denied = await alice.request.get(`${server.url}/api/admin/inventory`);
  expect(denied.ok()).toBeFalsy();
  expect(await denied.text()).not.toContain("web01");
});
