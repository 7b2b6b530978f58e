/**
 * A Hat event server for tests (hat-event 0.9.42 behaviour as the protocol notes §3.3, §5 and §8
 * describe it and the recordings in `hat-vectors/conversations/` show it):
 *
 * - init: the first non-ping message must be `MsgInitReq` (else close, no reply); a subscription
 *   with `*` not last → `error('invalid query event type')`; a token that differs from
 *   `serverToken` → `error('invalid client token')`; after an init error the connection is closed
 *   `initErrorCloseMs` (500) later. On success, when operational, the event
 *   `['event', serverId, 'eventer', clientName]` "CONNECTED" is registered (other subscribers see
 *   it, the new client does not) before `MsgInitRes.success(status)`; "DISCONNECTED" on close.
 * - register: one session per request, one timestamp per session, instances 1..n; persisted=false
 *   subscribers are notified before the response; persisted=true subscribers after the flush
 *   (`flushDelayMs` after the register, or {@link HatPeer.flush}), one notify per batch. Empty
 *   request → `events([])` and no session. Not operational (or `failRegisters`) → `failure`.
 *   Invalid JSON payload → connection closed, nothing registered. JSON payloads are re-emitted in
 *   Python `json.dumps` style unless `normaliseJson` is false.
 * - queries: latest (over `latestSubscriptions`, insertion order), timeseries (filters, order,
 *   `lastEventId` sentinel, `maxResults` capped by `timeseriesMaxResults`), server (id order,
 *   `persisted` = flushed only; `lastEventId.server != serverId` closes the connection).
 * - query COST as hat-event 0.9.42's LMDB backend (`backends/lmdb/timeseriesdb.py`, `refdb.py`,
 *   `latestdb.py`): every stored event is kept encoded (SBS, as LMDB keeps it) and a query walks
 *   entries decoding each one. A timeseries query is answered from the first configured
 *   {@link PeerPartition} with its `orderBy` whose subscriptions overlap the query's types (none:
 *   `[]`); it seeks to `tFrom` (to the partition's first entry without one), walks in key order
 *   filtering as it goes, skips up to the `lastEventId` sentinel by walking, and stops after
 *   `maxResults + 1` matches or at `tTo` / the partition's end. A server query seeks to
 *   `lastEventId` in the server's id index and walks every event of that server id (every type).
 *   `latest` is a table (one event per type; exact types are looked up, patterns scanned). So CPU
 *   cost grows with the unrelated events a walk crosses, as the real server's does. By default
 *   every query is answered synchronously; with `executor` timeseries and server queries queue for
 *   one walker that proceeds in slices beside the event loop (LMDB's executor thread), each walk
 *   seeing the store as it was when it began, while `latest`, registers and pings go on.
 * - any protocol violation closes the connection without a reply; pings both ways.
 * - redundancy: `importEvents` stores events synchronised from another server verbatim (same ids)
 *   and notifies them; `onRegistered` reports what this server registers (see `event-cluster.ts`).
 *
 * Known, deliberate differences from the real server: a payload with NaN/Infinity/1e400 only
 * closes the offending connection (the real server dies); unflushed events are always returned
 * in correct order (no LMDB merge quirk).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Connection, type ReceivedMsg } from '../../src/hat/chatter/connection.js';
import { ConnectionClosedError, ProtocolError } from '../../src/hat/chatter/errors.js';
import {
  decodeEventsAck,
  decodeEventsNotify,
  decodeInitReq,
  decodeQueryReq,
  decodeRegisterReq,
  encodeEventsNotify,
  encodeInitRes,
  encodeQueryRes,
  encodeRegisterRes,
  encodeStatusNotify,
  type InitRequest,
  MSG_EVENTS_ACK,
  MSG_EVENTS_NOTIFY,
  MSG_INIT_REQ,
  MSG_INIT_RES,
  MSG_QUERY_REQ,
  MSG_QUERY_RES,
  MSG_REGISTER_REQ,
  MSG_REGISTER_RES,
  MSG_STATUS_NOTIFY,
} from '../../src/hat/eventer/codec.js';
import {
  compareEventIds,
  type Event,
  type EventId,
  type EventPayload,
  type EventType,
  isValidQueryType,
  matchesAny,
  type OrderBy,
  type QueryLatestParams,
  type QueryParams,
  type QueryResult,
  type QueryServerParams,
  type QueryTimeseriesParams,
  type RegisterEvent,
  type Status,
  type Timestamp,
} from '../../src/hat/eventer/common.js';
import { checkJsonText, pythonJsonDumps } from '../../src/hat/eventer/json.js';
import { type RegisterCost, registerCostMs, spinUntil } from './register-cost.js';

export interface HatPeerOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  serverId?: number;
  /** Clients presenting a different token are refused; null/undefined accepts any. */
  serverToken?: string | null;
  status?: Status;
  /** Persisted notifies and the persisted store follow a register after this many ms (50). */
  flushDelayMs?: number;
  pingDelay?: number;
  pingTimeout?: number;
  maxFrameSize?: number;
  timeseriesMaxResults?: number;
  /** Re-emit JSON payloads in Python json.dumps style (default true). */
  normaliseJson?: boolean;
  /** Event types kept for `latest` queries (default [['*']]). */
  latestSubscriptions?: EventType[];
  /** Register the engine's `['event', serverId, 'engine']` "STARTED" event (default true). */
  engineEvents?: boolean;
  /** Delay before closing after an init error, ms (default 500 like the real server). */
  initErrorCloseMs?: number;
  /**
   * Time-series partitions, as LMDB's `timeseries` config (default: one catch-all partition per
   * order, `[{orderBy: 'timestamp', subscriptions: [['*']]}, {orderBy: 'sourceTimestamp', …}]`,
   * which answers every timeseries query from every event).
   */
  partitions?: PeerPartition[];
  /**
   * CPU time a register request costs the real server (`register-cost.ts`): the peer keeps its
   * thread busy that long before registering. Default null: the bare peer's own cost only.
   */
  registerCost?: RegisterCost | null;
  /**
   * Sends each register response this many ms after registering (default 0: at once), in order:
   * the time a response takes to reach a client on another host. Notifications are not delayed.
   */
  registerAnswerDelayMs?: number;
  /**
   * Answer timeseries and server queries as hat-event's LMDB backend does, in one executor thread
   * beside the event loop (default false: synchronously, in the order received): they queue, one
   * at a time, and each walks in slices of a few ms with the peer's event loop running in between,
   * so `latest` queries, registers, notifications and pings are answered during a long walk, as
   * the real server answers them. Each walk sees the store as it was when it began (LMDB's read
   * transaction). For benches of a client's time while the server walks.
   */
  executor?: boolean;
}

