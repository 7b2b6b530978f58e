/**
 * The web console's routes (docs/console.md): `/` redirects to `/console/`, `/console/` is the
 * page and `/console/{name}` its assets — static files built by `npm run build` into
 * `dist/console/` and shipped in the package. Only the files found in that folder when the first
 * request came are served (read once, kept in memory; no path ever reaches the file system), each
 * with its content type, a strong ETag (its SHA-256) and `Cache-Control: no-cache` (the names are
 * not versioned, so the browser revalidates; a match is 304), and a strict Content Security Policy:
 * the page loads nothing but its own files and talks to nothing but this daemon.
 *
 * Also `GET /whoami`: who the request's credentials name and what they may do, so that the page
 * can show a login form or hide the write controls.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ifNoneMatchHits } from './conditional.js';
import type { Exchange } from './exchange.js';
import { header, send, sendError, sendJson } from './send.js';

/** dist/src/controls/http → dist/console. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../../console/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/** The page may load its own files only, and connect only to this daemon. */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
  "frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'Content-Security-Policy': CSP,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every servable file of `dir` by its name ('' is index.html); empty when the folder is missing. */
export function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return assets;
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    const path = join(dir, name);
    if (type === undefined || !statSync(path).isFile()) continue;
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
    assets.set(name, { body, type, etag });
  }
  const index = assets.get('index.html');
  if (index !== undefined) assets.set('', index);
  return assets;
}

let cache: Map<string, Asset> | null = null;

function assets(): Map<string, Asset> {
  cache ??= loadAssets(CONSOLE_DIR);
  return cache;
}

/** `/`: to the console. */
export function rootRedirect({ req, res }: Exchange): void {
  send(res, req, 302, 'see /console/\n', {
    Location: '/console/',
    'Content-Type': 'text/plain; charset=utf-8',
  });
}

/** `/console` (no slash), `/console/`, `/console/{name}`; `x.id` is what follows `/console`. */
export function serveConsole(x: Exchange, files: Map<string, Asset> = assets()): void {
  const { req, res, id } = x;
  if (id === '') {
    send(res, req, 301, 'see /console/\n', {
      Location: '/console/',
      'Content-Type': 'text/plain; charset=utf-8',
    });
    return;
  }
  const asset = files.get(id.slice(1));
  if (asset === undefined) {
    const why = files.size === 0 ? 'the console is not built (npm run build)' : 'not found';
    sendError(res, req, 404, why, { code: 'not_found' });
    return;
  }
  const headers = {
    ...SECURITY_HEADERS,
    'Content-Type': asset.type,
    ETag: asset.etag,
    'Cache-Control': 'no-cache',
  };
  if (ifNoneMatchHits(header(req, 'if-none-match'), asset.etag)) {
    res.writeHead(304, { ...headers, 'X-Content-Type-Options': 'nosniff' });
    res.end();
    return;
  }
  send(res, req, 200, asset.body, headers);
}

/**
 * `GET /whoami`: `{user, role, auth}`. With authentication the request got here with valid
 * credentials (the rule is `read`), so `user` is the user or token name; without it `user` is
 * null and `role` says what the control allows everyone (`write` when it serves writes).
 */
export function whoami({ req, res, options }: Exchange): void {
  const who = options.auth?.enabled === true ? options.auth.principalOf(req) : null;
  if (who !== null) {
    sendJson(res, req, 200, { user: who.name, role: who.role, auth: true });
    return;
  }
  const role = options.writes ? 'write' : options.serveModels ? 'read' : null;
  sendJson(res, req, 200, { user: null, role, auth: false });
}
