/**
 * The backend context's `hat`: a connector for the configured Hat event server(s), built from
 * `hat: {eventer_server, client_name?, client_token? | client_token_file?, ping_delay?, ...}`,
 * or, with `hat.monitor_component`, the {@link Redundancy} whose connector follows hat-monitor.
 * The token is read here (from the config or its file) and handed to the connector only; it is
 * never logged. Durations in the config are seconds; the connector takes milliseconds.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { HatConnector } from '../backend/types.js';
import type { MetricsRegistry } from '../common/metrics.js';
import { type HatConf, hatAddresses } from './config.js';
import { Redundancy } from './redundancy.js';

export interface HatSetup {
  connector: HatConnector;
  /** Set in monitor mode (`hat.monitor_component`). */
  redundancy: Redundancy | null;
}

export async function buildHat(
  hat: HatConf,
  name: string,
  logger: Logger,
  metrics: MetricsRegistry,
): Promise<HatSetup> {
  if (hat.monitor_component !== undefined) {
    const redundancy = new Redundancy({
      conf: hat.monitor_component,
      name,
      clientName: hat.client_name ?? `aimm-store/${name}`,
      clientToken: clientToken(hat) ?? null,
      ...(hat.ping_delay !== undefined ? { pingDelay: hat.ping_delay * 1000 } : {}),
      ...(hat.ping_timeout !== undefined ? { pingTimeout: hat.ping_timeout * 1000 } : {}),
      ...(hat.connect_timeout !== undefined ? { connectTimeout: hat.connect_timeout * 1000 } : {}),
      logger,
      metrics,
    });
    return { connector: redundancy.connector, redundancy };
  }
  return { connector: await buildHatConnector(hat, name), redundancy: null };
}

export async function buildHatConnector(hat: HatConf, name: string): Promise<HatConnector> {
  const { createHatConnector } = await import('../hat/eventer/connector.js');
  const token = clientToken(hat);
  return createHatConnector({
    addresses: hatAddresses(hat),
    clientName: hat.client_name ?? `aimm-store/${name}`,
    ...(token !== undefined ? { clientToken: token } : {}),
    ...(hat.ping_delay !== undefined ? { pingDelay: hat.ping_delay * 1000 } : {}),
    ...(hat.ping_timeout !== undefined ? { pingTimeout: hat.ping_timeout * 1000 } : {}),
    ...(hat.connect_timeout !== undefined ? { connectTimeout: hat.connect_timeout * 1000 } : {}),
  });
}

/** The client token from `client_token`, or the first line of `client_token_file`. */
export function clientToken(hat: HatConf): string | undefined {
  if (hat.client_token !== undefined) return hat.client_token;
  if (hat.client_token_file === undefined) return undefined;
  return readFileSync(hat.client_token_file, 'utf8').replace(/\r?\n$/, '');
}
