// The page's one WebSocket to /ws (docs/websocket.md). It reconnects by
// itself with growing pauses, notices a silently dead connection by the
// `clock` tick going quiet (the server sends one every second to a session
// subscribed to `clock`; a JSON ping would be logged server-side, twice, per
// tab), and hands every server message on as an event named by its
// `type` (`hello`, `alarm`, `clock`, `fib_result`, `number`, …), plus
// `state` events: `connecting`, `live` or `offline` (with `retryAt`).

/** A live connection silent this long (no clock tick, nothing) is dead. */
const SILENT_MS = 10_000;
/** A connection that has not said `hello` this long after opening is given up. */
const HELLO_WITHIN_MS = 10_000;
const MAX_PAUSE_MS = 30_000;

export class Hub extends EventTarget {
  #ws = null;
  #state = 'offline';
  #retryAt = null;
  #attempt = 0;
  #running = false;
  #generation = 0; // bumped by stop(): a connect begun before it must not finish
  #retryTimer = null;
  #watchdog = null; // the hello timeout, then the silence timeout
  #helloSeen = false; // of the current socket
  #staleToken = false; // the last socket closed before `hello`: the token may be bad
  #onOnline = () => {
    if (this.#running && !this.#ws) this.#connect();
  };
  // The browser knows the network is gone: say so now rather than after
  // the clock tick goes quiet.
  #onOffline = () => {
    if (this.#ws) this.#closed(this.#ws, 4001);
  };

  /**
   * `token`: async function (force) giving a fresh access token (or null);
   *   with `force` true it must not reuse a cached one;
   * `clientId`: kept across reconnects so the counter resumes;
   * `topics`: subscribed after every `hello`.
   */
  constructor({ token, clientId, topics }) {
    super();
    // The silence check relies on the clock tick.
    if (!topics.includes('clock')) topics = [...topics, 'clock'];
    this.options = { token, clientId, topics };
    this.lastHello = null;
    this.lastClock = null;
  }

  get state() {
    return this.#state;
  }

  get retryAt() {
    return this.#retryAt;
  }

  start() {
    if (this.#running) return;
    this.#running = true;
    addEventListener('online', this.#onOnline);
    addEventListener('offline', this.#onOffline);
    this.#connect();
  }

  stop() {
    this.#running = false;
    this.#generation += 1;
    removeEventListener('online', this.#onOnline);
    removeEventListener('offline', this.#onOffline);
    clearTimeout(this.#retryTimer);
    if (this.#ws) this.#drop(this.#ws, 1000);
    this.#attempt = 0;
    this.#staleToken = false;
    this.lastHello = null;
    this.lastClock = null;
    this.#setState('offline', null);
  }

  /** Sends when live; false otherwise (the caller decides whether that matters). */
  send(message) {
    if (this.#state !== 'live' || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  #setState(state, retryAt = null) {
    this.#state = state;
    this.#retryAt = retryAt;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, retryAt } }));
  }

  async #connect() {
    clearTimeout(this.#retryTimer);
    if (!this.#running || this.#ws) return;
    const generation = this.#generation;
    this.#setState('connecting');
    let token = null;
    // A handshake refused before `hello` (a restarted dev server with a new
    // signing secret, a revoked login) would be refused again with the
    // same token: get a new one first.
    const force = this.#staleToken;
    try {
      token = await this.options.token(force);
      if (force) this.#staleToken = false;
    } catch {
      // Offline or the server is down: same as a failed connection.
    }
    if (!this.#running || this.#ws || generation !== this.#generation) return;
    if (!token) {
      this.#retry();
      return;
    }
    const url = new URL('/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('client_id', this.options.clientId);
    url.searchParams.set('token', token);
    const ws = new WebSocket(url);
    this.#ws = ws;
    this.#helloSeen = false;
    ws.onmessage = (event) => this.#receive(ws, event.data);
    ws.onclose = (event) => this.#closed(ws, event.code);
    // A handshake that hangs (a proxy holding the upgrade, a server that
    // accepts but never greets) would otherwise leave the page "connecting".
    this.#watch(ws, HELLO_WITHIN_MS, 4002);
  }

  #watch(ws, ms, code) {
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => this.#closed(ws, code), ms);
  }

  #receive(ws, data) {
    if (ws !== this.#ws) return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof message?.type !== 'string') return;
    if (message.type === 'hello') {
      this.#attempt = 0;
      this.#helloSeen = true;
      this.#staleToken = false;
      this.lastHello = message;
      ws.send(JSON.stringify({ type: 'subscribe', topics: this.options.topics }));
      this.#setState('live');
    } else if (message.type === 'clock') {
      this.lastClock = message;
    }
    // Any message proves the connection alive. One that went away without
    // a close frame (a sleeping laptop, a dropped Wi-Fi) would otherwise
    // look live for minutes.
    if (this.#helloSeen) this.#watch(ws, SILENT_MS, 4000);
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  #drop(ws, code) {
    clearTimeout(this.#watchdog);
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close(code);
    } catch {
      // Already closing.
    }
    if (this.#ws === ws) this.#ws = null;
  }

  #closed(ws, code) {
    if (this.#ws !== ws) return;
    if (!this.#helloSeen && navigator.onLine) this.#staleToken = true;
    this.#drop(ws, 1000);
    this.dispatchEvent(new CustomEvent('closed', { detail: { code } }));
    this.#retry();
  }

  #retry() {
    if (!this.#running) return;
    // 1 s, 2 s, 4 s … 30 s, each ±25% so that a restarted server is not
    // hit by every dashboard in the same instant.
    const pause = Math.min(MAX_PAUSE_MS, 1000 * 2 ** this.#attempt) * (0.75 + Math.random() * 0.5);
    this.#attempt += 1;
    this.#setState('offline', Date.now() + pause);
    this.#retryTimer = setTimeout(() => this.#connect(), pause);
  }
}
