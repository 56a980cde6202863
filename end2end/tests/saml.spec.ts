// Journey: an administrator connects Jumpgate to a real third-party SAML identity provider
// (pysaml2's, started here) from Settings: copies the SP's Entity ID and ACS URL, pastes the
// IdP's metadata URL, presses Fetch and Save, switches Web Panel Authentication to SAML and
// turns on auto-create. People then reach the panel through the IdP (SP-initiated, back to the
// page they asked for, and IdP-initiated from the IdP's portal); with auto-create off, an unknown
// person is refused; the administrator's password sign-in stays at /login/local. With browser
// approval on, the real `ssh` shows a link that the person approves in Chromium.
import { expect, test, Browser, Page } from "@playwright/test";
import { ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startServer, RunningServer } from "./support/server";
import { LoginPage, firstSignIn, hydrated } from "./support/pages";

let server: RunningServer;
let idp: { url: string; child: ChildProcess; dir: string };
const adminPassword = "the administrator passphrase";

/** The real `ssh` signing in as `login`: its askpass program presses Enter at the approval
 * prompt once `enter()` is called. */
function sshAwaitingApproval(port: number, login: string) {
  const dir = mkdtempSync(join(tmpdir(), "jumpgate-ssh-"));
  const askpass = join(dir, "askpass");
  writeFileSync(
    askpass,
    `#!/bin/sh\ncase "$1" in *approved*) n=0; while [ ! -e ${dir}/go ] && [ $n -lt 300 ]; do sleep 0.2; n=$((n+1)); done; rm -f ${dir}/go; echo ;; *) exit 1 ;; esac\n`,
  );
  chmodSync(askpass, 0o700);
  let stderr = "";
  const child = spawn(
    "ssh",
    [
      "-p", String(port),
      "-o", "StrictHostKeyChecking=accept-new",
      "-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`,
      "-o", "PreferredAuthentications=keyboard-interactive",
      "-o", "PubkeyAuthentication=no",
      `${login}@127.0.0.1`,
      "no-such-server",
    ],
    {
      env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", SSH_AUTH_SOCK: "" },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  child.stderr!.on("data", (d) => (stderr += d.toString()));
  const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)));
  return {
    async link(): Promise<string> {
      await expect.poll(() => /https?:\/\/\S+\/ssh\/approve\/[A-Z0-9-]+/.exec(stderr)?.[0]).toBeTruthy();
      return /https?:\/\/\S+\/ssh\/approve\/[A-Z0-9-]+/.exec(stderr)![0];
    },
    async enter(): Promise<string> {
      writeFileSync(join(dir, "go"), "");
      await exited;
      rmSync(dir, { recursive: true, force: true });
      return stderr;
    },
  };
}

async function startIdp(spMetadata: string) {
  const cache = process.env.JUMPGATE_CACHE_DIR ?? join(homedir(), ".cache", "jumpgate");
  const python = process.env.JUMPGATE_TEST_PYTHON ?? join(cache, "pyvenv", "bin", "python");
  if (!existsSync(python)) throw new Error(`${python} is missing: run scripts/setup.sh`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "jumpgate-idp-"));
  const script = resolve(__dirname, "../../server/tests/support/saml_idp.py");
  const child = spawn(
    python,
    // On 127.0.0.2, another site than the panel's 127.0.0.1 for the browser, as a real IdP's
    // domain is: its answers arrive as cross-site POSTs without the panel's SameSite cookies.
    [script, "--port", String(port), "--sp-metadata", spMetadata, "--dir", dir, "--host", "127.0.0.2"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((ok, fail) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d.toString();
      const m = /ready (\S+)/.exec(out);
      if (m) ok(m[1]);
    });
    child.once("exit", (code) => fail(new Error(`the test IdP exited (${code})`)));
  });
  return { url, child, dir };
}

test.beforeAll(async () => {
  server = await startServer();
  idp = await startIdp(`${server.url}/saml/metadata`);
});

test.afterAll(async () => {
  idp?.child.kill();
  if (idp) rmSync(idp.dir, { recursive: true, force: true });
  await server?.stop();
});

async function freshPage(browser: Browser): Promise<Page> {
  return (await browser.newContext()).newPage();
}

