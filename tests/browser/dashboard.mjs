// Drives the dashboard in headless Chromium as an owner would, with a second browser
// context as the "phone": setup with the claim code → sign out and in → create an API
// token (shown once) → pair the phone from the offer the page shows → chat with a
// streamed answer, and a tool call whose approval the phone answers → the audit viewer
// shows those events → revoke the phone (its socket closes) → sign out. Started by
// tests/it/dashboard.rs; prints one JSON line per step; on failure a screenshot of each
// context goes to SHOTS and the last line is {"step":"failed",...}.
//
//   node dashboard.mjs URL CLAIM_CODE PASSWORD SHOTS_DIR IMAGES_DIR
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, claimCode, password, shots, images] = process.argv.slice(2);
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const T = { timeout: 20000 };
mkdirSync(shots, { recursive: true });
mkdirSync(images, { recursive: true });

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
const laptop = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1180, height: 820 } });
const phoneContext = await browser.newContext({
  ignoreHTTPSErrors: true, viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true,
});
const page = await laptop.newPage();
const phone = await phoneContext.newPage();
const problems = [];
let refreshTokensSeen = 0;
for (const [name, p] of [["laptop", page], ["phone", phone]]) {
  p.on("pageerror", (err) => problems.push(`${name}: ${err.message}`));
  p.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`${name} console: ${m.text()}`); });
  p.on("dialog", (dialog) => dialog.accept());
  p.on("response", async (response) => {
    if (!response.url().includes("/auth/") && !response.url().includes("/setup/")) return;
    const text = await response.text().catch(() => "");
    if (text.includes("refresh_token")) refreshTokensSeen += 1;
  });
}
const shot = (p, name) => p.screenshot({ path: `${images}/${name}.png` });

