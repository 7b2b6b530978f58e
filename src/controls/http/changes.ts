/**
 * `GET /changes`: the backend's change stream as Server-Sent Events (docs/http-changes.md). One
 * subscription to `changes$` for the control's whole life feeds a {@link ChangeRing}; each client
 * is a {@link ChangeStream} with a cursor into it. A new client (or one whose resume point is
 * gone) gets one `model` event per current model, then the changes that happened meanwhile, then
 * `synced`, then live changes; a client with a known `Last-Event-ID` (or `?after=`) gets exactly
 * the changes it missed. Heartbeat comments keep proxies from timing the stream out.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import { changeData } from '../change-json.js';
import type { ControlContext } from '../types.js';
import { ChangeRing } from './change-ring.js';
import { ChangeStream, type DropReason } from './change-stream.js';

/** The change stream's part of the HTTP control's config (seconds, like the rest of the config). */
export interface ChangesConf {
  changes_buffer?: number;
  changes_heartbeat?: number;
  changes_retry?: number;
  changes_stall_timeout?: number;
}

export const CHANGES_DEFAULTS = {
  changes_buffer: 10_000,
  changes_heartbeat: 15,
  changes_retry: 2,
  changes_stall_timeout: 30,
} as const;

export interface ChangeStreams {
  /** Answers `GET /changes` (the caller has checked the route, method and readiness). */
  serve(req: IncomingMessage, res: ServerResponse): void;
  /** Ends every stream (a final comment, then end) and stops the heartbeat. Idempotent. */
  close(): void;
}

const QUERY_KEYS = new Set(['after', 'type']);

export function createChangeStreams(
  conf: ChangesConf,
  context: ControlContext,
  logger: Logger,
): ChangeStreams {
  const c = {
    changes_buffer: conf.changes_buffer ?? CHANGES_DEFAULTS.changes_buffer,
    changes_heartbeat: conf.changes_heartbeat ?? CHANGES_DEFAULTS.changes_heartbeat,
    changes_retry: conf.changes_retry ?? CHANGES_DEFAULTS.changes_retry,
    changes_stall_timeout: conf.changes_stall_timeout ?? CHANGES_DEFAULTS.changes_stall_timeout,
  };
  const ring = new ChangeRing(c.changes_buffer, (change) => JSON.stringify(changeData(change)));
  const streams = new Set<ChangeStream>();
  const reg = context.metrics;
  reg.gauge('http_sse_clients', 'Open GET /changes streams').collect(() => streams.size);
  const dropped = reg.counter(
    'http_sse_dropped_total',
    'GET /changes clients dropped for not reading, by reason (lagging, stalled)',
  );
  const started = reg.counter(
    'http_sse_streams_total',
    'GET /changes streams started, by start (listing, resumed, reset)',
  );
  let closed = false;
  const subscription: Subscription = context.backend.changes$.subscribe({
    next: (change) => {
      ring.push(change);
      for (const s of streams) s.changed();
    },
    error: (err: unknown) => logger.error({ err }, 'backend change stream failed'),
  });
  const heartbeat = setInterval(() => {
    for (const s of streams) s.heartbeat();
  }, c.changes_heartbeat * 1000);
  heartbeat.unref();

  return {
    serve(req, res) {
      const query = parseQuery(req.url ?? '/');
      if (typeof query === 'string') {
        sendError(res, 400, query);
        return;
      }
      if (closed) {
        sendError(res, 503, 'shutting down');
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
        'X-Accel-Buffering': 'no',
        'X-Content-Type-Options': 'nosniff',
        // A stream ends only by a close: no keep-alive to wait for at shutdown.
        Connection: 'close',
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
      const stream = new ChangeStream(res, ring, {
        type: query.type,
        stallMs: c.changes_stall_timeout * 1000,
        onDrop: (reason: DropReason) => {
          dropped.inc({ reason });
          logger.warn({ remote, reason }, 'change stream client dropped');
        },
      });
      streams.add(stream);
      res.on('close', () => streams.delete(stream));
      res.write(`retry: ${Math.round(c.changes_retry * 1000)}\n\n`);
      const lastId = headerValue(req, 'last-event-id') ?? query.after;
      const point = lastId === null ? null : ring.resumePoint(lastId);
      if (point?.kind === 'resume') {
        started.inc({ start: 'resumed' });
        stream.resume(point.seq);
        return;
      }
      started.inc({ start: point === null ? 'listing' : 'reset' });
      if (point !== null) stream.reset(point.reason);
      stream.beginListing();
      context.backend.getModels().then(
        (models) => stream.listingLoaded(models),
        (err: unknown) => {
          logger.error({ err, remote }, 'change stream listing failed');
          stream.end('listing failed; reconnect');
        },
      );
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      subscription.unsubscribe();
      for (const s of streams) s.end('server shutting down');
      streams.clear();
    },
  };
}

/** `after` and `type` (each at most once, `after` non-empty to count), or an error message. */
function parseQuery(url: string): { after: string | null; type: string | null } | string {
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  for (const key of new Set(params.keys())) {
    if (!QUERY_KEYS.has(key)) return `unknown query parameter '${key}' (expected after, type)`;
    if (params.getAll(key).length > 1) return `query parameter '${key}' given more than once`;
  }
  const after = params.get('after');
  return { after: after === '' ? null : after, type: params.get('type') };
}

/** A request header, null when absent or empty. */
function headerValue(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v.join(',') : v;
  return s === undefined || s.trim() === '' ? null : s.trim();
}

function sendError(res: ServerResponse, status: number, error: string): void {
  const body = `${JSON.stringify({ error })}\n`;
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}
