// The HTTP API client: JSON in and out, the access token on every call, one
// silent retry after a refreshed token or a short rate-limit wait, and every
// failure turned into an ApiError carrying the API's stable error code.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// session.js plugs itself in here, so this module needs no import of it.
let auth = { token: () => null, refresh: async () => false };

export function useAuth(provider) {
  auth = provider;
}

/** Waits this long at most for a rate limit before giving the error to the caller. */
const MAX_AUTO_WAIT_SECS = 3;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfter(response) {
  const secs = Number(response.headers.get('retry-after'));
  return Number.isFinite(secs) && secs >= 0 ? secs : null;
}

async function toError(response) {
  let code = 'http_' + response.status;
  let message = response.statusText || 'request failed';
  try {
    const body = await response.json();
    if (body?.error?.code) {
      code = body.error.code;
      message = body.error.message ?? message;
    }
  } catch {
    // Not our JSON (a proxy's error page): keep the status.
  }
  return new ApiError(response.status, code, message, retryAfter(response));
}

/**
 * `request('GET', '/api/v1/alarms', {query: {limit: 20}})`
 * Options: `json` (a body to send as JSON), `body` (FormData), `query`,
 * `authenticated` (default true).
 */
export async function request(method, path, options = {}) {
  const { json, body, query, authenticated = true } = options;
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  const send = async () => {
    const headers = { accept: 'application/json' };
    const token = authenticated ? auth.token() : null;
    if (token) headers.authorization = `Bearer ${token}`;
    let payload = body;
    if (json !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(json);
    }
    try {
      return await fetch(url, { method, headers, body: payload, cache: 'no-store', credentials: 'omit' });
    } catch {
      throw new ApiError(0, 'network', 'the server could not be reached');
    }
  };

  let response = await send();
  if (response.status === 401 && authenticated && (await auth.refresh().catch(() => false))) {
    response = await send();
  }
  if (response.status === 429 && method === 'GET') {
    const wait = retryAfter(response);
    const body429 = await response.clone().json().catch(() => null);
    if (body429?.error?.code === 'rate_limited' && wait !== null && wait <= MAX_AUTO_WAIT_SECS) {
      await sleep(Math.max(wait, 0.2) * 1000);
      response = await send();
    }
  }
  if (!response.ok) throw await toError(response);
  if (response.status === 204) return null;
  return response.json();
}
