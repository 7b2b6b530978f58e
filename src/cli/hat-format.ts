/**
 * Text forms of the `aimm-store hat` tool: event lines, event types, addresses and times.
 *
 * Event line (one JSON object per line):
 * `{"id":[server,session,instance],"type":["a","b"],"timestamp":{"s":S,"us":US},
 *   "source_timestamp":null|{"s":S,"us":US},"payload":null|{"json":VALUE}|{"binary":{"type":T,"data":BASE64}}}`
 * VALUE is the payload's JSON value, re-emitted compactly at token level (big integers, key order
 * and number forms kept as the server sent them).
 */
import type { Address } from '../hat/chatter/connect.js';
import type { Event, EventType, Timestamp } from '../hat/eventer/common.js';
import { compactJson } from '../hat/eventer/json.js';

export const DEFAULT_HAT_ADDRESS: Address = { host: '127.0.0.1', port: 23012 };

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function timestampJson(t: Timestamp): string {
  return `{"s":${t.s.toString()},"us":${t.us}}`;
}

export function formatEventLine(e: Event): string {
  let payload = 'null';
  if (e.payload?.kind === 'json') {
    let value: string;
    try {
      value = compactJson(e.payload.text);
    } catch {
      // Not JSON (a server that does not validate): keep the text, as a JSON string.
      value = JSON.stringify(e.payload.text);
    }
    payload = `{"json":${value}}`;
  } else if (e.payload?.kind === 'binary') {
    const data = Buffer.from(
      e.payload.data.buffer,
      e.payload.data.byteOffset,
      e.payload.data.byteLength,
    );
    payload = `{"binary":{"type":${JSON.stringify(e.payload.type)},"data":"${data.toString('base64')}"}}`;
  }
  return (
    `{"id":[${e.id.server},${e.id.session},${e.id.instance}],"type":${JSON.stringify(e.type)},` +
    `"timestamp":${timestampJson(e.timestamp)},` +
    `"source_timestamp":${e.sourceTimestamp === null ? 'null' : timestampJson(e.sourceTimestamp)},` +
    `"payload":${payload}}`
  );
}

/** `a/b/c` → `['a','b','c']`; the empty string is the empty type. */
export function parseEventType(text: string): EventType {
  return text === '' ? [] : text.split('/');
}

/** `host:port` or `[v6]:port`. */
export function parseAddress(text: string): Address {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || !(port >= 1 && port <= 65535)) {
    throw new UsageError(`invalid address '${text}' (expected host:port)`);
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

/**
 * An ISO-8601 time with up to microsecond precision (`2024-01-02T03:04:05.123456Z`; without a
 * zone it is UTC), or seconds since the epoch (`1700000000.25`).
 */
export function parseTime(text: string): Timestamp {
  const epoch = /^(-?\d+)(?:\.(\d{1,6}))?$/.exec(text);
  if (epoch !== null) {
    const s = Number(epoch[1]);
    const us = Number((epoch[2] ?? '').padEnd(6, '0'));
    if (!Number.isSafeInteger(s)) throw new UsageError(`time out of range: ${text}`);
    if (s < 0 && us > 0) return { s: s - 1, us: 1_000_000 - us };
    return { s, us };
  }
  const iso =
    /^(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/i.exec(
      text,
    );
  if (iso === null)
    throw new UsageError(`invalid time '${text}' (expected ISO 8601 or epoch seconds)`);
  const base = (iso[1] as string).replace(' ', 'T');
  const zone = iso[3] ?? 'Z';
  const ms = Date.parse(`${base}${base.includes('T') ? '' : 'T00:00:00'}${zone}`);
  if (Number.isNaN(ms)) throw new UsageError(`invalid time '${text}'`);
  const fraction = iso[2] ?? '';
  if (fraction.length > 6) throw new UsageError(`time '${text}' is more precise than microseconds`);
  return { s: Math.floor(ms / 1000), us: Number(fraction.padEnd(6, '0')) };
}

/** A non-negative integer option. */
export function parseCount(name: string, text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${name} must be a non-negative integer, got '${text}'`);
  }
  return Number(text);
}
