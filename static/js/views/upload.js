// Upload (`#/upload`): drop an image or pick one, it goes to
// POST /api/v1/detections, and the result comes back with its faces marked.

import { request } from '../api.js';
import { announce, h, plural } from '../dom.js';
import { describe } from '../messages.js';
import * as session from '../session.js';
import { detectionBlock } from './detail.js';

function quotaText(user) {
  if (!user) return '';
  const left = Math.max(0, user.api_request_quota - user.api_requests_used);
  return left === 0
    ? `Your quota is used up (${user.api_requests_used} of ${user.api_request_quota}). An admin can raise it.`
    : `${plural(left, 'upload')} left (${user.api_requests_used} of ${user.api_request_quota} used).`;
}

export function upload(root) {
  const quota = h('p', { class: 'quota', id: 'quota' }, quotaText(session.currentUser()));
  const input = h('input', { type: 'file', id: 'upload-file', name: 'image', accept: 'image/*', class: 'visually-hidden' });
  const zone = h(
    'div',
    { class: 'drop' },
    input,
    h(
      'label',
      { for: 'upload-file', class: 'drop-label' },
      h('strong', {}, 'Drop an image here'),
      h('span', {}, 'or ', h('span', { class: 'like-button' }, 'choose a file')),
      h('small', {}, 'JPEG, PNG, WebP, BMP or GIF. Each upload uses one unit of your quota.'),
    ),
  );
  const status = h('p', { class: 'hint', role: 'status', id: 'upload-status' });
  const error = h('div', { class: 'error', role: 'alert', id: 'upload-error', hidden: true });
  const result = h('div', { class: 'upload-result', id: 'upload-result' });
  root.append(
    h(
      'section',
      { class: 'upload', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Upload an image'), quota),
      zone,
      status,
      error,
      result,
    ),
  );

  let busy = false;
  const send = async (file) => {
    if (!file || busy) return;
    busy = true;
    zone.classList.add('busy');
    input.disabled = true;
    error.hidden = true;
    result.replaceChildren();
    status.textContent = `Looking for faces in ${file.name}…`;
    const form = new FormData();
    form.append('image', file, file.name);
    try {
      const detection = await request('POST', '/api/v1/detections', { body: form });
      status.textContent = `${file.name}: ${plural(detection.face_count, 'face')} found.`;
      announce(status.textContent);
      // One fresh copy (new signed URLs) when an image fails to load; an
      // image that fails again is broken for good, not a loop of requests.
      let reloads = 0;
      const show = (d) => result.replaceChildren(
        detectionBlock(d, {
          reload: () => reloads++ < 1 && request('GET', `/api/v1/detections/${d.id}`).then(show, () => {}),
        }),
      );
      show(detection);
    } catch (err) {
      status.textContent = '';
      error.textContent = describe(err);
      error.dataset.code = err.code ?? '';
      error.hidden = false;
    } finally {
      busy = false;
      zone.classList.remove('busy');
      input.disabled = false;
      input.value = '';
      session.loadUser().then((user) => {
        quota.textContent = quotaText(user);
      }, () => {});
    }
  };

  // The quota may have moved since login (uploads elsewhere, an admin).
  session.loadUser().then((user) => {
    quota.textContent = quotaText(user);
  }, () => {});
  input.addEventListener('change', () => send(input.files[0]));
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    send(event.dataTransfer.files[0]);
  });
  // A file dropped beside the zone would otherwise replace the dashboard.
  const swallow = (event) => event.preventDefault();
  window.addEventListener('dragover', swallow);
  window.addEventListener('drop', swallow);
  return () => {
    window.removeEventListener('dragover', swallow);
    window.removeEventListener('drop', swallow);
  };
}
