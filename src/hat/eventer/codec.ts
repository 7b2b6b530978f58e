/**
 * Mapping between the event data model (`common.ts`) and the SBS value form of the `HatEventer`
 * schema (`schema.ts`), plus encoders/decoders of whole eventer messages.
 *
 * Decoding never trusts the peer: integers that do not fit the model (ids beyond 2^53, bad `us`)
 * raise {@link ProtocolError}. Encoding validates what the caller gives and raises `TypeError` /
 * `RangeError` before anything is sent.
 */
import { SpareBuffer } from '../../common/spare-buffer.js';
import { ProtocolError } from '../chatter/errors.js';
import {
  boolean,
  type Int,
  Reader,
  readChoiceIndex,
  SbsError,
  type SbsType,
  Writer,
} from '../sbs/codec.js';
import type {
  Event,
  EventId,
  EventType,
  QueryParams,
  QueryResult,
  RegisterEvent,
  Status,
  Timestamp,
} from './common.js';
import {
  checkEventId,
  checkEventType,
  checkInt,
  checkTimestamp,
  EventsSbs,
  RegisterEventsSbs,
} from './event-codec.js';
import * as S from './schema.js';

// -------------------------------------------------------------------------------------------
// decoding (peer → model)

function safeNumber(v: Int, what: string): number {
  if (typeof v === 'number') return v;
  throw new ProtocolError(`${what} ${v} is out of the supported range`);
}

export function timestampFromSbs(v: S.SbsTimestamp): Timestamp {
  return { s: v.s, us: safeNumber(v.us, 'timestamp us') };
}

export function eventIdFromSbs(v: S.SbsEventId): EventId {
  return {
    server: safeNumber(v.server, 'event id server'),
    session: safeNumber(v.session, 'event id session'),
    instance: safeNumber(v.instance, 'event id instance'),
  };
}

export function statusFromSbs(v: S.SbsStatus): Status {
  return v[0];
}

export function queryParamsFromSbs(v: S.SbsQueryParams): QueryParams {
  const optTs = (t: S.SbsTimestamp | null) => (t === null ? null : timestampFromSbs(t));
  const optId = (t: S.SbsEventId | null) => (t === null ? null : eventIdFromSbs(t));
  const optMax = (m: Int | null) => (m === null ? null : safeNumber(m, 'maxResults'));
  switch (v[0]) {
    case 'latest':
      return { kind: 'latest', eventTypes: v[1].eventTypes };
    case 'timeseries': {
      const p = v[1];
      return {
        kind: 'timeseries',
        eventTypes: p.eventTypes,
        tFrom: optTs(p.tFrom),
        tTo: optTs(p.tTo),
        sourceTFrom: optTs(p.sourceTFrom),
        sourceTTo: optTs(p.sourceTTo),
        order: p.order[0],
        orderBy: p.orderBy[0],
        maxResults: optMax(p.maxResults),
        lastEventId: optId(p.lastEventId),
      };
    }
    case 'server': {
      const p = v[1];
      return {
        kind: 'server',
        serverId: safeNumber(p.serverId, 'serverId'),
        persisted: p.persisted,
        maxResults: optMax(p.maxResults),
        lastEventId: optId(p.lastEventId),
      };
    }
  }
}

// -------------------------------------------------------------------------------------------
// encoding (model → peer), with validation of caller input

export { checkEventType };

export function timestampToSbs(t: Timestamp, what = 'timestamp'): S.SbsTimestamp {
  return checkTimestamp(t, what);
}

export function eventIdToSbs(id: EventId, what = 'event id'): S.SbsEventId {
  return checkEventId(id, what);
}

export function statusToSbs(s: Status): S.SbsStatus {
  if (s !== 'standby' && s !== 'starting' && s !== 'operational' && s !== 'stopping') {
    throw new TypeError(`unknown status ${String(s)}`);
  }
  return [s, null];
}

function typesToSbs(types: readonly EventType[] | null | undefined): string[][] | null {
  if (types === null || types === undefined) return null;
  if (!Array.isArray(types)) throw new TypeError('eventTypes must be an array of event types');
  return types.map((t) => checkEventType(t, 'query event type') as string[]);
}

function maxResultsToSbs(m: number | null | undefined): Int | null {
  if (m === null || m === undefined) return null;
  const v = checkInt(m, 'maxResults');
  if (v < 0) throw new RangeError(`maxResults must not be negative, got ${v}`);
  return v;
}