/** One LMDB time-series partition: which events it holds and which timestamp orders them. */
export interface PeerPartition {
  orderBy: OrderBy;
  subscriptions: EventType[];
}

export interface PeerClientInfo {
  clientName: string;
  clientToken: string | null;
  subscriptions: EventType[];
  serverId: number | null;
  persisted: boolean;
}

export interface HatPeer {
  readonly host: string;
  readonly port: number;
  readonly serverId: number;
  /** Everything stored, in id order. */
  readonly events: readonly Event[];
  /**
   * Stored entries decoded by queries so far (every entry a timeseries or server query walked,
   * matching or not): the work LMDB does, which tests assert on instead of timings.
   */
  readonly walked: number;
  /** Milliseconds spent answering queries so far (the walks, sliced or not). */
  readonly queryMs: number;
  /** Open TCP connections (initialised or not). */
  connectionCount(): number;
  /** Init info of the currently connected, initialised clients. */
  clients(): PeerClientInfo[];
  readonly status: Status;
  /** Sets the status and notifies clients (MsgStatusNotify). */
  setStatus(s: Status): void;
  /** Flushes now: persisted subscribers get their notifies, persisted queries see everything. */
  flush(): void;
  /** Closes the listener and all connections; keeps the store. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Forgets all events; sessions restart at 1 (a Hat database reset). */
  resetStore(): void;
  /**
   * Drops the oldest `n` entries of every time-series partition (by its order), as LMDB's
   * partition `limit` does. `latest` keeps its table; like LMDB's reference db, a server query
   * then sees an event only while a partition or the `latest` table still holds it. Returns the
   * events no longer held anywhere.
   */
  pruneTimeseries(n: number): number;
  /** Answer register requests with `failure` (nothing registered). */
  failRegisters(on: boolean): void;
  /** Stop reading and answering anything (pings included), or resume. */
  stall(on: boolean): void;
  /**
   * Hold timeseries and server queries (answered, in order, once released) while `latest` queries,
   * registers and pings go on: a history read that takes as long as the test wants.
   */
  holdHistoryQueries(on: boolean): void;
  /** Destroys the open connections, optionally after `afterBytes` more bytes sent on each. */
  cutConnections(opts?: { afterBytes?: number }): void;
  /**
   * Registers server-side, as another writer would; returns the created events. With `serverId`
   * (not this peer's), the events carry that server id, as events a redundant Hat server
   * registered and this one received by synchronisation: their own session counter, stored,
   * queried and notified like this server's own.
   */
  register(events: RegisterEvent[], opts?: { serverId?: number }): Event[];
  /**
   * Sends a MsgEventsNotify to every initialised client whose subscription matches, like the
   * eventer server library's `notify_events`; `withAck` sends last=false and resolves once every
   * addressed client acknowledged (or disconnected).
   */
  notify(events: Event[], opts?: { persisted?: boolean; withAck?: boolean }): Promise<void>;
  /**
   * Stores events verbatim, ids and timestamps included, as a redundant Hat server stores the
   * events it synchronised from another server: subscribers are notified of them (persisted ones
   * after the flush), queries see them, `latest` takes one unless it already holds a newer event of
   * that type. Events whose id is already stored are skipped; returns the ones stored. Works in any
   * status (a standby server synchronises too); imported events are not reported to
   * {@link onRegistered} listeners.
   */
  importEvents(events: readonly Event[]): Event[];
  /**
   * Calls `listener` with every batch this peer registers itself (clients' registers, `register()`,
   * its engine and eventer events), after they are stored and notified. Returns an unsubscribe
   * function.
   */
  onRegistered(listener: (events: readonly Event[]) => void): () => void;
  close(): Promise<void>;
}

function typeKey(t: EventType): string {
  return JSON.stringify(t);
}

export function compareTimestamps(a: Timestamp, b: Timestamp): number {
  if (a.s !== b.s) return a.s < b.s ? -1 : 1;
  return a.us - b.us;
}

function idKey(id: EventId): string {
  return `${id.server}/${id.session}/${id.instance}`;
}

function sameId(a: EventId, b: EventId): boolean {
  return a.server === b.server && a.session === b.session && a.instance === b.instance;
}

function nowTimestamp(): Timestamp {
  const ms = performance.timeOrigin + performance.now();
  const s = Math.floor(ms / 1000);
  const us = Math.min(999_999, Math.round((ms - s * 1000) * 1000));
  return { s, us };
}

