// A detection's image with its faces marked, and the list of those faces.
// The server draws the boxes into the annotated copy; the numbered overlay
// drawn here ties each box to its row in the list, and lights the box up
// while its row is hovered or focused.

import { h, plural, s } from './dom.js';

const round = (n) => Math.round(n);

/** `{figure, table}` for a detection (`DetectionView` of the API). */
export function faceFigure(detection, { onImageError } = {}) {
  const { width, height, faces } = detection;
  const label = Math.max(12, Math.round(Math.max(width, height) / 40));
  const boxes = faces.map((face, i) => {
    const { x, y, width: w, height: bh } = face.box;
    // Under the box's left corner: the server writes the score above it.
    const tagHeight = label * 1.3;
    const tagY = Math.min(y + bh, height - tagHeight);
    return s(
      'g',
      { class: 'face', 'data-face': i + 1 },
      s('rect', { class: 'face-box', x, y, width: w, height: bh, 'vector-effect': 'non-scaling-stroke' }),
      s('rect', { class: 'face-tag', x, y: tagY, width: label * (i + 1 >= 10 ? 1.7 : 1.1), height: tagHeight }),
      s('text', { x: x + label * 0.25, y: tagY + label * 1.05, 'font-size': label }, String(i + 1)),
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
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, '#'), h('th', { scope: 'col' }, 'Score'), h('th', { scope: 'col' }, 'Position (x, y)'), h('th', { scope: 'col' }, 'Size (w × h)'))),
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
