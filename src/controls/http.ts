/**
 * The HTTP control, built-in `aimm-store/controls/http`: liveness, readiness, Prometheus metrics
 * and raw model bytes (see `http/handler.ts` for the routes). Config (`schemas/controls/http.yaml`):
 * `server: {host, port}`, `models` (default true), and authentication (`http/auth-conf.ts`):
 * `users`, `tokens_file`, `auth_metrics`, `allow_plaintext`; a non-loopback address needs
 * authentication (and TLS, or `allow_plaintext`).
 */
import { createServer, type Server } from 'node:http';
import type { ConfigIssue } from '../common/schema.js';
import { checkAuthConf, createAuth, type HttpAuthConf } from './http/auth-conf.js';
import { createHandler } from './http/handler.js';
import { listenError } from './listen-error.js';
import type { Control, ControlConf, ControlContext } from './types.js';

/** The schema of this control's config part (in `schemas/controls/http.yaml`). */
export const confSchema = 'aimm-store://controls/http.yaml#';

export interface HttpControlConf extends ControlConf, Omit<HttpAuthConf, 'server'> {
  server: { host: string; port: number };
  models?: boolean;
}

/** How long close() lets in-flight responses finish before cutting connections. */
const CLOSE_GRACE_MS = 2000;

/** Checks beyond the schema: loopback, authentication and TLS, the tokens file. */
export function checkConf(conf: ControlConf, basePath = '$'): ConfigIssue[] {
  return checkAuthConf(conf as HttpAuthConf, basePath);
}

export async function create(conf: ControlConf, context: ControlContext): Promise<Control> {
  const c = conf as HttpControlConf;
  const issue = checkConf(conf)[0];
  if (issue !== undefined) throw new Error(`http control refused: ${issue.message}`);
  const logger = context.logger.child({ control: 'http' });
  const requests = context.metrics.counter(
    'http_requests_total',
    'HTTP control requests by route and status code',
  );
  const auth = createAuth(c, context.metrics, logger);
  const server = createServer(
    { requestTimeout: 60_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 },
    createHandler({ context, serveModels: c.models !== false, requests, logger, auth }),
  );
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  const address = await listen(server, c.server.host, c.server.port);
  logger.info({ host: address.host, port: address.port }, 'listening');
  let closing: Promise<void> | null = null;
  return {
    address,
    reload: () => auth.reload(),
    close() {
      closing ??= closeServer(server).then(() => logger.info('closed'));
      return closing;
    },
  };
}

function listen(
  server: Server,
  host: string,
  port: number,
): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      void listenError('http', host, port, err).then(reject);
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      server.on('error', () => {});
      const a = server.address();
      resolve({ host, port: typeof a === 'object' && a !== null ? a.port : port });
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const grace = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    server.close(() => {
      clearTimeout(grace);
      resolve();
    });
    server.closeIdleConnections();
  });
}
