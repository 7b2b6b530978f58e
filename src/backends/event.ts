/**
 * The event backend module (`backend.module: aimm-store/backends/event`): models as AIMM-format
 * events in the Hat event server. See docs/backend-event.md.
 */
import { pino } from 'pino';
import type { Backend, BackendConf, BackendContext, HatConnector } from '../backend/types.js';
import { MetricsRegistry } from '../common/metrics.js';
import { createHatConnector } from '../hat/eventer/connector.js';
import { EventBackend } from './event/backend.js';
import { CONF_SCHEMA_ID, parseConfig, subscriptionOf } from './event/config.js';

export { EventBackend } from './event/backend.js';
export type { EventBackendConfig } from './event/config.js';
export { parseConfig } from './event/config.js';

/** Schema id of this backend's config part. */
export const confSchema = CONF_SCHEMA_ID;

/** Creates the backend; it connects and recovers in the background (see `whenReady()`). */
export function create(conf: BackendConf, context: BackendContext): Backend {
  return new EventBackend(parseConfig(conf), context);
}

/** The event types this backend needs from Hat, as AIMM's `create_subscription`. */
export function createSubscription(conf: BackendConf): string[][] {
  return subscriptionOf(parseConfig(conf).modelPrefix);
}

/** Options of {@link openEventBackend}: where Hat is, and optionally the rest of the context. */
export interface OpenEventBackendOptions extends Partial<Omit<BackendContext, 'hat'>> {
  /** Hat event server address(es), in fail-over order — or a ready connector. */
  hat: { host: string; port: number } | { host: string; port: number }[] | HatConnector;
  /** Eventer client name (default `aimm-store/<name>`). */
  clientName?: string;
  /** Client token, when the Hat server has a `server_token`. */
  clientToken?: string;
}

/**
 * Library use without the daemon: creates the event backend (config as in the `backend` section,
 * without `module`) and waits until it has recovered from Hat.
 */
export async function openEventBackend(
  conf: Record<string, unknown>,
  options: OpenEventBackendOptions,
): Promise<EventBackend> {
  const name = options.name ?? 'aimm-store';
  const hat =
    'connect' in options.hat
      ? options.hat
      : createHatConnector({
          addresses: Array.isArray(options.hat) ? options.hat : [options.hat],
          clientName: options.clientName ?? `aimm-store/${name}`,
          clientToken: options.clientToken ?? null,
        });
  const backend = new EventBackend(parseConfig({ module: 'aimm-store/backends/event', ...conf }), {
    name,
    logger: options.logger ?? pino({ level: 'silent' }),
    metrics: options.metrics ?? new MetricsRegistry(),
    hat,
  });
  try {
    await backend.whenReady();
  } catch (err) {
    await backend.close();
    throw err;
  }
  return backend;
}
