// Issue 19, points 5, 6, 8 and 9 in headless Chromium: the workspaces page
// for a platform admin with none, a workspace in tabs, an API app refused
// without scopes or with a taken name, a key on the copy-once panel (Copy
// button, how to use it, no overlap with the tabs), "Confirm it's you" that
// says what for and completes the key it interrupted, and the keys page
// under its new name with the token-signing keys.
// Usage: node first_hour_b.mjs BASE_URL [SCREENSHOT_DIR]
// It prints "ADVANCE <seconds>" when the server's clock must move and waits
// for a line on stdin (tests/first_hour_b.rs answers).
import { createInterface } from "node:readline";
import { walk } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
if (!base) {
  console.error("usage: node first_hour_b.mjs BASE_URL [SCREENSHOT_DIR]");
  process.exit(2);
}
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const advance = async (secs) => { console.log(`ADVANCE ${secs}`); await lines.next(); };
const check = (ok, what) => { if (!ok) throw new Error(what); };

await walk("first hour (b)", base, shots, async (t) => {
  const { page } = t;
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await t.signInAsOwner();

  t.step("point 9: the navigation names API access and encryption keys");
  await t.expectText("Workspaces & API access");
  await t.expectText("Encryption keys");

  t.step("point 8: a platform admin with no workspace is told how to start, not that they are no member");
  await page.click("text=Workspaces & API access");
  await t.expectText("No workspaces yet");
  check(!(await page.content()).includes("not a member of any workspace"), "told they are not a member");
  check(await page.isChecked('#create-workspace input[name=join]'), "membership is offered, ticked");
  await t.shot("b-workspaces-empty");
  await page.fill("#create-workspace input[name=name]", "Support");
  await Promise.all([page.waitForURL(/\/admin\/workspaces\/ws_[^?]+\?tab=members$/), page.click("#create-workspace button[type=submit]")]);
  const ws = page.url().split("?")[0];
  await t.expectText("owner@example.com");
  const tabs = await page.locator("#ws-tabs a").allTextContents();
  check(tabs.join("|") === "Members|Roles and groups|API apps and keys|Service accounts|Widget keys|Settings|Secrets", `tabs: ${tabs}`);
  check((await page.locator('#ws-tabs a[aria-current="page"]').textContent()) === "Members", "Members tab marked");
  for (const tab of ["members", "roles", "apps", "accounts", "widgets", "settings"]) {
    await page.goto(`${ws}?tab=${tab}`);
    const h = await page.evaluate(() => document.documentElement.scrollHeight);
    t.step(`  tab ${tab}: ${h} px tall`);
    check(h < 2600, `tab ${tab} is ${h} px tall`);
  }
  await page.goto(`${ws}?tab=members`);
  await t.shot("b-workspace-members");

  t.step("point 5: an API app without scopes, then one with a taken name, are refused in words");
  await page.click('#ws-tabs a:text("API apps and keys")');
  await page.fill("#create-app input[name=name]", "ci");
  t.expectConsoleError(/422/);
  await Promise.all([page.waitForNavigation(), page.click("#create-app button[type=submit]")]);
  await t.expectText("Choose at least one scope");
  await t.shot("b-app-no-scope");
  await page.goto(`${ws}?tab=apps`);
  await page.fill("#create-app input[name=name]", "ci");
  await page.check('#create-app input[value="read:agents"]');
  await Promise.all([page.waitForURL(/created=app_/), page.click("#create-app button[type=submit]")]);
  await t.expectText("API app \u201cci\u201d created");
  await page.fill("#create-app input[name=name]", "CI");
  await page.check('#create-app input[value="read:agents"]');
  t.expectConsoleError(/409/);
  await Promise.all([page.waitForNavigation(), page.click("#create-app button[type=submit]")]);
  await t.expectText("already exists in this workspace");

  t.step("point 5: the copy-once panel: Copy button, how to use it, clear of the tabs");
  await page.goto(`${ws}?tab=apps`);
  await Promise.all([page.waitForURL(/shown=/), page.click(".new-key button[type=submit]")]);
  const key = (await page.locator("#secret-value").textContent()).trim();
  check(/^ghk_/.test(key), `no key shown: ${key}`);
  await page.click("#copy-secret");
  await page.locator("#copy-secret:text('Copied')").waitFor({ timeout: 3000 });
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === key, "the Copy button copies the key");
  const usage = await page.locator("#secret-usage").textContent();
  check(usage.includes(`Authorization: Bearer ${key}`), `usage: ${usage}`);
  check(usage.includes(`${base}/auth/verify?scope=read:agents&workspace=`), `usage: ${usage}`);
  const panel = await page.locator("#secret-once").boundingBox();
  const bar = await page.locator("#ws-tabs").boundingBox();
  check(panel.y + panel.height <= bar.y, `the panel (bottom ${panel.y + panel.height}) overlaps the tabs (top ${bar.y})`);
  const verify = await fetch(`${base}/auth/verify?scope=read:agents`, { headers: { authorization: `Bearer ${key}` } });
  check(verify.status === 200, `the example call answers ${verify.status}`);
  await t.shot("b-copy-once");

  t.step("point 6: Confirm it's you says what for, keeps the form and completes it");
  await advance(700);
  await page.goto(`${ws}?tab=apps`);
  await page.fill(".new-key input[name=name]", "runner");
  await Promise.all([page.waitForURL(/\/admin\/reauth\?/), page.click(".new-key button[type=submit]")]);
  await t.expectText("Confirm your password to create an API key.");
  check((await page.locator('.topbar nav a[aria-current="page"]').textContent()).includes("Workspaces"), "nav marks Workspaces");
  await t.shot("b-reauth");
  await page.fill("#reauth-form input[name=password]", "violet-harbour-lantern-42");
  await Promise.all([page.waitForURL(/\/admin\/workspaces\/ws_.*shown=/), page.click("#reauth-form button[type=submit]")]);
  await t.expectText("API key runner");
  check(/^ghk_/.test((await page.locator("#secret-value").textContent()).trim()), "the interrupted key was made");
  await t.shot("b-reauth-completed");

  t.step("point 9: the keys page shows the token-signing keys");
  await page.click("text=Encryption keys");
  await t.expectText("Token-signing keys");
  const row = await page.locator("#signing-keys tbody tr").first().textContent();
  check(row.includes("RS256") && row.includes("signing") && row.includes("next rotation"), `signing key row: ${row}`);
  await t.shot("b-keys");
  lines.return?.();
  process.stdin.destroy();
});
