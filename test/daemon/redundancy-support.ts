/**
 * A redundant Hat for end-to-end tests and the failover benchmark: the monitor double, a cluster of
 * event-server doubles registered with it (group `event`), and aimm-store daemons as child
 * processes in monitor mode (group `aimm`), each with its own snapshot.
 */
import { join } from 'node:path';
import { JugglerClient } from '../../src/client/index.js';
import { type EventCluster, startEventCluster } from '../peer/event-cluster.js';
import { type MonitorPeer, startMonitorPeer } from '../peer/monitor-peer.js';
import { DaemonProcess, httpRequest, tempDir, until, writeJson } from './harness.js';

export const PREFIX = ['aimm', 'model'];

export interface Readyz {
  ready: boolean;
  role?: 'active' | 'standby' | 'disconnected';
  active?: { name: string | null; self: boolean; juggler: string | null } | null;
  event_server?: { serverId: number; address: string } | null;
  monitor?: { connected: boolean };
}

export interface RedundantHat {
  monitor: MonitorPeer;
  cluster: EventCluster;
  dir: string;
  /** Starts a daemon `name` of group `aimm` (waits until it listens and is ready). */
  node(
    name: string,
    extra?: { hat?: Record<string, unknown>; backend?: Record<string, unknown> },
  ): Promise<Node>;
  close(): Promise<void>;
}

export class Node {
  private clientValue: JugglerClient | null = null;
  constructor(
    readonly name: string,
    readonly proc: DaemonProcess,
    readonly jugglerPort: number,
    readonly httpPort: number,
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.jugglerPort}/`;
  }

  async readyz(): Promise<Readyz | null> {
    try {
      const r = await httpRequest(this.httpPort, '/readyz');
      return JSON.parse(r.body.toString('utf8')) as Readyz;
    } catch {
      return null;
    }
  }

  async role(): Promise<string | undefined> {
    return (await this.readyz())?.role;
  }

  /** One Juggler client per node, opened on first use. */
  async client(): Promise<JugglerClient> {
    this.clientValue ??= await JugglerClient.connect(this.url);
    return this.clientValue;
  }

  async closeClient(): Promise<void> {
    const c = this.clientValue;
    this.clientValue = null;
    await c?.close().catch(() => {});
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.closeClient();
    await this.proc.stop(signal);
  }
}

export async function startRedundantHat(
  opts: { syncDelayMs?: number; eventServers?: number } = {},
): Promise<RedundantHat> {
  const { dir, cleanup } = tempDir('aimm-redundant-');
  const monitor = await startMonitorPeer({
    groupAlgorithms: { aimm: 'BLESS_ONE', event: 'BLESS_ONE' },
    closeTimeoutMs: 500,
  });
  const cluster = await startEventCluster({
    monitor: { host: monitor.host, port: monitor.port },
    group: 'event',
    count: opts.eventServers ?? 2,
    flushDelayMs: 5,
    syncDelayMs: opts.syncDelayMs,
    component: { reconnectMinDelayMs: 20, reconnectMaxDelayMs: 200 },
  });
  await cluster.waitForOperational();
  const nodes: Node[] = [];
  return {
    monitor,
    cluster,
    dir,
    async node(name, extra = {}) {
      const conf = writeJson(join(dir, `${name}.json`), {
        name,
        backend: {
          module: 'aimm-store/backends/event',
          model_prefix: PREFIX,
          snapshot: { path: join(dir, `${name}-snapshot.db`) },
          reconnect: { min_delay_ms: 20, max_delay_ms: 200 },
          request_timeout_ms: 5000,
          ...extra.backend,
        },
        hat: {
          monitor_component: {
            host: monitor.host,
            port: monitor.port,
            group: 'aimm',
            event_server_group: 'event',
          },
          connect_timeout: 2,
          ...extra.hat,
        },
        control: [
          { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
          { module: 'aimm-store/controls/http', server: { host: '127.0.0.1', port: 0 } },
        ],
        log: { level: 'info' },
        shutdown_timeout: 5,
      });
      const proc = new DaemonProcess(['serve', '--conf', conf]);
      const node = new Node(name, proc, await proc.port('juggler'), await proc.port('http'));
      await proc.waitForMsg('ready');
      nodes.push(node);
      return node;
    },
    async close() {
      for (const n of nodes) await n.stop('SIGKILL').catch(() => {});
      await cluster.close();
      await monitor.close();
      cleanup();
    },
  };
}

/** Waits until exactly one of `nodes` is active and the others standby; returns the active one. */
export async function settled(nodes: readonly Node[], what = 'one active node'): Promise<Node> {
  let active: Node | undefined;
  await until(what, async () => {
    const roles = await Promise.all(nodes.map((n) => n.role()));
    const actives = nodes.filter((_, i) => roles[i] === 'active');
    const standbys = roles.filter((r) => r === 'standby').length;
    active = actives[0];
    return actives.length === 1 && standbys === nodes.length - 1;
  });
  return active as Node;
}

/** Whether a client error is the standby's refusal. */
export function isNotActive(err: unknown): boolean {
  return err instanceof Error && /does not accept writes/.test(err.message);
}
