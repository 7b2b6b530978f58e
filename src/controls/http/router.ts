/**
 * The routes, in one place: which path is which route, and which methods each route answers
 * (HEAD is served by GET's handler; any other method gets 405 with `Allow`).
 *
 * | route            | methods                     | handler                                  |
 * |------------------|-----------------------------|------------------------------------------|
 * | `/healthz`       | GET, HEAD                   | `probes.ts`                              |
 * | `/readyz`        | GET, HEAD                   | `probes.ts`                              |
 * | `/metrics`       | GET, HEAD                   | `probes.ts`                              |
 * | `/models`        | GET, HEAD, POST (writes)    | `read.ts`, `write.ts`                    |
 * | `/models/{id}`   | GET, HEAD, PUT, DELETE      | `read.ts`, `write.ts`                    |
 * | `/changes`       | GET, HEAD                   | `changes.ts` (Server-Sent Events)        |
 * | `/whoami`        | GET, HEAD                   | `console.ts`                             |
 * | `/`              | GET, HEAD (console)         | `console.ts`: 302 to `/console/`         |
 * | `/console/...`   | GET, HEAD (console)         | `console.ts`: the web console's files    |
 *
 * Paths are matched exactly, undecoded: `/models/1/../2` or `/models/%31` are not normalised but
 * refused as invalid ids; query parameters other than those a route reads are ignored.
 */
import { rootRedirect, serveConsole, whoami } from './console.js';
import type { RouteHandler } from './exchange.js';
import { ready } from './model-request.js';
import { healthz, metrics, readyz } from './probes.js';
import { getModel, listModels } from './read.js';
import { deleteModel, postModel, putModel } from './write.js';

export type Route =
  | 'healthz'
  | 'readyz'
  | 'metrics'
  | 'models'
  | 'model'
  | 'changes'
  | 'whoami'
  | 'root'
  | 'console'
  | 'other';

export interface RouteMatch {
  route: Route;
  /**
   * The `{id}` segment of `/models/{id}` (anything after the slash); for `/console…` what follows
   * `/console` ('' or '/name'); else ''.
   */
  id: string;
  query: URLSearchParams;
}

export function routeOf(url: string, serveModels: boolean, serveConsole = false): RouteMatch {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const at = (route: Route, id = ''): RouteMatch => ({ route, id, query });
  if (path === '/healthz') return at('healthz');
  if (path === '/readyz') return at('readyz');
  if (path === '/metrics') return at('metrics');
  if (path === '/whoami') return at('whoami');
  if (serveConsole && path === '/') return at('root');
  if (serveConsole && (path === '/console' || path.startsWith('/console/')))
    return at('console', path.slice('/console'.length));
  if (serveModels && path === '/models') return at('models');
  if (serveModels && path === '/changes') return at('changes');
  if (serveModels && path.startsWith('/models/')) return at('model', path.slice('/models/'.length));
  return at('other');
}

/** The handlers of each route by method (GET also answers HEAD). */
export function routeTable(
  writes: boolean,
): Record<Exclude<Route, 'other'>, Record<string, RouteHandler>> {
  return {
    healthz: { GET: healthz },
    readyz: { GET: readyz },
    metrics: { GET: metrics },
    whoami: { GET: whoami },
    root: { GET: rootRedirect },
    console: { GET: (x) => serveConsole(x) },
    models: writes ? { GET: listModels, POST: postModel } : { GET: listModels },
    model: writes ? { GET: getModel, PUT: putModel, DELETE: deleteModel } : { GET: getModel },
    changes: {
      GET: (x) => {
        if (ready(x)) x.options.changes.serve(x.req, x.res);
      },
    },
  };
}

/** The `Allow` header of a route. */
export function allowOf(methods: Record<string, RouteHandler>): string {
  const names = Object.keys(methods);
  const withHead = names.includes('GET')
    ? ['GET', 'HEAD', ...names.filter((m) => m !== 'GET')]
    : names;
  return withHead.join(', ');
}