class PeerConnection {
  readonly conn: Connection;
  info: PeerClientInfo | null = null;
  initFailed = false;
  readonly acks = new Map<number, () => void>();

  constructor(
    readonly peer: Peer,
    readonly socket: Socket,
  ) {
    this.conn = new Connection(socket, {
      pingDelay: peer.opts.pingDelay,
      pingTimeout: peer.opts.pingTimeout,
      maxFrameSize: peer.opts.maxFrameSize,
      onMessage: (msg) => peer.onMessage(this, msg),
      onClose: () => peer.onConnectionClosed(this),
    });
  }
}

class Peer implements HatPeer {
  readonly opts: Required<
    Omit<
      HatPeerOptions,
      'serverToken' | 'port' | 'partitions' | 'registerCost' | 'registerAnswerDelayMs' | 'executor'
    >
  > & {
    serverToken: string | null;
    registerCost: RegisterCost | null;
    registerAnswerDelayMs: number;
  };
  host: string;
  port: number;
  readonly serverId: number;
  private currentStatus: Status;
  private server: Server | null = null;
  private readonly connections = new Set<PeerConnection>();
  private stopping = false;
  private stalled = false;
  private failingRegisters = false;

  private store: Event[] = [];
  private walkedEntries = 0;
  /** `holdHistoryQueries`: the held timeseries and server queries' answers, in order. */
  private heldQueries: (() => void)[] | null = null;
  /** Per store index: how many time-series partitions hold it (pruning lowers it). */
  private heldBy: number[] = [];
  /** The stored events encoded (index = position in `store`): what a walk decodes. */
  private encoded = new EncodedEvents();
  /** The time-series partitions (store indices by key), as configured. */
  private partitions: PartitionIndex[];
  /** Store indices by event id (LMDB's reference db), for server queries. */
  private byId = new IdIndex();
  /** Ids of the stored events (see {@link idKey}), for `importEvents`. */
  private storedIds = new Set<string>();
  private readonly registeredListeners = new Set<(events: readonly Event[]) => void>();
  private flushedCount = 0;
  private latest = new Map<string, Event>();
  /** When each type entered `latest` (its position in the table's insertion order). */
  private latestSeq = new Map<string, number>();
  private session = 0;
  /** Session counters of events registered under other server ids (see `register`). */
  private otherSessions = new Map<number, number>();
  private lastTimestamp: Timestamp = { s: 0, us: 0 };
  private pendingFlush: Event[][] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private engineStarted = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly executorOn: boolean;
  /** Queued timeseries and server queries (`executor`), the first one being walked. */
  private readonly executorJobs: {
    steps: Generator<void, QueryResult>;
    done(r: QueryResult): void;
  }[] = [];
  private executorTick: NodeJS.Immediate | null = null;
  private queryTime = 0;

  constructor(options: HatPeerOptions) {
    this.opts = {
      host: options.host ?? '127.0.0.1',
      serverId: options.serverId ?? 1,
      serverToken: options.serverToken ?? null,
      status: options.status ?? 'operational',
      flushDelayMs: options.flushDelayMs ?? 50,
      pingDelay: options.pingDelay ?? 20_000,
      pingTimeout: options.pingTimeout ?? 20_000,
      maxFrameSize: options.maxFrameSize ?? 256 * 1024 * 1024,
      timeseriesMaxResults: options.timeseriesMaxResults ?? 4096,
      normaliseJson: options.normaliseJson ?? true,
      latestSubscriptions: options.latestSubscriptions ?? [['*']],
      engineEvents: options.engineEvents ?? true,
      initErrorCloseMs: options.initErrorCloseMs ?? 500,
      registerCost: options.registerCost ?? null,
      registerAnswerDelayMs: options.registerAnswerDelayMs ?? 0,
    };
    const partitions = options.partitions ?? [
      { orderBy: 'timestamp', subscriptions: [['*']] },
      { orderBy: 'sourceTimestamp', subscriptions: [['*']] },
    ];
    this.partitions = partitions.map((p) => new PartitionIndex(p.orderBy, p.subscriptions));
    this.executorOn = options.executor ?? false;
    this.host = this.opts.host;
    this.port = options.port ?? 0;
    this.serverId = this.opts.serverId;
    this.currentStatus = this.opts.status;
    if (this.currentStatus === 'operational') this.startEngine();
  }

  get events(): readonly Event[] {
    return this.store;
  }

  get walked(): number {
    return this.walkedEntries;
  }

  get queryMs(): number {
    return this.queryTime;
  }

  get status(): Status {
    return this.currentStatus;
  }

  connectionCount(): number {
    return this.connections.size;
  }

  clients(): PeerClientInfo[] {
    return [...this.connections].flatMap((c) => (c.info === null ? [] : [c.info]));
  }

