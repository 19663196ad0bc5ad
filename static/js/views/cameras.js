// Cameras (`#/cameras`): the status of every camera, refreshed every few
// seconds. The API is for admins; anyone else is told so.

import { ApiError, request } from '../api.js';
import { h, timeEl } from '../dom.js';
import { describe } from '../messages.js';

const REFRESH_MS = 5000;

const STATE_TEXT = {
  starting: 'Starting',
  running: 'Running',
  backoff: 'Reconnecting',
  finished: 'Finished',
  failed: 'Failed',
  stopped: 'Stopped',
  standby: 'Standby',
};

function when(iso) {
  return iso ? timeEl(iso) : '—';
}

function table(cameras) {
  const head = ['Camera', 'Status', 'Source', 'Last frame', 'Last alarm', 'Frames (captured / searched / dropped)', 'Alarms', 'Restarts', 'Last error'];
  return h(
    'div',
    { class: 'table-scroll', tabindex: 0, role: 'region', 'aria-label': 'Camera status table' },
    h(
      'table',
      { class: 'cameras' },
      h('thead', {}, h('tr', {}, head.map((text) => h('th', { scope: 'col' }, text)))),
      h(
        'tbody',
        {},
        cameras.map((c) => h(
          'tr',
          { 'data-camera-id': c.id },
          h('th', { scope: 'row' }, c.id),
          h('td', {}, h('span', { class: ['state', `state-${c.status}`] }, STATE_TEXT[c.status] ?? c.status),
            c.status === 'backoff' && c.retry_at ? [h('br'), h('small', {}, 'retry at ', timeEl(c.retry_at, { withDate: false }))] : null,
            c.status === 'standby' ? [h('br'), h('small', { title: c.instance_id ?? '' }, c.instance_id ? `runs on instance ${c.instance_id.slice(0, 8)}` : 'no instance runs it')] : null),
          h('td', { class: 'source' }, c.source, h('br'), h('small', {}, `${c.fps} fps · cooldown ${c.cooldown_secs} s${c.loop ? ' · loop' : ''}`)),
          h('td', {}, when(c.last_frame_at)),
          h('td', {}, when(c.last_alarm_at)),
          h('td', {}, `${c.frames_captured} / ${c.frames_processed} / ${c.frames_dropped}`),
          h('td', {}, String(c.alarms_raised)),
          h('td', {}, String(c.restarts)),
          h('td', { class: 'last-error' }, c.last_error ?? '—'),
        )),
      ),
    ),
  );
}

export function cameras(root) {
  const body = h('div', { class: 'cameras-body' }, h('p', { class: 'hint', role: 'status' }, 'Loading…'));
  const updated = h('p', { class: 'hint' });
  root.append(
    h(
      'section',
      { class: 'cameras-view', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Cameras'), updated),
      body,
    ),
  );
  let timer = null;
  let alive = true;
  const load = async () => {
    try {
      const list = await request('GET', '/api/v1/cameras');
      if (!alive) return;
      body.replaceChildren(
        list.length
          ? table(list)
          : h('p', { class: 'empty' }, 'No cameras are running. Start one with ', h('code', {}, '--camera id=door,source=…'), ' or ', h('code', {}, 'POST /api/v1/cameras'), '.'),
      );
      updated.replaceChildren('Updated ', timeEl(new Date().toISOString(), { withDate: false }), ', every 5 s.');
      timer = setTimeout(load, REFRESH_MS);
    } catch (err) {
      if (!alive) return;
      if (err instanceof ApiError && err.status === 403) {
        // Not an admin: nothing will change by asking again.
        body.replaceChildren(h('p', { class: 'notice' }, 'Camera status is visible to admins only. Ask an admin if you need it.'));
        return;
      }
      body.replaceChildren(h('p', { class: 'error', role: 'alert' }, describe(err)));
      timer = setTimeout(load, REFRESH_MS);
    }
  };
  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
