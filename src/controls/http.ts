/**
 * The HTTP control, built-in `aimm-store/controls/http`: liveness, readiness, Prometheus metrics
 * and raw model bytes (see `http/handler.ts` for the routes). Config (`schemas/controls/http.yaml`):
 * `server: {host, port, pem_file?, ca_file?}` (with `pem_file` it serves https, see tls.ts),
 * `allow_non_loopback` (default false: the control has no authentication, so a non-loopback
 * address is refused unless explicitly allowed), `models` (default true).
 */
import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import { formatAddress } from '../common/address.js';
import type { ConfigIssue } from '../common/schema.js';
import { createHandler } from './http/handler.js';
import { listenError } from './listen-error.js';
import { isLoopbackHost } from './loopback.js';
import { checkTlsConf, ServerTls, type TlsConf } from './tls.js';
import type { Control, ControlConf, ControlContext } from './types.js';

/** The schema of this control's config part (in `schemas/controls/http.yaml`). */
export const confSchema = 'aimm-store://controls/http.yaml#';

export interface HttpControlConf extends ControlConf {
  server: { host: string; port: number } & TlsConf;
  allow_non_loopback?: boolean;
  models?: boolean;
}

/** How long close() lets in-flight responses finish before cutting connections. */
const CLOSE_GRACE_MS = 2000;

/** Checks beyond the schema: the loopback rule, the TLS files. Paths are prefixed with `basePath`. */
export function checkConf(conf: ControlConf, basePath = '$'): ConfigIssue[] {
  const c = conf as Partial<HttpControlConf>;
  return [...checkLoopback(c, basePath), ...checkTlsConf(c.server, `${basePath}.server`)];
}

function checkLoopback(c: Partial<HttpControlConf>, basePath: string): ConfigIssue[] {
  const host = c.server?.host;
  if (typeof host !== 'string' || isLoopbackHost(host) || c.allow_non_loopback === true) return [];
  return [
    {
      path: `${basePath}.server.host`,
      rule: 'loopback',
      message:
        `'${host}' is not a loopback address; the HTTP control has no authentication, ` +
        'so set allow_non_loopback: true to expose it deliberately',
    },
  ];
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
  const tls = ServerTls.of(c.server);
  const options: ServerOptions = {
    requestTimeout: 60_000,
    headersTimeout: 10_000,
    keepAliveTimeout: 5_000,
  };
  const handler: RequestListener = createHandler({
    context,
    serveModels: c.models !== false,
    requests,
    logger,
  });
  const server =
    tls === null
      ? createServer(options, handler)
      : createTlsServer({ ...options, ...tls.serverOptions() }, handler);
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  const address = await listen(server, c.server.host, c.server.port);
  logger.info(
    {
      host: address.host,
      port: address.port,
      url: `${tls === null ? 'http' : 'https'}://${formatAddress(address)}/`,
      ...tls?.describe(),
    },
    'listening',
  );
  let closing: Promise<void> | null = null;
  return {
    address,
    secure: tls !== null,
    async reload() {
      return tls === null ? null : tls.reload(server as TlsServer);
    },
    close() {
      closing ??= closeServer(server).then(() => logger.info('closed'));
      return closing;
    },
  };
}

function listen(
  server: Server | TlsServer,
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

function closeServer(server: Server | TlsServer): Promise<void> {
  return new Promise((resolve) => {
    const grace = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    server.close(() => {
      clearTimeout(grace);
      resolve();
    });
    server.closeIdleConnections();
  });
}
