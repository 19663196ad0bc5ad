// Jobs (`#/jobs?state=…&limit=…`): the work the server does in the
// background for you (videos, asynchronous uploads), newest first, a page at
// a time with "Show more". Each row changes as the job does: pushed on the
// WebSocket's `jobs` topic, or, while the socket is down, polled every 2 s
// (the first page and the running and queued lists, then each job that left
// them). Admins see everyone's jobs, but pushes come for their own only:
// other accounts' jobs are polled every 5 s.
//
// A listed job stays listed when it leaves the filtered state (a running
// job that ends, say), with its new state, so that nothing moves under the
// pointer; a new job appears on top when it matches the filter.

import { request } from '../api.js';
import { announce, h, plural, timeEl } from '../dom.js';
import { errorText, etaText, isActive, isFinal, isNewer, kindText, POLL_MS, progressBar, progressText, resultText, setProgress, stateBadge, STATE_TEXT, STATES } from '../jobs.js';
import { describe } from '../messages.js';
import * as session from '../session.js';

const PAGE = 20;
/** How often an admin's list polls other accounts' jobs, which are never pushed. */
const FOREIGN_POLL_MS = 5000;
/** Ended jobs fetched one by one per poll, at most; the rest wait for the next. */
const ENDED_PER_POLL = 5;

const at = (job) => Date.parse(job.created_at);
const newestFirst = (a, b) => at(b) - at(a) || (a.id < b.id ? 1 : -1);

