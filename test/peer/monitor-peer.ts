/**
 * A hat-monitor server for tests: the component port of a single monitor (it is its own master,
 * mid 0), ported from hat-monitor 0.8.21 (`hat.monitor.observer.server`, `.master`,
 * `hat.monitor.server.runner` and `blessing`) as the protocol notes (monitor-vectors README §3,
 * §5) describe it and the recordings in `monitor-vectors/conversations/` show it:
 *
 * - every change of the local state is broadcast twice: first with the previous global state
 *   (stale), then, after the master recomputed the blessing, with the new one (fresh). The master
 *   sends the second one only when the global state changed. Recipients in ascending cid order,
 *   each with its own cid.
 * - accept: a null entry (name/group null, data "null", the default rank) is appended; the new
 *   client gets the broadcasts too.
 * - MsgClient: name, group, data (re-encoded like Python's `json.dumps(json.loads(text))`) and
 *   blessingRes replace the old ones; nothing is sent when the entry is unchanged (compared with
 *   Python's `==`). The first MsgClient takes the rank cached for its (name, group), if any.
 * - invalid input (data that is not JSON, a MsgClient that does not decode, any other message
 *   type): the client is removed (two broadcasts to the others), gets MsgClose, and is closed
 *   after `closeTimeoutMs` unless it closes first. Later messages from it are ignored.
 * - a malformed chatter frame, or the peer closing: removed and broadcast, no MsgClose.
 * - blessing: {@link calculateBlessing}; tokens from one counter per "process" starting at 1,
 *   timestamps `Date.now() / 1000`.
 * - stop() (SIGTERM): the listener closes; each client, in ascending cid order, is removed (the
 *   remaining ones get the two broadcasts) and gets MsgClose; then every connection is waited for
 *   up to `closeTimeoutMs` and closed. start() is a fresh process: cids and tokens from 1, no
 *   rank cache.
 *
 * Deliberate differences from the real monitor: data with NaN, Infinity or out-of-range numbers
 * (which Python's json.loads accepts and then cannot re-encode, leaving the real monitor broken
 * for good) is treated as invalid input, like JSON nested deeper than 1000 levels (Python's limit
 * depends on its stack); trailing bytes after a MsgClient are ignored as the Python SBS decoder
 * does, but other malformed SBS is refused strictly (the pure-Python decoder would accept some
 * truncated strings); during stop() clients are dropped in ascending cid order (Python's order is
 * that of task cancellation). The stop() behaviour with several clients is read from the code
 * (the recordings have one client at SIGTERM).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Connection, type ReceivedMsg } from '../../src/hat/chatter/connection.js';
import { pythonJsonDumps } from '../../src/hat/eventer/json.js';
import { MSG_CLIENT, MSG_CLOSE, MSG_SERVER } from '../../src/hat/monitor/codec.js';
import type { ComponentInfo } from '../../src/hat/monitor/common.js';
import * as S from '../../src/hat/monitor/schema.js';
import { decode, encode, type Int } from '../../src/hat/sbs/codec.js';
import {
  type BlessingAlgorithm,
  calculateBlessing,
  pythonDataKey,
  type Request,
} from './monitor-blessing.js';

export type { BlessingAlgorithm } from './monitor-blessing.js';

export interface MonitorPeerOptions {
  host?: string;
  /** 0 (default) picks a free port; start() after stop() reuses the port. */
  port?: number;
  defaultAlgorithm?: BlessingAlgorithm;
  groupAlgorithms?: Record<string, BlessingAlgorithm>;
  /** Rank of a new component (1). */
  defaultRank?: number;
  /** How long a dropped client may take to close before the server closes it, ms (3000). */
  closeTimeoutMs?: number;
  /** Chatter ping delay / timeout, ms (20000 / 20000 like the real server). */
  pingDelay?: number;
  pingTimeout?: number;
}

