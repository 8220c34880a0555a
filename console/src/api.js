// The one way the console talks to the server: the public API under /api/v1/, with the token of
// the signed-in person in the Authorization header. The token is kept in localStorage, never in
// a cookie, so no other site can make the browser send it (no CSRF); the Content-Security-Policy
// allows only our own scripts, which is what keeps it from being read (docs/console.md).
import { reactive } from "vue";

const API_ROOT = "/api/v1/";
const TOKEN_KEY = "qfc.token";

export const session = reactive({
  token: localStorage.getItem(TOKEN_KEY),
  user: null, // auth/user/ of the token's owner, once read
});

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setToken(token) {
  session.token = token;
  session.user = null;
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

// `path` is relative to /api/v1/ ("projects/"), or a path the server gave (X-Next-Page).
export function apiUrl(path, query) {
  const url = new URL(path.startsWith("/") ? path : API_ROOT + path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  return url.pathname + url.search;
}

// Encodes each segment of a file path, keeping its slashes (docs/routing.md).
export function filePath(name) {
  return name.split("/").map(encodeURIComponent).join("/");
}

// A request; resolves to { data, headers, status }, rejects with an ApiError carrying the
// server's {code, message}. A refused token signs the person out.
export async function request(method, path, { json, form, query } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Token ${session.token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), { method, headers, body, redirect: "error" });
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached. Check the connection and try again.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const code = data && data.code ? data.code : "unknown_error";
    const message = data && data.message ? data.message : `The server answered ${response.status}.`;
    if (response.status === 401 && session.token && code !== "authentication_failed") setToken(null);
    throw new ApiError(response.status, code, message);
  }
  return { data, headers: response.headers, status: response.status };
}

export const get = (path, query) => request("GET", path, { query }).then((r) => r.data);
export const post = (path, json) => request("POST", path, { json }).then((r) => r.data);
export const patch = (path, json) => request("PATCH", path, { json }).then((r) => r.data);
export const del = (path, query) => request("DELETE", path, { query }).then((r) => r.data);

// A page of a list: the items and where the next page is (the server's X-Next-Page, made
// relative so that it stays on this origin).
export async function page(path, query) {
  const reply = await request("GET", path, { query });
  const next = reply.headers.get("X-Next-Page");
  const total = reply.headers.get("X-Total-Count");
  return {
    items: reply.data,
    next: next ? (() => { const u = new URL(next); return u.pathname + u.search; })() : null,
    total: total === null ? null : Number(total),
  };
}

export async function currentUser() {
  if (!session.user && session.token) session.user = await get("auth/user/");
  return session.user;
}

export async function signOut() {
  try {
    await request("POST", "auth/logout/");
  } catch {
    // Signed out here in any case; the token expires on its own if the server was unreachable.
  }
  setToken(null);
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
