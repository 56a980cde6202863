// Page objects for the panel: what a person sees and does, by label and role.
import { expect, Locator, Page } from "@playwright/test";

export async function hydrated(page: Page) {
  await page.locator('body[data-hydrated="true"]').waitFor();
}

export class LoginPage {
  constructor(private page: Page) {}

  async open(base: string) {
    await this.page.goto(`${base}/login`);
    await hydrated(this.page);
  }

  async signIn(login: string, password: string) {
    await this.page.getByLabel("User name or email").fill(login);
    await this.page.getByLabel("Password").fill(password);
    await this.page.getByRole("button", { name: "Sign in" }).click();
  }

  async enterCode(code: string) {
    const field = this.page.getByLabel("Verification code");
    await field.fill(code);
    await this.page.getByRole("button", { name: "Verify" }).click();
  }

  async expectError(text: RegExp) {
    await expect(this.page.getByRole("alert")).toContainText(text);
  }
}

export class PasswordForm {
  constructor(private page: Page) {}

  async change(current: string, next: string) {
    const form = this.page.locator("#password-form");
    await form.getByLabel("Current password").fill(current);
    await form.getByLabel("New password", { exact: true }).fill(next);
    await form.getByLabel("Confirm new password").fill(next);
    await form.getByRole("button", { name: "Change password" }).click();
  }
}

export class AccountPage {
  constructor(private page: Page) {}

  async open(base: string) {
    await this.page.goto(`${base}/account`);
    await hydrated(this.page);
    await expect(this.page.getByRole("heading", { name: "Account", exact: true })).toBeVisible();
  }

  /** Starts TOTP enrolment and returns the secret the page shows. */
  async beginTotp(): Promise<string> {
    await this.page.getByRole("button", { name: "Set up authenticator app" }).click();
    await expect(this.page.getByRole("img", { name: /QR code/ })).toBeVisible();
    const secret = (await this.page.getByTestId("totp-secret").textContent())?.trim() ?? "";
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    await expect(this.page.getByTestId("totp-uri")).toContainText(`secret=${secret}`);
    return secret;
  }

  async confirmTotp(code: string) {
    const form = this.page.locator("#totp-confirm-form");
    await form.getByLabel("Verification code").fill(code);
    await form.getByRole("button", { name: "Turn on" }).click();
  }

  async setSecurityCode(password: string, code: string) {
    const form = this.page.locator("#security-code-form");
    await form.getByLabel("Current password").fill(password);
    await form.getByLabel("New security code").fill(code);
    await form.getByLabel("Confirm security code").fill(code);
    await form.getByRole("button", { name: "Save security code" }).click();
  }

  async signOut() {
    await this.page.getByRole("button", { name: "Sign out" }).click();
  }
}

/** Signs in with a one-time password and chooses a new password, as a new account must. */
export async function firstSignIn(page: Page, base: string, user: string, oneTime: string, chosen: string) {
  const login = new LoginPage(page);
  await login.open(base);
  await login.signIn(user, oneTime);
  await expect(page.getByRole("heading", { name: "Choose a new password" })).toBeVisible();
  await hydrated(page);
  await new PasswordForm(page).change(oneTime, chosen);
  await expect(page.getByRole("heading", { name: /Welcome/ })).toBeVisible();
}

/** Opens a table row's "More" panel (a <details>), whether or not it is open already. */
export async function openMore(row: Locator) {
  await row.locator("details.more").evaluate((d) => ((d as HTMLDetailsElement).open = true));
}
