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

let lastIso = { s: Number.NaN, us: Number.NaN, text: '' };

/** ISO-8601 UTC text of a server timestamp (events of one session share one: the last is kept). */
export function isoOf(ref: Pick<EventRef, 's' | 'us'>): string {
  if (ref.s === lastIso.s && ref.us === lastIso.us) return lastIso.text;
  const ms = ref.s * 1000 + Math.floor(ref.us / 1000);
  const d = new Date(ms);
  const text = Number.isNaN(d.getTime()) ? new Date(0).toISOString() : d.toISOString();
  lastIso = { s: ref.s, us: ref.us, text };
  return text;
}
