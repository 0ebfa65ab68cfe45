// Walks re-approving an SSO link in headless Chromium: sign in as the owner
// → the user's page lists the link, marked "needs re-approval" → Re-approve
// → the page says so and marks the link active.
// Usage: node link.mjs BASE_URL USER_ID [SCREENSHOT_DIR]
import { walk } from "./lib.mjs";

const [base, user, shots] = process.argv.slice(2);
if (!base || !user) {
  console.error("usage: node link.mjs BASE_URL USER_ID [SCREENSHOT_DIR]");
  process.exit(2);
}

await walk("link", base, shots, async ({ page, step, shot, expectText, signInAsOwner }) => {
  step("sign in as the owner");
  await signInAsOwner();

  step("the user's page marks the link");
  await page.goto(`${base}/admin/users/${user}`);
  const row = page.locator("#sso-link-list tbody tr").first();
  await row.getByText("needs re-approval").waitFor({ timeout: 5000 });
  const text = await row.textContent();
  if (!text.includes("created just in time") || !text.includes("service account")) {
    throw new Error(`link row: ${text}`);
  }
  await shot("link-needs-reapproval");

  step("re-approve it");
  await Promise.all([page.waitForURL(/notice=link_reapproved/), row.getByRole("button", { name: /Re-approve/ }).click()]);
  await expectText("SSO link approved again");
  const after = await page.locator("#sso-link-list tbody tr").first().textContent();
  if (after.includes("needs re-approval") || !after.includes("active") || !after.includes("owner@example.com")) {
    throw new Error(`link row after: ${after}`);
  }
  await shot("link-reapproved");
});
