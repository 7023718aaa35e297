// Measures the dashboard in headless Chromium against a running gateway; started by
// bench/dashboard/run. Prints one JSON object on stdout:
//   cold:     per run, a fresh browser profile (empty cache) opening the gateway: bytes of
//             JS and CSS, and the milliseconds from navigation start until the sign-in
//             form is on screen and answers input (the page's scripts ran and asked
//             /auth/refresh);
//   signedIn: per run, a new tab of a signed-in profile (warm cache, refresh cookie):
//             until the navigation is shown (refresh and /api/v1/me answered) and until
//             the live socket says "Live";
//   pairing:  per run, a new "phone" profile paired from the offer the laptop's Devices
//             page shows: offer shown → claim made (code on the phone) → paired (the
//             laptop confirmed, the phone saw it) → the phone's dashboard signed in with
//             its device key (its first authenticated request answered).
//
//   node measure.mjs URL USERNAME PASSWORD RUNS
import { createRequire } from "node:module";

const require = createRequire(new URL("../../tests/browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url, username, password, runsText] = process.argv.slice(2);
const runs = Number(runsText || 7);
const T = { timeout: 30000 };
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
const fresh = () => browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1180, height: 820 } });
const since = (p) => p.evaluate(() => performance.now());
const out = { cold: [], signedIn: [], pairing: [] };

try {
  for (let i = 0; i < runs; i++) {
    const context = await fresh();
    const page = await context.newPage();
    await page.goto(url);
    await page.locator("#login-user").waitFor(T);
    const interactive = await since(page);
    const sizes = await page.evaluate(() => {
      const files = performance.getEntriesByType("resource");
      const sum = (re) => files.filter((f) => re.test(new URL(f.name).pathname))
        .reduce((n, f) => n + f.decodedBodySize, 0);
      const wire = files.reduce((n, f) => n + f.transferSize, 0) + performance.getEntriesByType("navigation")[0].transferSize;
      return { js: sum(/\.js$/), css: sum(/\.css$/), html: performance.getEntriesByType("navigation")[0].decodedBodySize, files: files.length, wire };
    });
    out.cold.push({ interactive, ...sizes });
    await context.close();
  }

  const laptop = await fresh();
  const page = await laptop.newPage();
  await page.goto(url);
  await page.fill("#login-user", username, T);
  await page.fill("#login-password", password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#nav a[data-page=chat]", T);
  for (let i = 0; i < runs; i++) {
    const tab = await laptop.newPage();
    await tab.goto(`${url}/#/approvals`);
    await tab.locator("#nav a[data-page=approvals]").waitFor(T);
    const nav = await since(tab);
    await tab.locator("#live", { hasText: "Live" }).waitFor(T);
    const live = await since(tab);
    out.signedIn.push({ nav, live });
    await tab.close();
  }

  await page.goto(`${url}/#/devices`);
  for (let i = 0; i < runs; i++) {
    await page.locator("#pair").waitFor(T);
    await page.click("#pair");
    const offer = (await page.textContent("#offer-url", T)).trim();
    const start = Date.now();
    const phoneContext = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true });
    const phone = await phoneContext.newPage();
    await phone.goto(offer);
    await phone.waitForSelector("#form:not([hidden])", T);
    await phone.fill("#name", `bench phone ${i}`);
    await phone.click("button[type=submit], input[type=submit]");
    await phone.waitForSelector("#code-line:not([hidden])", T);
    const claimed = Date.now() - start;
    const code = (await phone.textContent("#code")).trim();
    await page.locator(".claim .claim-code", { hasText: code }).waitFor(T);
    await page.click(".claim button.confirm");
    await phone.locator("#status", { hasText: /^Paired\./ }).waitFor(T);
    const paired = Date.now() - start;
    await phone.goto(`${url}/#/approvals`);
    await phone.locator("#nav a[data-page=approvals]").waitFor(T);
    const signedIn = Date.now() - start;
    out.pairing.push({ claimed, paired, signedIn });
    await phoneContext.close();
    await page.locator("#devices td", { hasText: `bench phone ${i}` }).first().waitFor(T);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
} finally {
  await browser.close();
}
