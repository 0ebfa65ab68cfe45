// Issue 19, points 4 and 6 in headless Chromium: an administrator sets a
// temporary password on the user page (the box ticked by default), the user
// list and page say "must change password", the user's next sign-in asks for
// a new password before any session exists; then "Confirm it's you" in the
// middle of second-factor and SSO forms: a form without a secret completes
// at once, one with a password, a code or a client secret comes back filled
// in, highlighted, saying what to retype.
// Usage: node first_hour_c.mjs BASE_URL USER_ID [SCREENSHOT_DIR]
// It prints "ADVANCE <seconds>" when the server's clock must move and
// "TOTP <secret>" when it needs the current code; both wait for a line on
// stdin (tests/first_hour_c.rs answers).
import { createInterface } from "node:readline";
import { walk } from "./lib.mjs";

const [base, userId, shots] = process.argv.slice(2);
if (!base || !userId) {
  console.error("usage: node first_hour_c.mjs BASE_URL USER_ID [SCREENSHOT_DIR]");
  process.exit(2);
}
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const advance = async (secs) => { console.log(`ADVANCE ${secs}`); await lines.next(); };
const totp = async (secret) => { console.log(`TOTP ${secret}`); return (await lines.next()).value.trim(); };
const check = (ok, what) => { if (!ok) throw new Error(what); };
const OWNER_PW = "violet-harbour-lantern-42";
const TEMP = "tide-copper-willow-31";
const CHOSEN = "harbour-lichen-ember-58";

