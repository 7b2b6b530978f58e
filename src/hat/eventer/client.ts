/**
 * The eventer client (hat-event >= 0.9.17): `connect()` opens a chatter connection, sends
 * `MsgInitReq` and waits for `MsgInitRes`; the returned {@link EventerClient} then routes status
 * and events notifications and correlates register/query responses by conversation.
 *
 * Anything the server sends that the protocol does not allow (unknown message type, a response to
 * a conversation we did not start, malformed SBS) closes the connection with a typed error; every
 * request pending at that moment is rejected with a {@link ConnectionClosedError} whose `cause`
 * is that error. Nothing is thrown asynchronously at the caller.
 */
import type { Observable } from 'rxjs';
import { type Address, connectSocket, formatAddress } from '../chatter/connect.js';
import {
  Connection,
  DEFAULT_PING_DELAY,
  DEFAULT_PING_TIMEOUT,
  type ReceivedMsg,
} from '../chatter/connection.js';
import {
  ConnectError,
  ConnectionClosedError,
  HatConnectionError,
  ProtocolError,
} from '../chatter/errors.js';
import { BufferedStream } from './buffered-stream.js';
import {
  decodeEventsNotify,
  decodeInitRes,
  decodeQueryRes,
  decodeRegisterRes,
  decodeStatusNotify,
  encodeEventsAck,
  encodeInitReq,
  encodeQueryReq,
  encodeRegisterReq,
  MSG_EVENTS_ACK,
  MSG_EVENTS_NOTIFY,
  MSG_INIT_REQ,
  MSG_INIT_RES,
  MSG_QUERY_REQ,
  MSG_QUERY_RES,
  MSG_REGISTER_REQ,
  MSG_REGISTER_RES,
  MSG_STATUS_NOTIFY,
  recycleEncoded,
} from './codec.js';
import type {
  Event,
  EventerClient,
  EventType,
  QueryParams,
  QueryResult,
  QueryServerParams,
  QueryTimeseriesParams,
  RegisterEvent,
  Status,
} from './common.js';
import { checkJsonText, isTrustedJsonPayload } from './json.js';
import { adoptInNotify, adoptInResponse } from './own-echo.js';

export type { Address } from '../chatter/connect.js';

/** The server refused the init request (`MsgInitRes.error`); `serverMessage` is its text. */
export class EventerInitError extends HatConnectionError {
  readonly serverMessage: string;
  constructor(serverMessage: string) {
    super('init_failed', `eventer init refused by the server: ${serverMessage}`);
    this.name = 'EventerInitError';
    this.serverMessage = serverMessage;
  }
}

export interface ConnectOptions {
  /** Free-form label, by convention `<type>/<name>`; the server uses it in its eventer events. */
  clientName: string;
  /** Must equal the server's `server_token` when given; null/undefined = none. */
  clientToken?: string | null;
  /** Query event types to be notified of (§4.5 wildcards); `[]` = no notifications. */
  subscriptions?: readonly EventType[];
  /** Only events of this server id (null/undefined = all). */
  serverId?: number | null;
  /** Notify after the server flushed events to disk instead of right after registration. */
  persisted?: boolean;
  /** Idle ms before we ping (default 20000; 0 = never ping, pings are still answered). */
  pingDelay?: number;
  /** Ms without any message after our ping before the connection is closed (default 20000). */
  pingTimeout?: number;
  /** Largest accepted frame body, bytes (default 256 MiB). */
  maxFrameSize?: number;
  /** Ms allowed for TCP connect plus the init exchange (default 10000). */
  connectTimeout?: number;
  /**
   * Check json payload texts before sending (default true): the server closes the connection on
   * invalid JSON, and a non-finite number even stops the real server. Payloads made by
   * `jsonPayload()` are known valid and skip the check.
   */
  checkJson?: boolean;
  /**
   * Notifies held while `events$` has no subscriber yet (default 65536). Beyond it the connection
   * closes with a ProtocolError rather than grow without bound.
   */
  maxBufferedNotifies?: number;
}

export const DEFAULT_CONNECT_TIMEOUT = 10_000;

interface Pending {
  expect: typeof MSG_REGISTER_RES | typeof MSG_QUERY_RES;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** A register request's events (see own-echo.ts). */
  sent?: readonly RegisterEvent[];
}

/**
 * Connects to a Hat event server and completes the init exchange. Rejects with
 * {@link ConnectError} (refused/unreachable/timeout), {@link EventerInitError} (refused by the
 * server), {@link ConnectionClosedError} or {@link ProtocolError}.
 */
