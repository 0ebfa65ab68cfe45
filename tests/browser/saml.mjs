// Walks single sign-on with SAML 2.0 in headless Chromium, against pysaml2's
// IdP (started by the Rust test): sign in as the owner → create a SAML
// connection from the IdP's metadata file (read into the form by app.js) → Test connection through the IdP's
// login page and its auto-submitting POST → enable SSO → sign out → "Sign in
// with Acme SAML" on the real sign-in page → signed in as the IdP's user.
// Usage: node saml.mjs BASE_URL IDP_URL [SCREENSHOT_DIR]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { walk } from "./lib.mjs";

const [base, idp, shots] = process.argv.slice(2);
if (!base || !idp) {
  console.error("usage: node saml.mjs BASE_URL IDP_URL [SCREENSHOT_DIR]");
  process.exit(2);
}

await walk("saml", base, shots, async ({ page, step, shot, expectText, signInAsOwner }) => {
  const atIdp = async (user) => {
    await page.waitForURL((u) => u.href.startsWith(idp));
    await page.fill("input[name=user]", user);
    // The IdP answers with a form that posts itself to Gatehouse's ACS.
    await Promise.all([page.waitForURL((u) => u.href.startsWith(base)), page.click("button[type=submit]")]);
  };

  step("sign in as the owner");
  await signInAsOwner();

  step("create a SAML connection from the IdP's metadata file (air-gapped upload)");
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "gh-md-")), "idp-metadata.xml");
  fs.writeFileSync(file, await (await fetch(`${idp}/metadata`)).text());
  await page.goto(`${base}/admin/settings/sso`);
  // One chooser, grouped by protocol; choosing shows only SAML's fields.
  await Promise.all([page.waitForURL(/preset=saml%3Aokta/), page.selectOption("#preset", "saml:okta")]);
  if (await page.locator("#new-connection input[name=client_secret]").count()) throw new Error("OpenID fields on a SAML form");
  await page.fill("#new-connection input[name=id]", "acme");
  await page.fill("#new-connection input[name=name]", "Acme SAML");
  await page.setInputFiles("#metadata-file", file);
  await page.waitForFunction(() => document.querySelector("#metadata-xml").value.includes("EntityDescriptor"));
  await Promise.all([page.waitForURL(/\/admin\/settings\/sso\/acme/), page.click("#new-connection button[type=submit]")]);
  await expectText("Connection created.");
  const acs = (await page.locator("#acs-url").textContent()).trim();
  if (acs !== `${base}/sso/saml/acme/acs`) throw new Error(`ACS URL shown: ${acs}`);
  await expectText("Okta Single Sign-On URL");
  await shot("saml-connection");

  step("test connection through the IdP");
  await page.click("#test-connection");
  await atIdp("alice");
  await expectText("Test sign-in passed");
  const claims = await page.locator("#test-claims").textContent();
  if (!claims.includes("alice@corp.example")) throw new Error(`claims shown: ${claims}`);
  await shot("saml-test-passed");

  step("enable SSO with a second excluded admin");
  await page.goto(`${base}/admin/settings/sso`);
  await page.check("#sso-settings input[name=enabled]");
  await page.fill("#sso-settings textarea[name=excluded_users]", "admin2@example.com");
  await Promise.all([page.waitForURL(/notice=sso_saved/), page.click("#sso-settings button[type=submit]")]);

  step("sign out, then sign in through the IdP from the sign-in page");
  await Promise.all([page.waitForURL(/\/login/), page.click("#sign-out")]);
  await page.click("text=Sign in with Acme SAML");
  await atIdp("bob");
  await page.locator(".who").filter({ hasText: "bob@corp.example" }).waitFor({ timeout: 10000 });
  await shot("saml-signed-in");
});
