/**
 * Finding the event server through hat-monitor, as hat-event's `hat.event.component` (0.9.42)
 * does, and a connection factory that follows it.
 *
 * {@link selectEventServer}: the first component of `serverGroup` (in the monitor's order) that is
 * active (blessed, and its response token echoed) is the event server, if its data is what a
 * hat-event server publishes (`{server_id: int, eventer_server: {host: str, port: int},
 * server_token: str | null}`) and its token matches ours. Like the Python component it never
 * falls back to a second candidate: a bad first one means no server.
 *
 * {@link createMonitorHatConnector}: `connect()` waits (up to the connect timeout) for a selected
 * server and connects to it with `serverId` = its `server_id` and our client token (null when none:
 * what the recordings show hat.event.component sending). When the selection changes (another
 * server, other data, or none during a failover) every connection it handed out for the old one is
 * closed, so that its owner reconnects — to the new one. Unlike the Python component it connects
 * whether or not its own component is active: a standby keeps following the events too.
 */
import type { Observable, Subscription } from 'rxjs';
import { type Address, formatAddress } from '../chatter/connect.js';
import { ConnectError } from '../chatter/errors.js';
import type { ComponentInfo } from '../monitor/common.js';
import { isActive } from '../monitor/common.js';
import { connect } from './client.js';
import type { EventerClient } from './common.js';
import type { HatConnectorConnectOptions, HatConnectorOptions } from './connector.js';

export interface EventServerInfo {
  serverId: number;
  address: Address;
  serverToken: string | null;
  /** The server's component: name, and cid/mid in the monitor. */
  name: string | null;
  cid: number;
  mid: number;
}

export type EventServerSelection =
  | { kind: 'server'; server: EventServerInfo }
  | {
      kind: 'none';
      reason: 'no_active_server' | 'invalid_data' | 'token_mismatch';
      detail: string;
    };

/** The event server `hat.event.component` would use, from a monitor's component list. */
export function selectEventServer(
  components: readonly ComponentInfo[],
  serverGroup: string,
  clientToken: string | null,
): EventServerSelection {
  const info = components.find((c) => c.group === serverGroup && isActive(c));
  if (info === undefined)
    return {
      kind: 'none',
      reason: 'no_active_server',
      detail: `no active component in group '${serverGroup}'`,
    };
  const parsed = parseServerData(info.data);
  if (typeof parsed === 'string')
    return {
      kind: 'none',
      reason: 'invalid_data',
      detail: `component ${info.name ?? '?'} (cid ${info.cid}) of group '${serverGroup}': ${parsed}`,
    };
  if (clientToken !== null && parsed.serverToken !== clientToken)
    return {
      kind: 'none',
      reason: 'token_mismatch',
      detail: `component ${info.name ?? '?'} (cid ${info.cid}) publishes another server_token than ours`,
    };
  return { kind: 'server', server: { ...parsed, name: info.name, cid: info.cid, mid: info.mid } };
}

/** The data a hat-event server publishes, or why this is not it. */
function parseServerData(
  text: string,
): Pick<EventServerInfo, 'serverId' | 'address' | 'serverToken'> | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return 'data is not JSON';
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    return 'data is not an object';
  const d = data as Record<string, unknown>;
  if (!Number.isSafeInteger(d.server_id)) return 'server_id is not an integer';
  const es = d.eventer_server as Record<string, unknown> | null | undefined;
  if (typeof es !== 'object' || es === null) return 'eventer_server is not an object';
  if (typeof es.host !== 'string' || es.host === '') return 'eventer_server.host is not a string';
  if (!Number.isSafeInteger(es.port) || (es.port as number) < 1 || (es.port as number) > 65535)
    return 'eventer_server.port is not a port number';
  if (d.server_token !== undefined && d.server_token !== null && typeof d.server_token !== 'string')
    return 'server_token is neither a string nor null';
  return {
    serverId: d.server_id as number,
    address: { host: es.host, port: es.port as number },
    serverToken: (d.server_token as string | null | undefined) ?? null,
  };
}

/** The fixed-address connector's options, less the addresses: the monitor gives the server. */
export interface MonitorHatConnectorOptions extends Omit<HatConnectorOptions, 'addresses'> {
  /** The monitor's component list (null while the monitor is not connected). */
  components$: Observable<readonly ComponentInfo[] | null>;
  /** `monitor_component.event_server_group`. */
  serverGroup: string;
  /** Ms to wait for a selected server plus its TCP connect and init (default 10000). */
  connectTimeout?: number;
  /** Called when the selection changes (also to none), with why there is none. */
  onSelection?: (selection: EventServerSelection) => void;
}

export interface MonitorHatConnector {
  /** The selected server's address ([] when none); a redundant set is followed, not listed. */
  readonly addresses: readonly Address[];
  /** The selected event server (null when none). */
  readonly current: EventServerInfo | null;
  readonly selection: EventServerSelection;
  connect(options: HatConnectorConnectOptions): Promise<EventerClient>;
  /** Stops following the monitor and closes every connection handed out. */
  close(): Promise<void>;
}