/** Signs in at the test IdP's form, which opens after Jumpgate sends the browser there. */
async function signInAtIdp(page: Page, email: string) {
  await expect(page.getByRole("heading", { name: "Test IdP sign-in" })).toBeVisible();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function saveSection(page: Page, formId: string) {
  const form = page.locator(formId);
  await form.getByRole("button", { name: "Save" }).click();
  await expect(form.getByRole("status")).toHaveText("Saved.");
}

test("an administrator connects the panel to the IdP and people sign in through it", async ({
  page,
  browser,
}) => {
  await firstSignIn(page, server.url, "admin", server.adminPassword, adminPassword);
  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("heading", { name: "Settings", exact: true })).toBeVisible();
  await hydrated(page);

  // What the IdP administrator copies, derived from the public URL (an address here: warned).
  await expect(page.getByTestId("sp-entity-id")).toHaveValue(`${server.url}/saml/metadata`);
  await expect(page.getByTestId("sp-acs-url")).toHaveValue(`${server.url}/saml/acs`);
  await expect(page.getByText(/The public URL is an IP address/)).toBeVisible();

  // Switching to SAML before the IdP is known is refused, with the reason.
  const general = page.locator("#general-form");
  await general.getByLabel("Web Panel Authentication").selectOption("saml");
  await general.getByRole("button", { name: "Save" }).click();
  await expect(general.getByRole("alert")).toContainText(/SAML is not configured yet/);

  // An uploaded metadata file fills the IdP fields; a file that is not metadata says so.
  const files = mkdtempSync(join(tmpdir(), "jumpgate-metadata-"));
  const notMetadata = join(files, "notes.xml");
  writeFileSync(notMetadata, "<notes>not SAML metadata</notes>");
  const uploaded = join(files, "idp-metadata.xml");
  writeFileSync(uploaded, await (await fetch(`${idp.url}/metadata`)).text());
  await page.getByText("Or upload or paste the metadata XML").click();
  await page.getByLabel("Metadata file").setInputFiles(notMetadata);
  await expect(page.getByRole("alert").filter({ hasText: /is not SAML metadata|describes no identity provider/ })).toBeVisible();
  await page.getByLabel("Metadata file").setInputFiles(uploaded);
  await expect(page.getByRole("status").filter({ hasText: "Filled in from the metadata file" })).toBeVisible();
  await expect(page.locator("#saml-form").getByLabel("IdP Entity ID")).toHaveValue(`${idp.url}/metadata`);
  rmSync(files, { recursive: true, force: true });

  // A bad metadata URL says what is wrong; the right one fills the IdP fields.
  await page.getByLabel("Metadata URL").fill(`${idp.url}/no-such-metadata`);
  await page.getByRole("button", { name: "Fetch" }).click();
  await expect(page.getByRole("alert").filter({ hasText: /HTTP 404/ })).toBeVisible();
  await page.getByLabel("Metadata URL").fill(`${idp.url}/metadata`);
  await page.getByRole("button", { name: "Fetch" }).click();
  const saml = page.locator("#saml-form");
  await expect(saml.getByLabel("IdP Entity ID")).toHaveValue(`${idp.url}/metadata`);
  await expect(saml.getByLabel("SSO URL")).toHaveValue(`${idp.url}/sso/redirect`);
  await expect(saml.getByLabel(/SLO URL/)).toHaveValue(`${idp.url}/slo/redirect`);
  await expect(saml.getByLabel(/Signing certificates/)).toHaveValue(/BEGIN CERTIFICATE/);
  await expect(page.getByTestId("idp-certificates")).toContainText("CN=Test IdP trusted");
  await saveSection(page, "#saml-form");

  await general.getByLabel("Web Panel Authentication").selectOption("saml");
  await general.getByLabel("Enable auto create user").check();
  await saveSection(page, "#general-form");

  // A new person opens a page and comes back to it signed in, with an account made for them.
  const dave = await freshPage(browser);
  const acsPosts: string[] = [];
  dave.on("request", (r) => {
    if (r.method() === "POST" && r.url() === `${server.url}/saml/acs`) acsPosts.push(r.postData() ?? "");
  });
  await dave.goto(`${server.url}/account`);
  await signInAtIdp(dave, "dave@corp.test");
  await expect(dave).toHaveURL(`${server.url}/account`);
  // The IdP's cross-site post came without the cookie that binds the answer to this browser;
  // the panel posted it again from its own origin, with the cookie.
  expect(acsPosts.length).toBe(2);
  expect(acsPosts[1]).toContain("jumpgate_reposted=1");
  await expect(dave.getByTestId("whoami")).toHaveText("dave");
  await expect(dave.getByRole("heading", { name: "Account", exact: true })).toBeVisible();

  // With auto-create off, an unknown person is refused with a plain message.
  await page.reload();
  await hydrated(page);
  await general.getByLabel("Enable auto create user").uncheck();
  await saveSection(page, "#general-form");
  const eve = await freshPage(browser);
  await eve.goto(`${server.url}/`);
  await signInAtIdp(eve, "eve@corp.test");
  await expect(eve.getByRole("heading", { name: "Sign-in failed" })).toBeVisible();
  await expect(eve.getByText(/no Jumpgate account for eve@corp.test/)).toBeVisible();

  // Sign-ins started at the IdP's portal need the setting.
  await saml.getByLabel(/Accept sign-ins started at the identity provider/).check();
  await saveSection(page, "#saml-form");
  const portal = await freshPage(browser);
  await portal.goto(`${idp.url}/portal`);
  await portal.getByLabel("Email").fill("DAVE@corp.test");
  await portal.getByRole("button", { name: "Open Jumpgate" }).click();
  await expect(portal.getByTestId("whoami")).toHaveText("dave");

  // The administrator's test sign-in shows what the IdP sent, and signs nobody in.
  await page.getByRole("link", { name: "Test sign-in with the identity provider" }).click();
  await signInAtIdp(page, "frank@corp.test");
  await expect(page).toHaveURL(/\/admin\/settings#saml-test$/);
  const result = page.getByTestId("saml-test-result");
  await expect(result).toContainText("Accepted: every check passed.");
  await expect(result).toContainText("frank@corp.test");
  await expect(result).toContainText("has no account yet");
  await expect(page.getByTestId("whoami")).toHaveText("admin");
  await hydrated(page);

  // Two-factor: the skip for SAML sessions is stored and shown again.
  const twoFactor = page.locator("#two-factor-form");
  await twoFactor.getByLabel("Skip two-factor authentication for SAML").check();
  await twoFactor.getByLabel("Approve SSH sign-ins in the browser").check();
  await saveSection(page, "#two-factor-form");
  await page.reload();
  await hydrated(page);
  const saved = page.locator("#two-factor-form");
  await expect(saved.getByLabel("Skip two-factor authentication for SAML")).toBeChecked();
  await expect(saved.getByLabel("Approve SSH sign-ins in the browser")).toBeChecked();
  expect(server.cli(["settings", "get", "saml.skip_2fa"]).trim()).toBe("true");
  expect(server.cli(["settings", "get", "saml.ssh_browser_approval"]).trim()).toBe("true");

  // Native SSH without a password: the client shows a link, dave approves it in the browser,
  // and the gateway signs him in (and says the server he named does not exist).
  const ssh = sshAwaitingApproval(server.sshPort, "dave");
  const link = await ssh.link();
  expect(link.startsWith(`${server.url}/ssh/approve/`)).toBe(true);
  await dave.goto(link);
  await expect(dave.getByRole("heading", { name: "Approve an SSH sign-in" })).toBeVisible();
  await expect(dave.locator(".client-ip")).toHaveText("127.0.0.1");
  await dave.getByRole("button", { name: "Approve" }).click();
  await expect(dave.getByRole("heading", { name: "Approved" })).toBeVisible();
  const said = await ssh.enter();
  expect(said).toContain("no server called `no-such-server` is available to you");
  expect(said).not.toContain("Permission denied");
  await dave.goto(`${server.url}/`);
  await expect(dave.getByTestId("whoami")).toHaveText("dave");

  // Signing out ends the IdP's session too (single logout), and does not bounce straight back
  // through the IdP.
  await dave.getByRole("button", { name: "Sign out" }).click();
  await expect(dave.getByRole("heading", { name: "Signed out" })).toBeVisible();
  await expect(dave.getByText("and of your identity provider")).toBeVisible();
  await dave.getByRole("link", { name: "Sign in again" }).click();
  await signInAtIdp(dave, "dave@corp.test");
  await expect(dave.getByTestId("whoami")).toHaveText("dave");

  // The sign-in page now leads to the IdP; administrators keep a password way in.
  const admin = await freshPage(browser);
  await admin.goto(`${server.url}/login`);
  await expect(admin.getByRole("heading", { name: "Test IdP sign-in" })).toBeVisible();
  await admin.goto(`${server.url}/login/local`);
  await hydrated(admin);
  const login = new LoginPage(admin);
  await login.signIn("admin", adminPassword);
  await expect(admin.getByTestId("whoami")).toHaveText("admin");
});
