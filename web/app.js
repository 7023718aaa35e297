// The dashboard's entry: signs in from the refresh cookie when it can, builds the
// navigation for the signed-in person's scopes, and routes by the URL's fragment.

import { call, refresh, logout, onSession, signedIn } from "./api.js";
import { h, clear, notify } from "./ui.js";
import { chatPage, connect, disconnect, onMessage, pending } from "./chat.js";
import { setupPage, loginPage, approvalsPage, devicesPage, tokensPage, usersPage, auditPage, settingsPage } from "./pages.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signout = document.getElementById("signout");
let me = null;

const PAGES = [
  { path: "chat", title: "Chat", show: chatPage },
  { path: "approvals", title: "Approvals", show: approvalsPage },
  { path: "devices", title: "Devices", show: devicesPage },
  { path: "tokens", title: "API tokens", show: tokensPage, admin: true },
  { path: "users", title: "Users", show: usersPage, admin: true },
  { path: "audit", title: "Audit log", show: auditPage, admin: true },
  { path: "settings", title: "Settings", show: settingsPage },
];

function isAdmin() {
  return me !== null && me.scopes.includes("admin");
}

function buildNav() {
  clear(nav);
  for (const p of PAGES) {
    if (p.admin && !isAdmin()) continue;
    const link = h("a", { href: `#/${p.path}`, "data-page": p.path }, p.title);
    if (p.path === "approvals") link.append(h("span", { class: "badge", id: "approval-count", hidden: true }));
    nav.append(link);
  }
  nav.hidden = false;
  signout.hidden = false;
}

function updateBadge() {
  const badge = document.getElementById("approval-count");
  if (!badge) return;
  badge.textContent = String(pending.size);
  badge.hidden = pending.size === 0;
  badge.setAttribute("aria-label", `${pending.size} waiting`);
}

async function route() {
  const path = location.hash.replace(/^#\/?/, "") || "chat";
  if (!signedIn()) {
    nav.hidden = true;
    signout.hidden = true;
    const done = () => { location.hash = "#/chat"; start(); };
    if (path === "setup") setupPage(view, done); else loginPage(view, done);
    return;
  }
  const found = PAGES.find((p) => p.path === path && (!p.admin || isAdmin())) || PAGES[0];
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === found.path) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  document.title = `${found.title} · aisopod`;
  notify("");
  await found.show(view, me);
  view.focus({ preventScroll: true });
}

async function start() {
  if (signedIn()) {
    try {
      me = await call("GET", "/api/v1/me");
      buildNav();
      // Approvals reach every page (and the badge) over the one socket.
      connect().catch(() => {});
    } catch (err) {
      notify(err.sentence || String(err), "error");
    }
  }
  await route();
}

onSession((now) => {
  if (!now) {
    me = null;
    live.textContent = "";
    disconnect();
    route();
  }
});
const live = document.getElementById("live");
onMessage((m) => {
  if (m.type === "approval.request" || m.type === "approval.resolved") updateBadge();
  if (m.type === "socket.open") live.textContent = "Live";
  if (m.type === "socket.closed") live.textContent = "Offline";
  if (m.type === "socket.closed" && m.code === 1008) notify("The live connection was closed by the gateway.", "error");
});
signout.addEventListener("click", async () => {
  signout.disabled = true;
  try { await logout(); } catch { /* signed out locally either way */ }
  signout.disabled = false;
  disconnect();
  me = null;
  location.hash = "#/login";
  notify("You are signed out.");
});
// The skip link moves the focus without touching the fragment, which is the router's.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  view.focus();
});
window.addEventListener("hashchange", () => { route(); });

await refresh();
await start();
