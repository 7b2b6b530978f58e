/**
 * A redundant Hat for tests: {@link HatPeer} instances run as hat-event servers in monitor mode
 * (monitor-vectors README §7, hat-event 0.9.42):
 *
 * - each registers with the monitor through a {@link MonitorComponent}: name `event<server_id>`,
 *   the cluster's group, data `{"server_id": N, "eventer_server": {"host": H, "port": P},
 *   "server_token": T}` (in that key order), ready at once;
 * - its status is `standby` until its component is active (blessed and the response token
 *   echoed); then `starting`, and `operational` once every other live server is `standby` (the
 *   real server waits for the peers it is connected to); when it loses the activity, `stopping`
 *   then `standby`. Clients get each change as MsgStatusNotify;
 * - the servers share their events as synchronised Hat servers do: every event a server registers
 *   under its own server id is stored by the others verbatim (same id, same timestamp) with
 *   {@link HatPeer.importEvents}, and notified to their subscribers;
 * - {@link EventCluster.kill} is a SIGTERM: the monitor component closes (the runner stops, the
 *   clients get stopping and standby), then the eventer listener and its connections close; the
 *   store is kept. {@link EventCluster.revive} starts it again on the same port: it catches up
 *   with the events the others registered meanwhile and registers with the monitor again.
 *
 * Differences from the real servers: synchronisation is direct (in-process, synchronous unless
 * `syncDelayMs`), not over eventer connections `event/<name>`; the monitor components reconnect
 * when the monitor goes away (the real server's do not); a server registers no events of its own
 * about the synchronisation.
 */
import type { Address } from '../../src/hat/chatter/connect.js';
import type { Event, Status } from '../../src/hat/eventer/common.js';
import {
  type ComponentEvent,
  type ComponentRunner,
  MonitorComponent,
  type MonitorComponentOptions,
} from '../../src/hat/monitor/component.js';
import { type HatPeer, type HatPeerOptions, startHatPeer } from './hat-peer.js';

export interface EventClusterOptions
  extends Omit<HatPeerOptions, 'port' | 'serverId' | 'serverToken' | 'status'> {
  /** The monitor's component port. */
  monitor: Address;
  /** `monitor_component.group` of the servers (default `event`). */
  group?: string;
  /** Number of servers (default 2). */
  count?: number;
  /** Every server's `server_token`, published in its data (default null). */
  serverToken?: string | null;
  /** server_id of the first server (default 1); server i has `firstServerId + i`. */
  firstServerId?: number;
  /** Delay before an event reaches the other servers, ms (default 0: at once, synchronously). */
  syncDelayMs?: number;
  /** Longest time in `starting` waiting for the others to be standby, ms (default 5000). */
  startingTimeoutMs?: number;
  /** Options of every server's monitor component. */
  component?: Pick<
    MonitorComponentOptions,
    'reconnectMinDelayMs' | 'reconnectMaxDelayMs' | 'pingDelay' | 'pingTimeout' | 'connectTimeout'
  >;
  /** Every monitor component event, with the server's index. */
  onComponentEvent?: (index: number, event: ComponentEvent) => void;
}

/** What a server publishes as its monitor component data. */
export interface EventServerData {
  server_id: number;
  eventer_server: { host: string; port: number };
  server_token: string | null;
}

export interface ClusterServer {
  readonly index: number;
  readonly serverId: number;
  /** Its monitor component name: `event<serverId>`. */
  readonly name: string;
  readonly peer: HatPeer;
  /** Its eventer address. */
  readonly address: Address;
  /** The data it publishes to the monitor. */
  readonly data: EventServerData;
  /** False from kill() to revive(). */
  readonly alive: boolean;
  /** Its monitor component (null while killed). */
  readonly component: MonitorComponent | null;
  readonly status: Status;
}

export interface EventCluster {
  readonly group: string;
  readonly servers: readonly ClusterServer[];
  /** Indexes of the live servers whose status is operational. */
  operational(): number[];
  /**
   * Resolves with the index of the operational server once exactly one live server is
   * operational and every other live one is standby (and it is not `except`); rejects after
   * `timeoutMs` (default 10000).
   */
  waitForOperational(opts?: { timeoutMs?: number; except?: number }): Promise<number>;
  /** Like a SIGTERM of server i (see the module notes). Does nothing when it is not alive. */
  kill(i: number): Promise<void>;
  /** Starts server i again (see the module notes). Does nothing when it is alive. */
  revive(i: number): Promise<void>;
  /** Closes every component and server. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class Server implements ClusterServer {
  alive = true;
  component: MonitorComponent | null = null;
  /** The activity being started or run (null when standby). */
  run: { stopped: boolean } | null = null;

  constructor(
    readonly index: number,
    readonly serverId: number,
    readonly peer: HatPeer,
    readonly data: EventServerData,
  ) {}

  get name(): string {
    return `event${this.serverId}`;
  }

  get address(): Address {
    return { host: this.peer.host, port: this.peer.port };
  }

  get status(): Status {
    return this.peer.status;
  }
}