export async function connect(address: Address, options: ConnectOptions): Promise<EventerClient> {
  const timeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
  const initData = encodeInitReq({
    clientName: options.clientName,
    clientToken: options.clientToken ?? null,
    subscriptions: (options.subscriptions ?? []) as EventType[],
    serverId: options.serverId ?? null,
    persisted: options.persisted ?? false,
  });
  const pingDelay = options.pingDelay ?? DEFAULT_PING_DELAY;
  const pingTimeout = options.pingTimeout ?? DEFAULT_PING_TIMEOUT;
  if (!(pingDelay >= 0) || !(pingTimeout > 0) || !(timeout > 0)) {
    throw new RangeError(
      `invalid timing: pingDelay ${pingDelay}, pingTimeout ${pingTimeout}, connectTimeout ${timeout}`,
    );
  }
  const started = Date.now();
  const socket = await connectSocket(address, timeout);
  let client: Client;
  try {
    client = new Client(socket, options);
  } catch (err) {
    socket.destroy();
    throw err;
  }
  return client.init(
    initData,
    Math.max(1, timeout - (Date.now() - started)),
    formatAddress(address),
  );
}

type State = 'init' | 'open' | 'closed';

class Client implements EventerClient {
  private readonly conn: Connection;
  private state: State = 'init';
  private currentStatus: Status = 'standby';
  private readonly statusStream: BufferedStream<Status>;
  private readonly eventsStream: BufferedStream<Event[]>;
  private readonly pending = new Map<number, Pending>();
  private initConvFirst = 0;
  private initWaiter: { resolve: () => void; reject: (err: Error) => void } | null = null;

  private readonly maxBuffered: number;
  private readonly checkJson: boolean;

  readonly status$: Observable<Status>;
  readonly events$: Observable<Event[]>;
  readonly closed: Promise<Error | null>;

  constructor(socket: import('node:net').Socket, options: ConnectOptions) {
    this.maxBuffered = options.maxBufferedNotifies ?? 65536;
    this.checkJson = options.checkJson ?? true;
    this.statusStream = new BufferedStream(this.maxBuffered);
    this.eventsStream = new BufferedStream(this.maxBuffered);
    this.status$ = this.statusStream.observable;
    this.events$ = this.eventsStream.observable;
    this.conn = new Connection(socket, {
      pingDelay: options.pingDelay,
      pingTimeout: options.pingTimeout,
      maxFrameSize: options.maxFrameSize,
      onMessage: (msg) => this.onMessage(msg),
      onClose: (reason) => this.onClose(reason),
    });
    this.closed = this.conn.closed;
  }

  get status(): Status {
    return this.currentStatus;
  }

  get isOpen(): boolean {
    return this.state === 'open' && this.conn.isOpen;
  }

