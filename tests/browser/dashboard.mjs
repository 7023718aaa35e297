// Drives the dashboard in headless Chromium as an owner would, with a second browser
// context as the "phone": setup with the claim code → sign out and in → create an API
// token (shown once) → add a user and disable it → pair the phone from the offer the page shows → chat with a
// streamed answer, and a tool call whose approval the phone answers → the audit viewer
// shows those events → settings show the security mode, the audit's findings and the
// sandbox, a provider key set, the CA downloaded → a device-flow code approved from the styled /device page with the keyboard
// only → rename the phone in place → revoke the phone (its socket closes) → change the
// password → sign out. Every page visited is checked
// for unlabelled controls and for text below WCAG AA contrast, in light and dark. Started by
// tests/it/dashboard.rs; prints one JSON line per step; on failure a screenshot of each
// context goes to SHOTS and the last line is {"step":"failed",...}.
//
//   node dashboard.mjs URL CLAIM_CODE PASSWORD SHOTS_DIR IMAGES_DIR NEW_PASSWORD
import { mkdirSync, readFileSync } from "node:fs";
import { chromium, request } from "playwright-core";

const [url, claimCode, password, shots, images, newPassword] = process.argv.slice(2);
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
const watch = (name, p) => {
  p.on("pageerror", (err) => problems.push(`${name}: ${err.message}`));
  p.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`${name} console: ${m.text()}`); });
  p.on("dialog", (dialog) => dialog.accept());
  p.on("response", async (response) => {
    if (!response.url().includes("/auth/") && !response.url().includes("/setup/")) return;
    const text = await response.text().catch(() => "");
    if (text.includes("refresh_token")) refreshTokensSeen += 1;
  });
};
watch("laptop", page);
watch("phone", phone);

// Controls a screen reader could not name: inputs without a label, buttons and links
// without text or aria-label.
const unlabelled = (p) => p.evaluate(() => {
  const bad = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label")) bad.push(`unlabelled ${el.tagName.toLowerCase()} ${el.id || el.name}`);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!el.textContent.trim() && !el.getAttribute("aria-label")) bad.push(`unnamed ${el.tagName.toLowerCase()}`);
  }
  return bad;
});
// Visible text whose colour is too close to its background: WCAG AA asks 4.5:1, or 3:1
// for large text (24px, or 18.66px bold). Disabled controls are exempt.
const lowContrast = (p) => p.evaluate(() => {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || "");
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255 };
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    if (!text || !el.getClientRects().length || el.closest(":disabled, [hidden], noscript")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest(".skip")) continue;
    const fg = parse(style.color);
    if (!fg) continue;
    const [hi, lo] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(`"${text.slice(0, 30)}" ${ratio.toFixed(2)}:1`);
  }
  return bad;
});
const a11y = async (p, name) => {
  const bad = [...await unlabelled(p)];
  for (const colorScheme of ["light", "dark"]) {
    await p.emulateMedia({ colorScheme });
    bad.push(...(await lowContrast(p)).map((b) => `${colorScheme}: ${b}`));
  }
  await p.emulateMedia({ colorScheme: "light" });
  if (bad.length) problems.push(`${name}: ${bad.join("; ")}`);
};
const shot = (p, name) => p.screenshot({ path: `${images}/${name}.png` });

