/**
 * Text forms of the `aimm-store hat` tool: event lines, event types, addresses and times, and the
 * monitor's state (`hat monitor`, see {@link formatMonitorState} and {@link formatMonitorJson}).
 *
 * Event line (one JSON object per line):
 * `{"id":[server,session,instance],"type":["a","b"],"timestamp":{"s":S,"us":US},
 *   "source_timestamp":null|{"s":S,"us":US},"payload":null|{"json":VALUE}|{"binary":{"type":T,"data":BASE64}}}`
 * VALUE is the payload's JSON value, re-emitted compactly at token level (big integers, key order
 * and number forms kept as the server sent them).
 */
import { type Address, formatAddress } from '../hat/chatter/connect.js';
import type { Event, EventType, Timestamp } from '../hat/eventer/common.js';
import { compactJson } from '../hat/eventer/json.js';
import { type ComponentInfo, isActive, parseData, type ServerMsg } from '../hat/monitor/common.js';
import { DEFAULT_MONITOR_PORT } from '../hat/monitor/connection.js';

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

// ---- hat-monitor state (`aimm-store hat monitor`) ---------------------------------------------

export const DEFAULT_MONITOR_ADDRESS: Address = { host: '127.0.0.1', port: DEFAULT_MONITOR_PORT };

/** `host:port`, `[v6]:port`, or just `host` / `[v6]` (port {@link DEFAULT_MONITOR_PORT}). */
export function parseMonitorAddress(text: string): Address {
  const bare = /^(?:\[([^\]]+)\]|([^:[\]]+))$/.exec(text);
  if (bare !== null) return { host: (bare[1] ?? bare[2]) as string, port: DEFAULT_MONITOR_PORT };
  try {
    return parseAddress(text);
  } catch {
    throw new UsageError(`invalid address '${text}' (expected host[:port] or [v6][:port])`);
  }
}

/** The fields a hat-event server publishes as its monitor data (hat-event 0.9, `server_id` ...). */
export interface EventServerData {
  serverId: number;
  host: string;
  port: number;
  serverToken: string | null;
}

/** The data of a hat-event server in monitor mode, as `hat.event.component` requires it. */
export function eventServerData(data: unknown): EventServerData | null {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const d = data as Record<string, unknown>;
  const eventer = d.eventer_server as Record<string, unknown> | null | undefined;
  if (
    !Number.isSafeInteger(d.server_id) ||
    typeof eventer !== 'object' ||
    eventer === null ||
    typeof eventer.host !== 'string' ||
    !Number.isSafeInteger(eventer.port) ||
    !(d.server_token === null || typeof d.server_token === 'string')
  )
    return null;
  return {
    serverId: d.server_id as number,
    host: eventer.host,
    port: eventer.port as number,
    serverToken: d.server_token,
  };
}

/** A component's data text as compact JSON (numbers verbatim); text that is not JSON, quoted. */
function compactData(text: string): string {
  try {
    return compactJson(text);
  } catch {
    return JSON.stringify(text);
  }
}

/** Epoch seconds (a float) as ISO 8601 UTC with microseconds. */
export function isoFromEpochSeconds(seconds: number): string {
  let s = Math.floor(seconds);
  let us = Math.round((seconds - s) * 1e6);
  if (us >= 1_000_000) {
    s += 1;
    us -= 1_000_000;
  }
  const date = new Date(s * 1000);
  if (Number.isNaN(date.getTime())) return String(seconds);
  return `${date.toISOString().slice(0, 19)}.${String(us).padStart(6, '0')}Z`;
}

/** ACTIVE (blessed and echoed), blessed (not echoed yet) or standby (no blessing). */
export function componentState(info: ComponentInfo): 'ACTIVE' | 'blessed' | 'standby' {
  if (isActive(info)) return 'ACTIVE';
  return info.blessingReq.token === null ? 'standby' : 'blessed';
}

/** The recipient's own entry (the `hat monitor` observer itself) is not shown. */
function othersOf(msg: ServerMsg): ComponentInfo[] {
  return msg.components.filter((c) => !(c.cid === msg.cid && c.mid === msg.mid));
}

function componentLines(c: ComponentInfo): string[] {
  const req =
    c.blessingReq.token === null
      ? 'req -'
      : `req ${c.blessingReq.token}${c.blessingReq.timestamp === null ? '' : ` at ${isoFromEpochSeconds(c.blessingReq.timestamp)}`}`;
  const res = `res ${c.blessingRes.token ?? '-'}`;
  const out = [
    `  ${componentState(c).padEnd(7)} cid ${c.cid} mid ${c.mid} name ${c.name === null ? '-' : JSON.stringify(c.name)} rank ${c.rank} ${req} ${res} ${c.blessingRes.ready ? 'ready' : 'not-ready'}`,
  ];
  const event = eventServerData(parseData(c));
  if (event !== null)
    out.push(
      `          eventer ${formatAddress({ host: event.host, port: event.port })} server_id ${event.serverId}`,
    );
  if (c.data !== 'null') out.push(`          data ${compactData(c.data)}`);
  return out;
}

/**
 * The monitor's state for people: a header, then per group (in the order of first appearance,
 * components without a group last) one line per component and its data. Our own entry is hidden.
 */
export function formatMonitorState(msg: ServerMsg, address: string): string[] {
  const others = othersOf(msg);
  const groups = new Map<string | null, ComponentInfo[]>();
  for (const c of others) {
    const list = groups.get(c.group);
    if (list === undefined) groups.set(c.group, [c]);
    else list.push(c);
  }
  const order = [...groups.keys()].sort((a, b) => Number(a === null) - Number(b === null));
  const active = others.filter(isActive).length;
  const out = [
    `monitor ${address} mid ${msg.mid}: ${others.length} component${others.length === 1 ? '' : 's'}, ${active} active`,
  ];
  for (const group of order) {
    const list = groups.get(group) as ComponentInfo[];
    out.push(group === null ? 'no group (not registered yet):' : `group ${JSON.stringify(group)}:`);
    for (const c of list) out.push(...componentLines(c));
  }
  return out;
}

/**
 * The MsgServer as one JSON line, field names as in the SBS schema, every component included
 * (our own too: the one with `cid`/`mid` of the message); `data` is the parsed value (compact,
 * numbers verbatim), or the text as a string if it is not JSON.
 */
export function formatMonitorJson(msg: ServerMsg): string {
  const components = msg.components.map((c) => {
    // `data` keeps its schema position, after `group`.
    const head = JSON.stringify({ cid: c.cid, mid: c.mid, name: c.name, group: c.group });
    const tail = JSON.stringify({
      rank: c.rank,
      blessingReq: c.blessingReq,
      blessingRes: c.blessingRes,
    });
    return `${head.slice(0, -1)},"data":${compactData(c.data)},${tail.slice(1)}`;
  });
  return `{"cid":${msg.cid},"mid":${msg.mid},"components":[${components.join(',')}]}`;
}
