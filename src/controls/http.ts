/**
 * The HTTP control, built-in `aimm-store/controls/http`: liveness, readiness, Prometheus metrics,
 * raw model bytes and their writes (routes: `http/router.ts`; docs/http-api.md), the change stream
 * (`GET /changes`, `http/changes.ts`). Config (`schemas/controls/http.yaml`): `server: {host, port, pem_file?, ca_file?}` (with
 * `pem_file` it serves https, see tls.ts),
 * `models` (default true), `writes` (default true), `console` (default true: the web console at `/`), `max_model_size` (default: the backend's
 * limit), `body_timeout_ms` (default 30 s), `max_upload_bytes_in_flight` (default 256 MiB,
 * `http/upload-budget.ts`), `changes_*`, and authentication (`http/auth-conf.ts`):
 * `users`, `tokens_file`, `auth_metrics`, `allow_plaintext`; a non-loopback address needs
 * authentication (and TLS, or `allow_plaintext`).
 */
import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import { formatAddress } from '../common/address.js';
import type { ConfigIssue } from '../common/schema.js';
import { checkAuthConf, createAuth, type HttpAuthConf } from './http/auth-conf.js';
import { type ChangesConf, createChangeStreams } from './http/changes.js';
import { createHandler } from './http/handler.js';
import { openapiJson } from './http/openapi.js';
import { UploadBudget } from './http/upload-budget.js';
import { listenError } from './listen-error.js';
import { checkTlsConf, ServerTls, type TlsConf } from './tls.js';
import type { Control, ControlConf, ControlContext } from './types.js';

/** The schema of this control's config part (in `schemas/controls/http.yaml`). */
export const confSchema = 'aimm-store://controls/http.yaml#';

export interface HttpControlConf extends ControlConf, ChangesConf, Omit<HttpAuthConf, 'server'> {
  server: { host: string; port: number } & TlsConf;
  models?: boolean;
  writes?: boolean;
  console?: boolean;
  max_model_size?: number;
  body_timeout_ms?: number;
  max_upload_bytes_in_flight?: number;
}

const DEFAULT_BODY_TIMEOUT_MS = 30_000;
/** Bytes of upload bodies held at once: 256 MiB (a larger upload proceeds alone). */
export const DEFAULT_MAX_UPLOAD_BYTES_IN_FLIGHT = 256 * 1024 * 1024;

/** How long close() lets in-flight responses finish before cutting connections. */
const CLOSE_GRACE_MS = 2000;

/** Checks beyond the schema: loopback, authentication and TLS, the tokens file, the TLS files. */
export function checkConf(conf: ControlConf, basePath = '$'): ConfigIssue[] {
  const c = conf as Partial<HttpControlConf>;
  return [
    ...checkAuthConf(conf as HttpAuthConf, basePath),
    ...checkTlsConf(c.server, `${basePath}.server`),
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
  const serveModels = c.models !== false;
  // Off loopback the control always has authentication (checkConf), and writes need the `write`
  // role: so writes are on unless turned off.
  const writes = serveModels && c.writes !== false;
  const auth = createAuth(c, context.metrics, logger);
  const changes = createChangeStreams(c, context, logger);
  const tls = ServerTls.of(c.server);
  // No total request timeout: a large upload may take minutes. Headers must arrive within 10 s,
  // and an upload that stalls for body_timeout_ms is cut off (http/body.ts).
  const options: ServerOptions = {
    requestTimeout: 0,
    headersTimeout: 10_000,
    keepAliveTimeout: 5_000,
  };
  const handler: RequestListener = createHandler({
    context,
    serveModels,
    serveConsole: c.console !== false,
    writes,
    maxModelBytes: c.max_model_size,
    bodyTimeoutMs: c.body_timeout_ms ?? DEFAULT_BODY_TIMEOUT_MS,
    uploads: new UploadBudget(c.max_upload_bytes_in_flight ?? DEFAULT_MAX_UPLOAD_BYTES_IN_FLIGHT, {
      inFlight: context.metrics.gauge(
        'http_upload_bytes_in_flight',
        'Bytes reserved by HTTP uploads being received or written (max_upload_bytes_in_flight)',
      ),
      waiting: context.metrics.gauge(
        'http_uploads_waiting',
        'HTTP uploads waiting for room in max_upload_bytes_in_flight (their bodies unread)',
      ),
    }),
    requests,
    logger,
    changes,
    auth,
    openapi: openapiJson(),
  });
  const server =
    tls === null
      ? createServer(options, handler)
      : createTlsServer({ ...options, ...tls.serverOptions() }, handler);
  // Expect: 100-continue: the same handler decides; uploads send 100 only once their checks pass.
  server.on('checkContinue', handler);
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
      writes,
      console: c.console !== false,
      ...tls?.describe(),
    },
    'listening',
  );
  let closing: Promise<void> | null = null;
  return {
    address,
    secure: tls !== null,
    /** SIGHUP: the tokens file (logged by auth), then the TLS files (logged by the daemon). */
    async reload() {
      await auth.reload();
      return tls === null ? null : tls.reload(server as TlsServer);
    },
    close() {
      changes.close();
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
