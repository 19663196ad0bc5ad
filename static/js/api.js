// The HTTP API client: JSON in and out, the access token on every call, one
// silent retry after a refreshed token or a short rate-limit wait, and every
// failure turned into an ApiError carrying the API's stable error code.
// `upload` is the same for a large body whose progress is shown.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null, fields = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    /** The request's fields that broke a rule: `[{field, problem}]`. */
    this.fields = fields;
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

function seconds(header) {
  const secs = Number(header);
  return Number.isFinite(secs) && secs >= 0 ? secs : null;
}

function retryAfter(response) {
  return seconds(response.headers.get('retry-after'));
}

function errorOf(status, statusText, text, retry) {
  let code = 'http_' + status;
  let message = statusText || 'request failed';
  let fields = [];
  try {
    const body = JSON.parse(text);
    if (body?.error?.code) {
      code = body.error.code;
      message = body.error.message ?? message;
      if (Array.isArray(body.error.fields)) fields = body.error.fields;
    }
  } catch {
    // Not our JSON (a proxy's error page): keep the status.
  }
  return new ApiError(status, code, message, retry, fields);
}

async function toError(response) {
  const text = await response.text().catch(() => '');
  return errorOf(response.status, response.statusText, text, retryAfter(response));
}

function urlOf(path, query) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  return url;
}

/**
 * `request('GET', '/api/v1/alarms', {query: {limit: 20}})`
 * Options: `json` (a body to send as JSON), `body` (FormData), `query`,
 * `authenticated` (default true).
 */
export async function request(method, path, options = {}) {
  const { json, body, query, authenticated = true } = options;
  const url = urlOf(path, query);
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

/**
 * `request` for a large body (FormData), with its progress:
 * `onProgress(sent, total)` as the body goes out (`total` null when the
 * browser cannot tell). XMLHttpRequest, since fetch reports no upload
 * progress. `signal` (an AbortSignal) stops it: the promise then rejects with
 * the code `aborted`. A rate limit is not waited out and sent again (that
 * would send the whole body twice): the caller gets the error. A 401 is tried
 * once more after a refresh, but the caller should make sure of a fresh
 * token first, since a server may close the connection on an unauthorised
 * body rather than read it all and answer.
 */
export async function upload(method, path, options = {}) {
  const { body, query, onProgress, signal } = options;
  const url = urlOf(path, query);
  const aborted = () => new ApiError(0, 'aborted', 'the upload was stopped');
  const send = () => new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(aborted());
      return;
    }
    const xhr = new XMLHttpRequest();
    const stop = () => xhr.abort();
    xhr.open(method, url);
    xhr.setRequestHeader('accept', 'application/json');
    const token = auth.token();
    if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.upload.addEventListener('progress', (event) => onProgress?.(event.loaded, event.lengthComputable ? event.total : null));
    xhr.addEventListener('load', () => resolve(xhr));
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'the server could not be reached')));
    xhr.addEventListener('timeout', () => reject(new ApiError(0, 'network', 'the server could not be reached')));
    xhr.addEventListener('abort', () => reject(aborted()));
    xhr.addEventListener('loadend', () => signal?.removeEventListener('abort', stop));
    signal?.addEventListener('abort', stop, { once: true });
    xhr.send(body);
  });

  let xhr = await send();
  if (xhr.status === 401 && (await auth.refresh().catch(() => false))) {
    xhr = await send();
  }
  if (xhr.status < 200 || xhr.status > 299) {
    throw errorOf(xhr.status, xhr.statusText, xhr.responseText, seconds(xhr.getResponseHeader('retry-after')));
  }
  if (xhr.status === 204 || !xhr.responseText) return null;
  try {
    return JSON.parse(xhr.responseText);
  } catch {
    throw new ApiError(xhr.status, 'http_' + xhr.status, 'the answer was not JSON');
  }
}
