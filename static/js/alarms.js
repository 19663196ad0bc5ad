// The alarms the wall shows: live ones from the hub, and after every
// (re)subscription the ones missed meanwhile, fetched over REST since the
// newest alarm already seen. Each alarm is kept once (by id), newest first.

import { request } from './api.js';

/** Cards kept on the wall; older alarms are in History. */
export const WALL_SIZE = 200;
/** Alarms loaded when the wall first opens. */
const FIRST_PAGE = 50;
/** A failed catch-up is tried again this much later. */
const RETRY_MS = 5000;
/**
 * A catch-up looks back this far before the newest alarm seen: alarms are
 * dated when their frame was taken, so one can be delivered (and pushed)
 * after a newer one. The overlap comes back as duplicates and is dropped.
 */
const OVERLAP_MS = 60_000;

const at = (alarm) => Date.parse(alarm.date);

export class AlarmFeed extends EventTarget {
  #byId = new Map();
  #list = [];
  #newest = null; // the RFC 3339 date of the newest alarm seen
  #catchingUp = false;
  #again = false;
  #retry = null;
  #epoch = 0; // bumped by reset(): answers to older requests are dropped

  constructor(hub) {
    super();
    this.loaded = false;
    this.unseen = 0;
    /** Set when more alarms were missed than the wall holds. */
    this.gap = false;
    this.error = null;
    hub.addEventListener('alarm', (event) => this.#add([event.detail], true));
    hub.addEventListener('subscribed', (event) => {
      // Subscribing first and querying second leaves no window in which an
      // alarm could be neither pushed nor listed.
      if (event.detail.topics?.includes('alarms')) this.catchUp();
    });
  }

  get items() {
    return this.#list;
  }

  has(id) {
    return this.#byId.has(id);
  }

  async catchUp() {
    if (this.#catchingUp) {
      this.#again = true;
      return;
    }
    this.#catchingUp = true;
    clearTimeout(this.#retry);
    const epoch = this.#epoch;
    try {
      do {
        this.#again = false;
        // `from` is inclusive and reaches back OVERLAP_MS: known alarms come
        // back and are dropped as duplicates, which is what makes equal and
        // out-of-order dates safe. Before the first load (even when pushed
        // alarms already set #newest) the wall gets its first page.
        const catchingUp = this.loaded && this.#newest;
        const query = catchingUp
          ? { from: new Date(Date.parse(this.#newest) - OVERLAP_MS).toISOString(), limit: WALL_SIZE }
          : { limit: FIRST_PAGE };
        const page = await request('GET', '/api/v1/alarms', { query });
        if (epoch !== this.#epoch) return;
        if (catchingUp) this.gap = Boolean(page.next_cursor);
        this.error = null;
        const fresh = this.loaded;
        this.loaded = true;
        this.#add(page.items, fresh);
      } while (this.#again);
    } catch (err) {
      if (epoch !== this.#epoch) return;
      this.error = err;
      this.#changed([], false);
      // The socket may stay up while the database is away: try again.
      this.#retry = setTimeout(() => this.catchUp(), RETRY_MS);
    } finally {
      this.#catchingUp = false;
      // A new login asked while an old request was out: its turn now.
      if (epoch !== this.#epoch && this.#again) {
        this.#again = false;
        this.catchUp();
      }
    }
  }

  #add(alarms, fresh) {
    const added = [];
    for (const alarm of alarms) {
      if (!alarm?.id || this.#byId.has(alarm.id)) continue;
      this.#byId.set(alarm.id, alarm);
      added.push(alarm);
      if (!this.#newest || at(alarm) > Date.parse(this.#newest)) this.#newest = alarm.date;
    }
    this.#list.push(...added);
    this.#list.sort((a, b) => at(b) - at(a) || (a.id < b.id ? 1 : -1));
    for (const dropped of this.#list.splice(WALL_SIZE)) this.#byId.delete(dropped.id);
    this.#changed(added, fresh);
    if (fresh && added.length) {
      this.unseen += added.length;
      this.dispatchEvent(new CustomEvent('unseen'));
    }
  }

  #changed(added, fresh) {
    this.dispatchEvent(new CustomEvent('change', { detail: { added, fresh } }));
  }

  /** A new signed image URL once the old one has expired. */
  async renew(id) {
    const alarm = await request('GET', `/api/v1/alarms/${id}`);
    if (this.#byId.has(id)) this.#byId.get(id).img = alarm.img;
    return alarm;
  }

  /** Emits `unseen` (not `change`: the list itself is the same). */
  markSeen() {
    if (this.unseen === 0) return;
    this.unseen = 0;
    this.dispatchEvent(new CustomEvent('unseen'));
  }

  reset() {
    this.#epoch += 1;
    this.#again = false;
    clearTimeout(this.#retry);
    this.#byId.clear();
    this.#list = [];
    this.#newest = null;
    this.loaded = false;
    this.unseen = 0;
    this.gap = false;
    this.error = null;
    this.#changed([], false);
    this.dispatchEvent(new CustomEvent('unseen'));
  }
}
