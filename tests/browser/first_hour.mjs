// Issue 19's first hour in headless Chromium (points 1–4 and 7): setup →
// dashboard, a failing form that keeps what was typed with a worded error
// beside the field, the user page, and the second-factor step with a
// recovery code typed under "Authenticator app".
// Usage: node first_hour.mjs BASE_URL SETUP_LINK NOW [SCREENSHOT_DIR]
import { execFileSync } from "node:child_process";
import { walk } from "./lib.mjs";

// NOW is the test server's fixed clock (Unix seconds).
const [base, setupLink, now, shots] = process.argv.slice(2);
const totp = (secret) =>
  execFileSync("oathtool", ["--totp", "-b", secret, "-N", `@${now}`]).toString().trim();
const PW = "violet-harbour-lantern-42";

await walk("first-hour", base, shots, async ({ page, step, shot, expectText, expectConsoleError }) => {
  const check = (ok, what) => { if (!ok) throw new Error(what); };

  step("setup: a mistake is a sentence beside its field, and the form keeps the input");
  await page.goto(setupLink);
  await page.fill("input[name=name]", "Olivia Owner");
  await page.fill("input[name=email]", "owner@example.com");
  await page.fill("input[name=password]", PW);
  await page.fill("input[name=password_confirm]", "not-the-same-password-1");
  expectConsoleError(/400/);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  const beside = await page.locator("label:has(input[name=password_confirm]) .field-error").textContent();
  check(beside.trim() === "The passwords do not match.", `error beside the field: ${beside}`);
  check(await page.inputValue("input[name=email]") === "owner@example.com", "e-mail kept");
  check(await page.inputValue("input[name=name]") === "Olivia Owner", "name kept");
  check(!(await page.content()).includes("password_confirm:"), "no field path");
  await shot("fh-setup-error");

  step("setup → signed in on the dashboard");
  await page.fill("input[name=password]", PW);
  await page.fill("input[name=password_confirm]", PW);
  await Promise.all([page.waitForURL(/\/admin$/), page.click("button[type=submit]")]);
  await expectText("Recent security events");
  await shot("fh-dashboard");

  step("the used setup link says to sign in or use gatehouse recover");
  expectConsoleError(/403/);
  await page.goto(setupLink);
  await expectText("Setup is complete");
  const gone = await page.locator("main").textContent();
  check(gone.includes("gatehouse recover") && !gone.includes("setup-link") && !gone.includes("`"), `used link page: ${gone}`);
  await shot("fh-link-used");

  step("a service account with a bad CIDR keeps name, scopes and allowlist");
  await page.goto(`${base}/admin/workspaces`);
  await page.fill("#create-workspace input[name=name]", "Support");
  await Promise.all([page.waitForURL(/\/admin\/workspaces\/ws_/), page.click("#create-workspace button[type=submit]")]);
  // The workspace page is in tabs: service accounts are on their own.
  await page.goto(`${page.url().split("?")[0]}?tab=accounts`);
  await page.fill("#create-sa input[name=name]", "nightly-export");
  await page.check('#create-sa input[value="read:agents"]');
  await page.fill("#create-sa textarea[name=ip_allowlist]", "10.0.0.0/8\n300.1.2.3/8");
  expectConsoleError(/422/);
  await Promise.all([page.waitForNavigation(), page.click("#create-sa button[type=submit]")]);
  check(await page.inputValue("#create-sa input[name=name]") === "nightly-export", "name kept");
  check(await page.isChecked('#create-sa input[value="read:agents"]'), "scope kept");
  check((await page.inputValue("#create-sa textarea[name=ip_allowlist]")).includes("300.1.2.3/8"), "allowlist kept");
  const saErr = await page.locator("#create-sa .field-error").textContent();
  check(saErr.includes("300.1.2.3/8") && !saErr.includes("ip_allowlist:"), `worded: ${saErr}`);
  await page.locator("#create-sa").scrollIntoViewIfNeeded();
  if (shots) await page.locator("#create-sa").screenshot({ path: `${shots}/fh-sa-error.png` });

  step("the user page: one End all sessions, edit name and role");
  await page.goto(`${base}/admin/users`);
  await page.fill("#create-user input[name=email]", "heidi@example.com");
  await page.fill("#create-user input[name=password]", "quartz-lagoon-meadow-8");
  await Promise.all([page.waitForURL(/notice=created/), page.click("#create-user button[type=submit]")]);
  await Promise.all([page.waitForURL(/\/admin\/users\/usr_/), page.click("text=heidi@example.com")]);
  check(await page.locator("button", { hasText: "End all sessions" }).count() === 1, "one End all sessions");
  await page.fill("#edit-user input[name=name]", "Heidi Analyst");
  await page.selectOption("#edit-user select[name=role]", "admin");
  await Promise.all([page.waitForURL(/notice=saved/), page.click("#edit-user button[type=submit]")]);
  await expectText("Changes saved.");
  check((await page.locator(".facts").textContent()).includes("Heidi Analyst"), "name saved");
  check((await page.locator(".facts").textContent()).includes("admin"), "role saved");
  await shot("fh-user");

  step("own user page: no reset, no unlock");
  await page.goto(`${base}/admin/users`);
  await Promise.all([page.waitForURL(/\/admin\/users\/usr_/), page.click("#users >> text=owner@example.com")]);
  check(await page.locator("#reset-password").count() === 0, "no reset on one's own page");

  step("TOTP key in groups of four; enroll");
  await page.goto(`${base}/admin/account`);
  await Promise.all([page.waitForURL(/\/mfa\/totp$/), page.click("#setup-totp")]);
  const shown = (await page.locator("#totp-secret").textContent()).trim();
  check(/^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/.test(shown), `grouped key: ${shown}`);
  const secret = shown.replace(/\s+/g, "");
  await shot("fh-totp");
  await page.fill("#confirm-totp input[name=code]", totp(secret));
  await page.click("#confirm-totp button[type=submit]");
  await page.locator("#recovery-codes li").first().waitFor();
  const code = (await page.locator("#recovery-codes li").first().textContent()).trim();

  step("MFA step: no promise of a sent code; a recovery code under Authenticator app works");
  await Promise.all([page.waitForURL(/\/login/), page.click("#sign-out")]);
  await page.fill("input[name=email]", "owner@example.com");
  await page.fill("input[name=password]", PW);
  await Promise.all([page.waitForURL(/\/login\/mfa/), page.click("button[type=submit]")]);
  const hint = await page.locator("#mfa-hint").textContent();
  check(!hint.includes("sent to you"), `no sending method is on: ${hint}`);
  await shot("fh-mfa-step");
  await page.selectOption("select[name=method]", "totp");
  await page.fill("input[name=code]", code);
  await Promise.all([page.waitForURL(/\/admin\/account/), page.click("#mfa-form button[type=submit]")]);
  await expectText("recovery code");
  await shot("fh-after-recovery");
});