  // -- lifecycle ---------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.server !== null) return;
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {});
    const addr = server.address();
    if (addr !== null && typeof addr === 'object') this.port = addr.port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.stopping = true;
    try {
      const closing = [...this.connections].map((c) =>
        c.conn.abort(new ConnectionClosedError('peer stopped')),
      );
      if (server !== null) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await Promise.all(closing);
    } finally {
      this.stopping = false;
    }
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.executorTick !== null) clearImmediate(this.executorTick);
    this.executorTick = null;
    this.executorJobs.length = 0;
  }

  private accept(socket: Socket): void {
    if (this.server === null) {
      socket.destroy();
      return;
    }
    const pc = new PeerConnection(this, socket);
    this.connections.add(pc);
    if (this.stalled) pc.conn.pause();
  }

  // -- controls ----------------------------------------------------------------------------

  setStatus(s: Status): void {
    if (s === this.currentStatus) return;
    this.currentStatus = s;
    if (s === 'operational') this.startEngine();
    const data = encodeStatusNotify(s);
    for (const c of this.connections) {
      if (c.info !== null && c.conn.isOpen) c.conn.send(MSG_STATUS_NOTIFY, data, { last: true });
    }
  }

  flush(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.flushedCount = this.store.length;
    const batches = this.pendingFlush;
    this.pendingFlush = [];
    for (const batch of batches) this.notifySubscribers(batch, true);
  }

  resetStore(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.store = [];
    this.encoded = new EncodedEvents();
    this.partitions = this.partitions.map((p) => new PartitionIndex(p.orderBy, p.types));
    this.byId = new IdIndex();
    this.heldBy = [];
    this.storedIds = new Set();
    this.flushedCount = 0;
    this.latest = new Map();
    this.latestSeq = new Map();
    this.session = 0;
    this.otherSessions = new Map();
    this.pendingFlush = [];
    this.engineStarted = false;
    if (this.currentStatus === 'operational') this.startEngine();
  }

  pruneTimeseries(n: number): number {
    let gone = 0;
    for (const p of this.partitions)
      for (const index of p.dropOldest(n)) {
        const held = (this.heldBy[index] ?? 1) - 1;
        this.heldBy[index] = held;
        if (held === 0 && !this.inLatest(index)) gone++;
      }
    return gone;
  }

  /** Whether the `latest` table holds the stored event at `index`. */
  private inLatest(index: number): boolean {
    const e = this.store[index] as Event;
    return this.latest.get(typeKey(e.type)) === e;
  }

  /** Whether a server query still finds the stored event at `index` (LMDB's reference db). */
  private referenced(index: number): boolean {
    return (this.heldBy[index] ?? 0) > 0 || this.inLatest(index);
  }

  failRegisters(on: boolean): void {
    this.failingRegisters = on;
  }

  stall(on: boolean): void {
    this.stalled = on;
    for (const c of this.connections) {
      if (on) c.conn.pause();
      else c.conn.resume();
    }
  }

  cutConnections(opts: { afterBytes?: number } = {}): void {
    for (const c of [...this.connections]) {
      const socket = c.socket;
      if (opts.afterBytes === undefined) {
        socket.destroy();
        continue;
      }
      let budget = opts.afterBytes;
      if (budget <= 0) {
        socket.destroy();
        continue;
      }
      const write = socket.write.bind(socket) as (chunk: Uint8Array, cb?: () => void) => boolean;
      (socket as { write: unknown }).write = (chunk: Uint8Array, ...rest: unknown[]) => {
        if (socket.destroyed) return false;
        const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
        if (chunk.length < budget) {
          budget -= chunk.length;
          return write(chunk, cb);
        }
        const part = chunk.subarray(0, budget);
        budget = 0;
        write(part, () => socket.destroy());
        return false;
      };
    }
  }

  register(events: RegisterEvent[], opts: { serverId?: number } = {}): Event[] {
    if (this.currentStatus !== 'operational') {
      throw new Error(`peer is ${this.currentStatus}, not operational`);
    }
    return this.registerEvents(
      events.map((e) => this.normaliseEvent(e)),
      opts.serverId ?? this.serverId,
    );
  }

  notify(events: Event[], opts: { persisted?: boolean; withAck?: boolean } = {}): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const c of this.connections) {
      if (c.info === null || !c.conn.isOpen || c.info.persisted !== (opts.persisted ?? false))
        continue;
      const matching = this.filterFor(c.info, events);
      if (matching.length === 0) continue;
      const conv = c.conn.send(MSG_EVENTS_NOTIFY, encodeEventsNotify(matching), {
        last: !opts.withAck,
      });
      if (opts.withAck) {
        waits.push(
          new Promise<void>((resolve) => {
            c.acks.set(conv.first, resolve);
          }),
        );
      }
    }
    return Promise.all(waits).then(() => undefined);
  }

  // -- store -------------------------------------------------------------------------------

  private startEngine(): void {
    if (this.engineStarted) return;
    this.engineStarted = true;
    if (this.opts.engineEvents) {
      this.registerEvents([
        {
          type: ['event', String(this.serverId), 'engine'],
          sourceTimestamp: null,
          payload: { kind: 'json', text: '"STARTED"' },
        },
      ]);
    }
  }

  private nextTimestamp(): Timestamp {
    let t = nowTimestamp();
    if (compareTimestamps(t, this.lastTimestamp) < 0) t = { ...this.lastTimestamp };
    this.lastTimestamp = t;
    return t;
  }

  /** Validates (and normalises) a json payload the way the server's json.loads/dumps would. */
  private normalisePayload(p: EventPayload | null): EventPayload | null {
    if (p === null || p.kind !== 'json') return p;
    if (this.opts.normaliseJson) return { kind: 'json', text: pythonJsonDumps(p.text) };
    checkJsonText(p.text);
    return p;
  }

  private normaliseEvent(e: RegisterEvent): RegisterEvent {
    return {
      type: e.type,
      sourceTimestamp: e.sourceTimestamp,
      payload: this.normalisePayload(e.payload),
    };
  }

  /** One session: one timestamp, instances 1..n; notifies, schedules the flush. */
  private registerEvents(events: RegisterEvent[], serverId = this.serverId): Event[] {
    if (events.length === 0) return [];
    let session: number;
    if (serverId === this.serverId) session = ++this.session;
    else {
      session = (this.otherSessions.get(serverId) ?? 0) + 1;
      this.otherSessions.set(serverId, session);
    }
    const timestamp = this.nextTimestamp();
    const created: Event[] = events.map((e, i) => ({
      id: { server: serverId, session, instance: i + 1 },
      type: [...e.type],
      timestamp: { ...timestamp },
      sourceTimestamp: e.sourceTimestamp === null ? null : { ...e.sourceTimestamp },
      payload: e.payload,
    }));
    this.storeEvents(created, false);
    for (const listener of [...this.registeredListeners]) listener(created);
    return created;
  }

  /** Stores, updates `latest`, notifies non-persisted subscribers, schedules the flush. */
  private storeEvents(events: Event[], keepNewerLatest: boolean): void {
    for (const e of events) {
      const index = this.store.length;
      this.store.push(e);
      this.encoded.add(encodeEventsNotify([e]));
      let held = 0;
      for (const p of this.partitions) if (p.add(this.store, index)) held++;
      this.heldBy[index] = held;
      this.byId.add(this.store, index);
      this.storedIds.add(idKey(e.id));
      if (!matchesAny(e.type, this.opts.latestSubscriptions)) continue;
      const key = typeKey(e.type);
      const previous = this.latest.get(key);
      if (
        keepNewerLatest &&
        previous !== undefined &&
        (compareTimestamps(previous.timestamp, e.timestamp) || compareEventIds(previous.id, e.id)) >
          0
      )
        continue;
      this.latest.set(key, e);
      if (!this.latestSeq.has(key)) this.latestSeq.set(key, this.latestSeq.size);
    }
    this.notifySubscribers(events, false);
    this.pendingFlush.push(events);
    if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.flush();
      }, this.opts.flushDelayMs);
      this.flushTimer.unref();
    }
  }

  importEvents(events: readonly Event[]): Event[] {
    const fresh: Event[] = [];
    const seen = new Set<string>();
    for (const e of events) {
      const key = idKey(e.id);
      if (this.storedIds.has(key) || seen.has(key)) continue;
      seen.add(key);
      fresh.push({
        id: { ...e.id },
        type: [...e.type],
        timestamp: { ...e.timestamp },
        sourceTimestamp: e.sourceTimestamp === null ? null : { ...e.sourceTimestamp },
        payload: e.payload,
      });
    }
    if (fresh.length === 0) return [];
    // Later registers under these server ids continue after the imported sessions.
    for (const e of fresh) {
      if (e.id.server === this.serverId) this.session = Math.max(this.session, e.id.session);
      else
        this.otherSessions.set(
          e.id.server,
          Math.max(this.otherSessions.get(e.id.server) ?? 0, e.id.session),
        );
    }
    this.storeEvents(fresh, true);
    return fresh;
  }

  onRegistered(listener: (events: readonly Event[]) => void): () => void {
    this.registeredListeners.add(listener);
    return () => {
      this.registeredListeners.delete(listener);
    };
  }

  private filterFor(info: PeerClientInfo, events: readonly Event[]): Event[] {
    return events.filter(
      (e) =>
        (info.serverId === null || e.id.server === info.serverId) &&
        matchesAny(e.type, info.subscriptions),
    );
  }

  private notifySubscribers(events: readonly Event[], persisted: boolean): void {
    for (const c of this.connections) {
      if (c.info === null || c.info.persisted !== persisted || !c.conn.isOpen) continue;
      const matching = this.filterFor(c.info, events);
      if (matching.length === 0) continue;
      c.conn.send(MSG_EVENTS_NOTIFY, encodeEventsNotify(matching), { last: true });
    }
  }

  // -- protocol ----------------------------------------------------------------------------

  onMessage(pc: PeerConnection, msg: ReceivedMsg): void {
    if (pc.initFailed) return;
    if (pc.info === null) {
      if (msg.type !== MSG_INIT_REQ) {
        throw new ProtocolError(`invalid init request type ${msg.type}`);
      }
      this.handleInit(pc, decodeInitReq(msg.data), msg);
      return;
    }
    switch (msg.type) {
      case MSG_REGISTER_REQ:
        this.handleRegister(pc, msg);
        return;
      case MSG_QUERY_REQ:
        this.handleQuery(pc, msg);
        return;
      case MSG_EVENTS_ACK: {
        decodeEventsAck(msg.data);
        const ack = msg.conv.owner ? pc.acks.get(msg.conv.first) : undefined;
        if (ack !== undefined) {
          pc.acks.delete(msg.conv.first);
          ack();
        }
        return;
      }
      default:
        throw new ProtocolError(`unsupported message type ${msg.type}`);
    }
  }

  private handleInit(pc: PeerConnection, req: InitRequest, msg: ReceivedMsg): void {
    let error: string | null = null;
    if (!req.subscriptions.every(isValidQueryType)) error = 'invalid query event type';
    else if (req.clientToken !== null && req.clientToken !== this.opts.serverToken) {
      error = 'invalid client token';
    }
    if (error !== null) {
      pc.initFailed = true;
      pc.conn.send(MSG_INIT_RES, encodeInitRes({ kind: 'error', message: error }), {
        conv: msg.conv,
        last: true,
      });
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void pc.conn.close();
      }, this.opts.initErrorCloseMs);
      this.timers.add(timer);
      return;
    }
    const info: PeerClientInfo = {
      clientName: req.clientName,
      clientToken: req.clientToken,
      subscriptions: req.subscriptions,
      serverId: req.serverId,
      persisted: req.persisted,
    };
    if (this.currentStatus === 'operational')
      this.registerEventerEvent(info.clientName, 'CONNECTED');
    pc.info = info;
    pc.conn.send(MSG_INIT_RES, encodeInitRes({ kind: 'success', status: this.currentStatus }), {
      conv: msg.conv,
      last: true,
    });
  }

  private registerEventerEvent(clientName: string, what: 'CONNECTED' | 'DISCONNECTED'): void {
    this.registerEvents([
      {
        type: ['event', String(this.serverId), 'eventer', clientName],
        sourceTimestamp: null,
        payload: { kind: 'json', text: JSON.stringify(what) },
      },
    ]);
  }

  onConnectionClosed(pc: PeerConnection): void {
    this.connections.delete(pc);
    for (const ack of pc.acks.values()) ack();
    pc.acks.clear();
    if (pc.info !== null && !this.stopping && this.currentStatus === 'operational') {
      this.registerEventerEvent(pc.info.clientName, 'DISCONNECTED');
    }
  }

  private handleRegister(pc: PeerConnection, msg: ReceivedMsg): void {
    const startedAt = performance.now();
    const requested = decodeRegisterReq(msg.data);
    // Like the server: every payload is parsed before anything is registered; a bad one closes.
    const events = requested.map((e) => {
      try {
        return this.normaliseEvent(e);
      } catch (err) {
        throw new ProtocolError(`register: ${(err as Error).message}`, { cause: err });
      }
    });
    const cost = this.opts.registerCost;
    // The real server's work happens before it registers, notifies and answers.
    if (cost !== null) spinUntil(startedAt, registerCostMs(cost, events.length, msg.data.length));
    let result: Event[] | null;
    if (this.currentStatus !== 'operational' || this.failingRegisters) result = null;
    else result = this.registerEvents(events);
    if (msg.last) return;
    const answer = encodeRegisterRes(result);
    const delay = this.opts.registerAnswerDelayMs;
    if (delay <= 0) {
      pc.conn.send(MSG_REGISTER_RES, answer, { conv: msg.conv, last: true });
      return;
    }
    // Timers of one duration fire in the order they were set: the answers keep their order.
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (pc.conn.isOpen) pc.conn.send(MSG_REGISTER_RES, answer, { conv: msg.conv, last: true });
    }, delay);
    this.timers.add(timer);
  }

  private handleQuery(pc: PeerConnection, msg: ReceivedMsg): void {
    const params = decodeQueryReq(msg.data);
    if (this.heldQueries !== null && params.kind !== 'latest') {
      this.heldQueries.push(() => this.answerQuery(pc, msg.conv, params));
      return;
    }
    this.answerQuery(pc, msg.conv, params);
  }

  private answerQuery(pc: PeerConnection, conv: ReceivedMsg['conv'], params: QueryParams): void {
    if (!this.connections.has(pc)) return;
    const send = (result: QueryResult) => {
      if (this.connections.has(pc))
        pc.conn.send(MSG_QUERY_RES, encodeQueryRes(result), { conv, last: true });
    };
    if (!this.executorOn || params.kind === 'latest') {
      send(this.query(params));
      return;
    }
    // Invalid parameters close the connection at once, as the synchronous path does.
    if (params.kind === 'timeseries') this.checkTypes(params.eventTypes);
    else this.checkServerQuery(params);
    this.executorJobs.push({ steps: this.querySteps(params, true), done: send });
    this.runExecutor();
  }

  /** One slice of the executor's walk (≈ 4 ms), then the event loop, then the next slice. */
  private runExecutor(): void {
    if (this.executorTick !== null) return;
    this.executorTick = setImmediate(() => {
      this.executorTick = null;
      const t0 = performance.now();
      try {
        while (this.executorJobs.length > 0 && performance.now() - t0 < 4) {
          const job = this.executorJobs[0] as (typeof this.executorJobs)[number];
          const step = job.steps.next();
          if (step.done === true) {
            this.executorJobs.shift();
            job.done(step.value);
          }
        }
      } finally {
        this.queryTime += performance.now() - t0;
      }
      if (this.executorJobs.length > 0) this.runExecutor();
    });
  }

  holdHistoryQueries(on: boolean): void {
    if (on) {
      this.heldQueries ??= [];
      return;
    }
    const held = this.heldQueries ?? [];
    this.heldQueries = null;
    for (const answer of held) answer();
  }

  private checkTypes(types: readonly EventType[] | null): void {
    if (types !== null && !types.every(isValidQueryType)) {
      throw new ProtocolError('invalid query event type');
    }
  }

  private maxResults(requested: number | null): number {
    const cap = this.opts.timeseriesMaxResults;
    return requested === null ? cap : Math.max(0, Math.min(requested, cap));
  }

  query(params: QueryParams): QueryResult {
    const t0 = performance.now();
    try {
      if (params.kind === 'latest') return this.queryLatest(params);
      const steps = this.querySteps(params, false);
      for (;;) {
        const step = steps.next();
        if (step.done === true) return step.value;
      }
    } finally {
      this.queryTime += performance.now() - t0;
    }
  }

  /** A timeseries or server query's walk, yielding every 256 entries (the executor's slices). */
  private querySteps(
    params: QueryTimeseriesParams | QueryServerParams,
    snapshot: boolean,
  ): Generator<void, QueryResult> {
    return params.kind === 'timeseries'
      ? this.queryTimeseries(params, snapshot)
      : this.queryServer(params, snapshot);
  }

  private queryLatest(params: QueryLatestParams): QueryResult {
    this.checkTypes(params.eventTypes);
    const types = params.eventTypes;
    // LMDB's latest db is a table in memory: exact types are looked up, patterns scan it.
    if (types?.every((t) => !t.includes('*') && !t.includes('?'))) {
      const events: Event[] = [];
      const seen = new Set<string>();
      for (const t of types) {
        const key = typeKey(t);
        const e = this.latest.get(key);
        if (e !== undefined && !seen.has(key)) events.push(e);
        seen.add(key);
      }
      // In the table's insertion order, as a scan would give them.
      const seq = (e: Event) => this.latestSeq.get(typeKey(e.type)) ?? 0;
      events.sort((a, b) => seq(a) - seq(b));
      return { events, moreFollows: false };
    }
    const events = [...this.latest.values()].filter(
      (e) => types === null || matchesAny(e.type, types),
    );
    return { events, moreFollows: false };
  }

  /** The stored event at `index`, decoded from its bytes (the cost of an LMDB cursor step). */
  private read(index: number): Event {
    this.walkedEntries++;
    return this.encoded.decode(index);
  }

  private checkServerQuery(p: QueryServerParams): void {
    if (p.lastEventId !== null && p.lastEventId.server !== p.serverId) {
      throw new ProtocolError('server query: lastEventId.server differs from serverId');
    }
  }

  private *queryTimeseries(
    p: QueryTimeseriesParams,
    snapshot: boolean,
  ): Generator<void, QueryResult> {
    this.checkTypes(p.eventTypes);
    const types = p.eventTypes;
    // LMDB answers from the first partition of this order whose subscriptions overlap the query.
    const partition = this.partitions.find(
      (x) => x.orderBy === p.orderBy && (types === null || subscriptionsOverlap(types, x.types)),
    );
    if (partition === undefined) return { events: [], moreFollows: false };
    const bySource = p.orderBy === 'sourceTimestamp';
    const from = bySource ? p.sourceTFrom : p.tFrom;
    const to = bySource ? p.sourceTTo : p.tTo;
    const inRange = (t: Timestamp | null, lo: Timestamp | null, hi: Timestamp | null) => {
      if (lo === null && hi === null) return true;
      if (t === null) return false;
      return (
        (lo === null || compareTimestamps(lo, t) <= 0) &&
        (hi === null || compareTimestamps(t, hi) <= 0)
      );
    };
    const max = this.maxResults(p.maxResults);
    const out: Event[] = [];
    let sentinel = p.lastEventId;
    // Seek (LMDB's set_range), then walk entry by entry, decoding each, until max + 1 matches.
    let n = 0;
    for (const index of partition.walk(this.store, p.order, from, to, snapshot)) {
      if ((++n & 255) === 0) yield;
      const e = this.read(index);
      if (sentinel !== null) {
        // As LMDB's `_Filter.process` (timeseriesdb.py): every walked entry up to and including
        // the sentinel is dropped before the type and time filters, so the sentinel may be any
        // event the walk meets, of any type.
        if (sameId(e.id, sentinel)) sentinel = null;
        continue;
      }
      if (
        (types !== null && !matchesAny(e.type, types)) ||
        !inRange(e.timestamp, p.tFrom, p.tTo) ||
        !inRange(e.sourceTimestamp, p.sourceTFrom, p.sourceTTo)
      )
        continue;
      out.push(this.store[index] as Event);
      if (out.length > max) break;
    }
    if (sentinel !== null) return { events: [], moreFollows: false };
    return { events: out.slice(0, max), moreFollows: out.length > max };
  }

  private *queryServer(p: QueryServerParams, snapshot: boolean): Generator<void, QueryResult> {
    this.checkServerQuery(p);
    const max = this.maxResults(p.maxResults);
    const out: Event[] = [];
    let n = 0;
    // Seek to lastEventId in the reference db, then walk that server's events (every type).
    for (const index of this.byId.walkServer(this.store, p.serverId, p.lastEventId, snapshot)) {
      if ((++n & 255) === 0) yield;
      if (p.persisted && index >= this.flushedCount) continue;
      if (!this.referenced(index)) continue;
      this.read(index);
      out.push(this.store[index] as Event);
      if (out.length > max) break;
    }
    return { events: out.slice(0, max), moreFollows: out.length > max };
  }
}

