/**
 * A connection factory for one logical Hat event server that may run as several redundant
 * servers: `connect()` tries the addresses in order and returns the first eventer connection
 * that completes its init exchange with an operational server (else the first that completed it:
 * its status may still change). Structurally it is the backend contract's `HatConnector`
 * (the Hat library does not import the backend layer).
 */
import { type Address, formatAddress } from '../chatter/connect.js';
import { ConnectError } from '../chatter/errors.js';
import { connect, EventerInitError } from './client.js';
import type { EventerClient, EventType } from './common.js';

export interface HatConnectorOptions {
  /**
   * Fail-over order: the first address whose server is operational wins; when none is, the first
   * that accepted (a redundant Hat's standby servers accept clients too).
   */
  addresses: readonly Address[];
  clientName: string;
  clientToken?: string | null;
  pingDelay?: number;
  pingTimeout?: number;
  connectTimeout?: number;
  maxFrameSize?: number;
  /** Check json payload texts before sending (see `ConnectOptions.checkJson`, default true). */
  checkJson?: boolean;
}

export interface HatConnectorConnectOptions {
  subscriptions: readonly EventType[] | string[][];
  persisted?: boolean;
  /** Client name becomes `${clientName}/${nameSuffix}`. */
  nameSuffix?: string;
  serverId?: number | null;
}

export interface HatConnectorImpl {
  readonly addresses: readonly Address[];
  connect(options: HatConnectorConnectOptions): Promise<EventerClient>;
}

export function createHatConnector(options: HatConnectorOptions): HatConnectorImpl {
  if (options.addresses.length === 0)
    throw new RangeError('a Hat connector needs at least one address');
  const addresses = options.addresses.map((a) => ({ host: a.host, port: a.port }));
  return {
    addresses,
    async connect(connectOptions) {
      const clientName =
        connectOptions.nameSuffix === undefined || connectOptions.nameSuffix === ''
          ? options.clientName
          : `${options.clientName}/${connectOptions.nameSuffix}`;
      const failures: [Address, Error][] = [];
      // A redundant Hat runs one operational server; the others accept clients in `standby`. The
      // first operational server wins; failing that, the first one that accepted.
      let fallback: EventerClient | null = null;
      for (const address of addresses) {
        let client: EventerClient;
        try {
          client = await connect(address, {
            clientName,
            clientToken: options.clientToken ?? null,
            subscriptions: connectOptions.subscriptions,
            serverId: connectOptions.serverId ?? null,
            persisted: connectOptions.persisted ?? false,
            pingDelay: options.pingDelay,
            pingTimeout: options.pingTimeout,
            connectTimeout: options.connectTimeout,
            maxFrameSize: options.maxFrameSize,
            checkJson: options.checkJson,
          });
        } catch (err) {
          failures.push([address, err as Error]);
          continue;
        }
        if (client.status === 'operational') {
          await fallback?.close();
          return client;
        }
        if (fallback === null) fallback = client;
        else await client.close();
      }
      if (fallback !== null) return fallback;
      const [first] = failures;
      if (failures.length === 1 && first !== undefined) throw first[1];
      const initErrors = failures.filter(([, e]) => e instanceof EventerInitError);
      if (initErrors.length === failures.length && initErrors[0] !== undefined) {
        throw initErrors[0][1];
      }
      const detail = failures.map(([a, e]) => `${formatAddress(a)}: ${e.message}`).join('; ');
      throw new ConnectError(
        'connect_failed',
        addresses.map(formatAddress).join(','),
        `no Hat event server reachable (${detail})`,
        { cause: failures.map(([, e]) => e) },
      );
    },
  };
}
