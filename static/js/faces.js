// A detection's image with its faces marked, and the list of those faces.
// The server draws the boxes into the annotated copy; the numbered overlay
// drawn here ties each box to its row in the list, and lights the box up
// while its row is hovered or focused.

import { h, plural, s } from './dom.js';

const round = (n) => Math.round(n);

/** Who a face is, in words: a name, "Unknown", or "—" when it could not be embedded. */
export function who(face) {
  if (face.identity?.name) return face.identity.name;
  if (face.identity?.unknown) return 'Unknown';
  if (face.identity?.erased) return 'Erased';
  return '—';
}

/** "Visitor 17, seen 4 times" for a recurring stranger's face; null otherwise. */
export function visitorOf(face) {
  const visitor = face.identity?.visitor;
  if (!visitor) return null;
  return visitor.sightings > 1 ? `${visitor.label}, seen ${visitor.sightings} times` : `${visitor.label}, first seen`;
}

/**
 * `{figure, table}` for a detection (`DetectionView` of the API). With
 * `enrol: {subjects, onEnrol(faceIndex, subjectId)}`, each face's row gets a
 * "This is…" menu that enrols the face into a subject.
 */
export function faceFigure(detection, { onImageError, enrol } = {}) {
  const { width, height, faces } = detection;
  const label = Math.max(12, Math.round(Math.max(width, height) / 40));
  const boxes = faces.map((face, i) => {
    const { x, y, width: w, height: bh } = face.box;
    // Under the box's left corner: the server writes the score above it.
    const tagHeight = label * 1.3;
    const tagY = Math.min(y + bh, height - tagHeight);
    const name = face.identity?.name ?? (face.identity?.unknown ? '?' : null);
    const text = name ? `${i + 1} ${name}` : String(i + 1);
    const kind = face.identity?.name ? 'known' : face.identity?.unknown ? 'unknown' : 'unembedded';
    return s(
      'g',
      { class: ['face', kind], 'data-face': i + 1 },
      s('rect', { class: 'face-box', x, y, width: w, height: bh, 'vector-effect': 'non-scaling-stroke' }),
      s('rect', { class: 'face-tag', x, y: tagY, width: label * (0.5 + 0.62 * text.length), height: tagHeight }),
      s('text', { x: x + label * 0.25, y: tagY + label * 1.05, 'font-size': label }, text),
    );
  });
  const image = h('img', {
    src: detection.annotated_url,
    alt: `The image with ${plural(faces.length, 'face')} marked`,
    width,
    height,
    decoding: 'async',
    onerror: onImageError,
  });
  const svg = s('svg', { class: 'boxes', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' }, boxes);
  const figure = h(
    'figure',
    { class: 'shot' },
    h('div', { class: 'frame' }, image, svg),
    h('figcaption', {}, summary(detection)),
  );

  const rows = faces.map((face, i) => {
    const { x, y, width: w, height: bh } = face.box;
    const row = h(
      'tr',
      { class: 'face-row', tabindex: 0, 'data-face': i + 1 },
      h('th', { scope: 'row' }, String(i + 1)),
      h('td', {}, face.score.toFixed(2)),
      h('td', {}, `${round(x)}, ${round(y)}`),
      h('td', {}, `${round(w)} × ${round(bh)}`),
      h(
        'td',
        { class: 'who' },
        h('span', { class: 'who-name' }, who(face)),
        visitorOf(face) ? h('span', { class: 'who-visitor' }, ` (${visitorOf(face)})`) : null,
        enrol ? thisIs(face, i, enrol) : null,
      ),
    );
    const light = (on) => boxes[i].classList.toggle('lit', on);
    for (const [event, on] of [['mouseenter', true], ['mouseleave', false], ['focus', true], ['blur', false]]) {
      row.addEventListener(event, () => light(on));
    }
    return row;
  });
  const table = faces.length
    ? h(
        'table',
        { class: 'faces' },
        h('caption', {}, 'Faces found, best score first'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, '#'), h('th', { scope: 'col' }, 'Score'), h('th', { scope: 'col' }, 'Position (x, y)'), h('th', { scope: 'col' }, 'Size (w × h)'), h('th', { scope: 'col' }, 'Who'))),
        h('tbody', {}, rows),
      )
    : h('p', { class: 'faces-none' }, 'No faces were found in this image.');
  return { figure, table, image };
}

export function summary(detection) {
  const best = detection.faces[0]?.score;
  const parts = [plural(detection.face_count, 'face')];
  if (best !== undefined) parts.push(`best score ${best.toFixed(2)}`);
  parts.push(`${detection.width} × ${detection.height} px`);
  return parts.join(' · ');
}

/** A subject menu and a button that enrols face `i` into the chosen subject. */
function thisIs(face, i, { subjects, onEnrol }) {
  if (!subjects.length) return h('a', { href: '#/people', class: 'this-is-menu' }, 'Name this face: add people first');
  const select = h(
    'select',
    { 'aria-label': `Who face ${i + 1} is`, class: 'this-is' },
    subjects.map((subject) => h('option', { value: subject.id, selected: face.identity?.subject_id === subject.id }, subject.name)),
  );
  const button = h('button', { type: 'button', class: 'enrol-face' }, 'Enrol');
  button.addEventListener('click', () => onEnrol(i, select.value));
  return h('span', { class: 'this-is-menu' }, h('span', { class: 'visually-hidden' }, 'This is '), select, button);
}
