// The dashboard's pages other than chat: first-run setup, sign-in, approvals, devices
// (pairing with the QR), API tokens, users, the audit log and settings.

import { call, claim, login, download } from "./api.js";
import { h, clear, append, field, checkbox, errorBox, showError, busy, notify, when, table } from "./ui.js";
import { pending, onMessage, approvalCard, resolveCard, connect } from "./chat.js";

export const SCOPES = ["chat:read", "chat:write", "agent:read", "agent:manage", "channel:read",
  "channel:manage", "config:read", "config:write", "admin"];

function page(view, title, ...children) {
  append(clear(view), h("h1", {}, title), ...children);
}

function formOf(fields, button, box, id) {
  return h("form", { class: "stack", id }, fields.map((f) => f.label), box, button);
}

export function setupPage(view, done) {
  const code = field("Claim code", { id: "claim-code", name: "code", required: true, autocomplete: "off", placeholder: "XXXX-XXXX-XXXX-XXXX" });
  const user = field("Owner's username", { id: "setup-user", name: "username", required: true, autocomplete: "username" });
  const pass = field("Password", { id: "setup-password", name: "password", type: "password", required: true, autocomplete: "new-password", minlength: 8 });
  const box = errorBox();
  const button = h("button", { type: "submit" }, "Create the owner account");
  const form = formOf([code, user, pass], button, box, "setup");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, box, async () => {
      await claim(code.input.value.trim(), user.input.value.trim(), pass.input.value);
      done();
    });
  });
  page(view, "Set up this gateway",
    h("p", {}, "The claim code is shown on the gateway's console and display while it has no owner. It works once."),
    form, h("p", {}, h("a", { href: "#/login" }, "Already set up? Sign in.")));
  code.input.focus();
}

export function loginPage(view, done) {
  const user = field("Username", { id: "login-user", name: "username", required: true, autocomplete: "username" });
  const pass = field("Password", { id: "login-password", name: "password", type: "password", required: true, autocomplete: "current-password" });
  const box = errorBox();
  const button = h("button", { type: "submit" }, "Sign in");
  const form = formOf([user, pass], button, box, "login");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, box, async () => {
      await login(user.input.value.trim(), pass.input.value);
      pass.input.value = "";
      done();
    });
  });
  page(view, "Sign in", form, h("p", {}, h("a", { href: "#/setup" }, "First run? Set up with the claim code.")));
  user.input.focus();
}

export async function approvalsPage(view) {
  const list = h("div", { id: "approvals" });
  const done = h("div", { id: "resolved" });
  const box = errorBox();
  page(view, "Approvals", box, h("h2", {}, "Waiting"), list, h("h2", {}, "Answered"), done);
  const render = async () => {
    const answer = await call("GET", "/api/v1/approvals?state=all");
    clear(list);
    const waiting = answer.pending || [];
    if (!waiting.length) list.append(h("p", { class: "muted" }, "Nothing is waiting for an answer."));
    for (const request of waiting) list.append(approvalCard(request));
    clear(done);
    const rows = (answer.resolved || []).slice(-50).reverse().map((r) => [
      r.allowed ? "Allowed" : "Denied", r.decidedBy || "—", r.ending || "—", when(r.resolvedAt)]);
    done.append(rows.length ? table(["Answer", "By", "How", "When"], rows) : h("p", { class: "muted" }, "None yet."));
  };
  const stop = onMessage((m) => {
    if (!list.isConnected) { stop(); return; }
    if (m.type === "approval.request" || m.type === "approval.resolved") render().catch((err) => showError(box, err));
  });
  try { await render(); await connect(); } catch (err) { showError(box, err); }
}

// Draws the QR's modules (from the offer) on a canvas, with a quiet zone.
function qrCanvas(qr) {
  const canvas = h("canvas", { class: "qr", role: "img", "aria-label": "Pairing QR code" });
  const scale = 8;
  const quiet = 4;
  const size = (qr.width + quiet * 2) * scale;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = "#000";
  for (let y = 0; y < qr.width; y++) {
    for (let x = 0; x < qr.width; x++) {
      if (qr.modules[y * qr.width + x] === "1") ctx.fillRect((x + quiet) * scale, (y + quiet) * scale, scale, scale);
    }
  }
  return canvas;
}

