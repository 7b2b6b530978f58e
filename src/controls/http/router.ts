/**
 * The routes, in one place: which path is which route, and which methods each route answers
 * (HEAD is served by GET's handler; any other method gets 405 with `Allow`).
 *
 * | route                          | methods                  | handler                           |
 * |--------------------------------|--------------------------|-----------------------------------|
 * | `/healthz`                     | GET, HEAD                | `probes.ts`                       |
 * | `/readyz`                      | GET, HEAD                | `probes.ts`                       |
 * | `/metrics`                     | GET, HEAD                | `probes.ts`                       |
 * | `/openapi.json`                | GET, HEAD                | this file (`schemas/openapi.yaml`)|
 * | `/models`                      | GET, HEAD, POST (writes) | `read.ts`, `write.ts`             |
 * | `/models/{id}`                 | GET, HEAD, PUT, DELETE   | `read.ts`, `write.ts`             |
 * | `/models/{id}/revisions`       | GET, HEAD                | `history.ts`                      |
 * | `/models/{id}/revisions/{n}`   | GET, HEAD                | `history.ts`                      |
 * | `/models/{id}/rollback`        | POST (writes only)       | `history.ts`                      |
 * | `/changes`                     | GET, HEAD                | `changes.ts` (Server-Sent Events) |
 * | `/whoami`                     | GET, HEAD                | `console.ts`                      |
 * | `/`                            | GET, HEAD (console)      | `console.ts`: 302 to `/console/`  |
 * | `/console/...`                 | GET, HEAD (console)      | `console.ts`: the console's files |
 *
 * Paths are matched exactly, undecoded: `/models/1/../2` or `/models/%31` are not normalised but
 * refused as invalid ids; query parameters other than those a route reads are ignored.
 * `schemas/openapi.yaml` describes every route ({@link ROUTE_PATHS}); `test/daemon/openapi.test.ts`
 * holds the two to each other.
 */
import { rootRedirect, serveConsole, whoami } from './console.js';
import type { RouteHandler } from './exchange.js';
import { getRevision, listRevisions, rollback } from './history.js';
import { ready } from './model-request.js';
import { healthz, metrics, openapi, readyz } from './probes.js';
import { getModel, listModels } from './read.js';
import { deleteModel, postModel, putModel } from './write.js';

export type Route =
  | 'healthz'
  | 'readyz'
  | 'metrics'
  | 'openapi'
  | 'models'
  | 'model'
  | 'revisions'
  | 'revision'
  | 'rollback'
  | 'changes'
  | 'whoami'
  | 'root'
  | 'console'
  | 'other';

/** Each route's path as the OpenAPI description names it. */
export const ROUTE_PATHS: Readonly<Record<Exclude<Route, 'other'>, string>> = {
  healthz: '/healthz',
  readyz: '/readyz',
  metrics: '/metrics',
  openapi: '/openapi.json',
  models: '/models',
  model: '/models/{id}',
  revisions: '/models/{id}/revisions',
  revision: '/models/{id}/revisions/{n}',
  rollback: '/models/{id}/rollback',
  changes: '/changes',
  whoami: '/whoami',
  root: '/',
  console: '/console/{path}',
};

export interface RouteMatch {
  route: Route;
  /**
   * The `{id}` segment of the `/models/{id}…` routes, else ''. For `model` it is anything after
   * `/models/` that is not one of the other model routes (so `/models/1/x` is an invalid id).
   * For `/console…` what follows `/console` ('' or '/name').
   */
  id: string;
  /** The `{n}` segment of `/models/{id}/revisions/{n}`, else ''. */
  revision: string;
  query: URLSearchParams;
}

export function routeOf(url: string, serveModels: boolean, serveConsole = false): RouteMatch {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const at = (route: Route, id = '', revision = ''): RouteMatch => ({
    route,
    id,
    revision,
    query,
  });
  if (path === '/healthz') return at('healthz');
  if (path === '/readyz') return at('readyz');
  if (path === '/metrics') return at('metrics');
  if (path === '/openapi.json') return at('openapi');
  if (path === '/whoami') return at('whoami');
  if (serveConsole && path === '/') return at('root');
  if (serveConsole && (path === '/console' || path.startsWith('/console/')))
    return at('console', path.slice('/console'.length));
  if (serveModels && path === '/models') return at('models');
  if (serveModels && path === '/changes') return at('changes');
  if (serveModels && path.startsWith('/models/')) {
    const rest = path.slice('/models/'.length);
    const parts = rest.split('/');
    const id = parts[0] as string;
    if (parts.length === 2 && parts[1] === 'revisions') return at('revisions', id);
    if (parts.length === 3 && parts[1] === 'revisions') return at('revision', id, parts[2]);
    if (parts.length === 2 && parts[1] === 'rollback') return at('rollback', id);
    return at('model', rest);
  }
  return at('other');
}

/**
 * The handlers of each route by method (GET also answers HEAD). Without writes, `rollback` (a
 * write and nothing else) is absent: its path is then 404 like any unknown path.
 */
export function routeTable(
  writes: boolean,
): Partial<Record<Exclude<Route, 'other'>, Record<string, RouteHandler>>> {
  return {
    healthz: { GET: healthz },
    readyz: { GET: readyz },
    metrics: { GET: metrics },
    openapi: { GET: openapi },
    whoami: { GET: whoami },
    root: { GET: rootRedirect },
    console: { GET: (x) => serveConsole(x) },
    models: writes ? { GET: listModels, POST: postModel } : { GET: listModels },
    model: writes ? { GET: getModel, PUT: putModel, DELETE: deleteModel } : { GET: getModel },
    revisions: { GET: listRevisions },
    revision: { GET: getRevision },
    ...(writes ? { rollback: { POST: rollback } } : {}),
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