export interface MonitorPeer {
  readonly host: string;
  readonly port: number;
  /** The current global state (what the last fresh MsgServer carried). */
  components(): ComponentInfo[];
  /** Open TCP connections, including dropped clients that have not closed yet. */
  connectionCount(): number;
  /**
   * Inputs handled so far: accepted connections, received messages (ignored ones too) and
   * connections ended by the peer (EOF, reset, malformed frame). A test can wait for it to grow
   * to know that the double has processed what it sent.
   */
  inputCount(): number;
  /** Like the monitor UI's set_rank: changes the rank and caches it for (name, group). */
  setRank(cid: number, rank: number): void;
  /** Resolves with the global state once `predicate` holds for it (checked now and on changes). */
  waitFor(
    predicate: (components: ComponentInfo[]) => boolean,
    timeoutMs?: number,
  ): Promise<ComponentInfo[]>;
  /**
   * SIGTERM: stops listening; each client in ascending cid order is removed (the remaining ones
   * get the two broadcasts) and gets MsgClose; each may take up to closeTimeoutMs to close before
   * it is closed. Resolves when every connection is closed. Nothing is kept.
   */
  stop(): Promise<void>;
  /** Listens again on the same port as a new process (cids and tokens from 1, no rank cache). */
  start(): Promise<void>;
  /** stop(), for `after` hooks. */
  close(): Promise<void>;
}

/** A component entry, in the SBS value form (integers may be bigint, as Python's are unbounded). */
interface Info {
  cid: number;
  mid: number;
  name: string | null;
  group: string | null;
  /** json.dumps text, and its Python-equality key. */
  data: string;
  dataKey: string;
  rank: number;
  blessingReq: Request;
  blessingRes: { token: Int | null; ready: boolean };
}

function sameInfo(a: Info, b: Info): boolean {
  return (
    a.cid === b.cid &&
    a.mid === b.mid &&
    a.name === b.name &&
    a.group === b.group &&
    a.dataKey === b.dataKey &&
    a.rank === b.rank &&
    a.blessingReq.token === b.blessingReq.token &&
    a.blessingReq.timestamp === b.blessingReq.timestamp &&
    a.blessingRes.token === b.blessingRes.token &&
    a.blessingRes.ready === b.blessingRes.ready
  );
}

function sameList(a: readonly Info[], b: readonly Info[]): boolean {
  return a.length === b.length && a.every((x, i) => sameInfo(x, b[i] as Info));
}

const toNumber = (v: Int): number => (typeof v === 'bigint' ? Number(v) : v);

/** What both component-info forms copy from {@link Info} as it is (all but the blessings). */
function plainFields({ cid, mid, name, group, data, rank }: Info) {
  return { cid, mid, name, group, data, rank };
}

function publicInfo(i: Info): ComponentInfo {
  return {
    ...plainFields(i),
    blessingReq: {
      token: i.blessingReq.token === null ? null : toNumber(i.blessingReq.token),
      timestamp: i.blessingReq.timestamp,
    },
    blessingRes: {
      token: i.blessingRes.token === null ? null : toNumber(i.blessingRes.token),
      ready: i.blessingRes.ready,
    },
  };
}

function sbsInfo(i: Info): S.SbsComponentInfo {
  return {
    ...plainFields(i),
    blessingReq: { ...i.blessingReq },
    blessingRes: { ...i.blessingRes },
  };
}

interface Client {
  readonly conn: Connection;
  cid: number;
  /** In the server's connection table: gets broadcasts, its messages are handled. */
  registered: boolean;
}

class Monitor implements MonitorPeer {
  readonly host: string;
  port: number;
  private readonly defaultAlgorithm: BlessingAlgorithm;
  private readonly groupAlgorithms: Record<string, BlessingAlgorithm>;
  private readonly defaultRank: number;
  private readonly closeTimeoutMs: number;
  private readonly pingDelay: number | undefined;
  private readonly pingTimeout: number | undefined;

  private server: Server | null = null;
  private readonly connections = new Set<Client>();
  /** Close waits of dropped clients (MsgClose sent, waiting for them to close). */
  private readonly closing = new Set<Promise<void>>();
  private inputs = 0;
  private readonly waiters = new Set<() => void>();

  // the "process" state
  private nextCid = 1;
  private nextToken = 1;
  private rankCache = new Map<string, number>();
  private readonly cidClients = new Map<number, Client>();
  // observer server state
  private mid = 0;
  private local: Info[] = [];
  private global: Info[] = [];
  // observer master state (mid 0 only: no slaves)
  private masterInfos = new Map<number, Info>();
  private masterGlobal: Info[] = [];

  constructor(opts: MonitorPeerOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.defaultAlgorithm = opts.defaultAlgorithm ?? 'BLESS_ONE';
    this.groupAlgorithms = { ...(opts.groupAlgorithms ?? {}) };
    this.defaultRank = opts.defaultRank ?? 1;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 3000;
    this.pingDelay = opts.pingDelay;
    this.pingTimeout = opts.pingTimeout;
  }

