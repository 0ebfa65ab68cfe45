// Walks issue 19's points 10 and 11 in headless Chromium: the dashboard's
// sign-in charts (SVG from the server, no script needed), the audit log with
// names, ids on hover, details as small tables and dates on one line, the
// SSO page's provider chooser showing only the chosen protocol's fields, and
// an unreachable identity provider described in words.
// The Rust test prepares: owner, bob, failed sign-ins, bob's refused calls,
// and the OpenID connection `down` whose issuer refuses connections.
// Any page error or console error (a CSP violation included) fails the run.
// Usage: node console_c.mjs BASE_URL [SCREENSHOT_DIR]
import { walk } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
if (!base) {
  console.error("usage: node console_c.mjs BASE_URL [SCREENSHOT_DIR]");
  process.exit(2);
}

await walk("console_c", base, shots, async ({ page, step, shot, expectText, expectConsoleError, signInAsOwner }) => {
  const fail = (m) => { throw new Error(m); };

  step("sign in as the owner: the dashboard draws sign-ins and failures");
  await signInAsOwner();
  for (const id of ["chart-24h", "chart-7d"]) {
    const chart = page.locator(`#${id}`);
    const n = await chart.locator("svg rect.bar-ok").count();
    if (n !== (id === "chart-24h" ? 24 : 7)) fail(`${id}: ${n} sign-in bars`);
    const caption = await chart.locator("figcaption").textContent();
    if (!/\d+ sign-ins, [1-9]\d* failed/.test(caption)) fail(`${id} caption: ${caption}`);
    const box = await chart.locator("svg").boundingBox();
    if (!box || box.width < 300 || box.height < 100) fail(`${id} drawn at ${JSON.stringify(box)}`);
  }
  // A failed bar is visibly tall, and says its count on hover.
  const tallest = await page.locator("#chart-24h rect.bar-bad").evaluateAll(
    (rs) => Math.max(...rs.map((r) => r.getBoundingClientRect().height)));
  if (tallest < 20) fail(`the failures bar is ${tallest}px tall`);
  const titles = await page.locator("#chart-24h rect.bar-bad title").allTextContents();
  if (!titles.some((t) => /^[1-9]\d* failures, the hour from /.test(t))) fail(`bar titles: ${titles.slice(-3)}`);
  await shot("dashboard");

  step("the audit log: names, ids on hover, details as a table, dates on one line");
  await page.click("a[href='/admin/audit']");
  const created = page.locator("#audit tr", { hasText: "user.create" }).first();
  const target = created.locator("td.named").nth(1);
  if (!(await target.textContent()).includes("bob@example.com")) fail(`target: ${await target.textContent()}`);
  if (!/^usr_/.test(await target.getAttribute("title"))) fail("no id on hover");
  const denied = page.locator("#audit tr", { hasText: "access.denied" }).first();
  const count = await denied.locator("table.kv tr", { hasText: "count" }).locator("td").textContent();
  if (count.trim() !== "3") fail(`folded denial count: ${count}`);
  // Every date on one line: each time cell is one line of text tall.
  const heights = await page.locator("#audit td time").evaluateAll(
    (ts) => ts.map((t) => t.getBoundingClientRect().height));
  if (!heights.length || Math.max(...heights) > 24) fail(`time heights: ${heights}`);
  if (await page.locator("#audit td", { hasText: '{"' }).count()) fail("raw JSON in the table");
  await shot("audit");

  step("SSO: one provider chooser, grouped by protocol, only the chosen protocol's fields");
  await page.goto(`${base}/admin/settings/sso`);
  const labels = await page.locator("#preset option").allTextContents();
  if (new Set(labels).size !== labels.length) fail(`a provider listed twice: ${labels}`);
  if (!labels.includes("Google (OpenID Connect)") || !labels.includes("Google Workspace (SAML 2.0)")) fail(`${labels}`);
  await Promise.all([page.waitForURL(/preset=saml%3Aokta/), page.selectOption("#preset", "saml:okta")]);
  const form = page.locator("#new-connection");
  if (!(await form.locator("input[name=metadata_url]").isVisible())) fail("no metadata URL for SAML");
  if (await form.locator("input[name=client_secret]").count()) fail("an OpenID field on the SAML form");
  await expectText("Okta Single Sign-On URL");
  await shot("sso-saml");
  await Promise.all([page.waitForURL(/preset=oidc%3Agoogle/), page.selectOption("#preset", "oidc:google")]);
  if (await form.locator("input[name=metadata_url]").count()) fail("a SAML field on the OpenID form");
  if (!(await form.locator("input[name=client_secret]").isVisible())) fail("no client secret for OpenID");
  await expectText("https://accounts.google.com");
  await shot("sso-oidc-google");

  step("an unreachable identity provider says what failed");
  await page.goto(`${base}/admin/settings/sso/down`);
  expectConsoleError(/502/);
  await Promise.all([page.waitForLoadState("load"), page.click("#test-connection")]);
  await expectText("the connection was refused");
  if (await page.getByText("Request failed").count()) fail("still 'Request failed'");
  await shot("sso-unreachable");
});