export async function devicesPage(view, me) {
  const box = errorBox();
  const offerBox = h("div", { id: "offer" });
  const claims = h("div", { id: "claims" });
  const list = h("div", { id: "devices" });
  const pairButton = h("button", { type: "button", id: "pair" }, "Pair a phone");
  let timer = null;
  let poll = null;
  const admin = me.scopes.includes("admin");
  page(view, "Devices", box, admin ? h("div", { class: "card" }, h("p", {}, "Scan the code with the phone's camera, then compare the code the phone shows before you confirm."), pairButton, offerBox, claims) : null,
    h("h2", {}, "Paired devices"), list);

  const renderDevices = async () => {
    const devices = (await call("GET", "/api/v1/devices")).filter((d) => !d.revoked);
    clear(list);
    if (!devices.length) { list.append(h("p", { class: "muted" }, "No paired devices.")); return; }
    list.append(table(["Name", "Owner", "Scopes", "Paired", "Last seen", ""], devices.map((d) => {
      const rename = h("button", { type: "button", class: "quiet", "aria-label": `Rename ${d.name}` }, "Rename");
      const revoke = h("button", { type: "button", class: "danger", "data-device": d.id, "aria-label": `Revoke ${d.name}` }, "Revoke");
      const nameCell = h("span", {}, d.name);
      // Renaming happens in place: a labelled field that has the focus, Enter saves,
      // Escape or Cancel puts the name back.
      rename.addEventListener("click", () => {
        const input = field(`New name for ${d.name}`, { value: d.name, required: true, maxlength: 64, autocomplete: "off" });
        const save = h("button", { type: "submit" }, "Save");
        const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
        const form = h("form", { class: "stack rename" }, input.label, h("div", { class: "row" }, save, cancel));
        const back = () => { form.replaceWith(nameCell); rename.disabled = false; rename.focus(); };
        cancel.addEventListener("click", back);
        form.addEventListener("keydown", (event) => { if (event.key === "Escape") back(); });
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          busy(save, box, async () => {
            const name = input.input.value.trim();
            await call("PATCH", `/api/v1/devices/${encodeURIComponent(d.id)}`, { name });
            notify(`${d.name} is now called ${name}.`);
            await renderDevices();
          });
        });
        nameCell.replaceWith(form);
        rename.disabled = true;
        input.input.focus();
        input.input.select();
      });
      revoke.addEventListener("click", () => busy(revoke, box, async () => {
        if (!window.confirm(`Revoke ${d.name}? It is signed out at once.`)) return;
        await call("DELETE", `/api/v1/devices/${encodeURIComponent(d.id)}`);
        notify(`${d.name} was revoked.`);
        await renderDevices();
      }));
      return [nameCell, d.owner, (d.scopes || []).join(" "), when(d.created), when(d.last_refresh), h("div", { class: "row" }, rename, revoke)];
    })));
  };

  const renderClaims = async () => {
    const state = await call("GET", "/api/v1/pairing");
    clear(claims);
    for (const c of state.claims || []) {
      const confirm = h("button", { type: "button", class: "confirm" }, "Confirm");
      const refuse = h("button", { type: "button", class: "danger" }, "Refuse");
      confirm.addEventListener("click", () => busy(confirm, box, async () => {
        await call("POST", `/api/v1/pairing/${encodeURIComponent(c.id)}/confirm`);
        notify(`${c.device_name} is paired.`);
        endOffer();
        await renderDevices();
      }));
      refuse.addEventListener("click", () => busy(refuse, box, async () => {
        await call("POST", `/api/v1/pairing/${encodeURIComponent(c.id)}/refuse`);
        await renderClaims();
      }));
      claims.append(h("div", { class: "card claim", "data-claim": c.id },
        h("p", {}, h("strong", {}, c.device_name), " wants to pair. The phone shows the code ",
          h("strong", { class: "mono claim-code" }, c.code), "."),
        h("div", { class: "row" }, confirm, refuse)));
    }
    return state;
  };

  const endOffer = () => {
    clearInterval(timer);
    clearInterval(poll);
    clear(offerBox);
    clear(claims);
    pairButton.hidden = false;
  };

  pairButton.addEventListener("click", () => busy(pairButton, box, async () => {
    const offer = await call("POST", "/api/v1/pairing", { replace: true });
    pairButton.hidden = true;
    const countdown = h("span", { class: "countdown", id: "countdown" });
    const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
    cancel.addEventListener("click", () => busy(cancel, box, async () => {
      await call("DELETE", `/api/v1/pairing/${encodeURIComponent(offer.id)}`).catch(() => {});
      endOffer();
    }));
    append(clear(offerBox),
      offer.qr ? qrCanvas(offer.qr) : null,
      h("p", {}, "Or open this address on the phone: ", h("code", { id: "offer-url" }, offer.payload)),
      h("p", {}, "The code expires in ", countdown, " seconds. ", cancel));
    const tick = () => {
      const left = Math.max(0, Math.round(offer.expires - Date.now() / 1000));
      countdown.textContent = String(left);
      if (left === 0) { endOffer(); notify("The pairing code expired. Start again to pair.", "error"); }
    };
    tick();
    timer = setInterval(tick, 1000);
    poll = setInterval(() => {
      if (!offerBox.isConnected) { clearInterval(timer); clearInterval(poll); return; }
      renderClaims().catch(() => {});
    }, 1500);
  }));

  try {
    await renderDevices();
    if (admin) await renderClaims();
  } catch (err) { showError(box, err); }
}

