// Walks the console in headless Chromium through the real pages:
// setup link → owner creation (signed in at once) → create a user (and find it with the
// live search) → the audit log shows it → enroll an authenticator app (codes
// from oathtool) → sign out → sign in with password and code → sign-out.
// Any page error or console error (a CSP violation included) fails the run.
// Usage: node console.mjs BASE_URL SETUP_LINK [SCREENSHOT_DIR]
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";

// The code an authenticator app would show `ahead` seconds from now.
const totp = (secret, ahead = 0) =>
  execFileSync("oathtool", ["--totp", "-b", secret, "-N", `@${Math.floor(Date.now() / 1000) + ahead}`]).toString().trim();

const [base, setupLink, shots] = process.argv.slice(2);
if (!base || !setupLink) {
  console.error("usage: node console.mjs BASE_URL SETUP_LINK [SCREENSHOT_DIR]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const problems = [];
const step = (m) => console.log(`- ${m}`);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  const shot = async (name) => { if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); };
  const expectText = async (text) => {
    await page.getByText(text, { exact: false }).first().waitFor({ timeout: 5000 });
  };

  step("setup link");
  await page.goto(setupLink);
  await expectText("Create the owner account");
  await shot("setup");
  await page.fill("input[name=name]", "Olivia Owner");
  await page.fill("input[name=email]", "owner@example.com");
  await page.fill("input[name=password]", "violet-harbour-lantern-42");
  await page.fill("input[name=password_confirm]", "violet-harbour-lantern-42");
  // Setup signs the owner in: the console's dashboard, not a sign-in form.
  await Promise.all([page.waitForURL(/\/admin$/), page.click("button[type=submit]")]);
  await expectText("Recent security events");
  await shot("dashboard");

  step("create a user");
  await page.goto(`${base}/admin/users`);
  await page.fill("#create-user input[name=email]", "heidi@example.com");
  await page.fill("#create-user input[name=name]", "Heidi Analyst");
  await page.fill("#create-user input[name=password]", "quartz-lagoon-meadow-8");
  await Promise.all([page.waitForURL(/notice=created/), page.click("#create-user button[type=submit]")]);
  await expectText("User created.");

  step("live search (htmx-style script)");
  await page.fill("input[name=q]", "heidi");
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll("#users tbody tr");
    return rows.length === 1 && rows[0].textContent.includes("heidi@example.com");
  }, null, { timeout: 5000 });
  await shot("users");

  step("audit log shows it");
  await page.goto(`${base}/admin/audit?action=user.create`);
  await expectText("heidi@example.com");
  const cell = await page.locator("#audit tbody tr").first().textContent();
  if (!cell.includes("user.create") || !cell.includes("owner@example.com")) {
    throw new Error(`audit row does not show the creation: ${cell}`);
  }
  await shot("audit");

  step("workspace: create, add a member, an API app and a key shown once");
  await page.goto(`${base}/admin/workspaces`);
  await page.fill("#create-workspace input[name=name]", "Support");
  await Promise.all([page.waitForURL(/\/admin\/workspaces\/ws_/), page.click("#create-workspace button[type=submit]")]);
  await page.fill("#add-member input[name=email]", "heidi@example.com");
  await page.selectOption("#add-member select[name=role]", "analyst");
  await Promise.all([page.waitForNavigation(), page.click("#add-member button[type=submit]")]);
  await expectText("heidi@example.com");
  await page.goto(`${page.url().split("?")[0]}?tab=apps`);
  await page.fill("#create-app input[name=name]", "ci");
  await page.check('#create-app input[value="read:agents"]');
  await page.check('#create-app input[value="deploy:model"]');
  await Promise.all([page.waitForNavigation(), page.click("#create-app button[type=submit]")]);
  await expectText("read:agents deploy:model");
  await Promise.all([page.waitForNavigation(), page.click(".new-key button[type=submit]")]);
  const key = (await page.locator("#secret-value").textContent()).trim();
  if (!/^ghk_[0-9A-Za-z]{49}$/.test(key)) throw new Error(`no API key shown: ${key}`);
  await shot("workspace-key");
  const verify = await fetch(`${base}/auth/verify?scope=deploy:model`, { headers: { authorization: `Bearer ${key}` } });
  if (verify.status !== 200) throw new Error(`the new key does not verify: ${verify.status}`);
  const keyId = (await page.locator("#secret-once h2").textContent()).match(/key_[0-9a-f]{20}/)[0];
  await page.goto(page.url().replace(/\/apps\/.*$/, ""));
  if ((await page.content()).includes(key)) throw new Error("the key is shown again on the next visit");
  step("deleting a key just used warns first");
  await page.click(`table.keys a[href$="/keys/${keyId}/delete"]`);
  await expectText("used in the last 24 hours");
  await shot("key-delete-confirm");
  await Promise.all([page.waitForNavigation(), page.click("#confirm")]);
  const after = await fetch(`${base}/auth/verify?scope=deploy:model`, { headers: { authorization: `Bearer ${key}` } });
  if (after.status !== 401) throw new Error(`a deleted key still verifies: ${after.status}`);

  step("enroll an authenticator app");
  await page.goto(`${base}/admin/account`);
  await Promise.all([page.waitForURL(/\/mfa\/totp$/), page.click("#setup-totp")]);
  await page.locator("img.qr").waitFor();
  // Shown in groups of four; the key itself has no spaces.
  const secret = (await page.locator("#totp-secret").textContent()).replace(/\s+/g, "");
  if (secret.length !== 32) throw new Error(`TOTP key not 32 characters: ${secret}`);
  await shot("totp-enroll");
  await page.fill("#confirm-totp input[name=code]", totp(secret));
  await page.click("#confirm-totp button[type=submit]");
  await page.locator("#recovery-codes li").first().waitFor();
  const codes = await page.locator("#recovery-codes li").count();
  if (codes !== 10) throw new Error(`expected 10 recovery codes, saw ${codes}`);
  await shot("recovery-codes");

  step("sign out, then sign in with password and code");
  await Promise.all([page.waitForURL(/\/login/), page.click("#sign-out")]);
  await page.fill("input[name=email]", "owner@example.com");
  await page.fill("input[name=password]", "violet-harbour-lantern-42");
  await Promise.all([page.waitForURL(/\/login\/mfa/), page.click("button[type=submit]")]);
  await shot("mfa-step");
  // The next step's code: newer than the one used to enroll, within the ±1 window.
  await page.fill("input[name=code]", totp(secret, 30));
  await Promise.all([page.waitForURL(/\/admin$/), page.click("button[type=submit]")]);
  await expectText("Recent security events");
  await page.goto(`${base}/admin/account`);
  await expectText("10 recovery codes left");

  step("sign out");
  await Promise.all([page.waitForURL(/\/login/), page.click("#sign-out")]);
  await page.goto(`${base}/admin`);
  if (!/\/login/.test(page.url())) throw new Error(`still signed in: ${page.url()}`);
} catch (e) {
  problems.push(e.stack || String(e));
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("browser walk-through passed");
