/**
 * Requests to the daemon that serves the page (same origin only): the Authorization header kept
 * in memory (and in sessionStorage, so that a reload keeps the login for this tab), errors as
 * {@link ApiError} with the server's JSON `error` text.
 */
const KEY = 'aimm-store-console-auth';

let authorization: string | null = sessionStorage.getItem(KEY);

/** Basic credentials for every later request (null: none). */
export function setBasic(user: string, password: string): void {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  authorization = `Basic ${btoa(bin)}`;
  sessionStorage.setItem(KEY, authorization);
}

export function clearAuth(): void {
  authorization = null;
  sessionStorage.removeItem(KEY);
}

export function hasCredentials(): boolean {
  return authorization !== null;
}

/** Headers every request carries. `X-Requested-With` keeps the browser's own login dialog away. */
export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'X-Requested-With': 'aimm-store-console', ...extra };
  if (authorization !== null) h.Authorization = authorization;
  return h;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown> | null,
  ) {
    super(message);
  }
}

/** Listeners told when a request was refused for missing or wrong credentials. */
const unauthorizedListeners: (() => void)[] = [];
export function onUnauthorized(f: () => void): void {
  unauthorizedListeners.push(f);
}

export async function request(
  path: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
): Promise<Response> {
  const res = await fetch(path, {
    ...init,
    headers: authHeaders(init.headers),
    cache: 'no-store',
    credentials: 'omit',
  });
  if (res.ok) return res;
  let body: Record<string, unknown> | null = null;
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {}
  const text = typeof body?.error === 'string' ? body.error : `${res.status} ${res.statusText}`;
  if (res.status === 401) for (const f of unauthorizedListeners) f();
  throw new ApiError(res.status, text, body);
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await request(path)).json()) as T;
}

export interface ModelMeta {
  instance_id: number;
  model_type: string;
  revision: number;
  size: number;
  sha256: string;
  updated: string;
  /**
   * The revision is a lower bound (the event backend is still counting the model's history from
   * Hat; docs/backend-event.md): the exact one replaces it later.
   */
  revision_provisional?: boolean;
  /** Known from the change stream: the last change's origin. */
  origin?: 'local' | 'remote';
}

export interface Revision extends ModelMeta {
  deleted: boolean;
  origin: 'local' | 'remote';
  available: boolean;
  current: boolean;
}

export interface Whoami {
  user: string | null;
  role: 'read' | 'write' | null;
  auth: boolean;
}

/**
 * The `If-Match` value for a compare-and-set on a model the server described with `etag` (its
 * `ETag` header), or null when there is none to compare: no ETag, or a weak one (`W/"…"`, sent
 * while the revision is provisional), which `If-Match` never matches (RFC 9110).
 */
export function compareTag(etag: string | null): string | null {
  return etag === null || etag === '' || etag.startsWith('W/') ? null : etag;
}