function scopePicker(name, chosen = ["chat:read", "chat:write"]) {
  const boxes = SCOPES.map((scope) => checkbox(scope, { name, value: scope, checked: chosen.includes(scope) }));
  return {
    element: h("fieldset", { class: "scopes" }, h("legend", {}, "Scopes"), boxes.map((b) => b.label)),
    value: () => boxes.filter((b) => b.input.checked).map((b) => b.input.value),
  };
}

function shownOnce(token, what) {
  return h("div", { class: "card", id: "new-token" },
    h("p", {}, h("strong", {}, `${what}. Copy it now: it is not shown again.`)),
    h("code", { class: "secret", id: "token-value" }, token));
}

export async function tokensPage(view) {
  const box = errorBox();
  const name = field("Name", { id: "token-name", name: "name", required: true, maxlength: 64 });
  const expires = field("Expires after (empty: never)", { id: "token-expires", name: "expires", placeholder: "90d" });
  const scopes = scopePicker("scope");
  const button = h("button", { type: "submit" }, "Create token");
  const created = h("div");
  const list = h("div", { id: "tokens" });
  const form = h("form", { class: "stack", id: "create-token" }, name.label, expires.label, scopes.element, button);
  page(view, "API tokens", box, created, h("div", { class: "card" }, h("h2", {}, "New token"), form), h("h2", {}, "Tokens"), list);

  const render = async () => {
    const [tokens, usage] = await Promise.all([
      call("GET", "/api/v1/tokens"),
      call("GET", "/api/v1/usage").catch(() => null),
    ]);
    const used = new Map();
    for (const row of usage?.tokens || usage?.by_token || []) used.set(row.id || row.token, row);
    clear(list);
    const live = tokens.filter((t) => !t.revoked);
    if (!live.length) { list.append(h("p", { class: "muted" }, "No API tokens.")); return; }
    list.append(table(["Name", "Owner", "Scopes", "Created", "Expires", "Last used", "Use", ""], live.map((t) => {
      const rotate = h("button", { type: "button", class: "quiet", "aria-label": `Rotate ${t.name}` }, "Rotate");
      const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke ${t.name}` }, "Revoke");
      rotate.addEventListener("click", () => busy(rotate, box, async () => {
        const answer = await call("POST", "/auth/rotate-token", { name: t.name });
        append(clear(created), shownOnce(answer.token, `The new token for ${t.name} (the old one works for another hour)`));
        await render();
      }));
      revoke.addEventListener("click", () => busy(revoke, box, async () => {
        if (!window.confirm(`Revoke ${t.name}? Programs using it stop working.`)) return;
        await call("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}`);
        notify(`${t.name} was revoked.`);
        await render();
      }));
      const u = used.get(t.id);
      const use = u ? `${u.requests ?? 0} requests, ${u.total_tokens ?? u.tokens ?? 0} tokens` : "—";
      return [t.name, t.owner, (t.scopes || []).join(" "), when(t.created), when(t.expires), when(t.last_used), use, h("div", { class: "row" }, rotate, revoke)];
    })));
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, box, async () => {
      const body = { name: name.input.value.trim(), scopes: scopes.value() };
      if (expires.input.value.trim()) body.expires = expires.input.value.trim();
      const answer = await call("POST", "/api/v1/tokens", body);
      append(clear(created), shownOnce(answer.token, `The token ${answer.name}`));
      form.reset();
      await render();
    });
  });
  try { await render(); } catch (err) { showError(box, err); }
}

