/**
 * Direct SBS codecs for the hot eventer types, `HatEventer.Event` and `HatEventer.RegisterEvent`:
 * they read and write the data model of `common.ts` without the generic value form in between
 * (one object per event instead of three). Wire layout exactly as `schema.ts` (§3.1); the vector
 * tests check both against the same bytes.
 */
import {
  array,
  bytes,
  type Int,
  type Reader,
  readChoiceIndex,
  readInteger,
  SbsError,
  SbsType,
  string,
  type Writer,
  writeInteger,
} from '../sbs/codec.js';
import type {
  Event,
  EventId,
  EventPayload,
  EventType,
  RegisterEvent,
  Timestamp,
} from './common.js';
import { readJsonPayload, writeJsonPayload } from './payload.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const stringArray = array(string);

// -- checks of caller input (TypeError / RangeError), shared with `codec.ts` -----------------

export function checkInt(v: unknown, what: string): Int {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`${what} must be an integer, got ${v}`);
    return v;
  }
  if (typeof v === 'bigint') {
    if (v < INT64_MIN || v > INT64_MAX) throw new RangeError(`${what} ${v} is beyond int64`);
    return v;
  }
  throw new TypeError(`${what} must be an integer, got ${typeof v}`);
}

export function checkEventType(t: unknown, what = 'event type'): EventType {
  if (!Array.isArray(t)) throw new TypeError(`${what} must be an array of strings`);
  for (const seg of t) {
    if (typeof seg !== 'string') throw new TypeError(`${what} must be an array of strings`);
  }
  return t as EventType;
}

export function checkTimestamp(t: Timestamp, what = 'timestamp'): { s: Int; us: number } {
  if (typeof t !== 'object' || t === null) throw new TypeError(`${what} must be {s, us}`);
  const s = checkInt(t.s, `${what}.s`);
  const us = checkInt(t.us, `${what}.us`);
  if (typeof us !== 'number' || us < 0 || us >= 1_000_000) {
    throw new RangeError(`${what}.us must be in [0, 1000000), got ${us}`);
  }
  return { s, us };
}

export function checkEventId(id: EventId, what = 'event id'): { [K in keyof EventId]: Int } {
  if (typeof id !== 'object' || id === null) throw new TypeError(`${what} must be an object`);
  return {
    server: checkInt(id.server, `${what}.server`),
    session: checkInt(id.session, `${what}.session`),
    instance: checkInt(id.instance, `${what}.instance`),
  };
}

// -- writing ----------------------------------------------------------------------------------

function writeTimestamp(w: Writer, t: Timestamp, what: string): void {
  const { s, us } = checkTimestamp(t, what);
  writeInteger(w, s);
  writeInteger(w, us);
}

function writeOptionalTimestamp(w: Writer, t: Timestamp | null | undefined, what: string): void {
  if (t === null || t === undefined) {
    w.byte(0x80);
    return;
  }
  w.byte(0x81);
  writeTimestamp(w, t, what);
}

function writeEventType(w: Writer, t: EventType): void {
  stringArray.write(w, checkEventType(t) as string[]);
}

function writeOptionalPayload(w: Writer, p: EventPayload | null | undefined): void {
  if (p === null || p === undefined) {
    w.byte(0x80);
    return;
  }
  if (p.kind === 'json') {
    w.byte(0x81);
    w.byte(0x81);
    writeJsonPayload(w, p);
    return;
  }
  if (p.kind === 'binary') {
    if (typeof p.type !== 'string') throw new TypeError('binary payload type must be a string');
    if (!(p.data instanceof Uint8Array)) throw new TypeError('binary payload data must be bytes');
    w.byte(0x81);
    w.byte(0x80);
    string.write(w, p.type);
    bytes.write(w, p.data);
    return;
  }
  throw new TypeError(`unknown payload kind ${String((p as { kind: unknown }).kind)}`);
}

