/**
 * Backend failures as HTTP answers, in one place:
 *
 * | code                | status                                                          |
 * |---------------------|-----------------------------------------------------------------|
 * | `not_found`         | 404 (412 when the request had a precondition)                   |
 * | `revision_conflict` | 412 for a conditional request, else 409                         |
 * | `invalid`           | 400                                                             |
 * | `too_large`         | 413                                                             |
 * | `not_active`        | 503, the body names the active instance (and its HTTP URL)      |
 * | `unavailable`       | 503 + `Retry-After: 1`                                          |
 * | `closed`            | 503 + `Retry-After: 1` (the daemon is stopping)                 |
 * | `invalid` of a backend without history (`NoHistoryError`) | 501, code `no_history` |
 * | anything else       | 500                                                             |
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { NoHistoryError } from '../../backend/no-history.js';
import { BackendError } from '../../backend/types.js';
import type { ControlContext } from '../types.js';
import { sendError } from './send.js';

export function statusOf(code: string, conditional: boolean): number {
  switch (code) {
    case 'not_found':
      return conditional ? 412 : 404;
    case 'revision_conflict':
      return conditional ? 412 : 409;
    case 'invalid':
      return 400;
    case 'too_large':
      return 413;
    case 'not_active':
    case 'unavailable':
    case 'closed':
      return 503;
    default:
      return 500;
  }
}

/** Answers a backend failure; anything that is not a BackendError is rethrown (a 500, logged). */
export function sendBackendError(
  context: ControlContext,
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  options: { conditional?: boolean; extra?: Record<string, unknown> } = {},
): void {
  if (!(err instanceof BackendError)) throw err;
  if (err instanceof NoHistoryError) {
    sendError(res, req, 501, err.message, { code: 'no_history' });
    return;
  }
  const headers: OutgoingHttpHeaders = {};
  const extra: Record<string, unknown> = { ...options.extra };
  if (err.code === 'unavailable' || err.code === 'closed') headers['Retry-After'] = '1';
  if (err.code === 'not_active') {
    const active = context.status().redundancy?.active;
    extra.active = active?.name ?? null;
    extra.active_http = active?.http ?? null;
  }
  sendError(res, req, statusOf(err.code, options.conditional === true), err.message, {
    code: err.code,
    headers,
    extra,
  });
}

/** Runs a backend call; a BackendError becomes its answer and `undefined`. */
export async function guard<T>(
  context: ControlContext,
  req: IncomingMessage,
  res: ServerResponse,
  call: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    sendBackendError(context, req, res, err);
    return undefined;
  }
}