export async function usersPage(view) {
  const box = errorBox();
  const name = field("Username", { id: "user-name", name: "username", required: true, autocomplete: "off" });
  const pass = field("Password", { id: "user-password", name: "password", type: "password", required: true, autocomplete: "new-password" });
  const scopes = scopePicker("user-scope");
  const button = h("button", { type: "submit" }, "Add user");
  const list = h("div", { id: "users" });
  const form = h("form", { class: "stack", id: "add-user" }, name.label, pass.label, scopes.element, button);
  page(view, "Users", box, list, h("div", { class: "card" }, h("h2", {}, "New user"), form));
  const render = async () => {
    const users = await call("GET", "/api/v1/users");
    clear(list);
    list.append(table(["User", "Scopes", "State", "Created", ""], users.map((u) => {
      const toggle = h("button", { type: "button", class: "quiet", "aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.username}` }, u.disabled ? "Enable" : "Disable");
      const remove = h("button", { type: "button", class: "danger", "aria-label": `Remove ${u.username}` }, "Remove");
      toggle.addEventListener("click", () => busy(toggle, box, async () => {
        await call("PATCH", `/api/v1/users/${encodeURIComponent(u.username)}`, { disabled: !u.disabled });
        await render();
      }));
      remove.addEventListener("click", () => busy(remove, box, async () => {
        if (!window.confirm(`Remove ${u.username}? Their sessions, tokens and devices end.`)) return;
        await call("DELETE", `/api/v1/users/${encodeURIComponent(u.username)}`);
        await render();
      }));
      const state = u.disabled ? "disabled" : u.locked_until ? `locked until ${when(u.locked_until)}` : "active";
      return [u.username, (u.scopes || []).join(" "), state, when(u.created), h("div", { class: "row" }, toggle, remove)];
    })));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, box, async () => {
      await call("POST", "/api/v1/users", { username: name.input.value.trim(), password: pass.input.value, scopes: scopes.value() });
      notify(`${name.input.value.trim()} was added.`);
      form.reset();
      await render();
    });
  });
  try { await render(); } catch (err) { showError(box, err); }
}

