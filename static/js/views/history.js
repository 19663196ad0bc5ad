// History (`#/history?kind=detections|alarms&from=…&to=…`): the caller's
// detections or alarms in a time range, a page at a time. The filter lives
// in the address, so a reload or a shared link shows the same list.

import { request } from '../api.js';
import { h, plural, timeEl } from '../dom.js';
import { describe } from '../messages.js';

const PAGE_SIZES = [20, 50, 100];

/** `datetime-local` value (reader's zone) ⇄ RFC 3339. */
function toInstant(local) {
  if (!local) return '';
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

function toLocalInput(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return '';
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  // To the second: the input has step=1.
  return shifted.toISOString().slice(0, 19);
}

function row(kind, item) {
  const isAlarm = kind === 'alarms';
  const href = `#/${kind}/${item.id}`;
  const when = isAlarm ? item.date : item.created_at;
  const img = isAlarm ? item.img : item.annotated_url;
  const where = item.camera_id ? `camera ${item.camera_id}` : item.source;
  return h(
    'li',
    { class: 'history-row', 'data-id': item.id },
    h('a', { href, class: 'history-link' },
      h('div', { class: 'thumb-box small' }, item.image_kept === false
        ? h('span', { class: 'thumb no-image', title: 'Image not kept: the server was short of disk space' }, '—')
        : h('img', { class: 'thumb', src: img, alt: '', loading: 'lazy', decoding: 'async' })),
      h('span', { class: 'history-when' }, timeEl(when)),
      h('span', { class: 'history-what' }, isAlarm ? item.message : plural(item.face_count, 'face')),
      h('span', { class: 'history-where' }, where),
      isAlarm ? h('span', { class: 'history-faces' }, plural(item.face_count, 'face')) : h('span', { class: 'history-faces' }, `${item.width} × ${item.height}`),
    ),
  );
}

export function history(root, { params }) {
  const kind = params.get('kind') === 'alarms' ? 'alarms' : 'detections';
  const from = params.get('from') ?? '';
  const to = params.get('to') ?? '';
  // Any size the API takes (1–200) works from the address; the menu offers a few.
  const asked = Number(params.get('limit'));
  const limit = Number.isInteger(asked) && asked >= 1 && asked <= 200 ? asked : PAGE_SIZES[0];
  const sizes = PAGE_SIZES.includes(limit) ? PAGE_SIZES : [limit, ...PAGE_SIZES];

  const select = (name, label, options, value) => {
    const id = `h-${name}`;
    return h('p', { class: 'field' }, h('label', { for: id }, label), h('select', { id, name }, options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value) }, text))));
  };
  const when = (name, label, value) => {
    const id = `h-${name}`;
    return h('p', { class: 'field' }, h('label', { for: id }, label), h('input', { id, name, type: 'datetime-local', value: toLocalInput(value), step: 1 }));
  };
  const form = h(
    'form',
    { class: 'filters', method: 'post', 'aria-label': 'Filter' },
    select('kind', 'Show', [['detections', 'Detections'], ['alarms', 'Alarms']], kind),
    when('from', 'From', from),
    when('to', 'To', to),
    select('limit', 'Per page', sizes.map((n) => [n, String(n)]), limit),
    h('p', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Show'), ' ', h('button', { type: 'button', class: 'plain', id: 'h-clear' }, 'Clear')),
  );
  const status = h('p', { class: 'hint', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const list = h('ul', { class: 'history', 'aria-label': kind === 'alarms' ? 'Alarms' : 'Detections' });
  const prev = h('button', { type: 'button', disabled: true }, '← Newer');
  const next = h('button', { type: 'button', disabled: true }, 'Older →');
  const pageLabel = h('span', { class: 'page-label' });
  root.append(
    h(
      'section',
      { class: 'history-view', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'History')),
      form,
      error,
      status,
      list,
      h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageLabel, next),
    ),
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const query = new URLSearchParams({ kind: data.get('kind'), limit: data.get('limit') });
    const fromValue = toInstant(data.get('from'));
    const toValue = toInstant(data.get('to'));
    if (fromValue) query.set('from', fromValue);
    if (toValue) query.set('to', toValue);
    location.hash = `#/history?${query}`;
  });
  form.querySelector('#h-clear').addEventListener('click', () => {
    location.hash = `#/history?kind=${kind}`;
  });

  // Cursors of the pages seen so far: [undefined (page 1), cursor of page 2, …].
  const cursors = [undefined];
  let page = 0;
  let alive = true;
  const load = async () => {
    status.textContent = 'Loading…';
    error.hidden = true;
    prev.disabled = next.disabled = true;
    try {
      const result = await request('GET', `/api/v1/${kind}`, { query: { from, to, limit, cursor: cursors[page] } });
      if (!alive) return;
      list.replaceChildren(...result.items.map((item) => row(kind, item)));
      cursors[page + 1] = result.next_cursor;
      prev.disabled = page === 0;
      next.disabled = !result.next_cursor;
      pageLabel.textContent = `Page ${page + 1}`;
      const what = kind === 'alarms' ? 'alarm' : 'detection';
      status.textContent = result.items.length
        ? `Showing ${plural(result.items.length, what)}, newest first.`
        : page === 0 ? `No ${what}s${from || to ? ' in this time range' : ' yet'}.` : `No more ${what}s.`;
    } catch (err) {
      if (!alive) return;
      status.textContent = '';
      error.textContent = describe(err);
      error.hidden = false;
      prev.disabled = page === 0;
    }
  };
  prev.addEventListener('click', () => {
    page -= 1;
    load();
  });
  next.addEventListener('click', () => {
    page += 1;
    load();
  });
  load();
  return () => {
    alive = false;
  };
}
