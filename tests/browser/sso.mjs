// Walks the single sign-on pages in headless Chromium against a real
// OpenID provider (node oidc-provider, started by the Rust test):
// sign in as the owner → create a connection → map a group to admin →
// Test connection through the provider's login and consent pages → enable
// SSO with a second excluded admin → sign out → "Sign in with Corp IdP" on
// the sign-in page → signed in as the IdP's user.
// Any page error or console error (a CSP violation included) fails the run.
// Usage: node sso.mjs BASE_URL ISSUER [SCREENSHOT_DIR]
import { walk } from "./lib.mjs";

const [base, issuer, shots] = process.argv.slice(2);
if (!base || !issuer) {
  console.error("usage: node sso.mjs BASE_URL ISSUER [SCREENSHOT_DIR]");
  process.exit(2);
}

await walk("sso", base, shots, async ({ page, step, shot, expectText, signInAsOwner }) => {
  // The provider's pages: its login form (any password), then consent.
  const atProvider = async (login) => {
    for (let i = 0; i < 4 && page.url().startsWith(issuer); i++) {
      if (await page.locator("input[name=login]").count()) {
        await page.fill("input[name=login]", login);
        await page.fill("input[name=password]", "any password");
      }
      await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    }
    if (!page.url().startsWith(base)) throw new Error(`stuck at the provider: ${page.url()}`);
  };

  step("sign in as the owner");
  await signInAsOwner();

  step("create a connection");
  await page.goto(`${base}/admin/settings/security`);
  await page.click("a[href='/admin/settings/sso']");
  await expectText("No connections yet.");
  await Promise.all([page.waitForURL(/preset=oidc%3Aother/), page.selectOption("#preset", "oidc:other")]);
  await page.fill("#new-connection input[name=id]", "corp");
  await page.fill("#new-connection input[name=name]", "Corp IdP");
  await page.fill("#new-connection input[name=issuer]", issuer);
  await page.fill("#new-connection input[name=client_id]", "gatehouse");
  await page.fill("#new-connection input[name=client_secret]", "op-client-secret-for-tests-only");
  await Promise.all([page.waitForURL(/\/admin\/settings\/sso\/corp/), page.click("#new-connection button[type=submit]")]);
  await expectText("Connection created.");
  const redirect = (await page.locator("#redirect-uri").textContent()).trim();
  if (redirect !== `${base}/sso/oidc/corp/callback`) throw new Error(`redirect URI shown: ${redirect}`);

  step("map the gh-admins group to admin");
  await page.fill("#edit-connection input[name=scopes]", "openid email profile groups");
  await page.fill("#edit-connection textarea[name=role_rules]", "gh-admins = admin");
  await Promise.all([page.waitForURL(/notice=sso_updated/), page.click("#edit-connection button[type=submit]")]);
  await expectText("Connection saved.");

  step("test connection through the provider");
  await Promise.all([page.waitForURL((u) => u.href.startsWith(issuer)), page.click("#test-connection")]);
  await atProvider("alice");
  await expectText("Test sign-in passed");
  const claims = await page.locator("#test-claims").textContent();
  if (!claims.includes("alice@corp.example") || !claims.includes("admin")) throw new Error(`claims shown: ${claims}`);
  await shot("sso-test-passed");

  step("enable SSO with a second excluded admin");
  await page.goto(`${base}/admin/settings/sso`);
  await page.check("#sso-settings input[name=enabled]");
  await page.fill("#sso-settings textarea[name=excluded_users]", "admin2@example.com");
  await Promise.all([page.waitForURL(/notice=sso_saved/), page.click("#sso-settings button[type=submit]")]);
  await expectText("Single sign-on settings saved.");
  await expectText("passed");
  await shot("sso-settings");

  step("sign out, then sign in through the provider from the sign-in page");
  await Promise.all([page.waitForURL(/\/login/), page.click("#sign-out")]);
  await shot("login-with-sso");
  // The provider remembers alice from the test sign-in, so it may answer at once.
  await Promise.all([page.waitForURL((u) => !u.href.startsWith(`${base}/login`)), page.click("text=Sign in with Corp IdP")]);
  await atProvider("alice");
  await page.locator(".who").filter({ hasText: "alice@corp.example" }).waitFor({ timeout: 10000 });
  if (!/\/admin$/.test(page.url())) throw new Error(`landed on ${page.url()}`);
  await shot("signed-in-through-sso");
});