  async init(initData: Uint8Array, timeoutMs: number, where: string): Promise<EventerClient> {
    const done = new Promise<void>((resolve, reject) => {
      this.initWaiter = { resolve, reject };
    });
    this.initConvFirst = this.conn.send(MSG_INIT_REQ, initData, { last: false }).first;
    const timer = setTimeout(() => {
      this.conn.abort(
        new ConnectError(
          'connect_timeout',
          where,
          `no init response from ${where} within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    try {
      await done;
    } finally {
      clearTimeout(timer);
    }
    return this;
  }

  // -- requests ----------------------------------------------------------------------------

  register(events: RegisterEvent[]): Promise<Event[] | null> {
    return this.request(
      MSG_REGISTER_REQ,
      MSG_REGISTER_RES,
      () => this.encodeRegister(events),
      events,
    );
  }

  registerNoResponse(events: RegisterEvent[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const data = this.encodeRegister(events);
      this.checkOpen();
      this.conn.send(MSG_REGISTER_REQ, data, { last: true }, (err) => {
        if (err !== undefined) return reject(this.closedError(err));
        recycleEncoded(data);
        resolve();
      });
    });
  }

  query(params: QueryParams): Promise<QueryResult> {
    return this.request(MSG_QUERY_REQ, MSG_QUERY_RES, () => encodeQueryReq(params));
  }

  async *queryPages(params: QueryTimeseriesParams | QueryServerParams): AsyncIterable<Event[]> {
    let lastEventId = params.lastEventId ?? null;
    for (;;) {
      const result = await this.query({ ...params, lastEventId });
      const last = result.events[result.events.length - 1];
      if (last === undefined) return;
      yield result.events;
      if (!result.moreFollows) return;
      lastEventId = last.id;
    }
  }

  async close(): Promise<void> {
    await this.conn.close();
  }

  private encodeRegister(events: RegisterEvent[]): Uint8Array {
    if (this.checkJson && Array.isArray(events)) {
      for (const e of events) {
        const p = e?.payload;
        if (p?.kind === 'json' && !isTrustedJsonPayload(p)) checkJsonText(p.text);
      }
    }
    return encodeRegisterReq(events);
  }

  private request<T>(
    type: string,
    expect: Pending['expect'],
    encodeData: () => Uint8Array,
    sent?: readonly RegisterEvent[],
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const data = encodeData();
      this.checkOpen();
      const conv = this.conn.send(type, data, { last: false }, (err) => {
        if (err === undefined) recycleEncoded(data);
      });
      this.pending.set(conv.first, {
        expect,
        resolve: resolve as (value: unknown) => void,
        reject,
        ...(sent === undefined ? {} : { sent }),
      });
    });
  }

  private checkOpen(): void {
    if (this.state !== 'open' || !this.conn.isOpen) {
      throw this.closedError(this.conn.reason ?? undefined);
    }
  }

  private closedError(cause: Error | undefined): ConnectionClosedError {
    if (cause instanceof ConnectionClosedError) return cause;
    return new ConnectionClosedError(
      cause === undefined
        ? 'eventer connection closed'
        : `eventer connection closed: ${cause.message}`,
      { cause },
    );
  }

  // -- incoming ----------------------------------------------------------------------------

  /** Returns true when nothing refers to `msg.data` any more (see `ConnectionOptions.onMessage`). */
  private onMessage(msg: ReceivedMsg): boolean {
    if (this.state === 'init') {
      if (msg.type !== MSG_INIT_RES || !msg.conv.owner || msg.conv.first !== this.initConvFirst) {
        throw new ProtocolError(`expected ${MSG_INIT_RES} as the first message, got ${msg.type}`);
      }
      const res = decodeInitRes(msg.data);
      if (res.kind === 'error') {
        const err = new EventerInitError(res.message);
        this.conn.abort(err);
        return false;
      }
      this.currentStatus = res.status;
      this.state = 'open';
      const waiter = this.initWaiter;
      this.initWaiter = null;
      waiter?.resolve();
      return false;
    }
    switch (msg.type) {
      case MSG_STATUS_NOTIFY: {
        const status = decodeStatusNotify(msg.data);
        this.currentStatus = status;
        if (!this.statusStream.next(status)) this.overflow('status');
        return false;
      }
      case MSG_EVENTS_NOTIFY: {
        const events = decodeEventsNotify(msg.data);
        const released = adoptInNotify(events, () => this.inFlightRegisters());
        const ack = msg.last
          ? null
          : () => {
              if (this.conn.isOpen) {
                this.conn.send(MSG_EVENTS_ACK, encodeEventsAck(), { conv: msg.conv, last: true });
              }
            };
        if (!this.eventsStream.next(events, ack)) this.overflow('events');
        return released;
      }
      case MSG_REGISTER_RES:
      case MSG_QUERY_RES: {
        const pending = msg.conv.owner ? this.pending.get(msg.conv.first) : undefined;
        if (pending === undefined) {
          throw new ProtocolError(
            `${msg.type} in conversation (${msg.conv.owner}, ${msg.conv.first}) that has no pending request`,
          );
        }
        if (pending.expect !== msg.type) {
          throw new ProtocolError(`expected ${pending.expect}, got ${msg.type}`);
        }
        this.pending.delete(msg.conv.first);
        let value: unknown;
        try {
          value = (msg.type === MSG_REGISTER_RES ? decodeRegisterRes : decodeQueryRes)(msg.data);
        } catch (err) {
          // A malformed response closes the connection; its request fails with the cause.
          pending.reject(this.closedError(err as Error));
          throw err;
        }
        const released =
          pending.sent !== undefined &&
          Array.isArray(value) &&
          adoptInResponse(value as Event[], pending.sent);
        pending.resolve(value);
        return released;
      }
      default:
        throw new ProtocolError(`unsupported message type ${JSON.stringify(msg.type)}`);
    }
  }

  /** The events of our register requests still waiting for their response. */
  private inFlightRegisters(): (readonly RegisterEvent[])[] {
    const out: (readonly RegisterEvent[])[] = [];
    for (const p of this.pending.values()) if (p.sent !== undefined) out.push(p.sent);
    return out;
  }

  private overflow(what: string): never {
    throw new ProtocolError(
      `more than ${this.maxBuffered} ${what} notifications arrived before anyone subscribed to ${what}$`,
    );
  }

  private onClose(reason: Error | null): void {
    const wasInit = this.state === 'init';
    this.state = 'closed';
    if (wasInit && this.initWaiter !== null) {
      const waiter = this.initWaiter;
      this.initWaiter = null;
      waiter.reject(
        reason instanceof HatConnectionError
          ? reason
          : new ConnectionClosedError('connection closed before the init response', {
              cause: reason ?? undefined,
            }),
      );
    }
    const err = this.closedError(reason ?? undefined);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.statusStream.complete();
    this.eventsStream.complete();
  }
}
