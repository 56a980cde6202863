// Journey: an administrator adds a user in the panel and hands over the one-time password; the
// user signs in and must choose a password; the administrator disables the account (the user's
// session ends and sign-in is refused), enables it again, edits the profile and resets the
// password.
import { expect, test, Browser, Page } from "@playwright/test";
import { startServer, RunningServer } from "./support/server";
import { LoginPage, firstSignIn, hydrated, openMore } from "./support/pages";

let server: RunningServer;

test.beforeAll(async () => {
  server = await startServer();
});

test.afterAll(async () => {
  await server?.stop();
});

async function signInFirstTime(page: Page, user: string, oneTime: string, chosen: string) {
  await firstSignIn(page, server.url, user, oneTime, chosen);
}

async function newPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext();
  return context.newPage();
}

test("administrator manages a user from the Users page", async ({ page, browser }) => {
  await signInFirstTime(page, "admin", server.adminPassword, "the administrator passphrase");
  await page.getByRole("link", { name: "Users" }).click();
  await expect(page.getByRole("heading", { name: "Users", exact: true })).toBeVisible();
  await hydrated(page);

  const form = page.locator("#create-user-form");
  await form.getByLabel("User name").fill("alice");
  await form.getByLabel(/Email/).fill("alice@example.com");
  await form.getByRole("button", { name: "Add user" }).click();
  const otp = (await page.getByTestId("new-user-password").textContent())?.trim() ?? "";
  expect(otp).toHaveLength(20);
  const row = page.locator('tr[data-user="alice"]');
  await expect(row).toContainText("alice@example.com");
  await expect(row.getByTestId("status")).toHaveText("active");

  // The same name again is refused with a reason.
  await form.getByLabel("User name").fill("alice");
  await form.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByRole("alert").first()).toContainText(/already exists/);

  const alice = await newPage(browser);
  await signInFirstTime(alice, "alice", otp, "alice's own passphrase");
  // Alice is no administrator: no Users link, and the page refuses.
  await expect(alice.getByRole("link", { name: "Users" })).toHaveCount(0);
  await alice.goto(`${server.url}/admin/users`);
  await expect(alice.getByText("You are not allowed to do that.")).toBeVisible();

  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row.getByTestId("status")).toHaveText("disabled");
  // Her session is over, and signing in again is refused.
  const me = await alice.request.get(`${server.url}/api/me`);
  expect(me.status()).toBe(401);
  const aliceLogin = new LoginPage(alice);
  await aliceLogin.open(server.url);
  await aliceLogin.signIn("alice", "alice's own passphrase");
  await aliceLogin.expectError(/not right/);

  await row.getByRole("button", { name: "Enable" }).click();
  await expect(row.getByTestId("status")).toHaveText("active");
  // Editing the profile from the row's "More" panel.
  await openMore(row);
  await row.getByLabel("Display name").fill("Alice Liddell");
  await row.getByLabel("Role").selectOption("admin");
  await row.getByRole("button", { name: "Save" }).click();
  await expect(row).toContainText("(Alice Liddell)");
  await expect(row.getByTestId("role")).toHaveText("admin");
  await openMore(row);
  await row.getByRole("button", { name: "Reset password" }).click();
  const fresh = (await page.getByTestId("reset-password").textContent())?.trim() ?? "";
  expect(fresh).toHaveLength(20);
  const again = await newPage(browser);
  await signInFirstTime(again, "alice", fresh, "alice's second passphrase");
});
