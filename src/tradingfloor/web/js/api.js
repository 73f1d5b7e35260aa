// REST client of the broker API: login (with TOTP), the session's tokens and their refresh,
// JSON errors as ApiError {status, code, message}, and the exchange's market-data REST (/md).
//
// The access token lives 15 minutes: it is refreshed a minute before it expires and whenever
// a request answers 401. Refresh tokens rotate and a reused one revokes the session, so only
// one refresh runs at a time. Tokens are kept in sessionStorage (this tab only). A refresh
// that answers after the session ended (logout while it was on its way) is thrown away and
// its new refresh token revoked: it must not bring the session back.

export const ERR = Object.freeze({
  BAD_CREDENTIALS: 40110000,
  TOKEN_EXPIRED: 40110001,
  TOTP_REQUIRED: 40110002,
  TOTP_ENROLMENT: 40110003,
  LOCKED: 40110004,
  RATE_LIMITED: 42910000,
});

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** The server's words with their code, shown verbatim to the user. */
  get text() {
    return `${this.message} (${this.code})`;
  }
}

const STORAGE_KEY = "tradingfloor.session";
const REFRESH_MARGIN_MS = 60_000;
const state = { access: null, refresh: null, expiresAt: 0, accountId: null };
const endListeners = new Set();
let refreshing = null;
let refreshTimer = null;
let pausedUntil = 0;
let epoch = 0; // one per session: a login or a logout starts the next

/** Call `fn(reason)` when the session ends on its own (refresh refused, user disabled). */
export function onSessionEnd(fn) {
  endListeners.add(fn);
}

export const accessToken = () => state.access;
export const loggedIn = () => state.refresh !== null;

/** Broker and admin users act on a chosen account (TF-Account-Id); null for their own. */
export function setAccountId(id) {
  state.accountId = id || null;
}

/** Milliseconds until the rate limit allows polling again (0 when it does). */
export const rateLimitWait = () => Math.max(0, pausedUntil - Date.now());

function save() {
  const { access, refresh, expiresAt } = state;
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ access, refresh, expiresAt }));
}

function clear() {
  epoch += 1;
  Object.assign(state, { access: null, refresh: null, expiresAt: 0, accountId: null });
  sessionStorage.removeItem(STORAGE_KEY);
  clearTimeout(refreshTimer);
}

function end(reason) {
  clear();
  for (const fn of endListeners) fn(reason);
}

function schedule() {
  clearTimeout(refreshTimer);
  const wait = Math.max(5_000, state.expiresAt - Date.now() - REFRESH_MARGIN_MS);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
}

function adopt(pair) {
  epoch += 1;
  state.access = pair.access_token;
  state.refresh = pair.refresh_token;
  state.expiresAt = Date.now() + pair.expires_in * 1000;
  save();
  schedule();
}

/** Pick up the tab's session after a reload; true if there is one to try. */
export function restore() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (!saved?.refresh) return false;
    Object.assign(state, saved);
    schedule();
    return true;
  } catch {
    return false;
  }
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const code = body?.code ?? body?.error?.code ?? res.status * 100000;
  const message = body?.message ?? body?.error?.message ?? (res.statusText || `HTTP ${res.status}`);
  const wait = Number(res.headers.get("Retry-After"));
  const error = new ApiError(res.status, code, message, Number.isFinite(wait) && wait > 0 ? wait : null);
  if (res.status === 429) pausedUntil = Date.now() + (error.retryAfter ?? 10) * 1000;
  return error;
}

async function postJson(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  return res.status === 204 ? null : res.json();
}

/** The OAuth2 password flow; `totp` only when the server asked for a code. */
export async function login(username, password, totp) {
  const form = new URLSearchParams({ username, password, grant_type: "password" });
  if (totp) form.set("totp", totp);
  const res = await fetch("/api/auth/token", { method: "POST", body: form });
  if (!res.ok) throw await errorOf(res);
  adopt(await res.json());
}

export const enrolTotp = (username, password) =>
  postJson("/api/auth/totp/enrol", { username, password });

export const confirmTotp = (username, password, code) =>
  postJson("/api/auth/totp/confirm", { username, password, code });

/** Revoke a refresh token nobody holds any more (best effort). */
function revoke(token) {
  return fetch("/api/auth/logout", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: token }),
  }).catch(() => {});
}

async function doRefresh() {
  if (!state.refresh) throw new ApiError(401, ERR.BAD_CREDENTIALS, "not logged in");
  const started = epoch;
  let res;
  try {
    res = await fetch("/api/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: state.refresh }),
    });
  } catch (exc) {
    if (epoch === started) schedule(); // the network is down: try again later
    throw exc;
  }
  if (epoch !== started) {
    // The session ended (or was replaced) while this refresh was on its way.
    if (res.ok) {
      const pair = await res.json().catch(() => null);
      if (pair?.refresh_token) revoke(pair.refresh_token);
    }
    throw new ApiError(401, ERR.BAD_CREDENTIALS, "the session ended");
  }
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401 || res.status === 422) end(`Your session has ended: ${error.message}`);
    throw error;
  }
  adopt(await res.json());
}

/** Swap the refresh token for a new pair (one refresh at a time). */
export function refresh() {
  if (!refreshing) refreshing = doRefresh().finally(() => (refreshing = null));
  return refreshing;
}

export async function logout() {
  const token = state.refresh;
  clear();
  if (token) await revoke(token);
}

/** A broker API request; returns the JSON answer (null for 204) or throws ApiError. */
export async function request(method, path, { body, query } = {}, retried = false) {
  if (state.refresh && Date.now() > state.expiresAt - 5_000) await refresh().catch(() => {});
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
    if ([...params].length) url += `?${params}`;
  }
  const headers = {};
  const used = state.access;
  if (used) headers.Authorization = `Bearer ${used}`;
  if (state.accountId) headers["TF-Account-Id"] = state.accountId;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && !retried && state.refresh) {
    await errorOf(res);
    // Refresh unless another request already did while this one was on its way (each refresh
    // rotates the tokens: one per expiry is enough). Throws, and ends the session, when the
    // refresh token is refused.
    if (state.access === used) await refresh();
    return request(method, path, { body, query }, true);
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, query) => request("GET", path, { query });
export const post = (path, body = {}) => request("POST", path, { body });
export const put = (path, body = {}) => request("PUT", path, { body });
export const patch = (path, body = {}) => request("PATCH", path, { body });
export const del = (path, query) => request("DELETE", path, { query });

/** The exchange's market-data REST, mounted under /md (no login needed). */
export async function md(path, query) {
  const params = query ? `?${new URLSearchParams(query)}` : "";
  const res = await fetch(`/md${path}${params}`);
  if (!res.ok) throw await errorOf(res);
  return res.json();
}
