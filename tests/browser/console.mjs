// Walks the console in headless Chromium through the real pages:
// setup link → owner creation → sign-in → create a user (and find it with the
// live search) → the audit log shows it → sign-out. Any page error or console
// error (a CSP violation included) fails the run.
// Usage: node console.mjs BASE_URL SETUP_LINK [SCREENSHOT_DIR]
import { chromium } from "playwright-core";

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
  await Promise.all([page.waitForURL(/\/login/), page.click("button[type=submit]")]);

  step("sign in");
  await expectText("Sign in");
  await page.fill("input[name=email]", "owner@example.com");
  await page.fill("input[name=password]", "violet-harbour-lantern-42");
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
