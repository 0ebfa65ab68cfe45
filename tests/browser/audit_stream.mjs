// Walks Settings → Audit → Streaming (issue 15, point 5) in headless Chromium:
// the page reached from the security settings' tabs, a webhook sink added with
// the plain form, its row with status at a glance (backlog, last delivery,
// last error), "Send test event" reaching the receiver the Rust test runs,
// editing without re-entering the secret, and deleting.
// Any page error or console error (a CSP violation included) fails the run.
// Usage: node audit_stream.mjs BASE_URL WEBHOOK_URL [SCREENSHOT_DIR]
import { walk } from "./lib.mjs";

const [base, hook, shots] = process.argv.slice(2);
if (!base || !hook) {
  console.error("usage: node audit_stream.mjs BASE_URL WEBHOOK_URL [SCREENSHOT_DIR]");
  process.exit(2);
}

await walk("audit_stream", base, shots, async ({ page, step, shot, expectText, expectConsoleError, signInAsOwner }) => {
  const fail = (m) => { throw new Error(m); };

  step("sign in as the owner and open Settings → Audit streaming");
  await signInAsOwner();
  await page.goto(`${base}/admin/settings/security`);
  await Promise.all([page.waitForURL(/audit\/streaming/), page.click("text=Audit streaming")]);
  await expectText("No sinks yet");

  step("add a webhook sink for authentication and security events");
  await page.fill("#sink-form input[name=name]", "SOC webhook");
  await page.selectOption("#sink-form select[name=kind]", "webhook");
  await page.check("#sink-form input[name=cat_authentication]");
  await page.check("#sink-form input[name=cat_security]");
  await page.fill("#sink-form input[name=webhook_url]", hook);
  await page.fill("#sink-form input[name=webhook_secret]", "console-secret-0123456789");
  await Promise.all([page.waitForURL(/notice=created/), page.click("#sink-form button[type=submit]")]);
  await expectText("Sink added");
  const row = page.locator("#sinks tbody tr").first();
  const text = await row.textContent();
  if (!/SOC webhook/.test(text) || !/webhook/.test(text)) fail(`row: ${text}`);
  if (!/authentication, security/.test(text)) fail(`categories: ${text}`);
  if (/console-secret/.test(await page.content())) fail("the secret is shown again");

  step("send a test event: the page says it was delivered");
  await Promise.all([page.waitForLoadState("load"), row.locator("button", { hasText: "Send test event" }).click()]);
  await expectText("delivered to the sink");
  // The stream passes over the events outside the sink's categories: it
  // shows "up to date" once its cursor reached the log's end.
  for (let i = 0; ; i++) {
    await page.goto(`${base}/admin/settings/audit/streaming`);
    if (/up to date/.test(await page.locator("#sinks").textContent())) break;
    if (i > 20) fail(`not up to date: ${await page.locator("#sinks").textContent()}`);
    await page.waitForTimeout(500);
  }
  await shot("audit-streaming");

  step("edit it without re-entering the secret");
  await Promise.all([page.waitForURL(/edit=snk_/), page.locator("#sinks a", { hasText: "Edit" }).first().click()]);
  const placeholder = await page.getAttribute("#sink-form input[name=webhook_secret]", "placeholder");
  if (!/leave empty to keep/.test(placeholder || "")) fail(`secret placeholder: ${placeholder}`);
  await page.fill("#sink-form input[name=name]", "SOC webhook (EU)");
  await Promise.all([page.waitForURL(/notice=saved/), page.click("#sink-form button[type=submit]")]);
  await expectText("SOC webhook (EU)");

  step("a refused form keeps the values and says what to fix");
  await page.fill("#sink-form input[name=name]", "broken");
  await page.selectOption("#sink-form select[name=kind]", "webhook");
  await page.fill("#sink-form input[name=webhook_url]", "http://x.example/");
  expectConsoleError(/400/);
  await page.click("#sink-form button[type=submit]");
  await expectText("The secret is required");
  await shot("audit-streaming-refused");

  step("delete it");
  await page.goto(`${base}/admin/settings/audit/streaming`);
  await Promise.all([page.waitForURL(/notice=deleted/), page.locator("#sinks button", { hasText: "Delete" }).first().click()]);
  await expectText("No sinks yet");
});
