/**
 * `/healthz`, `/readyz`, `/metrics`: what the daemon's supervisors ask; and `/openapi.json`, the
 * description of this API (`schemas/openapi.yaml`), public like the probes.
 */
import type { RedundancyStatus } from '../types.js';
import type { Exchange } from './exchange.js';
import { send, sendJson } from './send.js';

export function healthz({ req, res, options }: Exchange): void {
  const role = options.context.status().redundancy?.role;
  sendJson(res, req, 200, role === undefined ? { status: 'alive' } : { status: 'alive', role });
}

export function readyz({ req, res, options }: Exchange): void {
  const status = options.context.status();
  const body: Record<string, unknown> = { ready: status.ready };
  if (status.backend.connected !== undefined) body.connected = status.backend.connected;
  if (status.backend.detail !== undefined) body.detail = status.backend.detail;
  if (status.redundancy !== undefined) Object.assign(body, redundancyJson(status.redundancy));
  sendJson(res, req, status.ready ? 200 : 503, body);
}

export function metrics({ req, res, options }: Exchange): void {
  send(res, req, 200, options.context.metrics.render(), {
    'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
  });
}

/** A redundant daemon's role for /readyz: a standby is ready too (it serves reads). */
function redundancyJson(r: RedundancyStatus): Record<string, unknown> {
  return {
    role: r.role,
    group: r.group,
    monitor: r.monitor,
    active: r.active,
    event_server: r.eventServer,
  };
}

export function openapi({ req, res, options }: Exchange): void {
  send(res, req, 200, options.openapi, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-cache',
  });
}
