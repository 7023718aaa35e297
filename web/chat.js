// The live socket (/ws, opened with a one-time ticket) and the chat page: agents,
// chats, streamed answers, tool calls as cards, approvals answered inline, cancel.

import { call, signedIn } from "./api.js";
import { h, clear, append, field, checkbox, errorBox, showError, busy, notify } from "./ui.js";

const handlers = new Set();
let ws = null;
let wanted = false;
let retry = null;
export const pending = new Map();

function emit(message) {
  for (const handler of handlers) {
    try { handler(message); } catch (err) { console.error(err); }
  }
}

export function onMessage(handler) {
  handlers.add(handler);
  return () => handlers.delete(handler);
}

export function socketOpen() {
  return ws !== null && ws.readyState === WebSocket.OPEN;
}

// Opens the one socket; callers that ask while it is being opened share that attempt
// (two sockets would deliver every approval twice).
let opening = null;
export function connect() {
  wanted = true;
  if (ws && ws.readyState <= WebSocket.OPEN) return Promise.resolve();
  if (!opening) opening = openSocket().finally(() => { opening = null; });
  return opening;
}

async function openSocket() {
  clearTimeout(retry);
  const { ticket } = await call("POST", "/auth/ws-ticket");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
  ws = socket;
  socket.addEventListener("open", () => emit({ type: "socket.open" }));
  socket.addEventListener("message", (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.type === "approval.request") pending.set(message.requestId, message);
    if (message.type === "approval.resolved") pending.delete(message.requestId);
    emit(message);
  });
  socket.addEventListener("close", (event) => {
    if (ws === socket) ws = null;
    emit({ type: "socket.closed", code: event.code, reason: event.reason });
    if (wanted && signedIn()) retry = setTimeout(() => connect().catch(() => {}), 3000);
  });
}

export function disconnect() {
  wanted = false;
  clearTimeout(retry);
  pending.clear();
  if (ws) ws.close(1000, "signed out");
  ws = null;
}

export function send(message) {
  if (!socketOpen()) throw new Error("The live connection is down; it reconnects by itself in a few seconds.");
  ws.send(JSON.stringify(message));
}

// An inline approval dialog; answering sends approval.respond over the socket.
export function approvalCard(request) {
  const box = errorBox();
  const remember = checkbox("Remember this for the agent", { name: "remember" });
  const answer = (allow) => (event) => busy(event.currentTarget, box, async () => {
    send({
      type: "approval.respond",
      requestId: request.requestId,
      allow,
      remember: request.rememberOffered ? remember.input.checked : false,
      inputHash: request.inputHash,
    });
  });
  const card = h("section", { class: "approval", role: "group", "aria-label": `Approval for ${request.toolName}`, "data-request": request.requestId },
    h("strong", {}, `The agent wants to run ${request.toolName}`),
    h("p", { class: "muted" }, `${request.reason || "A rule asks for a person's approval"} (asked by ${request.requester?.user || "someone"}${request.requester?.agent ? ` through ${request.requester.agent}` : ""}).`),
    h("pre", { class: "mono" }, JSON.stringify(request.toolInput, null, 2)),
    request.rememberOffered ? remember.label : null,
    h("div", { class: "row" },
      h("button", { type: "button", class: "allow", onclick: answer(true) }, "Allow"),
      h("button", { type: "button", class: "danger deny", onclick: answer(false) }, "Deny")),
    box);
  return card;
}

export function resolveCard(card, resolved) {
  clear(card);
  card.append(h("strong", {}, resolved.allowed ? "Allowed" : "Denied"),
    ` by ${resolved.decidedBy || "the gateway"}${resolved.ending && resolved.ending !== "answered" ? ` (${resolved.ending})` : ""}.`);
  card.classList.add("resolved");
}

function authorOf(message) {
  const author = message.author || {};
  return { kind: author.kind || "user", name: author.name || "" };
}