try {
  // First run: the claim code makes the owner account.
  await page.goto(`${url}/#/setup`);
  await page.locator("#claim-code").waitFor(T);
  await a11y(page, "setup");
  await page.fill("#claim-code", claimCode, T);
  await page.fill("#setup-user", "owner");
  await page.fill("#setup-password", password);
  await page.click("#setup button[type=submit]");
  await page.waitForSelector("#nav a[data-page=tokens]", T);
  say({ step: "setup" });

  // Sign out and in again.
  await page.click("#signout");
  await page.waitForSelector("#login", T);
  await a11y(page, "login");
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
  await a11y(page, "tokens");
  await shot(page, "tokens");
  await page.click("#nav a[data-page=chat]");
  await page.click("#nav a[data-page=tokens]");
  await page.locator("#tokens td", { hasText: "ci" }).first().waitFor(T);
  if (await page.locator("#token-value").count()) throw new Error("the token is shown a second time");
  say({ step: "token", token });

  // Users: add a reader, then disable the account.
  await page.click("#nav a[data-page=users]");
  await page.fill("#user-name", "reader", T);
  await page.fill("#user-password", "quiet walrus paints seven lanterns");
  await page.click("#add-user button[type=submit]");
  const reader = page.locator("#users tr", { hasText: "reader" });
  await reader.locator("td", { hasText: "active" }).waitFor(T);
  await page.click("#users button[aria-label='Disable reader']");
  await reader.locator("td", { hasText: "disabled" }).waitFor(T);
  await a11y(page, "users");
  say({ step: "users", state: (await reader.locator("td").nth(2).textContent()).trim() });

  // Pair the phone from the offer the page shows.
  await page.click("#nav a[data-page=devices]");
  await page.click("#pair", T);
  const offer = (await page.textContent("#offer-url", T)).trim();
  const qr = await page.locator("canvas.qr").count();
  const left = Number(await page.textContent("#countdown"));
  await a11y(page, "devices");
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
  await a11y(phone, "phone approvals");
  await shot(phone, "phone-approval");
  await phone.click("#approvals .approval button.deny");
  await page.locator("#chat-log .approval.resolved", { hasText: "Denied" }).waitFor(T);
  await page.locator("#chat-log .tool.failed").waitFor(T);
  await page.locator("#chat-status", { hasText: "Done" }).waitFor(T);
  await a11y(page, "chat");
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
  // The unfiltered list is replaced: its first records (auth.claim...) go away.
  await page.locator("#audit .action", { hasText: "auth.claim" }).first().waitFor({ state: "detached", ...T });
  await page.locator("#audit .action", { hasText: "approval.deny" }).first().waitFor(T);
  const filtered = await page.locator("#audit .action").allTextContents();
  if (!filtered.every((a) => a.startsWith("approval."))) throw new Error(`filter: ${filtered.join(" ")}`);
  await a11y(page, "audit");
  await shot(page, "audit");
  const [exported] = await Promise.all([page.waitForEvent("download", T), page.click("#audit-export")]);
  const jsonl = readFileSync(await exported.path(), "utf8").trim().split("\n").map((line) => JSON.parse(line));
  say({ step: "audit", actions: actions.length, filtered: filtered.length,
    exported: jsonl.length, sealed: "audit_seal" in jsonl[jsonl.length - 1] });

  // Settings: the security mode, the audit's findings worst first, the sandbox.
  await page.click("#nav a[data-page=settings]");
  await page.locator("#findings .finding").first().waitFor(T);
  // (A locator, not waitForFunction: the page's CSP forbids the eval that needs.)
  await page.locator("#sandbox[class]").waitFor(T);
  const mode = (await page.textContent("#security-mode")).trim();
  const summary = (await page.textContent("#audit-summary")).trim();
  const findings = await page.locator("#findings .finding").evaluateAll((els) => els.map((e) => ({
    id: e.dataset.id, severity: e.querySelector(".sev").textContent, text: e.textContent,
  })));
  const sandbox = (await page.textContent("#sandbox")).trim();
  await a11y(page, "settings");
  await page.locator("#security-title").scrollIntoViewIfNeeded();
  await shot(page, "settings");
  // Keyboard: the skip link is the Tab stop before the navigation, and Enter on it
  // moves the focus to the page without leaving it.
  await page.focus("#nav a");
  await page.keyboard.press("Shift+Tab");
  const firstTab = await page.evaluate(() => document.activeElement.className);
  await page.keyboard.press("Enter");
  const skipped = await page.evaluate(() => ({ focus: document.activeElement.id, hash: location.hash }));
  // A provider's key is set (and never shown back); the device CA downloads.
  const providerKey = "sk-dashboard-test-0123456789abcdef";
  await page.fill("input[name=key-local]", providerKey);
  await page.click("#providers button[type=submit]");
  await page.locator("#providers button[type=submit]", { hasText: "Replace key" }).waitFor(T);
  const keyShown = (await page.content()).includes(providerKey);
  const [download] = await Promise.all([page.waitForEvent("download", T), page.click("#ca")]);
  const ca = readFileSync(await download.path(), "utf8");
  say({ step: "settings", mode, summary, findings, sandbox, firstTab, skipped, keyShown,
    caName: download.suggestedFilename(), caPem: ca.startsWith("-----BEGIN CERTIFICATE-----") });

  // The device flow: a program asks for a code, the owner approves it on the styled
  // /device page with the keyboard only, and the program's token works.
  const api = await request.newContext({ ignoreHTTPSErrors: true, baseURL: url });
  const started = await (await api.post("/auth/device/code", { form: { client_id: "ci-runner", scope: "chat:read" } })).json();
  const device = await laptop.newPage();
  watch("device", device);
  await device.goto(started.verification_uri_complete);
  await device.locator("#asks", { hasText: "ci-runner" }).waitFor(T);
  const styled = await device.evaluate(() => ({
    header: getComputedStyle(document.querySelector("header.top")).display,
    form: getComputedStyle(document.querySelector("form .stack")).display,
    approve: getComputedStyle(document.getElementById("approve")).backgroundColor,
    focus: document.activeElement.id,
  }));
  await a11y(device, "device page");
  await shot(device, "device-flow");
  await device.keyboard.type("owner");
  await device.keyboard.press("Tab");
  await device.keyboard.type(password);
  await device.keyboard.press("Enter");
  await device.locator("#outcome", { hasText: "Approved" }).waitFor(T);
  const outcome = (await device.textContent("#outcome")).trim();
  await a11y(device, "device outcome");
  await device.close();
  const granted = await (await api.post("/auth/token", {
    form: { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: started.device_code },
  })).json();
  const who = await (await api.get("/api/v1/me", { headers: { authorization: `Bearer ${granted.access_token}` } })).json();
  await api.dispose();
  say({ step: "device", styled, outcome, user: who.username, scopes: who.scopes });

  // Rename the phone in place, by keyboard: the field has the focus, Enter saves.
  await page.click("#nav a[data-page=devices]");
  await page.click("#devices button[aria-label='Rename test phone']", T);
  await page.locator("#devices form.rename input").waitFor(T);
  const renameFocus = await page.evaluate(() => document.activeElement.closest("form.rename") !== null);
  await a11y(page, "rename");
  await page.keyboard.type("kitchen phone");
  await page.keyboard.press("Enter");
  await page.locator("#devices td", { hasText: "kitchen phone" }).first().waitFor(T);
  say({ step: "renamed", renameFocus });

  // Revoke the phone: its socket closes and it is signed out.
  await page.click("#devices button[data-device]", T);
  await page.locator("#devices", { hasText: "No paired devices." }).waitFor(T);
  await phone.locator("#live", { hasText: "Offline" }).waitFor(T);
  const live = (await phone.textContent("#live")).trim();
  await phone.waitForSelector("#login", { timeout: 30000 });
  say({ step: "phone-closed", live });

  // Change the password (this session stays signed in).
  await page.click("#nav a[data-page=settings]");
  await page.fill("#current-password", password, T);
  await page.fill("#new-password", newPassword);
  await page.click("#password button[type=submit]");
  await page.locator("#notice .msg.ok", { hasText: "password was changed" }).waitFor(T);
  say({ step: "password" });

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
