// Walks one workspace's access-control pages in headless Chromium: rename;
// a user created into the workspace; a custom role given to that member; a
// group with a role and the member; an API app whose scopes are edited
// (its key follows at once); a service account with an IP allowlist, edited,
// given a new secret (the old one stops), deleted; a widget key shown once
// and deleted; each deletion after its confirmation. Credentials are tried
// against the running server from Node (no browser cookies) to prove each
// change bites. Any page error or console error of ours fails the run.
// Usage: node access.mjs BASE_URL [SCREENSHOT_DIR]
import { walk } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
if (!base) {
  console.error("usage: node access.mjs BASE_URL [SCREENSHOT_DIR]");
  process.exit(2);
}

const verify = async (key, scope) =>
  (await fetch(`${base}/auth/verify?scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: `Bearer ${key}`, accept: "application/json" },
  })).status;

const grant = async (id, secret) =>
  (await fetch(`${base}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: id, client_secret: secret }),
  })).status;

const expectEq = (what, got, want) => {
  if (got !== want) throw new Error(`${what}: got ${got}, want ${want}`);
};

await walk("access", base, shots, async ({ page, step, shot, expectText, expectConsoleError, signInAsOwner }) => {
  page.setDefaultTimeout(10000);
  const submit = (form) => Promise.all([page.waitForNavigation(), page.click(`${form} button[type=submit]`)]);
  const confirm = async () => {
    await Promise.all([page.waitForNavigation(), page.click("#confirm")]);
  };
  const secretShown = async () => {
    const s = (await page.textContent("#secret-value")).trim();
    return s;
  };

  step("sign in as the owner, create and rename a workspace");
  await signInAsOwner();
  await page.goto(`${base}/admin/workspaces`);
  await page.fill("#create-workspace input[name=name]", "Agents");
  await Promise.all([page.waitForURL(/\/admin\/workspaces\/ws_/), page.click("#create-workspace button[type=submit]")]);
  const wsUrl = page.url().split("?")[0];
  // The workspace page is in tabs (issue 19 point 8): each form is on its own.
  const tab = (t) => page.goto(`${wsUrl}?tab=${t}`);
  await tab("settings");
  await page.fill("#rename input[name=name]", "Agents team");
  await submit("#rename");
  await page.locator("h1", { hasText: "Agents team" }).waitFor();
  await page.fill("#session-limits input[name=idle_minutes]", "20");
  await submit("#session-limits");
  expectEq("the workspace's idle limit", await page.inputValue("#session-limits input[name=idle_minutes]"), "20");

  step("create a user into the workspace");
  await tab("members");
  await page.fill("#create-member input[name=email]", "dana@example.com");
  await page.fill("#create-member input[name=name]", "Dana");
  await page.fill("#create-member input[name=password]", "amber-meadow-river-77");
  await submit("#create-member");
  await page.locator("#member-list", { hasText: "dana@example.com" }).waitFor();

  step("a custom role, given to the member");
  await tab("roles");
  await page.fill("#create-role input[name=name]", "Reviewer");
  await page.fill("#create-role input[name=description]", "Reads agents and conversations");
  await page.check('#create-role input[value="read:agents"]');
  await page.check('#create-role input[value="read:conversations"]');
  await submit("#create-role");
  await page.locator("details.role summary", { hasText: "read:agents read:conversations" }).waitFor();
  await tab("members");
  await page.fill("#add-member input[name=email]", "dana@example.com");
  await page.selectOption("#add-member select[name=role]", { label: "Reviewer" });
  await submit("#add-member");
  await page.locator("#member-list tr", { hasText: "dana@example.com" }).filter({ hasText: "Reviewer" }).waitFor();

  step("a custom role's permissions are edited");
  await tab("roles");
  const role = page.locator("details.role").first();
  await role.locator("summary").click();
  await role.locator('input[value="write:agents"]').check();
  await Promise.all([page.waitForNavigation(), role.locator("button[type=submit]").click()]);
  await page.locator("details.role summary", { hasText: "write:agents" }).waitFor();

  step("a group with a role, then the member added to it");
  await page.fill("#create-group input[name=name]", "Ops");
  await page.check('#create-group input[value="analyst"]');
  await submit("#create-group");
  const group = page.locator("details.group", { hasText: "Ops" });
  await group.locator("summary").click();
  await group.getByLabel("dana@example.com").check();
  await Promise.all([page.waitForNavigation(), group.locator("button[type=submit]").click()]);
  await page.locator("details.group summary", { hasText: "dana@example.com" }).waitFor();

  step("an API app and a key; editing the app's scopes applies to the key at once");
  await tab("apps");
  await page.fill("#create-app input[name=name]", "ci");
  await page.check('#create-app input[value="read:agents"]');
  await submit("#create-app");
  await page.click("section.app form.new-key button[type=submit]");
  await page.waitForSelector("#secret-value");
  const key = await secretShown();
  expectEq("the new key verifies for its scope", await verify(key, "read:agents"), 200);
  expectEq("but not for a scope the app lacks", await verify(key, "write:agents"), 403);
  const app = page.locator("section.app", { hasText: "ci" });
  await app.locator("details.edit-app summary").click();
  await app.locator('input[value="write:agents"]').check();
  await Promise.all([page.waitForNavigation(), app.locator("details.edit-app button[type=submit]").click()]);
  await page.locator("section.app h3", { hasText: "write:agents" }).waitFor();
  expectEq("the widened app's key", await verify(key, "write:agents"), 200);

  step("a service account with an IP allowlist; a bad CIDR is refused with a message");
  await tab("accounts");
  await page.fill("#create-sa input[name=name]", "deployer");
  await page.fill("#create-sa input[name=description]", "CI deploys");
  await page.check('#create-sa input[value="deploy:model"]');
  await page.fill("#create-sa textarea[name=ip_allowlist]", "10.0.0.0/8");
  await page.selectOption("#create-sa select[name=ip_mode]", "block");
  await submit("#create-sa");
  const secret1 = await secretShown();
  const clientId = (await page.locator("#service-accounts tbody tr", { hasText: "deployer" }).locator("td").nth(1).textContent()).trim();
  expectEq("a grant from outside the allowlist (block)", await grant(clientId, secret1), 403);
  const sa = page.locator("details.sa").first();
  await sa.locator("summary").click();
  await sa.locator("textarea[name=ip_allowlist]").fill("10.0.0.0/33");
  expectConsoleError(/status of 422/);
  await Promise.all([page.waitForNavigation(), sa.locator("button[type=submit]").click()]);
  await expectText("10.0.0.0/33");
  await page.locator("p.alert").waitFor();
  // The failed form comes back unfolded, with what was typed (issue 19 point 3).
  if (!(await page.locator("details.sa").first().getAttribute("open") !== null)) throw new Error("the failed form is folded");
  await page.locator("details.sa textarea[name=ip_allowlist]").fill("10.0.0.0/8");
  await page.locator("details.sa select[name=ip_mode]").selectOption("warn");
  await Promise.all([page.waitForNavigation(), page.locator("details.sa button[type=submit]").click()]);
  await page.locator("#service-accounts", { hasText: "10.0.0.0/8 (warn)" }).waitFor();
  expectEq("a grant from outside the allowlist (warn)", await grant(clientId, secret1), 200);
  await shot("workspace-access");

  step("a new secret after confirmation: the old one stops");
  await page.locator("details.sa summary").first().click();
  await Promise.all([page.waitForNavigation(), page.click("details.sa a:has-text('New secret')")]);
  await confirm();
  const secret2 = await secretShown();
  expectEq("the old secret", await grant(clientId, secret1), 401);
  expectEq("the new secret", await grant(clientId, secret2), 200);

  step("a widget key, shown once, listed, deleted after confirmation");
  await tab("widgets");
  await page.fill("#create-widget input[name=name]", "shop chat");
  await page.fill("#create-widget input[name=bot]", "support-bot");
  await page.fill("#create-widget textarea[name=origins]", "https://shop.example");
  await submit("#create-widget");
  const widget = await secretShown();
  if (!widget.startsWith("ghw_")) throw new Error(`not a widget key: ${widget}`);
  await tab("widgets");
  if (await page.locator("#secret-value").count()) throw new Error("a secret was shown twice");
  await page.locator("#widget-keys", { hasText: "support-bot" }).waitFor();
  await Promise.all([page.waitForNavigation(), page.click("#widget-keys a:has-text('Delete')")]);
  await expectText("support-bot");
  await confirm();
  await expectText("No widget keys yet.");

  step("deletions after confirmation: the role, the group, the app (warned: its key was just used), the account");
  await tab("roles");
  await page.locator("details.role summary").first().click();
  await Promise.all([page.waitForNavigation(), page.click("details.role a:has-text('Delete')")]);
  await expectText("lose its permissions at once");
  await confirm();
  await expectText("No custom roles yet.");
  await page.locator("details.group summary").first().click();
  await Promise.all([page.waitForNavigation(), page.click("details.group a:has-text('Delete')")]);
  await confirm();
  await expectText("No groups yet.");
  await tab("apps");
  await app.locator("details.edit-app summary").click();
  await Promise.all([page.waitForNavigation(), app.locator("a:has-text('Delete app')").click()]);
  await expectText("were used in the last 24 hours");
  await confirm();
  expectEq("a key of the deleted app", await verify(key, "read:agents"), 401);
  await tab("accounts");
  await page.locator("details.sa summary").first().click();
  await Promise.all([page.waitForNavigation(), page.click("details.sa a:has-text('Delete')")]);
  await confirm();
  expectEq("the deleted account's secret", await grant(clientId, secret2), 401);

  step("remove the member");
  await tab("members");
  await Promise.all([page.waitForNavigation(), page.click("#member-list button[aria-label='Remove dana@example.com']")]);
  if (await page.locator("#member-list", { hasText: "dana@example.com" }).count()) throw new Error("still a member");
  await shot("workspace-after");
});