/** Starts a test peer listening on `host:port` (a free port by default). */
export async function startHatPeer(opts: HatPeerOptions = {}): Promise<HatPeer> {
  const peer = new Peer(opts);
  await peer.start();
  return peer;
}

// -- the store's indexes (LMDB's layout, for query cost) ------------------------------------------

/**
 * Every stored event's SBS bytes, packed into large chunks (index = position in the store): an
 * LMDB entry is bytes, and a cursor step decodes one.
 */
class EncodedEvents {
  private static readonly CHUNK = 8 * 1024 * 1024;
  private readonly chunks: Buffer[] = [];
  private current: Buffer = Buffer.allocUnsafe(0);
  private used = 0;
  private readonly chunkOf: number[] = [];
  private readonly offsetOf: number[] = [];
  private readonly lengthOf: number[] = [];

  add(bytes: Uint8Array): void {
    if (this.used + bytes.length > this.current.length) {
      this.current = Buffer.allocUnsafe(Math.max(EncodedEvents.CHUNK, bytes.length));
      this.chunks.push(this.current);
      this.used = 0;
    }
    this.current.set(bytes, this.used);
    this.chunkOf.push(this.chunks.length - 1);
    this.offsetOf.push(this.used);
    this.lengthOf.push(bytes.length);
    this.used += bytes.length;
  }