export async function auditPage(view) {
  const box = errorBox();
  const actor = field("Actor", { id: "audit-actor", name: "actor", placeholder: "user:alice" });
  const action = field("Action", { id: "audit-action", name: "action", placeholder: "auth. or pairing.confirm" });
  const since = field("Since", { id: "audit-since", name: "since", placeholder: "24h or 2026-01-31T00:00:00Z" });
  const button = h("button", { type: "submit" }, "Show");
  const exportButton = h("button", { type: "button", class: "quiet", id: "audit-export" }, "Export JSONL");
  const chain = h("p", { id: "chain", "aria-live": "polite" }, "Checking the chain…");
  const list = h("div", { id: "audit" });
  const form = h("form", { class: "row", id: "audit-filter" }, actor.label, action.label, since.label, button, exportButton);
  page(view, "Audit log", box, chain, form, list);
  const render = async () => {
    const query = new URLSearchParams({ limit: "200" });
    for (const [key, f] of [["actor", actor], ["action", action], ["since", since]]) {
      if (f.input.value.trim()) query.set(key, f.input.value.trim());
    }
    const answer = await call("GET", `/api/v1/audit?${query}`);
    clear(list);
    const records = (answer.records || []).slice().reverse();
    if (!records.length) { list.append(h("p", { class: "muted" }, "No records match.")); return; }
    list.append(table(["#", "Time", "Actor", "Action", "Target", "Outcome", "From"], records.map((r) =>
      [String(r.seq), when(r.time), r.actor, h("span", { class: "action" }, r.action), r.target, r.outcome, r.source_ip || "—"])));
  };
  const verify = async () => {
    const v = await call("GET", "/api/v1/audit/verify");
    clear(chain);
    chain.append(v.ok
      ? h("span", { class: "status-ok" }, `The chain is intact: ${v.records} records, sealed at #${v.sealed_seq ?? v.last_seq}.`)
      : h("span", { class: "status-bad" }, `The chain is broken at record #${v.seq}: ${v.reason}`));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, box, render);
  });
  exportButton.addEventListener("click", () => busy(exportButton, box, async () => {
    const size = await download("/api/v1/audit/export", "aisopod-audit.jsonl");
    notify(`Exported ${size} bytes.`);
  }));
  try { await Promise.all([render(), verify()]); } catch (err) { showError(box, err); }
}

const SEVERITIES = ["critical", "high", "medium", "low", "info"];

// "the file is readable by others" → "The file is readable by others."
function sentence(text) {
  const t = String(text || "").trim();
  if (!t) return "";
  // The product's name stays lower case.
  const first = /^aisopod\b/.test(t) ? t : `${t[0].toUpperCase()}${t.slice(1)}`;
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

const MODES = {
  strict: "Strict: the gateway refuses to start with authentication off, CORS open to every origin, TLS off on a network address or a weak secret, and names the line to change.",
  local: "Local: those problems are warnings, not refusals. Use it only on a machine nobody else can reach; set [security] mode = \"strict\" for the LAN.",
};

// What /ready says of the sandbox, as a sentence.
function sandboxSentence(state) {
  if (state === "ok") return ["status-ok", "Tools run code in the sandbox (namespaces, cgroups, seccomp and landlock); its self-test passed."];
  if (state === "disabled") return ["muted", "Running code is turned off ([tools.sandbox] enabled = false). Agents can still chat."];
  if (state === "checking") return ["muted", "The sandbox is testing itself; reload in a moment."];
  if (typeof state === "string" && state.startsWith("unavailable")) {
    return ["status-bad", `Running code is unavailable: ${state.replace(/^unavailable:?\s*/, "") || "the kernel lacks what the sandbox needs"}. Run aisopod sandbox check on the gateway for details.`];
  }
  return ["muted", "The gateway did not report the sandbox's state."];
}

function findingCard(f) {
  return h("article", { class: `finding sev-${f.severity}`, "data-id": f.id },
    h("h3", {}, h("span", { class: "sev" }, f.severity), " ", sentence(f.title)),
    h("p", {}, h("strong", {}, "Seen: "), sentence(f.evidence)),
    h("p", {}, h("strong", {}, "Fix: "), sentence(f.fix)),
    h("p", { class: "muted mono" }, f.id));
}

async function renderSecurity(box) {
  const report = await call("GET", "/api/v1/security/audit");
  clear(box);
  const mode = report.security_mode;
  box.append(h("p", { id: "security-mode" }, h("strong", {}, `Security mode: ${mode}. `), MODES[mode] || ""));
  const s = report.summary || {};
  const counts = SEVERITIES.map((k) => `${s[k] || 0} ${k}`).join(", ");
  const serious = (s.critical || 0) + (s.high || 0);
  box.append(h("p", { id: "audit-summary", class: serious ? "status-bad" : "status-ok" },
    serious ? `The audit found ${serious} problem${serious === 1 ? "" : "s"} to fix now (${counts}).` : `Nothing critical or high (${counts}).`));
  const findings = (report.findings || []).slice()
    .sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity));
  box.append(h("div", { id: "findings" }, findings.map(findingCard)));
  box.append(h("p", { class: "muted" }, `Checked ${when(report.generated)}. The same report: aisopod security audit on the gateway; --fix repairs file modes there.`));
}

