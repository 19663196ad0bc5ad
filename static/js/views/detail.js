// One detection (`#/detections/ID`) or one alarm (`#/alarms/ID`): the full
// annotated image with numbered boxes and the list of faces.

import { ApiError, request } from '../api.js';
import { h, plural, timeEl } from '../dom.js';
import { faceFigure } from '../faces.js';
import { describe } from '../messages.js';
import { allSubjects, enrolError } from './people.js';

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** The detection part, shared with the upload view. With `subjects`, each face can be enrolled. */
export function detectionBlock(detection, { reload, subjects } = {}) {
  const outcome = h('p', { class: 'enrol-outcome', role: 'status' });
  const onEnrol = async (faceIndex, subjectId) => {
    const name = subjects.find((s) => s.id === subjectId)?.name ?? 'the person';
    outcome.textContent = 'Enrolling…';
    try {
      await request('POST', `/api/v1/subjects/${subjectId}/faces`, { json: { detection_id: detection.id, face_index: faceIndex } });
      outcome.textContent = `Face ${faceIndex + 1} enrolled as ${name}: it is recognised from the next image on.`;
    } catch (err) {
      outcome.textContent = enrolError(err);
    }
  };
  const { figure, table } = faceFigure(detection, {
    // An expired signed URL: fetch the detection again for fresh ones.
    onImageError: reload,
    enrol: subjects && detection.faces.length ? { subjects, onEnrol } : undefined,
  });
  return h(
    'div',
    { class: 'detection', 'data-detection-id': detection.id },
    figure,
    h(
      'div',
      { class: 'detection-side' },
      table,
      outcome,
      facts([
        ['Detected', timeEl(detection.created_at)],
        ['Source', detection.camera_id ? `camera ${detection.camera_id}` : detection.source],
        ['Model', `${detection.model}, ${detection.duration_ms.toFixed(0)} ms`],
      ]),
      h('p', { class: 'links' },
        h('a', { href: detection.image_url, target: '_blank', rel: 'noopener' }, 'Original image'),
        ' · ',
        h('a', { href: detection.annotated_url, target: '_blank', rel: 'noopener' }, 'Annotated image'),
        detection.alarm_id ? [' · ', h('a', { href: `#/alarms/${detection.alarm_id}` }, 'Its alarm')] : null,
      ),
    ),
  );
}

export function detail(root, { kind, id }) {
  const body = h('div', { class: 'detail-body' }, h('p', { class: 'hint', role: 'status' }, 'Loading…'));
  const title = h('h1', { id: 'view-title', tabindex: -1 }, kind === 'alarms' ? 'Alarm' : 'Detection');
  root.append(
    h(
      'section',
      { class: 'detail', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, title, h('a', { href: `#/history?kind=${kind}`, class: 'back' }, `All ${kind}`)),
      body,
    ),
  );
  let alive = true;
  let reloads = 0;
  const fail = (err) => body.replaceChildren(h('p', { class: 'error', role: 'alert' }, describe(err)));

  const showDetection = async () => {
    const [detection, subjects] = await Promise.all([request('GET', `/api/v1/detections/${id}`), allSubjects()]);
    if (!alive) return;
    title.textContent = `Detection: ${plural(detection.face_count, 'face')}`;
    body.replaceChildren(detectionBlock(detection, { subjects, reload: () => reloads++ < 1 && showDetection().catch(fail) }));
  };

  const showAlarm = async () => {
    const alarm = await request('GET', `/api/v1/alarms/${id}`);
    if (!alive) return;
    title.textContent = `Alarm: ${alarm.message}`;
    const head = facts([
      ['Raised', timeEl(alarm.date)],
      [alarm.camera_id ? 'Camera' : 'Source', alarm.camera_id ?? alarm.source],
      ['Faces', String(alarm.face_count)],
    ]);
    let detection = null;
    try {
      detection = await request('GET', `/api/v1/detections/${alarm.detection_id}`);
    } catch (err) {
      // Camera detections belong to no user: an admin sees the alarm but
      // not the detection behind it. Show the alarm's own frame then.
      if (!(err instanceof ApiError && err.code === 'not_found')) throw err;
    }
    if (!alive) return;
    body.replaceChildren(
      head,
      detection
        ? detectionBlock(detection, { reload: () => reloads++ < 1 && showAlarm().catch(fail) })
        : h('figure', { class: 'shot' },
            h('div', { class: 'frame' }, alarm.image_kept === false
              ? h('p', { class: 'no-image' }, 'The frame was not kept: the server was short of disk space when this alarm was raised.')
              : h('img', { src: alarm.img, alt: `The frame with ${plural(alarm.face_count, 'face')} marked` })),
            h('figcaption', {}, 'The faces are marked in the frame. Their scores and boxes are kept with the detection, which only its owner can open (camera detections have none).')),
    );
  };

  (kind === 'alarms' ? showAlarm() : showDetection()).catch((err) => alive && fail(err));
  return () => {
    alive = false;
  };
}