  decode(index: number): Event {
    const chunk = this.chunks[this.chunkOf[index] as number] as Buffer;
    const offset = this.offsetOf[index] as number;
    const bytes = chunk.subarray(offset, offset + (this.lengthOf[index] as number));
    return decodeEventsNotify(bytes)[0] as Event;
  }
}

/** First position in `xs` whose element is not before `target` by `cmp` (binary search). */
function lowerBound(xs: readonly number[], before: (x: number) => boolean): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(xs[mid] as number)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts `index` into `xs` kept sorted by `cmp` (appends in the common, ordered case). */
function insertSorted(xs: number[], index: number, cmp: (a: number, b: number) => number): void {
  const last = xs[xs.length - 1];
  if (last === undefined || cmp(last, index) <= 0) {
    xs.push(index);
    return;
  }
  xs.splice(
    lowerBound(xs, (x) => cmp(x, index) <= 0),
    0,
    index,
  );
}

/** One time-series partition: store indices ordered by (key timestamp, event id). */
class PartitionIndex {
  private entries: number[] = [];
  /** A snapshot walk holds `entries`: the next change copies it first (copy on write). */
  private shared = false;

  constructor(
    readonly orderBy: OrderBy,
    readonly types: EventType[],
  ) {}

  private keyOf(e: Event): Timestamp | null {
    return this.orderBy === 'timestamp' ? e.timestamp : e.sourceTimestamp;
  }