await walk("first hour (c)", base, shots, async (t) => {
  const { page } = t;
  await t.signInAsOwner();

  t.step("point 4: the user page's reset is temporary unless unticked");
  await page.goto(`${base}/admin/users/${userId}`);
  check(await page.isChecked("#reset-temporary"), "the box is ticked by default");
  await t.expectText("User must change password at next sign-in");
  await page.fill("#reset-password input[name=password]", TEMP);
  await Promise.all([page.waitForURL(/notice=reset_temporary/), page.click("#reset-password button[type=submit]")]);
  await t.expectText("Temporary password set");
  check((await page.locator("#user-status").textContent()).includes("must change password"), "the page says so");
  await t.shot("c-user-temporary");
  await page.goto(`${base}/admin/users`);
  const row = await page.locator("tr", { hasText: "dana@example.com" }).textContent();
  check(row.includes("must change password"), `the list says so: ${row}`);
  await t.shot("c-users-list");

  t.step("point 4: the user's next sign-in asks for a new password first");
  const other = await page.context().browser().newContext({ viewport: { width: 1280, height: 900 } });
  const dana = await other.newPage();
  await dana.goto(`${base}/login`);
  await dana.fill("input[name=email]", "dana@example.com");
  await dana.fill("input[name=password]", TEMP);
  await Promise.all([dana.waitForURL(/\/login\/password/), dana.click("button[type=submit]")]);
  const names = (await other.cookies()).map((c) => c.name);
  check(!names.includes("gh_session"), `no session before the new password: ${names}`);
  check(names.includes("gh_pwstep"), `the step cookie: ${names}`);
  await dana.getByText("Choose a new password").first().waitFor();
  if (shots) await dana.screenshot({ path: `${shots}/c-choose-password.png`, fullPage: true });
  await dana.fill("#pwstep-form input[name=password]", TEMP);
  await dana.fill("#pwstep-form input[name=password_confirm]", TEMP);
  t.expectConsoleError(/400/);
  await Promise.all([dana.waitForNavigation(), dana.click("#pwstep-form button[type=submit]")]);
  await dana.getByText("must differ from the temporary password").first().waitFor();
  if (shots) await dana.screenshot({ path: `${shots}/c-choose-password-refused.png`, fullPage: true });
  await dana.fill("#pwstep-form input[name=password]", CHOSEN);
  await dana.fill("#pwstep-form input[name=password_confirm]", CHOSEN);
  // A user without admin rights lands on their account page.
  await Promise.all([dana.waitForURL(/\/admin\/account$/), dana.click("#pwstep-form button[type=submit]")]);
  check((await other.cookies()).some((c) => c.name === "gh_session"), "signed in after the new password");
  if (shots) await dana.screenshot({ path: `${shots}/c-after-new-password.png`, fullPage: true });
  await other.close();
  await page.goto(`${base}/admin/users/${userId}`);
  check(!(await page.locator("#user-status").textContent()).includes("must change password"), "the flag is gone");

  t.step("point 6: a second-factor form without a secret completes after Confirm it's you");
  await advance(700);
  await page.goto(`${base}/admin/account`);
  await Promise.all([page.waitForURL(/\/admin\/reauth\?/), page.click("#setup-totp")]);
  await t.expectText("to set up an authenticator app");
  await page.fill("#reauth-form input[name=password]", OWNER_PW);
  await Promise.all([page.waitForURL(/\/admin\/account\/mfa\/totp$/), page.click("#reauth-form button[type=submit]")]);
  const secret = (await page.locator("#totp-secret").textContent()).replace(/\s+/g, "");
  await page.fill("#confirm-totp input[name=code]", await totp(secret));
  await Promise.all([page.waitForNavigation(), page.click("#confirm-totp button[type=submit]")]);
  await t.expectText("Your recovery codes");

  t.step("point 6: one with a password and a code comes back filled in, saying what to retype");
  await advance(700);
  await page.goto(`${base}/admin/account`);
  await page.fill("#recovery-new input[name=current_password]", OWNER_PW);
  await page.selectOption("#recovery-new select[name=method]", "recovery_code");
  await page.fill("#recovery-new input[name=code]", "0000-0000-0000-0000");
  await Promise.all([page.waitForURL(/\/admin\/reauth\?/), page.click("#recovery-new button")]);
  await t.expectText("to make new recovery codes");
  check((await page.locator('.topbar nav a[aria-current="page"]').textContent()).includes("My account"), "nav marks My account");
  await page.fill("#reauth-form input[name=password]", OWNER_PW);
  await page.fill("#reauth-form input[name=code]", await totp(secret));
  await Promise.all([page.waitForURL(/\/admin\/account\?resumed=/), page.click("#reauth-form button[type=submit]")]);
  const notice = await page.locator("#recovery-new #resumed").textContent();
  check(notice.includes("Signed in again") && notice.includes("to make new recovery codes"), `notice: ${notice}`);
  check(notice.includes("Retype your password and a current code"), `notice: ${notice}`);
  check((await page.locator("#recovery-new select[name=method]").inputValue()) === "recovery_code", "the method is kept");
  check((await page.locator("#recovery-new input[name=current_password]").inputValue()) === "", "no password kept");
  check((await page.locator("#recovery-new input[name=code]").inputValue()) === "", "no code kept");
  await t.shot("c-resumed-mfa");
  await advance(30);
  await page.fill("#recovery-new input[name=current_password]", OWNER_PW);
  await page.selectOption("#recovery-new select[name=method]", "totp");
  await page.fill("#recovery-new input[name=code]", await totp(secret));
  await Promise.all([page.waitForNavigation(), page.click("#recovery-new button")]);
  await t.expectText("Your recovery codes");
  await t.shot("c-resumed-mfa-done");

  t.step("point 6: an SSO connection form keeps every field but the client secret, and says so");
  await advance(700);
  await page.goto(`${base}/admin/settings/sso?preset=oidc:other`);
  await page.fill("#new-connection input[name=id]", "corp");
  await page.fill("#new-connection input[name=name]", "Corp SSO");
  await page.fill("#new-connection input[name=issuer]", "https://idp.corp.example");
  await page.fill("#new-connection input[name=client_id]", "gatehouse-client");
  await page.fill("#new-connection input[name=client_secret]", "s3cret-value-typed");
  await Promise.all([page.waitForURL(/\/admin\/reauth\?/), page.click("#new-connection button[type=submit]")]);
  await t.expectText("to add this connection");
  await page.fill("#reauth-form input[name=password]", OWNER_PW);
  await page.fill("#reauth-form input[name=code]", await totp(secret));
  await Promise.all([page.waitForURL(/\/admin\/settings\/sso\?resumed=/), page.click("#reauth-form button[type=submit]")]);
  const sso = await page.locator("#new-connection #resumed").textContent();
  check(sso.includes("to add this connection") && sso.includes("Retype the client secret"), `notice: ${sso}`);
  for (const [n, v] of [["id", "corp"], ["name", "Corp SSO"], ["issuer", "https://idp.corp.example"], ["client_id", "gatehouse-client"]]) {
    check((await page.locator(`#new-connection input[name=${n}]`).inputValue()) === v, `${n} kept`);
  }
  check((await page.locator("#new-connection input[name=client_secret]").inputValue()) === "", "the secret is not kept");
  check(!(await page.content()).includes("s3cret-value-typed"), "the secret is nowhere on the page");
  await t.shot("c-resumed-sso");
  lines.return?.();
  process.stdin.destroy();
});