/** Pause before retrying a selected server that refused the connection. */
const RETRY_MS = 200;

const NONE: EventServerSelection = {
  kind: 'none',
  reason: 'no_active_server',
  detail: 'no monitor state yet',
};

export function createMonitorHatConnector(
  options: MonitorHatConnectorOptions,
): MonitorHatConnector {
  const token = options.clientToken ?? null;
  const connectTimeout = options.connectTimeout ?? 10_000;
  let selection: EventServerSelection = NONE;
  let key = '';
  const clients = new Map<EventerClient, string>();
  const waiters = new Set<() => void>();
  let closed = false;

  // What hat.event.component compares (its ServerData): the same server registering again (e.g.
  // after a monitor restart, with another cid) keeps its connections.
  const keyOf = (s: EventServerSelection) =>
    s.kind === 'server'
      ? JSON.stringify([s.server.serverId, formatAddress(s.server.address), s.server.serverToken])
      : '';

  const sub: Subscription = options.components$.subscribe((components) => {
    const next =
      components === null
        ? ({
            kind: 'none',
            reason: 'no_active_server',
            detail: 'not connected to the monitor',
          } as const)
        : selectEventServer(components, options.serverGroup, token);
    const nextKey = keyOf(next);
    const changed =
      nextKey !== key || next.kind !== selection.kind || detailOf(next) !== detailOf(selection);
    selection = next;
    if (nextKey !== key) {
      key = nextKey;
      // Connections to the previous server are closed: their owners reconnect to the new one.
      for (const [client, k] of clients) if (k !== key) void client.close();
    }
    if (changed) options.onSelection?.(next);
    for (const wake of [...waiters]) wake();
  });

  function waitForServer(deadline: number): Promise<EventServerInfo> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (closed) {
          done();
          reject(new ConnectError('connect_failed', 'monitor', 'the Hat connector is closed'));
          return true;
        }
        if (selection.kind === 'server') {
          done();
          resolve(selection.server);
          return true;
        }
        return false;
      };
      const timer = setTimeout(
        () => {
          done();
          reject(
            new ConnectError(
              'connect_timeout',
              `monitor group '${options.serverGroup}'`,
              `no event server to connect to within ${connectTimeout} ms (${detailOf(selection)})`,
            ),
          );
        },
        Math.max(1, deadline - Date.now()),
      );
      const wake = () => {
        check();
      };
      function done() {
        clearTimeout(timer);
        waiters.delete(wake);
      }
      if (!check()) waiters.add(wake);
    });
  }

  /** Resolves when the selection's key is no longer `from`, or after `ms`. */
  function selectionChange(from: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        if (key === from && !closed) return;
        done();
      };
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve();
      }
      waiters.add(wake);
    });
  }

  return {
    get addresses() {
      return selection.kind === 'server' ? [selection.server.address] : [];
    },
    get current() {
      return selection.kind === 'server' ? selection.server : null;
    },
    get selection() {
      return selection;
    },
    async connect(connectOptions) {
      const deadline = Date.now() + connectTimeout;
      const clientName =
        connectOptions.nameSuffix === undefined || connectOptions.nameSuffix === ''
          ? options.clientName
          : `${options.clientName}/${connectOptions.nameSuffix}`;
      for (;;) {
        const server = await waitForServer(deadline);
        const forKey = key;
        let client: EventerClient;
        try {
          client = await connect(server.address, {
            clientName,
            clientToken: token,
            subscriptions: connectOptions.subscriptions,
            serverId: server.serverId,
            persisted: connectOptions.persisted ?? false,
            pingDelay: options.pingDelay,
            pingTimeout: options.pingTimeout,
            connectTimeout: Math.max(1, deadline - Date.now()),
            maxFrameSize: options.maxFrameSize,
            checkJson: options.checkJson,
          });
        } catch (err) {
          // The selected server may be dead before the monitor noticed (hat.event.component
          // retries every 0.5 s until the selection changes): wait for a change or a short while,
          // and try again until the deadline.
          if (closed || Date.now() + RETRY_MS >= deadline) throw err;
          await selectionChange(forKey, RETRY_MS);
          continue;
        }
        if (closed) {
          await client.close();
          throw new ConnectError('connect_failed', 'monitor', 'the Hat connector is closed');
        }
        if (forKey !== key) {
          // The selection moved while we connected: this one is already stale.
          await client.close();
          if (Date.now() >= deadline)
            throw new ConnectError(
              'connect_timeout',
              formatAddress(server.address),
              'the active event server changed while connecting',
            );
          continue;
        }
        clients.set(client, forKey);
        void client.closed.then(() => clients.delete(client));
        return client;
      }
    },
    async close() {
      closed = true;
      sub.unsubscribe();
      for (const wake of [...waiters]) wake();
      await Promise.all([...clients.keys()].map((c) => c.close()));
    },
  };
}

function detailOf(s: EventServerSelection): string {
  return s.kind === 'server'
    ? `server ${s.server.serverId} at ${formatAddress(s.server.address)}`
    : s.detail;
}
