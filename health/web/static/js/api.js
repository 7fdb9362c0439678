// The node's JSON API, as the dashboard uses it: the health routes (/health/...) and the
// node's own (/status, ...). Same origin only; the session is the node's HttpOnly cookie,
// and its bearer token kept for this tab (sessionStorage) is sent too.

import { h } from "./dom.js";

const TOKEN_KEY = "bighealth.session";
const TIMEOUT_MS = 30000;

/** A refused or failed request: `status` (0: no answer), the API's message and reason. */
export class ApiError extends Error {
  constructor(status, message, reason = "") {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function keepToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the cookie alone carries the session */
  }
}

/** The JSON answer of `method path` (body sent as JSON); ApiError otherwise. */
export async function request(method, path, body = undefined) {
  const headers = { accept: "application/json" };
  const bearer = token();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal: controller.signal,
    });
  } catch (error) {
    throw new ApiError(0, `the node did not answer (${error.message || error})`);
  } finally {
    clearTimeout(timer);
  }
  const text = await response.text();
  let document = null;
  try {
    document = text ? JSON.parse(text) : null;
  } catch {
    document = null;
  }
  if (!response.ok) {
    const message = (document && (document.error || document.message)) || response.statusText;
    throw new ApiError(response.status, String(message), (document && document.reason) || "");
  }
  return document;
}

export const get = (path) => request("GET", path);

let decrypting = Promise.resolve();

/**
 * GET a route that decrypts on the node (readings, glucose statistics), one at a time: the
 * node serialises one keystore's work anyway, and parallel requests would only wait there
 * and time out.
 */
export function getDecrypted(path) {
  const result = decrypting.then(() => get(path));
  decrypting = result.catch(() => undefined);
  return result;
}
export const post = (path, body = {}) => request("POST", path, body);

/** Unlock `keystore` on the node; the session document. */
export async function logIn(keystore, passphrase) {
  const session = await post("/health/session", { keystore, passphrase });
  keepToken(session && session.token);
  return session;
}

/** End the session (on the node too, when it still answers). */
export async function logOut() {
  try {
    await request("DELETE", "/health/session");
  } finally {
    keepToken(null);
  }
}

/** Who the session is, or null without one. */
export async function me() {
  try {
    return await get("/health/me");
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      keepToken(null);
      return null;
    }
    throw error;
  }
}

/** A contract action signed by the session's keystore on the node; its receipt. */
export function act(action, fields) {
  return post(`/health/actions/${action}`, fields);
}

// -- names ------------------------------------------------------------------------------

const names = new Map();
const MAX_NAMES = 512;

/** The identity document of `id` (cached for the page's life), or null. */
export async function identity(id) {
  if (!names.has(id)) {
    if (names.size >= MAX_NAMES) names.delete(names.keys().next().value);
    names.set(
      id,
      get(`/health/identities/${id}`).catch(() => null),
    );
  }
  return names.get(id);
}

/** A readable name of an identity document. */
export function nameOf(document, id = "") {
  if (!document) return `${id.slice(0, 8)}…`;
  const identity = document.identity || document;
  if (identity.label) return identity.label;
  const role = identity.role ? identity.role[0].toUpperCase() + identity.role.slice(1) : "Identity";
  const kind = identity.kind ? ` (${identity.kind})` : "";
  return `${role}${kind} ${String(identity.id || id).slice(0, 8)}…`;
}

/** An element showing the name of identity `id` once known (its id as a tooltip). */
export function nameTag(id) {
  const tag = h("span", { class: "name", title: id }, `${String(id).slice(0, 8)}…`);
  if (id) identity(id).then((document) => (tag.textContent = nameOf(document, id)));
  return tag;
}
