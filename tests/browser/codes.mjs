// Walks the e-mail and SMS code pages in headless Chromium against real
// parts: Gatehouse delivers e-mail to aiosmtpd (STARTTLS + AUTH, started by
// the Rust test, which writes each message into INBOX) and SMS to the HTTP
// gateway this script runs on SMS_PORT (it reads the code from the request
// Gatehouse sends). Owner: add e-mail codes → add SMS codes → sign out →
// sign in with an e-mail code → a used code is refused → sign in with an SMS
// code. Any page error or console error of ours fails the run.
// Usage: node codes.mjs BASE_URL INBOX_DIR SMS_PORT [SCREENSHOT_DIR]
import { createServer } from "node:http";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { walk } from "./lib.mjs";

const [base, inbox, smsPort, shots] = process.argv.slice(2);
if (!base || !inbox || !smsPort) {
  console.error("usage: node codes.mjs BASE_URL INBOX_DIR SMS_PORT [SCREENSHOT_DIR]");
  process.exit(2);
}

// The SMS gateway: records each form body Gatehouse posts.
const sms = [];
const gateway = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    sms.push({ auth: req.headers.authorization || "", form: new URLSearchParams(body) });
    res.writeHead(201, { "content-type": "application/json" });
    res.end('{"sid":"SM1"}');
  });
});
await new Promise((ok) => gateway.listen(Number(smsPort), "127.0.0.1", ok));

const wait = async (what, get) => {
  for (let i = 0; i < 200; i++) {
    const v = get();
    if (v) return v;
    await new Promise((ok) => setTimeout(ok, 25));
  }
  throw new Error(`no ${what} arrived`);
};
const codeIn = (text) => {
  const m = /code is (\d{6})/.exec(text);
  if (!m) throw new Error(`no code in: ${text}`);
  return m[1];
};
// The code of the n-th delivered e-mail (1-based).
const emailCode = (n) =>
  wait(`e-mail #${n}`, () => {
    const files = readdirSync(inbox).filter((f) => f.endsWith(".eml")).sort();
    return files.length >= n ? codeIn(readFileSync(join(inbox, files[n - 1]), "utf8")) : null;
  });
const smsCode = async (n) => {
  const m = await wait(`SMS #${n}`, () => sms[n - 1]);
  if (m.form.get("To") !== "+4915112345678") throw new Error(`SMS to ${m.form.get("To")}`);
  if (!m.auth.startsWith("Basic ")) throw new Error("the gateway got no basic auth");
  return codeIn(m.form.get("Body"));
};

try {
  await walk("codes", base, shots, async ({ page, step, shot, expectText, expectConsoleError, signInAsOwner }) => {
    page.setDefaultTimeout(10000);
    const go = (sel) => Promise.all([page.waitForNavigation(), page.click(sel)]);

    step("sign in as the owner; add e-mail codes with the code that was e-mailed");
    await signInAsOwner();
    await page.goto(`${base}/admin/account`);
    await go("#setup-email");
    await expectText("We sent a 6-digit code by e-mail");
    await page.fill("#confirm-code input[name=code]", await emailCode(1));
    await go("#confirm-code button[type=submit]");
    // The first method comes with recovery codes, shown once.
    await expectText("Your recovery codes");
    await go("text=Done");
    await page.locator("li", { hasText: "E-mail codes" }).locator(".badge", { hasText: "on" }).waitFor();

    step("add SMS codes beside them: the password and a current e-mail code, then the code the gateway received");
    await go("#proof-send-email");
    const proof = await emailCode(2);
    const smsForm = "form[action='/admin/account/mfa/sms']";
    await page.fill(`${smsForm} input[name=phone]`, "+4915112345678");
    await page.fill(`${smsForm} input[name=current_password]`, "violet-harbour-lantern-42");
    await page.selectOption(`${smsForm} select[name=method]`, "email");
    await page.fill(`${smsForm} input[name=code]`, proof);
    await go("#setup-sms");
    await expectText("We sent a 6-digit code by SMS");
    await page.fill("#confirm-code input[name=code]", await smsCode(1));
    await go("#confirm-code button[type=submit]");
    await page.locator("li", { hasText: "SMS codes" }).locator(".badge", { hasText: "on" }).waitFor();
    await shot("codes-methods");

    const signInToCodeStep = async () => {
      await go("form[action='/logout'] button");
      await page.goto(`${base}/login`);
      await page.fill("input[name=email]", "owner@example.com");
      await page.fill("input[name=password]", "violet-harbour-lantern-42");
      await Promise.all([page.waitForURL(/\/login\/mfa/), page.click("button[type=submit]")]);
    };

    step("sign out; sign in with a code sent by e-mail");
    await signInToCodeStep();
    await go("#send-email");
    const used = await emailCode(3);
    await page.selectOption("#mfa-form select[name=method]", "email");
    await page.fill("#mfa-form input[name=code]", used);
    await Promise.all([page.waitForURL(/\/admin$/), page.click("#mfa-form button[type=submit]")]);

    step("the same e-mail code is refused the next time");
    await signInToCodeStep();
    await page.selectOption("#mfa-form select[name=method]", "email");
    await page.fill("#mfa-form input[name=code]", used);
    expectConsoleError(/status of 4\d\d/);
    await go("#mfa-form button[type=submit]");
    await page.locator("p.alert").waitFor();
    if (!page.url().includes("/login/mfa")) throw new Error(`a used code signed in: ${page.url()}`);
    await shot("codes-refused");

    step("sign in with a code sent by SMS");
    await go("#send-sms");
    await expectText("sent");
    await page.selectOption("#mfa-form select[name=method]", "sms");
    await page.fill("#mfa-form input[name=code]", await smsCode(2));
    await Promise.all([page.waitForURL(/\/admin$/), page.click("#mfa-form button[type=submit]")]);
  });
} finally {
  gateway.close();
}
