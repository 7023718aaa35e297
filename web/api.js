// The gateway's HTTP API as the dashboard uses it. The access token lives only in this
// module's memory; the refresh token is an HttpOnly cookie sent only to /auth/refresh,
// which this page can neither read nor send anywhere else. Nothing is kept in
// the browser's web storage.

const CLIENT = { "X-Aisopod-Client": "dashboard" };
let access = null;
let expiresAt = 0;
let refreshing = null;
const listeners = new Set();

// Sentences for the error codes a person meets; anything else uses the server's message.
const SENTENCES = {
  invalid_credentials: "The username or password is wrong.",
  invalid_credential: "Your session has ended. Please sign in again.",
  unauthorized: "Please sign in first.",
  forbidden: "Your account is not allowed to do that.",
  throttled: "Too many sign-in attempts. Wait a minute and try again.",
  rate_limited: "Too many requests. Wait a moment and try again.",
  wrong_claim_code: "That claim code is wrong or has expired. Restart the gateway for a new one.",
  already_claimed: "This gateway already has an owner. Sign in instead.",
  weak_password: "That password is too easy to guess. Choose a longer one.",
  not_found: "That no longer exists.",
  conflict: "That conflicts with something that already exists.",
  busy: "The gateway is busy. Try again in a moment.",
  overloaded: "The gateway is busy. Try again in a moment.",
  already_resolved: "Someone already answered that request.",
  origin_not_allowed: "This page may only be used from the gateway's own address.",
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    const text = SENTENCES[code] || message || `The gateway answered ${status}.`;
    this.sentence = /[.!?]$/.test(text) ? text : `${text[0].toUpperCase()}${text.slice(1)}.`;
  }
}

async function failure(response) {
  let code = "error";
  let message = "";
  try {
    const body = await response.json();
    code = body.error?.code || code;
    message = body.error?.message || "";
  } catch {
    message = "";
  }
  return new ApiError(response.status, code, message);
}

function network(err) {
  return new ApiError(0, "network", `The gateway cannot be reached (${err.message})`);
}

function keep(answer) {
  access = answer.access_token;
  expiresAt = Date.now() + (answer.expires_in || 60) * 1000;
  for (const listener of listeners) listener(true);
}

export function onSession(listener) {
  listeners.add(listener);
}

export function signedIn() {
  return access !== null;
}

function forget() {
  const was = access !== null;
  access = null;
  expiresAt = 0;
  if (was) for (const listener of listeners) listener(false);
}

async function post(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: body === undefined ? { ...CLIENT } : { ...CLIENT, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (err) {
    throw network(err);
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

// A paired phone's credentials, as the pairing page (/p) left them in IndexedDB: a
// non-extractable P-256 key and the device's tokens. A refresh proves the key by
// signing a fresh nonce; the new refresh token replaces the old one there.
const DEVICE_DB = "aisopod-device";
const DEVICE_LABEL = "aisopod-device-refresh";
let deviceMode = false;

function deviceStore() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DEVICE_DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore("keys");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

function deviceGet(db, key) {
  return new Promise((resolve, reject) => {
    const request = db.transaction("keys").objectStore("keys").get(key);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function devicePut(db, key, value) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction("keys", "readwrite");
    tx.objectStore("keys").put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

function base64(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text);
}

async function deviceRefresh() {
  if (!window.indexedDB || !window.crypto?.subtle) return false;
  const db = await deviceStore();
  try {
    const keys = await deviceGet(db, "device");
    const tokens = await deviceGet(db, "tokens");
    if (!keys || !tokens?.refresh_token) return false;
    const nonceResponse = await fetch("/pair/nonce", { headers: CLIENT, cache: "no-store" });
    if (!nonceResponse.ok) throw await failure(nonceResponse);
    const { nonce } = await nonceResponse.json();
    const message = new TextEncoder().encode(`${DEVICE_LABEL}\n${tokens.device_id}\n${nonce}`);
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, message);
    const fresh = await post("/pair/refresh", { refresh_token: tokens.refresh_token, nonce, signature: base64(signature) });
    await devicePut(db, "tokens", { ...fresh, access_token: undefined });
    deviceMode = true;
    keep(fresh);
    return true;
  } finally {
    db.close();
  }
}

export function isDevice() {
  return deviceMode;
}

// A new access token: from a paired phone's key, else from the refresh cookie; one
// refresh at a time.
export function refresh() {
  if (!refreshing) {
    const attempt = deviceMode
      ? deviceRefresh()
      : post("/auth/refresh").then((answer) => { keep(answer); return true; })
        .catch((err) => (err.status === 401 || err.status === 403 ? deviceRefresh().catch(() => false).then((ok) => { if (!ok) throw err; return ok; }) : Promise.reject(err)));
    refreshing = attempt
      .catch((err) => { if (err.status === 401 || err.status === 403) forget(); return false; })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function login(username, password) {
  keep(await post("/auth/login", { username, password }));
}

export async function claim(code, username, password) {
  keep(await post("/setup/claim", { code, username, password }));
}

export async function logout() {
  try {
    await call("POST", "/auth/logout");
  } finally {
    forget();
  }
}

// Calls the API with the access token, refreshing it first when it is about to end
// and once more after a 401.
export async function call(method, path, body, retry = true) {
  if (access && Date.now() > expiresAt - 15000) await refresh();
  const headers = { ...CLIENT };
  if (access) headers.Authorization = `Bearer ${access}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (err) {
    throw network(err);
  }
  if (response.status === 401 && retry && access) {
    if (await refresh()) return call(method, path, body, false);
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// The response itself, for downloads (the CA certificate, an audit export).
export async function download(path, filename) {
  const headers = { ...CLIENT };
  if (access) headers.Authorization = `Bearer ${access}`;
  const response = await fetch(path, { headers, credentials: "same-origin" }).catch((err) => { throw network(err); });
  if (!response.ok) throw await failure(response);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob.size;
}
