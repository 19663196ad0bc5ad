// Upload (`#/upload`): drop an image or a video, or pick one.
// - An image goes to POST /api/v1/detections, and the result comes back
//   with its faces marked.
// - A video goes to POST /api/v1/videos (with the frames per second to
//   analyse) through XMLHttpRequest, whose upload events show how much of
//   the file has gone; the server answers with a job, whose progress is then
//   shown live: pushed on the WebSocket's `jobs` topic, or asked for every
//   2 s while the socket is down. The job stays shown when the view is left
//   and opened again (the tab remembers it) until the next upload.

import { upload as uploadWithProgress, request } from '../api.js';
import { announce, h, plural } from '../dom.js';
import { errorText, etaText, isFinal, isNewer, kindText, POLL_MS, progressBar, progressText, resultText, setProgress, stateBadge, STATE_TEXT } from '../jobs.js';
import { describe } from '../messages.js';
import * as session from '../session.js';
import { detectionBlock } from './detail.js';

/** JSON `{ id, user_id }`: the video job this tab last sent, shown again when the view opens. */
const LAST_JOB_KEY = 'vigil.upload_job';

const MAX_FPS = 120;

/** Containers the browser may not give a video/* type (or any type) for. */
const VIDEO_EXTENSIONS = new Set(['mp4', 'm4v', 'mov', 'mkv', 'webm', 'avi', 'mpg', 'mpeg', 'ts', 'mts', 'm2ts', '3gp', 'ogv', 'flv', 'wmv']);

function isVideo(file) {
  if (file.type.startsWith('video/')) return true;
  if (file.type && file.type !== 'application/octet-stream') return false;
  const extension = file.name.includes('.') ? file.name.split('.').pop().toLowerCase() : '';
  return VIDEO_EXTENSIONS.has(extension);
}

function quotaText(user) {
  if (!user) return '';
  const left = Math.max(0, user.api_request_quota - user.api_requests_used);
  return left === 0
    ? `Your quota is used up (${user.api_requests_used} of ${user.api_request_quota}). An admin can raise it.`
    : `${plural(left, 'upload')} left (${user.api_requests_used} of ${user.api_request_quota} used).`;
}

