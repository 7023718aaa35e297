// Pairs a headless Chromium through the pairing page, as a phone would after scanning
// the QR: opens the URL (secret in the fragment), lets the page make its non-extractable
// WebCrypto key and claim, reports the confirmation code it shows, and waits until the
// page says it is paired. Started by tests/it/browser.rs, which presses the simulated
// button in between. Prints one JSON line per step on stdout.
//
//   node pair.mjs URL HOST NAME
import { chromium } from "playwright-core";

const [url, host, name] = process.argv.slice(2);
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The phone resolves HOST over mDNS; here it is the gateway on loopback.
  args: [`--host-resolver-rules=MAP ${host} 127.0.0.1`],
});
try {
  // The device CA is not installed in this throwaway profile.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const requests = [];
  page.on("request", (request) => {
    requests.push({ url: request.url(), referer: request.headers()["referer"] || null });
  });
  await page.goto(url);
  await page.waitForSelector("#form:not([hidden])", { timeout: 15000 });
  const href = await page.evaluate(() => location.href);
  await page.fill("#name", name);
  await page.click("button[type=submit], input[type=submit]");
  await page.waitForSelector("#code-line:not([hidden])", { timeout: 15000 });
  say({ step: "code", code: (await page.textContent("#code")).trim(), href });
  // (A locator, not waitForFunction: the page's CSP forbids the eval that needs.)
  await page.locator("#status", { hasText: /^Paired\./ }).waitFor({ timeout: 30000 });
  const stored = await page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open("aisopod-device", 1);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const get = (key) => new Promise((resolve, reject) => {
      const request = db.transaction("keys").objectStore("keys").get(key);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const keys = await get("device");
    const tokens = await get("tokens");
    let exported = "refused";
    try {
      await crypto.subtle.exportKey("jwk", keys.privateKey);
      exported = "exported";
    } catch (err) {
      exported = "refused";
    }
    return {
      extractable: keys.privateKey.extractable,
      curve: keys.privateKey.algorithm.namedCurve,
      exported,
      device_id: tokens.device_id,
      history: history.length,
      href: location.href,
    };
  });
  say({ step: "paired", ...stored, requests });
} catch (err) {
  say({ step: "failed", error: String(err && err.stack || err) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