  /** Adds the entry if this partition holds its type; true if added. */
  add(store: readonly Event[], index: number): boolean {
    const e = store[index] as Event;
    if (this.keyOf(e) === null || !matchesAny(e.type, this.types)) return false;
    this.unshare();
    insertSorted(this.entries, index, (a, b) => {
      const x = store[a] as Event;
      const y = store[b] as Event;
      return (
        compareTimestamps(this.keyOf(x) as Timestamp, this.keyOf(y) as Timestamp) ||
        compareEventIds(x.id, y.id)
      );
    });
    return true;
  }

  /** Drops the `n` oldest entries (LMDB's partition `limit`); returns their store indices. */
  dropOldest(n: number): number[] {
    this.unshare();
    return this.entries.splice(0, Math.min(n, this.entries.length));
  }

  private unshare(): void {
    if (!this.shared) return;
    this.entries = this.entries.slice();
    this.shared = false;
  }

  /**
   * Store indices from `from` to `to` (inclusive, null: unbounded) in `order`, lazily; with
   * `snapshot`, over the entries as they were at the first step (a walk that yields to writers).
   */
  *walk(
    store: readonly Event[],
    order: 'ascending' | 'descending',
    from: Timestamp | null,
    to: Timestamp | null,
    snapshot = false,
  ): Generator<number> {
    const key = (i: number) => this.keyOf(store[i] as Event) as Timestamp;
    const xs = this.entries;
    if (snapshot) this.shared = true;
    if (order === 'ascending') {
      let i = from === null ? 0 : lowerBound(xs, (x) => compareTimestamps(key(x), from) < 0);
      for (; i < xs.length; i++) {
        const x = xs[i] as number;
        if (to !== null && compareTimestamps(key(x), to) > 0) return;
        yield x;
      }
    } else {
      let i =
        (to === null ? xs.length : lowerBound(xs, (x) => compareTimestamps(key(x), to) <= 0)) - 1;
      for (; i >= 0; i--) {
        const x = xs[i] as number;
        if (from !== null && compareTimestamps(key(x), from) < 0) return;
        yield x;
      }
    }
  }
}

