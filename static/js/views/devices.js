// Devices (`#/devices?device=ID`): the caller's devices that send telemetry
// (docs/telemetry.md), each with when it was last seen and where it last
// was; for the chosen one its GPS track and gyroscope drawn in SVG (no map
// tiles: nothing is loaded from anywhere else) and its photos with their
// faces. New readings arrive over the WebSocket (`telemetry` topic), which
// this view subscribes to while it is open.

import { request } from '../api.js';
import { announce, h, plural, s, timeEl } from '../dom.js';
import { describe } from '../messages.js';

/** Readings shown per device: the newest ones. */
const TRACK_SIZE = 200;
const GYRO_SIZE = 200;
const PHOTOS = 20;

const TRACK_W = 480;
const TRACK_H = 300;
const TRACK_PAD = 30;
/** The smallest extent a track is drawn at, so a parked device is a dot, not a zoom into GPS noise. */
const MIN_SPAN_M = 50;
const M_PER_DEG_LAT = 110_574;
const M_PER_DEG_LON = 111_320;

const GYRO_W = 480;
const GYRO_H = 150;
const GYRO_LEFT = 44;
const GYRO_PAD = 10;
const AXES = ['x', 'y', 'z'];

const at = (reading) => Date.parse(reading.collected_at);
const path = (id, tail = '') => `/api/v1/devices/${encodeURIComponent(id)}${tail}`;

function position(lat, lon) {
  const ns = lat >= 0 ? 'N' : 'S';
  const ew = lon >= 0 ? 'E' : 'W';
  return `${Math.abs(lat).toFixed(5)}° ${ns}, ${Math.abs(lon).toFixed(5)}° ${ew}`;
}

function distance(m) {
  if (m >= 1000) return `${(m / 1000).toFixed(m >= 10_000 ? 0 : 1)} km`;
  return `${Math.round(m)} m`;
}

/** 1, 2 or 5 times a power of ten, at most `n`. */
function roundDown(n) {
  const power = 10 ** Math.floor(Math.log10(n));
  return [5, 2, 1].map((f) => f * power).find((v) => v <= n) ?? power;
}

/** The smallest 1, 2 or 5 times a power of ten that is at least `n`. */
function roundUp(n) {
  const power = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((f) => f * power).find((v) => v >= n - 1e-12);
}

/**
 * `list` with `items` added: one per id (a newer copy replaces an older:
 * fresher signed URLs), oldest first, the newest `limit` kept.
 */
function merge(list, items, limit) {
  const byId = new Map(list.map((r) => [r.id, r]));
  for (const item of items) if (item?.id) byId.set(item.id, item);
  return [...byId.values()].sort((a, b) => at(a) - at(b) || (a.id < b.id ? -1 : 1)).slice(-limit);
}

const later = (a, b) => (!a ? b : !b ? a : Date.parse(b) > Date.parse(a) ? b : a);
const earlier = (a, b) => (!a ? b : !b ? a : Date.parse(b) < Date.parse(a) ? b : a);

/** Names of the enrolled people in a photo, from its faces and its match. */
function names(photo) {
  const found = new Set();
  for (const face of photo.faces ?? []) if (face.identity?.name) found.add(face.identity.name);
  if (photo.match?.subject?.name) found.add(photo.match.subject.name);
  return [...found];
}

