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

// A new access token from the refresh cookie; one refresh at a time.
export function refresh() {
  if (!refreshing) {
    refreshing = post("/auth/refresh")
      .then((answer) => { keep(answer); return true; })
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