export async function chatPage(view) {
  const log = h("div", { class: "log", id: "chat-log", "aria-live": "polite", "aria-label": "Messages" });
  const list = h("ul", { id: "chats" });
  const error = errorBox();
  const agents = field("Agent", { tag: "select", id: "agent", name: "agent" });
  const title = field("New chat", { id: "chat-title", name: "title", placeholder: "Title", maxlength: 200 });
  const prompt = field("Message", { tag: "textarea", id: "prompt", name: "content", rows: 3, required: true });
  const sendButton = h("button", { type: "submit", id: "send" }, "Send");
  const cancelButton = h("button", { type: "button", id: "cancel", class: "quiet", disabled: true }, "Cancel");
  const status = h("p", { class: "muted", id: "chat-status", "aria-live": "polite" });
  let current = null;
  const bubbles = new Map();
  const tools = new Map();

  const composer = h("form", { class: "stack", id: "composer" }, prompt.label, h("div", { class: "row" }, sendButton, cancelButton), status);
  const newChat = h("form", { class: "stack", id: "new-chat" }, title.label, agents.label, h("button", { type: "submit" }, "Start chat"));
  append(clear(view), h("h1", {}, "Chat"), error,
    h("div", { class: "chat" },
      h("aside", {}, newChat, h("h2", {}, "Chats"), list),
      h("section", { "aria-label": "Conversation" }, log, composer)));

  const bubble = (kind, who, text, id) => {
    const body = h("span", { class: "text" }, text);
    const el = h("div", { class: `bubble ${kind}`, "data-id": id ?? "" }, h("span", { class: "who" }, who), body);
    log.append(el);
    log.scrollTop = log.scrollHeight;
    return body;
  };
  const turnRunning = (running) => {
    cancelButton.disabled = !running;
    sendButton.disabled = running;
    status.textContent = running ? "The agent is answering…" : "";
  };

  async function open(chat) {
    current = chat;
    bubbles.clear();
    tools.clear();
    clear(log);
    for (const item of list.querySelectorAll("button")) {
      item.setAttribute("aria-current", String(item.dataset.id === chat.id));
    }
    try {
      const page = await call("GET", `/api/v1/chats/${encodeURIComponent(chat.id)}/messages?limit=100`);
      for (const message of page.messages || []) {
        const author = authorOf(message);
        bubble(author.kind, author.name, message.content, message.id);
      }
      for (const request of pending.values()) log.append(approvalCard(request));
    } catch (err) {
      showError(error, err);
    }
  }

  async function loadChats(select) {
    const found = await call("GET", "/api/v1/chats?limit=100");
    clear(list);
    for (const chat of found.chats || []) {
      list.append(h("li", {}, h("button", { type: "button", class: "quiet", "data-id": chat.id, onclick: () => open(chat) }, chat.title || chat.id)));
    }
    const chats = found.chats || [];
    const pick = chats.find((c) => c.id === select) || (current && chats.find((c) => c.id === current.id)) || chats[0];
    if (pick) await open(pick);
  }

  newChat.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter || newChat.querySelector("button"), error, async () => {
      const chat = await call("POST", "/api/v1/chats", {
        title: title.input.value.trim() || "New chat",
        agent: agents.input.value || undefined,
      });
      title.input.value = "";
      await loadChats(chat.id);
      prompt.input.focus();
    });
  });

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = prompt.input.value.trim();
    if (!content) return;
    if (!current) { showError(error, { sentence: "Start a chat first." }); return; }
    error.hidden = true;
    try {
      send({ type: "chat.send", chatId: current.id, content });
      bubble("user", "you", content);
      prompt.input.value = "";
      turnRunning(true);
    } catch (err) {
      showError(error, err);
    }
  });
  prompt.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) composer.requestSubmit();
  });
  cancelButton.addEventListener("click", () => {
    if (current) {
      try { send({ type: "chat.cancel", chatId: current.id }); } catch (err) { showError(error, err); }
    }
  });

  const stop = onMessage((m) => {
    if (!log.isConnected) { stop(); return; }
    if (m.type === "approval.request") {
      if (log.querySelector(`[data-request="${CSS.escape(m.requestId)}"]`)) return;
      log.append(approvalCard(m));
      log.scrollTop = log.scrollHeight;
      return;
    }
    if (m.type === "approval.resolved") {
      const card = log.querySelector(`[data-request="${CSS.escape(m.requestId)}"]`);
      if (card) resolveCard(card, m);
      return;
    }
    if (m.type === "socket.closed") { turnRunning(false); return; }
    if (!current || m.chatId !== current.id) return;
    switch (m.type) {
      case "chat.accepted":
        bubbles.set(m.messageId, bubble("agent", m.agent, "", m.messageId));
        break;
      case "chat.delta": {
        let body = bubbles.get(m.messageId);
        if (!body) { body = bubble("agent", "agent", "", m.messageId); bubbles.set(m.messageId, body); }
        body.textContent += m.delta;
        log.scrollTop = log.scrollHeight;
        break;
      }
      case "tool.call": {
        const card = h("section", { class: "tool", "aria-label": `Tool call ${m.name}`, "data-call": m.callId },
          h("strong", {}, `Tool: ${m.name}`), h("p", { class: "muted state" }, "Running…"));
        tools.set(m.callId, card);
        log.append(card);
        break;
      }
      case "tool.result": {
        const card = tools.get(m.callId);
        if (card) {
          card.classList.add(m.ok ? "ok" : "failed");
          const state = card.querySelector(".state");
          state.textContent = m.ok ? "Finished." : "Failed or refused.";
          card.append(h("pre", { class: "mono" }, typeof m.result === "string" ? m.result : JSON.stringify(m.result, null, 2)));
        }
        break;
      }
      case "chat.done":
        turnRunning(false);
        status.textContent = m.finishReason === "cancelled" ? "Cancelled." : `Done (${m.usage?.totalTokens ?? 0} tokens).`;
        break;
      case "chat.error":
        turnRunning(false);
        showError(error, { sentence: m.code === "cancelled" ? "The answer was cancelled." : `The answer failed: ${m.message}` });
        break;
      default:
    }
  });

  try {
    const found = await call("GET", "/api/v1/agents");
    for (const agent of found.agents || []) agents.input.append(h("option", { value: agent.name }, agent.name));
    await loadChats();
    await connect();
  } catch (err) {
    showError(error, err);
  }
  if (!socketOpen()) notify("");
}
