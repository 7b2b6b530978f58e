/**
 * The HTTP control's request handling: routing (`router.ts`), 405 for other methods, metrics,
 * and the last resort: every failure ends in a response or a closed connection, never in an
 * exception out of the handler. The same handler serves `checkContinue` (a request with
 * `Expect: 100-continue`): the upload routes send `100 Continue` only once their checks pass.
 * With authentication configured, `auth` answers 401/403 before any route runs (`auth.ts`), so an
 * upload without the right credentials is refused before its body is read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HandlerOptions } from './exchange.js';
import { allowOf, routeOf, routeTable } from './router.js';
import { sendError, sendJson } from './send.js';

export type { HandlerOptions } from './exchange.js';

export function createHandler(
  options: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const table = routeTable(options.writes);
  return (req, res) => {
    const { route, id, revision, query } = routeOf(
      req.url ?? '/',
      options.serveModels,
      options.serveConsole,
    );
    res.on('finish', () => options.requests.inc({ route, code: String(res.statusCode) }));
    res.on('close', () => {
      if (!res.writableFinished) options.requests.inc({ route, code: 'aborted' });
    });
    const dispatch = (): void => {
      const methods = route === 'other' ? undefined : table[route];
      if (methods === undefined) {
        sendError(res, req, 404, 'not found');
        return;
      }
      const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');
      const handler = methods[method];
      if (handler === undefined) {
        sendError(res, req, 405, 'method not allowed', { headers: { Allow: allowOf(methods) } });
        return;
      }
      Promise.resolve()
        .then(() => handler({ req, res, options, id, revision, query }))
        .catch((err: unknown) => {
          options.logger.error({ err, route }, 'http request failed');
          if (!res.headersSent) sendError(res, req, 500, 'internal error');
          else res.destroy();
        });
    };
    const auth = options.auth;
    if (auth === undefined) {
      dispatch();
      return;
    }
    auth.authorize(req).then(
      (denied) => {
        if (denied === null) dispatch();
        else sendJson(res, req, denied.status, denied.body, denied.headers);
      },
      (err: unknown) => {
        options.logger.error({ err, route }, 'http authorization failed');
        if (!res.headersSent) sendError(res, req, 500, 'internal error');
        else res.destroy();
      },
    );
  };
}