/** Store indices by event id (LMDB's reference db): one server's events in id order. */
class IdIndex {
  private readonly byServer = new Map<number, number[]>();
  /** Lists a snapshot walk holds: the next change copies them first (copy on write). */
  private readonly shared = new Set<number[]>();

  add(store: readonly Event[], index: number): void {
    const server = (store[index] as Event).id.server;
    let xs = this.byServer.get(server);
    if (xs === undefined || this.shared.has(xs)) {
      if (xs !== undefined) this.shared.delete(xs);
      xs = xs === undefined ? [] : xs.slice();
      this.byServer.set(server, xs);
    }
    insertSorted(xs, index, (a, b) =>
      compareEventIds((store[a] as Event).id, (store[b] as Event).id),
    );
  }

  /** The server's events after `after` (all for null), in id order, lazily. */
  *walkServer(
    store: readonly Event[],
    server: number,
    after: EventId | null,
    snapshot = false,
  ): Generator<number> {
    const xs = this.byServer.get(server) ?? [];
    if (snapshot) this.shared.add(xs);
    let i =
      after === null
        ? 0
        : lowerBound(xs, (x) => compareEventIds((store[x] as Event).id, after) <= 0);
    for (; i < xs.length; i++) yield xs[i] as number;
  }
}

/**
 * Whether some event type matches both subscriptions (Hat's `Subscription.isdisjoint`, negated):
 * `?` matches one segment, a trailing `*` zero or more.
 */
function subscriptionsOverlap(a: readonly EventType[], b: readonly EventType[]): boolean {
  return a.some((x) => b.some((y) => typesOverlap(x, y, 0, 0)));
}

function typesOverlap(a: EventType, b: EventType, i: number, j: number): boolean {
  if (a[i] === '*' || b[j] === '*') return true;
  if (i === a.length || j === b.length) return i === a.length && j === b.length;
  const x = a[i] as string;
  const y = b[j] as string;
  return (x === '?' || y === '?' || x === y) && typesOverlap(a, b, i + 1, j + 1);
}