class Cluster implements EventCluster {
  readonly group: string;
  readonly servers: Server[] = [];
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: EventClusterOptions) {
    this.group = opts.group ?? 'event';
  }

  async init(): Promise<void> {
    const { count = 2, firstServerId = 1, serverToken = null } = this.opts;
    const {
      monitor: _m,
      group: _g,
      count: _c,
      serverToken: _t,
      firstServerId: _f,
      syncDelayMs: _d,
      startingTimeoutMs: _s,
      component: _o,
      onComponentEvent: _e,
      ...peerOptions
    } = this.opts;
    for (let i = 0; i < count; i++) {
      const serverId = firstServerId + i;
      const peer = await startHatPeer({ ...peerOptions, serverId, serverToken, status: 'standby' });
      const data: EventServerData = {
        server_id: serverId,
        eventer_server: { host: peer.host, port: peer.port },
        server_token: serverToken,
      };
      const server = new Server(i, serverId, peer, data);
      peer.onRegistered((events) => this.share(server, events));
      this.servers.push(server);
    }
    for (const s of this.servers) this.startComponent(s);
  }

  operational(): number[] {
    return this.servers.filter((s) => s.alive && s.status === 'operational').map((s) => s.index);
  }

  async waitForOperational(opts: { timeoutMs?: number; except?: number } = {}): Promise<number> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const alive = this.servers.filter((s) => s.alive);
      const ops = alive.filter((s) => s.status === 'operational');
      const [op] = ops;
      if (
        ops.length === 1 &&
        op !== undefined &&
        op.index !== opts.except &&
        alive.every((s) => s === op || s.status === 'standby')
      )
        return op.index;
      if (Date.now() > deadline)
        throw new Error(
          `no single operational server within the timeout: ${this.servers
            .map((s) => `${s.name} ${s.alive ? s.status : 'killed'}`)
            .join(', ')}`,
        );
      await sleep(10);
    }
  }

  async kill(i: number): Promise<void> {
    const s = this.server(i);
    if (!s.alive) return;
    s.alive = false;
    const component = s.component;
    s.component = null;
    // The monitor connection closes; the runner stops first (clients: stopping, standby).
    await component?.close();
    this.stopActivity(s);
    await s.peer.stop();
  }

  async revive(i: number): Promise<void> {
    const s = this.server(i);
    if (s.alive || this.closed) return;
    await s.peer.start();
    // Synchronisation with the live servers: their events of the time it was down, and its own.
    for (const o of this.servers) {
      if (o === s || !o.alive) continue;
      s.peer.importEvents(o.peer.events.filter((e) => e.id.server === o.serverId));
      o.peer.importEvents(s.peer.events.filter((e) => e.id.server === s.serverId));
    }
    s.alive = true;
    this.startComponent(s);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all(
      this.servers.map(async (s) => {
        const component = s.component;
        s.component = null;
        s.alive = false;
        await component?.close();
        this.stopActivity(s);
        await s.peer.close();
      }),
    );
  }

  private server(i: number): Server {
    const s = this.servers[i];
    if (s === undefined)
      throw new RangeError(`no server ${i} in a cluster of ${this.servers.length}`);
    return s;
  }

  private startComponent(s: Server): void {
    const runner: ComponentRunner = {
      start: async () => this.startActivity(s),
      stop: async () => this.stopActivity(s),
    };
    const component = new MonitorComponent({
      ...this.opts.component,
      address: this.opts.monitor,
      name: s.name,
      group: this.group,
      data: s.data,
      runner,
      onEvent:
        this.opts.onComponentEvent === undefined
          ? undefined
          : (e) => this.opts.onComponentEvent?.(s.index, e),
    });
    s.component = component;
    // Ready at once: the first MsgClient already says ready (as the real server's does).
    component.setReady(true);
    component.start();
  }

  /** Active: starting, then operational once the others are standby (or gone). */
  private startActivity(s: Server): void {
    const run = { stopped: false };
    s.run = run;
    s.peer.setStatus('starting');
    const deadline = Date.now() + (this.opts.startingTimeoutMs ?? 5000);
    void (async () => {
      while (
        !run.stopped &&
        this.servers.some((o) => o !== s && o.alive && o.status !== 'standby') &&
        Date.now() < deadline
      )
        await sleep(10);
      if (!run.stopped && s.run === run) s.peer.setStatus('operational');
    })();
  }

  private stopActivity(s: Server): void {
    if (s.run !== null) s.run.stopped = true;
    s.run = null;
    if (s.peer.status === 'standby') return;
    s.peer.setStatus('stopping');
    s.peer.setStatus('standby');
  }

  /** The other servers get the events `from` registered under its own server id. */
  private share(from: Server, events: readonly Event[]): void {
    if (!from.alive || this.closed) return;
    const own = events.filter((e) => e.id.server === from.serverId);
    if (own.length === 0) return;
    for (const to of this.servers) {
      if (to === from) continue;
      const deliver = () => {
        if (to.alive && !this.closed) to.peer.importEvents(own);
      };
      const delay = this.opts.syncDelayMs ?? 0;
      if (delay <= 0) deliver();
      else {
        const t = setTimeout(() => {
          this.timers.delete(t);
          deliver();
        }, delay);
        this.timers.add(t);
      }
    }
  }
}

/** Starts `count` servers (127.0.0.1, free ports) registering with the monitor at `monitor`. */
export async function startEventCluster(options: EventClusterOptions): Promise<EventCluster> {
  const cluster = new Cluster(options);
  try {
    await cluster.init();
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