try {
  // First run: the claim code makes the owner account.
  await page.goto(`${url}/#/setup`);
  await page.fill("#claim-code", claimCode, T);
  await page.fill("#setup-user", "owner");
  await page.fill("#setup-password", password);
  await page.click("#setup button[type=submit]");
  await page.waitForSelector("#nav a[data-page=tokens]", T);
  say({ step: "setup" });

  // Sign out and in again.
  await page.click("#signout");
  await page.waitForSelector("#login", T);
  await shot(page, "login");
  await page.fill("#login-user", "owner");
  await page.fill("#login-password", "wrong password, surely");
  await page.click("#login button[type=submit]");
  await page.locator("#login .msg.error").waitFor(T);
  const wrong = (await page.textContent("#login .msg.error")).trim();
  if (!/wrong/i.test(wrong)) throw new Error(`a wrong password shows ${wrong}`);
  await page.fill("#login-password", password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#nav a[data-page=chat]", T);
  await page.locator("#live", { hasText: "Live" }).waitFor(T);
  say({ step: "login", wrong });

  // An API token, shown once.
  await page.click("#nav a[data-page=tokens]");
  await page.fill("#token-name", "ci", T);
  await page.click("#create-token button[type=submit]");
  const token = (await page.textContent("#token-value", T)).trim();
  await page.locator("#tokens td", { hasText: "ci" }).first().waitFor(T);
  await shot(page, "tokens");
  await page.click("#nav a[data-page=chat]");
  await page.click("#nav a[data-page=tokens]");
  await page.locator("#tokens td", { hasText: "ci" }).first().waitFor(T);
  if (await page.locator("#token-value").count()) throw new Error("the token is shown a second time");
  say({ step: "token", token });

  // Pair the phone from the offer the page shows.
  await page.click("#nav a[data-page=devices]");
  await page.click("#pair", T);
  const offer = (await page.textContent("#offer-url", T)).trim();
  const qr = await page.locator("canvas.qr").count();
  const left = Number(await page.textContent("#countdown"));
  await shot(page, "devices");
  await phone.goto(offer);
  await phone.waitForSelector("#form:not([hidden])", T);
  await phone.fill("#name", "test phone");
  await phone.click("button[type=submit], input[type=submit]");
  await phone.waitForSelector("#code-line:not([hidden])", T);
  const code = (await phone.textContent("#code")).trim();
  await page.locator(".claim .claim-code", { hasText: code }).waitFor(T);
  await page.click(".claim button.confirm");
  await phone.locator("#status", { hasText: /^Paired\./ }).waitFor({ timeout: 30000 });
  await page.locator("#devices td", { hasText: "test phone" }).first().waitFor(T);
  // The phone opens the dashboard and signs in with its device key.
  await phone.goto(`${url}/#/approvals`);
  await phone.waitForSelector("#nav a[data-page=approvals]", T);
  await phone.locator("#live", { hasText: "Live" }).waitFor(T);
  say({ step: "paired", code, qr, left });

  // Chat: a streamed answer.
  await page.click("#nav a[data-page=chat]");
  await page.fill("#chat-title", "First chat", T);
  await page.selectOption("#agent", "helper");
  await page.click("#new-chat button[type=submit]");
  await page.locator("#chats button", { hasText: "First chat" }).waitFor(T);
  await page.evaluate(() => {
    window.__updates = 0;
    new MutationObserver(() => { window.__updates += 1; })
      .observe(document.getElementById("chat-log"), { subtree: true, characterData: true, childList: true });
  });
  await page.fill("#prompt", "Say hello");
  await page.click("#send");
  await page.locator("#chat-status", { hasText: "Done" }).waitFor(T);
  const text = (await page.locator(".bubble.agent .text").last().textContent()).trim();
  const updates = await page.evaluate(() => window.__updates);
  say({ step: "streamed", text, updates });

  // A tool call that needs approval: the card shows on the laptop, the phone denies it.
  await page.fill("#prompt", "factor 42 please");
  await page.click("#send");
  await page.locator("#chat-log .approval").waitFor(T);
  await phone.locator("#approvals .approval button.deny").waitFor(T);
  await shot(phone, "phone-approval");
  await phone.click("#approvals .approval button.deny");
  await page.locator("#chat-log .approval.resolved", { hasText: "Denied" }).waitFor(T);
  await page.locator("#chat-log .tool.failed").waitFor(T);
  await page.locator("#chat-status", { hasText: "Done" }).waitFor(T);
  await shot(page, "chat");
  say({ step: "approval", answeredBy: "phone" });

  // The audit viewer shows all of it, and the chain holds.
  await page.click("#nav a[data-page=audit]");
  await page.locator("#chain .status-ok").waitFor(T);
  const actions = await page.locator("#audit .action").allTextContents();
  for (const wanted of ["auth.claim", "auth.login", "auth.token_created", "pairing.confirm", "approval.request", "approval.deny"]) {
    if (!actions.includes(wanted)) throw new Error(`the audit viewer lacks ${wanted}: ${actions.join(" ")}`);
  }
  await page.fill("#audit-action", "approval.");
  await page.click("#audit-filter button[type=submit]");
  await page.locator("#audit .action", { hasText: "approval.deny" }).first().waitFor(T);
  const filtered = await page.locator("#audit .action").allTextContents();
  if (!filtered.every((a) => a.startsWith("approval."))) throw new Error(`filter: ${filtered.join(" ")}`);
  await shot(page, "audit");
  say({ step: "audit", actions: actions.length, filtered: filtered.length });

  // Revoke the phone: its socket closes and it is signed out.
  await page.click("#nav a[data-page=devices]");
  await page.click("#devices button[data-device]", T);
  await page.locator("#devices", { hasText: "No paired devices." }).waitFor(T);
  await phone.locator("#live", { hasText: "Offline" }).waitFor(T);
  const live = (await phone.textContent("#live")).trim();
  await phone.waitForSelector("#login", { timeout: 30000 });
  say({ step: "phone-closed", live });

  // Sign out: the cookie is gone, nothing is left in web storage.
  await page.click("#signout");
  await page.waitForSelector("#login", T);
  const after = await page.evaluate(async () => {
    const response = await fetch("/auth/refresh", { method: "POST", headers: { "X-Aisopod-Client": "dashboard" } });
    return { refresh: response.status, storage: localStorage.length + sessionStorage.length, cookies: document.cookie };
  });
  if (problems.length) throw new Error(`page errors: ${problems.join("; ")}`);
  say({ step: "logged-out", ...after, refreshTokensSeen });
} catch (err) {
  await page.screenshot({ path: `${shots}/laptop.png`, fullPage: true }).catch(() => {});
  await phone.screenshot({ path: `${shots}/phone.png`, fullPage: true }).catch(() => {});
  say({ step: "failed", error: String(err && err.stack || err), problems });
  process.exitCode = 1;
} finally {
  await browser.close();
}