export function queryParamsToSbs(p: QueryParams): S.SbsQueryParams {
  const optTs = (t: Timestamp | null | undefined, what: string) =>
    t === null || t === undefined ? null : timestampToSbs(t, what);
  const optId = (id: EventId | null | undefined) =>
    id === null || id === undefined ? null : eventIdToSbs(id, 'lastEventId');
  switch (p.kind) {
    case 'latest':
      return ['latest', { eventTypes: typesToSbs(p.eventTypes) }];
    case 'timeseries': {
      const order = p.order ?? 'descending';
      const orderBy = p.orderBy ?? 'timestamp';
      if (order !== 'descending' && order !== 'ascending')
        throw new TypeError(`bad order ${order}`);
      if (orderBy !== 'timestamp' && orderBy !== 'sourceTimestamp') {
        throw new TypeError(`bad orderBy ${orderBy}`);
      }
      return [
        'timeseries',
        {
          eventTypes: typesToSbs(p.eventTypes),
          tFrom: optTs(p.tFrom, 'tFrom'),
          tTo: optTs(p.tTo, 'tTo'),
          sourceTFrom: optTs(p.sourceTFrom, 'sourceTFrom'),
          sourceTTo: optTs(p.sourceTTo, 'sourceTTo'),
          order: [order, null],
          orderBy: [orderBy, null],
          maxResults: maxResultsToSbs(p.maxResults),
          lastEventId: optId(p.lastEventId),
        },
      ];
    }
    case 'server':
      return [
        'server',
        {
          serverId: checkInt(p.serverId, 'serverId'),
          persisted: Boolean(p.persisted),
          maxResults: maxResultsToSbs(p.maxResults),
          lastEventId: optId(p.lastEventId),
        },
      ];
    default:
      throw new TypeError(`unknown query kind ${String((p as { kind: unknown }).kind)}`);
  }
}

// -------------------------------------------------------------------------------------------
// whole messages

export interface InitRequest {
  clientName: string;
  clientToken: string | null;
  subscriptions: EventType[];
  serverId: number | null;
  persisted: boolean;
}

export type InitResponse = { kind: 'success'; status: Status } | { kind: 'error'; message: string };

/** `null` = failure (the server is not operational). */
export type RegisterResponse = Event[] | null;

export const MSG_INIT_REQ = 'HatEventer.MsgInitReq';
export const MSG_INIT_RES = 'HatEventer.MsgInitRes';
export const MSG_STATUS_NOTIFY = 'HatEventer.MsgStatusNotify';
export const MSG_EVENTS_NOTIFY = 'HatEventer.MsgEventsNotify';
export const MSG_EVENTS_ACK = 'HatEventer.MsgEventsAck';
export const MSG_REGISTER_REQ = 'HatEventer.MsgRegisterReq';
export const MSG_REGISTER_RES = 'HatEventer.MsgRegisterRes';
export const MSG_QUERY_REQ = 'HatEventer.MsgQueryReq';
export const MSG_QUERY_RES = 'HatEventer.MsgQueryRes';

const SMALL_WRITER_BYTES = 64 * 1024;
/** An encoding larger than this is handed over, not copied. */
const HAND_OVER_BYTES = 1024 * 1024;

/** A large encoding's memory given back once written, for the next large encoding (1 s at most). */
const spare = new SpareBuffer(1000);
/** Memory of the encodings handed over and not given back yet. */
const handedOver = new WeakSet<ArrayBufferLike>();

/** A writer that grows into the spare memory of an earlier large encoding when it fits. */
class RecyclingWriter extends Writer {
  override ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    const reused = spare.take(need);
    if (reused === null) {
      super.ensure(n);
      return;
    }
    this.buf.copy(reused, 0, 0, this.pos);
    this.buf = reused;
  }
}

const writer = new RecyclingWriter(SMALL_WRITER_BYTES);

/**
 * Encodes with a function writing straight into the shared writer. The result is the caller's
 * own: a copy of a small encoding; a large one (over 1 MiB) is the writer's buffer itself, handed
 * over (the writer starts again from a small one), so that a large model's register request is
 * not copied once more.
 */
function encWith(write: (w: Writer) => void): Buffer {
  writer.pos = 0;
  write(writer);
  if (writer.pos > HAND_OVER_BYTES) {
    const out = writer.result();
    handedOver.add(out.buffer);
    writer.buf = Buffer.allocUnsafe(SMALL_WRITER_BYTES);
    return out;
  }
  return Buffer.from(writer.result());
}

/**
 * Gives back an encoding this module handed over, once it is written and nothing refers to it:
 * the next large encoding grows into its memory (for a second at most) instead of into fresh
 * memory. Anything else is ignored.
 */
export function recycleEncoded(data: Uint8Array): void {
  if (!handedOver.delete(data.buffer)) return;
  spare.keep(Buffer.from(data.buffer, 0, data.buffer.byteLength));
}

function enc<T>(type: SbsType<T>, value: T): Buffer {
  return encWith((w) => type.write(w, value));
}

