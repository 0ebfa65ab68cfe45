// Walks Settings → Security → TLS (issue 16) in headless Chromium over
// HTTPS: the served certificate's names, issuer and validity, and, after
// the Rust test wrote a key that is not the certificate's, the refusal
// with the certificate that keeps serving.
// Usage: node tls.mjs BASE_URL [SCREENSHOT_DIR]
import { walk } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
if (!base) {
  console.error("usage: node tls.mjs BASE_URL [SCREENSHOT_DIR]");
  process.exit(2);
}

await walk("tls", base, shots, async ({ page, step, shot, signInAsOwner }) => {
  const fail = (m) => { throw new Error(m); };
  step("sign in over HTTPS; the settings tabs lead to TLS");
  await signInAsOwner();
  await page.goto(`${base}/admin/settings/security`);
  await Promise.all([page.waitForURL(/\/admin\/settings\/tls$/), page.click("p.tabs a[href='/admin/settings/tls']")]);
  const cert = page.locator("#tls-certificate");
  const names = await cert.locator("tr", { hasText: "Names" }).locator("td").textContent();
  if (!names.includes("localhost")) fail(`names: ${names}`);
  const issuer = await cert.locator("tr", { hasText: "Issuer" }).locator("td").textContent();
  if (!issuer.includes("Test CA")) fail(`issuer: ${issuer}`);
  const source = await cert.locator("tr", { hasText: "Source" }).locator("td").textContent();
  if (!source.includes("certificate files")) fail(`source: ${source}`);
  const err = page.locator("#tls-error");
  if (!(await err.count())) fail("the refused key file is not shown");
  const msg = await err.textContent();
  if (!msg.includes("do not form a usable pair") || !msg.includes("keeps serving")) fail(`error: ${msg}`);
  if (/PRIVATE KEY/.test(await page.content())) fail("key material on the page");
  await shot("tls-settings");
}, { ignoreHTTPSErrors: true });
