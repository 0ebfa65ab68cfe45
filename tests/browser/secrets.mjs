// Walks a workspace's Secrets page (issue 14) in headless Chromium: the
// owner writes a secret, sees its paths and versions without any value,
// reveals one version on request, deletes and destroys versions.
// The Rust test prepares: the owner and workspace WS_ID with the secret
// `webhooks/stripe` (two versions) written over the Vault API.
// Any page error or console error (a CSP violation included) fails the run.
// Usage: node secrets.mjs BASE_URL WS_ID SECRET [SCREENSHOT_DIR]
import { walk } from "./lib.mjs";

const [base, ws, secret, shots] = process.argv.slice(2);
if (!base || !ws || !secret) {
  console.error("usage: node secrets.mjs BASE_URL WS_ID SECRET [SCREENSHOT_DIR]");
  process.exit(2);
}

await walk("secrets", base, shots, async ({ page, step, shot, expectText, signInAsOwner }) => {
  const fail = (m) => { throw new Error(m); };
  const html = async () => await page.content();

  step("sign in; the workspace page links to its Secrets");
  await signInAsOwner();
  await page.goto(`${base}/admin/workspaces/${ws}`);
  await Promise.all([page.waitForURL(/\/secrets$/), page.click("#secrets-tab")]);

  step("paths and versions are listed, values are not");
  const rows = page.locator("#secrets tbody tr[data-path='webhooks/stripe']");
  if ((await rows.count()) !== 2) fail(`${await rows.count()} version rows for webhooks/stripe`);
  if ((await html()).includes(secret)) fail("a value is on the page before Reveal");

  step("write a new version from the form");
  await page.fill("#write-secret input[name=path]", "tools/search");
  await page.fill("#write-secret textarea[name=data]", '{"api_key": "typed-in-the-console"}');
  await Promise.all([page.waitForURL(/notice=written/), page.click("#write-secret button[type=submit]")]);
  await expectText("New version written.");
  if ((await page.locator("#secrets tbody tr[data-path='tools/search']").count()) !== 1) fail("tools/search not listed");
  if ((await html()).includes("typed-in-the-console")) fail("the written value is shown back");
  await shot("secrets-list");

  step("reveal one version: the value appears, only on that answer");
  await Promise.all([
    page.waitForURL(/\/secrets\/reveal$/),
    page.click("tr[data-path='webhooks/stripe'][data-version='1'] button.reveal"),
  ]);
  const shown = await page.locator("#revealed-value").textContent();
  if (!shown.includes(secret)) fail(`revealed: ${shown}`);
  await shot("secrets-revealed");

  step("delete the current version, then destroy version 1 after confirming");
  await page.goto(`${base}/admin/workspaces/${ws}/secrets`);
  if ((await html()).includes(secret)) fail("the value stays on the page after leaving the reveal");
  await Promise.all([
    page.waitForURL(/notice=deleted/),
    page.click("tr[data-path='webhooks/stripe'][data-version='2'] button.delete"),
  ]);
  await expectText("Version deleted");
  const state2 = await page.locator("tr[data-path='webhooks/stripe'][data-version='2'] .badge").last().textContent();
  if (state2.trim() !== "deleted") fail(`version 2 is ${state2}`);
  await Promise.all([
    page.waitForURL(/\/secrets\/destroy\?/),
    page.click("tr[data-path='webhooks/stripe'][data-version='1'] button.destroy"),
  ]);
  await Promise.all([page.waitForURL(/notice=destroyed/), page.click("#confirm")]);
  const state1 = await page.locator("tr[data-path='webhooks/stripe'][data-version='1'] .badge").last().textContent();
  if (state1.trim() !== "destroyed") fail(`version 1 is ${state1}`);
  if (await page.locator("tr[data-path='webhooks/stripe'][data-version='1'] button.reveal").count()) fail("a destroyed version offers Reveal");
  await shot("secrets-after");
});
