/**
 * A compact reference to a Hat event (its id and server timestamp) and Hat's natural event order
 * (docs/event.rst, `Event.__lt__`): events of one server compare by (session, instance); events of
 * different servers compare by timestamp.
 */
import type { Event, EventId } from '../../hat/eventer/common.js';

export interface EventRef {
  server: number;
  session: number;
  instance: number;
  /** Server timestamp: seconds and microseconds. */
  s: number;
  us: number;
}

export function refOf(event: Pick<Event, 'id' | 'timestamp'>): EventRef {
  const { id, timestamp } = event;
  const s = timestamp.s;
  return {
    server: id.server,
    session: id.session,
    instance: id.instance,
    s: typeof s === 'number' ? s : Number(s),
    us: timestamp.us,
  };
}

/** Negative when `a` comes before `b` in Hat's natural order, 0 for the same event. */
export function compareRefs(a: EventRef, b: EventRef): number {
  if (a.server === b.server) return a.session - b.session || a.instance - b.instance;
  return a.s - b.s || a.us - b.us || a.server - b.server;
}

export function eventIdOf(ref: EventRef): EventId {
  return { server: ref.server, session: ref.session, instance: ref.instance };
}

/** `server/session/instance`, for logs and maps. */
export function refKey(ref: Pick<EventRef, 'server' | 'session' | 'instance'>): string {
  return `${ref.server}/${ref.session}/${ref.instance}`;
}

let lastSecond = { s: Number.NaN, head: '' };

/**
 * ISO-8601 UTC text of a server timestamp, to the millisecond (`YYYY-MM-DDTHH:MM:SS.mmmZ`, as
 * `Date.prototype.toISOString`). Events come in time order, so the text up to the second is kept
 * from the last call and only the milliseconds are written anew.
 */
export function isoOf(ref: Pick<EventRef, 's' | 'us'>): string {
  const ms = ref.s * 1000 + Math.floor(ref.us / 1000);
  const second = Math.floor(ms / 1000);
  if (second === lastSecond.s) {
    const milli = ms - second * 1000;
    return `${lastSecond.head}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
  }
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return new Date(0).toISOString();
  const text = d.toISOString();
  // A year past 9999 or before 0 is written with six digits and a sign: not kept.
  if (text.length === 24) lastSecond = { s: second, head: text.slice(0, 20) };
  return text;
}
