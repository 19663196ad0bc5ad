// Who is logged in. The access token lives only in this module's memory;
// the refresh token is kept in localStorage so that a reload keeps the login
// (docs/security.md explains the trade-off). The access token is renewed
// silently shortly before it expires.

import { ApiError, request, useAuth } from './api.js';

const REFRESH_KEY = 'vigil.refresh_token';
/** Retry a refresh that failed on the network this much later. */
const RETRY_MS = 10_000;

let access = null; // { token, expiresAt }
let user = null;
let timer = null;
let inflight = null;
const listeners = new Set();

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
  localStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  access = { token: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
  // A minute early, or at 80% of the lifetime for short-lived tokens.
  const lead = Math.min(60, tokens.expires_in * 0.2);
  schedule(Math.max(1, tokens.expires_in - lead) * 1000);
}

function forget() {
  clearTimeout(timer);
  access = null;
  localStorage.removeItem(REFRESH_KEY);
  if (user) {
    user = null;
    emit();
  }
}

async function spend() {
  // Read inside the lock: another tab may have spent and replaced it.
  const token = localStorage.getItem(REFRESH_KEY);
  if (!token) {
    forget();
    return false;
  }
  try {
    keep(await request('POST', '/api/v1/auth/refresh', { json: { refresh_token: token }, authenticated: false }));
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

/** Resumes the login kept from a previous page load; false when there is none. */
export async function restore() {
  if (!localStorage.getItem(REFRESH_KEY)) return false;
  if (!(await refresh())) return false;
  await loadUser();
  return true;
}

export async function login(name, password) {
  keep(await request('POST', '/api/v1/auth/login', { json: { login: name, password }, authenticated: false }));
  return loadUser();
}

export function register(userName, email, password) {
  return request('POST', '/api/v1/auth/register', {
    json: { user_name: userName, email, password },
    authenticated: false,
  });
}

/** Revokes the login on the server (best effort) and forgets it here. */
export async function logout() {
  const token = localStorage.getItem(REFRESH_KEY);
  try {
    if (token) await request('POST', '/api/v1/auth/logout', { json: { refresh_token: token }, authenticated: false });
  } catch {
    // Offline: the token is forgotten below and expires on its own.
  } finally {
    forget();
  }
}

// Logging out in one tab logs out the others.
addEventListener('storage', (event) => {
  if ((event.key === REFRESH_KEY || event.key === null) && !localStorage.getItem(REFRESH_KEY) && user) {
    clearTimeout(timer);
    access = null;
    user = null;
    emit();
  }
});

useAuth({ token: accessToken, refresh });
