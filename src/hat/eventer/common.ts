/**
 * Hat event data model (hat-event >= 0.9.17, `hat/event/common`): events, ids, timestamps,
 * payloads, query parameters and results, status, and the client interface.
 */
import type { Observable } from 'rxjs';
import type { Int } from '../sbs/codec.js';
import { markTrustedJsonPayload } from './json.js';

/** Ordered segments; as one string written `a/b/c`. */
export type EventType = readonly string[];

/** `s`: signed seconds since the epoch (a bigint only for extremes like ±2^63); `us` in [0, 1e6). */
export interface Timestamp {
  s: Int;
  us: number;
}

export interface EventId {
  server: number;
  session: number;
  instance: number;
}

/**
 * A JSON payload kept as the text received; parse it on demand with {@link parseJsonPayload}. A
 * text of 64 KiB or more is received as a `ReceivedJsonPayload` (`payload.ts`), whose `text` is
 * decoded from the received bytes on each access.
 */
export interface EventPayloadJson {
  readonly kind: 'json';
  readonly text: string;
}

/** An opaque binary payload; `type` is a free-form label. */
export interface EventPayloadBinary {
  readonly kind: 'binary';
  readonly type: string;
  readonly data: Uint8Array;
}

export type EventPayload = EventPayloadJson | EventPayloadBinary;

export interface Event {
  id: EventId;
  type: EventType;
  timestamp: Timestamp;
  sourceTimestamp: Timestamp | null;
  payload: EventPayload | null;
}

export interface RegisterEvent {
  type: EventType;
  sourceTimestamp: Timestamp | null;
  payload: EventPayload | null;
}

export type Status = 'standby' | 'starting' | 'operational' | 'stopping';

export type Order = 'descending' | 'ascending';
export type OrderBy = 'timestamp' | 'sourceTimestamp';

export interface QueryLatestParams {
  kind: 'latest';
  /** null = all types. */
  eventTypes: EventType[] | null;
}

export interface QueryTimeseriesParams {
  kind: 'timeseries';
  eventTypes: EventType[] | null;
  tFrom: Timestamp | null;
  tTo: Timestamp | null;
  sourceTFrom: Timestamp | null;
  sourceTTo: Timestamp | null;
  order: Order;
  orderBy: OrderBy;
  maxResults: number | null;
  lastEventId: EventId | null;
}

export interface QueryServerParams {
  kind: 'server';
  serverId: number;
  persisted: boolean;
  maxResults: number | null;
  lastEventId: EventId | null;
}

export type QueryParams = QueryLatestParams | QueryTimeseriesParams | QueryServerParams;

export interface QueryResult {
  events: Event[];
  moreFollows: boolean;
}

/** Timeseries query parameters with the library defaults (descending by timestamp, no filters). */
export function timeseriesQuery(
  params: Partial<Omit<QueryTimeseriesParams, 'kind'>> = {},
): QueryTimeseriesParams {
  return {
    kind: 'timeseries',
    eventTypes: params.eventTypes ?? null,
    tFrom: params.tFrom ?? null,
    tTo: params.tTo ?? null,
    sourceTFrom: params.sourceTFrom ?? null,
    sourceTTo: params.sourceTTo ?? null,
    order: params.order ?? 'descending',
    orderBy: params.orderBy ?? 'timestamp',
    maxResults: params.maxResults ?? null,
    lastEventId: params.lastEventId ?? null,
  };
}

/** Server query parameters (`persisted` false, no limit, from the start by default). */
export function serverQuery(
  serverId: number,
  params: Partial<Omit<QueryServerParams, 'kind' | 'serverId'>> = {},
): QueryServerParams {
  return {
    kind: 'server',
    serverId,
    persisted: params.persisted ?? false,
    maxResults: params.maxResults ?? null,
    lastEventId: params.lastEventId ?? null,
  };
}

/** A JSON payload from a value. Non-finite numbers become `null` (the server would die on them). */
export function jsonPayload(value: unknown): EventPayloadJson {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return markTrustedJsonPayload({ kind: 'json', text });
}

/** Parses a JSON payload's text (throws SyntaxError on bad JSON). */
export function parseJsonPayload(payload: EventPayloadJson): unknown {
  return JSON.parse(payload.text);
}

/** Natural order of event ids of one server: (session, instance). */
export function compareEventIds(a: EventId, b: EventId): number {
  return a.server - b.server || a.session - b.session || a.instance - b.instance;
}

/**
 * `matches(eventType, queryType)` exactly as `hat/event/common/matches.py` (§4.5): `?` matches one
 * existing segment, `*` (valid only last) matches zero or more.
 */
export function matches(eventType: EventType, queryType: EventType): boolean {
  let qlen = queryType.length;
  const variable = qlen > 0 && queryType[qlen - 1] === '*';
  if (variable) qlen--;
  if (eventType.length < qlen) return false;
  if (eventType.length > qlen && !variable) return false;
  for (let i = 0; i < qlen; i++) {
    const q = queryType[i];
    if (q !== '?' && q !== eventType[i]) return false;
  }
  return true;
}

/** True when `eventType` matches any of the query types (a subscription is their union). */
export function matchesAny(eventType: EventType, queryTypes: readonly EventType[]): boolean {
  for (const q of queryTypes) if (matches(eventType, q)) return true;
  return false;
}

/** A query type is valid when `*` appears at most as its last segment. */
export function isValidQueryType(queryType: EventType): boolean {
  const i = queryType.indexOf('*');
  return i === -1 || i === queryType.length - 1;
}

/** The client side of an eventer connection (implemented in `client.ts`). */
export interface EventerClient {
  /** The server's status as last reported (from MsgInitRes, then MsgStatusNotify). */
  readonly status: Status;
  /**
   * Status changes (each MsgStatusNotify); like `events$`, changes received before the first
   * subscription are held for the first subscriber. Completes when the connection closes.
   */
  readonly status$: Observable<Status>;
  /**
   * One array per MsgEventsNotify, in arrival order; a notify with `last=false` is acknowledged with
   * MsgEventsAck after it is delivered. Notifies received before the first subscription are buffered
   * and delivered to the first subscriber, so nothing is lost between `connect()` and subscribing.
   * Completes when the connection closes.
   */
  readonly events$: Observable<Event[]>;
  /** False once the connection is closed. */
  readonly isOpen: boolean;
  /** Resolves when the connection has closed; the value is why (null for a local, clean close). */
  readonly closed: Promise<Error | null>;
  /** Register with response: the created events in request order, or null on `failure`. */
  register(events: RegisterEvent[]): Promise<Event[] | null>;
  /** Register without response (`last=true`): resolves once the frame is handed to the socket. */
  registerNoResponse(events: RegisterEvent[]): Promise<void>;
  query(params: QueryParams): Promise<QueryResult>;
  /** Every page of a timeseries/server query, following `moreFollows` with `lastEventId`. */
  queryPages(params: QueryTimeseriesParams | QueryServerParams): AsyncIterable<Event[]>;
  /** Closes the connection; pending requests fail with a ConnectionClosedError. */
  close(): Promise<void>;
}
