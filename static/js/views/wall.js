// The live alarm wall (`#/wall`): newest first, one card per alarm, a new
// one slides in highlighted and is announced to screen readers.

import { WALL_SIZE } from '../alarms.js';
import { announce, h, plural, timeEl } from '../dom.js';
import { describe } from '../messages.js';

/** How long a card keeps its "new" highlight. */
const NEW_FOR_MS = 15_000;

function origin(alarm) {
  return alarm.camera_id ? ['camera ', h('strong', {}, alarm.camera_id)] : ['source ', h('strong', {}, alarm.source)];
}

/** What a camera alarm recorded while the server's disk was full shows instead of its frame. */
function notKept() {
  return h('p', { class: 'thumb no-image' }, 'Image not kept: the server was short of disk space');
}

function card(alarm, feed, isNew) {
  const img = alarm.image_kept === false ? notKept() : h('img', {
    class: 'thumb',
    src: alarm.img,
    alt: `Frame of this alarm with ${plural(alarm.face_count, 'face')} marked`,
    loading: 'lazy',
    decoding: 'async',
  });
  // Signed URLs expire (an hour by default); a wall left open gets new ones.
  if (alarm.image_kept !== false) img.addEventListener(
    'error',
    () => {
      feed.renew(alarm.id).then((fresh) => {
        img.src = fresh.img;
      }, () => {});
    },
    { once: true },
  );
  const item = h(
    'li',
    { class: ['alarm', isNew && 'is-new'], 'data-alarm-id': alarm.id },
    h(
      'a',
      { class: 'alarm-link', href: `#/alarms/${alarm.id}` },
      h('div', { class: 'thumb-box' }, img),
      h(
        'div',
        { class: 'alarm-body' },
        isNew ? h('span', { class: 'new-tag' }, 'New') : null,
        h('p', { class: 'alarm-message' }, alarm.message),
        h('p', { class: 'meta' }, timeEl(alarm.date)),
        h('p', { class: 'meta' }, origin(alarm), ' · ', h('span', { class: 'face-count' }, plural(alarm.face_count, 'face'))),
      ),
    ),
  );
  if (isNew) {
    setTimeout(() => {
      item.classList.remove('is-new');
      item.querySelector('.new-tag')?.remove();
    }, NEW_FOR_MS);
  }
  return item;
}

export function wall(root, { feed, hub }) {
  const list = h('ol', { class: 'alarms', 'aria-label': 'Alarms, newest first' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No alarms yet. Upload a photo with a face, or start a camera, and its alarm appears here at once.');
  const gap = h('p', { class: 'notice', hidden: true }, `More alarms arrived while the connection was down than the wall holds (${WALL_SIZE}); older ones are in `, h('a', { href: '#/history?kind=alarms' }, 'History'), '.');
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const status = h('p', { class: 'hint' });
  root.append(
    h(
      'section',
      { class: 'wall', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Alarms'), status),
      gap,
      error,
      empty,
      list,
    ),
  );

  const cards = new Map();
  const render = ({ added = [], fresh = false } = {}) => {
    const addedIds = new Set(added.map((a) => a.id));
    const wanted = new Set(feed.items.map((a) => a.id));
    for (const [id, node] of cards) {
      if (!wanted.has(id)) {
        node.remove();
        cards.delete(id);
      }
    }
    // Insert in feed order, reusing existing nodes: a card never appears twice.
    let previous = null;
    for (const alarm of feed.items) {
      let node = cards.get(alarm.id);
      if (!node) {
        node = card(alarm, feed, fresh && addedIds.has(alarm.id));
        cards.set(alarm.id, node);
      }
      const expected = previous ? previous.nextSibling : list.firstChild;
      if (node !== expected) list.insertBefore(node, expected);
      previous = node;
    }
    empty.hidden = !feed.loaded || feed.items.length > 0;
    gap.hidden = !feed.gap;
    error.hidden = !feed.error;
    if (feed.error) error.textContent = `Could not load alarms: ${describe(feed.error)}`;
    if (fresh && added.length) {
      announce(added.length === 1 ? `New alarm: ${added[0].message}` : `${added.length} new alarms`);
    }
    if (!document.hidden) feed.markSeen();
  };
  const showState = () => {
    status.textContent = hub.state === 'live'
      ? 'Live: new alarms appear at the top as they happen.'
      : 'Not connected: alarms raised meanwhile appear as soon as the connection is back.';
  };
  const onChange = (event) => render(event.detail);
  const onVisible = () => {
    if (!document.hidden) feed.markSeen();
  };
  feed.addEventListener('change', onChange);
  hub.addEventListener('state', showState);
  document.addEventListener('visibilitychange', onVisible);
  render();
  showState();
  if (!feed.loaded && hub.state === 'live') feed.catchUp();
  return () => {
    feed.removeEventListener('change', onChange);
    hub.removeEventListener('state', showState);
    document.removeEventListener('visibilitychange', onVisible);
  };
}
