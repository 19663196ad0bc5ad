// The page's one WebSocket to /ws (docs/websocket.md). It reconnects by
// itself with growing pauses, notices a silently dead connection through its
// own pings, and hands every server message on as an event named by its
// `type` (`hello`, `alarm`, `clock`, `fib_result`, `number`, …), plus
// `state` events: `connecting`, `live` or `offline` (with `retryAt`).

const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;
const MAX_PAUSE_MS = 30_000;

export class Hub extends EventTarget {
  #ws = null;
  #state = 'offline';
  #retryAt = null;
  #attempt = 0;
  #running = false;
  #generation = 0; // bumped by stop(): a connect begun before it must not finish
  #retryTimer = null;
  #pingTimer = null;
  #pongTimer = null;
  #onOnline = () => {
    if (this.#running && !this.#ws) this.#connect();
  };
  // The browser knows the network is gone: say so now rather than after
  // the next unanswered ping.
  #onOffline = () => {
    if (this.#ws) this.#closed(this.#ws, 4001);
  };

  /**
   * `token`: async function giving a fresh access token (or null);
   * `clientId`: kept across reconnects so the counter resumes;
   * `topics`: subscribed after every `hello`.
   */
  constructor({ token, clientId, topics }) {
    super();
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
    try {
      token = await this.options.token();
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
    ws.onmessage = (event) => this.#receive(ws, event.data);
    ws.onclose = (event) => this.#closed(ws, event.code);
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
      this.lastHello = message;
      ws.send(JSON.stringify({ type: 'subscribe', topics: this.options.topics }));
      this.#startPings(ws);
      this.#setState('live');
    } else if (message.type === 'clock') {
      this.lastClock = message;
    } else if (message.type === 'pong') {
      clearTimeout(this.#pongTimer);
    }
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  #startPings(ws) {
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: 'ping', id: 'keepalive' }));
      clearTimeout(this.#pongTimer);
      // A connection that went away without a close frame (a sleeping
      // laptop, a dropped Wi-Fi) would otherwise look live for minutes.
      this.#pongTimer = setTimeout(() => this.#closed(ws, 4000), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  #drop(ws, code) {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
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
