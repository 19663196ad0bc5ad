// The job queue in the page: the hub's `jobs` topic, subscribed while some
// view follows jobs (a job's progress pushed several times a second is of
// no use to a tab showing the alarm wall), and how a job is put in words.
// Pushes come for the account's own jobs only (docs/websocket.md); the
// views poll what the topic does not cover.

import { h, plural } from './dom.js';
import { describe } from './messages.js';

export const STATES = ['queued', 'running', 'done', 'failed', 'cancelled'];

export const STATE_TEXT = {
  queued: 'Queued',
  running: 'Running',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** How often a view asks for a job the socket is not telling it about. */
export const POLL_MS = 2000;

export const isFinal = (job) => job.state === 'done' || job.state === 'failed' || job.state === 'cancelled';
export const isActive = (job) => job.state === 'queued' || job.state === 'running';

/**
 * Whether `next` is the same job as `current` or a later picture of it:
 * pushes and polled answers can cross, and an older one must not undo a
 * newer one. A job that has ended never goes back.
 */
export function isNewer(current, next) {
  if (!current) return true;
  if (isFinal(current) && !isFinal(next)) return false;
  const a = Date.parse(current.updated_at);
  const b = Date.parse(next.updated_at);
  if (b !== a) return b > a;
  return next.progress.done >= current.progress.done;
}

/**
 * The `jobs` topic, shared by the views: `watch()` subscribes (the first
 * watcher) and returns the function that ends the watch (the last one
 * unsubscribes). Emits `job` (detail: the JobView) for every push, and
 * `live` (detail: { live }) when the subscription starts or stops being in
 * force; after a reconnect it is made again, and `live` tells the views to
 * fetch what they may have missed.
 */
export class JobWatch extends EventTarget {
  #hub;
  #watchers = 0;
  #live = false;

  constructor(hub) {
    super();
    this.#hub = hub;
    hub.addEventListener('job', (event) => {
      const job = event.detail?.job;
      if (job?.id) this.dispatchEvent(new CustomEvent('job', { detail: job }));
    });
    // The hub subscribes its own topics on every hello; a new session has
    // none of ours.
    hub.addEventListener('hello', () => {
      if (this.#watchers > 0) this.#subscribe();
    });
    hub.addEventListener('subscribed', (event) => this.#setLive(Boolean(event.detail?.topics?.includes('jobs'))));
    hub.addEventListener('state', (event) => {
      if (event.detail?.state !== 'live') this.#setLive(false);
    });
  }

  /** True while pushes for the account's jobs arrive. */
  get live() {
    return this.#live;
  }

  watch() {
    this.#watchers += 1;
    if (this.#watchers === 1) this.#subscribe();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#watchers -= 1;
      if (this.#watchers === 0) this.#hub.send({ type: 'unsubscribe', topics: ['jobs'] });
    };
  }

  #subscribe() {
    this.#hub.send({ type: 'subscribe', topics: ['jobs'] });
  }

  #setLive(live) {
    if (live === this.#live) return;
    this.#live = live;
    this.dispatchEvent(new CustomEvent('live', { detail: { live } }));
  }
}

/** "Video" or "Image". */
export function kindText(job) {
  return job.kind === 'video' ? 'Video' : 'Image';
}

function unit(job) {
  return job.kind === 'video' ? 'frame' : 'image';
}

/** "12 s", "3 min 5 s", "1 h 2 min". */
export function duration(secs) {
  const s = Math.max(1, Math.round(secs));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 && s < 600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.round(s / 60)} min`;
  const m = Math.round(s / 60);
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
}

/** "5 of 8 frames", or "5 frames" while the total is not known. */
export function progressText(job) {
  const { done, total } = job.progress;
  return total !== undefined && total !== null ? `${done} of ${plural(total, unit(job))}` : plural(done, unit(job));
}

/** "about 12 s left" for a running job with an estimate; '' otherwise. */
export function etaText(job) {
  const eta = job.progress.eta_secs;
  return job.state === 'running' && Number.isFinite(eta) ? `about ${duration(eta)} left` : '';
}

/** "8 detections · 8 faces · 1 alarm". */
export function resultText(job) {
  const { detections, faces, alarms } = job.result;
  return [plural(detections, 'detection'), plural(faces, 'face'), plural(alarms, 'alarm')].join(' · ');
}

/** Why the job failed, in words, with the server's own detail. */
export function errorText(job) {
  const error = job.error;
  if (!error) return '';
  const text = describe(error);
  return error.message && !text.includes(error.message) ? `${text} (${error.message})` : text;
}

/** The state as a word, coloured by the .state classes (the word carries it too). */
export function stateBadge(job) {
  return h('span', { class: ['state', `state-${job.state}`] }, STATE_TEXT[job.state] ?? job.state);
}

/**
 * A `<progress>` for the job: indeterminate until the total is known, full
 * when the job is done. `label`: the id of what names it.
 */
export function progressBar(job, { id, label } = {}) {
  const bar = h('progress', { id, 'aria-labelledby': label, class: 'job-bar' });
  setProgress(bar, job);
  return bar;
}

export function setProgress(bar, job) {
  const { done, total } = job.progress;
  if (total !== undefined && total !== null && total > 0) {
    bar.max = total;
    bar.value = Math.min(done, total);
  } else if (isFinal(job)) {
    bar.max = 1;
    bar.value = job.state === 'done' ? 1 : 0;
  } else {
    // No value: the bar shows work of unknown length.
    bar.removeAttribute('value');
  }
}
