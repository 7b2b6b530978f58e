/**
 * Paged model listings (`Backend.listModels`): checking a page request, and walking every page of
 * a backend — with `listModels` one page in memory at a time, else from one `getModels()`.
 */
import { type Backend, BackendError, type ListOptions, type ModelMeta } from './types.js';

/** Page size when none is asked for, and the most a backend returns at once. */
export const DEFAULT_LIST_LIMIT = 1000;
export const MAX_LIST_LIMIT = 10_000;

/** `after` (default 0) and `limit` (default 1000, at most 10 000) of a page request, checked. */
export function listWindow(options: ListOptions = {}): { after: number; limit: number } {
  const after = options.after ?? 0;
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new BackendError('invalid', `list: 'after' must be an integer ≥ 0, got ${String(after)}`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new BackendError('invalid', `list: 'limit' must be an integer ≥ 1, got ${String(limit)}`);
  }
  return { after, limit: Math.min(limit, MAX_LIST_LIMIT) };
}

/**
 * Every live model of `backend`, ascending by id, page by page (`pageSize` each at most). Without
 * `listModels` the backend's whole `getModels()` listing is taken once and handed out in pages.
 * `after` starts the walk past an id.
 */
export async function* listModelPages(
  backend: Backend,
  pageSize = DEFAULT_LIST_LIMIT,
  after = 0,
): AsyncGenerator<ModelMeta[]> {
  const list = backend.listModels?.bind(backend);
  if (list === undefined) {
    const all = (await backend.getModels()).filter((m) => m.instanceId > after);
    for (let i = 0; i < all.length; i += pageSize) yield all.slice(i, i + pageSize);
    return;
  }
  let last = after;
  for (;;) {
    const page = await list({ after: last, limit: pageSize });
    if (page.length === 0) return;
    const end = (page.at(-1) as ModelMeta).instanceId;
    if (end <= last) {
      throw new BackendError(
        'internal',
        `listModels after ${last} answered ids up to ${end}: the listing does not advance`,
      );
    }
    last = end;
    yield page;
  }
}

/** Live models of a backend, counted page by page (a total for progress, in O(page) memory). */
export async function countModels(backend: Backend): Promise<number> {
  let n = 0;
  for await (const page of listModelPages(backend)) n += page.length;
  return n;
}

/**
 * The metadata the target holds for `ids` (ascending, distinct): one `listModels` page per run of
 * neighbouring ids, a query per id at worst; without `listModels`, from one `getModels()`.
 */
export async function metasOf(
  backend: Backend,
  ids: readonly number[],
): Promise<Map<number, ModelMeta>> {
  const found = new Map<number, ModelMeta>();
  if (ids.length === 0) return found;
  const list = backend.listModels?.bind(backend);
  if (list === undefined) {
    const wanted = new Set(ids);
    for (const m of await backend.getModels())
      if (wanted.has(m.instanceId)) found.set(m.instanceId, m);
    return found;
  }
  let i = 0;
  while (i < ids.length) {
    const first = ids[i] as number;
    const page = await list({ after: first - 1, limit: Math.min(ids.length - i, MAX_LIST_LIMIT) });
    // Nothing from `first` on: the remaining ids are all absent.
    if (page.length === 0) break;
    for (const m of page) found.set(m.instanceId, m);
    // Every wanted id up to the page's last one is answered (found or absent); at least `first`.
    const end = (page.at(-1) as ModelMeta).instanceId;
    while (i < ids.length && (ids[i] as number) <= end) i++;
  }
  // Only the wanted ones (a page may hold ids in between).
  for (const id of found.keys()) if (!wanted(ids, id)) found.delete(id);
  return found;
}

function wanted(sorted: readonly number[], id: number): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < id) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo] === id;
}