export function jobs(root, { jobWatch, params }) {
  const wanted = params.get('state');
  const filter = STATES.includes(wanted) ? wanted : '';
  // Any page size the API takes (1–200) works from the address.
  const asked = Number(params.get('limit'));
  const limit = Number.isInteger(asked) && asked >= 1 && asked <= 200 ? asked : PAGE;
  const me = session.currentUser();
  const admin = me?.role === 'admin';

  const select = h(
    'select',
    { id: 'j-state', name: 'state' },
    h('option', { value: '', selected: filter === '' }, 'All states'),
    STATES.map((state) => h('option', { value: state, selected: state === filter }, STATE_TEXT[state])),
  );
  const form = h(
    'form',
    { class: 'filters', method: 'post', 'aria-label': 'Filter' },
    h('p', { class: 'field' }, h('label', { for: 'j-state' }, 'State'), select),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Show')),
  );
  const status = h('p', { class: 'hint', role: 'status', id: 'jobs-status' }, 'Loading…');
  const liveNote = h('p', { class: 'hint live-note' });
  const error = h('p', { class: 'error', role: 'alert', id: 'jobs-error', hidden: true });
  const tbody = h('tbody', {});
  const table = h(
    'div',
    { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-labelledby': 'jobs-caption', hidden: true },
    h(
      'table',
      { class: 'jobs' },
      h('caption', { id: 'jobs-caption' }, admin ? 'Jobs of every account, newest first' : 'Your jobs, newest first'),
      h('thead', {}, h('tr', {}, ['Job', 'State', 'Progress', 'Created', 'Result', 'Action'].map((text) => h('th', { scope: 'col' }, text)))),
      tbody,
    ),
  );
  const empty = h(
    'p',
    { class: 'empty', id: 'jobs-empty', hidden: true },
    filter ? `No ${STATE_TEXT[filter].toLowerCase()} jobs.` : 'No jobs yet. ',
    filter ? null : ['Upload a video on the ', h('a', { href: '#/upload' }, 'Upload'), ' page: it is analysed here, in the background.'],
  );
  const more = h('button', { type: 'button', id: 'jobs-more', hidden: true }, 'Show more');
  const view = h(
    'section',
    { class: 'jobs-view', 'aria-labelledby': 'view-title', dataset: { live: 'false' } },
    h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Jobs'), status),
    form,
    liveNote,
    error,
    table,
    empty,
    h('nav', { class: 'pager', 'aria-label': 'More jobs' }, more),
  );
  root.append(view);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (select.value) query.set('state', select.value);
    if (limit !== PAGE) query.set('limit', limit);
    location.hash = query.toString() ? `#/jobs?${query}` : '#/jobs';
  });

  let alive = true;
  let loaded = false;
  let cursor = null; // of the next page; null once the last is shown
  /** id → JobView, and id → the parts of its row that change. */
  const known = new Map();
  const rows = new Map();

  const showError = (text) => {
    error.textContent = text;
    error.hidden = !text;
  };

  // A job that is not listed belongs on top when it matches the filter and
  // is no older than the oldest shown (older ones come with "Show more").
  const belongs = (job) => {
    if (filter && job.state !== filter) return false;
    if (!cursor) return true;
    const oldest = [...known.values()].reduce((min, j) => Math.min(min, at(j)), Infinity);
    return at(job) >= oldest;
  };

  const cancel = async (id) => {
    const row = rows.get(id);
    const job = known.get(id);
    row.cancel.disabled = true;
    row.cancel.textContent = 'Cancelling…';
    showError('');
    const hadFocus = document.activeElement === row.cancel;
    try {
      update(await request('DELETE', `/api/v1/jobs/${id}`));
      render();
      announce(`Job ${job.source} cancelled`);
      // The button is gone with the job's end: focus stays in the row.
      if (hadFocus) row.name.focus({ preventScroll: true });
    } catch (err) {
      if (err.code === 'job_finished') {
        request('GET', `/api/v1/jobs/${id}`).then((now) => update(now) && render(), () => {});
      } else {
        showError(`Could not cancel ${job.source}: ${describe(err)}`);
      }
    } finally {
      row.cancel.disabled = false;
      row.cancel.textContent = 'Cancel';
    }
  };

  const makeRow = (job) => {
    const name = h('span', { class: 'job-source' }, job.source);
    const state = h('td', { class: 'job-state-cell' });
    const bar = progressBar(job, { label: `job-${job.id}-name` });
    const counts = h('span', { class: 'job-counts' });
    const eta = h('span', { class: 'job-eta' });
    const result = h('td', { class: 'job-result' });
    const cancelButton = h('button', { type: 'button', class: 'job-cancel', 'aria-label': `Cancel ${job.source}`, onclick: () => cancel(job.id) }, 'Cancel');
    const header = h('th', { scope: 'row', id: `job-${job.id}-name`, tabindex: -1 },
      h('span', { class: 'job-kind' }, kindText(job)), ' ', name,
      h('br'),
      h('small', { class: 'job-meta' }, [job.fps ? `${job.fps} fps` : null, admin && job.user_id !== me?.id ? `account ${job.user_id}` : null].filter(Boolean).join(' · ')));
    const tr = h(
      'tr',
      { dataset: { jobId: job.id } },
      header,
      state,
      h('td', { class: 'job-progress' }, bar, counts, eta),
      h('td', {}, timeEl(job.created_at)),
      result,
      h('td', {}, cancelButton),
    );
    const row = { tr, name: header, state, bar, counts, eta, result, cancel: cancelButton, word: '' };
    rows.set(job.id, row);
    return row;
  };

  const fill = (row, job) => {
    row.tr.dataset.state = job.state;
    if (row.word !== job.state) {
      row.word = job.state;
      row.state.replaceChildren(stateBadge(job));
    }
    setProgress(row.bar, job);
    row.counts.textContent = progressText(job);
    const left = etaText(job);
    row.eta.textContent = left ? ` · ${left}` : '';
    const failed = job.state === 'failed' ? errorText(job) || 'The job failed.' : '';
    row.result.replaceChildren(
      ...[
        job.result.detections || isFinal(job) ? h('span', { class: 'job-outcome' }, resultText(job)) : '—',
        failed ? h('span', { class: 'job-error' }, failed) : null,
      ].filter(Boolean),
    );
    // Hidden, not removed: the cell keeps its width and a focused button is not destroyed mid-click.
    row.cancel.hidden = !isActive(job);
  };

  const render = () => {
    const list = [...known.values()].sort(newestFirst);
    const want = list.map((job) => rows.get(job.id).tr);
    // Reorder only when the order changed: moving a focused button would blur it.
    if (want.some((tr, i) => tbody.children[i] !== tr) || tbody.children.length !== want.length) {
      const focused = tbody.contains(document.activeElement) ? document.activeElement : null;
      tbody.replaceChildren(...want);
      focused?.focus({ preventScroll: true });
    }
    table.hidden = list.length === 0;
    empty.hidden = list.length > 0 || !loaded;
    more.hidden = !cursor;
    const count = loaded ? (list.length ? `${plural(list.length, 'job')} shown${cursor ? ', more below' : ''}` : '') : 'Loading…';
    if (status.textContent !== count) status.textContent = count;
  };

  /** Takes a newer picture of a job in; `listed`: it came in a page, so it belongs. */
  function update(job, listed = false) {
    if (!job?.id) return false;
    const old = known.get(job.id);
    if (!old) {
      if (!listed && !belongs(job)) return false;
      known.set(job.id, job);
      fill(makeRow(job), job);
      return true;
    }
    if (!isNewer(old, job)) return false;
    known.set(job.id, job);
    fill(rows.get(job.id), job);
    if (!isFinal(old) && isFinal(job)) announce(`Job ${job.source} ${STATE_TEXT[job.state].toLowerCase()}`);
    return true;
  }

  const loadMore = async () => {
    more.disabled = true;
    try {
      const page = await request('GET', '/api/v1/jobs', { query: { state: filter, limit, cursor: loaded ? cursor : undefined } });
      if (!alive) return;
      showError('');
      for (const job of page.items) update(job, true);
      cursor = page.next_cursor ?? null;
      loaded = true;
      render();
    } catch (err) {
      if (!alive) return;
      if (!loaded) status.textContent = '';
      showError(describe(err));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', loadMore);

  // What the socket did not say: the first page and the active jobs as they
  // are now (new ones included), then each listed job that was active and
  // has left those lists. `foreignOnly`: the socket tells about the
  // account's own jobs, so only other accounts' are fetched one by one.
  let polling = false;
  const poll = async ({ foreignOnly = false } = {}) => {
    if (polling || !loaded) return;
    polling = true;
    try {
      const [first, running, queued] = await Promise.all([
        request('GET', '/api/v1/jobs', { query: { state: filter, limit } }),
        ...['running', 'queued'].map((state) => request('GET', '/api/v1/jobs', { query: { state, limit: 200 } })),
      ]);
      if (!alive) return;
      const active = new Set([...running.items, ...queued.items].map((job) => job.id));
      // Each answer is a snapshot; update() keeps the newest picture of a job.
      for (const job of [...first.items, ...running.items, ...queued.items]) update(job);
      const left = [...known.values()].filter((job) => isActive(job) && !active.has(job.id) && (!foreignOnly || job.user_id !== me?.id));
      for (const job of left.slice(0, ENDED_PER_POLL)) {
        const now = await request('GET', `/api/v1/jobs/${job.id}`).catch(() => null);
        if (!alive) return;
        update(now);
      }
      render();
      showError('');
    } catch (err) {
      if (alive) showError(`Could not refresh the jobs: ${describe(err)}`);
    } finally {
      polling = false;
    }
  };

  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    if (!alive) return;
    const live = jobWatch.live;
    if (live && !admin) return;
    timer = setTimeout(async () => {
      await poll({ foreignOnly: live });
      schedule();
    }, live ? FOREIGN_POLL_MS : POLL_MS);
  };

  const showLive = () => {
    view.dataset.live = String(jobWatch.live);
    liveNote.textContent = jobWatch.live
      ? 'Jobs change here as the server works on them.'
      : `Not connected: the list is refreshed every ${POLL_MS / 1000} s.`;
  };

  const onJob = (event) => {
    if (update(event.detail)) render();
  };
  // Subscribed (again): what changed before it took effect is fetched.
  const onLive = (event) => {
    showLive();
    if (event.detail.live) poll();
    schedule();
  };
  jobWatch.addEventListener('job', onJob);
  jobWatch.addEventListener('live', onLive);
  const unwatch = jobWatch.watch();
  showLive();
  loadMore().then(() => {
    if (!alive) return;
    // Pushes may have come between the page's query and its answer; the
    // answer itself may be older than a push: update() keeps the newest.
    schedule();
  });

  return () => {
    alive = false;
    clearTimeout(timer);
    jobWatch.removeEventListener('job', onJob);
    jobWatch.removeEventListener('live', onLive);
    unwatch();
  };
}