  components(): ComponentInfo[] {
    return this.global.map(publicInfo);
  }

  connectionCount(): number {
    return this.connections.size;
  }

  inputCount(): number {
    return this.inputs;
  }

  waitFor(
    predicate: (components: ComponentInfo[]) => boolean,
    timeoutMs = 5000,
  ): Promise<ComponentInfo[]> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const c = this.components();
        if (!predicate(c)) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(c);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(`monitor state not reached in ${timeoutMs} ms: ${JSON.stringify(this.global)}`),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  // -- lifecycle -----------------------------------------------------------------------------

  private resetProcess(): void {
    this.nextCid = 1;
    this.nextToken = 1;
    this.rankCache = new Map();
    this.cidClients.clear();
    this.mid = 0;
    this.local = [];
    this.global = [];
    this.masterInfos = new Map();
    this.masterGlobal = [];
  }

  async start(): Promise<void> {
    if (this.server !== null) return;
    this.resetProcess();
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, this.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.server = null;
      throw err;
    }
    server.on('error', () => {});
    const addr = server.address();
    if (addr !== null && typeof addr === 'object') this.port = addr.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    const listenerClosed =
      server === null
        ? Promise.resolve()
        : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const client of [...this.cidClients.values()]) this.removeClient(client);
    while (this.closing.size > 0) await Promise.all([...this.closing]);
    for (const c of [...this.connections]) await c.conn.close();
    await listenerClosed;
    this.resetProcess();
  }

  close(): Promise<void> {
    return this.stop();
  }

  private accept(socket: Socket): void {
    if (this.server === null) {
      socket.destroy();
      return;
    }
    this.inputs++;
    const cid = this.nextCid++;
    const client: Client = {
      cid,
      registered: true,
      conn: new Connection(socket, {
        pingDelay: this.pingDelay,
        pingTimeout: this.pingTimeout,
        onMessage: (msg) => this.onMessage(client, msg),
        onClose: (reason) => this.onClose(client, reason),
      }),
    };
    if (!client.conn.isOpen) return; // the socket was gone before the connection was set up
    this.connections.add(client);
    this.cidClients.set(cid, client);
    this.changeState({ local: [...this.local, this.initInfo(cid)] });
    this.notify();
  }

  private initInfo(cid: number): Info {
    return {
      cid,
      mid: this.mid,
      name: null,
      group: null,
      data: 'null',
      dataKey: 'null',
      rank: this.defaultRank,
      blessingReq: { token: null, timestamp: null },
      blessingRes: { token: null, ready: false },
    };
  }

  // -- a client's messages ---------------------------------------------------------------------

  private onMessage(client: Client, msg: ReceivedMsg): void {
    this.inputs++;
    if (!client.registered) return; // its loop has ended: nobody reads its messages any more
    try {
      if (msg.type !== MSG_CLIENT) throw new Error(`unsupported message type ${msg.type}`);
      // Python's SBS decoder ignores trailing bytes.
      const v = decode(S.MsgClient, msg.data, true);
      const data = pythonJsonDumps(v.data);
      this.updateClient(client.cid, {
        name: v.name,
        group: v.group,
        data,
        dataKey: pythonDataKey(data),
        blessingRes: { token: v.blessingRes.token, ready: v.blessingRes.ready },
      });
    } catch {
      // hat.monitor.observer.server's client loop: any error but ConnectionError drops the client
      this.removeClient(client);
    }
    this.notify();
  }

  private updateClient(
    cid: number,
    fields: Pick<Info, 'name' | 'group' | 'data' | 'dataKey' | 'blessingRes'>,
  ): void {
    const info = this.local.find((i) => i.cid === cid);
    if (info === undefined) return;
    let updated: Info = { ...info, ...fields };
    if (info.name === null) {
      const cached = this.rankCache.get(JSON.stringify([fields.name, fields.group]));
      if (cached !== undefined) updated = { ...updated, rank: cached };
    }
    if (sameInfo(info, updated)) return;
    this.changeState({ local: this.local.map((i) => (i === info ? updated : i)) });
  }

  setRank(cid: number, rank: number): void {
    if (!Number.isSafeInteger(rank)) throw new RangeError(`rank ${rank} is not an integer`);
    const info = this.local.find((i) => i.cid === cid);
    if (info === undefined || info.rank === rank) return;
    if (info.name !== null) this.rankCache.set(JSON.stringify([info.name, info.group]), rank);
    const updated = { ...info, rank };
    this.changeState({ local: this.local.map((i) => (i === info ? updated : i)) });
    this.notify();
  }

  private onClose(client: Client, reason: Error | null): void {
    if (reason !== null) this.inputs++;
    this.connections.delete(client);
    this.removeClient(client);
    this.notify();
  }

  /** `_remove_client`: out of the table and the state; MsgClose; wait for it to close; close. */
  private removeClient(client: Client): void {
    if (!client.registered) return;
    client.registered = false;
    this.cidClients.delete(client.cid);
    this.changeState({ local: this.local.filter((i) => i.cid !== client.cid) });
    const conn = client.conn;
    if (!conn.isOpen) return;
    try {
      conn.send(MSG_CLOSE, new Uint8Array(0));
    } catch {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = Promise.race([
      conn.closed.then(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.closeTimeoutMs);
      }),
    ]).then(async () => {
      clearTimeout(timer);
      await conn.close();
    });
    const done = waited.finally(() => this.closing.delete(done));
    this.closing.add(done);
  }

  // -- state changes (observer server ⇄ master, as the runner wires them) ----------------------

  /** Server `_change_state`: set, broadcast (the current global state), then the state callback. */
  private changeState(change: { local?: Info[]; global?: Info[]; mid?: number }): void {
    if (change.local !== undefined) this.local = change.local;
    if (change.global !== undefined) this.global = change.global;
    if (change.mid !== undefined) this.mid = change.mid;
    this.broadcast();
    this.masterSetLocalComponents(this.local);
  }

  private broadcast(): void {
    const components = this.global.map(sbsInfo);
    for (const [cid, client] of this.cidClients) {
      if (!client.conn.isOpen) continue;
      try {
        client.conn.send(MSG_SERVER, encode(S.MsgServer, { cid, mid: this.mid, components }));
      } catch {
        // ConnectionError is suppressed per recipient
      }
    }
  }

  /** Master `_update_components(0, ...)`: keeps the master's requests; recomputes on change. */
  private masterSetLocalComponents(components: readonly Info[]): void {
    const next = new Map<number, Info>();
    for (const info of components) {
      const old = this.masterInfos.get(info.cid);
      next.set(info.cid, { ...info, mid: 0, blessingReq: old?.blessingReq ?? info.blessingReq });
    }
    const old = this.masterInfos;
    if (
      next.size === old.size &&
      [...next].every(([cid, i]) => {
        const o = old.get(cid);
        return o !== undefined && sameInfo(i, o);
      })
    )
      return;
    this.masterInfos = next;
    this.masterUpdateGlobal();
  }

  /** Master `_update_global_components`: blessing, then the runner's `server.update(0, ...)`. */
  private masterUpdateGlobal(): void {
    const infos = [...this.masterInfos.values()];
    const changes = calculateBlessing(infos, this.groupAlgorithms, this.defaultAlgorithm, () => ({
      token: this.nextToken++,
      timestamp: Date.now() / 1000,
    }));
    for (const ch of changes) {
      const info = this.masterInfos.get(ch.cid);
      if (info !== undefined)
        this.masterInfos.set(ch.cid, { ...info, blessingReq: ch.blessingReq });
    }
    const global = [...this.masterInfos.values()];
    if (sameList(global, this.masterGlobal)) return;
    this.masterGlobal = global;
    this.serverUpdate(0, global);
  }

  /** Server `update(mid, global)`: local requests from the global state, then `_change_state`. */
  private serverUpdate(mid: number, global: Info[]): void {
    if (mid === this.mid && sameList(global, this.global)) return;
    const reqs = new Map(global.filter((i) => i.mid === mid).map((i) => [i.cid, i.blessingReq]));
    const local = this.local.map((i) => ({
      ...i,
      mid,
      blessingReq: reqs.get(i.cid) ?? i.blessingReq,
    }));
    this.changeState({ mid, local, global });
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }
}

/** Starts a monitor double listening on `host:port` (127.0.0.1 and a free port by default). */
export async function startMonitorPeer(opts: MonitorPeerOptions = {}): Promise<MonitorPeer> {
  const peer = new Monitor(opts);
  await peer.start();
  return peer;
}
