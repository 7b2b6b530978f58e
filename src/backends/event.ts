/**
 * The event backend module (`backend.module: aimm-store/backends/event`): models as AIMM-format
 * events in the Hat event server. See docs/backend-event.md.
 */
import type { Backend, BackendConf, BackendContext } from '../backend/types.js';
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
