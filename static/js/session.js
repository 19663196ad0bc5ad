// Who is logged in. The access token lives only in this module's memory;
// the refresh token is kept in localStorage so that a reload keeps the login
// (docs/security.md explains the trade-off). The access token is renewed
// silently shortly before it expires.
//
// All tabs of a browser share the one stored login, kept with the id of its
// user: a tab that sees another user's login appear reloads as that user
// rather than go on silently as someone else under its old name.

import { ApiError, request, useAuth } from './api.js';

/** JSON `{ user_id, token }`: the refresh token and whose it is. */
const LOGIN_KEY = 'vigil.login';
/** Retry a refresh that failed on the network this much later. */
const RETRY_MS = 10_000;

let access = null; // { token, expiresAt }
let user = null;
let timer = null;
let inflight = null;
const listeners = new Set();

/** The stored login, or null (also for a malformed entry). */
function stored() {
  try {
    const login = JSON.parse(localStorage.getItem(LOGIN_KEY));
    return typeof login?.token === 'string' ? login : null;
  } catch {
    return null;
  }
}

/** The user id (`sub`) inside an access token; null when unreadable. */
function subject(jwt) {
  try {
    const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).sub ?? null;
  } catch {
    return null;
  }
}

/** Another user's login replaced the one this tab shows. */
const replaced = (login) => Boolean(user && login?.user_id && login.user_id !== user.id);

export const currentUser = () => user;
export const accessToken = () => access?.token ?? null;

/** Calls `fn(user)` whenever someone logs in or out (user is null then). */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit() {
  for (const fn of listeners) fn(user);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => {
    refresh().catch(() => schedule(RETRY_MS));
  }, ms);
}

function keep(tokens) {
  localStorage.setItem(LOGIN_KEY, JSON.stringify({ user_id: subject(tokens.access_token), token: tokens.refresh_token }));
  access = { token: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
  // A minute early, or at 80% of the lifetime for short-lived tokens.
  const lead = Math.min(60, tokens.expires_in * 0.2);
  schedule(Math.max(1, tokens.expires_in - lead) * 1000);
}

function forget() {
  clearTimeout(timer);
  access = null;
  localStorage.removeItem(LOGIN_KEY);
  if (user) {
    user = null;
    emit();
  }
}

async function spend() {
  // Read inside the lock: another tab may have spent and replaced it.
  const login = stored();
  if (!login) {
    forget();
    return false;
  }
  if (replaced(login)) {
    // The storage event reloads this tab; spending the other user's token
    // here would only hand this tab's page their session.
    location.reload();
    return false;
  }
  try {
    keep(await request('POST', '/api/v1/auth/refresh', { json: { refresh_token: login.token }, authenticated: false }));
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forget();
      return false;
    }
    throw err; // the network or the server: keep the token, try later
  }
}

/**
 * Trades the refresh token for new tokens; true when it worked, false when
 * the login is over. Refresh tokens are single use, and spending one twice
 * revokes the whole login, so tabs take turns through a Web Lock (where the
 * browser has them: secure origins, which include localhost).
 */
export function refresh() {
  inflight ??= (navigator.locks ? navigator.locks.request('vigil-refresh', spend) : spend()).finally(() => {
    inflight = null;
  });
  return inflight;
}

/** Makes sure the access token has at least 30 s left. */
export async function ensureFresh() {
  if (access && access.expiresAt - Date.now() > 30_000) return true;
  return refresh();
}

export async function loadUser() {
  user = await request('GET', '/api/v1/users/me');
  emit();
  return user;
}

/** loadUser() for fresh tokens: a 401 ends the login rather than leave it refreshed for nobody. */
async function loadOrForget() {
  try {
    return await loadUser();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) forget();
    throw err;
  }
}

/**
 * Resumes the login kept from a previous page load; false when there is
 * none. When the network or the server fails it throws, and keeps trying in
 * the background so that the login is resumed once they are back.
 */
export async function restore() {
  if (!stored()) return false;
  try {
    if (!(await ensureFresh())) return false;
    await loadOrForget();
    return true;
  } catch (err) {
    if (stored()) {
      clearTimeout(timer); // keep() and forget() cancel this retry in turn
      timer = setTimeout(() => restore().catch(() => {}), RETRY_MS);
    }
    throw err;
  }
}

/** Revokes a refresh token on the server; best effort. */
async function revoke(token) {
  try {
    await request('POST', '/api/v1/auth/logout', { json: { refresh_token: token }, authenticated: false });
  } catch {
    // Offline: it expires on its own.
  }
}

export async function login(name, password) {
  const tokens = await request('POST', '/api/v1/auth/login', { json: { login: name, password }, authenticated: false });
  // One login per browser: the one stored (perhaps another user's, in
  // another tab) ends here, and those tabs reload as this user.
  const previous = stored();
  if (previous) await revoke(previous.token);
  keep(tokens);
  try {
    return await loadOrForget();
  } catch (err) {
    // The login form shows the error: no login may linger behind it.
    forget();
    throw err;
  }
}

export function register(userName, email, password) {
  return request('POST', '/api/v1/auth/register', {
    json: { user_name: userName, email, password },
    authenticated: false,
  });
}

/** Revokes the login on the server (best effort) and forgets it here. */
export async function logout() {
  const login = stored();
  try {
    if (login) await revoke(login.token);
  } finally {
    forget();
  }
}

// Logging out in one tab logs out the others; logging in as someone else in
// one tab makes the others that user (a reload: every view, the socket and
// the alarm feed start again as them).
addEventListener('storage', (event) => {
  if (event.key !== LOGIN_KEY && event.key !== null) return;
  const login = stored();
  if (!login && user) {
    clearTimeout(timer);
    access = null;
    user = null;
    emit();
  } else if (replaced(login)) {
    location.reload();
  }
});

useAuth({ token: accessToken, refresh });
