// Journey: a new installation's administrator signs in with the printed one-time password,
// must choose a new one, enrols an authenticator app, signs out, and signs in again with a
// verification code (a wrong one is refused with a clear message).
import { expect, test } from "@playwright/test";
import { startServer, RunningServer } from "./support/server";
import { AccountPage, LoginPage, PasswordForm, hydrated } from "./support/pages";
import { totpCode, wrongCode } from "./support/totp";

const NEW_PASSWORD = "a brand new admin passphrase";
const SECURITY_CODE = "739164";

let server: RunningServer;

test.beforeAll(async () => {
  server = await startServer();
});

test.afterAll(async () => {
  await server?.stop();
});

test("first admin: forced password change, TOTP enrolment, sign-in with a code", async ({ page }) => {
  // Unauthenticated visitors land on the sign-in page.
  await page.goto(`${server.url}/`);
  await expect(page).toHaveURL(/\/login$/);
  await hydrated(page);

  const login = new LoginPage(page);
  await login.signIn("admin", "definitely not the password");
  await login.expectError(/user name, email or password is not right/);

  await login.signIn("admin", server.adminPassword);
  await expect(page.getByRole("heading", { name: "Choose a new password" })).toBeVisible();
  await hydrated(page);
  await new PasswordForm(page).change(server.adminPassword, NEW_PASSWORD);
  await expect(page.getByRole("heading", { name: /Welcome/ })).toBeVisible();

  const account = new AccountPage(page);
  await account.open(server.url);
  await account.setSecurityCode(NEW_PASSWORD, SECURITY_CODE);
  await expect(page.getByText("Your security code has been saved.")).toBeVisible();

  const secret = await account.beginTotp();
  await account.confirmTotp(wrongCode(secret));
  await expect(page.getByRole("alert")).toContainText(/verification code is not valid/);
  await account.confirmTotp(totpCode(secret));
  await expect(page.getByText("Two-factor authentication is now on.")).toBeVisible();

  await account.signOut();
  await expect(page).toHaveURL(/\/login(\?signed_out=1)?$/);
  await hydrated(page);
  const me = await page.request.get(`${server.url}/api/me`);
  expect(me.status()).toBe(401);

  await login.signIn("admin", NEW_PASSWORD);
  await expect(page.getByLabel("Verification code")).toBeVisible();
  await login.enterCode(wrongCode(secret));
  await login.expectError(/verification code is not valid/);
  // The code used at enrolment is spent; the next step's code is within the accepted window.
  await login.enterCode(totpCode(secret, Date.now() / 1000 + 30));
  await expect(page.getByRole("heading", { name: /Welcome/ })).toBeVisible();

  const after = await page.request.get(`${server.url}/api/me`);
  expect(after.status()).toBe(200);
  const body = await after.json();
  expect(body).toMatchObject({
    username: "admin",
    role: "admin",
    auth_method: "password",
    totp_enabled: true,
    has_security_code: true,
    must_change_password: false,
  });

  // No secret reaches the log.
  const log = server.log();
  for (const s of [server.adminPassword, NEW_PASSWORD, SECURITY_CODE, secret]) {
    expect(log).not.toContain(s);
  }
});
