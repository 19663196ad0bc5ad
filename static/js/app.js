// The dashboard's entry point: the session, the one WebSocket, the alarm
// feed, the jobs topic, the header, and a hash router that mounts one view
// at a time into <main>. Each view is a function (root, context) that may
// return a cleanup.

import { AlarmFeed } from './alarms.js';
import { h, randomId } from './dom.js';
import { JobWatch } from './jobs.js';
import { describe } from './messages.js';
import * as session from './session.js';
import { cameras } from './views/cameras.js';
import { detail } from './views/detail.js';
import { devices } from './views/devices.js';
import { history } from './views/history.js';
import { jobs } from './views/jobs.js';
import { people } from './views/people.js';
import { login, register } from './views/login.js';
import { realtime } from './views/realtime.js';
import { rules } from './views/rules.js';
import { upload } from './views/upload.js';
import { wall } from './views/wall.js';
import { Hub } from './ws.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const sessionBar = document.getElementById('session');
const conn = document.getElementById('conn');
const whoami = document.getElementById('whoami');
const badge = document.getElementById('unseen');
const camerasLink = document.getElementById('nav-cameras');

// One id per tab, kept across reloads, so the counter resumes where it was.
const CLIENT_KEY = 'vigil.client_id';
const clientId = sessionStorage.getItem(CLIENT_KEY) ?? randomId('dash-');
sessionStorage.setItem(CLIENT_KEY, clientId);

const hub = new Hub({
  clientId,
  topics: ['alarms', 'clock'],
  // `force`: the last handshake was refused, so the cached token may be one
  // the server no longer accepts (a restarted server with a new secret).
  token: async (force) => ((await (force ? session.refresh() : session.ensureFresh())) ? session.accessToken() : null),
});
const feed = new AlarmFeed(hub);
// Subscribed only while a view follows jobs (Upload, Jobs).
const jobWatch = new JobWatch(hub);

const routes = [
  [/^\/wall$/, (root, ctx) => wall(root, ctx)],
  [/^\/history$/, (root, ctx) => history(root, ctx)],
  [/^\/(detections|alarms)\/([0-9a-f]{24})$/, (root, ctx, m) => detail(root, { ...ctx, kind: m[1], id: m[2] })],
  [/^\/upload$/, (root, ctx) => upload(root, ctx)],
  [/^\/jobs$/, (root, ctx) => jobs(root, ctx)],
  [/^\/people$/, (root, ctx) => people(root, ctx)],
  [/^\/rules$/, (root, ctx) => rules(root, ctx)],
  [/^\/devices$/, (root, ctx) => devices(root, ctx)],
  [/^\/cameras$/, (root, ctx) => cameras(root, ctx)],
  [/^\/realtime$/, (root, ctx) => realtime(root, ctx)],
];

let cleanup = null;
let loginNotice = null;
let loginPrefill = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/wall';
  const [path, query = ''] = raw.split('?');
  return { path, params: new URLSearchParams(query) };
}

function mount(render) {
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  main.replaceChildren();
  cleanup = render(main);
}

function route() {
  const { path, params } = parseHash();
  if (!session.currentUser()) {
    const notice = loginNotice;
    loginNotice = null;
    if (path === '/register') {
      mount((root) => register(root, {
        onRegistered: (name) => {
          loginNotice = `Account ${name} created. Log in with it now.`;
          loginPrefill = name;
          location.hash = '#/login';
        },
      }));
    } else {
      const prefill = loginPrefill;
      loginPrefill = null;
      mount((root) => login(root, { notice, prefill }));
    }
    return;
  }
  if (path === '/login' || path === '/register') {
    location.replace('#/wall');
    return;
  }
  const match = routes.map(([pattern, view]) => [path.match(pattern), view]).find(([m]) => m);
  const context = { hub, feed, jobWatch, params };
  if (match) {
    mount((root) => match[1](root, context, match[0]));
  } else {
    mount((root) => {
      root.append(h('section', { class: 'missing' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Nothing here'), h('p', {}, h('a', { href: '#/wall' }, 'Back to the alarms'))));
    });
  }
  for (const link of nav.querySelectorAll('a[data-route]')) {
    const current = path.startsWith(`/${link.dataset.route}`) || (link.dataset.route === 'history' && /^\/(detections|alarms)\//.test(path));
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  updateBadge();
  // Moving focus to the new heading tells keyboard and screen-reader users
  // that the page changed.
  document.getElementById('view-title')?.focus({ preventScroll: true });
}

function onWall() {
  return parseHash().path === '/wall' && !document.hidden;
}

function updateBadge() {
  if (onWall()) feed.markSeen();
  const n = feed.unseen;
  badge.hidden = n === 0;
  badge.replaceChildren(n > 99 ? '99+' : String(n), h('span', { class: 'visually-hidden' }, n === 1 ? ' new alarm' : ' new alarms'));
  document.title = n > 0 ? `(${n}) vigil` : 'vigil';
}

// Only the state word is in the live region (and only written when it
// changes): a countdown in it would be read out every second.
function showConnection({ state, retryAt }) {
  conn.dataset.state = state;
  const text = conn.querySelector('.conn-text');
  const word = state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Offline';
  if (text.textContent !== word) text.textContent = word;
  const retry = conn.querySelector('.conn-retry');
  retry.textContent = state === 'offline' && retryAt ? `, retrying in ${Math.max(1, Math.round((retryAt - Date.now()) / 1000))} s` : '';
}

function onSession(user) {
  const loggedIn = Boolean(user);
  nav.hidden = !loggedIn;
  sessionBar.hidden = !loggedIn;
  if (loggedIn) {
    whoami.textContent = user.role === 'admin' ? `${user.user_name} (admin)` : user.user_name;
    camerasLink.hidden = user.role !== 'admin';
    hub.start();
  } else {
    hub.stop();
    feed.reset();
  }
}

let lastUser = null;
session.onChange((user) => {
  const changed = Boolean(user) !== Boolean(lastUser) || user?.id !== lastUser?.id;
  lastUser = user;
  onSession(user);
  if (changed) {
    if (!user && !loginNotice) loginNotice = 'Your session has ended. Please log in again.';
    route();
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  loginNotice = 'You are logged out.';
  await session.logout();
});

hub.addEventListener('state', (event) => showConnection(event.detail));
// The "retrying in N s" countdown.
setInterval(() => {
  if (hub.state === 'offline' && hub.retryAt) showConnection({ state: hub.state, retryAt: hub.retryAt });
}, 1000);
feed.addEventListener('unseen', updateBadge);
document.addEventListener('visibilitychange', updateBadge);
addEventListener('hashchange', route);

async function start() {
  try {
    await session.restore();
  } catch (err) {
    loginNotice = `Could not resume your session: ${describe(err)}`;
  }
  if (!session.currentUser()) route();
}

start();
