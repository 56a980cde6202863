// Journey: a signed-in administrator opens the Web SSH Console, reaches a server with the
// keyboard alone, works in a real terminal (commands, resize, a second tab, a flood, vim, less,
// top), and sees a clear message when the session drops or the target is down.
import { expect, test, Page } from "@playwright/test";
import { startServer, RunningServer } from "./support/server";
import { Sshd } from "./support/sshd";
import { firstSignIn, hydrated } from "./support/pages";

const PASSWORD = "console admin passphrase";

let server: RunningServer;
let sshd: Sshd;

test.beforeAll(async () => {
  server = await startServer();
  sshd = await Sshd.start();
  sshd.authorize(server.cli(["server", "gateway-key"]));
  server.cli(["group", "add", "lab/linux"]);
  server.cli([
    "server", "add", "web01",
    "--group", "lab/linux",
    "--host", "127.0.0.1",
    "--port", String(sshd.port),
    "--login", "root",
    "--gateway-key",
  ]);
});

test.afterAll(async () => {
  await sshd?.dispose();
  await server?.stop();
});

/** The text of the terminal in the visible tab. */
function terminal(page: Page) {
  return page.locator(".tabpanel:not([hidden]) .xterm-rows");
}

/** The last `SIZE=rows cols` line the terminal shows. */
async function lastSize(page: Page): Promise<string> {
  const text = await terminal(page).innerText();
  const all = [...text.matchAll(/SIZE=(\d+ \d+)/g)];
  return all.length ? all[all.length - 1][1] : "";
}

test("keyboard-only console: open a server, run commands, resize, two tabs, flood, drop", async ({ page }) => {
  await firstSignIn(page, server.url, "admin", server.adminPassword, PASSWORD);
  await page.getByRole("link", { name: "Open Web SSH Console" }).click();
  await expect(page).toHaveURL(/\/console$/);
  await hydrated(page);

  // Focus starts in the navigator; the keyboard alone reaches web01.
  const tree = page.getByRole("tree");
  await expect(tree).toBeFocused();
  await expect(page.getByTestId("nav-path")).toHaveText("/");
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("nav-path")).toHaveText("/lab");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("nav-path")).toHaveText("/lab/linux");
  await page.keyboard.press("ArrowDown");
  await expect(tree.getByRole("treeitem", { selected: true })).toContainText("web01");
  await page.keyboard.press("Enter");

  const tabs = page.getByRole("tab");
  await expect(tabs).toHaveCount(1);
  await expect(tabs.first()).toContainText("connected");

  // A real shell: arithmetic, colours and UTF-8 pass through.
  await page.keyboard.type("echo $((6*7)); printf '\\342\\234\\223 done\\n'\n");
  await expect(terminal(page)).toContainText("42");
  await expect(terminal(page)).toContainText("✓ done");

  // The terminal follows the window's size.
  await page.keyboard.type("echo SIZE=$(stty size)\n");
  await expect(terminal(page)).toContainText("SIZE=");
  const before = await lastSize(page);
  await page.setViewportSize({ width: 900, height: 600 });
  await page.waitForTimeout(500);
  await page.keyboard.type("clear; echo SIZE=$(stty size)\n");
  await expect.poll(() => lastSize(page)).not.toBe(before);
  await expect.poll(() => lastSize(page)).not.toBe("");

  // F6 goes back to the navigator; Enter opens a second tab on the same server.
  await page.keyboard.press("F6");
  await expect(tree).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(tabs).toHaveCount(2);
  await expect(tabs.nth(1)).toContainText("connected");

  // A flood (a few megabytes at full speed): the page keeps answering meanwhile, and the
  // terminal takes commands again once it has drawn everything.
  await page.keyboard.type("yes flood-line | head -n 400000; clear; echo calm-$((2+3))\n");
  await page.waitForTimeout(1000);
  await tabs.first().click();
  await expect(tabs.first()).toHaveAttribute("aria-selected", "true");
  await tabs.nth(1).click();
  await expect(terminal(page)).toContainText("calm-5", { timeout: 60_000 });

  // Full-screen programs: vim writes a file, less pages to the end, top draws and quits.
  await page.keyboard.type("vim -u NONE -N /tmp/jumpgate-console-vim.txt\n");
  // vim's own status line, not the echoed command.
  await expect(terminal(page)).toContainText("[New]");
  await page.keyboard.type("ihello from vim");
  await page.keyboard.press("Escape");
  await page.keyboard.type(":wq\n");
  // Typing before the shell's prompt is back would mix keys into vim's exit.
  await page.waitForTimeout(1000);
  await page.keyboard.type("clear; cat /tmp/jumpgate-console-vim.txt; rm /tmp/jumpgate-console-vim.txt\n");
  await expect(terminal(page)).toContainText("hello from vim");
  await page.keyboard.type("clear; seq 1 500 | less\n");
  // The rows 9 to 13 as less shows them (the terminal's text has no line breaks).
  await expect(terminal(page)).toContainText("910111213");
  await page.keyboard.type("G");
  await expect(terminal(page)).toContainText("(END)");
  await expect(terminal(page)).toContainText("500");
  await page.keyboard.type("q");
  await page.waitForTimeout(500);
  await page.keyboard.type("top\n");
  await expect(terminal(page)).toContainText("load average");
  await page.keyboard.type("q");
  await page.waitForTimeout(500);
  await page.keyboard.type("clear; echo back-$((3+4))\n");
  await expect(terminal(page)).toContainText("back-7");

  // The session drops: the tab says so.
  await page.keyboard.type("kill -9 $PPID\n");
  await expect(tabs.nth(1)).toContainText("closed");
  await expect(page.locator(".tabpanel:not([hidden])").getByTestId("closed-reason")).toContainText(
    "ended",
  );

  // The target is down: Reconnect tells why.
  await sshd.stop();
  await page.locator(".tabpanel:not([hidden])").getByRole("button", { name: "Reconnect" }).click();
  await expect(page.locator(".tabpanel:not([hidden])").getByTestId("closed-reason")).toContainText(
    "cannot reach",
  );
});