export async function settingsPage(view, me) {
  const admin = me.scopes.includes("admin");
  const box = errorBox();
  const current = field("Current password", { id: "current-password", type: "password", required: true, autocomplete: "current-password" });
  const next = field("New password", { id: "new-password", type: "password", required: true, autocomplete: "new-password" });
  const button = h("button", { type: "submit" }, "Change password");
  const form = h("form", { class: "stack", id: "password" }, current.label, next.label, button);
  const providers = h("div", { id: "providers" });
  const caButton = h("button", { type: "button", class: "quiet", id: "ca" }, "Download the device CA");
  const status = h("div", { id: "status" });
  const sandbox = h("p", { id: "sandbox" }, "Asking the gateway…");
  const security = h("div", { id: "security", "aria-live": "polite" }, h("p", { class: "muted" }, "Running the security audit…"));
  const rerun = h("button", { type: "button", class: "quiet", id: "rerun-audit" }, "Run the audit again");
  page(view, "Settings", box,
    h("div", { class: "card" }, h("h2", {}, "Your password"), h("p", { class: "muted" }, "Changing it signs out every other session."), form),
    admin ? h("section", { class: "card", "aria-labelledby": "security-title" }, h("h2", { id: "security-title" }, "Security"), security, rerun) : null,
    h("div", { class: "card" }, h("h2", {}, "Sandbox"), sandbox),
    h("div", { class: "card" }, h("h2", {}, "Gateway"), status),
    h("div", { class: "card" }, h("h2", {}, "Provider keys"), providers),
    h("div", { class: "card" }, h("h2", {}, "Certificate"), h("p", {}, "Install the device CA on a phone or computer so it trusts this gateway."), caButton));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(button, box, async () => {
      await call("POST", "/api/v1/me/password", { current_password: current.input.value, new_password: next.input.value });
      form.reset();
      notify("Your password was changed; other sessions were signed out.");
    });
  });
  caButton.addEventListener("click", () => busy(caButton, box, () => download("/ca.crt", "aisopod-ca.crt")));
  const renderStatus = async () => {
    const ready = await fetch("/ready").then((r) => r.json()).catch(() => null);
    clear(status);
    const checks = ready?.checks || {};
    const [kind, text] = sandboxSentence(checks.sandbox);
    sandbox.className = kind;
    sandbox.textContent = text;
    status.append(table(["Check", "State"], Object.entries(checks).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])));
  };
  const renderProviders = async () => {
    const answer = await call("GET", "/api/v1/providers");
    clear(providers);
    const may = me.scopes.includes("admin") || me.scopes.includes("config:write");
    for (const p of answer.providers || []) {
      const key = field(`New key for ${p.name}`, { type: "password", autocomplete: "off", name: `key-${p.name}` });
      const save = h("button", { type: "submit" }, p.key?.source === "none" ? "Set key" : "Replace key");
      const f = h("form", { class: "stack" }, key.label, save);
      f.addEventListener("submit", (event) => {
        event.preventDefault();
        busy(save, box, async () => {
          await call("PUT", `/api/v1/providers/${encodeURIComponent(p.name)}`, { api_key: key.input.value });
          notify(`The key for ${p.name} was saved.`);
          await renderProviders();
        });
      });
      providers.append(h("div", { class: "provider" },
        h("p", {}, h("strong", {}, p.name), ` (${p.kind}, ${p.base_url}): key ${p.key?.source === "none" || !p.key ? "not set" : `from ${p.key.source}${p.key.hint ? `, ${p.key.hint}` : ""}`}.`),
        may ? f : null));
    }
    if (!(answer.providers || []).length) providers.append(h("p", { class: "muted" }, "No providers are configured."));
  };
  rerun.addEventListener("click", () => busy(rerun, box, () => renderSecurity(security)));
  const work = [renderStatus(), renderProviders()];
  if (admin) work.push(renderSecurity(security));
  await Promise.all(work).catch((err) => showError(box, err));
}