/** "1.4 MB". */
function size(bytes) {
  const units = ['bytes', 'kB', 'MB', 'GB'];
  let value = bytes;
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i += 1;
  }
  return i === 0 ? plural(bytes, 'byte') : `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

/** The fps field's number, or null when it is not one the server takes. Empty means the default, 1. */
function fpsOf(input) {
  if (input.value.trim() === '' && !input.validity.badInput) return 1;
  const fps = Number(input.value);
  return Number.isFinite(fps) && fps > 0 && fps <= MAX_FPS ? fps : null;
}

function remembered() {
  try {
    const last = JSON.parse(sessionStorage.getItem(LAST_JOB_KEY));
    return typeof last?.id === 'string' && last.user_id === session.currentUser()?.id ? last.id : null;
  } catch {
    return null;
  }
}

/** How the upload of a video's bytes goes: a bar, the bytes sent and a Stop button. */
function sendingPanel(file, onStop) {
  const bar = h('progress', { id: 'upload-bar', class: 'job-bar', max: Math.max(1, file.size), value: 0, 'aria-labelledby': 'upload-bar-label' });
  const text = h('p', { class: 'job-line', id: 'upload-bytes' }, `0 of ${size(file.size)} sent`);
  const stop = h('button', { type: 'button', id: 'upload-stop', onclick: onStop }, 'Stop the upload');
  const element = h(
    'section',
    { class: 'job-panel', id: 'upload-sending', 'aria-labelledby': 'upload-bar-label' },
    h('h2', { id: 'upload-bar-label' }, `Sending ${file.name}`),
    bar,
    text,
    h('p', { class: 'actions' }, stop),
  );
  return {
    element,
    progress(sent, total) {
      const all = total ?? file.size;
      bar.max = Math.max(1, all);
      bar.value = Math.min(sent, all);
      text.textContent = sent >= all
        ? `${size(all)} sent. The server is checking the video…`
        : `${size(sent)} of ${size(all)} sent (${Math.floor((100 * sent) / Math.max(1, all))}%)`;
    },
  };
}

/** A job's state, progress, result and error, and its Cancel button. */
function jobPanel(job, onCancel) {
  const state = h('p', { class: 'job-state', id: 'job-state', role: 'status' });
  const bar = progressBar(job, { id: 'job-progress', label: 'job-progress-label' });
  const counts = h('span', { id: 'job-progress-text' });
  const eta = h('span', { id: 'job-eta' });
  const line = h('p', { class: 'job-line' }, h('span', { id: 'job-progress-label' }, 'Progress: '), counts, eta);
  const result = h('p', { class: 'job-line', id: 'job-result' });
  const error = h('p', { class: 'error', id: 'job-error', role: 'alert', hidden: true });
  const problem = h('p', { class: 'hint', id: 'job-problem' });
  const liveNote = h('p', { class: 'hint live-note', id: 'job-live' });
  const cancel = h('button', { type: 'button', id: 'job-cancel', onclick: onCancel }, 'Cancel the job');
  const detections = h('a', { href: '#/history?kind=detections', id: 'job-detections', hidden: true }, 'See the detections');
  const element = h(
    'section',
    { class: 'job-panel', id: 'video-job', 'aria-labelledby': 'job-title', dataset: { jobId: job.id, live: 'false' } },
    h('h2', { id: 'job-title' }, `${kindText(job)} ${job.source}`, job.fps ? h('small', { class: 'job-fps' }, ` at ${job.fps} fps`) : null),
    state,
    bar,
    line,
    result,
    error,
    problem,
    h('p', { class: 'actions' }, cancel, detections, h('a', { href: '#/jobs' }, 'All your jobs')),
    liveNote,
  );
  return {
    element,
    update(next) {
      element.dataset.state = next.state;
      // A live region: written only when the state changes, not every frame.
      const word = STATE_TEXT[next.state] ?? next.state;
      if (state.textContent !== word) state.replaceChildren(stateBadge(next));
      setProgress(bar, next);
      counts.textContent = progressText(next);
      const left = etaText(next);
      eta.textContent = left ? ` · ${left}` : '';
      result.textContent = next.result.detections || isFinal(next) ? resultText(next) : '';
      error.textContent = next.state === 'failed' ? errorText(next) || 'The job failed.' : '';
      error.hidden = !error.textContent;
      cancel.hidden = isFinal(next);
      detections.hidden = next.result.detections === 0;
    },
    live(on, ended) {
      element.dataset.live = String(on);
      liveNote.textContent = ended ? '' : on ? 'Progress appears as the server works.' : `Not connected: the job is checked every ${POLL_MS / 1000} s.`;
    },
    busy(on) {
      cancel.disabled = on;
      cancel.textContent = on ? 'Cancelling…' : 'Cancel the job';
    },
    problem(text) {
      problem.textContent = text;
    },
  };
}

export function upload(root, { jobWatch }) {
  const quota = h('p', { class: 'quota', id: 'quota' }, quotaText(session.currentUser()));
  const input = h('input', { type: 'file', id: 'upload-file', name: 'file', accept: 'image/*,video/*', class: 'visually-hidden' });
  const zone = h(
    'div',
    { class: 'drop' },
    input,
    h(
      'label',
      { for: 'upload-file', class: 'drop-label' },
      h('strong', {}, 'Drop an image or a video here'),
      h('span', {}, 'or ', h('span', { class: 'like-button' }, 'choose a file')),
      h('small', {}, 'Images: JPEG, PNG, WebP, BMP or GIF, one unit of your quota each. Videos: MP4, WebM, MKV, MOV and what else ffmpeg reads, analysed on the server, one unit per analysed frame.'),
    ),
  );
  const fps = h('input', {
    id: 'upload-fps', name: 'fps', type: 'number', min: 0, max: MAX_FPS, step: 'any', value: 1, inputmode: 'decimal', 'aria-describedby': 'upload-fps-help',
  });
  const fpsField = h(
    'p',
    { class: ['field', 'fps-field'] },
    h('label', { for: 'upload-fps' }, 'Video frames per second to analyse'),
    fps,
    h('small', { class: 'hint', id: 'upload-fps-help' }, `Above 0, at most ${MAX_FPS}: the first frame of every 1/fps seconds is analysed. 1 analyses a frame a second.`),
  );
  const status = h('p', { class: 'hint', role: 'status', id: 'upload-status' });
  const error = h('div', { class: 'error', role: 'alert', id: 'upload-error', hidden: true });
  const result = h('div', { class: 'upload-result', id: 'upload-result' });
  root.append(
    h(
      'section',
      { class: 'upload', 'aria-labelledby': 'view-title' },
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Upload an image or a video'), quota),
      zone,
      fpsField,
      status,
      error,
      result,
    ),
  );

  let alive = true;
  const refreshQuota = () => session.loadUser().then((user) => {
    if (alive) quota.textContent = quotaText(user);
  }, () => {});
  const showError = (err) => {
    status.textContent = '';
    error.textContent = err.code === 'unsupported_media_type'
      ? 'That file is not an image or a video vigil can read. Choose a JPEG, PNG, WebP, BMP or GIF image, or a video such as MP4 or WebM.'
      : describe(err);
    error.dataset.code = err.code ?? '';
    error.hidden = false;
  };

  // The video job shown, followed until it ends.
  let following = null;
  const unfollow = () => {
    following?.stop();
    following = null;
  };

  const follow = (first) => {
    // Watching before the last watch ends keeps the subscription in force.
    const unwatch = jobWatch.watch();
    unfollow();
    const id = first.id;
    let current = null;
    let ended = false;
    let dropped = false; // another upload replaced it: late answers are ignored
    let timer = null;
    let asking = false;
    const panel = jobPanel(first, () => cancel());
    result.replaceChildren(panel.element);

    const stop = () => {
      clearTimeout(timer);
      jobWatch.removeEventListener('job', onJob);
      jobWatch.removeEventListener('live', onLive);
      unwatch();
    };
    const show = (job) => {
      if (dropped || job?.id !== id || !isNewer(current, job)) return;
      current = job;
      panel.update(job);
      if (isFinal(job) && !ended) {
        ended = true;
        stop();
        panel.live(jobWatch.live, true);
        announce(`${job.source}: ${STATE_TEXT[job.state].toLowerCase()}, ${resultText(job)}.`);
        refreshQuota();
      }
    };
    const ask = async () => {
      if (asking || ended) return;
      asking = true;
      try {
        const job = await request('GET', `/api/v1/jobs/${id}`);
        if (dropped) return;
        panel.problem('');
        show(job);
      } catch (err) {
        if (dropped) return;
        if (err.status === 404) {
          // Gone (another account logged in, say): nothing to show.
          sessionStorage.removeItem(LAST_JOB_KEY);
          unfollow();
          result.replaceChildren();
          return;
        }
        panel.problem(`Could not check the job: ${describe(err)}`);
      } finally {
        asking = false;
      }
    };
    // Polled only while the socket does not push.
    const schedule = () => {
      clearTimeout(timer);
      if (ended || dropped || jobWatch.live) return;
      timer = setTimeout(async () => {
        await ask();
        schedule();
      }, POLL_MS);
    };
    const onJob = (event) => show(event.detail);
    // Subscribed (again): what changed before it took effect is fetched.
    const onLive = (event) => {
      panel.live(event.detail.live, ended);
      if (event.detail.live) ask();
      schedule();
    };
    const cancel = async () => {
      panel.busy(true);
      try {
        show(await request('DELETE', `/api/v1/jobs/${id}`));
      } catch (err) {
        if (dropped) return;
        if (err.code === 'job_finished') ask();
        else panel.problem(`Could not cancel: ${describe(err)}`);
      } finally {
        panel.busy(false);
      }
    };

    jobWatch.addEventListener('job', onJob);
    jobWatch.addEventListener('live', onLive);
    following = {
      id,
      stop: () => {
        dropped = true;
        stop();
      },
    };
    show(first);
    panel.live(jobWatch.live);
    if (!ended && jobWatch.live) ask();
    schedule();
  };

  let busy = false;
  const settle = () => {
    busy = false;
    zone.classList.remove('busy');
    input.disabled = false;
    fps.disabled = false;
    input.value = '';
  };

  const sendImage = async (file) => {
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
      showError(err);
    }
  };

  const sendVideo = async (file, rate) => {
    status.textContent = `Sending ${file.name}…`;
    const stopper = new AbortController();
    const panel = sendingPanel(file, () => stopper.abort());
    result.replaceChildren(panel.element);
    const form = new FormData();
    form.append('fps', String(rate));
    form.append('video', file, file.name);
    try {
      // The token must outlast the start of the upload: the server refuses a
      // stale one before reading the body, which a browser may report as a
      // broken connection instead of a 401.
      await session.ensureFresh().catch(() => {});
      const job = await uploadWithProgress('POST', '/api/v1/videos', {
        body: form,
        signal: stopper.signal,
        onProgress: (sent, total) => panel.progress(sent, total),
      });
      // Kept also when the view was left meanwhile: opening it again shows the job.
      sessionStorage.setItem(LAST_JOB_KEY, JSON.stringify({ id: job.id, user_id: session.currentUser()?.id }));
      if (!alive) return;
      status.textContent = `${file.name} was accepted: the server analyses ${rate} ${rate === 1 ? 'frame' : 'frames'} per second of it.`;
      announce(status.textContent);
      follow(job);
    } catch (err) {
      if (!alive) return;
      result.replaceChildren();
      showError(err);
    }
  };

  const send = async (file) => {
    if (!file || busy) return;
    const video = isVideo(file);
    const rate = video ? fpsOf(fps) : null;
    error.hidden = true;
    fps.removeAttribute('aria-invalid');
    if (video && rate === null) {
      fps.setAttribute('aria-invalid', 'true');
      showError({ code: 'validation_failed', message: `frames per second must be above 0 and at most ${MAX_FPS}` });
      input.value = '';
      fps.focus();
      return;
    }
    busy = true;
    zone.classList.add('busy');
    input.disabled = true;
    fps.disabled = true;
    unfollow();
    sessionStorage.removeItem(LAST_JOB_KEY);
    result.replaceChildren();
    try {
      if (video) await sendVideo(file, rate);
      else await sendImage(file);
    } finally {
      if (alive) {
        settle();
        refreshQuota();
      }
    }
  };

  // The quota may have moved since login (uploads elsewhere, an admin).
  refreshQuota();
  // The video this tab sent last, if any: its job goes on when the view is left.
  const last = remembered();
  if (last) {
    request('GET', `/api/v1/jobs/${last}`).then((job) => {
      if (alive && !busy && !following) follow(job);
    }, (err) => {
      if (err.status === 404) sessionStorage.removeItem(LAST_JOB_KEY);
    });
  }
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
    alive = false;
    // An upload still sending goes on (the Jobs list shows its job once it
    // is accepted), and so does the job.
    unfollow();
    window.removeEventListener('dragover', swallow);
    window.removeEventListener('drop', swallow);
  };
}