function writeEventId(w: Writer, id: EventId): void {
  const { server, session, instance } = checkEventId(id);
  writeInteger(w, server);
  writeInteger(w, session);
  writeInteger(w, instance);
}

// -- reading (peer input: SbsError, turned into ProtocolError by the caller) -------------------

function readNumber(r: Reader, what: string): number {
  const at = r.pos;
  const v = readInteger(r);
  if (typeof v !== 'number')
    throw new SbsError('Integer', at, `${what} ${v} is out of the supported range`);
  return v;
}

function readTimestamp(r: Reader): Timestamp {
  const s = readInteger(r);
  return { s, us: readNumber(r, 'timestamp us') };
}

/** True when an Optional holds a value (index 1), false for none (index 0). */
function readOptionIndex(r: Reader, typeName: string): boolean {
  return readChoiceIndex(r, typeName, 2) === 1;
}

function readOptionalTimestamp(r: Reader): Timestamp | null {
  return readOptionIndex(r, 'Optional(HatEventer.Timestamp)') ? readTimestamp(r) : null;
}

function readOptionalPayload(r: Reader): EventPayload | null {
  if (!readOptionIndex(r, 'Optional(HatEventer.EventPayload)')) return null;
  if (readChoiceIndex(r, 'HatEventer.EventPayload', 2) === 1) {
    return readJsonPayload(r);
  }
  const type = string.read(r);
  return { kind: 'binary', type, data: bytes.read(r) };
}

class EventSbsType extends SbsType<Event> {
  readonly name = 'HatEventer.Event';
  // id (3) + type (1) + timestamp (2) + sourceTimestamp (1) + payload (1)
  readonly minSize = 8;
  write(w: Writer, e: Event): void {
    if (typeof e !== 'object' || e === null) throw new TypeError('event must be an object');
    writeEventId(w, e.id);
    writeEventType(w, e.type);
    writeTimestamp(w, e.timestamp, 'timestamp');
    writeOptionalTimestamp(w, e.sourceTimestamp, 'sourceTimestamp');
    writeOptionalPayload(w, e.payload);
  }
  read(r: Reader): Event {
    const server = readNumber(r, 'event id server');
    const session = readNumber(r, 'event id session');
    const instance = readNumber(r, 'event id instance');
    const type = stringArray.read(r);
    const timestamp = readTimestamp(r);
    const sourceTimestamp = readOptionalTimestamp(r);
    const payload = readOptionalPayload(r);
    return { id: { server, session, instance }, type, timestamp, sourceTimestamp, payload };
  }
}

class RegisterEventSbsType extends SbsType<RegisterEvent> {
  readonly name = 'HatEventer.RegisterEvent';
  readonly minSize = 3;
  write(w: Writer, e: RegisterEvent): void {
    if (typeof e !== 'object' || e === null)
      throw new TypeError('register event must be an object');
    writeEventType(w, e.type);
    writeOptionalTimestamp(w, e.sourceTimestamp, 'sourceTimestamp');
    writeOptionalPayload(w, e.payload);
  }
  read(r: Reader): RegisterEvent {
    const type = stringArray.read(r);
    const sourceTimestamp = readOptionalTimestamp(r);
    const payload = readOptionalPayload(r);
    return { type, sourceTimestamp, payload };
  }
}

/** `HatEventer.Event` ↔ {@link Event}. */
export const EventSbs: SbsType<Event> = new EventSbsType();
/** `HatEventer.RegisterEvent` ↔ {@link RegisterEvent}. */
export const RegisterEventSbs: SbsType<RegisterEvent> = new RegisterEventSbsType();
/** `Array(HatEventer.Event)`, the body of notifies and of register/query results. */
export const EventsSbs: SbsType<Event[]> = array(EventSbs);
/** `Array(HatEventer.RegisterEvent)` = `HatEventer.MsgRegisterReq`. */
export const RegisterEventsSbs: SbsType<RegisterEvent[]> = array(RegisterEventSbs);
