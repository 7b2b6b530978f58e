/**
 * `aimm-store/controls/juggler`: the Juggler WebSocket control, compatible with AIMM's REPL control
 * and its client (both hat-juggler 0.6 and 0.7 framings), plus our requests and change
 * notifications. See docs/juggler-api.md.
 */

import { CONF_SCHEMA_ID, type JugglerConf, toSettings, validateConf } from './juggler/conf.js';
import { JugglerServer } from './juggler/server.js';
import type { Control, ControlConf, ControlContext } from './types.js';

export type { JugglerConf } from './juggler/conf.js';
export { checkConf, validateConf } from './juggler/conf.js';
export { isLoopbackHost } from './loopback.js';

/** Schema id of this control's configuration (`schemas/controls/juggler.yaml`). */
export const confSchema = CONF_SCHEMA_ID;

export async function create(conf: ControlConf, context: ControlContext): Promise<Control> {
  const issues = validateConf(conf);
  if (issues.length > 0) {
    const lines = issues.map((i) => `${i.path} ${i.message} (rule: ${i.rule})`);
    throw new Error(`juggler control refused to start: ${lines.join('; ')}`);
  }
  const server = new JugglerServer(toSettings(conf as unknown as JugglerConf), {
    logger: context.logger,
    metrics: context.metrics,
    backend: context.backend,
    status: () => context.status(),
  });
  await server.start();
  return server;
}
