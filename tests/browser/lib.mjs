// Shared by the SSO walk-throughs: Debian's Chromium through playwright-core
// (never a downloaded browser), a page that fails the run on any page error
// or console error of ours (a CSP violation included), and screenshots.
import { chromium } from "playwright-core";

// `opts.ignoreHTTPSErrors`: a test server's certificate no browser trusts.
export async function walk(name, base, shots, body, opts = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const problems = [];
  const expected = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 },
                                       ignoreHTTPSErrors: !!opts.ignoreHTTPSErrors });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The identity provider's own pages are not ours to judge.
    if (m.type() !== "error" || !page.url().startsWith(base)) return;
    // A page answered with an error status on purpose (the test said so).
    const i = expected.findIndex((re) => re.test(m.text()));
    if (i >= 0) expected.splice(i, 1);
    else problems.push(`console: ${m.text()}`);
  });
  const t = {
    page,
    step: (m) => console.log(`- ${m}`),
    shot: async (n) => { if (shots) await page.screenshot({ path: `${shots}/${n}.png`, fullPage: true }); },
    // The next console error matching `re` is expected (e.g. a 422 page).
    expectConsoleError: (re) => expected.push(re),
    expectText: async (text) => { await page.getByText(text, { exact: false }).first().waitFor({ timeout: 5000 }); },
    signInAsOwner: async () => {
      await page.goto(`${base}/login`);
      await page.fill("input[name=email]", "owner@example.com");
      await page.fill("input[name=password]", "violet-harbour-lantern-42");
      await Promise.all([page.waitForURL(/\/admin$/), page.click("button[type=submit]")]);
    },
  };
  try {
    await body(t);
  } catch (e) {
    problems.push(e.stack || String(e));
    await t.shot(`${name}-failure`).catch(() => {});
  } finally {
    await browser.close();
  }
  if (problems.length) {
    console.error(problems.join("\n"));
    process.exit(1);
  }
  console.log(`${name} walk-through passed`);
}
