// Realtime (`#/realtime`): the hub's demos, live in the page.
// - the server clock, ticking once a second;
// - Fibonacci: the answer goes to this tab's session only;
// - the even/odd counter (docs/websocket.md): the value resumes from
//   `hello.value`, the increment is added every 500 ms and reported with
//   `value`, and every random 3–5 s a `number` request for a random parity
//   brings the new increment. It runs while this view is open: each report
//   is a row in the server's message log, so a dashboard in the background
//   should not keep writing two a second.

import { h, randomId, timeEl } from '../dom.js';

const TICK_MS = 500;
const LOG_LINES = 8;

// Survives leaving and reopening the view; `null` until a hello is seen.
// `hello` is the greeting the value was last taken from: a newer one (a
// reconnect, another login) is where the server says to resume.
const counter = { value: null, increment: 1, paused: false, hello: null };

const randomBetween = (min, max) => min + Math.random() * (max - min);

export function realtime(root, { hub }) {
  const clock = h('p', { class: 'clock', id: 'clock' }, '—');
  const clockNote = h('p', { class: 'hint' }, 'Waiting for the first tick…');

  const fibInput = h('input', { id: 'fib-n', name: 'n', type: 'number', min: 0, step: 1, required: true, inputmode: 'numeric', value: 100 });
  const fibButton = h('button', { type: 'submit', class: 'primary' }, 'Compute');
  const fibOut = h('output', { id: 'fib-result', for: 'fib-n', class: 'fib-result' });
  const fibForm = h(
    'form',
    { class: 'inline-form', method: 'post' },
    h('p', { class: 'field' }, h('label', { for: 'fib-n' }, 'n'), fibInput),
    h('p', { class: 'actions' }, fibButton),
  );

  const valueEl = h('span', { class: 'counter-value', id: 'counter-value' }, '—');
  const incrementEl = h('span', { id: 'counter-increment' }, String(counter.increment));
  const pause = h('button', { type: 'button', 'aria-pressed': String(counter.paused) }, counter.paused ? 'Resume' : 'Pause');
  const log = h('ol', { class: 'counter-log', id: 'counter-log', 'aria-label': 'Latest even/odd answers' });

  root.append(
    h(
      'section',
      { class: 'realtime', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Realtime')),
      h('div', { class: 'panels' },
        h('section', { class: 'panel', 'aria-labelledby': 'clock-h' },
          h('h2', { id: 'clock-h' }, 'Server clock'), clock, clockNote),
        h('section', { class: 'panel', 'aria-labelledby': 'fib-h' },
          h('h2', { id: 'fib-h' }, 'Fibonacci'),
          h('p', { class: 'hint' }, 'Computed by the server; the answer is sent to this tab only.'),
          fibForm, fibOut),
        h('section', { class: 'panel', 'aria-labelledby': 'counter-h' },
          h('h2', { id: 'counter-h' }, 'Even/odd counter'),
          h('p', { class: 'counter' }, valueEl),
          h('p', { class: 'counter-facts' }, 'Increment: ', incrementEl),
          h('p', { class: 'hint' }, 'The increment is added every 0.5 s (the value stays within 0–99 and the server keeps it for this tab); every 3–5 s the server is asked for an even or an odd number, which becomes the new increment.'),
          h('p', { class: 'actions' }, pause),
          log)),
    ),
  );

  // The clock.
  const onClock = (event) => {
    clock.replaceChildren(timeEl(event.detail.now, { withDate: false }));
    clockNote.replaceChildren('Server time, in your time zone: ', timeEl(event.detail.now));
  };

  // Fibonacci.
  let pending = null;
  fibForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const n = Number(fibInput.value);
    if (!Number.isInteger(n) || n < 0) {
      fibOut.textContent = 'n must be a whole number, 0 or more.';
      return;
    }
    pending = randomId('fib-');
    if (!hub.send({ type: 'fib', id: pending, n })) {
      pending = null;
      fibOut.textContent = 'Not connected to the server; try again once the indicator says Live.';
      return;
    }
    fibOut.textContent = `Computing F(${n})…`;
  });
  const onFib = (event) => {
    const { id, n, value } = event.detail;
    if (id !== pending) return;
    pending = null;
    fibOut.replaceChildren(
      h('span', { class: 'fib-head' }, `F(${n}) has ${value.length} digit${value.length === 1 ? '' : 's'}:`),
      // Focusable: a long number scrolls, and keyboard users need to reach it.
      h('span', { class: 'fib-value', id: 'fib-value', tabindex: 0 }, value),
    );
  };
  const onError = (event) => {
    if (pending && event.detail.id === pending) {
      pending = null;
      fibOut.textContent = event.detail.message;
    }
  };
  // The answer goes to the session that asked: once it is gone, so is the
  // answer, and the question has to be asked again.
  const onClosed = () => {
    if (!pending) return;
    pending = null;
    fibOut.textContent = 'The connection dropped before the answer came; compute again once the indicator says Live.';
  };

  // The counter.
  const show = () => {
    valueEl.textContent = counter.value === null ? '—' : String(counter.value);
    incrementEl.textContent = String(counter.increment);
  };
  const adopt = (hello) => {
    if (!hello || hello === counter.hello) return;
    counter.hello = hello;
    counter.value = hello.value ?? 0;
    show();
  };
  const onHello = (event) => adopt(event.detail);
  adopt(hub.lastHello);
  const tick = setInterval(() => {
    if (counter.paused || counter.value === null || hub.state !== 'live') return;
    counter.value = (counter.value + counter.increment) % 100;
    hub.send({ type: 'value', value: counter.value });
    show();
  }, TICK_MS);
  let askTimer = null;
  const ask = () => {
    askTimer = setTimeout(() => {
      if (!counter.paused) hub.send({ type: 'number', kind: Math.random() < 0.5 ? 'even' : 'odd' });
      ask();
    }, randomBetween(3000, 5000));
  };
  ask();
  const onNumber = (event) => {
    const { kind, value } = event.detail;
    counter.increment = value;
    show();
    log.prepend(h('li', {}, timeEl(new Date().toISOString(), { withDate: false }), ` asked for ${kind}, got ${value}: the new increment`));
    while (log.children.length > LOG_LINES) log.lastChild.remove();
  };
  pause.addEventListener('click', () => {
    counter.paused = !counter.paused;
    pause.textContent = counter.paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(counter.paused));
  });

  if (hub.lastClock) onClock({ detail: hub.lastClock });
  const listeners = [['clock', onClock], ['fib_result', onFib], ['error', onError], ['hello', onHello], ['number', onNumber], ['closed', onClosed]];
  for (const [type, fn] of listeners) hub.addEventListener(type, fn);
  show();
  return () => {
    clearInterval(tick);
    clearTimeout(askTimer);
    for (const [type, fn] of listeners) hub.removeEventListener(type, fn);
  };
}