/** The track as an SVG: equirectangular metres around the fixes, scaled to fit, north up. */
function trackSvg(id, fixes) {
  const lat0 = fixes.reduce((sum, f) => sum + f.latitude, 0) / fixes.length;
  const kx = M_PER_DEG_LON * Math.cos((lat0 * Math.PI) / 180);
  const lon0 = fixes[0].longitude;
  const xy = fixes.map((f) => {
    // A track across the antimeridian stays in one piece.
    let dlon = f.longitude - lon0;
    if (dlon > 180) dlon -= 360;
    if (dlon < -180) dlon += 360;
    return [dlon * kx, (f.latitude - lat0) * M_PER_DEG_LAT];
  });
  const xs = xy.map((p) => p[0]);
  const ys = xy.map((p) => p[1]);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const spanX = Math.max(maxX - minX, MIN_SPAN_M);
  const spanY = Math.max(maxY - minY, MIN_SPAN_M);
  // One scale for both axes: a square block stays square.
  const scale = Math.min((TRACK_W - 2 * TRACK_PAD) / spanX, (TRACK_H - 2 * TRACK_PAD) / spanY);
  const cx = (minX + maxX) / 2;
  const cy = (minY + maxY) / 2;
  const px = ([x, y]) => [TRACK_W / 2 + (x - cx) * scale, TRACK_H / 2 - (y - cy) * scale];
  const points = xy.map(px);
  const fmt = (p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`;
  const across = Math.max(maxX - minX, maxY - minY);
  const label = fixes.length === 1
    ? `GPS track of ${id}, 1 fix at ${position(fixes[0].latitude, fixes[0].longitude)}`
    : `GPS track of ${id}, ${plural(fixes.length, 'fix', 'fixes')}, about ${distance(across)} across, ending at ${position(fixes.at(-1).latitude, fixes.at(-1).longitude)}`;
  // A scale bar a quarter of the width long, rounded to a plain distance.
  const barM = roundDown((TRACK_W / 4) / scale);
  const barPx = barM * scale;
  const [start, end] = [points[0], points.at(-1)];
  return s(
    'svg',
    { class: 'track', viewBox: `0 0 ${TRACK_W} ${TRACK_H}`, role: 'img', 'aria-label': label, 'data-fixes': fixes.length },
    s('rect', { class: 'track-bg', x: 0, y: 0, width: TRACK_W, height: TRACK_H, rx: 6 }),
    s('polyline', { class: 'track-line', points: points.map(fmt).join(' ') }),
    fixes.length > 1 ? s('circle', { class: 'track-start', cx: start[0].toFixed(1), cy: start[1].toFixed(1), r: 5 }) : null,
    s('circle', { class: 'track-end', cx: end[0].toFixed(1), cy: end[1].toFixed(1), r: 7 }),
    s('g', { class: 'track-scale', 'aria-hidden': 'true' },
      s('line', { x1: 12, y1: TRACK_H - 12, x2: 12 + barPx, y2: TRACK_H - 12 }),
      s('text', { x: 12, y: TRACK_H - 18 }, distance(barM))),
    s('text', { class: 'track-north', x: TRACK_W - 16, y: 22, 'text-anchor': 'middle', 'aria-hidden': 'true' }, 'N ↑'),
  );
}

/** The three axes against time, on one symmetric scale around zero. */
function gyroSvg(id, readings) {
  const times = readings.map(at);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const byTime = t1 > t0;
  const peak = roundUp(Math.max(0.1, ...readings.flatMap((r) => AXES.map((a) => Math.abs(r[a])))));
  const innerW = GYRO_W - GYRO_LEFT - GYRO_PAD;
  const innerH = GYRO_H - 2 * GYRO_PAD;
  const x = (r, i) => GYRO_LEFT + (byTime ? (at(r) - t0) / (t1 - t0) : readings.length > 1 ? i / (readings.length - 1) : 0.5) * innerW;
  const y = (v) => GYRO_PAD + innerH / 2 - (v / peak) * (innerH / 2);
  const line = (axis) => s('polyline', {
    class: ['gyro-line', `gyro-${axis}`],
    'data-axis': axis,
    points: readings.map((r, i) => `${x(r, i).toFixed(1)},${y(r[axis]).toFixed(1)}`).join(' '),
  });
  const tick = (v) => s('text', { class: 'gyro-tick', x: GYRO_LEFT - 6, y: y(v) + 4, 'text-anchor': 'end' }, v === 0 ? '0' : `${v > 0 ? '+' : '−'}${Math.abs(v)}`);
  return s(
    'svg',
    {
      class: 'gyro',
      viewBox: `0 0 ${GYRO_W} ${GYRO_H}`,
      role: 'img',
      'aria-label': `Gyroscope of ${id}, ${plural(readings.length, 'reading')}: x, y and z within ±${peak} rad/s`,
      'data-readings': readings.length,
    },
    s('rect', { class: 'gyro-bg', x: GYRO_LEFT, y: GYRO_PAD, width: innerW, height: innerH }),
    s('line', { class: 'gyro-zero', x1: GYRO_LEFT, y1: y(0), x2: GYRO_LEFT + innerW, y2: y(0) }),
    tick(peak),
    tick(0),
    tick(-peak),
    AXES.map(line),
  );
}

function photoBadge(photo) {
  if (!photo.faces?.length) return h('span', { class: ['photo-badge', 'none'] }, 'No face');
  return photo.recognized
    ? h('span', { class: ['photo-badge', 'recognised'] }, 'Recognised')
    : h('span', { class: ['photo-badge', 'new'] }, 'New');
}

export function devices(root, { hub, params }) {
  const status = h('p', { class: 'hint', role: 'status' }, 'Loading…');
  const liveNote = h('p', { class: 'hint live-note' });
  const error = h('p', { class: 'error', role: 'alert' });
  const retry = h('button', { type: 'button' }, 'Try again');
  const problem = h('div', { class: 'actions', hidden: true }, error, retry);
  const empty = h(
    'div',
    { class: ['empty', 'devices-empty'], hidden: true },
    h('p', {}, h('strong', {}, 'No devices have sent telemetry yet.')),
    h('p', {}, 'A device sends its readings to ', h('code', {}, '/telemetry/gps'), ', ', h('code', {}, '/telemetry/gyroscope'), ' and ', h('code', {}, '/telemetry/photo'),
      ' with an API key of your account (one created with the scope ', h('code', {}, 'telemetry'), ' can do nothing else). To try it, run the simulator:'),
    h('pre', { class: 'command' }, h('code', {}, `vigil client telemetry --server ${location.origin} --api-key KEY \\\n  --device-id AA:BB:CC:DD:EE:FF --every 10s --photos ./photos`)),
  );
  const list = h('ul', { class: 'device-list', 'aria-label': 'Devices, most recently seen first' });
  const detail = h('section', { class: 'device-detail', 'aria-labelledby': 'device-title', hidden: true });
  const layout = h(
    'div',
    { class: 'devices-layout', hidden: true },
    h('section', { class: 'device-pick', 'aria-labelledby': 'devices-h' }, h('h2', { id: 'devices-h' }, 'Your devices'), list),
    detail,
  );
  const view = h(
    'section',
    { class: 'devices-view', 'aria-labelledby': 'view-title', dataset: { live: 'false' } },
    h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Devices'), status),
    liveNote,
    problem,
    empty,
    layout,
  );
  root.append(view);

  let alive = true;
  let live = false;
  let loaded = false;
  /** id → DeviceView, kept up to date by pushed readings. */
  const known = new Map();
  /** id → its <li> in the list. */
  const items = new Map();
  let selected = null;
  /** The device the person chose, or the address names; otherwise the most recently seen is shown. */
  let wanted = params.get('device') || null;
  /** The chosen device's readings, oldest first: { id, gps, gyro, photos }. */
  let series = null;

  const showError = (err) => {
    error.textContent = describe(err);
    problem.hidden = false;
  };
  const clearError = () => {
    problem.hidden = true;
  };

  const showLive = () => {
    view.dataset.live = String(live);
    liveNote.textContent = live
      ? 'New readings appear as they arrive.'
      : hub.state === 'live' ? 'Subscribing to live readings…' : 'Not connected: new readings appear once the connection is back.';
  };

  // The list.
  const ordered = () => [...known.values()].sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen) || (a.id < b.id ? -1 : 1));

  const fillItem = (li, device) => {
    const button = li.firstChild;
    const where = device.last_position
      ? [h('span', { class: 'device-where' }, position(device.last_position.latitude, device.last_position.longitude)),
        h('span', { class: 'device-when' }, 'at ', timeEl(device.last_position.collected_at))]
      : h('span', { class: 'device-where none' }, 'No position yet');
    button.replaceChildren(
      h('span', { class: 'device-id' }, device.id),
      h('span', { class: 'device-seen' }, 'Last seen ', timeEl(device.last_seen)),
      ...[where].flat(),
    );
    if (device.id === selected) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  };

  const renderList = () => {
    const devices = ordered();
    for (const device of devices) {
      let li = items.get(device.id);
      if (!li) {
        const button = h('button', { type: 'button', class: 'device', onclick: () => choose(device.id), onkeydown: (event) => step(event, device.id) });
        li = h('li', { dataset: { deviceId: device.id } }, button);
        items.set(device.id, li);
      }
      fillItem(li, device);
    }
    // Reorder only when the order changed: moving the focused button would blur it.
    const want = devices.map((d) => items.get(d.id));
    if (want.some((li, i) => list.children[i] !== li)) {
      const focused = list.contains(document.activeElement) ? document.activeElement : null;
      list.replaceChildren(...want);
      focused?.focus({ preventScroll: true });
    }
    const n = devices.length;
    // Written only when it changes: it is a live region.
    const count = n ? plural(n, 'device') : '';
    if (status.textContent !== count) status.textContent = count;
    empty.hidden = n > 0 || !loaded;
    layout.hidden = n === 0;
  };

  // Up and down arrows move through the list, as in a menu.
  const step = (event, id) => {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    const devices = ordered();
    const i = devices.findIndex((d) => d.id === id) + (event.key === 'ArrowDown' ? 1 : -1);
    if (i < 0 || i >= devices.length) return;
    event.preventDefault();
    items.get(devices[i].id)?.firstChild.focus();
  };

  const upsert = (device) => {
    const old = known.get(device.id);
    if (!old) {
      known.set(device.id, { ...device });
      return true;
    }
    old.first_seen = earlier(old.first_seen, device.first_seen);
    old.last_seen = later(old.last_seen, device.last_seen);
    if (device.last_position && (!old.last_position || at(device.last_position) >= at(old.last_position))) old.last_position = device.last_position;
    return false;
  };

  // The chosen device.
  const panel = (heading, id, ...body) => h('section', { class: ['panel', `device-panel-${id}`], 'aria-labelledby': `device-${id}-h` }, h('h3', { id: `device-${id}-h` }, heading), ...body);
  const trackBox = h('div', { class: 'track-box' });
  const trackNote = h('p', { class: 'hint track-note' });
  const gyroBox = h('div', { class: 'gyro-box' });
  const gyroNote = h('p', { class: 'hint gyro-note' });
  const photoList = h('ul', { class: 'device-photos', 'aria-label': 'Photos, newest first' });
  const photoNote = h('p', { class: 'hint photo-note' });
  const photoItems = new Map();
  const renewed = new Set();
  const title = h('h2', { id: 'device-title' });
  const facts = h('dl', { class: 'facts device-facts' });
  const detailError = h('p', { class: 'error', role: 'alert', hidden: true });
  detail.append(
    title,
    facts,
    detailError,
    h('div', { class: 'device-panels' },
      panel('Track', 'track', trackBox, trackNote),
      panel('Gyroscope', 'gyro', gyroBox,
        h('ul', { class: 'gyro-legend', 'aria-label': 'Lines' },
          AXES.map((a) => h('li', { class: `gyro-key-${a}` }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), `${a} axis`))),
        gyroNote)),
    panel('Photos', 'photos',
      h('p', { class: 'hint' }, 'Recognised: someone in the photo is the same person as in an earlier photo of your devices. New: nobody in it was seen before. Enrolled people (see People) are named.'),
      photoNote,
      photoList),
  );

  const renderFacts = () => {
    const device = known.get(selected);
    if (!device) return;
    title.textContent = device.id;
    const rows = [
      ['First seen', timeEl(device.first_seen)],
      ['Last seen', timeEl(device.last_seen)],
      ['Last position', device.last_position ? [position(device.last_position.latitude, device.last_position.longitude), ' at ', timeEl(device.last_position.collected_at)] : 'none yet'],
    ];
    facts.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  };

  const renderTrack = () => {
    const fixes = series.gps;
    if (!fixes.length) {
      trackBox.replaceChildren(h('p', { class: 'empty' }, 'No GPS fixes yet.'));
      trackNote.textContent = '';
      return;
    }
    trackBox.replaceChildren(trackSvg(series.id, fixes));
    const last = fixes.at(-1);
    const extra = [
      last.speed !== undefined ? `${(last.speed * 3.6).toFixed(0)} km/h` : null,
      last.heading !== undefined ? `heading ${Math.round(last.heading)}°` : null,
      last.accuracy !== undefined ? `±${Math.round(last.accuracy)} m` : null,
    ].filter(Boolean);
    trackNote.replaceChildren(
      `The latest ${plural(fixes.length, 'fix', 'fixes')}, from `, timeEl(fixes[0].collected_at), ' to ', timeEl(last.collected_at),
      '; the large dot is the last one', extra.length ? ` (${extra.join(', ')})` : '', '. North is up.',
    );
  };

  const renderGyro = () => {
    const readings = series.gyro;
    if (!readings.length) {
      gyroBox.replaceChildren(h('p', { class: 'empty' }, 'No gyroscope readings yet.'));
      gyroNote.textContent = '';
      return;
    }
    gyroBox.replaceChildren(gyroSvg(series.id, readings));
    const last = readings.at(-1);
    gyroNote.replaceChildren(
      `The latest ${plural(readings.length, 'reading')} in rad/s. Last, at `, timeEl(last.collected_at), ': ',
      AXES.map((a) => `${a} ${last[a].toFixed(2)}`).join(', '), '.',
    );
  };

  const photoItem = (photo) => {
    const n = photo.faces?.length ?? 0;
    const who = names(photo);
    const img = h('img', {
      class: 'thumb',
      src: photo.image_url,
      alt: `Photo from ${photo.device_id}, ${plural(n, 'face')}${who.length ? `: ${who.join(', ')}` : ''}`,
      loading: 'lazy',
      decoding: 'async',
    });
    // Signed URLs expire: a view left open asks for new ones, once per photo.
    img.addEventListener('error', () => {
      if (renewed.has(photo.id)) return;
      renewed.add(photo.id);
      renewPhotos();
    });
    return h(
      'li',
      { class: 'device-photo', dataset: { photoId: photo.id, recognized: String(Boolean(photo.recognized)) } },
      h('div', { class: 'thumb-box' }, img),
      h('div', { class: 'photo-body' },
        photoBadge(photo),
        h('p', { class: 'face-count' }, plural(n, 'face')),
        who.length ? h('p', { class: 'photo-who' }, who.join(', ')) : null,
        h('p', { class: 'meta' }, timeEl(photo.collected_at)),
        photo.match ? h('p', { class: 'meta' }, `Nearest earlier face: distance ${photo.match.distance.toFixed(2)}`) : null),
    );
  };

  const renderPhotos = () => {
    const photos = [...series.photos].reverse();
    for (const photo of photos) {
      const old = photoItems.get(photo.id);
      if (old && old.photo === photo) continue;
      if (old && old.photo.image_url !== photo.image_url && JSON.stringify({ ...old.photo, image_url: '' }) === JSON.stringify({ ...photo, image_url: '' })) {
        // Only the signed URL changed.
        old.li.querySelector('img').src = photo.image_url;
        old.photo = photo;
        continue;
      }
      photoItems.set(photo.id, { photo, li: photoItem(photo) });
    }
    const keep = new Set(photos.map((p) => p.id));
    for (const id of photoItems.keys()) if (!keep.has(id)) photoItems.delete(id);
    const want = photos.map((p) => photoItems.get(p.id).li);
    if (want.some((li, i) => photoList.children[i] !== li) || photoList.children.length !== want.length) photoList.replaceChildren(...want);
    photoNote.textContent = photos.length ? `The latest ${plural(photos.length, 'photo')}, newest first.` : 'No photos yet.';
  };

  const renderSeries = () => {
    renderTrack();
    renderGyro();
    renderPhotos();
  };

  const loadSeries = async (id) => {
    const mine = series;
    const [gps, gyro, photos] = await Promise.all([
      request('GET', path(id, '/gps'), { query: { limit: TRACK_SIZE } }),
      request('GET', path(id, '/gyroscope'), { query: { limit: GYRO_SIZE } }),
      request('GET', path(id, '/photos'), { query: { limit: PHOTOS } }),
    ]);
    if (!alive || series !== mine) return;
    // Merged, not replaced: readings pushed while these were on their way stay.
    series.gps = merge(series.gps, gps.items, TRACK_SIZE);
    series.gyro = merge(series.gyro, gyro.items, GYRO_SIZE);
    series.photos = merge(series.photos, photos.items, PHOTOS);
    detail.setAttribute('aria-busy', 'false');
    detailError.hidden = true;
    renderSeries();
  };

  const showSeries = (id) => {
    loadSeries(id).catch((err) => {
      if (!alive || series?.id !== id) return;
      detail.setAttribute('aria-busy', 'false');
      detailError.textContent = describe(err);
      detailError.hidden = false;
    });
  };

  let renewing = null;
  const renewPhotos = () => {
    if (renewing || !series) return;
    const id = series.id;
    renewing = request('GET', path(id, '/photos'), { query: { limit: PHOTOS } })
      .then((page) => {
        if (!alive || series?.id !== id) return;
        series.photos = merge(series.photos, page.items, PHOTOS);
        renderPhotos();
      }, () => {})
      .finally(() => { renewing = null; });
  };

  const select = (id) => {
    if (id === selected && series) return;
    selected = id;
    series = { id, gps: [], gyro: [], photos: [] };
    photoItems.clear();
    photoList.replaceChildren();
    renewed.clear();
    detail.hidden = false;
    detail.setAttribute('aria-busy', 'true');
    detailError.hidden = true;
    trackBox.replaceChildren(h('p', { class: 'hint' }, 'Loading…'));
    gyroBox.replaceChildren();
    trackNote.textContent = gyroNote.textContent = photoNote.textContent = '';
    renderFacts();
    renderList();
    showSeries(id);
  };

  function choose(id) {
    wanted = id;
    // In the address, for a reload or a link, without remounting the view.
    history.replaceState(null, '', `#/devices?device=${encodeURIComponent(id)}`);
    select(id);
  }

  // Everything from the server: the list, then the chosen device's readings.
  let loading = null;
  let again = false;
  const refresh = async () => {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        try {
          const devices = await request('GET', '/api/v1/devices');
          if (!alive) return;
          loaded = true;
          clearError();
          for (const device of devices) upsert(device);
          // The one asked for; else, until one is, the most recently seen.
          const target = wanted ? (known.has(wanted) ? wanted : null) : selected ?? ordered()[0]?.id;
          renderList();
          if (wanted && !known.has(wanted)) {
            showError({ code: 'not_found' });
            status.textContent = `No device ${wanted} among yours.`;
          }
          if (target && target !== selected) select(target);
          else if (selected) {
            renderFacts();
            showSeries(selected);
          }
        } catch (err) {
          if (!alive) return;
          status.textContent = '';
          showError(err);
        }
      } while (again && alive);
    })().finally(() => {
      loading = null;
    });
    return loading;
  };
  retry.addEventListener('click', () => refresh());

  // Live.
  const onTelemetry = (event) => {
    const reading = event.detail?.reading;
    if (!reading?.device_id || !reading.kind) return;
    const id = reading.device_id;
    const fresh = upsert({
      id,
      first_seen: reading.received_at,
      last_seen: reading.received_at,
      last_position: reading.kind === 'gps' ? { latitude: reading.latitude, longitude: reading.longitude, collected_at: reading.collected_at } : undefined,
    });
    if (fresh) {
      loaded = true;
      announce(`New device ${id}`);
    }
    renderList();
    if (!selected && !wanted) select(id);
    if (id !== selected || !series) return;
    renderFacts();
    if (reading.kind === 'gps') {
      series.gps = merge(series.gps, [reading], TRACK_SIZE);
      renderTrack();
    } else if (reading.kind === 'gyroscope') {
      series.gyro = merge(series.gyro, [reading], GYRO_SIZE);
      renderGyro();
    } else if (reading.kind === 'photo') {
      series.photos = merge(series.photos, [reading], PHOTOS);
      renderPhotos();
      const n = reading.faces?.length ?? 0;
      announce(`New photo from ${id}: ${plural(n, 'face')}${n ? (reading.recognized ? ', recognised' : ', new') : ''}`);
    }
  };

  // Subscribed first, listed second: nothing can fall between the two. After
  // a reconnect the session is new and is subscribed again, and what came
  // meanwhile is fetched.
  const subscribe = () => hub.send({ type: 'subscribe', topics: ['telemetry'] });
  const onHello = () => {
    subscribe();
    showLive();
  };
  const onSubscribed = (event) => {
    const now = Boolean(event.detail?.topics?.includes('telemetry'));
    const was = live;
    live = now;
    showLive();
    if (now && !was) refresh();
  };
  const onClosed = () => {
    live = false;
    showLive();
    if (!loaded) refresh();
  };
  const onState = () => showLive();
  const listeners = [['telemetry', onTelemetry], ['hello', onHello], ['subscribed', onSubscribed], ['closed', onClosed], ['state', onState]];
  for (const [type, fn] of listeners) hub.addEventListener(type, fn);
  showLive();
  if (!subscribe()) refresh();
  // Should the subscription go unanswered, the list is shown all the same.
  const fallback = setTimeout(() => loaded || refresh(), 5000);

  return () => {
    alive = false;
    clearTimeout(fallback);
    for (const [type, fn] of listeners) hub.removeEventListener(type, fn);
    // Nobody else shows telemetry: stop the pushes.
    hub.send({ type: 'unsubscribe', topics: ['telemetry'] });
  };
}
