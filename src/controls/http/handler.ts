/**
 * The HTTP control's request handling: routes, status codes and bodies. No framework; every
 * failure ends in a response (never an exception out of the handler).
 *
 * | route            | methods   | answer                                                        |
 * |------------------|-----------|---------------------------------------------------------------|
 * | `/healthz`       | GET, HEAD | 200 while the process runs                                    |
 * | `/readyz`        | GET, HEAD | 200 when recovered (and connected), else 503                  |
 * | `/metrics`       | GET, HEAD | Prometheus text                                               |
 * | `/models`        | GET, HEAD | JSON array of every model's metadata                          |
 * | `/models/{id}`   | GET, HEAD | the raw bytes, metadata in headers; 304 on a matching ETag    |
 *
 * With authentication configured, `auth` answers 401/403 before any route (see `auth.ts`).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { BackendError } from '../../backend/types.js';
import type { Counter } from '../../common/metrics.js';
import { modelJson } from '../model-json.js';
import type { ControlContext, RedundancyStatus } from '../types.js';
import type { HttpAuth } from './auth.js';
import { etagOf, ifNoneMatchHits, modelHeaders } from './model-headers.js';

export interface HandlerOptions {
  context: ControlContext;
  /** Serve /models and /models/{id}. */
  serveModels: boolean;
  requests: Counter;
  logger: Logger;
  /** Authentication and roles; absent or disabled: every request is let through. */
  auth?: HttpAuth;
}

type Route = 'healthz' | 'readyz' | 'metrics' | 'models' | 'model' | 'other';

const ID_PATTERN = /^[1-9][0-9]{0,15}$/;

export function createHandler(
  options: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const { route, id } = routeOf(req.url ?? '/', options.serveModels);
    res.on('finish', () => options.requests.inc({ route, code: String(res.statusCode) }));
    handle(options, req, res, route, id).catch((err: unknown) => {
      options.logger.error({ err, route }, 'http request failed');
      if (!res.headersSent) sendJson(res, req, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}

function routeOf(url: string, serveModels: boolean): { route: Route; id: string } {
  const path = url.split('?', 1)[0] ?? '/';
  if (path === '/healthz') return { route: 'healthz', id: '' };
  if (path === '/readyz') return { route: 'readyz', id: '' };
  if (path === '/metrics') return { route: 'metrics', id: '' };
  if (serveModels && path === '/models') return { route: 'models', id: '' };
  if (serveModels && path.startsWith('/models/')) {
    return { route: 'model', id: path.slice('/models/'.length) };
  }
  return { route: 'other', id: '' };
}

async function handle(
  options: HandlerOptions,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  id: string,
): Promise<void> {
  const denied = await options.auth?.authorize(req);
  if (denied) {
    sendJson(res, req, denied.status, denied.body, denied.headers);
    return;
  }
  if (route === 'other') {
    sendJson(res, req, 404, { error: 'not found' });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(res, req, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD' });
    return;
  }
  const { context } = options;
  switch (route) {
    case 'healthz': {
      const role = context.status().redundancy?.role;
      sendJson(res, req, 200, role === undefined ? { status: 'alive' } : { status: 'alive', role });
      return;
    }
    case 'readyz': {
      const status = context.status();
      const body: Record<string, unknown> = { ready: status.ready };
      if (status.backend.connected !== undefined) body.connected = status.backend.connected;
      if (status.backend.detail !== undefined) body.detail = status.backend.detail;
      if (status.redundancy !== undefined) Object.assign(body, redundancyJson(status.redundancy));
      sendJson(res, req, status.ready ? 200 : 503, body);
      return;
    }
    case 'metrics':
      send(res, req, 200, context.metrics.render(), {
        'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
      });
      return;
    case 'models':
    case 'model':
      if (!context.status().ready) {
        sendJson(res, req, 503, { error: 'not ready' }, { 'Retry-After': '1' });
        return;
      }
      if (route === 'models') {
        const models = await guard(res, req, () => context.backend.getModels());
        if (models !== undefined)
          sendJson(
            res,
            req,
            200,
            models.map((m) => modelJson(m)),
          );
        return;
      }
      await serveModel(context, req, res, id);
      return;
  }
}

async function serveModel(
  context: ControlContext,
  req: IncomingMessage,
  res: ServerResponse,
  id: string,
): Promise<void> {
  const instanceId = Number(id);
  if (!ID_PATTERN.test(id) || !Number.isSafeInteger(instanceId)) {
    sendJson(res, req, 400, { error: 'invalid model id: expected a positive integer' });
    return;
  }
  const model = await guard(res, req, () => context.backend.getModel(instanceId));
  if (model === undefined) return;
  if (model === null) {
    sendJson(res, req, 404, { error: `model ${instanceId} not found` });
    return;
  }
  const headers = modelHeaders(model);
  if (ifNoneMatchHits(header(req, 'if-none-match'), etagOf(model))) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const body = Buffer.from(model.instance.buffer, model.instance.byteOffset, model.instance.length);
  send(res, req, 200, body, { ...headers, 'Content-Type': 'application/octet-stream' });
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

/** Runs a backend call; a failure becomes its HTTP answer and `undefined`. */
async function guard<T>(
  res: ServerResponse,
  req: IncomingMessage,
  call: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof BackendError)) throw err;
    const code =
      err.code === 'not_found'
        ? 404
        : err.code === 'invalid'
          ? 400
          : err.code === 'unavailable' || err.code === 'closed'
            ? 503
            : 500;
    sendJson(res, req, code, { error: err.message, code: err.code });
    return undefined;
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function sendJson(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  send(res, req, status, `${JSON.stringify(value)}\n`, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
  });
}

function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  body: string | Buffer,
  headers: OutgoingHttpHeaders,
): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, {
    ...headers,
    'Content-Length': String(buf.length),
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') res.end();
  else res.end(buf);
}
