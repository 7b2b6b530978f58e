/**
 * Writing responses. Every answer has a `Content-Length` and `nosniff`; HEAD gets the headers
 * only. A request whose body was not (completely) read gets `Connection: close`: what is left of
 * its body is never read, the connection ends after the answer.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function sendJson(
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

/** An error answer: `{error, code?, ...extra}`. */
export function sendError(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  error: string,
  options: { code?: string; headers?: OutgoingHttpHeaders; extra?: Record<string, unknown> } = {},
): void {
  const body: Record<string, unknown> = { error };
  if (options.code !== undefined) body.code = options.code;
  Object.assign(body, options.extra);
  sendJson(res, req, status, body, options.headers);
}

export function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  body: string | Buffer,
  headers: OutgoingHttpHeaders,
): void {
  if (res.headersSent || res.destroyed) return;
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const all: OutgoingHttpHeaders = {
    ...headers,
    'Content-Length': String(buf.length),
    'X-Content-Type-Options': 'nosniff',
  };
  if (!req.complete) all.Connection = 'close';
  res.writeHead(status, all);
  if (req.method === 'HEAD') res.end();
  else res.end(buf);
}