/** Decodes all of `data` with `read`; SBS errors become {@link ProtocolError}s naming `name`. */
function decWith<T>(name: string, data: Uint8Array, read: (r: Reader) => T): T {
  try {
    const r = new Reader(data);
    const value = read(r);
    if (r.pos !== r.end)
      throw new SbsError(name, r.pos, `${r.end - r.pos} trailing bytes after the value`);
    return value;
  } catch (err) {
    if (err instanceof SbsError) {
      throw new ProtocolError(`malformed ${name}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** Decodes an eventer payload; SBS errors become {@link ProtocolError}s naming the message. */
export function decodePayload<T>(type: SbsType<T>, data: Uint8Array): T {
  return decWith(type.name, data, (r) => type.read(r));
}

export function encodeInitReq(req: InitRequest): Buffer {
  if (typeof req.clientName !== 'string') throw new TypeError('clientName must be a string');
  if (req.clientToken !== null && typeof req.clientToken !== 'string') {
    throw new TypeError('clientToken must be a string or null');
  }
  if (!Array.isArray(req.subscriptions)) throw new TypeError('subscriptions must be an array');
  return enc(S.MsgInitReq, {
    clientName: req.clientName,
    clientToken: req.clientToken,
    subscriptions: req.subscriptions.map((t) => checkEventType(t, 'subscription') as string[]),
    serverId: req.serverId === null ? null : checkInt(req.serverId, 'serverId'),
    persisted: Boolean(req.persisted),
  });
}

export function decodeInitReq(data: Uint8Array): InitRequest {
  const v = decodePayload(S.MsgInitReq, data);
  return {
    clientName: v.clientName,
    clientToken: v.clientToken,
    subscriptions: v.subscriptions,
    serverId: v.serverId === null ? null : safeNumber(v.serverId, 'serverId'),
    persisted: v.persisted,
  };
}

export function encodeInitRes(res: InitResponse): Buffer {
  return enc(
    S.MsgInitRes,
    res.kind === 'success' ? ['success', statusToSbs(res.status)] : ['error', res.message],
  );
}

export function decodeInitRes(data: Uint8Array): InitResponse {
  const v = decodePayload(S.MsgInitRes, data);
  return v[0] === 'success'
    ? { kind: 'success', status: statusFromSbs(v[1]) }
    : { kind: 'error', message: v[1] };
}

export function encodeStatusNotify(status: Status): Buffer {
  return enc(S.MsgStatusNotify, statusToSbs(status));
}

export function decodeStatusNotify(data: Uint8Array): Status {
  return statusFromSbs(decodePayload(S.MsgStatusNotify, data));
}

export function encodeEventsNotify(events: readonly Event[]): Buffer {
  if (!Array.isArray(events)) throw new TypeError('events must be an array');
  return encWith((w) => EventsSbs.write(w, events as Event[]));
}

export function decodeEventsNotify(data: Uint8Array): Event[] {
  return decWith(MSG_EVENTS_NOTIFY, data, (r) => EventsSbs.read(r));
}

export function encodeEventsAck(): Buffer {
  return Buffer.alloc(0);
}

export function decodeEventsAck(data: Uint8Array): null {
  return decodePayload(S.MsgEventsAck, data);
}

export function encodeRegisterReq(events: readonly RegisterEvent[]): Buffer {
  if (!Array.isArray(events)) throw new TypeError('register events must be an array');
  return encWith((w) => RegisterEventsSbs.write(w, events as RegisterEvent[]));
}

export function decodeRegisterReq(data: Uint8Array): RegisterEvent[] {
  return decWith(MSG_REGISTER_REQ, data, (r) => RegisterEventsSbs.read(r));
}

export function encodeRegisterRes(res: RegisterResponse): Buffer {
  if (res !== null && !Array.isArray(res)) throw new TypeError('events must be an array or null');
  return encWith((w) => {
    if (res === null) {
      w.byte(0x81);
    } else {
      w.byte(0x80);
      EventsSbs.write(w, res);
    }
  });
}

export function decodeRegisterRes(data: Uint8Array): RegisterResponse {
  return decWith(MSG_REGISTER_RES, data, (r) =>
    readChoiceIndex(r, MSG_REGISTER_RES, 2) === 0 ? EventsSbs.read(r) : null,
  );
}

export function encodeQueryReq(params: QueryParams): Buffer {
  return enc(S.MsgQueryReq, queryParamsToSbs(params));
}

export function decodeQueryReq(data: Uint8Array): QueryParams {
  return queryParamsFromSbs(decodePayload(S.MsgQueryReq, data));
}

export function encodeQueryRes(result: QueryResult): Buffer {
  if (!Array.isArray(result.events)) throw new TypeError('query result events must be an array');
  return encWith((w) => {
    EventsSbs.write(w, result.events);
    boolean.write(w, Boolean(result.moreFollows));
  });
}

export function decodeQueryRes(data: Uint8Array): QueryResult {
  return decWith(MSG_QUERY_RES, data, (r) => {
    const events = EventsSbs.read(r);
    return { events, moreFollows: boolean.read(r) };
  });
}
